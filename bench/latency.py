"""Latency benchmark: total / physical bound of the default scenario with tuned settings.

For each bit error rate (applied to all four link directions: ``--set links.<name>.ber=...``),
the protocol settings of the default scenario are tuned for that channel
(:func:`linkstack.sims.tune.tune`, objective p95 of the total latency), and the tuned settings'
median ratio total/bound over every prompt of every run is printed as

    BER 1e-6: ratio <r>
    BER 1e-4: ratio <r>

Targets: <= 1.10 at 1e-6 and <= 1.5 at 1e-4. The bound is what physics needs for the same run
(propagation + serialization of the message octets at the link rates + inference); the ratio
is the stack's cost. Each BER line is followed by the default settings' ratio, the p95, the
settings the tuning changed, and the *link-only* ratio (total - inference) / (bound -
inference), which shows the protocol overhead without the inference time that dominates both.

The onboard model is the real one (Gemma 3 270M, llama.cpp) when installed, memoized: it runs
once per prompt and every candidate replays that answer and inference time, so the comparison
is the protocol's alone. ``--backend recorded`` (or a missing model) uses a recorded answer.

    python bench/latency.py                 # budget 40 evaluations per BER, 5 prompts x 2 runs
    python bench/latency.py --budget 80 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from linkstack.errors import ConfigError
from linkstack.payload.backend import Generation, ModelBackend, RecordedBackend
from linkstack.sims.memo import MemoBackend
from linkstack.sims.sweep import Evaluation, read_scenario_source
from linkstack.sims.tune import tune

BERS = (("1e-6", 1e-6, 1.10), ("1e-4", 1e-4, 1.5))
RECORDED = Generation("Paris is the capital of France.", 69, 8, 0.75)


def link_ratio(ev: Evaluation) -> float:
    """Median of (total - inference) / (bound - inference): the links' share alone."""
    return statistics.median((s.total_s - s.inference_s) / (s.bound_s - s.inference_s)
                             for s in ev.samples)


def make_backend(kind: str) -> tuple[ModelBackend, str]:
    if kind == "llama":
        try:
            from linkstack.payload.backend import LlamaCppBackend

            be = LlamaCppBackend()
            return be, f"{be.model_ids[0]} (llama.cpp, real inference)"
        except ConfigError as exc:
            print(f"model not available ({str(exc).splitlines()[0]}); using a recorded answer",
                  file=sys.stderr)
    return (RecordedBackend({}, default=RECORDED),
            f"recorded answer ({RECORDED.inference_s} s inference)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=40, help="evaluations per BER")
    ap.add_argument("--prompts", type=int, default=5, help="prompts per run")
    ap.add_argument("--repeat", type=int, default=2, help="runs (seeds) per evaluation")
    ap.add_argument("--objective", choices=("p95", "median"), default="p95")
    ap.add_argument("--backend", choices=("llama", "recorded"), default="llama")
    args = ap.parse_args()

    inner, what = make_backend(args.backend)
    backend = MemoBackend(inner)
    links = list(read_scenario_source("default")["links"])
    print(f"scenario default, links {', '.join(links)}; model: {what}")
    print(f"tuning: objective {args.objective}, budget {args.budget} evaluations of "
          f"{args.prompts} prompts x {args.repeat} runs per BER")
    met = True
    for label, ber, target in BERS:
        t0 = time.perf_counter()
        sets = [f"links.{name}.ber={ber!r}" for name in links]
        result = tune("default", backend, sets=sets, objective=args.objective,
                      budget=args.budget, n_prompts=args.prompts, repeat=args.repeat)
        best, default = result.best.stats, result.default.stats
        print(f"BER {label}: ratio {best.median_ratio:.4f}")
        changed = ", ".join(f"{k} {a}->{z}" for k, (a, z) in result.changed().items())
        print(f"  defaults: ratio {default.median_ratio:.4f} (p95 {default.p95_ratio:.4f}), "
              f"p95 total {default.p95_total_s:.6f} s; tuned: p95 ratio {best.p95_ratio:.4f}, "
              f"p95 total {best.p95_total_s:.6f} s "
              f"({1e3 * (default.p95_total_s - best.p95_total_s):.3f} ms less)")
        print(f"  link-only ratio (inference taken out): defaults "
              f"{link_ratio(result.default):.4f}, tuned {link_ratio(result.best):.4f}; "
              f"timeouts {best.timeouts}/{best.prompts}")
        print(f"  changed: {changed or 'nothing (defaults kept)'}; "
              f"{result.evaluations} evaluations in {time.perf_counter() - t0:.1f} s")
        met = met and best.median_ratio <= target
    print(backend.describe())
    print("targets (<= 1.10 at 1e-6, <= 1.5 at 1e-4): " + ("met" if met else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
