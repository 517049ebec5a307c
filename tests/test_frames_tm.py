"""TM Transfer Frame (132.0-B-3 §4.1): interop with spacepackets, properties, limits."""

from __future__ import annotations

import fastcrc
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.tm_frame import (
    MasterChannelId,
    TmFramePrimaryHeader,
    TmTransferFrame,
    TransferFrameDataFieldStatus,
    TransferFrameSecondaryHeader,
)

from linkstack.errors import (
    ChecksumError,
    ConfigError,
    DecodeError,
    EncodeError,
    LinkstackError,
    TruncatedError,
)
from linkstack.frames.clcw import Clcw
from linkstack.frames.tm import (
    FHP_IDLE_DATA,
    FHP_NO_PACKET_START,
    HEADER,
    PRIMARY_HEADER,
    SECONDARY_HEADER_ID,
    SECONDARY_ID,
    PacketZone,
    TmChannelConfig,
    TmFrame,
    split_packet_zone,
    tm_frame_header_fields,
)
from linkstack.spp.packet import SpacePacket, idle_packet


def _sp_fecf(body: bytes) -> bytes:
    # The oracle's own CRC (fastcrc, which spacepackets uses to validate), not linkstack's.
    return fastcrc.crc16.ibm_3740(body).to_bytes(2, "big")


def test_fhp_special_values() -> None:
    # yamcs TmFrameDecoder and Wireshark packet-vcdu.c: 0x7FF = no packet start, 0x7FE =
    # only idle data. ravisuhag/astro pkg/aos/frame.go has them swapped (specs/sources.md §1.3,
    # §2 item 3); this test pins linkstack to the first two sources.
    assert FHP_NO_PACKET_START == 0x7FF
    assert FHP_IDLE_DATA == 0x7FE


# --------------------------------------------------------------------------------------
# Byte-exact interop with spacepackets 0.32 (ccsds/tm_frame.py), both directions
# --------------------------------------------------------------------------------------


@st.composite
def frame_fields(draw: st.DrawFn) -> dict:
    # spacepackets rejects 2048 (specs/sources.md §2 item 4); 2048 is covered by tm_cases.
    length = draw(st.integers(40, 300) | st.sampled_from([892, 1115, 1784, 2047]))
    has_fecf = draw(st.booleans())
    has_ocf = draw(st.booleans())
    sec = draw(st.none() | st.binary(max_size=20))
    sync = draw(st.booleans())
    config = TmChannelConfig(length, has_fecf)
    capacity = config.data_field_capacity(
        ocf=has_ocf, secondary_header_length=0 if sec is None else 1 + len(sec))
    seed = draw(st.binary(min_size=1, max_size=32))
    data = (seed * (capacity // len(seed) + 1))[:capacity]
    fhp = draw(st.sampled_from([FHP_NO_PACKET_START, FHP_IDLE_DATA])
               | st.integers(0, min(capacity - 1, 0x7FD)))
    return dict(
        config=config, scid=draw(st.integers(0, 1023)), vcid=draw(st.integers(0, 7)),
        mc=draw(st.integers(0, 255)), vc=draw(st.integers(0, 255)), sec=sec, data=data,
        ocf=draw(st.binary(min_size=4, max_size=4)) if has_ocf else None, sync=sync,
        pof=draw(st.booleans()), slid=draw(st.integers(0, 3)) if sync else 3,
        fhp=draw(st.integers(0, 2047)) if sync else fhp,
    )


def _sp_frame(f: dict) -> TmTransferFrame:
    status = TransferFrameDataFieldStatus(f["sec"] is not None, f["sync"], f["pof"], f["slid"],
                                          f["fhp"])
    header = TmFramePrimaryHeader(MasterChannelId(0, f["scid"]), f["vcid"], f["ocf"] is not None,
                                  f["mc"], f["vc"], status)
    sec = None if f["sec"] is None else TransferFrameSecondaryHeader(0, len(f["sec"]), f["sec"])
    frame = TmTransferFrame(f["config"].frame_length, header, sec, f["data"], f["ocf"], None)
    if f["config"].has_fecf:
        frame.frame_error_control = b"\x00\x00"
        body = frame.pack()[:-2]
        frame.frame_error_control = _sp_fecf(body)
    return frame


def _ls_frame(f: dict) -> TmFrame:
    return TmFrame(f["scid"], f["vcid"], f["mc"], f["vc"], f["fhp"], f["data"], f["ocf"], f["sec"],
                   f["sync"], f["pof"], f["slid"])


@settings(max_examples=150)
@given(frame_fields())
def test_encode_matches_spacepackets(f: dict) -> None:
    assert _ls_frame(f).encode(f["config"]) == _sp_frame(f).pack()


@settings(max_examples=150)
@given(frame_fields())
def test_decode_of_spacepackets_frame(f: dict) -> None:
    raw = _sp_frame(f).pack()
    assert TmFrame.decode(raw, f["config"]) == _ls_frame(f)


@settings(max_examples=150)
@given(frame_fields())
def test_spacepackets_decodes_linkstack_frame(f: dict) -> None:
    raw = _ls_frame(f).encode(f["config"])
    sp = TmTransferFrame.unpack(raw, f["config"].frame_length, f["config"].has_fecf)  # checks CRC
    ph = sp.primary_header
    st_ = ph.frame_datafield_status
    assert (ph.master_channel_id.spacecraft_id, ph.vc_id, ph.master_ch_frame_count,
            ph.vc_frame_count) == (f["scid"], f["vcid"], f["mc"], f["vc"])
    assert (st_.sync_flag, st_.packet_order_flag, st_.segment_len_id,
            st_.first_header_pointer) == (f["sync"], f["pof"], f["slid"], f["fhp"])
    assert sp.data_field == f["data"]
    assert sp.op_ctrl_field == f["ocf"]
    if f["sec"] is not None:
        assert sp.secondary_header is not None and sp.secondary_header.data_field == f["sec"]


def test_2048_octet_frame() -> None:
    # 2048 is the TM maximum (131.0-B via spacepackets' own comment; specs/sources.md §1.3).
    # spacepackets 0.32 rejects length >= 2048 (specs/sources.md §2 item 4), so this size is
    # checked against linkstack's own round trip and the 2047 interop above.
    config = TmChannelConfig(2048, has_fecf=True)
    frame = TmFrame(5, 1, data_field=(bytes(range(256)) * 8)[: config.data_field_capacity()])
    raw = frame.encode(config)
    assert len(raw) == 2048
    assert TmFrame.decode(raw, config) == frame
    with pytest.raises(ValueError):
        TmTransferFrame(2048, None, None, b"", None, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        TmChannelConfig(2049)
    assert info.value.key == "frame_length"


# --------------------------------------------------------------------------------------
# Declarations vs fast path; round trips; fuzz
# --------------------------------------------------------------------------------------


@given(scid=st.integers(0, 1023), vcid=st.integers(0, 7), ocf=st.booleans(),
       mc=st.integers(0, 255), vc=st.integers(0, 255), shf=st.booleans(), sync=st.booleans(),
       pof=st.booleans(), slid=st.integers(0, 3), fhp=st.integers(0, 2047))
def test_bitheader_agrees_with_construct(scid: int, vcid: int, ocf: bool, mc: int, vc: int,
                                         shf: bool, sync: bool, pof: bool, slid: int,
                                         fhp: int) -> None:
    values = (scid, vcid, int(ocf), mc, vc, int(shf), int(sync), int(pof), slid, fhp)
    fast = HEADER.pack(*values)
    built = PRIMARY_HEADER.build(dict(zip(HEADER.names, values, strict=True)))
    assert fast == built
    parsed = PRIMARY_HEADER.parse(fast)
    assert tm_frame_header_fields(fast) == tuple(int(parsed[name]) for name in HEADER.names)


@given(length=st.integers(0, 63))
def test_secondary_header_id_agrees_with_construct(length: int) -> None:
    assert SECONDARY_ID.pack(length) == SECONDARY_HEADER_ID.build(
        dict(secondary_header_length=length)) == bytes([length])


@st.composite
def tm_cases(draw: st.DrawFn) -> tuple[TmFrame, TmChannelConfig]:
    f = draw(frame_fields())
    if draw(st.booleans()):  # also cover 2048
        config = TmChannelConfig(2048, f["config"].has_fecf)
        cap = config.data_field_capacity(
            ocf=f["ocf"] is not None,
            secondary_header_length=0 if f["sec"] is None else 1 + len(f["sec"]))
        f["data"] = (f["data"] * (cap // len(f["data"]) + 1))[:cap]
        f["config"] = config
    return _ls_frame(f), f["config"]


@given(tm_cases())
def test_round_trip(case: tuple[TmFrame, TmChannelConfig]) -> None:
    frame, config = case
    raw = frame.encode(config)
    assert len(raw) == config.frame_length
    assert TmFrame.decode(raw, config) == frame


@given(tm_cases(), st.data())
def test_flipped_bit_caught_by_fecf(case: tuple[TmFrame, TmChannelConfig],
                                    data: st.DataObject) -> None:
    frame, config = case
    config = TmChannelConfig(config.frame_length, has_fecf=True)
    cap = config.data_field_capacity(
        ocf=frame.ocf is not None,
        secondary_header_length=0 if frame.secondary_header is None
        else 1 + len(frame.secondary_header))
    # The FECF takes 2 octets of the data field: an FHP that pointed into them no longer fits.
    fhp = frame.first_header_pointer
    assume(frame.synchronization_flag or fhp in (FHP_NO_PACKET_START, FHP_IDLE_DATA)
           or fhp < cap)
    frame = TmFrame(frame.scid, frame.vcid, frame.mc_frame_count, frame.vc_frame_count,
                    fhp, frame.data_field[:cap],
                    frame.ocf, frame.secondary_header, frame.synchronization_flag,
                    frame.packet_order_flag, frame.segment_length_id)
    raw = bytearray(frame.encode(config))
    bit = data.draw(st.integers(0, 8 * len(raw) - 1))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ChecksumError) as info:
        TmFrame.decode(bytes(raw), config)
    assert (info.value.layer, info.value.field) == ("tm", "frame_error_control")


@given(raw=st.binary(min_size=7, max_size=300), has_fecf=st.booleans())
def test_random_bytes_raise_only_linkstack_errors(raw: bytes, has_fecf: bool) -> None:
    config = TmChannelConfig(len(raw) if len(raw) >= 9 else 9, has_fecf=has_fecf)
    try:
        frame = TmFrame.decode(raw, config)
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError)
        return
    assert frame.scid == ((raw[0] & 0x3F) << 4) | (raw[1] >> 4)


@given(raw=st.binary(max_size=12), offset=st.integers(0, 6))
def test_header_fast_path_fuzz(raw: bytes, offset: int) -> None:
    try:
        tm_frame_header_fields(raw, offset)
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError)


# --------------------------------------------------------------------------------------
# Managed parameters, limits, field rules
# --------------------------------------------------------------------------------------


def test_data_field_capacity() -> None:
    config = TmChannelConfig(1115, has_fecf=True, has_ocf=True)
    assert config.data_field_capacity() == 1115 - 6 - 4 - 2
    assert config.data_field_capacity(ocf=False) == 1115 - 6 - 2
    assert config.data_field_capacity(secondary_header_length=10) == 1115 - 6 - 10 - 4 - 2
    with pytest.raises(ConfigError):
        TmChannelConfig(8, has_fecf=True)
    with pytest.raises(ConfigError):
        TmChannelConfig(1115, secondary_header_length=65)


def test_frame_with_clcw_and_secondary_header() -> None:
    config = TmChannelConfig(64, has_fecf=True)
    clcw = Clcw(vcid=1, report_value=42, retransmit=True)
    cap = config.data_field_capacity(ocf=True, secondary_header_length=5)
    packet = SpacePacket(0x10, 3, b"hello").encode()
    zone = packet + idle_packet(cap - len(packet))
    frame = TmFrame(0x2AB, 1, 9, 4, 0, zone, clcw.encode(), b"\x01\x02\x03\x04")
    raw = frame.encode(config)
    # Secondary header ID octet: version 00, length field = total - 1 = 4.
    assert raw[6] == 0x04 and raw[7:11] == b"\x01\x02\x03\x04"
    assert raw[1] & 0x01 == 1 and raw[4] & 0x80  # OCF flag, secondary header flag
    back = TmFrame.decode(raw, config)
    assert Clcw.decode(back.ocf or b"") == clcw
    pz = split_packet_zone(back.data_field, back.first_header_pointer)
    assert pz.packets[0] == packet and SpacePacket.decode(pz.packets[1]).is_idle
    assert pz.head == b"" and pz.tail == b""


def test_segment_length_id_rule() -> None:
    config = TmChannelConfig(20, has_fecf=False)
    cap = config.data_field_capacity()
    with pytest.raises(EncodeError) as info:
        TmFrame(1, 1, data_field=bytes(cap), segment_length_id=0).encode(config)
    assert info.value.field == "segment_length_id"
    # Decoding keeps a non-standard value (some peers send 00, e.g. old ESA frames).
    raw = bytearray(TmFrame(1, 1, data_field=bytes(cap)).encode(config))
    raw[4] &= ~0x18 & 0xFF
    assert TmFrame.decode(bytes(raw), config).segment_length_id == 0
    # With the Synchronization Flag set any value goes, and the FHP is not interpreted.
    frame = TmFrame(1, 1, first_header_pointer=2047, data_field=bytes(cap),
                    synchronization_flag=True, segment_length_id=1)
    assert TmFrame.decode(frame.encode(config), config) == frame


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(scid=1024), "scid"), (dict(vcid=8), "vcid"),
    (dict(mc_frame_count=256), "mc_frame_count"), (dict(vc_frame_count=-1), "vc_frame_count"),
    (dict(first_header_pointer=13), "first_header_pointer"),
    (dict(ocf=b"abc"), "ocf"), (dict(secondary_header=bytes(64)), "secondary_header"),
    (dict(data_field=bytes(12)), "data_field"),
])
def test_encode_errors_name_the_field(kwargs: dict, field: str) -> None:
    config = TmChannelConfig(21, has_fecf=True)
    base = dict(scid=1, vcid=1, data_field=bytes(13))
    if "ocf" in kwargs or "secondary_header" in kwargs:
        base["data_field"] = b""
    base.update(kwargs)
    with pytest.raises(EncodeError) as info:
        TmFrame(**base).encode(config)  # type: ignore[arg-type]
    assert info.value.field == field


def test_decode_errors() -> None:
    config = TmChannelConfig(20, has_fecf=False)
    raw = TmFrame(1, 1, data_field=bytes(14)).encode(config)
    with pytest.raises(TruncatedError):
        TmFrame.decode(raw[:-1], config)
    with pytest.raises(DecodeError) as info:
        TmFrame.decode(raw + b"\x00", config)
    assert info.value.field == "frame_length"
    bad = bytearray(raw)
    bad[0] |= 0x40
    with pytest.raises(DecodeError) as info:
        TmFrame.decode(bytes(bad), config)
    assert (info.value.field, info.value.offset) == ("transfer_frame_version_number", 0)
    bad = bytearray(raw)
    bad[5] = 14  # FHP 14 in a 14-octet zone
    with pytest.raises(DecodeError) as info:
        TmFrame.decode(bytes(bad), config)
    assert (info.value.field, info.value.offset) == ("first_header_pointer", 4)
    bad = bytearray(raw)
    bad[4] |= 0x80  # secondary header flag
    bad[6] = 0x3F  # 64-octet secondary header cannot fit
    with pytest.raises(DecodeError) as info:
        TmFrame.decode(bytes(bad), config)
    assert info.value.field == "secondary_header_length"
    bad[6] = 0x80  # version 10
    with pytest.raises(DecodeError) as info:
        TmFrame.decode(bytes(bad), config)
    assert (info.value.field, info.value.offset) == ("secondary_header_version_number", 6)


# --------------------------------------------------------------------------------------
# Packet zone split by FHP
# --------------------------------------------------------------------------------------


def test_split_packet_zone() -> None:
    p1 = SpacePacket(1, 0, bytes(20)).encode()
    p2 = SpacePacket(2, 0, bytes(30)).encode()
    zone = p1[10:] + p2 + p1[:9]
    pz = split_packet_zone(zone, 16)
    assert pz == PacketZone(p1[10:], (p2,), p1[:9])
    assert split_packet_zone(zone, FHP_NO_PACKET_START) == PacketZone(zone, (), b"")
    assert split_packet_zone(zone, FHP_IDLE_DATA).idle
    assert split_packet_zone(p1 + p2[:4], 0) == PacketZone(b"", (p1,), p2[:4])
    with pytest.raises(DecodeError) as info:
        split_packet_zone(zone, len(zone))
    assert info.value.field == "first_header_pointer"


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=8),
       st.integers(0, 100), st.integers(0, 300))
def test_split_packet_zone_recovers_packets(datas: list[bytes], cut_head: int,
                                            cut_tail: int) -> None:
    packets = [SpacePacket(i, i, d).encode() for i, d in enumerate(datas)]
    stream = b"".join(packets)
    head = bytes(range(cut_head % 256))[:cut_head]
    zone = head + stream[: max(1, len(stream) - cut_tail)]
    pz = split_packet_zone(zone, len(head) if len(head) < len(zone) else FHP_NO_PACKET_START)
    if len(head) < len(zone):
        assert pz.head == head
        assert b"".join(pz.packets) + pz.tail == zone[len(head):]
        assert list(pz.packets) == packets[: len(pz.packets)]


@given(zone=st.binary(max_size=300), fhp=st.integers(0, 0xFFFF))
def test_split_packet_zone_fuzz(zone: bytes, fhp: int) -> None:
    try:
        pz = split_packet_zone(zone, fhp)
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError) and exc.field == "first_header_pointer"
        return
    assert pz.idle or pz.head + b"".join(pz.packets) + pz.tail == zone
