"""Scenario files: TOML (``tomllib``) -> validated dataclasses -> link directions.

A bad file raises :class:`~linkstack.errors.ConfigError` whose ``key`` names the
offending setting, e.g. ``links.uplink.ber`` (unknown keys, wrong types and
out-of-range values alike).  :func:`apply_overrides` applies ``KEY=VALUE`` settings
(the CLI's ``--set``) to the raw dict before validation.

Every key's type, default and bounds are declared once in :mod:`linkstack.sims.keys`, which
the getters read (``_Table.get``) and ``specs/scenario-keys.md`` shows. Overview (every
table refuses keys not listed)::

    [scenario]          name (str), description (str), seed (int >= 0), duration_s (> 0)
    [nodes.<node>]      kind = "ground_station" | "satellite"
                        altitude_km (satellite, > 0)
                        min_elevation_deg (ground station, [0, 90), default 10)
                        store_octets (>= 0, default: unlimited): the node's CFDP filestore
                        (a file that does not fit is refused at its Metadata PDU)
    [profiles.<name>]   amends / defines a link profile (same keys as a link, minus
                        from / to / profile); see linkstack.sims.profiles
    [links.<name>]      ONE direction of a link, from node ``from`` to node ``to``:
      from, to          node names (required)
      profile           profile whose keys this table overrides (optional)
      rate_bps          bit rate, > 0 (required, here or in the profile)
      ber               independent bit error rate, [0, 0.5] (default 0)
      erasure           unit erasure probability, [0, 1] (default 0)
      queue_capacity    units waiting for the transmitter, int >= 1 (default unbounded)
      queue_policy      "block" | "drop" (default "block")
      deliver_lost      hand lost units to the receiver as erased deliveries (default true)
      [pass]            LEO pass geometry (geometry.LeoPass): altitude_km and
                        min_elevation_deg (default: from the nodes), cross_track_deg (0),
                        first_aos_s (0), period_s (default: the orbital period)
      [propagation]     model = "fixed" (delay_s) | "distance" (distance_km)
                        | "slant" (elevation_deg, altitude_km) | "chord" (separation_deg,
                        altitude_km, min_grazing_km = 0) | "pass" (uses [pass]); altitude_km
                        defaults to the satellite node's.  Required for a link.
      [ge]              Gilbert–Elliott burst channel, per bit (channel.GilbertElliott):
                        model = "gilbert-elliott" (default) | "none"; ONE of the pairs
                        (p_gb, p_bg) | (mean_good_bits, mean_bad_bits) |
                        (mean_good_s, mean_bad_s); ber_good (0), ber_bad (0.5)
      [outages]         model = "none" | "windows" (visible = [[aos_s, los_s], ...])
                        | "down" (intervals = [[start_s, end_s], ...])
                        | "periodic" (first_start_s, period_s, duration_s)
                        | "pass" (the windows of [pass])
                        | "pointing" (losses = [[start_s, duration_s], ...],
                          reacquisition_s, rate_per_hour, mean_duration_s, stream)
      [reorder]         fraction [0, 1], mean_delay_s > 0
      [duplicate]       fraction [0, 1] of the units received a second time, mean_delay_s
                        >= 0 (mean extra delay of the copy; 0: right behind the original)
      [stack]           per-hop stack settings, checked as plain values here and
                        interpreted by the stack: frame = "tc" | "tm" | "aos" | "uslp",
                        frame_length (int; <= 1024 for TC, 2048 for TM, 65536 for USLP),
                        coding (chain name, e.g. "tm-rs-255-223-i5", "tc-bch"), arq
                        ("cop-1" over tc or uslp frames, its return tm or uslp; "sr" over
                        uslp; the round trip takes tc -> cop-1, uslp -> sr when absent),
                        vcid (0..63), ocf (bool),
                        sdls (the SA that secures this direction: its name or SPI in the
                        [security] SA file; needs [security]),
                        [stack.arq_params] (str / int / float / bool values)
    [security]          where SDLS (CCSDS 355.0-B-2) finds its SAs and keys — never the keys:
      sa_file           the SA file (TOML, linkstack.sdls.config); a relative path is taken
                        from the scenario file's folder (a shipped scenario's: the package's
                        sims/scenarios), or from the working directory when it comes from
                        --set or a scenario built in memory (required)
      key_file          the key file (TOML, private to its owner: linkstack.sdls.keys; a
                        relative path as sa_file); if absent, the path in the environment
                        variable LINKSTACK_SDLS_KEY_FILE, else the SA file's own key_file
                        setting. The public test keys shipped in sims/scenarios/sdls
                        (*-test-keys.toml) are read through a private copy
                        (:func:`private_key_file`)

Merging a link with its profile: key by key; a sub-table whose ``model`` differs
from the profile's replaces it; in ``[ge]`` a link giving one pair of the three
forms drops the profile's other forms.  Two directions between the same two nodes
form one full-duplex :class:`~linkstack.sims.link.Link`.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from linkstack.arq.params import ARQ_PARAMS
from linkstack.errors import ConfigError
from linkstack.sims import geometry
from linkstack.sims.channel import (
    DownIntervals,
    FixedDelay,
    GilbertElliott,
    PeriodicWindows,
    PointingLosses,
    Propagation,
    Reorder,
    Visibility,
)
from linkstack.sims.keys import TableSpec, table_spec
from linkstack.sims.link import BulkDelivery, Delivery, Direction, Link
from linkstack.sims.profiles import load_profiles
from linkstack.sims.taps import Tap

__all__ = [
    "KEY_FILE_ENV",
    "LinkSpec",
    "NodeSpec",
    "OutageSpec",
    "PassSpec",
    "PropagationSpec",
    "Scenario",
    "SecuritySpec",
    "StackSpec",
    "apply_overrides",
    "is_shipped_test_keys",
    "load_scenario",
    "parse_scenario",
    "private_key_file",
    "scenario_names",
    "unknown_key",
]

_MISSING: Any = object()
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_FRAME_MAX = {"tc": 1024, "tm": 2048, "aos": 65536, "uslp": 65536}
# TC: 10-bit frame length field (CCSDS 232.0-B-3 §4.1.2.7); TM: 2048 octets (132.0-B-3
# §4.1.1); USLP: 16-bit frame length field (732.1-B-2).  AOS frames are fixed per physical
# channel; the stack checks the exact header overheads.
_GE_FORMS = (("p_gb", "p_bg"), ("mean_good_bits", "mean_bad_bits"), ("mean_good_s", "mean_bad_s"))
KEY_FILE_ENV = "LINKSTACK_SDLS_KEY_FILE"
"""Environment variable naming the SDLS key file when ``[security]`` gives no ``key_file``."""


# --------------------------------------------------------------------------------------
# Reading tables
# --------------------------------------------------------------------------------------


class _Table:
    """One TOML table: typed getters that name the key, and a check for unknown keys.

    ``spec`` is the table's declaration in :mod:`linkstack.sims.keys`; :meth:`get` reads a
    key with the type, default and bounds declared there, and :meth:`table` passes each
    sub-table its own declaration.
    """

    def __init__(self, data: Any, key: str, spec: TableSpec | str | None = None) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"must be a table, not {_kind(data)}", key=key)
        self.data = data
        self.key = key
        self.used: set[str] = set()
        self.spec = table_spec(spec) if isinstance(spec, str) else spec

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise ConfigError("required key is missing", key=self.path(name))
        return default

    def number(self, name: str, default: Any = _MISSING, *, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Any:
        value = self.raw(name, default)
        if value is default and name not in self.data:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"must be a number, not {_kind(value)}", key=self.path(name))
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError("must be finite", key=self.path(name))
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise ConfigError(f"{value!r} must be {'>' if lo_open else '>='} {lo!r}",
                              key=self.path(name))
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise ConfigError(f"{value!r} must be {'<' if hi_open else '<='} {hi!r}",
                              key=self.path(name))
        return value

    def integer(self, name: str, default: Any = _MISSING, *, lo: int | None = None,
                hi: int | None = None) -> Any:
        value = self.raw(name, default)
        if value is default and name not in self.data:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"must be an integer, not {_kind(value)}", key=self.path(name))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            reason = (f"{value} must be >= {lo}" if hi is None
                      else f"{value} must be <= {hi}" if lo is None
                      else f"{value} is outside {lo}..{hi}")
            raise ConfigError(reason, key=self.path(name))
        return value

    def string(self, name: str, default: Any = _MISSING, *,
               choices: Iterable[str] | None = None, pattern: re.Pattern[str] | None = None
               ) -> Any:
        value = self.raw(name, default)
        if value is default and name not in self.data:
            return value
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, not {_kind(value)}", key=self.path(name))
        if choices is not None and value not in choices:
            raise ConfigError(f"{value!r} is not one of {', '.join(map(repr, choices))}",
                              key=self.path(name))
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{value!r} is not a valid name", key=self.path(name))
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value is default and name not in self.data:
            return value
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, not {_kind(value)}", key=self.path(name))
        return value

    def table(self, name: str, spec: str | None = None) -> _Table | None:
        """Sub-table ``name`` (None if absent), with its key table: ``spec``, else the one
        this table's declaration names."""
        if name not in self.data:
            self.used.add(name)
            return None
        if spec is None and self.spec is not None:
            spec = self.spec.key(name).table
        return _Table(self.raw(name), self.path(name), spec)

    def get(self, name: str, default: Any = _MISSING, **bounds: Any) -> Any:
        """Key ``name`` as :mod:`linkstack.sims.keys` declares it for this table: its type,
        its default (``default`` replaces it) and its bounds (``bounds`` narrow them, where
        another key bounds this one)."""
        assert self.spec is not None, f"{self.key}: no key table"
        k = self.spec.key(name)
        if default is _MISSING:
            default = _MISSING if k.required else k.default
        kw = {**k.bounds(), **bounds}
        if k.kind == "number":
            return self.number(name, default, **kw)
        if k.kind == "integer":
            return self.integer(name, default, **kw)
        if k.kind == "string":
            return self.string(name, default, choices=k.choices,
                               pattern=_NAME if k.name_like else None)
        if k.kind == "boolean":
            return self.boolean(name, default)
        if k.kind == "pairs":
            return self.pairs(name, default)
        if k.kind == "strings":
            value = self.raw(name, list(default) if isinstance(default, tuple) else default)
            if (not isinstance(value, list) or not value
                    or not all(isinstance(x, str) and x for x in value)):
                raise ConfigError("must be a non-empty array of non-empty strings",
                                  key=self.path(name))
            return value
        return self.raw(name, default)

    def pairs(self, name: str, default: Any = _MISSING) -> list[tuple[float, float]]:
        value = self.raw(name, default)
        if value is default and name not in self.data:
            return value
        if not isinstance(value, list):
            raise ConfigError(f"must be an array of [a, b] pairs, not {_kind(value)}",
                              key=self.path(name))
        result = []
        for i, item in enumerate(value):
            if (not isinstance(item, list) or len(item) != 2
                    or any(isinstance(x, bool) or not isinstance(x, int | float)
                           or not math.isfinite(x) for x in item)):
                raise ConfigError(f"item {i} must be a pair of finite numbers [a, b]",
                                  key=self.path(name))
            result.append((float(item[0]), float(item[1])))
        return result

    def done(self, known: Iterable[str] = ()) -> None:
        """Refuse a key no getter read (``known``: more keys valid here, for suggestions)."""
        for name in self.data:
            if name not in self.used:
                raise unknown_key(name, {*self.used, *known}, key=self.path(name))


def unknown_key(name: str, known: Iterable[str], *, key: str) -> ConfigError:
    """The error of an unknown key ``name`` (``key`` its full path): "did you mean" the
    closest of ``known`` when one is close (:func:`difflib.get_close_matches`), else the list
    of the valid keys."""
    valid = sorted(k for k in known if isinstance(k, str))
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        return ConfigError(f"unknown key; did you mean {close[0]!r}?", key=key)
    return ConfigError(f"unknown key; valid here: {', '.join(valid) or 'none'}", key=key)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSpec:
    name: str
    kind: str
    altitude_km: float | None = None
    min_elevation_deg: float | None = None
    store_octets: int | None = None  # CFDP filestore capacity (None: unlimited)


@dataclass(frozen=True)
class PassSpec:
    altitude_km: float
    min_elevation_deg: float
    cross_track_deg: float = 0.0
    first_aos_s: float = 0.0
    period_s: float | None = None

    def leo_pass(self) -> geometry.LeoPass:
        return geometry.LeoPass(self.altitude_km, self.min_elevation_deg, self.cross_track_deg,
                                self.first_aos_s, self.period_s)


@dataclass(frozen=True)
class PropagationSpec:
    """``model`` and, except for ``pass``, the constant one-way delay it gives."""

    model: str
    delay_s: float = 0.0
    distance_km: float | None = None


@dataclass(frozen=True)
class OutageSpec:
    model: str = "none"
    intervals: tuple[tuple[float, float], ...] = ()
    first_start_s: float = 0.0
    period_s: float = 0.0
    duration_s: float = 0.0
    losses: tuple[tuple[float, float], ...] = ()
    reacquisition_s: float = 0.0
    rate_per_hour: float = 0.0
    mean_duration_s: float = 0.0
    stream: str | None = None


@dataclass(frozen=True)
class StackSpec:
    """Per-hop stack settings (plain values, interpreted by the stack)."""

    frame: str | None = None
    frame_length: int | None = None
    coding: str | None = None
    arq: str | None = None
    vcid: int | None = None
    ocf: bool | None = None
    arq_params: Mapping[str, int | float | bool] = field(default_factory=dict)
    """The keys of ``[stack.arq_params]``, checked (:data:`linkstack.arq.params.ARQ_PARAMS`)."""
    sdls: str | int | None = None
    """The SA securing this direction (its name or SPI in the ``[security]`` SA file)."""


@dataclass(frozen=True)
class SecuritySpec:
    """The ``[security]`` table: where the SDLS SAs and keys are (paths only, never keys).

    ``key_file`` None: the path in the environment variable :data:`KEY_FILE_ENV`, else the
    SA file's own ``key_file`` setting (:meth:`key_path`).
    """

    sa_file: str
    key_file: str | None = None

    def key_path(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key file to use: ``key_file``, else ``$LINKSTACK_SDLS_KEY_FILE``, else None
        (the SA file's own ``key_file`` setting, if any)."""
        if self.key_file is not None:
            return self.key_file
        env = os.environ if environ is None else environ
        return env.get(KEY_FILE_ENV) or None


@dataclass(frozen=True)
class DuplicateSpec:
    """Frame duplication of a link direction (see :class:`~linkstack.sims.link.Direction`)."""

    fraction: float
    mean_delay_s: float = 0.0


@dataclass(frozen=True)
class LinkSpec:
    """One validated link direction."""

    name: str
    source: str
    destination: str
    profile: str | None
    rate_bps: float
    ber: float
    erasure: float
    queue_capacity: int | None
    queue_policy: str
    deliver_lost: bool
    propagation: PropagationSpec
    pass_geometry: PassSpec | None
    ge: GilbertElliott | None
    outages: OutageSpec
    reorder: Reorder | None
    stack: StackSpec
    duplicate: DuplicateSpec | None = None

    def build_propagation(self) -> Propagation:
        if self.propagation.model == "pass":
            assert self.pass_geometry is not None
            return self.pass_geometry.leo_pass()
        return FixedDelay(self.propagation.delay_s)

    def build_visibility(self) -> Visibility | None:
        o = self.outages
        if o.model == "none":
            return None
        if o.model == "windows":
            return DownIntervals.from_visible(o.intervals)
        if o.model == "down":
            return DownIntervals(o.intervals)
        if o.model == "periodic":
            return PeriodicWindows(o.first_start_s, o.period_s, o.duration_s)
        if o.model == "pass":
            assert self.pass_geometry is not None
            leo = self.pass_geometry.leo_pass()
            return PeriodicWindows(leo.first_aos_s, leo.repeat_s, leo.duration_s)
        return PointingLosses(o.losses, reacquisition_s=o.reacquisition_s,
                              rate_per_s=o.rate_per_hour / 3600.0,
                              mean_duration_s=o.mean_duration_s, stream=o.stream)

    def build_direction(
        self,
        *,
        tap: Tap | None = None,
        on_delivery: Callable[[Delivery | BulkDelivery], object] | None = None,
        seed: int | None = None,
        propagation: Propagation | None = None,
        visibility: Visibility | None = None,
    ) -> Direction:
        """A fresh :class:`Direction` with this spec (fresh outage state too).

        ``propagation`` and ``visibility`` replace the spec's own geometry (a constellation
        gives each hop the delay and contact windows of its two nodes)."""
        return Direction(
            self.name, rate_bps=self.rate_bps,
            propagation=self.build_propagation() if propagation is None else propagation,
            ber=self.ber, erasure=self.erasure, ge=self.ge,
            visibility=self.build_visibility() if visibility is None else visibility,
            reorder=self.reorder, queue_capacity=self.queue_capacity,
            queue_policy=self.queue_policy, deliver_lost=self.deliver_lost,
            duplicate=self.duplicate.fraction if self.duplicate else 0.0,
            duplicate_delay_s=self.duplicate.mean_delay_s if self.duplicate else 0.0,
            on_delivery=on_delivery, tap=tap, seed=seed,
        )


@dataclass(frozen=True)
class RunSpec:
    """The ``[run]`` table: how ``linkstack run`` drives the round trip (all optional).

    ``prompts`` are sent one after the other; ``compute`` names the compute satellite (default:
    the satellite farthest from the ground station); ``flight_profile`` scales the measured
    inference time (``linkstack.payload.backend.FLIGHT_PROFILES``); ``coding_rate_ground_bps``
    and ``coding_rate_satellite_bps`` model how fast each node's codecs run (0 = free);
    ``start_s`` is the virtual time of the first prompt (inside a contact window);
    ``stream_tokens`` / ``stream_interval_s`` make the endpoint stream partial results every
    that many tokens / seconds (0 and 0: the Result only; see
    :class:`linkstack.payload.endpoint.EndpointConfig`).
    """

    prompts: tuple[str, ...] = (
        "What is the capital of France?",
        "Name the largest ocean on Earth.",
        "What gas do plants absorb from the air?",
        "How many days are in a leap year?",
        "What is the boiling point of water in Celsius?",
    )
    max_tokens: int = 24
    temperature: float = 0.0
    flight_profile: str = "this-machine"
    compute: str | None = None
    start_s: float = 10.0
    prompt_gap_s: float = 1.0
    timeout_s: float = 900.0
    coding_rate_ground_bps: float = 8e9
    coding_rate_satellite_bps: float = 4e8
    stream_tokens: int = 8
    stream_interval_s: float = 0.5


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    duration_s: float
    nodes: Mapping[str, NodeSpec]
    links: Mapping[str, LinkSpec]
    run: RunSpec = field(default_factory=RunSpec)
    security: SecuritySpec | None = None

    def build_directions(
        self,
        *,
        taps: Mapping[str, Tap] | None = None,
        on_delivery: Mapping[str, Callable[[Delivery | BulkDelivery], object]] | None = None,
    ) -> dict[str, Direction]:
        """One :class:`Direction` per ``[links.<name>]``, keyed by name."""
        taps = taps or {}
        on_delivery = on_delivery or {}
        return {
            name: spec.build_direction(tap=taps.get(name), on_delivery=on_delivery.get(name))
            for name, spec in self.links.items()
        }

    def duplex_pairs(self) -> list[tuple[str, str | None]]:
        """Names of directions grouped by node pair: (a->b, b->a or None)."""
        pairs: list[tuple[str, str | None]] = []
        taken: set[str] = set()
        for name, spec in self.links.items():
            if name in taken:
                continue
            taken.add(name)
            back = next((other for other, s in self.links.items() if other not in taken
                         and s.source == spec.destination and s.destination == spec.source),
                        None)
            if back is not None:
                taken.add(back)
            pairs.append((name, back))
        return pairs

    def build_links(self, directions: Mapping[str, Direction]) -> list[Link]:
        """Full-duplex :class:`Link` objects for the node pairs with both directions."""
        links = []
        for forward, back in self.duplex_pairs():
            if back is None:
                continue
            spec = self.links[forward]
            links.append(Link(f"{spec.source}-{spec.destination}", spec.source,
                              spec.destination, directions[forward], directions[back]))
        return links


# --------------------------------------------------------------------------------------
# Merging, overrides, loading
# --------------------------------------------------------------------------------------


def _merge_tables(base: dict[str, Any], top: dict[str, Any], *, ge: bool = False
                  ) -> dict[str, Any]:
    """``top`` over ``base`` key by key (see the module docstring)."""
    if "model" in top and "model" in base and top["model"] != base["model"]:
        return copy.deepcopy(top)
    result = copy.deepcopy(base)
    if ge:
        given = [form for form in _GE_FORMS if any(k in top for k in form)]
        if given:
            for form in _GE_FORMS:
                if form not in given:
                    for k in form:
                        result.pop(k, None)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge_tables(result[key], value, ge=(key == "ge"))
        else:
            result[key] = copy.deepcopy(value)
    return result


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string: links.isl.profile=laser-isl


def apply_overrides(scenario: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of the raw ``scenario`` dict with ``KEY=VALUE`` settings applied.

    ``KEY`` is a dotted path (``links.uplink.ber``); ``VALUE`` is parsed as a TOML value
    (``1e-6``, ``true``, ``"x"``, ``[[0, 60]]``), or taken as a string if it is not one.
    Tables on the way are created.  The result still has to pass :func:`parse_scenario`.
    """
    result = copy.deepcopy(dict(scenario))
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("an override must look like KEY=VALUE", key=item)
        parts = key.split(".")
        if any(not part.strip() for part in parts):
            raise ConfigError("empty part in a dotted key", key=key)
        parts = [part.strip() for part in parts]
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError("is not a table", key=".".join(parts[: i + 1]))
            node = child
        node[parts[-1]] = _parse_value(text.strip())
    return result


def scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``sims/scenarios`` (``default``, ...)."""
    folder = resources.files("linkstack.sims").joinpath("scenarios")
    return sorted(
        entry.name[: -len(".toml")] for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.name != "profiles.toml"
    )


def _shipped_folder() -> Path | None:
    """The folder of the shipped scenarios, if the package lives in a real directory."""
    folder = resources.files("linkstack.sims").joinpath("scenarios")
    return folder if isinstance(folder, Path) else None


TEST_KEYS_SUFFIX = "-test-keys.toml"
"""Name ending of the public test key files shipped in ``sims/scenarios/sdls``."""


def _anchor_security_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative ``[security]`` paths of a scenario file, taken from the file's folder."""
    table = data.get("security")
    if isinstance(table, dict):
        for name in ("sa_file", "key_file"):
            value = table.get(name)
            if (isinstance(value, str) and value.strip() and not value.startswith("~")
                    and not Path(value).is_absolute()):
                table[name] = str(folder / value)
    return data


def read_scenario_source(source: str | Path) -> dict[str, Any]:
    """The raw dict (as ``tomllib`` reads it) of a scenario file (a path) or of a shipped
    scenario (a name from ``sims/scenarios/``).

    Relative paths of its ``[security]`` table come back taken from the file's folder.
    """
    path = Path(source)
    folder: Path | None
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the scenario: {exc.strerror}",
                              key=str(source)) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 text (TOML must be): octet {exc.start}",
                              key=str(source)) from None
        folder = path.absolute().parent
    else:
        entry = resources.files("linkstack.sims").joinpath("scenarios", f"{source}.toml")
        if not entry.is_file():
            raise ConfigError(f"no such scenario; shipped: {', '.join(scenario_names())}",
                              key=str(source))
        text = entry.read_text(encoding="utf-8")
        folder = _shipped_folder()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", key=str(source)) from None
    return data if folder is None else _anchor_security_paths(data, folder)


def is_shipped_test_keys(path: str | os.PathLike[str]) -> bool:
    """True iff ``path`` is one of the public test key files shipped with linkstack
    (``sims/scenarios/sdls/*-test-keys.toml`` of the installed package)."""
    folder = _shipped_folder()
    if folder is None:
        return False
    try:
        real = Path(path).resolve(strict=True)
        return (real.name.endswith(TEST_KEYS_SUFFIX)
                and real.parent == (folder / "sdls").resolve(strict=True))
    except OSError:
        return False


@contextlib.contextmanager
def private_key_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The key file to load: ``path`` itself, or a private copy of a shipped test key file.

    The key-file check (:func:`linkstack.sdls.keys.load_key_file`) refuses a file that group
    or others may read, and neither git nor a wheel keeps mode 0600: the public test keys of
    the shipped examples (:func:`is_shipped_test_keys`) arrive readable by all. For those,
    and only those, this yields a fresh temporary copy created with mode 0600, and deletes
    it when the block ends (the keys are loaded by then). Any other file is yielded as it
    is, so its permissions are checked as usual.
    """
    if not is_shipped_test_keys(path):
        yield Path(path)
        return
    fd, name = tempfile.mkstemp(prefix="linkstack-test-keys-", suffix=".toml")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(Path(path).read_bytes())
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def load_scenario(source: str | Path = "default", overrides: Iterable[str] = ()) -> Scenario:
    """Load a scenario file (a path, or the name of a shipped scenario), apply overrides."""
    return parse_scenario(apply_overrides(read_scenario_source(source), overrides))


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def parse_profiles(local: _Table | None, profiles: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The profiles a scenario may name: ``profiles`` (default: the built-in ones) amended by
    the scenario's own ``[profiles]`` tables (``local``), each validated."""
    available = copy.deepcopy(dict(load_profiles() if profiles is None else profiles))
    if local is not None:
        for pname in list(local.data):
            table = _Table(local.raw(pname), local.path(pname))
            base = available.get(pname, {})
            available[pname] = _merge_tables(base, table.data) if base else table.data
        local.done()
    for pname, ptable in available.items():
        _parse_direction(_Table(ptable, f"profiles.{pname}", "links.<link>"), nodes=None,
                         link_name=None, profile_mode=True)
    return available


def with_profile(raw: _Table, available: Mapping[str, Any]) -> dict[str, Any]:
    """A link table with the profile it names (``profile = "..."``) merged under it."""
    pname = raw.string("profile", None)
    if pname is None:
        return raw.data
    if pname not in available:
        raise ConfigError(f"unknown profile {pname!r}; known: "
                          f"{', '.join(sorted(available))}", key=raw.path("profile"))
    return _merge_tables(available[pname], raw.data)


def parse_meta(top: _Table) -> tuple[str, str, int, float]:
    """The ``[scenario]`` table every scenario has: name, description, seed, duration_s."""
    meta = top.table("scenario", "scenario")
    if meta is None:
        raise ConfigError("required table is missing", key="scenario")
    name = meta.get("name")
    description = meta.get("description")
    seed = meta.get("seed")
    duration_s = meta.get("duration_s")
    meta.done()
    return name, description, seed, duration_s


def parse_scenario(data: Mapping[str, Any], *, profiles: Mapping[str, Any] | None = None
                   ) -> Scenario:
    """Validate a raw scenario dict (as read by ``tomllib``) into a :class:`Scenario`.

    ``profiles`` defaults to the built-in profiles; the scenario's own ``[profiles]``
    tables amend them.
    """
    top = _Table(dict(data), "")
    name, description, seed, duration_s = parse_meta(top)

    available = parse_profiles(top.table("profiles"), profiles)

    nodes_table = top.table("nodes")
    if nodes_table is None:
        raise ConfigError("required table is missing", key="nodes")
    nodes: dict[str, NodeSpec] = {}
    for nname in list(nodes_table.data):
        if not _NAME.match(nname):
            raise ConfigError("node names are letters, digits, '-' and '_'",
                              key=nodes_table.path(nname))
        nodes[nname] = _parse_node(nname, _Table(nodes_table.raw(nname), nodes_table.path(nname),
                                                 "nodes.<node>"))
    nodes_table.done()

    links_table = top.table("links")
    if links_table is None:
        raise ConfigError("required table is missing", key="links")
    links: dict[str, LinkSpec] = {}
    for lname in list(links_table.data):
        if not _NAME.match(lname):
            raise ConfigError("link names are letters, digits, '-' and '_'",
                              key=links_table.path(lname))
        raw = _Table(links_table.raw(lname), links_table.path(lname))
        merged = with_profile(raw, available)
        links[lname] = _parse_direction(_Table(merged, raw.key, "links.<link>"), nodes=nodes,
                                        link_name=lname, profile_mode=False)
    links_table.done()
    run = _parse_run(top.table("run", "run"), nodes)
    security = _parse_security(top.table("security", "security"))
    top.done()
    if not links:
        raise ConfigError("a scenario needs at least one link", key="links")
    if security is None:
        for spec in links.values():
            if spec.stack.sdls is not None:
                raise ConfigError("needs a [security] table naming the SA file (sa_file)",
                                  key=f"links.{spec.name}.stack.sdls")
    return Scenario(name, description, seed, duration_s, nodes, links, run, security)


def _parse_security(t: _Table | None) -> SecuritySpec | None:
    if t is None:
        return None
    sa_file = t.get("sa_file")
    key_file = t.get("key_file")
    t.done()
    for name, value in (("sa_file", sa_file), ("key_file", key_file)):
        if value is not None and not value.strip():
            raise ConfigError("must be a file path", key=t.path(name))
    return SecuritySpec(sa_file, key_file)


def _parse_run(t: _Table | None, nodes: Mapping[str, NodeSpec]) -> RunSpec:
    if t is None:
        return RunSpec()
    prompts = t.get("prompts")
    compute = t.get("compute")
    if compute is not None and compute not in nodes:
        raise ConfigError(f"unknown node {compute!r}", key=t.path("compute"))
    spec = RunSpec(
        prompts=tuple(prompts),
        max_tokens=t.get("max_tokens"),
        temperature=t.get("temperature"),
        flight_profile=t.get("flight_profile"),
        compute=compute,
        start_s=t.get("start_s"),
        prompt_gap_s=t.get("prompt_gap_s"),
        timeout_s=t.get("timeout_s"),
        coding_rate_ground_bps=t.get("coding_rate_ground_bps"),
        coding_rate_satellite_bps=t.get("coding_rate_satellite_bps"),
        stream_tokens=t.get("stream_tokens"),
        stream_interval_s=t.get("stream_interval_s"),
    )
    t.done()
    return spec


def _parse_node(name: str, t: _Table) -> NodeSpec:
    kind = t.get("kind")
    store = t.get("store_octets")
    if kind == "satellite":
        altitude = t.get("altitude_km")
        node = NodeSpec(name, kind, altitude_km=altitude, store_octets=store)
    else:
        elevation = t.get("min_elevation_deg")
        node = NodeSpec(name, kind, min_elevation_deg=elevation, store_octets=store)
    t.done()
    return node


def _parse_direction(t: _Table, *, nodes: Mapping[str, NodeSpec] | None, link_name: str | None,
                     profile_mode: bool) -> Any:
    """Validate a link (or, with ``profile_mode``, a profile) table."""
    required = not profile_mode
    optional = None
    source = destination = None
    profile = None
    if not profile_mode:
        assert nodes is not None
        source = t.get("from")
        destination = t.get("to")
        for key, node in (("from", source), ("to", destination)):
            if node not in nodes:
                raise ConfigError(f"unknown node {node!r}; nodes: {', '.join(sorted(nodes))}",
                                  key=t.path(key))
        if source == destination:
            raise ConfigError("a link joins two different nodes", key=t.path("to"))
        profile = t.get("profile")

    rate = t.get("rate_bps", _MISSING if required else optional)
    ber = t.get("ber")
    erasure = t.get("erasure")
    capacity = t.get("queue_capacity")
    policy = t.get("queue_policy")
    deliver_lost = t.get("deliver_lost")

    endpoints = [] if nodes is None else [nodes[source], nodes[destination]]  # type: ignore[index]
    pass_spec = _parse_pass(t.table("pass"), endpoints, t.path("pass"))
    propagation = _parse_propagation(t.table("propagation"), endpoints, pass_spec, required,
                                     t.path("propagation"))
    ge = _parse_ge(t.table("ge"), rate)
    outages = _parse_outages(t.table("outages"), pass_spec, endpoints, t.path("outages"))
    reorder = _parse_reorder(t.table("reorder"))
    duplicate = _parse_duplicate(t.table("duplicate"))
    stack = _parse_stack(t.table("stack"))
    t.done()
    if profile_mode:
        return None
    assert link_name is not None and source is not None and destination is not None
    if outages.model == "pass" and pass_spec is None:
        pass_spec = _default_pass(endpoints, t.path("outages"))
    if propagation.model == "pass" and pass_spec is None:
        pass_spec = _default_pass(endpoints, t.path("propagation"))
    return LinkSpec(link_name, source, destination, profile, rate, ber, erasure, capacity,
                    policy, deliver_lost, propagation, pass_spec, ge, outages, reorder, stack,
                    duplicate)


def _satellite_altitude(endpoints: list[NodeSpec], key: str) -> float:
    altitudes = {n.altitude_km for n in endpoints if n.kind == "satellite"}
    if len(altitudes) != 1:
        raise ConfigError("give altitude_km: the link's nodes do not define one satellite "
                          "altitude", key=key)
    return float(altitudes.pop())  # type: ignore[arg-type]


def _ground_elevation(endpoints: list[NodeSpec], key: str) -> float:
    grounds = [n for n in endpoints if n.kind == "ground_station"]
    if len(grounds) != 1:
        raise ConfigError("a pass needs one ground station among the link's nodes "
                          "(or give min_elevation_deg)", key=key)
    return float(grounds[0].min_elevation_deg)  # type: ignore[arg-type]


def _default_pass(endpoints: list[NodeSpec], key: str) -> PassSpec:
    spec = PassSpec(_satellite_altitude(endpoints, key + ".model"),
                    _ground_elevation(endpoints, key + ".model"))
    spec.leo_pass()
    return spec


def _parse_pass(t: _Table | None, endpoints: list[NodeSpec], key: str) -> PassSpec | None:
    if t is None:
        return None
    altitude = t.get("altitude_km")
    elevation = t.get("min_elevation_deg")
    cross = t.get("cross_track_deg")
    first = t.get("first_aos_s")
    period = t.get("period_s")
    t.done()
    if not endpoints:  # profile: nothing to resolve
        return None
    if altitude is None:
        altitude = _satellite_altitude(endpoints, t.path("altitude_km"))
    if elevation is None:
        elevation = _ground_elevation(endpoints, t.path("min_elevation_deg"))
    spec = PassSpec(altitude, elevation, cross, first, period)
    try:
        spec.leo_pass()
    except ValueError as exc:
        bad = "period_s" if "period" in str(exc) else "cross_track_deg"
        raise ConfigError(str(exc), key=t.path(bad)) from None
    return spec


def _parse_propagation(t: _Table | None, endpoints: list[NodeSpec], pass_spec: PassSpec | None,
                       required: bool, key: str) -> PropagationSpec:
    if t is None:
        if required:
            raise ConfigError("required table is missing", key=key)
        return PropagationSpec("fixed")
    model = t.get("model")
    spec = PropagationSpec(model)
    if model == "fixed":
        spec = PropagationSpec(model, t.get("delay_s"))
    elif model == "distance":
        distance = t.get("distance_km")
        spec = PropagationSpec(model, geometry.light_time_s(distance), distance)
    elif model == "slant":
        elevation = t.get("elevation_deg")
        altitude = t.get("altitude_km")
        if endpoints:
            if altitude is None:
                altitude = _satellite_altitude(endpoints, t.path("altitude_km"))
            distance = geometry.slant_range_km(elevation, altitude)
            spec = PropagationSpec(model, geometry.light_time_s(distance), distance)
    elif model == "chord":
        separation = t.get("separation_deg")
        altitude = t.get("altitude_km")
        grazing = t.get("min_grazing_km")
        if endpoints:
            if altitude is None:
                altitude = _satellite_altitude(endpoints, t.path("altitude_km"))
            try:
                distance = geometry.isl_chord_km(altitude, separation, min_grazing_km=grazing)
            except ValueError as exc:
                raise ConfigError(str(exc), key=t.path("separation_deg")) from None
            spec = PropagationSpec(model, geometry.light_time_s(distance), distance)
    t.done()
    return spec


def _parse_ge(t: _Table | None, rate_bps: float | None) -> GilbertElliott | None:
    if t is None:
        return None
    model = t.get("model")
    ber_good = t.get("ber_good")
    ber_bad = t.get("ber_bad")
    given = [form for form in _GE_FORMS if any(t.has(k) for k in form)]
    values: dict[str, float] = {}
    for a, b in _GE_FORMS:
        for k in (a, b):
            if t.has(k):
                values[k] = t.get(k)
    t.done()
    if model == "none":
        return None
    if len(given) != 1:
        raise ConfigError("give exactly one of (p_gb, p_bg), (mean_good_bits, mean_bad_bits), "
                          "(mean_good_s, mean_bad_s)", key=t.key)
    a, b = given[0]
    for k in (a, b):
        if k not in values:
            raise ConfigError(f"required with {a if k == b else b}", key=t.path(k))
    if a == "p_gb":
        return GilbertElliott(values[a], values[b], ber_good, ber_bad)
    if a == "mean_good_bits":
        return GilbertElliott.from_mean_bits(values[a], values[b], ber_good=ber_good,
                                             ber_bad=ber_bad)
    if rate_bps is None:  # a profile without a rate: checked again once merged
        return None
    good_bits, bad_bits = values[a] * rate_bps, values[b] * rate_bps
    for k, bits in ((a, good_bits), (b, bad_bits)):
        if bits < 1.0:
            raise ConfigError(f"shorter than one bit at {rate_bps} bit/s", key=t.path(k))
    return GilbertElliott.from_mean_bits(good_bits, bad_bits, ber_good=ber_good, ber_bad=ber_bad)


def _parse_outages(t: _Table | None, pass_spec: PassSpec | None, endpoints: list[NodeSpec],
                   key: str) -> OutageSpec:
    if t is None:
        return OutageSpec()
    model = t.get("model")
    spec = OutageSpec(model)
    if model in ("windows", "down"):
        name = "visible" if model == "windows" else "intervals"
        intervals = t.get(name)
        for i, (a, b) in enumerate(intervals):
            if b < a:
                raise ConfigError(f"item {i} ends before it starts", key=t.path(name))
        spec = OutageSpec(model, intervals=tuple(intervals))
    elif model == "periodic":
        first = t.get("first_start_s")
        period = t.get("period_s")
        duration = t.get("duration_s")
        if duration > period:
            raise ConfigError("a window cannot be longer than the period",
                              key=t.path("duration_s"))
        spec = OutageSpec(model, first_start_s=first, period_s=period, duration_s=duration)
    elif model == "pointing":
        losses = t.get("losses")
        for i, (_, duration) in enumerate(losses):
            if duration < 0:
                raise ConfigError(f"item {i} has a negative duration", key=t.path("losses"))
        reacquisition = t.get("reacquisition_s")
        rate = t.get("rate_per_hour")
        mean = t.get("mean_duration_s")
        stream = t.get("stream")
        if rate > 0 and mean <= 0:
            raise ConfigError("random losses need mean_duration_s > 0",
                              key=t.path("mean_duration_s"))
        spec = OutageSpec(model, losses=tuple(losses), reacquisition_s=reacquisition,
                          rate_per_hour=rate, mean_duration_s=mean, stream=stream)
    t.done()
    return spec


def _parse_reorder(t: _Table | None) -> Reorder | None:
    if t is None:
        return None
    fraction = t.get("fraction")
    mean = t.get("mean_delay_s")
    t.done()
    return Reorder(fraction, mean) if fraction > 0 else None


def _parse_duplicate(t: _Table | None) -> DuplicateSpec | None:
    if t is None:
        return None
    fraction = t.get("fraction")
    mean = t.get("mean_delay_s")
    t.done()
    return DuplicateSpec(fraction, mean) if fraction > 0 else None


def _parse_stack(t: _Table | None) -> StackSpec:
    if t is None:
        return StackSpec()
    frame = t.get("frame")
    length = t.get("frame_length", hi=_FRAME_MAX.get(frame or "", 65536))
    coding = t.get("coding")
    arq = t.get("arq")
    vcid = t.get("vcid")
    ocf = t.get("ocf")
    sdls = t.get("sdls")
    if sdls is not None and (
            isinstance(sdls, bool) or not isinstance(sdls, int | str)
            or (isinstance(sdls, int) and not 0 <= sdls <= 0xFFFF)
            or (isinstance(sdls, str) and not (sdls.isdigit() or _NAME.match(sdls)))):
        raise ConfigError(f"{sdls!r} is neither an SA name nor an SPI (0..65535)",
                          key=t.path("sdls"))
    params = _parse_arq_params(t.table("arq_params"))
    t.done()
    return StackSpec(frame, length, coding, arq, vcid, ocf, params, sdls)


def _parse_arq_params(t: _Table | None) -> dict[str, int | float | bool]:
    """``[stack.arq_params]``: each key one of :data:`~linkstack.arq.params.ARQ_PARAMS`, of
    its type and in its range (a float is no integer: ``window_width = 2.5`` is refused)."""
    if t is None:
        return {}
    params: dict[str, int | float | bool] = {}
    for name in list(t.data):
        spec = ARQ_PARAMS.get(name)
        if spec is None:
            raise unknown_key(name, ARQ_PARAMS, key=t.path(name))
        if spec.kind == "int":
            lo = None if spec.lo is None else int(spec.lo)
            hi = None if spec.hi is None else int(spec.hi)
            params[name] = t.integer(name, lo=lo, hi=hi)
        elif spec.kind == "float":
            params[name] = t.number(name, lo=spec.lo, hi=spec.hi, lo_open=spec.lo_open)
        else:
            params[name] = t.boolean(name)
    t.done()
    return params
