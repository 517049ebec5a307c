"""Protocol data units carried one per unsegmented Space Packet on an APID (CCSDS 133.0-B-2
§4.1.3.4.2.2: Sequence Flags ``11``): CFDP PDUs (APID 0x102, :mod:`linkstack.cfdp.transport`)
and SDLS Extended Procedure PDUs (APID 0x103, :mod:`linkstack.sdls.ep`) travel this way, so
that no PDU is ever segmented below its protocol."""

from __future__ import annotations

from linkstack.errors import ConfigError, DecodeError
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import LAYER, MAX_APID, PacketType, SequenceFlags, SpacePacket

__all__ = ["PduPacketizer", "pdu_of"]


class PduPacketizer:
    """Wraps PDUs into unsegmented Space Packets on one APID, counting per APID."""

    def __init__(self, apid: int, *, packet_type: PacketType) -> None:
        if not 0 <= apid < MAX_APID:
            raise ConfigError(f"{apid} is outside 0..{MAX_APID - 1}", key="apid")
        self.apid = apid
        self.packet_type = packet_type
        self.counter = SequenceCounter()

    def wrap(self, pdu: bytes) -> bytes:
        return SpacePacket(self.apid, self.counter.next(self.apid), bytes(pdu), self.packet_type,
                           sequence_flags=SequenceFlags.UNSEGMENTED).encode()


def pdu_of(packet: bytes, apid: int, *, what: str = "PDUs") -> bytes | None:
    """The PDU in ``packet`` if it is an unsegmented packet on ``apid``, else None (another
    APID). Raises :class:`DecodeError` for a malformed packet, or a segmented one on ``apid``
    (``what`` names the PDUs in the message)."""
    pkt = SpacePacket.decode(packet)
    if pkt.apid != apid:
        return None
    if pkt.sequence_flags != SequenceFlags.UNSEGMENTED:
        raise DecodeError(f"{what} travel in unsegmented packets", layer=LAYER,
                          field="sequence_flags", offset=2)
    return pkt.data
