"""Scenario -> hops: the path a prompt takes and the stack each hop runs.

:func:`plan_path` reads the scenario's nodes and links and returns the chain of :class:`Hop`
from the ground station to the compute satellite; :func:`build_endpoints` turns one hop into its
pair of sans-IO endpoints (:mod:`linkstack.hops`): an RF hop (COP-1 over TC or USLP frames in
CLTUs up, TM or USLP with the CLCW down) or an ISL hop (USLP frames, selective repeat, RS). The
virtual-time round trip (:mod:`linkstack.sims.roundtrip`), the constellation simulator and the
real-time UDP driver (:mod:`linkstack.drivers.udp`) all wire their stacks here, so one scenario
means the same stack in every driver.

SDLS: a direction whose stack names an SA (``sdls``) is secured with it. Each end gets its own
SA database holding that one SA, loaded from the ``[security]`` SA and key files: the sending
end's counters and the receiving end's anti-replay state are separate, as on two spacecraft,
and no end verifies frames secured for another direction. The hop's frames shrink by the SA's
overhead (:func:`rf_config`, and the ISL endpoint from its SA).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkstack.arq.params import ARQ_PARAMS, farm_window_width
from linkstack.errors import ConfigError
from linkstack.hops.base import HopEndpoint
from linkstack.hops.clcw_downlink import DOWNLINK_FRAMES
from linkstack.hops.isl import IslEndpoint, IslHopConfig
from linkstack.hops.rf import RfGround, RfHopConfig, RfSpace
from linkstack.hops.security import HopSdls
from linkstack.sdls.config import find_sa, key_file_setting, load_sa_file, read_sa_file
from linkstack.sdls.counters import CounterStore, FileCounterStore
from linkstack.sdls.errors import KeyFileError
from linkstack.sdls.sa import SecurityAssociation
from linkstack.sdls.services import Algorithm
from linkstack.sims.scenario import (
    KEY_FILE_ENV,
    LinkSpec,
    Scenario,
    SecuritySpec,
    private_key_file,
)

__all__ = ["LAG_MEANS", "Hop", "build_endpoints", "plan_path", "rf_config", "worst_lag_s"]



@dataclass(frozen=True)
class Hop:
    """One hop of the path: its name, the two link directions, the nodes at each end, and
    where the SDLS SAs of its directions are (the scenario's ``[security]``, if any)."""

    name: str
    kind: str  # "rf" or "isl"
    forward: LinkSpec  # towards the compute node
    back: LinkSpec
    security: SecuritySpec | None = None


def plan_path(scenario: Scenario, compute: str | None = None) -> list[Hop]:
    """The chain of hops from the ground station to the compute satellite.

    The compute node is ``compute`` or, by default, the satellite farthest (in hops) from the
    ground station. Each hop needs both directions; the forward one's ``stack.arq`` says the
    kind: ``cop-1`` (RF hop: TC or USLP frames up, its return must be ``tm``) or ``sr`` (ISL
    hop, USLP frames). Without ``arq``, ``tc`` frames mean COP-1 and ``uslp`` frames SR.
    """
    grounds = [n for n, s in scenario.nodes.items() if s.kind == "ground_station"]
    if len(grounds) != 1:
        raise ConfigError(f"need exactly one ground station, found {len(grounds)}", key="nodes")
    links = scenario.links
    # breadth-first from the ground over forward links
    paths: dict[str, list[str]] = {grounds[0]: []}
    frontier = [grounds[0]]
    while frontier:
        nxt = []
        for node in frontier:
            for lname, spec in links.items():
                if spec.source == node and spec.destination not in paths:
                    paths[spec.destination] = [*paths[node], lname]
                    nxt.append(spec.destination)
        frontier = nxt
    target = compute or max(paths, key=lambda n: len(paths[n]))
    if target not in paths or not paths[target]:
        raise ConfigError(f"no path from {grounds[0]} to {target}", key="nodes")
    _check_security(scenario)
    hops = []
    for lname in paths[target]:
        fwd = links[lname]
        back = next((s for s in links.values()
                     if s.source == fwd.destination and s.destination == fwd.source), None)
        if back is None:
            raise ConfigError(f"link {lname} has no return direction", key=f"links.{lname}")
        hop = Hop(f"{fwd.name}", _hop_kind(fwd, back), fwd, back, scenario.security)
        _check_arq_params(hop)
        hops.append(hop)
    return hops


_PARAM_OWNERS = {"rf": ("cop-1", "cop-1-return"), "isl": ("sr", "sr")}
_OWNER_NAMES = {"cop-1": "a COP-1 uplink's", "cop-1-return": "a COP-1 return link's",
                "sr": "a selective-repeat (ISL) hop's"}


def _check_arq_params(hop: Hop) -> None:
    """Each ``arq_params`` key belongs to the ARQ its direction runs (a COP-1 key on an ISL
    hop, or an SR key on an RF hop, would change nothing)."""
    for spec, owner in zip((hop.forward, hop.back), _PARAM_OWNERS[hop.kind], strict=True):
        for name in spec.stack.arq_params:
            param_owner = ARQ_PARAMS[name].arq
            if param_owner != owner:
                raise ConfigError(f"is {_OWNER_NAMES[param_owner]} parameter; this direction "
                                  f"is {_OWNER_NAMES[owner].removesuffix(chr(39) + 's')}",
                                  key=f"links.{spec.name}.stack.arq_params.{name}")


_ARQ_FRAMES = {"cop-1": ("tc", "uslp"), "sr": ("uslp",)}
"""Hop ARQ -> the frame types it runs over (forward direction)."""


def _hop_kind(fwd: LinkSpec, back: LinkSpec) -> str:
    """``rf`` (COP-1) or ``isl`` (selective repeat), checked against the frame types."""
    frame = (fwd.stack.frame or "").lower()
    implied = {"tc": "cop-1", "uslp": "sr"}
    if fwd.stack.arq is None and frame not in implied:
        raise ConfigError(f"unsupported frame {fwd.stack.frame!r} (tc or uslp)",
                          key=f"links.{fwd.name}.stack.frame")
    arq = (fwd.stack.arq or implied[frame]).lower()
    if arq not in _ARQ_FRAMES:
        raise ConfigError(f"unsupported arq {fwd.stack.arq!r} (cop-1 or sr)",
                          key=f"links.{fwd.name}.stack.arq")
    if frame not in _ARQ_FRAMES[arq]:
        raise ConfigError(f"unsupported frame {fwd.stack.frame!r} for {arq} "
                          f"({' or '.join(_ARQ_FRAMES[arq])})", key=f"links.{fwd.name}.stack.frame")
    if arq == "cop-1":
        if (back.stack.frame or "tm").lower() not in DOWNLINK_FRAMES:
            raise ConfigError("the return of a COP-1 uplink must be TM or USLP (the CLCW "
                              "rides in its OCF)", key=f"links.{back.name}.stack.frame")
        return "rf"
    return "isl"


def _param(spec: LinkSpec, name: str) -> Any:
    """The ``arq_params`` value of ``spec``, else the default (:mod:`linkstack.arq.params`)."""
    return spec.stack.arq_params.get(name, ARQ_PARAMS[name].default)


def build_endpoints(hop: Hop) -> tuple[HopEndpoint, HopEndpoint]:
    """(near end, far end) endpoints of ``hop`` from the scenario's stack tables.

    A setting the stack refuses is a :class:`ConfigError` naming the scenario key."""
    try:
        return _build_endpoints(hop)
    except ConfigError as exc:
        if exc.key.startswith(("links.", "security.")):
            raise
        back = exc.key in ("downlink_code", "downlink_frame_length", "downlink_frame",
                           "clcw_interval", "downlink_sdls_overhead")
        name = _SCENARIO_KEYS.get(exc.key)
        reason = exc.reason if name is not None else f"{exc.key}: {exc.reason}"
        table = hop.back if back else hop.forward
        raise ConfigError(reason, key=f"links.{table.name}.stack.{name or 'coding'}") from None


# hop configuration fields -> their scenario keys (anything else comes from a coding chain name)
_SCENARIO_KEYS = {
    "frame_length": "frame_length", "downlink_frame_length": "frame_length",
    "uplink_max_frame_length": "frame_length", "max_frame_length": "frame_length",
    "uplink_frame": "frame", "downlink_frame": "frame",
    "downlink_code": "coding", "uplink_code": "coding", "code": "coding", "vcid": "vcid",
    "window": "arq_params.window_width", "farm_window": "arq_params.farm_window_width",
    "t1": "arq_params.t1_initial", "transmission_limit": "arq_params.transmission_limit",
    "clcw_interval": "arq_params.clcw_interval", "recovery_wait": "arq_params.recovery_wait",
    "bc_hold": "arq_params.bc_hold",
    "uplink_sdls_overhead": "sdls", "downlink_sdls_overhead": "sdls",
    "initial_rto": "arq_params.initial_rto", "min_rto": "arq_params.min_rto",
    "max_rto": "arq_params.max_rto", "rto_backoff": "arq_params.rto_backoff",
}


LAG_MEANS = 10.0
"""A link's worst extra lag, for the COP-1 defaults below: this many mean extra delays of its
(exponential) reordering or duplication -- exceeded by one unit in e**10, about 22 000."""


def worst_lag_s(spec: LinkSpec, unit_octets: int) -> float:
    """How much later than its nominal arrival a unit of ``spec`` (at most ``unit_octets``
    long) may arrive; 0 for a link that neither reorders nor duplicates. :data:`LAG_MEANS`
    mean extra delays each, and a copy (of a unit perhaps reordered too) comes one
    serialization after its original."""
    lag = 0.0
    if spec.reorder is not None and spec.reorder.fraction > 0:
        lag += LAG_MEANS * spec.reorder.mean_delay_s
    if spec.duplicate is not None and spec.duplicate.fraction > 0:
        lag += 8 * unit_octets / spec.rate_bps + LAG_MEANS * spec.duplicate.mean_delay_s
    return lag


def _sdls_error(exc: ConfigError, key: str) -> ConfigError:
    return ConfigError(str(exc), key=key)


def _sa_of(hop: Hop, spec: LinkSpec) -> SecurityAssociation | None:
    """The SA (parameters only, no key) that secures direction ``spec``, or None."""
    ref = spec.stack.sdls
    if ref is None:
        return None
    key = f"links.{spec.name}.stack.sdls"
    if hop.security is None:
        raise ConfigError("needs a [security] table naming the SA file (sa_file)", key=key)
    try:
        sas = read_sa_file(hop.security.sa_file)
    except ConfigError as exc:
        raise _sdls_error(exc, "security.sa_file") from None
    sa = find_sa(sas, ref)
    if sa is None:
        known = ", ".join(f"{s.name} ({s.spi})" if s.name else str(s.spi) for s in sas)
        raise ConfigError(f"no SA {ref!r} in {hop.security.sa_file} (SAs: {known or 'none'})",
                          key=key)
    return sa


def _check_security(scenario: Scenario) -> None:
    """Every ``sdls`` names an SA of the SA file, and no two directions share an SA, or an
    AES-GCM key: two senders under one key would reuse IVs (both count from the same value),
    which breaks GCM's confidentiality and integrity (NIST SP 800-38D §8)."""
    used = {name: spec for name, spec in scenario.links.items() if spec.stack.sdls is not None}
    if not used:
        return
    by_spi: dict[int, str] = {}
    gcm_keys: dict[int, str] = {}
    for name, spec in used.items():
        hop = Hop(name, "", spec, spec, scenario.security)
        sa = _sa_of(hop, spec)
        assert sa is not None
        key = f"links.{name}.stack.sdls"
        if sa.spi in by_spi:
            raise ConfigError(f"SA {sa.spi} already secures links.{by_spi[sa.spi]}: an SA "
                              "secures one direction", key=key)
        by_spi[sa.spi] = name
        if sa.algorithm is Algorithm.AES_GCM and sa.key_id is not None:
            if sa.key_id in gcm_keys:
                raise ConfigError(f"SA {sa.spi} uses key {sa.key_id} like the AES-GCM SA of "
                                  f"links.{gcm_keys[sa.key_id]}: two senders under one GCM key "
                                  "reuse IVs; give each direction its own key", key=key)
            gcm_keys[sa.key_id] = name


def _overhead(hop: Hop, spec: LinkSpec) -> int:
    sa = _sa_of(hop, spec)
    return 0 if sa is None else sa.overhead


def _key_path(hop: Hop) -> str:
    """The key file: ``[security] key_file``, else ``$LINKSTACK_SDLS_KEY_FILE``, else the SA
    file's own ``key_file`` setting."""
    assert hop.security is not None
    path = hop.security.key_path()
    if path is None:
        try:
            own = key_file_setting(hop.security.sa_file)
        except ConfigError as exc:
            raise _sdls_error(exc, "security.sa_file") from None
        if own is None:
            raise ConfigError(f"no key file: give key_file here, or set the environment "
                              f"variable {KEY_FILE_ENV}", key="security.key_file")
        path = str(own)
    return path


def _hop_sdls(hop: Hop, spec: LinkSpec, counters: CounterStore | None = None
              ) -> HopSdls | None:
    """One end's SDLS for direction ``spec``: a fresh SA database holding its one SA, with
    the keys read from the key file for this end alone (key states are per end); a sending
    end's ``counters`` keep its IVs / ARSNs across restarts."""
    sa = _sa_of(hop, spec)
    if sa is None:
        return None
    assert hop.security is not None
    path = _key_path(hop)
    try:
        with private_key_file(path) as usable:  # the shipped test keys: a private copy
            db = load_sa_file(hop.security.sa_file, usable, spis=(sa.spi,),
                              counters=counters)
    except KeyFileError as exc:
        raise _sdls_error(exc, "security.key_file") from None
    except ConfigError as exc:
        key = "security.key_file" if exc.key.startswith("key") else "security.sa_file"
        raise _sdls_error(exc, key) from None
    return HopSdls(db, sa.spi)


def rf_end_sdls(hop: Hop, end: str, state_dir: str | os.PathLike[str] | None
                ) -> tuple[HopSdls | None, HopSdls | None]:
    """``(uplink, downlink)`` SDLS of one end (``"ground"`` or ``"space"``) of an RF hop run
    as a real process (``linkstack serve``), for :class:`~linkstack.hops.rf.RfGround` /
    :class:`~linkstack.hops.rf.RfSpace`.

    A process can restart, and an AES-GCM IV must never repeat under one key: the direction
    this end *sends* on reserves its IVs/ARSNs in ``<state_dir>/sdls-<end>-spi<N>.json``
    (:class:`~linkstack.sdls.counters.FileCounterStore`) before using them. Without SDLS on
    the hop, ``(None, None)``; with it and no ``state_dir``, a :class:`ConfigError` naming
    ``--sdls-state``.
    """
    sends = hop.forward if end == "ground" else hop.back
    sa = _sa_of(hop, sends)
    counters = None
    if sa is not None:
        if state_dir is None:
            raise ConfigError(f"links.{sends.name}.stack.sdls secures what this end sends: "
                              "give a folder for its IV counters, which must survive "
                              "restarts", key="--sdls-state")
        folder = Path(state_dir)
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder", key="--sdls-state")
        try:
            counters = FileCounterStore(folder / f"sdls-{end}-spi{sa.spi}.json")
        except ConfigError as exc:
            raise ConfigError(exc.reason, key="--sdls-state") from None
    up = _hop_sdls(hop, hop.forward, counters if end == "ground" else None)
    down = _hop_sdls(hop, hop.back, counters if end == "space" else None)
    return up, down


def rf_config(hop: Hop) -> RfHopConfig:
    """The RF hop's managed parameters from its two stack tables (hop kind ``rf``).

    COP-1 assumes links that neither reorder nor duplicate. When the scenario's RF links do
    (``[reorder]``, ``[duplicate]``), the defaults of ``bc_hold`` and ``recovery_wait`` follow
    the rule of :class:`~linkstack.hops.rf.RfHopConfig` with :func:`worst_lag_s` of the
    two directions: ``bc_hold = lag``, ``recovery_wait = max(1 s, 2 x (delay + lag))``;
    ``arq_params`` set them explicitly otherwise.
    """
    fwd, back = hop.forward, hop.back
    window = int(_param(fwd, "window_width"))
    cfg = RfHopConfig(
        vcid=fwd.stack.vcid or 0,
        uplink_frame=(fwd.stack.frame or "tc").lower(),
        downlink_frame=(back.stack.frame or "tm").lower(),
        uplink_code=fwd.stack.coding or "tc-bch-rand",
        downlink_code=back.stack.coding or "tm-rs-255-223-i1",
        downlink_frame_length=back.stack.frame_length,
        uplink_max_frame_length=fwd.stack.frame_length or 1024,
        window=window,
        farm_window=int(fwd.stack.arq_params.get("farm_window_width",
                                                 farm_window_width(window))),
        t1=float(_param(fwd, "t1_initial")),
        transmission_limit=int(_param(fwd, "transmission_limit")),
        clcw_interval=float(_param(back, "clcw_interval")),
        recovery_wait=float(_param(fwd, "recovery_wait")),
        bc_hold=float(_param(fwd, "bc_hold")),
        uplink_sdls_overhead=_overhead(hop, fwd),
        downlink_sdls_overhead=_overhead(hop, back),
    )
    longest = cfg.uplink_max_frame_length
    up_unit = longest + cfg.uplink_chain().overhead(longest)  # the longest CLTU
    lag = max(worst_lag_s(fwd, up_unit), worst_lag_s(back, cfg.downlink_chain().cadu_length or 0))
    derived: dict[str, float] = {}  # the settings the scenario leaves to this rule
    if lag > 0 and "bc_hold" not in fwd.stack.arq_params:
        derived["bc_hold"] = lag
    if lag > 0 and "recovery_wait" not in fwd.stack.arq_params:
        delay = max(fwd.build_propagation().delay_ns(0),
                    back.build_propagation().delay_ns(0)) / 1e9
        derived["recovery_wait"] = max(1.0, 2 * (delay + lag))
    return dataclasses.replace(cfg, **derived) if derived else cfg


def _sdls_end(make: Any, keys: dict[str, LinkSpec]) -> Any:
    """``make()``; an SDLS setting an endpoint refuses names its direction's ``sdls`` key."""
    try:
        return make()
    except ConfigError as exc:
        spec = keys.get(exc.key)
        if spec is None:
            raise
        raise ConfigError(exc.reason, key=f"links.{spec.name}.stack.sdls") from None


def _build_endpoints(hop: Hop) -> tuple[HopEndpoint, HopEndpoint]:
    fwd, back = hop.forward, hop.back
    if hop.kind == "rf":
        cfg = rf_config(hop)
        rf_keys = {"uplink_sdls": fwd, "downlink_sdls": back}
        ground = _sdls_end(lambda: RfGround(cfg, uplink_sdls=_hop_sdls(hop, fwd),
                                            downlink_sdls=_hop_sdls(hop, back)), rf_keys)
        space = _sdls_end(lambda: RfSpace(cfg, uplink_sdls=_hop_sdls(hop, fwd),
                                          downlink_sdls=_hop_sdls(hop, back)), rf_keys)
        return ground, space
    cfg_isl = IslHopConfig(
        vcid=fwd.stack.vcid if fwd.stack.vcid is not None else 1,
        code=fwd.stack.coding or "tm-rs-255-223-i5",
        frame_length=fwd.stack.frame_length,
        window=int(_param(fwd, "window")),
        initial_rto=float(_param(fwd, "initial_rto")),
        min_rto=float(_param(fwd, "min_rto")),
        max_rto=float(_param(fwd, "max_rto")),
        rto_backoff=float(_param(fwd, "rto_backoff")),
        fec=bool(_param(fwd, "fec")),
    )
    near = _sdls_end(lambda: IslEndpoint(cfg_isl, name=f"{hop.name}-a",
                                         tx_sdls=_hop_sdls(hop, fwd),
                                         rx_sdls=_hop_sdls(hop, back)),
                     {"tx_sdls": fwd, "rx_sdls": back})
    far = _sdls_end(lambda: IslEndpoint(cfg_isl, name=f"{hop.name}-b",
                                        tx_sdls=_hop_sdls(hop, back),
                                        rx_sdls=_hop_sdls(hop, fwd)),
                    {"tx_sdls": back, "rx_sdls": fwd})
    return near, far
