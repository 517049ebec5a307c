"""Link simulator: full-duplex links made of two independent directions.

A :class:`Direction` carries opaque ``bytes`` units (transfer frames, CADUs, CLTUs)
from one node to another and tells the receiver when each unit's last bit arrives.
All times are integer nanoseconds of virtual time (:mod:`linkstack.sims.engine`).

Timing of one unit (FIFO transmit queue, one transmitter of rate ``R`` bit/s)::

    t_enqueued   send() is called
    t_tx_start = max(t_enqueued, t_tx_end of the previous unit)   (or later, see capacity)
    t_tx_end   = t_tx_start + serialization,  serialization = ceil(8 * octets * 1e9 / R) ns
    t_arrival  = t_tx_end + propagation(t_tx_start) + reorder_extra

so ``t_arrival - t_enqueued == queueing + serialization + propagation + reorder``
exactly (``queueing = t_tx_start - t_enqueued``).  ``R`` is taken as the exact
binary value of the float given, and the serialization time is rounded *up* to the
nanosecond, so back-to-back units never overlap on the bit clock.

Channel (all draws from the simulation's seeded streams, one stream per process):

* **Bit errors** flip bits of the bytes actually sent (bit 0 = the first bit
  transmitted = most significant bit of the first octet, the bit numbering of
  CCSDS 131.0-B-2 §1.6.3).  For a stretch of ``n`` bits with bit
  error rate ``p`` the number of errors is drawn from Binomial(n, p) and their
  positions as a uniform random subset of the ``n`` bits -- the exact law of
  independent bit errors, at a cost proportional to the number of errors, never a
  per-bit Python loop (single units take their counts from blocks of binomial draws
  made in one vectorised call per unit size).
* **Gilbert–Elliott** two-state burst model, *per bit*: a Markov chain with states
  good/bad steps once per bit period ``1/R`` of the direction's bit clock, moving
  good->bad with probability ``p_gb`` and bad->good with ``p_bg``; each state has its
  own BER.  The bit clock runs on while the transmitter is idle (idle time is
  counted in whole bit periods), so bursts and fades are events in time, as
  pointing-jitter fades are.  The chain is sampled by its runs (geometric sojourn
  times), and jumped across idle gaps with the closed-form ``d``-step transition
  probabilities, so the cost is per run, not per bit.  A plain ``ber`` is applied
  on top (a bit is in error if either process hits it).
* **Frame erasures**: each unit is lost with probability ``erasure``.
* **Outages** (:class:`Visibility`): a unit is lost if any part of its *reception*
  ``[t_arrival - serialization, t_arrival)`` falls in a down interval: contact
  windows of an RF pass, pointing losses plus reacquisition time of a laser.
* **Reordering**: a fraction of the units get an extra exponential delay.
* **Duplication**: each unit that arrives is received a second time with probability
  ``duplicate`` (a relay or a ground-station network forwarding a frame twice).  The
  copy's reception starts when the original's ends, plus an extra exponential delay of
  mean ``duplicate_delay_s`` (0: right behind it), so
  ``t_copy = t_arrival + serialization + extra``.  The copy is a :class:`Delivery` of
  its own (``duplicate=True``; same bytes, bit errors, ``meta`` and ``seq`` as the
  original; its extra delay is booked as ``reorder_ns`` so that its components still
  sum to ``t_arrival - t_enqueued``), recorded by the tap like any unit, and lost if
  its own reception falls in an outage.  A lost unit has no copy.  Bulk batches carry
  no per-unit records, so a direction with duplication refuses them.

Lost units are never silent: each is recorded by the direction's
:class:`~linkstack.sims.taps.Tap` with its reason, and (by default) handed to the
receiver as a :class:`Delivery` with ``erased=True``, empty ``unit`` and ``loss``
set, at the time it would have arrived.  A unit refused by a full queue (``drop``
policy) never left the sender: it is recorded as ``queue_full`` and reported in
the sender's :class:`TxReceipt`.

Bulk traffic.  At Gbit/s one Python event per frame cannot keep up with real
time, so :meth:`Direction.send_bulk` transmits a batch of ``count`` equal-sized
units as *one* event: the same queue, clock and channel, with vectorised draws;
the receiver gets one :class:`BulkDelivery` (arrays of arrival times, losses and
per-unit bit-error counts; no payload bytes).  Bulk batches and single units share
the FIFO queue, so a bulk dump delays the prompt frames queued behind it.  Two
simplifications keep a batch O(runs + errors): it uses one propagation delay (the
one at its first departure; a LEO pass changes the light time by < 30 us per
second), and no error draws are made for a batch lost entirely in an outage.

Random streams (``link/<name>/errors``, ``.../ge``, ``.../erasure``, ``.../reorder``,
``.../duplicate``, ``outage/<stream>``) are separate, and every single unit draws its
bit errors and its duplication even when it is lost, so switching one process on or
off does not shift the draws of the others.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np
import trio

from linkstack.sims import engine
from linkstack.sims.bit_errors import _EMPTY, BitErrorProcess, _uniform_subset, flip_bits
from linkstack.sims.channel import (
    _FAR,
    _NO_RANGES,
    AlwaysUp,
    FixedDelay,
    GilbertElliott,
    Propagation,
    Reorder,
    Visibility,
    _in_ranges,
    _mask_to_ranges,
    _merge,
    _ranges,
)
from linkstack.sims.engine import NS_PER_S, derive_rng, now_ns
from linkstack.sims.taps import Tap

__all__ = [
    "BulkDelivery",
    "Delivery",
    "Direction",
    "Link",
    "LossReason",
    "TxReceipt",
]



class LossReason(StrEnum):
    """Why a unit did not arrive."""

    ERASURE = "erasure"
    OUTAGE = "outage"
    QUEUE_FULL = "queue_full"


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Delivery:
    """One unit at the receiver (times in integer ns of virtual time).

    ``unit`` is the received bytes (with ``bit_errors`` bits flipped, at
    ``error_positions``), or ``b""`` when ``erased`` (then ``loss`` says why and
    ``t_arrival`` is when the last bit would have arrived).  ``duplicate`` marks the
    second reception of a unit (same ``seq``; see the module docstring).
    """

    unit: bytes
    meta: Any
    t_enqueued: int
    t_tx_start: int
    t_tx_end: int
    t_arrival: int
    bit_errors: int
    erased: bool
    loss: LossReason | None = None
    propagation_ns: int = 0
    reorder_ns: int = 0
    error_positions: np.ndarray = field(default_factory=lambda: _EMPTY)
    octets: int = 0
    seq: int = 0
    hop: str = ""
    duplicate: bool = False

    @property
    def queueing_ns(self) -> int:
        return self.t_tx_start - self.t_enqueued

    @property
    def serialization_ns(self) -> int:
        return self.t_tx_end - self.t_tx_start

    @property
    def delay_ns(self) -> int:
        """``t_arrival - t_enqueued`` = queueing + serialization + propagation + reorder."""
        return self.t_arrival - self.t_enqueued


@dataclass(slots=True)
class BulkDelivery:
    """A bulk batch at the receiver: ``count`` units of ``unit_octets`` octets.

    Unit ``i`` started serialization at ``t_tx_start + i * serialization_ns`` and
    arrives ``serialization_ns + propagation_ns`` later (plus its reorder delay, if
    any).  The batch is delivered (as one object) when its last unit arrives
    (``t_arrival``).  The whole batch uses the propagation delay at its first departure.
    """

    meta: Any
    seq: int
    hop: str
    count: int
    unit_octets: int
    t_enqueued: int
    t_tx_start: int
    serialization_ns: int
    t_arrival: int
    propagation_ns: int
    reorder_idx: np.ndarray
    reorder_extra: np.ndarray
    erased_idx: np.ndarray
    outage_ranges: np.ndarray
    error_idx: np.ndarray
    error_counts: np.ndarray

    def tx_starts(self) -> np.ndarray:
        return self.t_tx_start + np.arange(self.count, dtype=np.int64) * self.serialization_ns

    def propagation_array(self) -> np.ndarray:
        return np.full(self.count, self.propagation_ns, dtype=np.int64)

    def reorder_array(self) -> np.ndarray:
        extra = np.zeros(self.count, dtype=np.int64)
        extra[self.reorder_idx] = self.reorder_extra
        return extra

    def arrivals(self) -> np.ndarray:
        """Arrival time of each unit's last bit."""
        return (self.tx_starts() + self.serialization_ns + self.propagation_ns
                + self.reorder_array())

    def outage_idx(self) -> np.ndarray:
        """Units lost to an outage (an erased unit counts as erased only)."""
        if len(self.outage_ranges) == 0:
            return _EMPTY
        idx = np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in self.outage_ranges])
        return idx[~np.isin(idx, self.erased_idx)] if len(self.erased_idx) else idx

    def lost_indices(self) -> dict[str, np.ndarray]:
        return {LossReason.ERASURE.value: self.erased_idx,
                LossReason.OUTAGE.value: self.outage_idx()}

    @property
    def clean(self) -> bool:
        """No unit of the batch was lost."""
        return len(self.erased_idx) == 0 and len(self.outage_ranges) == 0

    def _erased_outside(self) -> np.ndarray:
        if len(self.outage_ranges) == 0:
            return self.erased_idx
        return self.erased_idx[~_in_ranges(self.erased_idx, self.outage_ranges)]

    def lost_index_sum(self) -> int:
        """Sum of the indices of the lost units (O(losses), for the accounting)."""
        if self.clean:
            return 0
        lo, hi = self.outage_ranges[:, 0], self.outage_ranges[:, 1]
        return int(((lo + hi - 1) * (hi - lo) // 2).sum()) + int(self._erased_outside().sum())

    def last_delivered(self) -> int:
        """Index of the last unit that was delivered (-1 if none)."""
        if self.clean:
            return self.count - 1
        lo, hi = self.outage_ranges[:, 0], self.outage_ranges[:, 1]
        erased = set(self.erased_idx.tolist())
        last = self.count - 1
        while last >= 0:
            row = int(np.searchsorted(lo, last, side="right")) - 1
            if row >= 0 and last < hi[row]:
                last = int(lo[row]) - 1
            elif last in erased:
                last -= 1
            else:
                break
        return last

    def delivered_reorder_extra(self) -> np.ndarray:
        """Extra delays of the reordered units that were delivered."""
        if len(self.reorder_idx) == 0 or self.clean:
            return self.reorder_extra
        lost = _in_ranges(self.reorder_idx, self.outage_ranges) | np.isin(self.reorder_idx,
                                                                          self.erased_idx)
        return self.reorder_extra[~lost]

    def lost_mask(self) -> np.ndarray:
        mask = np.zeros(self.count, dtype=bool)
        mask[self.erased_idx] = True
        for lo, hi in self.outage_ranges:
            mask[lo:hi] = True
        return mask

    def delivered_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.lost_mask())

    def bit_error_counts(self) -> np.ndarray:
        """Bit errors of each unit (0 for lost units)."""
        counts = np.zeros(self.count, dtype=np.int64)
        counts[self.error_idx] = self.error_counts
        return counts

    @property
    def units_erased(self) -> int:
        return len(self.erased_idx)

    @property
    def units_outage(self) -> int:
        if len(self.outage_ranges) == 0:
            return 0
        in_ranges = int((self.outage_ranges[:, 1] - self.outage_ranges[:, 0]).sum())
        return in_ranges - int(_in_ranges(self.erased_idx, self.outage_ranges).sum())

    @property
    def units_lost(self) -> int:
        return self.units_erased + self.units_outage

    @property
    def units_delivered(self) -> int:
        return self.count - self.units_lost

    @property
    def bit_errors(self) -> int:
        return int(self.error_counts.sum())


@dataclass(slots=True)
class TxReceipt:
    """What the sender knows after :meth:`Direction.send`: when its unit(s) go on the air.

    For a bulk batch ``t_tx_end`` is the end of the last unit.  ``dropped`` is set
    (times ``None``) when a full queue with the ``drop`` policy refused the unit(s).
    Read-only by convention (not frozen: a frozen dataclass costs ~1.5 us per unit to
    build, a tenth of the simulator's whole per-unit budget).
    """

    seq: int
    t_enqueued: int
    t_tx_start: int | None
    t_tx_end: int | None
    dropped: bool = False


# --------------------------------------------------------------------------------------
# Direction
# --------------------------------------------------------------------------------------


class Direction:
    """One way of a link: transmit queue, transmitter, channel, receiver.

    Runs inside :func:`linkstack.sims.engine.run_simulation` (it posts its arrivals to
    the simulation's scheduler).  Senders call :meth:`send` / :meth:`send_bulk` (which
    wait only while a bounded ``block`` queue is full: with an unbounded queue they
    return at once, so pace the sender) or the ``_nowait`` variants from scheduler
    callbacks.  The receiver reads :meth:`receive` (an unbounded memory channel: read
    it, or pass ``on_delivery``).  The sender learns when its unit goes on the air
    from the :class:`TxReceipt`; only the receiver learns what arrived.

    Args:
        name: hop name; also names the random streams (``link/<name>/...``).
        rate_bps: transmitter bit rate (> 0).
        propagation: fixed one-way delay in seconds, or a :class:`Propagation`.
        ber: independent bit error rate, [0, 1].
        erasure: probability that a unit is lost, [0, 1].
        ge: optional :class:`GilbertElliott` burst channel (combined with ``ber``).
        visibility: outage schedule (default: always up).
        reorder: optional :class:`Reorder`.
        duplicate: probability that a unit which arrives is received a second time.
        duplicate_delay_s: mean of the exponential extra delay of a copy, beyond the
            end of the original's reception (0: the copy follows right behind it).
        queue_capacity: maximum number of units waiting for the transmitter (the unit
            being serialized is not counted); ``None`` = unbounded.
        queue_policy: ``"block"`` (send() waits for room) or ``"drop"`` (refuse).
        deliver_lost: hand lost units to the receiver as erased deliveries.
        on_delivery: callback ``f(delivery)`` run at arrival time instead of the
            receive channel (must not block; may call :meth:`send_nowait`).
        tap: the :class:`Tap` recording this hop (default: totals only, no records).
        seed: seed of the random streams (default: the running simulation's seed).
    """

    def __init__(
        self,
        name: str,
        *,
        rate_bps: float,
        propagation: float | Propagation = 0.0,
        ber: float = 0.0,
        erasure: float = 0.0,
        ge: GilbertElliott | None = None,
        visibility: Visibility | None = None,
        reorder: Reorder | None = None,
        duplicate: float = 0.0,
        duplicate_delay_s: float = 0.0,
        queue_capacity: int | None = None,
        queue_policy: str = "block",
        deliver_lost: bool = True,
        on_delivery: Callable[[Delivery | BulkDelivery], object] | None = None,
        tap: Tap | None = None,
        seed: int | None = None,
    ) -> None:
        if not (isinstance(rate_bps, int | float) and math.isfinite(rate_bps) and rate_bps > 0):
            raise ValueError(f"rate_bps must be > 0, got {rate_bps!r}")
        if not (0.0 <= ber <= 1.0):
            raise ValueError(f"ber must be within [0, 1], got {ber!r}")
        if not (0.0 <= erasure <= 1.0):
            raise ValueError(f"erasure must be within [0, 1], got {erasure!r}")
        if not (0.0 <= duplicate <= 1.0):
            raise ValueError(f"duplicate must be within [0, 1], got {duplicate!r}")
        if not (math.isfinite(duplicate_delay_s) and duplicate_delay_s >= 0):
            raise ValueError(f"duplicate_delay_s must be >= 0, got {duplicate_delay_s!r}")
        if queue_capacity is not None and (
            isinstance(queue_capacity, bool) or not isinstance(queue_capacity, int)
            or queue_capacity < 1
        ):
            raise ValueError(f"queue_capacity must be an int >= 1 or None: {queue_capacity!r}")
        if queue_policy not in ("block", "drop"):
            raise ValueError(f"queue_policy must be 'block' or 'drop', got {queue_policy!r}")
        self.name = name
        self.rate_bps = rate_bps
        rate = Fraction(rate_bps)
        self._rate_num, self._rate_den = rate.numerator, rate.denominator
        self._slot_den = self._rate_den * NS_PER_S  # bit slots = t_ns * num // _slot_den
        if isinstance(propagation, int | float):
            propagation = FixedDelay(float(propagation))
        if not isinstance(propagation, Propagation):
            raise TypeError("propagation must be seconds or a Propagation")
        self.propagation = propagation
        self._fixed_prop: int | None = getattr(propagation, "fixed_ns", None)
        self.ber = ber
        self.erasure = erasure
        self.ge = ge
        self.visibility: Visibility = visibility if visibility is not None else AlwaysUp()
        self._always_up = isinstance(self.visibility, AlwaysUp)
        self.reorder = reorder
        self.duplicate = duplicate
        self.duplicate_delay_s = duplicate_delay_s
        self.queue_capacity = queue_capacity
        self.queue_policy = queue_policy
        self.deliver_lost = deliver_lost
        self.on_delivery = on_delivery
        self.tap = tap if tap is not None else Tap(name, max_records=0)
        self._seed = seed
        if on_delivery is None:
            self._send_channel, self._receive_channel = trio.open_memory_channel[
                "Delivery | BulkDelivery"
            ](math.inf)
        else:
            self._send_channel = self._receive_channel = None  # type: ignore[assignment]
        self._ser_cache: dict[int, int] = {}
        self._seq = 0
        self._tx_free = -_FAR
        self._queue: deque[list[int]] = deque()  # [first_start, count, serialization]
        self._admission = trio.Lock()
        self._slot_next = -1
        self._slot_time = 0
        self._ready = False
        self._scheduler: engine.Scheduler | None = None
        self._now_ns: Callable[[], int] = now_ns

    # -- set-up ----------------------------------------------------------------------

    def _stream(self, suffix: str) -> np.random.Generator:
        assert self._seed is not None
        return derive_rng(self._seed, f"link/{self.name}/{suffix}")

    def _setup(self) -> None:
        simulation = engine.current_simulation()
        self._scheduler = simulation.scheduler
        self._now_ns = simulation.now_ns  # now_ns() without the lookup, per unit sent
        if self._seed is None:
            self._seed = simulation.seed
        self._errors = BitErrorProcess.for_channel(self.ber, self.ge, self._stream("ge"),
                                                   self._stream("errors"))
        self._has_errors = self._errors.active
        self._erasure_rng = self._stream("erasure")
        self._reorder_rng = self._stream("reorder")
        self._duplicate_rng = self._stream("duplicate")
        attach = getattr(self.visibility, "attach_rng", None)
        if attach is not None and getattr(self.visibility, "needs_rng", False):
            stream = getattr(self.visibility, "stream", None) or f"link/{self.name}/outage"
            attach(derive_rng(self._seed, f"outage/{stream}"))
        self._ready = True

    # -- receive side ----------------------------------------------------------------

    @property
    def receive_channel(self) -> trio.MemoryReceiveChannel[Delivery | BulkDelivery]:
        if self._receive_channel is None:
            raise RuntimeError(f"{self.name}: deliveries go to the on_delivery callback")
        return self._receive_channel

    async def receive(self) -> Delivery | BulkDelivery:
        """The next delivery, at its arrival time."""
        return await self.receive_channel.receive()

    def _deliver(self, item: Delivery) -> None:
        self.tap.record_delivery(item)
        if item.erased and not self.deliver_lost:
            return
        if self.on_delivery is not None:
            self.on_delivery(item)
        else:
            self._send_channel.send_nowait(item)

    def _deliver_bulk(self, item: BulkDelivery) -> None:
        self.tap.record_bulk(item)
        if self.on_delivery is not None:
            self.on_delivery(item)
        else:
            self._send_channel.send_nowait(item)

    # -- transmit queue ----------------------------------------------------------------

    def serialization_ns(self, octets: int) -> int:
        """Time to clock ``octets`` onto the link: ceil(8 * octets * 1e9 / rate) ns."""
        cached = self._ser_cache.get(octets)
        if cached is None:
            cached = -(-(8 * octets * NS_PER_S * self._rate_den) // self._rate_num)
            self._ser_cache[octets] = cached
        return cached

    def waiting(self, t_ns: int | None = None) -> int:
        """Units in the transmit queue (enqueued, serialization not started) at ``t_ns``
        (now or later)."""
        t = now_ns() if t_ns is None else t_ns
        self._prune(t)
        total = 0
        for first, count, ser in self._queue:
            if t >= first:
                total += count - min(count, (t - first) // ser + 1)
            else:
                total += count
        return total

    def _prune(self, t: int) -> None:
        queue = self._queue
        while queue and queue[0][0] + (queue[0][1] - 1) * queue[0][2] <= t:
            queue.popleft()

    def room_at_ns(self, t_ns: int) -> int:
        """Earliest time >= ``t_ns`` at which :meth:`send_nowait` of one unit neither blocks
        nor is dropped for want of room: ``t_ns`` itself unless a bounded ``block`` queue is
        full then (a ``drop`` queue drops instead: its sender never waits)."""
        if self.queue_capacity is None or self.queue_policy == "drop":
            return t_ns
        return self._room_at(1, t_ns)

    def _room_at(self, k: int, t: int) -> int:
        """Earliest time >= t at which k more units fit in the queue."""
        assert self.queue_capacity is not None
        self._prune(t)
        excess = self.waiting(t) + k - self.queue_capacity
        if excess <= 0:
            return t
        for first, count, ser in self._queue:
            started = 0 if t < first else min(count, (t - first) // ser + 1)
            remaining = count - started
            if excess <= remaining:
                return first + (started + excess - 1) * ser
            excess -= remaining
        raise AssertionError("queue accounting")  # pragma: no cover

    def _check_count(self, k: int) -> None:
        if self.queue_capacity is not None and k > self.queue_capacity:
            raise ValueError(f"{self.name}: {k} units exceed the queue capacity")

    async def _admit(self, k: int, t: int) -> bool:
        self._check_count(k)
        if self.queue_capacity is None:
            return True
        if not self._admission.locked() and self._room_at(k, t) <= t:
            return True
        if self.queue_policy == "drop":
            return False
        async with self._admission:
            while True:
                t = now_ns()
                when = self._room_at(k, t)
                if when <= t:
                    return True
                await engine.sleep_until_ns(when)

    def _admit_nowait(self, k: int, t: int) -> bool:
        self._check_count(k)
        if self.queue_capacity is None:
            return True
        if not self._admission.locked() and self._room_at(k, t) <= t:
            return True
        if self.queue_policy == "drop":
            return False
        raise trio.WouldBlock

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _transmit(self, k: int, ser: int, t: int) -> int:
        """Book ``k`` back-to-back units on the transmitter from ``t``; returns the start."""
        start = t if t > self._tx_free else self._tx_free
        self._tx_free = start + k * ser
        queue = self._queue
        if queue:
            head = queue[0]
            if head[0] + (head[1] - 1) * head[2] <= t:
                self._prune(t)
            if queue:
                last = queue[-1]
                if last[2] == ser and last[0] + last[1] * ser == start:
                    last[1] += k  # back to back with the same unit time: one entry
                    return start
        queue.append([start, k, ser])
        return start

    def _slots(self, start: int, nbits: int, end: int) -> int:
        """First bit-clock slot of a transmission starting at ``start``."""
        num = self._rate_num
        if self._slot_next < 0:
            slot = start * num // self._slot_den if start > 0 else 0
        else:
            slot = self._slot_next + (start - self._slot_time) * num // self._slot_den
        self._slot_next = slot + nbits
        self._slot_time = end
        return slot

    # -- send ------------------------------------------------------------------------

    async def send(self, unit: bytes, meta: Any = None) -> TxReceipt:
        """Enqueue ``unit``; waits only while a bounded queue is full (``block`` policy)."""
        if not self._ready:
            self._setup()
        t_enqueued = now_ns()
        if not unit:
            raise ValueError("cannot send an empty unit")
        seq = self._next_seq()
        if not await self._admit(1, t_enqueued):
            self.tap.record_drop(seq, meta, len(unit), t_enqueued)
            return TxReceipt(seq, t_enqueued, None, None, dropped=True)
        return self._launch(bytes(unit), meta, seq, t_enqueued, now_ns())

    def send_nowait(self, unit: bytes, meta: Any = None) -> TxReceipt:
        """Like :meth:`send` without waiting: raises ``trio.WouldBlock`` if a bounded
        ``block`` queue is full.  Usable from scheduler callbacks."""
        if not self._ready:
            self._setup()
        t_enqueued = self._now_ns()
        if not unit:
            raise ValueError("cannot send an empty unit")
        if self.queue_capacity is not None and not self._admit_nowait(1, t_enqueued):
            seq = self._next_seq()
            self.tap.record_drop(seq, meta, len(unit), t_enqueued)
            return TxReceipt(seq, t_enqueued, None, None, True)
        self._seq += 1
        if type(unit) is not bytes:
            unit = bytes(unit)
        return self._launch(unit, meta, self._seq, t_enqueued, t_enqueued)

    def _launch(self, unit: bytes, meta: Any, seq: int, t_enqueued: int, t: int) -> TxReceipt:
        # The per-unit hot path of every simulation: kept flat on purpose (bench/sims.py).
        octets = len(unit)
        nbits = 8 * octets
        ser = self._ser_cache.get(octets)
        if ser is None:
            ser = self.serialization_ns(octets)
        start = self._transmit(1, ser, t)
        end = start + ser
        slot = self._slots(start, nbits, end)
        prop = self._fixed_prop
        if prop is None:
            prop = int(self.propagation.delay_ns(start))
        extra = 0
        reorder = self.reorder
        if (reorder is not None and reorder.fraction > 0
                and self._reorder_rng.random() < reorder.fraction):
            extra = round(self._reorder_rng.exponential(reorder.mean_delay_s) * NS_PER_S)
        arrival = end + prop + extra
        loss = None
        if self.erasure > 0.0 and self._erasure_rng.random() < self.erasure:
            loss = LossReason.ERASURE
        elif not self._always_up and self.visibility.down_overlapping(arrival - ser, arrival):
            loss = LossReason.OUTAGE
        # drawn for lost units too, so that losses do not shift the error stream
        positions = self._errors.positions(slot, nbits) if self._has_errors else _EMPTY
        if loss is not None:
            delivery = Delivery(b"", meta, t_enqueued, start, end, arrival, 0, True, loss, prop,
                                extra, _EMPTY, octets, seq, self.name)
        else:
            n_errors = len(positions)
            if n_errors:
                unit = flip_bits(unit, positions)
            delivery = Delivery(unit, meta, t_enqueued, start, end, arrival, n_errors,
                                False, None, prop, extra, positions, octets, seq, self.name)
        self._scheduler.post(arrival, self._deliver, (delivery,))  # type: ignore[union-attr]
        if self.duplicate > 0.0:
            self._duplicate(delivery, ser)
        return TxReceipt(seq, t_enqueued, start, end, False)

    def _duplicate(self, original: Delivery, ser: int) -> None:
        """Maybe post a second reception of ``original`` (see the module docstring).

        The draws are made for every unit, lost or not, so that the duplicate stream
        does not depend on the other processes.
        """
        rng = self._duplicate_rng
        if not rng.random() < self.duplicate:
            return
        lag = ser
        if self.duplicate_delay_s > 0.0:
            lag += round(rng.exponential(self.duplicate_delay_s) * NS_PER_S)
        if original.erased:
            return
        arrival = original.t_arrival + lag
        extra = original.reorder_ns + lag
        if not self._always_up and self.visibility.down_overlapping(arrival - ser, arrival):
            copy = Delivery(b"", original.meta, original.t_enqueued, original.t_tx_start,
                            original.t_tx_end, arrival, 0, True, LossReason.OUTAGE,
                            original.propagation_ns, extra, _EMPTY, original.octets,
                            original.seq, self.name, True)
        else:
            copy = Delivery(original.unit, original.meta, original.t_enqueued,
                            original.t_tx_start, original.t_tx_end, arrival, original.bit_errors,
                            False, None, original.propagation_ns, extra,
                            original.error_positions, original.octets, original.seq, self.name,
                            True)
        assert self._scheduler is not None
        self._scheduler.call_at(arrival, self._deliver, copy)

    async def send_bulk(self, count: int, unit_octets: int, meta: Any = None) -> TxReceipt:
        """Transmit ``count`` back-to-back units of ``unit_octets`` octets as one event."""
        if not self._ready:
            self._setup()
        t_enqueued = now_ns()
        self._check_bulk(count, unit_octets)
        seq = self._next_seq()
        if not await self._admit(count, t_enqueued):
            self.tap.record_drop(seq, meta, unit_octets, t_enqueued, count)
            return TxReceipt(seq, t_enqueued, None, None, dropped=True)
        return self._launch_bulk(count, unit_octets, meta, seq, t_enqueued, now_ns())

    def send_bulk_nowait(self, count: int, unit_octets: int, meta: Any = None) -> TxReceipt:
        """:meth:`send_bulk` without waiting (raises ``trio.WouldBlock`` if full)."""
        if not self._ready:
            self._setup()
        t_enqueued = now_ns()
        self._check_bulk(count, unit_octets)
        admitted = self._admit_nowait(count, t_enqueued)
        seq = self._next_seq()
        if not admitted:
            self.tap.record_drop(seq, meta, unit_octets, t_enqueued, count)
            return TxReceipt(seq, t_enqueued, None, None, dropped=True)
        return self._launch_bulk(count, unit_octets, meta, seq, t_enqueued, t_enqueued)

    def _check_bulk(self, count: int, unit_octets: int) -> None:
        if count < 1 or unit_octets < 1:
            raise ValueError("a bulk batch needs count >= 1 and unit_octets >= 1")
        if self.duplicate > 0.0:
            raise ValueError(f"{self.name}: a direction with duplication carries single units "
                             "only (a bulk batch has no per-unit records for the copies)")

    def _launch_bulk(self, count: int, unit_octets: int, meta: Any, seq: int, t_enqueued: int,
                     t: int) -> TxReceipt:
        nbits = 8 * unit_octets
        ser = self.serialization_ns(unit_octets)
        start = self._transmit(count, ser, t)
        end = start + count * ser
        slot = self._slots(start, count * nbits, end)
        # One propagation delay per batch (at its first departure): a pass changes the
        # light time by < 30 us per second, and a batch is background load, not protocol
        # traffic.  Single units get their own delay.
        propagation = self._fixed_prop
        if propagation is None:
            propagation = int(self.propagation.delay_ns(start))
        reorder = self.reorder
        r_idx, r_extra = _EMPTY, _EMPTY
        if reorder is not None and reorder.fraction > 0:
            rng = self._reorder_rng
            r_idx = _uniform_subset(rng, count, int(rng.binomial(count, reorder.fraction)))
            r_extra = np.rint(rng.exponential(reorder.mean_delay_s * NS_PER_S, size=len(r_idx))
                              ).astype(np.int64)
        erased = _EMPTY
        if self.erasure > 0.0:
            rng = self._erasure_rng
            erased = _uniform_subset(rng, count, int(rng.binomial(count, self.erasure)))
        simple = len(r_idx) == 0
        first_rx = start + propagation
        last_arrival = end + propagation
        if not simple:
            arrivals = start + ser + propagation + np.arange(count, dtype=np.int64) * ser
            arrivals[r_idx] += r_extra
            last_arrival = int(arrivals.max())
        outage = _NO_RANGES
        if not self._always_up:
            downs = self.visibility.down_overlapping(first_rx, last_arrival)
            if downs:
                if simple:
                    # unit i is received during [first_rx + i*ser, first_rx + (i+1)*ser)
                    spans = []
                    for down_start, down_end in downs:
                        lo = max(0, (down_start - first_rx) // ser)
                        hi = min(count, -(-(down_end - first_rx) // ser))
                        if hi > lo:
                            spans.append((lo, hi))
                    outage = _ranges(_merge(spans))
                else:
                    rx_start = arrivals - ser
                    hit = np.zeros(count, dtype=bool)
                    for down_start, down_end in downs:
                        hit |= (rx_start < down_end) & (arrivals > down_start)
                    outage = _mask_to_ranges(hit)
        error_idx, error_counts = _EMPTY, _EMPTY
        all_lost = len(outage) == 1 and outage[0, 0] == 0 and outage[0, 1] == count
        if self._has_errors and not all_lost:
            error_idx, error_counts = self._errors.bulk_counts(slot, count, nbits)
            if len(error_idx) and (len(erased) or len(outage)):
                keep = ~(_in_ranges(error_idx, outage) | np.isin(error_idx, erased))
                error_idx, error_counts = error_idx[keep], error_counts[keep]
        bulk = BulkDelivery(meta, seq, self.name, count, unit_octets, t_enqueued, start, ser,
                            last_arrival, propagation, r_idx, r_extra, erased, outage,
                            error_idx, error_counts)
        assert self._scheduler is not None
        self._scheduler.call_at(last_arrival, self._deliver_bulk, bulk)
        return TxReceipt(seq, t_enqueued, start, end)


class Link:
    """A full-duplex link between nodes ``a`` and ``b``: two independent directions."""

    def __init__(self, name: str, a: str, b: str, forward: Direction, reverse: Direction) -> None:
        self.name = name
        self.a = a
        self.b = b
        self.forward = forward
        self.reverse = reverse

    def direction(self, source: str) -> Direction:
        """The direction that transmits from node ``source``."""
        if source == self.a:
            return self.forward
        if source == self.b:
            return self.reverse
        raise KeyError(f"{source!r} is not an end of link {self.name!r}")
