"""Virtual time for cfdp-py's timers, and the transaction clock that stops while suspended.

cfdp-py's handlers time their procedures (positive acknowledgement, NAK, check limit) with
``spacepackets.countdown.Countdown``, which reads the wall clock (``time.time``). A sans-IO
engine (specs/architecture.md principle 1) must not read a clock, and the simulator runs hours
of virtual time in seconds, so every Countdown a handler creates is *adopted*
(:meth:`VirtualCountdown.adopt`): its class is switched to :class:`VirtualCountdown`, which
reads an :class:`EntityClock` instead. Nothing in cfdp-py or spacepackets is patched; each
entity converts only the timers of its own handlers, right after the call that created them
(a handler creates and starts a timer inside the call that is given ``now``).

The :class:`EntityClock` is the time the entity's timers see: the driver's ``now`` minus the
time spent suspended. Suspending a transaction (CCSDS 727.0-B-5 §4.6.7: the timers of a
suspended transaction are suspended) is freezing this clock: a positive-ACK or NAK timer
started before loss of signal keeps its remaining time for the next pass.
"""

from __future__ import annotations

import math
from datetime import timedelta

from spacepackets.countdown import Countdown

__all__ = ["EPSILON_S", "EntityClock", "VirtualCountdown"]

EPSILON_S = 1e-9
"""A timer whose deadline is this close counts as expired (float round-off of the offset)."""


class EntityClock:
    """Seconds of virtual time, not counting the time spent suspended."""

    def __init__(self, now: float = 0.0) -> None:
        self._now = now
        self._offset = 0.0  # total time suspended so far
        self._frozen_at: float | None = None

    def tick(self, now: float) -> None:
        """The driver's current time (never goes back)."""
        if now > self._now:
            self._now = now

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def value(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at - self._offset
        return self._now - self._offset

    def freeze(self, now: float) -> None:
        self.tick(now)
        if self._frozen_at is None:
            self._frozen_at = self._now

    def thaw(self, now: float) -> None:
        self.tick(now)
        if self._frozen_at is not None:
            self._offset += self._now - self._frozen_at
            self._frozen_at = None

    def to_virtual(self, clock_s: float) -> float | None:
        """The driver time at which this clock shows ``clock_s`` (None while frozen)."""
        if self._frozen_at is not None:
            return None
        return clock_s + self._offset


class VirtualCountdown(Countdown):
    """A Countdown on an :class:`EntityClock` (seconds, float) instead of the wall clock."""

    _clock: EntityClock
    _start_s: float

    @classmethod
    def create(cls, clock: EntityClock, timeout_s: float) -> VirtualCountdown:
        cd = cls(timedelta(seconds=timeout_s))
        cd._clock = clock
        cd._start_s = clock.value()
        return cd

    @classmethod
    def adopt(cls, countdown: Countdown | None, clock: EntityClock) -> VirtualCountdown | None:
        """Make ``countdown`` (created and started just now by a handler) a virtual one; a
        countdown already adopted is returned unchanged."""
        if countdown is None or isinstance(countdown, VirtualCountdown):
            return countdown
        countdown.__class__ = cls
        assert isinstance(countdown, VirtualCountdown)
        countdown._clock = clock
        countdown._start_s = clock.value()
        return countdown

    @property
    def deadline(self) -> float:
        """Expiry on the entity clock."""
        return self._start_s + self._timeout_ms / 1000.0

    def timed_out(self) -> bool:
        return self._clock.value() >= self.deadline - EPSILON_S

    def busy(self) -> bool:
        return not self.timed_out()

    def start(self) -> None:
        self._start_s = self._clock.value()

    def time_out(self) -> None:
        self._start_s = -math.inf

    def remaining_time(self) -> timedelta:
        return timedelta(seconds=max(0.0, self.deadline - self._clock.value()))
