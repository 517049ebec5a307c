"""Reed-Solomon benchmark (CCSDS 131.0-B-3 §4): linkstack.codecs.rs against reedsolo.

Prints MB/s of *information* octets (frame octets, not check symbols) on one core, measured as
process CPU time (``time.process_time``, best of several runs) so that other work on a shared
machine does not count against the codec.  The code is CCSDS RS(255,223), E=16, interleaving
depth I=5 (1115-octet frames), dual basis; the reedsolo baseline is
``reedsolo.RSCodec(nsym=32, nsize=255, fcr=112, prim=0x187, generator=0xAD, c_exp=8)`` run
codeword by codeword on the same frames in the conventional basis (reedsolo has no dual basis
and no interleaving, so the baseline does slightly less work).

Used by ``bench/codecs.py`` through :func:`run`; runnable alone: ``python bench/codecs_rs.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import reedsolo

from linkstack.codecs.rs import ReedSolomon

E = 16
INTERLEAVE = 5
BLOCKS = 400  # 446 kB of frames per linkstack run
BASELINE_BLOCKS = 4  # 20 codewords per reedsolo run (it is ~1000x slower)
ERRORS = 8


def _best_rate(fn: Callable[[], object], octets: int, budget: float = 1.5) -> float:
    """Best MB/s of ``fn`` (which handles ``octets`` information octets) within ``budget`` s."""
    fn()  # warm-up (tables, caches)
    best = float("inf")
    spent = 0.0
    runs = 0
    while spent < budget or runs < 3:
        start = time.process_time()
        fn()
        elapsed = time.process_time() - start
        spent += elapsed
        runs += 1
        if elapsed > 0:
            best = min(best, elapsed)
    return octets / best / 1e6


def _corrupt(blocks: np.ndarray, interleave: int, errors: int, rng: np.random.Generator) -> None:
    """XOR ``errors`` non-zero values at distinct random positions into every codeword."""
    m, length = blocks.shape
    ns = length // interleave
    for j in range(interleave):
        positions = np.argsort(rng.random((m, ns)), axis=1)[:, :errors] * interleave + j
        values = rng.integers(1, 256, size=(m, errors), dtype=np.uint8)
        rows = np.arange(m)[:, None]
        blocks[rows, positions] ^= values


def _error_pattern(shape: tuple[int, int], interleave: int, errors: int, seed: int) -> np.ndarray:
    pattern = np.zeros(shape, dtype=np.uint8)
    _corrupt(pattern, interleave, errors, np.random.default_rng(seed))
    return pattern


def _detection(e: int, errors_lo: int, errors_hi: int, m: int, seed: int) -> tuple[int, int]:
    """(detected, miscorrected) codewords with errors_lo..errors_hi random symbol errors."""
    rs = ReedSolomon(e=e)
    rng = np.random.default_rng(seed)
    detected = 0
    for lo in range(0, m, 20_000):
        size = min(20_000, m - lo)
        frames = rng.integers(0, 256, size=(size, rs.data_length), dtype=np.uint8)
        blocks = rs.encode_many(frames)
        counts = rng.integers(errors_lo, errors_hi + 1, size=size)
        for count in np.unique(counts):
            rows = np.flatnonzero(counts == count)
            sub = blocks[rows]
            _corrupt(sub, 1, int(count), rng)
            blocks[rows] = sub
        detected += int(rs.decode_many(blocks).failed.sum())
    return detected, m - detected


def run(report: Callable[[str, float], None], note: Callable[[str], None] = print) -> None:
    """Measure and ``report(name, MB/s)`` each ``rs ...`` line; ratios and rates go to ``note``."""
    rs = ReedSolomon(e=E, interleave=INTERLEAVE)
    conventional = ReedSolomon(e=E, interleave=INTERLEAVE, dual_basis=False)
    codec = reedsolo.RSCodec(nsym=2 * E, nsize=255, fcr=112, prim=0x187, generator=0xAD, c_exp=8)
    rng = np.random.default_rng(2024)
    frames = rng.integers(0, 256, size=(BLOCKS, rs.data_length), dtype=np.uint8)
    octets = frames.size
    base_frames = frames[:BASELINE_BLOCKS]
    base_octets = base_frames.size
    messages = [
        base_frames[i, j::INTERLEAVE].tobytes()
        for i in range(BASELINE_BLOCKS)
        for j in range(INTERLEAVE)
    ]

    blocks = rs.encode_many(frames)
    conv_blocks = conventional.encode_many(base_frames)
    pattern = _error_pattern(blocks.shape, INTERLEAVE, ERRORS, seed=7)
    noisy = blocks ^ pattern
    conv_noisy = conv_blocks ^ pattern[:BASELINE_BLOCKS]
    ns = rs.codeblock_length // INTERLEAVE

    def words(block_array: np.ndarray) -> list[bytes]:
        return [
            block_array[i, j::INTERLEAVE].tobytes()
            for i in range(block_array.shape[0])
            for j in range(INTERLEAVE)
        ]

    clean_words = words(conv_blocks)
    noisy_words = words(conv_noisy)
    assert all(len(w) == ns for w in clean_words)

    # Sanity: both decoders fix every codeword of the benchmark data.
    res = rs.decode_many(noisy)
    assert not res.failed.any() and np.array_equal(res.data, frames)
    assert (res.corrected == ERRORS).all()
    for msg, word in zip(messages, noisy_words, strict=True):
        assert bytes(codec.decode(word)[0]) == msg

    def ratio_line(name: str, ours: float, theirs: float) -> None:
        report(name, ours)
        report(f"{name} reedsolo", theirs)
        note(f"{name} speed-up: x {ours / theirs:.0f} reedsolo")

    ratio_line(
        "rs encode",
        _best_rate(lambda: rs.encode_many(frames), octets),
        _best_rate(lambda: [codec.encode(m) for m in messages], base_octets),
    )
    ratio_line(
        "rs decode clean",
        _best_rate(lambda: rs.decode_many(blocks), octets),
        _best_rate(lambda: [codec.decode(w) for w in clean_words], base_octets),
    )
    ratio_line(
        "rs decode 8 errors",
        _best_rate(lambda: rs.decode_many(noisy), octets),
        _best_rate(lambda: [codec.decode(w) for w in noisy_words], base_octets, budget=2.0),
    )
    note(
        f"rs config: E={E} I={INTERLEAVE} dual basis, {BLOCKS} codeblocks of "
        f"{rs.data_length} octets; reedsolo on {len(messages)} conventional codewords"
    )
    # Beyond capacity (E+1..2E errors): the decoder must detect, not miscorrect.  Expected
    # miscorrection rate for E+1 errors ~ C(255,E)·255^E/256^2E: ~2e-5 (E=8), ~4e-14 (E=16).
    for e, lo, hi, m in ((8, 9, 9, 200_000), (8, 9, 16, 20_000), (16, 17, 32, 10_000)):
        detected, miscorrected = _detection(e, lo, hi, m, seed=e * 100 + lo)
        span = f"{lo}" if lo == hi else f"{lo}..{hi}"
        note(
            f"rs beyond capacity E={e} ({span} errors): detected {detected}/{m} "
            f"({100 * detected / m:.4f} %), miscorrected {miscorrected}"
        )


def _print_report(name: str, mbps: float) -> None:
    print(f"{name}: {mbps:.3f} MB/s" if mbps < 10 else f"{name}: {mbps:.1f} MB/s")


if __name__ == "__main__":
    run(_print_report)
