"""Streamed answers and inference slots: the PartialResult message (layout, round trips, a
decoder fuzz), the ground's reassembly of segments, the endpoint's cutting policy, its
priority queue, and the client's time to first token."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.payload import messages as m
from linkstack.payload.backend import Generation, RecordedBackend, held_back
from linkstack.payload.client import (
    PartialReceived,
    PromptClient,
    ResultReceived,
    StreamAssembler,
    UnmatchedPartial,
)
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint, ResultSent
from linkstack.payload.messages import (
    GenerationParams,
    PartialResult,
    Prompt,
    Status,
    decode_message,
    peek_request_id,
)
from linkstack.payload.transport import PROMPT_APID, MessageSender
from linkstack.spp.packet import PacketType

# -- the message -------------------------------------------------------------------------------


def test_partial_vector() -> None:
    # written by hand from the layout in linkstack/payload/messages.py's docstring
    p = PartialResult(
        0x0A0B0C0D, segment=2, text_offset=5, text=" is", completion_tokens=3, elapsed_us=0x123456
    )
    expected = bytes.fromhex(
        "03"
        "01"
        "00"
        "0a0b0c0d"  # type PARTIAL, version 1, flags, request id
        "0002"  # segment 2
        "00000005"  # text_offset 5
        "00000003"  # completion_tokens 3
        "0000000000123456"  # elapsed_us
        "00000003"
        "00000003"
        "206973"  # text_octets 3, text length 3, " is"
    )
    assert p.encode() == expected
    assert PartialResult.decode(expected) == p
    assert decode_message(expected) == p
    assert peek_request_id(expected, m.MessageType.RESULT) == 0x0A0B0C0D
    assert peek_request_id(expected, m.MessageType.PROMPT) is None


def test_prompt_priority_vector() -> None:
    # priority 2 is flags bits 2..1 = 0b10 -> flags octet 0x04; everything else as before
    p = Prompt(1, "Hi", priority=2)
    wire = p.encode()
    assert wire[2] == 0x04
    assert wire[:2] + b"\x00" + wire[3:] == Prompt(1, "Hi").encode()
    assert Prompt.decode(wire) == p
    with pytest.raises(EncodeError) as info:
        Prompt(1, "Hi", priority=4).encode()
    assert info.value.field == "priority"


partials = st.builds(
    PartialResult,
    request_id=st.integers(0, 2**32 - 1),
    segment=st.integers(0, 0xFFFF),
    text_offset=st.integers(0, 1000),
    text=st.one_of(st.text(max_size=200), st.text(max_size=3).map(lambda t: t * 80)),
    completion_tokens=st.integers(0, 2**32 - 1),
    elapsed_us=st.integers(0, 2**64 - 1),
)


@given(partials, st.sampled_from([None, True, False]))
def test_partial_round_trip(p: PartialResult, compress: bool | None) -> None:
    wire = p.encode(compress=compress)
    assert PartialResult.decode(wire) == p
    assert decode_message(wire) == p
    parsed = m.PARTIAL_STRUCT.parse(wire)
    assert (parsed.segment, parsed.text_offset, parsed.elapsed_us) == (
        p.segment,
        p.text_offset,
        p.elapsed_us,
    )


@given(partials, st.data())
@settings(max_examples=300)
def test_partial_decoder_fuzz(p: PartialResult, data: st.DataObject) -> None:
    """Flip, cut or extend the octets of a valid PartialResult: the decoder returns a
    PartialResult or raises a DecodeError naming a declared field, nothing else."""
    wire = bytearray(p.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire) + 3))
    buf = bytes(wire[:cut]) + (b"\x00" * (cut - len(wire)) if cut > len(wire) else b"")
    try:
        out = decode_message(buf)
    except DecodeError as exc:
        assert exc.layer == "payload"
        names = {sub.name for sub in m.PARTIAL_STRUCT.subcons} | {
            sub.name for s in (m.PROMPT_STRUCT, m.RESULT_STRUCT) for sub in s.subcons
        }
        assert exc.field in names
    else:
        assert isinstance(out, PartialResult | m.Result | m.Prompt)
        assert out.encode() is not None


def test_partial_errors_name_the_field() -> None:
    good = PartialResult(1, 0, 0, "abc").encode()
    with pytest.raises(TruncatedError) as info:
        decode_message(good[:8])
    assert (info.value.field, info.value.offset) == ("segment", 7)
    beyond = PartialResult(1, 0, m.MAX_RESULT_OCTETS, "").encode()
    bad = beyond[:9] + (m.MAX_RESULT_OCTETS + 1).to_bytes(4, "big") + beyond[13:]
    with pytest.raises(DecodeError) as info:
        decode_message(bad)
    assert (info.value.field, info.value.offset) == ("text_offset", 9)
    with pytest.raises(EncodeError) as e_info:
        PartialResult(1, 0, m.MAX_RESULT_OCTETS, "x").encode()
    assert e_info.value.field == "text"


# -- reassembly at the ground ------------------------------------------------------------------


def _cut(text: str, cuts: list[int]) -> list[PartialResult]:
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    out, offset = [], 0
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        out.append(PartialResult(7, i, offset, text[a:b], b))
        offset += len(text[a:b].encode())
    return out


@given(
    st.text(min_size=1, max_size=60),
    st.lists(st.integers(0, 1000), max_size=10),
    st.randoms(use_true_random=False),
    st.floats(0, 1),
)
def test_assembler_puts_any_order_together(
    text: str, cuts: list[int], rnd: random.Random, dup: float
) -> None:
    segments = _cut(text, cuts)
    arrivals = segments + [s for s in segments if rnd.random() < dup]  # some twice
    rnd.shuffle(arrivals)
    asm = StreamAssembler()
    grown = "".join(asm.add(s) for s in arrivals)
    assert grown == text == asm.text
    assert asm.held == 0


@given(
    st.text(min_size=2, max_size=60),
    st.lists(st.integers(0, 1000), min_size=2, max_size=10),
    st.integers(0, 100),
)
def test_assembler_never_passes_a_gap(text: str, cuts: list[int], lost: int) -> None:
    segments = _cut(text, cuts)
    gone = lost % len(segments)
    asm = StreamAssembler()
    for s in segments:
        if s.segment != gone:
            asm.add(s)
    before = "".join(s.text for s in segments[:gone])
    assert asm.text == before  # nothing after the lost segment is shown
    assert asm.held == len(segments) - gone - 1


# -- the endpoint: cutting, loss, priority -------------------------------------------------------

ANSWER = "Paris is the capital of France."
PIECES = tuple(
    (0.1 * (i + 1), i + 1, k) for i, k in enumerate((5, 8, 12, 20, 23, 27, 31))
)  # "Paris", " is", " the", " capital", ...


def _backend() -> RecordedBackend:
    g = Generation(ANSWER, 69, 7, 0.7, m.FinishReason.STOP, PIECES)
    return RecordedBackend({"q": g}, default=g)


def _run(cfg: EndpointConfig, *, drop: set[int] = frozenset()) -> tuple[list[object], list[bytes]]:
    """Ask "q"; replay the recorded pieces at their times; return the client's events."""
    backend = _backend()
    ep = ModelEndpoint(backend, cfg)
    client = PromptClient()
    _, up = client.ask("q", 0.0)
    for p in up:
        ep.receive_packet(p, 0.0)
    job = ep.next_job(0.0)
    assert job is not None
    g = backend.generate("q", job.prompt.params)
    down: list[bytes] = []
    for t, n, k in g.pieces:
        down += ep.progress(job, g.text[:k], n, t)
    down += ep.complete(job, g, g.inference_s)
    events: list[object] = []
    for i, p in enumerate(down):
        if i not in drop:
            events += client.receive_packet(p, 10.0 + i)
    return events, down


def test_every_n_tokens() -> None:
    events, _ = _run(EndpointConfig(stream_tokens=3))
    parts = [e for e in events if isinstance(e, PartialReceived)]
    # the first as soon as there is text, then every 3 tokens: after tokens 1, 4, 7
    assert [e.partial.completion_tokens for e in parts] == [1, 4, 7]
    assert [e.new_text for e in parts] == ["Paris", " is the capital", " of France."]
    assert [e.partial.elapsed_us for e in parts] == [100_000, 400_000, 700_000]
    (final,) = [e for e in events if isinstance(e, ResultReceived)]
    assert final.result.text == ANSWER == parts[-1].text
    assert final.segments == 3
    assert final.ttft_s == 10.0 and final.round_trip_s == 13.0


def test_every_t_seconds() -> None:
    events, _ = _run(EndpointConfig(stream_interval_s=0.25))
    parts = [e for e in events if isinstance(e, PartialReceived)]
    assert [e.partial.completion_tokens for e in parts] == [1, 4, 7]  # at 0.1, 0.4, 0.7 s


def test_no_streaming_by_default() -> None:
    events, down = _run(EndpointConfig())
    assert len(down) == 1
    (final,) = events
    assert isinstance(final, ResultReceived)
    assert final.ttft_s == final.round_trip_s and final.segments == 0


def test_lost_partial_never_blocks_the_final_answer() -> None:
    events, down = _run(EndpointConfig(stream_tokens=2), drop={1})
    parts = [e for e in events if isinstance(e, PartialReceived)]
    assert parts[0].new_text == "Paris"
    assert all(e.new_text == "" for e in parts[1:])  # held behind the gap
    assert isinstance(events[-1], ResultReceived) and events[-1].result.text == ANSWER
    # a partial arriving after its Result is reported, not taken
    late = PromptClient()
    late_events = late.receive_packet(down[1], 0.0)
    assert isinstance(late_events[0], UnmatchedPartial)


def test_streamed_text_is_a_prefix_of_the_final() -> None:
    assert held_back("Paris\n", ["\nQ:", "\n\n"]) == 1
    assert held_back("Paris\nQ", ["\nQ:"]) == 2
    assert held_back("Paris", ["\nQ:"]) == 0


def test_stream_config_is_checked() -> None:
    with pytest.raises(ConfigError) as info:
        EndpointConfig(stream_tokens=-1)
    assert info.value.key == "stream_tokens"
    with pytest.raises(ConfigError) as info:
        EndpointConfig(stream_interval_s=float("inf"))
    assert info.value.key == "stream_interval_s"


def test_queue_serves_priority_then_arrival_and_is_bounded() -> None:
    backend = _backend()
    ep = ModelEndpoint(backend, EndpointConfig(queue_limit=4, concurrency=2))
    order = [(0, 0), (1, 1), (2, 0), (3, 3), (4, 1)]  # (request id, priority)
    sender = MessageSender(PROMPT_APID, packet_type=PacketType.TC)
    busy = []
    for rid, prio in order:
        (packet,) = sender.encode(Prompt(rid, "q", priority=prio))
        for ev in ep.receive_packet(packet, 0.0):
            if isinstance(ev, ResultSent):
                busy.append((ev.result.request_id, ev.result.status))
    assert busy == [(4, Status.BUSY)]  # 4 waiting: the fifth is refused
    first = [ep.next_job(1.0), ep.next_job(1.0), ep.next_job(1.0)]
    assert [j.request_id if j else None for j in first] == [3, 1, None]  # two slots
    assert ep.running == 2
    ep.complete(first[0], backend.generate("q", GenerationParams()), 2.0)
    assert ep.next_job(2.0).request_id == 0  # priority 0: the older first
    ep.complete(first[1], backend.generate("q", GenerationParams()), 2.0)
    assert ep.next_job(2.0).request_id == 2


def test_ask_streams_through_the_codec_with_a_recording() -> None:
    from linkstack.cli.endpoint import run_ask

    shown: list[str] = []
    report = run_ask("q", backend=_backend(), stream=True, stream_tokens=2, on_text=shown.append)
    assert shown == ["Paris", " is the", " capital of", " France."]
    assert report["answer"] == ANSWER and report["partial_results"] == 4
    assert report["downlink_packets"] == 5
    plain = run_ask("q", backend=_backend())
    assert plain["partial_results"] == 0 and plain["downlink_packets"] == 1


def test_two_slots_run_two_prompts_at_once() -> None:
    """The asyncio driver hands the endpoint's jobs to worker threads up to its concurrency:
    with two slots, two one-second generations overlap; with one they queue."""
    import asyncio
    import threading
    import time

    from linkstack.drivers.service import LocalEndpointService

    def timed(slots: int) -> tuple[float, int]:
        running, peak = 0, 0
        lock = threading.Lock()
        backend = _backend()
        plain = backend.generate

        def slow(prompt: str, params: GenerationParams, **kw: object) -> Generation:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.5)
            with lock:
                running -= 1
            return plain(prompt, params)

        backend.generate = slow  # type: ignore[method-assign]

        async def main() -> float:
            service = LocalEndpointService(backend, EndpointConfig(concurrency=slots))
            t0 = time.monotonic()
            results = await asyncio.gather(*(service.ask(str(i), "q", 8) for i in range(2)))
            took = time.monotonic() - t0
            await service.aclose()
            assert [r.status for r in results] == ["ok", "ok"]
            return took

        return asyncio.run(main()), peak

    one, peak_one = timed(1)
    two, peak_two = timed(2)
    assert (peak_one, peak_two) == (1, 2)
    assert one >= 1.0 and two < 0.9


def test_service_scale_table_and_beyond() -> None:
    from linkstack.payload.serving import SLOT_SERVICE_SCALE, service_scale

    assert service_scale(1) == 1.0 == SLOT_SERVICE_SCALE[1]
    assert all(service_scale(k) == SLOT_SERVICE_SCALE[k] for k in SLOT_SERVICE_SCALE)
    table = {1: 1.0, 2: 1.5, 4: 3.0}
    assert service_scale(8, table) == 6.0  # the last entry, in proportion
    with pytest.raises(ConfigError) as info:
        service_scale(0)
    assert info.value.key == "busy"


def test_generate_replays_pieces_of_a_backend_that_does_not_stream() -> None:
    from linkstack.payload.serving import generate

    class Plain:
        def generate(self, prompt: str, params: GenerationParams) -> Generation:
            return _backend().recordings["q"]

    seen: list[tuple[str, int]] = []
    g = generate(Plain(), "q", GenerationParams(), lambda t, n: seen.append((t, n)))  # type: ignore[arg-type]
    assert g.text == ANSWER
    assert seen == [(ANSWER[:k], n) for _, n, k in PIECES]
