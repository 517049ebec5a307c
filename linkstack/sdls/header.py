"""Security Header and Security Trailer, CCSDS 355.0-B-2 §3.2 and §3.3.

Layout (big-endian)::

    Security Header (§3.2), right after the frame's headers (see :mod:`linkstack.sdls.layout`)
      Security Parameter Index (16 bits, §3.2.2) | Initialization Vector (transmitted part,
      0..n octets per SA, §3.2.3) | Sequence Number = ARSN (transmitted part, 0..n octets
      per SA, §3.2.4) | Pad Length (0..2 octets per SA, §3.2.5)
    ... Transfer Frame Data Field (plaintext or ciphertext) ...
    Security Trailer (§3.3): Message Authentication Code (0..n octets per SA, §3.3.2),
      before the OCF and the FECF

Every length is a managed parameter of the SA, so the declaration below takes them as
construct parameters (``SECURITY_HEADER.parse(buf, iv_length=12, sn_length=2,
pad_length_field_length=0)``). The hot path slices octets directly; a test checks both
paths agree.

The SPI is 16 bits for every frame type, as the Blue Book says. CryptoLib's TM and AOS
*processing* reads it as 8 bits (its *apply* side writes 16); linkstack follows the Blue
Book, so a CryptoLib receiver only interoperates for SPIs below 256.
"""

from __future__ import annotations

from dataclasses import dataclass

import construct as c

from linkstack.errors import EncodeError, TruncatedError

LAYER = "sdls"

SPI_SIZE = 2
MAX_PAD_LENGTH_FIELD = 2

SECURITY_HEADER = c.Struct(
    "spi" / c.Int16ub,
    "iv" / c.Bytes(c.this._params.iv_length),
    "sequence_number" / c.Bytes(c.this._params.sn_length),
    "pad_length" / c.If(c.this._params.pad_length_field_length > 0,
                        c.BytesInteger(c.this._params.pad_length_field_length)),
)
"""The single declaration of the Security Header (355.0-B-2 §3.2); lengths per SA."""

SECURITY_TRAILER = c.Struct(
    "mac" / c.Bytes(c.this._params.mac_length),
)
"""The Security Trailer (355.0-B-2 §3.3): the MAC, its length per SA."""


@dataclass(frozen=True, slots=True)
class SecurityHeader:
    """One decoded Security Header.

    ``iv`` and ``sequence_number`` hold the *transmitted* octets only; ``pad_length`` is
    None when the SA has no Pad Length field.
    """

    spi: int
    iv: bytes = b""
    sequence_number: bytes = b""
    pad_length: int | None = None
    pad_length_field_length: int = 0

    @property
    def size(self) -> int:
        return SPI_SIZE + len(self.iv) + len(self.sequence_number) + self.pad_length_field_length

    def encode(self) -> bytes:
        """The header octets; :class:`EncodeError` naming the field if a value does not fit."""
        if not 0 <= self.spi <= 0xFFFF:
            raise EncodeError(f"{self.spi!r} is outside 0..65535", layer=LAYER, field="spi")
        out = self.spi.to_bytes(2, "big") + bytes(self.iv) + bytes(self.sequence_number)
        n = self.pad_length_field_length
        if n:
            pad = self.pad_length or 0
            if not 0 <= pad < (1 << (8 * n)):
                raise EncodeError(f"{pad} does not fit in {n} octets", layer=LAYER,
                                  field="pad_length")
            out += pad.to_bytes(n, "big")
        return out

    @classmethod
    def decode(cls, buf: bytes, offset: int = 0, *, iv_length: int, sn_length: int,
               pad_length_field_length: int) -> SecurityHeader:
        """Decode the header at ``buf[offset:]`` with the SA's transmitted lengths."""
        size = SPI_SIZE + iv_length + sn_length + pad_length_field_length
        if len(buf) - offset < size:
            raise TruncatedError(f"need {size} octets for the Security Header, have "
                                 f"{max(len(buf) - offset, 0)}", layer=LAYER,
                                 field="security_header", offset=offset)
        pos = offset + SPI_SIZE
        iv = bytes(buf[pos:pos + iv_length])
        pos += iv_length
        sn = bytes(buf[pos:pos + sn_length])
        pos += sn_length
        pad = (int.from_bytes(buf[pos:pos + pad_length_field_length], "big")
               if pad_length_field_length else None)
        return cls(read_spi(buf, offset), iv, sn, pad, pad_length_field_length)


def read_spi(buf: bytes, offset: int) -> int:
    """The 16-bit SPI at ``buf[offset]`` (355.0-B-2 §3.2.2)."""
    if len(buf) - offset < SPI_SIZE:
        raise TruncatedError("no room for the Security Parameter Index", layer=LAYER,
                             field="spi", offset=offset)
    return (buf[offset] << 8) | buf[offset + 1]
