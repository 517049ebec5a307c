"""TC Transfer Frame (232.0-B-4 §4.1), BC control commands and MAP segmentation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.codecs.crc import append_fecf
from linkstack.errors import (
    ChecksumError,
    ConfigError,
    DecodeError,
    EncodeError,
    LinkstackError,
    TruncatedError,
)
from linkstack.frames.tc import (
    HEADER,
    PRIMARY_HEADER,
    SEGMENT,
    SEGMENT_HEADER,
    BcCommand,
    ControlCommand,
    MapReassembler,
    MapSduReceived,
    SegmentsDiscarded,
    TcChannelConfig,
    TcFrame,
    TcFrameType,
    bc_frame,
    parse_control_command,
    segment_map_sdu,
    set_vr_command,
    tc_frame_length,
    unlock_command,
)
from linkstack.spp.packet import SequenceFlags, SpacePacket

# --------------------------------------------------------------------------------------
# Published vector: SpacePyLibrary (Stefan Korner) UnitTest/testData.py, TC_PACKET_01
# segmented into TC_SEGMENT_01/02 (MAP 2) and framed as TC_FRAME_01/02: SCID 758, VC 0,
# bypass 1, Segment Header present, FECF present. The FECFs AD1A and 0068 come from that
# file, not from linkstack.
# --------------------------------------------------------------------------------------

TC_PACKET_01 = (
    bytes.fromhex("1a8cc00e010d" "19060200000100000000010000" "00ff000000000f")
    + b"".join(bytes([0x00, i, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x0F]) for i in range(1, 32))
    + bytes.fromhex("ac8f")
)
TC_FRAME_01 = bytes.fromhex("22f600ff0042") + TC_PACKET_01[:248] + bytes.fromhex("ad1a")
TC_FRAME_02 = bytes.fromhex(
    "22f600230082000f001dff000000000f001eff000000000f001fff000000000fac8f0068"
)
SPACEPY_CONFIG = TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({0}))


def test_spacepy_packet_is_what_the_source_says() -> None:
    pkt = SpacePacket.decode(TC_PACKET_01)
    assert (pkt.apid, pkt.sequence_count, len(TC_PACKET_01)) == (652, 14, 276)


def test_spacepy_vector_encode() -> None:
    # 256-octet frames: 256 - 5 (header) - 1 (segment header) - 2 (FECF) = 248 octets.
    capacity = TcChannelConfig(max_frame_length=256, segmented_vcids={0}).data_field_capacity(0)
    segments = segment_map_sdu(TC_PACKET_01, capacity)
    assert [(s.sequence_flags, len(s.data)) for s in segments] == [
        (SequenceFlags.FIRST, 248), (SequenceFlags.LAST, 28)]
    frames = [
        TcFrame(758, 0, 0, s.data, bypass_flag=True, map_id=2, sequence_flags=s.sequence_flags)
        for s in segments
    ]
    assert frames[0].encode(SPACEPY_CONFIG) == TC_FRAME_01
    assert frames[1].encode(SPACEPY_CONFIG) == TC_FRAME_02


def test_spacepy_vector_decode_and_reassemble() -> None:
    f1 = TcFrame.decode(TC_FRAME_01, SPACEPY_CONFIG)
    f2 = TcFrame.decode(TC_FRAME_02, SPACEPY_CONFIG)
    assert (f1.scid, f1.vcid, f1.frame_type, f1.ns, f1.map_id) == (758, 0, TcFrameType.BD, 0, 2)
    assert f1.sequence_flags is SequenceFlags.FIRST
    assert f2.sequence_flags is SequenceFlags.LAST
    assert tc_frame_length(TC_FRAME_01) == 256
    reasm = MapReassembler()
    assert reasm.receive_frame(f1) == []
    assert reasm.receive_frame(f2) == [MapSduReceived(0, 2, TC_PACKET_01)]
    assert reasm.pending() == {}


def test_trailing_fill_is_ignored() -> None:
    # After CLTU decoding a frame may be followed by 0x55 fill (specs/sources.md §1.9).
    frame = TcFrame.decode(TC_FRAME_02 + b"\x55" * 5, SPACEPY_CONFIG)
    assert frame.encode(SPACEPY_CONFIG) == TC_FRAME_02


# --------------------------------------------------------------------------------------
# Header declaration vs fast path; round trips
# --------------------------------------------------------------------------------------


@given(bypass=st.booleans(), ctrl=st.booleans(), scid=st.integers(0, 1023),
       vcid=st.integers(0, 63), length=st.integers(0, 1023), ns=st.integers(0, 255))
def test_bitheader_agrees_with_construct(bypass: bool, ctrl: bool, scid: int, vcid: int,
                                         length: int, ns: int) -> None:
    fast = HEADER.pack(int(bypass), int(ctrl), scid, vcid, length, ns)
    built = PRIMARY_HEADER.build(dict(bypass_flag=bypass, control_command_flag=ctrl, scid=scid,
                                      vcid=vcid, frame_length=length,
                                      frame_sequence_number=ns))
    assert fast == built
    p = PRIMARY_HEADER.parse(fast)
    assert HEADER.unpack(fast) == (int(p.bypass_flag), int(p.control_command_flag), p.scid,
                                   p.vcid, p.frame_length, p.frame_sequence_number)
    # Independent shift arithmetic, as yamcs TcFrameFactory builds the words
    # (specs/sources.md §1.2).
    w1 = scid | (int(bypass) << 13) | (int(ctrl) << 12)
    w2 = (vcid << 10) | length
    assert fast == w1.to_bytes(2, "big") + w2.to_bytes(2, "big") + bytes([ns])


@given(flags=st.integers(0, 3), map_id=st.integers(0, 63))
def test_segment_header_agrees_with_construct(flags: int, map_id: int) -> None:
    fast = SEGMENT.pack(flags, map_id)
    assert fast == SEGMENT_HEADER.build(dict(sequence_flags=flags, map_id=map_id))
    assert fast == bytes([(flags << 6) | map_id])
    assert SEGMENT.unpack(fast) == (flags, map_id)


@st.composite
def tc_frames(draw: st.DrawFn) -> tuple[TcFrame, TcChannelConfig]:
    has_fecf = draw(st.booleans())
    segmented = draw(st.frozensets(st.integers(0, 63), max_size=4))
    config = TcChannelConfig(has_fecf=has_fecf, segmented_vcids=segmented)
    kind = draw(st.sampled_from([TcFrameType.AD, TcFrameType.BD, TcFrameType.BC]))
    ctrl = kind is TcFrameType.BC
    vcid = draw(st.sampled_from(sorted(segmented)) if segmented and draw(st.booleans())
                else st.integers(0, 63))
    seg = config.has_segment_header(vcid, ctrl)
    data = draw(st.binary(max_size=config.data_field_capacity(vcid, control_command_flag=ctrl)))
    frame = TcFrame(
        scid=draw(st.integers(0, 1023)), vcid=vcid, frame_sequence_number=draw(st.integers(0, 255)),
        data_field=data, bypass_flag=kind is not TcFrameType.AD, control_command_flag=ctrl,
        map_id=draw(st.integers(0, 63)) if seg else None,
        sequence_flags=SequenceFlags(draw(st.integers(0, 3))) if seg else SequenceFlags(3),
    )
    return frame, config


@given(tc_frames())
def test_round_trip(case: tuple[TcFrame, TcChannelConfig]) -> None:
    frame, config = case
    raw = frame.encode(config)
    assert len(raw) == frame.encoded_length(config) == tc_frame_length(raw)
    assert TcFrame.decode(raw, config) == frame


@given(tc_frames(), st.data())
def test_flipped_bit_caught_by_fecf(case: tuple[TcFrame, TcChannelConfig],
                                    data: st.DataObject) -> None:
    frame, config = case
    if not config.has_fecf:
        config = TcChannelConfig(has_fecf=True, segmented_vcids=config.segmented_vcids)
    raw = bytearray(frame.encode(config))
    # Frame Length bits (octet 2 bits 1-0, octet 3) change where the FECF is looked for;
    # every other single-bit error must be caught by the CRC-16.
    length_bits = {2 * 8 + 6, 2 * 8 + 7, *range(3 * 8, 4 * 8)}
    bit = data.draw(st.integers(0, 8 * len(raw) - 1).filter(lambda b: b not in length_bits))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ChecksumError) as info:
        TcFrame.decode(bytes(raw), config)
    assert info.value.field == "frame_error_control"
    assert info.value.offset == len(raw) - 2


@given(raw=st.binary(max_size=1100), has_fecf=st.booleans(),
       segmented=st.frozensets(st.integers(0, 63), max_size=8))
def test_random_bytes_raise_only_linkstack_errors(raw: bytes, has_fecf: bool,
                                                  segmented: frozenset[int]) -> None:
    config = TcChannelConfig(has_fecf=has_fecf, segmented_vcids=segmented)
    try:
        frame = TcFrame.decode(raw, config)
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError)
        return
    # Whatever decodes re-encodes to the same octets (spare bits aside).
    again = frame.encode(config)
    length = tc_frame_length(raw)
    assert again[:1] == bytes([raw[0] & 0xF3]) and again[1:length] == raw[1:length]


def test_random_bytes_into_bc_parser() -> None:
    for raw in (b"", b"\x01", b"\x82\x00", b"\x82\x01\x05", b"\x00\x00", b"\x82\x00\x01\x02"):
        with pytest.raises(DecodeError) as info:
            parse_control_command(raw)
        assert info.value.field == "control_command"


# --------------------------------------------------------------------------------------
# Frame types, BC commands, limits
# --------------------------------------------------------------------------------------


def test_invalid_frame_type_is_a_typed_error() -> None:
    config = TcChannelConfig(has_fecf=True)
    with pytest.raises(EncodeError) as enc:
        TcFrame(1, 1, data_field=b"x", control_command_flag=True).encode(config)
    assert enc.value.field == "control_command_flag"
    # Built by hand: bypass 0, control command 1, SCID 1, VCID 1, length 8 - 1, N(S) 0.
    raw = append_fecf(bytes([0b0001_0000, 0x01, 0x04, 0x07, 0x00]) + b"x")
    with pytest.raises(DecodeError) as dec:
        TcFrame.decode(raw, config)
    assert (dec.value.field, dec.value.offset) == ("control_command_flag", 0)


def test_bc_control_commands() -> None:
    # specs/sources.md §1.13: Unlock = 00, Set V(R) = 82 00 VR (yamcs, OC).
    assert unlock_command() == b"\x00"
    assert set_vr_command(0xA5) == b"\x82\x00\xa5"
    assert parse_control_command(b"\x00") == BcCommand(ControlCommand.UNLOCK)
    assert parse_control_command(b"\x82\x00\x07") == BcCommand(ControlCommand.SET_VR, 7)
    assert BcCommand(ControlCommand.SET_VR, 9).encode() == b"\x82\x00\x09"
    with pytest.raises(EncodeError):
        set_vr_command(256)
    config = TcChannelConfig(segmented_vcids=frozenset({5}))
    frame = bc_frame(0x2F6, 5, BcCommand(ControlCommand.SET_VR, 3))
    raw = frame.encode(config)
    # BC on a segmented VC still has no Segment Header: 5 + 3 + 2 octets.
    assert len(raw) == 10 and raw[0] == 0b0011_0010 and raw[5:8] == b"\x82\x00\x03"
    back = TcFrame.decode(raw, config)
    assert back.frame_type is TcFrameType.BC and back.map_id is None
    assert parse_control_command(back.data_field) == BcCommand(ControlCommand.SET_VR, 3)


def test_segment_header_managed_parameter_is_enforced() -> None:
    seg = TcChannelConfig(segmented_vcids=frozenset({1}))
    with pytest.raises(EncodeError) as info:
        TcFrame(1, 1, data_field=b"a").encode(seg)
    assert info.value.field == "map_id"
    with pytest.raises(EncodeError):
        TcFrame(1, 2, data_field=b"a", map_id=0).encode(seg)
    with pytest.raises(EncodeError):  # BC frames never carry the Segment Header
        TcFrame(1, 1, 0, b"\x00", True, True, map_id=3).encode(seg)


def test_maximum_frame_length_1024() -> None:
    # 232.0-B-4 §4.1.2.7: 10-bit Frame Length = total - 1, so 1024 octets at most
    # (CryptoLib TC_MAX_FRAME_SIZE, astro MaxFrameLength; specs/sources.md §1.2).
    config = TcChannelConfig(has_fecf=True)
    assert config.data_field_capacity() == 1017
    raw = TcFrame(1, 1, data_field=bytes(1017)).encode(config)
    assert len(raw) == 1024 and raw[2] & 0x03 == 0x03 and raw[3] == 0xFF
    assert TcFrame.decode(raw, config).data_field == bytes(1017)
    with pytest.raises(EncodeError) as info:
        TcFrame(1, 1, data_field=bytes(1018)).encode(config)
    assert info.value.field == "frame_length"
    assert TcChannelConfig(has_fecf=False).data_field_capacity() == 1019
    assert TcChannelConfig(segmented_vcids=frozenset({3})).data_field_capacity(3) == 1016
    with pytest.raises(ConfigError):
        TcChannelConfig(max_frame_length=1025)
    with pytest.raises(ConfigError):
        TcChannelConfig(segmented_vcids=frozenset({64}))


def test_smaller_managed_maximum_is_enforced_on_decode() -> None:
    raw = TcFrame(1, 1, data_field=bytes(100)).encode(TcChannelConfig())
    with pytest.raises(DecodeError) as info:
        TcFrame.decode(raw, TcChannelConfig(max_frame_length=64))
    assert info.value.field == "frame_length"


@pytest.mark.parametrize(("field", "value"), [
    ("scid", 1024), ("vcid", 64), ("frame_sequence_number", 256), ("map_id", 64),
])
def test_field_ranges(field: str, value: int) -> None:
    config = TcChannelConfig(segmented_vcids=frozenset({1}))
    kwargs = dict(scid=1, vcid=1, frame_sequence_number=0, data_field=b"a", map_id=0)
    kwargs[field] = value
    with pytest.raises(EncodeError) as info:
        TcFrame(**kwargs).encode(config)  # type: ignore[arg-type]
    assert info.value.field == field


def test_truncated_inputs() -> None:
    raw = TcFrame(1, 1, data_field=b"abc").encode(TcChannelConfig())
    for cut in range(len(raw)):
        with pytest.raises(TruncatedError):
            TcFrame.decode(raw[:cut])


def test_version_number_checked() -> None:
    raw = bytearray(TcFrame(1, 1, data_field=b"abc").encode(TcChannelConfig(has_fecf=False)))
    raw[0] |= 0x40
    with pytest.raises(DecodeError) as info:
        TcFrame.decode(bytes(raw), TcChannelConfig(has_fecf=False))
    assert info.value.field == "transfer_frame_version_number"


# --------------------------------------------------------------------------------------
# MAP segmentation
# --------------------------------------------------------------------------------------


@given(data=st.binary(min_size=1, max_size=3000), apid=st.integers(0, 2046),
       capacity=st.integers(1, 1016))
def test_segmentation_round_trip(data: bytes, apid: int, capacity: int) -> None:
    packet = SpacePacket(apid, 0, data).encode()
    segments = segment_map_sdu(packet, capacity)
    assert b"".join(s.data for s in segments) == packet
    assert all(1 <= len(s.data) <= capacity for s in segments)
    if len(packet) <= capacity:
        assert [s.sequence_flags for s in segments] == [SequenceFlags.UNSEGMENTED]
    else:
        flags = [s.sequence_flags for s in segments]
        assert flags[0] is SequenceFlags.FIRST and flags[-1] is SequenceFlags.LAST
        assert set(flags[1:-1]) <= {SequenceFlags.CONTINUATION}
    reasm = MapReassembler()
    events = []
    for s in segments:
        events += reasm.receive_segment(4, 9, s.sequence_flags, s.data)
    assert events == [MapSduReceived(4, 9, packet)]


def test_segmentation_through_frames() -> None:
    config = TcChannelConfig(segmented_vcids=frozenset({2}))
    packet = SpacePacket(0x42, 1, bytes(range(256)) * 9).encode()
    capacity = config.data_field_capacity(2)
    frames = [TcFrame(7, 2, i, s.data, map_id=5, sequence_flags=s.sequence_flags).encode(config)
              for i, s in enumerate(segment_map_sdu(packet, capacity))]
    assert len(frames) == 3 and all(len(f) <= 1024 for f in frames)
    reasm = MapReassembler()
    events = [e for raw in frames for e in reasm.receive_frame(TcFrame.decode(raw, config))]
    assert events == [MapSduReceived(2, 5, packet)]


def test_map_id_routing_interleaved() -> None:
    a = SpacePacket(1, 0, b"A" * 50).encode()
    b = SpacePacket(2, 0, b"B" * 70).encode()
    sa, sb = segment_map_sdu(a, 20), segment_map_sdu(b, 20)
    reasm = MapReassembler()
    events = []
    for i in range(max(len(sa), len(sb))):
        if i < len(sa):
            events += reasm.receive_segment(0, 1, sa[i].sequence_flags, sa[i].data)
        if i < len(sb):
            events += reasm.receive_segment(0, 2, sb[i].sequence_flags, sb[i].data)
    assert events == [MapSduReceived(0, 1, a), MapSduReceived(0, 2, b)]


def test_wrong_order_is_reported_not_glued() -> None:
    p1 = SpacePacket(1, 0, bytes(40)).encode()
    p2 = SpacePacket(1, 1, b"\x01" * 40).encode()
    s1, s2 = segment_map_sdu(p1, 16), segment_map_sdu(p2, 16)
    reasm = MapReassembler()
    # continuing segment without a first one
    ev = reasm.receive_segment(0, 0, s1[1].sequence_flags, s1[1].data)
    assert len(ev) == 1 and isinstance(ev[0], SegmentsDiscarded) and ev[0].octets == 16
    # first of p1, then first of p2: p1's partial is dropped, p2 completes
    assert reasm.receive_segment(0, 0, s1[0].sequence_flags, s1[0].data) == []
    ev = reasm.receive_segment(0, 0, s2[0].sequence_flags, s2[0].data)
    assert ev == [SegmentsDiscarded(0, 0, 16, ev[0].reason)]  # type: ignore[union-attr]
    assert "before the last segment" in ev[0].reason  # type: ignore[union-attr]
    ev = []
    for s in s2[1:]:
        ev += reasm.receive_segment(0, 0, s.sequence_flags, s.data)
    assert ev == [MapSduReceived(0, 0, p2)]
    # unsegmented while a partial SDU is held: partial reported, unsegmented delivered
    reasm.receive_segment(0, 0, s1[0].sequence_flags, s1[0].data)
    small = SpacePacket(3, 0, b"z").encode()
    ev = reasm.receive_segment(0, 0, SequenceFlags.UNSEGMENTED, small)
    assert isinstance(ev[0], SegmentsDiscarded) and ev[1] == MapSduReceived(0, 0, small)


def test_lost_middle_segment_is_detected() -> None:
    packet = SpacePacket(1, 0, bytes(range(100))).encode()
    segs = segment_map_sdu(packet, 30)
    assert len(segs) == 4
    reasm = MapReassembler()
    events = []
    for s in (segs[0], segs[1], segs[3]):  # segs[2] lost
        events += reasm.receive_segment(0, 0, s.sequence_flags, s.data)
    assert len(events) == 1 and isinstance(events[0], SegmentsDiscarded)
    assert "missing" in events[0].reason
    # With non-packet MAP SDUs the length cannot be checked; the caller opts out.
    plain = MapReassembler(space_packets=False)
    out = []
    for s in segment_map_sdu(b"hello world, segmented", 5):
        out += plain.receive_segment(0, 0, s.sequence_flags, s.data)
    assert out == [MapSduReceived(0, 0, b"hello world, segmented")]


def test_overlong_sdu_discarded_and_reset() -> None:
    reasm = MapReassembler(max_sdu_length=50, space_packets=False)
    assert reasm.receive_segment(0, 0, SequenceFlags.FIRST, bytes(40)) == []
    ev = reasm.receive_segment(0, 0, SequenceFlags.CONTINUATION, bytes(20))
    assert len(ev) == 1 and ev[0].octets == 60  # type: ignore[union-attr]
    reasm.receive_segment(1, 0, SequenceFlags.FIRST, bytes(10))
    assert reasm.pending() == {(1, 0): 10}
    assert reasm.reset() == [SegmentsDiscarded(1, 0, 10, "reset")]
    assert reasm.pending() == {}
