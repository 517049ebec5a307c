"""TM Transfer Frame, CCSDS 132.0-B-3 §4.1.

Layout (big-endian, MSB first)::

    Primary Header (6 octets, §4.1.2)
      Transfer Frame Version Number (2) = 00 | Spacecraft Identifier (10) |
      Virtual Channel Identifier (3) | Operational Control Field Flag (1) |
      Master Channel Frame Count (8) | Virtual Channel Frame Count (8) |
      Transfer Frame Data Field Status (16):
        Transfer Frame Secondary Header Flag (1) | Synchronization Flag (1) |
        Packet Order Flag (1) | Segment Length Identifier (2) | First Header Pointer (11)
    Transfer Frame Secondary Header (optional, §4.1.3): ID octet = version (2) = 00 |
      length (6) = secondary header octets - 1; then up to 63 octets of data
    Transfer Frame Data Field (§4.1.4): the packet zone
    Operational Control Field (4 octets, present iff the OCF Flag is 1, §4.1.5): a CLCW
    Frame Error Control Field (2 octets, optional per physical channel, §4.1.6): CRC-16

First Header Pointer special values (§4.1.2.7.6 / .7): ``0x7FF`` no packet starts in this
frame, ``0x7FE`` the frame holds only idle data. Sources: yamcs ``TmFrameDecoder``, Wireshark
``packet-vcdu.c``. ravisuhag/astro ``pkg/aos/frame.go`` has the two swapped
(specs/sources.md §1.3, §2 item 3) — linkstack follows the first two.

The frame length is fixed per physical channel (a managed parameter, :class:`TmChannelConfig`),
at most 2048 octets: that limit is the one spacepackets ``tm_frame.py`` cites from 131.0-B
(TM Synchronization and Channel Coding) and specs/sources.md §1.3 records. spacepackets 0.32
itself rejects ``length >= 2048`` (specs/sources.md §2 item 4); linkstack accepts 2048.

Hot path: :meth:`TmFrame.decode` uses the :class:`~linkstack.bitfields.BitHeader` fast
unpack generated from :data:`PRIMARY_HEADER`, never a construct parse.
"""

from __future__ import annotations

from dataclasses import dataclass

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.codecs.crc import compute_fecf, crc16_ccitt
from linkstack.errors import ChecksumError, ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.fast_dataclass import fast_init
from linkstack.spp.packet import PRIMARY_HEADER_SIZE as SPP_HEADER_SIZE

LAYER = "tm"

PRIMARY_HEADER = c.BitStruct(
    "transfer_frame_version_number" / c.Const(0, c.BitsInteger(2)),
    "scid" / c.BitsInteger(10),
    "vcid" / c.BitsInteger(3),
    "ocf_flag" / c.Flag,
    "mc_frame_count" / c.BitsInteger(8),
    "vc_frame_count" / c.BitsInteger(8),
    "secondary_header_flag" / c.Flag,
    "synchronization_flag" / c.Flag,
    "packet_order_flag" / c.Flag,
    "segment_length_id" / c.BitsInteger(2),
    "first_header_pointer" / c.BitsInteger(11),
)
"""The single declaration of the TM primary header (132.0-B-3 §4.1.2)."""

SECONDARY_HEADER_ID = c.BitStruct(
    "secondary_header_version_number" / c.Const(0, c.BitsInteger(2)),
    "secondary_header_length" / c.BitsInteger(6),
)
"""Transfer Frame Secondary Header Identification (132.0-B-3 §4.1.3.2)."""

HEADER = BitHeader(LAYER, PRIMARY_HEADER)
SECONDARY_ID = BitHeader(LAYER, SECONDARY_HEADER_ID)

PRIMARY_HEADER_SIZE = 6
OCF_SIZE = 4
FECF_SIZE = 2
MAX_FRAME_LENGTH = 2048  # 131.0-B via spacepackets tm_frame.py; specs/sources.md §1.3.
MAX_SECONDARY_HEADER_LENGTH = 64  # ID octet + up to 63 data octets (6-bit length = total - 1)
MAX_VCID = 7
FRAME_COUNT_MODULUS = 256
SEGMENT_LENGTH_ID_PACKETS = 0b11  # required when the Synchronization Flag is 0

FHP_NO_PACKET_START = 0x7FF
"""First Header Pointer: no packet starts in this frame's data field."""
FHP_IDLE_DATA = 0x7FE
"""First Header Pointer: the data field holds only idle data (OID)."""

_unpack_header = HEADER.unpack


@dataclass(frozen=True, slots=True)
class TmChannelConfig:
    """Managed parameters of a TM physical channel (132.0-B-3 §5).

    Attributes:
        frame_length: Transfer Frame Length, fixed for the physical channel (7..2048).
        has_fecf: every frame ends with the 2-octet FECF.
        has_ocf: default OCF presence used by :meth:`data_field_capacity` (the frame itself
            says whether it has one, in the OCF Flag).
        secondary_header_length: default total secondary header length (ID octet
            included; 0 = none) used by :meth:`data_field_capacity`.
    """

    frame_length: int = 1115
    has_fecf: bool = True
    has_ocf: bool = False
    secondary_header_length: int = 0

    def __post_init__(self) -> None:
        smallest = PRIMARY_HEADER_SIZE + 1 + (FECF_SIZE if self.has_fecf else 0)
        if not smallest <= self.frame_length <= MAX_FRAME_LENGTH:
            raise ConfigError(
                f"{self.frame_length} outside {smallest}..{MAX_FRAME_LENGTH}", key="frame_length"
            )
        if not 0 <= self.secondary_header_length <= MAX_SECONDARY_HEADER_LENGTH:
            raise ConfigError(
                f"{self.secondary_header_length} outside 0..{MAX_SECONDARY_HEADER_LENGTH}",
                key="secondary_header_length",
            )
        if self.data_field_capacity() < 1:
            raise ConfigError("no room left for the data field", key="frame_length")

    def data_field_capacity(self, *, ocf: bool | None = None,
                            secondary_header_length: int | None = None) -> int:
        """Octets of the Transfer Frame Data Field (the packet zone) in one frame.

        ``ocf`` and ``secondary_header_length`` (total, ID octet included) default to the
        channel's values; pass the frame's own to size a particular frame.
        """
        has_ocf = self.has_ocf if ocf is None else ocf
        sec = self.secondary_header_length if secondary_header_length is None else (
            secondary_header_length)
        return (self.frame_length - PRIMARY_HEADER_SIZE - sec - (OCF_SIZE if has_ocf else 0)
                - (FECF_SIZE if self.has_fecf else 0))


DEFAULT_CONFIG = TmChannelConfig()


@fast_init
@dataclass(frozen=True, slots=True)
class TmFrame:
    """One TM Transfer Frame (132.0-B-3 §4.1).

    ``data_field`` is the Transfer Frame Data Field (the packet zone). The OCF Flag and the
    Secondary Header Flag are derived: set ``ocf`` (4 octets, usually a CLCW) and
    ``secondary_header`` (its data, 0..63 octets, without the ID octet) or leave them None.
    """

    scid: int
    vcid: int
    mc_frame_count: int = 0
    vc_frame_count: int = 0
    first_header_pointer: int = 0
    data_field: bytes = b""
    ocf: bytes | None = None
    secondary_header: bytes | None = None
    synchronization_flag: bool = False
    packet_order_flag: bool = False
    segment_length_id: int = SEGMENT_LENGTH_ID_PACKETS

    @property
    def ocf_flag(self) -> bool:
        return self.ocf is not None

    @property
    def secondary_header_flag(self) -> bool:
        return self.secondary_header is not None

    @property
    def is_idle(self) -> bool:
        """True for an Only Idle Data frame (FHP ``0x7FE``)."""
        return not self.synchronization_flag and self.first_header_pointer == FHP_IDLE_DATA

    def encode(self, config: TmChannelConfig = DEFAULT_CONFIG) -> bytes:
        """Return the ``config.frame_length`` octets of the frame.

        The data field must fill the frame exactly (see
        :meth:`TmChannelConfig.data_field_capacity`); every error is an
        :class:`EncodeError` naming the field.
        """
        sec = self.secondary_header
        sec_total = 0
        if sec is not None:
            if len(sec) > MAX_SECONDARY_HEADER_LENGTH - 1:
                raise EncodeError(
                    f"{len(sec)} octets, at most {MAX_SECONDARY_HEADER_LENGTH - 1}",
                    layer=LAYER, field="secondary_header",
                )
            sec_total = 1 + len(sec)
        if self.ocf is not None and len(self.ocf) != OCF_SIZE:
            raise EncodeError(f"{len(self.ocf)} octets, must be 4", layer=LAYER, field="ocf")
        capacity = config.data_field_capacity(ocf=self.ocf is not None,
                                              secondary_header_length=sec_total)
        if len(self.data_field) != capacity:
            raise EncodeError(
                f"{len(self.data_field)} octets; a {config.frame_length}-octet frame with these "
                f"options needs exactly {capacity}",
                layer=LAYER, field="data_field",
            )
        if not self.synchronization_flag:
            if self.segment_length_id != SEGMENT_LENGTH_ID_PACKETS:
                raise EncodeError(
                    "must be 0b11 when the Synchronization Flag is 0 (132.0-B-3 §4.1.2.7.5)",
                    layer=LAYER, field="segment_length_id",
                )
            _check_fhp(self.first_header_pointer, capacity)
        ocf = self.ocf
        parts = [HEADER.pack(
            self.scid, self.vcid, int(ocf is not None), self.mc_frame_count,
            self.vc_frame_count, int(sec is not None), int(self.synchronization_flag),
            int(self.packet_order_flag), self.segment_length_id, self.first_header_pointer,
        )]
        if sec is not None:
            parts.append(SECONDARY_ID.pack(len(sec)))
            parts.append(bytes(sec))
        parts.append(bytes(self.data_field))  # (no copy when it is bytes already)
        if ocf is not None:
            parts.append(bytes(ocf))
        # One join instead of a copy of the growing frame per part (the same octets).
        out = b"".join(parts)
        if config.has_fecf:
            out += compute_fecf(out, FECF_SIZE)
        return out

    @classmethod
    def decode(cls, buf: bytes, config: TmChannelConfig = DEFAULT_CONFIG) -> TmFrame:
        """Decode one frame of exactly ``config.frame_length`` octets.

        Checks the FECF first (:class:`ChecksumError`) when the channel has one. A
        non-standard Segment Length Identifier is accepted and kept (peers differ); a
        First Header Pointer outside the data field is a :class:`DecodeError`.
        """
        n = config.frame_length
        got = len(buf)
        if got != n:
            if got < n:
                raise TruncatedError(f"{got} octets, the channel's frames are {n}",
                                     layer=LAYER, field="frame_length", offset=got)
            raise DecodeError(f"{got} octets, the channel's frames are {n}",
                              layer=LAYER, field="frame_length", offset=n)
        end = n
        if config.has_fecf:
            if crc16_ccitt(buf):
                raise ChecksumError(
                    f"FECF is {bytes(buf[-2:]).hex()}, expected "
                    f"{compute_fecf(buf[:-2], FECF_SIZE).hex()}",
                    layer=LAYER, field="frame_error_control", offset=n - FECF_SIZE,
                )
            end -= FECF_SIZE
        scid, vcid, ocf_flag, mc, vc, shf, sync, pof, slid, fhp = _unpack_header(buf)
        pos = PRIMARY_HEADER_SIZE
        sec: bytes | None = None
        if shf:
            ident = buf[pos]
            if ident >> 6:
                raise DecodeError(f"is {ident >> 6}, must be 0", layer=LAYER,
                                  field="secondary_header_version_number", offset=pos)
            sec_end = pos + 1 + (ident & 0x3F)
            sec = bytes(buf[pos + 1:sec_end])
            pos = sec_end
        ocf: bytes | None = None
        if ocf_flag:
            end -= OCF_SIZE
            ocf = bytes(buf[end:end + OCF_SIZE])
        if end < pos:
            raise DecodeError(
                "secondary header and trailer leave no data field",
                layer=LAYER, field="secondary_header_length" if shf else "ocf_flag",
                offset=PRIMARY_HEADER_SIZE if shf else 1,
            )
        if not sync and fhp < FHP_IDLE_DATA and fhp >= end - pos:
            raise DecodeError(
                f"{fhp} points beyond the {end - pos}-octet data field",
                layer=LAYER, field="first_header_pointer", offset=4,
            )
        # sync and pof are single bits: ``== 1`` is bool() without the call.
        return cls(scid, vcid, mc, vc, fhp, bytes(buf[pos:end]), ocf, sec, sync == 1,
                   pof == 1, slid)


def tm_frame_header_fields(buf: bytes, offset: int = 0) -> tuple[int, ...]:
    """Fast unpack of the 6-octet primary header (≈1 µs, no construct parse).

    Returns ``(scid, vcid, ocf_flag, mc_frame_count, vc_frame_count, secondary_header_flag,
    synchronization_flag, packet_order_flag, segment_length_id, first_header_pointer)``;
    raises :class:`DecodeError` if the version number is not 0.
    """
    return _unpack_header(buf, offset)


TM_HEADER_FIELD_NAMES: tuple[str, ...] = HEADER.names


def _check_fhp(fhp: int, zone_length: int, *, layer: str = LAYER,
               specials: tuple[int, ...] = (FHP_NO_PACKET_START, FHP_IDLE_DATA)) -> None:
    if fhp not in specials and not 0 <= fhp < zone_length:
        raise EncodeError(
            f"{fhp} is neither a special value nor inside the {zone_length}-octet data field",
            layer=layer, field="first_header_pointer",
        )


# --------------------------------------------------------------------------------------
# Packet zone: Space Packets located with the First Header Pointer (TM, AOS M_PDU, USLP)
# --------------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class PacketZone:
    """A data field split at packet boundaries.

    ``head``: octets before the first header (the end of a packet begun in an earlier
    frame); ``packets``: packets that start and end in this zone; ``tail``: the start of a
    packet that continues in the next frame; ``idle``: the zone holds only idle data.
    """

    head: bytes
    packets: tuple[bytes, ...]
    tail: bytes
    idle: bool = False


def split_packet_zone(zone: bytes, first_header_pointer: int, *,
                      no_packet_start: int = FHP_NO_PACKET_START,
                      idle_data: int | None = FHP_IDLE_DATA, layer: str = LAYER,
                      base_offset: int = 0) -> PacketZone:
    """Split a packet zone using its First Header Pointer and the packet length fields.

    For TM and AOS M_PDU use the defaults; for USLP pass ``no_packet_start=0xFFFF,
    idle_data=None``. ``base_offset`` is the zone's offset in the frame, for errors.
    """
    zone = bytes(zone)
    if idle_data is not None and first_header_pointer == idle_data:
        return PacketZone(b"", (), b"", idle=True)
    if first_header_pointer == no_packet_start:
        return PacketZone(zone, (), b"")
    if not 0 <= first_header_pointer < len(zone):
        raise DecodeError(
            f"{first_header_pointer} points beyond the {len(zone)}-octet zone",
            layer=layer, field="first_header_pointer", offset=base_offset,
        )
    pos = first_header_pointer
    packets: list[bytes] = []
    n = len(zone)
    while pos < n:
        if n - pos < SPP_HEADER_SIZE:
            break
        total = ((zone[pos + 4] << 8) | zone[pos + 5]) + SPP_HEADER_SIZE + 1
        if pos + total > n:
            break
        packets.append(zone[pos:pos + total])
        pos += total
    return PacketZone(zone[:first_header_pointer], tuple(packets), zone[pos:])
