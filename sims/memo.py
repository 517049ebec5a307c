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

On a distributed sweep (:mod:`linkstack.sims.distributed`) the model runs on the client only:
:meth:`MemoBackend.prime` runs it once per distinct request of the rows about to run, and
:meth:`MemoBackend.replay` ships the memo to the workers as a :class:`ReplayBackend`, which
answers from the memo and never loads a model. :meth:`MemoBackend.dumps` /
:meth:`MemoBackend.restore` keep the memo in a sweep's output folder, so that a resumed sweep
replays the very inference times its finished rows saw (and does not load the model at all
when every answer is there). :class:`LazyBackend` defers loading the model to its first use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from linkstack.payload.backend import Generation, ModelBackend
from linkstack.payload.messages import FinishReason, GenerationParams

__all__ = ["LazyBackend", "MemoBackend", "MemoKey", "ReplayBackend", "ReplayMiss", "memo_key"]

MEMO_FORMAT = 1
"""Version of the JSON written by :meth:`MemoBackend.dumps`."""

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
        self._token_errors: dict[str, str] = {}
        self._model_ids: tuple[str, ...] | None = None
        self._max_prompt_tokens: int | None = None
        self.hits = 0
        self.misses = 0

    @property
    def model_ids(self) -> tuple[str, ...]:
        if self._model_ids is None:
            self._model_ids = tuple(self.inner.model_ids)
        return self._model_ids

    @property
    def max_prompt_tokens(self) -> int:
        if self._max_prompt_tokens is None:
            self._max_prompt_tokens = self.inner.max_prompt_tokens
        return self._max_prompt_tokens

    def count_tokens(self, prompt: str) -> int | None:
        if prompt not in self._tokens:
            self._tokens[prompt] = self.inner.count_tokens(prompt)
            self._token_errors.pop(prompt, None)
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

    def prime(self, prompt: str, params: GenerationParams) -> MemoKey:
        """Make sure the memo answers ``prompt`` with ``params``: what the onboard endpoint
        will ask (its token count, then the generation). A tokenizer error is kept for the
        replay (the endpoint turns it into a ``BACKEND_ERROR`` result); a generation error is
        raised (the run could not replay it)."""
        try:
            self.count_tokens(prompt)
        except Exception as exc:  # replayed as the same message
            self._token_errors[prompt] = str(exc)
        key = memo_key(prompt, params)
        if key in self._generations:
            self.hits += 1
        else:
            self.generate(prompt, params)
        return key

    def fingerprint(self, prompts: Iterable[str], params: GenerationParams) -> str:
        """A hash of what the memo answers to ``prompts`` with ``params`` (generations and token
        counts; :meth:`prime` them first): a run's results depend on nothing else from the
        model."""
        parts = []
        for prompt in sorted(set(prompts)):
            key = memo_key(prompt, params)
            g = self._generations.get(key)
            parts.append([asdict(key), None if g is None else _generation_doc(g),
                          self._tokens.get(prompt), self._token_errors.get(prompt)])
        text = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def replay(self) -> ReplayBackend:
        """The memo as a backend that answers from it alone (picklable: sent to workers)."""
        return ReplayBackend(dict(self._generations), dict(self._tokens),
                             dict(self._token_errors), self.model_ids, self.max_prompt_tokens)

    @property
    def generations(self) -> dict[MemoKey, Generation]:
        """The memoized generations (a copy)."""
        return dict(self._generations)

    def describe(self) -> str:
        """One line: what is memoized and how often the model actually ran."""
        return f"{NOTE} (model runs: {self.misses}, replays: {self.hits})"

    # -- persistence ---------------------------------------------------------------------------

    def dumps(self, identity: str) -> str:
        """The memo as JSON, tagged with ``identity`` (which model answered: see
        :meth:`restore`)."""
        doc = {
            "format": MEMO_FORMAT, "identity": identity, "model_ids": list(self.model_ids),
            "max_prompt_tokens": self.max_prompt_tokens,
            "generations": [{"key": {**asdict(k), "stop": list(k.stop)},
                             "generation": _generation_doc(g)}
                            for k, g in self._generations.items()],
            "tokens": self._tokens,
        }
        return json.dumps(doc, ensure_ascii=False, indent=1)

    def restore(self, text: str, identity: str) -> int:
        """Add the answers of a :meth:`dumps` text written under the same ``identity``;
        returns how many generations were added (0 for another identity or a damaged file,
        which are ignored: the model then runs again)."""
        try:
            doc = json.loads(text)
            if doc.get("format") != MEMO_FORMAT or doc.get("identity") != identity:
                return 0
            generations = {}
            for entry in doc["generations"]:
                k = entry["key"]
                key = MemoKey(str(k["prompt"]), int(k["max_tokens"]), float(k["temperature"]),
                              int(k["seed"]), tuple(str(x) for x in k["stop"]))
                generations[key] = _generation_of(entry["generation"])
            tokens = {str(p): None if n is None else int(n) for p, n in doc["tokens"].items()}
            model_ids = tuple(str(m) for m in doc["model_ids"])
            max_prompt_tokens = int(doc["max_prompt_tokens"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return 0
        added = sum(k not in self._generations for k in generations)
        self._generations.update(generations)
        self._tokens.update(tokens)
        self._model_ids = self._model_ids or model_ids
        self._max_prompt_tokens = self._max_prompt_tokens or max_prompt_tokens
        return added


def _generation_doc(g: Generation) -> dict[str, Any]:
    return {**asdict(g), "finish_reason": g.finish_reason.name}


def _generation_of(doc: dict[str, Any]) -> Generation:
    return Generation(str(doc["text"]), int(doc["prompt_tokens"]), int(doc["completion_tokens"]),
                      float(doc["inference_s"]), FinishReason[doc["finish_reason"]],
                      tuple((float(t), int(n), int(k)) for t, n, k in doc.get("pieces", ())))


class ReplayMiss(KeyError):
    """A replayed run asked for an answer the client did not put in the memo."""


@dataclass
class ReplayBackend:
    """Answers from a :class:`MemoBackend`'s memo alone: what the workers of a distributed
    sweep run instead of the model. A request the memo lacks raises :class:`ReplayMiss` (and
    is listed in ``missing``): the client should have primed it, and a run that saw a miss is
    reported as failed rather than replayed wrongly."""

    generations: dict[MemoKey, Generation]
    tokens: dict[str, int | None]
    token_errors: dict[str, str]
    model_ids: tuple[str, ...]
    max_prompt_tokens: int
    missing: list[str] = field(default_factory=list)

    def session(self) -> ReplayBackend:
        """A view of the same memo with its own ``missing`` list (one per run)."""
        return ReplayBackend(self.generations, self.tokens, self.token_errors, self.model_ids,
                             self.max_prompt_tokens)

    def count_tokens(self, prompt: str) -> int | None:
        if prompt in self.token_errors:
            raise RuntimeError(self.token_errors[prompt])
        if prompt not in self.tokens:
            self.missing.append(f"token count of {prompt[:40]!r}")
            raise ReplayMiss(prompt)
        return self.tokens[prompt]

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        found = self.generations.get(memo_key(prompt, params))
        if found is None:
            self.missing.append(f"generation of {prompt[:40]!r} with {params}")
            raise ReplayMiss(f"no memoized generation of {prompt[:40]!r} with {params}")
        return found


class LazyBackend:
    """A backend made on first use by ``factory()`` (so that a sweep whose answers are all
    memoized never loads the model)."""

    def __init__(self, factory: Callable[[], ModelBackend]) -> None:
        self._factory = factory
        self._inner: ModelBackend | None = None

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    def _get(self) -> ModelBackend:
        if self._inner is None:
            self._inner = self._factory()
        return self._inner

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self._get().model_ids

    @property
    def max_prompt_tokens(self) -> int:
        return self._get().max_prompt_tokens

    def count_tokens(self, prompt: str) -> int | None:
        return self._get().count_tokens(prompt)

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        return self._get().generate(prompt, params)
