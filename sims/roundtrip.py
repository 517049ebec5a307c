"""The end-to-end prompt round trip in virtual time, with its latency breakdown.

One run builds the scenario's topology — ground station, relay satellite(s), the compute
satellite — puts a hop endpoint (:mod:`linkstack.hops`) at each end of every hop, moves their
coded units over the scenario's simulated links (:mod:`linkstack.sims.link`), runs the onboard
model endpoint (:mod:`linkstack.payload.endpoint`) on the compute satellite with a real backend,
and sends prompts from the ground one after the other. Virtual time advances by the modelled
coding compute (octets / the node's ``coding_rate_bps``) and by the measured inference time
scaled by the compute node's flight profile; nothing waits on the wall clock.

The path a prompt takes is a chain of *segments*, contiguous in time:
``uplink → isl… → onboard → isl… → downlink``. Segment *i* runs from the end of segment *i−1*
(the prompt's creation for the first) to the moment the last packet of the message leaves the
hop's receiving endpoint. Inside a segment every instant is given to one component
(:mod:`linkstack.sims.breakdown`); so the rows of the breakdown sum to the measured total
exactly. The *bound* is what physics alone needs for the same run: per hop the propagation delay
plus the serialization of the message octets (the AI payload message, no protocol overhead) at
the link rate, plus the inference time.

Streaming (``[run] stream_tokens`` / ``stream_interval_s``): the onboard driver replays the
generation's measured pieces (:attr:`~linkstack.payload.backend.Generation.pieces`) at their
scaled times, the endpoint cuts PartialResults from them, and they go down the same path as
the Result. ``ttft_s`` is the time from the prompt's creation to the arrival at the ground of
the first partial result with text (the Result's arrival when nothing was streamed); it is
reported beside ``total_s`` and is not a row of the breakdown (the breakdown follows the final
Result).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from linkstack.hops.base import HopEndpoint, Unit
from linkstack.payload.backend import ModelBackend, scaled_inference_s
from linkstack.payload.client import PartialReceived, PromptClient, ResultReceived
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, ResultSent
from linkstack.payload.messages import GenerationParams, Result, Status
from linkstack.payload.transport import TransportConfig
from linkstack.sims import engine
from linkstack.sims.breakdown import COMPONENTS, HopRecord, split_intervals
from linkstack.sims.link import Delivery, Direction
from linkstack.sims.scenario import LinkSpec, Scenario
from linkstack.sims.topology import build_endpoints, plan_path, rf_config
from linkstack.spp.packet import PRIMARY_HEADER_SIZE

NS = 1_000_000_000


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class PromptReport:
    """One prompt's round trip."""

    request_id: int
    prompt: str
    answer: str
    status: str
    total_s: float
    bound_s: float
    breakdown: dict[str, float]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    inference_s: float = 0.0
    ttft_s: float = 0.0
    """Time to first token: prompt created → first text (a partial result) at the ground."""
    segments: int = 0
    """Partial results that reached the ground before the Result."""
    partials: list[tuple[float, int, str, str]] = field(default_factory=list, repr=False)
    """Each partial result at the ground: (seconds since the prompt's creation, segment, the
    text it made contiguous, the answer so far); not in :meth:`as_dict`."""

    @property
    def ratio(self) -> float:
        return self.total_s / self.bound_s if self.bound_s > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id, "prompt": self.prompt, "answer": self.answer,
            "status": self.status, "total_s": self.total_s, "ttft_s": self.ttft_s,
            "segments": self.segments, "bound_s": self.bound_s,
            "ratio": self.ratio, "breakdown": self.breakdown,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
        }


@dataclass
class RunReport:
    scenario: str
    prompts: list[PromptReport]
    hops: list[str]
    link_status: dict[str, Any]
    segments: list[str] = field(default_factory=list)
    """Breakdown row prefixes in path order: forward links, ``onboard``, return links."""

    def summary(self) -> dict[str, dict[str, float]]:
        """Median and p95 of total, time to first token, bound and ratio over the answered
        prompts."""
        ok = [p for p in self.prompts if p.status == "ok"] or self.prompts
        out: dict[str, dict[str, float]] = {}
        for key in ("total_s", "ttft_s", "bound_s", "ratio"):
            values = sorted(getattr(p, key) for p in ok)
            out[key] = {"median": statistics.median(values), "p95": percentile(values, 95)}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "hops": self.hops, "segments": self.segments,
                "prompts": [p.as_dict() for p in self.prompts], "summary": self.summary(),
                "links": self.link_status}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class _Message:
    """Accounting for one message (a prompt or a result) along the path."""

    key: tuple[str, int]
    octets: int
    packets: int
    hops: dict[str, HopRecord] = field(default_factory=dict)
    packets_left: dict[str, int] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)
    propagation: dict[str, float] = field(default_factory=dict)


class Accountant(Protocol):
    """Who a :class:`Port` tells about each unit it received and accepted."""

    def account(self, hop: str, unit: Unit, d: Delivery, coding: tuple[float, float],
                decoding: tuple[float, float]) -> None: ...


class Port:
    """One endpoint bound to the direction it transmits on, with its own transmit task.

    ``quiet`` (optional) says when the endpoint's own timer may be ignored: the port then
    sleeps until :meth:`kick`. The constellation uses it for the spacecraft end of an RF hop,
    whose periodic CLCW is only needed while the ground end has frames outstanding.
    """

    def __init__(self, run: Accountant, endpoint: HopEndpoint, tx: Direction, hop: str,
                 coding_rate: float, on_packets: Callable[[list[bytes], float], None],
                 capture: Any = None, quiet: Callable[[], bool] | None = None) -> None:
        self.run = run
        self.quiet = quiet
        self.capture = capture  # a linkstack.capture.pcap.SendCapture, or None
        self.endpoint = endpoint
        self.tx = tx
        self.hop = hop
        self.coding_rate = coding_rate
        self.on_packets = on_packets
        self.wake = trio.Event()

    def coding_s(self, octets: int) -> float:
        return 0.0 if math.isinf(self.coding_rate) else octets * 8 / self.coding_rate

    def kick(self) -> None:
        self.wake.set()

    def _timers_due(self, now: float) -> None:
        """Run the endpoint's timer if its deadline has come."""
        deadline = self.endpoint.next_deadline()
        if deadline is not None and deadline <= now:
            self.endpoint.on_timer(now)

    def _wake_at(self) -> float | None:
        """When the port must look at its endpoint again unkicked (None: only when kicked)."""
        return None if self.quiet is not None and self.quiet() else self.endpoint.next_deadline()

    async def transmit_loop(self) -> None:
        ep = self.endpoint
        while True:
            now = engine.now()
            self._timers_due(now)
            for unit in ep.poll(now):
                t0 = engine.now()
                if self.capture is not None:
                    self.capture.unit(unit.data, t0)
                enc = self.coding_s(len(unit.data))
                if enc:
                    await trio.sleep(enc)
                await self.tx.send(unit.data, (unit, t0, t0 + enc))
            self.wake = trio.Event()
            deadline = self._wake_at()
            if deadline is None:  # no timer: no cancel scope to enter and leave
                await self.wake.wait()
            else:
                with trio.move_on_at(deadline):
                    await self.wake.wait()

    async def receive(self, delivery: Delivery) -> None:
        if delivery.erased:
            return
        dec = self.coding_s(len(delivery.unit))
        if dec:
            await trio.sleep(dec)
        self._take(delivery, engine.now())

    def _take(self, delivery: Delivery, now: float) -> None:
        """The endpoint takes a unit that arrived and was decoded by ``now``."""
        unit, t_code0, t_code1 = delivery.meta
        rec = self.endpoint.receive(delivery.unit, now)
        if rec.accepted:
            self.run.account(self.hop, unit, delivery, (t_code0, t_code1),
                             (delivery.t_arrival / NS, now))
        self.kick()  # acks, CLCWs
        if rec.packets:
            self.on_packets(rec.packets, now)


class CallbackPort(Port):
    """A :class:`Port` run by the simulation's scheduler instead of by tasks, for endpoints
    whose coding takes no virtual time (``coding_rate`` infinite: the constellation's
    ASSUMPTION).

    The same steps as :meth:`Port.transmit_loop` and :meth:`Port.receive`, as callbacks:
    :meth:`kick` posts one *pump* at the current instant (timers due, then every unit
    ``poll`` gives is sent with ``send_nowait``), the endpoint's next deadline is one
    scheduler timer, and :meth:`deliver` is the direction's ``on_delivery``. Nothing
    waits in trio, so a unit crosses a hop with no task switch at all: on a constellation,
    where hops carry a few units each, the tasks' switches cost more than the stack.
    Units that a full ``block`` queue cannot take yet wait here, in order, and the port
    polls its endpoint again only once they are all sent, as the task does while
    :meth:`Direction.send` waits."""

    def __init__(self, run: Accountant, endpoint: HopEndpoint, tx: Direction, hop: str,
                 on_packets: Callable[[list[bytes], float], None],
                 quiet: Callable[[], bool] | None = None) -> None:
        super().__init__(run, endpoint, tx, hop, math.inf, on_packets, quiet=quiet)
        self._scheduler = engine.current_simulation().scheduler
        self._held: deque[Unit] = deque()  # polled, waiting for room in the queue
        self._pump_posted = False
        self._timer: engine.TimerHandle | None = None
        self._timer_at: float | None = None

    def kick(self) -> None:
        if not self._pump_posted:
            self._pump_posted = True
            self._scheduler.post(engine.now_ns(), self._pump, ())

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._pump()

    def _pump(self) -> None:
        self._pump_posted = False
        now = engine.now()
        self._timers_due(now)
        held = self._held
        if not held:
            held.extend(self.endpoint.poll(now))
        tx = self.tx
        t_ns = engine.now_ns()
        while held:
            room = tx.room_at_ns(t_ns)
            if room > t_ns:  # a full 'block' queue: go on when it has room
                self._pump_posted = True
                self._scheduler.post(room, self._pump, ())
                break
            unit = held.popleft()
            if self.capture is not None:
                self.capture.unit(unit.data, now)
            tx.send_nowait(unit.data, (unit, now, now))
        deadline = self._wake_at()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            # at the deadline's exact float time (Scheduler.call_at_s), as the task's
            # move_on_at: rounded to the nanosecond it could fall just short of it
            self._timer = None if deadline is None else self._scheduler.call_at_s(
                max(deadline, now), self._on_timer)

    async def transmit_loop(self) -> None:
        raise RuntimeError("a CallbackPort has no transmit task: kick() it")

    def deliver(self, delivery: Delivery) -> None:
        """What arrived on the direction this port receives (its ``on_delivery``)."""
        if not delivery.erased:
            self._take(delivery, engine.now())


class _Run:
    def __init__(self, scenario: Scenario, backend: ModelBackend,
                 prompts: Sequence[str], pcap: Any = None) -> None:
        self.pcap = pcap  # a linkstack.capture.pcap.PcapWriter, or None
        self.scenario = scenario
        self.backend = backend
        self.options = scenario.run
        self.prompts = list(prompts)
        self.hops = plan_path(scenario, scenario.run.compute)
        self.messages: dict[tuple[str, int], _Message] = {}
        self.packet_owner: dict[tuple[int, int, int], tuple[str, int]] = {}
        self.results: dict[int, Result] = {}
        self.ttft: dict[int, tuple[float, int]] = {}  # rid -> (ttft_s, segments)
        self.partials: dict[int, list[tuple[float, int, str, str]]] = {}
        self.result_done = trio.Event()
        self.inference: dict[int, tuple[float, float]] = {}  # rid -> (start, virtual seconds)
        self.onboard_wake = trio.Event()

    # -- accounting ------------------------------------------------------------------------
    def register(self, key: tuple[str, int], packets: list[bytes]) -> None:
        octets = sum(len(p) - PRIMARY_HEADER_SIZE for p in packets)
        self.messages[key] = _Message(key, octets, len(packets))
        for p in packets:
            self.packet_owner[_packet_id(p)] = key

    def handed(self, key: tuple[str, int], hop: str, count: int, now: float) -> None:
        msg = self.messages[key]
        if hop not in msg.hops:
            msg.hops[hop] = HopRecord(hop, start=now)
            msg.packets_left[hop] = count

    def arrived(self, hop: str, packets: list[bytes], now: float) -> None:
        for p in packets:
            key = self.packet_owner.get(_packet_id(p))
            if key is None:
                continue
            msg = self.messages[key]
            left = msg.packets_left.get(hop)
            if left is None:
                continue
            msg.packets_left[hop] = left - 1
            if left - 1 == 0:
                msg.done_at[hop] = now
                msg.hops[hop].end = now

    def account(self, hop: str, unit: Unit, d: Delivery, coding: tuple[float, float],
                decoding: tuple[float, float]) -> None:
        sdls = unit.sdls_octets / unit.frame_octets if unit.sdls_octets else 0.0
        for tag in unit.tags:
            msg = self.messages.get(tag)  # type: ignore[arg-type]
            if msg is None or hop not in msg.hops:
                continue
            rec = msg.hops[hop]
            rec.add_split("coding", *coding, sdls)
            rec.add_transmission(d.t_enqueued / NS, d.t_tx_start / NS, d.t_tx_end / NS,
                                 d.t_arrival / NS, sdls)
            rec.add_split("coding", *decoding, sdls)
            msg.propagation.setdefault(hop, (d.t_arrival - d.t_tx_end) / NS)

    # -- main ------------------------------------------------------------------------------
    async def main(self) -> RunReport:
        opts = self.options
        sc = self.scenario
        await trio.sleep_until(opts.start_s)
        rate = {"ground_station": opts.coding_rate_ground_bps or math.inf,
                "satellite": opts.coding_rate_satellite_bps or math.inf}
        directions: dict[str, Direction] = {}
        near_ports: list[Port] = []
        far_ports: list[Port] = []
        for hop in self.hops:
            near, far = build_endpoints(hop)
            up = hop.forward.build_direction()
            down = hop.back.build_direction()
            directions[hop.forward.name], directions[hop.back.name] = up, down
            near_kind = sc.nodes[hop.forward.source].kind
            far_kind = sc.nodes[hop.forward.destination].kind
            src, dst = hop.forward.source, hop.forward.destination
            near_ports.append(Port(self, near, up, hop.back.name,
                                    rate.get(near_kind, math.inf), self._noop,
                                    self._capture(near, src, dst)))
            far_ports.append(Port(self, far, down, hop.forward.name,
                                   rate.get(far_kind, math.inf), self._noop,
                                   self._capture(far, dst, src)))
        # routing: packets out of hop i's far end go into hop i+1's near end (prompts);
        # packets out of hop i's near end go into hop i-1's far end (results).
        n = len(self.hops)
        client_cfg = self._transport_config()
        self.client = PromptClient(client_cfg, timeout_s=opts.timeout_s)
        self.endpoint = ModelEndpoint(self.backend, EndpointConfig(
            transport=client_cfg, stream_tokens=opts.stream_tokens,
            stream_interval_s=opts.stream_interval_s))
        for i in range(n):
            near_ports[i].on_packets = self._route_down(i, far_ports)
            far_ports[i].on_packets = self._route_up(i, near_ports)
        ports = near_ports + far_ports
        self.near_ports, self.far_ports = near_ports, far_ports
        reports: list[PromptReport] = []
        async with trio.open_nursery() as nursery:
            for hop, near, far in zip(self.hops, near_ports, far_ports, strict=True):
                nursery.start_soon(self._receiver, directions[hop.forward.name], far)
                nursery.start_soon(self._receiver, directions[hop.back.name], near)
            for p in ports:
                nursery.start_soon(p.transmit_loop)
            nursery.start_soon(self._onboard)
            for text in self.prompts:
                reports.append(await self._one_prompt(text))
                await trio.sleep(opts.prompt_gap_s)
            nursery.cancel_scope.cancel()
        status = {p.endpoint.name: p.endpoint.status() for p in ports}
        segments = ([h.forward.name for h in self.hops] + ["onboard"]
                    + [h.back.name for h in reversed(self.hops)])
        return RunReport(sc.name, reports, [h.name for h in self.hops], status, segments)

    def _capture(self, endpoint: HopEndpoint, node: str, peer: str) -> Any:
        if self.pcap is None:
            return None
        from linkstack.capture.pcap import capture_for

        return capture_for(endpoint, self.pcap, node=node, peer=peer)

    def _transport_config(self) -> TransportConfig:
        limit = 65536
        for hop in self.hops:
            if hop.kind == "rf":
                limit = min(limit, rf_config(hop).max_packet_length - PRIMARY_HEADER_SIZE)
        return TransportConfig(max_data_length=min(limit, 1024))

    @staticmethod
    def _noop(packets: list[bytes], now: float) -> None:
        return None

    async def _receiver(self, direction: Direction, port: Port) -> None:
        async for delivery in direction.receive_channel:
            await port.receive(delivery)  # type: ignore[arg-type]

    def _route_up(self, i: int, near_ports: list[Port]) -> Callable[[list[bytes], float], None]:
        hop = self.hops[i].forward.name

        def route(packets: list[bytes], now: float) -> None:
            self.arrived(hop, packets, now)
            if i + 1 < len(self.hops):
                self._hand(near_ports[i + 1], self.hops[i + 1].forward.name, packets, now)
            else:
                for p in packets:
                    self._reject(self.endpoint.receive_packet(p, now), now)
                self.onboard_wake.set()
        return route

    def _reject(self, events: Sequence[object], now: float) -> None:
        """Send down the results the endpoint gave without the model (``prompt_too_long``,
        ``unknown_model``, ``busy``, ``malformed``...), as the UDP satellite does."""
        for ev in events:
            if isinstance(ev, ResultSent):
                self._downlink_result(ev.result.request_id, ev.packets, now)

    def _downlink_result(self, rid: int, packets: list[bytes], now: float) -> None:
        self.register(("result", rid), packets)
        last = len(self.hops) - 1
        self._hand(self.far_ports[last], self.hops[last].back.name, packets, now)

    def _route_down(self, i: int, far_ports: list[Port]) -> Callable[[list[bytes], float], None]:
        hop = self.hops[i].back.name

        def route(packets: list[bytes], now: float) -> None:
            self.arrived(hop, packets, now)
            if i > 0:
                self._hand(far_ports[i - 1], self.hops[i - 1].back.name, packets, now)
            else:
                for p in packets:
                    for ev in self.client.receive_packet(p, now):
                        if isinstance(ev, ResultReceived):
                            self.ttft[ev.request_id] = (ev.ttft_s, ev.segments)
                        elif isinstance(ev, PartialReceived):
                            self.partials.setdefault(ev.request_id, []).append(
                                (ev.elapsed_s, ev.partial.segment, ev.new_text, ev.text))
                        result = getattr(ev, "result", None)
                        if isinstance(result, Result):
                            self.results[result.request_id] = result
                            self.result_done.set()
        return route

    def _hand(self, port: Port, hop: str, packets: list[bytes], now: float) -> None:
        if port.capture is not None:
            port.capture.packets(packets, now)
        for p in packets:
            key = self.packet_owner.get(_packet_id(p))
            if key is not None:
                self.handed(key, hop, self.messages[key].packets, now)
            port.endpoint.send_packet(p, key, now=now)
        port.kick()

    async def _onboard(self) -> None:
        profile = self.options.flight_profile
        while True:
            now = engine.now()
            job = self.endpoint.next_job(now)
            if job is None:
                await self.onboard_wake.wait()
                self.onboard_wake = trio.Event()
                continue
            try:
                generation = self.backend.generate(job.prompt.text, job.prompt.params)
            except Exception as exc:  # the backend failing is a result, as in the drivers
                packets = self.endpoint.fail(job, now, Status.BACKEND_ERROR, f"{exc}")
                self._downlink_result(job.prompt.request_id, packets, now)
                continue
            virtual = scaled_inference_s(generation.inference_s, profile)
            rid = job.prompt.request_id
            self.inference[rid] = (now, virtual)
            last = len(self.hops) - 1
            if self.endpoint.config.streaming:
                for elapsed, tokens, chars in generation.pieces:
                    await trio.sleep_until(now + min(scaled_inference_s(elapsed, profile),
                                                     virtual))
                    t = engine.now()
                    parts = self.endpoint.progress(job, generation.text[:chars], tokens, t)
                    if parts:
                        self.register((f"partial{job.segments}", rid), parts)
                        self._hand(self.far_ports[last], self.hops[last].back.name, parts, t)
            await trio.sleep_until(now + virtual)
            done = engine.now()
            packets = self.endpoint.complete(job, generation, done)
            self._downlink_result(job.prompt.request_id, packets, done)

    async def _one_prompt(self, text: str) -> PromptReport:
        opts = self.options
        t0 = engine.now()
        params = GenerationParams(max_tokens=opts.max_tokens, temperature=opts.temperature,
                                  seed=self.scenario.seed)
        rid, packets = self.client.ask(text, t0, params=params)
        self.register(("prompt", rid), packets)
        self._hand(self.near_ports[0], self.hops[0].forward.name, packets, t0)
        with trio.move_on_after(opts.timeout_s):
            while rid not in self.results:
                self.result_done = trio.Event()
                await self.result_done.wait()
        t1 = engine.now()
        result = self.results.get(rid)
        return self._report(rid, text, result, t0, t1)

    def _report(self, rid: int, text: str, result: Result | None, t0: float,
                t1: float) -> PromptReport:
        prompt = self.messages[("prompt", rid)]
        answer = self.messages.get(("result", rid))
        breakdown: dict[str, float] = {}
        bound = 0.0
        cursor = t0
        for hop in self.hops:
            cursor, b = self._segment(prompt, hop.forward, cursor, breakdown)
            bound += b
        start, infer = self.inference.get(rid, (cursor, 0.0))
        if answer is not None:
            breakdown["onboard.queueing"] = start - cursor
            breakdown["onboard.inference"] = infer
            bound += infer
            cursor = start + infer
            for hop in reversed(self.hops):
                cursor, b = self._segment(answer, hop.back, cursor, breakdown)
                bound += b
        if result is None or cursor != t1:
            breakdown["unaccounted"] = t1 - cursor
        status = "timeout" if result is None else Status(result.status).name.lower()
        ttft, segments = self.ttft.get(rid, (t1 - t0, 0))
        return PromptReport(
            rid, text, result.text if result else "", status, t1 - t0, bound, breakdown,
            result.prompt_tokens if result else 0, result.completion_tokens if result else 0,
            infer, ttft, segments, self.partials.get(rid, []),
        )

    def _segment(self, msg: _Message, link: LinkSpec, cursor: float,
                 breakdown: dict[str, float]) -> tuple[float, float]:
        rec = msg.hops.get(link.name)
        if rec is None or rec.end is None:
            return cursor, 0.0
        parts = split_intervals(cursor, rec.end, rec.intervals)
        for comp in COMPONENTS:
            breakdown[f"{link.name}.{comp}"] = parts[comp]
        bound = msg.propagation.get(link.name, 0.0) + msg.octets * 8 / link.rate_bps
        return max(cursor, rec.end), bound


def _packet_id(packet: bytes) -> tuple[int, int, int]:
    """(packet type, APID, sequence count) of an encoded Space Packet."""
    return (packet[0] >> 4) & 1, ((packet[0] & 7) << 8) | packet[1], \
        ((packet[2] & 0x3F) << 8) | packet[3]


def run_roundtrip(scenario: Scenario, backend: ModelBackend, *,
                  prompts: Sequence[str] | None = None, pcap: str | Path | None = None
                  ) -> RunReport:
    """Run the round trip of ``prompts`` (default: the scenario's ``[run] prompts``) through
    the scenario, seeded by ``[scenario] seed``, and return the report.

    With ``pcap``, every coded unit each node sends, the transfer frame in it and the Space
    Packets handed to each hop are written to that file (:mod:`linkstack.capture.pcap`),
    stamped with virtual time (nanoseconds from the epoch), one IPv4 address per node.
    """
    if pcap is None:
        run = _Run(scenario, backend, scenario.run.prompts if prompts is None else prompts)
        return engine.run_simulation(run.main, seed=scenario.seed)
    from linkstack.capture.pcap import PcapWriter, node_addresses

    with PcapWriter(pcap, nanosecond=True, addresses=node_addresses(scenario.nodes)) as writer:
        run = _Run(scenario, backend, scenario.run.prompts if prompts is None else prompts,
                   writer)
        return engine.run_simulation(run.main, seed=scenario.seed)
