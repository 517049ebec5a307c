"""Security Associations, their state machine and the anti-replay window.

An SA (355.0-B-2 §2.4 and §5, managed parameters) binds a 16-bit SPI to the channels it
serves (frame type, spacecraft, virtual channels), a service and algorithm, a key, the
lengths of every Security Header and Trailer field, and the authentication bit mask.

States and procedures follow CCSDS 355.1-B-1 §3.3 (SA management)::

    (none) --create--> UNKEYED --rekey--> KEYED --start--> OPERATIONAL
                       UNKEYED <--expire-- KEYED <--stop--  OPERATIONAL
    (none) <--delete-- UNKEYED

Set ARSN is legal on a keyed or operational SA, Set ARSN Window and Read ARSN on any SA,
SA Status on any SA. 355.1-B-1 has no separate "expired" state: Expire takes a keyed SA
back to UNKEYED (its key is forgotten), from where it can be rekeyed or deleted. The table
:data:`SA_TRANSITIONS` is the single definition; :class:`SaDatabase` methods and the
Extended Procedure PDUs (:mod:`linkstack.sdls.pdu`) both go through it, and an illegal
request raises :class:`~linkstack.sdls.errors.SaStateError`. Create SA is not implemented
(SAs come from the SA file); its PDU is not decoded.

Anti-replay (355.0-B-2 §3.5.2): the receiver keeps the highest accepted value (``iv`` /
``arsn``) and a :class:`ReplayWindow` of the values it has accepted just below it. A frame is
accepted iff its sequence number is one of the next ``arsn_window`` values (ahead: as
CryptoLib ``Crypto_window``, a positive window), or one of the ``arsn_window`` values up to
the highest (at most :data:`REORDER_SPAN_MAX`) that has not been accepted yet (behind: a
frame reordered on the link is accepted exactly once, a bitmap in the manner of RFC 6479).
Which counter is checked: the ARSN when the SA has one, and the IV when the SA uses AES-GCM
(the IV then is a counter, SP 800-38D §8.2.1); with both, both must pass (CryptoLib
``Crypto_Check_Anti_Replay``). Values whose high octets are not transmitted are rebuilt from
the highest accepted value (:func:`expand`). State only advances after the MAC has verified
(the engine calls :meth:`SaDatabase.commit`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from linkstack.errors import ConfigError
from linkstack.sdls.counters import CounterStore
from linkstack.sdls.errors import SaStateError, SequenceExhaustedError
from linkstack.sdls.header import MAX_PAD_LENGTH_FIELD, SPI_SIZE
from linkstack.sdls.keys import Key, KeyRing, KeyState
from linkstack.sdls.services import GCM_MAC_LENGTHS, Algorithm, ServiceType

__all__ = [
    "REORDER_SPAN_MAX",
    "SA_TRANSITIONS",
    "FrameType",
    "Gvcid",
    "ReplayWindow",
    "SaDatabase",
    "SaProcedure",
    "SaState",
    "SecurityAssociation",
    "expand",
    "in_window",
]

MAX_SPI = 0xFFFF
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
MAX_IV_LENGTH = 32
MAX_ARSN_LENGTH = 20  # CryptoLib ARSN_SIZE
REORDER_SPAN_MAX = 1 << 16
"""The most values below the highest accepted one a receiver remembers (8 KiB per counter):
the reordering window is ``min(arsn_window, REORDER_SPAN_MAX)``."""


class FrameType(StrEnum):
    """Transfer frame type an SA protects."""

    TC = "tc"
    TM = "tm"
    AOS = "aos"
    USLP = "uslp"

    @property
    def tfvn(self) -> int:
        """Transfer Frame Version Number: 0 (TC, TM), 1 (AOS), 12 (USLP)."""
        return {"tc": 0, "tm": 0, "aos": 1, "uslp": 12}[self.value]

    @property
    def max_scid(self) -> int:
        return {"tc": 1023, "tm": 1023, "aos": 255, "uslp": 65535}[self.value]

    @property
    def max_vcid(self) -> int:
        return 7 if self is FrameType.TM else 63


class SaState(IntEnum):
    """SA states (355.1-B-1 §3.3); values as CryptoLib's ``SA_NONE``..``SA_OPERATIONAL``."""

    NONE = 0
    UNKEYED = 1
    KEYED = 2
    OPERATIONAL = 3


class SaProcedure(IntEnum):
    """SA management procedures, valued by their Procedure Identifier (355.1-B-1 §5.5)."""

    READ_ARSN = 0b0000
    CREATE = 0b0001
    DELETE = 0b0100
    SET_ARSN_WINDOW = 0b0101
    REKEY = 0b0110
    EXPIRE = 0b1001
    SET_ARSN = 0b1010
    START = 0b1011
    STOP = 0b1110
    STATUS = 0b1111


_ANY = frozenset({SaState.UNKEYED, SaState.KEYED, SaState.OPERATIONAL})

SA_TRANSITIONS: dict[SaProcedure, tuple[frozenset[SaState], SaState | None]] = {
    SaProcedure.REKEY: (frozenset({SaState.UNKEYED}), SaState.KEYED),
    SaProcedure.START: (frozenset({SaState.KEYED}), SaState.OPERATIONAL),
    SaProcedure.STOP: (frozenset({SaState.OPERATIONAL}), SaState.KEYED),
    SaProcedure.EXPIRE: (frozenset({SaState.KEYED}), SaState.UNKEYED),
    SaProcedure.DELETE: (frozenset({SaState.UNKEYED}), SaState.NONE),
    SaProcedure.SET_ARSN: (frozenset({SaState.KEYED, SaState.OPERATIONAL}), None),
    SaProcedure.SET_ARSN_WINDOW: (_ANY, None),
    SaProcedure.READ_ARSN: (_ANY, None),
    SaProcedure.STATUS: (_ANY, None),
}
"""procedure -> (states it is legal in, state it leads to; None = unchanged)."""


@dataclass(frozen=True, slots=True)
class Gvcid:
    """A Global VC ID as the Start SA procedure carries it: TFVN, SCID, VCID, MAP ID."""

    tfvn: int
    scid: int
    vcid: int
    map_id: int = 0


def expand(last: int, received: int, transmitted: int, full: int, *, behind: int = 0,
           ahead: int = 0) -> int:
    """The full counter value from its transmitted low-order octets (355.0-B-2 §3.2.3-3.2.4).

    ``last`` is the highest accepted value; the non-transmitted high-order part is taken from
    it, carrying into it when the low part wrapped. With ``behind`` > 0 (the receiver's
    reordering window) a value less than ``behind`` below ``last`` is taken as it is when
    the carried one would be more than ``ahead`` after ``last`` (a frame reordered on the
    link, not one from the next block). With nothing transmitted the only candidate is
    ``last + 1`` (one lost frame then desynchronises the SA until Set ARSN). The result may
    exceed the field's range (a wrap): the window check then rejects it.
    """
    if transmitted >= full:
        return received
    if transmitted == 0:
        return last + 1
    modulus = 1 << (8 * transmitted)
    candidate = (last & ~(modulus - 1)) | received
    if candidate <= last:
        if last - candidate < behind and candidate + modulus - last > ahead:
            return candidate  # just behind: a late frame
        return candidate + modulus
    earlier = candidate - modulus
    if candidate - last > ahead and earlier >= 0 and last - earlier < behind:
        return earlier  # just behind, across a carry of the low octets
    return candidate


def in_window(last: int, received: int, window: int) -> bool:
    """True iff ``received`` is one of the ``window`` values after ``last`` (the positive
    window of CryptoLib; :class:`ReplayWindow` adds the values just below ``last``)."""
    return 0 < received - last <= window


class ReplayWindow:
    """The anti-replay state of one counter at the receiving end (355.0-B-2 §3.5.2).

    ``top`` is the highest value accepted. A value is acceptable iff it is one of the
    ``ahead`` values after ``top``, or one of the ``span`` values up to ``top`` that has not
    been accepted yet. The accepted values below ``top`` are bits of a ring of at least
    ``span`` bits indexed by the value (RFC 6479's bitmap without its blocks): moving ``top``
    clears the bits of the values it skips, so nothing shifts. A new window (a receiver that
    starts, a Set ARSN, a new ``arsn_window``) counts every value up to ``top`` as accepted:
    it cannot know which of them it saw before.
    """

    __slots__ = ("_bits", "_ring", "ahead", "span", "top")

    def __init__(self, top: int, ahead: int, span: int) -> None:
        if ahead < 1 or span < 1:
            raise ValueError("window sizes must be at least 1")
        self.top = top
        self.ahead = ahead
        self.span = span
        self._ring = (span + 7) & ~7
        self._bits = bytearray(b"\xff" * (self._ring >> 3))

    def __repr__(self) -> str:
        return f"ReplayWindow(top={self.top}, ahead={self.ahead}, span={self.span})"

    def check(self, value: int) -> bool:
        """True iff ``value`` may be accepted (nothing changes)."""
        d = value - self.top
        if d > 0:
            return d <= self.ahead
        if -d >= self.span:
            return False
        pos = value % self._ring
        return not (self._bits[pos >> 3] >> (pos & 7)) & 1

    def accept(self, value: int) -> None:
        """Record ``value`` as accepted (after :meth:`check` and the MAC passed)."""
        d = value - self.top
        if d > 0:
            if d > 1:
                self._clear(self.top + 1, d - 1)
            self.top = value
        pos = value % self._ring
        self._bits[pos >> 3] |= 1 << (pos & 7)

    def seen(self, value: int) -> bool:
        """True iff ``value`` was accepted (or predates the window)."""
        if value > self.top:
            return False
        if self.top - value >= self.span:
            return True
        pos = value % self._ring
        return bool((self._bits[pos >> 3] >> (pos & 7)) & 1)

    def _clear(self, start: int, count: int) -> None:
        """Mark the ``count`` values from ``start`` as not accepted."""
        ring, bits = self._ring, self._bits
        if count >= ring:
            bits[:] = bytes(len(bits))
            return
        a = start % ring
        b = a + count
        if b > ring:
            self._clear_bits(a, ring)
            self._clear_bits(0, b - ring)
        else:
            self._clear_bits(a, b)

    def _clear_bits(self, a: int, b: int) -> None:
        bits = self._bits
        while a < b and a & 7:
            bits[a >> 3] &= ~(1 << (a & 7)) & 0xFF
            a += 1
        whole = b & ~7
        if a < whole:
            bits[a >> 3:whole >> 3] = bytes((whole - a) >> 3)
            a = whole
        while a < b:
            bits[a >> 3] &= ~(1 << (a & 7)) & 0xFF
            a += 1


@dataclass(eq=False)
class SecurityAssociation:
    """One SA: its managed parameters (355.0-B-2 §5) and its state (355.1-B-1 §3.3).

    Attributes:
        spi: Security Parameter Index, 0..65535.
        frame: the frame type the SA protects.
        scid: spacecraft ID of the channels served.
        vcids: the virtual channels served (the GVCIDs of the last Start SA).
        service: authenticated encryption, authentication or encryption.
        algorithm: AES-GCM, AES-CMAC or HMAC-SHA-256.
        key_id: the key (None while UNKEYED).
        iv_length / iv_transmitted_length: IV octets, and how many low-order octets the
            Security Header carries (default: all).
        arsn_length / arsn_transmitted_length: same for the Anti-Replay Sequence Number.
        arsn_window: the anti-replay window (frames), >= 1: how far ahead of the highest
            accepted value a frame may be, and how far behind it (at most
            :data:`REORDER_SPAN_MAX`) a frame not yet accepted may be.
        pad_length_field_length: octets of the Pad Length field, 0..2.
        mac_length: MAC octets in the Security Trailer (0 for encryption only).
        auth_mask: authentication bit mask, aligned to the first octet of the frame and ANDed
            into the authenticated octets (the AAD for GCM, every octet before the MAC for
            authentication only); octets beyond it are masked with ``auth_mask_fill``.
        auth_mask_fill: 0xFF (default: authenticate everything the mask does not cover) or
            0x00.
        state: SA state.
        iv / arsn: the last value sent (sending end) or accepted (receiving end).
        name: an optional label (letters, digits, ``-``, ``_``) by which configurations
            outside SDLS, such as a scenario's hop stack, refer to the SA.
    """

    spi: int
    frame: FrameType
    scid: int
    vcids: frozenset[int]
    service: ServiceType
    algorithm: Algorithm
    key_id: int | None = None
    iv_length: int = 12
    iv_transmitted_length: int | None = None
    arsn_length: int = 0
    arsn_transmitted_length: int | None = None
    arsn_window: int = 5
    pad_length_field_length: int = 0
    mac_length: int = 16
    auth_mask: bytes = b""
    auth_mask_fill: int = 0xFF
    state: SaState = SaState.KEYED
    iv: int = 0
    arsn: int = 0
    name: str | None = None
    last_procedure: SaProcedure | None = field(default=None, repr=False)
    _mask_cache: dict[int, int | None] = field(default_factory=dict, repr=False)
    _windows: dict[str, ReplayWindow] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.frame = FrameType(self.frame)
        self.service = ServiceType(self.service)
        self.algorithm = Algorithm(self.algorithm)
        self.state = SaState(self.state)
        self.vcids = frozenset(self.vcids)
        self.auth_mask = bytes(self.auth_mask)
        if self.iv_transmitted_length is None:
            self.iv_transmitted_length = self.iv_length
        if self.arsn_transmitted_length is None:
            self.arsn_transmitted_length = self.arsn_length
        self.validate()

    # -- checks -------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`ConfigError` (``key`` = the field) if the parameters do not fit."""
        def bad(key: str, reason: str) -> ConfigError:
            return ConfigError(f"SA {self.spi}: {reason}", key=key)

        if not 0 <= self.spi <= MAX_SPI:
            raise bad("spi", f"outside 0..{MAX_SPI}")
        if self.name is not None and not _NAME.match(self.name):
            raise bad("name", f"{self.name!r}: letters, digits, '-' and '_', starting with a "
                              "letter")
        if not 0 <= self.scid <= self.frame.max_scid:
            raise bad("scid", f"{self.scid} outside 0..{self.frame.max_scid} for "
                              f"{self.frame.value.upper()}")
        for vcid in self.vcids:
            if not 0 <= vcid <= self.frame.max_vcid:
                raise bad("vcids", f"VCID {vcid} outside 0..{self.frame.max_vcid}")
        if not 0 <= self.iv_length <= MAX_IV_LENGTH:
            raise bad("iv_length", f"outside 0..{MAX_IV_LENGTH}")
        if not 0 <= self.iv_tx <= self.iv_length:
            raise bad("iv_transmitted_length", "outside 0..iv_length")
        if not 0 <= self.arsn_length <= MAX_ARSN_LENGTH:
            raise bad("arsn_length", f"outside 0..{MAX_ARSN_LENGTH}")
        if not 0 <= self.arsn_tx <= self.arsn_length:
            raise bad("arsn_transmitted_length", "outside 0..arsn_length")
        if self.arsn_window < 1:
            raise bad("arsn_window", "must be at least 1")
        for tx, name in ((self.iv_tx, "iv"), (self.arsn_tx, "arsn")):
            if 0 < tx < 8 and self.arsn_window >= (1 << (8 * tx)):
                raise bad("arsn_window", f"must be smaller than the {tx}-octet transmitted "
                                         f"{name} range")
        if not 0 <= self.pad_length_field_length <= MAX_PAD_LENGTH_FIELD:
            raise bad("pad_length_field_length", f"outside 0..{MAX_PAD_LENGTH_FIELD}")
        if self.auth_mask_fill not in (0x00, 0xFF):
            raise bad("auth_mask_fill", "must be 0x00 or 0xFF")
        if self.service is ServiceType.ENCRYPTION:
            if self.algorithm is not Algorithm.AES_GCM:
                raise bad("algorithm", "encryption needs aes-gcm")
            if self.mac_length:
                raise bad("mac_length", "encryption only has no MAC: use 0")
        else:
            if self.service.encrypts and self.algorithm is not Algorithm.AES_GCM:
                raise bad("algorithm", "authenticated encryption needs aes-gcm")
            if self.algorithm is Algorithm.AES_GCM and self.mac_length not in GCM_MAC_LENGTHS:
                raise bad("mac_length", f"GCM tags are {sorted(GCM_MAC_LENGTHS)} octets")
            if not 4 <= self.mac_length <= self.algorithm.max_mac_length:
                raise bad("mac_length", f"outside 4..{self.algorithm.max_mac_length}")
        if self.algorithm is Algorithm.AES_GCM and self.iv_length < 8:
            raise bad("iv_length", "AES-GCM needs an IV of at least 8 octets (12 advised)")
        if self.state is SaState.NONE:
            raise bad("state", "an SA in the database is at least UNKEYED")
        if self.state is not SaState.UNKEYED and self.key_id is None:
            raise bad("key_id", f"a {self.state.name} SA needs a key")
        if self.iv > self.iv_max or self.iv < 0:
            raise bad("iv", "does not fit in iv_length octets")
        if self.arsn > self.arsn_max or self.arsn < 0:
            raise bad("arsn", "does not fit in arsn_length octets")

    # -- geometry ---------------------------------------------------------------------

    @property
    def header_length(self) -> int:
        """Octets of the Security Header (355.0-B-2 §3.2)."""
        return SPI_SIZE + self.iv_tx + self.arsn_tx + self.pad_length_field_length

    @property
    def iv_tx(self) -> int:
        """Transmitted IV octets."""
        return self.iv_length if self.iv_transmitted_length is None else (
            self.iv_transmitted_length)

    @property
    def arsn_tx(self) -> int:
        """Transmitted ARSN octets."""
        return self.arsn_length if self.arsn_transmitted_length is None else (
            self.arsn_transmitted_length)

    @property
    def trailer_length(self) -> int:
        """Octets of the Security Trailer (355.0-B-2 §3.3): the MAC."""
        return self.mac_length

    @property
    def overhead(self) -> int:
        """Octets SDLS adds to a frame."""
        return self.header_length + self.trailer_length

    @property
    def iv_max(self) -> int:
        return (1 << (8 * self.iv_length)) - 1

    @property
    def arsn_max(self) -> int:
        return (1 << (8 * self.arsn_length)) - 1

    @property
    def iv_is_counter(self) -> bool:
        """The IV is anti-replay checked: AES-GCM SAs (the IV is a per-frame counter)."""
        return self.iv_length > 0 and self.algorithm is Algorithm.AES_GCM

    @property
    def sequence_field(self) -> str | None:
        """What Read/Set ARSN act on: ``"arsn"``, else ``"iv"`` for a GCM SA, else None."""
        if self.arsn_length:
            return "arsn"
        if self.iv_length:
            return "iv"
        return None

    def serves(self, frame: FrameType, scid: int, vcid: int) -> bool:
        return self.frame is frame and self.scid == scid and vcid in self.vcids

    def replay_window(self, which: str) -> ReplayWindow:
        """The receiving end's :class:`ReplayWindow` of the ``"iv"`` or ``"arsn"`` counter.

        It follows the SA: when the last accepted value or ``arsn_window`` was changed from
        outside (Set ARSN, Rekey, Set ARSN Window), a new window starts at the new value.
        """
        top = self.iv if which == "iv" else self.arsn
        window = self._windows.get(which)
        if window is None or window.top != top or window.ahead != self.arsn_window:
            window = self._windows[which] = ReplayWindow(
                top, self.arsn_window, min(self.arsn_window, REORDER_SPAN_MAX))
        return window

    def masked(self, data: bytes) -> bytes:
        """``data`` ANDed with the authentication bit mask (aligned to the frame start)."""
        n = len(data)
        mask = self._mask_cache.get(n, -1)
        if mask == -1:
            fill = bytes([self.auth_mask_fill]) * max(0, n - len(self.auth_mask))
            octets = self.auth_mask[:n] + fill
            mask = None if octets == b"\xff" * n else int.from_bytes(octets, "big")
            if len(self._mask_cache) < 64:
                self._mask_cache[n] = mask
        if mask is None:
            return bytes(data)
        return (int.from_bytes(data, "big") & mask).to_bytes(n, "big")


class SaDatabase:
    """The SAs and keys of one end, with the 355.1-B-1 SA and key procedures.

    ``counters``: a :class:`~linkstack.sdls.counters.CounterStore` for a *sending* end; the
    SAs resume after the values it reserved, and :meth:`next_sequence` reserves before use.
    """

    def __init__(self, keys: KeyRing | None = None, sas: Iterable[SecurityAssociation] = (),
                 *, counters: CounterStore | None = None) -> None:
        self.keys = keys if keys is not None else KeyRing()
        self.counters = counters
        self._sas: dict[int, SecurityAssociation] = {}
        for sa in sas:
            self.add(sa)

    def __repr__(self) -> str:
        states = ", ".join(f"{s.spi}:{s.state.name}" for s in self._sas.values())
        return f"SaDatabase({states}; {self.keys!r})"

    __str__ = __repr__

    # -- container ------------------------------------------------------------------

    def add(self, sa: SecurityAssociation) -> None:
        """Add an SA (from the SA file). With a counter store it resumes after the reservation."""
        if sa.spi in self._sas:
            raise ConfigError(f"SPI {sa.spi} defined twice", key="spi")
        if sa.key_id is not None and sa.key_id not in self.keys:
            raise ConfigError(f"SA {sa.spi}: no key {sa.key_id} in the key file", key="key_id")
        if sa.key_id is not None:
            self._check_key_fits(sa, self.keys.get(sa.key_id), "key_id")
        if sa.state is SaState.OPERATIONAL:
            for vcid in sa.vcids:
                other = self.operational_sa(sa.frame, sa.scid, vcid)
                if other is not None:
                    raise ConfigError(f"SA {sa.spi} and SA {other.spi} are both operational "
                                      f"on {sa.frame.value.upper()} VC {vcid}", key="state")
        if self.counters is not None:
            mark = self.counters.reserved(sa.spi)
            if mark is not None:
                sa.iv = min(max(sa.iv, mark[0]), sa.iv_max)
                sa.arsn = min(max(sa.arsn, mark[1]), sa.arsn_max)
        self._sas[sa.spi] = sa

    def get(self, spi: int) -> SecurityAssociation | None:
        return self._sas.get(spi)

    def __getitem__(self, spi: int) -> SecurityAssociation:
        return self._sas[spi]

    def __contains__(self, spi: object) -> bool:
        return spi in self._sas

    def __iter__(self) -> Iterator[SecurityAssociation]:
        return iter(self._sas.values())

    def __len__(self) -> int:
        return len(self._sas)

    def operational_sa(self, frame: FrameType, scid: int, vcid: int,
                       ) -> SecurityAssociation | None:
        """The operational SA serving this channel, if any (at most one: :meth:`start`)."""
        for sa in self._sas.values():
            if sa.state is SaState.OPERATIONAL and sa.serves(frame, scid, vcid):
                return sa
        return None

    def active_key(self, sa: SecurityAssociation) -> Key | None:
        """The SA's key if it exists and is ACTIVE."""
        if sa.key_id is None:
            return None
        key = self.keys.get(sa.key_id)
        return key if key is not None and key.state is KeyState.ACTIVE else None

    # -- sequence numbers ------------------------------------------------------------

    def next_sequence(self, sa: SecurityAssociation) -> tuple[int, int]:
        """Allocate the ``(iv, arsn)`` of the next frame the SA sends (0 for absent fields).

        Reserves the values in the counter store first when the reservation is used up;
        raises :class:`SequenceExhaustedError` after the last value.
        """
        iv = sa.iv + 1 if sa.iv_length else 0
        arsn = sa.arsn + 1 if sa.arsn_length else 0
        if sa.iv_length and iv > sa.iv_max:
            raise SequenceExhaustedError(sa.spi, "IV")
        if sa.arsn_length and arsn > sa.arsn_max:
            raise SequenceExhaustedError(sa.spi, "ARSN")
        store = self.counters
        if store is not None and (sa.iv_length or sa.arsn_length):
            mark = store.reserved(sa.spi)
            if mark is None or iv > mark[0] or arsn > mark[1]:
                extra = store.block - 1
                store.reserve(sa.spi,
                              min(iv + extra, sa.iv_max) if sa.iv_length else 0,
                              min(arsn + extra, sa.arsn_max) if sa.arsn_length else 0)
        sa.iv, sa.arsn = iv, arsn
        return iv, arsn

    def commit(self, sa: SecurityAssociation, iv: int | None, arsn: int | None) -> None:
        """Record a frame's values as accepted (receiving end, after the MAC and the window).

        The SA's ``iv`` / ``arsn`` stay the highest accepted values: a reordered frame only
        marks its value in the :class:`ReplayWindow`.
        """
        if iv is not None:
            if sa.iv_is_counter:
                window = sa.replay_window("iv")
                window.accept(iv)
                sa.iv = window.top
            else:
                sa.iv = iv
        if arsn is not None:
            window = sa.replay_window("arsn")
            window.accept(arsn)
            sa.arsn = window.top

    # -- 355.1-B-1 SA procedures ------------------------------------------------------

    def _sa(self, spi: int, procedure: SaProcedure) -> SecurityAssociation:
        sa = self._sas.get(spi)
        if sa is None:
            raise SaStateError(f"no SA {spi}", procedure=procedure.name.lower(), spi=spi,
                               state=SaState.NONE.name)
        legal, _ = SA_TRANSITIONS[procedure]
        if sa.state not in legal:
            names = "/".join(sorted(s.name for s in legal))
            raise SaStateError(f"illegal in state {sa.state.name} (legal in {names})",
                               procedure=procedure.name.lower(), spi=spi, state=sa.state.name)
        return sa

    def _finish(self, sa: SecurityAssociation, procedure: SaProcedure) -> None:
        target = SA_TRANSITIONS[procedure][1]
        if target is not None:
            sa.state = target
        sa.last_procedure = procedure

    def _check_key_fits(self, sa: SecurityAssociation, key: Key | None, what: str) -> None:
        if key is not None and key.length not in sa.algorithm.key_lengths:
            sizes = sorted(8 * n for n in sa.algorithm.key_lengths)
            takes = (f"{sizes[0]}..{sizes[-1]}" if len(sizes) > 2
                     else " or ".join(map(str, sizes)))
            raise ConfigError(f"SA {sa.spi}: key {key.key_id} is {8 * key.length} bits, "
                              f"{sa.algorithm.value} takes {takes} bits", key=what)

    def _persist(self, sa: SecurityAssociation, *, rekeyed: bool = False) -> None:
        store = self.counters
        if store is None or not (sa.iv_length or sa.arsn_length):
            return
        mark = store.reserved(sa.spi)
        iv = sa.iv if rekeyed or mark is None else max(sa.iv, mark[0])
        store.reserve(sa.spi, iv, sa.arsn)

    def rekey(self, spi: int, key_id: int, sequence: int | None = None) -> None:
        """Rekey SA (355.1-B-1 §3.3): UNKEYED -> KEYED with ACTIVE key ``key_id``.

        ``sequence`` (optional) sets the SA's sequence counter (:attr:`sequence_field`);
        the other counters restart at 0 (a new key makes every IV fresh).
        """
        sa = self._sa(spi, SaProcedure.REKEY)
        key = self.keys.get(key_id)
        if key is None:
            raise SaStateError(f"no key {key_id}", procedure="rekey", spi=spi,
                               state=sa.state.name)
        if key.state is not KeyState.ACTIVE:
            raise SaStateError(f"key {key_id} is {key.state.name}, not ACTIVE",
                               procedure="rekey", spi=spi, state=sa.state.name)
        self._check_key_fits(sa, key, "key_id")
        iv = arsn = 0
        if sequence is not None:
            if sa.sequence_field == "arsn":
                arsn = sequence
            elif sa.sequence_field == "iv":
                iv = sequence
            if not (0 <= iv <= sa.iv_max and 0 <= arsn <= sa.arsn_max):
                raise SaStateError(f"sequence {sequence} does not fit the SA",
                                   procedure="rekey", spi=spi, state=sa.state.name)
        sa.key_id = key_id
        sa.iv, sa.arsn = iv, arsn
        sa._windows.clear()  # a new key: the receiver's windows start over
        self._finish(sa, SaProcedure.REKEY)
        self._persist(sa, rekeyed=True)

    def start(self, spi: int, gvcids: Iterable[Gvcid] = ()) -> None:
        """Start SA (355.1-B-1 §3.3): KEYED -> OPERATIONAL on the given GVCIDs.

        Without GVCIDs the SA keeps its configured channels. A channel may have only one
        operational SA; the key must be ACTIVE.
        """
        sa = self._sa(spi, SaProcedure.START)
        if self.active_key(sa) is None:
            raise SaStateError(f"key {sa.key_id} is not ACTIVE", procedure="start", spi=spi,
                               state=sa.state.name)
        channels = list(gvcids)
        vcids = sa.vcids
        if channels:
            for g in channels:
                if g.tfvn != sa.frame.tfvn or g.scid != sa.scid:
                    raise SaStateError(
                        f"GVCID (TFVN {g.tfvn}, SCID {g.scid}) is not a "
                        f"{sa.frame.value.upper()} channel of spacecraft {sa.scid}",
                        procedure="start", spi=spi, state=sa.state.name)
                if not 0 <= g.vcid <= sa.frame.max_vcid:
                    raise SaStateError(f"VCID {g.vcid} out of range", procedure="start",
                                       spi=spi, state=sa.state.name)
            vcids = frozenset(g.vcid for g in channels)
        for vcid in vcids:
            other = self.operational_sa(sa.frame, sa.scid, vcid)
            if other is not None and other is not sa:
                raise SaStateError(f"SA {other.spi} is already operational on VC {vcid}",
                                   procedure="start", spi=spi, state=sa.state.name)
        sa.vcids = vcids
        self._finish(sa, SaProcedure.START)

    def stop(self, spi: int) -> None:
        """Stop SA (355.1-B-1 §3.3): OPERATIONAL -> KEYED."""
        self._finish(self._sa(spi, SaProcedure.STOP), SaProcedure.STOP)

    def expire(self, spi: int) -> None:
        """Expire SA (355.1-B-1 §3.3): KEYED -> UNKEYED; the SA forgets its key."""
        sa = self._sa(spi, SaProcedure.EXPIRE)
        sa.key_id = None
        self._finish(sa, SaProcedure.EXPIRE)

    def delete(self, spi: int) -> None:
        """Delete SA (355.1-B-1 §3.3): UNKEYED -> (none); the SPI becomes unknown."""
        sa = self._sa(spi, SaProcedure.DELETE)
        self._finish(sa, SaProcedure.DELETE)
        del self._sas[spi]

    def set_arsn(self, spi: int, value: int) -> None:
        """Set ARSN (355.1-B-1 §3.3) on a keyed or operational SA.

        Acts on the ARSN, or on the IV counter of a GCM SA without ARSN; an IV counter is
        never moved backwards (that would reuse IVs under the same key: rekey instead).
        """
        sa = self._sa(spi, SaProcedure.SET_ARSN)
        which = sa.sequence_field
        if which is None:
            raise SaStateError("the SA has neither ARSN nor IV", procedure="set_arsn",
                               spi=spi, state=sa.state.name)
        limit = sa.arsn_max if which == "arsn" else sa.iv_max
        if not 0 <= value <= limit:
            raise SaStateError(f"{value} does not fit the {which.upper()}",
                               procedure="set_arsn", spi=spi, state=sa.state.name)
        if which == "iv" and value < sa.iv:
            raise SaStateError("would move the IV counter backwards (IV reuse under the same "
                               "key); rekey instead", procedure="set_arsn", spi=spi,
                               state=sa.state.name)
        setattr(sa, which, value)
        self._finish(sa, SaProcedure.SET_ARSN)
        self._persist(sa)

    def read_arsn(self, spi: int) -> int:
        """Read ARSN (355.1-B-1 §3.3): the ARSN, or the IV counter of a GCM SA without one."""
        sa = self._sa(spi, SaProcedure.READ_ARSN)
        self._finish(sa, SaProcedure.READ_ARSN)
        which = sa.sequence_field
        return 0 if which is None else int(getattr(sa, which))

    def set_arsn_window(self, spi: int, window: int) -> None:
        """Set ARSN Window (355.1-B-1 §3.3)."""
        sa = self._sa(spi, SaProcedure.SET_ARSN_WINDOW)
        old = sa.arsn_window
        sa.arsn_window = window
        try:
            sa.validate()
        except ConfigError as exc:
            sa.arsn_window = old
            raise SaStateError(exc.reason, procedure="set_arsn_window", spi=spi,
                               state=sa.state.name) from None
        self._finish(sa, SaProcedure.SET_ARSN_WINDOW)

    def status(self, spi: int) -> SaState:
        """SA Status Request (355.1-B-1 §3.3): the SA's state (NONE for an unknown SPI)."""
        sa = self._sas.get(spi)
        return SaState.NONE if sa is None else sa.state

    # -- 355.1-B-1 key procedures -----------------------------------------------------

    def activate_key(self, key_id: int) -> None:
        """Key Activation (355.1-B-1 §3.2): PRE_ACTIVE -> ACTIVE."""
        self.keys.activate(key_id)

    def deactivate_key(self, key_id: int) -> None:
        """Key Deactivation (355.1-B-1 §3.2): ACTIVE -> DEACTIVATED.

        Refused while an operational SA uses the key: stop the SA first.
        """
        for sa in self._sas.values():
            if sa.key_id == key_id and sa.state is SaState.OPERATIONAL:
                raise SaStateError(f"key {key_id} is in use by operational SA {sa.spi}",
                                   procedure="deactivate_key", spi=sa.spi,
                                   state=sa.state.name)
        self.keys.deactivate(key_id)

    def execute(self, pdu: bytes, *, via_spi: int | None = None) -> bytes | None:
        """Run one Extended Procedure PDU (:mod:`linkstack.sdls.pdu`); returns the reply PDU.

        ``via_spi`` is the SA that authenticated the frame carrying the PDU: an SA may not
        manage itself (as CryptoLib).
        """
        from linkstack.sdls.pdu import execute_pdu

        return execute_pdu(self, pdu, via_spi=via_spi)
