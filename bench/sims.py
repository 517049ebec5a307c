"""Benchmark of the link simulators: simulated seconds per wall second, and memory.

Traffic (the default scenario's four link directions, every direction saturated):

* **uplink** (S-band, 64 kbit/s): back-to-back 1115-octet units with real bytes, sent one
  by one (a new unit is enqueued the instant the previous one finishes serialization),
  bit errors applied to the bytes;
* **relay**: forwards every uplink unit that arrives onto **isl-forward**, one by one;
* **sat1**: answers every unit it receives with one 1115-octet unit on **isl-return**;
* **relay**: forwards every answer onto the **downlink**; the ground station records the
  end-to-end delay of each prompt/answer pair;
* **bulk load**: the downlink (320 Mbit/s) and both ISL directions (1.8 Gbit/s) are kept
  saturated by batches of 1115-octet units (``--batch-ms`` of transmission time each,
  default 1000 ms), one event per batch with vectorised channel draws
  (:meth:`Direction.send_bulk`).  The per-unit prompt/answer frames queue behind them, FIFO.

All channel models of the profiles are on: BER, Gilbert–Elliott bursts (X-band) and fades
(laser), random laser pointing losses.  The RF links are always visible, so that the whole
chain carries traffic all the time (the default scenario's LEO pass is 9 min per 99 min
orbit); ``--passes`` keeps the pass windows (units sent outside a pass are lost and
counted).  Queues are unbounded here (the bulk batches are far larger than the profiles'
capacities).

Prints ``speed: <N>x real time`` (the median of ``--repeat`` identical runs, default 3: a
shared 2-core machine varies by +-10 % from run to run) and ``peak memory: <M> MiB`` (peak
resident set size).
``--hours H`` runs H simulated hours, prints the wall time and the memory sampled every
simulated 10 minutes, to show that it stays flat.

    python bench/sims.py                  # 600 simulated seconds
    python bench/sims.py --hours 1
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from linkstack.sims import engine
from linkstack.sims.link import BulkDelivery, Delivery, Direction
from linkstack.sims.scenario import load_scenario
from linkstack.sims.taps import Tap

UNIT_OCTETS = 1115


def _rss_mib() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Bench:
    def __init__(self, seconds: float, batch_ms: float, seed: int, sample_s: float,
                 passes: bool = False) -> None:
        self.passes = passes
        self.seconds = seconds
        self.batch_ms = batch_ms
        self.sample_s = sample_s
        self.seed = seed
        self.prompts = 0
        self.answers = 0
        self.e2e_histogram = np.zeros(100_000, dtype=np.int64)  # 0.1 ms bins up to 10 s
        self.e2e_max_ns = 0
        self.bulk_units = 0
        self.samples: list[tuple[float, float]] = []

    async def main(self) -> dict[str, Direction]:
        overrides = [] if self.passes else [
            f"links.{name}.{key}" for name in ("uplink", "downlink") for key in (
                "outages.model=none", "propagation.model=slant", "propagation.elevation_deg=30")
        ]
        scenario = load_scenario("default", overrides)
        specs = {name: dataclasses.replace(spec, queue_capacity=None)
                 for name, spec in scenario.links.items()}
        self.up = specs["uplink"].build_direction(on_delivery=self.at_relay_from_ground,
                                                  tap=Tap("uplink", max_records=0))
        self.isl_f = specs["isl-forward"].build_direction(on_delivery=self.at_sat1,
                                                          tap=Tap("isl-forward", max_records=0))
        self.isl_r = specs["isl-return"].build_direction(on_delivery=self.at_relay_from_sat1,
                                                         tap=Tap("isl-return", max_records=0))
        self.down = specs["downlink"].build_direction(on_delivery=self.at_ground,
                                                      tap=Tap("downlink", max_records=0))
        scheduler = engine.current_simulation().scheduler
        self.payload_rng = engine.rng("bench/payload")
        self.payloads = [self.payload_rng.bytes(UNIT_OCTETS) for _ in range(64)]
        scheduler.call_at(0, self.uplink_source)
        for direction in (self.down, self.isl_f, self.isl_r):
            scheduler.call_at(0, self.bulk_source, direction)
        scheduler.call_at(0, self.sample)
        await engine.sleep_until_ns(engine.to_ns(self.seconds))
        return {d.name: d for d in (self.up, self.isl_f, self.isl_r, self.down)}

    # -- sources ---------------------------------------------------------------------

    def uplink_source(self) -> None:
        self.prompts += 1
        payload = self.payloads[self.prompts % len(self.payloads)]
        receipt = self.up.send_nowait(payload, meta=engine.now_ns())
        assert receipt.t_tx_end is not None
        engine.call_at(receipt.t_tx_end, self.uplink_source)

    def bulk_source(self, direction: Direction) -> None:
        count = max(1, round(direction.rate_bps * self.batch_ms / 1000 / (8 * UNIT_OCTETS)))
        receipt = direction.send_bulk_nowait(count, UNIT_OCTETS, meta="bulk")
        self.bulk_units += count
        assert receipt.t_tx_end is not None
        engine.call_at(receipt.t_tx_end, self.bulk_source, direction)

    def sample(self) -> None:
        self.samples.append((engine.now(), _rss_mib()))
        engine.call_at(engine.now_ns() + engine.to_ns(self.sample_s), self.sample)

    # -- receivers -------------------------------------------------------------------

    def at_relay_from_ground(self, d: Delivery | BulkDelivery) -> None:
        if isinstance(d, Delivery) and not d.erased:
            self.isl_f.send_nowait(d.unit, meta=d.meta)

    def at_sat1(self, d: Delivery | BulkDelivery) -> None:
        if isinstance(d, Delivery) and not d.erased:
            self.isl_r.send_nowait(d.unit, meta=d.meta)

    def at_relay_from_sat1(self, d: Delivery | BulkDelivery) -> None:
        if isinstance(d, Delivery) and not d.erased:
            self.down.send_nowait(d.unit, meta=d.meta)

    def at_ground(self, d: Delivery | BulkDelivery) -> None:
        if isinstance(d, Delivery) and not d.erased:
            self.answers += 1
            delay = d.t_arrival - d.meta
            self.e2e_histogram[min(delay // 100_000, len(self.e2e_histogram) - 1)] += 1
            self.e2e_max_ns = max(self.e2e_max_ns, delay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--hours", type=float, default=None, help="simulated hours (memory run)")
    parser.add_argument("--batch-ms", type=float, default=1000.0,
                        help="transmission time of one bulk batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--passes", action="store_true",
                        help="keep the RF contact windows of the LEO pass")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs of the same simulation; the speed line is their median "
                             "(default 3, or 1 with --hours)")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.hours is None else args.hours * 3600.0
    repeat = args.repeat if args.repeat is not None else (1 if args.hours is not None else 3)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):  # identical runs (same seed): only the timing varies
        bench = Bench(seconds, args.batch_ms, args.seed, sample_s=600.0, passes=args.passes)
        start = time.perf_counter()
        cpu_start = time.process_time()
        directions = engine.run_simulation(bench.main, seed=args.seed)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    wall = statistics.median(walls)
    cpu = statistics.median(cpus)

    print(f"traffic: uplink saturated with {UNIT_OCTETS}-octet units (per unit, real bytes), "
          f"relayed over the ISL, answered 1:1 by sat1, relayed to the downlink; downlink and "
          f"both ISL directions saturated by bulk batches of {args.batch_ms:g} ms")
    rf = ("LEO pass windows and delays" if args.passes
          else "always visible, slant range at 30 deg elevation")
    print(f"RF links: {rf}")
    print(f"simulated: {seconds:g} s in {wall:.2f} s wall ({cpu:.2f} s CPU of this process)"
          + (f", median of {repeat} runs: " + ", ".join(f"{w:.2f} s" for w in walls)
             if repeat > 1 else ""))
    for direction in directions.values():
        print(direction.tap.summary())
    if bench.answers:
        cumulative = np.cumsum(bench.e2e_histogram)
        median_bin = int(np.searchsorted(cumulative, bench.answers / 2))
        print(f"prompt/answer pairs: {bench.prompts} sent, {bench.answers} answered; "
              f"end-to-end delay: median {median_bin / 10:.1f} ms (0.1 ms bins), "
              f"max {bench.e2e_max_ns / 1e6:.3f} ms")
    print(f"bulk units: {bench.bulk_units}")
    if args.hours is not None:
        print(f"wall time for {args.hours:g} simulated hour(s): {wall:.2f} s")
        print("memory (RSS) every 10 simulated minutes: "
              + ", ".join(f"{t / 60:.0f} min {m:.1f} MiB" for t, m in bench.samples))
    print(f"speed (CPU time): {seconds / cpu:.0f}x real time")
    print(f"speed: {seconds / wall:.0f}x real time")
    print(f"peak memory: {_peak_mib():.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
