"""AI payload messages: byte layout, round trips, compression choice, limits, fuzzing."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import DecodeError, EncodeError, LinkstackError, TruncatedError
from linkstack.payload import messages as m
from linkstack.payload.messages import (
    MAX_PROMPT_OCTETS,
    MAX_STOP_OCTETS,
    MAX_STOP_SEQUENCES,
    FinishReason,
    GenerationParams,
    PartialResult,
    Prompt,
    Result,
    Status,
    decode_message,
    peek_request_id,
)

# -- strategies ------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


def _utf8_len_at_most(n: int) -> Callable[[str], bool]:
    return lambda s: len(s.encode("utf-8")) <= n


model_ids = st.text(max_size=16).filter(_utf8_len_at_most(m.MAX_MODEL_ID_OCTETS))
stops = st.lists(
    st.text(min_size=1, max_size=8).filter(_utf8_len_at_most(MAX_STOP_OCTETS)),
    max_size=MAX_STOP_SEQUENCES,
)
# Incompressible (random unicode), compressible (a short piece repeated) and empty texts.
random_text = st.text(max_size=300)
repetitive_text = st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=12),
                            st.integers(1, 200))
texts = st.one_of(random_text, repetitive_text, st.just(""))
params = st.builds(
    GenerationParams,
    max_tokens=st.integers(1, 0xFFFF),
    temperature=st.integers(0, 0xFFFF).map(lambda t: t / 1000),
    seed=u32,
    stop=stops.map(tuple),
)
prompts = st.builds(Prompt, request_id=u32, text=texts, model_id=model_ids, params=params)
results = st.builds(
    Result, request_id=u32, status=st.sampled_from(Status), text=texts, model_id=model_ids,
    prompt_tokens=u32, completion_tokens=u32, queue_time_us=u64, inference_time_us=u64,
    finish_reason=st.sampled_from(FinishReason),
)
partials = st.builds(PartialResult, request_id=u32, segment=st.integers(0, 0xFFFF),
                     text_offset=st.integers(0, 4096), text=random_text,
                     completion_tokens=u32, elapsed_us=u64)


def _flag_should_be(text: str) -> bool:
    """The rule, checked with an independent zstd call: compressed iff strictly shorter."""
    raw = text.encode("utf-8")
    if not raw:
        return False
    return len(zstandard.ZstdCompressor(level=m.ZSTD_LEVEL).compress(raw)) < len(raw)


# -- byte-exact vectors (written by hand from the layout in the module docstring) ---------------

def test_prompt_vector() -> None:
    p = Prompt(0x01020304, "Hi", "g", GenerationParams(16, 0.5, 7, ("\n",)))
    expected = bytes.fromhex(
        "01" "01" "00" "01020304"      # type, version, flags (not compressed), request id
        "01" "67"                       # model_id "g"
        "0010" "01f4" "00000007"        # max_tokens 16, temperature 500 milli, seed 7
        "01" "01" "0a"                  # one stop sequence: "\n"
        "00000002" "00000002" "4869"    # text_octets 2, text length 2, "Hi"
    )
    assert p.encode() == expected
    assert Prompt.decode(expected) == p


def test_result_vector() -> None:
    r = Result(5, Status.BUSY)
    expected = bytes.fromhex(
        "02" "01" "00" "00000005" "03" "00" "00"   # type, version, flags, id, BUSY, NONE, ""
        "00000000" "00000000"                       # prompt, completion tokens
        "0000000000000000" "0000000000000000"       # queue, inference µs
        "00000000" "00000000"                       # text_octets, text length
    )
    assert r.encode() == expected
    assert decode_message(expected) == r


def test_compressed_text_layout() -> None:
    text = "all work and no play " * 20
    raw = text.encode()
    wire = Prompt(9, text).encode()
    # model_id "" at 7, max_tokens 8, temperature 10, seed 12, no stop sequences at 16,
    # text_octets at 17, text length at 21, zstd frame from 25 to the end
    assert wire[2] == 0x01  # text_compressed
    n_raw, frame_len = struct.unpack_from(">II", wire, 17)
    assert n_raw == len(raw)
    frame = wire[25:]
    assert len(frame) == frame_len
    assert zstandard.ZstdDecompressor().decompress(frame) == raw


# -- round trips -----------------------------------------------------------------------------------

@given(prompts)
def test_prompt_round_trip(p: Prompt) -> None:
    wire = p.encode()
    assert Prompt.decode(wire) == p
    assert decode_message(wire) == p
    assert bool(wire[2] & 1) == _flag_should_be(p.text)
    # the construct declaration parses the same octets to the same fields
    parsed = m.PROMPT_STRUCT.parse(wire)
    assert parsed.request_id == p.request_id and parsed.model_id == p.model_id
    assert parsed.max_tokens == p.params.max_tokens
    assert parsed.temperature_milli == p.params.temperature_milli
    assert tuple(parsed.stop_sequences) == p.params.stop
    assert parsed.text_octets == len(p.text.encode())


@given(results)
def test_result_round_trip(r: Result) -> None:
    wire = r.encode()
    assert Result.decode(wire) == r
    assert decode_message(wire) == r
    assert bool(wire[2] & 1) == _flag_should_be(r.text)
    parsed = m.RESULT_STRUCT.parse(wire)
    assert (parsed.status, parsed.queue_time_us, parsed.inference_time_us) == (
        r.status, r.queue_time_us, r.inference_time_us)


@given(prompts, st.booleans())
def test_forced_compression_still_decodes(p: Prompt, compress: bool) -> None:
    wire = p.encode(compress=compress)
    assert Prompt.decode(wire) == p
    assert bool(wire[2] & 1) == (compress and p.text != "")


def test_compressible_text_is_compressed() -> None:
    text = "telemetry nominal. " * 500
    wire = Prompt(1, text).encode()
    assert wire[2] & 1
    assert len(wire) < len(text) // 10


def test_temperature_is_fixed_point() -> None:
    assert GenerationParams(temperature=0.7004).temperature == 0.7
    assert GenerationParams(temperature=0.7004).temperature_milli == 700
    assert GenerationParams(temperature=65.535).temperature_milli == 0xFFFF


def test_request_id_extremes_and_peek() -> None:
    for rid in (0, 1, 0xFFFFFFFE, 0xFFFFFFFF):
        wire = Prompt(rid, "x").encode()
        assert Prompt.decode(wire).request_id == rid
        assert peek_request_id(wire) == rid
        assert peek_request_id(wire, m.MessageType.PROMPT) == rid
        assert peek_request_id(wire, m.MessageType.RESULT) is None
    assert peek_request_id(b"\x01\x01\x00\x00") is None
    assert peek_request_id(b"\x01\x02\x00\x00\x00\x00\x07") is None  # version 2
    assert peek_request_id(b"\x09\x01\x00\x00\x00\x00\x07") is None  # unknown type


# -- decoding errors: only linkstack.errors, naming field and offset -------------------------------

def _expect(buf: bytes, field: str, offset: int, kind: type[DecodeError] = DecodeError) -> None:
    with pytest.raises(kind) as info:
        decode_message(buf)
    assert info.value.layer == "payload"
    assert info.value.field == field
    assert info.value.offset == offset


GOOD = Prompt(0x01020304, "Hi", "g", GenerationParams(16, 0.5, 7, ("\n",))).encode()


def test_bad_header_fields() -> None:
    _expect(b"", "message_type", 0, TruncatedError)
    _expect(b"\x07" + GOOD[1:], "message_type", 0)
    _expect(GOOD[:1] + b"\x02" + GOOD[2:], "version", 1)
    _expect(GOOD[:2] + b"\x08" + GOOD[3:], "flags", 2)  # spare bit set (bits 2..1: priority)
    _expect(GOOD[:5], "request_id", 3, TruncatedError)
    _expect(GOOD + b"\x00", "end", len(GOOD))


def test_bad_prompt_fields() -> None:
    # model_id length runs past the end
    _expect(GOOD[:7] + b"\xff" + GOOD[8:], "model_id", 7, TruncatedError)
    # model_id not UTF-8
    _expect(GOOD[:8] + b"\xff" + GOOD[9:], "model_id", 7)
    # max_tokens 0
    _expect(GOOD[:9] + b"\x00\x00" + GOOD[11:], "max_tokens", 9)
    # 5 stop sequences
    many = Prompt(1, "x", params=GenerationParams(stop=("a",) * 4)).encode()
    at = 7 + 1 + 8
    assert many[at] == 4
    _expect(many[:at] + b"\x05" + many[at + 1:at + 9] + b"\x01e" + many[at + 9:],
            "stop_sequences", at)
    # an empty stop sequence
    _expect(GOOD[:17] + b"\x01\x00" + GOOD[20:], "stop_sequences", 18)  # its length octet
    # text_octets disagrees with the text
    _expect(GOOD[:20] + b"\x00\x00\x00\x03" + GOOD[24:], "text", 24)
    # text_octets above the limit
    _expect(GOOD[:20] + (MAX_PROMPT_OCTETS + 1).to_bytes(4, "big") + GOOD[24:],
            "text_octets", 20)
    # text length runs past the end
    _expect(GOOD[:24] + b"\x00\x00\x00\x09" + GOOD[28:], "text", 24, TruncatedError)
    # text not UTF-8
    _expect(GOOD[:28] + b"\xc3\x28", "text", 28)


def _with_text(flag: int, text_octets: int, data: bytes) -> bytes:
    head = bytearray(GOOD[:20])
    head[2] = flag
    return bytes(head) + struct.pack(">II", text_octets, len(data)) + data


def test_bad_compressed_text() -> None:
    raw = b"hello hello hello hello hello hello hello"
    frame = zstandard.ZstdCompressor().compress(raw)
    assert Prompt.decode(_with_text(1, len(raw), frame)).text == raw.decode()
    _expect(_with_text(1, len(raw), raw), "text", 28)                   # not zstd
    _expect(_with_text(1, len(raw) + 1, frame), "text", 28)             # size disagrees
    _expect(_with_text(1, len(raw), frame + b"\x00"), "text", 28 + len(frame))  # trailing
    _expect(_with_text(1, len(raw), frame[:-2]), "text", 28 + len(frame) - 2, TruncatedError)
    # A frame without a declared content size is refused (the decoder could not bound it).
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    _expect(_with_text(1, len(raw), unsized), "text", 28)


def test_decompression_bomb_is_refused() -> None:
    bomb = zstandard.ZstdCompressor().compress(b"\x00" * (4 * MAX_PROMPT_OCTETS))
    assert len(bomb) < 1000
    _expect(_with_text(1, 4 * MAX_PROMPT_OCTETS, bomb), "text_octets", 20)
    # Lying about the size: the frame header is checked against text_octets first.
    _expect(_with_text(1, 100, bomb), "text", 28)


def test_bad_result_fields() -> None:
    good = Result(5, Status.OK, "fine", "m", 1, 2, 3, 4, FinishReason.STOP).encode()
    _expect(good[:7] + b"\x09" + good[8:], "status", 7)
    _expect(good[:8] + b"\x07" + good[9:], "finish_reason", 8)
    _expect(good[:17], "completion_tokens", 15, TruncatedError)
    _expect(good[:30], "inference_time_us", 27, TruncatedError)


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_decode_errors(buf: bytes) -> None:
    for decode in (decode_message, Prompt.decode, Result.decode):
        try:
            decode(buf)
        except DecodeError as exc:
            assert exc.layer == "payload"
            assert 0 <= exc.offset <= len(buf)


@given(st.one_of(prompts, results), st.data())
@settings(max_examples=150)
def test_mutated_messages_raise_only_decode_errors(msg: Prompt | Result,
                                                    data: st.DataObject) -> None:
    wire = bytearray(msg.encode())
    action = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if action == "flip":
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] ^= data.draw(st.integers(1, 255))
    elif action == "truncate":
        del wire[data.draw(st.integers(0, len(wire) - 1)):]
    else:
        wire += data.draw(st.binary(min_size=1, max_size=8))
    try:
        out = decode_message(bytes(wire))
    except LinkstackError as exc:
        assert isinstance(exc, DecodeError)
        assert 0 <= exc.offset <= len(wire)
    else:
        assert isinstance(out, Prompt | Result)


def test_every_truncation_is_an_error() -> None:
    wire = Prompt(3, "where is the ISS? " * 3, "gemma",
                  GenerationParams(32, 0.2, 1, ("Q:",))).encode()
    for n in range(len(wire)):
        with pytest.raises(DecodeError) as info:
            decode_message(wire[:n])
        assert info.value.offset <= n


# -- encoding limits -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Prompt(1, "x" * (MAX_PROMPT_OCTETS + 1)).encode(), "text"),
        (lambda: Prompt(1, "\ud800").encode(), "text"),
        (lambda: Prompt(2**32, "x").encode(), "request_id"),
        (lambda: Prompt(-1, "x").encode(), "request_id"),
        (lambda: Prompt(1, "x", "m" * 65).encode(), "model_id"),
        (lambda: GenerationParams(max_tokens=0), "max_tokens"),
        (lambda: GenerationParams(max_tokens=65536), "max_tokens"),
        (lambda: GenerationParams(temperature=-0.1), "temperature_milli"),
        (lambda: GenerationParams(temperature=float("nan")), "temperature_milli"),
        (lambda: GenerationParams(temperature=65.6), "temperature_milli"),
        (lambda: GenerationParams(seed=2**32), "seed"),
        (lambda: GenerationParams(stop=("a",) * 5), "stop_sequences"),
        (lambda: GenerationParams(stop=("",)), "stop_sequences"),
        (lambda: GenerationParams(stop=("x" * 33,)), "stop_sequences"),
        (lambda: Result(1, Status.OK, "x" * (m.MAX_RESULT_OCTETS + 1)).encode(), "text"),
        (lambda: Result(1, Status.OK, prompt_tokens=2**32).encode(), "prompt_tokens"),
        (lambda: Result(1, Status.OK, queue_time_us=-1).encode(), "queue_time_us"),
    ],
)
def test_encode_limits(make: Callable[[], object], field: str) -> None:
    with pytest.raises(EncodeError) as info:
        make()
    assert info.value.layer == "payload"
    assert info.value.field == field


def test_limits_are_inclusive() -> None:
    p = Prompt(1, "é" * (MAX_PROMPT_OCTETS // 2), "m" * 64,
               GenerationParams(stop=("s" * MAX_STOP_OCTETS,) * MAX_STOP_SEQUENCES))
    assert Prompt.decode(p.encode()) == p


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed values with the flags as {name: int}, construct's Container or the fast
    layout's record alike (constant spare bits left out)."""
    out = {k: v for k, v in values.items() if not k.startswith("_")}
    flags = out["flags"]
    names = [n for n in ("priority", "text_compressed") if hasattr(flags, n)]
    out["flags"] = {n: int(getattr(flags, n)) for n in names}
    return out


_LAYOUTS = ((m.PROMPT_STRUCT, m._PROMPT_FAST), (m.RESULT_STRUCT, m._RESULT_FAST),
            (m.PARTIAL_STRUCT, m._PARTIAL_FAST))


@given(st.one_of(prompts.map(Prompt.encode), results.map(Result.encode),
                 partials.map(PartialResult.encode), st.binary(max_size=60)),
       st.data())
@settings(max_examples=300)
def test_fast_layout_agrees_with_the_declaration(wire: bytes, data: st.DataObject) -> None:
    """The fast layout (hot path) and the field-by-field walk of the declaration accept the
    same octets and read the same values, for every message type, whole or with one octet
    changed, cut short or lengthened; and from those values both build the same octets."""
    mutation = data.draw(st.sampled_from(["none", "flip", "cut", "grow"]))
    if wire and mutation == "flip":
        i = data.draw(st.integers(0, len(wire) - 1))
        wire = wire[:i] + bytes([wire[i] ^ data.draw(st.integers(1, 255))]) + wire[i + 1:]
    elif wire and mutation == "cut":
        wire = wire[:data.draw(st.integers(0, len(wire) - 1))]
    elif mutation == "grow":
        wire += data.draw(st.binary(min_size=1, max_size=3))
    for decl, fast in _LAYOUTS:
        try:
            walked, _ = m._walk(decl, wire)
        except DecodeError:
            walked = None
        parsed = fast.parse(wire)
        if walked is None:
            assert parsed is None
        else:
            assert parsed is not None
            assert _plain(parsed) == _plain(walked)
            values = {k: v for k, v in walked.items() if not k.startswith("_")}
            assert fast.build(values) == decl.build(values) == wire
