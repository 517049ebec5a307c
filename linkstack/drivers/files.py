"""CFDP over the RF hop on UDP, in real time: uploads to ``linkstack serve --role satellite``.

The same sans-IO pieces as the virtual-time file transfer (:mod:`linkstack.sims.file_transfer`)
on the real-time driver (:mod:`linkstack.drivers.udp`): each CFDP PDU rides in one Space
Packet on APID 0x102 (:mod:`linkstack.cfdp.transport`) through the RF hop — COP-1 over TC in
CLTUs up, TM with the CLCW in CADUs down — beside the prompts and results.

- :class:`CfdpPort` drives one :class:`~linkstack.cfdp.entity.CfdpEntity` on a
  :class:`~linkstack.drivers.udp.HopLink`: PDUs in from the hop's delivered packets, PDUs out
  while the hop's backlog has room (the flow control: CFDP's timers then see the link, not a
  deep queue), its timers on the event loop's clock.
- :class:`OnboardFiles` is the satellite's file service (CFDP entity 2, the filestore of the
  scenario's ``store_octets``, the model registry): a verified model upload is handed to the
  registry, whose test load runs in a worker thread.
- :class:`UdpFileSender` is the ground's ``linkstack upload FILE --peer ADDR``: the RF hop's
  ground end and CFDP entity 1, one upload, a report like the simulator's (the bound is the
  file at the uplink's rate plus propagation: real time has no contact plan).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from linkstack.cfdp.entity import (
    CfdpEntity,
    EntityConfig,
    Fault,
    PutRefused,
    StoreFull,
    TransactionFinished,
    TransferClass,
)
from linkstack.cfdp.filestore import MemoryFilestore
from linkstack.cfdp.models import InstallResult, Manifest, ModelRegistry
from linkstack.cfdp.transport import (
    CFDP_APID,
    GROUND_ENTITY,
    ONBOARD_ENTITY,
    PduPacketizer,
    max_pdu_length,
    pdu_of,
)
from linkstack.drivers.service import wait_event
from linkstack.drivers.udp import Address, HopLink, _Node
from linkstack.errors import DecodeError
from linkstack.hops.rf import RfGround, RfHopConfig
from linkstack.spp.packet import PacketType

__all__ = [
    "GROUND_ENTITY",
    "ONBOARD_ENTITY",
    "CfdpPort",
    "OnboardFiles",
    "UdpFileSender",
    "entity_config",
]

log = logging.getLogger(__name__)

def entity_config(entity_id: int, hop: RfHopConfig, *, timer_s: float = 5.0) -> EntityConfig:
    """CFDP settings of an entity on the RF hop: PDUs that fit one TC frame's packet."""
    return EntityConfig(
        entity_id,
        max_pdu_length=max_pdu_length(hop.max_packet_length),
        ack_timer_s=timer_s,
        ack_limit=10,
        nak_timer_s=timer_s,
        nak_limit=10,
        check_timer_s=timer_s,
        closure_timer_s=6 * timer_s,
        renak_guard_s=timer_s / 2,
    )


class CfdpPort:
    """One CFDP entity on one hop link (both sans-IO; this is the glue).

    Args:
        entity: the CFDP entity.
        link: the hop link its PDUs travel on.
        packet_type: TC from the ground, TM from the spacecraft.
        window: PDUs handed to the hop while it still holds this many unsent (its backlog).
        on_event: called with each entity event and the time.
    """

    def __init__(
        self,
        entity: CfdpEntity,
        link: HopLink,
        packet_type: PacketType,
        *,
        window: int = 16,
        on_event: Callable[[object, float], None] | None = None,
    ) -> None:
        self.entity = entity
        self.link = link
        self.packetizer = PduPacketizer(CFDP_APID, packet_type=packet_type)
        self.window = window
        self.on_event = on_event
        self.bad_packets = 0
        self._wake = asyncio.Event()

    def take(self, packet: bytes, now: float) -> bool:
        """Feed ``packet`` if it is on the CFDP APID (True), else leave it (False)."""
        try:
            pdu = pdu_of(packet)
        except DecodeError as exc:
            log.debug("CFDP packet refused: %s", exc)
            self.bad_packets += 1
            return True
        if pdu is None:
            return False
        self.entity.receive(pdu, now)
        self._events(now)
        self._wake.set()
        return True

    def kick(self) -> None:
        self._wake.set()

    def _events(self, now: float) -> None:
        for ev in self.entity.events():
            if self.on_event is not None:
                self.on_event(ev, now)

    def _room(self) -> int:
        backlog = self.link.endpoint.status().get("backlog", 0)
        return max(0, self.window - (backlog if isinstance(backlog, int) else 0))

    async def run(self) -> None:
        """Send the entity's PDUs as the hop takes them and run its timers; forever."""
        entity = self.entity
        while True:
            self._wake.clear()
            now = self.link.now()
            deadline = entity.next_deadline()
            if deadline is not None and deadline <= now:
                entity.on_timer(now)
            room = self._room()
            for pdu in entity.pull(now, limit=room) if room else []:
                self.link.send_packet(self.packetizer.wrap(pdu))
            self._events(now)
            deadline = entity.next_deadline()
            timeout = None if deadline is None else max(0.001, deadline - self.link.now())
            if entity.has_output():  # the hop was full: look again soon
                timeout = 0.02 if timeout is None else min(timeout, 0.02)
            await wait_event(self._wake, timeout)


class OnboardFiles:
    """The satellite's file service: CFDP entity 2, its filestore and the model registry.

    A finished upload whose manifest says ``model`` is installed with
    :meth:`ModelRegistry.install` (SHA-256 and size against the manifest, then the registry's
    ``on_swap`` test load) in a worker thread; ``installs`` keeps the results.
    """

    def __init__(
        self,
        hop: RfHopConfig,
        *,
        registry: ModelRegistry | None = None,
        store: MemoryFilestore | None = None,
        timer_s: float = 5.0,
    ) -> None:
        self.store = store if store is not None else MemoryFilestore()
        self.entity = CfdpEntity(
            entity_config(ONBOARD_ENTITY, hop, timer_s=timer_s), self.store, peers=[GROUND_ENTITY]
        )
        self.registry = registry
        self.finished: list[TransactionFinished] = []
        self.installs: list[InstallResult] = []
        self.faults: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, ev: object, now: float) -> None:
        if isinstance(ev, TransactionFinished) and ev.role == "dest":
            self.finished.append(ev)
            log.info("file %s received: %s", ev.file, "ok" if ev.ok else ev.condition.name)
            manifest = Manifest.find(ev.messages)
            if self.registry is not None and manifest is not None and manifest.kind == "model":
                data = self.store.get(ev.file or "")
                task = asyncio.get_running_loop().create_task(self._install(ev, data, manifest))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif isinstance(ev, Fault | StoreFull):
            self.faults.append(
                type(ev).__name__ if isinstance(ev, StoreFull) else ev.condition.name.lower()
            )

    async def _install(
        self, ev: TransactionFinished, data: bytes | None, manifest: Manifest
    ) -> None:
        assert self.registry is not None
        result = await asyncio.to_thread(
            self.registry.install, ev.file or "", data, manifest, transfer_ok=ev.ok
        )
        self.installs.append(result)
        log.info("model %s: %s", ev.file, result.reason)

    def status(self) -> dict[str, object]:
        active = self.registry.active if self.registry is not None else None
        return {
            "files": self.store.names(),
            "received": len(self.finished),
            "faults": list(self.faults),
            "installs": [r.as_dict() for r in self.installs],
            "model": None if active is None else active.model_id,
            "cfdp": self.entity.status(),
        }


class UdpFileSender(_Node):
    """The ground end of the RF hop with CFDP entity 1: ``linkstack upload --peer``."""

    def __init__(
        self,
        hop: RfHopConfig,
        *,
        timer_s: float = 5.0,
        uplink_bps: float | None = None,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.hop = hop
        self.uplink_bps = uplink_bps
        self.delay_s = delay_s
        self.store = MemoryFilestore()
        self.entity = CfdpEntity(
            entity_config(GROUND_ENTITY, hop, timer_s=timer_s), self.store, peers=[ONBOARD_ENTITY]
        )
        self._done: asyncio.Future[tuple[str, str, float]] | None = None
        self._faults: list[str] = []

    async def start(self, listen: Address, peer: Address) -> Address:
        loop = asyncio.get_running_loop()
        self.link = HopLink(RfGround(self.hop, now=loop.time()), self._on_packets)
        address = await self.link.open(listen, peer)
        self.port = CfdpPort(self.entity, self.link, PacketType.TC, on_event=self._on_event)
        self._spawn(self.link.run())
        self._spawn(self.port.run())
        return address

    def _on_packets(self, packets: list[bytes], now: float) -> None:
        for p in packets:
            self.port.take(p, now)

    def _on_event(self, ev: object, now: float) -> None:
        done = self._done
        if isinstance(ev, Fault):
            self._faults.append(ev.condition.name.lower())
        if done is None or done.done():
            return
        if isinstance(ev, TransactionFinished) and ev.role == "source":
            status = (
                "ok" if ev.ok else (self._faults[0] if self._faults else ev.condition.name.lower())
            )
            done.set_result((status, "" if ev.ok else f"delivery {ev.delivery.name.lower()}", now))
        elif isinstance(ev, PutRefused):
            done.set_result((ev.reason, ev.detail, now))

    async def upload(
        self,
        data: bytes,
        name: str,
        *,
        transfer_class: int = 2,
        kind: str = "file",
        dest_entity: int = ONBOARD_ENTITY,
        timeout_s: float = 600.0,
    ) -> dict[str, Any]:
        """Send ``data`` to be stored onboard as ``name``; the report when the sender's
        transaction ends (or ``timeout``: the transfer is cancelled)."""
        loop = asyncio.get_running_loop()
        self.store.put("outbox/" + name, data)
        manifest = Manifest.of(data, kind=kind, name=name)
        self._done = loop.create_future()
        self._faults.clear()
        start = loop.time()
        wall = time.time()
        self.entity.put(
            dest_entity,
            "outbox/" + name,
            name,
            TransferClass(transfer_class),
            messages=[manifest.encode()],
            now=start,
        )
        self.port.kick()
        try:
            status, detail, end = await asyncio.wait_for(asyncio.shield(self._done), timeout_s)
        except TimeoutError:
            self.entity.cancel(loop.time())
            self.port.kick()
            status, detail, end = "timeout", f"no end within {timeout_s} s", loop.time()
        total = end - start
        bound = None
        if self.uplink_bps:
            bound = 8 * len(data) / self.uplink_bps + self.delay_s
        counters = self.entity.counters
        return {
            "status": status,
            "detail": detail,
            "file": name,
            "octets": len(data),
            "class": transfer_class,
            "total_s": total,
            "bound_s": bound,
            "ratio": None if not bound else total / bound,
            "retransmitted_octets": counters["retransmitted_octets"],
            "passes": 1,
            "sha256": hashlib.sha256(data).hexdigest(),
            "started_unix_s": wall,
            "real_time": True,
            "cfdp": self.entity.status(),
        }

    def status(self) -> dict[str, object]:
        return {
            "link": self.link.endpoint.status() | {"udp": self.link.status()},
            "cfdp": self.entity.status(),
        }
