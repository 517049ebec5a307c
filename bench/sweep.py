"""Sweep benchmark: a 32-point sweep of the default scenario in this process and on an embedded
two-worker Dask cluster.

The grid is every link's BER (8 values) x the uplink's ARQ T1 (4 values), one seed per point,
``--prompts`` prompts per run. It runs serially (``SerialRunner``), then on a
``dask.distributed`` LocalCluster of ``--workers`` single-threaded worker processes; the two
must give the same samples. The headline::

    serial: <s> s
    2 workers: <s> s
    speedup: <x>

``2 workers`` is the sweep once the cluster is up: the cluster's start (worker processes
importing linkstack and running one warm-up round trip each) is excluded from it and from
``speedup``, and printed on its own line beside the speed-up that includes it. The serial
sweeps run in a process of their own (with no Dask threads in it), after one untimed sweep
there. Serial and parallel sweeps are timed alternately, ``--rounds`` times each, and the
figures are their medians: on this shared host one sweep's time varies by a third from one
run to the next. Both timings plan the same rows in the calling process (the scenario of
every point built and checked, the row keys hashed) and run them with model answers memoized
before timing, so they compare where the round trips run, not the model.

The host's own ceiling is printed beside the speed-up: the speed-up of ``--workers`` plain
processes each spinning a CPU loop, measured in the same run. On a virtual machine whose
vCPUs share physical cores with other guests it is below the worker count (1.6-1.9 on the
2-vCPU machine this was written on), and no sweep can beat it. The mean time of one run
serially and on the workers is printed too: a run that takes much longer on a worker than
alone says the workers were short of cores.

    python bench/sweep.py                           # recorded answers (gemma-recorded.json)
    python bench/sweep.py --prompts 8 --workers 2
    python bench/sweep.py --backend llama           # the real model answers, once per prompt
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from linkstack.cli.sweep import _backend
from linkstack.sims.distributed import DaskRunner, OnResult, SerialRunner
from linkstack.sims.memo import MemoBackend
from linkstack.sims.sweep import SweepResult, run_sweep

RECORDING = Path(__file__).resolve().parents[1] / "sims" / "scenarios" / "gemma-recorded.json"
VARY = ["ber=0,1e-6,1e-5,3e-5,1e-4,3e-4,1e-3,3e-3",
        "links.uplink.stack.arq_params.t1_initial=0.5,1.0,2.0,3.0"]
POINTS = 8 * 4


class _PlanOnly:
    """A runner that runs nothing: a sweep through it only plans, i.e. memoizes the model's
    answers to every prompt of the grid."""

    parallelism = 1

    def describe(self) -> str:
        return "nowhere"

    def run(self, fn: Callable[[Any, Any], Any], context: Any, items: Sequence[Any],
            on_result: OnResult) -> None:
        return None


def _spin(n: int) -> float:
    """A pure-Python CPU load of ``n`` steps; its wall time."""
    t0 = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i % 7
    return time.perf_counter() - t0


def host_ceiling(workers: int, n: int = 4_000_000, rounds: int = 3) -> float:
    """What ``workers`` processes buy on this host right now for work with no coordination at
    all: the time of one CPU load alone over the time of ``workers`` such loads at once (the
    median of ``rounds``). On a virtual machine whose vCPUs share physical cores with other
    guests this is below ``workers``, and no sweep can beat it."""
    ratios = []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_spin, [1000] * workers)  # the processes started
        for _ in range(rounds):
            alone = _spin(n)
            t0 = time.perf_counter()
            pool.map(_spin, [n] * workers, chunksize=1)
            ratios.append(workers * alone / (time.perf_counter() - t0))
    return statistics.median(ratios)


def _timed_sweep(backend: Any, kwargs: dict[str, Any], runner: Any
                 ) -> tuple[SweepResult, float]:
    """The bench's sweep on ``runner`` (None: serially, here) and its wall time."""
    t0 = time.perf_counter()
    result = run_sweep("default", VARY, backend, runner=runner or SerialRunner(), **kwargs)
    return result, time.perf_counter() - t0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="seeds per point (default 1)")
    ap.add_argument("--prompts", type=int, default=5, help="prompts per run (default 5)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="serial and parallel sweeps timed, alternately (default 5; the "
                         "figures are the medians)")
    ap.add_argument("--backend", default=f"recorded:{RECORDING}",
                    help="recorded:FILE (default: sims/scenarios/gemma-recorded.json) or llama")
    ap.add_argument("--model", type=Path, default=None, help="GGUF file for --backend llama")
    args = ap.parse_args()

    memo, identity = _backend(args.model, args.backend)
    assert isinstance(memo, MemoBackend)
    kwargs: dict[str, Any] = {"n_prompts": args.prompts, "repeat": args.repeat}
    run_sweep("default", VARY, memo, runner=_PlanOnly(), **kwargs)  # the model, untimed

    load_before = load()
    ceiling = host_ceiling(args.workers)
    runner = DaskRunner(workers=args.workers)
    # serial sweeps run in a process of their own, with no cluster in it: in this one the
    # embedded cluster's scheduler and client threads would take the GIL from them
    with multiprocessing.get_context("spawn").Pool(1) as alone:
        replay = memo.replay()
        alone.apply(_timed_sweep, (replay, kwargs, None))  # its imports and first round trip
        try:
            t0 = time.perf_counter()
            runner.connect()
            t_start = time.perf_counter() - t0
            times: list[tuple[float, float]] = []
            for _ in range(args.rounds):  # interleaved: a slow spell of the host hits both
                serial, t_serial = alone.apply(_timed_sweep, (replay, kwargs, None))
                parallel, t_parallel = _timed_sweep(memo, kwargs, runner)
                times.append((t_serial, t_parallel))
        finally:
            runner.close()
    load_after = load()
    t_serial = statistics.median(t for t, _ in times)
    t_parallel = statistics.median(t for _, t in times)

    same = [p.evaluation.samples for p in serial.points] == \
        [p.evaluation.samples for p in parallel.points]
    ok = same and not serial.failures and not parallel.failures
    print(f"sweep of default: {' x '.join(VARY)} = {len(serial.points)} points x {args.repeat} "
          f"seed(s) x {args.prompts} prompts, {serial.ran} runs; answers: {identity}")
    print(f"load average before: {load_before}")
    print("rounds (serial, parallel): " + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in times))
    print(f"serial: {t_serial:.2f} s")
    print(f"{args.workers} workers: {t_parallel:.2f} s")
    print(f"speedup: {t_serial / t_parallel:.2f}")
    print(f"(host ceiling now: {ceiling:.2f}, the speed-up of {args.workers} plain CPU-bound "
          f"processes with no coordination; the sweep reached "
          f"{100 * t_serial / t_parallel / ceiling:.0f} % of it)")
    print(f"(cluster start excluded above; it took {t_start:.2f} s more, with it the speedup "
          f"is {t_serial / (t_parallel + t_start):.2f})")
    print(f"load average after: {load_after}")
    per_run = [1000 * sum(p.evaluation.wall_s for p in r.points) / max(1, r.ran)
               for r in (serial, parallel)]
    short = " (longer on the workers: they were short of cores)" \
        if per_run[1] > 1.25 * per_run[0] else ""
    print(f"mean time of a run: {per_run[0]:.0f} ms serial, {per_run[1]:.0f} ms on the "
          f"workers{short}")
    print(f"same samples: {'yes' if same else 'NO'}; failed runs: "
          f"{len(serial.failures)} serial, {len(parallel.failures)} parallel")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
