"""GF(2^8)/0x187 tables and the dual-basis conversion (CCSDS 131.0-B-3 §4.2, annex F)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.codecs import gf256

# The matrix rows as published with libfec's gen_ccsds_tal.c (specs/sources.md §1.11).
TAL_ROWS = (0x8D, 0xEF, 0xEC, 0x86, 0xFA, 0x99, 0xAF, 0x7B)


def slow_mul(a: int, b: int) -> int:
    """Carry-less shift-and-add multiply reduced by x^8+x^7+x^2+x+1 (independent of the tables)."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x187
    return product


def dual_by_columns(value: int) -> int:
    """Conventional→dual through bit-column parities of the matrix (not the codec's row XOR)."""
    out = 0
    for j in range(8):
        column = 0
        for k in range(8):
            if TAL_ROWS[7 - k] >> j & 1:
                column |= 1 << k
        out |= (bin(value & column).count("1") & 1) << j
    return out


def test_field_constants() -> None:
    # specs/sources.md §1.11: alpha^11 = 0xAD in GF(2^8) with F(x) = 0x187.
    assert gf256.FIELD_POLY == 0x187
    assert int(gf256.EXP[11]) == 0xAD
    assert int(gf256.LOG[0xAD]) == 11
    assert int(gf256.EXP[0]) == 1 and int(gf256.EXP[1]) == 2
    # x^8 = x^7 + x^2 + x + 1 → alpha^8 = 0x87
    assert int(gf256.EXP[8]) == 0x87


def test_exp_log_are_a_bijection() -> None:
    exp = gf256.EXP[:255].astype(int)
    assert sorted(exp.tolist()) == list(range(1, 256))
    assert all(int(gf256.LOG[int(x)]) == i for i, x in enumerate(exp))
    assert np.array_equal(gf256.EXP[255:], gf256.EXP[:255])


def test_mul_table_matches_shift_and_add() -> None:
    for a in range(256):
        for b in range(0, 256, 7):
            assert int(gf256.MUL[a, b]) == slow_mul(a, b)
    assert np.array_equal(gf256.MUL, gf256.MUL.T)


def test_inverse() -> None:
    for a in range(1, 256):
        assert slow_mul(a, int(gf256.INV[a])) == 1
        assert gf256.gf_inv(a) == int(gf256.INV[a])
    with pytest.raises(ZeroDivisionError):
        gf256.gf_inv(0)
    with pytest.raises(ZeroDivisionError):
        gf256.gf_pow(0, -1)


@given(st.integers(0, 255), st.integers(0, 255), st.integers(-600, 600))
def test_scalar_helpers(a: int, b: int, n: int) -> None:
    assert gf256.gf_mul(a, b) == slow_mul(a, b)
    if b:
        assert slow_mul(gf256.gf_div(a, b), b) == a
    if a or n >= 0:
        expected = 1
        base = a if n >= 0 else int(gf256.INV[a])
        for _ in range(abs(n)):
            expected = slow_mul(expected, base)
        assert gf256.gf_pow(a, n) == expected


def test_mul_arrays_broadcasts() -> None:
    a = np.arange(256, dtype=np.uint8)[:, None]
    b = np.array([0, 1, 0xAD, 0xFF], dtype=np.uint8)[None, :]
    got = gf256.mul_arrays(a, b)
    assert got.shape == (256, 4)
    assert all(int(got[x, j]) == slow_mul(x, int(b[0, j])) for x in range(256) for j in range(4))


def test_dual_basis_spot_values() -> None:
    # Spot values of libfec's Taltab (specs/sources.md §1.11).
    assert [int(gf256.TO_DUAL[i]) for i in (1, 2, 3, 4)] == [0x7B, 0xAF, 0xD4, 0x99]
    assert gf256.DUAL_BASIS_MATRIX_ROWS == TAL_ROWS


def test_dual_basis_tables_against_column_form() -> None:
    for v in range(256):
        assert int(gf256.TO_DUAL[v]) == dual_by_columns(v)
        assert int(gf256.FROM_DUAL[gf256.TO_DUAL[v]]) == v
        assert int(gf256.TO_DUAL[gf256.FROM_DUAL[v]]) == v


def test_dual_basis_is_linear_not_identity() -> None:
    to_dual = gf256.TO_DUAL.astype(int)
    for a in range(0, 256, 5):
        for b in range(0, 256, 3):
            assert to_dual[a ^ b] == to_dual[a] ^ to_dual[b]
    assert to_dual[0] == 0
    assert int(np.count_nonzero(to_dual != np.arange(256))) > 200
