"""TC Transfer Frame, CCSDS 232.0-B-4 §4.1, with the MAP segmentation of §4.1.3.2.

Layout (all big-endian, MSB first)::

    Primary Header (5 octets, §4.1.2)
      Transfer Frame Version Number (2) = 00 | Bypass Flag (1) | Control Command Flag (1) |
      Reserved Spare (2) | Spacecraft Identifier (10) | Virtual Channel Identifier (6) |
      Frame Length (10) = total octets - 1 | Frame Sequence Number N(S) (8)
    Segment Header (1 octet, optional, §4.1.3.2; per VC, managed; never on BC frames)
      Sequence Flags (2) | MAP Identifier (6)
    Transfer Frame Data Field (the segment, or the whole data field without a Segment Header)
    Frame Error Control Field (2 octets, optional, CRC-16, §4.1.4; per physical channel)

Frame types (§4.1.2.3, bypass / control command): 0/0 AD (sequence-controlled data),
1/0 BD (expedited data), 1/1 BC (COP-1 control command). 0/1 is not a valid frame type:
the decoder raises :class:`DecodeError` naming ``control_command_flag`` so the caller
discards the frame (FARM-1 event E9 in OC's naming, specs/sources.md §1.13).

Maximum frame length: 1024 octets. The Frame Length field is 10 bits (total - 1), so
1024 is the largest length it can express; CryptoLib ``TC_MAX_FRAME_SIZE 1024`` and astro
``MaxFrameLength=1024`` agree (specs/sources.md §1.2). yamcs accepts up to 65535, which the
standard does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.codecs.crc import check_fecf, compute_fecf
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.fast_dataclass import fast_init
from linkstack.spp.packet import PRIMARY_HEADER_SIZE as SPP_HEADER_SIZE
from linkstack.spp.packet import SequenceFlags

LAYER = "tc"

PRIMARY_HEADER = c.BitStruct(
    "transfer_frame_version_number" / c.Const(0, c.BitsInteger(2)),
    "bypass_flag" / c.Flag,
    "control_command_flag" / c.Flag,
    c.Padding(2),
    "scid" / c.BitsInteger(10),
    "vcid" / c.BitsInteger(6),
    "frame_length" / c.BitsInteger(10),
    "frame_sequence_number" / c.BitsInteger(8),
)
"""The single declaration of the TC primary header (232.0-B-4 §4.1.2)."""

SEGMENT_HEADER = c.BitStruct(
    "sequence_flags" / c.BitsInteger(2),
    "map_id" / c.BitsInteger(6),
)
"""The single declaration of the Segment Header (232.0-B-4 §4.1.3.2)."""

HEADER = BitHeader(LAYER, PRIMARY_HEADER)
SEGMENT = BitHeader(LAYER, SEGMENT_HEADER)

PRIMARY_HEADER_SIZE = 5
SEGMENT_HEADER_SIZE = 1
FECF_SIZE = 2
MAX_FRAME_LENGTH = 1024  # 10-bit Frame Length field (total - 1); see the module docstring.
MAX_VCID = 63
MAX_MAP_ID = 63
FRAME_SEQUENCE_MODULUS = 256

# BC control commands (232.0-B-4 §4.1.3.3 / 232.1-B-2; specs/sources.md §1.13).
UNLOCK = b"\x00"
SET_VR_PREFIX = b"\x82\x00"


class TcFrameType(IntEnum):
    """Frame type from (Bypass Flag, Control Command Flag), §4.1.2.3; the value is the two
    flags as a 2-bit number.

    ``AD``: sequence-controlled data (Bypass Flag 0, Control Command Flag 0); ``BD``: expedited
    data (1, 0); ``BC``: COP-1 control command (1, 1). The fourth combination (0, 1) is not a
    frame type: :func:`frame_type_of` and :meth:`from_flags` return ``None`` for it. COP-1
    (:mod:`linkstack.arq`) uses this same enum under the name ``FrameType``.

    The value of ``AD`` is 0, so ``AD`` is falsy: test a ``TcFrameType | None`` with
    ``is None``, never by truth value.
    """

    AD = 0b00
    BD = 0b10
    BC = 0b11

    @property
    def bypass_flag(self) -> int:
        return self.value >> 1

    @property
    def control_command_flag(self) -> int:
        return self.value & 1

    @classmethod
    def from_flags(cls, bypass_flag: int, control_command_flag: int) -> TcFrameType | None:
        """Frame type from the two header flags (any truthy value is 1); ``None`` for the
        invalid combination (0, 1)."""
        return frame_type_of(bool(bypass_flag), bool(control_command_flag))


def frame_type_of(bypass_flag: bool, control_command_flag: bool) -> TcFrameType | None:
    """AD/BD/BC, or None for the invalid combination bypass 0 / control command 1."""
    code = (int(bypass_flag) << 1) | int(control_command_flag)
    return None if code == 0b01 else TcFrameType(code)


@dataclass(frozen=True, slots=True)
class TcChannelConfig:
    """Managed parameters of a TC physical channel (232.0-B-4 §5).

    Attributes:
        has_fecf: the FECF is present in every frame (a physical-channel parameter).
        segmented_vcids: VCs whose frames carry the Segment Header (MAP service); BC frames
            never carry it.
        max_frame_length: Maximum Transfer Frame Length, at most 1024.
    """

    has_fecf: bool = True
    segmented_vcids: frozenset[int] = frozenset()
    max_frame_length: int = MAX_FRAME_LENGTH

    def __post_init__(self) -> None:
        object.__setattr__(self, "segmented_vcids", frozenset(self.segmented_vcids))
        smallest = PRIMARY_HEADER_SIZE + (FECF_SIZE if self.has_fecf else 0) + 1
        if not smallest <= self.max_frame_length <= MAX_FRAME_LENGTH:
            raise ConfigError(
                f"{self.max_frame_length} outside {smallest}..{MAX_FRAME_LENGTH}",
                key="max_frame_length",
            )
        for vcid in self.segmented_vcids:
            if not 0 <= vcid <= MAX_VCID:
                raise ConfigError(f"VCID {vcid} outside 0..{MAX_VCID}", key="segmented_vcids")

    def has_segment_header(self, vcid: int, control_command_flag: bool = False) -> bool:
        """True if a frame of ``vcid`` carries the Segment Header (never a BC frame)."""
        return not control_command_flag and vcid in self.segmented_vcids

    def data_field_capacity(self, vcid: int = 0, *, control_command_flag: bool = False) -> int:
        """Octets available for data (after the Segment Header) in the largest frame of ``vcid``."""
        return (
            self.max_frame_length - PRIMARY_HEADER_SIZE
            - (SEGMENT_HEADER_SIZE if self.has_segment_header(vcid, control_command_flag) else 0)
            - (FECF_SIZE if self.has_fecf else 0)
        )


DEFAULT_CONFIG = TcChannelConfig()
_SEQUENCE_FLAGS = tuple(SequenceFlags(i) for i in range(4))


@fast_init
@dataclass(frozen=True, slots=True)
class TcFrame:
    """One TC Transfer Frame (232.0-B-4 §4.1).

    ``data_field`` is the Transfer Frame Data Field without the Segment Header; on a VC
    that uses the Segment Header, ``map_id`` and ``sequence_flags`` hold its two fields,
    otherwise ``map_id`` is None.
    """

    scid: int
    vcid: int
    frame_sequence_number: int = 0
    data_field: bytes = b""
    bypass_flag: bool = False
    control_command_flag: bool = False
    map_id: int | None = None
    sequence_flags: SequenceFlags = SequenceFlags.UNSEGMENTED

    @property
    def ns(self) -> int:
        """N(S), the Frame Sequence Number."""
        return self.frame_sequence_number

    @property
    def frame_type(self) -> TcFrameType | None:
        """AD, BD or BC; None for the invalid bypass 0 / control command 1 combination."""
        return frame_type_of(self.bypass_flag, self.control_command_flag)

    def encoded_length(self, config: TcChannelConfig = DEFAULT_CONFIG) -> int:
        """Total frame length in octets once encoded with ``config``."""
        return (
            PRIMARY_HEADER_SIZE
            + (SEGMENT_HEADER_SIZE if self.map_id is not None else 0)
            + len(self.data_field)
            + (FECF_SIZE if config.has_fecf else 0)
        )

    def encode(self, config: TcChannelConfig = DEFAULT_CONFIG) -> bytes:
        """Return the frame octets, FECF included when ``config.has_fecf``.

        Raises :class:`EncodeError` naming the field: a value out of range, the invalid
        frame type, a Segment Header given (or missing) against the managed parameter, or
        a frame longer than ``config.max_frame_length``.
        """
        if not self.bypass_flag and self.control_command_flag:
            raise EncodeError(
                "Bypass Flag 0 with Control Command Flag 1 is not a valid frame type",
                layer=LAYER, field="control_command_flag",
            )
        if not 0 <= self.vcid <= MAX_VCID:
            raise EncodeError(f"{self.vcid!r} is outside 0..{MAX_VCID}", layer=LAYER,
                              field="vcid")
        segmented = config.has_segment_header(self.vcid, self.control_command_flag)
        if segmented and self.map_id is None:
            raise EncodeError(
                f"VC {self.vcid} carries the Segment Header (managed parameter): give map_id",
                layer=LAYER, field="map_id",
            )
        if not segmented and self.map_id is not None:
            why = "BC frames carry none" if self.control_command_flag else (
                f"VC {self.vcid} is not configured with a Segment Header")
            raise EncodeError(f"map_id given but {why}", layer=LAYER, field="map_id")
        length = self.encoded_length(config)
        if length > config.max_frame_length:
            capacity = config.data_field_capacity(
                self.vcid, control_command_flag=self.control_command_flag)
            raise EncodeError(
                f"frame would be {length} octets, maximum is {config.max_frame_length} "
                f"(data field capacity {capacity})",
                layer=LAYER, field="frame_length",
            )
        out = HEADER.pack(
            int(self.bypass_flag), int(self.control_command_flag), self.scid, self.vcid,
            length - 1, self.frame_sequence_number,
        )
        if self.map_id is not None:
            out += SEGMENT.pack(int(self.sequence_flags), self.map_id)
        out += bytes(self.data_field)
        if config.has_fecf:
            out += compute_fecf(out, FECF_SIZE)
        return out

    @classmethod
    def decode(cls, buf: bytes, config: TcChannelConfig = DEFAULT_CONFIG) -> TcFrame:
        """Decode the TC frame at the start of ``buf``.

        The frame's length comes from its Frame Length field; octets after it (e.g. CLTU
        fill) are ignored — use :func:`tc_frame_length` to know how many were used. When
        the channel has an FECF it is checked first (:class:`ChecksumError`).
        """
        n = len(buf)
        if n < PRIMARY_HEADER_SIZE:
            raise TruncatedError(
                f"need {PRIMARY_HEADER_SIZE} octets for the primary header, got {n}",
                layer=LAYER, field="header", offset=0,
            )
        length = tc_frame_length(buf)
        if length > n:
            raise TruncatedError(
                f"Frame Length says {length} octets, buffer holds {n}",
                layer=LAYER, field="frame_length", offset=2,
            )
        fecf = FECF_SIZE if config.has_fecf else 0
        if length < PRIMARY_HEADER_SIZE + fecf:
            raise DecodeError(
                f"Frame Length says {length} octets, less than header + FECF",
                layer=LAYER, field="frame_length", offset=2,
            )
        frame = buf[:length] if length != n else buf
        if fecf:
            check_fecf(frame, layer=LAYER, size=FECF_SIZE)
        bypass, ctrl, scid, vcid, _, fsn = HEADER.unpack(frame)
        if length > config.max_frame_length:
            raise DecodeError(
                f"{length} octets exceeds the managed maximum {config.max_frame_length}",
                layer=LAYER, field="frame_length", offset=2,
            )
        if not bypass and ctrl:
            raise DecodeError(
                "Bypass Flag 0 with Control Command Flag 1 is not a valid frame type; "
                "discard the frame (232.0-B-4 §4.1.2.3)",
                layer=LAYER, field="control_command_flag", offset=0,
            )
        pos = PRIMARY_HEADER_SIZE
        end = length - fecf
        map_id: int | None = None
        flags = SequenceFlags.UNSEGMENTED
        if config.has_segment_header(vcid, bool(ctrl)):
            if end - pos < SEGMENT_HEADER_SIZE:
                raise TruncatedError(
                    "no room for the Segment Header", layer=LAYER, field="segment_header",
                    offset=pos,
                )
            seq, map_id = SEGMENT.unpack(frame, pos)
            flags = _SEQUENCE_FLAGS[seq]  # SequenceFlags(seq) for the 2-bit value, by table
            pos += SEGMENT_HEADER_SIZE
        # bypass and ctrl are single bits: ``== 1`` is bool() without the call.
        return cls(scid, vcid, fsn, bytes(frame[pos:end]), bypass == 1, ctrl == 1, map_id, flags)


def tc_frame_length(buf: bytes, offset: int = 0) -> int:
    """Total length of the TC frame starting at ``buf[offset]`` (Frame Length + 1)."""
    if len(buf) - offset < 4:
        raise TruncatedError(
            "need 4 octets to read the Frame Length", layer=LAYER, field="frame_length",
            offset=offset + 2,
        )
    return (((buf[offset + 2] & 0x03) << 8) | buf[offset + 3]) + 1


def tc_header_fields(buf: bytes, offset: int = 0) -> tuple[int, ...]:
    """Fast unpack of the primary header: (bypass_flag, control_command_flag, scid, vcid,
    frame_length, frame_sequence_number), via :class:`~linkstack.bitfields.BitHeader`."""
    return HEADER.unpack(buf, offset)


# --------------------------------------------------------------------------------------
# BC frames: COP-1 control commands (232.0-B-4 §4.1.3.3, specs/sources.md §1.13)
# --------------------------------------------------------------------------------------


class ControlCommand(IntEnum):
    """The two COP-1 control commands a BC frame carries."""

    UNLOCK = 0
    SET_VR = 1


@dataclass(frozen=True, slots=True)
class BcCommand:
    """A decoded control command; ``vr`` is the new V(R) for Set V(R)."""

    command: ControlCommand
    vr: int | None = None

    def encode(self) -> bytes:
        if self.command is ControlCommand.UNLOCK:
            return unlock_command()
        if self.vr is None:
            raise EncodeError("Set V(R) needs vr", layer=LAYER, field="vr")
        return set_vr_command(self.vr)


def unlock_command() -> bytes:
    """The Unlock control command: one octet ``00``."""
    return UNLOCK


def set_vr_command(vr: int) -> bytes:
    """The Set V(R) control command: ``82 00 VR``."""
    if not 0 <= vr <= 0xFF:
        raise EncodeError(f"{vr!r} is outside 0..255", layer=LAYER, field="vr")
    return SET_VR_PREFIX + bytes([vr])


def parse_control_command(data: bytes, offset: int = PRIMARY_HEADER_SIZE) -> BcCommand:
    """Decode the data field of a BC frame (``offset`` only locates errors in the frame).

    Raises :class:`DecodeError` naming ``control_command`` for anything other than
    ``00`` or ``82 00 VR`` (an invalid BC frame, FARM-1 discards it).
    """
    if bytes(data) == UNLOCK:
        return BcCommand(ControlCommand.UNLOCK)
    if len(data) == 3 and bytes(data[:2]) == SET_VR_PREFIX:
        return BcCommand(ControlCommand.SET_VR, data[2])
    raise DecodeError(
        f"{bytes(data).hex() or 'empty'} is neither Unlock (00) nor Set V(R) (82 00 VR)",
        layer=LAYER, field="control_command", offset=offset,
    )


def bc_frame(scid: int, vcid: int, command: BcCommand | bytes, frame_sequence_number: int = 0,
             ) -> TcFrame:
    """A Type-BC frame (bypass 1, control command 1) carrying ``command``."""
    data = command.encode() if isinstance(command, BcCommand) else bytes(command)
    return TcFrame(scid, vcid, frame_sequence_number, data, bypass_flag=True,
                   control_command_flag=True)


# --------------------------------------------------------------------------------------
# MAP segmentation (232.0-B-4 §4.1.3.2 / §2.2.4, MAP Packet and MAP Access services)
# --------------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class MapSegment:
    """One segment of a MAP SDU: the Segment Header's Sequence Flags and the data."""

    sequence_flags: SequenceFlags
    data: bytes


def segment_map_sdu(sdu: bytes, capacity: int) -> list[MapSegment]:
    """Split ``sdu`` into segments of at most ``capacity`` octets (§4.1.3.2.2).

    An SDU that fits is one segment with flags ``11`` (no segmentation); a longer one is
    ``01`` (first), ``00`` (continuing)..., ``10`` (last). ``capacity`` is the frame's data
    field capacity after the Segment Header (:meth:`TcChannelConfig.data_field_capacity`).
    """
    if capacity < 1:
        raise EncodeError(f"capacity {capacity} < 1", layer=LAYER, field="data_field")
    if not sdu:
        raise EncodeError("empty MAP SDU", layer=LAYER, field="data_field")
    sdu = bytes(sdu)
    if len(sdu) <= capacity:
        return [MapSegment(SequenceFlags.UNSEGMENTED, sdu)]
    chunks = [sdu[i:i + capacity] for i in range(0, len(sdu), capacity)]
    out = [MapSegment(SequenceFlags.FIRST, chunks[0])]
    out += [MapSegment(SequenceFlags.CONTINUATION, chunk) for chunk in chunks[1:-1]]
    out.append(MapSegment(SequenceFlags.LAST, chunks[-1]))
    return out


@fast_init
@dataclass(frozen=True, slots=True)
class MapSduReceived:
    """A complete MAP SDU, delivered to MAP ``map_id`` of VC ``vcid``."""

    vcid: int
    map_id: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class SegmentsDiscarded:
    """Octets thrown away because segments arrived in a wrong order or did not fit."""

    vcid: int
    map_id: int
    octets: int
    reason: str


MapEvent = MapSduReceived | SegmentsDiscarded


class MapReassembler:
    """Receiving side of MAP segmentation: routes segments by (VCID, MAP ID), reassembles.

    Sans-IO: feed frames (or segments) in arrival order, get events back. Wrong order is
    reported, never glued: a continuing/last segment without a first one is discarded, a
    first (or unsegmented) segment while an SDU is incomplete discards the partial SDU.

    With ``space_packets=True`` (default) every MAP SDU is a Space Packet: its Packet Data
    Length (known once 6 octets are in) must match the reassembled length, which catches a
    lost continuing segment between a first and a last one (Type-B frames have no sequence
    control). Pass False for MAP SDUs that are not Space Packets.
    """

    def __init__(self, *, max_sdu_length: int = 65542, space_packets: bool = True) -> None:
        self.max_sdu_length = max_sdu_length
        self.space_packets = space_packets
        self._partial: dict[tuple[int, int], bytearray] = {}

    def pending(self) -> dict[tuple[int, int], int]:
        """``{(vcid, map_id): octets held}`` for SDUs still incomplete."""
        return {key: len(buf) for key, buf in self._partial.items()}

    def reset(self, vcid: int | None = None) -> list[MapEvent]:
        """Drop incomplete SDUs (of one VC, or all), e.g. after a FARM-1 reset; reports them."""
        events: list[MapEvent] = []
        for key in [k for k in self._partial if vcid is None or k[0] == vcid]:
            held = self._partial.pop(key)
            events.append(SegmentsDiscarded(key[0], key[1], len(held), "reset"))
        return events

    def receive_frame(self, frame: TcFrame) -> list[MapEvent]:
        """Feed one decoded frame of a VC that uses the Segment Header."""
        if frame.map_id is None:
            raise EncodeError(
                "frame has no Segment Header (map_id is None)", layer=LAYER, field="map_id"
            )
        return self.receive_segment(frame.vcid, frame.map_id, frame.sequence_flags,
                                    frame.data_field)

    def receive_segment(self, vcid: int, map_id: int, sequence_flags: int, data: bytes,
                        ) -> list[MapEvent]:
        """Feed one segment; returns the events it causes, in order."""
        key = (vcid, map_id)
        flags = SequenceFlags(sequence_flags)
        events: list[MapEvent] = []
        partial = self._partial.get(key)
        if flags in (SequenceFlags.FIRST, SequenceFlags.UNSEGMENTED) and partial is not None:
            del self._partial[key]
            events.append(SegmentsDiscarded(
                vcid, map_id, len(partial),
                f"{flags.name.lower()} segment arrived before the last segment of the "
                "previous SDU",
            ))
            partial = None
        if flags is SequenceFlags.UNSEGMENTED:
            events.append(self._deliver(vcid, map_id, bytes(data)))
            return events
        if flags is SequenceFlags.FIRST:
            self._partial[key] = bytearray(data)
            events.extend(self._check_partial(key))
            return events
        if partial is None:
            events.append(SegmentsDiscarded(
                vcid, map_id, len(data),
                f"{flags.name.lower()} segment without a first segment",
            ))
            return events
        partial += data
        bad = self._check_partial(key)
        if bad:
            events.extend(bad)
            return events
        if flags is SequenceFlags.LAST:
            del self._partial[key]
            sdu = bytes(partial)
            if self.space_packets and len(sdu) != _packet_total(sdu):
                events.append(SegmentsDiscarded(
                    vcid, map_id, len(sdu),
                    f"reassembled {len(sdu)} octets but the Space Packet header says "
                    f"{_packet_total(sdu)}: a segment is missing",
                ))
            else:
                events.append(self._deliver(vcid, map_id, sdu))
        return events

    def _deliver(self, vcid: int, map_id: int, sdu: bytes) -> MapEvent:
        if self.space_packets and len(sdu) != _packet_total(sdu):
            return SegmentsDiscarded(
                vcid, map_id, len(sdu),
                f"unsegmented SDU of {len(sdu)} octets is not one whole Space Packet",
            )
        return MapSduReceived(vcid, map_id, sdu)

    def _check_partial(self, key: tuple[int, int]) -> list[MapEvent]:
        partial = self._partial[key]
        limit = self.max_sdu_length
        reason = ""
        if len(partial) > limit:
            reason = f"SDU exceeds {limit} octets"
        elif self.space_packets and len(partial) >= SPP_HEADER_SIZE:
            expected = _packet_total(partial)
            if len(partial) > expected:
                reason = f"segments exceed the {expected} octets the Space Packet header says"
        if not reason:
            return []
        del self._partial[key]
        return [SegmentsDiscarded(key[0], key[1], len(partial), reason)]


def _packet_total(sdu: bytes | bytearray) -> int:
    """Total length a Space Packet header announces (-1 if fewer than 6 octets)."""
    if len(sdu) < SPP_HEADER_SIZE:
        return -1
    return ((sdu[4] << 8) | sdu[5]) + SPP_HEADER_SIZE + 1
