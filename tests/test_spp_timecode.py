"""CCSDS time codes CUC and CDS (CCSDS 301.0-B-4 §3.2, §3.3).

Oracles: spacepackets 0.32 ``CdsShortTimestamp`` (it has no CUC or long-CDS class); CUC
P-field octets are derived by hand from the layout that two independent implementations agree
on (spacepackets-rs ``time/cuc.rs``: octet 1 = ext<<7 | id<<4 | (coarse-1)<<2 | fine;
puslib ``time.py``: octet 2 = additional coarse<<5 | additional fine<<2)."""

from __future__ import annotations

import contextlib
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ccsds.time import CdsShortTimestamp

from linkstack.errors import ConfigError, DecodeError, EncodeError, LinkstackError, TruncatedError
from linkstack.spp.timecode import (
    CDS_P,
    CDS_P_FIELD,
    CUC_P1,
    CUC_P2,
    CUC_P_FIELD,
    CUC_P_FIELD_EXTENSION,
    CdsFormat,
    CdsTime,
    CucFormat,
    Epoch,
    Submillisecond,
    TimeCodeId,
    decode_time_code,
    read_p_field,
)

cuc_formats = st.builds(CucFormat, st.integers(1, 7), st.integers(0, 10),
                        st.sampled_from(list(Epoch)), st.booleans())
cds_formats = st.builds(CdsFormat, st.sampled_from([2, 3]), st.sampled_from(list(Submillisecond)),
                        st.sampled_from(list(Epoch)), st.booleans())


# -- CDS against spacepackets ------------------------------------------------------------------
def test_cds_short_vector_from_spacepackets_doctest() -> None:
    # spacepackets cds.py doctest: CdsShortTimestamp(0x0102, 0x03040506) -> 40,01,02,03,04,05,06
    vector = bytes.fromhex("40010203040506")
    assert CdsFormat().encode(CdsTime(0x0102, 0x03040506)) == vector
    assert CdsFormat().decode(vector) == CdsTime(0x0102, 0x03040506)


@given(st.integers(0, 0xFFFF), st.integers(0, 86_399_999))
def test_cds_short_interop_both_ways(day: int, ms: int) -> None:
    ours = CdsFormat().encode(CdsTime(day, ms))
    assert ours == CdsShortTimestamp(day, ms).pack()
    theirs = CdsShortTimestamp.unpack(ours)
    assert (theirs.ccsds_days, theirs.ms_of_day) == (day, ms)
    fmt, value = decode_time_code(CdsShortTimestamp(day, ms).pack())
    assert fmt == CdsFormat() and value == CdsTime(day, ms)


# -- CUC vectors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "p_field"),
    [
        (CucFormat(4, 0), "1c"),  # spacepackets-rs test_write_no_fractions: 4 octets, no fine
        (CucFormat(4, 1), "1d"),
        (CucFormat(4, 3), "1f"),
        (CucFormat(1, 0), "10"),
        (CucFormat(4, 2, Epoch.AGENCY), "2e"),
        (CucFormat(5, 4), "9f24"),  # extension: +1 coarse <<5, +1 fine <<2
        (CucFormat(7, 10), "9f7c"),
        (CucFormat(2, 6, Epoch.AGENCY), "a70c"),
    ],
)
def test_cuc_p_field_vectors(fmt: CucFormat, p_field: str) -> None:
    assert fmt.p_field.hex() == p_field
    assert CucFormat.from_p_field(bytes.fromhex(p_field)) == fmt
    assert read_p_field(bytes.fromhex(p_field)) == fmt


def test_cuc_non_canonical_p_field_is_kept_verbatim() -> None:
    # Extension octet present although nothing is added (and reserved bits set): legal, and
    # the code is then 2 + 1 octets long, not 1 + 1.
    for raw in (b"\x90\x00\x05", b"\x90\x03\x05"):
        fmt, value = decode_time_code(raw)
        assert fmt == CucFormat(1, 0) and value == 5
        assert fmt.size == 3 and fmt.p_field == raw[:2] and fmt.encode(5) == raw
        with pytest.raises(DecodeError) as info:
            CucFormat(1, 0).decode(raw)  # a configured P-field must match octet for octet
        assert info.value.field == "p_field"


def test_cuc_t_field_vector() -> None:
    # spacepackets-rs test_write_no_fractions: counter 0x20102030, P-field 0x1c.
    assert CucFormat().encode(0x20102030).hex() == "1c20102030"
    # 4+2 octets: 1.5 s is coarse 1, fine 0x8000 (fine counts 2**-16 s).
    assert CucFormat(4, 2).encode(Fraction(3, 2)).hex() == "1e000000018000"
    assert CucFormat(4, 2, explicit_p_field=False).encode(Fraction(3, 2)).hex() == "000000018000"
    assert CucFormat(4, 2).decode_fields(bytes.fromhex("1e000000018000")) == (1, 0x8000)


# -- declarations agree with the fast path -----------------------------------------------------
@given(st.booleans(), st.integers(0, 7), st.integers(0, 3), st.integers(0, 3))
def test_cuc_p_field_fast_path_agrees(ext: bool, code: int, coarse: int, fine: int) -> None:
    fast = CUC_P1.pack(int(ext), code, coarse, fine)
    assert fast == CUC_P_FIELD.build({"extension_flag": ext, "time_code_id": code,
                                      "coarse_time_octets_minus_1": coarse,
                                      "fine_time_octets": fine})
    parsed = CUC_P_FIELD.parse(fast)
    assert CUC_P1.unpack(fast) == (int(parsed.extension_flag), parsed.time_code_id,
                                   parsed.coarse_time_octets_minus_1, parsed.fine_time_octets)


@given(st.booleans(), st.integers(0, 3), st.integers(0, 7), st.integers(0, 3))
def test_cuc_p_field_extension_fast_path_agrees(ext: bool, coarse: int, fine: int,
                                                reserved: int) -> None:
    fast = CUC_P2.pack(int(ext), coarse, fine)
    assert fast == CUC_P_FIELD_EXTENSION.build({"extension_flag": ext,
                                                "additional_coarse_time_octets": coarse,
                                                "additional_fine_time_octets": fine})
    with_reserved = bytes([fast[0] | reserved])  # reserved bits are ignored on decode
    parsed = CUC_P_FIELD_EXTENSION.parse(with_reserved)
    assert CUC_P2.unpack(with_reserved) == (int(parsed.extension_flag),
                                            parsed.additional_coarse_time_octets,
                                            parsed.additional_fine_time_octets)


@given(st.integers(0, 1), st.integers(0, 1), st.integers(0, 3))
def test_cds_p_field_fast_path_agrees(epoch: int, day: int, sub: int) -> None:
    fast = CDS_P.pack(epoch, day, sub)
    assert fast == CDS_P_FIELD.build({"epoch_id": epoch, "day_segment_length": day,
                                      "submillisecond_resolution": sub})
    assert fast[0] >> 4 == TimeCodeId.CDS
    parsed = CDS_P_FIELD.parse(fast)
    assert CDS_P.unpack(fast) == (parsed.epoch_id, parsed.day_segment_length,
                                  parsed.submillisecond_resolution)


@given(cuc_formats, st.data())
def test_cuc_encode_agrees_with_t_field_declaration(fmt: CucFormat, data: st.DataObject) -> None:
    coarse = data.draw(st.integers(0, 2 ** (8 * fmt.coarse_octets) - 1))
    fine = data.draw(st.integers(0, 2 ** (8 * fmt.fine_octets) - 1))
    values = {"coarse_time": coarse, "fine_time": fine}
    t_field = fmt.t_field().build(values)
    expected = (fmt.p_field if fmt.explicit_p_field else b"") + t_field
    assert fmt.encode_fields(coarse, fine) == expected
    assert len(expected) == fmt.size
    parsed = fmt.t_field().parse(t_field)
    assert fmt.decode_fields(expected) == (parsed.coarse_time, parsed.get("fine_time", 0))


@given(cds_formats, st.integers(0, 2**24 - 1), st.integers(0, 86_400_999),
       st.integers(0, 999), st.integers(0, 999_999_999))
def test_cds_encode_agrees_with_t_field_declaration(
    fmt: CdsFormat, day: int, ms: int, us: int, ps: int
) -> None:
    day %= 2 ** (8 * fmt.day_octets)
    values = {"day": day, "ms_of_day": ms, "microseconds": us, "picoseconds": ps}
    sub = {Submillisecond.NONE: 0, Submillisecond.MICROSECONDS: us * 10**6,
           Submillisecond.PICOSECONDS: ps}[fmt.submillisecond]
    expected = (fmt.p_field if fmt.explicit_p_field else b"") + fmt.t_field().build(values)
    assert fmt.encode(CdsTime(day, ms, sub)) == expected
    assert len(expected) == fmt.size
    assert fmt.decode(expected) == CdsTime(day, ms, sub)


# -- exact round trips ---------------------------------------------------------------------------
@given(cuc_formats, st.data())
def test_cuc_fraction_round_trip(fmt: CucFormat, data: st.DataObject) -> None:
    n = fmt.coarse_octets + fmt.fine_octets
    units = data.draw(st.integers(0, 2 ** (8 * n) - 1))
    seconds = Fraction(units, 2 ** (8 * fmt.fine_octets))
    raw = fmt.encode(seconds)
    assert fmt.decode(raw) == seconds
    assert fmt.encode(fmt.decode(raw)) == raw
    if fmt.explicit_p_field:
        assert decode_time_code(raw) == (fmt, seconds)


@given(cuc_formats, st.binary(min_size=20, max_size=20))
def test_cuc_bytes_round_trip(fmt: CucFormat, tail: bytes) -> None:
    raw = (fmt.p_field if fmt.explicit_p_field else b"") + tail[:fmt.coarse_octets +
                                                                fmt.fine_octets]
    assert fmt.encode(fmt.decode(raw)) == raw


def test_cuc_inexact_and_out_of_range() -> None:
    fmt = CucFormat(2, 1)
    with pytest.raises(EncodeError) as inexact:
        fmt.encode(Fraction(1, 3))
    assert inexact.value.field == "fine_time"
    # truncate rounds down to the resolution (1/256 s): floor(256/3) = 85.
    assert fmt.decode(fmt.encode(Fraction(1, 3), truncate=True)) == Fraction(85, 256)
    assert fmt.encode(0.5) == bytes.fromhex("15000080")  # floats convert exactly
    for bad in (-1, 65536, Fraction(-1, 256), float("nan"), float("inf")):
        with pytest.raises(EncodeError):
            fmt.encode(bad)
    with pytest.raises(EncodeError):
        fmt.encode_fields(65536, 0)
    with pytest.raises(EncodeError):
        fmt.encode_fields(0, 256)
    with pytest.raises(EncodeError):
        CucFormat(4, 0).encode_fields(0, 1)
    with pytest.raises(ConfigError):
        CucFormat(0, 0)
    with pytest.raises(ConfigError):
        CucFormat(8, 0)
    with pytest.raises(ConfigError):
        CucFormat(4, 11)


@given(st.integers(0, 2**24 - 1), st.integers(0, 86_400_999), st.integers(0, 999_999_999))
def test_cds_seconds_round_trip(day: int, ms: int, ps: int) -> None:
    t = CdsTime(day, ms, ps)
    fmt = CdsFormat(3, Submillisecond.PICOSECONDS)
    assert fmt.decode(fmt.encode(t)) == t
    if ms < 86_400_000:  # a leap second reads as the next day's first second
        assert CdsTime.from_seconds(t.seconds) == t
        assert fmt.decode(fmt.encode(t.seconds)) == t


def test_cds_leap_second_and_resolution() -> None:
    leap = CdsTime(10, 86_400_500)  # inside a positive leap second
    assert CdsFormat().decode(CdsFormat().encode(leap)) == leap
    assert leap.seconds == 11 * 86400 + Fraction(1, 2)
    us = CdsFormat(2, Submillisecond.MICROSECONDS)
    t = CdsTime(1, 2, 3_000_000)
    assert us.encode(t).hex() == "41" + "0001" + "00000002" + "0003"
    with pytest.raises(EncodeError) as fine:
        us.encode(CdsTime(1, 2, 3_000_001))
    assert fine.value.field == "submillisecond"
    assert us.decode(us.encode(CdsTime(1, 2, 3_999_999), truncate=True)) == t
    with pytest.raises(EncodeError):
        CdsFormat().encode(CdsTime(1, 2, 1))
    assert CdsFormat().encode(CdsTime(1, 2, 1), truncate=True) == CdsFormat().encode(CdsTime(1, 2))
    assert CdsTime.from_seconds(Fraction(86400 * 2 + 1, 1) + Fraction(5, 10**6)) == CdsTime(
        2, 1000, 5_000_000)
    assert t.microseconds == 3
    for bad, field in ((CdsTime(65536, 0), "day"), (CdsTime(0, 86_401_000), "ms_of_day"),
                       (CdsTime(0, 0, 10**9), "submillisecond"), (CdsTime(-1, 0), "day")):
        with pytest.raises(EncodeError) as info:
            CdsFormat(2, Submillisecond.PICOSECONDS).encode(bad)
        assert info.value.field == field
    with pytest.raises(EncodeError):
        CdsTime.from_seconds(-1)
    with pytest.raises(EncodeError):
        CdsTime.from_seconds(Fraction(1, 10**13))
    with pytest.raises(ConfigError):
        CdsFormat(4)
    assert CdsFormat(3, Submillisecond.PICOSECONDS, Epoch.AGENCY).p_field == b"\x4e"


def test_cds_decode_errors_name_field_and_offset() -> None:
    with pytest.raises(DecodeError) as ms:
        CdsFormat().decode(bytes.fromhex("ff400000") + (86_401_000).to_bytes(4, "big"), 1)
    assert (ms.value.field, ms.value.offset) == ("ms_of_day", 4)
    with pytest.raises(DecodeError) as us:
        CdsFormat(2, Submillisecond.MICROSECONDS).decode(bytes.fromhex("41000000000000" "03e8"))
    assert (us.value.field, us.value.offset) == ("submillisecond", 7)
    with pytest.raises(DecodeError) as ps:
        CdsFormat(2, Submillisecond.PICOSECONDS).decode(bytes.fromhex("42000000000000"
                                                                      "3b9aca00"))
    assert (ps.value.field, ps.value.offset) == ("submillisecond", 7)
    with pytest.raises(DecodeError) as reserved:
        read_p_field(b"\x43")
    assert reserved.value.field == "submillisecond_resolution"
    with pytest.raises(DecodeError) as pf:
        CdsFormat().decode(bytes.fromhex("44000000000000"))  # 24-bit day P-field, 16 configured
    assert pf.value.field == "p_field"
    with pytest.raises(TruncatedError):
        CdsFormat().decode(bytes.fromhex("400000000000"))
    with pytest.raises(DecodeError) as ccs:
        read_p_field(b"\x50")
    assert ccs.value.field == "time_code_id"
    with pytest.raises(DecodeError):
        read_p_field(b"\x00")
    with pytest.raises(TruncatedError):
        read_p_field(b"")
    with pytest.raises(DecodeError) as ext:
        CucFormat.from_p_field(b"\x9f\xa0")  # octet 2 asks for a third octet
    assert (ext.value.field, ext.value.offset) == ("extension_flag", 1)
    with pytest.raises(TruncatedError):
        CucFormat.from_p_field(b"\x9f")
    with pytest.raises(DecodeError) as mismatch:
        CucFormat(4, 2).decode(CucFormat(4, 2, Epoch.AGENCY).encode(1))
    assert mismatch.value.field == "p_field"


def test_implicit_p_field() -> None:
    fmt = CdsFormat(2, Submillisecond.MICROSECONDS, explicit_p_field=False)
    raw = fmt.encode(CdsTime(5, 6, 7_000_000))
    assert raw.hex() == "0005" "00000006" "0007" and fmt.size == 8
    assert fmt.decode(raw) == CdsTime(5, 6, 7_000_000)
    assert CucFormat(1, 0, explicit_p_field=False).encode(200) == b"\xc8"


# -- fuzz: random bytes into every decoder -------------------------------------------------------
@given(st.binary(max_size=24), st.integers(0, 3), cuc_formats, cds_formats)
def test_fuzz_decoders_raise_only_linkstack_errors(raw: bytes, offset: int, cuc: CucFormat,
                                                   cds: CdsFormat) -> None:
    decoders = (decode_time_code, read_p_field, cuc.decode, cuc.decode_fields, cds.decode,
                CucFormat.from_p_field, CdsFormat.from_p_field)
    for decode in decoders:
        with contextlib.suppress(LinkstackError):
            decode(raw, offset)
    try:
        fmt, value = decode_time_code(raw, offset)
    except LinkstackError:
        return
    assert fmt.encode(value) == raw[offset:offset + fmt.size]  # type: ignore[arg-type]
