"""Channel models of a link direction: propagation delay, visibility (outages), bursts, reordering.

What a unit meets between transmitter and receiver, apart from bit errors
(:mod:`linkstack.sims.bit_errors`) and the transmit queue (:mod:`linkstack.sims.link`):

* :class:`Propagation` -- the one-way delay for a signal leaving at ``t``: :class:`FixedDelay`,
  a LEO pass (:class:`linkstack.sims.geometry.LeoPass`), or a constellation's range between two
  nodes (:class:`linkstack.sims.constellation.orbits.NodeDelay`);
* :class:`Visibility` -- when the receiver cannot receive: :class:`AlwaysUp`,
  :class:`DownIntervals` (explicit outages or the complement of contact windows),
  :class:`PeriodicWindows` (a pass every orbit), :class:`PointingLosses` (random losses of
  lock of a laser terminal, with reacquisition time);
* :class:`GilbertElliott` -- the two-state burst-error model's parameters;
* :class:`Reorder` -- the fraction of units that get an extra exponential delay.

All times are integer nanoseconds of virtual time (:mod:`linkstack.sims.engine`); how a
direction applies each model is in :mod:`linkstack.sims.link`'s docstring.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from linkstack.sims.engine import NS_PER_S, to_ns

__all__ = [
    "AlwaysUp",
    "DownIntervals",
    "FixedDelay",
    "GilbertElliott",
    "PeriodicWindows",
    "PointingLosses",
    "Propagation",
    "Reorder",
    "Visibility",
]

_FAR = 1 << 62
"""A time / slot index beyond any simulation ("forever"), in ns or bits."""



# --------------------------------------------------------------------------------------
# Propagation
# --------------------------------------------------------------------------------------


@runtime_checkable
class Propagation(Protocol):
    """One-way delay in ns for a signal leaving at ``t_ns`` (see :class:`FixedDelay`,
    :class:`linkstack.sims.geometry.LeoPass`)."""

    def delay_ns(self, t_ns: int) -> int: ...


class FixedDelay:
    """A constant one-way delay (e.g. ``light_time_s(isl_chord_km(...))``)."""

    __slots__ = ("fixed_ns",)

    def __init__(self, delay_s: float) -> None:
        if not (math.isfinite(delay_s) and delay_s >= 0):
            raise ValueError(f"delay must be >= 0 s, got {delay_s!r}")
        self.fixed_ns = to_ns(delay_s)

    def delay_ns(self, t_ns: int) -> int:
        return self.fixed_ns

    def delay_ns_array(self, t_ns: np.ndarray) -> np.ndarray:
        return np.full(len(t_ns), self.fixed_ns, dtype=np.int64)

    def __repr__(self) -> str:
        return f"FixedDelay({self.fixed_ns / NS_PER_S!r})"


# --------------------------------------------------------------------------------------
# Visibility (outages)
# --------------------------------------------------------------------------------------


@runtime_checkable
class Visibility(Protocol):
    """When the receiver of a direction cannot receive."""

    def down_overlapping(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        """Down intervals ``[s, e)`` (ns) that intersect ``[start_ns, end_ns)``, in order."""
        ...


class AlwaysUp:
    """No outage ever."""

    def down_overlapping(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        return []


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


_NO_RANGES = np.zeros((0, 2), dtype=np.int64)


def _ranges(spans: list[tuple[int, int]]) -> np.ndarray:
    return np.array(spans, dtype=np.int64).reshape(-1, 2) if spans else _NO_RANGES


def _mask_to_ranges(mask: np.ndarray) -> np.ndarray:
    """Runs of True in a boolean mask as [lo, hi) rows."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.column_stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))).astype(
        np.int64
    ).reshape(-1, 2)


def _in_ranges(idx: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Which of the indices ``idx`` fall in one of the disjoint sorted [lo, hi) ``ranges``."""
    if len(ranges) == 0 or len(idx) == 0:
        return np.zeros(len(idx), dtype=bool)
    row = np.searchsorted(ranges[:, 0], idx, side="right") - 1
    inside = row >= 0
    inside[inside] = idx[inside] < ranges[row[inside], 1]
    return inside


class DownIntervals:
    """An explicit list of outages ``[(start_s, end_s), ...]`` (merged if they overlap)."""

    def __init__(self, intervals: Iterable[tuple[float, float]]) -> None:
        ns = []
        for start, end in intervals:
            if not (end >= start):
                raise ValueError(f"outage ends before it starts: ({start}, {end})")
            ns.append((_time_ns(start), _time_ns(end)))
        self._set(_merge(ns))

    def _set(self, merged: list[tuple[int, int]]) -> None:
        self.intervals = merged
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]

    @classmethod
    def from_visible(cls, windows: Iterable[tuple[float, float]]) -> DownIntervals:
        """The complement of visibility windows ``[(aos_s, los_s), ...]``."""
        visible = _merge((_time_ns(a), _time_ns(b)) for a, b in windows)
        down: list[tuple[int, int]] = []
        cursor = -_FAR
        for start, end in visible:
            down.append((cursor, start))
            cursor = end
        down.append((cursor, _FAR))
        self = cls.__new__(cls)
        self._set(_merge(down))
        return self

    def down_overlapping(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        i = bisect.bisect_right(self._ends, start_ns)
        out = []
        starts = self._starts
        while i < len(starts) and starts[i] < end_ns:
            out.append(self.intervals[i])
            i += 1
        return out


def _time_ns(seconds: float) -> int:
    if seconds == math.inf:
        return _FAR
    if seconds == -math.inf:
        return -_FAR
    return to_ns(seconds)


class PeriodicWindows:
    """Visible during ``[first + k*period, first + k*period + duration)``, k = 0, 1, ...

    Down before ``first_start_s`` and between windows (e.g. the passes of
    :class:`linkstack.sims.geometry.LeoPass`).
    """

    def __init__(self, first_start_s: float, period_s: float, duration_s: float) -> None:
        if not (period_s > 0 and duration_s > 0):
            raise ValueError("period and duration must be > 0")
        self.first_ns = to_ns(first_start_s)
        self.period_ns = to_ns(period_s)
        self.duration_ns = min(to_ns(duration_s), self.period_ns)

    def windows(self, until_s: float) -> list[tuple[float, float]]:
        out = []
        k = 0
        while True:
            start = self.first_ns + k * self.period_ns
            if start >= to_ns(until_s):
                return out
            out.append((start / NS_PER_S, (start + self.duration_ns) / NS_PER_S))
            k += 1

    def down_overlapping(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        first, period, duration = self.first_ns, self.period_ns, self.duration_ns
        if start_ns < first:
            out.append((-_FAR, first))
        if duration >= period:
            return out
        k = max(0, (start_ns - first) // period - 1)
        while True:
            gap_start = first + k * period + duration
            if gap_start >= end_ns:
                return out
            gap_end = first + (k + 1) * period
            if gap_end > start_ns:
                out.append((gap_start, gap_end))
            k += 1


class PointingLosses:
    """Laser pointing losses: each loss plus the reacquisition time is an outage.

    Args:
        losses: scheduled losses ``[(start_s, duration_s), ...]``.
        reacquisition_s: time to re-establish the link after each loss ends.
        rate_per_s: rate of random losses (Poisson process), per second.
        mean_duration_s: mean of the (exponential) duration of a random loss.
        stream: name of the random stream; two directions given the same stream name
            see the same random losses (a pointing loss breaks both ways of a link).
    """

    def __init__(
        self,
        losses: Sequence[tuple[float, float]] = (),
        *,
        reacquisition_s: float = 0.0,
        rate_per_s: float = 0.0,
        mean_duration_s: float = 0.0,
        stream: str | None = None,
    ) -> None:
        if reacquisition_s < 0 or rate_per_s < 0 or mean_duration_s < 0:
            raise ValueError("reacquisition, rate and duration must be >= 0")
        if rate_per_s > 0 and mean_duration_s <= 0:
            raise ValueError("random losses need mean_duration_s > 0")
        self.reacquisition_ns = to_ns(reacquisition_s)
        self.rate_per_s = rate_per_s
        self.mean_duration_s = mean_duration_s
        self.stream = stream
        scheduled = []
        for start, duration in losses:
            if duration < 0:
                raise ValueError(f"loss duration must be >= 0: {duration}")
            scheduled.append((to_ns(start), to_ns(start + duration) + self.reacquisition_ns))
        self._scheduled = DownIntervals([])
        self._scheduled._set(_merge(scheduled))
        self._rng: np.random.Generator | None = None
        self._random: list[tuple[int, int]] = []
        self._random_ends: list[int] = []
        self._next_t = 0.0

    @property
    def needs_rng(self) -> bool:
        return self.rate_per_s > 0

    def attach_rng(self, rng: np.random.Generator) -> None:
        """Give the random losses their stream (done by the direction on first use)."""
        if self._rng is None:
            self._rng = rng

    def _generate_until(self, end_ns: int) -> None:
        if self._rng is None:
            raise RuntimeError("PointingLosses with random losses needs attach_rng()")
        while self._next_t * NS_PER_S < end_ns:
            gaps = self._rng.exponential(1.0 / self.rate_per_s, size=64)
            durations = self._rng.exponential(self.mean_duration_s, size=64)
            starts = self._next_t + np.cumsum(gaps)
            for start, duration in zip(starts.tolist(), durations.tolist(), strict=True):
                s = round(start * NS_PER_S)
                e = round((start + duration) * NS_PER_S) + self.reacquisition_ns
                if self._random and s <= self._random[-1][1]:
                    last = self._random[-1]
                    self._random[-1] = (last[0], max(last[1], e))
                    self._random_ends[-1] = self._random[-1][1]
                else:
                    self._random.append((s, e))
                    self._random_ends.append(e)
            self._next_t = float(starts[-1])

    def down_overlapping(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        found = self._scheduled.down_overlapping(start_ns, end_ns)
        if self.rate_per_s > 0:
            if self._next_t * NS_PER_S < end_ns:
                self._generate_until(end_ns)
            random = self._random
            i = bisect.bisect_right(self._random_ends, start_ns)
            if i < len(random) and random[i][0] < end_ns:
                while i < len(random) and random[i][0] < end_ns:
                    found.append(random[i])
                    i += 1
                if len(found) > 1:
                    found = _merge(found)
        return found


# --------------------------------------------------------------------------------------
# Channel models
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state burst-error channel, stepped once per bit (see module docstring).

    ``p_gb``/``p_bg``: per-bit transition probabilities good->bad and bad->good, in
    (0, 1].  Mean sojourn (burst) lengths are ``1/p_gb`` and ``1/p_bg`` bits.
    """

    p_gb: float
    p_bg: float
    ber_good: float = 0.0
    ber_bad: float = 0.5

    def __post_init__(self) -> None:
        for name in ("p_gb", "p_bg"):
            value = getattr(self, name)
            if not (0.0 < value <= 1.0):
                raise ValueError(f"{name} must be within (0, 1], got {value!r}")
        for name in ("ber_good", "ber_bad"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")

    @classmethod
    def from_mean_bits(cls, mean_good_bits: float, mean_bad_bits: float, *,
                       ber_good: float = 0.0, ber_bad: float = 0.5) -> GilbertElliott:
        """From the mean lengths of good and bad periods, in bits (each >= 1)."""
        if not (mean_good_bits >= 1 and mean_bad_bits >= 1):
            raise ValueError("mean sojourn lengths must be >= 1 bit")
        return cls(1.0 / mean_good_bits, 1.0 / mean_bad_bits, ber_good, ber_bad)

    @property
    def pi_bad(self) -> float:
        """Long-run fraction of bits in the bad state."""
        return self.p_gb / (self.p_gb + self.p_bg)

    @property
    def mean_ber(self) -> float:
        """Long-run bit error rate ``pi_good * ber_good + pi_bad * ber_bad``."""
        return (1.0 - self.pi_bad) * self.ber_good + self.pi_bad * self.ber_bad

    @property
    def mean_bad_bits(self) -> float:
        """Mean length of a bad period (burst), bits."""
        return 1.0 / self.p_bg

    @property
    def mean_good_bits(self) -> float:
        return 1.0 / self.p_gb


@dataclass(frozen=True)
class Reorder:
    """A ``fraction`` of the units get an extra delay ~ Exponential(mean ``mean_delay_s``)."""

    fraction: float
    mean_delay_s: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.fraction <= 1.0):
            raise ValueError(f"reorder fraction must be within [0, 1], got {self.fraction!r}")
        if not (self.mean_delay_s > 0 and math.isfinite(self.mean_delay_s)):
            raise ValueError(f"reorder mean delay must be > 0, got {self.mean_delay_s!r}")
