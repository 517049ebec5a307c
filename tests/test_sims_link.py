"""Tests of linkstack.sims.link (and the per-hop accounting of linkstack.sims.taps).

Statistical checks use fixed seeds, so they are deterministic; each compares a measured
rate with its analytic value within a 99.9 % interval computed here from first
principles (Wilson score interval for proportions, CLT for means).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_stats import Z999, ser_ns, wilson

from linkstack.sims import engine
from linkstack.sims.bit_errors import flip_bits
from linkstack.sims.channel import (
    DownIntervals,
    GilbertElliott,
    PeriodicWindows,
    PointingLosses,
    Reorder,
)
from linkstack.sims.engine import NS_PER_S, now_ns, run_simulation
from linkstack.sims.link import BulkDelivery, Delivery, Direction, Link, LossReason
from linkstack.sims.taps import Component, Tap


async def receive_all(direction: Direction, n: int, *, waiting: bool = False
                      ) -> list[Delivery]:
    """The next n deliveries; ``waiting``: the receiver was already waiting for each, so
    it must get it exactly when its last bit arrives."""
    out = []
    for _ in range(n):
        item = await direction.receive()
        assert isinstance(item, Delivery)
        if waiting:
            assert now_ns() == item.t_arrival
        else:
            assert now_ns() >= item.t_arrival
        out.append(item)
    return out


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([64000.0, 1.8e9, 123456.7, 9600.0, 320e6]),
    delay_s=st.sampled_from([0.0, 0.0061634, 0.00719, 1.25]),
    sends=st.lists(st.tuples(st.integers(0, 3_000_000), st.integers(1, 1500)), min_size=1,
                   max_size=25),
)
def test_delay_is_queueing_plus_serialization_plus_propagation(
    rate: float, delay_s: float, sends: list[tuple[int, int]]
) -> None:
    prop = round(delay_s * NS_PER_S)

    async def main() -> list[tuple[int, int, Delivery]]:
        direction = Direction("hop", rate_bps=rate, propagation=delay_s, seed=1)
        sent: list[tuple[int, int]] = []
        deliveries: list[Delivery] = []

        async def receiver() -> None:
            deliveries.extend(await receive_all(direction, len(sends), waiting=True))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            t = 0
            for i, (gap, octets) in enumerate(sends):
                t += gap
                await engine.sleep_until_ns(t)
                receipt = await direction.send(bytes([i % 256]) * octets, meta=i)
                assert receipt.t_enqueued == t
                sent.append((t, octets))
        return [(t, o, d) for (t, o), d in zip(sent, deliveries, strict=True)]

    tx_free = -1
    for t_send, octets, d in run_simulation(main, seed=0):
        serialization = ser_ns(octets, rate)
        start = max(t_send, tx_free)
        tx_free = start + serialization
        assert (d.t_enqueued, d.t_tx_start, d.t_tx_end) == (t_send, start, start + serialization)
        assert d.t_arrival == start + serialization + prop
        assert d.queueing_ns + d.serialization_ns + d.propagation_ns == d.t_arrival - d.t_enqueued
        assert d.delay_ns == (start - t_send) + serialization + prop
        assert d.unit == bytes([d.meta % 256]) * octets and not d.erased


def test_geometric_propagation_is_evaluated_at_departure() -> None:
    from linkstack.sims.geometry import SPEED_OF_LIGHT_KM_S, LeoPass

    leo = LeoPass(700.0, 10.0, 5.0)

    async def main() -> list[Delivery]:
        direction = Direction("up", rate_bps=64000.0, propagation=leo, seed=1)
        for k in range(5):
            await engine.sleep_until_ns(k * 60 * NS_PER_S)
            await direction.send(b"x" * 100)
        return await receive_all(direction, 5)

    for d in run_simulation(main, seed=0):
        distance = float(leo.range_km(d.t_tx_start / NS_PER_S))
        assert d.propagation_ns == round(distance / SPEED_OF_LIGHT_KM_S * NS_PER_S)
        assert d.t_arrival == d.t_tx_end + d.propagation_ns


def test_bounded_queue_blocks_the_sender() -> None:
    capacity = 3

    async def main() -> tuple[list[int], list[int]]:
        direction = Direction("hop", rate_bps=8000.0, queue_capacity=capacity, seed=1)
        waiting_after_send = []
        returned_at = []
        for i in range(10):
            await direction.send(b"\x00" * 100, meta=i)  # 100 ms each
            returned_at.append(now_ns())
            waiting_after_send.append(direction.waiting())
        return waiting_after_send, returned_at

    waiting, returned_at = run_simulation(main, seed=0)
    assert max(waiting) == capacity
    # unit 0 is on the air at once, 1..3 wait; unit 4 is admitted when unit 1 starts (100 ms)
    assert returned_at[:4] == [0, 0, 0, 0]
    assert returned_at[4:] == [k * 100_000_000 for k in range(1, 7)]


def test_bounded_queue_drop_policy_records_losses() -> None:
    async def main() -> tuple[list[bool], Direction, list[Delivery]]:
        direction = Direction("hop", rate_bps=8000.0, queue_capacity=2, queue_policy="drop",
                              tap=Tap("hop"), seed=1)
        dropped = [direction.send_nowait(b"\x00" * 100, meta=i).dropped for i in range(6)]
        return dropped, direction, await receive_all(direction, 3)

    dropped, direction, deliveries = run_simulation(main, seed=0)
    assert dropped == [False, False, False, True, True, True]
    assert [d.meta for d in deliveries] == [0, 1, 2]
    assert direction.tap.totals.lost == {"queue_full": 3}
    assert [r.loss for r in direction.tap.records].count("queue_full") == 3


def test_waiting_counts_units_not_yet_on_the_air() -> None:
    async def main() -> list[int]:
        direction = Direction("hop", rate_bps=8000.0, seed=1)  # unbounded queue
        for _ in range(5):
            direction.send_nowait(b"\x00" * 100)  # 100 ms each
        await direction.send_bulk(3, 100)
        counts = [direction.waiting()]
        for t in (50, 100, 450, 550, 650, 750, 800):
            await engine.sleep_until_ns(t * 1_000_000)
            counts.append(direction.waiting())
        return counts

    assert run_simulation(main, seed=0) == [7, 7, 6, 3, 2, 1, 0, 0]


def test_send_nowait_on_a_full_blocking_queue_would_block() -> None:
    async def main() -> None:
        direction = Direction("hop", rate_bps=8000.0, queue_capacity=1, seed=1)
        direction.send_nowait(b"a")
        direction.send_nowait(b"b")
        with pytest.raises(trio.WouldBlock):
            direction.send_nowait(b"c")

    run_simulation(main, seed=0)


def test_bulk_shares_the_fifo_with_single_units() -> None:
    rate = 1_000_000.0

    async def main() -> list[Delivery | BulkDelivery]:
        direction = Direction("hop", rate_bps=rate, propagation=0.002, seed=1)
        await direction.send(b"a" * 125)  # 1 ms
        await direction.send_bulk(10, 125, meta="bulk")  # 10 ms
        await direction.send(b"b" * 125)
        return [await direction.receive() for _ in range(3)]

    _, bulk, last = run_simulation(main, seed=0)
    assert isinstance(bulk, BulkDelivery) and isinstance(last, Delivery)
    assert bulk.t_tx_start == 1_000_000 and bulk.serialization_ns == 1_000_000
    assert list(bulk.arrivals()) == [(2 + k) * 1_000_000 + 2_000_000 for k in range(10)]
    assert bulk.t_arrival == 13_000_000
    assert last.t_tx_start == 11_000_000 and last.queueing_ns == 11_000_000


# --------------------------------------------------------------------------------------
# Bit errors
# --------------------------------------------------------------------------------------


def test_flip_bits_numbers_bits_msb_first() -> None:
    assert flip_bits(b"\x00\x00", np.array([0])) == b"\x80\x00"
    assert flip_bits(b"\x00\x00", np.array([7, 8])) == b"\x01\x80"
    assert flip_bits(b"\xff", np.array([0, 1, 2, 3, 4, 5, 6, 7])) == b"\x00"


def test_frame_error_rate_matches_ber() -> None:
    ber, octets, n = 1e-4, 1115, 4000
    bits = 8 * octets
    expected_fer = 1 - (1 - ber) ** bits

    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, ber=ber, seed=11)
        payload = bytes(range(256)) * 4 + bytes(range(91))
        for i in range(n):
            direction.send_nowait(payload, meta=i)
        deliveries = await receive_all(direction, n, waiting=True)
        for d in deliveries:  # the flipped bits are exactly the reported ones
            diff = np.unpackbits(np.frombuffer(d.unit, np.uint8)
                                 ^ np.frombuffer(payload, np.uint8))
            assert np.array_equal(np.flatnonzero(diff), np.sort(d.error_positions))
            assert int(diff.sum()) == d.bit_errors
        return deliveries

    deliveries = run_simulation(main, seed=0)
    errored = sum(1 for d in deliveries if d.bit_errors)
    lo, hi = wilson(errored, n)
    assert lo <= expected_fer <= hi
    # bit errors per frame: mean n*p, variance n*p*(1-p)
    total = sum(d.bit_errors for d in deliveries)
    mean, sd = n * bits * ber, math.sqrt(n * bits * ber * (1 - ber))
    assert abs(total - mean) <= Z999 * sd


def _one_batch(n: int, octets: int, **direction: Any) -> BulkDelivery:
    """Send one bulk batch over a fresh direction ``hop`` and return it as delivered."""
    async def main() -> BulkDelivery:
        hop = Direction("hop", **direction)
        await hop.send_bulk(n, octets)
        bulk = await hop.receive()
        assert isinstance(bulk, BulkDelivery)
        return bulk

    return run_simulation(main, seed=0)


def test_frame_error_rate_matches_ber_in_bulk() -> None:
    ber, octets, n = 2e-5, 1115, 200_000
    expected_fer = 1 - (1 - ber) ** (8 * octets)
    bulk = _one_batch(n, octets, rate_bps=1.8e9, ber=ber, seed=5)
    errored = int(np.count_nonzero(bulk.bit_error_counts()))
    lo, hi = wilson(errored, n)
    assert lo <= expected_fer <= hi


def _error_bits(deliveries: list[Delivery]) -> np.ndarray:
    """The error pattern of zero-payload units, concatenated in transmission order."""
    return np.concatenate([np.unpackbits(np.frombuffer(d.unit, np.uint8)) for d in deliveries])


def _runs(bits: np.ndarray, value: int) -> np.ndarray:
    """Lengths of the runs of ``value``, without the runs touching either end."""
    padded = np.concatenate(([1 - value], bits, [1 - value]))
    edges = np.flatnonzero(np.diff((padded == value).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    inner = (starts > 0) & (ends < len(bits))
    return (ends - starts)[inner]


def test_gilbert_elliott_burst_and_gap_lengths() -> None:
    """With BER 1 in the bad state and 0 in the good one, bursts are the bad sojourns."""
    p_gb, p_bg = 1 / 500, 1 / 20
    ge = GilbertElliott(p_gb, p_bg, ber_good=0.0, ber_bad=1.0)
    n = 2000  # units of 1000 bits at 1 Mbit/s: back to back, contiguous on the bit clock

    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, ge=ge, seed=3)
        for _ in range(n):
            direction.send_nowait(bytes(125))
        return await receive_all(direction, n)

    bits = _error_bits(run_simulation(main, seed=0))
    for value, p in ((1, p_bg), (0, p_gb)):
        runs = _runs(bits, value)
        mean, sd = 1 / p, math.sqrt(1 - p) / p  # geometric sojourn time
        assert len(runs) > 1000
        assert abs(runs.mean() - mean) <= Z999 * sd / math.sqrt(len(runs))
    assert ge.mean_bad_bits == 20 and ge.mean_good_bits == 500


def _ge_variance(ge: GilbertElliott) -> float:
    """Asymptotic variance per bit of the error indicator of a Gilbert–Elliott channel."""
    pi_b = ge.p_gb / (ge.p_gb + ge.p_bg)
    lam = 1 - ge.p_gb - ge.p_bg
    mean = (1 - pi_b) * ge.ber_good + pi_b * ge.ber_bad
    covariance = (ge.ber_bad - ge.ber_good) ** 2 * pi_b * (1 - pi_b)  # of eps(X_0), eps(X_k)/lam^k
    return mean * (1 - mean) + 2 * covariance * lam / (1 - lam)


def test_gilbert_elliott_long_run_error_rate() -> None:
    ge = GilbertElliott(p_gb=0.002, p_bg=0.05, ber_good=0.001, ber_bad=0.3)
    n_units, nbits = 10_000, 1000
    analytic = (1 - ge.pi_bad) * ge.ber_good + ge.pi_bad * ge.ber_bad
    assert ge.mean_ber == pytest.approx(analytic)

    async def main() -> BulkDelivery:
        direction = Direction("hop", rate_bps=1e6, ge=ge, seed=8)
        await direction.send_bulk(n_units, nbits // 8)
        bulk = await direction.receive()
        assert isinstance(bulk, BulkDelivery)
        return bulk

    bulk = run_simulation(main, seed=0)
    n = n_units * nbits
    measured = bulk.bit_errors / n
    assert abs(measured - analytic) <= Z999 * math.sqrt(_ge_variance(ge) / n)


@pytest.mark.parametrize("mean_burst", [3.0, 14.0, 200.0])
def test_gilbert_elliott_out_of_lock_bursts_in_bulk(mean_burst: float) -> None:
    """Bad state BER 1/2 (the profiles' receiver out of lock): the bulk path counts the
    errors of short pieces by popcount, long ones by binomial; both must give the
    analytic long-run rate."""
    ge = GilbertElliott(p_gb=1 / 5000, p_bg=1 / mean_burst, ber_good=0.0, ber_bad=0.5)
    n_units, octets = 20_000, 125
    bulk = _one_batch(n_units, octets, rate_bps=1e6, ge=ge, seed=21)
    n = n_units * octets * 8
    analytic = ge.pi_bad * 0.5
    assert abs(bulk.bit_errors / n - analytic) <= Z999 * math.sqrt(_ge_variance(ge) / n)
    counts = bulk.bit_error_counts()
    assert len(counts) == n_units and counts.min() >= 0 and counts.max() <= octets * 8


def test_fair_coin_counts_are_binomial_half() -> None:
    from linkstack.sims.bit_errors import _fair_coin_counts

    rng = np.random.default_rng(4)
    sizes = (1, 2, 7, 14, 63, 64, 65, 300)
    bits = np.repeat(np.array(sizes, dtype=np.int64), 20_000)
    k = _fair_coin_counts(rng, bits)
    assert k.dtype == np.int64 and len(k) == len(bits)
    for size in sizes:
        x = k[bits == size]
        assert x.min() >= 0 and x.max() <= size
        # mean n/2 and variance n/4, within 99.9 % intervals
        assert abs(x.mean() - size / 2) <= Z999 * math.sqrt(size / 4 / len(x))
        var_sd = math.sqrt(2 / (len(x) - 1)) * size / 4 + math.sqrt(size / 8 / len(x))
        assert abs(x.var() - size / 4) <= Z999 * var_sd


def test_randints_are_uniform_even_when_the_modulus_needs_rejection() -> None:
    from linkstack.sims.bit_errors import _randints

    rng = np.random.default_rng(5)
    n = 3 << 61  # 2**64 mod n == 2**62: a quarter of the raw words must be redrawn
    draws = _randints(rng, n, 30_000)
    assert draws.dtype == np.int64 and (draws >= 0).all()
    assert (draws.astype(np.uint64) < np.uint64(n)).all()
    # thirds of range(n) equally likely (modulo bias would give the first two 3/8 each)
    thirds = np.bincount((draws.astype(np.uint64) // np.uint64(1 << 61)).astype(np.int64),
                         minlength=3)
    for count in thirds:
        lo, hi = wilson(int(count), len(draws))
        assert lo <= 1 / 3 <= hi
    small = np.bincount(_randints(rng, 7, 70_000), minlength=7)
    for count in small:
        lo, hi = wilson(int(count), 70_000)
        assert lo <= 1 / 7 <= hi


@pytest.mark.parametrize("k", [1, 3, 12, 13, 40, 400])
def test_uniform_subset_is_sorted_distinct_and_uniform(k: int) -> None:
    from linkstack.sims.bit_errors import _uniform_subset

    rng = np.random.default_rng(k)
    n, trials = 1000, 3000
    hits = np.zeros(n, dtype=np.int64)
    for _ in range(trials):
        subset = _uniform_subset(rng, n, k)
        assert subset.dtype == np.int64 and len(subset) == k
        assert (np.diff(subset) > 0).all() and subset[0] >= 0 and subset[-1] < n
        hits[subset] += 1
    # every element is chosen with probability k/n: halves and the first tenth agree
    for part in (hits[: n // 2], hits[n // 2 :], hits[: n // 10]):
        lo, hi = wilson(int(part.sum()), trials * k)
        assert lo <= len(part) / n <= hi


def test_gilbert_elliott_state_persists_across_short_idle_gaps() -> None:
    """The chain runs on through idle bit periods: after a gap of d slots the state is
    still correlated, P(bad | bad d+1 steps earlier) = pi_b + pi_g * lambda**(d+1)."""
    ge = GilbertElliott(p_gb=0.02, p_bg=0.1, ber_good=0.0, ber_bad=1.0)
    gap_slots, n = 10, 4000
    pi_b, lam = ge.pi_bad, 1 - ge.p_gb - ge.p_bg
    expected = pi_b + (1 - pi_b) * lam ** (gap_slots + 1)

    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, ge=ge, seed=21)
        t = 0
        for _ in range(n):
            await engine.sleep_until_ns(t)
            direction.send_nowait(bytes(125))  # 1 ms = 1000 slots
            t += 1_000_000 + gap_slots * 1000  # then 10 idle bit periods
        return await receive_all(direction, n)

    deliveries = run_simulation(main, seed=0)
    last = np.array([d.unit[-1] & 1 for d in deliveries[:-1]])
    first = np.array([d.unit[0] >> 7 for d in deliveries[1:]])
    cases = int(last.sum())
    hits = int((first[last == 1]).sum())
    lo, hi = wilson(hits, cases)
    assert lo <= expected <= hi
    assert not lo <= pi_b <= hi  # really correlated, not just stationary


def test_gilbert_elliott_is_stationary_after_long_idle_gaps() -> None:
    ge = GilbertElliott(p_gb=0.01, p_bg=0.1, ber_good=0.0, ber_bad=0.5)
    n = 3000

    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, ge=ge, seed=4)
        for k in range(n):
            await engine.sleep_until_ns(k * NS_PER_S)  # 1e6 idle slots between units
            direction.send_nowait(bytes(125))
        return await receive_all(direction, n)

    errors = np.array([d.bit_errors for d in run_simulation(main, seed=0)], dtype=float)
    # units are independent (the chain mixes in ~10 slots): CLT on the per-unit rate
    assert abs(errors.mean() / 1000 - ge.mean_ber) <= Z999 * errors.std() / 1000 / math.sqrt(n)


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _overlaps(a: int, b: int, intervals: list[tuple[int, int]]) -> bool:
    return any(a < e and b > s for s, e in intervals)


def test_outage_loses_what_is_received_in_it_and_reports_it() -> None:
    down = [(1_000_000_000, 2_000_000_000)]
    n = 300  # 10 ms units from t = 0.5 s to 3.5 s

    async def main() -> tuple[list[Delivery], Direction]:
        direction = Direction("hop", rate_bps=100_000.0, propagation=0.0037,
                              visibility=DownIntervals([(1.0, 2.0)]), tap=Tap("hop"), seed=1)
        await engine.sleep_until_ns(500_000_000)
        for i in range(n):
            direction.send_nowait(bytes(125), meta=i)
        return await receive_all(direction, n), direction

    deliveries, direction = run_simulation(main, seed=0)
    lost = [d for d in deliveries if d.erased]
    assert lost and len(lost) < n
    for d in deliveries:
        on_air = _overlaps(d.t_arrival - d.serialization_ns, d.t_arrival, down)
        assert d.erased == on_air
        if d.erased:
            assert d.loss is LossReason.OUTAGE and d.unit == b"" and d.bit_errors == 0
        else:
            assert not (down[0][0] < d.t_arrival <= down[0][1])  # nothing arrives inside
    totals = direction.tap.totals
    assert totals.units_sent == n
    assert totals.units_delivered + totals.units_lost == n
    assert totals.lost == {"outage": len(lost)}
    # an ARQ can resend them after the outage
    assert max(d.t_arrival for d in lost) <= down[0][1] + lost[0].serialization_ns


def test_lost_units_can_stay_invisible_to_the_receiver_but_are_recorded() -> None:
    async def main() -> tuple[list[Delivery], Direction]:
        direction = Direction("hop", rate_bps=100_000.0, visibility=DownIntervals([(0.0, 0.05)]),
                              deliver_lost=False, tap=Tap("hop"), seed=1)
        for i in range(10):
            direction.send_nowait(bytes(125), meta=i)  # 10 ms each
        received = []
        with trio.move_on_after(1.0):
            while True:
                item = await direction.receive()
                assert isinstance(item, Delivery)
                received.append(item)
        return received, direction

    received, direction = run_simulation(main, seed=0)
    assert [d.meta for d in received] == [5, 6, 7, 8, 9]
    assert direction.tap.totals.lost == {"outage": 5}
    assert [r.meta for r in direction.tap.records if r.loss == "outage"] == [0, 1, 2, 3, 4]


def test_periodic_windows() -> None:
    windows = PeriodicWindows(first_start_s=10.0, period_s=100.0, duration_s=20.0)
    assert windows.windows(250.0) == [(10.0, 30.0), (110.0, 130.0), (210.0, 230.0)]
    second = 1_000_000_000
    assert windows.down_overlapping(0, 5 * second) == [(-(1 << 62), 10 * second)]
    assert windows.down_overlapping(12 * second, 25 * second) == []
    assert windows.down_overlapping(25 * second, 115 * second) == [(30 * second, 110 * second)]


def test_pointing_losses_include_reacquisition_and_share_streams() -> None:
    scheduled = PointingLosses([(1.0, 0.5)], reacquisition_s=0.25)
    assert scheduled.down_overlapping(0, 10 * NS_PER_S) == [(NS_PER_S, 1_750_000_000)]

    def random_losses(stream: str, seed: int) -> list[tuple[int, int]]:
        losses = PointingLosses(rate_per_s=1 / 60, mean_duration_s=2.0, reacquisition_s=30.0,
                                stream=stream)
        losses.attach_rng(engine.derive_rng(seed, f"outage/{stream}"))
        return losses.down_overlapping(0, 36_000 * NS_PER_S)

    a, b = random_losses("isl", 1), random_losses("isl", 1)
    assert a == b and len(a) > 100
    assert random_losses("isl", 2) != a
    assert all(e - s >= 30 * NS_PER_S for s, e in a)  # every loss costs a reacquisition
    assert all(a[i][1] < a[i + 1][0] for i in range(len(a) - 1))  # merged, disjoint


def test_both_directions_of_a_laser_link_see_the_same_losses() -> None:
    async def main() -> list[list[bool]]:
        directions = [
            Direction(name, rate_bps=1e6, visibility=PointingLosses(
                rate_per_s=1.0, mean_duration_s=0.2, stream="isl"))
            for name in ("forward", "return")
        ]
        for k in range(200):
            await engine.sleep_until_ns(k * 50_000_000)
            for direction in directions:
                direction.send_nowait(bytes(125))
        return [[d.erased for d in await receive_all(direction, 200)]
                for direction in directions]

    forward, back = run_simulation(main, seed=9)
    assert any(forward) and forward == back


def test_bulk_outage_matches_per_unit_rule() -> None:
    down = [(3_000_000, 7_500_000)]

    async def main() -> BulkDelivery:
        direction = Direction("hop", rate_bps=1e6, propagation=0.0005,
                              visibility=DownIntervals([(0.003, 0.0075)]), erasure=0.2,
                              tap=Tap("hop"), seed=2)
        await direction.send_bulk(20, 125)  # 1 ms units
        bulk = await direction.receive()
        assert isinstance(bulk, BulkDelivery)
        totals = direction.tap.totals
        assert totals.units_delivered == bulk.units_delivered
        assert totals.lost.get("outage", 0) == bulk.units_outage
        assert totals.lost.get("erasure", 0) == bulk.units_erased
        return bulk

    bulk = run_simulation(main, seed=0)
    arrivals = bulk.arrivals()
    expected = {i for i, a in enumerate(arrivals) if _overlaps(int(a) - 1_000_000, int(a), down)}
    expected -= set(bulk.erased_idx.tolist())  # an erased unit counts as erased
    assert set(bulk.outage_idx().tolist()) == expected
    mask = bulk.lost_mask()
    assert mask.sum() == bulk.units_lost == len(expected) + bulk.units_erased


def test_erasures() -> None:
    q, n = 0.1, 3000

    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, erasure=q, seed=6)
        for i in range(n):
            direction.send_nowait(b"\x55" * 50, meta=i)
        return await receive_all(direction, n)

    deliveries = run_simulation(main, seed=0)
    erased = [d for d in deliveries if d.erased]
    assert all(d.loss is LossReason.ERASURE and d.unit == b"" for d in erased)
    lo, hi = wilson(len(erased), n)
    assert lo <= q <= hi


def test_reordering() -> None:
    n = 500

    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, propagation=0.001,
                              reorder=Reorder(fraction=0.2, mean_delay_s=0.005), seed=6)
        for i in range(n):
            direction.send_nowait(bytes(10), meta=i)  # 80 us each
        return await receive_all(direction, n)

    deliveries = run_simulation(main, seed=0)
    late = [d for d in deliveries if d.reorder_ns]
    lo, hi = wilson(len(late), n)
    assert lo <= 0.2 <= hi
    assert all(d.t_arrival == d.t_tx_end + d.propagation_ns + d.reorder_ns for d in deliveries)
    arrivals = [d.t_arrival for d in deliveries]
    assert arrivals == sorted(arrivals)  # handed over in arrival order ...
    assert [d.meta for d in deliveries] != list(range(n))  # ... which is not sending order


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------


def _noisy_run(seed: int, reorder: bool = True) -> list[tuple[object, ...]]:
    async def main() -> list[tuple[object, ...]]:
        direction = Direction(
            "hop", rate_bps=1e6, propagation=0.002, ber=1e-3, erasure=0.05,
            ge=GilbertElliott(0.001, 0.05, 0.0, 0.5),
            visibility=PointingLosses(rate_per_s=2.0, mean_duration_s=0.01),
            reorder=Reorder(0.1, 0.003) if reorder else None,
        )
        for i in range(300):
            await engine.sleep_until_ns(i * 1_100_000)
            direction.send_nowait(bytes(range(125)), meta=i)
        return [(d.meta, d.unit, d.t_tx_start, d.t_arrival, d.bit_errors, d.loss)
                for d in await receive_all(direction, 300)]

    return run_simulation(main, seed=seed)


def test_same_seed_same_deliveries_different_seed_different() -> None:
    first = _noisy_run(1)
    assert first == _noisy_run(1)
    assert first != _noisy_run(2)
    assert any(row[4] for row in first) and any(row[5] for row in first)


def test_random_processes_use_separate_streams() -> None:
    """Turning reordering on does not change which bits are flipped (only which units
    fall into an outage, since a reordered unit is received later)."""
    with_reorder = {row[0]: row[1] for row in _noisy_run(3, reorder=True)}
    without = {row[0]: row[1] for row in _noisy_run(3, reorder=False)}
    both = [meta for meta in without if with_reorder[meta] and without[meta]]
    assert len(both) > 200
    assert all(with_reorder[meta] == without[meta] for meta in both)


# --------------------------------------------------------------------------------------
# Accounting
# --------------------------------------------------------------------------------------


def test_tap_records_components_that_sum_to_the_total() -> None:
    async def main() -> Direction:
        direction = Direction("up", rate_bps=64000.0, propagation=0.005, tap=Tap("up"), seed=1)
        for i in range(4):
            direction.send_nowait(bytes(80), meta=i)  # 10 ms each, queued behind each other
        await receive_all(direction, 4)
        return direction

    direction = run_simulation(main, seed=0)
    records = list(direction.tap.records)
    assert [r.queueing_ns for r in records] == [0, 10_000_000, 20_000_000, 30_000_000]
    for r in records:
        assert sum(r.components().values()) == r.total_ns == r.link_ns
    # the stack fills its slots: decoding time of unit seq 2 on this hop
    assert direction.tap.annotate(records[1].seq, Component.CODING, 1_500_000)
    assert not direction.tap.annotate(999, Component.ARQ_WAIT, 1)
    assert records[1].components()[Component.CODING] == 1_500_000
    assert sum(records[1].components().values()) == records[1].total_ns
    assert records[1].total_ns == records[1].link_ns + 1_500_000
    assert direction.tap.totals.sum_ns[Component.CODING] == 1_500_000
    totals = direction.tap.totals
    assert totals.sum_ns[Component.QUEUEING] == 60_000_000
    assert totals.sum_ns[Component.SERIALIZATION] == 40_000_000
    assert totals.sum_ns[Component.PROPAGATION] == 20_000_000
    assert totals.max_ns[Component.QUEUEING] == 30_000_000
    assert "queueing" in direction.tap.summary()


@pytest.mark.parametrize("lossy", [True, False])
def test_bulk_accounting_matches_per_unit_sums(lossy: bool) -> None:
    channel: dict[str, object] = (
        {"erasure": 0.1, "visibility": DownIntervals([(0.0101, 0.0155)]),
         "reorder": Reorder(0.3, 0.001)} if lossy else {"ber": 2e-3}
    )

    async def main() -> tuple[Delivery, BulkDelivery, Tap]:
        tap = Tap("hop")
        direction = Direction("hop", rate_bps=1e6, propagation=0.0005, tap=tap, seed=4,
                              **channel)  # type: ignore[arg-type]
        direction.send_nowait(b"x" * 300)  # the batch queues behind it
        await engine.sleep_until_ns(1_000_000)
        await direction.send_bulk(40, 125)
        single = await direction.receive()
        bulk = await direction.receive()
        assert isinstance(single, Delivery) and isinstance(bulk, BulkDelivery)
        return single, bulk, tap

    single, bulk, tap = run_simulation(main, seed=0)
    keep = ~bulk.lost_mask()
    queueing = (bulk.tx_starts() - bulk.t_enqueued)[keep]
    totals = tap.totals
    assert queueing.min() > 0
    assert totals.units_delivered == int(keep.sum()) + 1
    assert totals.sum_ns[Component.QUEUEING] == int(queueing.sum())
    assert totals.max_ns[Component.QUEUEING] == int(queueing.max())
    assert totals.sum_ns[Component.REORDER] == int(bulk.reorder_array()[keep].sum())
    prop = int(bulk.propagation_array()[keep].sum())
    assert totals.sum_ns[Component.PROPAGATION] == prop + 500_000
    assert totals.sum_ns[Component.SERIALIZATION] == int(keep.sum()) * 1_000_000 + 2_400_000
    assert totals.bit_errors == bulk.bit_errors + single.bit_errors
    assert totals.units_errored == (int(np.count_nonzero(bulk.bit_error_counts()))
                                    + (single.bit_errors > 0))
    assert (totals.units_lost == bulk.units_lost > 0) if lossy else (
        totals.units_lost == 0 and bulk.bit_errors > 0)


def test_link_pairs_two_directions() -> None:
    a = Direction("up", rate_bps=1.0)
    b = Direction("down", rate_bps=1.0)
    link = Link("rf", "ground", "relay", a, b)
    assert link.direction("ground") is a and link.direction("relay") is b
    with pytest.raises(KeyError):
        link.direction("moon")


@pytest.mark.parametrize(
    "kwargs",
    [dict(rate_bps=0.0), dict(rate_bps=1.0, ber=1.5), dict(rate_bps=1.0, erasure=-0.1),
     dict(rate_bps=1.0, queue_capacity=0), dict(rate_bps=1.0, queue_policy="later"),
     dict(rate_bps=float("nan"))],
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Direction("x", **kwargs)  # type: ignore[arg-type]


def test_bad_gilbert_elliott() -> None:
    with pytest.raises(ValueError):
        GilbertElliott(0.0, 0.5)
    with pytest.raises(ValueError):
        GilbertElliott(0.1, 0.5, ber_bad=1.5)
    with pytest.raises(ValueError):
        GilbertElliott.from_mean_bits(0.5, 10)
