"""Coding chains: frames -> CADUs / CLTUs -> frames, through bit errors and slips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.codecs.asm import ASM_BYTES, SearchSkipped, Slip, SyncLocked, SyncLost
from linkstack.codecs.chain import (
    ChainDecoder,
    CodedUnitRejected,
    CodingChain,
    FrameDecoded,
)
from linkstack.codecs.cltu import encode_cltu
from linkstack.codecs.crc import append_fecf, compute_fecf
from linkstack.codecs.randomizer import TC_RANDOMIZER, TM_RANDOMIZER
from linkstack.errors import ConfigError, EncodeError, LinkstackError

TM_NAMES = ["tm-rs-255-223-i5", "tm-rs-255-239-i1", "tm-rs-255-223-i4-q10",
            "tm-rs-255-223-i2-conv-norand", "tm-uncoded"]
TC_NAMES = ["tc-bch", "tc-bch-rand", "tc-bch-detect"]
UNCODED_LENGTH = 223


def make_chain(name: str) -> CodingChain:
    if name.startswith("tm-uncoded"):
        return CodingChain.from_name(name, frame_length=UNCODED_LENGTH)
    return CodingChain.from_name(name)


def tc_frame(rng: np.random.Generator, length: int) -> bytes:
    """A TC frame (232.0-B-3 §4.1.2) with a consistent Frame Length field."""
    frame = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
    frame[0] &= 0x3F  # TFVN 00
    frame[2] = (frame[2] & 0xFC) | ((length - 1) >> 8)
    frame[3] = (length - 1) & 0xFF
    return bytes(frame)


def frames_for(chain: CodingChain, rng: np.random.Generator, count: int) -> list[bytes]:
    if chain.kind == "tm":
        assert chain.frame_length is not None
        return [rng.integers(0, 256, chain.frame_length, dtype=np.uint8).tobytes()
                for _ in range(count)]
    return [tc_frame(rng, int(rng.integers(5, 300))) for _ in range(count)]


def shift_bits(data: bytes, lead: int, rng: np.random.Generator) -> bytes:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    bits = np.concatenate([rng.integers(0, 2, lead, dtype=np.uint8), bits])
    return np.packbits(bits).tobytes()


def run(decoder: ChainDecoder, data: bytes, rng: np.random.Generator) -> list:
    events: list = []
    i = 0
    while i < len(data):
        n = int(rng.integers(1, 3000))
        events += decoder.feed(data[i : i + n])
        i += n
    return events + decoder.flush()


def decoded(events: list) -> list[FrameDecoded]:
    return [e for e in events if isinstance(e, FrameDecoded)]


# --------------------------------------------------------------------------------------------
# names and configuration


def test_names_and_parameters() -> None:
    c = CodingChain.from_name("tm-rs-255-223-i5")
    assert (c.kind, c.frame_length, c.codeblock_length, c.cadu_length) == ("tm", 1115, 1275,
                                                                            1279)
    assert c.randomize and c.rs is not None and c.rs.dual_basis and c.rs.e == 16
    c = CodingChain.from_name("TM-RS-255-239-I1")
    assert (c.name, c.frame_length, c.rs.e if c.rs else None) == ("tm-rs-255-239-i1", 239, 8)
    c = CodingChain.from_name("tm-rs-255-223-i4-q10")
    assert (c.frame_length, c.codeblock_length) == (4 * (223 - 10), 4 * (255 - 10))
    c = CodingChain.from_name("tm-rs-255-223-i5", randomize=False, dual_basis=False)
    assert c.name == "tm-rs-255-223-i5-conv-norand"
    c = CodingChain.from_name("tm-rs-255-223", interleave=8)
    assert c.frame_length == 1784
    c = CodingChain.from_name("tm-rs-255-223-i4", frame_length=852)  # derives Q = 10
    assert c.rs is not None and c.rs.virtual_fill == 10 and c.name == "tm-rs-255-223-i4-q10"
    c = CodingChain.from_name("tm-uncoded-norand", frame_length=100)
    assert (c.name, c.cadu_length, c.randomize) == ("tm-uncoded-norand", 104, False)
    c = CodingChain.from_name("tc-bch-rand")
    assert (c.kind, c.frame_length, c.randomize, c.name) == ("tc", None, True, "tc-bch-rand")
    assert CodingChain.from_name("tc-bch", bch_mode="detect").name == "tc-bch-detect"


@pytest.mark.parametrize(
    ("name", "overrides", "key"),
    [
        ("xx-rs-255-223", {}, "xx"),
        ("tm-rs-256-223-i5", {}, "256"),
        ("tm-rs-255-200-i5", {}, "200"),
        ("tm-rs-255-223-i7", {}, "i7"),
        ("tm-rs-255-223-i5-i4", {}, "i4"),
        ("tm-rs-255-223-i5-zz", {}, "zz"),
        ("tm-rs-255", {}, "rs"),
        ("tm-ldpc", {}, "ldpc"),
        ("tm", {}, "tm"),
        ("tc-rs", {}, "rs"),
        ("tc-bch-conv", {}, "conv"),
        ("tm-uncoded", {}, "frame_length"),
        ("tm-uncoded", {"frame_length": 0}, "frame_length"),
        ("tm-rs-255-223-i5", {"frame_length": 1001}, "frame_length"),
        ("tm-rs-255-223-i5-q10", {"frame_length": 1115}, "frame_length"),
        ("tm-rs-255-223-i5", {"interleave": 6}, "interleave"),
        ("tm-rs-255-223-i5", {"virtual_fill": 223}, "virtual_fill"),
        ("tm-rs-255-223-i5", {"bogus": 1}, "bogus"),
        ("tm-rs-255-223-i5", {"randomize": "yes"}, "randomize"),
        ("tm-rs-255-223-i5", {"flywheel": -1}, "flywheel"),
        ("tm-rs-255-223-i5", {"search_tolerance": 9}, "search_tolerance"),
        ("tm-uncoded", {"frame_length": 10, "interleave": 2}, "interleave"),
        ("tc-bch", {"bch_mode": "fix"}, "bch_mode"),
        ("tc-bch", {"start_tolerance": 9}, "start_tolerance"),
        ("tc-bch", {"frame_length": 9}, "frame_length"),
    ],
)
def test_config_errors_name_the_bad_part(name: str, overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        CodingChain.from_name(name, **overrides)
    assert info.value.key == key


def test_overhead() -> None:
    c = CodingChain.from_name("tm-rs-255-223-i5")
    assert c.overhead() == c.overhead(1115) == 4 + 5 * 32
    assert CodingChain.from_name("tm-rs-255-239-i1").overhead() == 4 + 16
    assert CodingChain.from_name("tm-uncoded", frame_length=50).overhead() == 4
    tc = CodingChain.from_name("tc-bch")
    for n in (1, 7, 8, 100, 1024):
        assert tc.overhead(n) == 2 + 8 * -(-n // 7) - n + 8
    for n in (5, 7, 8, 100, 1024):
        frame = tc_frame(np.random.default_rng(n), n)
        assert len(tc.encode_frame(frame)) == n + tc.overhead(n)
    with pytest.raises(ConfigError):
        c.overhead(1000)
    with pytest.raises(ConfigError):
        tc.overhead(None)


# --------------------------------------------------------------------------------------------
# encoder wiring against published vectors (specs/sources.md §1.15) and the randomizer


def test_tm_rs_dual_basis_vector() -> None:
    msg = bytes(range(223))
    cadu = CodingChain.from_name("tm-rs-255-223-i1-norand").encode_frame(msg)
    # libfec encode_rs_ccsds, specs/sources.md §1.15
    assert cadu == ASM_BYTES + msg + bytes.fromhex(
        "4ffb92dd557ec67f27fb8982cf58f8fd028ad117fcef6b2793d0418826578651")


@pytest.mark.parametrize(
    ("name", "msg", "parity"),
    [
        ("tm-rs-255-223-i1-conv-norand", bytes(range(223)),
         "2fbd4fb4748494b9acd554627212eeb3ebed41191de1d36320ea49290b25abcf"),
        ("tm-rs-255-239-i1-conv-norand", bytes(range(239)), "2aa9a33235aefe260e3c55be8f495000"),
        ("tm-rs-255-223-i1-q100-conv-norand", bytes(range(123)),
         "8cfde32e212e91d3206f235f290d7fc23bf806792acfffe6fa26f60aab21e67b"),
    ],
)
def test_tm_rs_conventional_vectors(name: str, msg: bytes, parity: str) -> None:
    # libfec / galois / reedsolo agree on these (specs/sources.md §1.15)
    assert CodingChain.from_name(name).encode_frame(msg) == ASM_BYTES + msg + bytes.fromhex(parity)


def test_tm_randomizer_covers_codeblock_not_asm() -> None:
    chain = CodingChain.from_name("tm-uncoded", frame_length=255)
    cadu = chain.encode_frame(bytes(255))
    assert cadu[:4] == ASM_BYTES
    assert cadu[4:] == TM_RANDOMIZER.sequence(255).tobytes()
    rs = CodingChain.from_name("tm-rs-255-223-i2")
    plain = CodingChain.from_name("tm-rs-255-223-i2-norand")
    frame = bytes(range(200)) * 2 + bytes(46)
    assert rs.encode_frame(frame)[4:] == TM_RANDOMIZER.apply(plain.encode_frame(frame)[4:])


def test_tc_randomizer_before_bch_and_fill_after() -> None:
    frame = tc_frame(np.random.default_rng(1), 40)
    cltu = CodingChain.from_name("tc-bch-rand").encode_frame(frame)
    assert cltu == encode_cltu(TC_RANDOMIZER.apply(frame))
    assert cltu == encode_cltu(frame, randomize=True)


def test_encode_errors() -> None:
    tm = CodingChain.from_name("tm-rs-255-223-i5")
    with pytest.raises(EncodeError):
        tm.encode([bytes(1115), bytes(1114)])
    assert tm.encode([]) == b""
    tc = CodingChain.from_name("tc-bch")
    bad = bytearray(tc_frame(np.random.default_rng(2), 30))
    bad[3] ^= 1
    with pytest.raises(EncodeError) as info:
        tc.encode_frame(bytes(bad))
    assert info.value.field == "frame_length"
    with pytest.raises(EncodeError):
        tc.encode_frame(b"\x00\x00\x00")
    with pytest.raises(EncodeError):
        tc.encode_frame(bytes(1025))


# --------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("name", TM_NAMES + TC_NAMES)
@settings(max_examples=8)
@given(seed=st.integers(0, 2**32 - 1), lead=st.integers(0, 40))
def test_clean_round_trip_at_any_bit_offset(name: str, seed: int, lead: int) -> None:
    rng = np.random.default_rng(seed)
    chain = make_chain(name)
    frames = frames_for(chain, rng, int(rng.integers(1, 8)))
    stream = shift_bits(chain.encode(frames), lead, rng)
    decoder = chain.decoder()
    events = run(decoder, stream, rng)
    assert [e.frame for e in decoded(events)] == frames
    assert not [e for e in events if isinstance(e, CodedUnitRejected)]
    stats = decoder.stats
    assert (stats.frames, stats.corrected_symbols, stats.failures, stats.slips) == (
        len(frames), 0, 0, 0)
    assert stats.skipped_bits == lead + (-lead % 8)


def corrupt_rs(stream: bytearray, chain: CodingChain, rng: np.random.Generator,
               errors_per_codeword: list[list[int]]) -> None:
    """Flip random bits in distinct symbols of each codeword (octet n belongs to codeword
    n mod I); errors_per_codeword[frame][j] symbols in codeword j of that frame."""
    assert chain.rs is not None and chain.cadu_length is not None
    depth = chain.rs.interleave
    per_cw = chain.rs.codeblock_length // depth
    for f, counts in enumerate(errors_per_codeword):
        base = f * chain.cadu_length + 4
        for j, count in enumerate(counts):
            symbols = rng.choice(per_cw, size=count, replace=False)
            for s in symbols:
                stream[base + s * depth + j] ^= int(rng.integers(1, 256))


@pytest.mark.parametrize("name", ["tm-rs-255-223-i5", "tm-rs-255-239-i1",
                                  "tm-rs-255-223-i4-q10", "tm-rs-255-223-i3-conv"])
@settings(max_examples=6)
@given(seed=st.integers(0, 2**32 - 1))
def test_rs_chain_corrects_within_capability(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain = make_chain(name)
    assert chain.rs is not None
    frames = frames_for(chain, rng, 6)
    stream = bytearray(chain.encode(frames))
    counts = [[int(rng.integers(0, chain.rs.e + 1)) for _ in range(chain.rs.interleave)]
              for _ in frames]
    corrupt_rs(stream, chain, rng, counts)
    # a few bit errors in the markers too (within the lock tolerance of 4)
    for f in range(len(frames)):
        stream[f * chain.cadu_length] ^= 0x01 << int(rng.integers(0, 8))
    decoder = chain.decoder()
    events = run(decoder, bytes(stream), rng)
    got = decoded(events)
    assert [e.frame for e in got] == frames
    assert [e.corrected_per_codeword for e in got] == [tuple(c) for c in counts]
    assert [e.corrected for e in got] == [sum(c) for c in counts]
    assert all(e.marker_errors == 1 for e in got)
    assert decoder.stats.corrected_symbols == sum(map(sum, counts))
    assert decoder.stats.failures == 0


@pytest.mark.parametrize("name", ["tm-rs-255-223-i5", "tm-rs-255-239-i1",
                                  "tm-rs-255-223-i4-q10"])
@settings(max_examples=6)
@given(seed=st.integers(0, 2**32 - 1))
def test_rs_chain_rejects_beyond_capability(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain = make_chain(name)
    assert chain.rs is not None
    frames = frames_for(chain, rng, 8)
    stream = bytearray(chain.encode(frames))
    depth, e = chain.rs.interleave, chain.rs.e
    bad = sorted(rng.choice(len(frames), size=3, replace=False).tolist())
    counts = []
    for f in range(len(frames)):
        row = [int(rng.integers(0, e + 1)) for _ in range(depth)]
        if f in bad:
            row[int(rng.integers(0, depth))] = int(rng.integers(e + 1, e + 9))
        counts.append(row)
    corrupt_rs(stream, chain, rng, counts)
    decoder = chain.decoder()
    events = run(decoder, bytes(stream), rng)
    rejected = [e for e in events if isinstance(e, CodedUnitRejected)]
    got = decoded(events)
    # the sync never slipped: rejected frames sit at their own CADU positions
    cadu_bits = chain.cadu_length * 8 if chain.cadu_length else 0
    assert [r.bit_offset // cadu_bits for r in rejected] == bad
    assert all(r.failed_codewords for r in rejected)
    good = [f for i, f in enumerate(frames) if i not in bad]
    assert [e.frame for e in got] == good  # nothing wrong delivered
    assert decoder.stats.failures == 3 and decoder.stats.frames == len(good)


def test_tm_chain_through_slips_and_garbage() -> None:
    rng = np.random.default_rng(21)
    chain = CodingChain.from_name("tm-rs-255-223-i5", slip_window=2, flywheel=2)
    frames = frames_for(chain, rng, 8)
    bits = np.unpackbits(np.frombuffer(chain.encode(frames), dtype=np.uint8))
    cadu_bits = 1279 * 8
    pieces = [rng.integers(0, 2, 13, dtype=np.uint8)]
    for i in range(8):
        pieces.append(bits[i * cadu_bits : (i + 1) * cadu_bits])
        if i == 2:
            pieces.append(np.array([1], dtype=np.uint8))  # one inserted bit: a slip
        if i == 5:
            pieces.append(rng.integers(0, 2, 999, dtype=np.uint8))  # garbage burst
    stream = np.packbits(np.concatenate(pieces)).tobytes()
    decoder = chain.decoder()
    events = run(decoder, stream, rng)
    assert [e.frame for e in decoded(events)] == frames
    assert [e.bits for e in events if isinstance(e, Slip)] == [1]
    assert [e.bits for e in events if isinstance(e, SearchSkipped)][:2] == [13, 999]
    assert any(isinstance(e, SyncLost) for e in events)
    assert sum(isinstance(e, SyncLocked) for e in events) == 2
    stats = decoder.stats
    assert (stats.frames, stats.slips, stats.failures, stats.sync_losses) == (8, 1, 0, 1)


def test_tm_chain_inverted_stream() -> None:
    rng = np.random.default_rng(8)
    chain = CodingChain.from_name("tm-rs-255-239-i1", detect_inverted=True)
    frames = frames_for(chain, rng, 4)
    stream = bytes(b ^ 0xFF for b in chain.encode(frames))
    got = decoded(run(chain.decoder(), stream, rng))
    assert [e.frame for e in got] == frames and all(e.inverted for e in got)


@pytest.mark.parametrize("name", ["tc-bch", "tc-bch-rand"])
@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1))
def test_tc_chain_corrects_single_bit_errors(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain = make_chain(name)
    frames = frames_for(chain, rng, 4)
    cltus = [bytearray(chain.encode_frame(f)) for f in frames]
    flips = []
    for cltu in cltus:
        n = (len(cltu) - 10) // 8
        hit = rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False)
        for k in hit:
            bit = int(rng.integers(0, 63))
            cltu[2 + 8 * k + bit // 8] ^= 0x80 >> (bit % 8)
        flips.append(len(hit))
    idle = b"\x55" * 3
    stream = shift_bits(b"".join(idle + bytes(c) for c in cltus), int(rng.integers(0, 8)), rng)
    decoder = chain.decoder()
    got = decoded(run(decoder, stream, rng))
    assert [e.frame for e in got] == frames
    assert [e.corrected for e in got] == flips
    assert decoder.stats.corrected_symbols == sum(flips)
    # in detect mode the same stream delivers only the untouched frames
    detect = CodingChain.from_name(name + "-detect").decoder()
    got = decoded(run(detect, stream, rng))
    assert [e.frame for e in got] == [f for f, n in zip(frames, flips, strict=True) if n == 0]
    # the search resumes inside a rejected CLTU, where random data may hold a false start
    # sequence: such junk CLTUs are rejected too, so failures can exceed the damaged frames
    assert detect.stats.failures >= sum(1 for n in flips if n)


def test_tc_double_error_rejects_frame_but_not_after_its_end() -> None:
    rng = np.random.default_rng(5)
    chain = CodingChain.from_name("tc-bch")
    frame = tc_frame(rng, 70)  # exactly 10 codeblocks, no fill
    cltu = bytearray(chain.encode_frame(frame))
    bad = bytearray(cltu)
    bad[2 + 8 * 4] ^= 0x11  # double error in codeblock 4: the frame is cut short
    events = run(chain.decoder(), bytes(bad), rng)
    assert decoded(events) == []
    (rej,) = [e for e in events if isinstance(e, CodedUnitRejected)]
    assert "uncorrectable" in rej.reason and rej.data == frame[:28]
    tail_hit = bytearray(cltu)
    tail_hit[-8] ^= 0x11  # the tail damaged: the frame was complete before it
    got = decoded(run(chain.decoder(), bytes(tail_hit), rng))
    assert [e.frame for e in got] == [frame]


@pytest.mark.parametrize("name", TM_NAMES + TC_NAMES)
@settings(max_examples=25)
@given(chunks=st.lists(st.binary(max_size=1500), max_size=6))
def test_fuzz_every_chain_decoder(name: str, chunks: list[bytes]) -> None:
    chain = make_chain(name)
    decoder = chain.decoder()
    events = []
    try:
        for chunk in chunks:
            events += decoder.feed(chunk)
        events += decoder.flush()
    except LinkstackError:  # allowed, though none is expected
        return
    for e in events:
        if isinstance(e, FrameDecoded) and chain.frame_length is not None:
            assert len(e.frame) == chain.frame_length


def test_fuzz_with_embedded_markers() -> None:
    # random bytes salted with ASMs and CLTU start sequences reach the decoders' inner paths
    rng = np.random.default_rng(77)
    for name in TM_NAMES + TC_NAMES:
        chain = make_chain(name)
        marker = ASM_BYTES if chain.kind == "tm" else b"\xEB\x90"
        pieces = []
        for _ in range(60):
            pieces.append(rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8)
                          .tobytes())
            pieces.append(marker)
        decoder = chain.decoder()
        run(decoder, b"".join(pieces), rng)
        assert decoder.stats.frames + decoder.stats.failures >= 0


# --------------------------------------------------------------------------------------------
# a false ASM less than one CADU before the stream; the FECF check (issue 17)


def fecf_frames(chain: CodingChain, rng: np.random.Generator, count: int) -> list[bytes]:
    """Frames that end with a correct CRC-16 FECF (the frame layer's job, not the chain's)."""
    assert chain.frame_length is not None
    return [append_fecf(rng.integers(0, 256, chain.frame_length - 2, dtype=np.uint8).tobytes())
            for _ in range(count)]


def garbage_with_asm(rng: np.random.Generator, length: int, asm_at: int) -> bytes:
    garbage = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
    garbage[asm_at : asm_at + 4] = ASM_BYTES
    return bytes(garbage)


@pytest.mark.parametrize("name", ["tm-rs-255-223-i5", "tm-rs-255-223-i1",
                                  "tm-rs-255-239-i1-fecf", "tm-rs-255-223-i4-q10",
                                  "tm-uncoded-fecf"])
@pytest.mark.parametrize("octets_before", [4, 9, 16, 60, 200])
def test_false_asm_before_the_stream_loses_no_frame(name: str, octets_before: int) -> None:
    # the false ASM starts `octets_before` octets before the real first ASM, plus 3 bits
    rng = np.random.default_rng(octets_before)
    chain = make_chain(name)
    assert chain.cadu_length is not None
    frames = fecf_frames(chain, rng, 5)
    stream = shift_bits(garbage_with_asm(rng, 40 + octets_before, 40) + chain.encode(frames), 3,
                        rng)
    decoder = chain.decoder()
    events = run(decoder, stream, rng)
    got = decoded(events)
    real = [e for e in got if e.bit_offset >= 3 + 8 * (40 + octets_before)]
    assert [e.frame for e in real] == frames
    assert [e.bit_offset for e in real] == [3 + 8 * (40 + octets_before) + 8 * chain.cadu_length
                                            * i for i in range(5)]
    lost = [e for e in events if isinstance(e, SyncLost)]
    assert [(e.bit_offset, e.reused_bits) for e in lost] == [(3 + 8 * 40 + 1,
                                                              8 * chain.cadu_length - 1)]
    assert decoder.stats.false_markers == 1
    if chain.fecf or (chain.rs is not None and chain.rs.interleave > 1):
        assert got == real  # the false frame never leaves the chain


@pytest.mark.parametrize(("name", "k"), [("tm-rs-255-223-i1", 4), ("tm-rs-255-223-i1", 5),
                                       ("tm-rs-255-223-i1", 11), ("tm-rs-255-223-i1", 16),
                                       ("tm-rs-255-239-i1", 8), ("tm-rs-255-223-i4", 20),
                                       ("tm-rs-255-223-i8", 40),
                                       ("tm-rs-255-223-i5-norand", 10)])
def test_fecf_rejects_a_slipped_false_frame(name: str, k: int) -> None:
    """The false CADU's codeblock is the real one slipped by k octets: each codeword a cyclic
    shift of a real one with about k/I symbols replaced. The code is cyclic and, for I = 1,
    2, 4, 8, each codeword's share of the randomizer sequence is a codeword too, so RS alone
    "decodes" it with k corrections. The chain's FECF check rejects it."""
    rng = np.random.default_rng(k)
    plain = CodingChain.from_name(name)
    frames = fecf_frames(plain, rng, 3)
    stream = garbage_with_asm(rng, 30 + k, 30) + plain.encode(frames)
    got = decoded(run(plain.decoder(), stream, rng))
    assert got[0].corrected == k and got[0].frame not in frames  # the hazard
    assert [e.frame for e in got[1:]] == frames

    chain = CodingChain.from_name(name + "-fecf")
    assert chain.fecf == 2
    decoder = chain.decoder()
    events = run(decoder, stream, rng)
    assert [e.frame for e in decoded(events)] == frames
    (rejected,) = [e for e in events if isinstance(e, CodedUnitRejected)]
    assert rejected.bit_offset == 30 * 8 and "FECF" in rejected.reason
    assert f"after {k} corrections" in rejected.reason
    stats = decoder.stats
    assert (stats.frames, stats.failures, stats.fecf_failures, stats.false_markers) == (
        3, 1, 1, 1)


def test_fecf_check_on_every_chain_kind() -> None:
    rng = np.random.default_rng(12)
    # TM uncoded: a frame whose FECF is wrong is rejected, the others pass
    chain = CodingChain.from_name("tm-uncoded-fecf", frame_length=60)
    frames = fecf_frames(chain, rng, 3)
    bad = bytearray(frames[1])
    bad[7] ^= 0x20
    decoder = chain.decoder()
    events = run(decoder, chain.encode([frames[0], bytes(bad), frames[2]]), rng)
    assert [e.frame for e in decoded(events)] == [frames[0], frames[2]]
    (rejected,) = [e for e in events if isinstance(e, CodedUnitRejected)]
    assert "CRC-16" in rejected.reason and decoder.stats.fecf_failures == 1
    # TM RS with the 32-bit FECF (USLP)
    chain = CodingChain.from_name("tm-rs-255-239-i2-fecf32")
    assert chain.fecf == 4 and chain.frame_length is not None
    good = append_fecf(bytes(chain.frame_length - 4), 4)
    assert decoded(run(chain.decoder(), chain.encode([good]), rng))[0].frame == good
    events = run(chain.decoder(), chain.encode([good[:-1] + b"\x01"]), rng)
    assert not decoded(events) and "CRC-32" in events[-1].reason
    # TC: the frame taken out of the CLTU by its length field
    chain = CodingChain.from_name("tc-bch-rand-fecf")
    frame = tc_frame(rng, 40)
    frame = frame[:-2] + compute_fecf(frame[:-2])
    wrong = frame[:-1] + bytes([frame[-1] ^ 1])
    decoder = chain.decoder()
    events = run(decoder, chain.encode([frame, wrong]), rng)
    assert [e.frame for e in decoded(events)] == [frame]
    assert decoder.stats.fecf_failures == decoder.stats.failures == 1
    # without the option nothing is checked
    assert len(decoded(run(CodingChain.from_name("tc-bch-rand").decoder(),
                           chain.encode([frame, wrong]), rng))) == 2


def test_fecf_names_and_errors() -> None:
    assert CodingChain.from_name("tm-rs-255-223-i5-fecf").name == "tm-rs-255-223-i5-fecf"
    c = CodingChain.from_name("tm-rs-255-223-i5-conv", fecf=True)
    assert (c.name, c.fecf) == ("tm-rs-255-223-i5-conv-fecf", 2)
    c = CodingChain.from_name("tm-rs-255-223-i5-fecf", fecf=4)
    assert (c.name, c.fecf) == ("tm-rs-255-223-i5-fecf32", 4)
    assert CodingChain.from_name("tm-rs-255-223-fecf", fecf=False).fecf == 0
    assert CodingChain.from_name("TC-BCH-FECF-RAND").name == "tc-bch-rand-fecf"
    assert CodingChain.from_name("tm-uncoded-fecf", frame_length=3).fecf == 2
    for name, overrides, key in [
        ("tm-rs-255-223-fecf-fecf32", {}, "fecf32"),
        ("tm-rs-255-223", {"fecf": 3}, "fecf"),
        ("tm-rs-255-223", {"fecf": "yes"}, "fecf"),
        ("tm-uncoded-fecf", {"frame_length": 2}, "fecf"),
        ("tm-uncoded-fecf32", {"frame_length": 4}, "fecf"),
    ]:
        with pytest.raises(ConfigError) as info:
            CodingChain.from_name(name, **overrides)
        assert info.value.key == key


# --------------------------------------------------------------------------------------------
# erasures through the chain (issue 17)


@pytest.mark.parametrize("name", ["tm-rs-255-223-i5", "tm-rs-255-239-i1-conv",
                                  "tm-rs-255-223-i2-q50"])
@pytest.mark.parametrize("lead", [0, 5])
def test_chain_decodes_erased_octets(name: str, lead: int) -> None:
    """A fade wipes a run of octets, more than E per codeword but at most 2E: marked as
    erasures they are restored; unmarked the codeblock is rejected."""
    rng = np.random.default_rng(len(name) + lead)
    chain = CodingChain.from_name(name)
    assert chain.rs is not None and chain.cadu_length is not None
    frames = frames_for(chain, rng, 4)
    depth, e = chain.rs.interleave, chain.rs.e
    clean_stream = shift_bits(chain.encode(frames), lead, rng)
    stream = bytearray(clean_stream)
    # bits shifted by `lead`: a stream octet touches two codeblock octets, so wipe fewer
    run_length = depth * (2 * e - 2)
    start = chain.cadu_length + 4 + 40  # inside the second CADU's codeblock
    stream[start : start + run_length] = bytes(run_length)
    erased = list(range(start, start + run_length))
    plain = run(chain.decoder(), bytes(stream), rng)
    assert [e.frame for e in decoded(plain)] == frames[:1] + frames[2:]
    decoder = chain.decoder()
    events: list = []
    for lo in range(0, len(stream), 1000):  # chunks; offsets relative to each chunk
        marks = [p - lo for p in erased if lo <= p < lo + 1000]
        events += decoder.feed(bytes(stream[lo : lo + 1000]), marks)
    events += decoder.flush()
    assert [e.frame for e in decoded(events)] == frames
    assert decoder.stats.erased_octets == run_length + (1 if lead else 0)
    assert decoder.stats.failures == 0


def test_chain_erasure_errors_and_uncoded() -> None:
    rng = np.random.default_rng(3)
    chain = CodingChain.from_name("tm-uncoded", frame_length=40)
    frames = frames_for(chain, rng, 2)
    decoder = chain.decoder()
    events = decoder.feed(chain.encode(frames), [44 + 10]) + decoder.flush()
    assert [e.frame for e in decoded(events)] == [frames[0]]
    (rejected,) = [e for e in events if isinstance(e, CodedUnitRejected)]
    assert "erased" in rejected.reason
    # an erased ASM octet costs nothing: the marker was found
    decoder = chain.decoder()
    assert len(decoded(decoder.feed(chain.encode(frames), [44]) + decoder.flush())) == 2
    rs_decoder = CodingChain.from_name("tm-rs-255-223-i1").decoder()
    for bad in ([5], [-1], [1.5], ["3"], np.array([[1]])):
        with pytest.raises(ConfigError) as info:
            rs_decoder.feed(b"\x00" * 5, bad)
        assert info.value.key == "erasures"
    with pytest.raises(ConfigError) as info:
        CodingChain.from_name("tc-bch").decoder().feed(b"\x00", [0])
    assert info.value.key == "erasures"
