"""Discrete-event engine: trio under a mock clock, one seeded random source.

specs/architecture.md principle 3: ``trio`` drives the simulators in *virtual* time.  A
:class:`trio.testing.MockClock` with ``autojump_threshold=0`` jumps the clock to the
next deadline as soon as every task is blocked, so an hour of link time runs as fast
as the CPU can process the events in it, and a run is a pure function of its seed.

Time.  The trio clock is a float in seconds; the simulators keep their own books in
**integer nanoseconds** (:func:`now_ns`, :func:`to_ns`) so that delays add up
exactly (queueing + serialization + propagation == arrival - enqueue, to the
nanosecond).  A float second has a resolution better than 1 ns for about 100 days,
so ``round(trio.current_time() * 1e9)`` is exact for any simulated run of
practical length.

Randomness.  Every random process draws from a generator derived from the ONE
simulation seed: :func:`derive_rng` maps ``(seed, name)`` to an independent
:class:`numpy.random.Generator` through :class:`numpy.random.SeedSequence` with a
``spawn_key`` computed from a BLAKE2b hash of the stream name.  The derivation is
stable (it does not depend on the order in which streams are created), so adding
a new random process to a scenario does not change the draws of the others.

Determinism of scheduling.  Trio randomises the order in which tasks woken at the
same instant run.  :func:`run_simulation` seeds that choice from the simulation
seed through trio's hook for reproducible scheduling (the one pytest-trio uses
under Hypothesis), so that concurrent tasks interleave identically on every run
with the same seed.

Scheduler.  The link simulators do not sleep once per unit: they post timed
callbacks to the simulation's :class:`Scheduler` (``call_at(t_ns, fn, *args)``), which
runs them from one background task.  Each time trio resumes that task, it checks once
that no other task is runnable; from then on it runs callbacks in time order and
advances the stopped mock clock itself (to exactly ``t_ns``) for as long as trio's run
queue stays empty and no task deadline comes earlier -- what the autojump would do,
without a trio round trip per event.  As soon as a callback wakes a task, or a task
deadline is due first, it sleeps like any task, so user tasks (protocol timers,
senders) always run at their exact virtual times.
"""

from __future__ import annotations

import contextvars
import hashlib
import heapq
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import trio
import trio.testing

__all__ = [
    "NS_PER_S",
    "Scheduler",
    "Simulation",
    "TimerHandle",
    "call_at",
    "current_simulation",
    "derive_rng",
    "now",
    "now_ns",
    "rng",
    "run_simulation",
    "sleep_until_ns",
    "to_ns",
    "to_s",
]

NS_PER_S = 1_000_000_000
"""Nanoseconds per second: the simulators' unit of time is the integer nanosecond."""

T = TypeVar("T")


def to_ns(seconds: float) -> int:
    """Seconds (float) to integer nanoseconds, rounded to nearest."""
    if not math.isfinite(seconds):
        raise ValueError(f"time must be finite, got {seconds!r}")
    return round(seconds * NS_PER_S)


def to_s(ns: int) -> float:
    """Integer nanoseconds to float seconds."""
    return ns / NS_PER_S


def now() -> float:
    """Current virtual time in seconds (``trio.current_time()``)."""
    return trio.current_time()


def now_ns() -> int:
    """Current virtual time in integer nanoseconds."""
    simulation = _current.get(None)
    if simulation is not None:
        return simulation.now_ns()
    return round(trio.current_time() * NS_PER_S)


async def sleep_until_ns(t_ns: int) -> None:
    """Sleep until virtual time ``t_ns`` (integer nanoseconds)."""
    await trio.sleep_until(t_ns / NS_PER_S)


def _spawn_key(name: str) -> tuple[int, ...]:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def derive_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream called ``name`` of the simulation seeded with ``seed``.

    Same ``(seed, name)`` -> same stream, whatever else exists; different names give
    statistically independent streams (SeedSequence spawn keys).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=_spawn_key(name))
    return np.random.Generator(np.random.PCG64(sequence))


class TimerHandle:
    """A callback posted to the :class:`Scheduler`; :meth:`cancel` withdraws it."""

    __slots__ = ("_entry", "_scheduler")

    def __init__(self, entry: list[Any], scheduler: Scheduler | None = None) -> None:
        self._entry = entry  # the scheduler's heap entry [t_ns, seq, fn, args]
        self._scheduler = scheduler

    @property
    def t_ns(self) -> int:
        return int(self._entry[0])

    @property
    def cancelled(self) -> bool:
        return self._entry[2] is None

    def cancel(self) -> None:
        if self._entry[2] is not None:
            self._entry[2] = None
            if self._scheduler is not None:
                self._scheduler._cancelled += 1


def _runner() -> Any:
    """Trio's run loop object, or None if its internals are not where we expect them."""
    try:
        return trio._core._run.GLOBAL_RUN_CONTEXT.runner
    except AttributeError:  # pragma: no cover - depends on the trio version
        return None


def _others_runnable(runner: Any) -> bool:
    """Whether a task other than the calling one is scheduled to run.

    "Scheduled" includes the tasks of the batch trio is running right now: they are no
    longer in the run queue, but a task is scheduled exactly when its
    ``_next_send_fn`` is set (``Runner.reschedule``).  That set cannot grow while the
    calling task runs (new wake-ups go to the run queue), so this full scan is only
    needed once after each resumption; afterwards ``runner.runq`` tells.  This reads
    trio's run loop (checked against trio 0.22 to 0.32); if those internals are missing
    it reports "busy", and the scheduler then sleeps like any task: slower, never wrong.
    """
    try:
        if runner.runq or runner.entry_queue.size() > 0:
            return True
        current = trio._core._run.GLOBAL_RUN_CONTEXT.task
        return any(task._next_send_fn is not None for task in runner.tasks if task is not current)
    except AttributeError:  # pragma: no cover - depends on the trio version
        return True


class Scheduler:
    """Timed callbacks in virtual time, run by one task of the simulation.

    ``call_at(t_ns, fn, *args)`` runs ``fn(*args)`` (a plain function) at virtual time
    ``t_ns``; callbacks due at the same time run in the order they were posted.
    Callbacks run inside the scheduler's task: they may post more callbacks, send
    into memory channels and call other non-blocking APIs, never ``await``.  An
    exception in a callback ends the simulation with that exception.
    """

    def __init__(self, clock: trio.testing.MockClock) -> None:
        self._clock = clock
        # [t_ns, seq, fn or None if cancelled, args(, exact seconds: call_at_s)]
        self._heap: list[list[Any]] = []
        self._seq = 0
        self._cancelled = 0  # cancelled entries in the heap (at most: a handle cancelled
        # after its callback ran counts too, until the next compaction recounts)
        self._lot = trio.lowlevel.ParkingLot()
        self.jumps = 0
        self.sleeps = 0

    def call_at(self, t_ns: int, fn: Callable[..., object], *args: Any) -> TimerHandle:
        return TimerHandle(self.post(t_ns, fn, args), self)

    def post(self, t_ns: int, fn: Callable[..., object], args: tuple[Any, ...],
             exact_s: float | None = None) -> list[Any]:
        """:meth:`call_at` without a handle (the simulators' per-unit fast path); ``exact_s``:
        see :meth:`call_at_s`."""
        self._seq += 1
        entry = [t_ns, self._seq, fn, args] if exact_s is None else [
            t_ns, self._seq, fn, args, exact_s]
        heap = self._heap
        if self._cancelled > 256 and 2 * self._cancelled > len(heap):
            self._compact()
        heapq.heappush(heap, entry)
        if heap[0] is entry and self._lot:  # the scheduler sleeps: wake it to re-plan
            self._lot.unpark_all()
        return entry

    def call_at_s(self, t_s: float, fn: Callable[..., object], *args: Any) -> TimerHandle:
        """:meth:`call_at` at a time in float seconds, kept exact: when the scheduler jumps
        the clock to this callback, it sets it to ``t_s`` itself rather than to the nearest
        nanosecond, as ``trio.sleep_until(t_s)`` would. Callbacks are still ordered by
        nanosecond, then by posting order."""
        return TimerHandle(self.post(to_ns(t_s), fn, args, t_s), self)

    def call_later(self, delay_ns: int, fn: Callable[..., object], *args: Any) -> TimerHandle:
        return self.call_at(now_ns() + delay_ns, fn, *args)

    def pending(self) -> int:
        """Number of posted callbacks not yet run (cancelled ones not yet dropped included)."""
        return len(self._heap)

    def _compact(self) -> None:
        """Drop the cancelled entries (a timeout cancelled long before it was due stays in
        the heap until then; a constellation run cancels one per prompt). In place: the run
        loop holds the list. Entries keep (time, posting order), so the order is unchanged."""
        heap = self._heap
        heap[:] = [e for e in heap if e[2] is not None]
        heapq.heapify(heap)
        self._cancelled = 0

    async def run(self) -> None:
        heap = self._heap
        pop = heapq.heappop
        inf = math.inf
        clock = self._clock
        while True:
            if not heap:
                await self._lot.park()
                continue
            # Just resumed by trio: may we run ahead of the other tasks?
            runner = _runner()
            # a MockClock at rate 0: its time IS _virtual_base; setting it (instead of
            # jump(t - now)) keeps now_ns() == t_ns exactly, with no drift from sums
            direct = (getattr(clock, "_rate", None) == 0 and hasattr(clock, "_virtual_base"))
            t_ns = heap[0][0]
            current = now_ns()
            if runner is None or _others_runnable(runner):
                if t_ns > current:
                    await self._sleep_until(t_ns, heap[0])
                    continue
                runq = None
                next_deadline = None
            else:
                runq = runner.runq
                next_deadline = runner.deadlines.next_deadline
            entry_size = runner.entry_queue.size if runq is not None else None
            # Run due callbacks; jump the clock to the next one as long as nothing else
            # in trio could run first: no task woken (by a callback), no earlier deadline.
            while heap:
                first = heap[0]
                t_ns = first[0]
                # (an exact time later than the clock within its nanosecond moves it too)
                if t_ns > current or (len(first) > 4 and first[4] > clock.current_time()):
                    if runq is None or runq or entry_size() > 0:
                        break
                    t_s = first[4] if len(first) > 4 else t_ns / NS_PER_S
                    deadline = next_deadline()
                    if deadline != inf and t_s >= deadline:
                        break
                    if direct:
                        clock._virtual_base = t_s
                    else:  # pragma: no cover - depends on the trio version
                        clock.jump(max(0.0, t_s - clock.current_time()))
                    self.jumps += 1
                    current = t_ns
                entry = pop(heap)
                fn = entry[2]
                if fn is not None:
                    fn(*entry[3])
                else:
                    self._cancelled -= 1
            else:
                continue
            await self._sleep_until(t_ns, heap[0])

    async def _sleep_until(self, t_ns: int, entry: list[Any]) -> None:
        """Sleep like any task until ``t_ns`` (or until a new earlier callback is posted);
        ``entry`` is the callback due then (its exact seconds, if it has them, are kept)."""
        self.sleeps += 1
        with trio.move_on_at(entry[4] if len(entry) > 4 else t_ns / NS_PER_S):
            await self._lot.park()


@dataclass
class Simulation:
    """State of one simulation run: seed, clock, random streams, background nursery."""

    seed: int
    clock: trio.testing.MockClock
    nursery: trio.Nursery | None = None
    scheduler: Scheduler = field(init=False)
    _streams: dict[str, np.random.Generator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.clock)

    def now_ns(self) -> int:
        """Current virtual time in integer nanoseconds (:func:`now_ns`, without the lookup
        of the running simulation)."""
        clock = self.clock
        try:
            if clock._rate == 0:
                # a MockClock that does not run by itself: its time is its virtual base
                # (what current_time() returns, without the chain down to perf_counter())
                return round(clock._virtual_base * NS_PER_S)
        except AttributeError:  # pragma: no cover - depends on the trio version
            pass
        return round(clock.current_time() * NS_PER_S)

    def rng(self, name: str) -> np.random.Generator:
        """The generator of stream ``name`` (created on first use, then shared)."""
        generator = self._streams.get(name)
        if generator is None:
            generator = derive_rng(self.seed, name)
            self._streams[name] = generator
        return generator

    def start_background(self, fn: Callable[[], Awaitable[Any]], name: str) -> None:
        """Run ``fn`` in the simulation's background nursery (cancelled when main returns)."""
        if self.nursery is None:
            raise RuntimeError("the simulation is not running")
        self.nursery.start_soon(fn, name=name)


_current: contextvars.ContextVar[Simulation] = contextvars.ContextVar("linkstack_simulation")


def current_simulation() -> Simulation:
    """The :class:`Simulation` of the running :func:`run_simulation` call."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("no simulation is running (use run_simulation)") from None


def rng(name: str) -> np.random.Generator:
    """Shortcut for ``current_simulation().rng(name)``."""
    return current_simulation().rng(name)


def call_at(t_ns: int, fn: Callable[..., object], *args: Any) -> TimerHandle:
    """Shortcut for ``current_simulation().scheduler.call_at(t_ns, fn, *args)``."""
    return current_simulation().scheduler.call_at(t_ns, fn, *args)


def run_simulation(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    seed: int,
    start_time: float = 0.0,
    deterministic_scheduling: bool = True,
) -> T:
    """Run ``await main(*args)`` in virtual time and return its result.

    The clock starts at ``start_time`` seconds and autojumps (threshold 0): it
    advances straight to the next deadline whenever all tasks are blocked.
    Background tasks started by the simulators (link deliverers) live in a nursery
    that is cancelled when ``main`` returns.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(start_time)
    simulation = Simulation(seed=seed, clock=clock)
    result: list[T] = []

    async def _root() -> None:
        token = _current.set(simulation)
        try:
            async with trio.open_nursery() as nursery:
                simulation.nursery = nursery
                nursery.start_soon(simulation.scheduler.run, name="linkstack scheduler")
                result.append(await main(*args))
                nursery.cancel_scope.cancel()
        finally:
            simulation.nursery = None
            _current.reset(token)

    run_module = trio._core._run  # trio's reproducible-scheduling hook (see module doc)
    saved_flag = run_module._ALLOW_DETERMINISTIC_SCHEDULING
    saved_state = run_module._r.getstate()
    if deterministic_scheduling:
        run_module._ALLOW_DETERMINISTIC_SCHEDULING = True
        run_module._r.seed(seed)
    try:
        trio.run(_root, clock=clock)
    except BaseExceptionGroup as group:
        # trio >= 0.25 wraps every error escaping a nursery in an exception group (strict
        # groups); trio 0.22 collapses a lone error. Give callers the lone error either way.
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if inner is group:
            raise
        raise inner from None
    finally:
        run_module._ALLOW_DETERMINISTIC_SCHEDULING = saved_flag
        run_module._r.setstate(saved_state)
    return result[0]
