"""AI payload messages: the Prompt (ground → satellite) and the Result (satellite → ground).

These are linkstack's own application-layer messages, carried as the user data of Space
Packets (CCSDS 133.0-B-2 §4.1.4) on the payload APIDs (see :mod:`linkstack.payload.transport`).
Both are declared once with ``construct`` (:data:`PROMPT_STRUCT`, :data:`RESULT_STRUCT`); the
decoder walks that declaration field by field so that every error names the field and the byte
offset where decoding stopped. All integers are big-endian (network order), as in every CCSDS
header.

Common header (7 octets)::

    offset  size  field            meaning
    0       1     message_type     0x01 Prompt, 0x02 Result, 0x03 PartialResult
    1       1     version          message format version, currently 1
    2       1     flags            bit 0 (LSB) text_compressed; in a Prompt bits 2..1 are the
                                   priority (0..3, 3 most urgent); other bits spare, must be 0
    3       4     request_id       chosen by the ground client, echoed in the Result

Prompt (after the common header)::

    1 + n   model_id           length octet + UTF-8 (0..64 octets); "" = the endpoint's default
    2       max_tokens         upper bound on generated tokens, 1..65535
    2       temperature_milli  sampling temperature × 1000 (fixed point, 0..65.535); 0 = greedy
    4       seed               sampler seed (with temperature 0 the output is deterministic anyway)
    1 + …   stop_sequences     count octet (0..4), then each: length octet + UTF-8 (1..32 octets)
    4       text_octets        length of the UTF-8 prompt text *before* compression (≤ 65536)
    4 + n   text               length + the UTF-8 text, or its zstd frame if text_compressed

Result (after the common header)::

    1       status             :class:`Status` (ok, unknown model, prompt too long, busy, ...)
    1       finish_reason      :class:`FinishReason` (why generation stopped; none if not run)
    1 + n   model_id           the model that answered (or was asked for), UTF-8, 0..64 octets
    4       prompt_tokens      tokens in the (templated) prompt
    4       completion_tokens  tokens generated
    8       queue_time_us      onboard queueing time: inference start − prompt arrival, in µs
    8       inference_time_us  onboard inference time in µs (scaled by the flight profile)
    4       text_octets        length of the UTF-8 result text before compression (≤ 262144)
    4 + n   text               the answer; for an error status a human-readable detail

PartialResult (after the common header), a segment of an answer still being generated::

    2       segment            0, 1, 2, ... in the order the endpoint cut them (0..65535)
    4       text_offset        octet offset of this segment's text in the answer's UTF-8 text
    4       completion_tokens  tokens generated when the segment was cut
    8       elapsed_us         onboard time from inference start to the cut, in µs (scaled
                               by the flight profile, like inference_time_us)
    4       text_octets        length of the segment's UTF-8 text before compression
    4 + n   text               the segment's text (its octets are answer[text_offset:
                               text_offset + text_octets]); text_offset + text_octets ≤
                               262144

Partial results travel on the result APID beside the Result. The segments of one answer
are consecutive slices of its text, so the ground puts them together in order by
``text_offset`` (:class:`linkstack.payload.client.StreamAssembler`), holding a segment that
arrives after a gap until the gap is filled; the final Result carries the whole text and
closes the stream, so a lost segment never holds the answer back. Every slice boundary falls
between whole UTF-8 characters (the endpoint cuts text, not octets).

Text compression: the encoder compresses the UTF-8 text with zstd (level :data:`ZSTD_LEVEL`, the
frame declares its content size, no checksum — the link layers carry CRCs) and sends the
compressed form only when it is strictly shorter; the ``text_compressed`` flag says which form
is on the wire. The decoder checks the zstd frame declares exactly ``text_octets``, that the
frame ends exactly at the end of the field, and never inflates more than the limit (no
decompression bombs).

Limits (:data:`MAX_MODEL_ID_OCTETS`, :data:`MAX_STOP_SEQUENCES`, :data:`MAX_STOP_OCTETS`,
:data:`MAX_PROMPT_OCTETS`, :data:`MAX_RESULT_OCTETS`) are enforced on both sides: the encoder
raises :class:`~linkstack.errors.EncodeError`, the decoder
:class:`~linkstack.errors.DecodeError` (layer ``"payload"``). Nothing else ever escapes from
:func:`decode_message`, :meth:`Prompt.decode` or :meth:`Result.decode`.
"""

from __future__ import annotations

import io
import math
import struct as _struct
import threading
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import construct as c
import zstandard

from linkstack.bitfields import BitHeader
from linkstack.errors import DecodeError, EncodeError, TruncatedError
from linkstack.fast_dataclass import fast_init, fast_new

LAYER = "payload"

VERSION = 1
"""Message format version written in every message (octet 1)."""

MAX_MODEL_ID_OCTETS = 64
MAX_STOP_SEQUENCES = 4
MAX_STOP_OCTETS = 32
MAX_PROMPT_OCTETS = 65536
"""Largest prompt text, in UTF-8 octets before compression."""
MAX_RESULT_OCTETS = 262144
"""Largest result text, in UTF-8 octets before compression."""
MAX_TEMPERATURE_MILLI = 0xFFFF
UNKNOWN_REQUEST_ID = 0xFFFFFFFF
"""Request id of a ``MALFORMED`` result answering bytes whose request id could not be read.
Clients never use it for a request."""
ZSTD_LEVEL = 3
"""zstd compression level used by the encoder (the decoder accepts any level)."""
_MAX_WINDOW = 1 << 23  # zstd window the decoder accepts (8 MiB, larger than any text limit)


class MessageType(IntEnum):
    """Message-type octet (offset 0)."""

    PROMPT = 0x01
    RESULT = 0x02
    PARTIAL = 0x03


class Status(IntEnum):
    """Result status (Result octet 7)."""

    OK = 0
    UNKNOWN_MODEL = 1
    PROMPT_TOO_LONG = 2
    BUSY = 3
    TIMEOUT = 4
    MALFORMED = 5
    BACKEND_ERROR = 6
    """The model raised an error while generating (the detail is in the text)."""


class FinishReason(IntEnum):
    """Why generation stopped (Result octet 8)."""

    NONE = 0
    """Not run (error status) or unknown."""
    STOP = 1
    """End-of-sequence token or a stop sequence."""
    LENGTH = 2
    """``max_tokens`` reached."""


_U64_MAX = 2**64 - 1
_STATUSES: dict[int, Status] = {int(s): s for s in Status}
_FINISH_REASONS: dict[int, FinishReason] = {int(f): f for f in FinishReason}


# -- the declarations ----------------------------------------------------------------------

_FLAGS = c.BitStruct(
    "spare" / c.Const(0, c.BitsInteger(7)),
    "text_compressed" / c.Flag,
)
_PROMPT_FLAGS = c.BitStruct(
    "spare" / c.Const(0, c.BitsInteger(5)),
    "priority" / c.BitsInteger(2),
    "text_compressed" / c.Flag,
)
_SHORT_UTF8 = c.PascalString(c.Int8ub, "utf8")
_STRINGS = c.PrefixedArray(c.Int8ub, _SHORT_UTF8)
_TEXT = c.Prefixed(c.Int32ub, c.GreedyBytes)
MAX_PRIORITY = 3
"""Highest Prompt priority (flags bits 2..1); the endpoint serves higher priorities first."""

PROMPT_STRUCT = c.Struct(
    "message_type" / c.Const(int(MessageType.PROMPT), c.Int8ub),
    "version" / c.Int8ub,
    "flags" / _PROMPT_FLAGS,
    "request_id" / c.Int32ub,
    "model_id" / _SHORT_UTF8,
    "max_tokens" / c.Int16ub,
    "temperature_milli" / c.Int16ub,
    "seed" / c.Int32ub,
    "stop_sequences" / _STRINGS,
    "text_octets" / c.Int32ub,
    "text" / _TEXT,
    "end" / c.Terminated,
)
"""The single declaration of the Prompt message (see the module docstring for the fields)."""

RESULT_STRUCT = c.Struct(
    "message_type" / c.Const(int(MessageType.RESULT), c.Int8ub),
    "version" / c.Int8ub,
    "flags" / _FLAGS,
    "request_id" / c.Int32ub,
    "status" / c.Int8ub,
    "finish_reason" / c.Int8ub,
    "model_id" / _SHORT_UTF8,
    "prompt_tokens" / c.Int32ub,
    "completion_tokens" / c.Int32ub,
    "queue_time_us" / c.Int64ub,
    "inference_time_us" / c.Int64ub,
    "text_octets" / c.Int32ub,
    "text" / _TEXT,
    "end" / c.Terminated,
)
"""The single declaration of the Result message (see the module docstring for the fields)."""

PARTIAL_STRUCT = c.Struct(
    "message_type" / c.Const(int(MessageType.PARTIAL), c.Int8ub),
    "version" / c.Int8ub,
    "flags" / _FLAGS,
    "request_id" / c.Int32ub,
    "segment" / c.Int16ub,
    "text_offset" / c.Int32ub,
    "completion_tokens" / c.Int32ub,
    "elapsed_us" / c.Int64ub,
    "text_octets" / c.Int32ub,
    "text" / _TEXT,
    "end" / c.Terminated,
)
"""The single declaration of the PartialResult message (see the module docstring)."""

COMMON_HEADER_SIZE = 7
"""message_type, version, flags, request_id."""


# -- text compression ------------------------------------------------------------------------

_local = threading.local()  # zstd contexts are not thread-safe: one per thread


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = _local.__dict__.get("c")
    if cache is None:
        cache = _local.c = {}
    cctx = cache.get(level)
    if cctx is None:
        cctx = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cctx


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx: zstandard.ZstdDecompressor | None = _local.__dict__.get("d")
    if dctx is None:
        dctx = _local.d = zstandard.ZstdDecompressor(max_window_size=_MAX_WINDOW)
    return dctx


def compress_text(raw: bytes, level: int = ZSTD_LEVEL) -> tuple[bool, bytes]:
    """Return ``(compressed, wire_bytes)``: the zstd frame if strictly shorter, else ``raw``."""
    if not raw:
        return False, raw
    packed = _compressor(level).compress(raw)
    if len(packed) < len(raw):
        return True, packed
    return False, raw


def _inflate(data: bytes, text_octets: int, offset: int) -> bytes:
    """Decompress one zstd frame that must declare and hold exactly ``text_octets`` octets."""
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"not a zstd frame: {exc}", layer=LAYER, field="text",
                          offset=offset) from None
    if declared != text_octets:
        raise DecodeError(
            f"zstd frame declares {declared} octets, text_octets says {text_octets}",
            layer=LAYER, field="text", offset=offset,
        )
    dobj = _decompressor().decompressobj()
    try:
        out = dobj.decompress(data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"zstd: {exc}", layer=LAYER, field="text", offset=offset) from None
    if not dobj.eof:
        raise TruncatedError("zstd frame is incomplete", layer=LAYER, field="text",
                             offset=offset + len(data))
    if dobj.unused_data:
        raise DecodeError(
            f"{len(dobj.unused_data)} octets after the zstd frame", layer=LAYER, field="text",
            offset=offset + len(data) - len(dobj.unused_data),
        )
    if len(out) != text_octets:  # libzstd checks the content size; this is belt and braces
        raise DecodeError(f"inflated to {len(out)} octets, expected {text_octets}",
                          layer=LAYER, field="text", offset=offset)
    return out


# -- the walker: decode along the declaration, naming field and offset ------------------------

def _walk(struct: c.Struct, buf: bytes) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse ``buf`` with ``struct`` one field at a time.

    Returns the values and the byte offset of every field. Any construct failure becomes a
    :class:`TruncatedError` (the buffer ended) or a :class:`DecodeError` naming the field.
    """
    stream = io.BytesIO(buf)
    values: dict[str, Any] = {}
    offsets: dict[str, int] = {}
    for sub in struct.subcons:
        pos = stream.tell()
        name = sub.name
        offsets[name] = pos
        try:
            values[name] = sub.parse_stream(stream)
        except c.StreamError:
            raise TruncatedError(
                f"message ends inside the field ({len(buf) - pos} octets left)",
                layer=LAYER, field=name, offset=pos,
            ) from None
        except c.TerminatedError:
            raise DecodeError(
                f"{len(buf) - pos} octets after the end of the message",
                layer=LAYER, field=name, offset=pos,
            ) from None
        except c.ConstError:
            raise DecodeError(f"octet {buf[pos]:#04x} is not allowed here", layer=LAYER,
                              field=name, offset=pos) from None
        except c.StringError:
            raise DecodeError("not valid UTF-8", layer=LAYER, field=name, offset=pos) from None
        except (c.ConstructError, UnicodeError, ValueError, OverflowError) as exc:
            raise DecodeError(str(exc).replace("\n", " "), layer=LAYER, field=name,
                              offset=pos) from None
    return values, offsets


class _Layout:
    """Fast parse and build of one message, derived from its ``construct`` declaration.

    The declarations above stay the reference (the walker reports errors along them, the
    specs are generated from them); this reads their fields once, when the module loads, and
    generates two plain Python functions for the message, :attr:`parse` and :attr:`build`,
    which run the same layout with :mod:`struct` and slicing, unrolled: no loop over the
    fields, no dispatch on their kind at each call (``compile``/``exec`` of source written
    from :attr:`steps`; :meth:`source` shows it). Runs of fixed-size integers (and constants)
    are one :class:`struct.Struct`; the flags octet is unpacked and packed inline with the
    shifts, masks and constants of its :class:`~linkstack.bitfields.BitHeader`; the
    length-prefixed strings, string list and text are the three sub-declarations named above.
    A field of any other kind is refused when the module loads, so the two cannot drift apart
    silently; a property test checks that both accept the same octets, read the same values
    and build the same octets.

    :attr:`parse` returns the values (flags as an object with one attribute per flag) or None
    when the octets are not a valid message: the caller then walks the declaration, which
    says which field is wrong and where. :attr:`build` falls back to the declaration for
    values it cannot pack (construct then names the field).
    """

    def __init__(self, struct: c.Struct) -> None:
        self.struct = struct
        self.steps: list[tuple[Any, ...]] = []
        fixed: list[tuple[str, str, int | None]] = []  # (name, format, const)

        def flush() -> None:
            if fixed:
                fmt = ">" + "".join(f for _, f, _ in fixed)
                self.steps.append(("fixed", _struct.Struct(fmt), tuple(n for n, _, _ in fixed),
                                   tuple(k for _, _, k in fixed)))
                fixed.clear()

        for sub in struct.subcons:
            name, inner = sub.name, sub.subcon
            if isinstance(inner, c.FormatField):
                fixed.append((name, inner.fmtstr.lstrip("<>="), None))
                continue
            if isinstance(inner, c.Const) and isinstance(inner.subcon, c.FormatField):
                fixed.append((name, inner.subcon.fmtstr.lstrip("<>="), int(inner.value)))
                continue
            flush()
            if inner is _FLAGS or inner is _PROMPT_FLAGS:
                header = BitHeader(LAYER, inner)
                if header.size != 1:
                    raise TypeError(f"flags field {name!r} is not one octet")
                self.steps.append(("flags", name, header, _flags_type(header.names)))
            elif inner is _SHORT_UTF8:
                self.steps.append(("string", name))
            elif inner is _STRINGS:
                self.steps.append(("strings", name))
            elif inner is _TEXT:
                self.steps.append(("text", name))
            elif inner is c.Terminated:
                self.steps.append(("end", name))
            else:
                raise TypeError(f"no fast layout for field {name!r} ({inner!r})")
        flush()
        self._namespace: dict[str, Any] = {
            "_bytes": bytes, "_U32": _struct.Struct(">I"),
            "_struct_error": _struct.error, "_fallback": self._fallback,
        }
        self._sources: dict[str, str] = {}
        self.parse: Callable[[bytes], dict[str, Any] | None] = self._compile(
            "parse", self._parse_source())
        self.build: Callable[[dict[str, Any]], bytes] = self._compile(
            "build", self._build_source())

    def source(self, name: str) -> str:
        """The generated source of ``"parse"`` or ``"build"`` (for reading and debugging)."""
        return self._sources[name]

    def _fallback(self, values: dict[str, Any]) -> bytes:
        return _build(self.struct, values)  # construct says which field cannot be packed

    def _compile(self, name: str, src: str) -> Any:
        self._sources[name] = src
        exec(compile(src, f"<payload layout {self.struct.subcons[0].name} {name}>", "exec"),
             self._namespace)
        return self._namespace.pop(name)

    def _parse_source(self) -> str:
        """``parse(buf)``: the values of the whole message in ``buf``, or None.

        Equivalent step by step to the declaration: a fixed run is ``unpack_from`` (too few
        octets: :class:`struct.error`) and its constants are compared; the flags octet's
        constant bits are compared and its named bits shifted out; a string is its length
        octet and that many octets of strict UTF-8 that must lie inside the buffer; the string
        list is its count octet and that many strings; the text is a 32-bit length and that
        many octets inside the buffer; the end is the end of the buffer. Any failure (short
        buffer: :class:`IndexError` or :class:`struct.error`; bad UTF-8) returns None.
        """
        ns = self._namespace
        body: list[str] = ["end = len(buf)", "pos = 0"]
        result: list[str] = []
        for i, step in enumerate(self.steps):
            kind = step[0]
            if kind == "fixed":
                fmt, names, consts = step[1], step[2], step[3]
                ns[f"_S{i}"] = fmt
                targets = [f"v_{n}" for n in names]
                body.append(f"{', '.join(targets)}, = _S{i}.unpack_from(buf, pos)")
                for n, k in zip(names, consts, strict=True):
                    if k is not None:
                        body.append(f"if v_{n} != {k!r}: return None")
                    result.append(f"{n!r}: v_{n}")
                body.append(f"pos += {fmt.size}")
            elif kind == "flags":
                name, header = step[1], step[2]
                ns[f"_F{i}"] = step[3]
                body.append("w = buf[pos]")
                for f in header.consts:
                    body.append(f"if (w >> {f.shift}) & {f.mask} != {f.const}: return None")
                parts = ", ".join(f"(w >> {f.shift}) & {f.mask}" for f in header.named)
                body.append(f"v_{name} = _F{i}({parts})")
                body.append("pos += 1")
                result.append(f"{name!r}: v_{name}")
            elif kind == "string":
                name = step[1]
                body += ["e = pos + 1 + buf[pos]", "if e > end: return None",
                         f"v_{name} = buf[pos + 1:e].decode('utf-8')", "pos = e"]
                result.append(f"{name!r}: v_{name}")
            elif kind == "strings":
                name = step[1]
                body += ["count = buf[pos]", "pos += 1", f"v_{name} = []",
                         "for _ in range(count):",
                         "    e = pos + 1 + buf[pos]",
                         "    if e > end: return None",
                         f"    v_{name}.append(buf[pos + 1:e].decode('utf-8'))",
                         "    pos = e"]
                result.append(f"{name!r}: v_{name}")
            elif kind == "text":
                name = step[1]
                body += ["e = pos + 4 + _U32.unpack_from(buf, pos)[0]",
                         "if e > end: return None",
                         f"v_{name} = buf[pos + 4:e]", "pos = e"]
                result.append(f"{name!r}: v_{name}")
            else:  # "end"
                body.append("if pos != end: return None")
                result.append(f"{step[1]!r}: None")
        lines = ["def parse(buf):", "    try:"]
        lines += [f"        {line}" for line in body]
        lines += ["    except (_struct_error, IndexError, UnicodeDecodeError):",
                  "        return None",
                  f"    return {{{', '.join(result)}}}"]
        return "\n".join(lines) + "\n"

    def _build_source(self) -> str:
        """``build(values)``: the octets of the message, from the dictionary of its values.

        Equivalent step by step to the declaration: a fixed run is one ``pack`` (constants
        filled in); the flags octet takes each named bit from the flags mapping, as ``int``,
        range-checked against its width (missing or out of range: :class:`ValueError`, as
        :meth:`BitHeader.pack_dict`'s :class:`EncodeError` is); a string is its
        UTF-8 octets after their length in one octet (over 255: :class:`ValueError`); the
        string list is its count octet and the strings; the text is its 32-bit length and its
        octets. Any of those failures builds with the declaration instead, so that construct
        raises the error naming the field (or builds what it can).
        """
        ns = self._namespace
        body: list[str] = []
        parts: list[str] = []
        for i, step in enumerate(self.steps):
            kind = step[0]
            p = f"p{i}"
            if kind == "fixed":
                fmt, names, consts = step[1], step[2], step[3]
                ns[f"_S{i}"] = fmt
                args = [f"values[{n!r}]" if k is None else repr(k)
                        for n, k in zip(names, consts, strict=True)]
                body.append(f"{p} = _S{i}.pack({', '.join(args)})")
            elif kind == "flags":
                name, header = step[1], step[2]
                body.append(f"f = values[{name!r}]")
                terms = [f"{f.const << f.shift}" for f in header.consts if f.const]
                for j, f in enumerate(header.named):
                    body.append(f"if {f.name!r} not in f: raise ValueError('missing')")
                    body.append(f"b{j} = int(f[{f.name!r}])")
                    terms.append(f"(b{j} << {f.shift})")
                for j, f in enumerate(header.named):
                    body.append(f"if not (0 <= b{j} <= {f.mask}): raise ValueError('out of range')")
                body.append(f"{p} = _bytes(({' | '.join(terms) or '0'},))")
            elif kind == "string":
                body += [f"r = values[{step[1]!r}].encode('utf-8')",
                         f"{p} = _bytes((len(r),)) + r"]
            elif kind == "strings":
                body += [f"items = values[{step[1]!r}]", "acc = [_bytes((len(items),))]",
                         "for item in items:",
                         "    r = item.encode('utf-8')",
                         "    acc.append(_bytes((len(r),)) + r)",
                         f"{p} = b''.join(acc)"]
            elif kind == "text":
                body += [f"data = values[{step[1]!r}]",
                         f"{p} = len(data).to_bytes(4, 'big') + data"]
            else:  # "end": nothing to write
                continue
            parts.append(p)
        lines = ["def build(values):", "    try:"]
        lines += [f"        {line}" for line in body]
        lines += ["    except (_struct_error, ValueError, OverflowError, UnicodeEncodeError):",
                  "        return _fallback(values)",
                  f"    return b''.join(({', '.join(parts)},))"]
        return "\n".join(lines) + "\n"


def _flags_type(names: tuple[str, ...]) -> Any:
    """A light record of one flags octet's named bits (attribute access, as construct's)."""
    return namedtuple("Flags", names)


_PROMPT_FAST = _Layout(PROMPT_STRUCT)
_RESULT_FAST = _Layout(RESULT_STRUCT)
_PARTIAL_FAST = _Layout(PARTIAL_STRUCT)


class _Offsets:
    """Field offsets of a buffer, found by walking the declaration only when first asked for
    (i.e. only when there is an error to report)."""

    __slots__ = ("_buf", "_offsets", "_struct")

    def __init__(self, struct: c.Struct, buf: bytes, offsets: dict[str, int] | None = None):
        self._struct = struct
        self._buf = buf
        self._offsets = offsets

    def __getitem__(self, name: str) -> int:
        if self._offsets is None:
            self._offsets = _walk(self._struct, self._buf)[1]
        return self._offsets[name]


def _parse(struct: c.Struct, fast: _Layout, buf: bytes) -> tuple[Any, _Offsets]:
    """Parse with the fast layout of the declaration (specs/architecture.md principle 2); on any
    failure, walk the declaration field by field, which raises the DecodeError naming the field
    and offset."""
    values = fast.parse(buf)
    if values is None:
        walked, offsets = _walk(struct, buf)  # raises; returns only if the two disagree
        return walked, _Offsets(struct, buf, offsets)
    return values, _Offsets(struct, buf)


def _check_version(values: Any, offsets: _Offsets) -> None:
    if values["version"] != VERSION:
        raise DecodeError(f"version {values['version']} is not supported (only {VERSION})",
                          layer=LAYER, field="version", offset=offsets["version"])


def _check_model_id(model_id: str, offsets: _Offsets | None) -> None:
    n = len(model_id.encode("utf-8", "surrogatepass"))
    if n > MAX_MODEL_ID_OCTETS:
        reason = f"{n} octets, at most {MAX_MODEL_ID_OCTETS}"
        if offsets is None:
            raise EncodeError(reason, layer=LAYER, field="model_id")
        raise DecodeError(reason, layer=LAYER, field="model_id", offset=offsets["model_id"])


def _utf8(text: str, fld: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"cannot be encoded as UTF-8: {exc.reason}", layer=LAYER,
                          field=fld) from None


def _decode_text(values: Any, offsets: _Offsets, buf_len: int, limit: int) -> str:
    text_octets: int = values["text_octets"]
    if text_octets > limit:
        raise DecodeError(f"{text_octets} octets, at most {limit}", layer=LAYER,
                          field="text_octets", offset=offsets["text_octets"])
    data: bytes = values["text"]
    at = buf_len - len(data)  # the text is the last field
    if values["flags"].text_compressed:
        raw = _inflate(data, text_octets, at)
    else:
        if len(data) != text_octets:
            raise DecodeError(f"{len(data)} octets, text_octets says {text_octets}",
                              layer=LAYER, field="text", offset=at - 4)
        raw = data
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not valid UTF-8 at text octet {exc.start}", layer=LAYER,
                          field="text", offset=at if values["flags"].text_compressed
                          else at + exc.start) from None


def _encode_text(text: str, limit: int, compress: bool | None) -> tuple[bool, int, bytes]:
    raw = _utf8(text, "text")
    n = len(raw)
    if n > limit:
        raise EncodeError(f"{n} octets, at most {limit}", layer=LAYER, field="text")
    if compress is None:  # compress_text(raw), inline
        if raw:
            packed = _compressor(ZSTD_LEVEL).compress(raw)
            if len(packed) < n:
                return True, n, packed
        return False, n, raw
    if compress and raw:
        flag, wire = True, _compressor(ZSTD_LEVEL).compress(raw)
    else:
        flag, wire = False, raw
    return flag, len(raw), wire


def _build(struct: Any, values: dict[str, Any]) -> bytes:
    try:
        built: bytes = struct.build(values)
        return built
    except c.ConstructError as exc:  # the range checks before this should make it unreachable
        path = getattr(exc, "path", None) or "message"
        raise EncodeError(str(exc).replace("\n", " "), layer=LAYER, field=str(path)) from None


def _encoded_model_id(model_id: str) -> bytes:
    """The UTF-8 octets of a model id to encode (:func:`_utf8` then the length check of
    :func:`_check_model_id`, which measures the same octets once the strict encoding has
    succeeded)."""
    raw = _utf8(model_id, "model_id")
    if len(raw) > MAX_MODEL_ID_OCTETS:
        raise EncodeError(f"{len(raw)} octets, at most {MAX_MODEL_ID_OCTETS}", layer=LAYER,
                          field="model_id")
    return raw


def _range(value: int, lo: int, hi: int, fld: str) -> None:
    if not isinstance(value, int) or not lo <= value <= hi:
        raise EncodeError(f"{value!r} is outside {lo}..{hi}", layer=LAYER, field=fld)


# -- the messages ------------------------------------------------------------------------------

@fast_init
@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Generation parameters of a Prompt.

    ``temperature`` travels as fixed point in thousandths (``temperature_milli``); the value
    is quantised on construction so that decode(encode(p)) == p exactly.
    """

    max_tokens: int = 64
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _range(self.max_tokens, 1, 0xFFFF, "max_tokens")
        t = float(self.temperature)
        if not math.isfinite(t) or not 0.0 <= t <= MAX_TEMPERATURE_MILLI / 1000:
            raise EncodeError(f"{self.temperature!r} is outside 0..{MAX_TEMPERATURE_MILLI/1000}",
                              layer=LAYER, field="temperature_milli")
        object.__setattr__(self, "temperature", round(t * 1000) / 1000)
        _range(self.seed, 0, 0xFFFFFFFF, "seed")
        stop = tuple(self.stop)
        object.__setattr__(self, "stop", stop)
        if len(stop) > MAX_STOP_SEQUENCES:
            raise EncodeError(f"{len(stop)} stop sequences, at most {MAX_STOP_SEQUENCES}",
                              layer=LAYER, field="stop_sequences")
        for s in stop:
            n = len(_utf8(s, "stop_sequences"))
            if not 1 <= n <= MAX_STOP_OCTETS:
                raise EncodeError(f"stop sequence of {n} octets, must be 1..{MAX_STOP_OCTETS}",
                                  layer=LAYER, field="stop_sequences")

    @property
    def temperature_milli(self) -> int:
        """The wire value of the temperature (thousandths)."""
        return round(self.temperature * 1000)


_decoded_params = fast_new(GenerationParams)
"""GenerationParams from decoded wire values, without ``__post_init__``: Prompt.decode has
already checked them against the same limits (max_tokens 1..65535 and seed 0..2**32-1 by
their field widths and the zero check, 1..4 stop sequences of 1..32 UTF-8 octets each, and a
temperature ``milli / 1000`` that ``round(t * 1000) / 1000`` maps to itself for every 16-bit
``milli``, a test checks all 65536), so the checks and the normalisation would change
nothing."""


def _check_request_id(request_id: int) -> None:
    _range(request_id, 0, 0xFFFFFFFF, "request_id")


@fast_init
@dataclass(frozen=True, slots=True)
class Prompt:
    """A request to the onboard model (message type 0x01). See the module docstring."""

    request_id: int
    text: str
    model_id: str = ""
    params: GenerationParams = field(default_factory=GenerationParams)
    priority: int = 0
    """0..:data:`MAX_PRIORITY`; the endpoint's queue serves higher priorities first."""

    def encode(self, *, compress: bool | None = None) -> bytes:
        """Encode to octets. ``compress=None`` picks zstd only when it is shorter; True/False
        force the choice (for tests). Raises :class:`EncodeError` naming the field."""
        # Each range check inline, calling _range (which raises) only when it fails.
        rid = self.request_id
        if not (isinstance(rid, int) and 0 <= rid <= 0xFFFFFFFF):
            _check_request_id(rid)
        priority = self.priority
        if not (isinstance(priority, int) and 0 <= priority <= MAX_PRIORITY):
            _range(priority, 0, MAX_PRIORITY, "priority")
        _encoded_model_id(self.model_id)
        flag, text_octets, wire = _encode_text(self.text, MAX_PROMPT_OCTETS, compress)
        p = self.params
        return _PROMPT_FAST.build({
            "version": VERSION,
            "flags": {"spare": 0, "priority": priority, "text_compressed": flag},
            "request_id": rid,
            "model_id": self.model_id,
            "max_tokens": p.max_tokens,
            "temperature_milli": p.temperature_milli,
            "seed": p.seed,
            "stop_sequences": list(p.stop),
            "text_octets": text_octets,
            "text": wire,
        })

    @classmethod
    def decode(cls, buf: bytes) -> Prompt:
        """Decode one whole Prompt message. Raises only :class:`DecodeError` subclasses."""
        buf = bytes(buf)
        values, offsets = _parse(PROMPT_STRUCT, _PROMPT_FAST, buf)
        _check_version(values, offsets)
        _check_model_id(values["model_id"], offsets)
        if values["max_tokens"] == 0:
            raise DecodeError("must be at least 1", layer=LAYER, field="max_tokens",
                              offset=offsets["max_tokens"])
        stop = tuple(values["stop_sequences"])
        if len(stop) > MAX_STOP_SEQUENCES:
            raise DecodeError(f"{len(stop)} stop sequences, at most {MAX_STOP_SEQUENCES}",
                              layer=LAYER, field="stop_sequences",
                              offset=offsets["stop_sequences"])
        for i, s in enumerate(stop):
            n = len(s.encode("utf-8"))
            if not 1 <= n <= MAX_STOP_OCTETS:
                off = offsets["stop_sequences"] + 1 + sum(
                    1 + len(x.encode("utf-8")) for x in stop[:i])
                raise DecodeError(f"stop sequence of {n} octets, must be 1..{MAX_STOP_OCTETS}",
                                  layer=LAYER, field="stop_sequences", offset=off)
        text = _decode_text(values, offsets, len(buf), MAX_PROMPT_OCTETS)
        params = _decoded_params(values["max_tokens"], values["temperature_milli"] / 1000,
                                 values["seed"], stop)
        return cls(values["request_id"], text, values["model_id"], params,
                   values["flags"].priority)


@fast_init
@dataclass(frozen=True, slots=True)
class Result:
    """The onboard model's answer, or an error status (message type 0x02)."""

    request_id: int
    status: Status
    text: str = ""
    model_id: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    queue_time_us: int = 0
    inference_time_us: int = 0
    finish_reason: FinishReason = FinishReason.NONE

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def encode(self, *, compress: bool | None = None) -> bytes:
        """Encode to octets (see :meth:`Prompt.encode`)."""
        # The checks in the same order as ever, each range check inline (calling _range,
        # which raises, only when it fails).
        rid = self.request_id
        if not (isinstance(rid, int) and 0 <= rid <= 0xFFFFFFFF):
            _check_request_id(rid)
        status = int(self.status)
        if not 0 <= status <= 0xFF:
            _range(status, 0, 0xFF, "status")
        if status not in _STATUSES:
            raise EncodeError(f"{self.status!r} is not a Status", layer=LAYER, field="status")
        finish = int(self.finish_reason)
        if finish not in _FINISH_REASONS:
            raise EncodeError(f"{self.finish_reason!r} is not a FinishReason", layer=LAYER,
                              field="finish_reason")
        _encoded_model_id(self.model_id)
        prompt_tokens = self.prompt_tokens
        if not (isinstance(prompt_tokens, int) and 0 <= prompt_tokens <= 0xFFFFFFFF):
            _range(prompt_tokens, 0, 0xFFFFFFFF, "prompt_tokens")
        completion = self.completion_tokens
        if not (isinstance(completion, int) and 0 <= completion <= 0xFFFFFFFF):
            _range(completion, 0, 0xFFFFFFFF, "completion_tokens")
        queue_us = self.queue_time_us
        if not (isinstance(queue_us, int) and 0 <= queue_us <= _U64_MAX):
            _range(queue_us, 0, _U64_MAX, "queue_time_us")
        inference_us = self.inference_time_us
        if not (isinstance(inference_us, int) and 0 <= inference_us <= _U64_MAX):
            _range(inference_us, 0, _U64_MAX, "inference_time_us")
        flag, text_octets, wire = _encode_text(self.text, MAX_RESULT_OCTETS, compress)
        return _RESULT_FAST.build({
            "version": VERSION,
            "flags": {"spare": 0, "text_compressed": flag},
            "request_id": rid,
            "status": status,
            "finish_reason": finish,
            "model_id": self.model_id,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "queue_time_us": queue_us,
            "inference_time_us": inference_us,
            "text_octets": text_octets,
            "text": wire,
        })

    @classmethod
    def decode(cls, buf: bytes) -> Result:
        """Decode one whole Result message. Raises only :class:`DecodeError` subclasses."""
        buf = bytes(buf)
        values, offsets = _parse(RESULT_STRUCT, _RESULT_FAST, buf)
        _check_version(values, offsets)
        # The members by value (what Status(...) looks up first for an int), without the
        # enum call.
        status = _STATUSES.get(values["status"])
        if status is None:
            raise DecodeError(f"{values['status']} is not a status", layer=LAYER,
                              field="status", offset=offsets["status"])
        finish = _FINISH_REASONS.get(values["finish_reason"])
        if finish is None:
            raise DecodeError(f"{values['finish_reason']} is not a finish reason",
                              layer=LAYER, field="finish_reason",
                              offset=offsets["finish_reason"])
        _check_model_id(values["model_id"], offsets)
        text = _decode_text(values, offsets, len(buf), MAX_RESULT_OCTETS)
        return cls(
            values["request_id"], status, text, values["model_id"], values["prompt_tokens"],
            values["completion_tokens"], values["queue_time_us"], values["inference_time_us"],
            finish,
        )


@fast_init
@dataclass(frozen=True, slots=True)
class PartialResult:
    """One segment of an answer still being generated (message type 0x03).

    ``text`` is the slice ``answer[text_offset:text_offset + len(text)]`` of the answer's
    UTF-8 octets; see the module docstring.
    """

    request_id: int
    segment: int
    text_offset: int
    text: str
    completion_tokens: int = 0
    elapsed_us: int = 0

    @property
    def end_offset(self) -> int:
        """Octet offset just past this segment's text."""
        return self.text_offset + len(self.text.encode("utf-8", "surrogatepass"))

    def encode(self, *, compress: bool | None = None) -> bytes:
        """Encode to octets (see :meth:`Prompt.encode`)."""
        _check_request_id(self.request_id)
        _range(self.segment, 0, 0xFFFF, "segment")
        _range(self.text_offset, 0, MAX_RESULT_OCTETS, "text_offset")
        _range(self.completion_tokens, 0, 0xFFFFFFFF, "completion_tokens")
        _range(self.elapsed_us, 0, 2**64 - 1, "elapsed_us")
        flag, text_octets, wire = _encode_text(self.text, MAX_RESULT_OCTETS - self.text_offset,
                                               compress)
        return _PARTIAL_FAST.build({
            "version": VERSION,
            "flags": {"spare": 0, "text_compressed": flag},
            "request_id": self.request_id,
            "segment": self.segment,
            "text_offset": self.text_offset,
            "completion_tokens": self.completion_tokens,
            "elapsed_us": self.elapsed_us,
            "text_octets": text_octets,
            "text": wire,
        })

    @classmethod
    def decode(cls, buf: bytes) -> PartialResult:
        """Decode one whole PartialResult. Raises only :class:`DecodeError` subclasses."""
        buf = bytes(buf)
        values, offsets = _parse(PARTIAL_STRUCT, _PARTIAL_FAST, buf)
        _check_version(values, offsets)
        offset: int = values["text_offset"]
        if offset > MAX_RESULT_OCTETS:
            raise DecodeError(f"{offset} is beyond the {MAX_RESULT_OCTETS}-octet answer limit",
                              layer=LAYER, field="text_offset", offset=offsets["text_offset"])
        text = _decode_text(values, offsets, len(buf), MAX_RESULT_OCTETS - offset)
        return cls(values["request_id"], values["segment"], offset, text,
                   values["completion_tokens"], values["elapsed_us"])


Message = Prompt | Result | PartialResult
_PROMPT_TYPE = int(MessageType.PROMPT)
_RESULT_TYPE = int(MessageType.RESULT)
_PARTIAL_TYPE = int(MessageType.PARTIAL)


def decode_message(buf: bytes) -> Message:
    """Decode a Prompt, a Result or a PartialResult, told apart by the message-type octet.

    Raises only :class:`DecodeError` subclasses (layer ``"payload"``).
    """
    if not buf:
        raise TruncatedError("empty message", layer=LAYER, field="message_type", offset=0)
    kind = buf[0]
    if kind == _PROMPT_TYPE:  # the message types as plain ints (no enum attribute look-ups)
        return Prompt.decode(buf)
    if kind == _RESULT_TYPE:
        return Result.decode(buf)
    if kind == _PARTIAL_TYPE:
        return PartialResult.decode(buf)
    raise DecodeError(f"unknown message type {kind:#04x}", layer=LAYER, field="message_type",
                      offset=0)


def peek_request_id(buf: bytes, message_type: MessageType | None = None) -> int | None:
    """The request id of a (possibly damaged or partial) message, if its common header is
    readable and of the right type and version; else None. Used to answer bad prompts.
    ``MessageType.RESULT`` also matches a PartialResult (both travel on the result APID)."""
    if len(buf) < COMMON_HEADER_SIZE or buf[1] != VERSION:
        return None
    if buf[0] not in MessageType._value2member_map_:
        return None
    if message_type is not None and buf[0] != message_type and not (
            message_type == MessageType.RESULT and buf[0] == MessageType.PARTIAL):
        return None
    return int.from_bytes(buf[3:7], "big")
