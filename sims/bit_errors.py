"""Bit errors: exact independent errors and Gilbert-Elliott bursts, drawn per run, not per bit.

:class:`BitErrorProcess` draws, for a stretch of ``n`` bits with bit error rate ``p``, the number
of errors from Binomial(n, p) and their positions as a uniform random subset of the ``n`` bits
(the exact law of independent errors, at a cost proportional to the number of errors), and runs
the Gilbert-Elliott chain (:class:`linkstack.sims.channel.GilbertElliott`) by its runs
(geometric sojourn times), jumping idle gaps with the closed-form ``d``-step transition
probabilities. :func:`flip_bits` applies the positions to the bytes (bit 0 = the first bit
transmitted, the most significant bit of the first octet, CCSDS 131.0-B-2 §1.6.3).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from linkstack.sims.channel import GilbertElliott

__all__ = [
    "BitErrorProcess",
    "flip_bits",
]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.setflags(write=False)
_BLOCK = 256  # binomial draws per block (per unit size and BER)
_TWO_M53 = 2.0**-53
_FEW = 12  # error positions drawn as Python ints up to this many per call
_RUNS_AHEAD = 4096  # Gilbert-Elliott good/bad cycles sampled per extension of the path


def _randints(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` independent uniform draws from range(n) (int64, so 0 < n < 2**63), exactly
    uniform.

    Raw 64-bit words of the generator reduced modulo ``n``, the few words at or above
    the largest multiple of ``n`` redrawn (no modulo bias).  ``Generator.integers``
    does the same but costs ~10 us per call whatever ``k``; this is ~3 us.
    """
    raw = rng.bit_generator.random_raw
    limit = (1 << 64) - (1 << 64) % n
    words = raw(k)
    while True:
        bad = np.flatnonzero(words >= np.uint64(limit)) if limit < (1 << 64) else _EMPTY
        if not len(bad):
            return (words % np.uint64(n)).astype(np.int64)
        words[bad] = raw(len(bad))  # probability < n / 2**64 per word


def _few_subset(rng: np.random.Generator, n: int, k: int) -> list[int]:
    """A uniformly random k-subset of range(n), sorted, for small k (Python ints; raw
    words with the modulo-bias rejection of :func:`_randints`, duplicates redrawn)."""
    raw = rng.bit_generator.random_raw
    limit = (1 << 64) - (1 << 64) % n
    chosen: set[int] = set()
    while len(chosen) < k:
        word = raw()
        if word < limit:
            chosen.add(word % n)
    return sorted(chosen)


def _uniform_subset(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """A uniformly random k-subset of range(n), sorted (int64).

    Sparse case: draw with replacement and redraw the duplicates; the result is
    invariant under any permutation of range(n), hence uniform over k-subsets.
    """
    if k <= 0:
        return _EMPTY
    if k * 3 > n:
        return np.sort(rng.permutation(n)[:k]).astype(np.int64)
    if k <= _FEW:  # a handful of errors (the usual case): Python ints, no array work
        return np.array(_few_subset(rng, n, k), dtype=np.int64)
    picked = np.sort(_randints(rng, n, k))
    while True:
        repeated = picked[1:] == picked[:-1]
        if not repeated.any():
            return picked
        picked = picked[np.concatenate(([True], ~repeated))]
        extra = _randints(rng, n, k - len(picked))
        picked = np.sort(np.concatenate((picked, extra)))


class BitErrorProcess:
    """Bit-error process on a direction's bit clock: Gilbert–Elliott (or one state).

    Slots are bit periods of the direction.  The chain's future is kept as a sorted
    array of switch slots (``_bounds``); the state at the cursor is ``_state``.
    :meth:`positions` gives the error positions of one unit, :meth:`bulk_counts` the
    per-unit error counts of a batch; slots must not go backwards between calls.
    """

    @classmethod
    def for_channel(cls, ber: float, ge: GilbertElliott | None, runs_rng: np.random.Generator,
                    errors_rng: np.random.Generator) -> BitErrorProcess:
        """Independent errors at ``ber`` combined with an optional Gilbert–Elliott channel
        (a bit is wrong if either process flips it)."""
        if ge is None:
            return cls((ber, ber), None, runs_rng, errors_rng)
        eps = (1.0 - (1.0 - ge.ber_good) * (1.0 - ber), 1.0 - (1.0 - ge.ber_bad) * (1.0 - ber))
        return cls(eps, (ge.p_gb, ge.p_bg), runs_rng, errors_rng)

    @property
    def active(self) -> bool:
        """Whether any bit can be wrong."""
        return self._eps != (0.0, 0.0)

    def __init__(self, eps: tuple[float, float], p_leave: tuple[float, float] | None,
                 runs_rng: np.random.Generator, errors_rng: np.random.Generator) -> None:
        self._eps = eps
        self._p = p_leave
        self._runs = runs_rng
        self._rng = errors_rng
        self._state = -1
        self._bounds = _EMPTY
        self._bi = 0
        self._next = 0  # == int(self._bounds[self._bi]) once the chain has started
        self._blocks: dict[tuple[int, float], list[Any]] = {}
        self._last_key: tuple[int, float] | None = None
        self._last_block: list[Any] = [[], 0]
        if p_leave is not None:
            p_gb, p_bg = p_leave
            self._pi_bad = p_gb / (p_gb + p_bg)
            self._lambda = 1.0 - p_gb - p_bg
            self._log_stay = (math.log1p(-p_gb), math.log1p(-p_bg))  # -inf if p == 1
        self._raw = runs_rng.bit_generator.random_raw

    def _uniform(self) -> float:
        """A uniform draw in [0, 1) from one raw word of the runs stream (53 bits)."""
        return (self._raw() >> 11) * _TWO_M53

    # -- the chain -------------------------------------------------------------------

    def _restart(self, slot: int, state: int) -> None:
        assert self._p is not None
        self._state = state
        # sojourn ~ Geometric(p) on {1, 2, ...} by inversion: P(G > k) = (1 - p)**k
        self._next = slot + 1 + int(math.log1p(-self._uniform()) / self._log_stay[state])
        self._bounds = np.array([self._next], np.int64)
        self._bi = 0

    def _advance(self, slot: int) -> None:
        """Move the cursor to ``slot`` (slots only increase)."""
        if self._state < 0:
            self._restart(slot, 1 if self._uniform() < self._pi_bad else 0)
            return
        if self._next > slot:
            return
        bounds = self._bounds
        bi = self._bi
        if bounds[-1] > slot:
            j = int(np.searchsorted(bounds, slot, side="right"))
            self._state ^= (j - bi) & 1
            self._bi = j
            self._next = int(bounds[j])
            return
        # Past the sampled path: the state right after the last switch is known; draw
        # the state at `slot` from the d-step transition probabilities, then a fresh run
        # (sojourn times are memoryless).
        state_last = self._state ^ ((len(bounds) - bi) & 1)
        decay = self._lambda ** (slot - int(bounds[-1]))
        if state_last == 1:
            p_bad = self._pi_bad + (1.0 - self._pi_bad) * decay
        else:
            p_bad = self._pi_bad * (1.0 - decay)
        self._restart(slot, 1 if self._uniform() < p_bad else 0)

    def _extend(self, end: int) -> None:
        """Sample switch slots until the path covers ``[cursor, end)``."""
        assert self._p is not None
        p_gb, p_bg = self._p
        cycle = 1.0 / p_gb + 1.0 / p_bg
        while self._bounds[-1] < end:
            bounds = self._bounds[self._bi :]
            state_last = self._state ^ (len(bounds) & 1)
            # at least _RUNS_AHEAD cycles per draw: a few numpy calls per many bursts
            half = int(min(1 << 19, max(_RUNS_AHEAD,
                                        math.ceil((end - int(bounds[-1])) / cycle) + 4)))
            lengths = np.empty(2 * half, dtype=np.int64)
            lengths[0::2] = self._runs.geometric(self._p[state_last], size=half)
            lengths[1::2] = self._runs.geometric(self._p[1 - state_last], size=half)
            self._bounds = np.concatenate((bounds, int(bounds[-1]) + np.cumsum(lengths)))
            self._bi = 0

    def _edges(self, start: int, end: int) -> np.ndarray | int:
        """Runs covering ``[start, end)``: the state if one run, else their edges
        ``[start, switch, ..., switch, end]`` (run i is ``[edges[i], edges[i+1])``, in
        state ``self._state ^ (i & 1)``)."""
        if self._p is None:
            return 0
        self._advance(start)
        if self._next >= end:
            return self._state
        self._extend(end)
        bounds = self._bounds
        j = int(bounds.searchsorted(end, side="left"))
        edges = np.empty(j - self._bi + 2, dtype=np.int64)
        edges[0] = start
        edges[1:-1] = bounds[self._bi : j]
        edges[-1] = end
        return edges

    def _segments(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | int:
        """Runs covering ``[start, end)``: the state if one run, else (starts, ends, states)."""
        edges = self._edges(start, end)
        if isinstance(edges, int):
            return edges
        states = (self._state + np.arange(len(edges) - 1)) & 1
        return edges[:-1], edges[1:], states

    # -- errors ----------------------------------------------------------------------

    def _binomial(self, n: int, eps: float) -> int:
        """One Binomial(n, eps) draw, taken from a block drawn in one vectorised call
        (units of a link have few distinct sizes; this saves a numpy call per unit)."""
        key = (n, eps)
        if key == self._last_key:
            block = self._last_block
            i = block[1]
            if i < _BLOCK:
                block[1] = i + 1
                return block[0][i]
        block = self._blocks.get(key)
        if block is None or block[1] >= len(block[0]):
            if len(self._blocks) >= 256:
                self._blocks.clear()
            block = [self._rng.binomial(n, eps, size=_BLOCK).tolist(), 0]
            self._blocks[key] = block
        self._last_key = key
        self._last_block = block
        k = block[0][block[1]]
        block[1] += 1
        return k

    def positions(self, slot: int, nbits: int) -> np.ndarray:
        """Bit error positions (offsets in the unit) for a unit on slots [slot, slot+nbits)."""
        if self._p is None:
            state = 0
        else:
            if self._next <= slot or self._state < 0:
                self._advance(slot)
            state = self._state if self._next >= slot + nbits else -1
        if state >= 0:  # one state over the whole unit (nearly always): no arrays
            eps = self._eps[state]
            if eps == 0.0:
                return _EMPTY
            k = self._binomial(nbits, eps)
            return _uniform_subset(self._rng, nbits, k) if k else _EMPTY
        segments = self._segments(slot, slot + nbits)
        assert not isinstance(segments, int)
        rng = self._rng
        starts, ends, states = segments
        eps = np.asarray(self._eps)[states]
        lengths = ends - starts
        counts = rng.binomial(lengths, eps)
        found = [
            _uniform_subset(rng, int(lengths[i]), int(counts[i])) + int(starts[i] - slot)
            for i in np.flatnonzero(counts)
        ]
        return np.concatenate(found) if found else _EMPTY

    def bulk_counts(self, slot: int, count: int, nbits: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-unit error counts for ``count`` back-to-back units of ``nbits`` bits.

        Returns (unit indices, counts), sparse, indices increasing.
        """
        total = count * nbits
        edges = self._edges(slot, slot + total)
        if isinstance(edges, int):
            eps = self._eps[edges]
            if eps == 0.0:
                return _EMPTY, _EMPTY
            return self._counts(np.zeros(1, np.int64), np.array([total], np.int64), eps, nbits)
        edges -= slot
        found = []
        for state in (0, 1):
            eps = self._eps[state]
            if eps == 0.0:
                continue
            first = 0 if self._state == state else 1  # runs alternate from the cursor's
            st, en = edges[first:-1:2], edges[first + 1 :: 2]
            if len(st):
                found.append(self._counts(st, en, eps, nbits))
        if not found:
            return _EMPTY, _EMPTY
        if len(found) == 1:
            return found[0]
        units = np.concatenate([f[0] for f in found])
        hits = np.concatenate([f[1] for f in found])
        order = np.argsort(units, kind="stable")
        return _group_sorted(units[order], hits[order])

    def _counts(self, st: np.ndarray, en: np.ndarray, eps: float, nbits: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Error counts per unit for the bit runs [st, en) (sorted, disjoint) of BER ``eps``."""
        rng = self._rng
        if len(st) == 1:  # one run (a plain BER, or a long GE state): Python ints
            a, b = int(st[0]), int(en[0])
            n_bits = b - a
            if n_bits * eps * 4 < (b - 1) // nbits - a // nbits + 1:
                k = int(rng.binomial(n_bits, eps))
                if k == 0:
                    return _EMPTY, _EMPTY
                if k <= _FEW:  # a handful of errors: group them by unit in Python
                    units: list[int] = []
                    hits: list[int] = []
                    for position in _few_subset(rng, n_bits, k):
                        unit = (position + a) // nbits
                        if units and units[-1] == unit:
                            hits[-1] += 1
                        else:
                            units.append(unit)
                            hits.append(1)
                    return np.array(units, np.int64), np.array(hits, np.int64)
                return _group_sorted((_uniform_subset(rng, n_bits, k) + a) // nbits,
                                     np.ones(k, np.int64))
        lengths = en - st
        first_unit = st // nbits
        last_unit = (en - 1) // nbits
        n_pieces = len(st) + int((last_unit - first_unit).sum())
        n_bits = int(lengths.sum())
        if n_bits * eps * 4 < n_pieces:
            # sparse: fewer errors than the units they may fall in
            k = int(rng.binomial(n_bits, eps))
            if k == 0:
                return _EMPTY, _EMPTY
            position = _uniform_subset(rng, n_bits, k)
            if len(st) > 1:
                cumulative = np.cumsum(lengths)
                run = np.searchsorted(cumulative, position, side="right")
                position = st[run] + position - (cumulative[run] - lengths[run])
            else:
                position = position + int(st[0])
            return _group_sorted(position // nbits, np.ones(k, np.int64))
        # dense: the error count of every (run x unit) piece
        if n_pieces == len(st):
            units = first_unit
            piece_bits = lengths
        else:
            pieces = last_unit - first_unit + 1
            run = np.repeat(np.arange(len(st)), pieces)
            units = first_unit[run] + (
                np.arange(n_pieces) - np.repeat(np.cumsum(pieces) - pieces, pieces)
            )
            lo = np.maximum(st[run], units * nbits)
            hi = np.minimum(en[run], (units + 1) * nbits)
            piece_bits = hi - lo
        if eps == 0.5 and _bitwise_count is not None:
            k = _fair_coin_counts(rng, piece_bits)
        else:
            k = rng.binomial(piece_bits, eps)
        keep = k.nonzero()[0]
        return _group_sorted(units[keep], k[keep])


_bitwise_count = getattr(np, "bitwise_count", None)  # numpy >= 2.0
_LOW_MASKS = np.array([(1 << i) - 1 for i in range(64)], dtype=np.uint64)  # i low bits set


def _fair_coin_counts(rng: np.random.Generator, bits: np.ndarray) -> np.ndarray:
    """Binomial(bits[i], 1/2) for every i: the popcount of bits[i] random bits.

    A bad Gilbert-Elliott state with BER 1/2 (receiver out of lock) is the common case
    of the profiles; this is about five times cheaper than numpy's per-element binomial
    for short bursts.  Pieces of 64 bits or more (rare for short bursts) fall back to
    the binomial.
    """
    words = rng.bit_generator.random_raw(len(bits))  # uniform 64-bit words
    words &= _LOW_MASKS[np.minimum(bits, 63)]
    k = _bitwise_count(words).astype(np.int64)
    if bits.max() < 64:
        return k
    long_ = np.flatnonzero(bits >= 64)
    if len(long_) > 8:
        k[long_] = rng.binomial(bits[long_], 0.5)
    else:  # a few: scalar draws are cheaper than the array call's set-up
        for i in long_.tolist():
            k[i] = rng.binomial(int(bits[i]), 0.5)
    return k


def _group_sorted(units: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``hits`` over equal values of the sorted ``units``."""
    if len(units) <= 1:
        return units.astype(np.int64), hits
    new = units[1:] != units[:-1]
    if new.all():
        return units.astype(np.int64, copy=False), hits
    heads = np.flatnonzero(np.concatenate(([True], new)))
    return units[heads].astype(np.int64), np.add.reduceat(hits, heads)


def flip_bits(unit: bytes, positions: np.ndarray) -> bytes:
    """``unit`` with the bits at ``positions`` inverted (bit 0 = MSB of octet 0)."""
    buffer = np.frombuffer(unit, dtype=np.uint8).copy()
    masks = np.left_shift(1, 7 - (positions & 7)).astype(np.uint8)
    np.bitwise_xor.at(buffer, positions >> 3, masks)
    return buffer.tobytes()
