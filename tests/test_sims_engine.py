"""Tests of linkstack.sims.engine: virtual time, seeded streams, the scheduler."""

from __future__ import annotations

import numpy as np
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.sims import engine
from linkstack.sims.engine import (
    NS_PER_S,
    call_at,
    current_simulation,
    derive_rng,
    now,
    now_ns,
    run_simulation,
    to_ns,
    to_s,
)


def test_returns_result_and_time_is_virtual() -> None:
    async def main(x: int) -> tuple[int, float, int]:
        await trio.sleep(3600.0)  # one hour of virtual time
        return x * 2, now(), now_ns()

    value, t, t_ns = run_simulation(main, 21, seed=0)
    assert value == 42
    assert t == 3600.0
    assert t_ns == 3600 * NS_PER_S


def test_start_time() -> None:
    async def main() -> int:
        return now_ns()

    assert run_simulation(main, seed=0, start_time=12.5) == 12_500_000_000


def test_ns_conversions() -> None:
    assert to_ns(1.5) == 1_500_000_000
    assert to_ns(1e-9) == 1
    assert to_s(2_500_000_000) == 2.5
    with pytest.raises(ValueError):
        to_ns(float("inf"))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "1"])
def test_bad_seed(seed: object) -> None:
    async def main() -> None:
        return None

    with pytest.raises(ValueError):
        run_simulation(main, seed=seed)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        derive_rng(seed, "x")  # type: ignore[arg-type]


def test_streams_are_stable_and_independent() -> None:
    a = derive_rng(7, "link/up/errors").random(5)
    b = derive_rng(7, "link/up/errors").random(5)
    c = derive_rng(7, "link/down/errors").random(5)
    d = derive_rng(8, "link/up/errors").random(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)


def test_stream_does_not_depend_on_creation_order() -> None:
    async def first_a() -> tuple[float, float]:
        sim = current_simulation()
        return sim.rng("a").random(), sim.rng("b").random()

    async def first_b() -> tuple[float, float]:
        sim = current_simulation()
        b = sim.rng("b").random()
        return sim.rng("a").random(), b

    assert run_simulation(first_a, seed=3) == run_simulation(first_b, seed=3)


def test_rng_is_shared_per_name() -> None:
    async def main() -> bool:
        return engine.rng("x") is current_simulation().rng("x")

    assert run_simulation(main, seed=1)


def test_no_simulation_outside_run() -> None:
    with pytest.raises(RuntimeError):
        current_simulation()


def test_scheduler_runs_callbacks_at_their_times_in_order() -> None:
    log: list[tuple[str, int]] = []

    async def main() -> None:
        def record(tag: str) -> None:
            log.append((tag, now_ns()))

        call_at(3_000, record, "c")
        call_at(1_000, record, "a")
        call_at(1_000, record, "b")  # same time: posting order
        cancelled = call_at(2_000, record, "never")
        cancelled.cancel()
        await engine.sleep_until_ns(2_000)
        log.append(("task", now_ns()))
        await engine.sleep_until_ns(5_000)

    run_simulation(main, seed=0)
    assert log == [("a", 1_000), ("b", 1_000), ("task", 2_000), ("c", 3_000)]


def test_call_at_s_keeps_float_times_exact() -> None:
    """Scheduler.call_at_s: the clock reads the exact float time in the callback (0.1 + 0.2 is
    not 0.3, and to_ns would round it to 300_000_000 ns); callbacks still run in nanosecond,
    then posting, order, interleaved with call_at ones; a cancelled one never runs."""
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        sched = current_simulation().scheduler

        def record(tag: str) -> None:
            seen.append((tag, now()))

        t = 0.1 + 0.2
        sched.call_at_s(t, record, "exact")
        sched.call_at(to_ns(t), record, "same ns, posted later")
        sched.call_at_s(0.25 + 4e-10, record, "first")  # 250_000_000 ns, rounded down
        sched.call_at_s(1e-9 / 4, record, "within the first ns")
        sched.call_at_s(0.5, record, "never").cancel()
        await trio.sleep(1.0)

    run_simulation(main, seed=0)
    assert seen == [("within the first ns", 1e-9 / 4), ("first", 0.25 + 4e-10),
                    ("exact", 0.1 + 0.2),
                    ("same ns, posted later", 0.1 + 0.2)]
    assert 0.1 + 0.2 != 0.3


def test_scheduler_interleaves_with_task_deadlines() -> None:
    """Callbacks and task wake-ups happen at their exact times, whatever their order."""
    log: list[tuple[str, int]] = []

    async def sleeper(times: list[int]) -> None:
        for t in times:
            await engine.sleep_until_ns(t)
            log.append(("task", now_ns()))

    async def main() -> None:
        for t in (5, 15, 25, 35):
            call_at(t * 1_000_000, lambda: log.append(("cb", now_ns())))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper, [10_000_000, 20_000_000, 30_000_000])

    run_simulation(main, seed=0)
    times = [t for _, t in log]
    assert times == sorted(times)
    assert [tag for tag, _ in log] == ["cb", "task", "cb", "task", "cb", "task"]
    # the last callback (35 ms) is after main returned: never run
    assert times[-1] == 30_000_000


def test_a_task_woken_by_a_callback_runs_before_later_callbacks() -> None:
    """The scheduler runs ahead of the other tasks only while none is runnable: a task
    woken by a callback at t runs at t, before the callbacks due after t."""
    log: list[tuple[str, int]] = []

    async def main() -> None:
        send, receive = trio.open_memory_channel[int](10)

        def wake(i: int) -> None:
            log.append(("cb", now_ns()))
            send.send_nowait(i)

        for i in range(5):
            call_at((i + 1) * 1_000, wake, i)
        call_at(5_500, lambda: log.append(("last", now_ns())))
        for _ in range(5):
            await receive.receive()
            log.append(("task", now_ns()))
            call_at(now_ns() + 100, lambda: log.append(("posted", now_ns())))
        await engine.sleep_until_ns(10_000)

    run_simulation(main, seed=0)
    expected = []
    for i in range(5):
        t = (i + 1) * 1_000
        expected += [("cb", t), ("task", t), ("posted", t + 100)]
    assert log == [*expected, ("last", 5_500)]


def test_timer_handles_report_time_and_cancellation() -> None:
    async def main() -> tuple[int, bool, bool, int]:
        scheduler = engine.current_simulation().scheduler
        handle = call_at(7_000, lambda: None)
        before = handle.cancelled
        handle.cancel()
        await engine.sleep_until_ns(8_000)
        return handle.t_ns, before, handle.cancelled, scheduler.pending()

    assert run_simulation(main, seed=0) == (7_000, False, True, 0)


@settings(max_examples=30, deadline=None)
@given(times=st.lists(st.integers(1, 50), min_size=300, max_size=900),
       cancel=st.lists(st.booleans(), min_size=900, max_size=900))
def test_cancelled_callbacks_are_dropped_and_the_rest_keep_their_order(
        times: list[int], cancel: list[bool]) -> None:
    # Many callbacks cancelled long before they are due (a prompt's timeout) are dropped from
    # the heap once they are over half of it (Scheduler._compact); the live ones still run at
    # their times, those of one time in posting order.
    log: list[tuple[int, int]] = []

    async def main() -> int:
        scheduler = current_simulation().scheduler
        handles = [call_at(t * 1_000, lambda i=i: log.append((now_ns(), i)))
                   for i, t in enumerate(times)]
        for handle, drop in zip(handles, cancel, strict=False):
            if drop:
                handle.cancel()
        call_at(0, lambda: None)  # a post after the cancellations: compacts if they are many
        most = scheduler.pending()
        await engine.sleep_until_ns(60_000)
        return most

    most = run_simulation(main, seed=0)
    live = [i for i in range(len(times)) if not (i < len(cancel) and cancel[i])]
    assert log == sorted((times[i] * 1_000, i) for i in live)
    dropped = len(times) - len(live)
    if dropped > 256 and 2 * dropped > len(times):
        assert most == len(live) + 1
    else:
        assert most == len(times) + 1


def test_callback_exception_ends_the_simulation() -> None:
    def boom() -> None:
        raise KeyError("boom")

    async def main() -> None:
        call_at(10, boom)
        await trio.sleep(1.0)

    with pytest.raises(KeyError):
        run_simulation(main, seed=0)


def _race(seed: int) -> list[int]:
    order: list[int] = []

    async def worker(i: int) -> None:
        await trio.sleep(1.0)  # all wake at the same instant
        order.append(i)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(worker, i)

    run_simulation(main, seed=seed)
    return order


def test_scheduling_is_deterministic_per_seed() -> None:
    assert _race(5) == _race(5) == _race(5)
    orders = {tuple(_race(seed)) for seed in range(6)}
    assert len(orders) > 1  # the seed does drive the interleaving


def test_trio_scheduling_hook_is_restored() -> None:
    flag = trio._core._run._ALLOW_DETERMINISTIC_SCHEDULING
    _race(1)
    assert flag == trio._core._run._ALLOW_DETERMINISTIC_SCHEDULING


@settings(max_examples=30, deadline=None)
@given(
    task_times=st.lists(st.lists(st.integers(1, 50), min_size=1, max_size=5), min_size=1,
                        max_size=4),
    callback_times=st.lists(st.integers(1, 50), max_size=12),
)
def test_every_event_happens_at_its_exact_time(task_times: list[list[int]],
                                               callback_times: list[int]) -> None:
    """Random mixes of task sleeps and scheduler callbacks: nobody sees time skip."""
    log: list[tuple[int, int]] = []  # (intended, observed)

    async def sleeper(deltas: list[int]) -> None:
        t = 0
        for delta in deltas:
            t += delta * 1000
            await engine.sleep_until_ns(t)
            log.append((t, now_ns()))

    def callback(t: int) -> None:
        log.append((t, now_ns()))

    async def main() -> None:
        for t in callback_times:
            call_at(t * 1000, callback, t * 1000)
        async with trio.open_nursery() as nursery:
            for deltas in task_times:
                nursery.start_soon(sleeper, deltas)
        await engine.sleep_until_ns(1_000_000)

    run_simulation(main, seed=0)
    assert all(intended == observed for intended, observed in log)
    observed = [o for _, o in log]
    assert observed == sorted(observed)
    assert len(log) == sum(map(len, task_times)) + len(callback_times)
