"""One exception hierarchy for the whole stack.

Every error raised while decoding bytes names the *layer* (``"spp"``, ``"tm"``,
``"rs"``, ...), the *field* (Blue Book name, e.g. ``"first_header_pointer"``)
and the byte *offset* in the buffer that was being decoded, so that a user can
find the offending octet in a hex dump.  Decoders never let a ``struct.error``,
``IndexError`` or ``construct`` exception escape: they raise one of these.
"""

from __future__ import annotations


class LinkstackError(Exception):
    """Base class of every error linkstack raises on purpose."""


class DecodeError(LinkstackError, ValueError):
    """Bytes could not be decoded.

    Attributes:
        layer: protocol layer, e.g. ``"spp"``, ``"tc"``, ``"tm"``, ``"aos"``, ``"uslp"``.
        field: Blue Book name of the field at fault (or ``"length"`` for truncation).
        offset: byte offset of that field in the decoded buffer.
        reason: human-readable explanation.
    """

    def __init__(self, reason: str, *, layer: str, field: str, offset: int) -> None:
        self.layer = layer
        self.field = field
        self.offset = offset
        self.reason = reason
        super().__init__(f"{layer}: {field} at offset {offset}: {reason}")


class TruncatedError(DecodeError):
    """The buffer ends before the structure does."""


class ChecksumError(DecodeError):
    """A CRC (FECF, packet error control) does not match."""


class UncorrectableError(DecodeError):
    """A channel code (Reed-Solomon, BCH) detected more errors than it can correct."""


class EncodeError(LinkstackError, ValueError):
    """A value cannot be encoded: out of range for its field, or too long for its container."""

    def __init__(self, reason: str, *, layer: str, field: str) -> None:
        self.layer = layer
        self.field = field
        self.reason = reason
        super().__init__(f"{layer}: {field}: {reason}")


class ConfigError(LinkstackError, ValueError):
    """A configuration (managed parameter, scenario file, CLI option) is invalid.

    ``key`` names the offending setting, e.g. ``"links.uplink.ber"``.
    """

    def __init__(self, reason: str, *, key: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


class ProtocolError(LinkstackError):
    """A protocol engine was used against its state machine (e.g. a directive in the wrong state).

    Engines report *link* problems (alerts, losses) as events, not exceptions; this
    is for programming errors of the caller.
    """
