"""The onboard endpoint's model, swapped in by the model registry (verified hot swap).

:class:`SwappableBackend` is a :class:`~linkstack.payload.backend.ModelBackend` whose model can
be changed while the endpoint runs. :meth:`SwappableBackend.install` is the registry's
``on_swap`` (:class:`linkstack.cfdp.models.ModelRegistry`): it is called only for an upload
whose CFDP transfer completed and whose SHA-256 and size match its manifest, and it is the
*test load* — it builds the new backend (for a GGUF: llama.cpp loads it) and, if a probe
prompt is set, runs it once. If that raises, the registry refuses the model and the old one
stays; otherwise the new model answers every request that starts after the swap.

A request already running when the swap happens finishes on the model it started with. Each
answer is a :class:`~linkstack.payload.backend.ModelGeneration` naming the model that produced
it, and the endpoint's Result carries that id (``<name>@v<version>``,
:attr:`linkstack.cfdp.models.ModelInfo.model_id`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path

from linkstack.cfdp.models import ModelInfo
from linkstack.payload.backend import Generation, ModelBackend, ModelGeneration, TokenCallback
from linkstack.payload.messages import GenerationParams

__all__ = ["Loader", "SwappableBackend", "gguf_loader"]

Loader = Callable[[ModelInfo, bytes], ModelBackend]
"""Builds the backend of a verified model from its octets (raises if it cannot)."""


class SwappableBackend:
    """The endpoint's backend: the registry's active model (thread-safe swap).

    Args:
        backend: the model answering until the first swap.
        model_id: its id (default: the backend's first id).
        loader: builds a new model's backend (see :func:`gguf_loader`); without one,
            :meth:`install` refuses every model.
        probe: a prompt the new model must answer once before it is swapped in (None: loading
            is the test).
    """

    def __init__(
        self,
        backend: ModelBackend,
        *,
        model_id: str | None = None,
        loader: Loader | None = None,
        probe: str | None = None,
    ) -> None:
        self._current: tuple[ModelBackend, str] = (backend, model_id or backend.model_ids[0])
        self._lock = threading.Lock()
        self.loader = loader
        self.probe = probe
        self.swaps: list[tuple[str, str]] = []  # (old id, new id)

    @property
    def model_id(self) -> str:
        """The id of the model that answers the next request."""
        return self._current[1]

    @property
    def backend(self) -> ModelBackend:
        return self._current[0]

    @property
    def model_ids(self) -> tuple[str, ...]:
        return (self._current[1],)

    @property
    def max_prompt_tokens(self) -> int:
        return self._current[0].max_prompt_tokens

    def count_tokens(self, prompt: str) -> int | None:
        return self._current[0].count_tokens(prompt)

    streams_tokens = True  # tokens are passed on as the current model gives them

    def generate(self, prompt: str, params: GenerationParams, *,
                 on_token: TokenCallback | None = None) -> ModelGeneration:
        """Run the current model; the answer names it, even if a swap happens meanwhile.
        ``on_token`` hears the answer grow (as the current model streams it, or replayed
        from its token pieces afterwards: :func:`linkstack.payload.serving.generate`)."""
        from linkstack.payload.serving import generate

        backend, model_id = self._current  # one read: this request's model
        g = generate(backend, prompt, params, on_token)
        return _named(g, model_id)

    def install(self, info: ModelInfo, data: bytes) -> None:
        """The registry's ``on_swap``: load ``data`` as model ``info`` (and answer the probe
        with it), then make it the current model. Raises if the model does not load or
        answer; the current model then stays."""
        if self.loader is None:
            raise RuntimeError("this endpoint has no model loader")
        backend = self.loader(info, data)
        if self.probe is not None:
            backend.generate(self.probe, GenerationParams(max_tokens=1))
        with self._lock:
            old = self._current[1]
            self._current = (backend, info.model_id)
            self.swaps.append((old, info.model_id))


def _named(g: Generation, model_id: str) -> ModelGeneration:
    # every field of the generation (its token pieces too), by name
    fields = {f.name: getattr(g, f.name) for f in dataclasses.fields(Generation)}
    return ModelGeneration(**fields, model_id=model_id)


def gguf_loader(directory: str | os.PathLike[str], **llama_options: object) -> Loader:
    """A loader that writes each verified model to ``directory`` (its name in the registry,
    ``/`` flattened) and loads it with llama.cpp
    (:class:`~linkstack.payload.backend.LlamaCppBackend`, ``llama_options`` passed on)."""
    base = Path(directory)

    def load(info: ModelInfo, data: bytes) -> ModelBackend:
        from linkstack.payload.backend import LlamaCppBackend

        base.mkdir(parents=True, exist_ok=True)
        path = base / info.path.strip("/").replace("/", "_")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        try:
            return LlamaCppBackend(path, model_id=info.model_id, **llama_options)  # type: ignore[arg-type]
        except Exception:
            path.unlink(missing_ok=True)
            raise

    return load
