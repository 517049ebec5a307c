"""The per-frame fast paths of the codecs against their general paths, on the same inputs.

Every fast path (a locked synchronizer fed CADU by CADU, a one-CADU chain batch checked by
re-encoding, the single-codeblock Reed-Solomon parity, the ``bytes`` BCH columns, a CLTU
start sequence right where the search resumes, the integer randomizer XOR, the one-frame TM
encoder) must give exactly what the general path gives: the same events (FrameBatch arrays,
dtypes and read-only flags included), counters, exceptions and internal buffer state. Each
test runs the two paths side by side — fast paths switched off with ``_fast_paths = False``
or by setting the size thresholds to -1 — on random streams with bit errors, slips, inverted
polarity, inserted garbage and arbitrary chunking, and a few checks make sure the fast paths
are actually taken.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkstack.codecs import bch, randomizer
from linkstack.codecs.asm import FrameBatch, FrameSynchronizer
from linkstack.codecs.bch import BchMode
from linkstack.codecs.chain import ChainDecoder, CodingChain
from linkstack.codecs.cltu import CltuDecoder, decode_cltu, encode_cltu
from linkstack.codecs.crc import crc16_ccitt
from linkstack.codecs.randomizer import TC_RANDOMIZER, TM_RANDOMIZER
from linkstack.codecs.rs import ReedSolomon, _xor_gather

SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@contextlib.contextmanager
def general_batches() -> Iterator[None]:
    """Switch off the size-based fast paths (bytes BCH columns, integer randomizer XOR)."""
    saved = bch.SMALL_BATCH, randomizer._SMALL_OCTETS
    bch.SMALL_BATCH = -1
    randomizer._SMALL_OCTETS = -1
    try:
        yield
    finally:
        bch.SMALL_BATCH, randomizer._SMALL_OCTETS = saved


def norm(event: Any) -> Any:
    """An event as comparable plain data (a FrameBatch with its arrays' types and flags)."""
    if isinstance(event, FrameBatch):
        return ("FrameBatch", event.cadus.tobytes(), event.cadus.shape, event.cadus.dtype.str,
                event.cadus.flags.writeable, event.bit_offsets.tolist(),
                event.bit_offsets.dtype.str, event.marker_errors.tolist(),
                event.marker_errors.dtype.str, event.inverted, event.locked, event.flywheel)
    return repr(event)


def outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The result of a call, or its exception (type, message, fields) as data."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:  # any exception must match too
        return ("raised", type(exc).__name__, str(exc), getattr(exc, "field", None),
                getattr(exc, "offset", None))


# --------------------------------------------------------------------------------------------
# streams


@st.composite
def impairments(draw: st.DrawFn) -> dict[str, Any]:
    """How a channel damages a stream of units (each probability per unit)."""
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "errors": draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])),
        "marker_errors": draw(st.sampled_from([0.0, 0.2, 0.5])),
        "slip": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
        "invert": draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])),
        "garbage": draw(st.sampled_from([0.0, 0.0, 0.1])),
        "drop": draw(st.sampled_from([0.0, 0.0, 0.1])),
    }


def damage(units: list[bytes], how: dict[str, Any], marker_bits: int) -> list[bytes]:
    """Each unit as it arrives: bit errors (some in the marker), slips of 1-3 bits, polarity
    flips (that persist), garbage before it, or lost; returned per unit (the bits of a unit
    are padded to whole octets only at the very end, slips carry over)."""
    rng = np.random.default_rng(how["seed"])
    inverted = False
    carry = np.zeros(0, dtype=np.uint8)
    out: list[bytes] = []
    for unit in units:
        if rng.random() < how["drop"]:
            continue
        bits = np.unpackbits(np.frombuffer(unit, dtype=np.uint8))
        if rng.random() < how["marker_errors"]:
            bits[rng.integers(0, marker_bits, int(rng.integers(1, 7)))] ^= 1
        if rng.random() < how["errors"]:
            bits[rng.integers(0, bits.size, int(rng.integers(1, 40)))] ^= 1
        if rng.random() < how["slip"]:
            k = int(rng.integers(1, 4))
            bits = bits[k:] if rng.random() < 0.5 else np.concatenate(
                [rng.integers(0, 2, k, dtype=np.uint8), bits])
        if rng.random() < how["garbage"]:
            bits = np.concatenate([rng.integers(0, 2, int(rng.integers(1, 300)),
                                                dtype=np.uint8), bits])
        if rng.random() < how["invert"]:
            inverted = not inverted
        if inverted:
            bits = bits ^ 1
        bits = np.concatenate([carry, bits])
        whole = bits.size // 8 * 8
        carry = bits[whole:]
        out.append(np.packbits(bits[:whole]).tobytes())
    if carry.size:
        out.append(np.packbits(carry).tobytes())
    return out


def chunked(pieces: list[bytes], cuts: list[int], mode: str) -> list[bytes | bytearray]:
    """The stream as fed: unit by unit, as bytearrays, or split at arbitrary points."""
    if mode == "units":
        return list(pieces)
    if mode == "bytearrays":
        return [bytearray(p) for p in pieces]
    data = b"".join(pieces)
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


chunk_modes = st.sampled_from(["units", "units", "bytearrays", "split"])
cut_points = st.lists(st.integers(0, 1 << 20), max_size=12)


# --------------------------------------------------------------------------------------------
# Reed-Solomon


rs_codes = st.builds(
    ReedSolomon,
    e=st.sampled_from([8, 16]),
    interleave=st.sampled_from([1, 2, 3, 4, 5, 8]),
    virtual_fill=st.sampled_from([0, 0, 1, 100, 200]),
    dual_basis=st.booleans(),
)


@given(rs_codes, st.integers(0, 2**32 - 1))
@SLOW
def test_rs_single_codeblock_parity_is_the_batch_parity(rs: ReedSolomon, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (1, rs._ks, rs.interleave), dtype=np.uint8)
    fast = rs._parity(data)
    ref = _xor_gather(rs._parity_rows, rs._data_base, np.ascontiguousarray(data[0]),
                      rs.parity_length).view(np.uint8).reshape(1, rs.interleave, -1)
    assert fast.tobytes() == ref.tobytes()
    # the batch form (two rows) gives the same row
    two = np.concatenate([data, data[:, ::-1]])
    assert rs._parity(two)[0].tobytes() == fast[0].tobytes()
    # one codeword (depth 1), as the error decoder's re-check asks it
    one = np.ascontiguousarray(data[:, :, :1])
    assert rs._parity(one).tobytes() == _xor_gather(
        rs._parity_rows, rs._data_base, np.ascontiguousarray(one[0]), rs.parity_length
    ).view(np.uint8).tobytes()


@given(rs_codes, st.integers(0, 2**32 - 1), st.integers(0, 40))
@SLOW
def test_rs_one_codeblock_decodes_as_in_a_batch(rs: ReedSolomon, seed: int, errors: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (2, rs.data_length), dtype=np.uint8)
    blocks = rs.encode_many(data)
    one = rs.encode_many(data[:1])
    assert one.tobytes() == blocks[:1].tobytes()
    assert rs.encode(data[0].tobytes()) == blocks[0].tobytes()
    noisy = blocks.copy()
    where = rng.integers(0, rs.codeblock_length, errors)
    noisy[0, where] ^= rng.integers(1, 256, errors, dtype=np.uint8)
    single = rs.decode_many(noisy[:1])
    batch = rs.decode_many(noisy)
    assert single.data.tobytes() == batch.data[:1].tobytes()
    assert single.data.flags.writeable and single.data.flags.c_contiguous
    assert single.corrected.dtype == batch.corrected.dtype
    assert single.corrected.tolist() == batch.corrected[:1].tolist()
    assert single.failed.tolist() == batch.failed[:1].tolist()
    clean = not batch.failed[0].any() and not batch.corrected[0].any()
    assert rs._clean_one(noisy[0]) == clean
    assert rs._clean_one(blocks[1])


# --------------------------------------------------------------------------------------------
# BCH and the randomizer


@given(st.binary(max_size=7 * 40))
def test_bch_parity_octets_match_the_bitwise_parity(info: bytes) -> None:
    m = len(info) // 7
    assert list(bch.parity_octets(info)) == [bch.parity(info[7 * i : 7 * i + 7])
                                             for i in range(m)]


@given(st.integers(0, 2**32 - 1), st.integers(0, 60), st.integers(0, 80),
       st.sampled_from(list(BchMode)))
def test_bch_small_batches_decode_as_numpy(seed: int, m: int, flips: int, mode: BchMode) -> None:
    rng = np.random.default_rng(seed)
    blocks = bch.encode_array(rng.integers(0, 256, (m, 7), dtype=np.uint8))
    if m:
        rows, bits = rng.integers(0, m, flips), rng.integers(0, 64, flips)
        np.bitwise_xor.at(blocks, (rows, bits // 8), (0x80 >> (bits % 8)).astype(np.uint8))
        blocks[:, 7] ^= rng.integers(0, 2, m, dtype=np.uint8)  # filler bits (ignored)
    fast = bch.decode_array(blocks, mode)
    syndromes = bch.syndrome_octets(blocks.tobytes())
    with general_batches():
        slow = bch.decode_array(blocks, mode)
        assert bch.encode_array(blocks[:, :7]).tobytes() == bch.encode_array(
            np.ascontiguousarray(blocks[:, :7])).tobytes()
    for name in ("info", "corrected", "rejected", "error_position"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a.dtype, a.shape, a.tolist()) == (b.dtype, b.shape, b.tolist())
    reference = (bch._parity_array(np.ascontiguousarray(blocks[:, :7])) ^ blocks[:, 7]) >> 1
    assert list(syndromes) == [s << 1 for s in reference.tolist()]


@given(st.binary(max_size=1200), st.sampled_from([TM_RANDOMIZER, TC_RANDOMIZER]),
       st.booleans())
def test_bch_encode_and_randomizer_small_paths(data: bytes, rand: randomizer.Randomizer,
                                               as_bytearray: bool) -> None:
    arg: bytes | bytearray = bytearray(data) if as_bytearray else data
    fast = outcome(bch.encode, arg), rand.apply(arg)
    with general_batches():
        slow = outcome(bch.encode, arg), rand.apply(arg)
    assert fast == slow


# --------------------------------------------------------------------------------------------
# TM: synchronizer and chain


TM_CHAINS = ["tm-rs-255-239-i1", "tm-rs-255-223-i2-q150", "tm-rs-255-239-i1-norand-conv",
             "tm-rs-255-239-i1-fecf", "tm-uncoded", "tm-uncoded-norand-fecf"]


@st.composite
def tm_setups(draw: st.DrawFn) -> tuple[CodingChain, list[bytes]]:
    name = draw(st.sampled_from(TM_CHAINS))
    opts: dict[str, Any] = {}
    if draw(st.booleans()):
        opts["detect_inverted"] = True
    opts["check_count"] = draw(st.sampled_from([0, 1, 1, 2]))
    opts["flywheel"] = draw(st.sampled_from([0, 1, 2, 2]))
    opts["slip_window"] = draw(st.sampled_from([0, 1, 1, 3, 9]))
    tol = draw(st.sampled_from([(0, 0), (2, 4), (2, 4), (1, 8)]))
    opts["search_tolerance"], opts["lock_tolerance"] = tol
    if name.startswith("tm-uncoded"):
        opts["frame_length"] = draw(st.sampled_from([12, 40, 223]))
    chain = CodingChain.from_name(name, **opts)
    assert chain.frame_length is not None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = []
    for _ in range(draw(st.integers(1, 10))):
        frame = rng.integers(0, 256, chain.frame_length, dtype=np.uint8).tobytes()
        if chain.fecf and draw(st.integers(0, 3)):  # else a wrong FECF (one in four)
            frame = frame[:-2] + crc16_ccitt(frame[:-2]).to_bytes(2, "big")
        frames.append(frame)
    return chain, frames


def sync_trace(sync: FrameSynchronizer, chunks: list[bytes | bytearray]) -> list[Any]:
    trace: list[Any] = []
    for chunk in chunks:
        trace.append([norm(e) for e in sync.feed_batches(chunk)])
        trace.append((repr(sync.stats), sync.state, sync.inverted, sync._base, sync._pos,
                      sync._buf.tobytes()))
    trace.append([norm(e) for e in sync.flush_batches()])
    trace.append(repr(sync.stats))
    return trace


def chain_trace(decoder: ChainDecoder, chunks: list[bytes | bytearray],
                erasures: list[list[int] | None] | None = None) -> list[Any]:
    trace: list[Any] = []
    for i, chunk in enumerate(chunks):
        erased = erasures[i] if erasures is not None else None
        trace.append(outcome(lambda c=chunk, e=erased: [norm(x) for x in decoder.feed(c, e)]))
        trace.append(repr(decoder.stats))
    trace.append([norm(e) for e in decoder.flush()])
    trace.append(repr(decoder.stats))
    return trace


def slow_decoder(chain: CodingChain) -> ChainDecoder:
    decoder = chain.decoder()
    decoder._fast_paths = False
    if decoder._sync is not None:
        decoder._sync._fast_paths = False
    if decoder._cltu is not None:
        decoder._cltu._fast_paths = False
    return decoder


@given(tm_setups(), impairments(), chunk_modes, cut_points)
@SLOW
def test_tm_fast_paths_match_the_general_path(setup: tuple[CodingChain, list[bytes]],
                                              how: dict[str, Any], mode: str,
                                              cuts: list[int]) -> None:
    chain, frames = setup
    units = [chain.encode_frame(f) for f in frames]
    assert chain.encode(frames) == b"".join(units)  # one-frame encoder == batch encoder
    chunks = chunked(damage(units, how, 32), cuts, mode)
    assert chain_trace(chain.decoder(), chunks) == chain_trace(slow_decoder(chain), chunks)
    receiver = dict(chain.receiver)
    assert chain.cadu_length is not None
    fast = FrameSynchronizer(chain.cadu_length, **receiver)
    slow = FrameSynchronizer(chain.cadu_length, **receiver)
    slow._fast_paths = False
    assert sync_trace(fast, chunks) == sync_trace(slow, chunks)


@given(tm_setups(), impairments(), st.integers(0, 2**32 - 1))
@SLOW
def test_tm_fast_paths_with_erasures(setup: tuple[CodingChain, list[bytes]],
                                     how: dict[str, Any], seed: int) -> None:
    chain, frames = setup
    chunks = damage([chain.encode_frame(f) for f in frames], how, 32)
    rng = np.random.default_rng(seed)
    erasures: list[list[int] | None] = [
        None if rng.random() < 0.5 or not c else rng.integers(0, len(c), 3).tolist()
        for c in chunks
    ]
    assert (chain_trace(chain.decoder(), list(chunks), erasures)
            == chain_trace(slow_decoder(chain), list(chunks), erasures))


def test_the_tm_fast_paths_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = CodingChain.from_name("tm-rs-255-223-i5")
    frames = [bytes([i]) * 1115 for i in range(5)]
    taken = {"sync": 0, "chain": 0}
    feed_next, tm_one = FrameSynchronizer._feed_next_cadu, ChainDecoder._tm_one

    def count_sync(self: FrameSynchronizer, data: bytes) -> Any:
        result = feed_next(self, data)
        taken["sync"] += result is not None
        return result

    def count_chain(self: ChainDecoder, out: list[Any], item: FrameBatch) -> bool:
        result = tm_one(self, out, item)
        taken["chain"] += result
        return result

    monkeypatch.setattr(FrameSynchronizer, "_feed_next_cadu", count_sync)
    monkeypatch.setattr(ChainDecoder, "_tm_one", count_chain)
    decoder = chain.decoder()
    events = [e for f in frames for e in decoder.feed(chain.encode_frame(f))]
    assert [e.frame for e in events if hasattr(e, "frame")] == frames
    # the first CADU is acquired (SEARCH) and confirmed by the second (CHECK): then LOCK
    assert taken == {"sync": 3, "chain": 5}


# --------------------------------------------------------------------------------------------
# TC: CLTU decoder and chain


def tc_frame(rng: np.random.Generator, length: int, fecf: bool) -> bytes:
    frame = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
    frame[0] &= 0x3F
    frame[2] = (frame[2] & 0xFC) | ((length - 1) >> 8)
    frame[3] = (length - 1) & 0xFF
    if fecf:
        frame[-2:] = crc16_ccitt(bytes(frame[:-2])).to_bytes(2, "big")
    return bytes(frame)


@st.composite
def tc_setups(draw: st.DrawFn) -> tuple[CodingChain, list[bytes]]:
    name = draw(st.sampled_from(["tc-bch", "tc-bch-rand", "tc-bch-detect", "tc-bch-rand-fecf"]))
    opts: dict[str, Any] = {}
    if draw(st.booleans()):
        opts["detect_inverted"] = True
    opts["start_tolerance"] = draw(st.sampled_from([0, 0, 1, 3]))
    opts["max_codeblocks"] = draw(st.sampled_from([147, 147, 5, 30]))
    chain = CodingChain.from_name(name, **opts)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lengths = draw(st.lists(st.integers(8, 300), min_size=1, max_size=6))
    return chain, [tc_frame(rng, n, bool(chain.fecf)) for n in lengths]


def cltu_trace(decoder: CltuDecoder, chunks: list[bytes | bytearray]) -> list[Any]:
    trace: list[Any] = []
    for chunk in chunks:
        trace.append([norm(e) for e in decoder.feed(chunk)])
        trace.append((repr(decoder.stats), decoder._base, decoder._pos, decoder._buf.tobytes()))
    trace.append([norm(e) for e in decoder.flush()])
    trace.append(repr(decoder.stats))
    return trace


@given(tc_setups(), impairments(), chunk_modes, cut_points)
@SLOW
def test_tc_fast_paths_match_the_general_path(setup: tuple[CodingChain, list[bytes]],
                                              how: dict[str, Any], mode: str,
                                              cuts: list[int]) -> None:
    chain, frames = setup
    units = [chain.encode_frame(f) for f in frames]
    chunks = chunked(damage(units, how, 16), cuts, mode)
    fast = chain_trace(chain.decoder(), chunks)
    options = {"max_codeblocks": 147, **chain.receiver}
    fast_cltu = cltu_trace(CltuDecoder(mode=chain.bch_mode, derandomize=chain.randomize,
                                       **options), chunks)
    with general_batches():
        assert chain.encode(frames) == b"".join(units)
        assert [encode_cltu(f, randomize=chain.randomize) for f in frames] == units
        slow = chain_trace(slow_decoder(chain), chunks)
        reference = CltuDecoder(mode=chain.bch_mode, derandomize=chain.randomize, **options)
        reference._fast_paths = False
        slow_cltu = cltu_trace(reference, chunks)
    assert fast == slow
    assert fast_cltu == slow_cltu


@given(tc_setups(), impairments(), st.integers(0, 1 << 16), st.sampled_from(list(BchMode)))
@SLOW
def test_one_shot_cltu_decoding_matches(setup: tuple[CodingChain, list[bytes]],
                                        how: dict[str, Any], cut: int, mode: BchMode) -> None:
    chain, frames = setup
    unit = damage([chain.encode_frame(frames[0])], {**how, "slip": 0.0, "garbage": 0.0,
                                                    "drop": 0.0, "invert": 0.0}, 16)
    data = b"".join(unit)
    for piece in (data, data[: cut % (len(data) + 1)]):
        for limit in (147, 3):
            fast = outcome(decode_cltu, piece, mode=mode, derandomize=chain.randomize,
                           max_codeblocks=limit)
            with general_batches():
                slow = outcome(decode_cltu, piece, mode=mode, derandomize=chain.randomize,
                               max_codeblocks=limit)
            assert repr(fast) == repr(slow)


def test_the_cltu_fast_paths_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = CodingChain.from_name("tc-bch-rand")
    rng = np.random.default_rng(7)
    frames = [tc_frame(rng, 200, False) for _ in range(4)]
    calls = {"start": 0, "octets": 0}
    start_here = CltuDecoder._start_here
    take_octets = type(CltuDecoder()._asm).take_octets

    def count_start(self: CltuDecoder) -> Any:
        found = start_here(self)
        calls["start"] += found is not None
        return found

    def count_octets(self: Any, *args: Any) -> Any:
        calls["octets"] += 1
        return take_octets(self, *args)

    monkeypatch.setattr(CltuDecoder, "_start_here", count_start)
    monkeypatch.setattr(type(CltuDecoder()._asm), "take_octets", count_octets)
    decoder = chain.decoder()
    events = [e for f in frames for e in decoder.feed(chain.encode_frame(f))]
    assert [e.frame for e in events if hasattr(e, "frame")] == frames
    assert calls == {"start": 4, "octets": 4}


@given(st.lists(st.sampled_from(["start", "block", "fixable", "bad", "tail", "pad", "junk"]),
                max_size=60),
       st.integers(0, 2**32 - 1), st.integers(0, 3), st.booleans(), chunk_modes, cut_points)
@SLOW
def test_cltu_token_streams(tokens: list[str], seed: int, tolerance: int, inverted: bool,
                            mode: str, cuts: list[int]) -> None:
    """Streams dense in start sequences at every bit alignment (pads of 1-7 bits), with
    codeblocks, rejected codeblocks and tails: the search resumes at unaligned positions
    with start sequences near them."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    for token in tokens:
        if token == "start":
            raw = bytes.fromhex("EB90")
        elif token == "block":
            raw = bch.encode(rng.integers(0, 256, 7, dtype=np.uint8).tobytes())
        elif token == "fixable":  # one bit error: corrected
            block = bytearray(bch.encode(rng.integers(0, 256, 7, dtype=np.uint8).tobytes()))
            bit = int(rng.integers(0, 64))
            block[bit // 8] ^= 0x80 >> (bit % 8)
            raw = bytes(block)
        elif token == "bad":
            raw = bytes.fromhex("EB90EB90") + rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        elif token == "tail":
            raw = bytes.fromhex("C5C5C5C5C5C5C579")
        elif token == "junk":
            raw = rng.integers(0, 256, int(rng.integers(1, 20)), dtype=np.uint8).tobytes()
        else:
            parts.append(rng.integers(0, 2, int(rng.integers(1, 8)), dtype=np.uint8))
            continue
        parts.append(np.unpackbits(np.frombuffer(raw, dtype=np.uint8)))
    bits = np.concatenate([np.zeros(0, dtype=np.uint8), *parts])
    data = np.packbits(bits).tobytes()
    chunks = chunked([data[i : i + 37] for i in range(0, len(data), 37)], cuts, mode)
    options = {"start_tolerance": tolerance, "detect_inverted": inverted, "max_codeblocks": 4}
    fast = cltu_trace(CltuDecoder(**options), chunks)
    with general_batches():
        reference = CltuDecoder(**options)
        reference._fast_paths = False
        assert fast == cltu_trace(reference, chunks)


@given(rs_codes, st.integers(0, 2**32 - 1), st.sampled_from([1, 5, 20, 40]))
@SLOW
def test_rs_one_codeblock_with_an_erasure_mask(rs: ReedSolomon, seed: int, count: int) -> None:
    rng = np.random.default_rng(seed)
    blocks = rs.encode_many(rng.integers(0, 256, (2, rs.data_length), dtype=np.uint8))
    mask = np.zeros(blocks.shape, dtype=np.bool_)
    mask[0, rng.integers(0, rs.codeblock_length, count)] = True
    single = rs.decode_many(blocks[:1], erasures=mask[:1])
    batch = rs.decode_many(blocks, erasures=mask)
    assert single.data.tobytes() == batch.data[:1].tobytes()
    assert single.corrected.tolist() == batch.corrected[:1].tolist()
    assert single.failed.tolist() == batch.failed[:1].tolist()
    wrong_shape = outcome(rs.decode_many, blocks[:1], erasures=mask)
    assert wrong_shape[:2] == ("raised", "DecodeError") and wrong_shape[3] == "erasures"


def test_cltu_search_resuming_unaligned_next_to_a_start_sequence() -> None:
    """After a rejected codeblock the search resumes at its first bit, here bit 81; octets
    10-11 (bits 80-95) read EB90, one bit before it: that is no start sequence at 81."""
    info = bch.encode(bytes(7))
    first = bytes(info[:7]) + bytes([info[7] | 1])  # filler bit 1: still accepted
    rejected = next(
        raw for low in range(1 << 12)
        if bch.decode_array(np.frombuffer(
            raw := (0b1101011 << 57 | 0x90 << 49 | low).to_bytes(8, "big"), dtype=np.uint8
        )[None, :]).rejected[0]
    )
    bits = np.concatenate([np.zeros(1, dtype=np.uint8)] + [
        np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
        for raw in (bytes.fromhex("EB90"), first, rejected, encode_cltu(b"\x07" * 20))
    ])
    data = np.packbits(bits).tobytes()
    assert data[10:12] == bytes.fromhex("EB90")
    for chunks in ([data], [data[:12], data[12:]], [data[:20], data[20:]]):
        reference = CltuDecoder()
        reference._fast_paths = False
        trace = cltu_trace(CltuDecoder(), list(chunks))
        assert trace == cltu_trace(reference, list(chunks))
        assert "end_reason=<EndReason.UNCORRECTABLE: 'uncorrectable'>, octets=18), bit_offset=1" \
            in str(trace[0] + trace[2])


@given(st.sampled_from(["tm-rs-255-239-i1", "tm-rs-255-239-i1-fecf"]), st.integers(3, 8),
       st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 1.0]))
@SLOW
def test_tm_locked_inverted_stream_unit_by_unit(name: str, count: int, seed: int,
                                                marker_errors: float) -> None:
    """A complemented stream (BPSK phase ambiguity), locked, fed CADU by CADU with marker
    bit errors: the fast path re-inverts and counts the errors as the general path does."""
    chain = CodingChain.from_name(name, detect_inverted=True)
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, 239, dtype=np.uint8).tobytes() for _ in range(count)]
    if chain.fecf:
        frames = [f[:-2] + crc16_ccitt(f[:-2]).to_bytes(2, "big") for f in frames]
    how = {"seed": seed, "errors": 0.0, "marker_errors": marker_errors, "slip": 0.0,
           "invert": 0.0, "garbage": 0.0, "drop": 0.0}
    chunks = [bytes(0xFF ^ x for x in unit)
              for unit in damage([chain.encode_frame(f) for f in frames], how, 32)]
    fast_sync = CountingSynchronizer(chain.cadu_length or 0, detect_inverted=True)
    slow_sync = FrameSynchronizer(chain.cadu_length or 0, detect_inverted=True)
    slow_sync._fast_paths = False
    fast = sync_trace(fast_sync, list(chunks))
    assert fast == sync_trace(slow_sync, list(chunks))
    assert chain_trace(chain.decoder(), list(chunks)) == chain_trace(slow_decoder(chain),
                                                                     list(chunks))
    delivered = [e for step in fast[::2] for e in step if e[0] == "FrameBatch"]
    assert all(e[9] and e[4] for e in delivered)  # inverted, writeable copies
    if marker_errors == 0:  # acquired on the first CADU, locked on the second
        assert fast_sync.taken == count - 2


class CountingSynchronizer(FrameSynchronizer):
    """Counts the CADUs that took the fast path."""

    taken = 0

    def _feed_next_cadu(self, data: bytes) -> Any:
        result = super()._feed_next_cadu(data)
        self.taken += result is not None
        return result


@pytest.mark.parametrize("limit", [1, 3, 4, 5])
def test_cltu_too_long_with_a_corrected_codeblock_past_the_limit(limit: int) -> None:
    """The codeblock after the limit is decoded (to see whether it is the tail) but its
    correction is not counted: the CLTU ends TOO_LONG before it."""
    rng = np.random.default_rng(limit)
    blocks = [bytearray(bch.encode(rng.integers(0, 256, 7, dtype=np.uint8).tobytes()))
              for _ in range(6)]
    for block in blocks[::2]:
        block[3] ^= 0x10  # one bit error: corrected
    data = bytes.fromhex("EB90") + b"".join(blocks) + bytes.fromhex("C5C5C5C5C5C5C579")
    fast = [repr(decode_cltu(data, max_codeblocks=limit))]
    fast += cltu_trace(CltuDecoder(max_codeblocks=limit), [data, data[:30], data[30:]])
    with general_batches():
        slow = [repr(decode_cltu(data, max_codeblocks=limit))]
        reference = CltuDecoder(max_codeblocks=limit)
        reference._fast_paths = False
        slow += cltu_trace(reference, [data, data[:30], data[30:]])
    assert fast == slow
    assert f"codeblocks={limit}, corrected={(limit + 1) // 2}," in fast[0]
