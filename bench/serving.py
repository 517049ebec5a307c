"""Onboard serving: time to first token, and prompts per second within a latency target.

Prints (stdout), one figure a line:

    ttft p50: <s> s            the default scenario's prompts through the whole simulated
    total p50: <s> s           stack (``linkstack run``), the real model writing 48-token
                               answers, streamed every 8 tokens or 0.5 s (the scenario's
                               default): median time to first token / to the whole answer
    throughput at p95 <= 10 s: <x> prompts/s  (slots 1)    ... one line per slot count 1..4
    accuracy: <k>/<n>          the default prompt format on the project's question set

and, on stderr, how the figures were reached: the service time measured with 1..4 slots and
the service-time scale per number of busy slots (the table stored in
``linkstack.payload.serving.SLOT_SERVICE_SCALE``).

48-token answers: the model is given the prompts without a template (``--format raw``), so
it writes on to the 48-token limit (with the default question/answer template it stops after
one sentence, ~10 tokens, and there is little between the first token and the last).

Throughput, how: for k = 1..4, ``LlamaCppSlots(k)`` (k llama.cpp contexts, ``cores // k``
threads each) runs k closed loops of the default prompts (48-token answers) at once: the
median service time with k busy slots over the median with 1 is the scale of k. Then a
virtual-time queue (Poisson arrivals, first come first served, k slots, each prompt's service
time a measured single-slot time times the scale of the slots busy when it starts, the model
the constellation simulator uses) is searched by bisection for the highest arrival rate whose
95th-percentile latency (arrival to answer) stays within 10 s.

Run: ``python bench/serving.py [--rounds N] [--prompts N] [--no-run]``. On a machine shared
with other jobs the absolute figures are noisy; compare the slot counts of one run.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from linkstack.payload.messages import GenerationParams
from linkstack.payload.serving import LlamaCppSlots, service_scale
from linkstack.sims.roundtrip import percentile

ANSWER_TOKENS = 48
FORMAT = "raw"  # no template, no stop sequence: the model writes ANSWER_TOKENS tokens
P95_TARGET_S = 10.0
MAX_SLOTS = 4


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- time to first token through the default scenario -----------------------------------------


def ttft_and_total(prompts: int) -> tuple[float, float]:
    """Median ttft and total of the default scenario's prompts with the real model."""
    from linkstack.payload.backend import LlamaCppBackend
    from linkstack.sims.roundtrip import run_roundtrip
    from linkstack.sims.scenario import load_scenario

    sc = load_scenario("default", [f"run.max_tokens={ANSWER_TOKENS}"])
    texts = [sc.run.prompts[i % len(sc.run.prompts)] for i in range(prompts)]
    report = run_roundtrip(sc, LlamaCppBackend(prompt_format=FORMAT), prompts=texts)
    ok = [p for p in report.prompts if p.status == "ok"]
    tokens = statistics.mean(p.completion_tokens for p in ok)
    log(
        f"default scenario: {len(ok)}/{len(report.prompts)} answered, {tokens:.1f} tokens "
        f"per answer, {statistics.mean(p.segments for p in ok):.1f} partial results each"
    )
    return (statistics.median(p.ttft_s for p in ok), statistics.median(p.total_s for p in ok))


# -- service time per number of slots -------------------------------------------------------------


def measure_slots(k: int, rounds: int, texts: Sequence[str]) -> list[float]:
    """Service times (s) of ``k * rounds`` generations, ``k`` at a time on ``k`` contexts."""
    backend = LlamaCppSlots(k, prompt_format=FORMAT)
    params = GenerationParams(max_tokens=ANSWER_TOKENS)
    backend.generate(texts[0], params)  # warm the caches (not counted)
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(k)

    def loop(worker: int) -> None:
        start.wait()
        for r in range(rounds):
            text = texts[(worker + r * k) % len(texts)]
            t0 = time.perf_counter()
            backend.generate(text, params)
            with lock:
                times.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


# -- the queue, in virtual time --------------------------------------------------------------------


def queue_p95(
    rate: float,
    slots: int,
    samples: Sequence[float],
    scale: Mapping[int, float],
    n: int = 4000,
    seed: int = 1,
) -> float:
    """p95 latency (arrival → answer) of ``n`` Poisson arrivals at ``rate``/s on ``slots``
    first-come-first-served slots; service = a sample × the scale of the slots then busy."""
    rng = random.Random(seed)
    arrivals: list[float] = []
    t = 0.0
    for _ in range(n):
        t += rng.expovariate(rate)
        arrivals.append(t)
    busy_until: list[float] = []  # heap of the running jobs' end times
    latencies: list[float] = []
    waiting: deque[float] = deque()
    i = 0
    clock = 0.0
    while i < n or waiting:
        # next event: an arrival, or a slot freeing when someone waits
        next_arrival = arrivals[i] if i < n else float("inf")
        next_free = (
            busy_until[0] if busy_until and (waiting or len(busy_until) >= slots) else float("inf")
        )
        if next_arrival <= next_free:
            clock = next_arrival
            waiting.append(clock)
            i += 1
        else:
            clock = heapq.heappop(busy_until)
        while busy_until and busy_until[0] <= clock:
            heapq.heappop(busy_until)
        while waiting and len(busy_until) < slots:
            arrived = waiting.popleft()
            s = rng.choice(samples) * service_scale(len(busy_until) + 1, scale)
            heapq.heappush(busy_until, clock + s)
            latencies.append(clock + s - arrived)
    warm = sorted(latencies[n // 10 :])  # (in arrival order: the first tenth warms it up)
    return percentile(warm, 95)


def max_rate(p95: Callable[[float], float], target: float = P95_TARGET_S) -> float:
    """The highest arrival rate with p95 <= target (bisection on a log scale)."""
    lo, hi = 1e-4, 1.0
    while p95(hi) <= target:
        lo, hi = hi, hi * 2
    for _ in range(30):
        mid = (lo * hi) ** 0.5
        if p95(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo


# -- accuracy (the quality work's figure) ------------------------------------------------------


def _accuracy_line() -> str:
    """``accuracy: <k>/<n>``: the shipped model with its default prompt format on the
    project's question set (tests/data/questions.toml, scored as bench/accuracy.py documents;
    greedy, seed 0, 32 tokens)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from accuracy import measure_accuracy

    from linkstack.payload.backend import LlamaCppBackend

    k, n = measure_accuracy(LlamaCppBackend())
    return f"accuracy: {k}/{n}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rounds", type=int, default=3, help="generations per slot and slot count (default 3)"
    )
    ap.add_argument(
        "--prompts", type=int, default=5, help="prompts through the default scenario (default 5)"
    )
    ap.add_argument(
        "--no-run", action="store_true", help="skip the default-scenario run (ttft / total)"
    )
    args = ap.parse_args()
    if not args.no_run:
        ttft, total = ttft_and_total(args.prompts)
        print(f"ttft p50: {ttft:.3f} s")
        print(f"total p50: {total:.3f} s")
    from linkstack.sims.scenario import RunSpec

    texts = list(RunSpec().prompts)
    measured: dict[int, list[float]] = {}
    for k in range(1, MAX_SLOTS + 1):
        measured[k] = measure_slots(k, args.rounds, texts)
        log(
            f"slots {k}: median service {statistics.median(measured[k]):.3f} s, "
            f"{len(measured[k])} generations"
        )
    base = statistics.median(measured[1])
    scale = {k: round(statistics.median(v) / base, 2) for k, v in measured.items()}
    log(f"service-time scale per busy slots: {scale}")
    for k in range(1, MAX_SLOTS + 1):
        rate = max_rate(lambda r, k=k: queue_p95(r, k, measured[1], scale))
        print(f"throughput at p95 <= {P95_TARGET_S:g} s: {rate:.3f} prompts/s  (slots {k})")
    print(_accuracy_line(), flush=True)


if __name__ == "__main__":
    main()
