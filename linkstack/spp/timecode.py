"""CCSDS Time Code Formats (CCSDS 301.0-B-4): CUC (§3.2) and CDS (§3.3).

A time code is an optional *P-field* (preamble: which code, which epoch, how long) followed
by the *T-field* (the time). When a mission preconfigures the code, the P-field is left out
("implicit"); :attr:`CucFormat.explicit_p_field` / :attr:`CdsFormat.explicit_p_field` say
which. Both P-fields are declared once with ``construct`` (:data:`CUC_P_FIELD`,
:data:`CUC_P_FIELD_EXTENSION`, :data:`CDS_P_FIELD`), decoded on the hot path by the
:class:`~linkstack.bitfields.BitHeader` fast path derived from them; the T-field layouts are
declared by :meth:`CucFormat.t_field` / :meth:`CdsFormat.t_field`.

Values are exact, never floats:

- CUC (§3.2) counts *coarse* time units (seconds) and *fine* binary fractions of a second
  since the epoch. Its value is a :class:`~fractions.Fraction` of seconds
  (``coarse + fine / 256**fine_octets``), or the raw ``(coarse, fine)`` integers with
  :meth:`CucFormat.encode_fields` / :meth:`CucFormat.decode_fields`. Epoch: 1958-01-01 TAI
  (time code ID ``001``) or agency-defined (``010``).
- CDS (§3.3) counts days, milliseconds of the day and optionally microseconds (16 bits) or
  picoseconds (32 bits) of the millisecond. Its value is a :class:`CdsTime` (day, ms of day,
  picoseconds of the millisecond); a leap second (ms of day 86 400 000..86 400 999) is
  representable. :attr:`CdsTime.seconds` gives a ``Fraction`` (days of 86 400 s).

Encoding a value the format cannot hold exactly raises :class:`EncodeError` unless
``truncate=True`` (then the value is rounded down to the format's resolution, as on-board
clocks do). Decoders raise only :mod:`linkstack.errors` types, naming the field and offset.

Traps seen in other implementations (specs/sources.md §2 item 8; not copied): one Rust library
scales the CUC fine time by ``2**(8n) - 1`` instead of ``2**(8n)``; yamcs reads the second
P-field octet's coarse count at two different bit positions in its CUC decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction
from typing import Any, cast

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError

LAYER = "time"

SECONDS_PER_DAY = 86400
MS_PER_DAY = SECONDS_PER_DAY * 1000
MAX_MS_OF_DAY = MS_PER_DAY + 999
"""Largest ms of day: a positive leap second runs to 86 400 999 (301.0-B-4 §3.3.1)."""
PS_PER_MS = 10**9
DAYS_1958_TO_1970 = 4383
"""Days from the CCSDS epoch 1958-01-01 to the Unix epoch 1970-01-01."""

__all__ = [
    "CDS_P_FIELD",
    "CUC_P_FIELD",
    "CUC_P_FIELD_EXTENSION",
    "DAYS_1958_TO_1970",
    "CdsFormat",
    "CdsTime",
    "CucFormat",
    "Epoch",
    "Submillisecond",
    "TimeCodeId",
    "TimeFormat",
    "TimeValue",
    "decode_time_code",
    "read_p_field",
]


class TimeCodeId(IntEnum):
    """Time code identification, P-field bits 1-3 (301.0-B-4 §3.1.2)."""

    CUC_CCSDS_EPOCH = 0b001  # CUC level 1: epoch 1958-01-01 TAI
    CUC_AGENCY_EPOCH = 0b010  # CUC level 2: agency-defined epoch
    CDS = 0b100
    CCS = 0b101


class Epoch(IntEnum):
    """Which epoch a time code counts from: the CCSDS epoch 1958-01-01 or one the agency
    defines (CUC: time code ID 001/010, §3.2.2; CDS: epoch identification bit, §3.3.2)."""

    CCSDS_1958 = 0
    AGENCY = 1


class Submillisecond(IntEnum):
    """CDS P-field bits 6-7: resolution of the optional sub-millisecond segment (§3.3.2)."""

    NONE = 0b00
    MICROSECONDS = 0b01  # 16 bits, 0..999
    PICOSECONDS = 0b10  # 32 bits, 0..999 999 999


# -- declarations (the single definition of each P-field) ------------------------------------
CUC_P_FIELD = c.BitStruct(
    "extension_flag" / c.Flag,
    "time_code_id" / c.BitsInteger(3),
    "coarse_time_octets_minus_1" / c.BitsInteger(2),
    "fine_time_octets" / c.BitsInteger(2),
)
"""CUC P-field octet 1 (301.0-B-4 §3.2.2)."""

CUC_P_FIELD_EXTENSION = c.BitStruct(
    "extension_flag" / c.Flag,
    "additional_coarse_time_octets" / c.BitsInteger(2),
    "additional_fine_time_octets" / c.BitsInteger(3),
    c.Padding(2),  # reserved
)
"""CUC P-field octet 2, present when octet 1's extension flag is set (301.0-B-4 §3.2.2)."""

CDS_P_FIELD = c.BitStruct(
    "extension_flag" / c.Const(0, c.BitsInteger(1)),
    "time_code_id" / c.Const(int(TimeCodeId.CDS), c.BitsInteger(3)),
    "epoch_id" / c.BitsInteger(1),
    "day_segment_length" / c.BitsInteger(1),
    "submillisecond_resolution" / c.BitsInteger(2),
)
"""CDS P-field (301.0-B-4 §3.3.2): epoch 0 = 1958-01-01, day segment 0 = 16 / 1 = 24 bits."""

CUC_P1 = BitHeader(LAYER, CUC_P_FIELD)
CUC_P2 = BitHeader(LAYER, CUC_P_FIELD_EXTENSION)
CDS_P = BitHeader(LAYER, CDS_P_FIELD)

_CUC_ID = {Epoch.CCSDS_1958: TimeCodeId.CUC_CCSDS_EPOCH, Epoch.AGENCY: TimeCodeId.CUC_AGENCY_EPOCH}
_CUC_EPOCH = {int(v): k for k, v in _CUC_ID.items()}


def _truncated(buf: bytes, offset: int, need: int, what: str) -> TruncatedError:
    left = max(len(buf) - offset, 0)
    return TruncatedError(f"need {need} octets, {left} left", layer=LAYER, field=what,
                          offset=offset)


def _fraction(value: object, fld: str) -> Fraction | int:
    """``value`` as an exact rational (ints pass through: they have numerator/denominator)."""
    if isinstance(value, int | Fraction):
        return value
    try:
        # Fraction takes a Rational, float, Decimal or str and raises TypeError otherwise.
        return Fraction(cast(Any, value))
    except (ValueError, OverflowError, TypeError) as exc:
        raise EncodeError(f"{value!r} is not a finite number of seconds", layer=LAYER,
                          field=fld) from exc


# -- CUC -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CucFormat:
    """One CUC time code format (301.0-B-4 §3.2).

    Args:
        coarse_octets: octets of coarse time (seconds), 1..7 (5..7 need the P-field extension).
        fine_octets: octets of fine time (binary fraction of a second), 0..10 (4..10 need the
            extension).
        epoch: 1958-01-01 TAI (time code ID 001) or agency-defined (010).
        explicit_p_field: whether the P-field is sent in front of the T-field. When it is,
            :meth:`decode` requires the received P-field to equal :attr:`p_field` octet for
            octet (use :func:`decode_time_code` to accept any CUC/CDS code).

    :meth:`from_p_field` keeps a legal but non-canonical received P-field (an extension
    octet that adds nothing, reserved bits set) verbatim, so that :attr:`size` and
    re-encoding match the wire; such a format still compares equal to the canonical one.
    """

    coarse_octets: int = 4
    fine_octets: int = 0
    epoch: Epoch = Epoch.CCSDS_1958
    explicit_p_field: bool = True
    _p_field: bytes = field(init=False, repr=False, compare=False)
    _size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.coarse_octets <= 7:
            raise ConfigError(f"{self.coarse_octets!r} outside 1..7", key="coarse_octets")
        if not 0 <= self.fine_octets <= 10:
            raise ConfigError(f"{self.fine_octets!r} outside 0..10", key="fine_octets")
        object.__setattr__(self, "epoch", Epoch(self.epoch))
        coarse, fine = self.coarse_octets, self.fine_octets
        extended = coarse > 4 or fine > 3
        p = CUC_P1.pack(int(extended), _CUC_ID[self.epoch], min(coarse, 4) - 1, min(fine, 3))
        if extended:
            p += CUC_P2.pack(0, max(coarse - 4, 0), max(fine - 3, 0))
        object.__setattr__(self, "_p_field", p)
        size = coarse + fine + (len(p) if self.explicit_p_field else 0)
        object.__setattr__(self, "_size", size)

    @property
    def time_code_id(self) -> TimeCodeId:
        return _CUC_ID[self.epoch]

    @property
    def p_field(self) -> bytes:
        """The P-field octets (1 or 2), whether or not they are sent."""
        return self._p_field

    @property
    def size(self) -> int:
        """Octets on the wire: P-field (if explicit) + T-field."""
        return self._size

    @property
    def resolution(self) -> Fraction:
        """Smallest step in seconds: 2**(-8 * fine_octets)."""
        return Fraction(1, 1 << (8 * self.fine_octets))

    def t_field(self) -> c.Struct:
        """The T-field declaration: ``coarse_time`` and ``fine_time`` big-endian counters."""
        fields = ["coarse_time" / c.BytesInteger(self.coarse_octets)]
        if self.fine_octets:
            fields.append("fine_time" / c.BytesInteger(self.fine_octets))
        return c.Struct(*fields)

    # -- encode ------------------------------------------------------------------------------
    def encode_fields(self, coarse: int, fine: int = 0) -> bytes:
        """Encode raw coarse and fine counters."""
        if not 0 <= coarse < 1 << (8 * self.coarse_octets):
            raise EncodeError(f"{coarse!r} does not fit {self.coarse_octets} octets",
                              layer=LAYER, field="coarse_time")
        if not 0 <= fine < 1 << (8 * self.fine_octets):
            raise EncodeError(f"{fine!r} does not fit {self.fine_octets} octets",
                              layer=LAYER, field="fine_time")
        units = (coarse << (8 * self.fine_octets)) | fine
        t = units.to_bytes(self.coarse_octets + self.fine_octets, "big")
        return self._p_field + t if self.explicit_p_field else t

    def encode(self, seconds: Fraction | int | float, *, truncate: bool = False) -> bytes:
        """Encode ``seconds`` since the epoch. Raises :class:`EncodeError` if the value is
        negative, too large, or (unless ``truncate``) not a multiple of the resolution."""
        value = _fraction(seconds, "coarse_time")
        # floor(value * 2**bits) and its remainder, in integers (exact and faster).
        units, rem = divmod(value.numerator << (8 * self.fine_octets), value.denominator)
        if rem and not truncate:
            raise EncodeError(
                f"{value} s is not a multiple of 2**-{8 * self.fine_octets} s "
                "(use truncate=True to round down)", layer=LAYER, field="fine_time")
        n = self.coarse_octets + self.fine_octets
        if not 0 <= units < 1 << (8 * n):
            raise EncodeError(f"{value} s outside the range of {self.coarse_octets} coarse octets",
                              layer=LAYER, field="coarse_time")
        t = units.to_bytes(n, "big")
        return self._p_field + t if self.explicit_p_field else t

    # -- decode ------------------------------------------------------------------------------
    def decode_fields(self, buf: bytes, offset: int = 0) -> tuple[int, int]:
        """Decode ``(coarse, fine)`` from ``buf[offset:offset + size]``."""
        units = self._units(buf, offset)
        bits = 8 * self.fine_octets
        return units >> bits, units & ((1 << bits) - 1)

    def decode(self, buf: bytes, offset: int = 0) -> Fraction:
        """Decode the time as seconds since the epoch (exact)."""
        return Fraction(self._units(buf, offset), 1 << (8 * self.fine_octets))

    def _units(self, buf: bytes, offset: int) -> int:
        if len(buf) - offset < self._size:
            raise _truncated(buf, offset, self._size, "cuc_time_code")
        t = offset
        if self.explicit_p_field:
            p = self._p_field
            t += len(p)
            if buf[offset:t] != p:
                raise DecodeError(f"P-field {bytes(buf[offset:t]).hex()} differs from the "
                                  f"configured {p.hex()}", layer=LAYER, field="p_field",
                                  offset=offset)
        return int.from_bytes(buf[t:t + self.coarse_octets + self.fine_octets], "big")

    @classmethod
    def from_p_field(cls, buf: bytes, offset: int = 0) -> CucFormat:
        """Read a CUC P-field (1 or 2 octets) and return its format (explicit P-field)."""
        ext, code, coarse_m1, fine = CUC_P1.unpack(buf, offset)
        epoch = _CUC_EPOCH.get(code)
        if epoch is None:
            raise DecodeError(f"{code:03b} is not a CUC time code (001 or 010)", layer=LAYER,
                              field="time_code_id", offset=offset)
        coarse = coarse_m1 + 1
        if ext:
            ext2, add_coarse, add_fine = CUC_P2.unpack(buf, offset + 1)
            if ext2:
                raise DecodeError("a third P-field octet is not defined", layer=LAYER,
                                  field="extension_flag", offset=offset + 1)
            coarse += add_coarse  # at most 4 + 3 = 7
            fine += add_fine  # at most 3 + 7 = 10
        fmt = cls(coarse, fine, epoch, True)
        wire = bytes(buf[offset:offset + 1 + ext])
        if wire != fmt._p_field:
            # A legal but non-canonical P-field (extension octet not needed, or reserved bits
            # set): keep it verbatim so that size and re-encoding match the wire.
            object.__setattr__(fmt, "_p_field", wire)
            object.__setattr__(fmt, "_size", coarse + fine + len(wire))
        return fmt


# -- CDS -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class CdsTime:
    """A CDS time (301.0-B-4 §3.3): ``day`` since the epoch, ``ms_of_day`` (0..86 400 999,
    the last second only during a leap second) and ``picoseconds`` within the millisecond
    (0..999 999 999; a microsecond-resolution code carries multiples of 10**6)."""

    day: int
    ms_of_day: int
    picoseconds: int = 0

    @property
    def seconds(self) -> Fraction:
        """Seconds since the epoch counting 86 400 s per day (no leap-second table: a leap
        second reads as the first second of the next day)."""
        return (self.day * SECONDS_PER_DAY + Fraction(self.ms_of_day, 1000)
                + Fraction(self.picoseconds, 10**12))

    @property
    def microseconds(self) -> int:
        """Sub-millisecond part in whole microseconds (rounded down)."""
        return self.picoseconds // 10**6

    @classmethod
    def from_seconds(cls, seconds: Fraction | int | float, *, truncate: bool = False) -> CdsTime:
        """Split ``seconds`` since the epoch into day / ms / ps. Raises :class:`EncodeError`
        for a negative value or (unless ``truncate``) one finer than 1 ps."""
        value = _fraction(seconds, "day")
        if value < 0:
            raise EncodeError(f"{value} s is before the epoch", layer=LAYER, field="day")
        ps_total, rem = divmod(value.numerator * 10**12, value.denominator)
        if rem and not truncate:
            raise EncodeError(f"{value} s is finer than 1 ps", layer=LAYER,
                              field="submillisecond")
        ms_total, ps = divmod(ps_total, PS_PER_MS)
        day, ms = divmod(ms_total, MS_PER_DAY)
        return cls(day, ms, ps)


@dataclass(frozen=True, slots=True)
class CdsFormat:
    """One CDS time code format (301.0-B-4 §3.3).

    Args:
        day_octets: length of the day segment, 2 (16 bits) or 3 (24 bits).
        submillisecond: none, microseconds (16 bits) or picoseconds (32 bits).
        epoch: 1958-01-01 or agency-defined (P-field epoch identification bit).
        explicit_p_field: whether the 1-octet P-field is sent in front of the T-field.
    """

    day_octets: int = 2
    submillisecond: Submillisecond = Submillisecond.NONE
    epoch: Epoch = Epoch.CCSDS_1958
    explicit_p_field: bool = True
    _p_field: bytes = field(init=False, repr=False, compare=False)
    _size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.day_octets not in (2, 3):
            raise ConfigError(f"{self.day_octets!r} must be 2 or 3", key="day_octets")
        object.__setattr__(self, "submillisecond", Submillisecond(self.submillisecond))
        object.__setattr__(self, "epoch", Epoch(self.epoch))
        p = CDS_P.pack(int(self.epoch), self.day_octets - 2, int(self.submillisecond))
        object.__setattr__(self, "_p_field", p)
        size = self.day_octets + 4 + self.submillisecond_octets
        object.__setattr__(self, "_size", size + (1 if self.explicit_p_field else 0))

    @property
    def time_code_id(self) -> TimeCodeId:
        return TimeCodeId.CDS

    @property
    def submillisecond_octets(self) -> int:
        return (0, 2, 4)[self.submillisecond]

    @property
    def p_field(self) -> bytes:
        """The 1-octet P-field, whether or not it is sent."""
        return self._p_field

    @property
    def size(self) -> int:
        """Octets on the wire: P-field (if explicit) + T-field."""
        return self._size

    @property
    def resolution(self) -> Fraction:
        """Smallest step in seconds."""
        return Fraction(1, (1000, 10**6, 10**12)[self.submillisecond])

    def t_field(self) -> c.Struct:
        """The T-field declaration: ``day``, ``ms_of_day`` and the sub-millisecond segment."""
        fields = ["day" / c.BytesInteger(self.day_octets), "ms_of_day" / c.Int32ub]
        if self.submillisecond == Submillisecond.MICROSECONDS:
            fields.append("microseconds" / c.Int16ub)
        elif self.submillisecond == Submillisecond.PICOSECONDS:
            fields.append("picoseconds" / c.Int32ub)
        return c.Struct(*fields)

    def encode(self, value: CdsTime | Fraction | int | float, *, truncate: bool = False) -> bytes:
        """Encode a :class:`CdsTime` (or seconds since the epoch, see
        :meth:`CdsTime.from_seconds`). Raises :class:`EncodeError` naming the field out of
        range, or (unless ``truncate``) a sub-millisecond part finer than the format holds."""
        t = value if isinstance(value, CdsTime) else CdsTime.from_seconds(value,
                                                                          truncate=truncate)
        if not 0 <= t.day < 1 << (8 * self.day_octets):
            raise EncodeError(f"{t.day!r} does not fit {self.day_octets} octets", layer=LAYER,
                              field="day")
        if not 0 <= t.ms_of_day <= MAX_MS_OF_DAY:
            raise EncodeError(f"{t.ms_of_day!r} outside 0..{MAX_MS_OF_DAY}", layer=LAYER,
                              field="ms_of_day")
        if not 0 <= t.picoseconds < PS_PER_MS:
            raise EncodeError(f"{t.picoseconds!r} outside 0..{PS_PER_MS - 1}", layer=LAYER,
                              field="submillisecond")
        sub = self.submillisecond
        word = (t.day << 32) | t.ms_of_day
        if sub == Submillisecond.NONE:
            lost = t.picoseconds
        elif sub == Submillisecond.MICROSECONDS:
            us, lost = divmod(t.picoseconds, 10**6)
            word = (word << 16) | us
        else:
            lost = 0
            word = (word << 32) | t.picoseconds
        if lost and not truncate:
            raise EncodeError(f"{t.picoseconds} ps is finer than the {sub.name.lower()} "
                              "resolution (use truncate=True to round down)", layer=LAYER,
                              field="submillisecond")
        out = word.to_bytes(self.day_octets + 4 + self.submillisecond_octets, "big")
        return self._p_field + out if self.explicit_p_field else out

    def decode(self, buf: bytes, offset: int = 0) -> CdsTime:
        """Decode ``buf[offset:offset + size]``."""
        if len(buf) - offset < self._size:
            raise _truncated(buf, offset, self._size, "cds_time_code")
        t = offset
        if self.explicit_p_field:
            if buf[offset] != self._p_field[0]:
                raise DecodeError(f"P-field {buf[offset]:02x} differs from the configured "
                                  f"{self._p_field.hex()}", layer=LAYER, field="p_field",
                                  offset=offset)
            t += 1
        d = self.day_octets
        day = int.from_bytes(buf[t:t + d], "big")
        ms = int.from_bytes(buf[t + d:t + d + 4], "big")
        if ms > MAX_MS_OF_DAY:
            raise DecodeError(f"{ms} outside 0..{MAX_MS_OF_DAY}", layer=LAYER,
                              field="ms_of_day", offset=t + d)
        s = t + d + 4
        if self.submillisecond == Submillisecond.MICROSECONDS:
            us = int.from_bytes(buf[s:s + 2], "big")
            if us > 999:
                raise DecodeError(f"{us} outside 0..999", layer=LAYER, field="submillisecond",
                                  offset=s)
            ps = us * 10**6
        elif self.submillisecond == Submillisecond.PICOSECONDS:
            ps = int.from_bytes(buf[s:s + 4], "big")
            if ps >= PS_PER_MS:
                raise DecodeError(f"{ps} outside 0..{PS_PER_MS - 1}", layer=LAYER,
                                  field="submillisecond", offset=s)
        else:
            ps = 0
        return CdsTime(day, ms, ps)

    @classmethod
    def from_p_field(cls, buf: bytes, offset: int = 0) -> CdsFormat:
        """Read a CDS P-field and return its format (explicit P-field)."""
        epoch_id, day_len, sub = CDS_P.unpack(buf, offset)
        if sub == 0b11:
            raise DecodeError("sub-millisecond resolution 11 is reserved", layer=LAYER,
                              field="submillisecond_resolution", offset=offset)
        return cls(2 + day_len, Submillisecond(sub), Epoch(epoch_id), True)


# -- self-identifying time codes -------------------------------------------------------------
TimeFormat = CucFormat | CdsFormat
TimeValue = Fraction | CdsTime


def read_p_field(buf: bytes, offset: int = 0) -> TimeFormat:
    """Identify the time code whose P-field starts at ``buf[offset]`` (CUC or CDS)."""
    if len(buf) - offset < 1:
        raise _truncated(buf, offset, 1, "p_field")
    code = (buf[offset] >> 4) & 0b111
    if code in _CUC_EPOCH:
        return CucFormat.from_p_field(buf, offset)
    if code == TimeCodeId.CDS:
        return CdsFormat.from_p_field(buf, offset)
    name = TimeCodeId(code).name if code in TimeCodeId._value2member_map_ else "reserved"
    raise DecodeError(f"time code {code:03b} ({name}) is not supported (CUC or CDS)",
                      layer=LAYER, field="time_code_id", offset=offset)


def decode_time_code(buf: bytes, offset: int = 0) -> tuple[TimeFormat, TimeValue]:
    """Decode a time code with an explicit P-field; returns its format and value. The code
    ends at ``offset + format.size``."""
    fmt = read_p_field(buf, offset)
    return fmt, fmt.decode(buf, offset)
