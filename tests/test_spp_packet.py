"""Space Packet primary header and secondary header (CCSDS 133.0-B-2 §4.1).

The oracle is the independent ``spacepackets`` package (SP in specs/sources.md)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketId, SpacePacketHeader
from spacepackets.ccsds.spacepacket import PacketType as SpPacketType
from spacepackets.ccsds.spacepacket import SequenceFlags as SpSequenceFlags
from spacepackets.ccsds.spacepacket import SpacePacket as SpSpacePacket
from spacepackets.ccsds.time import CdsShortTimestamp

from linkstack.errors import ConfigError, DecodeError, EncodeError, LinkstackError, TruncatedError
from linkstack.spp.packet import (
    HEADER,
    IDLE_APID,
    PRIMARY_HEADER,
    PacketType,
    SequenceFlags,
    SpacePacket,
    idle_packet,
    packet_apid,
    packet_identification,
    packet_length,
)
from linkstack.spp.secondary import SecondaryHeader, SecondaryHeaderFormat
from linkstack.spp.timecode import CdsFormat, CdsTime, CucFormat, Submillisecond

apids = st.integers(0, 2047)
counts = st.integers(0, 16383)
flags = st.sampled_from(list(SequenceFlags))
types = st.sampled_from(list(PacketType))
data_fields = st.binary(min_size=1, max_size=300)


@st.composite
def packets(draw: st.DrawFn) -> SpacePacket:
    return SpacePacket(draw(apids), draw(counts), draw(data_fields), draw(types),
                       draw(st.booleans()), draw(flags))


# -- fixed vector ------------------------------------------------------------------------------
def test_ccsds_facts_tc_vector() -> None:
    # specs/sources.md §1.15: TC packet, APID 0x42, seq 5, unsegmented, data 01020304.
    vector = bytes.fromhex("1042c005000301020304")
    p = SpacePacket(0x42, 5, bytes.fromhex("01020304"), PacketType.TC)
    assert p.encode() == vector
    assert SpacePacket.decode(vector) == p
    sp = SpSpacePacket(SpacePacketHeader.tc(apid=0x42, seq_count=5, data_len=3), None,
                       bytes.fromhex("01020304"))
    assert bytes(sp.pack()) == vector


# -- interop with spacepackets, both directions ---------------------------------------------------
@given(packets())
def test_linkstack_encode_spacepackets_decode(p: SpacePacket) -> None:
    raw = p.encode()
    h = SpacePacketHeader.unpack(raw)
    assert (h.ccsds_version, int(h.packet_type), h.sec_header_flag, h.apid) == (
        0, int(p.packet_type), p.secondary_header_flag, p.apid)
    assert (int(h.seq_flags), h.seq_count, h.data_len) == (
        int(p.sequence_flags), p.sequence_count, len(p.data) - 1)
    assert h.packet_len == len(raw) == len(p)
    assert PacketId(SpPacketType(int(p.packet_type)), p.secondary_header_flag,
                    p.apid).raw() == p.packet_id


@given(apids, counts, types, flags, st.booleans(), st.binary(max_size=40),
       st.binary(min_size=1, max_size=200))
def test_spacepackets_encode_linkstack_decode(
    apid: int, count: int, ptype: PacketType, seq: SequenceFlags, shf: bool,
    sec: bytes, user: bytes,
) -> None:
    header = SpacePacketHeader(
        packet_type=SpPacketType(int(ptype)), apid=apid, seq_count=count,
        data_len=len(sec) * shf + len(user) - 1, sec_header_flag=shf,
        seq_flags=SpSequenceFlags(int(seq)),
    )
    raw = bytes(SpSpacePacket(header, sec if shf else None, user).pack())
    p = SpacePacket.decode(raw)
    assert p == SpacePacket(apid, count, (sec if shf else b"") + user, ptype, shf, seq)
    assert packet_length(raw) == len(raw)


# -- the construct declaration and the fast path agree ----------------------------------------
@given(types, st.booleans(), apids, flags, counts, st.integers(0, 0xFFFF))
def test_header_fast_path_agrees_with_construct(
    ptype: PacketType, shf: bool, apid: int, seq: SequenceFlags, count: int, length: int
) -> None:
    fields = {"packet_type": int(ptype), "secondary_header_flag": shf, "apid": apid,
              "sequence_flags": int(seq), "packet_sequence_count": count,
              "packet_data_length": length}
    fast = HEADER.pack(int(ptype), int(shf), apid, int(seq), count, length)
    assert fast == PRIMARY_HEADER.build(fields)
    parsed = PRIMARY_HEADER.parse(fast)
    assert HEADER.unpack(fast) == (parsed.packet_type, int(parsed.secondary_header_flag),
                                   parsed.apid, parsed.sequence_flags,
                                   parsed.packet_sequence_count, parsed.packet_data_length)


@given(packets(), st.binary(max_size=8), st.binary(max_size=8))
def test_build_parse_identity_at_offset(p: SpacePacket, before: bytes, after: bytes) -> None:
    raw = before + p.encode() + after
    assert SpacePacket.decode(raw, len(before)) == p
    assert packet_length(raw, len(before)) == len(p)


# -- errors ------------------------------------------------------------------------------------
@given(st.binary(max_size=80), st.integers(0, 10))
def test_fuzz_decode_raises_only_linkstack_errors(raw: bytes, offset: int) -> None:
    try:
        p = SpacePacket.decode(raw, offset)
    except DecodeError:
        return
    assert p.encode() == raw[offset:offset + len(p)]


def test_decode_errors_name_field_and_offset() -> None:
    good = SpacePacket(7, 1, b"abc").encode()
    with pytest.raises(DecodeError) as version:
        SpacePacket.decode(b"\x00" + bytes([good[0] | 0x20]) + good[1:], 1)
    assert (version.value.field, version.value.offset) == ("packet_version_number", 1)
    with pytest.raises(TruncatedError) as short:
        SpacePacket.decode(good[:-1])
    assert (short.value.field, short.value.offset) == ("packet_data_length", 4)
    with pytest.raises(TruncatedError):
        SpacePacket.decode(good[:5])
    with pytest.raises(TruncatedError):
        packet_length(good[:5])


@pytest.mark.parametrize(
    ("packet", "field"),
    [
        (SpacePacket(1, 0, b""), "packet_data_field"),
        (SpacePacket(1, 0, bytes(65537)), "packet_data_field"),
        (SpacePacket(2048, 0, b"x"), "apid"),
        (SpacePacket(1, 16384, b"x"), "packet_sequence_count"),
        (SpacePacket(-1, 0, b"x"), "apid"),
    ],
)
def test_encode_errors_name_the_field(packet: SpacePacket, field: str) -> None:
    with pytest.raises(EncodeError) as info:
        packet.encode()
    assert info.value.field == field


def test_largest_packet() -> None:
    p = SpacePacket(3, 16383, bytes(range(256)) * 256, PacketType.TC, True, SequenceFlags.LAST)
    raw = p.encode()
    assert len(raw) == 65542 and raw[4:6] == b"\xff\xff"
    assert SpacePacket.decode(raw) == p
    assert SpacePacketHeader.unpack(raw).packet_len == 65542


def test_idle_packet() -> None:
    raw = idle_packet(20, sequence_count=9, fill=0x55)
    p = SpacePacket.decode(raw)
    assert p.is_idle and p.apid == IDLE_APID == 0x7FF and len(raw) == 20
    assert p.data == b"\x55" * 14 and p.sequence_count == 9
    assert SpacePacketHeader.unpack(raw).apid == 0x7FF
    assert not SpacePacket(5, 0, b"x").is_idle
    with pytest.raises(EncodeError):
        idle_packet(6)
    with pytest.raises(EncodeError):
        idle_packet(65543)


@given(apids, types, st.booleans())
def test_packet_identification_matches_spacepackets(apid: int, ptype: PacketType,
                                                    shf: bool) -> None:
    expected = PacketId(SpPacketType(int(ptype)), shf, apid).raw()
    assert packet_identification(apid, ptype, shf) == expected
    assert SpacePacket(apid, 0, b"x", ptype, shf).packet_id == expected


def test_packet_identification_range() -> None:
    with pytest.raises(EncodeError):
        packet_identification(2048)


# -- secondary header (133.0-B-2 §4.1.4.2) -----------------------------------------------------
@given(st.integers(0, 0xFFFF), st.integers(0, 86_399_999), apids.filter(lambda a: a != 2047),
       counts, st.binary(max_size=100))
def test_secondary_header_cds_interop_both_ways(day: int, ms: int, apid: int, count: int,
                                                user: bytes) -> None:
    fmt = SecondaryHeaderFormat(CdsFormat())
    # linkstack -> spacepackets
    raw = fmt.build(apid, count, CdsTime(day, ms), user).encode()
    h = SpacePacketHeader.unpack(raw)
    assert h.sec_header_flag and h.apid == apid and h.packet_len == len(raw)
    stamp = CdsShortTimestamp.unpack(raw[6:13])
    assert (stamp.ccsds_days, stamp.ms_of_day) == (day, ms)
    assert raw[13:] == user
    # spacepackets -> linkstack
    sp_header = SpacePacketHeader.tm(apid=apid, seq_count=count, data_len=7 + len(user) - 1,
                                     sec_header_flag=True)
    theirs = bytes(SpSpacePacket(sp_header, CdsShortTimestamp(day, ms).pack(), user).pack())
    assert theirs == raw
    header, data = fmt.split(SpacePacket.decode(theirs))
    assert header == SecondaryHeader(CdsFormat(), CdsTime(day, ms), b"")
    assert data == user


@st.composite
def time_formats(draw: st.DrawFn) -> CucFormat | CdsFormat:
    if draw(st.booleans()):
        return CucFormat(draw(st.integers(1, 7)), draw(st.integers(0, 10)),
                         draw(st.sampled_from([0, 1])), draw(st.booleans()))
    return CdsFormat(draw(st.sampled_from([2, 3])), draw(st.sampled_from(list(Submillisecond))),
                     draw(st.sampled_from([0, 1])), draw(st.booleans()))


@given(time_formats(), st.data(), st.integers(0, 6), st.binary(max_size=50))
def test_secondary_header_round_trip(fmt: CucFormat | CdsFormat, data: st.DataObject,
                                     anc_len: int, user: bytes) -> None:
    # A random value the format can hold exactly.
    if isinstance(fmt, CucFormat):
        bits = 8 * (fmt.coarse_octets + fmt.fine_octets)
        value: object = Fraction(data.draw(st.integers(0, 2**bits - 1)), 2 ** (8 * fmt.fine_octets))
    else:
        value = CdsTime(data.draw(st.integers(0, 2 ** (8 * fmt.day_octets) - 1)),
                        data.draw(st.integers(0, 86_400_999)))
    anc = data.draw(st.binary(min_size=anc_len, max_size=anc_len))
    sh = SecondaryHeaderFormat(fmt, anc_len)
    p = sh.build(100, 7, value, user, ancillary=anc, sequence_flags=SequenceFlags.FIRST)  # type: ignore[arg-type]
    assert p.secondary_header_flag and p.sequence_flags == SequenceFlags.FIRST
    assert sh.size == fmt.size + anc_len
    header, rest = sh.split(SpacePacket.decode(p.encode()))
    assert header == SecondaryHeader(fmt, value, anc)  # type: ignore[arg-type]
    assert rest == user
    if fmt.explicit_p_field:
        # The length can also come from the P-field alone.
        selfid = SecondaryHeaderFormat(fmt, anc_len, self_identifying=True)
        assert selfid.split(p)[1] == user


def test_secondary_header_ancillary_only_and_errors() -> None:
    sh = SecondaryHeaderFormat(None, 3)
    p = sh.build(9, 0, None, b"payload", ancillary=b"\x01\x02\x03")
    assert p.data == b"\x01\x02\x03payload"
    assert sh.split(p) == (SecondaryHeader(None, None, b"\x01\x02\x03"), b"payload")
    with pytest.raises(EncodeError):
        sh.build(9, 0, None, b"x", ancillary=b"\x01")
    with pytest.raises(EncodeError):
        sh.build(9, 0, 5, b"x", ancillary=b"\x01\x02\x03")
    with pytest.raises(ConfigError):
        SecondaryHeaderFormat(None, 0)
    with pytest.raises(ConfigError):
        SecondaryHeaderFormat(CucFormat(explicit_p_field=False), self_identifying=True)
    cuc = SecondaryHeaderFormat(CucFormat(4, 2))
    with pytest.raises(DecodeError) as flag:
        cuc.split(SpacePacket(1, 0, b"\x1e" + bytes(6)))
    assert (flag.value.field, flag.value.offset) == ("secondary_header_flag", 0)
    with pytest.raises(TruncatedError) as short:
        cuc.split(SpacePacket(1, 0, b"\x1e\x00\x00", secondary_header_flag=True))
    assert short.value.offset == 6  # the time code starts right after the primary header
    with pytest.raises(DecodeError) as pfield:
        cuc.split(SpacePacket(1, 0, b"\x1c" + bytes(6), secondary_header_flag=True))
    assert (pfield.value.field, pfield.value.offset) == ("p_field", 6)
    with pytest.raises(EncodeError):
        cuc.build(1, 0, CdsTime(1, 2), b"x")
    with pytest.raises(EncodeError):
        cuc.build(1, 0, 1, bytes(65536))


@given(st.binary(min_size=1, max_size=40))
def test_fuzz_secondary_split_raises_only_linkstack_errors(raw: bytes) -> None:
    p = SpacePacket(1, 0, raw, secondary_header_flag=True)
    for sh in (SecondaryHeaderFormat(CucFormat(4, 2), 2),
               SecondaryHeaderFormat(CdsFormat(3, Submillisecond.PICOSECONDS)),
               SecondaryHeaderFormat(CucFormat(), 1, self_identifying=True)):
        try:
            header, rest = sh.split(p)
        except LinkstackError:
            continue
        assert rest == raw[len(raw) - len(rest):]
        assert header.ancillary == raw[len(raw) - len(rest) - sh.ancillary_length:
                                       len(raw) - len(rest)]


@given(st.integers(0, 2047), st.integers(0, 16383), st.binary(min_size=1, max_size=20),
       st.sampled_from(list(PacketType)))
def test_packet_apid_reads_the_apid_of_any_packet(apid: int, count: int, data: bytes,
                                                  ptype: PacketType) -> None:
    """packet_apid (no decoding) agrees with the spacepackets library's header of the same
    packet, the independent oracle used above."""
    raw = SpacePacket(apid, count, data, ptype).encode()
    assert packet_apid(raw) == apid == SpacePacketHeader.unpack(raw).apid
    with pytest.raises(TruncatedError) as err:
        packet_apid(raw[:1])
    assert err.value.field == "apid"
