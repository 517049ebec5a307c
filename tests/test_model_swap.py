"""Verified hot swap of the onboard model while it answers prompts.

A model is uploaded with CFDP class 2 (two entities, a lossy link, virtual time) while a ground
client keeps sending prompts to the onboard :class:`ModelEndpoint`, whose backend is a
:class:`SwappableBackend` wired to the :class:`ModelRegistry` (``on_swap``). Every prompt is
answered exactly once; each Result names the model (``<name>@v<version>``) whose text it
carries — also for prompts accepted before the swap and run after it, and for a generation
that is running while the swap happens. A model that fails its test load is refused and the
old one keeps answering. With the ``model`` marker, the real Gemma GGUF is uploaded, loaded
by llama.cpp and answers.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from dataclasses import dataclass, field

import pytest

from linkstack.cfdp import CfdpEntity, EntityConfig, MemoryFilestore, TransactionFinished
from linkstack.cfdp.models import InstallResult, Manifest, ModelInfo, ModelRegistry
from linkstack.payload.backend import Generation, ModelGeneration
from linkstack.payload.client import PromptClient, ResultReceived
from linkstack.payload.endpoint import EndpointConfig, Job, ModelEndpoint, PromptQueued
from linkstack.payload.messages import GenerationParams, Status
from linkstack.payload.swap import SwappableBackend, gguf_loader

FACTORY = ModelInfo("factory", "", 0, "models/factory.gguf", 1)


class NamedModel:
    """A model that says who it is: ``"<name>: <prompt>"``, taking ``inference_s``."""

    def __init__(
        self, name: str, inference_s: float = 0.25, gate: threading.Event | None = None
    ) -> None:
        self.name = name
        self.inference_s = inference_s
        self.gate = gate
        self.started = threading.Event()

    @property
    def model_ids(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def max_prompt_tokens(self) -> int:
        return 2000

    def count_tokens(self, prompt: str) -> int | None:
        return None

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        return Generation(f"{self.name}: {prompt}", 5, 3, self.inference_s)


@dataclass
class Onboard:
    """The satellite: a CFDP entity, the registry and the endpoint on one swappable model."""

    loader_fails: bool = False
    loads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cfdp = CfdpEntity(
            EntityConfig(2, max_pdu_length=1000, ack_timer_s=1.0, nak_timer_s=1.0),
            MemoryFilestore(),
            peers=[1],
        )
        self.backend = SwappableBackend(NamedModel(FACTORY.model_id), loader=self._load)
        self.registry = ModelRegistry(FACTORY, on_swap=self.backend.install)
        self.endpoint = ModelEndpoint(
            self.backend, EndpointConfig(queue_limit=1000, timeout_s=None)
        )
        self.installs: list[tuple[float, InstallResult]] = []

    def _load(self, info: ModelInfo, data: bytes) -> NamedModel:
        self.loads.append(info.model_id)
        if self.loader_fails:
            raise ValueError("not a GGUF file (bad magic)")
        return NamedModel(info.model_id)

    def events(self, now: float) -> None:
        for ev in self.cfdp.events():
            if isinstance(ev, TransactionFinished) and ev.role == "dest":
                result = self.registry.install(
                    ev.file or "",
                    self.cfdp.filestore.get(ev.file or ""),
                    Manifest.find(ev.messages),
                    transfer_ok=ev.ok,
                )
                self.installs.append((now, result))


@dataclass
class Answer:
    request_id: int
    asked_at: float
    answered_at: float
    accepted_model: str
    model_id: str
    text: str
    status: Status


def swap_under_load(
    *, loader_fails: bool = False, size: int = 300_000, seed: int = 3, loss: float = 0.05
) -> tuple[Onboard, list[Answer], int, float]:
    """Upload a model while prompts come every 0.2 s (each takes the model 0.25 s, so a queue
    builds up); returns the satellite, the answers, the prompts asked and the swap time."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    ground = CfdpEntity(
        EntityConfig(1, max_pdu_length=1000, ack_timer_s=1.0, nak_timer_s=1.0),
        MemoryFilestore({"new.gguf": data}),
        peers=[2],
    )
    sat = Onboard(loader_fails)
    client = PromptClient(timeout_s=None)
    ground.put(
        2,
        "new.gguf",
        "models/new.gguf",
        2,
        messages=[Manifest.of(data, kind="model", name="new").encode()],
        now=0.0,
    )
    delay, dt, seq = 0.05, 0.01, itertools.count()
    flight: list[tuple[float, int, str, bytes]] = []
    asked: dict[int, float] = {}
    accepted: dict[int, str] = {}
    answers: list[Answer] = []
    running: tuple[float, Job, Generation] | None = None
    swap_at = -1.0
    for step in range(3000):
        t = step * dt
        if step % 20 == 0 and t < 12.0:  # a prompt every 0.2 s for 12 s
            rid, packets = client.ask(f"prompt {step // 20}", t)
            asked[rid] = t
            for p in packets:
                heapq.heappush(flight, (t + delay, next(seq), "prompt", p))
        for src, kind in ((ground, "up"), (sat.cfdp, "down")):  # 100 PDUs/s each way
            for pdu in src.pull(t, limit=1):
                if rng.random() >= loss:
                    heapq.heappush(flight, (t + delay, next(seq), kind, pdu))
        while flight and flight[0][0] <= t:
            _, _, kind, octets = heapq.heappop(flight)
            if kind == "up":
                sat.cfdp.receive(octets, t)
            elif kind == "down":
                ground.receive(octets, t)
            elif kind == "prompt":
                for ev in sat.endpoint.receive_packet(octets, t):
                    if isinstance(ev, PromptQueued):
                        accepted[ev.request_id] = ev.model_id
            else:
                for ev in client.receive_packet(octets, t):
                    assert isinstance(ev, ResultReceived), ev
                    r = ev.result
                    answers.append(
                        Answer(
                            r.request_id,
                            asked[r.request_id],
                            t,
                            accepted[r.request_id],
                            r.model_id,
                            r.text,
                            r.status,
                        )
                    )
        for e in (ground, sat.cfdp):
            d = e.next_deadline()
            if d is not None and d <= t:
                e.on_timer(t)
        before = len(sat.installs)
        sat.events(t)
        ground.events()
        if len(sat.installs) > before:
            swap_at = t
        if running is not None and running[0] <= t:  # the model finished a job
            for p in sat.endpoint.complete(running[1], running[2], t):
                heapq.heappush(flight, (t + delay, next(seq), "result", p))
            running = None
        if running is None:
            job = sat.endpoint.next_job(t)
            if job is not None:
                gen = sat.backend.generate(job.prompt.text, job.prompt.params)
                running = (t + gen.inference_s, job, gen)
        if (
            t > 12.0
            and not client.pending
            and running is None
            and ground.idle
            and sat.cfdp.idle
            and not flight
        ):
            break
    return sat, answers, len(asked), swap_at


def test_every_prompt_is_answered_once_and_names_the_model_that_answered_it() -> None:
    sat, answers, asked, swap_at = swap_under_load()
    (_, result) = sat.installs[0]
    assert result.swapped and result.active is not None
    assert result.active.model_id == "new@v2"
    assert sat.backend.swaps == [("factory@v1", "new@v2")]
    # every prompt answered exactly once, all OK
    assert sorted(a.request_id for a in answers) == list(range(asked))
    assert all(a.status is Status.OK for a in answers)
    # each Result names the model whose answer it carries
    for a in answers:
        assert a.text.split(":")[0] == a.model_id, a
    before = [a for a in answers if a.model_id == "factory@v1"]
    after = [a for a in answers if a.model_id == "new@v2"]
    assert len(before) + len(after) == asked
    # prompts were answered while the upload ran, and the new model answered after the swap
    assert swap_at > 0 and len(before) >= 10 and len(after) >= 10
    assert all(a.answered_at <= swap_at + 0.5 for a in before)
    assert all(a.answered_at > swap_at for a in after)
    # prompts accepted (queued) for the old model and run after the swap name the new one
    crossed = [a for a in after if a.accepted_model == "factory@v1"]
    assert crossed


def test_a_model_that_fails_its_test_load_is_refused_and_the_old_one_keeps_answering() -> None:
    sat, answers, asked, _ = swap_under_load(loader_fails=True)
    (_, result) = sat.installs[0]
    assert not result.swapped
    assert result.reason == "test load failed: ValueError: not a GGUF file (bad magic)"
    assert sat.loads == ["new@v2"]  # the upload itself verified: the load was tried
    assert sat.registry.active == FACTORY and sat.backend.model_id == "factory@v1"
    assert sat.backend.swaps == []
    assert sorted(a.request_id for a in answers) == list(range(asked))
    assert {a.model_id for a in answers} == {"factory@v1"}
    assert all(a.text.startswith("factory@v1: ") for a in answers)


def test_a_generation_running_during_the_swap_is_named_after_the_model_it_ran_on() -> None:
    gate = threading.Event()
    old = NamedModel("old@v1", gate=gate)
    backend = SwappableBackend(old, loader=lambda info, data: NamedModel(info.model_id))
    endpoint = ModelEndpoint(backend, EndpointConfig(timeout_s=None))
    client = PromptClient(timeout_s=None)
    _, packets = client.ask("in flight", 0.0)
    for p in packets:
        endpoint.receive_packet(p, 0.0)
    job = endpoint.next_job(0.0)
    assert job is not None and job.model_id == "old@v1"
    out: list[ModelGeneration] = []
    worker = threading.Thread(
        target=lambda: out.append(backend.generate(job.prompt.text, job.prompt.params))
    )
    worker.start()
    assert old.started.wait(10)
    registry = ModelRegistry(ModelInfo("old", "", 0, "old.gguf", 1), on_swap=backend.install)
    new = b"new weights"
    assert registry.install("new.gguf", new, Manifest.of(new), transfer_ok=True).swapped
    assert backend.model_ids == ("new@v2",)
    gate.set()
    worker.join(10)
    (gen,) = out
    assert gen.model_id == "old@v1" and gen.text == "old@v1: in flight"
    (result,) = [
        ev.result for p in endpoint.complete(job, gen, 1.0) for ev in client.receive_packet(p, 1.0)
    ]
    assert result.model_id == "old@v1"
    # the next request runs on the new model and says so
    _, packets = client.ask("next", 2.0)
    for p in packets:
        endpoint.receive_packet(p, 2.0)
    job = endpoint.next_job(2.0)
    assert job is not None
    gen = backend.generate(job.prompt.text, job.prompt.params)
    (result,) = [
        ev.result for p in endpoint.complete(job, gen, 2.5) for ev in client.receive_packet(p, 2.5)
    ]
    assert (result.model_id, result.text) == ("new@v2", "new@v2: next")


def test_model_ids_name_file_and_version_within_the_message_limit() -> None:
    assert ModelInfo("x", "", 0, "models/qwen3-0.6b.gguf", 3).model_id == "qwen3-0.6b@v3"
    long = ModelInfo("x", "", 0, "m/" + "é" * 80 + ".gguf", 12).model_id
    assert long.endswith("@v12") and len(long.encode()) <= 64
    long.encode("utf-8")  # no half character


def test_a_registry_without_a_loader_refuses_and_keeps_the_model() -> None:
    backend = SwappableBackend(NamedModel("old@v1"))
    registry = ModelRegistry(ModelInfo("old", "", 0, "old.gguf", 1), on_swap=backend.install)
    result = registry.install("n.gguf", b"n", Manifest.of(b"n"), transfer_ok=True)
    assert not result.swapped
    assert result.reason == "test load failed: RuntimeError: this endpoint has no model loader"
    assert registry.active is not None and registry.active.version == 1


# -- the real model ------------------------------------------------------------------------------


@pytest.mark.model
def test_the_uploaded_gguf_is_loaded_by_llama_cpp_and_answers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The Gemma GGUF (253 MB) goes up with CFDP class 2 (32 kB PDUs, a lost one NAKed),
    is verified, loaded by llama.cpp and answers under its new id; the same file with its
    GGUF magic damaged (and a manifest that matches the damage) fails the test load."""
    from linkstack.payload.backend import gemma_gguf_path

    data = gemma_gguf_path().read_bytes()
    ground = CfdpEntity(
        EntityConfig(1, max_pdu_length=32_768), MemoryFilestore({"g": data}), peers=[2]
    )
    onboard = CfdpEntity(EntityConfig(2, max_pdu_length=32_768), MemoryFilestore(), peers=[1])
    ground.put(
        2,
        "g",
        "models/gemma-upload.gguf",
        2,
        messages=[Manifest.of(data, kind="model").encode()],
        now=0.0,
    )
    t, n = 0.0, 0
    while not (ground.idle and onboard.idle) and t < 600:
        t += 0.01
        for pdu in ground.pull(t, limit=50):
            n += 1
            if n != 7:  # one file data PDU lost
                onboard.receive(pdu, t)
        for pdu in onboard.pull(t, limit=50):
            ground.receive(pdu, t)
        for e in (ground, onboard):
            d = e.next_deadline()
            if d is not None and d <= t:
                e.on_timer(t)
    (fin,) = [e for e in onboard.events() if isinstance(e, TransactionFinished)]
    assert fin.ok and onboard.counters["pdus_received"] > 7700
    backend = SwappableBackend(
        NamedModel("factory@v1"), loader=gguf_loader(tmp_path, n_ctx=512), probe="Hi"
    )
    registry = ModelRegistry(FACTORY, on_swap=backend.install)
    stored = onboard.filestore.get(fin.file or "")
    result = registry.install(
        fin.file or "", stored, Manifest.find(fin.messages), transfer_ok=fin.ok
    )
    assert result.swapped, result.reason
    assert backend.model_ids == ("gemma-upload@v2",)
    endpoint = ModelEndpoint(backend, EndpointConfig(timeout_s=None))
    client = PromptClient(timeout_s=None)
    _, packets = client.ask(
        "What is the capital of France?", 0.0, params=GenerationParams(max_tokens=12)
    )
    for p in packets:
        endpoint.receive_packet(p, 0.0)
    job = endpoint.next_job(0.0)
    assert job is not None
    gen = backend.generate(job.prompt.text, job.prompt.params)
    (answer,) = [
        ev.result for p in endpoint.complete(job, gen, 1.0) for ev in client.receive_packet(p, 1.0)
    ]
    assert answer.ok and answer.model_id == "gemma-upload@v2" and "Paris" in answer.text
    bad = b"XXXX" + data[4:]  # not GGUF any more; its manifest is right about it
    result = registry.install("models/bad.gguf", bad, Manifest.of(bad), transfer_ok=True)
    assert not result.swapped and result.reason.startswith("test load failed")
    assert backend.model_ids == ("gemma-upload@v2",)
    assert not (tmp_path / "models_bad.gguf").exists()


def test_a_swappable_backend_streams_the_current_model_s_tokens() -> None:
    """Partial results through the swappable backend `serve --role satellite` always uses:
    the tokens of the current model reach ``on_token`` as it streams them (a RecordedBackend
    streams its recorded pieces), and the generation keeps its pieces and names the model."""
    from linkstack.payload.backend import FinishReason, RecordedBackend

    answer = "Paris is the capital of France."
    pieces = ((0.1, 1, 5), (0.2, 3, 12), (0.3, 7, 31))
    inner = RecordedBackend({"q": Generation(answer, 4, 7, 0.3, FinishReason.STOP, pieces)})
    backend = SwappableBackend(inner, model_id="factory@v1")
    heard: list[tuple[str, int]] = []
    g = backend.generate("q", GenerationParams(max_tokens=16),
                         on_token=lambda text, n: heard.append((text, n)))
    assert heard == [(answer[:5], 1), (answer[:12], 3), (answer, 7)]
    assert isinstance(g, ModelGeneration) and g.model_id == "factory@v1"
    assert g.pieces == pieces and g.text == answer
