"""Errors, CRC and the generated bit-field fast path."""

from __future__ import annotations

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.bitfields import BitHeader
from linkstack.codecs.crc import (
    append_fecf,
    check_fecf,
    compute_fecf,
    crc16_ccitt,
    crc32_proximity1,
)
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError


def test_crc16_check_value() -> None:
    # CRC-16/IBM-3740 check value (specs/sources.md §1.7; catalogue of parametrised CRCs).
    assert crc16_ccitt(b"123456789") == 0x29B1


def test_crc32_proximity1_check_value() -> None:
    # Proximity-1 CRC-32 (poly 0x00A00805) check value, specs/sources.md §1.15.
    assert crc32_proximity1(b"123456789") == 0x51693C0C


@pytest.mark.parametrize("size", [2, 4])
@given(data=st.binary(max_size=300))
def test_fecf_residue_and_check(size: int, data: bytes) -> None:
    frame = append_fecf(data, size)
    assert frame[-size:] == compute_fecf(data, size)
    check_fecf(frame, layer="tm", size=size)  # no raise
    bad = bytearray(frame)
    bad[0 if data else -1] ^= 0x01
    with pytest.raises(ChecksumError) as info:
        check_fecf(bytes(bad), layer="tm", size=size)
    assert info.value.field == "frame_error_control"
    assert info.value.offset == len(frame) - size


def test_fecf_truncated() -> None:
    with pytest.raises(TruncatedError):
        check_fecf(b"\x01", layer="tc")


DEMO = c.BitStruct(
    "version" / c.Const(1, c.BitsInteger(2)),
    "a" / c.BitsInteger(5),
    "flag" / c.Flag,
    c.Padding(3),
    "b" / c.BitsInteger(13),
)
DEMO_HEADER = BitHeader("demo", DEMO)


@given(a=st.integers(0, 31), flag=st.booleans(), b=st.integers(0, 8191))
def test_bitheader_agrees_with_construct(a: int, flag: bool, b: int) -> None:
    fast = DEMO_HEADER.pack(a, int(flag), b)
    assert fast == DEMO.build({"a": a, "flag": flag, "b": b})
    parsed = DEMO.parse(fast)
    assert DEMO_HEADER.unpack(fast) == (parsed.a, int(parsed.flag), parsed.b)


def test_bitheader_errors_name_field_and_offset() -> None:
    with pytest.raises(EncodeError) as enc:
        DEMO_HEADER.pack(32, 0, 0)
    assert enc.value.field == "a"
    with pytest.raises(DecodeError) as dec:
        DEMO_HEADER.unpack(b"\x00\x00\x00\x00", 1)
    assert (dec.value.field, dec.value.offset) == ("version", 1)
    with pytest.raises(TruncatedError):
        DEMO_HEADER.unpack(b"\x40\x00", 0)
