"""ASM attach and the bit-level frame synchronizer (CCSDS 131.0-B-3 §8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from linkstack.codecs.asm import (
    ASM,
    ASM_BYTES,
    FrameBatch,
    FrameSynced,
    FrameSynchronizer,
    SearchSkipped,
    Slip,
    SyncLocked,
    SyncLost,
    SyncState,
    attach_asm,
    attach_asm_array,
    extract_octets,
    find_pattern,
)
from linkstack.errors import ConfigError

ASM_BITS = np.unpackbits(np.frombuffer(ASM_BYTES, dtype=np.uint8))


def test_asm_value() -> None:
    # 131.0-B-3 §8.3; gr-satellites `_syncword` '00011010110011111111110000011101'
    # (specs/sources.md §1.8)
    assert bytes.fromhex("1ACFFC1D") == ASM_BYTES
    assert "".join(map(str, ASM_BITS)) == "00011010110011111111110000011101"
    assert attach_asm(b"\x01\x02") == bytes.fromhex("1ACFFC1D0102")


def test_attach_asm_array() -> None:
    blocks = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = attach_asm_array(blocks)
    assert out.shape == (3, 8)
    for row, block in zip(out, blocks, strict=True):
        assert row.tobytes() == attach_asm(block.tobytes())


# --------------------------------------------------------------------------------------------
# bit helpers against naive bit-list versions


def naive_bits(buf: bytes) -> list[int]:
    return [int(b) for b in np.unpackbits(np.frombuffer(buf, dtype=np.uint8))]


@given(st.binary(min_size=1, max_size=64), st.data())
def test_extract_octets_matches_bit_slicing(buf: bytes, data: st.DataObject) -> None:
    bits = naive_bits(buf)
    start = data.draw(st.integers(0, len(bits) - 8))
    count = data.draw(st.integers(1, (len(bits) - start) // 8))
    expected = np.packbits(np.array(bits[start : start + 8 * count], dtype=np.uint8))
    got = extract_octets(np.frombuffer(buf, dtype=np.uint8), start, count)
    assert got.tobytes() == expected.tobytes()


def naive_find(bits: list[int], start: int, pattern: int, nbits: int, tol: int, inv: bool
               ) -> tuple[int, int, bool] | None:
    pat = [(pattern >> (nbits - 1 - i)) & 1 for i in range(nbits)]
    for p in range(start, len(bits) - nbits + 1):
        d = sum(a != b for a, b in zip(bits[p : p + nbits], pat, strict=True))
        if d <= tol:
            return p, d, False
        if inv and nbits - d <= tol:
            return p, nbits - d, True
    return None


@settings(max_examples=60)
@given(
    st.binary(min_size=0, max_size=80),
    st.integers(0, 700),
    st.sampled_from([(ASM, 32), (0xEB90, 16), (0b101, 3)]),
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, 639),
)
def test_find_pattern_matches_naive_search(
    buf: bytes, start: int, pattern: tuple[int, int], tol: int, inv: bool, plant_at: int
) -> None:
    value, nbits = pattern
    bits = naive_bits(buf)
    # plant the pattern somewhere (when it fits) so hits are common
    if plant_at + nbits <= len(bits):
        for i in range(nbits):
            bits[plant_at + i] = (value >> (nbits - 1 - i)) & 1
    data = np.packbits(np.array(bits, dtype=np.uint8)) if bits else np.zeros(0, np.uint8)
    tol = min(tol, (nbits - 1) // 2)
    expected = naive_find(bits, start, value, nbits, tol, inv)
    assert find_pattern(data, start, value, nbits, tol, detect_inverted=inv) == expected


def test_find_pattern_spans_search_chunks() -> None:
    buf = bytearray(70000)
    buf[69000:69004] = ASM_BYTES
    arr = np.frombuffer(bytes(buf), dtype=np.uint8)
    assert find_pattern(arr, 0, ASM, 32, 0) == (69000 * 8, 0, False)
    assert find_pattern(arr, 0, ASM, 32, 0, end_bit=69000 * 8) is None


# --------------------------------------------------------------------------------------------
# stream builder


@dataclass
class Built:
    stream: bytes
    total_bits: int
    offsets: list[int]  # true marker positions
    codeblocks: list[bytes]
    marker_errors: list[int]


def build(rng: np.random.Generator, n_frames: int, block_len: int, gaps: list[int],
          marker_errors: list[int], lead: int, tail: int, invert_from: int | None = None
          ) -> Built:
    """CADUs with random codeblocks; `gaps[i]` random bits after CADU i (the last CADU is
    followed by `tail`); `marker_errors[i]` distinct bit flips in marker i; bits complemented
    from CADU `invert_from` on."""
    parts: list[np.ndarray] = [rng.integers(0, 2, lead, dtype=np.uint8)]
    offsets, blocks = [], []
    pos = lead
    for i in range(n_frames):
        block = rng.integers(0, 256, block_len, dtype=np.uint8).tobytes()
        cadu = np.unpackbits(np.frombuffer(attach_asm(block), dtype=np.uint8))
        flips = rng.choice(32, size=marker_errors[i], replace=False)
        cadu[flips] ^= 1
        if invert_from is not None and i >= invert_from:
            cadu ^= 1
        offsets.append(pos)
        blocks.append(block)
        gap = gaps[i] if i < n_frames - 1 else tail
        parts += [cadu, rng.integers(0, 2, gap, dtype=np.uint8)]
        pos += cadu.size + gap
    bits = np.concatenate(parts)
    total = bits.size
    return Built(np.packbits(bits).tobytes(), total, offsets, blocks, list(marker_errors))


def false_markers(built: Built, tol: int, inverted: bool) -> bool:
    """True if some window that is not a true marker is within `tol` of the ASM (or ~ASM)."""
    bits = np.unpackbits(np.frombuffer(built.stream, dtype=np.uint8))[: built.total_bits]
    if bits.size < 32:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(bits, 32)
    dist = (windows != ASM_BITS).sum(axis=1)
    near = (dist <= tol) | ((dist >= 32 - tol) if inverted else False)
    near[built.offsets] = False
    return bool(near.any())


def feed_chunks(sync: FrameSynchronizer, stream: bytes, rng: np.random.Generator,
                max_chunk: int = 400) -> list:
    events: list = []
    i = 0
    while i < len(stream):
        n = int(rng.integers(1, max_chunk))
        events += sync.feed(stream[i : i + n])
        i += n
    return events + sync.flush()


def frames_of(events: list) -> list[FrameSynced]:
    return [e for e in events if isinstance(e, FrameSynced)]


# --------------------------------------------------------------------------------------------
# the main property: random bit offsets, garbage, marker errors, random chunks


@settings(max_examples=80, suppress_health_check=[HealthCheck.filter_too_much,
                                                  HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_frames=st.integers(1, 10),
    block_len=st.integers(30, 120),
    tol=st.integers(0, 3),
    check_count=st.integers(0, 2),
    flywheel=st.integers(0, 3),
    slip_window=st.integers(0, 3),
    inverted=st.booleans(),
    data=st.data(),
)
def test_recovers_every_cadu_at_random_bit_offsets(
    seed: int, n_frames: int, block_len: int, tol: int, check_count: int, flywheel: int,
    slip_window: int, inverted: bool, data: st.DataObject,
) -> None:
    rng = np.random.default_rng(seed)
    cadu_bits = (4 + block_len) * 8
    gap = st.one_of(st.just(0), st.integers(1, 4), st.integers(5, 200))
    gaps = data.draw(st.lists(gap, min_size=n_frames, max_size=n_frames))
    errors = data.draw(st.lists(st.integers(0, tol), min_size=n_frames, max_size=n_frames))
    lead = data.draw(st.integers(0, 300))
    # no whole CADU of garbage at the end (with the pad bits to a whole octet), else the
    # flywheel would rightly deliver it
    tail = data.draw(st.integers(0, cadu_bits - 8))
    built = build(rng, n_frames, block_len, gaps, errors, lead, tail,
                  invert_from=0 if inverted else None)
    assume(not false_markers(built, tol, inverted))

    sync = FrameSynchronizer(4 + block_len, search_tolerance=tol, lock_tolerance=tol,
                             check_count=check_count, flywheel=flywheel,
                             slip_window=slip_window, detect_inverted=inverted)
    events = feed_chunks(sync, built.stream, rng)
    frames = frames_of(events)

    assert [f.codeblock for f in frames] == built.codeblocks
    assert [f.bit_offset for f in frames] == built.offsets
    assert [f.marker_errors for f in frames] == built.marker_errors
    assert all(f.inverted == inverted for f in frames)
    assert all(f.cadu_bytes[:4] == ASM_BYTES or f.marker_errors for f in frames)
    assert not any(f.flywheel for f in frames)

    # every inserted gap is reported: a slip when within the window, else a skip. A gap
    # after a CADU that SEARCH found (the first, or one after a skip) leaves its marker
    # unconfirmed: the search resumes right after that marker, so the skip also covers the
    # rest of that CADU (cadu_bits - 1 bits, reported as re-used).
    inner = gaps[: n_frames - 1]
    slips = [e for e in events if isinstance(e, Slip)]
    skips = [e for e in events if isinstance(e, SearchSkipped)]
    assert [s.bits for s in slips] == [g for g in inner if 0 < g <= slip_window]
    searched = [i == 0 or inner[i - 1] > slip_window for i in range(len(inner))]
    resumed = [g > slip_window and s for g, s in zip(inner, searched, strict=True)]
    expected_skips = ([lead] if lead else []) + [
        g + (cadu_bits - 1 if r else 0) for g, r in zip(inner, resumed, strict=True)
        if g > slip_window]
    if tail:
        expected_skips.append(tail + (-built.total_bits % 8))  # the stream's pad bits too
    elif built.total_bits % 8:
        expected_skips.append(-built.total_bits % 8)
    assert [s.bits for s in skips] == expected_skips
    lost = [e for e in events if isinstance(e, SyncLost)]
    assert sum(e.reused_bits for e in lost) == sum(resumed) * (cadu_bits - 1)
    # and the bit accounting closes
    total = len(built.stream) * 8
    assert len(frames) * cadu_bits + sum(s.bits for s in slips) + sum(
        s.bits for s in skips) - sum(e.reused_bits for e in lost) == total
    assert sync.stats.frames == n_frames
    assert sync.stats.skipped_bits == sum(s.bits for s in skips)
    assert sync.stats.reused_bits == sum(e.reused_bits for e in lost)
    assert sync.stats.false_markers == sum(resumed)


# --------------------------------------------------------------------------------------------
# state machine, one behaviour at a time


def clean(n_frames: int, block_len: int = 40, seed: int = 1, **kw: object) -> Built:
    rng = np.random.default_rng(seed)
    defaults: dict = {"gaps": [0] * n_frames, "marker_errors": [0] * n_frames, "lead": 5,
                      "tail": 3}
    defaults.update(kw)
    return build(rng, n_frames, block_len, **defaults)


def test_state_transitions_search_check_lock() -> None:
    built = clean(6)
    cadu_bits = 44 * 8
    sync = FrameSynchronizer(44, check_count=2)
    assert sync.state is SyncState.SEARCH
    # up to the middle of the second CADU: the first one is delivered, unconfirmed
    cut = (5 + cadu_bits + cadu_bits // 2) // 8
    ev = sync.feed(built.stream[:cut])
    assert [type(e) for e in ev] == [SearchSkipped, FrameSynced]
    assert ev[0].bits == 5 and not ev[1].locked
    assert sync.state is SyncState.CHECK
    ev = sync.feed(built.stream[cut:])
    kinds = [type(e).__name__ for e in ev]
    # 2nd CADU confirms once, 3rd twice -> SyncLocked after it; later CADUs are locked
    assert kinds == ["FrameSynced", "FrameSynced", "SyncLocked", "FrameSynced", "FrameSynced",
                     "FrameSynced"]
    assert [e.locked for e in ev if isinstance(e, FrameSynced)] == [False, False, True, True,
                                                                   True]
    assert ev[2].bit_offset == built.offsets[2]
    assert sync.state is SyncState.LOCK
    assert sync.stats.locks == 1


def test_check_count_zero_locks_on_first_marker() -> None:
    built = clean(2)
    sync = FrameSynchronizer(44, check_count=0)
    ev = sync.feed(built.stream)
    assert [type(e).__name__ for e in ev] == ["SearchSkipped", "FrameSynced", "SyncLocked",
                                              "FrameSynced"]
    # SyncLocked follows the CADU whose marker completed the check (here: the first one)
    assert ev[2].bit_offset == built.offsets[0]
    assert [f.locked for f in frames_of(ev)] == [False, True]


def test_failed_check_returns_to_search() -> None:
    # the first marker is not confirmed: the search resumes right after it
    built = clean(2, gaps=[100, 0])
    sync = FrameSynchronizer(44, check_count=1, slip_window=0)
    ev = feed_chunks(sync, built.stream, np.random.default_rng(0))
    lost = [e for e in ev if isinstance(e, SyncLost)]
    assert len(lost) == 1 and not lost[0].was_locked
    assert lost[0].bit_offset == built.offsets[0] + 1
    assert lost[0].reused_bits == 44 * 8 - 1
    assert [f.codeblock for f in frames_of(ev)] == built.codeblocks
    # a later failed check (the first marker was confirmed) resumes at the predicted marker
    built = clean(4, gaps=[0, 0, 100, 0])
    sync = FrameSynchronizer(44, check_count=3, slip_window=0)
    ev = feed_chunks(sync, built.stream, np.random.default_rng(0))
    lost = [e for e in ev if isinstance(e, SyncLost)]
    assert [(e.bit_offset, e.reused_bits) for e in lost] == [(built.offsets[2] + 44 * 8, 0)]
    assert [f.codeblock for f in frames_of(ev)] == built.codeblocks


def test_lock_tolerance_above_search_tolerance() -> None:
    # marker 2 has 3 errors: too many to acquire on (search 1), fine once locked (lock 4)
    built = clean(3, marker_errors=[0, 3, 0])
    ev = FrameSynchronizer(44, search_tolerance=1, lock_tolerance=4, check_count=0).feed(
        built.stream)
    assert [f.marker_errors for f in frames_of(ev)] == [0, 3, 0]
    # a stream starting at that marker cannot be acquired there
    start = built.offsets[1] // 8
    sub = built.stream[start:]
    bit = built.offsets[1] % 8
    ev = FrameSynchronizer(44, search_tolerance=1, lock_tolerance=4).feed(sub)
    assert frames_of(ev)[0].bit_offset == built.offsets[2] - start * 8
    assert bit >= 0


def test_flywheel_rides_over_a_damaged_marker() -> None:
    built = clean(5, marker_errors=[0, 0, 12, 0, 0])
    sync = FrameSynchronizer(44, check_count=0, flywheel=1)
    ev = feed_chunks(sync, built.stream, np.random.default_rng(3))
    frames = frames_of(ev)
    assert [f.codeblock for f in frames] == built.codeblocks
    assert [f.flywheel for f in frames] == [False, False, True, False, False]
    assert frames[2].marker_errors == 12
    assert not any(isinstance(e, SyncLost) for e in ev)
    assert sync.stats.flywheel_frames == 1


def test_without_flywheel_a_damaged_marker_loses_that_frame() -> None:
    built = clean(5, marker_errors=[0, 0, 12, 0, 0])
    sync = FrameSynchronizer(44, check_count=0, flywheel=0)
    ev = sync.feed(built.stream) + sync.flush()
    frames = frames_of(ev)
    assert [f.codeblock for f in frames] == [built.codeblocks[i] for i in (0, 1, 3, 4)]
    lost = [e for e in ev if isinstance(e, SyncLost)]
    assert len(lost) == 1 and lost[0].was_locked
    skipped = [e for e in ev if isinstance(e, SearchSkipped)]
    assert skipped[1].bits == 44 * 8 and skipped[1].bit_offset == built.offsets[2]


def test_flywheel_exhausted_discards_held_frames_and_searches_again() -> None:
    # three damaged markers in a row with flywheel 2: sync is lost, the held two dropped
    built = clean(6, marker_errors=[0, 0, 12, 12, 12, 0])
    sync = FrameSynchronizer(44, check_count=0, flywheel=2)
    ev = sync.feed(built.stream) + sync.flush()
    lost = [e for e in ev if isinstance(e, SyncLost)]
    assert len(lost) == 1 and lost[0].discarded_frames == 2
    assert lost[0].bit_offset == built.offsets[2]
    frames = frames_of(ev)
    assert [f.codeblock for f in frames] == [built.codeblocks[i] for i in (0, 1, 5)]
    skipped = [e for e in ev if isinstance(e, SearchSkipped)]
    assert skipped[1].bits == 3 * 44 * 8
    assert sync.stats.discarded_frames == 2


def test_inserted_garbage_with_flywheel_loses_nothing() -> None:
    built = clean(6, gaps=[0, 77, 0, 0, 0, 0])
    sync = FrameSynchronizer(44, check_count=0, flywheel=3, slip_window=2)
    ev = feed_chunks(sync, built.stream, np.random.default_rng(5))
    frames = frames_of(ev)
    assert [f.codeblock for f in frames] == built.codeblocks
    assert [f.bit_offset for f in frames] == built.offsets
    assert not any(f.flywheel for f in frames)
    assert [e.bits for e in ev if isinstance(e, SearchSkipped)][1] == 77


def test_held_frames_at_end_of_stream() -> None:
    # the last marker is damaged: nothing follows to confirm it, flush delivers it
    built = clean(3, marker_errors=[0, 0, 12], tail=0)
    sync = FrameSynchronizer(44, check_count=0, flywheel=1)
    ev = sync.feed(built.stream)
    assert len(frames_of(ev)) == 2
    assert sync.state is SyncState.FLYWHEEL
    ev = sync.flush()
    assert [f.flywheel for f in frames_of(ev)] == [True]
    assert frames_of(ev)[0].codeblock == built.codeblocks[2]
    assert sync.state is SyncState.SEARCH


def test_deleted_bit_is_a_negative_slip() -> None:
    rng = np.random.default_rng(11)
    built = clean(4)
    bits = np.unpackbits(np.frombuffer(built.stream, dtype=np.uint8))[: built.total_bits]
    cut = built.offsets[2] - 100  # inside CADU 1
    bits = np.delete(bits, cut)
    stream = np.packbits(bits).tobytes()
    sync = FrameSynchronizer(44, check_count=0, slip_window=2)
    ev = feed_chunks(sync, stream, rng)
    slips = [e for e in ev if isinstance(e, Slip)]
    assert [(s.bits, s.bit_offset) for s in slips] == [(-1, built.offsets[2] - 1)]
    frames = frames_of(ev)
    assert len(frames) == 4
    assert [frames[i].codeblock for i in (0, 2, 3)] == [built.codeblocks[i] for i in (0, 2, 3)]
    assert frames[1].codeblock != built.codeblocks[1]  # it lost a bit: RS will tell


def test_inverted_stream_needs_detect_inverted() -> None:
    built = clean(4, invert_from=0)
    assert frames_of(FrameSynchronizer(44).feed(built.stream)) == []
    ev = FrameSynchronizer(44, detect_inverted=True).feed(built.stream)
    frames = frames_of(ev)
    assert [f.codeblock for f in frames] == built.codeblocks
    assert all(f.inverted and f.cadu_bytes[:4] == ASM_BYTES for f in frames)


def test_phase_flip_mid_stream_is_followed() -> None:
    built = clean(6, invert_from=3)
    sync = FrameSynchronizer(44, check_count=0, detect_inverted=True)
    frames = frames_of(feed_chunks(sync, built.stream, np.random.default_rng(2)))
    assert [f.codeblock for f in frames] == built.codeblocks
    assert [f.inverted for f in frames] == [False] * 3 + [True] * 3
    assert sync.stats.sync_losses == 0


def test_feed_batches_arrays() -> None:
    built = clean(8, tail=0, lead=3)
    sync = FrameSynchronizer(44)
    items = sync.feed_batches(built.stream)
    batches = [i for i in items if isinstance(i, FrameBatch)]
    assert sum(len(b) for b in batches) == 8
    big = batches[-1]
    assert big.cadus.shape[1] == 44 and big.locked
    assert not big.cadus.flags.writeable or big.cadus.base is None
    rows = np.concatenate([b.cadus for b in batches])
    assert [r[4:].tobytes() for r in rows] == built.codeblocks
    assert np.concatenate([b.bit_offsets for b in batches]).tolist() == built.offsets


def test_bit_offsets_keep_counting_across_flush() -> None:
    built = clean(2, lead=0, tail=0)
    sync = FrameSynchronizer(44)
    first = frames_of(sync.feed(built.stream) + sync.flush())
    second = frames_of(sync.feed(built.stream) + sync.flush())
    assert [f.bit_offset for f in first] == built.offsets
    assert [f.bit_offset for f in second] == [o + len(built.stream) * 8 for o in built.offsets]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"cadu_length": 4}, "cadu_length"),
        ({"search_tolerance": 5, "lock_tolerance": 4}, "search_tolerance"),
        ({"lock_tolerance": 16, "search_tolerance": 0}, "search_tolerance"),
        ({"check_count": -1}, "check_count"),
        ({"flywheel": -1}, "flywheel"),
        ({"slip_window": -1}, "slip_window"),
        ({"asm": 1 << 32}, "asm"),
    ],
)
def test_config_errors(kwargs: dict, key: str) -> None:
    args = {"cadu_length": 44, **kwargs}
    with pytest.raises(ConfigError) as info:
        FrameSynchronizer(**args)
    assert info.value.key == key


@settings(max_examples=50)
@given(
    st.lists(st.binary(max_size=700), max_size=12),
    st.integers(5, 60),
    st.integers(0, 4),
    st.integers(0, 3),
    st.booleans(),
)
def test_fuzz_random_bytes(chunks: list[bytes], cadu_length: int, tol: int, flywheel: int,
                           inverted: bool) -> None:
    sync = FrameSynchronizer(cadu_length, search_tolerance=tol, lock_tolerance=max(tol, 4),
                             flywheel=flywheel, slip_window=2, detect_inverted=inverted)
    events = []
    for chunk in chunks:
        events += sync.feed(chunk)
    events += sync.flush()
    kinds = (FrameSynced, SyncLocked, SyncLost, Slip, SearchSkipped)
    assert all(isinstance(e, kinds) for e in events)
    for f in frames_of(events):
        assert len(f.cadu_bytes) == cadu_length
    assert sync.stats.bits_in == 8 * sum(map(len, chunks))


def test_fuzz_marker_rich_stream() -> None:
    # many (partial, damaged) markers packed together stress every branch
    rng = np.random.default_rng(9)
    pieces = []
    for _ in range(400):
        r = rng.random()
        if r < 0.5:
            m = bytearray(ASM_BYTES)
            m[rng.integers(0, 4)] ^= 1 << int(rng.integers(0, 8))
            pieces.append(bytes(m))
        else:
            pieces.append(rng.integers(0, 256, int(rng.integers(0, 12)), dtype=np.uint8)
                          .tobytes())
    stream = b"".join(pieces)
    for inverted in (False, True):
        sync = FrameSynchronizer(12, flywheel=2, slip_window=3, detect_inverted=inverted)
        ev = feed_chunks(sync, stream, rng, max_chunk=50)
        assert sync.stats.frames == len(frames_of(ev))


# --------------------------------------------------------------------------------------------
# a false marker in garbage less than one CADU before the real stream (issue 17)


def with_false_marker(rng: np.random.Generator, n_frames: int, block_len: int, lead: int,
                      distance: int, false_errors: int, tail: int, inverted: bool
                      ) -> tuple[Built, int]:
    """Real CADUs after ``lead`` garbage bits, with a marker planted (``false_errors`` bit
    errors) ``distance`` bits before the first real marker; returns (stream, its position)."""
    built = build(rng, n_frames, block_len, [0] * n_frames, [0] * n_frames, lead, tail)
    bits = np.unpackbits(np.frombuffer(built.stream, dtype=np.uint8))[: built.total_bits]
    false_at = lead - distance
    marker = ASM_BITS.copy()
    marker[rng.choice(32, size=false_errors, replace=False)] ^= 1
    bits[false_at : false_at + 32] = marker
    if inverted:
        bits ^= 1
    stream = np.packbits(bits).tobytes()
    return Built(stream, built.total_bits, built.offsets, built.codeblocks,
                 built.marker_errors), false_at


def near_markers(built: Built, tol: int, inverted: bool, planted: int) -> bool:
    """Like :func:`false_markers`, the planted marker excepted."""
    bits = np.unpackbits(np.frombuffer(built.stream, dtype=np.uint8))[: built.total_bits]
    windows = np.lib.stride_tricks.sliding_window_view(bits, 32)
    dist = (windows != ASM_BITS).sum(axis=1)
    near = (dist <= tol) | (dist >= 32 - tol) if inverted else dist <= tol
    near[built.offsets] = False
    near[planted] = False
    return bool(near.any())


@pytest.mark.parametrize("check_count", [0, 1, 2])
@pytest.mark.parametrize("flywheel", [0, 2])
@pytest.mark.parametrize("distance", [32, 8 * 13, 44 * 8 - 9])
def test_false_marker_less_than_a_cadu_before_the_stream(check_count: int, flywheel: int,
                                                         distance: int) -> None:
    # Before the fix the search resumed after the whole false CADU, past the first real
    # marker: that CADU was lost in every case.
    rng = np.random.default_rng(distance)
    for _ in range(20):
        built, false_at = with_false_marker(rng, 5, 40, 500, distance, 0, 3, False)
        if not near_markers(built, 2, False, false_at):
            break
    sync = FrameSynchronizer(44, check_count=check_count, flywheel=flywheel)
    events = feed_chunks(sync, built.stream, rng)
    frames = frames_of(events)
    assert [f.bit_offset for f in frames] == [false_at, *built.offsets]
    assert [f.codeblock for f in frames[1:]] == built.codeblocks
    lost = [e for e in events if isinstance(e, SyncLost)]
    assert [(e.bit_offset, e.reused_bits) for e in lost] == [(false_at + 1, 44 * 8 - 1)]
    assert lost[0].discarded_frames == (flywheel if check_count == 0 else 0)
    assert sync.stats.false_markers == 1
    # the bits between the false marker and the real one are skipped (re-used)
    skips = [e for e in events if isinstance(e, SearchSkipped)]
    assert (skips[1].bit_offset, skips[1].bits) == (false_at + 1, distance - 1)


def test_false_marker_before_a_single_cadu_is_resolved_at_flush() -> None:
    # one real CADU: no marker follows the false one's predicted position, the stream ends
    rng = np.random.default_rng(4)
    built, false_at = with_false_marker(rng, 1, 40, 200, 100, 1, 0, False)
    assert not near_markers(built, 2, False, false_at)
    sync = FrameSynchronizer(44)
    events = sync.feed(built.stream)
    assert [f.bit_offset for f in frames_of(events)] == [false_at]
    events += sync.flush()
    assert [f.bit_offset for f in frames_of(events)] == [false_at, built.offsets[0]]
    assert frames_of(events)[1].codeblock == built.codeblocks[0]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_frames=st.integers(1, 6),
    block_len=st.integers(30, 120),
    tol=st.integers(0, 3),
    check_count=st.integers(0, 2),
    flywheel=st.integers(0, 3),
    slip_window=st.integers(0, 3),
    inverted=st.booleans(),
    data=st.data(),
)
def test_false_marker_property(seed: int, n_frames: int, block_len: int, tol: int,
                               check_count: int, flywheel: int, slip_window: int,
                               inverted: bool, data: st.DataObject) -> None:
    """Garbage of any length holding a (possibly damaged) marker at any distance less than
    one CADU before the real stream: every real CADU is delivered, once, and the only other
    CADU is the false one; the bit accounting closes."""
    rng = np.random.default_rng(seed)
    cadu_bits = (4 + block_len) * 8
    distance = data.draw(st.integers(32, cadu_bits - 1), label="distance")
    lead = distance + data.draw(st.integers(0, 300), label="garbage before the false marker")
    tail = data.draw(st.integers(0, cadu_bits - 8), label="tail")
    errors = data.draw(st.integers(0, tol), label="false marker errors")
    built, false_at = with_false_marker(rng, n_frames, block_len, lead, distance, errors, tail,
                                        inverted)
    assume(not near_markers(built, tol, inverted, false_at))

    sync = FrameSynchronizer(4 + block_len, search_tolerance=tol, lock_tolerance=tol,
                             check_count=check_count, flywheel=flywheel,
                             slip_window=slip_window, detect_inverted=inverted)
    events = feed_chunks(sync, built.stream, rng)
    frames = frames_of(events)
    assert [f.bit_offset for f in frames] == [false_at, *built.offsets]
    assert [f.codeblock for f in frames[1:]] == built.codeblocks
    assert all(f.inverted == inverted for f in frames)
    slips = [e for e in events if isinstance(e, Slip)]
    skips = [e for e in events if isinstance(e, SearchSkipped)]
    lost = [e for e in events if isinstance(e, SyncLost)]
    if distance > cadu_bits - 1 - slip_window:
        # the real marker is within the slip window of the false one's prediction
        assert [s.bits for s in slips] == [distance - cadu_bits] and not lost
    else:
        assert not slips
        assert [(e.bit_offset, e.reused_bits) for e in lost] == [(false_at + 1,
                                                                  cadu_bits - 1)]
    total = len(built.stream) * 8
    assert len(frames) * cadu_bits + sum(s.bits for s in slips) + sum(
        s.bits for s in skips) - sum(e.reused_bits for e in lost) == total
