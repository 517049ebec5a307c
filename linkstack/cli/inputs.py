"""Input formats of the decoding commands, as other ground tools write frames.

``frame decode``, ``cadu decode`` and ``cltu decode`` take ``--format``:

- ``binary``: the octets as they are (the command cuts them into frames by its own rule);
- ``hex``: text, one item (frame, CADU, CLTU) per line; blanks inside a line, a ``0x``
  prefix, blank lines and ``#`` comment lines are allowed (what ``xxd -p``, ``od`` after
  ``tr``, or a hex dump pasted from a log look like);
- ``kiss``: KISS frames, as gr-satellites' KISS file sink and most TNCs write them (each
  frame between FEND octets 0xC0, its first octet the command — 0x00, data on port 0 —,
  FEND and FESC escaped as FESC TFEND and FESC TFESC; K. Chepponis, P. Karn, "The KISS TNC:
  a simple host-to-TNC communications protocol", 1987). Frames with another command
  (TNC parameters) are skipped;
- ``auto`` (``frame decode``'s default): ``hex`` when the input is hex text, else ``binary``.
  KISS is never guessed: a USLP frame may start with 0xC0 too.
"""

from __future__ import annotations

import string
from typing import Annotated

import typer

from linkstack.errors import ConfigError

__all__ = ["FORMATS", "FormatOpt", "hex_lines", "is_hex_text", "kiss_frames", "split_input"]

FORMATS = ("auto", "binary", "hex", "kiss")

FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="auto|binary|hex|kiss",
        case_sensitive=False,
        help="Input format: binary, hex (one item per line, blanks allowed), kiss (KISS frames, "
        "as gr-satellites writes them) or auto (hex if the input is hex text, else binary).",
    ),
]

FEND, FESC, TFEND, TFESC = 0xC0, 0xDB, 0xDC, 0xDD
_HEX_TEXT = frozenset((string.hexdigits + string.whitespace + "xX:").encode())


def hex_lines(text: str, *, key: str = "--format") -> list[bytes]:
    """One item per non-blank, non-comment line; blanks and ``:`` inside a line, ``0x``."""
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cleaned = "".join(stripped.replace(":", " ").split())
        cleaned = cleaned[2:] if cleaned[:2].lower() == "0x" else cleaned
        try:
            items.append(bytes.fromhex(cleaned))
        except ValueError:
            raise ConfigError(f"line {number} is not hex: {stripped[:40]!r}", key=key) from None
    return items


def kiss_frames(data: bytes, *, key: str = "--format") -> list[bytes]:
    """The data frames of a KISS stream (their command octet removed, escapes undone)."""
    frames = []
    for chunk_start, chunk in _fend_chunks(data):
        if not chunk:
            continue
        out = bytearray()
        i = 0
        while i < len(chunk):
            octet = chunk[i]
            if octet == FESC:
                nxt = chunk[i + 1] if i + 1 < len(chunk) else None
                if nxt not in (TFEND, TFESC):
                    raise ConfigError(
                        f"KISS: FESC at octet {chunk_start + i} is not followed by TFEND or TFESC",
                        key=key,
                    )
                out.append(FEND if nxt == TFEND else FESC)
                i += 2
            else:
                out.append(octet)
                i += 1
        if out[0] & 0x0F == 0 and len(out) > 1:  # data frame (any port)
            frames.append(bytes(out[1:]))
    if not frames:
        raise ConfigError("KISS: no data frame in the input", key=key)
    return frames


def _fend_chunks(data: bytes) -> list[tuple[int, bytes]]:
    chunks, start = [], 0
    for i, octet in enumerate(data):
        if octet == FEND:
            chunks.append((start, data[start:i]))
            start = i + 1
    chunks.append((start, data[start:]))
    return chunks


def is_hex_text(data: bytes) -> bool:
    """Whether ``data`` is hex text only (hex digits, blanks, ``0x``, ``:``)."""
    if not data or not set(data) <= _HEX_TEXT:
        return False
    return any(c in string.hexdigits.encode() for c in data)


def split_input(data: bytes, fmt: str, *, key: str = "--format") -> list[bytes] | None:
    """The items of ``data`` in format ``fmt``, or None for binary (the caller cuts them)."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"{fmt!r} is not one of {', '.join(FORMATS)}", key=key)
    if fmt == "auto":
        fmt = "hex" if is_hex_text(data) else "binary"
    if fmt == "binary":
        return None
    if fmt == "hex":
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not hex text: octet {exc.start} is not ASCII", key=key) from None
        items = hex_lines(text, key=key)
        if not items:
            raise ConfigError("no hex line in the input", key=key)
        return items
    return kiss_frames(data, key=key)
