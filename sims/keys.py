"""The keys of a scenario file: one table that the parsers read and the reference page shows.

Every setting a scenario file may hold is declared here once — its type, default, allowed
values and meaning. :mod:`linkstack.sims.scenario` (chain scenarios) and
:mod:`linkstack.sims.constellation.scenario` read each key through
``_Table.get(name)``, which takes the type, the default and the bounds from this table (a
parser can only narrow them where one key bounds another, e.g. ``planes`` ≤ ``total``), and
``linkstack specs build`` renders the same table as ``specs/scenario-keys.md``. A key the
parser reads must be declared here (``get`` raises ``KeyError`` otherwise) and a test parses
scenarios that reach every branch to check that every key declared here is read.

Table paths use ``<name>`` for a name the scenario chooses (``links.<link>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHAIN_TABLES",
    "CONSTELLATION_TABLES",
    "REQUIRED",
    "Key",
    "TableSpec",
    "table_spec",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a key that must be given."""


@dataclass(frozen=True)
class Key:
    """One key of a scenario table.

    Attributes:
        name: the key as written in the file.
        kind: ``number`` (int or float), ``integer``, ``string``, ``boolean``, ``pairs``
            (an array of ``[a, b]`` number pairs), ``strings`` (a non-empty array of
            non-empty strings), ``table`` (a sub-table, :attr:`table`), or ``value`` (checked
            by the parser: see :attr:`help`).
        help: what it means (one or two sentences, shown on the reference page).
        default: the value when absent; :data:`REQUIRED`; or None (absent: see
            :attr:`shown_default`).
        lo, hi, lo_open, hi_open: numeric bounds (open: the bound itself is excluded).
        choices: the allowed strings.
        name_like: a string must be a name (letters, digits, ``-``, ``_``).
        shown_default: how the page shows a default the parser works out (``from the
            nodes``), instead of ``default``.
        when: the condition under which the key applies (``model = "fixed"``), if any.
        table: for ``kind = "table"``, the path of its :class:`TableSpec`.
    """

    name: str
    kind: str
    help: str
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] | None = None
    name_like: bool = False
    shown_default: str | None = None
    when: str | None = None
    table: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def bounds(self) -> dict[str, Any]:
        """The numeric bounds as the parser's getters take them."""
        out: dict[str, Any] = {}
        if self.lo is not None:
            out["lo"] = int(self.lo) if self.kind == "integer" else self.lo
            if self.kind == "number":
                out["lo_open"] = self.lo_open
        if self.hi is not None:
            out["hi"] = int(self.hi) if self.kind == "integer" else self.hi
            if self.kind == "number":
                out["hi_open"] = self.hi_open
        return out


@dataclass(frozen=True)
class TableSpec:
    """The keys of one table (``path`` with ``<name>`` placeholders) and what it is for."""

    path: str
    help: str
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key:
        for k in self.keys:
            if k.name == name:
                return k
        raise KeyError(f"{self.path}.{name} is not declared in linkstack.sims.keys")

    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


def _n(name: str, help: str, default: Any = None, **kw: Any) -> Key:
    return Key(name, "number", help, default, **kw)


def _i(name: str, help: str, default: Any = None, **kw: Any) -> Key:
    return Key(name, "integer", help, default, **kw)


def _s(name: str, help: str, default: Any = None, **kw: Any) -> Key:
    return Key(name, "string", help, default, **kw)


def _b(name: str, help: str, default: Any = None, **kw: Any) -> Key:
    return Key(name, "boolean", help, default, **kw)


def _t(name: str, table: str, help: str, **kw: Any) -> Key:
    return Key(name, "table", help, table=table, **kw)


_PROMPTS = (
    "What is the capital of France?",
    "Name the largest ocean on Earth.",
    "What gas do plants absorb from the air?",
    "How many days are in a leap year?",
    "What is the boiling point of water in Celsius?",
)

# ---------------------------------------------------------------------------------------------
# Chain scenarios (linkstack.sims.scenario)
# ---------------------------------------------------------------------------------------------

SCENARIO = TableSpec(
    "scenario",
    "What the scenario is; every scenario file has this table.",
    (
        _s("name", "Name shown in reports.", "unnamed"),
        _s("description", "One line on what it models.", ""),
        _i(
            "seed",
            "Seed of every random draw (channel errors, outages, arrivals).",
            0,
            lo=0,
            hi=2**63 - 1,
        ),
        _n(
            "duration_s",
            "Simulated time, seconds (constellations: the traffic's duration).",
            3600.0,
            lo=0.0,
            lo_open=True,
        ),
    ),
)

NODE = TableSpec(
    "nodes.<node>",
    "A node of the chain: a ground station or a satellite.",
    (
        _s("kind", "What the node is.", REQUIRED, choices=("ground_station", "satellite")),
        _n(
            "altitude_km",
            "Orbit altitude, km.",
            REQUIRED,
            lo=0.0,
            lo_open=True,
            when='kind = "satellite"',
        ),
        _n(
            "min_elevation_deg",
            "Elevation mask of the station, degrees.",
            10.0,
            lo=0.0,
            hi=90.0,
            hi_open=True,
            when='kind = "ground_station"',
        ),
        _i(
            "store_octets",
            "The node's CFDP file store, octets: uploads to a satellite, downloads to a "
            "ground station (linkstack upload/download; --store-capacity overrides it).",
            None,
            lo=0,
            shown_default="unlimited",
        ),
    ),
)

_LINK_BODY: tuple[Key, ...] = (
    _n("rate_bps", "Bit rate, bit/s (here or in the profile).", REQUIRED, lo=0.0, lo_open=True),
    _n("ber", "Independent bit error rate.", 0.0, lo=0.0, hi=0.5),
    _n("erasure", "Probability that a unit (CLTU, CADU) is lost whole.", 0.0, lo=0.0, hi=1.0),
    _i(
        "queue_capacity",
        "Units that may wait for the transmitter.",
        None,
        lo=1,
        hi=2**62,
        shown_default="unbounded",
    ),
    _s(
        "queue_policy",
        "A full queue blocks the sender or drops the unit.",
        "block",
        choices=("block", "drop"),
    ),
    _b("deliver_lost", "Hand lost units to the receiver as erased deliveries.", True),
    _t("pass", "links.<link>.pass", "LEO pass geometry (used by the pass models)."),
    _t(
        "propagation",
        "links.<link>.propagation",
        "Propagation delay model (required for a link; a profile may give it).",
    ),
    _t("ge", "links.<link>.ge", "Gilbert–Elliott burst errors."),
    _t("outages", "links.<link>.outages", "When the link is down."),
    _t("reorder", "links.<link>.reorder", "Units delivered out of order."),
    _t("duplicate", "links.<link>.duplicate", "Units received twice."),
    _t("stack", "links.<link>.stack", "The protocol stack of this hop direction."),
)

LINK = TableSpec(
    "links.<link>",
    "One direction of a link, from node `from` to node `to`; two directions between the "
    "same nodes form one full-duplex link. `[profiles.<profile>]` tables take the same keys "
    "except `from`, `to` and `profile` (a link's keys override its profile's, key by key).",
    (
        _s("from", "The sending node.", REQUIRED),
        _s("to", "The receiving node.", REQUIRED),
        _s(
            "profile",
            "A profile (profiles.toml or this file's [profiles]) whose keys this table overrides.",
            None,
            shown_default="none",
        ),
        *_LINK_BODY,
    ),
)

PASS = TableSpec(
    "links.<link>.pass",
    "A LEO pass over the ground station (linkstack.sims.geometry.LeoPass).",
    (
        _n(
            "altitude_km",
            "Satellite altitude, km.",
            None,
            lo=0.0,
            lo_open=True,
            shown_default="the satellite node's",
        ),
        _n(
            "min_elevation_deg",
            "Elevation mask, degrees.",
            None,
            lo=0.0,
            hi=90.0,
            hi_open=True,
            shown_default="the ground station's",
        ),
        _n(
            "cross_track_deg",
            "Angle between the ground track and the station, degrees.",
            0.0,
            lo=0.0,
            hi=90.0,
            hi_open=True,
        ),
        _n("first_aos_s", "Time of the first acquisition of signal, seconds.", 0.0),
        _n(
            "period_s",
            "Time between passes, seconds.",
            None,
            lo=0.0,
            lo_open=True,
            shown_default="the orbital period",
        ),
    ),
)

PROPAGATION = TableSpec(
    "links.<link>.propagation",
    "The one-way delay.",
    (
        _s(
            "model",
            "fixed (delay_s), distance (distance_km), slant (a fixed elevation), chord "
            "(an ISL between satellites of one orbit) or pass (follows the slant range of "
            "[pass]).",
            REQUIRED,
            choices=("fixed", "distance", "slant", "chord", "pass"),
        ),
        _n("delay_s", "One-way delay, seconds.", REQUIRED, lo=0.0, when='model = "fixed"'),
        _n(
            "distance_km", "Distance, km (light time).", REQUIRED, lo=0.0, when='model = "distance"'
        ),
        _n(
            "elevation_deg",
            "Elevation of the satellite seen from the station, degrees.",
            REQUIRED,
            lo=0.0,
            hi=90.0,
            when='model = "slant"',
        ),
        _n(
            "altitude_km",
            "Satellite altitude, km.",
            None,
            lo=0.0,
            lo_open=True,
            shown_default="the satellite node's",
            when='model = "slant" or "chord"',
        ),
        _n(
            "separation_deg",
            "Angle between the two satellites seen from the Earth's centre, degrees.",
            REQUIRED,
            lo=0.0,
            hi=180.0,
            lo_open=True,
            when='model = "chord"',
        ),
        _n(
            "min_grazing_km",
            "Lowest height of the line of sight above the surface, km.",
            0.0,
            when='model = "chord"',
        ),
    ),
)

GE = TableSpec(
    "links.<link>.ge",
    "Gilbert–Elliott channel, per bit: give exactly one pair of (p_gb, p_bg), "
    "(mean_good_bits, mean_bad_bits), (mean_good_s, mean_bad_s).",
    (
        _s(
            "model",
            "gilbert-elliott, or none (no bursts; cancels a profile's).",
            "gilbert-elliott",
            choices=("gilbert-elliott", "none"),
        ),
        _n("ber_good", "Bit error rate in the good state.", 0.0, lo=0.0, hi=1.0),
        _n("ber_bad", "Bit error rate in the bad state.", 0.5, lo=0.0, hi=1.0),
        _n(
            "p_gb",
            "Probability per bit of going from good to bad.",
            None,
            lo=0.0,
            hi=1.0,
            lo_open=True,
            shown_default="one pair",
        ),
        _n(
            "p_bg",
            "Probability per bit of going from bad to good.",
            None,
            lo=0.0,
            hi=1.0,
            lo_open=True,
            shown_default="one pair",
        ),
        _n(
            "mean_good_bits",
            "Mean length of a good run, bits.",
            None,
            lo=1.0,
            shown_default="one pair",
        ),
        _n(
            "mean_bad_bits", "Mean length of a burst, bits.", None, lo=1.0, shown_default="one pair"
        ),
        _n(
            "mean_good_s",
            "Mean length of a good run, seconds (at rate_bps).",
            None,
            lo=0.0,
            lo_open=True,
            shown_default="one pair",
        ),
        _n(
            "mean_bad_s",
            "Mean length of a burst, seconds (at rate_bps).",
            None,
            lo=0.0,
            lo_open=True,
            shown_default="one pair",
        ),
    ),
)

OUTAGES = TableSpec(
    "links.<link>.outages",
    "When the link cannot carry anything.",
    (
        _s(
            "model",
            "none, windows (visible), down (intervals), periodic, pass (the windows of "
            "[pass]) or pointing (laser pointing losses).",
            REQUIRED,
            choices=("none", "windows", "down", "periodic", "pass", "pointing"),
        ),
        Key(
            "visible",
            "pairs",
            "Visibility windows [[aos_s, los_s], ...]; down outside them.",
            REQUIRED,
            when='model = "windows"',
        ),
        Key(
            "intervals",
            "pairs",
            "Down intervals [[start_s, end_s], ...].",
            REQUIRED,
            when='model = "down"',
        ),
        _n("first_start_s", "Start of the first window, seconds.", 0.0, when='model = "periodic"'),
        _n(
            "period_s",
            "Time between window starts, seconds.",
            REQUIRED,
            lo=0.0,
            lo_open=True,
            when='model = "periodic"',
        ),
        _n(
            "duration_s",
            "Length of each window, seconds (≤ period_s).",
            REQUIRED,
            lo=0.0,
            lo_open=True,
            when='model = "periodic"',
        ),
        Key(
            "losses",
            "pairs",
            "Scheduled pointing losses [[start_s, duration_s], ...].",
            [],
            when='model = "pointing"',
        ),
        _n(
            "reacquisition_s",
            "Time to reacquire after each loss, seconds.",
            0.0,
            lo=0.0,
            when='model = "pointing"',
        ),
        _n(
            "rate_per_hour",
            "Random losses per hour (Poisson).",
            0.0,
            lo=0.0,
            when='model = "pointing"',
        ),
        _n(
            "mean_duration_s",
            "Mean length of a random loss, seconds (> 0 with rate_per_hour).",
            0.0,
            lo=0.0,
            when='model = "pointing"',
        ),
        _s(
            "stream",
            "Name of the random stream of the losses (two links with the same stream "
            "lose pointing together).",
            None,
            name_like=True,
            shown_default="the link's own",
            when='model = "pointing"',
        ),
    ),
)

REORDER = TableSpec(
    "links.<link>.reorder",
    "Units held back and delivered late.",
    (
        _n("fraction", "Fraction of the units held back.", REQUIRED, lo=0.0, hi=1.0),
        _n(
            "mean_delay_s",
            "Mean extra delay of a held unit, seconds.",
            REQUIRED,
            lo=0.0,
            lo_open=True,
        ),
    ),
)

DUPLICATE = TableSpec(
    "links.<link>.duplicate",
    "Units received a second time.",
    (
        _n("fraction", "Fraction of the units received twice.", REQUIRED, lo=0.0, hi=1.0),
        _n(
            "mean_delay_s",
            "Mean extra delay of the copy, seconds (0: right behind the original).",
            0.0,
            lo=0.0,
        ),
    ),
)

STACK = TableSpec(
    "links.<link>.stack",
    "The stack of this hop direction, checked as plain values here and interpreted when "
    "the hop is built (linkstack.sims.topology).",
    (
        _s(
            "frame",
            "Transfer frames: tc, tm, aos or uslp.",
            None,
            choices=("tc", "tm", "aos", "uslp"),
            shown_default="the hop's",
        ),
        _i(
            "frame_length",
            "Frame length, octets (≤ 1024 for TC, 2048 for TM, 65536 for USLP and AOS).",
            None,
            lo=1,
            hi=65536,
            shown_default="the hop's",
        ),
        _s(
            "coding",
            "Coding chain name, e.g. tm-rs-255-223-i5, tc-bch-rand (`linkstack "
            "cadu encode --help` lists them).",
            None,
            name_like=True,
            shown_default="the hop's",
        ),
        _s(
            "arq",
            "cop-1 (over tc or uslp frames, its return tm or uslp) or sr (over uslp).",
            None,
            name_like=True,
            shown_default="tc: cop-1, uslp: sr",
        ),
        _i(
            "vcid",
            "Virtual channel of the packets.",
            None,
            lo=0,
            hi=63,
            shown_default="RF hops 0, ISLs 1",
        ),
        _b("ocf", "Frames carry the Operational Control Field.", None, shown_default="the hop's"),
        Key(
            "sdls",
            "value",
            "The SA securing this direction: its name or SPI (0..65535) in the [security] SA file.",
            None,
            shown_default="none",
        ),
        Key(
            "arq_params",
            "table",
            "ARQ parameters, any keys, string, number or boolean "
            "values (e.g. t1_initial, window_width; the hop's ARQ checks them).",
            shown_default="the ARQ's",
        ),
    ),
)

RUN = TableSpec(
    "run",
    "How `linkstack run` drives the round trip (all optional).",
    (
        Key(
            "prompts",
            "strings",
            "The prompts, sent one after the other.",
            _PROMPTS,
            shown_default="five general-knowledge questions",
        ),
        _i("max_tokens", "Tokens per answer.", 24, lo=1, hi=4096),
        _n("temperature", "Sampling temperature (0: greedy).", 0.0, lo=0.0, hi=10.0),
        _s(
            "flight_profile",
            "Scales the measured inference time to a flight computer "
            "(linkstack.payload.backend.FLIGHT_PROFILES).",
            "this-machine",
        ),
        _s(
            "compute",
            "The node that runs the model.",
            None,
            shown_default="the satellite farthest from the ground station",
        ),
        _n(
            "start_s",
            "Virtual time of the first prompt, seconds (inside a contact window).",
            10.0,
            lo=0.0,
        ),
        _n("prompt_gap_s", "Time between prompts, seconds.", 1.0, lo=0.0),
        _n(
            "timeout_s",
            "How long the client waits for each result, seconds.",
            900.0,
            lo=0.0,
            lo_open=True,
        ),
        _n(
            "coding_rate_ground_bps",
            "Speed of a ground node's codecs, bit/s (0: free).",
            8e9,
            lo=0.0,
        ),
        _n(
            "coding_rate_satellite_bps",
            "Speed of a satellite's codecs, bit/s (0: free).",
            4e8,
            lo=0.0,
        ),
        _i(
            "stream_tokens",
            "Stream the answer: a partial result every N generated tokens (0: not by count).",
            8,
            lo=0,
            hi=0xFFFF,
        ),
        _n(
            "stream_interval_s",
            "Stream the answer: a partial result every T seconds of generation (0: not by "
            "time).",
            0.5,
            lo=0.0,
        ),
    ),
)

SECURITY = TableSpec(
    "security",
    "Where SDLS (CCSDS 355.0-B-2) finds its SAs and keys — paths only, never keys. A "
    "relative path is taken from the scenario file's folder (from the working directory "
    "when given with --set).",
    (
        _s("sa_file", "The SA file (TOML, linkstack.sdls.config).", REQUIRED),
        _s(
            "key_file",
            "The key file (TOML, mode 0600).",
            None,
            shown_default="$LINKSTACK_SDLS_KEY_FILE, else the SA file's key_file",
        ),
    ),
)

CHAIN_TABLES: tuple[TableSpec, ...] = (
    SCENARIO,
    NODE,
    LINK,
    PASS,
    PROPAGATION,
    GE,
    OUTAGES,
    REORDER,
    DUPLICATE,
    STACK,
    RUN,
    SECURITY,
)
"""The tables of a chain scenario (``sims/scenarios/default.toml``), in page order.
``[links.<link>.stack.arq_params]`` takes any keys (the ARQ's own parameters)."""

# ---------------------------------------------------------------------------------------------
# Constellation scenarios (linkstack.sims.constellation.scenario)
# ---------------------------------------------------------------------------------------------

CONSTELLATION = TableSpec(
    "constellation",
    "The space segment; a scenario with this table is a constellation scenario.",
    (
        _t(
            "walker",
            "constellation.walker",
            "A Walker-delta shell i: T/P/F (give walker or tle_file).",
        ),
        _s(
            "tle_file",
            "Two-line element sets, one satellite each (a relative path from the scenario file).",
            None,
            shown_default="give walker or tle_file",
        ),
        _s(
            "epoch",
            "The scenario's time zero, ISO 8601 UTC (the Walker elements' epoch).",
            "2026-01-01T00:00:00Z",
        ),
        _s(
            "topology",
            "ring (one plane, each satellite to its two neighbours) or +grid (two "
            "intra-plane and two inter-plane ISLs).",
            None,
            choices=("ring", "+grid"),
            shown_default="ring for one plane, else +grid",
        ),
        Key(
            "computing",
            "value",
            'Which satellites run a model: "all", {planes = N} (the '
            "first N planes) or an array of satellite names.",
            "all",
        ),
        _i("slots", "Parallel inference slots per computing satellite.", 1, lo=1, hi=64),
        _i(
            "queue_limit",
            "Prompts that may wait per computing satellite (more are answered BUSY).",
            16,
            lo=0,
            hi=1_000_000,
        ),
        _s(
            "flight_profile",
            "Scales measured inference time (as [run] flight_profile).",
            "this-machine",
        ),
        _t("isl", "constellation.isl", "When two satellites can hold a laser link."),
    ),
)

WALKER = TableSpec(
    "constellation.walker",
    "A Walker-delta shell (circular orbits).",
    (
        _i("total", "Satellites T.", REQUIRED, lo=1, hi=100_000),
        _i("planes", "Planes P (T a multiple of P).", REQUIRED, lo=1, hi=100_000),
        _i("phasing", "Phasing F, 0..P-1.", 0),
        _n("altitude_km", "Altitude, km.", REQUIRED, lo=100.0, hi=40_000.0),
        _n("inclination_deg", "Inclination, degrees.", REQUIRED, lo=0.0, hi=180.0),
    ),
)

COMPUTING = TableSpec(
    "constellation.computing",
    "computing = {planes = N}.",
    (_i("planes", "The first N planes compute.", REQUIRED, lo=1),),
)

ISL = TableSpec(
    "constellation.isl",
    "Laser links between satellites of the topology.",
    (
        _n("max_range_km", "Longest link, km.", 6000.0, lo=0.0, lo_open=True),
        _n(
            "min_grazing_km",
            "Lowest height of the line of sight above the surface, km (atmosphere margin).",
            80.0,
            lo=0.0,
        ),
        _n(
            "polar_limit_deg",
            "Inter-plane links are off when either end is above this latitude, degrees.",
            75.0,
            lo=0.0,
            hi=90.0,
        ),
        _b("seam", "Link plane P-1 to plane 0.", True),
    ),
)

STATION = TableSpec(
    "ground_stations.<station>",
    "A ground station with its users.",
    (
        _n("latitude_deg", "Latitude, degrees.", REQUIRED, lo=-90.0, hi=90.0),
        _n("longitude_deg", "Longitude, degrees.", REQUIRED, lo=-180.0, hi=360.0),
        _n("altitude_m", "Height above the ellipsoid, m.", 0.0, lo=-500.0, hi=9000.0),
        _n("min_elevation_deg", "Elevation mask, degrees.", 10.0, lo=0.0, hi=90.0, hi_open=True),
    ),
)

TEMPLATE = TableSpec(
    "links.<template>",
    "The three link templates, links.uplink, links.downlink and links.isl: the keys of a "
    "chain link (rate_bps, ber, ge, stack, profile ...) but not from, to, propagation, pass "
    "or outages — the geometry gives every hop its delay and contact windows.",
    tuple(
        k
        for k in (LINK.key("profile"), *_LINK_BODY)
        if k.name not in ("propagation", "pass", "outages")
    ),
)

ROUTING = TableSpec(
    "routing",
    "Where prompts are computed and how they travel.",
    (
        _s(
            "policy",
            "nearest-free (the least loaded computing satellite nearest to the entry "
            "satellite), ingress, fixed or no-isl.",
            "nearest-free",
            choices=("nearest-free", "ingress", "fixed", "no-isl"),
        ),
        _s("compute", 'The satellite of policy "fixed".', None, shown_default="none"),
        _s(
            "downlink",
            "any (the answer comes down at the first station it reaches and crosses "
            "the terrestrial network) or origin (only the user's own station).",
            "any",
            choices=("any", "origin"),
        ),
        _n(
            "backhaul_km_s",
            "Signal speed in terrestrial fibre, km/s.",
            200_000.0,
            lo=0.0,
            lo_open=True,
        ),
        _n("plan_step_s", "Contact-plan time step, seconds.", 10.0, lo=0.5, hi=120.0),
        _n("segment_s", "Contact-plan segment length, seconds.", 60.0, lo=1.0, hi=3600.0),
    ),
)

TRAFFIC = TableSpec(
    "traffic",
    "The users' prompts.",
    (
        _i("users_per_station", "Users at each station.", 1, lo=0, hi=10**7),
        _n("rate_per_user_per_h", "Prompts per user per hour (Poisson arrivals).", 60.0, lo=0.0),
        Key(
            "prompts",
            "strings",
            "Prompt texts, drawn uniformly.",
            ("What is the capital of France?",),
            shown_default='`["What is the capital of France?"]`',
        ),
        _i("max_tokens", "Tokens per answer.", 16, lo=1, hi=4096),
        _n("temperature", "Sampling temperature.", 0.0, lo=0.0, hi=10.0),
        _n(
            "timeout_s",
            "How long a user waits for an answer, seconds.",
            3600.0,
            lo=0.0,
            lo_open=True,
        ),
    ),
)

CONSTELLATION_TABLES: tuple[TableSpec, ...] = (
    CONSTELLATION,
    WALKER,
    COMPUTING,
    ISL,
    STATION,
    TEMPLATE,
    ROUTING,
    TRAFFIC,
)
"""The tables of a constellation scenario besides ``[scenario]`` and ``[profiles]``, in page
order; its link templates' sub-tables are those of a chain link."""

_BY_PATH = {t.path: t for t in (*CHAIN_TABLES, *CONSTELLATION_TABLES)}


def table_spec(path: str) -> TableSpec:
    """The :class:`TableSpec` of a table path (``links.<link>.pass``)."""
    return _BY_PATH[path]


def iter_keys() -> Iterator[tuple[TableSpec, Key]]:
    """Every declared key with its table."""
    for table in (*CHAIN_TABLES, *CONSTELLATION_TABLES):
        for key in table.keys:
            yield table, key
