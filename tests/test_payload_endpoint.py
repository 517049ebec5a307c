"""Onboard model endpoint, payload transport and ground client (sans-IO, recorded model).

The model's output is not under test here, so the endpoint runs on a RecordedBackend; the
real model is exercised in test_payload_model.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from linkstack.cli.endpoint import _print, register, run_ask
from linkstack.errors import ConfigError, DecodeError, ProtocolError
from linkstack.payload.backend import (
    FLIGHT_PROFILES,
    FlightProfile,
    Generation,
    ModelBackend,
    RecordedBackend,
    get_profile,
    register_profile,
    scaled_inference_s,
)
from linkstack.payload.client import (
    PromptClient,
    RequestTimedOut,
    ResultReceived,
    UnmatchedResult,
)
from linkstack.payload.endpoint import (
    DuplicatePrompt,
    EndpointConfig,
    ModelEndpoint,
    PromptQueued,
    ResultSent,
)
from linkstack.payload.messages import (
    UNKNOWN_REQUEST_ID,
    FinishReason,
    GenerationParams,
    MessageType,
    Prompt,
    Result,
    Status,
)
from linkstack.payload.transport import (
    MessageLost,
    MessageReceived,
    MessageReceiver,
    MessageRejected,
    MessageSender,
    PacketIgnored,
    TransportConfig,
)
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import PacketType, SequenceFlags, SpacePacket
from linkstack.spp.segmentation import SequenceGap

ANSWER = Generation("Paris is the capital of France.", 41, 8, 0.25, FinishReason.STOP)
LONG_PROMPT_TOKENS = Generation("", 5000, 0, 0.0)


def make_backend() -> RecordedBackend:
    return RecordedBackend(
        {"capital of France?": ANSWER, "a recorded long one": LONG_PROMPT_TOKENS},
        default=Generation("ok", 3, 1, 0.01), model_ids=("gemma", "alt"),
        max_prompt_tokens=2000,
    )


class Harness:
    """An endpoint and a client wired back to back, driven in virtual time."""

    def __init__(self, config: EndpointConfig | None = None,
                 backend: ModelBackend | None = None, timeout_s: float = 900.0) -> None:
        self.backend = backend or make_backend()
        self.endpoint = ModelEndpoint(self.backend, config)
        transport = self.endpoint.config.transport
        # one Packet Sequence Count source for every uplink source on the prompt APID
        self.counter = SequenceCounter()
        self.client = PromptClient(transport, timeout_s=timeout_s, counter=self.counter)
        self.raw_sender = MessageSender(transport.prompt_apid, packet_type=PacketType.TC,
                                        counter=self.counter)
        self.events: list[object] = []

    def uplink(self, packets: list[bytes], now: float) -> list[object]:
        """Feed packets to the endpoint; downlink any immediate replies to the client."""
        out: list[object] = []
        for p in packets:
            for event in self.endpoint.receive_packet(p, now):
                self.events.append(event)
                if isinstance(event, ResultSent):
                    for q in event.packets:
                        out.extend(self.client.receive_packet(q, now))
        return out

    def serve(self, now: float) -> list[object]:
        """Run every queued job (each takes its recorded, profile-scaled time)."""
        out: list[object] = []
        while (job := self.endpoint.next_job(now)) is not None:
            try:
                g = self.backend.generate(job.prompt.text, job.prompt.params)
            except Exception as exc:
                packets = self.endpoint.fail(job, now, Status.BACKEND_ERROR, str(exc))
            else:
                now += job.scaled_inference_s(g)
                packets = self.endpoint.complete(job, g, now)
            for q in packets:
                out.extend(self.client.receive_packet(q, now))
        return out

    def ask(self, text: str, now: float, **kw: object) -> tuple[int, list[object]]:
        rid, packets = self.client.ask(text, now, **kw)  # type: ignore[arg-type]
        return rid, self.uplink(packets, now)

    def assert_good_request_answered(self, now: float, attempts: int = 1) -> None:
        for _ in range(attempts):
            rid, early = self.ask("capital of France?", now)
            assert early == []
            done = self.serve(now + 1.0)
            if done:
                break
            self.client.cancel(rid)
        assert len(done) == 1 and isinstance(done[0], ResultReceived)
        assert done[0].request_id == rid
        assert done[0].result.status is Status.OK
        assert done[0].result.text == ANSWER.text


def only_result(events: list[object]) -> Result:
    results = [e for e in events if isinstance(e, ResultReceived | UnmatchedResult)]
    assert len(results) == 1, events
    return results[0].result


# -- the good path --------------------------------------------------------------------------------

def test_prompt_answered_with_timings_and_counts() -> None:
    h = Harness()
    rid, early = h.ask("capital of France?", 10.0)
    assert early == []
    queued = [e for e in h.events if isinstance(e, PromptQueued)]
    assert queued == [PromptQueued(rid, "gemma", 41, 1)]
    job = h.endpoint.next_job(12.5)
    assert job is not None and job.request_id == rid
    assert job.prompt.text == "capital of France?"
    packets = h.endpoint.complete(job, ANSWER, 13.0)
    events = [e for p in packets for e in h.client.receive_packet(p, 14.0)]
    (ev,) = events
    assert isinstance(ev, ResultReceived)
    r = ev.result
    assert (r.status, r.text, r.model_id) == (Status.OK, ANSWER.text, "gemma")
    assert (r.prompt_tokens, r.completion_tokens) == (41, 8)
    assert r.queue_time_us == 2_500_000  # started 12.5, arrived 10.0
    assert r.inference_time_us == 250_000
    assert r.finish_reason is FinishReason.STOP
    assert ev.round_trip_s == pytest.approx(4.0)
    assert h.client.pending == {}


def test_packets_use_configured_apids_and_types() -> None:
    config = EndpointConfig(transport=TransportConfig(prompt_apid=0x42, result_apid=0x43))
    h = Harness(config)
    _rid, up = h.client.ask("capital of France?", 0.0)
    (pkt,) = [SpacePacket.decode(p) for p in up]
    assert (pkt.apid, pkt.packet_type, pkt.sequence_flags) == (
        0x42, PacketType.TC, SequenceFlags.UNSEGMENTED)
    assert Prompt.decode(pkt.data).text == "capital of France?"
    h.uplink(up, 0.0)
    job = h.endpoint.next_job(0.0)
    assert job is not None
    (down,) = [SpacePacket.decode(p) for p in h.endpoint.complete(job, ANSWER, 1.0)]
    assert (down.apid, down.packet_type) == (0x43, PacketType.TM)
    assert Result.decode(down.data).text == ANSWER.text


def test_flight_profile_scales_inference_time() -> None:
    h = Harness(EndpointConfig(profile="rad-hard-leon"))
    h.ask("capital of France?", 0.0)
    (ev,) = h.serve(1.0)
    factor = FLIGHT_PROFILES["rad-hard-leon"].speed_factor
    assert ev.result.inference_time_us == round(ANSWER.inference_s * factor * 1e6)
    assert ev.round_trip_s == pytest.approx(1.0 + ANSWER.inference_s * factor)


def test_profiles() -> None:
    assert scaled_inference_s(2.0) == 2.0
    assert scaled_inference_s(2.0, "jetson-orin-nano") == 2.0 * 0.5
    for p in FLIGHT_PROFILES.values():
        assert p.speed_factor > 0 and p.reasoning
    with pytest.raises(ConfigError):
        scaled_inference_s(1.0, "abacus")
    with pytest.raises(ConfigError):
        EndpointConfig(profile="abacus")
    register_profile(FlightProfile("test-board", 3.0, "measured in a test"))
    assert scaled_inference_s(1.5, get_profile("test-board")) == 4.5
    with pytest.raises(ConfigError):
        register_profile(FlightProfile("broken", 0.0, ""))


# -- bad input: the right status, and the endpoint keeps serving ----------------------------------

def test_garbage_packet_gets_malformed_with_unknown_id() -> None:
    h = Harness()
    events = h.uplink([b"\x00\x01"], 0.0)
    r = only_result(events)
    assert isinstance(events[0], UnmatchedResult)
    assert (r.status, r.request_id) == (Status.MALFORMED, UNKNOWN_REQUEST_ID)
    h.assert_good_request_answered(1.0)


def test_truncated_prompt_packet_gets_malformed_with_its_id() -> None:
    h = Harness()
    rid, packets = h.client.ask("capital of France?", 0.0)
    r = only_result(h.uplink([packets[0][:-3]], 0.0))
    assert (r.status, r.request_id) == (Status.MALFORMED, rid)
    assert "packet_data_length" in r.text
    h.assert_good_request_answered(1.0)


def test_bad_message_in_good_packet_gets_malformed() -> None:
    h = Harness()
    sender = h.raw_sender
    wire = bytearray(Prompt(77, "hello").encode())
    wire[9] = wire[10] = 0  # max_tokens = 0
    r = only_result(h.uplink(sender.encode_raw(bytes(wire)), 0.0))
    assert (r.status, r.request_id) == (Status.MALFORMED, 77)
    assert "max_tokens" in r.text
    # a Result sent to the prompt APID is not a prompt
    r = only_result(h.uplink(sender.encode_raw(Result(78, Status.OK).encode()), 0.0))
    assert (r.status, r.request_id) == (Status.MALFORMED, UNKNOWN_REQUEST_ID)
    h.assert_good_request_answered(1.0)


def test_unknown_model() -> None:
    h = Harness()
    rid, events = h.ask("capital of France?", 0.0, model_id="gpt-9")
    r = only_result(events)
    assert (r.status, r.request_id, r.model_id) == (Status.UNKNOWN_MODEL, rid, "gpt-9")
    assert "gemma" in r.text
    # the second registered id and the default ("") are both served
    rid, events = h.ask("capital of France?", 0.0, model_id="alt")
    assert events == []
    (ev,) = h.serve(0.5)
    assert (ev.request_id, ev.result.status, ev.result.model_id) == (rid, Status.OK, "alt")
    h.assert_good_request_answered(1.0)


def test_prompt_too_long_by_tokens_and_by_octets() -> None:
    h = Harness(EndpointConfig(max_prompt_octets=100))
    rid, events = h.ask("a recorded long one", 0.0)  # the tokenizer says 5000 > 2000
    r = only_result(events)
    assert (r.status, r.request_id, r.prompt_tokens) == (Status.PROMPT_TOO_LONG, rid, 5000)
    rid, events = h.ask("x" * 101, 0.0)  # no token count: the octet limit applies
    r = only_result(events)
    assert (r.status, r.request_id) == (Status.PROMPT_TOO_LONG, rid)
    rid, events = h.ask("x" * 100, 0.0)
    assert events == []
    h.serve(0.5)
    h.assert_good_request_answered(1.0)


def test_queue_limit_gives_busy() -> None:
    h = Harness(EndpointConfig(queue_limit=2))
    r1, e1 = h.ask("one", 0.0)
    r2, e2 = h.ask("two", 0.0)
    r3, e3 = h.ask("three", 0.0)
    assert e1 == e2 == []
    r = only_result(e3)
    assert (r.status, r.request_id) == (Status.BUSY, r3)
    assert h.endpoint.queue_depth == 2
    job = h.endpoint.next_job(1.0)  # one leaves the queue: room for one more
    assert job is not None and job.request_id == r1
    assert h.endpoint.next_job(1.0) is None  # concurrency 1: r2 waits
    _r4, e4 = h.ask("four", 1.0)
    assert e4 == []
    _r5, e5 = h.ask("five", 1.0)
    assert only_result(e5).status is Status.BUSY
    h.endpoint.complete(job, ANSWER, 2.0)
    job2 = h.endpoint.next_job(2.0)
    assert job2 is not None and job2.request_id == r2


def test_queue_timeout_and_late_completion() -> None:
    h = Harness(EndpointConfig(timeout_s=10.0, queue_limit=3))
    r1, _ = h.ask("one", 0.0)
    r2, _ = h.ask("two", 1.0)
    assert h.endpoint.next_deadline() == 10.0
    job = h.endpoint.next_job(2.0)
    assert job is not None and job.request_id == r1
    assert h.endpoint.next_deadline() == 11.0
    assert h.endpoint.on_timer(10.9) == []
    events = h.endpoint.on_timer(11.0)
    (sent,) = events
    assert isinstance(sent, ResultSent)
    assert (sent.result.status, sent.result.request_id) == (Status.TIMEOUT, r2)
    assert sent.result.queue_time_us == 10_000_000
    assert h.endpoint.next_deadline() is None
    # job 1 finishes after its own deadline (0 + 10 s): TIMEOUT, timings kept, no text
    (p,) = h.endpoint.complete(job, ANSWER, 10.5)
    late = Result.decode(SpacePacket.decode(p).data)
    assert (late.status, late.text, late.completion_tokens) == (Status.TIMEOUT, "", 8)
    assert late.queue_time_us == 2_000_000
    h.assert_good_request_answered(20.0)


def test_expired_jobs_are_not_handed_out() -> None:
    h = Harness(EndpointConfig(timeout_s=5.0))
    h.ask("one", 0.0)
    assert h.endpoint.next_job(6.0) is None
    (sent,) = h.endpoint.on_timer(6.0)
    assert isinstance(sent, ResultSent) and sent.result.status is Status.TIMEOUT


def test_backend_error_gets_backend_error_status() -> None:
    backend = RecordedBackend({"capital of France?": ANSWER}, model_ids=("gemma",))
    h = Harness(backend=backend)
    rid, _ = h.ask("never recorded", 0.0)
    (ev,) = h.serve(1.0)
    assert (ev.result.status, ev.request_id) == (Status.BACKEND_ERROR, rid)
    assert "no recorded generation" in ev.result.text
    h.assert_good_request_answered(2.0)


def test_duplicate_request_is_not_run_twice() -> None:
    h = Harness()
    prompt = Prompt(5, "capital of France?")
    sender = h.raw_sender
    h.uplink(sender.encode(prompt), 0.0)
    h.uplink(sender.encode(prompt), 0.1)  # e.g. a retransmission by an upper layer
    assert sum(isinstance(e, DuplicatePrompt) for e in h.events) == 1
    assert h.endpoint.queue_depth == 1


def test_foreign_apid_is_ignored() -> None:
    h = Harness()
    events = h.endpoint.receive_packet(SpacePacket(0x200, 0, b"abc", PacketType.TC), 0.0)
    assert events == [PacketIgnored(0x200, 0)]
    h.assert_good_request_answered(1.0)


def test_fail_and_complete_need_a_running_job() -> None:
    h = Harness()
    h.ask("one", 0.0)
    job = h.endpoint.next_job(0.0)
    assert job is not None
    with pytest.raises(ProtocolError):
        h.endpoint.fail(job, 1.0, Status.OK)  # not an error status: the job stays running
    assert h.endpoint.running == 1
    h.endpoint.complete(job, ANSWER, 1.0)
    with pytest.raises(ProtocolError):
        h.endpoint.complete(job, ANSWER, 1.0)
    with pytest.raises(ProtocolError):
        h.endpoint.fail(job, 1.0)


def test_unencodable_model_text_is_cleaned_not_fatal() -> None:
    h = Harness()
    h.ask("one", 0.0)
    job = h.endpoint.next_job(0.0)
    assert job is not None
    odd = Generation("bad \ud800 surrogate", 3, 3, 0.1)
    (p,) = h.endpoint.complete(job, odd, 1.0)
    (ev,) = h.client.receive_packet(p, 1.0)
    assert ev.result.status is Status.OK and ev.result.text == "bad ? surrogate"


# -- segmentation ---------------------------------------------------------------------------------

def _incompressible(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(0x21, 0x2FF)) for _ in range(n))


def test_long_prompt_and_long_result_cross_many_packets() -> None:
    small = TransportConfig(max_data_length=64)
    text = _incompressible(3000)
    answer = Generation(_incompressible(2000, seed=2), 900, 700, 1.5)
    backend = RecordedBackend({text: answer}, max_prompt_tokens=4000)
    h = Harness(EndpointConfig(transport=small), backend=backend)
    rid, up = h.client.ask(text, 0.0)
    assert len(up) > 40
    flags = [SpacePacket.decode(p).sequence_flags for p in up]
    assert flags[0] == SequenceFlags.FIRST and flags[-1] == SequenceFlags.LAST
    assert set(flags[1:-1]) == {SequenceFlags.CONTINUATION}
    events = [e for p in up for e in h.endpoint.receive_packet(p, 0.0)]
    assert events == [PromptQueued(rid, "recorded", 900, 1)]
    job = h.endpoint.next_job(0.0)
    assert job is not None and job.prompt.text == text
    down = h.endpoint.complete(job, answer, 2.0)
    assert len(down) > 30
    got = [e for p in down for e in h.client.receive_packet(p, 3.0)]
    (ev,) = got
    assert isinstance(ev, ResultReceived) and ev.result.text == answer.text


@given(text=st.text(max_size=1500), size=st.integers(16, 300))
@settings(max_examples=60)
def test_segmentation_round_trip(text: str, size: int) -> None:
    config = TransportConfig(max_data_length=size)
    sender = MessageSender(config.prompt_apid, packet_type=PacketType.TC,
                           max_data_length=size)
    receiver = MessageReceiver([config.prompt_apid], expect=MessageType.PROMPT)
    prompt = Prompt(42, text)
    packets = sender.encode(prompt)
    assert all(len(p) <= 6 + size for p in packets)
    events = [e for p in packets for e in receiver.feed(p)]
    assert len(events) == 1 and isinstance(events[0], MessageReceived)
    assert events[0].message == prompt and events[0].packets == len(packets)


def test_lost_segment_gets_malformed_with_request_id() -> None:
    h = Harness(EndpointConfig(transport=TransportConfig(max_data_length=32)))
    rid, up = h.client.ask(_incompressible(300), 0.0)
    assert len(up) >= 4
    events = h.uplink(up[:2] + up[3:], 0.0)  # the third packet is lost
    r = only_result(events)
    assert (r.status, r.request_id) == (Status.MALFORMED, rid)
    assert "gap" in r.text
    assert any(isinstance(e, SequenceGap) for e in h.events)
    assert any(isinstance(e, MessageLost) and e.request_id == rid for e in h.events)
    h.assert_good_request_answered(1.0)


def test_missing_last_segment_times_out_in_reassembly() -> None:
    config = EndpointConfig(transport=TransportConfig(max_data_length=32),
                            reassembly_timeout_s=30.0)
    h = Harness(config)
    rid, up = h.client.ask(_incompressible(300), 0.0)
    assert h.uplink(up[:-1], 5.0) == []
    assert h.endpoint.next_deadline() == 35.0
    assert h.endpoint.on_timer(34.0) == []
    events = h.endpoint.on_timer(35.0)
    sent = [e for e in events if isinstance(e, ResultSent)]
    assert [(s.result.status, s.result.request_id) for s in sent] == [(Status.MALFORMED, rid)]
    assert "reassembly timeout" in sent[0].result.text
    assert h.endpoint.next_deadline() is None
    # the orphan LAST packet arriving later is reported, not glued to anything
    late = h.endpoint.receive_packet(up[-1], 40.0)
    assert not any(isinstance(e, PromptQueued) for e in late)
    h.assert_good_request_answered(50.0)


# -- fuzzing: the endpoint never raises and keeps serving -----------------------------------------

@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
@settings(max_examples=100)
def test_random_packets_never_break_the_endpoint(junk: list[bytes], data: st.DataObject) -> None:
    h = Harness()
    for raw in junk:
        if data.draw(st.booleans()) and len(raw) >= 6:  # make it look like a prompt packet
            raw = bytes([0x11, 0x00]) + raw[2:]
        for event in h.endpoint.receive_packet(raw, 0.0):
            if isinstance(event, ResultSent):
                assert event.result.status in (Status.MALFORMED, Status.PROMPT_TOO_LONG,
                                               Status.BUSY, Status.UNKNOWN_MODEL)
            if isinstance(event, MessageRejected):
                assert isinstance(event.error, DecodeError)
    h.serve(0.5)
    h.endpoint.on_timer(1000.0)
    # Junk with valid packet headers moved the APID's sequence state: the Reassembler may drop
    # the client's next packet as "late" and re-anchors on the one after (SequenceReset), so
    # a ground client's retry is answered at the latest.
    h.assert_good_request_answered(1001.0, attempts=2)


# -- the client -----------------------------------------------------------------------------------

def test_client_timeout_and_late_result() -> None:
    h = Harness(timeout_s=30.0)
    rid, _ = h.ask("capital of France?", 0.0)
    assert h.client.next_deadline() == 30.0
    assert h.client.on_timer(29.0) == []
    (t,) = h.client.on_timer(30.0)
    assert isinstance(t, RequestTimedOut) and t.request_id == rid
    assert h.client.next_deadline() is None
    (late,) = h.serve(31.0)
    assert isinstance(late, UnmatchedResult) and late.result.request_id == rid


def test_client_request_ids_skip_the_reserved_one() -> None:
    client = PromptClient(first_request_id=UNKNOWN_REQUEST_ID - 1)
    ids = [client.ask("x", 0.0)[0] for _ in range(3)]
    assert ids == [UNKNOWN_REQUEST_ID - 1, 0, 1]
    with pytest.raises(ConfigError):
        PromptClient(first_request_id=UNKNOWN_REQUEST_ID)


def test_client_ask_params_travel() -> None:
    h = Harness()
    params = GenerationParams(max_tokens=7, temperature=0.3, seed=11, stop=("\n",))
    h.ask("capital of France?", 0.0, params=params, model_id="alt")
    job = h.endpoint.next_job(0.0)
    assert job is not None
    assert job.prompt.params == params and job.model_id == "alt"


# -- recordings -----------------------------------------------------------------------------------

def test_recorded_backend_json_round_trip() -> None:
    backend = make_backend()
    again = RecordedBackend.from_json(backend.to_json())
    assert again.recordings == backend.recordings
    assert again.model_ids == backend.model_ids
    assert again.max_prompt_tokens == backend.max_prompt_tokens
    with pytest.raises(ConfigError):
        RecordedBackend.from_json('{"recordings": 3}')
    captured = RecordedBackend.capture(backend, ["capital of France?"])
    assert captured.recordings == {"capital of France?": ANSWER}
    assert isinstance(captured, ModelBackend)


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        TransportConfig(prompt_apid=0x7FF)
    with pytest.raises(ConfigError):
        TransportConfig(prompt_apid=5, result_apid=5)
    with pytest.raises(ConfigError):
        TransportConfig(max_data_length=8)
    with pytest.raises(ConfigError):
        EndpointConfig(concurrency=0)
    with pytest.raises(ConfigError):
        EndpointConfig(timeout_s=0)


# -- the CLI (the model itself is exercised in test_payload_model.py) ------------------------------

def test_cli_run_ask_with_recorded_backend() -> None:
    report = run_ask("capital of France?", backend=make_backend(), max_tokens=8,
                     profile="rad-hard-leon")
    assert report["status"] == "ok"
    assert report["answer"] == ANSWER.text
    assert (report["prompt_tokens"], report["completion_tokens"]) == (41, 8)
    assert report["inference_s_on_profile"] == pytest.approx(ANSWER.inference_s * 200.0)
    assert report["uplink_packets"] == report["downlink_packets"] == 1
    console = Console(record=True, width=120)
    _print(console, report)
    text = console.export_text()
    assert ANSWER.text in text and "41 prompt, 8 completion" in text


def test_cli_unknown_model_file_is_a_clean_error(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    out = CliRunner().invoke(app, ["endpoint", "ask", "hi", "--model",
                                   str(tmp_path / "missing.gguf")])
    assert out.exit_code == 2
    assert "missing.gguf" in out.output or "not installed" in out.output
