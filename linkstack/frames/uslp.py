"""USLP Transfer Frame, CCSDS 732.1-B-2 §4.1.

Layout (big-endian, MSB first)::

    Transfer Frame Primary Header (§4.1.2), 4 octets when truncated, else 7..14:
      Transfer Frame Version Number (4) = 1100 | Spacecraft Identifier (16) |
      Source-or-Destination Identifier (1) | Virtual Channel Identifier (6) |
      MAP Identifier (4) | End of Frame Primary Header Flag (1)   (1 = truncated: stop here)
      Frame Length (16) = total octets - 1 | Bypass/Sequence Control Flag (1) |
      Protocol Control Command Flag (1) | Reserved Spare (2) | OCF Flag (1) |
      VC Frame Count Length (3) | VC Frame Count (0..56 bits)
    Transfer Frame Insert Zone (fixed length, managed; §4.1.3)
    Transfer Frame Data Field (§4.1.4):
      TFDF Header: TFDZ Construction Rules (3) | USLP Protocol Identifier (5) |
        First Header Pointer / Last Valid Octet Pointer (16; only for rules 000, 001, 010)
      Transfer Frame Data Zone (TFDZ)
    Operational Control Field (4 octets, iff the OCF Flag is 1; §4.1.5)
    Frame Error Control Field (2 octets CRC-16 or 4 octets CRC-32, managed; §4.1.6)

Fixed-length frames (a physical-channel managed parameter) use the fixed-length TFDZ
rules 000 (packets spanning frames, with FHP), 001/010 (MAPA_SDU start/continuation, with
LVOP); variable-length frames use 011 (octet stream) and 100..111 (segments, no
segmentation) without the pointer. Truncated frames (4-octet header, no OCF, no frame
count, 1-octet TFDF header) exist only on variable-length channels and their length is a
managed parameter (spacepackets cites 732.1-B-2 p.161; specs/sources.md §1.6).

Maximum frame length: 65536 octets, the 16-bit Frame Length field (total - 1) (astro
``usdl``; specs/sources.md §1.6). The FHP/LVOP all-ones value means no packet starts (FHP) or
the SDU does not end (LVOP) in this frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.codecs.crc import check_fecf, compute_fecf
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.fast_dataclass import fast_init

LAYER = "uslp"

HEADER_ID_FIELDS = c.BitStruct(
    "transfer_frame_version_number" / c.Const(0b1100, c.BitsInteger(4)),
    "scid" / c.BitsInteger(16),
    "source_or_destination_id" / c.Flag,
    "vcid" / c.BitsInteger(6),
    "map_id" / c.BitsInteger(4),
    "end_of_frame_primary_header" / c.Flag,
)
"""First 4 octets of the primary header: all a truncated header has (732.1-B-2 §4.1.2.1-.6)."""

HEADER_CONTROL_FIELDS = c.BitStruct(
    "frame_length" / c.BitsInteger(16),
    "bypass_sequence_control_flag" / c.Flag,
    "protocol_control_command_flag" / c.Flag,
    c.Padding(2),
    "ocf_flag" / c.Flag,
    "vc_frame_count_length" / c.BitsInteger(3),
)
"""Octets 5-7 of a non-truncated primary header (732.1-B-2 §4.1.2.7-.11)."""

PRIMARY_HEADER = c.Struct(
    "id" / HEADER_ID_FIELDS,
    "control" / c.If(lambda this: not this.id.end_of_frame_primary_header,
                     HEADER_CONTROL_FIELDS),
    "vc_frame_count" / c.If(
        lambda this: this.control is not None and this.control.vc_frame_count_length > 0,
        c.BytesInteger(lambda this: this.control.vc_frame_count_length),
    ),
)
"""The single declaration of the whole (variable) USLP primary header (732.1-B-2 §4.1.2)."""

TFDF_HEADER_RULES = c.BitStruct(
    "tfdz_construction_rules" / c.BitsInteger(3),
    "uslp_protocol_id" / c.BitsInteger(5),
)

TFDF_HEADER = c.Struct(
    "rules" / TFDF_HEADER_RULES,
    "first_header_pointer" / c.If(lambda this: this.rules.tfdz_construction_rules <= 0b010,
                                  c.Int16ub),
)
"""TFDF header of a non-truncated frame (732.1-B-2 §4.1.4.2); FHP/LVOP for rules 000-010."""

ID = BitHeader(LAYER, HEADER_ID_FIELDS)
CONTROL = BitHeader(LAYER, HEADER_CONTROL_FIELDS)
TFDF_RULES = BitHeader(LAYER, TFDF_HEADER_RULES)

TRUNCATED_HEADER_SIZE = 4
HEADER_FIXED_SIZE = 7  # plus the VC Frame Count
OCF_SIZE = 4
MAX_FRAME_LENGTH = 65536  # 16-bit Frame Length field = total - 1
MAX_VC_FRAME_COUNT_LENGTH = 7
MAX_VCID = 63
IDLE_VCID = 63
POINTER_NONE = 0xFFFF
"""FHP: no packet starts in this TFDZ / LVOP: the MAPA_SDU does not end in it."""


class TfdzConstructionRule(IntEnum):
    """TFDZ Construction Rules (732.1-B-2 §4.1.4.2.2)."""

    PACKETS_SPANNING_FRAMES = 0b000
    MAPA_SDU_START = 0b001
    MAPA_SDU_CONTINUATION = 0b010
    OCTET_STREAM = 0b011
    STARTING_SEGMENT = 0b100
    CONTINUING_SEGMENT = 0b101
    LAST_SEGMENT = 0b110
    NO_SEGMENTATION = 0b111


FIXED_LENGTH_RULES = frozenset({0b000, 0b001, 0b010})


class UslpProtocolId(IntEnum):
    """USLP Protocol Identifiers (SANA registry; specs/sources.md §1.6)."""

    SPACE_PACKETS = 0
    COP_1 = 1
    COP_P = 2
    SDLS = 3
    USER_OCTET_STREAM = 4
    MAPA_SDU = 5
    PROXIMITY_1 = 7
    IDLE = 31


def has_pointer(tfdz_construction_rules: int, truncated: bool = False) -> bool:
    """True if the TFDF header carries the 16-bit FHP/LVOP (§4.1.4.2.4)."""
    return not truncated and tfdz_construction_rules in FIXED_LENGTH_RULES


@dataclass(frozen=True, slots=True)
class UslpChannelConfig:
    """Managed parameters of a USLP physical channel (732.1-B-2 §5).

    Attributes:
        frame_length: fixed Transfer Frame Length; None means variable-length frames.
        fecf_size: 0 (no FECF), 2 (CRC-16) or 4 (CRC-32).
        insert_zone_length: octets of the Insert Zone (0 = none).
        truncated_frame_length: length of truncated frames (variable-length channels only);
            None = truncated frames are not used.
        max_frame_length: largest variable-length frame accepted/built.
    """

    frame_length: int | None = None
    fecf_size: int = 2
    insert_zone_length: int = 0
    truncated_frame_length: int | None = None
    max_frame_length: int = MAX_FRAME_LENGTH

    def __post_init__(self) -> None:
        if self.fecf_size not in (0, 2, 4):
            raise ConfigError(f"{self.fecf_size} is not 0, 2 or 4", key="fecf_size")
        if self.insert_zone_length < 0:
            raise ConfigError("negative", key="insert_zone_length")
        if not 0 < self.max_frame_length <= MAX_FRAME_LENGTH:
            raise ConfigError(f"outside 1..{MAX_FRAME_LENGTH}", key="max_frame_length")
        if self.frame_length is not None:
            if self.truncated_frame_length is not None:
                raise ConfigError("truncated frames exist only on variable-length channels",
                                  key="truncated_frame_length")
            if not 0 < self.frame_length <= MAX_FRAME_LENGTH:
                raise ConfigError(f"outside 1..{MAX_FRAME_LENGTH}", key="frame_length")
            if self.data_field_capacity() < 0:
                raise ConfigError("too short for header, TFDF header and trailer",
                                  key="frame_length")
        if self.truncated_frame_length is not None and (
                not 0 < self.truncated_frame_length <= self.max_frame_length
                or self.data_field_capacity(truncated=True) < 0):
            raise ConfigError(
                f"{self.truncated_frame_length} cannot hold the 4-octet header, TFDF header "
                "and trailer", key="truncated_frame_length",
            )

    @property
    def fixed(self) -> bool:
        """True for a fixed-length channel."""
        return self.frame_length is not None

    def data_field_capacity(self, *, vc_frame_count_length: int = 0, ocf: bool = False,
                            truncated: bool = False,
                            tfdz_construction_rules: int | None = None) -> int:
        """Octets of TFDZ in one frame (the largest one on a variable-length channel).

        ``tfdz_construction_rules`` defaults to 000 on fixed-length channels (FHP present)
        and 111 on variable-length ones.
        """
        if truncated:
            total = self.truncated_frame_length or 0
            header = TRUNCATED_HEADER_SIZE
            ocf = False
        else:
            total = self.frame_length if self.frame_length is not None else self.max_frame_length
            header = HEADER_FIXED_SIZE + vc_frame_count_length
        if tfdz_construction_rules is None:
            tfdz_construction_rules = 0b000 if self.fixed else 0b111
        tfdf_header = 3 if has_pointer(tfdz_construction_rules, truncated) else 1
        return (total - header - self.insert_zone_length - tfdf_header
                - (OCF_SIZE if ocf else 0) - self.fecf_size)


DEFAULT_CONFIG = UslpChannelConfig()


@fast_init
@dataclass(frozen=True, slots=True)
class UslpFrame:
    """One USLP Transfer Frame (732.1-B-2 §4.1).

    ``data_field`` is the TFDZ. ``first_header_pointer`` is the FHP (rule 000) or LVOP
    (rules 001/010) and must be None for the other rules and in truncated frames. The OCF
    Flag is derived from ``ocf``. ``truncated`` selects the 4-octet header; such a frame
    keeps every control field at its default.
    """

    scid: int
    vcid: int
    map_id: int = 0
    data_field: bytes = b""
    tfdz_construction_rules: int = TfdzConstructionRule.NO_SEGMENTATION
    uslp_protocol_id: int = UslpProtocolId.SPACE_PACKETS
    first_header_pointer: int | None = None
    source_or_destination_id: bool = False
    bypass_sequence_control_flag: bool = False
    protocol_control_command_flag: bool = False
    vc_frame_count_length: int = 0
    vc_frame_count: int = 0
    insert_zone: bytes = b""
    ocf: bytes | None = None
    truncated: bool = False

    @property
    def ocf_flag(self) -> bool:
        return self.ocf is not None

    @property
    def header_length(self) -> int:
        if self.truncated:
            return TRUNCATED_HEADER_SIZE
        return HEADER_FIXED_SIZE + self.vc_frame_count_length

    def encoded_length(self, config: UslpChannelConfig = DEFAULT_CONFIG) -> int:
        return (self.header_length + len(self.insert_zone)
                + (3 if has_pointer(self.tfdz_construction_rules, self.truncated) else 1)
                + len(self.data_field) + (OCF_SIZE if self.ocf is not None else 0)
                + config.fecf_size)

    def _check(self, config: UslpChannelConfig) -> None:
        rules = self.tfdz_construction_rules
        if not 0 <= rules <= 7:
            raise EncodeError(f"{rules!r} outside 0..7", layer=LAYER,
                              field="tfdz_construction_rules")
        if config.fixed == (rules not in FIXED_LENGTH_RULES):
            kind = "fixed" if config.fixed else "variable"
            raise EncodeError(
                f"rule {rules:03b} is not a {kind}-length TFDZ rule (fixed: 000-010, "
                "variable: 011-111)",
                layer=LAYER, field="tfdz_construction_rules",
            )
        if has_pointer(rules, self.truncated) != (self.first_header_pointer is not None):
            raise EncodeError(
                f"rule {rules:03b} {'needs' if has_pointer(rules, self.truncated) else 'has no'}"
                " First Header Pointer / Last Valid Octet Pointer",
                layer=LAYER, field="first_header_pointer",
            )
        if self.first_header_pointer is not None and not (
                self.first_header_pointer == POINTER_NONE
                or 0 <= self.first_header_pointer < len(self.data_field)):
            raise EncodeError(
                f"{self.first_header_pointer} is neither 0xFFFF nor inside the "
                f"{len(self.data_field)}-octet TFDZ",
                layer=LAYER, field="first_header_pointer",
            )
        if self.truncated:
            if config.truncated_frame_length is None:
                raise EncodeError("the channel has no truncated frame length",
                                  layer=LAYER, field="end_of_frame_primary_header")
            for name in ("bypass_sequence_control_flag", "protocol_control_command_flag",
                         "vc_frame_count_length", "vc_frame_count"):
                if getattr(self, name):
                    raise EncodeError("not in a truncated header", layer=LAYER, field=name)
            if self.ocf is not None:
                raise EncodeError("a truncated frame has no OCF", layer=LAYER, field="ocf")
        if not 0 <= self.vc_frame_count_length <= MAX_VC_FRAME_COUNT_LENGTH:
            raise EncodeError(f"{self.vc_frame_count_length!r} outside 0..7", layer=LAYER,
                              field="vc_frame_count_length")
        if not 0 <= self.vc_frame_count < (1 << (8 * self.vc_frame_count_length)):
            raise EncodeError(
                f"{self.vc_frame_count!r} does not fit in {self.vc_frame_count_length} octets",
                layer=LAYER, field="vc_frame_count",
            )
        if len(self.insert_zone) != config.insert_zone_length:
            raise EncodeError(
                f"{len(self.insert_zone)} octets, the channel's Insert Zone is "
                f"{config.insert_zone_length}",
                layer=LAYER, field="insert_zone",
            )
        if self.ocf is not None and len(self.ocf) != OCF_SIZE:
            raise EncodeError(f"{len(self.ocf)} octets, must be 4", layer=LAYER, field="ocf")

    def encode(self, config: UslpChannelConfig = DEFAULT_CONFIG) -> bytes:
        """Return the frame octets. On a fixed-length channel (or for a truncated frame)
        the TFDZ must fill the frame exactly; errors are :class:`EncodeError` by field."""
        self._check(config)
        length = self.encoded_length(config)
        if self.truncated:
            target: int | None = config.truncated_frame_length
        else:
            target = config.frame_length
        if target is not None and length != target:
            capacity = target - (length - len(self.data_field))
            raise EncodeError(
                f"{len(self.data_field)} octets; a {target}-octet frame with these options "
                f"needs exactly {capacity}",
                layer=LAYER, field="data_field",
            )
        if length > config.max_frame_length:
            raise EncodeError(f"frame would be {length} octets, maximum "
                              f"{config.max_frame_length}", layer=LAYER, field="frame_length")
        out = ID.pack(self.scid, int(self.source_or_destination_id), self.vcid, self.map_id,
                      int(self.truncated))
        if not self.truncated:
            out += CONTROL.pack(length - 1, int(self.bypass_sequence_control_flag),
                                int(self.protocol_control_command_flag),
                                int(self.ocf is not None), self.vc_frame_count_length)
            if self.vc_frame_count_length:
                out += self.vc_frame_count.to_bytes(self.vc_frame_count_length, "big")
        out += bytes(self.insert_zone)
        out += TFDF_RULES.pack(self.tfdz_construction_rules, self.uslp_protocol_id)
        if self.first_header_pointer is not None:
            out += self.first_header_pointer.to_bytes(2, "big")
        out += bytes(self.data_field)
        if self.ocf is not None:
            out += bytes(self.ocf)
        if config.fecf_size:
            out += compute_fecf(out, config.fecf_size)
        return out

    @classmethod
    def decode(cls, buf: bytes, config: UslpChannelConfig = DEFAULT_CONFIG) -> UslpFrame:
        """Decode the frame at the start of ``buf``.

        Fixed-length channel: ``buf`` must be exactly ``config.frame_length`` octets and the
        Frame Length field must agree. Variable-length: the length comes from the Frame
        Length field (or the managed truncated length) and trailing octets are ignored
        (:func:`uslp_frame_length` says how many were used). The FECF is checked first.
        """
        fecf = config.fecf_size
        if config.frame_length is not None and len(buf) == config.frame_length:
            # Fixed length: the frame is delimited by management, so the FECF is checked
            # before a single header bit is believed.
            frame = bytes(buf)
            if fecf:
                check_fecf(frame, layer=LAYER, size=fecf)
            length = uslp_frame_length(frame, config)
        else:
            length = uslp_frame_length(buf, config)
            frame = bytes(buf[:length])
            if fecf:
                check_fecf(frame, layer=LAYER, size=fecf)
        scid, sod, vcid, map_id, truncated = ID.unpack(frame)
        pos = TRUNCATED_HEADER_SIZE
        bypass = pcc = ocf_flag = vcfc_len = vcfc = 0
        if not truncated:
            _, bypass, pcc, ocf_flag, vcfc_len = CONTROL.unpack(frame, pos)
            pos = HEADER_FIXED_SIZE
            if vcfc_len:
                if length < pos + vcfc_len:
                    raise TruncatedError("frame ends inside the VC Frame Count", layer=LAYER,
                                         field="vc_frame_count", offset=pos)
                vcfc = int.from_bytes(frame[pos:pos + vcfc_len], "big")
                pos += vcfc_len
        insert_zone = frame[pos:pos + config.insert_zone_length]
        pos += config.insert_zone_length
        end = length - fecf
        ocf: bytes | None = None
        if ocf_flag:
            end -= OCF_SIZE
        if end - pos < 1:
            raise TruncatedError("no room for the TFDF header", layer=LAYER,
                                 field="tfdf_header", offset=min(pos, length))
        rules, upid = TFDF_RULES.unpack(frame, pos)
        if config.fixed == (rules not in FIXED_LENGTH_RULES):
            kind = "fixed" if config.fixed else "variable"
            raise DecodeError(f"rule {rules:03b} is not a {kind}-length TFDZ rule",
                              layer=LAYER, field="tfdz_construction_rules", offset=pos)
        fhp: int | None = None
        if has_pointer(rules, bool(truncated)):
            if end - pos < 3:
                raise TruncatedError("no room for the First Header Pointer", layer=LAYER,
                                     field="first_header_pointer", offset=pos + 1)
            fhp = (frame[pos + 1] << 8) | frame[pos + 2]
            zone = end - pos - 3
            if fhp != POINTER_NONE and fhp >= zone:
                raise DecodeError(f"{fhp} points beyond the {zone}-octet TFDZ", layer=LAYER,
                                  field="first_header_pointer", offset=pos + 1)
            pos += 3
        else:
            pos += 1
        if ocf_flag:
            ocf = frame[end:end + OCF_SIZE]
        return cls(scid, vcid, map_id, frame[pos:end], rules, upid, fhp, bool(sod), bool(bypass),
                   bool(pcc), vcfc_len, vcfc, insert_zone, ocf, bool(truncated))


def uslp_frame_length(buf: bytes, config: UslpChannelConfig = DEFAULT_CONFIG) -> int:
    """Length of the USLP frame at the start of ``buf`` under ``config``, checked against
    ``len(buf)`` (:class:`TruncatedError` / :class:`DecodeError` naming the field)."""
    n = len(buf)
    if n < TRUNCATED_HEADER_SIZE:
        raise TruncatedError(f"need 4 octets for the primary header, got {n}", layer=LAYER,
                             field="header", offset=0)
    if buf[3] & 1:
        if config.truncated_frame_length is None:
            raise DecodeError(
                "truncated frame (End of Frame Primary Header = 1) but the channel has no "
                "truncated frame length" + (" (fixed-length channel)" if config.fixed else ""),
                layer=LAYER, field="end_of_frame_primary_header", offset=3,
            )
        length = config.truncated_frame_length
        if n < length:
            raise TruncatedError(f"truncated frames are {length} octets, got {n}",
                                 layer=LAYER, field="frame_length", offset=n)
        return length
    if n < HEADER_FIXED_SIZE:
        raise TruncatedError(f"need 7 octets for the primary header, got {n}", layer=LAYER,
                             field="frame_length", offset=min(n, 4))
    length = ((buf[4] << 8) | buf[5]) + 1
    if config.frame_length is not None:
        if n != config.frame_length:
            cls = TruncatedError if n < config.frame_length else DecodeError
            raise cls(f"{n} octets, the channel's frames are {config.frame_length}",
                      layer=LAYER, field="frame_length", offset=min(n, config.frame_length))
        if length != config.frame_length:
            raise DecodeError(f"Frame Length says {length} octets, the channel's frames are "
                              f"{config.frame_length}", layer=LAYER, field="frame_length",
                              offset=4)
    elif length > n:
        raise TruncatedError(f"Frame Length says {length} octets, buffer holds {n}",
                             layer=LAYER, field="frame_length", offset=4)
    elif length > config.max_frame_length:
        raise DecodeError(f"{length} octets exceeds the maximum {config.max_frame_length}",
                          layer=LAYER, field="frame_length", offset=4)
    return length


def uslp_header_fields(buf: bytes, offset: int = 0) -> tuple[int, ...]:
    """Fast unpack of the first 4 header octets: ``(scid, source_or_destination_id, vcid,
    map_id, end_of_frame_primary_header)``."""
    return ID.unpack(buf, offset)
