"""Constellation scenarios: the TOML tables of a many-satellite, many-station, many-user run.

A constellation scenario is a scenario file with a ``[constellation]`` table. Its tables:

``[scenario]``  ``name``, ``description``, ``seed``, ``duration_s`` (as in every scenario).

``[constellation]``  the space segment:

- ``walker = {total, planes, phasing, altitude_km, inclination_deg}``: a Walker-delta shell
  ``i: T/P/F`` (Walker, "Satellite constellations", J. Brit. Interplanet. Soc. 37, 1984), or
  ``tle_file = "path"`` (two-line element sets, relative paths from the scenario file);
- ``epoch``: the scenario's time zero (ISO 8601 UTC; the Walker elements' epoch);
- ``topology``: ``"ring"`` (one plane, each satellite to its two neighbours) or ``"+grid"``
  (two intra-plane and two inter-plane ISLs per satellite);
- ``computing``: which satellites run a model: ``"all"``, or ``{planes = N}`` (the first N
  planes), or an array of satellite names;
- ``slots`` (parallel inference slots per computing satellite), ``queue_limit`` (prompts that
  may wait; more are answered ``BUSY``), ``flight_profile`` (scales measured inference time);
- ``[constellation.isl]``: ``max_range_km``, ``min_grazing_km`` (the line of sight's lowest
  point above the sphere: atmosphere margin), ``polar_limit_deg`` (inter-plane links off when
  either end is above this latitude), ``seam`` (link plane P-1 to plane 0).

``[ground_stations.<name>]``  ``latitude_deg``, ``longitude_deg``, ``altitude_m``,
``min_elevation_deg``.

``[links.uplink]``, ``[links.downlink]``, ``[links.isl]``  the three link templates: the same
keys as the links of a chain scenario (``profile``, ``rate_bps``, ``ber``, ``ge``, ``stack``
...), but no ``from``/``to``, ``propagation``, ``pass`` or ``outages``: the geometry gives
every hop its delay (following the range) and its contact windows.

``[routing]``  ``policy`` (``nearest-free``, ``ingress``, ``fixed``, ``no-isl``), ``compute``
(the satellite of ``fixed``), ``downlink`` (``any``: the answer comes down at whichever station
it reaches first and crosses the terrestrial network to the user's; ``origin``: only the user's
own station), ``backhaul_km_s`` (signal speed in terrestrial fibre), ``plan_step_s``,
``segment_s`` (contact-plan resolution, see :mod:`.contacts`).

``[traffic]``  ``users_per_station``, ``rate_per_user_per_h`` (Poisson arrivals),
``prompts`` (texts drawn uniformly), ``max_tokens``, ``temperature``, ``timeout_s``.

Unknown keys anywhere are errors naming the key; so are a phasing outside ``0..P-1`` and a TLE
line with a bad checksum (naming its line).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError
from linkstack.payload.backend import get_profile
from linkstack.sims.scenario import (
    LinkSpec,
    NodeSpec,
    _parse_direction,
    _Table,
    apply_overrides,
    parse_meta,
    parse_profiles,
    read_scenario_source,
    with_profile,
)

__all__ = [
    "POLICIES",
    "ConstellationScenario",
    "GroundStationSpec",
    "IslSpec",
    "RoutingSpec",
    "TrafficSpec",
    "WalkerSpec",
    "is_constellation",
    "load_constellation",
    "parse_constellation",
]

POLICIES = ("nearest-free", "ingress", "fixed", "no-isl")
"""Compute placement: the nearest computing satellite with a free slot (load-aware); the
satellite the prompt enters through; one named satellite; or no ISLs at all."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_TEMPLATES = ("uplink", "downlink", "isl")
_FORBIDDEN_LINK_KEYS = ("from", "to", "propagation", "pass", "outages")


@dataclass(frozen=True)
class WalkerSpec:
    """Walker-delta ``i: T/P/F`` at one altitude (circular orbits)."""

    total: int
    planes: int
    phasing: int
    altitude_km: float
    inclination_deg: float


@dataclass(frozen=True)
class IslSpec:
    """When two satellites of the topology can hold a laser link."""

    max_range_km: float = 6000.0
    min_grazing_km: float = 80.0
    polar_limit_deg: float = 75.0
    seam: bool = True


@dataclass(frozen=True)
class GroundStationSpec:
    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float = 0.0
    min_elevation_deg: float = 10.0


@dataclass(frozen=True)
class RoutingSpec:
    policy: str = "nearest-free"
    compute: str | None = None
    downlink: str = "any"
    backhaul_km_s: float = 200_000.0
    plan_step_s: float = 10.0
    segment_s: float = 60.0


@dataclass(frozen=True)
class TrafficSpec:
    users_per_station: int = 1
    rate_per_user_per_h: float = 60.0
    prompts: tuple[str, ...] = ("What is the capital of France?",)
    max_tokens: int = 16
    temperature: float = 0.0
    timeout_s: float = 3600.0


@dataclass(frozen=True)
class ConstellationScenario:
    """A validated constellation scenario (see the module docstring)."""

    name: str
    description: str
    seed: int
    duration_s: float
    epoch: datetime
    walker: WalkerSpec | None
    tle_text: str | None
    tle_source: str | None
    topology: str
    computing: Any  # "all" | {"planes": N} | tuple of names
    slots: int
    queue_limit: int
    flight_profile: str
    isl: IslSpec
    stations: tuple[GroundStationSpec, ...]
    links: dict[str, LinkSpec]
    routing: RoutingSpec
    traffic: TrafficSpec
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def total_rate_per_s(self) -> float:
        """Prompts per second over the whole ground network."""
        t = self.traffic
        return len(self.stations) * t.users_per_station * t.rate_per_user_per_h / 3600.0


def is_constellation(data: Mapping[str, Any]) -> bool:
    """Whether a raw scenario dict describes a constellation (has ``[constellation]``)."""
    return "constellation" in data


def load_constellation(source: str | Path, overrides: Iterable[str] = ()) -> ConstellationScenario:
    """Load a constellation scenario file (a path or a shipped name) and apply overrides."""
    data = apply_overrides(read_scenario_source(source), overrides)
    base = Path(source).parent if Path(source).suffix == ".toml" else None
    return parse_constellation(data, base_dir=base)


def parse_constellation(
    data: Mapping[str, Any], *, base_dir: Path | None = None
) -> ConstellationScenario:
    """Validate a raw constellation scenario dict (module docstring)."""
    raw = copy.deepcopy(dict(data))
    top = _Table(dict(data), "")
    name, description, seed, duration_s = parse_meta(top)

    c = top.table("constellation", "constellation")
    if c is None:
        raise ConfigError("not a constellation scenario: it has no [constellation] table",
                          key="constellation")
    walker, tle_text, tle_source = _parse_orbits(c, base_dir)
    epoch = _parse_epoch(c)
    topology = c.get("topology", "ring" if walker and walker.planes == 1 else "+grid")
    if topology == "ring" and walker is not None and walker.planes != 1:
        raise ConfigError(
            f'a ring needs one plane (planes = {walker.planes}); use "+grid"',
            key="constellation.topology",
        )
    computing = _parse_computing(c, walker)
    slots = c.get("slots")
    queue_limit = c.get("queue_limit")
    flight_profile = c.get("flight_profile")
    try:
        get_profile(flight_profile)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key="constellation.flight_profile") from None
    isl_t = c.table("isl")
    isl = IslSpec()
    if isl_t is not None:
        isl = IslSpec(
            max_range_km=isl_t.get("max_range_km"),
            min_grazing_km=isl_t.get("min_grazing_km"),
            polar_limit_deg=isl_t.get("polar_limit_deg"),
            seam=isl_t.get("seam"),
        )
        isl_t.done()
    c.done()

    stations = _parse_stations(top.table("ground_stations"))
    links = _parse_templates(top.table("links"), top.table("profiles"))
    routing = _parse_routing(top.table("routing", "routing"))
    traffic = _parse_traffic(top.table("traffic", "traffic"))
    top.done()
    if routing.policy == "fixed" and routing.compute is None:
        raise ConfigError(
            'policy "fixed" needs routing.compute (a satellite name)', key="routing.compute"
        )
    return ConstellationScenario(
        name,
        description,
        seed,
        duration_s,
        epoch,
        walker,
        tle_text,
        tle_source,
        topology,
        computing,
        slots,
        queue_limit,
        flight_profile,
        isl,
        stations,
        links,
        routing,
        traffic,
        raw,
    )


def _parse_orbits(
    c: _Table, base_dir: Path | None
) -> tuple[WalkerSpec | None, str | None, str | None]:
    has_walker, has_tle = c.has("walker"), c.has("tle_file")
    if has_walker == has_tle:
        raise ConfigError(
            'give exactly one of walker = {...} or tle_file = "..."', key="constellation.walker"
        )
    if has_tle:
        rel = c.get("tle_file")
        path = Path(rel)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read {str(path)!r}: {exc}", key="constellation.tle_file"
            ) from None
        return None, text, str(path)
    w = c.table("walker")
    assert w is not None
    total = w.get("total")
    planes = w.get("planes", hi=total)
    if total % planes:
        raise ConfigError(
            f"total {total} is not a multiple of planes {planes}", key="constellation.walker.total"
        )
    phasing = w.get("phasing")
    if not 0 <= phasing <= planes - 1:
        raise ConfigError(
            f"{phasing} is outside 0..P-1 (P = {planes})", key="constellation.walker.phasing"
        )
    spec = WalkerSpec(
        total,
        planes,
        phasing,
        w.get("altitude_km"),
        w.get("inclination_deg"),
    )
    w.done()
    return spec, None, None


def _parse_epoch(c: _Table) -> datetime:
    text = c.get("epoch")
    try:
        epoch = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)",
            key="constellation.epoch",
        ) from None
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    return epoch.astimezone(UTC)


def _parse_computing(c: _Table, walker: WalkerSpec | None) -> Any:
    value = c.get("computing")
    key = "constellation.computing"
    if value == "all":
        return "all"
    if isinstance(value, dict):
        t = _Table(value, key, "constellation.computing")
        planes = t.get("planes")
        t.done()
        if walker is None or planes > walker.planes:
            raise ConfigError(
                f"planes = {planes} needs a Walker shell with at least that many planes",
                key=f"{key}.planes",
            )
        return {"planes": planes}
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError('must be "all", {planes = N} or an array of satellite names', key=key)


def _parse_stations(t: _Table | None) -> tuple[GroundStationSpec, ...]:
    if t is None:
        raise ConfigError("required table is missing", key="ground_stations")
    out = []
    for sname in list(t.data):
        if not _NAME.match(sname):
            raise ConfigError("station names are letters, digits, '-' and '_'", key=t.path(sname))
        s = _Table(t.raw(sname), t.path(sname), "ground_stations.<station>")
        out.append(
            GroundStationSpec(
                sname,
                s.get("latitude_deg"),
                s.get("longitude_deg"),
                s.get("altitude_m"),
                s.get("min_elevation_deg"),
            )
        )
        s.done()
    t.done()
    if not out:
        raise ConfigError("at least one ground station", key="ground_stations")
    return tuple(out)


def _parse_templates(t: _Table | None, local_profiles: _Table | None) -> dict[str, LinkSpec]:
    if t is None:
        raise ConfigError("required table is missing", key="links")
    available = parse_profiles(local_profiles)
    # Stand-in nodes: the templates are validated like chain links between a ground station
    # and a satellite; the geometry replaces their propagation and windows at build time.
    nodes = {
        "ground": NodeSpec("ground", "ground_station", min_elevation_deg=10.0),
        "sat": NodeSpec("sat", "satellite", altitude_km=550.0),
        "peer": NodeSpec("peer", "satellite", altitude_km=550.0),
    }
    ends = {"uplink": ("ground", "sat"), "downlink": ("sat", "ground"), "isl": ("sat", "peer")}
    links: dict[str, LinkSpec] = {}
    for lname in list(t.data):
        if lname not in _TEMPLATES:
            raise ConfigError(
                f"unknown link template; a constellation has {', '.join(_TEMPLATES)}",
                key=t.path(lname),
            )
        raw = _Table(t.raw(lname), t.path(lname))
        for forbidden in _FORBIDDEN_LINK_KEYS:
            if raw.has(forbidden):
                raise ConfigError(
                    "set by the constellation's geometry, not by the scenario",
                    key=raw.path(forbidden),
                )
        merged = dict(with_profile(raw, available))
        for forbidden in ("propagation", "pass", "outages"):
            merged.pop(forbidden, None)  # a profile's geometry is the chain scenario's
        merged["from"], merged["to"] = ends[lname]
        # a placeholder the hop builder replaces with the geometry's delay and windows
        merged["propagation"] = {"model": "fixed", "delay_s": 0.0}
        links[lname] = _parse_direction(
            _Table(merged, raw.key, "links.<link>"), nodes=nodes, link_name=lname,
            profile_mode=False,
        )
    t.done()
    missing = [n for n in _TEMPLATES if n not in links]
    if missing:
        raise ConfigError(f"missing link template(s): {', '.join(missing)}", key="links")
    return links


def _parse_routing(t: _Table | None) -> RoutingSpec:
    d = RoutingSpec()
    if t is None:
        return d
    spec = RoutingSpec(
        policy=t.get("policy"),
        compute=t.get("compute"),
        downlink=t.get("downlink"),
        backhaul_km_s=t.get("backhaul_km_s"),
        plan_step_s=t.get("plan_step_s"),
        segment_s=t.get("segment_s"),
    )
    t.done()
    return spec


def _parse_traffic(t: _Table | None) -> TrafficSpec:
    d = TrafficSpec()
    if t is None:
        return d
    prompts = t.get("prompts")
    spec = TrafficSpec(
        users_per_station=t.get("users_per_station"),
        rate_per_user_per_h=t.get("rate_per_user_per_h"),
        prompts=tuple(prompts),
        max_tokens=t.get("max_tokens"),
        temperature=t.get("temperature"),
        timeout_s=t.get("timeout_s"),
    )
    t.done()
    return spec
