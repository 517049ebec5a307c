"""Prompts through a constellation in virtual time: many users, many satellites, changing ISLs.

What one run does (:func:`run_constellation`):

1. **Geometry** (:mod:`.orbits`, :mod:`.contacts`): the scenario's Walker shell or TLE set is
   propagated with ``sgp4`` over the run; ground-station windows and ISL availability give the
   contact plan (:mod:`.plan`), and :class:`~.routing.RoutingTable` indexes it.
2. **Traffic**: each ground station's users send prompts as a Poisson process (rate
   ``users_per_station x rate_per_user_per_h``), texts drawn from ``[traffic] prompts``; the
   arrival times and texts come from the scenario seed only.
3. **Placement** (``[routing] policy``), decided when the prompt leaves the user's station:
   ``nearest-free`` the computing satellite with a free inference slot reached first
   (load-aware: prompts already assigned count against the slots); ``ingress`` the satellite the
   prompt enters through; ``fixed`` one named satellite; ``no-isl`` no relaying at all: the
   prompt goes up to a computing satellite in view and the answer comes down only when that same
   satellite passes over a station.
4. **Carriage, hop by hop**: at every node the message (all its Space Packets) is routed by
   earliest arrival over the predicted contacts from *now* (CCSDS 734.3-B-1 style: arrival first,
   then fewest hops); if the next contact has not begun, the message is stored at the node until
   it does. The hop it is handed to runs the whole stack of its kind, the same code as
   ``linkstack run``: COP-1 over TC frames in CLTUs up and TM frames with the CLCW in RS CADUs down
   on a ground-satellite hop, USLP frames with selective repeat in RS CADUs both ways on an ISL,
   over a simulated link whose delay follows the range and whose windows are the contacts. Routes
   are recomputed at every node, so a message follows the topology as it changes. A hop exists
   only once a message crosses it: satellites that carry no traffic cost nothing.
5. **Onboard**: each computing satellite has its model endpoint with ``slots`` parallel inference
   slots and a bounded queue (``BUSY`` when full); inference time is the backend's measured time
   (memoized per prompt) scaled by the flight profile and by the measured service-time scale of
   the slots busy when it starts (:data:`linkstack.payload.serving.SLOT_SERVICE_SCALE`: parallel
   generations share the flight computer, so each one is slower than alone).
6. **Down and home**: the answer is routed to any station (``downlink = "any"``) or the user's own,
   then crosses the terrestrial network to the user's station (great-circle distance over
   ``backhaul_km_s``).

Messages are delivered whole, end to end, like bundles: the packets of one message travel together
over each hop, but two messages from one station may take different routes and arrive out of
Packet Sequence Count order, which a single per-APID sequence check (133.0-B-2 §4.1.3.4) would
take for late packets and drop. So the destination reassembles each message in its own context
(the ``source`` of :meth:`~linkstack.payload.endpoint.ModelEndpoint.receive_packet`); the
sequence check of each hop's own packet stream is unchanged.

Every prompt's breakdown sums to its total exactly: for each hop crossed, the time the message
waited at the node for the contact (``<kind>.contact_wait``), then the hop's own components
(:mod:`linkstack.sims.breakdown`: queueing, serialization, propagation, coding, arq_wait), where
``kind`` is ``uplink``, ``isl`` or ``downlink``; then ``onboard.queueing``,
``onboard.inference`` and ``backhaul``.

What is not modelled: contact volume (two messages may both plan on the last seconds of a
contact; the later one then waits for the next), ISL pointing losses (the geometry's windows
replace the profile's outages), and hand-over of a message in flight when a ground contact ends
(a hop whose contact ends mid-transfer resumes at the pair's next contact, or the prompt times
out: counted in ``lost``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trio

from linkstack.errors import ConfigError
from linkstack.hops.base import Unit
from linkstack.payload.backend import ModelBackend, get_profile, scaled_inference_s
from linkstack.payload.client import PromptClient
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, ResultSent
from linkstack.payload.messages import GenerationParams, Result, Status
from linkstack.payload.serving import service_scale
from linkstack.payload.transport import TransportConfig
from linkstack.sims import engine
from linkstack.sims.breakdown import COMPONENTS, HopRecord, split_intervals
from linkstack.sims.channel import DownIntervals
from linkstack.sims.constellation.contacts import IslPolicy, build_contact_plan, topology_links
from linkstack.sims.constellation.orbits import (
    Constellation,
    GroundStation,
    WalkerShell,
    parse_tle,
)
from linkstack.sims.constellation.plan import ContactPlan
from linkstack.sims.constellation.routing import Route, RoutingTable
from linkstack.sims.constellation.scenario import ConstellationScenario
from linkstack.sims.link import Delivery
from linkstack.sims.roundtrip import CallbackPort, percentile
from linkstack.sims.topology import Hop, build_endpoints, rf_config
from linkstack.spp.packet import PRIMARY_HEADER_SIZE

__all__ = [
    "ConstellationReport",
    "PromptRecord",
    "World",
    "build_world",
    "poisson_arrivals",
    "run_constellation",
]

EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius, for great-circle (terrestrial backhaul) distances."""
ROUTE_RETRY_S = 30.0
"""With no route in the plan from a node, look again this much later (the plan does not change,
but the destination set of ``nearest-free`` does)."""
HOP_COMPONENTS = ("contact_wait", *COMPONENTS)


# --------------------------------------------------------------------------------------------
# The world: geometry, contact plan, routing tables


@dataclass
class World:
    """Everything the geometry gives a run: node numbers, the contact plan and its routing.

    The table without ISLs (for ``no-isl``) and the visibility windows of a node pair are made
    on first use: a run asks for the windows of the few pairs its messages cross."""

    scenario: ConstellationScenario
    constellation: Constellation
    plan: ContactPlan
    table: RoutingTable
    stations: tuple[int, ...]
    satellites: tuple[int, ...]
    computing: frozenset[int]
    satellite_set: frozenset[int] = frozenset()
    station_set: frozenset[int] = frozenset()
    lazy: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def name(self, node: int) -> str:
        return self.plan.nodes.names[node]

    def is_station(self, node: int) -> bool:
        return node < self.constellation.n_stations

    @property
    def table_no_isl(self) -> RoutingTable:
        """Routing over the ground contacts only."""
        table = self.lazy.get("no_isl")
        if table is None:
            n_st = self.constellation.n_stations
            ground = [c for c in self.plan.contacts if c.frm < n_st or c.to < n_st]
            table = self.lazy["no_isl"] = RoutingTable(ground, len(self.plan.nodes))
        return table

    def windows(self, a: int, b: int) -> list[tuple[float, float]]:
        """When ``a`` can send to ``b``: the pair's contacts in plan order, touching or
        overlapping ones joined."""
        groups = self.lazy.get("pairs")
        if groups is None:
            arr = self.table._arrays
            key = arr.frm * len(self.plan.nodes) + arr.to
            order = np.argsort(key, kind="stable")  # plan order within a pair
            keys = key[order]
            groups = self.lazy["pairs"] = (keys, order)
        keys, order = groups
        k = a * len(self.plan.nodes) + b
        lo, hi = np.searchsorted(keys, [k, k + 1])
        spans: list[tuple[float, float]] = []
        contacts = self.plan.contacts
        for i in order[lo:hi].tolist():
            c = contacts[i]
            if spans and c.start_s <= spans[-1][1] + 1e-9:
                spans[-1] = (spans[-1][0], max(spans[-1][1], c.end_s))
            else:
                spans.append((c.start_s, c.end_s))
        return spans


def build_world(scenario: ConstellationScenario, horizon_s: float) -> World:
    """Propagate the orbits over ``[0, horizon_s]`` and build the contact plan and its tables."""
    sc = scenario
    try:
        stations = [GroundStation(s.name, s.latitude_deg, s.longitude_deg, s.altitude_m / 1000.0,
                                  s.min_elevation_deg) for s in sc.stations]
        step = sc.routing.plan_step_s
        if sc.walker is not None:
            w = sc.walker
            shell = WalkerShell(w.total, w.planes, w.phasing, w.altitude_km, w.inclination_deg)
            con = Constellation.from_walker(shell, stations, horizon_s=horizon_s, step_s=step,
                                            epoch=sc.epoch)
        else:
            assert sc.tle_text is not None
            sats = parse_tle(sc.tle_text, sc.tle_source or "<tle>")
            con = Constellation(sats, stations, horizon_s=horizon_s, step_s=step, epoch=sc.epoch)
    except ValueError as exc:
        raise ConfigError(str(exc), key="constellation") from None
    links = topology_links(con, sc.topology, seam=sc.isl.seam)
    limit = sc.isl.polar_limit_deg
    policy = IslPolicy(sc.isl.max_range_km, sc.isl.min_grazing_km,
                       None if limit >= 90.0 else limit)
    plan = build_contact_plan(
        con, links, ground_rate_bps=sc.links["uplink"].rate_bps,
        downlink_rate_bps=sc.links["downlink"].rate_bps, isl_rate_bps=sc.links["isl"].rate_bps,
        policy=policy, max_segment_s=sc.routing.segment_s)
    n_st = con.n_stations
    stations_n = tuple(range(n_st))
    sats = tuple(range(n_st, n_st + con.n_satellites))
    computing = _computing(sc, con, sats)
    return World(sc, con, plan, RoutingTable(plan), stations_n, sats, computing,
                 frozenset(sats), frozenset(stations_n))


def _computing(sc: ConstellationScenario, con: Constellation, sats: tuple[int, ...]
               ) -> frozenset[int]:
    if sc.computing == "all":
        return frozenset(sats)
    if isinstance(sc.computing, dict):
        planes = sc.computing["planes"]
        return frozenset(n for n, s in zip(sats, con.satellites, strict=True)
                         if s.plane is not None and s.plane < planes)
    names = {n: i for i, n in enumerate(con.nodes.names)}
    out = set()
    for name in sc.computing:
        if name not in names or names[name] < con.n_stations:
            raise ConfigError(f"unknown satellite {name!r}", key="constellation.computing")
        out.add(names[name])
    return frozenset(out)


def poisson_arrivals(scenario: ConstellationScenario, duration_s: float, n_stations: int
                     ) -> list[tuple[float, int, str]]:
    """(time, station number, prompt text) of every prompt over ``[0, duration_s)``, in time
    order: one Poisson process per station, texts drawn uniformly, all from the scenario seed
    (``numpy.random.SeedSequence``, one child per station) -- so the set of prompts does not
    depend on anything else of the run."""
    t = scenario.traffic
    rate = t.users_per_station * t.rate_per_user_per_h / 3600.0
    out: list[tuple[float, int, str]] = []
    if rate <= 0:
        return out
    children = np.random.SeedSequence(scenario.seed).spawn(n_stations)
    for station, seq in enumerate(children):
        rng = np.random.default_rng(seq)
        n = rng.poisson(rate * duration_s)
        times = np.sort(rng.uniform(0.0, duration_s, n))  # a Poisson process, given its count
        texts = rng.integers(0, len(t.prompts), n)
        out.extend((float(x), station, t.prompts[int(k)]) for x, k in zip(times, texts,
                                                                          strict=True))
    out.sort()
    return out


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Crossing:
    """One message over one hop: handed at ``record.start``, whole at the far node at ``end``."""

    kind: str  # "uplink", "isl", "downlink"
    frm: int
    to: int
    record: HopRecord
    left: int
    on_done: Callable[[], None]
    finished: bool = False

    @property
    def end(self) -> float | None:
        return self.record.end


@dataclass
class _Message:
    key: tuple[str, int]
    octets: int
    packets: int
    created: float
    crossings: list[Crossing] = field(default_factory=list)


@dataclass
class _Carry:
    """A message on its way from ``node`` to any of ``dests`` (:meth:`_ConstellationRun._carry`);
    ``on_done(node)`` once it is there (None: no route before the plan's horizon)."""

    msg: _Message
    packets: list[bytes]
    node: int
    dests: frozenset[int]
    table: RoutingTable
    on_done: Callable[[int | None], None]
    hint: Route | None = None
    cancelled: bool = False


@dataclass
class _Prompt:
    """One prompt from its station until it is answered, refused or timed out."""

    record: PromptRecord
    station: int
    msg: _Message
    packets: list[bytes]
    timeout: engine.TimerHandle
    ingress: Route | None = None
    carry: _Carry | None = None


@dataclass
class PromptRecord:
    """One prompt's trip: where it went, how long each part took, and the answer."""

    request_id: int
    station: str
    t0_s: float
    text: str
    status: str
    answer: str = ""
    total_s: float = math.nan
    compute: str | None = None
    egress: str | None = None
    route_up: list[str] = field(default_factory=list)
    route_down: list[str] = field(default_factory=list)
    hops: int = 0
    breakdown: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ConstellationReport:
    """A constellation run: one record per prompt, and the summary of them."""

    scenario: str
    policy: str
    duration_s: float
    prompts: list[PromptRecord]
    links_used: int
    satellites: int
    stations: int
    plan_contacts: int

    def summary(self) -> dict[str, Any]:
        answered = sorted(p.total_s for p in self.prompts if p.status == "ok")
        n = len(self.prompts)
        hops = [p.hops for p in self.prompts if p.status == "ok"]
        return {
            "prompts": n,
            "answered": len(answered),
            "lost": sum(p.status in ("timeout", "no_route") for p in self.prompts),
            "rejected": sum(p.status not in ("ok", "timeout", "no_route") for p in self.prompts),
            "p50_s": percentile(answered, 50),
            "p95_s": percentile(answered, 95),
            "p99_s": percentile(answered, 99),
            "within_120_s": (sum(t <= 120.0 for t in answered) / n) if n else math.nan,
            "mean_hops": (sum(hops) / len(hops)) if hops else math.nan,
            "links_used": self.links_used,
        }

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "policy": self.policy,
                "duration_s": self.duration_s, "satellites": self.satellites,
                "stations": self.stations, "plan_contacts": self.plan_contacts,
                "summary": self.summary(), "prompts": [p.as_dict() for p in self.prompts]}


# --------------------------------------------------------------------------------------------
# The run


class _Hop:
    """The full stack between two nodes, made the first time a message crosses them."""

    def __init__(self, run: _ConstellationRun, a: int, b: int) -> None:
        world = run.world
        sc = world.scenario
        rf = world.is_station(a)
        fwd_t = sc.links["uplink"] if rf else sc.links["isl"]
        back_t = sc.links["downlink"] if rf else sc.links["isl"]
        na, nb = world.name(a), world.name(b)
        fwd = dataclasses.replace(fwd_t, name=f"{na}>{nb}", source=na, destination=nb)
        back = dataclasses.replace(back_t, name=f"{nb}>{na}", source=nb, destination=na)
        self.hop = Hop(fwd.name, "rf" if rf else "isl", fwd, back)
        self.a, self.b = a, b
        self.kinds = {a: "uplink" if rf else "isl", b: "downlink" if rf else "isl"}
        near, far = build_endpoints(self.hop)
        con = world.constellation
        # ASSUMPTION: coding takes no virtual time here (the chain models it, in [run]), so
        # both ends are driven by the scheduler's callbacks (CallbackPort), not by tasks
        up = fwd.build_direction(
            propagation=con.delay(a, b),
            visibility=DownIntervals.from_visible(world.windows(a, b)),
            on_delivery=lambda d: self.ports[b].deliver(d))  # type: ignore[arg-type]
        down = back.build_direction(
            propagation=con.delay(b, a),
            visibility=DownIntervals.from_visible(world.windows(b, a)),
            on_delivery=lambda d: self.ports[a].deliver(d))  # type: ignore[arg-type]
        self.ports = {
            a: CallbackPort(run, near, up, back.name, run.arrival_handler(a)),
            b: CallbackPort(run, far, down, fwd.name, run.arrival_handler(b),
                            quiet=(lambda: bool(near.idle)) if rf else None),  # type: ignore[attr-defined]
        }
        self.direction_names = {a: fwd.name, b: back.name}  # what node X sends on
        self.limit = (rf_config(self.hop).max_packet_length - PRIMARY_HEADER_SIZE) if rf else None
        self.ports[a].kick()  # the first pump: timers the endpoints start with
        self.ports[b].kick()


class _ConstellationRun:
    def __init__(self, world: World, backend: ModelBackend,
                 arrivals: Sequence[tuple[float, int, str]]) -> None:
        self.world = world
        self.sc = world.scenario
        self.backend = backend
        self.arrivals = list(arrivals)
        self.profile = get_profile(self.sc.flight_profile)
        self.hops: dict[tuple[int, int], _Hop] = {}
        self.messages: dict[tuple[str, int], _Message] = {}
        self.packet_owner: dict[bytes, tuple[str, int]] = {}
        self.current: dict[tuple[tuple[str, int], str], Crossing] = {}
        self.endpoints: dict[int, ModelEndpoint] = {}
        self.load: dict[int, int] = dict.fromkeys(world.computing, 0)
        self.by_load: list[set[int]] = [set(world.computing)]  # satellites by prompts assigned
        self.level_mask: list[bytearray] = [bytearray(len(world.plan.nodes))]  # by_load as bytes
        for sat in world.computing:
            self.level_mask[0][sat] = 1
        self.compute_of: dict[int, int] = {}
        self.origin_of: dict[int, int] = {}  # request id -> the user's station
        self.inference: dict[int, tuple[float, float]] = {}
        self.results: dict[int, tuple[Result, float, int]] = {}
        self.answers: dict[int, _Message] = {}
        self.pending: dict[int, _Prompt] = {}  # request id -> a prompt not finished yet
        self.records: list[PromptRecord] = []
        self.transport = TransportConfig(max_data_length=self._max_data_length())
        self.client = PromptClient(self.transport, timeout_s=self.sc.traffic.timeout_s)
        self.scheduler: engine.Scheduler  # the running simulation's (main() sets it)
        self.all_done: trio.Event

    # -- wiring ------------------------------------------------------------------------------
    def _max_data_length(self) -> int:
        sc = self.sc
        up = sc.links["uplink"]
        probe = Hop("probe", "rf", up, sc.links["downlink"])
        return min(1024, rf_config(probe).max_packet_length - PRIMARY_HEADER_SIZE)

    def hop(self, a: int, b: int) -> _Hop:
        key = (a, b) if (self.world.is_station(a) or (not self.world.is_station(b) and a < b)) \
            else (b, a)
        hop = self.hops.get(key)
        if hop is None:
            hop = self.hops[key] = _Hop(self, *key)
        return hop

    def account(self, hop: str, unit: Unit, d: Delivery, coding: tuple[float, float],
                decoding: tuple[float, float]) -> None:
        ns = 1e-9
        sdls = unit.sdls_octets / unit.frame_octets if unit.sdls_octets else 0.0
        for tag in unit.tags:
            crossing = self.current.get((tag, hop))  # type: ignore[arg-type]
            if crossing is None:
                continue
            rec = crossing.record
            rec.add_split("coding", *coding, sdls)
            rec.add_transmission(d.t_enqueued * ns, d.t_tx_start * ns, d.t_tx_end * ns,
                                 d.t_arrival * ns, sdls)
            rec.add_split("coding", *decoding, sdls)

    def arrival_handler(self, node: int) -> Any:
        def arrived(packets: list[bytes], now: float) -> None:
            for p in packets:
                key = self.packet_owner.get(bytes(p))
                if key is None:
                    continue
                msg = self.messages[key]
                crossing = msg.crossings[-1] if msg.crossings else None
                if crossing is None or crossing.to != node or crossing.finished:
                    continue
                crossing.left -= 1
                if crossing.left == 0:
                    crossing.record.end = now
                    crossing.finished = True
                    self.current.pop((key, crossing.record.hop), None)
                    crossing.on_done()
        return arrived

    # -- main --------------------------------------------------------------------------------
    #
    # Everything below runs as callbacks of the simulation's scheduler (engine.Scheduler):
    # a prompt's arrival, its wait for a contact, each hop it crosses (CallbackPort), the
    # inference and the answer's way home. No task waits for any of it, so the scheduler
    # runs the whole constellation ahead in virtual time without a task switch; the only
    # task besides it is main(), waiting for the last prompt.

    async def main(self) -> ConstellationReport:
        sc = self.sc
        self.scheduler = engine.current_simulation().scheduler
        self.all_done = trio.Event()
        if self.arrivals:
            self.scheduler.call_at_s(self.arrivals[0][0], self._arrive, 0)
            await self.all_done.wait()
        self.records.sort(key=lambda r: (r.t0_s, r.request_id))
        return ConstellationReport(sc.name, sc.routing.policy, sc.duration_s, self.records,
                                   len(self.hops), len(self.world.satellites),
                                   len(self.world.stations), len(self.world.plan.contacts))

    def _arrive(self, i: int) -> None:
        """Prompt ``i`` of the traffic leaves its user now; the next one is posted."""
        _, station, text = self.arrivals[i]
        if i + 1 < len(self.arrivals):
            self.scheduler.call_at_s(self.arrivals[i + 1][0], self._arrive, i + 1)
        self._prompt(station, text, engine.now())

    def _message(self, key: tuple[str, int], packets: list[bytes], now: float) -> _Message:
        octets = sum(len(p) - PRIMARY_HEADER_SIZE for p in packets)
        msg = self.messages[key] = _Message(key, octets, len(packets), now)
        for p in packets:
            self.packet_owner[bytes(p)] = key
        return msg

    def _forget(self, msg: _Message, packets: Sequence[bytes]) -> None:
        for p in packets:
            self.packet_owner.pop(bytes(p), None)
        self.messages.pop(msg.key, None)

    def _prompt(self, station: int, text: str, t0: float) -> None:
        tr = self.sc.traffic
        params = GenerationParams(max_tokens=tr.max_tokens, temperature=tr.temperature,
                                  seed=self.sc.seed)
        rid, packets = self.client.ask(text, t0, params=params)
        record = PromptRecord(rid, self.world.name(station), t0, text, "timeout")
        self.records.append(record)
        self.origin_of[rid] = station
        msg = self._message(("prompt", rid), packets, t0)
        timeout = self.scheduler.call_at_s(t0 + tr.timeout_s, self._end_prompt, rid)
        prompt = self.pending[rid] = _Prompt(record, station, msg, packets, timeout)
        # stored at the station until a satellite is in view, then placed (step 3)
        prompt.ingress = ingress = self._table_for().route(
            station, self.world.satellite_set, t0, size_bits=msg.octets * 8)
        if ingress is not None and ingress.departures_s[0] > t0:
            self.scheduler.call_at_s(ingress.departures_s[0], self._placed, rid)
        else:
            self._placed(rid)

    def _placed(self, rid: int) -> None:
        prompt = self.pending.get(rid)
        if prompt is None:  # timed out while it waited for a satellite
            return
        ingress = prompt.ingress
        compute = self._place(prompt.station, engine.now(), prompt.msg,
                              None if ingress is None else ingress.dst)
        if compute is None:
            prompt.record.status = "no_route"
            self._end_prompt(rid)
            return
        self.compute_of[rid] = compute
        prompt.record.compute = self.world.name(compute)
        prompt.carry = self._carry(prompt.msg, prompt.packets, prompt.station,
                                   frozenset({compute}), self._table_for(),
                                   lambda at: self._uplinked(rid, compute, at), hint=ingress)

    def _uplinked(self, rid: int, compute: int, at: int | None) -> None:
        prompt = self.pending.get(rid)
        if prompt is None:
            return
        if at is None:
            prompt.record.status = "no_route"
            self._unload(rid)
            self._end_prompt(rid)
            return
        ep = self._endpoint(compute)
        now = engine.now()
        refused: list[ResultSent] = []
        for p in prompt.packets:
            for ev in ep.receive_packet(p, now, source=("prompt", rid)):
                if isinstance(ev, ResultSent):  # a rejection (BUSY, too long, ...)
                    refused.append(ev)
        ep.forget_source(("prompt", rid))
        for ev in refused:
            self._unload(rid)
            self._answer(compute, ev.result.request_id, list(ev.packets), now)
        self._serve(compute)

    def _end_prompt(self, rid: int) -> None:
        """The prompt is answered, refused, unroutable or out of time: report it (once)."""
        prompt = self.pending.pop(rid, None)
        if prompt is None:
            return
        prompt.timeout.cancel()
        if prompt.carry is not None:
            prompt.carry.cancelled = True  # what is in flight on a hop still lands, unowned
        self._forget(prompt.msg, prompt.packets)
        self._finish(prompt.record, prompt.station, prompt.msg)
        if not self.pending and len(self.records) == len(self.arrivals):
            self.all_done.set()

    def _table_for(self) -> RoutingTable:
        return self.world.table_no_isl if self.sc.routing.policy == "no-isl" else self.world.table

    def _place(self, station: int, now: float, msg: _Message, ingress: int | None
               ) -> int | None:
        """The computing satellite that will answer (module docstring, step 3).

        ``ingress`` is the satellite the prompt enters through. ``nearest-free`` keeps it when
        it computes and is among the least loaded; otherwise it takes, among the least-loaded
        computing satellites, the nearest to the ingress on the topology of the moment
        (a shortest-path tree on the snapshot graph, :mod:`scipy.sparse.csgraph`)."""
        world = self.world
        policy = self.sc.routing.policy
        size = msg.octets * 8
        if policy == "fixed":
            name = self.sc.routing.compute
            try:
                node = world.plan.nodes.number(name or "")
            except KeyError:
                raise ConfigError(f"unknown satellite {name!r}", key="routing.compute") from None
            return self._assign(node)
        if ingress is None:
            return None
        if policy in ("ingress", "no-isl") and ingress in world.computing:
            return self._assign(ingress)
        if policy == "no-isl":  # the first computing satellite in view of the station
            route = self._route(world.table_no_isl, station, world.computing, now, size)
            return None if route is None else self._assign(route.dst)
        least = self._least_load()
        level = self.by_load[least]
        if ingress in level:
            return self._assign(ingress)
        best, delay = world.table.nearest(now, ingress, level, mask=self.level_mask[least])
        if math.isfinite(delay):
            return self._assign(best)
        route = self._route(world.table, station, frozenset(level), now, size)
        return None if route is None else self._assign(route.dst)

    def _least_load(self) -> int:
        k = 0
        while not self.by_load[k]:
            k += 1
        return k

    def _assign(self, sat: int) -> int:
        self._move(sat, +1)
        return sat

    def _move(self, sat: int, step: int) -> None:
        load = self.load.get(sat, 0)
        if sat in self.world.computing:
            self.by_load[load].discard(sat)
            self.level_mask[load][sat] = 0
            while len(self.by_load) <= load + step:
                self.by_load.append(set())
                self.level_mask.append(bytearray(len(self.level_mask[0])))
            self.by_load[load + step].add(sat)
            self.level_mask[load + step][sat] = 1
        self.load[sat] = load + step

    def _unload(self, rid: int) -> None:
        sat = self.compute_of.pop(rid, None)
        if sat is not None:
            self._move(sat, -1)

    def _carry(self, msg: _Message, packets: list[bytes], node: int, dests: frozenset[int],
               table: RoutingTable, on_done: Callable[[int | None], None],
               hint: Route | None = None) -> _Carry:
        """Move ``msg`` from ``node`` hop by hop until it is at one of ``dests``, then
        ``on_done(node)``. ``hint`` is a route from ``node`` computed at this very instant
        (the ingress route, when the entry satellite computes): it is taken instead of asking
        again. Cancelling the returned carry stops it at the next node."""
        carry = _Carry(msg, packets, node, dests, table, on_done, hint)
        self._step(carry)
        return carry

    def _step(self, c: _Carry) -> None:
        """Route ``c`` from where it is now, and hand it to the next hop or wait for it."""
        if c.cancelled:
            return
        node = c.node
        if node in c.dests:
            c.on_done(node)
            return
        now = engine.now()
        hint, c.hint = c.hint, None
        if hint is not None and hint.src == node and hint.dst in c.dests:
            route: Route | None = hint
        else:
            # A* bounds are cached per destination set: worth it for sets asked again and
            # again (all stations, the fixed satellite), not for a one-off computing satellite
            guided = len(c.dests) > 1 or self.sc.routing.policy == "fixed"
            # the entry satellite bounds the search from a station (the same route comes out)
            via = hint.dst if hint is not None and hint.src == node else None
            route = self._route(c.table, node, c.dests, now, c.msg.octets * 8, guided=guided,
                                via=via)
        if route is None:
            if now + ROUTE_RETRY_S > self.world.plan.horizon_s:
                c.on_done(None)
            else:
                self.scheduler.call_at_s(now + ROUTE_RETRY_S, self._step, c)
            return
        to = route.contacts[0].to
        if route.departures_s[0] > now:  # stored at the node until the contact begins
            self.scheduler.call_at_s(route.departures_s[0], self._depart, c, to)
        else:
            self._depart(c, to)

    def _depart(self, c: _Carry, to: int) -> None:
        if c.cancelled:
            return
        node = c.node
        hop = self.hop(node, to)
        now = engine.now()
        name = hop.direction_names[node]
        msg = c.msg
        crossing = Crossing(hop.kinds[node], node, to, HopRecord(name, start=now),
                            len(c.packets), lambda: self._crossed(c, to))
        msg.crossings.append(crossing)
        self.current[(msg.key, name)] = crossing
        port = hop.ports[node]
        for p in c.packets:
            port.endpoint.send_packet(p, msg.key, now=now)
        port.kick()

    def _crossed(self, c: _Carry, to: int) -> None:
        c.node = to
        self._step(c)

    def _route(self, table: RoutingTable, node: int, dests: frozenset[int], now: float,
               size: float, *, guided: bool = True, via: int | None = None) -> Route | None:
        """Earliest arrival; ground stations are ends, never relays (down and up again)."""
        return table.route(node, dests, now, size_bits=size, guided=guided, via=via,
                           excluded_nodes=self.world.station_set - dests - {node})

    def _endpoint(self, sat: int) -> ModelEndpoint:
        ep = self.endpoints.get(sat)
        if ep is None:
            cfg = EndpointConfig(transport=self.transport, queue_limit=self.sc.queue_limit,
                                 concurrency=self.sc.slots, timeout_s=None,
                                 profile=self.profile)
            ep = self.endpoints[sat] = ModelEndpoint(self.backend, cfg)
        return ep

    def _serve(self, sat: int) -> None:
        """Start every job the satellite's endpoint has a free slot for."""
        ep = self.endpoints[sat]
        while (job := ep.next_job(engine.now())) is not None:
            self._infer(sat, job)

    def _infer(self, sat: int, job: Any) -> None:
        ep = self.endpoints[sat]
        start = engine.now()
        generation = self.backend.generate(job.prompt.text, job.prompt.params)
        # the slots busy now, this one included, share the computer (measured scale)
        virtual = scaled_inference_s(generation.inference_s, self.profile) * service_scale(
            ep.running)
        rid = job.prompt.request_id
        self.inference[rid] = (start, virtual)
        self.scheduler.call_at_s(start + virtual, self._inferred, sat, job,
                               generation)

    def _inferred(self, sat: int, job: Any, generation: Any) -> None:
        done = engine.now()
        rid = job.prompt.request_id
        packets = self.endpoints[sat].complete(job, generation, done)
        self._unload(rid)
        self._answer(sat, rid, packets, done)
        self._serve(sat)

    def _answer(self, sat: int, rid: int, packets: list[bytes], now: float) -> None:
        world = self.world
        msg = self._message(("result", rid), packets, now)
        self.answers[rid] = msg
        origin = self.origin_of[rid]
        dests = world.station_set if self.sc.routing.downlink == "any" else frozenset({origin})
        self._carry(msg, packets, sat, dests, self._table_for(),
                    lambda at: self._landed(rid, msg, packets, at))

    def _landed(self, rid: int, msg: _Message, packets: list[bytes], at: int | None) -> None:
        """The answer is at station ``at``: over the terrestrial network to the user's."""
        if at is None:
            return
        backhaul = self._backhaul_s(at, self.origin_of[rid])
        if backhaul:
            self.scheduler.call_at_s((engine.now() + backhaul), self._delivered,
                                   msg, packets, at)
        else:
            self._delivered(msg, packets, at)

    def _delivered(self, msg: _Message, packets: list[bytes], at: int) -> None:
        now = engine.now()
        rid = msg.key[1]
        finished: list[int] = []
        for p in packets:
            for ev in self.client.receive_packet(p, now, source=("result", rid)):
                result = getattr(ev, "result", None)
                if isinstance(result, Result):
                    self.results[result.request_id] = (result, now, at)
                    finished.append(result.request_id)
        self.client.forget_source(("result", rid))
        self._forget(msg, packets)
        for done in finished:
            self._end_prompt(done)

    def _backhaul_s(self, a: int, b: int) -> float:
        if a == b:
            return 0.0
        sa, sb = self.sc.stations[a], self.sc.stations[b]
        la, lb = math.radians(sa.latitude_deg), math.radians(sb.latitude_deg)
        dl = math.radians(sb.longitude_deg - sa.longitude_deg)
        central = math.acos(max(-1.0, min(1.0, math.sin(la) * math.sin(lb)
                                          + math.cos(la) * math.cos(lb) * math.cos(dl))))
        return EARTH_MEAN_RADIUS_KM * central / self.sc.routing.backhaul_km_s

    # -- the report ----------------------------------------------------------------------------
    def _finish(self, record: PromptRecord, station: int, prompt: _Message) -> None:
        rid = record.request_id
        got = self.results.get(rid)
        if got is None:  # where it got to, for the report
            self._unload(rid)
            self._crossings(prompt, record.t0_s, {}, record.route_up)
            answer = self.answers.pop(rid, None)
            if answer is not None:
                self._crossings(answer, record.t0_s, {}, record.route_down)
            return
        result, t1, egress = got
        record.status = Status(result.status).name.lower()
        record.answer = result.text
        record.total_s = t1 - record.t0_s
        record.egress = self.world.name(egress)
        answer = self.answers.pop(rid, None)
        bd: dict[str, float] = {}
        cursor = record.t0_s
        cursor = self._crossings(prompt, cursor, bd, record.route_up)
        start, infer = self.inference.get(rid, (cursor, 0.0))
        if rid in self.inference:
            bd["onboard.queueing"] = start - cursor
            bd["onboard.inference"] = infer
            cursor = start + infer
        if answer is not None:
            cursor = self._crossings(answer, cursor, bd, record.route_down)
        bd["backhaul"] = t1 - cursor
        record.hops = len(prompt.crossings) + (len(answer.crossings) if answer else 0)
        record.breakdown = {k: v for k, v in bd.items() if v}

    def _crossings(self, msg: _Message, cursor: float, bd: dict[str, float],
                   route: list[str]) -> float:
        world = self.world
        for i, cr in enumerate(msg.crossings):
            if i == 0:
                route.append(world.name(cr.frm))
            route.append(world.name(cr.to))
            if cr.end is None:
                break
            kind = cr.kind
            bd[f"{kind}.contact_wait"] = bd.get(f"{kind}.contact_wait", 0.0) + (
                cr.record.start - cursor)
            parts = split_intervals(cr.record.start, cr.end, cr.record.intervals)
            for comp, value in parts.items():
                bd[f"{kind}.{comp}"] = bd.get(f"{kind}.{comp}", 0.0) + value
            cursor = cr.end
        return cursor


def run_constellation(scenario: ConstellationScenario, backend: ModelBackend, *,
                      duration_s: float | None = None, world: World | None = None
                      ) -> ConstellationReport:
    """Run the scenario's traffic for ``duration_s`` (default: ``[scenario] duration_s``) and
    return the report (module docstring). ``world`` reuses geometry built for the same
    scenario and a long enough horizon."""
    duration = scenario.duration_s if duration_s is None else duration_s
    horizon = duration + scenario.traffic.timeout_s + 60.0
    if world is None:
        world = build_world(scenario, horizon)
    arrivals = poisson_arrivals(scenario, duration, len(world.stations))
    scenario = dataclasses.replace(scenario, duration_s=duration)
    world = dataclasses.replace(world, scenario=scenario)
    run = _ConstellationRun(world, backend, arrivals)
    return engine.run_simulation(run.main, seed=scenario.seed)
