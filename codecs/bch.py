"""BCH(63,56) codeblocks of the TC Synchronization and Channel Coding, CCSDS 231.0-B-3 §3.

A codeblock is 8 octets: 7 information octets (56 bits), 7 parity bits and one filler bit
(231.0-B-3 §3, specs/sources.md §1.9):

- generator polynomial g(x) = x^7 + x^6 + x^2 + 1 (= (x + 1)(x^6 + x + 1), an expurgated
  Hamming code with minimum distance 4);
- the parity bits are the remainder of i(x)·x^7 modulo g(x), **complemented**;
- the filler bit (the last, least significant bit of octet 7) is 0.

Decoding (231.0-B-3 §3) works in one of two modes, :class:`BchMode`:

- ``DETECT``: a codeblock is accepted only when its syndrome is zero (detects up to 3 bit
  errors, d = 4);
- ``CORRECT``: single-bit errors are corrected; any syndrome that is not that of a single-bit
  error (two bit errors always give one) rejects the codeblock.

The filler bit is not covered by the code and is ignored on decode.

Everything here works on numpy arrays of many codeblocks at once: the parity of ``m``
codeblocks is 7 table look-ups over ``m``-element arrays (a byte-wise CRC-7 with a table
derived from g(x) at import), never a per-bit loop.

Test vectors: yamcs ``BchCltuGeneratorTest`` (originally SpacePyLibrary), specs/sources.md §1.15.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from linkstack.errors import EncodeError, UncorrectableError

__all__ = [
    "CODEBLOCK_OCTETS",
    "FILL_OCTET",
    "GENERATOR",
    "INFO_OCTETS",
    "BchBatchResult",
    "BchMode",
    "decode_array",
    "decode_codeblock",
    "encode",
    "encode_array",
    "encode_codeblock",
    "parity",
]

GENERATOR = 0xC5
"""g(x) = x^7 + x^6 + x^2 + 1 with the x^7 term (bit 7), 231.0-B-3 §3."""

INFO_OCTETS = 7
CODEBLOCK_OCTETS = 8
CODE_BITS = 63
"""The code proper: 56 information bits + 7 parity bits (the filler bit is outside it)."""

FILL_OCTET = 0x55
"""Fill octet of the last codeblock, alternating 0/1 starting with 0 (231.0-B-3 §4)."""


def _crc7_table() -> np.ndarray:
    """Byte-wise remainder table: register = the 7 remainder bits left-aligned in an octet."""
    poly = (GENERATOR << 1) & 0xFF  # x^6+x^2+1 left-aligned, the x^7 term implicit
    table = np.zeros(256, dtype=np.uint8)
    for i in range(256):
        reg = i
        for _ in range(8):
            reg = ((reg << 1) ^ poly) & 0xFF if reg & 0x80 else (reg << 1) & 0xFF
        table[i] = reg
    return table


_TABLE = _crc7_table()
_TABLE_LIST = _TABLE.tolist()


def parity(info: bytes) -> int:
    """Parity octet of 7 information octets: complemented remainder, filler bit 0."""
    if len(info) != INFO_OCTETS:
        raise EncodeError(
            f"a codeblock carries {INFO_OCTETS} information octets, not {len(info)}",
            layer="bch", field="information",
        )
    reg = 0
    for octet in info:
        reg = _TABLE_LIST[reg ^ octet]
    return (~reg) & 0xFE


def _column_tables() -> tuple[bytes, ...]:
    """``bytes.translate`` tables, one per information octet: column c maps an octet x to
    the register after x followed by the 6 - c later octets as zeros.

    The byte-wise register update ``reg ← T[reg ^ x]`` is GF(2)-linear (T is a CRC table,
    T[a ^ b] = T[a] ^ T[b]), so the register after 7 octets is the XOR of what each octet
    contributes alone: the XOR of the 7 columns looked up in these tables.
    """
    tables = []
    for col in range(INFO_OCTETS):
        table = bytearray(256)
        for x in range(256):
            reg = _TABLE_LIST[x]
            for _ in range(INFO_OCTETS - 1 - col):
                reg = _TABLE_LIST[reg]
            table[x] = reg
        tables.append(bytes(table))
    return tuple(tables)


_COLUMN_TABLES = _column_tables()
_RECEIVED_TABLE = bytes((x & 0xFE) ^ 0xFE for x in range(256))
"""Received parity octet p → p ^ 0xFE without its filler bit: XOR-ed with the register it
gives the syndrome left-aligned (the register's last bit is always 0)."""
SMALL_BATCH = 4096
"""Up to this many codeblocks, parity and syndromes are computed on ``bytes`` columns
(:func:`parity_octets`, :func:`syndrome_octets`): a fixed 8 string operations per column
instead of numpy's fixed cost per call, which dominates for a CLTU's few dozen codeblocks."""


def parity_octets(info: bytes | bytearray) -> bytes:
    """Parity octets of the ``len(info) // 7`` information blocks of ``info`` (7 octets
    each, 231.0-B-3 §3), as ``bytes``: the same values as :func:`parity` of each block.

    Each column of information octets (a strided slice) goes through its
    :func:`_column_tables` table with ``bytes.translate``; the columns are XOR-ed as
    big integers and complemented (parity = ~register, filler bit 0).
    """
    m = len(info) // INFO_OCTETS
    if m == 0:
        return b""
    acc = int.from_bytes(b"\xfe" * m, "big")
    for col, table in enumerate(_COLUMN_TABLES):
        acc ^= int.from_bytes(info[col : m * INFO_OCTETS : INFO_OCTETS].translate(table), "big")
    return acc.to_bytes(m, "big")


def syndrome_octets(blocks: bytes | bytearray) -> bytes:
    """Syndromes of the ``len(blocks) // 8`` codeblocks of ``blocks``, one octet each,
    left-aligned: octet = syndrome << 1 (0 for a codeword), the value
    ``(parity(info) ^ received parity) >> 1`` of :func:`decode_array` shifted back."""
    m = len(blocks) // CODEBLOCK_OCTETS
    if m == 0:
        return b""
    end = m * CODEBLOCK_OCTETS
    acc = int.from_bytes(blocks[INFO_OCTETS:end:CODEBLOCK_OCTETS].translate(_RECEIVED_TABLE),
                         "big")
    for col, table in enumerate(_COLUMN_TABLES):
        acc ^= int.from_bytes(blocks[col:end:CODEBLOCK_OCTETS].translate(table), "big")
    return acc.to_bytes(m, "big")


def _parity_array(info: np.ndarray) -> np.ndarray:
    """Parity octets of ``info[m, 7]`` (uint8), vectorized over the rows."""
    if info.dtype == np.uint8 and info.shape[0] <= SMALL_BATCH:
        return np.frombuffer(parity_octets(info.tobytes()), dtype=np.uint8)
    reg = np.zeros(info.shape[0], dtype=np.uint8)
    for col in range(INFO_OCTETS):
        reg = _TABLE[reg ^ info[:, col]]
    return (~reg) & np.uint8(0xFE)


def _single_error_table() -> np.ndarray:
    """Map each 7-bit syndrome to the bit position (0 = MSB of octet 0 ... 62) of the single
    error that produces it, or -1 when no single error does (rejected in CORRECT mode)."""
    table = np.full(128, -1, dtype=np.int16)
    zero = np.zeros((1, INFO_OCTETS), dtype=np.uint8)
    p0 = int(_parity_array(zero)[0])
    for pos in range(CODE_BITS):
        block = bytearray(CODEBLOCK_OCTETS)
        block[7] = p0
        block[pos // 8] ^= 0x80 >> (pos % 8)
        arr = np.frombuffer(bytes(block), dtype=np.uint8)[None, :]
        syndrome = (int(_parity_array(arr[:, :INFO_OCTETS])[0]) ^ block[7]) >> 1
        table[syndrome] = pos
    return table


SINGLE_ERROR_POSITION = _single_error_table()
"""Syndrome (7 bits) -> bit position of the single error, -1 if none (63 of 127 are used)."""


def encode_codeblock(info: bytes) -> bytes:
    """One 8-octet codeblock from exactly 7 information octets (231.0-B-3 §3)."""
    return bytes(info) + bytes((parity(info),))


def encode_array(info: np.ndarray) -> np.ndarray:
    """Codeblocks ``[m, 8]`` from information octets ``info[m, 7]`` (uint8)."""
    if info.ndim != 2 or info.shape[1] != INFO_OCTETS:
        raise EncodeError(
            f"expected an [m, {INFO_OCTETS}] array, got shape {info.shape}",
            layer="bch", field="information",
        )
    out = np.empty((info.shape[0], CODEBLOCK_OCTETS), dtype=np.uint8)
    out[:, :INFO_OCTETS] = info
    out[:, INFO_OCTETS] = _parity_array(info)
    return out


def encode(data: bytes) -> bytes:
    """The codeblocks carrying ``data``: ⌈len/7⌉ codeblocks, the last one filled with 0x55
    octets after the data (231.0-B-3 §4). The caller randomizes *before* this."""
    n = len(data)
    if n == 0:
        raise EncodeError("no data to encode", layer="bch", field="information")
    blocks = -(-n // INFO_OCTETS)
    padded = np.full(blocks * INFO_OCTETS, FILL_OCTET, dtype=np.uint8)
    padded[:n] = np.frombuffer(data, dtype=np.uint8)
    return encode_array(padded.reshape(blocks, INFO_OCTETS)).tobytes()


class BchMode(enum.StrEnum):
    """Decoder mode, 231.0-B-3 §3: error detection only, or single-error correction."""

    DETECT = "detect"
    CORRECT = "correct"


@dataclass(frozen=True, slots=True)
class BchBatchResult:
    """Decoding of ``m`` codeblocks.

    Attributes:
        info: ``[m, 7]`` information octets, corrected where a single error was corrected
            (rows that were rejected hold the received octets; do not use them).
        corrected: ``[m]`` bool, a single bit error was corrected.
        rejected: ``[m]`` bool, the codeblock is rejected (uncorrectable in this mode).
        error_position: ``[m]`` bit position of the corrected error (0 = MSB of octet 0), -1
            where none.
    """

    info: np.ndarray
    corrected: np.ndarray
    rejected: np.ndarray
    error_position: np.ndarray


def decode_array(blocks: np.ndarray, mode: BchMode | str = BchMode.CORRECT) -> BchBatchResult:
    """Decode codeblocks ``blocks[m, 8]`` (uint8) in ``mode`` (231.0-B-3 §3)."""
    mode = BchMode(mode)
    info = np.array(blocks[:, :INFO_OCTETS], dtype=np.uint8, copy=True)
    syndrome = (_parity_array(info) ^ blocks[:, INFO_OCTETS]) >> 1
    nonzero = syndrome != 0
    if mode is BchMode.DETECT:
        position = np.full(blocks.shape[0], -1, dtype=np.int16)
        return BchBatchResult(info, np.zeros_like(nonzero), nonzero, position)
    position = np.where(nonzero, SINGLE_ERROR_POSITION[syndrome], -1).astype(np.int16)
    rejected = nonzero & (position < 0)
    # an error in an information bit is flipped back; one in a parity bit needs nothing
    fix = np.flatnonzero(nonzero & (position >= 0) & (position < INFO_OCTETS * 8))
    if fix.size:
        pos = position[fix]
        info[fix, pos // 8] ^= (0x80 >> (pos % 8)).astype(np.uint8)
    corrected = nonzero & ~rejected
    return BchBatchResult(info, corrected, rejected, position)


def decode_codeblock(
    block: bytes, mode: BchMode | str = BchMode.CORRECT, *, offset: int = 0
) -> tuple[bytes, bool]:
    """Decode one codeblock; return ``(7 information octets, corrected)``.

    Raises :class:`UncorrectableError` (layer ``"bch"``, at ``offset``) when it is rejected.
    """
    if len(block) != CODEBLOCK_OCTETS:
        raise UncorrectableError(
            f"a codeblock is {CODEBLOCK_OCTETS} octets, not {len(block)}",
            layer="bch", field="codeblock", offset=offset,
        )
    arr = np.frombuffer(bytes(block), dtype=np.uint8)[None, :]
    res = decode_array(arr, mode)
    if res.rejected[0]:
        raise UncorrectableError(
            f"codeblock {bytes(block).hex()} rejected in {BchMode(mode).value} mode",
            layer="bch", field="codeblock", offset=offset,
        )
    return res.info[0].tobytes(), bool(res.corrected[0])
