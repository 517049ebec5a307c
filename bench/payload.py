"""AI payload codec and onboard model: what each costs on this machine.

Prints, one figure a line:

    prompt encode / decode: <v> µs          a 200-character prompt (not compressed)
    prompt encode / decode zstd: <v> µs     a 4 KiB compressible prompt
    result encode / decode: <v> µs          a 500-character answer
    endpoint overhead: <v> µs/request       client packets → endpoint → result packets →
                                            client, with a RecordedBackend (no model time)
    segmented prompt 64 KiB: <v> MB/s       1024-octet packets, segment + reassemble + decode
    model load: <v> s                       LlamaCppBackend(): GGUF assembly check + load
    prompt eval: <v> tokens/s               the few-shot template + question, max_tokens=1
    generation: <v> tokens/s                decode rate: a 64-token raw completion, minus its
                                            prompt evaluation at the rate above
    flight profiles: ...                    the 64-token answer's time on each profile

Run: ``python bench/payload.py [--no-model] [--threads N]``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from linkstack.payload.backend import (
    FLIGHT_PROFILES,
    QA_FEW_SHOT,
    RAW,
    Generation,
    LlamaCppBackend,
    RecordedBackend,
    scaled_inference_s,
)
from linkstack.payload.client import PromptClient
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, ResultSent
from linkstack.payload.messages import GenerationParams, Prompt, Result, Status
from linkstack.payload.transport import TransportConfig


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def codec() -> None:
    rng = random.Random(1)
    short = Prompt(1, "".join(rng.choice("abcdefghij klmnop?") for _ in range(200)),
                   params=GenerationParams(32, 0.0, 0, ("\n",)))
    big = Prompt(2, "Report the attitude telemetry of the last orbit. " * 84)
    answer = Result(1, Status.OK, "The answer is forty-two. " * 20, "gemma", 70, 120, 5, 9)
    for name, msg in (("prompt", short), ("prompt zstd", big), ("result", answer)):
        wire = msg.encode()
        enc = _per_call_us(msg.encode, 2000)
        dec = _per_call_us(lambda w=wire, m=msg: type(m).decode(w), 2000)
        print(f"{name} encode / decode: {enc:.1f} / {dec:.1f} µs ({len(wire)} octets)")


def endpoint_overhead() -> None:
    g = Generation("Paris is the capital of France.", 69, 8, 0.0)
    backend = RecordedBackend({}, default=g)
    endpoint = ModelEndpoint(backend)
    client = PromptClient()
    n = 2000

    def one() -> None:
        _rid, up = client.ask("What is the capital of France?", 0.0)
        for p in up:
            for e in endpoint.receive_packet(p, 0.0):
                assert not isinstance(e, ResultSent)
        job = endpoint.next_job(0.0)
        assert job is not None
        for p in endpoint.complete(job, g, 0.0):
            client.receive_packet(p, 0.0)

    print(f"endpoint overhead: {_per_call_us(one, n):.1f} µs/request")

    rng = random.Random(2)
    text = "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(65536))
    config = TransportConfig(max_data_length=1024)
    big_endpoint = ModelEndpoint(RecordedBackend({}, default=g),
                                 EndpointConfig(transport=config, max_prompt_octets=65536))
    big_client = PromptClient(config)
    t0 = time.perf_counter()
    _rid, up = big_client.ask(text, 0.0)
    for p in up:
        big_endpoint.receive_packet(p, 0.0)
    dt = time.perf_counter() - t0
    assert big_endpoint.queue_depth == 1
    print(f"segmented prompt 64 KiB: {len(text) / dt / 1e6:.1f} MB/s ({len(up)} packets)")


def model(threads: int | None) -> None:
    t0 = time.perf_counter()
    backend = LlamaCppBackend(n_threads=threads)
    total = time.perf_counter() - t0
    print(f"model load: {backend.load_s:.2f} s (constructor {total:.2f} s, "
          f"{backend.n_threads} thread(s), extra buffers {backend.extra_buffers})")
    q = "What is the capital of France?"
    evals = [backend.generate(q, GenerationParams(max_tokens=1)) for _ in range(3)]
    e = min(evals, key=lambda g: g.inference_s)
    print(f"prompt eval: {e.prompt_tokens / e.inference_s:.1f} tokens/s "
          f"({e.prompt_tokens} tokens in {e.inference_s:.3f} s)")
    backend.prompt_format = RAW  # no template and no stop: decode a full 64 tokens
    runs = [backend.generate("The satellite passed over the ground station and",
                             GenerationParams(max_tokens=64)) for _ in range(2)]
    backend.prompt_format = QA_FEW_SHOT
    g = min(runs, key=lambda r: r.inference_s)
    pe = g.prompt_tokens / (e.prompt_tokens / e.inference_s)
    decode_s = max(g.inference_s - pe, 1e-9)
    print(f"generation: {(g.completion_tokens - 1) / decode_s:.1f} tokens/s "
          f"({g.completion_tokens} tokens in {g.inference_s:.3f} s incl. prompt eval)")
    parts = ", ".join(f"{name} {scaled_inference_s(g.inference_s, name):.2f} s"
                      for name in FLIGHT_PROFILES)
    print(f"flight profiles ({g.completion_tokens} tokens): {parts}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-model", action="store_true", help="skip the llama.cpp figures")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    args = ap.parse_args()
    codec()
    endpoint_overhead()
    if not args.no_model:
        model(args.threads)


if __name__ == "__main__":
    main()
