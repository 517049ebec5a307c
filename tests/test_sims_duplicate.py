"""Frame duplication on a link direction (linkstack.sims.link, ``duplicate``).

Statistical checks use fixed seeds, so they are deterministic; each compares a measured
rate or mean with its analytic value within a 99.9 % interval computed here (Wilson score
interval for proportions, CLT for means).
"""

from __future__ import annotations

import math

import pytest
from sim_stats import Z999, ser_ns, wilson

from linkstack.sims import engine
from linkstack.sims.channel import DownIntervals, Reorder
from linkstack.sims.engine import NS_PER_S, run_simulation
from linkstack.sims.link import BulkDelivery, Delivery, Direction, LossReason
from linkstack.sims.taps import Component, Tap


def collect(n: int, *, gap_ns: int = 0, octets: int = 50, payload: bytes | None = None,
            **kwargs: object) -> list[Delivery]:
    """Send ``n`` units (``meta`` = index) and return every delivery, in arrival order."""

    async def main() -> list[Delivery]:
        out: list[Delivery] = []
        direction = Direction("hop", on_delivery=out.append, **kwargs)  # type: ignore[arg-type]
        for i in range(n):
            await engine.sleep_until_ns(i * gap_ns)
            direction.send_nowait(payload or bytes([i % 256]) * octets, meta=i)
        await engine.sleep_until_ns(n * gap_ns + 60 * NS_PER_S)  # everything has landed
        return out

    return run_simulation(main, seed=0)


def test_fraction_of_units_received_twice() -> None:
    q, n = 0.1, 4000
    deliveries = collect(n, rate_bps=1e6, propagation=0.002, duplicate=q, seed=3)
    originals = [d for d in deliveries if not d.duplicate]
    copies = [d for d in deliveries if d.duplicate]
    assert [d.meta for d in originals] == list(range(n))  # each unit arrives once ...
    lo, hi = wilson(len(copies), n)
    assert lo <= q <= hi  # ... and a fraction q of them a second time
    assert len({d.seq for d in copies}) == len(copies)  # never a third time


def test_copy_follows_the_original_with_the_same_content() -> None:
    rate = 64000.0
    deliveries = collect(300, rate_bps=rate, propagation=0.005, ber=2e-3, duplicate=1.0,
                         seed=2)
    by_seq: dict[int, list[Delivery]] = {}
    for d in deliveries:
        by_seq.setdefault(d.seq, []).append(d)
    assert len(by_seq) == 300
    ser = ser_ns(50, rate)
    errored = 0
    for original, copy in by_seq.values():
        assert (original.duplicate, copy.duplicate) == (False, True)
        # the copy's reception starts when the original's ends
        assert copy.t_arrival == original.t_arrival + ser
        assert copy.reorder_ns == original.reorder_ns + ser
        assert copy.t_arrival - copy.t_enqueued == (
            copy.queueing_ns + copy.serialization_ns + copy.propagation_ns + copy.reorder_ns)
        # the same unit, bit errors included, received twice
        assert copy.unit == original.unit and copy.bit_errors == original.bit_errors
        assert list(copy.error_positions) == list(original.error_positions)
        assert (copy.meta, copy.octets, copy.t_tx_start, copy.t_tx_end, copy.hop) == (
            original.meta, original.octets, original.t_tx_start, original.t_tx_end,
            original.hop)
        errored += original.bit_errors > 0
    # 400 bits at BER 2e-3: P(errored) = 1 - (1 - 2e-3)**400 = 0.551
    lo, hi = wilson(errored, 300)
    assert lo <= 1 - (1 - 2e-3) ** 400 <= hi
    arrivals = [d.t_arrival for d in deliveries]
    assert arrivals == sorted(arrivals)  # handed over in arrival order


def test_extra_delay_of_copies_is_exponential_with_the_given_mean() -> None:
    mean_s, n = 0.004, 2000
    rate = 1e6
    deliveries = collect(n, gap_ns=1_000_000, rate_bps=rate, propagation=0.001,
                         duplicate=1.0, duplicate_delay_s=mean_s, seed=5)
    originals = {d.seq: d for d in deliveries if not d.duplicate}
    extra = [d.t_arrival - originals[d.seq].t_arrival - ser_ns(50, rate)
             for d in deliveries if d.duplicate]
    assert len(extra) == n and min(extra) >= 0
    mean = sum(extra) / n / NS_PER_S
    half = Z999 * mean_s / math.sqrt(n)  # the standard deviation of an exponential is its mean
    assert mean_s - half <= mean <= mean_s + half
    # late copies are overtaken by units sent after them: arrivals are not in sending order
    metas = [d.meta for d in deliveries]
    assert metas != sorted(metas)


def test_lost_units_are_not_duplicated() -> None:
    deliveries = collect(2000, rate_bps=1e6, erasure=0.3, duplicate=0.5, seed=4)
    erased = {d.seq for d in deliveries if d.erased and not d.duplicate}
    copies = [d for d in deliveries if d.duplicate]
    assert erased and copies
    assert not {d.seq for d in copies} & erased
    assert all(not d.erased for d in copies)  # no outage: every copy arrives
    # a fraction 0.5 of the units that arrived has a copy
    lo, hi = wilson(len(copies), 2000 - len(erased))
    assert lo <= 0.5 <= hi


def test_copy_received_in_an_outage_is_lost_and_recorded() -> None:
    rate = 8000.0  # 50 octets: 50 ms each
    downs = [(0.46, 0.5), (0.72, 0.74)]
    ms = 1_000_000

    async def main() -> tuple[list[Delivery], Tap]:
        out: list[Delivery] = []
        tap = Tap("hop")
        direction = Direction("hop", rate_bps=rate, duplicate=1.0, tap=tap,
                              visibility=DownIntervals(downs), on_delivery=out.append, seed=1)
        for i in range(12):
            await engine.sleep_until_ns(i * 100 * ms)  # one unit every 100 ms
            direction.send_nowait(bytes(50), meta=i)
        await engine.sleep_until_ns(5 * NS_PER_S)
        return out, tap

    deliveries, tap = run_simulation(main, seed=0)

    def hit(start_ms: int) -> bool:  # a reception [start, start + 50 ms) meets an outage
        return any(start_ms < e * 1000 and start_ms + 50 > s * 1000 for s, e in downs)

    # unit i is received in [100 i, 100 i + 50) ms, its copy right after it
    expected_lost = set()
    copies = 0
    for i in range(12):
        if hit(100 * i):
            expected_lost.add((i, False))  # lost: no copy
            continue
        copies += 1
        if hit(100 * i + 50):
            expected_lost.add((i, True))
    assert expected_lost == {(4, True), (7, False)}  # the case this test is about
    lost = {(d.meta, d.duplicate) for d in deliveries if d.erased}
    assert lost == expected_lost
    assert all(d.loss is LossReason.OUTAGE and d.unit == b"" for d in deliveries if d.erased)
    assert len(deliveries) == 12 + copies
    totals = tap.totals
    assert totals.units_sent == len(deliveries)
    assert totals.units_lost == totals.lost[LossReason.OUTAGE.value] == 2
    assert totals.units_sent == totals.units_delivered + totals.units_lost

    # with deliver_lost=False the lost copy stays invisible to the receiver, not to the tap
    async def hidden() -> tuple[list[Delivery], Tap]:
        out: list[Delivery] = []
        tap = Tap("hop")
        direction = Direction("hop", rate_bps=rate, duplicate=1.0, tap=tap, deliver_lost=False,
                              visibility=DownIntervals(downs), on_delivery=out.append, seed=1)
        for i in range(12):
            await engine.sleep_until_ns(i * 100 * ms)
            direction.send_nowait(bytes(50), meta=i)
        await engine.sleep_until_ns(5 * NS_PER_S)
        return out, tap

    shown, tap = run_simulation(hidden, seed=0)
    assert [(d.meta, d.duplicate) for d in shown] == [
        (d.meta, d.duplicate) for d in deliveries if not d.erased]
    assert tap.totals.units_lost == 2


def test_tap_keeps_a_record_per_arrival_with_components_that_sum() -> None:
    async def main() -> Tap:
        tap = Tap("up")
        direction = Direction("up", rate_bps=64000.0, propagation=0.005, duplicate=0.5,
                              duplicate_delay_s=0.002, reorder=Reorder(0.3, 0.003), tap=tap,
                              on_delivery=lambda d: None, seed=9)
        for i in range(200):
            await engine.sleep_until_ns(i * 20_000_000)
            direction.send_nowait(bytes(80), meta=i)
        await engine.sleep_until_ns(10 * NS_PER_S)
        return tap

    tap = run_simulation(main, seed=0)
    records = list(tap.records)
    seqs = [r.seq for r in records]
    twice = {s for s in seqs if seqs.count(s) == 2}
    assert len(set(seqs)) == 200 and twice and max(seqs.count(s) for s in seqs) == 2
    assert tap.totals.units_sent == len(records) == 200 + len(twice)
    for r in records:
        assert sum(r.components().values()) == r.total_ns == r.link_ns
    for s in twice:
        first, second = (r for r in records if r.seq == s)
        assert second.t_arrival >= first.t_arrival + 10_000_000  # 80 octets: 10 ms
        assert second.reorder_ns - first.reorder_ns == second.t_arrival - first.t_arrival
    totals = tap.totals
    assert totals.sum_ns[Component.REORDER] == sum(r.reorder_ns for r in records)


def test_copies_come_through_the_receive_channel_too() -> None:
    async def main() -> list[Delivery]:
        direction = Direction("hop", rate_bps=1e6, duplicate=1.0, seed=1)
        direction.send_nowait(b"abc", meta="x")
        first = await direction.receive()
        second = await direction.receive()
        assert isinstance(first, Delivery) and isinstance(second, Delivery)
        return [first, second]

    first, second = run_simulation(main, seed=0)
    assert (first.unit, first.duplicate, second.unit, second.duplicate) == (
        b"abc", False, b"abc", True)
    assert second.t_arrival - first.t_arrival == ser_ns(3, 1e6)


def _signature(seed: int, duplicate: float) -> list[tuple[object, ...]]:
    deliveries = collect(
        400, gap_ns=300_000, rate_bps=1e6, propagation=0.001, ber=1e-3, erasure=0.1,
        reorder=Reorder(0.2, 0.002), duplicate=duplicate, duplicate_delay_s=0.001,
        visibility=DownIntervals([(0.05, 0.06)]), seed=seed,
    )
    return [(d.meta, d.duplicate, d.unit, d.t_arrival, d.loss) for d in deliveries]


def test_same_seed_same_copies_different_seed_different() -> None:
    first = _signature(7, 0.2)
    assert first == _signature(7, 0.2)
    assert first != _signature(8, 0.2)
    assert any(row[1] for row in first)


def test_duplication_does_not_shift_the_other_random_processes() -> None:
    """Its own stream: with duplication on, the originals are exactly those of a run
    without it (same losses, bit errors and reorder delays)."""
    with_copies = _signature(11, 0.3)
    without = _signature(11, 0.0)
    assert [row for row in with_copies if not row[1]] == without
    assert sum(row[1] for row in with_copies) > 50


def test_bulk_batches_are_refused_with_duplication() -> None:
    async def main() -> None:
        direction = Direction("hop", rate_bps=1e6, duplicate=0.1, seed=1)
        with pytest.raises(ValueError, match="duplication"):
            direction.send_bulk_nowait(10, 100)
        with pytest.raises(ValueError, match="duplication"):
            await direction.send_bulk(10, 100)
        plain = Direction("plain", rate_bps=1e6, seed=1)  # without duplication: accepted
        plain.send_bulk_nowait(10, 100)
        assert isinstance(await plain.receive(), BulkDelivery)

    run_simulation(main, seed=0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(duplicate=1.5), dict(duplicate=-0.1), dict(duplicate_delay_s=-1.0),
     dict(duplicate_delay_s=float("nan")), dict(duplicate_delay_s=float("inf"))],
)
def test_bad_duplication_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Direction("x", rate_bps=1.0, **kwargs)  # type: ignore[arg-type]
