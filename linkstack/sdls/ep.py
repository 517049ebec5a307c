"""SDLS Extended Procedures over the link: SA management as authenticated ground commands
(CCSDS 355.1-B-1), sans-IO.

The ground sends one procedure PDU (:mod:`linkstack.sdls.pdu`) per unsegmented telecommand
Space Packet on :data:`EP_APID` (0x103, beside the project's prompt 0x100, result 0x101 and
CFDP 0x102 APIDs; 355.1-B-1 leaves the carrying service to the mission). The spacecraft end of
a hop (:class:`linkstack.hops.rf.RfSpace`) hands every such packet to :class:`EpService` with
the SPI of the SA that authenticated the frame it came in (``None`` if the uplink has no SDLS):

- a packet that did not arrive in an authenticated frame is refused (``unauthenticated``):
  SA management must never be reachable by whoever can transmit on the frequency;
- the PDU is decoded and executed with :func:`linkstack.sdls.pdu.execute_pdu` against the
  spacecraft's SA database that holds its SPI (the hop's uplink and downlink databases; Key
  (de)activation on every database whose key ring has the key); an SA cannot manage itself
  (the uplink SA cannot be stopped, rekeyed or expired through itself);
- replies (Read ARSN, SA Status) go back down as telemetry packets on the same APID.

Every outcome is counted by name (:attr:`EpService.counters`), refusals with their reason in
:attr:`EpService.last_refusal`; nothing raises on the link's input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from linkstack.errors import ConfigError, DecodeError
from linkstack.sdls.errors import SaStateError
from linkstack.sdls.pdu import (
    KeyActivation,
    KeyDeactivation,
    SaStatusRequest,
    decode_procedure,
    execute_pdu,
)
from linkstack.sdls.sa import SaDatabase
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import PacketType, SequenceFlags, SpacePacket

__all__ = ["EP_APID", "EpPacketizer", "EpService", "ep_pdu"]

EP_APID = 0x103
"""APID of SDLS Extended Procedure packets (commands up as TC packets, replies down as TM)."""


class EpPacketizer:
    """Wraps procedure PDUs into unsegmented Space Packets on :data:`EP_APID`."""

    def __init__(self, packet_type: PacketType, apid: int = EP_APID) -> None:
        self.apid = apid
        self.packet_type = packet_type
        self.counter = SequenceCounter()

    def wrap(self, pdu: bytes) -> bytes:
        return SpacePacket(self.apid, self.counter.next(self.apid), bytes(pdu),
                           self.packet_type, sequence_flags=SequenceFlags.UNSEGMENTED).encode()


def ep_pdu(packet: bytes, apid: int = EP_APID) -> bytes | None:
    """The PDU of an EP packet; None for a packet of another APID.

    Raises :class:`DecodeError` for a malformed or segmented packet on ``apid``.
    """
    pkt = SpacePacket.decode(packet)
    if pkt.apid != apid:
        return None
    if pkt.sequence_flags != SequenceFlags.UNSEGMENTED:
        raise DecodeError("SDLS EP PDUs travel in unsegmented packets", layer="spp",
                          field="sequence_flags", offset=2)
    return pkt.data


class EpService:
    """The spacecraft's executor of authenticated SA-management commands.

    Args:
        databases: the SA databases the commands act on (each SPI lives in one).
        apid: the EP APID.
    """

    def __init__(self, databases: Sequence[SaDatabase], apid: int = EP_APID) -> None:
        self.databases = list(databases)
        self.apid = apid
        self.replies = EpPacketizer(PacketType.TM, apid)
        self.counters: Counter[str] = Counter()
        self.last_refusal = ""

    def handle(self, packet: bytes, via_spi: int | None) -> bytes | None:
        """Execute the command in ``packet`` (received in a frame authenticated by SA
        ``via_spi``); returns the reply packet to send down, if the procedure has one."""
        try:
            reply = self._execute(packet, via_spi)
        except _Refused as exc:
            self.counters[exc.reason] += 1
            self.last_refusal = f"{exc.reason}: {exc.detail}"
            return None
        self.counters["executed"] += 1
        return self.replies.wrap(reply) if reply is not None else None

    def _execute(self, packet: bytes, via_spi: int | None) -> bytes | None:
        try:
            pdu = ep_pdu(packet, self.apid)
            if pdu is None:
                raise _Refused("wrong_apid", f"APID is not {self.apid:#x}")
            if via_spi is None:
                raise _Refused("unauthenticated",
                               "the frame carrying it was not authenticated by SDLS")
            proc = decode_procedure(pdu)
            if isinstance(proc, KeyActivation | KeyDeactivation):
                rings: dict[int, SaDatabase] = {}  # once per key ring (databases may share one)
                for db in self.databases:
                    if all(k in db.keys for k in proc.key_ids):
                        rings.setdefault(id(db.keys), db)
                targets = list(rings.values())
            else:
                targets = [db for db in self.databases if proc.spi in db][:1]
                if not targets and isinstance(proc, SaStatusRequest):
                    targets = self.databases[:1]  # the reply says NONE
            if not targets:
                raise _Refused("unknown", f"no SA database here knows {proc}")
            reply = None
            for db in targets:
                reply = execute_pdu(db, pdu, via_spi=via_spi)
            return reply
        except DecodeError as exc:
            raise _Refused("malformed", str(exc)) from None
        except (SaStateError, ConfigError, KeyError, ValueError) as exc:
            raise _Refused("refused", str(exc)) from None


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
