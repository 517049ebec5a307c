"""Space Packet primary header and packet (CCSDS 133.0-B-2 §4.1).

The primary header is 6 octets, big-endian (§4.1.3):

    Packet Version Number (3) | Packet Type (1) | Secondary Header Flag (1) | APID (11)
    Sequence Flags (2) | Packet Sequence Count or Packet Name (14)
    Packet Data Length (16) = octets in the Packet Data Field - 1

The Packet Data Field (§4.1.4) holds the optional secondary header followed by the
user data; it is 1..65536 octets long. APID 0x7FF (2047) is reserved for idle packets
(§4.1.3.3.4.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.errors import EncodeError, TruncatedError
from linkstack.fast_dataclass import fast_init

LAYER = "spp"

PRIMARY_HEADER = c.BitStruct(
    "packet_version_number" / c.Const(0, c.BitsInteger(3)),
    "packet_type" / c.BitsInteger(1),
    "secondary_header_flag" / c.Flag,
    "apid" / c.BitsInteger(11),
    "sequence_flags" / c.BitsInteger(2),
    "packet_sequence_count" / c.BitsInteger(14),
    "packet_data_length" / c.BitsInteger(16),
)
"""The single declaration of the primary header (133.0-B-2 §4.1.3)."""

HEADER = BitHeader(LAYER, PRIMARY_HEADER)
PRIMARY_HEADER_SIZE = 6
IDLE_APID = 0x7FF
MAX_APID = 0x7FF
SEQUENCE_COUNT_MODULUS = 1 << 14
MAX_DATA_FIELD_LENGTH = 65536
MAX_PACKET_LENGTH = PRIMARY_HEADER_SIZE + MAX_DATA_FIELD_LENGTH
MIN_PACKET_LENGTH = PRIMARY_HEADER_SIZE + 1
PACKET_ID_MASK = 0x1FFF
"""The 13 bits of Packet Identification after the version: type, secondary header flag, APID."""


class PacketType(IntEnum):
    """Packet Type (§4.1.3.3.2): telemetry (reporting) or telecommand (requesting)."""

    TM = 0
    TC = 1


class SequenceFlags(IntEnum):
    """Sequence Flags (§4.1.3.4.2.2)."""

    CONTINUATION = 0b00
    FIRST = 0b01
    LAST = 0b10
    UNSEGMENTED = 0b11


_PACKET_TYPES = (PacketType.TM, PacketType.TC)
_SEQUENCE_FLAGS = tuple(SequenceFlags(i) for i in range(4))


def packet_identification(
    apid: int, packet_type: PacketType = PacketType.TM, secondary_header_flag: bool = False
) -> int:
    """The 13-bit Packet Identification (§4.1.3.3) without the version number.

    This is the value spacepackets' ``PacketId.raw()`` returns and the key
    :class:`linkstack.spp.stream.PacketStreamParser` matches on.
    """
    if not 0 <= apid <= MAX_APID:
        raise EncodeError(f"{apid!r} is outside 0..{MAX_APID}", layer=LAYER, field="apid")
    return (int(packet_type) << 12) | (int(bool(secondary_header_flag)) << 11) | apid


@fast_init
@dataclass(frozen=True, slots=True)
class SpacePacket:
    """One Space Packet. ``data`` is the whole Packet Data Field (secondary header + user data)."""

    apid: int
    sequence_count: int
    data: bytes
    packet_type: PacketType = PacketType.TM
    secondary_header_flag: bool = False
    sequence_flags: SequenceFlags = SequenceFlags.UNSEGMENTED

    @property
    def is_idle(self) -> bool:
        return self.apid == IDLE_APID

    @property
    def packet_id(self) -> int:
        """Packet Identification (§4.1.3.3): version, type, secondary header flag and APID."""
        return (int(self.packet_type) << 12) | (int(self.secondary_header_flag) << 11) | self.apid

    def __len__(self) -> int:
        return PRIMARY_HEADER_SIZE + len(self.data)

    def encode(self) -> bytes:
        """Return the packet octets. Raises :class:`EncodeError` naming the field out of range."""
        n = len(self.data)
        if not 1 <= n <= MAX_DATA_FIELD_LENGTH:
            raise EncodeError(
                f"packet data field is {n} octets, must be 1..{MAX_DATA_FIELD_LENGTH}",
                layer=LAYER, field="packet_data_field",
            )
        header = HEADER.pack(
            int(self.packet_type), int(self.secondary_header_flag), self.apid,
            int(self.sequence_flags), self.sequence_count, n - 1,
        )
        return header + bytes(self.data)

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0) -> SpacePacket:
        """Decode the packet starting at ``buf[offset]``; trailing octets are ignored.

        Raises :class:`TruncatedError` if the buffer ends inside the packet, or
        :class:`DecodeError` if the version number is not 0.
        """
        ptype, shf, apid, flags, count, length = HEADER.unpack(buf, offset)
        end = offset + PRIMARY_HEADER_SIZE + length + 1
        if end > len(buf):
            raise TruncatedError(
                f"packet data length says {length + 1} octets, {len(buf) - offset - 6} left",
                layer=LAYER, field="packet_data_length", offset=offset + 4,
            )
        # Table look-ups instead of Enum(...) calls: the enum constructor is the slowest
        # step of a decode (bench/bench_spp.py).
        return cls(
            apid, count, bytes(buf[offset + PRIMARY_HEADER_SIZE:end]), _PACKET_TYPES[ptype],
            shf == 1, _SEQUENCE_FLAGS[flags],
        )


def packet_length(buf: bytes, offset: int = 0) -> int:
    """Total length of the packet whose header starts at ``buf[offset]`` (needs 6 octets)."""
    if len(buf) - offset < PRIMARY_HEADER_SIZE:
        raise TruncatedError(
            "need 6 octets for the primary header", layer=LAYER, field="header", offset=offset
        )
    return ((buf[offset + 4] << 8) | buf[offset + 5]) + 7


def packet_apid(buf: bytes, offset: int = 0) -> int:
    """APID of the packet whose header starts at ``buf[offset]`` (133.0-B-2 §4.1.3.3.4: the
    low 11 bits of the first two octets; needs 2 octets), without decoding the packet."""
    if len(buf) - offset < 2:
        raise TruncatedError("need 2 octets for the APID", layer=LAYER, field="apid",
                             offset=offset)
    return ((buf[offset] & 0x07) << 8) | buf[offset + 1]


def idle_packet(length: int, sequence_count: int = 0, fill: int = 0x00) -> bytes:
    """An idle packet (APID 2047, §4.1.3.3.4.4) of exactly ``length`` octets (7..65542)."""
    if not PRIMARY_HEADER_SIZE + 1 <= length <= MAX_PACKET_LENGTH:
        raise EncodeError(
            f"idle packet length {length} outside 7..{MAX_PACKET_LENGTH}",
            layer=LAYER, field="packet_data_length",
        )
    return SpacePacket(IDLE_APID, sequence_count, bytes([fill]) * (length - 6)).encode()
