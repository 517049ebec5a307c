"""BCH(63,56) codeblocks and CLTUs, CCSDS 231.0-B-3 §3/§4."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.codecs import bch
from linkstack.codecs.asm import SearchSkipped
from linkstack.codecs.bch import BchMode
from linkstack.codecs.cltu import (
    START_SEQUENCE,
    TAIL_SEQUENCE,
    CltuDecoded,
    CltuDecoder,
    EndReason,
    cltu_length,
    decode_cltu,
    encode_cltu,
)
from linkstack.codecs.randomizer import TC_RANDOMIZER
from linkstack.errors import (
    ConfigError,
    DecodeError,
    EncodeError,
    TruncatedError,
    UncorrectableError,
)

# specs/sources.md §1.15: yamcs BchCltuGeneratorTest (originally SpacePyLibrary), re-derived there
BCH_VECTORS = [
    ("22F600FF00421A", 0x12),
    ("8CC00E010D1906", 0x5A),
    ("301B0009008200", 0x54),
    ("10E4C155555555", 0x3E),
]

# SpacePyLibrary UnitTest/testData.py: TC_FRAME_01 (256 octets) and CLTU_01. That CLTU ends
# with the older all-0x55 tail (ESA PSS); 231.0-B-3 §4 and yamcs use C5C5C5C5C5C5C579
# (specs/sources.md §1.8), so only the start sequence and the 37 codeblocks are compared.
TC_FRAME_01 = bytes.fromhex(
    "22F600FF00421A8C C00E010D19060200 0001000000000100 0000FF000000000F"
    "0001FF000000000F 0002FF000000000F 0003FF000000000F 0004FF000000000F"
    "0005FF000000000F 0006FF000000000F 0007FF000000000F 0008FF000000000F"
    "0009FF000000000F 000AFF000000000F 000BFF000000000F 000CFF000000000F"
    "000DFF000000000F 000EFF000000000F 000FFF000000000F 0010FF000000000F"
    "0011FF000000000F 0012FF000000000F 0013FF000000000F 0014FF000000000F"
    "0015FF000000000F 0016FF000000000F 0017FF000000000F 0018FF000000000F"
    "0019FF000000000F 001AFF000000000F 001BFF000000000F 001CFF000000AD1A"
)
# rows as in the source file (8 octets each); the 8 tail octets 55..55 left out
CLTU_01_BODY = bytes.fromhex(
    "EB 90 22 F6 00 FF 00 42 "
    "1A 12 8C C0 0E 01 0D 19 "
    "06 5A 02 00 00 01 00 00 "
    "00 8A 00 01 00 00 00 FF "
    "00 CC 00 00 00 0F 00 01 "
    "FF 28 00 00 00 00 0F 00 "
    "02 5A FF 00 00 00 00 0F "
    "00 92 03 FF 00 00 00 00 "
    "0F D6 00 04 FF 00 00 00 "
    "00 D4 0F 00 05 FF 00 00 "
    "00 A8 00 0F 00 06 FF 00 "
    "00 C8 00 00 0F 00 07 FF "
    "00 CA 00 00 00 0F 00 08 "
    "FF 66 00 00 00 00 0F 00 "
    "09 A8 FF 00 00 00 00 0F "
    "00 92 0A FF 00 00 00 00 "
    "0F F4 00 0B FF 00 00 00 "
    "00 5A 0F 00 0C FF 00 00 "
    "00 B0 00 0F 00 0D FF 00 "
    "00 D8 00 00 0F 00 0E FF "
    "00 96 00 00 00 0F 00 0F "
    "FF DA 00 00 00 00 0F 00 "
    "10 82 FF 00 00 00 00 0F "
    "00 92 11 FF 00 00 00 00 "
    "0F 92 00 12 FF 00 00 00 "
    "00 2A 0F 00 13 FF 00 00 "
    "00 24 00 0F 00 14 FF 00 "
    "00 4A 00 00 0F 00 15 FF "
    "00 72 00 00 00 0F 00 16 "
    "FF 2E 00 00 00 00 0F 00 "
    "17 20 FF 00 00 00 00 0F "
    "00 92 18 FF 00 00 00 00 "
    "0F B0 00 19 FF 00 00 00 "
    "00 90 0F 00 1A FF 00 00 "
    "00 3C 00 0F 00 1B FF 00 "
    "00 F8 00 00 0F 00 1C FF "
    "00 2E 00 00 AD 1A 55 55 "
    "55 EC "
)


def test_bch_vectors() -> None:
    for info_hex, parity in BCH_VECTORS:
        info = bytes.fromhex(info_hex)
        assert bch.parity(info) == parity
        assert bch.encode_codeblock(info) == info + bytes((parity,))


def poly_parity(info: bytes) -> int:
    """Independent oracle: long division of i(x)·x^7 by g(x) = x^7+x^6+x^2+1 on a Python
    int, then complement and filler bit 0 (231.0-B-3 §3)."""
    value = int.from_bytes(info, "big") << 7
    g = 0b1100_0101
    for shift in range(55 + 7, 6, -1):
        if value >> shift & 1:
            value ^= g << (shift - 7)
    return ((~value) & 0x7F) << 1


@given(st.binary(min_size=7, max_size=7))
def test_parity_matches_long_division(info: bytes) -> None:
    assert bch.parity(info) == poly_parity(info)


def test_encode_array_matches_scalar() -> None:
    rng = np.random.default_rng(4)
    info = rng.integers(0, 256, size=(50, 7), dtype=np.uint8)
    blocks = bch.encode_array(info)
    for row, cb in zip(info, blocks, strict=True):
        assert cb.tobytes() == bch.encode_codeblock(row.tobytes())


def test_spacepylibrary_cltu_body() -> None:
    assert len(TC_FRAME_01) == 256
    ours = encode_cltu(TC_FRAME_01)
    assert ours[:2] == START_SEQUENCE
    assert ours[: len(CLTU_01_BODY)] == CLTU_01_BODY
    assert len(ours) == 2 + 37 * 8 + 8 == cltu_length(256)
    assert ours[-8:] == TAIL_SEQUENCE
    # the last codeblock: 4 frame octets, 3 fill octets 0x55
    assert ours[-16:-9] == TC_FRAME_01[-4:] + b"\x55\x55\x55"


def all_error_patterns(weight: int) -> np.ndarray:
    """Every error pattern of `weight` bits among the 63 code bits, as [n, 8] uint8."""
    combos = list(itertools.combinations(range(63), weight))
    pats = np.zeros((len(combos), 8), dtype=np.uint8)
    for row, bits in enumerate(combos):
        for b in bits:
            pats[row, b // 8] |= 0x80 >> (b % 8)
    return pats


@pytest.fixture(scope="module")
def codeblocks() -> np.ndarray:
    rng = np.random.default_rng(12)
    return bch.encode_array(rng.integers(0, 256, size=(4, 7), dtype=np.uint8))


def test_clean_codeblocks_accepted(codeblocks: np.ndarray) -> None:
    for mode in BchMode:
        res = bch.decode_array(codeblocks, mode)
        assert not res.rejected.any() and not res.corrected.any()
        assert np.array_equal(res.info, codeblocks[:, :7])


def test_every_single_error_corrected_or_detected(codeblocks: np.ndarray) -> None:
    pats = all_error_patterns(1)
    for cb in codeblocks:
        received = cb[None, :] ^ pats
        res = bch.decode_array(received, BchMode.CORRECT)
        assert not res.rejected.any()
        assert res.corrected.all()
        assert (res.info == cb[:7]).all()
        assert res.error_position.tolist() == list(range(63))
        det = bch.decode_array(received, BchMode.DETECT)
        assert det.rejected.all() and not det.corrected.any()


def test_every_double_error_rejected_in_both_modes(codeblocks: np.ndarray) -> None:
    pats = all_error_patterns(2)  # 1953 patterns: d = 4 never mistakes them for one error
    for cb in codeblocks:
        for mode in BchMode:
            assert bch.decode_array(cb[None, :] ^ pats, mode).rejected.all()


def test_every_triple_error_detected(codeblocks: np.ndarray) -> None:
    pats = all_error_patterns(3)  # 39711 patterns
    res = bch.decode_array(codeblocks[0][None, :] ^ pats, BchMode.DETECT)
    assert res.rejected.all()


def test_filler_bit_is_not_covered(codeblocks: np.ndarray) -> None:
    flipped = codeblocks.copy()
    flipped[:, 7] ^= 1
    res = bch.decode_array(flipped, BchMode.DETECT)
    assert not res.rejected.any()


def test_decode_codeblock_raises_uncorrectable() -> None:
    cb = bytearray(bch.encode_codeblock(bytes.fromhex("22F600FF00421A")))
    cb[0] ^= 0x81
    with pytest.raises(UncorrectableError) as info:
        bch.decode_codeblock(bytes(cb), offset=10)
    assert info.value.layer == "bch" and info.value.offset == 10
    with pytest.raises(UncorrectableError):
        bch.decode_codeblock(b"\x00" * 7)
    cb[0] ^= 0x01
    assert bch.decode_codeblock(bytes(cb)) == (bytes.fromhex("22F600FF00421A"), True)


def test_bch_encode_errors() -> None:
    with pytest.raises(EncodeError):
        bch.parity(b"\x00" * 6)
    with pytest.raises(EncodeError):
        bch.encode(b"")
    with pytest.raises(EncodeError):
        bch.encode_array(np.zeros((2, 8), dtype=np.uint8))


# --------------------------------------------------------------------------------------------
# tail sequence


def test_tail_is_rejected_in_both_modes_even_with_one_error() -> None:
    tail = np.frombuffer(TAIL_SEQUENCE, dtype=np.uint8)
    for mode in BchMode:
        assert bch.decode_array(tail[None, :], mode).rejected.all()
        assert bch.decode_array(tail[None, :] ^ all_error_patterns(1), mode).rejected.all()


# --------------------------------------------------------------------------------------------
# CLTU round trips


def frame_strategy() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=1, max_size=300)


@given(frame_strategy(), st.booleans())
def test_cltu_round_trip(frame: bytes, randomize: bool) -> None:
    cltu = encode_cltu(frame, randomize=randomize)
    n = -(-len(frame) // 7)
    assert len(cltu) == cltu_length(len(frame)) == 2 + 8 * n + 8
    assert cltu[:2] == START_SEQUENCE and cltu[-8:] == TAIL_SEQUENCE
    res = decode_cltu(cltu, derandomize=randomize)
    assert res.complete and res.end_reason is EndReason.TAIL
    assert res.codeblocks == n and res.corrected == 0 and res.rejected == 0
    assert res.octets == len(cltu)
    assert res.frame_data[: len(frame)] == frame
    # the fill is 0x55 and is added after randomization (specs/sources.md §1.9: yamcs makeCltu)
    fill = len(res.frame_data) - len(frame)
    raw = decode_cltu(cltu)
    assert raw.frame_data[len(frame):] == b"\x55" * fill
    if randomize:
        assert raw.frame_data[: len(frame)] == TC_RANDOMIZER.apply(frame)


@settings(max_examples=50)
@given(frame_strategy(), st.data())
def test_single_bit_errors_per_codeblock_corrected(frame: bytes, data: st.DataObject) -> None:
    cltu = bytearray(encode_cltu(frame))
    n = -(-len(frame) // 7)
    hits = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    for k in hits:
        bit = data.draw(st.integers(0, 62))
        cltu[2 + 8 * k + bit // 8] ^= 0x80 >> (bit % 8)
    res = decode_cltu(bytes(cltu), mode="correct")
    assert res.complete and res.corrected == len(hits)
    assert res.frame_data[: len(frame)] == frame
    det = decode_cltu(bytes(cltu), mode="detect")
    if hits:
        first = min(hits)
        assert det.end_reason is EndReason.UNCORRECTABLE and det.rejected == 1
        assert det.codeblocks == first
        assert det.frame_data == res.frame_data[: 7 * first]
        assert det.octets == 2 + 8 * (first + 1)
    else:
        assert det.complete


def test_double_error_ends_the_cltu_and_keeps_the_good_prefix() -> None:
    frame = bytes(range(50))
    cltu = bytearray(encode_cltu(frame))
    cltu[2 + 8 * 3] ^= 0x0C  # two bits in codeblock 3
    res = decode_cltu(bytes(cltu))
    assert not res.complete and res.rejected == 1 and res.codeblocks == 3
    assert res.frame_data == frame[:21]


def test_decode_cltu_errors() -> None:
    with pytest.raises(DecodeError) as info:
        decode_cltu(b"\xEB\x91" + b"\x00" * 16)
    assert info.value.field == "start_sequence" and info.value.offset == 0
    with pytest.raises(TruncatedError):
        decode_cltu(b"\xEB")
    cltu = encode_cltu(b"hello world")
    with pytest.raises(TruncatedError) as info:
        decode_cltu(cltu[:-8])
    assert info.value.field == "tail_sequence" and info.value.offset == len(cltu) - 8
    with pytest.raises(EncodeError):
        encode_cltu(b"")


def test_too_long_without_tail() -> None:
    cltu = encode_cltu(bytes(70))[:-8]  # 10 codeblocks, no tail
    res = decode_cltu(cltu + encode_cltu(bytes(7))[2:], max_codeblocks=10)
    assert res.end_reason is EndReason.TOO_LONG and res.codeblocks == 10 and not res.complete
    assert res.octets == 2 + 80


# --------------------------------------------------------------------------------------------
# the stream decoder


def bit_shift(data: bytes, lead_bits: int, rng: np.random.Generator) -> tuple[bytes, int]:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    lead = rng.integers(0, 2, lead_bits, dtype=np.uint8)
    allbits = np.concatenate([lead, bits])
    return np.packbits(allbits).tobytes(), allbits.size


@settings(max_examples=60)
@given(
    st.lists(frame_strategy(), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
    st.integers(0, 7),
    st.booleans(),
)
def test_stream_decoder_finds_cltus_at_any_bit_offset(
    frames: list[bytes], seed: int, shift: int, randomize: bool
) -> None:
    rng = np.random.default_rng(seed)
    idle = b"\x55" * 6  # idle sequence between CLTUs (alternating bits, no EB90 inside)
    stream = b"".join(idle + encode_cltu(f, randomize=randomize) for f in frames)
    data, _ = bit_shift(stream, shift, rng)
    dec = CltuDecoder(derandomize=randomize)
    events = []
    i = 0
    while i < len(data):
        n = int(rng.integers(1, 90))
        events += dec.feed(data[i : i + n])
        i += n
    events += dec.flush()
    got = [e for e in events if isinstance(e, CltuDecoded)]
    assert [e.result.frame_data[: len(f)] for e, f in zip(got, frames, strict=True)] == frames
    assert all(e.result.complete for e in got)
    expected_offsets = []
    pos = shift
    for f in frames:
        expected_offsets.append(pos + len(idle) * 8)
        pos += (len(idle) + cltu_length(len(f))) * 8
    assert [e.bit_offset for e in got] == expected_offsets
    skipped = sum(e.bits for e in events if isinstance(e, SearchSkipped))
    assert skipped + sum(e.result.octets * 8 for e in got) == len(data) * 8
    assert dec.stats.cltus == len(frames) == dec.stats.complete


def test_stream_decoder_inverted_and_start_errors() -> None:
    frame = bytes(range(40))
    cltu = bytearray(encode_cltu(frame))
    cltu[0] ^= 0x01  # one error in the start sequence
    inverted = bytes(b ^ 0xFF for b in b"\x55" * 4 + cltu)
    assert not [e for e in CltuDecoder(start_tolerance=1).feed(inverted)
                if isinstance(e, CltuDecoded)]
    got = [e for e in CltuDecoder(start_tolerance=1, detect_inverted=True).feed(inverted)
           if isinstance(e, CltuDecoded)]
    assert len(got) == 1 and got[0].inverted
    assert got[0].result.frame_data[:40] == frame
    assert not [e for e in CltuDecoder(detect_inverted=True).feed(inverted)
                if isinstance(e, CltuDecoded)]


def test_stream_decoder_rejected_codeblock_then_next_cltu() -> None:
    a, b = bytes(range(30)), bytes(range(100, 130))
    first = bytearray(encode_cltu(a))
    first[2 + 8 * 2] ^= 0x03  # double error in codeblock 2
    dec = CltuDecoder()
    events = dec.feed(bytes(first) + b"\x55\x55" + encode_cltu(b)) + dec.flush()
    got = [e.result for e in events if isinstance(e, CltuDecoded)]
    assert got[0].end_reason is EndReason.UNCORRECTABLE and got[0].frame_data == a[:14]
    assert got[1].complete and got[1].frame_data[:30] == b
    assert dec.stats.rejected == 1 and dec.stats.complete == 1


def test_stream_decoder_truncated_at_flush() -> None:
    cltu = encode_cltu(bytes(range(30)))
    dec = CltuDecoder()
    assert dec.feed(cltu[:-12]) == []
    (event,) = [e for e in dec.flush() if isinstance(e, CltuDecoded)]
    assert event.result.end_reason is EndReason.TRUNCATED
    assert event.result.frame_data == bytes(range(28))


def test_stream_decoder_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        CltuDecoder(mode="fix")
    assert info.value.key == "mode"
    with pytest.raises(ConfigError):
        CltuDecoder(start_tolerance=4)
    with pytest.raises(ConfigError):
        CltuDecoder(max_codeblocks=0)


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=400), max_size=8), st.sampled_from(list(BchMode)),
       st.booleans())
def test_fuzz_stream_decoder(chunks: list[bytes], mode: BchMode, inverted: bool) -> None:
    dec = CltuDecoder(mode=mode, detect_inverted=inverted, start_tolerance=1)
    events = []
    for chunk in chunks:
        events += dec.feed(chunk)
    events += dec.flush()
    assert all(isinstance(e, CltuDecoded | SearchSkipped) for e in events)
    total = sum(e.bits for e in events if isinstance(e, SearchSkipped))
    total += sum(e.result.octets * 8 for e in events if isinstance(e, CltuDecoded))
    assert total >= 8 * sum(map(len, chunks))  # rejected codeblocks are searched again


@given(st.binary(max_size=300))
def test_fuzz_decode_cltu(data: bytes) -> None:
    for candidate in (data, START_SEQUENCE + data):
        try:
            res = decode_cltu(candidate)
        except DecodeError:
            continue
        assert res.octets <= len(candidate)
