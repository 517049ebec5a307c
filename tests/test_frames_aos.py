"""AOS Transfer Frame (732.0-B-4 §4.1) and its RS(10,6) Frame Header Error Control."""

from __future__ import annotations

import galois
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import (
    ChecksumError,
    ConfigError,
    DecodeError,
    EncodeError,
    LinkstackError,
    UncorrectableError,
)
from linkstack.frames.aos import (
    B_PDU,
    B_PDU_HEADER,
    BDP_ALL_FILL,
    BDP_ALL_VALID,
    FHEC,
    FHEC_FIELD,
    FHEC_GENERATOR,
    HEADER,
    IDLE_VCID,
    M_PDU,
    M_PDU_HEADER,
    PRIMARY_HEADER,
    AosChannelConfig,
    AosDataUnit,
    AosFrame,
    fhec_correct,
    fhec_parity,
)
from linkstack.frames.clcw import Clcw
from linkstack.frames.tm import FHP_IDLE_DATA, FHP_NO_PACKET_START, split_packet_zone
from linkstack.spp.packet import SpacePacket, idle_packet

# --------------------------------------------------------------------------------------
# FHEC: published vectors and an independent RS implementation
# --------------------------------------------------------------------------------------


def test_fhec_yamcs_vectors() -> None:
    # yamcs AosFrameHeaderErrorCorrTest (specs/sources.md §1.5 names the code it implements).
    assert fhec_parity(0x1234, 0x56) == 0x94DC
    assert fhec_parity(0x369C, 0xFA) == 0x457C
    assert fhec_correct(0x1234, 0x56, 0x94DC) == (0x1234, 0x56, 0x94DC, 0)
    assert fhec_correct(0x1234, 0x56, 0x9400) == (0x1234, 0x56, 0x94DC, 2)
    assert fhec_correct(0x1211, 0x56, 0x94DC) == (0x1234, 0x56, 0x94DC, 2)
    assert fhec_correct(0x1234, 0xAA, 0x94DC) == (0x1234, 0x56, 0x94DC, 2)
    with pytest.raises(UncorrectableError) as info:
        fhec_correct(0x1230, 0x00, 0x94DC)
    assert info.value.field == "frame_header_error_control"


# "python-calculate" avoids numba compilation (tens of seconds) for this tiny field.
GF16 = galois.GF(2**4, irreducible_poly=0x13, compile="python-calculate")
# RS(15,11) over GF(16) with x^4+x+1, α = x, roots α^6..α^9 (c = 6), shortened by 5 by
# encoding 6-symbol messages: the FHEC code as yamcs declares it (specs/sources.md §1.5).
ORACLE = galois.ReedSolomon(15, 11, c=6, field=GF16)


def test_generator_matches_galois() -> None:
    assert int(GF16.primitive_element) == 2
    assert tuple(int(x) for x in ORACLE.generator_poly.coeffs) == FHEC_GENERATOR


@settings(max_examples=100)  # galois in pure-Python mode is slow per call
@given(word=st.integers(0, 0xFFFF), sig=st.integers(0, 0xFF))
def test_fhec_parity_matches_galois(word: int, sig: int) -> None:
    nibbles = [(word >> s) & 0xF for s in (12, 8, 4, 0)] + [sig >> 4, sig & 0xF]
    codeword = ORACLE.encode(GF16(nibbles))
    parity = [int(x) for x in codeword[6:]]
    expected = (parity[0] << 12) | (parity[1] << 8) | (parity[2] << 4) | parity[3]
    assert fhec_parity(word, sig) == expected


def _nibbles(word: int, sig: int, fhec: int) -> list[int]:
    return ([(word >> s) & 0xF for s in (12, 8, 4, 0)] + [sig >> 4, sig & 0xF]
            + [(fhec >> s) & 0xF for s in (12, 8, 4, 0)])


def _pack(n: list[int]) -> tuple[int, int, int]:
    word = (n[0] << 12) | (n[1] << 8) | (n[2] << 4) | n[3]
    return word, (n[4] << 4) | n[5], (n[6] << 12) | (n[7] << 8) | (n[8] << 4) | n[9]


@settings(max_examples=100)  # galois in pure-Python mode is slow per call
@given(word=st.integers(0, 0xFFFF), sig=st.integers(0, 0xFF),
       errors=st.dictionaries(st.integers(0, 9), st.integers(1, 15), min_size=1, max_size=2))
def test_fhec_corrects_up_to_two_nibbles(word: int, sig: int, errors: dict[int, int]) -> None:
    fhec = fhec_parity(word, sig)
    n = _nibbles(word, sig, fhec)
    for pos, err in errors.items():
        n[pos] ^= err
    assert fhec_correct(*_pack(n)) == (word, sig, fhec, len(errors))
    # galois agrees that this received word decodes to the same codeword.
    decoded, nerr = ORACLE.decode(GF16(n), output="codeword", errors=True)
    assert [int(x) for x in decoded] == _nibbles(word, sig, fhec) and nerr == len(errors)


@settings(max_examples=100)  # galois in pure-Python mode is slow per call
@given(word=st.integers(0, 0xFFFF), sig=st.integers(0, 0xFF),
       errors=st.dictionaries(st.integers(0, 9), st.integers(1, 15), min_size=3, max_size=4))
def test_fhec_three_or_four_errors_never_pass_silently(word: int, sig: int,
                                                       errors: dict[int, int]) -> None:
    # d = 5, so 3 or 4 errors are always *detected* (galois.detect), and the bounded-distance
    # decoder either refuses (UncorrectableError) or lands on another codeword within
    # distance 2 of what was received - never on a non-codeword. (galois' own decode is not
    # used as the oracle here: beyond t = 2 it can return a word that fails its own detect.)
    fhec = fhec_parity(word, sig)
    n = _nibbles(word, sig, fhec)
    for pos, err in errors.items():
        n[pos] ^= err
    assert ORACLE.detect(GF16(n))
    try:
        got = fhec_correct(*_pack(n))
    except UncorrectableError as exc:
        assert exc.field == "frame_header_error_control"
        return
    fixed = _nibbles(*got[:3])
    assert got[:3] != (word, sig, fhec)
    assert not ORACLE.detect(GF16(fixed))
    assert sum(a != b for a, b in zip(fixed, n, strict=True)) == got[3] <= 2


# --------------------------------------------------------------------------------------
# Declarations vs fast path
# --------------------------------------------------------------------------------------


@given(scid=st.integers(0, 255), vcid=st.integers(0, 63), count=st.integers(0, 2**24 - 1),
       replay=st.booleans(), usage=st.booleans(), cycle=st.integers(0, 15))
def test_bitheader_agrees_with_construct(scid: int, vcid: int, count: int, replay: bool,
                                         usage: bool, cycle: int) -> None:
    values = (scid, vcid, count, int(replay), int(usage), cycle)
    fast = HEADER.pack(*values)
    assert fast == PRIMARY_HEADER.build(dict(zip(HEADER.names, values, strict=True)))
    parsed = PRIMARY_HEADER.parse(fast)
    assert HEADER.unpack(fast) == tuple(int(parsed[n]) for n in HEADER.names)
    # Independent arithmetic (astro frame.go layout, specs/sources.md §1.5).
    word = (0b01 << 14) | (scid << 6) | vcid
    sig = (int(replay) << 7) | (int(usage) << 6) | cycle
    assert fast == word.to_bytes(2, "big") + count.to_bytes(3, "big") + bytes([sig])


@given(fhp=st.integers(0, 2047), bdp=st.integers(0, 2**14 - 1), fhec=st.integers(0, 0xFFFF))
def test_data_unit_headers_agree_with_construct(fhp: int, bdp: int, fhec: int) -> None:
    assert FHEC.pack(fhec) == FHEC_FIELD.build(dict(frame_header_error_control=fhec))
    assert M_PDU.pack(fhp) == M_PDU_HEADER.build(dict(first_header_pointer=fhp)) == (
        fhp.to_bytes(2, "big"))
    assert B_PDU.pack(bdp) == B_PDU_HEADER.build(dict(bitstream_data_pointer=bdp)) == (
        bdp.to_bytes(2, "big"))


# --------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------


@st.composite
def aos_cases(draw: st.DrawFn, has_fecf: bool | None = None, has_fhec: bool | None = None,
              fhec_correction: bool = True) -> tuple[AosFrame, AosChannelConfig]:
    unit = draw(st.sampled_from(list(AosDataUnit)))
    vcid = IDLE_VCID if unit is AosDataUnit.IDLE else draw(st.integers(0, 62))
    with_ocf = draw(st.booleans())
    config = AosChannelConfig(
        frame_length=draw(st.integers(30, 300) | st.sampled_from([1115, 2048])),
        has_fecf=draw(st.booleans()) if has_fecf is None else has_fecf,
        has_fhec=draw(st.booleans()) if has_fhec is None else has_fhec,
        fhec_correction=fhec_correction,
        insert_zone_length=draw(st.integers(0, 8)),
        ocf_vcids=frozenset({vcid}) if with_ocf else frozenset(),
        bpdu_vcids=frozenset({vcid}) if unit is AosDataUnit.B_PDU else frozenset(),
        vca_vcids=frozenset({vcid}) if unit is AosDataUnit.VCA else frozenset(),
    )
    cap = config.data_field_capacity(vcid)
    data = draw(st.binary(min_size=min(cap, 16), max_size=min(cap, 16)))
    data = (data * (cap // max(len(data), 1) + 1))[:cap]
    fhp = bdp = None
    if unit is AosDataUnit.M_PDU:
        fhp = draw(st.sampled_from([FHP_NO_PACKET_START, FHP_IDLE_DATA])
                   | st.integers(0, min(cap - 1, 0x7FD)))
    elif unit is AosDataUnit.B_PDU:
        bdp = draw(st.sampled_from([BDP_ALL_VALID, BDP_ALL_FILL])
                   | st.integers(0, min(8 * cap - 1, 0x3FFD)))
    frame = AosFrame(
        scid=draw(st.integers(0, 255)), vcid=vcid, vc_frame_count=draw(st.integers(0, 2**24 - 1)),
        data_field=data, first_header_pointer=fhp, bitstream_data_pointer=bdp,
        insert_zone=draw(st.binary(min_size=config.insert_zone_length,
                                   max_size=config.insert_zone_length)),
        ocf=draw(st.binary(min_size=4, max_size=4)) if with_ocf else None,
        replay_flag=draw(st.booleans()), vc_frame_count_usage_flag=draw(st.booleans()),
        vc_frame_count_cycle=draw(st.integers(0, 15)),
    )
    return frame, config


@given(aos_cases())
def test_round_trip(case: tuple[AosFrame, AosChannelConfig]) -> None:
    frame, config = case
    raw = frame.encode(config)
    assert len(raw) == config.frame_length
    back = AosFrame.decode(raw, config)
    assert back == frame and back.fhec_corrections == 0
    if config.has_fhec:
        assert int.from_bytes(raw[6:8], "big") == fhec_parity((raw[0] << 8) | raw[1], raw[5])


@given(aos_cases(has_fecf=True, has_fhec=False), st.data())
def test_flipped_bit_caught_by_fecf(case: tuple[AosFrame, AosChannelConfig],
                                    data: st.DataObject) -> None:
    frame, config = case
    raw = bytearray(frame.encode(config))
    bit = data.draw(st.integers(0, 8 * len(raw) - 1))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ChecksumError) as info:
        AosFrame.decode(bytes(raw), config)
    assert info.value.field == "frame_error_control"


# Positions (octet, mask) of the nibbles the FHEC protects: octets 0, 1, 5 and the FHEC.
PROTECTED_NIBBLES = [(0, 0xF0), (0, 0x0F), (1, 0xF0), (1, 0x0F), (5, 0xF0), (5, 0x0F),
                     (6, 0xF0), (6, 0x0F), (7, 0xF0), (7, 0x0F)]


@given(aos_cases(has_fecf=False, has_fhec=True, fhec_correction=False), st.data())
def test_fhec_detects_header_corruption(case: tuple[AosFrame, AosChannelConfig],
                                        data: st.DataObject) -> None:
    frame, config = case
    raw = bytearray(frame.encode(config))
    hits = data.draw(st.lists(st.sampled_from(PROTECTED_NIBBLES), min_size=1, max_size=4,
                              unique=True))
    for octet, mask in hits:
        raw[octet] ^= mask & data.draw(st.integers(1, 255).filter(lambda v, m=mask: v & m))
    with pytest.raises(UncorrectableError) as info:
        AosFrame.decode(bytes(raw), config)
    assert (info.value.layer, info.value.field) == ("aos", "frame_header_error_control")


@given(aos_cases(has_fhec=True), st.data())
def test_fhec_corrects_header_errors_in_frames(case: tuple[AosFrame, AosChannelConfig],
                                               data: st.DataObject) -> None:
    # With or without the FECF: header-only errors are corrected, then the FECF checks.
    frame, config = case
    raw = bytearray(frame.encode(config))
    hits = data.draw(st.lists(st.sampled_from(PROTECTED_NIBBLES), min_size=1, max_size=2,
                              unique=True))
    for octet, mask in hits:
        raw[octet] ^= mask & data.draw(st.integers(1, 255).filter(lambda v, m=mask: v & m))
    back = AosFrame.decode(bytes(raw), config)
    assert back == frame and back.fhec_corrections == len(hits)


def test_fhec_with_fecf_does_not_hide_data_errors() -> None:
    config = AosChannelConfig(40, has_fecf=True, has_fhec=True)
    cap = config.data_field_capacity(1)
    raw = bytearray(AosFrame(1, 1, data_field=bytes(cap), first_header_pointer=0).encode(config))
    raw[0] ^= 0x10  # header nibble: correctable
    raw[20] ^= 0x01  # data bit: not
    with pytest.raises(ChecksumError):
        AosFrame.decode(bytes(raw), config)


def test_fhec_inconsistent_with_good_fecf() -> None:
    # A sender with a broken FHEC: the FECF checks, the FHEC does not -> typed error.
    from linkstack.codecs.crc import append_fecf

    config = AosChannelConfig(40, has_fecf=True, has_fhec=True)
    cap = config.data_field_capacity(1)
    raw = bytearray(AosFrame(1, 1, data_field=bytes(cap), first_header_pointer=0).encode(config))
    raw[7] ^= 0x01
    raw = bytearray(append_fecf(bytes(raw[:-2])))
    with pytest.raises(UncorrectableError) as info:
        AosFrame.decode(bytes(raw), config)
    assert info.value.field == "frame_header_error_control"


@given(raw=st.binary(min_size=30, max_size=300), has_fecf=st.booleans(), has_fhec=st.booleans(),
       iz=st.integers(0, 10), ocf=st.booleans(), bpdu=st.booleans())
def test_random_bytes_raise_only_linkstack_errors(raw: bytes, has_fecf: bool, has_fhec: bool,
                                                  iz: int, ocf: bool, bpdu: bool) -> None:
    vcid = raw[1] & 0x3F
    config = AosChannelConfig(
        len(raw), has_fecf, has_fhec, True, iz,
        ocf_vcids=frozenset({vcid}) if ocf else frozenset(),
        bpdu_vcids=frozenset({vcid}) if bpdu and vcid != IDLE_VCID else frozenset(),
    )
    try:
        AosFrame.decode(raw, config)
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError)


def test_m_pdu_frame_with_packets_and_clcw() -> None:
    config = AosChannelConfig(200, has_fecf=True, has_fhec=True, insert_zone_length=4,
                              ocf_vcids=frozenset({5}))
    cap = config.data_field_capacity(5)
    assert cap == 200 - 6 - 2 - 4 - 2 - 4 - 2
    p = SpacePacket(7, 1, bytes(100)).encode()
    zone = p + idle_packet(cap - len(p))
    frame = AosFrame(0xAB, 5, 77, zone, first_header_pointer=0, insert_zone=b"IZ01",
                     ocf=Clcw(5, 9).encode())
    raw = frame.encode(config)
    assert raw[:2] == bytes([0x40 | (0xAB >> 2), ((0xAB & 3) << 6) | 5])
    assert raw[8:12] == b"IZ01" and raw[12:14] == b"\x00\x00"
    back = AosFrame.decode(raw, config)
    assert back == frame and Clcw.decode(back.ocf or b"").report_value == 9
    assert split_packet_zone(back.data_field, back.first_header_pointer or 0,
                             layer="aos").packets[0] == p


def test_idle_vc_and_bpdu() -> None:
    config = AosChannelConfig(64, has_fecf=False, bpdu_vcids=frozenset({2}))
    assert config.data_unit(IDLE_VCID) is AosDataUnit.IDLE
    idle = AosFrame(1, IDLE_VCID, data_field=b"\x55" * 58)
    assert AosFrame.decode(idle.encode(config), config).is_idle
    b = AosFrame(1, 2, data_field=bytes(56), bitstream_data_pointer=100)
    raw = b.encode(config)
    assert raw[6:8] == (100).to_bytes(2, "big")
    assert AosFrame.decode(raw, config) == b
    with pytest.raises(EncodeError) as info:
        AosFrame(1, 2, data_field=bytes(56), bitstream_data_pointer=8 * 56).encode(config)
    assert info.value.field == "bitstream_data_pointer"
    with pytest.raises(EncodeError) as info:
        AosFrame(1, 2, data_field=bytes(56), first_header_pointer=0).encode(config)
    assert info.value.field == "first_header_pointer"


def test_managed_parameters_and_limits() -> None:
    with pytest.raises(ConfigError):
        AosChannelConfig(2049)
    with pytest.raises(ConfigError):
        AosChannelConfig(20, insert_zone_length=20)
    with pytest.raises(ConfigError):
        AosChannelConfig(100, bpdu_vcids=frozenset({1}), vca_vcids=frozenset({1}))
    with pytest.raises(ConfigError):
        AosChannelConfig(100, ocf_vcids=frozenset({64}))
    config = AosChannelConfig(100, has_fecf=False)
    cap = config.data_field_capacity(3)
    for kwargs, field in [
        (dict(scid=256), "scid"), (dict(vcid=64), "vcid"),
        (dict(vc_frame_count=2**24), "vc_frame_count"),
        (dict(vc_frame_count_cycle=16), "vc_frame_count_cycle"),
        (dict(insert_zone=b"x"), "insert_zone"), (dict(ocf=bytes(4)), "ocf"),
        (dict(data_field=bytes(cap + 1)), "data_field"),
        (dict(first_header_pointer=cap), "first_header_pointer"),
    ]:
        base = dict(scid=1, vcid=3, data_field=bytes(cap), first_header_pointer=0)
        base.update(kwargs)
        with pytest.raises(EncodeError) as info:
            AosFrame(**base).encode(config)  # type: ignore[arg-type]
        assert info.value.field == field, kwargs


def test_decode_errors_name_fields() -> None:
    config = AosChannelConfig(30, has_fecf=False)
    raw = AosFrame(1, 1, data_field=bytes(22), first_header_pointer=0).encode(config)
    bad = bytearray(raw)
    bad[0] &= 0x3F  # TFVN 00
    with pytest.raises(DecodeError) as info:
        AosFrame.decode(bytes(bad), config)
    assert (info.value.field, info.value.offset) == ("transfer_frame_version_number", 0)
    bad = bytearray(raw)
    bad[7] = 22  # FHP beyond the 22-octet zone
    with pytest.raises(DecodeError) as info:
        AosFrame.decode(bytes(bad), config)
    assert (info.value.field, info.value.offset) == ("first_header_pointer", 6)
    with pytest.raises(DecodeError):
        AosFrame.decode(raw[:-1], config)
