"""GF(2^8) arithmetic for the CCSDS Reed-Solomon code (CCSDS 131.0-B-3 §4).

CCSDS 131.0-B-3 §4.2 defines the symbol field as GF(2^8) built from the field generator
polynomial F(x) = x^8 + x^7 + x^2 + x + 1 (``0x187``), with α a root of F(x) (α = x, the
element ``0x02``).  Every table here is a numpy array so that the codec can index whole
batches of symbols at once:

- :data:`EXP` / :data:`LOG` — antilog and log tables.  ``EXP`` is doubled (length 510) so
  that ``EXP[LOG[a] + LOG[b]]`` needs no modulo.
- :data:`MUL` — the full 256 x 256 multiplication table (``MUL[a, b] = a·b``), and
  :data:`MUL_FLAT`, the same flattened (index ``a << 8 | b``).
- :data:`INV` — multiplicative inverses (``INV[0]`` is 0 by convention).

The CCSDS symbols on the wire are not in the conventional (polynomial) basis
{α^7, ..., α, 1} but in Berlekamp's dual basis (CCSDS 131.0-B-3 §4.2 and annex F).  The
conversion is a GF(2)-linear map given by an 8 x 8 bit matrix; its rows, as published with
libfec's ``gen_ccsds_tal.c`` (specs/sources.md §1.11), are :data:`DUAL_BASIS_MATRIX_ROWS`.
From them:

- :data:`TO_DUAL` (libfec's ``Taltab``): conventional → dual basis,
- :data:`FROM_DUAL` (libfec's ``Tal1tab``): dual → conventional basis (its inverse).

Input bit ``k`` of a conventional symbol (bit 0 = least significant) selects matrix row
``7 - k``; the dual-basis symbol is the XOR of the selected rows.  So ``TO_DUAL[1] = 0x7B``,
``TO_DUAL[2] = 0xAF``, ``TO_DUAL[3] = 0xD4``, ``TO_DUAL[4] = 0x99``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "DUAL_BASIS_MATRIX_ROWS",
    "EXP",
    "FIELD_POLY",
    "FROM_DUAL",
    "INV",
    "LOG",
    "MUL",
    "MUL_FLAT",
    "ORDER",
    "TO_DUAL",
    "gf_div",
    "gf_inv",
    "gf_mul",
    "gf_pow",
    "mul_arrays",
]

FIELD_POLY = 0x187
"""F(x) = x^8 + x^7 + x^2 + x + 1, CCSDS 131.0-B-3 §4.2 (field generator polynomial)."""

ORDER = 255
"""Order of the multiplicative group: α^255 = 1."""

DUAL_BASIS_MATRIX_ROWS: tuple[int, ...] = (0x8D, 0xEF, 0xEC, 0x86, 0xFA, 0x99, 0xAF, 0x7B)
"""Rows of the conventional→dual basis bit matrix (CCSDS 131.0-B-3 annex F; the same rows
appear in libfec's ``gen_ccsds_tal.c``)."""


def _build_exp_log() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    exp = np.zeros(2 * ORDER, dtype=np.uint8)
    log = np.full(256, -1, dtype=np.int16)  # LOG[0] is undefined; -1 marks it
    x = 1
    for i in range(ORDER):
        exp[i] = x
        exp[i + ORDER] = x
        if log[x] != -1:
            raise AssertionError("0x187 is not primitive")  # pragma: no cover - a constant
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= FIELD_POLY
    return exp, log


EXP, LOG = _build_exp_log()
"""``EXP[i] = α^i`` for 0 ≤ i < 510; ``LOG[a]`` with ``LOG[0] = -1`` (undefined)."""


def _build_mul() -> npt.NDArray[np.uint8]:
    logs = LOG.astype(np.int32)
    table = EXP[(logs[:, None] + logs[None, :]) % ORDER]
    table[0, :] = 0
    table[:, 0] = 0
    return np.ascontiguousarray(table, dtype=np.uint8)


MUL = _build_mul()
"""``MUL[a, b] = a·b`` in GF(2^8)/0x187 (uint8, 256 x 256)."""

MUL_FLAT = MUL.ravel()
"""``MUL_FLAT[(a << 8) | b] = a·b``."""

INV = np.zeros(256, dtype=np.uint8)
INV[1:] = EXP[(ORDER - LOG[1:].astype(np.int32)) % ORDER]
"""``INV[a] = a^-1`` (``INV[0] = 0``)."""


def _build_dual_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    to_dual = np.zeros(256, dtype=np.uint8)
    for value in range(256):
        acc = 0
        for k in range(8):
            if value & (1 << k):
                acc ^= DUAL_BASIS_MATRIX_ROWS[7 - k]
        to_dual[value] = acc
    from_dual = np.zeros(256, dtype=np.uint8)
    from_dual[to_dual] = np.arange(256, dtype=np.uint8)
    if len(set(to_dual.tolist())) != 256:  # pragma: no cover - a constant
        raise AssertionError("dual-basis matrix is singular")
    return to_dual, from_dual


TO_DUAL, FROM_DUAL = _build_dual_tables()
"""Conventional→dual (libfec ``Taltab``) and dual→conventional (``Tal1tab``) symbol maps."""


def gf_mul(a: int, b: int) -> int:
    """Product of two field elements."""
    return int(MUL[a, b])


def gf_inv(a: int) -> int:
    """Multiplicative inverse; raises ZeroDivisionError for 0."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return int(INV[a])


def gf_div(a: int, b: int) -> int:
    """``a / b``; raises ZeroDivisionError for ``b == 0``."""
    return gf_mul(a, gf_inv(b))


def gf_pow(a: int, n: int) -> int:
    """``a ** n`` for any integer ``n`` (negative powers need ``a != 0``)."""
    if a == 0:
        if n < 0:
            raise ZeroDivisionError("0 has no inverse in GF(2^8)")
        return 1 if n == 0 else 0
    return int(EXP[(int(LOG[a]) * n) % ORDER])


def mul_arrays(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Element-wise product of two broadcastable uint8 arrays of field elements."""
    index = (np.asarray(a, dtype=np.intp) << 8) | np.asarray(b, dtype=np.intp)
    product: npt.NDArray[np.uint8] = MUL_FLAT[index]
    return product
