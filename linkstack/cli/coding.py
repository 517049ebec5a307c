"""``linkstack cadu encode|decode`` and ``linkstack cltu encode|decode``.

TM: transfer frames ⇄ CADUs (ASM + Reed-Solomon + randomizer, CCSDS 131.0-B-3); TC: transfer
frames ⇄ CLTUs (BCH + optional randomizer, CCSDS 231.0-B-3). Chains are named as in
:mod:`linkstack.codecs.chain` (``--code tm-rs-255-223-i5``, ``tm-uncoded``, ``tc-bch-rand``...).

Input is a file or stdin: binary, or with ``--hex`` one item (frame, CADU or CLTU) per line;
the decoders also take ``--format kiss`` (one CADU or CLTU per KISS frame, as gr-satellites
writes them) and ``--format hex`` (hex lines in, binary out): :mod:`linkstack.cli.inputs`.
Binary TM frames are cut in pieces of the chain's frame length; binary TC frames are split
with the Frame Length field of each TC frame header (232.0-B-3 §4.1.2). Output goes to
stdout or ``--out FILE``, binary or (``--hex``) one item per line. Statistics: a one-line
summary on stderr, or with ``--json`` a JSON object (on stdout when ``--out`` is given,
otherwise on stderr, so that stdout carries only data).

``cadu decode --erasures FILE`` names the input octets the channel marked lost, so that
Reed-Solomon decodes them as erasures (2·errors + erasures ≤ 2E per codeword). The decoder
finds CADUs anywhere in the bit stream, so the file gives offsets in the *input*, not in a
CADU: ASCII text, decimal octet offsets counted from 0 at the first input octet (with
``--hex``, in the octets of all the hex lines one after the other), separated by blanks, commas
or newlines; ``N-M`` is the inclusive range N..M; ``#`` starts a comment. For example::

    # octets 1300..1339 were lost in a fade, and octet 2000
    1300-1339
    2000

A codeblock octet counts as erased when any of its bits came from an erased input octet (CADUs
need not be octet-aligned). A bad line or an offset beyond the input is an error naming
``--erasures`` (exit 2); an input file's length is checked before decoding, stdin's only at its
end (after the frames were written).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import numpy as np
import typer

from linkstack.cli.inputs import split_input
from linkstack.cli.options import LAYOUT_OPTIONS, check_output, fail, group
from linkstack.codecs.chain import (
    USLP_VERSION,
    ChainDecoder,
    CodedUnitRejected,
    CodingChain,
    FrameDecoded,
    carried_frame_length,
)
from linkstack.errors import ConfigError, DecodeError, LinkstackError, TruncatedError

__all__ = ["register"]

_CHUNK = 1 << 16

InputArg = Annotated[
    Path | None,
    typer.Argument(help="Input file (default: stdin; '-' is stdin too).", show_default=False),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write the output here instead of stdout.")
]
HexTextFlag = Annotated[
    bool, typer.Option("--hex", help="Hex text, one item per line, for input and output.")
]
DecodeFormatOpt = Annotated[str, typer.Option(
    "--format", metavar="binary|hex|kiss|auto", case_sensitive=False,
    help="Input format: binary (a stream), hex (one item per line), kiss (KISS frames, as "
    "gr-satellites writes them) or auto (hex if the input is hex text). The output stays "
    "binary unless --hex.")]
InterleaveOpt = Annotated[
    int | None, typer.Option("--interleave", "-I", help="Reed-Solomon interleaving depth.")
]
RandOpt = Annotated[
    bool | None,
    typer.Option("--randomize/--no-randomize", help="Pseudo-randomizer on/off (default: "
                 "as the code name says).", show_default=False),
]
FrameLengthOpt = Annotated[
    int | None,
    typer.Option("--frame-length", "-n", help="TM frame length (needed by tm-uncoded; with RS "
                 "it must be I·(k-Q) or sets Q)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Statistics as JSON.")]
ErasuresOpt = Annotated[
    Path | None,
    typer.Option("--erasures", help="Text file of input octet offsets the channel marked lost "
                 "(decimal, N or N-M ranges, blanks/commas/newlines, # comments): Reed-Solomon "
                 "decodes them as erasures.", show_default=False),
]


def _chain(code: str, interleave: int | None, randomize: bool | None,
           frame_length: int | None, kind: str) -> CodingChain:
    overrides: dict[str, Any] = {}
    if interleave is not None:
        overrides["interleave"] = interleave
    if randomize is not None:
        overrides["randomize"] = randomize
    if frame_length is not None:
        overrides["frame_length"] = frame_length
    chain = CodingChain.from_name(code, **overrides)
    if chain.kind != kind:
        raise ConfigError(f"{code!r} is a {chain.kind.upper()} chain; use "
                          f"'{'cadu' if chain.kind == 'tm' else 'cltu'}'", key="code")
    return chain


def _open_input(path: Path | None) -> BinaryIO:
    if path is None or str(path) == "-":
        return sys.stdin.buffer
    try:
        return path.open("rb")
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="INPUT") from None


def _hex_lines(stream: BinaryIO) -> list[bytes]:
    items = []
    for number, line in enumerate(stream.read().decode("ascii", "replace").splitlines(), 1):
        text = "".join(line.split())
        if not text or text.startswith("#"):
            continue
        try:
            items.append(bytes.fromhex(text))
        except ValueError:
            raise DecodeError(f"line {number} is not hex", layer="cli", field="input",
                              offset=number) from None
    return items


class _Output:
    """Binary or hex-lines output to stdout or a file."""

    def __init__(self, out: Path | None, hex_text: bool) -> None:
        self.hex = hex_text
        self.to_file = out is not None
        self.stream: BinaryIO = out.open("wb") if out is not None else sys.stdout.buffer
        self.items = 0
        self.octets = 0

    def write(self, item: bytes) -> None:
        self.items += 1
        self.octets += len(item)
        self.stream.write(item.hex().encode() + b"\n" if self.hex else item)

    def close(self) -> None:
        self.stream.flush()
        if self.to_file:
            self.stream.close()


def _report(stats: dict[str, Any], as_json: bool, to_file: bool) -> None:
    if as_json:
        typer.echo(json.dumps(stats, sort_keys=True), err=not to_file)
    else:
        typer.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items()), err=True)


def _tc_frames(data: bytes) -> list[bytes]:
    """Split concatenated TC or USLP frames with their Frame Length fields."""
    frames = []
    offset = 0
    while offset < len(data):
        uslp = data[offset] >> 4 == USLP_VERSION
        layer, header, field_at = ("uslp", 6, 4) if uslp else ("tc", 4, 2)
        if len(data) - offset < header:
            raise TruncatedError(f"{len(data) - offset} octets left, before the end of a "
                                 f"{layer.upper()} frame length field",
                                 layer=layer, field="frame_length", offset=offset)
        length = carried_frame_length(data[offset:])
        if offset + length > len(data):
            raise TruncatedError(f"the frame length field says {length} octets, "
                                 f"{len(data) - offset} left", layer=layer,
                                 field="frame_length", offset=offset + field_at)
        frames.append(data[offset : offset + length])
        offset += length
    return frames


TmCodeOpt = Annotated[str, typer.Option("--code", "-c", help=(
    "TM chain: tm-uncoded, or tm-rs-255-223-iN / tm-rs-255-239-iN (RS E=16 or 8, interleaving "
    "N = 1..8); -norand drops the randomizer, e.g. tm-rs-255-223-i5-norand; -fecf (-fecf32) "
    "makes the decoder reject frames whose CRC-16 (CRC-32) FECF is wrong."))]
TcCodeOpt = Annotated[str, typer.Option("--code", "-c", help=(
    "TC chain: tc-bch (BCH(63,56) codeblocks) or tc-bch-rand (with the TC randomizer); "
    "-fecf makes the decoder check each frame's FECF."))]


class _Erasures:
    """The ``--erasures`` file: merged inclusive ranges of erased input octets."""

    def __init__(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {str(path)!r}: {exc}", key="--erasures") from None
        ranges: list[tuple[int, int]] = []
        for number, line in enumerate(text.splitlines(), 1):
            for token in line.split("#", 1)[0].replace(",", " ").split():
                first, dash, last = token.partition("-")
                if not first.isdigit() or (dash and not last.isdigit()):
                    raise ConfigError(f"line {number}: {token!r} is not an octet offset N or "
                                      "a range N-M (decimal)", key="--erasures")
                lo, hi = int(first), int(last) if dash else int(first)
                if hi < lo:
                    raise ConfigError(f"line {number}: the range {token} runs backwards",
                                      key="--erasures")
                ranges.append((lo, hi))
        merged: list[list[int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.starts = np.array([r[0] for r in merged], dtype=np.int64)
        self.ends = np.array([r[1] for r in merged], dtype=np.int64)  # inclusive

    def within(self, start: int, length: int) -> np.ndarray:
        """Offsets, relative to ``start``, of the erased octets among ``length`` octets."""
        first = int(np.searchsorted(self.ends, start))  # first range ending at/after start
        last = int(np.searchsorted(self.starts, start + length))  # ranges starting before end
        pieces = [np.arange(max(int(a), start), min(int(b) + 1, start + length),
                            dtype=np.int64) - start
                  for a, b in zip(self.starts[first:last], self.ends[first:last], strict=True)]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def check_length(self, total: int) -> None:
        """Fail if an offset lies beyond the ``total`` input octets."""
        if self.ends.size and int(self.ends[-1]) >= total:
            raise ConfigError(f"offset {int(self.ends[-1])} is beyond the input ({total} "
                              "octets)", key="--erasures")


def _run(action: Any, code: str, interleave: int | None, randomize: bool | None,
         frame_length: int | None, kind: str, source: Path | None, out: Path | None,
         hex_text: bool, as_json: bool) -> None:
    """One ``cadu``/``cltu`` command: build the chain, then encode or decode."""
    try:
        check_output(out, "--out")
        try:
            chain = _chain(code, interleave, randomize, frame_length, kind)
        except ConfigError as exc:  # a part of the chain's name, or an option that amends it
            if exc.key in LAYOUT_OPTIONS:
                raise
            raise ConfigError(f"{exc.key}: {exc.reason}", key="--code") from None
        action(chain, source, out, hex_text, as_json)
    except LinkstackError as exc:
        raise fail(exc, LAYOUT_OPTIONS) from None


def _encode(chain: CodingChain, source: Path | None, out: Path | None, hex_text: bool,
            as_json: bool) -> None:
    stream = _open_input(source)
    try:
        if hex_text:
            frames = _hex_lines(stream)
        else:
            data = stream.read()
            if chain.kind == "tc":
                frames = _tc_frames(data)
            else:
                fl = chain.frame_length
                assert fl is not None
                if len(data) % fl:
                    raise TruncatedError(
                        f"{len(data)} octets is not a whole number of {fl}-octet frames",
                        layer="tm", field="frame", offset=len(data) - len(data) % fl)
                frames = [data[i : i + fl] for i in range(0, len(data), fl)]
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    sink = _Output(out, hex_text)
    try:
        for frame in frames:
            sink.write(chain.encode_frame(frame))
    finally:
        sink.close()
    if as_json:
        _report({"code": chain.name, "frames": len(frames),
                 "frame_octets": sum(map(len, frames)), "output_octets": sink.octets},
                True, sink.to_file)


def _decode(chain: CodingChain, source: Path | None, out: Path | None, hex_text: bool,
            as_json: bool, erasures: Path | None = None, input_format: str = "binary") -> None:
    erased = _Erasures(erasures) if erasures is not None else None
    input_format = "hex" if hex_text else input_format.lower()
    if erased is not None and input_format == "binary" and source is not None and (
            source.is_file()):
        erased.check_length(source.stat().st_size)  # before any output, when the size is known
    stream = _open_input(source)
    decoder: ChainDecoder = chain.decoder()
    sink = _Output(out, hex_text)
    rejected: list[str] = []
    fed = 0

    def feed(data: bytes) -> list[Any]:
        nonlocal fed
        marks = erased.within(fed, len(data)) if erased is not None else None
        fed += len(data)
        return decoder.feed(data, marks)

    def emit(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, FrameDecoded):
                sink.write(event.frame)
            elif isinstance(event, CodedUnitRejected):
                rejected.append(f"bit {event.bit_offset}: {event.reason}")

    try:
        if hex_text:
            items: list[bytes] | None = _hex_lines(stream)
        elif input_format != "binary":
            items = split_input(stream.read(), input_format) or None
        else:
            items = None
        if items is not None:
            if erased is not None:
                erased.check_length(sum(map(len, items)))
            for item in items:
                emit(feed(item))
        else:
            while chunk := stream.read(_CHUNK):
                emit(feed(chunk))
        emit(decoder.flush())
        if erased is not None:
            erased.check_length(fed)
    finally:
        sink.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    stats: dict[str, Any] = {"code": chain.name, **decoder.stats.as_dict()}
    if as_json:
        stats["rejected"] = rejected
    _report(stats, as_json, sink.to_file)


def register(app: typer.Typer) -> None:
    """Add the ``cadu`` and ``cltu`` command groups to ``app``."""
    cadu = group("TM frames ⇄ CADUs: ASM, Reed-Solomon, randomizer (131.0-B-3).")
    cltu = group("TC frames ⇄ CLTUs: BCH(63,56), randomizer (231.0-B-3).")

    @cadu.command("encode")
    def cadu_encode(
        source: InputArg = None,
        code: TmCodeOpt = "tm-rs-255-223-i5",
        interleave: InterleaveOpt = None,
        randomize: RandOpt = None,
        frame_length: FrameLengthOpt = None,
        out: OutOpt = None,
        hex_text: HexTextFlag = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Encode TM transfer frames into CADUs."""
        _run(_encode, code, interleave, randomize, frame_length, "tm", source, out, hex_text,
             as_json)

    @cadu.command("decode")
    def cadu_decode(
        source: InputArg = None,
        code: TmCodeOpt = "tm-rs-255-223-i5",
        interleave: InterleaveOpt = None,
        randomize: RandOpt = None,
        frame_length: FrameLengthOpt = None,
        out: OutOpt = None,
        hex_text: HexTextFlag = False,
        as_json: JsonOpt = False,
        erasures: ErasuresOpt = None,
        input_format: DecodeFormatOpt = "binary",
    ) -> None:
        """Find CADUs in a bit stream (any bit offset) and decode the TM frames."""
        _run(functools.partial(_decode, erasures=erasures, input_format=input_format), code,
             interleave, randomize, frame_length, "tm", source, out, hex_text, as_json)

    @cltu.command("encode")
    def cltu_encode(
        source: InputArg = None,
        code: TcCodeOpt = "tc-bch",
        randomize: RandOpt = None,
        out: OutOpt = None,
        hex_text: HexTextFlag = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Encode TC (or USLP) transfer frames into CLTUs."""
        _run(_encode, code, None, randomize, None, "tc", source, out, hex_text, as_json)

    @cltu.command("decode")
    def cltu_decode(
        source: InputArg = None,
        code: TcCodeOpt = "tc-bch",
        randomize: RandOpt = None,
        out: OutOpt = None,
        hex_text: HexTextFlag = False,
        as_json: JsonOpt = False,
        input_format: DecodeFormatOpt = "binary",
    ) -> None:
        """Find CLTUs in a bit stream and decode the TC (or USLP) frames."""
        _run(functools.partial(_decode, input_format=input_format), code, None, randomize,
             None, "tc", source, out, hex_text, as_json)

    app.add_typer(cadu, name="cadu")
    app.add_typer(cltu, name="cltu")
