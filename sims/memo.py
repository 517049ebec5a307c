"""A memoizing model backend, so that sweeps and tuning compare protocol settings only.

A sweep or a tuning run sends the same prompts through the stack hundreds of times with
different link settings. The onboard model's answer does not depend on the link (the prompt
arrives intact or not at all), so running the model again for every grid point would only add
noise: the measured inference time of the same generation varies from call to call on a shared
CPU, and that noise would swamp the protocol differences being measured.

:class:`MemoBackend` wraps a real backend (:class:`~linkstack.payload.backend.LlamaCppBackend`)
and runs it once per distinct (prompt, generation parameters); every later call replays the
same :class:`~linkstack.payload.backend.Generation` — its text, token counts *and* the
inference time measured on the first call. Every grid point therefore sees identical inference,
and the difference between two points is the protocol's alone.

The seed is part of the key only when it can change the answer: with ``temperature`` 0 the
sampler is greedy (:class:`~linkstack.payload.backend.LlamaCppBackend` uses ``top_k=1``), so the
answers of runs that differ only in their scenario seed (``--repeat``) are memoized together.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkstack.payload.backend import Generation, ModelBackend
from linkstack.payload.messages import GenerationParams

__all__ = ["MemoBackend", "MemoKey", "memo_key"]

NOTE = ("inference memoized: the model runs once per prompt and parameters; every grid point "
        "replays that generation (text, tokens, measured inference time), so differences "
        "between points are the protocol's alone")
"""One line for command output saying what the memoization means."""


@dataclass(frozen=True, slots=True)
class MemoKey:
    """What a generation depends on: the prompt and the parameters that can change it."""

    prompt: str
    max_tokens: int
    temperature: float
    seed: int
    stop: tuple[str, ...]


def memo_key(prompt: str, params: GenerationParams) -> MemoKey:
    """The memo key of a request (the seed is dropped when decoding is greedy)."""
    seed = params.seed if params.temperature > 0 else 0
    return MemoKey(prompt, params.max_tokens, params.temperature, seed, tuple(params.stop))


class MemoBackend:
    """A :class:`~linkstack.payload.backend.ModelBackend` that remembers ``inner``'s answers.

    ``misses`` counts the calls that ran ``inner``, ``hits`` the replays. Errors raised by
    ``inner`` are not memoized (the next call tries again).
    """

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner
        self._generations: dict[MemoKey, Generation] = {}
        self._tokens: dict[str, int | None] = {}
        self.hits = 0
        self.misses = 0

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self.inner.model_ids

    @property
    def max_prompt_tokens(self) -> int:
        return self.inner.max_prompt_tokens

    def count_tokens(self, prompt: str) -> int | None:
        if prompt not in self._tokens:
            self._tokens[prompt] = self.inner.count_tokens(prompt)
        return self._tokens[prompt]

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        key = memo_key(prompt, params)
        found = self._generations.get(key)
        if found is not None:
            self.hits += 1
            return found
        generation = self.inner.generate(prompt, params)
        self._generations[key] = generation
        self.misses += 1
        return generation

    @property
    def generations(self) -> dict[MemoKey, Generation]:
        """The memoized generations (a copy)."""
        return dict(self._generations)

    def describe(self) -> str:
        """One line: what is memoized and how often the model actually ran."""
        return f"{NOTE} (model runs: {self.misses}, replays: {self.hits})"
