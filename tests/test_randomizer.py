"""Pseudo-randomizers, CCSDS 131.0-B-3 §9 (TM) and 231.0-B-3 §6 (TC)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.codecs.randomizer import (
    PERIOD_BITS,
    TC_RANDOMIZER,
    TM_RANDOMIZER,
    Randomizer,
    lfsr_sequence,
)

# First octets, specs/sources.md §1.10: TM from yamcs `Randomizer` and gr-satellites
# `ccsds_descrambler`; TC from yamcs `RandomizerTest` (first 5) and the recomputation
# recorded there.
TM_FIRST = bytes.fromhex("FF480EC09A0D70BC8E2C93ADA7B746CE")
TC_FIRST = bytes.fromhex("FF399E5A68E906F56C89")


def gnuradio_lfsr(mask: int, seed: int, length: int, nbits: int) -> bytes:
    """Independent oracle: GNU Radio's `gr::digital::lfsr::next_bit` (Fibonacci form, output
    the LSB, feedback = parity of register & mask shifted in at bit `length`), as gr-satellites
    configures it for CCSDS (`additive_scrambler_bb(0xA9, 0xFF, 7)`), octets MSB first."""
    reg = seed
    bits = []
    for _ in range(nbits):
        bits.append(reg & 1)
        newbit = (reg & mask).bit_count() & 1
        reg = (reg >> 1) | (newbit << length)
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes()


def test_tm_first_octets() -> None:
    assert TM_RANDOMIZER.sequence(16).tobytes() == TM_FIRST


def test_tc_first_octets() -> None:
    assert TC_RANDOMIZER.sequence(10).tobytes() == TC_FIRST


@pytest.mark.parametrize(
    ("randomizer", "mask"),
    # mask bit i <=> x^i in h(x), i < 8 (the x^8 term is the register length)
    [(TM_RANDOMIZER, 0b1010_1001), (TC_RANDOMIZER, 0b0101_1111)],
)
def test_whole_period_matches_gnuradio_lfsr(randomizer: Randomizer, mask: int) -> None:
    expected = gnuradio_lfsr(mask, 0xFF, 7, 255 * 8)
    assert randomizer.sequence(255).tobytes() == expected


@pytest.mark.parametrize("exponents", [(8, 7, 5, 3, 0), (8, 6, 4, 3, 2, 1, 0)])
def test_period_is_exactly_255_bits(exponents: tuple[int, ...]) -> None:
    bits = lfsr_sequence(exponents, 3 * PERIOD_BITS)
    assert np.array_equal(bits[:PERIOD_BITS], bits[PERIOD_BITS : 2 * PERIOD_BITS])
    # no shorter period: 255 = 3·5·17, so check every proper divisor
    for d in (1, 3, 5, 15, 17, 51, 85):
        assert not np.array_equal(bits[:PERIOD_BITS], bits[d : d + PERIOD_BITS])
    # a maximal-length sequence has 128 ones and 127 zeros per period
    assert int(bits[:PERIOD_BITS].sum()) == 128


def test_octet_sequence_repeats_every_255_octets() -> None:
    seq = TM_RANDOMIZER.sequence(255 * 3)
    assert seq[:255].tobytes() == seq[255:510].tobytes() == seq[510:].tobytes()
    assert seq[:255].tobytes() != seq[1:256].tobytes()


def test_long_sequences_grow_the_cache() -> None:
    r = Randomizer("tm", (8, 7, 5, 3, 0))
    long = r.sequence(255 * 40 + 7)
    assert long.size == 255 * 40 + 7
    assert long[255 * 39 : 255 * 39 + 16].tobytes() == TM_FIRST


@given(st.binary(max_size=3000))
def test_apply_twice_is_identity(data: bytes) -> None:
    for r in (TM_RANDOMIZER, TC_RANDOMIZER):
        once = r.apply(data)
        assert len(once) == len(data)
        assert r.apply(once) == data


@given(st.binary(min_size=1, max_size=600))
def test_apply_is_xor_with_sequence(data: bytes) -> None:
    seq = TM_RANDOMIZER.sequence(len(data)).tobytes()
    assert TM_RANDOMIZER.apply(data) == bytes(a ^ b for a, b in zip(data, seq, strict=True))


def test_all_zero_codeblock_becomes_the_sequence() -> None:
    assert TM_RANDOMIZER.apply(bytes(16)) == TM_FIRST
    assert TC_RANDOMIZER.apply(bytes(10)) == TC_FIRST


def test_apply_array_restarts_for_every_row() -> None:
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, size=(5, 300), dtype=np.uint8)
    out = TM_RANDOMIZER.apply_array(blocks)
    for row_in, row_out in zip(blocks, out, strict=True):
        assert row_out.tobytes() == TM_RANDOMIZER.apply(row_in.tobytes())
    # in place
    copy = blocks.copy()
    TM_RANDOMIZER.apply_array(copy, out=copy)
    assert np.array_equal(copy, out)


def test_sequence_is_read_only() -> None:
    seq = TM_RANDOMIZER.sequence(8)
    with pytest.raises(ValueError):
        seq[0] = 0


def test_bad_polynomial_rejected() -> None:
    with pytest.raises(ValueError):
        lfsr_sequence((7, 3, 0), 10)
