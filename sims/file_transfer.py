"""File delivery with CFDP through the stack, in virtual time, across contact gaps.

One run builds the scenario's path to a satellite (:func:`linkstack.sims.topology.plan_path`,
the same hops and stacks as the prompt round trip: COP-1 over TC in CLTUs up, TM with the CLCW
down, selective repeat over USLP on the laser ISLs), puts a CFDP entity
(:mod:`linkstack.cfdp.entity`) at the ground station and one on the satellite, and moves their
PDUs — one per Space Packet on APID 0x102 (:mod:`linkstack.cfdp.transport`) — over the
scenario's simulated links with :class:`linkstack.sims.roundtrip.Port`, as the round trip
moves prompts.

* **Upload** (:func:`run_upload`): the ground sends a file; its Metadata PDU carries a manifest
  (SHA-256, size, kind: :mod:`linkstack.cfdp.models`). Onboard, once CFDP reports the file
  complete, its SHA-256 and size are checked against the manifest, and a model upload is
  swapped into the onboard :class:`~linkstack.cfdp.models.ModelRegistry` only if they match.
* **Download** (:func:`run_download`): the ground asks with a Proxy Put Request (a
  metadata-only transaction); the satellite's entity sends the file back.

Passes. The RF hop is only up during the LEO passes of the scenario (``[outages] model =
"pass"``, or any predictable outage model). Both entities know the contact plan, as real
operations do: at each loss of signal the driver suspends both (nothing is sent, every CFDP
timer stops), at each acquisition it resumes them, so a transfer that does not fit one pass
goes on in the next with its timers intact. Random outages (laser pointing losses) are not
predictable and are left to the ISL's selective repeat.

Flow control. An entity reads new file data only while fewer than ``window`` of its packets
are on their way to the other entity (twice the path's bandwidth-delay product, at least 16
packets); a packet not seen at the far end within a few round trips is taken as lost (a
downlink has no ARQ). So the CFDP timers see the path, not a deep queue.

The report: total time (request to the file stored and verified at its destination), the
*bound* — the earliest the file's octets could arrive if each hop sent them back to back at
its rate, only inside its contact windows (gaps count), plus propagation (:func:`file_bound`)
— their ratio, the octets retransmitted (CFDP file data sent again, and frames the ARQ of each
hop sent again), the passes used and the SHA-256 of the stored file.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from linkstack.cfdp.entity import (
    CfdpEntity,
    EntityConfig,
    Fault,
    ProxyPutRefused,
    PutRefused,
    SegmentReceived,
    StoreFull,
    TransactionFinished,
    TransferClass,
)
from linkstack.cfdp.filestore import MemoryFilestore
from linkstack.cfdp.models import InstallResult, Manifest, ModelInfo, ModelRegistry
from linkstack.cfdp.transport import (
    CFDP_APID,
    GROUND_ENTITY,
    ONBOARD_ENTITY,
    PduPacketizer,
    max_pdu_length,
    pdu_of,
)
from linkstack.errors import ConfigError, DecodeError
from linkstack.hops.base import HopEndpoint, Reception, Unit
from linkstack.sims import engine
from linkstack.sims.channel import AlwaysUp, PointingLosses, Visibility
from linkstack.sims.link import Delivery, Direction
from linkstack.sims.roundtrip import Port
from linkstack.sims.scenario import LinkSpec, Scenario
from linkstack.sims.topology import Hop, build_endpoints, plan_path, rf_config, worst_lag_s
from linkstack.spp.packet import PRIMARY_HEADER_SIZE, PacketType

__all__ = [
    "GROUND_ENTITY",
    "ONBOARD_ENTITY",
    "Progress",
    "TransferReport",
    "check_satellite",
    "contact_windows",
    "default_registry",
    "file_bound",
    "onboard_products",
    "run_download",
    "run_upload",
]

NS = 1_000_000_000
_DAY = 86400.0


# --------------------------------------------------------------------------------------------
# Contact windows and the bound


def _up_windows(vis: Visibility, t0: float, t1: float) -> list[tuple[float, float]]:
    """The up intervals of ``vis`` within ``[t0, t1]`` (seconds)."""
    downs = sorted(vis.down_overlapping(round(t0 * NS), round(t1 * NS)))
    out: list[tuple[float, float]] = []
    cursor = t0
    for ds, de in downs:
        s, e = ds / NS, de / NS
        if s > cursor:
            out.append((cursor, min(s, t1)))
        cursor = max(cursor, e)
        if cursor >= t1:
            break
    if cursor < t1:
        out.append((cursor, t1))
    return out


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]
               ) -> list[tuple[float, float]]:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _predictable(spec: LinkSpec) -> Visibility | None:
    """The spec's outage schedule if it can be predicted (not random pointing losses)."""
    if spec.outages.model in ("none", "pointing"):
        return None
    return spec.build_visibility()


def contact_windows(hops: Sequence[Hop], t0: float, t1: float) -> list[tuple[float, float]]:
    """The intervals within ``[t0, t1]`` in which every predictable outage schedule of the
    path (both directions of each hop: contact windows of RF passes, scheduled outages) is
    up: when the two CFDP entities can talk."""
    windows = [(t0, t1)]
    for hop in hops:
        for spec in (hop.forward, hop.back):
            vis = _predictable(spec)
            if vis is not None:
                windows = _intersect(windows, _up_windows(vis, t0, t1))
    return windows


def _advance(vis: Visibility, start: float, busy: float) -> float:
    """When a transmitter that starts at ``start`` has been up for ``busy`` seconds."""
    t = start
    left = busy
    while left > 1e-15:
        downs = [d for d in sorted(vis.down_overlapping(round(t * NS), round((t + left) * NS)))
                 if d[1] / NS > t]
        if not downs:
            return t + left
        ds, de = downs[0][0] / NS, downs[0][1] / NS
        if ds > t:
            left -= ds - t
        t = de
        if math.isinf(t) or t > 1e12:
            return math.inf
    return t


def file_bound(directions: Sequence[Direction], octets: int, t0: float, *,
               pieces: int = 2048) -> float:
    """Seconds from ``t0`` until ``octets`` could have arrived over ``directions`` in order,
    each hop sending them back to back at its rate and only while it is up (its contact
    windows and outages), store and forward, plus each hop's propagation delay.

    The file is cut into ``pieces`` equal pieces (a piece moves on as soon as it arrived);
    the result exceeds the fluid limit by at most one piece's serialization per hop after the
    first (microseconds on the fast hops), and no protocol overhead is counted."""
    if octets <= 0:
        return 0.0
    n = max(1, min(pieces, octets))
    piece = -(-octets // n)
    n = -(-octets // piece)
    ready = [t0] * n
    for direction in directions:
        vis = direction.visibility
        try:
            vis.down_overlapping(round(t0 * NS), round(t0 * NS) + 1)
        except RuntimeError:  # random outages never drawn: the link was not used
            vis = AlwaysUp()
        free = t0
        out = []
        for k, at in enumerate(ready):
            size = min(piece, octets - k * piece)
            end = _advance(vis, max(at, free), size * 8 / direction.rate_bps)
            free = end
            if math.isinf(end):
                return math.inf
            out.append(end + direction.propagation.delay_ns(round(end * NS)) / NS)
        ready = out
    return ready[-1] - t0


# --------------------------------------------------------------------------------------------
# Reports


@dataclass
class Progress:
    """One progress update (virtual time)."""

    now: float
    elapsed: float
    octets: int
    size: int
    passes: int
    in_contact: bool
    eta_s: float | None


@dataclass
class TransferReport:
    """One file transfer."""

    scenario: str
    direction: str
    satellite: str
    file: str
    transfer_class: int
    status: str
    size: int
    total_s: float
    bound_s: float
    retransmitted_octets: int
    retransmitted: dict[str, int]
    passes: int
    sha256: str | None
    source_sha256: str
    stored_octets: int
    start_s: float
    confirmed_s: float | None
    hops: list[str]
    model: dict[str, Any] | None = None
    detail: str = ""
    cfdp: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    windows: list[tuple[float, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.total_s / self.bound_s if self.bound_s > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "direction": self.direction, "scenario": self.scenario,
            "satellite": self.satellite, "file": self.file, "class": self.transfer_class,
            "size": self.size, "total_s": self.total_s, "bound_s": self.bound_s,
            "ratio": self.ratio, "retransmitted_octets": self.retransmitted_octets,
            "retransmitted": self.retransmitted, "passes": self.passes,
            "sha256": self.sha256, "source_sha256": self.source_sha256,
            "stored_octets": self.stored_octets, "start_s": self.start_s,
            "confirmed_s": self.confirmed_s, "hops": self.hops, "model": self.model,
            "detail": self.detail,
            "apid": CFDP_APID, "cfdp": self.cfdp, "links": self.links,
            "contact_windows": [list(w) for w in self.windows],
        }


def default_registry() -> ModelRegistry:
    """The onboard registry before any upload: the factory model (its digest unknown here)."""
    return ModelRegistry(ModelInfo("gemma-3-270m-q4_k_m.gguf (factory)", "", 0,
                                   "models/gemma-3-270m-q4_k_m.gguf", 1))


def onboard_products(size: int | None = None) -> MemoryFilestore:
    """Files the satellite has produced, for ``download``: a long answer of the onboard model
    (text) and a housekeeping log (binary); ``size`` sets both sizes (octets)."""
    answer = (
        "Q: Explain how a CCSDS space link carries a file from orbit to the ground.\n"
        "A: The file is cut into CFDP file data PDUs; each rides in a Space Packet, the "
        "packets are multiplexed into transfer frames, protected by Reed-Solomon codes, and "
        "sent during each pass; what is lost is asked for again with NAKs, and the receiver "
        "checks the whole file against its checksum before it says Finished.\n")
    text_size = size if size is not None else 48_000
    text = (answer * (text_size // len(answer) + 1)).encode()[:text_size]
    log_size = size if size is not None else 200_000
    log = hashlib.shake_256(b"housekeeping").digest(log_size)
    return MemoryFilestore({"answers/long-answer.txt": text, "telemetry/housekeeping.bin": log})


# --------------------------------------------------------------------------------------------
# The run


class _Counting:
    """A hop endpoint that counts the frame octets its ARQ sends again."""

    def __init__(self, endpoint: HopEndpoint, counter: Counter[str], key: str) -> None:
        self.inner = endpoint
        self.name = endpoint.name
        self.counter = counter
        self.key = key

    def send_packet(self, packet: bytes, tag: object = None, *, now: float) -> None:
        self.inner.send_packet(packet, tag, now=now)

    def poll(self, now: float) -> list[Unit]:
        units = self.inner.poll(now)
        for u in units:
            if u.retransmission:
                self.counter[self.key] += u.frame_octets
        return units

    def receive(self, data: bytes, now: float) -> Reception:
        return self.inner.receive(data, now)

    def next_deadline(self) -> float | None:
        return self.inner.next_deadline()

    def on_timer(self, now: float) -> None:
        self.inner.on_timer(now)

    def status(self) -> dict[str, object]:
        return self.inner.status()


@dataclass
class _Side:
    """One CFDP entity and where its packets enter the path."""

    name: str
    entity: CfdpEntity
    port: Port
    packetizer: PduPacketizer
    node: str = ""
    peer: str = ""
    wake: trio.Event = field(default_factory=trio.Event)
    inflight: dict[int, float] = field(default_factory=dict)  # packet count -> handed at


class _Transfer:
    def __init__(self, scenario: Scenario, satellite: str, direction: str,
                 transfer_class: int, ground: MemoryFilestore, onboard: MemoryFilestore,
                 source_name: str, dest_name: str, *, registry: ModelRegistry | None,
                 swap: bool, messages: Sequence[bytes], expected: Manifest | None,
                 timeout_s: float | None, progress: Callable[[Progress], None] | None,
                 pcap: Any = None, dest_entity: int = 2, cancel_at_s: float | None = None
                 ) -> None:
        self.dest_entity = dest_entity
        self.cancel_at_s = cancel_at_s  # a Cancel.request from the ground, seconds after start
        self.detail = ""
        self.cancelled = False
        self.pcap = pcap  # a linkstack.capture.pcap.PcapWriter, or None
        self.scenario = scenario
        self.satellite = satellite
        self.direction = direction
        self.cls = TransferClass(transfer_class)
        self.ground_store = ground
        self.onboard_store = onboard
        self.source_name = source_name
        self.dest_name = dest_name
        self.registry = registry
        self.swap = swap
        self.messages = list(messages)
        self.expected = expected
        self.progress = progress
        self.hops = plan_path(scenario, satellite)
        self.retransmitted: Counter[str] = Counter()
        self.done = trio.Event()
        self.finished: TransactionFinished | None = None
        self.fault: str | None = None
        self.install: InstallResult | None = None
        self.confirmed_s: float | None = None
        self.octets = 0
        self.passes_seen = 0
        self.in_contact = False
        self.contact_s = 0.0
        self.max_pdu = self._max_pdu()
        t0 = scenario.run.start_s
        size = self._size()
        self.size = size
        self.prebound = self._prebound(size, t0)
        self.timeout_s = timeout_s if timeout_s is not None else max(
            4 * self.prebound + 2 * 3600.0, 3600.0)
        self.windows = contact_windows(self.hops, t0, t0 + self.timeout_s + _DAY)
        self._last_progress = -1.0

    # -- set-up ----------------------------------------------------------------------------
    def _size(self) -> int:
        store = self.ground_store if self.direction == "upload" else self.onboard_store
        data = store.get(self.source_name)
        return 0 if data is None else len(data)

    def _max_pdu(self) -> int:
        longest = 1024 + PRIMARY_HEADER_SIZE
        for hop in self.hops:
            if hop.kind == "rf":
                longest = min(longest, rf_config(hop).max_packet_length)
        return max_pdu_length(longest)

    def _path_specs(self) -> list[LinkSpec]:
        if self.direction == "upload":
            return [h.forward for h in self.hops]
        return [h.back for h in reversed(self.hops)]

    def _prebound(self, size: int, t0: float) -> float:
        dirs = [spec.build_direction() for spec in self._path_specs()]
        for d, spec in zip(dirs, self._path_specs(), strict=True):
            if isinstance(d.visibility, PointingLosses) or spec.outages.model == "pointing":
                d.visibility = AlwaysUp()
        return file_bound(dirs, size, t0)

    def _rtt(self) -> float:
        rtt = 0.0
        for hop in self.hops:
            for spec in (hop.forward, hop.back):
                rtt += spec.build_propagation().delay_ns(0) / NS
                rtt += 8 * (self.max_pdu + 64) / spec.rate_bps
                rtt += worst_lag_s(spec, self.max_pdu + 64)
        return rtt

    def _entity_config(self, entity_id: int) -> EntityConfig:
        rtt = self._rtt()
        lag = max(worst_lag_s(s, self.max_pdu + 64) for h in self.hops
                  for s in (h.forward, h.back))
        window_s = self._window() * 8 * self.max_pdu / min(s.rate_bps for s in self._path_specs())
        ack = max(10.0, 4 * rtt + 2 * window_s)
        nak = max(2.0, 4 * rtt + 2 * window_s)  # restarted by every missing segment that comes
        return EntityConfig(entity_id, max_pdu_length=self.max_pdu, ack_timer_s=ack,
                            ack_limit=10, nak_timer_s=nak, nak_limit=10,
                            check_timer_s=max(10.0, 4 * rtt), check_limit=3,
                            closure_timer_s=6 * ack, nak_hold_s=lag,
                            renak_guard_s=min(nak / 2, max(0.5, 2 * rtt)))

    def _window(self) -> int:
        rate = min(s.rate_bps for s in self._path_specs())
        bdp = rate * self._rtt() / (8 * self.max_pdu)
        return max(16, math.ceil(2 * bdp))

    # -- the run ---------------------------------------------------------------------------
    async def main(self) -> TransferReport:
        sc = self.scenario
        t0 = sc.run.start_s
        await trio.sleep_until(t0)
        rate = {"ground_station": sc.run.coding_rate_ground_bps or math.inf,
                "satellite": sc.run.coding_rate_satellite_bps or math.inf}
        self.directions: dict[str, Direction] = {}
        near_ports: list[Port] = []
        far_ports: list[Port] = []
        for hop in self.hops:
            near, far = build_endpoints(hop)
            up = hop.forward.build_direction()
            down = hop.back.build_direction()
            self.directions[hop.forward.name], self.directions[hop.back.name] = up, down
            near_kind = sc.nodes[hop.forward.source].kind
            far_kind = sc.nodes[hop.forward.destination].kind
            src, dst = hop.forward.source, hop.forward.destination
            near_ports.append(Port(self, _Counting(near, self.retransmitted, hop.forward.name),
                                   up, hop.back.name, rate.get(near_kind, math.inf),
                                   self._noop, self._capture(near, src, dst)))
            far_ports.append(Port(self, _Counting(far, self.retransmitted, hop.back.name),
                                  down, hop.forward.name, rate.get(far_kind, math.inf),
                                  self._noop, self._capture(far, dst, src)))
        n = len(self.hops)
        for i in range(n):
            near_ports[i].on_packets = self._route_down(i, far_ports)
            far_ports[i].on_packets = self._route_up(i, near_ports)
        ground = CfdpEntity(self._entity_config(GROUND_ENTITY), self.ground_store,
                            peers=[ONBOARD_ENTITY], now=t0)
        onboard = CfdpEntity(self._entity_config(ONBOARD_ENTITY), self.onboard_store,
                             peers=[GROUND_ENTITY], now=t0)
        self.ground = _Side("ground", ground, near_ports[0],
                            PduPacketizer(CFDP_APID, packet_type=PacketType.TC),
                            node=self.hops[0].forward.source,
                            peer=self.hops[0].forward.destination)
        self.onboard = _Side("onboard", onboard, far_ports[-1],
                             PduPacketizer(CFDP_APID, packet_type=PacketType.TM),
                             node=self.hops[-1].forward.destination,
                             peer=self.hops[-1].forward.source)
        self.window = self._window()
        self.expire_s = max(5.0, 6 * self._rtt())
        self.t0 = t0
        self.in_contact = any(a <= t0 < b for a, b in self.windows)
        if not self.in_contact:
            ground.suspend(t0)
            onboard.suspend(t0)
        if self.direction == "upload":
            msgs = list(self.messages)
            ground.put(self.dest_entity, self.source_name, self.dest_name, self.cls,
                       messages=msgs, now=t0)
        else:
            ground.request_file(ONBOARD_ENTITY, self.source_name, self.dest_name, self.cls,
                                now=t0)
        ports = near_ports + far_ports
        timed_out = False
        async with trio.open_nursery() as nursery:
            for hop, near, far in zip(self.hops, near_ports, far_ports, strict=True):
                nursery.start_soon(self._receiver, self.directions[hop.forward.name], far)
                nursery.start_soon(self._receiver, self.directions[hop.back.name], near)
            for p in ports:
                nursery.start_soon(p.transmit_loop)
            nursery.start_soon(self._run_side, self.ground, self.onboard)
            nursery.start_soon(self._run_side, self.onboard, self.ground)
            nursery.start_soon(self._contacts)
            if self.cancel_at_s is not None:
                nursery.start_soon(self._cancel_at, t0 + self.cancel_at_s)
            with trio.move_on_at(t0 + self.timeout_s):
                await self.done.wait()
            if not self.done.is_set():
                timed_out = True
                self._cancel()
                with trio.move_on_after(self._grace()):
                    await self.done.wait()
            self.t_done = self.finished.now if self.finished else engine.now()
            # let the sender hear the Finished PDU (its confirmation), briefly
            with trio.move_on_after(self._grace()):
                while not (ground.idle and onboard.idle):
                    await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
        return self._report(timed_out, [p.endpoint for p in ports])

    def _capture(self, endpoint: HopEndpoint, node: str, peer: str) -> Any:
        if self.pcap is None:
            return None
        from linkstack.capture.pcap import capture_for

        return capture_for(endpoint, self.pcap, node=node, peer=peer)

    def _grace(self) -> float:
        cfg = self.ground.entity.config
        return cfg.ack_timer_s * 3

    async def _cancel_at(self, at: float) -> None:
        """The operator's Cancel.request, sent from the ground at ``at`` (virtual time)."""
        await trio.sleep_until(at)
        if self.done.is_set():
            return
        self.cancelled = True
        self.detail = (f"cancelled from the ground at T+{at - self.t0:.1f} s "
                       f"({self.octets} of {self.size} octets delivered)")
        self._cancel()

    def _cancel(self) -> None:
        side = self.ground if self.direction == "upload" else self.onboard
        side.entity.cancel(engine.now())
        side.wake.set()

    @staticmethod
    def _noop(packets: list[bytes], now: float) -> None:
        return None

    def account(self, hop: str, unit: Unit, d: Delivery, coding: tuple[float, float],
                decoding: tuple[float, float]) -> None:
        return None

    async def _receiver(self, direction: Direction, port: Port) -> None:
        async for delivery in direction.receive_channel:
            await port.receive(delivery)
            if port is self.ground.port:
                self.ground.wake.set()
            elif port is self.onboard.port:
                self.onboard.wake.set()

    # -- routing ---------------------------------------------------------------------------
    def _route_up(self, i: int, near_ports: list[Port]) -> Callable[[list[bytes], float], None]:
        def route(packets: list[bytes], now: float) -> None:
            if i + 1 < len(self.hops):
                port = near_ports[i + 1]
                if port.capture is not None:
                    port.capture.packets(packets, now)
                for p in packets:
                    port.endpoint.send_packet(p, None, now=now)
                port.kick()
            else:
                self._deliver(self.onboard, self.ground, packets, now)
        return route

    def _route_down(self, i: int, far_ports: list[Port]
                    ) -> Callable[[list[bytes], float], None]:
        def route(packets: list[bytes], now: float) -> None:
            if i > 0:
                port = far_ports[i - 1]
                if port.capture is not None:
                    port.capture.packets(packets, now)
                for p in packets:
                    port.endpoint.send_packet(p, None, now=now)
                port.kick()
            else:
                self._deliver(self.ground, self.onboard, packets, now)
        return route

    def _deliver(self, side: _Side, peer: _Side, packets: list[bytes], now: float) -> None:
        for packet in packets:
            try:
                pdu = pdu_of(packet)
            except DecodeError:
                side.entity.ignored["malformed packet"] += 1
                continue
            if pdu is None:
                continue
            count = ((packet[2] & 0x3F) << 8) | packet[3]
            if peer.inflight.pop(count, None) is not None:
                peer.wake.set()
            side.entity.receive(pdu, now)
        self._events(side, now)
        side.wake.set()

    # -- the entities ----------------------------------------------------------------------
    async def _run_side(self, side: _Side, peer: _Side) -> None:
        ent = side.entity
        while True:
            now = engine.now()
            deadline = ent.next_deadline()
            if deadline is not None and deadline <= now:
                ent.on_timer(now)
            self._events(side, now)
            self._push(side, now)
            self._events(side, now)
            side.wake = trio.Event()
            wake_at = ent.next_deadline()
            if side.inflight and ent.has_output():
                oldest = min(side.inflight.values()) + self.expire_s
                wake_at = oldest if wake_at is None else min(wake_at, oldest)
            with trio.move_on_at(wake_at if wake_at is not None else math.inf):
                await side.wake.wait()

    def _push(self, side: _Side, now: float) -> None:
        ent = side.entity
        if side.inflight:
            stale = [c for c, t in side.inflight.items() if t + self.expire_s <= now]
            for c in stale:
                del side.inflight[c]
        room = self.window - len(side.inflight)
        sent = False
        while room > 0:
            pdus = ent.pull(now, limit=room)
            if not pdus:
                break
            for pdu in pdus:
                packet = side.packetizer.wrap(pdu)
                if self.pcap is not None:
                    t = round(now * NS)
                    self.pcap.write("spp", packet, time_ns=t, src=side.node, dst=side.peer)
                    self.pcap.write("cfdp", pdu, time_ns=t, src=side.node, dst=side.peer)
                side.inflight[((packet[2] & 0x3F) << 8) | packet[3]] = now
                side.port.endpoint.send_packet(packet, None, now=now)
            room -= len(pdus)
            sent = True
        if sent:
            side.port.kick()

    async def _contacts(self) -> None:
        sides = (self.ground, self.onboard)
        for aos, los in self.windows:
            now = engine.now()
            if los <= now:
                continue
            if aos > now:
                self.in_contact = False
                await trio.sleep_until(aos)
            now = engine.now()
            self.in_contact = True
            self.passes_seen += 1
            for s in sides:
                s.entity.resume(now)
                s.wake.set()
            self._report_progress(now, force=True)
            await trio.sleep_until(los)
            now = engine.now()
            self.in_contact = False
            self.contact_s += los - max(aos, self.t0)
            for s in sides:
                s.entity.suspend(now)
            self._report_progress(now, force=True)

    def _events(self, side: _Side, now: float) -> None:
        for ev in side.entity.events():
            if isinstance(ev, SegmentReceived) and ev.key[0] != side.entity.entity_id:
                if self._is_file_receiver(side):
                    self.octets = ev.received
                    self._report_progress(now)
            elif isinstance(ev, TransactionFinished):
                self._finished(side, ev, now)
            elif isinstance(ev, Fault) and self.fault is None:
                self.fault = ev.condition.name.lower()
            elif isinstance(ev, StoreFull):
                where = "onboard" if side is self.onboard else "ground"
                self.detail = (f"{where} store full: {ev.file} needs {ev.size} octets, "
                               f"{ev.free} free; refused at its Metadata PDU")
            elif isinstance(ev, PutRefused):
                self.fault = ev.reason
                self.detail = ev.detail
                self.done.set()
            elif isinstance(ev, ProxyPutRefused):
                self.fault = f"no_such_file: {ev.file}"
                self.done.set()

    def _is_file_receiver(self, side: _Side) -> bool:
        return (side is self.onboard) == (self.direction == "upload")

    def _finished(self, side: _Side, ev: TransactionFinished, now: float) -> None:
        if ev.role == "dest" and self._is_file_receiver(side) and ev.file is not None:
            if self.finished is None:
                self.finished = ev
                self._verify(side, ev)
                self.done.set()
        elif ev.role == "source" and not self._is_file_receiver(side) \
                and self.confirmed_s is None and ev.size is not None:
            self.confirmed_s = now
            if not ev.ok and self.cancelled:
                self.done.set()  # cancelled before the receiver had started

    def _verify(self, side: _Side, ev: TransactionFinished) -> None:
        if self.direction != "upload":
            return
        data = side.entity.filestore.get(ev.file or self.dest_name)
        manifest = self.expected or Manifest.find(ev.messages)
        if self.registry is not None and self.swap:
            self.install = self.registry.install(ev.file or self.dest_name, data, manifest,
                                                 transfer_ok=ev.ok)
        elif data is not None and manifest is not None and ev.ok and (
                hashlib.sha256(data).hexdigest() != manifest.sha256
                or len(data) != manifest.size):
            self.fault = "sha256_mismatch"

    def _report_progress(self, now: float, force: bool = False) -> None:
        if self.progress is None:
            return
        if (not force and self.size and self.octets < self.size
                and (self.octets - self._last_progress) < self.size / 200):
            return
        self._last_progress = self.octets
        self.progress(Progress(now, now - self.t0, self.octets, self.size,
                               self.passes_seen, self.in_contact, self._eta(now)))

    def _eta(self, now: float) -> float | None:
        left = self.size - self.octets
        if left <= 0:
            return 0.0
        spent = self.contact_s + (now - max(self.t0, self._window_start(now))
                                  if self.in_contact else 0.0)
        if self.octets > 0 and spent > 0:
            goodput = self.octets / spent
        else:
            goodput = min(s.rate_bps for s in self._path_specs()) / 8
        need = left / goodput
        t = now
        for aos, los in self.windows:
            if los <= t:
                continue
            start = max(t, aos)
            if start + need <= los:
                return start + need - now
            need -= los - start
            t = los
        return None

    def _window_start(self, now: float) -> float:
        for aos, los in self.windows:
            if aos <= now < los:
                return aos
        return now

    # -- the report ------------------------------------------------------------------------
    def _report(self, timed_out: bool, endpoints: list[Any]) -> TransferReport:
        fin = self.finished
        receiver = self.onboard if self.direction == "upload" else self.ground
        sender = self.ground if self.direction == "upload" else self.onboard
        stored = receiver.entity.filestore.get(self.dest_name)
        source = sender.entity.filestore.get(self.source_name) or b""
        if self.fault == "unknown_entity":
            status = "unknown_entity"
        elif timed_out and fin is None:
            status = "timeout"
        elif fin is None:
            status = self.fault or "failed"
        elif not fin.ok:
            status = fin.condition.name.lower() if fin.condition.name != "NO_ERROR" \
                else "data_incomplete"
        elif self.install is not None and not self.install.swapped:
            status = ("sha256_mismatch" if "SHA-256" in self.install.reason
                      else "size_mismatch" if "size" in self.install.reason
                      else "not_installed")
        else:
            status = self.fault if self.fault == "sha256_mismatch" else "ok"
        if timed_out and status != "timeout" and fin is not None and not fin.ok:
            status = f"timeout ({status})"
        end = fin.now if fin is not None else self.t_done
        total = end - self.t0
        path = [self.directions[s.name] for s in self._path_specs()]
        bound = file_bound(path, self.size, self.t0)
        passes = sum(1 for a, b in self.windows if a < end and b > self.t0)
        cfdp_retx = int(sender.entity.counters["retransmitted_octets"])
        retx = {"cfdp_file_data": cfdp_retx,
                **{f"arq_frames.{k}": int(v) for k, v in sorted(self.retransmitted.items())}}
        model = None
        if self.install is not None and self.registry is not None:
            model = self.install.as_dict()
        elif self.direction == "upload" and self.swap and self.registry is not None:
            active = self.registry.active
            model = {"swapped": False, "reason": "upload did not complete",
                     "active": asdict(active) if active is not None else None}
        return TransferReport(
            scenario=self.scenario.name, direction=self.direction, satellite=self.satellite,
            file=self.dest_name if self.direction == "upload" else self.source_name,
            transfer_class=int(self.cls), status=status, size=self.size, total_s=total,
            bound_s=bound, retransmitted_octets=sum(retx.values()), retransmitted=retx,
            passes=passes,
            sha256=hashlib.sha256(stored).hexdigest() if stored is not None else None,
            source_sha256=hashlib.sha256(source).hexdigest(),
            stored_octets=len(stored) if stored is not None else 0, start_s=self.t0,
            confirmed_s=(self.confirmed_s - self.t0) if self.confirmed_s is not None else None,
            hops=[h.name for h in self.hops], model=model, detail=self.detail,
            cfdp={"ground": self.ground.entity.status(), "onboard": self.onboard.entity.status(),
                  "max_pdu_length": self.max_pdu, "window_packets": self.window},
            links={ep.name: ep.status() for ep in endpoints},
            windows=[w for w in self.windows if w[0] < end and w[1] > self.t0],
        )


def check_satellite(scenario: Scenario, satellite: str | None, option: str) -> str:
    """The satellite a transfer goes to or comes from (ConfigError naming ``option``)."""
    sats = sorted(n for n, s in scenario.nodes.items() if s.kind == "satellite")
    if satellite is None:
        hops = plan_path(scenario, scenario.run.compute)
        return hops[-1].forward.destination
    if satellite not in sats:
        raise ConfigError(f"unknown satellite {satellite!r} (satellites: {', '.join(sats)})",
                          key=option)
    return satellite


def run_upload(scenario: Scenario, data: bytes, name: str, *, satellite: str | None = None,
               transfer_class: int = 2, swap: bool = False,
               registry: ModelRegistry | None = None, expected_sha256: str | None = None,
               onboard: MemoryFilestore | None = None, timeout_s: float | None = None,
               progress: Callable[[Progress], None] | None = None,
               pcap: str | Path | None = None, dest_entity: int = ONBOARD_ENTITY,
               store_capacity: int | None = None,
               cancel_after_s: float | None = None) -> TransferReport:
    """Upload ``data`` to ``satellite`` (default: the scenario's compute satellite), stored
    onboard as ``name``. With ``swap``, a verified upload becomes the active model of
    ``registry`` (default: :func:`default_registry`); ``expected_sha256`` replaces the digest
    of ``data`` in the manifest (the operator's published digest). With ``pcap``, every coded
    unit, transfer frame and Space Packet sent, and each CFDP PDU (UDP port 52008), is written
    to that file (:mod:`linkstack.capture.pcap`).

    Faults (each ends the run with a status naming it, the old model kept):
    ``dest_entity`` other than the satellite's CFDP entity (2) is not in the ground's MIB:
    ``unknown_entity``, nothing is sent; ``store_capacity`` (octets; default: the
    satellite's ``store_octets`` in the scenario, else unlimited) sizes the onboard store,
    and a file that does not fit is refused at its Metadata PDU: ``filestore_rejection``;
    ``cancel_after_s``: the ground cancels the transaction that many seconds after the
    request: ``cancel_request_received``."""
    sat = check_satellite(scenario, satellite, "--to")
    if not 0 <= dest_entity < 1 << 16:
        raise ConfigError(f"{dest_entity} is outside 0..65535", key="--entity")
    if store_capacity is not None and store_capacity < 0:
        raise ConfigError("must be >= 0 octets", key="--store-capacity")
    if cancel_after_s is not None and not cancel_after_s >= 0:
        raise ConfigError("must be >= 0 seconds", key="--cancel-after")
    if transfer_class not in (1, 2):
        raise ConfigError(f"{transfer_class}: CFDP class 1 or 2", key="--class")
    manifest = Manifest.of(data, kind="model" if swap else "file", name=name)
    if expected_sha256 is not None:
        digest = expected_sha256.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError("a SHA-256 is 64 hex digits", key="--sha256")
        manifest = Manifest(digest, len(data), manifest.kind, name)
    ground = MemoryFilestore({"outbox/" + name: data})
    store = onboard if onboard is not None else MemoryFilestore()
    if store_capacity is None:
        store_capacity = scenario.nodes[sat].store_octets
    if store_capacity is not None:
        store.capacity = store_capacity
    run = _Transfer(scenario, sat, "upload", transfer_class, ground, store, "outbox/" + name,
                    name, registry=(registry if registry is not None else default_registry())
                    if swap else registry, swap=swap, messages=[manifest.encode()],
                    expected=None, timeout_s=timeout_s, progress=progress,
                    dest_entity=dest_entity, cancel_at_s=cancel_after_s)
    report: TransferReport = _simulate(run, scenario, pcap)
    report.file = name
    return report


def run_download(scenario: Scenario, name: str, *, satellite: str | None = None,
                 transfer_class: int = 2, onboard: MemoryFilestore | None = None,
                 timeout_s: float | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 pcap: str | Path | None = None) -> tuple[TransferReport, bytes | None]:
    """Fetch ``name`` from ``satellite``'s filestore (default: :func:`onboard_products`) with
    a Proxy Put Request; returns the report and the octets stored on the ground. ``pcap``: as
    for :func:`run_upload`. The ground's store holds the ground station's ``store_octets`` of
    the scenario (default: unlimited); a file that does not fit: ``filestore_rejection``."""
    sat = check_satellite(scenario, satellite, "--from")
    if transfer_class not in (1, 2):
        raise ConfigError(f"{transfer_class}: CFDP class 1 or 2", key="--class")
    store = onboard if onboard is not None else onboard_products()
    if not store.file_exists(Path(name)):
        raise ConfigError(f"no file {name!r} onboard (files: {', '.join(store.names())})",
                          key="NAME")
    ground = MemoryFilestore()
    local = "downloads/" + name
    run = _Transfer(scenario, sat, "download", transfer_class, ground, store, name, local,
                    registry=None, swap=False, messages=[], expected=None, timeout_s=timeout_s,
                    progress=progress)
    ground.capacity = scenario.nodes[run.hops[0].forward.source].store_octets
    report: TransferReport = _simulate(run, scenario, pcap)
    return report, ground.get(local)


def _simulate(run: _Transfer, scenario: Scenario, pcap: str | Path | None) -> TransferReport:
    if pcap is None:
        return engine.run_simulation(run.main, seed=scenario.seed)
    from linkstack.capture.pcap import PcapWriter, node_addresses

    with PcapWriter(pcap, nanosecond=True, addresses=node_addresses(scenario.nodes)) as writer:
        run.pcap = writer
        return engine.run_simulation(run.main, seed=scenario.seed)
