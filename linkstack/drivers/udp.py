"""The real-time driver: the RF hop over UDP between two processes (asyncio).

Each process runs one end of the scenario's RF hop (:mod:`linkstack.hops.rf`) and carries its
coded units over a UDP socket, one CLTU (uplink) or CADU (downlink) per datagram — the same
octets the simulator puts on its virtual link:

- the **ground** (:class:`UdpGroundService`): :class:`~linkstack.hops.rf.RfGround` (FOP-1, TC
  frames in CLTUs out; TM frames with the CLCW in CADUs in) under a
  :class:`~linkstack.payload.client.PromptClient`. It is a
  :class:`~linkstack.drivers.service.PromptService`, so the MQTT gateway can forward prompts
  over it.
- the **satellite** (:class:`UdpSatellite`): :class:`~linkstack.hops.rf.RfSpace` (FARM-1 in,
  TM with CLCW out) under the onboard :class:`~linkstack.payload.endpoint.ModelEndpoint`,
  whose jobs run on a model backend in a worker thread
  (:class:`~linkstack.drivers.service.EndpointRunner`).

:class:`HopLink` is the whole driver (specs/architecture.md principle 3: no protocol logic
here): it feeds each datagram to the endpoint's ``receive``, sends what ``poll`` returns, and
sleeps until the endpoint's ``next_deadline()`` or the next event; real time is
``loop.time()`` (monotonic seconds). An optional ``linkstack channel`` process between the two
(:mod:`linkstack.drivers.channel_proxy`) adds the link's delay, rate and losses.

With a :class:`~linkstack.capture.pcap.PcapWriter`, each process writes everything it sends
(:class:`linkstack.capture.pcap.SendCapture`): the coded unit, the transfer frame inside it
(recovered by a private decoder of the same coding chain) and the Space Packets it originates, with
wall-clock timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from linkstack.capture.pcap import PcapWriter, SendCapture, capture_for
from linkstack.drivers.service import (
    EndpointRunner,
    PartialCallback,
    ServiceResult,
    TimerTask,
    partial_update,
    result_info,
    status_name,
)
from linkstack.errors import ConfigError, LinkstackError
from linkstack.hops.base import HopEndpoint
from linkstack.hops.rf import RfGround, RfHopConfig, RfSpace
from linkstack.hops.security import HopSdls
from linkstack.payload.backend import Generation, ModelBackend, TokenCallback
from linkstack.payload.client import (
    PartialReceived,
    PromptClient,
    RequestTimedOut,
    ResultReceived,
)
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint
from linkstack.payload.messages import GenerationParams, Result
from linkstack.payload.transport import TransportConfig
from linkstack.spp.packet import PRIMARY_HEADER_SIZE, PacketType

log = logging.getLogger(__name__)

Address = tuple[str, int]


def parse_address(text: str, *, default_host: str = "127.0.0.1", key: str = "address"
                  ) -> Address:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` → (host, port); ``[v6]:PORT`` too. A bad one is a
    :class:`ConfigError` naming ``key`` (the option that gave it)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{text!r}: the port is not a number", key=key) from None
    if not 0 <= number <= 0xFFFF:
        raise ConfigError(f"{text!r}: port outside 0..65535", key=key)
    return host, number


def transport_for(hop: RfHopConfig) -> TransportConfig:
    """The payload transport both ends use: packets that fit one TC frame (at most 1024
    octets of data), as the round trip simulation does."""
    return TransportConfig(max_data_length=min(1024, hop.max_packet_length
                                               - PRIMARY_HEADER_SIZE))


@dataclass(frozen=True)
class RfPath:
    """What ``serve`` takes from a scenario: the RF hop's managed parameters (as the round trip
    builds them from the first hop of the path), the hop's link specs, and the node names."""

    config: RfHopConfig
    hop: Any  # linkstack.sims.topology.Hop: .forward / .back LinkSpecs
    ground: str
    spacecraft: str


def rf_hop_config(scenario: Any) -> RfPath:
    """The RF hop of ``scenario`` — the first hop of its path from the ground station — and
    the compute spacecraft at the end of the path (``sat1`` in the default scenario): the
    satellite process runs the model itself; hops beyond the first (laser ISLs) exist only in
    the virtual-time simulation (``linkstack run``)."""
    from linkstack.sims.topology import build_endpoints, plan_path

    path = plan_path(scenario, getattr(getattr(scenario, "run", None), "compute", None))
    hop = path[0]
    if hop.kind != "rf":
        raise ConfigError(f"the first hop {hop.name!r} is not a TC/TM RF link",
                          key=f"links.{hop.name}.stack.frame")
    ground, _space = build_endpoints(hop)
    assert isinstance(ground, RfGround)
    return RfPath(ground.config, hop, hop.forward.source, path[-1].forward.destination)


class PacedBackend:
    """A backend whose ``generate`` takes (at least) the wall time the generation reports.

    A :class:`~linkstack.payload.backend.RecordedBackend` answers at once with the *recorded*
    inference time; in a real-time process that would make the reported time a fiction.
    Wrapped, the worker thread sleeps the difference, so the replay runs in real time.
    """

    def __init__(self, backend: ModelBackend) -> None:
        self.inner = backend

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self.inner.model_ids

    @property
    def max_prompt_tokens(self) -> int:
        return self.inner.max_prompt_tokens

    def count_tokens(self, prompt: str) -> int | None:
        return self.inner.count_tokens(prompt)

    streams_tokens = True

    def generate(self, prompt: str, params: GenerationParams, *,
                 on_token: TokenCallback | None = None) -> Generation:
        """The inner generation, taking at least its reported time; ``on_token`` is told its
        pieces at their recorded times."""
        t0 = time.perf_counter()
        generation = self.inner.generate(prompt, params)
        if on_token is not None:
            for elapsed, tokens, chars in generation.pieces:
                wait = elapsed - (time.perf_counter() - t0)
                if wait > 0:
                    time.sleep(wait)
                on_token(generation.text[:chars], tokens)
        left = generation.inference_s - (time.perf_counter() - t0)
        if left > 0:
            time.sleep(left)
        return generation


def realtime_epoch_ns(loop: asyncio.AbstractEventLoop) -> int:
    """Wall-clock nanoseconds at ``loop.time() == 0`` (the ``epoch_ns`` of a live capture)."""
    return time.time_ns() - round(loop.time() * 1e9)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, link: HopLink) -> None:
        self.link = link

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.link._datagram(data)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable while the peer is not up yet: the ARQ retransmits
        self.link.socket_errors += 1


@dataclass
class UdpLinkStats:
    units_sent: int = 0
    units_received: int = 0
    octets_sent: int = 0
    octets_received: int = 0
    packets_delivered: int = 0
    notes: dict[str, int] = field(default_factory=dict)


class HopLink:
    """Drives one hop endpoint over one UDP socket in real time.

    Args:
        endpoint: a :class:`~linkstack.hops.base.HopEndpoint` (sans-IO).
        on_packets: called with the Space Packets each received unit delivers, and the time.
        capture: optional :class:`SendCapture` for the units sent.
    """

    def __init__(self, endpoint: HopEndpoint, on_packets: Callable[[list[bytes], float], None],
                 *, capture: SendCapture | None = None) -> None:
        self.endpoint = endpoint
        self.on_packets = on_packets
        self.capture = capture
        self.stats = UdpLinkStats()
        self.socket_errors = 0
        self.peer: Address | None = None
        self.address: Address | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # the pump: the endpoint's timers, then what it has to send; a deadline the endpoint
        # did not move waits 1 ms rather than spinning
        self._pump = TimerTask(endpoint.next_deadline, endpoint.on_timer, self.now,
                               on_wake=self._flush, min_wait=0.001)

    async def open(self, listen: Address, peer: Address) -> Address:
        """Bind ``listen`` (port 0: any free port); returns the bound address."""
        loop = self._loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                           local_addr=listen)
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.peer = peer
        host, port = transport.get_extra_info("sockname")[:2]
        self.address = (str(host), int(port))
        return self.address

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def send_packet(self, packet: bytes, tag: object = None) -> None:
        """Queue one Space Packet for the far end."""
        self.endpoint.send_packet(packet, tag, now=self.now())
        self._pump.kick()

    def _datagram(self, data: bytes) -> None:
        now = self.now()
        self.stats.units_received += 1
        self.stats.octets_received += len(data)
        try:
            rec = self.endpoint.receive(data, now)
        except LinkstackError as exc:  # a datagram that is not a unit of this hop
            log.debug("datagram rejected: %s", exc)
            self.stats.notes["rejected"] = self.stats.notes.get("rejected", 0) + 1
            return
        for note in rec.notes:
            name = type(note).__name__
            self.stats.notes[name] = self.stats.notes.get(name, 0) + 1
        self._pump.kick()  # acknowledgements, CLCW reports
        if rec.packets:
            self.stats.packets_delivered += len(rec.packets)
            self.on_packets(rec.packets, now)

    async def run(self) -> None:
        """Send what the endpoint has to send, run its timers; forever."""
        await self._pump.run()

    def _flush(self, now: float) -> None:
        for unit in self.endpoint.poll(now):
            self._send(unit.data, now)

    def _send(self, data: bytes, now: float) -> None:
        assert self._transport is not None and self.peer is not None
        self._transport.sendto(data, self.peer)
        self.stats.units_sent += 1
        self.stats.octets_sent += len(data)
        if self.capture is not None:
            self.capture.unit(data, now)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def status(self) -> dict[str, object]:
        s = self.stats
        return {"units_sent": s.units_sent, "units_received": s.units_received,
                "octets_sent": s.octets_sent, "octets_received": s.octets_received,
                "packets_delivered": s.packets_delivered, "notes": dict(s.notes),
                "socket_errors": self.socket_errors}


class _Node:
    """Shared life cycle: tasks started by :meth:`start`, stopped by :meth:`aclose`."""

    link: HopLink

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        link = getattr(self, "link", None)  # (not there if start() failed)
        if link is not None:
            link.close()

    async def wait(self) -> None:
        """Until one of the node's tasks fails (its exception is raised) or it is cancelled."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(slots=True)
class _Request:
    future: asyncio.Future[tuple[Result | None, float]]
    asked: float


class UdpGroundService(_Node):
    """The ground station: a :class:`~linkstack.drivers.service.PromptService` over the RF hop.

    ``ask`` sends the prompt's packets through :class:`~linkstack.hops.rf.RfGround` and waits
    for the result. Breakdown (sums to ``total_s``): ``onboard.queueing`` and
    ``onboard.inference`` as the satellite's Result reports them, and ``link.round_trip`` =
    the rest (coding, serialization, propagation and ARQ both ways; the two processes'
    clocks are not compared, so the two directions are not split).

    Args:
        hop: the RF hop's managed parameters (the same on both ends).
        transport: payload APIDs and packet size (default: :func:`transport_for`).
        timeout_s: the client's deadline for a result.
        name / spacecraft: node names (pcap addresses, status).
        pcap: write what this node sends.
        sdls: this end's ``(uplink, downlink)`` SDLS (``linkstack.sims.topology.rf_end_sdls``);
            needed iff the hop's configuration has SDLS overhead.
    """

    def __init__(self, hop: RfHopConfig, *, transport: TransportConfig | None = None,
                 timeout_s: float | None = 900.0, name: str = "ground",
                 spacecraft: str = "sat1", pcap: PcapWriter | None = None,
                 sdls: tuple[HopSdls | None, HopSdls | None] = (None, None)) -> None:
        super().__init__()
        self.hop = hop
        self.sdls = sdls
        self.transport = transport or transport_for(hop)
        self.timeout_s = timeout_s
        self.name = name
        self.spacecraft = spacecraft
        self.pcap = pcap
        self.client = PromptClient(self.transport, timeout_s=timeout_s)
        self._requests: dict[int, _Request] = {}
        self._partials: dict[int, PartialCallback] = {}
        self._timers: TimerTask | None = None
        self.asked = 0
        self.answered = 0
        self.unmatched = 0

    async def start(self, listen: Address, peer: Address) -> Address:
        """Open the socket and start the link; returns the bound address."""
        loop = asyncio.get_running_loop()
        ground = RfGround(self.hop, now=loop.time(), uplink_sdls=self.sdls[0],
                          downlink_sdls=self.sdls[1])
        capture = None
        if self.pcap is not None:
            capture = capture_for(ground, self.pcap, node=self.name, peer=self.spacecraft)
        self.capture = capture
        self.link = HopLink(ground, self._on_packets, capture=capture)
        address = await self.link.open(listen, peer)
        self._timers = TimerTask(self.client.next_deadline, self._on_client_timer, loop.time)
        self._spawn(self.link.run())
        self._spawn(self._timers.run())
        return address

    streams = True
    """``ask`` takes ``on_partial`` (the satellite's endpoint must stream)."""

    async def ask(self, request_id: str, prompt: str, max_tokens: int, *,
                  on_partial: PartialCallback | None = None) -> ServiceResult:
        loop = asyncio.get_running_loop()
        now = loop.time()
        try:
            rid, packets = self.client.ask(prompt, now,
                                           params=GenerationParams(max_tokens=max_tokens))
            for p in packets:
                self.link.send_packet(p)
        except LinkstackError as exc:
            return ServiceResult("malformed", str(exc), {}, 0.0)
        if self.capture is not None:
            self.capture.packets(packets, now)
        self.asked += 1
        request = _Request(loop.create_future(), now)
        self._requests[rid] = request
        if on_partial is not None:
            self._partials[rid] = on_partial
        assert self._timers is not None
        self._timers.kick()
        try:
            result, arrived = await request.future
        finally:
            self._partials.pop(rid, None)
            if self._requests.pop(rid, None) is not None:
                self.client.cancel(rid)
        self.answered += 1
        total = arrived - request.asked
        if result is None:
            return ServiceResult("timeout", f"no result within {self.timeout_s} s",
                                 {"link.round_trip": total}, total)
        queue = result.queue_time_us / 1e6
        inference = result.inference_time_us / 1e6
        breakdown = {"link.round_trip": total - queue - inference,
                     "onboard.queueing": queue, "onboard.inference": inference}
        return ServiceResult(status_name(result.status), result.text, breakdown, total,
                             result_info(result))

    def _on_packets(self, packets: list[bytes], now: float) -> None:
        for packet in packets:
            for ev in self.client.receive_packet(packet, now):
                if isinstance(ev, ResultReceived):
                    self._resolve(ev.request_id, ev.result, now)
                elif isinstance(ev, PartialReceived):
                    callback = self._partials.get(ev.request_id)
                    if callback is not None:
                        callback(partial_update(ev))
                elif not isinstance(ev, RequestTimedOut):
                    self.unmatched += 1

    def _on_client_timer(self, now: float) -> None:
        for ev in self.client.on_timer(now):
            if isinstance(ev, RequestTimedOut):
                self._resolve(ev.request_id, None, now)

    def _resolve(self, rid: int, result: Result | None, now: float) -> None:
        request = self._requests.pop(rid, None)
        if request is not None and not request.future.done():
            request.future.set_result((result, now))

    def status(self) -> dict[str, object]:
        endpoint = self.link.endpoint if hasattr(self, "link") else None
        return {
            "service": "udp-rf-ground",
            "link": None if endpoint is None else endpoint.status() | {
                "udp": self.link.status()},
            "client": {"pending": len(self.client.pending)},
            "asked": self.asked, "answered": self.answered, "unmatched": self.unmatched,
        }


class UdpSatellite(_Node):
    """The spacecraft: the RF hop's far end and the onboard model endpoint.

    Args:
        backend: the model (``LlamaCppBackend`` by default in the CLI; a
            ``RecordedBackend`` in tests).
        hop: the RF hop's managed parameters (the same on both ends).
        endpoint_config: the model endpoint's queue, timeouts and flight profile (its
            transport must match the ground's; default: :func:`transport_for`).
        name / ground: node names (pcap addresses, status).
        pcap: write what this node sends.
        sdls: this end's ``(uplink, downlink)`` SDLS (``linkstack.sims.topology.rf_end_sdls``);
            needed iff the hop's configuration has SDLS overhead.
        files: the file service (:class:`linkstack.drivers.files.OnboardFiles`): CFDP PDUs
            (APID 0x102) go to its entity, the others to the model endpoint.
    """

    def __init__(self, backend: ModelBackend, hop: RfHopConfig, *,
                 endpoint_config: EndpointConfig | None = None, name: str = "sat1",
                 ground: str = "ground", pcap: PcapWriter | None = None,
                 sdls: tuple[HopSdls | None, HopSdls | None] = (None, None),
                 files: Any = None) -> None:
        super().__init__()
        self.files = files
        self.cfdp: Any = None
        self.backend = backend
        self.hop = hop
        self.sdls = sdls
        self.endpoint_config = endpoint_config or EndpointConfig(transport=transport_for(hop))
        self.endpoint = ModelEndpoint(backend, self.endpoint_config)
        self.name = name
        self.ground = ground
        self.pcap = pcap

    async def start(self, listen: Address, peer: Address) -> Address:
        """Open the socket and start the link and the model worker; returns the address."""
        loop = asyncio.get_running_loop()
        space = RfSpace(self.hop, now=loop.time(), uplink_sdls=self.sdls[0],
                        downlink_sdls=self.sdls[1])
        capture = None
        if self.pcap is not None:
            capture = capture_for(space, self.pcap, node=self.name, peer=self.ground)
        self.capture = capture
        self.link = HopLink(space, self._on_packets, capture=capture)
        address = await self.link.open(listen, peer)
        self.runner = EndpointRunner(self.endpoint, self._downlink, clock=loop.time)
        self._spawn(self.link.run())
        self._spawn(self.runner.run())
        if self.files is not None:
            from linkstack.drivers.files import CfdpPort

            self.cfdp = CfdpPort(self.files.entity, self.link, PacketType.TM,
                                 on_event=self.files.on_event)
            self._spawn(self.cfdp.run())
        return address

    def _on_packets(self, packets: list[bytes], now: float) -> None:
        for p in packets:
            if self.cfdp is not None and self.cfdp.take(p, now):
                continue
            self.runner.receive_packet(p, now)

    def _downlink(self, packets: list[bytes]) -> None:
        if self.capture is not None:
            self.capture.packets(packets, self.link.now())
        for p in packets:
            self.link.send_packet(p)

    def status(self) -> dict[str, object]:
        status: dict[str, object] = {
            "link": self.link.endpoint.status() | {"udp": self.link.status()},
            "endpoint": {"queue_depth": self.endpoint.queue_depth,
                         "running": self.endpoint.running,
                         "results": dict(self.endpoint.stats)},
            "generations": self.runner.generations}
        if self.files is not None:
            status["files"] = self.files.status()
        return status
