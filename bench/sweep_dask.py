"""Sweep benchmark: the same sweep in this process and on an embedded two-worker Dask cluster.

Runs one grid (every link's BER x the uplink's T1, several seeds, a few prompts per run, the
recorded model answers of ``sims/scenarios/gemma-recorded.json``) serially, then on a
``dask.distributed`` LocalCluster of ``--workers`` single-threaded worker processes, checks that
both give the same samples, and prints the wall times and their ratio:

    serial            <s> s   (<runs> runs)
    2 workers         <s> s   (+ <s> s to start the cluster)
    speed-up          <x>     (serial / parallel, cluster start excluded; with it: <x>)

On a machine with N free cores the speed-up approaches N for runs that take long against
Dask's per-task cost (a few ms); the runs here take tens to hundreds of milliseconds.

    python bench/sweep_dask.py                    # 5 BERs x 2 T1 x 4 seeds x 5 prompts
    python bench/sweep_dask.py --repeat 8 --workers 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from linkstack.payload.backend import RecordedBackend
from linkstack.sims.distributed import DaskRunner, SerialRunner
from linkstack.sims.memo import MemoBackend
from linkstack.sims.sweep import run_sweep

RECORDING = Path(__file__).resolve().parents[1] / "sims" / "scenarios" / "gemma-recorded.json"
VARY = ["ber=0,1e-5,1e-4,1e-3,3e-3", "links.uplink.stack.arq_params.t1_initial=0.5,3.0"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="worker processes")
    ap.add_argument("--repeat", type=int, default=4, help="seeds per point")
    ap.add_argument("--prompts", type=int, default=5, help="prompts per run")
    args = ap.parse_args()

    def backend() -> MemoBackend:
        return MemoBackend(RecordedBackend.from_json(RECORDING.read_text()))

    kwargs = {"n_prompts": args.prompts, "repeat": args.repeat}
    t0 = time.perf_counter()
    serial = run_sweep("default", VARY, backend(), runner=SerialRunner(), **kwargs)
    t_serial = time.perf_counter() - t0

    runner = DaskRunner(workers=args.workers)
    try:
        t0 = time.perf_counter()
        runner.connect()
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        parallel = run_sweep("default", VARY, backend(), runner=runner, **kwargs)
        t_parallel = time.perf_counter() - t0
    finally:
        runner.close()
    same = [p.evaluation.samples for p in serial.points] == \
        [p.evaluation.samples for p in parallel.points]
    print(f"sweep: {' x '.join(VARY)}, {args.repeat} seeds, {args.prompts} prompts per run")
    print(f"serial            {t_serial:7.2f} s   ({serial.ran} runs)")
    print(f"{args.workers} workers         {t_parallel:7.2f} s   (+ {t_start:.2f} s to start "
          "the cluster)")
    print(f"speed-up          {t_serial / t_parallel:7.2f}   (serial / parallel, cluster start "
          f"excluded; with it: {t_serial / (t_parallel + t_start):.2f})")
    print(f"same samples      {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
