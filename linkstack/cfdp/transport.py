"""CFDP PDUs in Space Packets (CCSDS 727.0-B-5 annex B: CFDP over a packet service).

One PDU rides in one unsegmented Space Packet (133.0-B-2) on the CFDP APID, 0x102 by
default — beside the prompt (0x100) and result (0x101) APIDs of
:mod:`linkstack.payload.transport` — as a telecommand packet towards the spacecraft and a
telemetry packet towards the ground. PDUs are sized by the CFDP entities
(``max_pdu_length``) so that each packet fits the smallest frame of the path it crosses
(:func:`max_pdu_length`): no PDU is ever segmented below CFDP.
"""

from __future__ import annotations

from linkstack.spp.packet import MAX_DATA_FIELD_LENGTH, PRIMARY_HEADER_SIZE, PacketType
from linkstack.spp.pdu import PduPacketizer as _PduPacketizer
from linkstack.spp.pdu import pdu_of as _pdu_of

__all__ = ["CFDP_APID", "GROUND_ENTITY", "ONBOARD_ENTITY", "PduPacketizer", "max_pdu_length",
           "pdu_of"]

CFDP_APID = 0x102
"""APID of CFDP PDU packets (both directions; the Packet Type tells TC from TM)."""

GROUND_ENTITY = 1
"""CFDP entity ID of the ground station."""
ONBOARD_ENTITY = 2
"""CFDP entity ID of the satellite's file service."""


def max_pdu_length(max_packet_length: int) -> int:
    """The longest PDU that fits a Space Packet of ``max_packet_length`` octets."""
    return min(max_packet_length - PRIMARY_HEADER_SIZE, MAX_DATA_FIELD_LENGTH)


class PduPacketizer(_PduPacketizer):
    """Wraps CFDP PDUs into unsegmented Space Packets on the CFDP APID (by default)."""

    def __init__(self, apid: int = CFDP_APID, *, packet_type: PacketType) -> None:
        super().__init__(apid, packet_type=packet_type)


def pdu_of(packet: bytes, apid: int = CFDP_APID) -> bytes | None:
    """The PDU in ``packet`` if it is an unsegmented packet on ``apid``, else None (another
    APID). Raises :class:`DecodeError` for a malformed or segmented CFDP packet."""
    return _pdu_of(packet, apid, what="CFDP PDUs")
