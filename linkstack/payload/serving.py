"""Serving the onboard model: parallel inference slots and the measured service model.

* :class:`LlamaCppSlots` — N llama.cpp contexts (``llama_cpp.Llama`` instances over the same
  memory-mapped GGUF), one per inference slot, so that N prompts are generated at once. It is
  a :class:`~linkstack.payload.backend.ModelBackend`; the endpoint's ``concurrency`` says how
  many jobs the driver runs in parallel.
* :func:`generate` — call a backend with a token callback if it streams, else plainly and
  replay the generation's recorded pieces afterwards.
* :data:`SLOT_SERVICE_SCALE` / :func:`service_scale` — how much longer one generation takes
  when *k* slots generate at once on the machine the measurement was taken on; simulators
  (the constellation's computing satellites) multiply a measured inference time by it.

Nothing here does network I/O; :class:`LlamaCppSlots` does blocking CPU work and is run by a
driver in worker threads, like every backend.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Mapping
from pathlib import Path

from linkstack.errors import ConfigError
from linkstack.payload.backend import (
    Generation,
    LlamaCppBackend,
    ModelBackend,
    PromptFormat,
    TokenCallback,
)
from linkstack.payload.messages import GenerationParams

SLOT_SERVICE_SCALE: Mapping[int, float] = {1: 1.0, 2: 1.6, 3: 2.06, 4: 3.33}
"""Service-time scale per number of busy slots (1..4), measured on this machine.

Value *k*: the median time of one generation while *k* slots generate at once, over the median
with one slot (so 1 → 1.0). Measured by ``bench/serving.py`` (``measure_slots``): the default
scenario's five prompts as 48-token answers, greedy, one ``llama_cpp.Llama`` context per slot
with ``n_threads = max(1, cores // k)``, k closed loops of 3 generations each. Taken on the
2-core development machine (Gemma 3 270M Q4_K_M) while other jobs shared it (load average
5-10), so single runs are noisy: four runs gave 2 → 1.02, 1.48, 1.71, 1.81; 3 → 2.07, 2.04,
1.38, 2.59; 4 → 3.48, 3.18, 2.26, 3.95 (the first with ~10-token answers); the table holds the
median of each (one generation alone took 2.1 to 5.4 s in those runs). Two slots on two cores
serve about 1.25x as many prompts as one; a third and a fourth only share the same cores.
Beyond 4 slots the scale grows in proportion (:func:`service_scale`)."""


def service_scale(busy: int, table: Mapping[int, float] = SLOT_SERVICE_SCALE) -> float:
    """The service-time scale with ``busy`` slots generating at once (>= 1).

    Inside the table: its value; beyond it: the last value times ``busy / last`` (the CPU is
    shared evenly, so each generation slows in proportion)."""
    if busy < 1:
        raise ConfigError(f"{busy} must be >= 1", key="busy")
    if busy in table:
        return table[busy]
    last = max(table)
    return table[last] * busy / last


def generate(
    backend: ModelBackend,
    prompt: str,
    params: GenerationParams,
    on_token: TokenCallback | None = None,
) -> Generation:
    """``backend.generate``, telling ``on_token`` the answer as it grows.

    A backend that streams (``streams_tokens`` true: :class:`LlamaCppBackend`,
    :class:`~linkstack.payload.backend.RecordedBackend`, :class:`LlamaCppSlots`) is given the
    callback; any other is called plainly, and its generation's recorded pieces are replayed to
    ``on_token`` afterwards."""
    if on_token is None:
        return backend.generate(prompt, params)
    if getattr(backend, "streams_tokens", False):
        return backend.generate(prompt, params, on_token=on_token)  # type: ignore[call-arg]
    g = backend.generate(prompt, params)
    for _, tokens, chars in g.pieces:
        on_token(g.text[:chars], tokens)
    return g


class LlamaCppSlots:
    """``slots`` llama.cpp contexts of one GGUF: up to ``slots`` generations at once.

    Each slot is a :class:`~linkstack.payload.backend.LlamaCppBackend` (its own context and
    lock); :meth:`generate` takes a free one, waiting if all are busy, so calls from ``slots``
    threads run in parallel. The weights are memory-mapped once by the OS and shared; each slot
    adds its own KV cache (``n_ctx`` tokens). ``n_threads`` per slot defaults to the cores
    divided among the slots (at least 1): llama.cpp's threads spin while they wait, so more
    threads than cores only slows every slot down.
    """

    streams_tokens = True

    def __init__(
        self,
        slots: int,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_threads: int | None = None,
        **kwargs: object,
    ) -> None:
        if not 1 <= slots <= 64:
            raise ConfigError(f"{slots} is outside 1..64", key="slots")
        threads = n_threads or max(1, (os.cpu_count() or 1) // slots)
        self.slots = slots
        self.n_threads = threads
        self._backends = [
            LlamaCppBackend(model_path, n_threads=threads, **kwargs)  # type: ignore[arg-type]
            for _ in range(slots)
        ]
        self._free: queue.SimpleQueue[LlamaCppBackend] = queue.SimpleQueue()
        for b in self._backends:
            self._free.put(b)
        first = self._backends[0]
        self.load_s = sum(b.load_s for b in self._backends)
        self.model_path: Path = first.model_path
        self.prompt_format: PromptFormat = first.prompt_format
        self.metadata = first.metadata

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self._backends[0].model_ids

    @property
    def max_prompt_tokens(self) -> int:
        return self._backends[0].max_prompt_tokens

    def count_tokens(self, prompt: str) -> int:
        """Tokens of the templated prompt (never waits for a slot: tokenizing only reads
        the vocabulary)."""
        return self._backends[0].count_tokens(prompt)

    def generate(
        self, prompt: str, params: GenerationParams, *, on_token: TokenCallback | None = None
    ) -> Generation:
        """Generate on a free slot (blocks until one is free); thread-safe."""
        b = self._free.get()
        try:
            return b.generate(prompt, params, on_token=on_token)
        finally:
            self._free.put(b)
