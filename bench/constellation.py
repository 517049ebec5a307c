"""Benchmark of the constellation simulator (linkstack.sims.constellation.simulate).

Prints, each on its own line:

* ``star-compute 24h: <N>x real time`` -- the 12-satellite ring, 4 stations, 1 prompt per
  minute over 24 simulated hours (the scenario's own traffic), every hop on the full stack;
* ``walker-2800 1h: <N>x real time`` -- 2,800 satellites, 12 stations, 10 prompts per second for
  one simulated hour (``--walker-hours`` to shorten it);
* ``walker-2800 1h on CPU time: <N>x`` -- the same run against the process's CPU time
  (what the wall-clock figure would be on an idle core; compare these when the machine is
  shared);
* ``walker-2800 route: <X> ms per prompt`` -- the routing work of one prompt on the walker plan:
  one earliest-arrival query station -> any satellite (ingress), the nearest computing satellite
  on the snapshot topology (placement, ``RoutingTable.nearest`` as ``nearest-free`` asks it),
  one query satellite -> any station (the answer), timed over ``--queries`` prompts at random
  times and stations;
* ``baseline: ...`` -- the same prompts through the chain scenario (``linkstack run default``:
  one fixed path ground -> relay -> sat1) in the same process, as prompts per wall second, and
  the constellation's prompts per wall second against it;
* ``peak memory: <M> MiB`` (peak resident set size of the process);
* p95 and ``within_120_s`` of star-compute with ISL routing (``nearest-free``) and without
  (``no-isl``).

The model: ``--backend llama`` (default) runs Gemma 3 270M once per distinct prompt
(:class:`~linkstack.sims.memo.MemoBackend`) and replays its answers and measured inference
times; ``--backend recorded:FILE`` replays a recording.

    python bench/constellation.py
    python bench/constellation.py --walker-hours 0.1 \
        --backend recorded:sims/scenarios/gemma-recorded.json
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from linkstack.cli.run import load_backend
from linkstack.sims.constellation.scenario import load_constellation
from linkstack.sims.constellation.simulate import build_world, run_constellation
from linkstack.sims.memo import MemoBackend
from linkstack.sims.roundtrip import run_roundtrip
from linkstack.sims.scenario import load_scenario


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(scenario, backend, hours, overrides=()):  # type: ignore[no-untyped-def]
    sc = load_constellation(scenario, list(overrides))
    t, cpu = time.perf_counter(), time.process_time()
    report = run_constellation(sc, backend, duration_s=hours * 3600.0)
    _timed.cpu_s = time.process_time() - cpu  # type: ignore[attr-defined]
    return report, time.perf_counter() - t


def route_ms(queries: int, seed: int = 7) -> float:
    """Routing work of one prompt on the walker plan, ms (module docstring)."""
    sc = load_constellation("walker-2800")
    world = build_world(sc, 3600.0 + sc.traffic.timeout_s + 60.0)
    rng = np.random.default_rng(seed)
    table = world.table
    computing = np.array(sorted(world.computing), dtype=np.intp)
    times = np.sort(rng.uniform(0.0, 3600.0, queries))  # in time order, as a run asks them
    stations = rng.integers(0, len(world.stations), queries)
    t0 = time.perf_counter()
    for t, station in zip(times.tolist(), stations.tolist(), strict=True):
        up = table.route(station, world.satellite_set, t, size_bits=800)
        assert up is not None
        _, delay = table.nearest(up.arrival_s, up.dst, computing)
        assert np.isfinite(delay)
        down = table.route(up.dst, world.station_set, up.arrival_s + 0.5, size_bits=800)
        assert down is not None
    return (time.perf_counter() - t0) / queries * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="llama")
    ap.add_argument("--walker-hours", type=float, default=1.0)
    ap.add_argument("--star-hours", type=float, default=24.0)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    backend = MemoBackend(load_backend(None, args.backend))  # type: ignore[arg-type]

    star, wall = _timed("star-compute", backend, args.star_hours)
    print(f"star-compute {args.star_hours:g}h: {args.star_hours * 3600 / wall:.0f}x real time "
          f"({len(star.prompts)} prompts in {wall:.1f} s wall)", flush=True)
    s = star.summary()
    no_isl, _ = _timed("star-compute", backend, args.star_hours, ["routing.policy=no-isl"])
    n = no_isl.summary()
    print(f"star-compute with ISL routing (nearest-free): p50 {s['p50_s']:.1f} s, "
          f"p95 {s['p95_s']:.1f} s, within_120_s {s['within_120_s']:.3f}, answered "
          f"{s['answered']}/{s['prompts']}, mean hops {s['mean_hops']:.2f}")
    print(f"star-compute without ISLs (no-isl):         p50 {n['p50_s']:.1f} s, "
          f"p95 {n['p95_s']:.1f} s, within_120_s {n['within_120_s']:.3f}, answered "
          f"{n['answered']}/{n['prompts']} ({n['rejected']} busy), mean hops "
          f"{n['mean_hops']:.2f}", flush=True)

    walker, wall_w = _timed("walker-2800", backend, args.walker_hours)
    w = walker.summary()
    print(f"walker-2800 {args.walker_hours:g}h: {args.walker_hours * 3600 / wall_w:.1f}x real "
          f"time ({len(walker.prompts)} prompts in {wall_w:.1f} s wall; p95 {w['p95_s']:.3f} s, "
          f"within_120_s {w['within_120_s']:.3f}, mean hops {w['mean_hops']:.2f}, "
          f"{w['links_used']} hops built)", flush=True)
    cpu_w = _timed.cpu_s  # type: ignore[attr-defined]
    print(f"walker-2800 {args.walker_hours:g}h on CPU time: "
          f"{args.walker_hours * 3600 / cpu_w:.1f}x ({cpu_w:.1f} s of process CPU time: the "
          f"figure to compare when other processes share the cores)", flush=True)
    print(f"walker-2800 route: {route_ms(args.queries):.2f} ms per prompt", flush=True)

    chain = load_scenario("default")
    texts = [t for _, _, t in zip(range(60), range(60), _cycle(chain.run.prompts),
                                  strict=False)]
    t = time.perf_counter()
    run_roundtrip(chain, backend, prompts=texts)  # type: ignore[arg-type]
    base = len(texts) / (time.perf_counter() - t)
    ours = len(walker.prompts) / wall_w
    print(f"baseline: chain round trip {base:.0f} prompts/s wall; walker-2800 {ours:.0f} "
          f"prompts/s wall ({ours / base:.2f}x the chain)")
    print(f"peak memory: {_peak_mib():.0f} MiB")


def _cycle(items):  # type: ignore[no-untyped-def]
    while True:
        yield from items


if __name__ == "__main__":
    main()
