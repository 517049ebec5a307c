"""Spec page of the AI payload messages (linkstack's application layer, no Blue Book).

The Prompt and Result layouts are walked from their construct declarations
(:data:`linkstack.payload.messages.PROMPT_STRUCT`, ``RESULT_STRUCT``);
the worked examples decode the octets field by field with the same declarations, at the
offsets the stream reaches, and check the result against ``Prompt.decode`` / ``Result.decode``.
"""

from __future__ import annotations

import io
from typing import Any

import construct as c

from linkstack.payload import messages as m
from linkstack.payload import transport
from linkstack.specgen.frames import SPP_HEADER, check
from linkstack.specgen.render import (
    Example,
    FieldDoc,
    HeaderSpec,
    Page,
    Row,
    Span,
    SpecBuildError,
    fmt_int,
    header_rows,
    md_table,
    struct_fields,
)
from linkstack.spp import packet as spp

__all__ = ["PAYLOAD_PAGE", "message_rows"]

BOOK = ("linkstack message format version 1 (no Blue Book: the layout is linkstack's own, "
        "carried as the user data of CCSDS 133.0-B-2 Space Packets)")
SECTION = "messages.py"

_COMMON: dict[str, FieldDoc] = {
    "message_type": FieldDoc("Message type", "Tells a Prompt, a Result and a PartialResult "
                             "apart.", "0x01 Prompt, 0x02 Result, 0x03 PartialResult",
                             SECTION, "Type", {1: "Prompt", 2: "Result", 3: "PartialResult"}),
    "version": FieldDoc("Version", "Message format version.", f"{m.VERSION}", SECTION,
                        "Version"),
    "spare": FieldDoc("Spare flags", "Reserved flag bits.", "0", SECTION, "Spare"),
    "text_compressed": FieldDoc(
        "Text compressed flag", "The text field holds a zstd frame (used only when it is "
        "shorter than the UTF-8 text).", "0 or 1", SECTION, "Z",
        {0: "text as UTF-8", 1: "zstd frame"}),
    "request_id": FieldDoc(
        "Request id", "Chosen by the ground client, echoed in the Result.",
        f"0..0xFFFFFFFE (0x{m.UNKNOWN_REQUEST_ID:X} = unknown, in a MALFORMED result)",
        SECTION, "Request Id"),
    "model_id": FieldDoc(
        "Model id", "Length octet + UTF-8 name of the model (empty: the endpoint's default).",
        f"0..{m.MAX_MODEL_ID_OCTETS} octets", SECTION, "Model Id"),
    "text_octets": FieldDoc(
        "Text length before compression", "UTF-8 octets of the text (checked after "
        "decompression; bounds the inflation, no decompression bombs).",
        "prompt ≤ 65536, result ≤ 262144", SECTION, "Text Octets"),
    "text": FieldDoc("Text", "4-octet length, then the UTF-8 text or its zstd frame.",
                     "as text_octets says", SECTION, "Text"),
}

PROMPT_SPEC = HeaderSpec(
    key="payload.prompt",
    title="Prompt message (ground → satellite)",
    struct=m.PROMPT_STRUCT,
    declared_in="linkstack.payload.messages.PROMPT_STRUCT",
    variable_text={
        "model_id": "model_id: length octet + 0..64 octets of UTF-8",
        "stop_sequences": "stop_sequences: count octet + (length octet + UTF-8) × count",
        "text": "text: 4-octet length + UTF-8 text or zstd frame",
    },
    docs={
        **_COMMON,
        "priority": FieldDoc(
            "Priority", "The endpoint's queue serves higher priorities first, first come "
            "first served within one.", f"0..{m.MAX_PRIORITY} ({m.MAX_PRIORITY} most urgent)",
            SECTION, "Prio"),
        "max_tokens": FieldDoc("Maximum tokens", "Upper bound on generated tokens.",
                               "1..65535", SECTION, "max_tokens"),
        "temperature_milli": FieldDoc(
            "Temperature × 1000", "Sampling temperature in fixed point; 0 = greedy.",
            "0..65535 (0..65.535)", SECTION, "temperature"),
        "seed": FieldDoc("Seed", "Sampler seed.", "0..2^32 − 1", SECTION, "Seed"),
        "stop_sequences": FieldDoc(
            "Stop sequences", "Count octet, then each sequence as length octet + UTF-8.",
            f"0..{m.MAX_STOP_SEQUENCES} sequences of 1..{m.MAX_STOP_OCTETS} octets", SECTION,
            "Stop"),
    },
)

RESULT_SPEC = HeaderSpec(
    key="payload.result",
    title="Result message (satellite → ground)",
    struct=m.RESULT_STRUCT,
    declared_in="linkstack.payload.messages.RESULT_STRUCT",
    variable_text={
        "model_id": "model_id: length octet + 0..64 octets of UTF-8",
        "text": "text: 4-octet length + UTF-8 text or zstd frame",
    },
    docs={
        **_COMMON,
        "status": FieldDoc("Status", "Outcome: "
                           + ", ".join(f"{s.value} {s.name}" for s in m.Status) + ".",
                           f"0..{max(m.Status)}", SECTION, "Status",
                           {s.value: s.name for s in m.Status}),
        "finish_reason": FieldDoc("Finish reason", "Why generation stopped: "
                                  + ", ".join(f"{r.value} {r.name}" for r in m.FinishReason)
                                  + ".", f"0..{max(m.FinishReason)}", SECTION, "Finish",
                                  {r.value: r.name for r in m.FinishReason}),
        "prompt_tokens": FieldDoc("Prompt tokens", "Tokens in the templated prompt.",
                                  "0..2^32 − 1", SECTION, "Prompt Tokens"),
        "completion_tokens": FieldDoc("Completion tokens", "Tokens generated.", "0..2^32 − 1",
                                      SECTION, "Completion Tokens"),
        "queue_time_us": FieldDoc(
            "Queue time (µs)", "Onboard queueing: inference start minus prompt arrival.",
            "0..2^64 − 1", SECTION, "Queue Time"),
        "inference_time_us": FieldDoc(
            "Inference time (µs)", "Onboard inference time, scaled by the flight-hardware "
            "profile.", "0..2^64 − 1", SECTION, "Inference Time"),
    },
)


PARTIAL_SPEC = HeaderSpec(
    key="payload.partial",
    title="PartialResult message (satellite → ground, while generating)",
    struct=m.PARTIAL_STRUCT,
    declared_in="linkstack.payload.messages.PARTIAL_STRUCT",
    variable_text={"text": "text: 4-octet length + UTF-8 text or zstd frame"},
    docs={
        **{k: v for k, v in _COMMON.items() if k != "model_id"},
        "segment": FieldDoc("Segment", "Number of this segment in the answer's stream, in "
                            "the order the endpoint cut them.", "0..65535", SECTION, "Segment"),
        "text_offset": FieldDoc(
            "Text offset", "Octet offset of this segment's text in the answer's UTF-8 text; "
            "the ground puts segments together by it.", f"0..{m.MAX_RESULT_OCTETS}", SECTION,
            "Text Offset"),
        "completion_tokens": FieldDoc("Completion tokens", "Tokens generated when the "
                                      "segment was cut.", "0..2^32 − 1", SECTION,
                                      "Completion Tokens"),
        "elapsed_us": FieldDoc(
            "Elapsed (µs)", "Onboard time from inference start to the cut (scaled by the "
            "flight-hardware profile).", "0..2^64 − 1", SECTION, "Elapsed"),
    },
)


def _show(value: Any, width: int | None, doc: FieldDoc) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        text = fmt_int(value, width)
        name = doc.values.get(value)
        return f"{text} = {name}" if name else text
    if isinstance(value, str):
        return f"{len(value.encode('utf-8'))} octets: {value!r}"
    if isinstance(value, bytes):
        shown = value if len(value) <= 40 else value[:40] + b"..."
        return f"{len(value)} octets: {shown!r}"
    if isinstance(value, list):
        return f"{len(value)}: " + ", ".join(repr(v) for v in value)
    raise SpecBuildError(f"cannot show {value!r}")


def message_rows(spec: HeaderSpec, octets: bytes, start: int, part: str) -> tuple[
        list[Row], dict[str, Any]]:
    """Walk ``spec.struct`` over ``octets[start:]`` one field at a time (construct
    ``parse_stream``), one row per field at the offset the stream reached."""
    struct = spec.struct
    if not isinstance(struct, c.Struct):
        raise SpecBuildError(f"{spec.key}: not a Struct")
    stream = io.BytesIO(octets[start:])
    rows: list[Row] = []
    values: dict[str, Any] = {}
    widths = {f.key: f.width for f in spec.fields()}
    for sub in struct.subcons:
        target = sub.subcon if isinstance(sub, c.Renamed) else sub
        if isinstance(target, type(c.Terminated)):
            sub.parse_stream(stream)
            continue
        pos = stream.tell()
        value = sub.parse_stream(stream)
        end = stream.tell()
        raw = octets[start + pos:start + end]
        where = (f"octet {start + pos}" if end - pos == 1
                 else f"octets {start + pos}–{start + end - 1}")
        hexed = raw.hex(" ") if len(raw) <= 12 else raw[:12].hex(" ") + " …"
        if isinstance(value, c.Container):  # the flags octet: one row per bit field
            for f in struct_fields(target):
                assert f.width is not None and f.offset is not None
                bits = format(raw[0], "08b")[f.offset:f.offset + f.width]
                v = int(bits, 2)
                check(v == int(value[f.key]), f"{f.key}: construct parse")
                values[f.key] = v
                span = (f"bit {f.offset}" if f.width == 1
                        else f"bits {f.offset}–{f.offset + f.width - 1}")
                rows.append((part, spec.docs[f.key].title, f"{where}, {span}", bits,
                             _show(v, f.width, spec.docs[f.key])))
            continue
        if isinstance(value, c.ListContainer):
            value = list(value)
        values[sub.name] = value
        rows.append((part, spec.docs[sub.name].title, where, hexed,
                     _show(value, widths.get(sub.name), spec.docs[sub.name])))
    return rows, values


_PROMPT_CODE = """
from linkstack.payload.messages import GenerationParams, Prompt
from linkstack.payload.transport import PROMPT_APID, MessageSender
from linkstack.spp.packet import PacketType

prompt = Prompt(request_id=42, text="Orbital period at 700 km?", model_id="gemma3-270m",
                params=GenerationParams(max_tokens=64, temperature=0.7, seed=7, stop=("\\n",)))
sender = MessageSender(PROMPT_APID, packet_type=PacketType.TC)
(octets,) = sender.encode(prompt)  # short enough for one unsegmented packet
"""


def _prompt_spans(octets: bytes) -> list[Span]:
    return [Span(0, 6, "Space Packet primary header"),
            Span(6, 6 + m.COMMON_HEADER_SIZE, "message common header"),
            Span(6 + m.COMMON_HEADER_SIZE, len(octets), "Prompt body")]


def _prompt_decode(octets: bytes) -> list[Row]:
    rows, v = header_rows(SPP_HEADER, octets, 0, "Space Packet header")
    check(v["apid"] == transport.PROMPT_APID and v["packet_type"] == 1, "prompt APID, TC")
    body = spp.SpacePacket.decode(octets).data
    m_rows, values = message_rows(PROMPT_SPEC, octets, 6, "Prompt")
    prompt = m.Prompt.decode(body)
    check((prompt.request_id, prompt.text, prompt.model_id, prompt.params.max_tokens,
           prompt.params.temperature_milli, prompt.params.seed, list(prompt.params.stop))
          == (values["request_id"], values["text"].decode(), values["model_id"],
              values["max_tokens"], values["temperature_milli"], values["seed"],
              values["stop_sequences"]), "Prompt.decode disagrees with the fields")
    return rows + m_rows


PROMPT_EXAMPLE = Example(
    key="payload.prompt_packet",
    title="a Prompt in its Space Packet",
    intro="Request 42 asks model `gemma3-270m` a question, with temperature 0.7 (sent as 700), "
          "seed 7 and one stop sequence. `MessageSender` puts it in a telecommand Space Packet "
          "on the prompt APID 0x100; the text is short, so it travels uncompressed.",
    code=_PROMPT_CODE,
    spans=_prompt_spans,
    decode=_prompt_decode,
    note="Decoded field by field: the packet header from its declaration, then the message by "
         "walking `PROMPT_STRUCT` (construct) one field at a time; checked against "
         "`SpacePacket.decode` and `Prompt.decode`.",
)

_RESULT_CODE = """
from linkstack.payload.messages import FinishReason, Result, Status

result = Result(request_id=42, status=Status.OK, text="About 98.8 minutes.",
                model_id="gemma3-270m", prompt_tokens=19, completion_tokens=7,
                queue_time_us=1500, inference_time_us=412000,
                finish_reason=FinishReason.STOP)
octets = result.encode()
"""


def _result_spans(octets: bytes) -> list[Span]:
    return [Span(0, m.COMMON_HEADER_SIZE, "common header"),
            Span(m.COMMON_HEADER_SIZE, len(octets), "Result body")]


def _result_decode(octets: bytes) -> list[Row]:
    rows, values = message_rows(RESULT_SPEC, octets, 0, "Result")
    result = m.Result.decode(octets)
    check((result.request_id, int(result.status), result.text, result.inference_time_us)
          == (values["request_id"], values["status"], values["text"].decode(),
              values["inference_time_us"]), "Result.decode disagrees with the fields")
    return rows


RESULT_EXAMPLE = Example(
    key="payload.result",
    title="the Result that answers it",
    intro="The onboard endpoint answers request 42: status OK, stopped on the stop sequence, "
          "with the token counts and the onboard times the latency breakdown uses.",
    code=_RESULT_CODE,
    spans=_result_spans,
    decode=_result_decode,
    note="Decoded by walking `RESULT_STRUCT` (construct) one field at a time; checked "
         "against `Result.decode`.",
)


_PARTIAL_CODE = """
from linkstack.payload.messages import PartialResult

# the second segment of the answer "About 98.8 minutes.": " 98.8" after the 5 octets "About"
partial = PartialResult(request_id=42, segment=1, text_offset=5, text=" 98.8",
                        completion_tokens=4, elapsed_us=236000)
octets = partial.encode()
"""


def _partial_decode(octets: bytes) -> list[Row]:
    rows, values = message_rows(PARTIAL_SPEC, octets, 0, "PartialResult")
    partial = m.PartialResult.decode(octets)
    check((partial.request_id, partial.segment, partial.text_offset, partial.text)
          == (values["request_id"], values["segment"], values["text_offset"],
              values["text"].decode()), "PartialResult.decode disagrees with the fields")
    return rows


PARTIAL_EXAMPLE = Example(
    key="payload.partial",
    title="a PartialResult of the same answer, sent while generating",
    intro="With streaming on, the endpoint sends the answer in segments as it is generated; "
          "this is the second, cut after 4 tokens, 236 ms into the inference. The ground "
          "appends it at octet 5 of the text it has; the Result above closes the stream.",
    code=_PARTIAL_CODE,
    spans=lambda octets: [Span(0, m.COMMON_HEADER_SIZE, "common header"),
                          Span(m.COMMON_HEADER_SIZE, len(octets), "PartialResult body")],
    decode=_partial_decode,
    note="Decoded by walking `PARTIAL_STRUCT` (construct) one field at a time; checked "
         "against `PartialResult.decode`.",
)


def _limits() -> str:
    rows = [(name, f"{getattr(m, name)}") for name in (
        "VERSION", "MAX_MODEL_ID_OCTETS", "MAX_STOP_SEQUENCES", "MAX_STOP_OCTETS",
        "MAX_PROMPT_OCTETS", "MAX_RESULT_OCTETS", "MAX_PRIORITY", "ZSTD_LEVEL")]
    rows += [("PROMPT_APID", f"0x{transport.PROMPT_APID:03X}"),
             ("RESULT_APID", f"0x{transport.RESULT_APID:03X}"),
             ("DEFAULT_MAX_DATA_LENGTH", str(transport.DEFAULT_MAX_DATA_LENGTH))]
    return "\n".join(["Limits and defaults (module constants of `linkstack.payload.messages` "
                      "and `linkstack.payload.transport`):", "",
                      md_table(("constant", "value"), rows)])


PAYLOAD_PAGE = Page(
    filename="payload.md",
    title="AI payload messages: Prompt, Result and PartialResult (linkstack)",
    summary="the application layer: what a prompt and a result look like inside the packets",
    book=BOOK,
    field_header="Field",
    parts=(
        """
## Purpose and place in the stack

A ground client sends a **Prompt** to the language model running on a satellite; the onboard
endpoint answers with a **Result**. These two messages are linkstack's own format (there is no
Blue Book for them): they are the user data of Space Packets, prompts on APID 0x100 as
telecommand packets, results on APID 0x101 as telemetry packets. A message longer than one
packet (1024 octets of data by default) is segmented with the Sequence Flags.

```text
  ground client: Prompt(request_id, model, text, generation parameters)
  Space Packets, APID 0x100 (space-packet.md)   <-- this page: the packet data field
  ... TC frames, CLTUs, the uplink, frames and CADUs over the ISL ...
  onboard endpoint: runs the model, answers Result(request_id, status, text, times)
```

While the model generates, the endpoint can stream the answer as **PartialResult** segments on
the result APID (every N tokens or T seconds, set on the endpoint); each carries the octet offset
of its text in the answer, so the ground puts them together in order and holds a segment that
arrives after a gap. The Result carries the whole text and closes the stream: a lost segment
never holds the answer back. A Prompt's flags also carry its priority (0..3): the onboard queue
serves higher priorities first.

All integers are big-endian. The text is UTF-8, compressed with zstd only when that makes it
shorter (the flag says which); the decoder checks the declared length before inflating. Every
decoding error is a `DecodeError` naming the field and its offset; a prompt that cannot be
decoded is answered with a MALFORMED result carrying its request id when the common header
was readable.
""",
        "## Layouts",
        PROMPT_SPEC,
        RESULT_SPEC,
        PARTIAL_SPEC,
        _limits,
        "## Worked examples",
        PROMPT_EXAMPLE,
        RESULT_EXAMPLE,
        PARTIAL_EXAMPLE,
        """
## In the code

- `linkstack.payload.messages`: `Prompt`, `Result`, `PartialResult`, `GenerationParams`,
  `decode_message`.
- `linkstack.payload.transport`: `MessageSender`, `MessageReceiver` (APIDs, segmentation,
  losses reported with the request id).
- `linkstack.payload.endpoint`, `linkstack.payload.client`: the sans-IO onboard endpoint and
  ground client.
""",
    ),
)
