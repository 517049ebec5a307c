"""The SDLS engine: ApplySecurity and ProcessSecurity (CCSDS 355.0-B-2 §3.4, §3.5).

Sans-IO, like every engine of the stack: :meth:`SdlsEngine.apply` takes a clear frame (and
``now``) and returns the secured frame; :meth:`SdlsEngine.process` takes received octets and
returns a :class:`FrameAccepted` (the clear frame restored for the next layer) or a
:class:`SdlsRejected` with a :class:`RejectReason`. ``process`` never raises on its input
and never passes a rejected frame on. The only I/O anywhere is the optional counter store
of the sending SA database (:mod:`linkstack.sdls.counters`).

Sending end (§3.4), for the operational SA of the frame's channel:

1. allocate the next IV and/or ARSN (reserving them in the counter store first);
2. insert the Security Header after the frame headers and update the Frame Length field
   (TC, USLP); the data field is unchanged in size;
3. authenticated encryption: encrypt the data field with AES-GCM, AAD = every octet from
   the frame start to the end of the Security Header ANDed with the authentication mask;
   authentication only: MAC over every octet before the MAC, masked; encryption only:
   GCM keystream, no MAC;
4. append the MAC (Security Trailer) before the OCF, recompute the FECF over the secured
   frame.

Receiving end (§3.5), in this order: frame length; FECF; headers; SPI known; SA serves the
frame's channel; SA operational; key active; lengths for that SA; MAC (or decryption);
anti-replay window (355.0-B-2 §3.5.2: ahead of the highest accepted value as CryptoLib, and
behind it for frames reordered on the link, each value once:
:class:`~linkstack.sdls.sa.ReplayWindow`); Pad Length. The SA's highest accepted IV/ARSN
and its window only move after all of these pass. Counters per reason are kept in
:attr:`SdlsEngine.counters`.

The per-frame path works from a :class:`_Plan` per SA (lengths, the AESGCM object, the SPI
octets, whether the mask keeps the AAD as it is), built once: no construct parsing and no
object set-up per frame; the frame headers are read with the generated fast paths of
:mod:`linkstack.bitfields`.

The header/trailer placement, AAD and checking order match NASA CryptoLib's unit-test
frames (see tests/test_sdls_vectors.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, NamedTuple

from cryptography.exceptions import InvalidTag

from linkstack.codecs.crc import compute_fecf, crc16_ccitt, crc32_proximity1
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.frames.tc import TcChannelConfig
from linkstack.frames.tm import OCF_SIZE as TM_OCF_SIZE
from linkstack.frames.tm import PRIMARY_HEADER_SIZE as TM_PRIMARY_HEADER_SIZE
from linkstack.frames.tm import TmChannelConfig
from linkstack.frames.uslp import UslpChannelConfig
from linkstack.sdls.errors import SaStateError
from linkstack.sdls.header import SPI_SIZE
from linkstack.sdls.keys import Key, KeyState
from linkstack.sdls.layout import (
    C,
    clear_channel,
    frame_extent,
    frame_type_of,
    locate,
    peek_channel,
    set_frame_length,
)
from linkstack.sdls.sa import ReplayWindow, SaDatabase, SaState, SecurityAssociation, expand
from linkstack.sdls.services import GCM_TAG_SIZE, CipherSuite, ServiceType

__all__ = [
    "FrameAccepted",
    "ProcessResult",
    "RejectReason",
    "SdlsCounters",
    "SdlsEngine",
    "SdlsRejected",
]

log = logging.getLogger("linkstack.sdls")


class RejectReason(StrEnum):
    """Why ``process`` rejected a frame (355.0-B-2 §3.5; CryptoLib error names in brackets)."""

    BAD_LENGTH = "bad_length"  # frame or fields shorter/longer than the channel/SA allow
    BAD_FECF = "bad_fecf"  # [CRYPTO_LIB_ERR_INVALID_FECF]
    BAD_HEADER = "bad_header"  # malformed frame header (version, frame type)
    UNKNOWN_SPI = "unknown_spi"  # [CRYPTO_LIB_ERR_SPI_INDEX_OOB]
    WRONG_CHANNEL = "wrong_channel"  # SA does not serve this GVCID [..._INVALID_GVCID]
    SA_NOT_OPERATIONAL = "sa_not_operational"  # [CRYPTO_LIB_ERR_SA_NOT_OPERATIONAL]
    KEY_NOT_ACTIVE = "key_not_active"  # [CRYPTO_LIB_ERR_KEY_STATE_INVALID]
    BAD_MAC = "bad_mac"  # [CRYPTO_LIB_ERR_MAC_VALIDATION_ERROR]
    REPLAY = "replay"  # [CRYPTO_LIB_ERR_IV/ARSN_OUTSIDE_WINDOW]


class FrameAccepted(NamedTuple):
    """A frame that passed every check; ``frame`` is the clear frame for the next layer.

    ``iv`` and ``arsn`` are the full (expanded) values of the frame, None if the SA has no
    such field. (A named tuple, not a frozen dataclass: one is built for every frame, and a
    frozen dataclass takes about 2 µs to build.)
    """

    frame: bytes
    spi: int
    scid: int
    vcid: int
    iv: int | None
    arsn: int | None
    time: float


@dataclass(frozen=True, slots=True)
class SdlsRejected:
    """A frame that failed a check; it goes no further."""

    reason: RejectReason
    spi: int | None
    detail: str
    time: float


ProcessResult = FrameAccepted | SdlsRejected


@dataclass
class SdlsCounters:
    """Frames secured, accepted and rejected (per reason) by one engine."""

    applied: int = 0
    accepted: int = 0
    rejected: Counter[RejectReason] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        out = {"applied": self.applied, "accepted": self.accepted}
        out.update({f"rejected.{r.value}": self.rejected[r] for r in RejectReason})
        return out


class _Plan:
    """What apply and process need of one SA with one key, worked out once.

    An SA's shape (its lengths, service, algorithm and mask) is fixed when it is created
    (355.1-B-1's procedures change its state, key, channels, counters and window, never its
    shape); its key may change (Rekey), so a plan is for one SA object *and* one key: the key
    the SA's Key ID names in one key ring (a ring never replaces or removes a key, so the Key
    ID and the ring identify it; its state is checked on every frame).
    """

    __slots__ = ("aad_masks", "arsn_full", "arsn_length", "arsn_max", "arsn_tx", "clear",
                 "clear_tm_length", "gcm", "header", "iv_counter", "iv_full", "iv_length",
                 "iv_max", "iv_tx", "key", "key_id", "mac", "overhead", "pad", "ring", "sa",
                 "service", "spi_bytes", "suite")

    def __init__(self, sa: SecurityAssociation, key: Key, clear: Any, ring: Any) -> None:
        self.sa = sa
        self.key = key
        self.key_id = key.key_id
        self.ring = ring
        self.suite = CipherSuite(sa.algorithm, key.secret(), sa.mac_length)
        self.service = sa.service
        self.spi_bytes = sa.spi.to_bytes(SPI_SIZE, "big")
        self.iv_length = sa.iv_length
        self.iv_tx = sa.iv_tx
        self.iv_full = sa.iv_tx == sa.iv_length
        self.iv_max = sa.iv_max
        self.iv_counter = sa.iv_is_counter
        self.arsn_length = sa.arsn_length
        self.arsn_tx = sa.arsn_tx
        self.arsn_full = sa.arsn_tx == sa.arsn_length
        self.arsn_max = sa.arsn_max
        self.pad = sa.pad_length_field_length
        self.mac = sa.mac_length
        self.header = sa.header_length
        self.overhead = sa.overhead
        self.clear = clear
        # authenticated encryption with the whole GCM tag: one AESGCM call, whose output
        # (ciphertext || tag) is the data field followed by the Security Trailer
        self.gcm = (self.suite._gcm() if sa.service is ServiceType.AUTHENTICATED_ENCRYPTION
                    and sa.mac_length == GCM_TAG_SIZE else None)
        self.aad_masks: dict[int, bool] = {}
        # a TM channel's clear frame length, for apply's inline header path (0: not TM)
        self.clear_tm_length = clear.frame_length if isinstance(clear, TmChannelConfig) else 0

    def aad(self, data: bytes) -> bytes:
        """``data`` masked with the SA's authentication mask (as is if the mask keeps all)."""
        n = len(data)
        keep = self.aad_masks.get(n)
        if keep is None:
            keep = self.sa.masked(b"\xff" * n) == b"\xff" * n
            if len(self.aad_masks) < 64:
                self.aad_masks[n] = keep
        return data if keep else self.sa.masked(data)


_SETS_LENGTH = (TcChannelConfig, UslpChannelConfig)


class SdlsEngine(Generic[C]):
    """SDLS for one physical channel (one frame type, one channel configuration).

    Args:
        sadb: the SAs and keys of this end (a sending end's database may carry a counter
            store).
        channel: the *physical channel's* managed parameters — the secured frames' ones
            (``TcChannelConfig``, ``TmChannelConfig``, ``AosChannelConfig`` or
            ``UslpChannelConfig``). :meth:`clear_channel` gives the configuration the layer
            above uses for the clear frames.
    """

    def __init__(self, sadb: SaDatabase, channel: C) -> None:
        self.sadb = sadb
        self.channel: C = channel
        self.frame_type = frame_type_of(channel)
        self.counters = SdlsCounters()
        self._plans: dict[int, _Plan] = {}
        self._clear: dict[int, C] = {}
        self._sets_length = isinstance(channel, _SETS_LENGTH)
        # TM: the fixed frame length and FECF size the inline header path of process uses
        self._tm_length = channel.frame_length if isinstance(channel, TmChannelConfig) else 0
        self._tm_fecf = 2 if isinstance(channel, TmChannelConfig) and channel.has_fecf else 0

    def __repr__(self) -> str:
        return (f"SdlsEngine({self.frame_type.value}, {len(self.sadb)} SAs, "
                f"{self.counters.as_dict()})")

    # -- helpers ------------------------------------------------------------------------

    def overhead(self, spi: int) -> int:
        """Octets the SA adds to each frame (Security Header + Trailer)."""
        sa = self.sadb.get(spi)
        if sa is None:
            raise ConfigError(f"no SA {spi}", key="spi")
        return sa.overhead

    def clear_channel(self, spi: int) -> C:
        """The channel configuration of the clear frames protected by SA ``spi``."""
        return self._clear_config(self.overhead(spi))

    def _clear_config(self, overhead: int) -> C:
        cfg = self._clear.get(overhead)
        if cfg is None:
            cfg = self._clear[overhead] = clear_channel(self.channel, overhead)
        return cfg

    def _plan(self, sa: SecurityAssociation) -> _Plan | None:
        """The plan of ``sa`` and its key; None if the key is missing or not ACTIVE."""
        plan = self._plans.get(sa.spi)
        if (plan is not None and plan.sa is sa and plan.key_id == sa.key_id
                and plan.ring is self.sadb.keys):
            return plan if plan.key.state is KeyState.ACTIVE else None
        key = self.sadb.active_key(sa)
        if key is None:
            return None
        plan = self._plans[sa.spi] = _Plan(sa, key, self._clear_config(sa.overhead),
                                           self.sadb.keys)
        return plan

    # -- ApplySecurity (355.0-B-2 §3.4) --------------------------------------------------

    def apply(self, frame: bytes, now: float = 0.0, *, spi: int | None = None) -> bytes:
        """Secure one clear frame; returns the frame to transmit.

        The SA is ``spi`` or else the operational SA of the frame's channel. The clear frame
        is built with :meth:`clear_channel` (its FECF, if the channel has one, is replaced).

        Raises :class:`SaStateError` (no operational SA, key not active),
        :class:`~linkstack.errors.EncodeError` naming the field (malformed or too long
        frame), :class:`~linkstack.sdls.errors.SequenceExhaustedError`.
        """
        del now  # the engine keeps no timers; the argument keeps the engine interface
        buf = frame if type(frame) is bytes else bytes(frame)
        ft = self.frame_type
        if spi is None:
            try:
                scid, vcid = peek_channel(buf, self.channel)
            except DecodeError as exc:
                raise EncodeError(exc.reason, layer=exc.layer, field=exc.field) from None
            sa = self.sadb.operational_sa(ft, scid, vcid)
            if sa is None:
                raise SaStateError(f"no operational SA for {ft.value.upper()} SCID {scid} "
                                   f"VC {vcid}", procedure="apply")
        else:
            sa = self.sadb.get(spi)
            if sa is None:
                raise SaStateError(f"no SA {spi}", procedure="apply", spi=spi)
        if sa.state is not SaState.OPERATIONAL:
            raise SaStateError("SA is not OPERATIONAL", procedure="apply", spi=sa.spi,
                               state=sa.state.name)
        plan = self._plan(sa)
        if plan is None:
            raise SaStateError(f"key {sa.key_id} is not ACTIVE", procedure="apply", spi=sa.spi,
                               state=sa.state.name)
        length = plan.clear_tm_length
        if length and len(buf) == length and not buf[0] & 0xC0 and not buf[4] & 0x80:
            # a clear TM frame of the right length, version 0, no Secondary Header: what
            # locate would find, read inline (132.0-B-3 §4.1.2), as in process
            fecf = self._tm_fecf
            scid = ((buf[0] & 0x3F) << 4) | (buf[1] >> 4)
            vcid = (buf[1] >> 1) & 7
            start = TM_PRIMARY_HEADER_SIZE
            end = length - fecf - (TM_OCF_SIZE if buf[1] & 1 else 0)
        else:
            try:
                geo = locate(buf, plan.clear)
            except DecodeError as exc:
                raise EncodeError(f"{exc.reason} (the clear frame for SA {sa.spi})",
                                  layer=exc.layer, field=exc.field) from None
            length, scid, vcid = geo.length, geo.scid, geo.vcid
            start, end, fecf = geo.data_start, geo.data_end, geo.fecf_size
        if sa.frame is not ft or sa.scid != scid or vcid not in sa.vcids:  # sa.serves
            raise SaStateError(f"SA does not serve {ft.value.upper()} SCID {scid} VC "
                               f"{vcid}", procedure="apply", spi=sa.spi,
                               state=sa.state.name)
        iv, arsn = self.sadb.next_sequence(sa)
        iv_bytes = iv.to_bytes(plan.iv_length, "big") if plan.iv_length else b""
        sec = plan.spi_bytes
        if plan.iv_tx:
            sec += iv_bytes if plan.iv_full else iv_bytes[-plan.iv_tx:]
        if plan.arsn_tx:
            sec += arsn.to_bytes(plan.arsn_length, "big")[-plan.arsn_tx:]
        if plan.pad:
            sec += bytes(plan.pad)  # no fill: every algorithm is a stream/MAC
        if self._sets_length:
            head = bytearray(buf[:start])
            set_frame_length(head, self.channel, length + plan.overhead)
            prefix = bytes(head) + sec
        else:
            prefix = buf[:start] + sec
        gcm = plan.gcm
        if gcm is not None:  # authenticated encryption, whole tag: ciphertext || MAC
            body = gcm.encrypt(iv_bytes, memoryview(buf)[start:end], plan.aad(prefix))
        elif plan.service is ServiceType.AUTHENTICATED_ENCRYPTION:
            ciphertext, mac = plan.suite.seal(iv_bytes, buf[start:end], plan.aad(prefix))
            body = ciphertext + mac
        elif plan.service is ServiceType.ENCRYPTION:
            body = plan.suite.encrypt(iv_bytes, buf[start:end])
        else:
            data = buf[start:end]
            body = data + plan.suite.mac(iv_bytes, plan.aad(prefix + data))
        out = b"".join((prefix, body, buf[end:length - fecf]))  # then the OCF, if any
        self.counters.applied += 1
        if fecf == 2:
            return out + crc16_ccitt(out).to_bytes(2, "big")
        return out + compute_fecf(out, fecf) if fecf else out

    # -- ProcessSecurity (355.0-B-2 §3.5) -------------------------------------------------

    def _reject(self, reason: RejectReason, spi: int | None, detail: str,
                now: float) -> SdlsRejected:
        self.counters.rejected[reason] += 1
        log.debug("SDLS reject %s (SPI %s): %s", reason.value, spi, detail)
        return SdlsRejected(reason, spi, detail, now)

    def process(self, frame: bytes, now: float = 0.0) -> ProcessResult:
        """Verify, decrypt and strip one received frame; never raises on its content."""
        buf = frame if type(frame) is bytes else bytes(frame)
        length = self._tm_length
        if length and len(buf) == length and not buf[0] & 0xC0 and not buf[4] & 0x80:
            # the downlink's hot path: a TM frame of the channel's length, version 0, no
            # Secondary Header — the geometry :func:`locate` would find, read inline
            # (132.0-B-3 §4.1.2: SCID, VCID and the OCF flag in the first two octets)
            fecf = self._tm_fecf
            if fecf and crc16_ccitt(buf):
                return self._reject(RejectReason.BAD_FECF, None, "FECF does not match", now)
            scid = ((buf[0] & 0x3F) << 4) | (buf[1] >> 4)
            vcid = (buf[1] >> 1) & 7
            pos = TM_PRIMARY_HEADER_SIZE
            data_end = length - fecf - (TM_OCF_SIZE if buf[1] & 1 else 0)
        else:
            try:
                length, fecf = frame_extent(buf, self.channel)
            except DecodeError as exc:
                return self._reject(RejectReason.BAD_LENGTH, None, str(exc), now)
            if length != len(buf):
                buf = buf[:length]
            if fecf and (crc16_ccitt(buf) if fecf == 2 else crc32_proximity1(buf)):
                return self._reject(RejectReason.BAD_FECF, None, "FECF does not match", now)
            try:
                geo = locate(buf, self.channel, (length, fecf))
            except TruncatedError as exc:
                return self._reject(RejectReason.BAD_LENGTH, None, str(exc), now)
            except DecodeError as exc:
                reason = (RejectReason.BAD_LENGTH if exc.field == "frame_length"
                          else RejectReason.BAD_HEADER)
                return self._reject(reason, None, str(exc), now)
            pos, data_end, scid, vcid = geo.data_start, geo.data_end, geo.scid, geo.vcid
        if data_end - pos < SPI_SIZE:
            return self._reject(RejectReason.BAD_LENGTH, None, "no room for the SPI", now)
        spi = (buf[pos] << 8) | buf[pos + 1]
        sa = self.sadb.get(spi)
        if sa is None:
            return self._reject(RejectReason.UNKNOWN_SPI, spi, f"no SA {spi}", now)
        ft = self.frame_type
        if sa.frame is not ft or sa.scid != scid or vcid not in sa.vcids:  # sa.serves
            return self._reject(RejectReason.WRONG_CHANNEL, spi,
                                f"SA {spi} does not serve {ft.value.upper()} SCID {scid} "
                                f"VC {vcid}", now)
        if sa.state is not SaState.OPERATIONAL:
            return self._reject(RejectReason.SA_NOT_OPERATIONAL, spi,
                                f"SA {spi} is {sa.state.name}", now)
        plan = self._plan(sa)
        if plan is None:
            return self._reject(RejectReason.KEY_NOT_ACTIVE, spi,
                                f"key {sa.key_id} is not ACTIVE", now)
        if data_end - pos < plan.overhead:
            return self._reject(RejectReason.BAD_LENGTH, spi,
                                f"{data_end - pos} octets cannot hold the {plan.overhead}-octet"
                                " Security Header and Trailer", now)
        # Security Header fields (355.0-B-2 §3.2)
        at = pos + SPI_SIZE
        iv: int | None = None
        arsn: int | None = None
        iv_window = arsn_window = None
        iv_bytes = b""
        if plan.iv_length:
            if plan.iv_full:  # the whole IV travels
                iv_bytes = buf[at:at + plan.iv_length]
                iv = int.from_bytes(iv_bytes, "big")
            else:
                low = int.from_bytes(buf[at:at + plan.iv_tx], "big")
                if plan.iv_counter:
                    iv_window = sa.replay_window("iv")
                    iv = expand(sa.iv, low, plan.iv_tx, plan.iv_length, behind=iv_window.span,
                                ahead=iv_window.ahead)
                else:
                    iv = expand(sa.iv, low, plan.iv_tx, plan.iv_length)
                if iv > plan.iv_max:
                    return self._reject(RejectReason.REPLAY, spi, "IV beyond the counter range",
                                        now)
                iv_bytes = iv.to_bytes(plan.iv_length, "big")
        at += plan.iv_tx
        if plan.arsn_length:
            arsn_window = sa.replay_window("arsn")
            low = int.from_bytes(buf[at:at + plan.arsn_tx], "big")
            arsn = low if plan.arsn_full else expand(
                sa.arsn, low, plan.arsn_tx, plan.arsn_length, behind=arsn_window.span,
                ahead=arsn_window.ahead)
            if arsn > plan.arsn_max:
                return self._reject(RejectReason.REPLAY, spi, "ARSN beyond the counter range",
                                    now)
        at += plan.arsn_tx
        pad = int.from_bytes(buf[at:at + plan.pad], "big") if plan.pad else 0
        hdr_end = at + plan.pad
        mac_start = data_end - plan.mac
        # MAC / decryption (355.0-B-2 §3.5.1)
        plain: bytes | None
        gcm = plan.gcm
        if gcm is not None:  # ciphertext || MAC, as AESGCM takes it
            try:
                plain = gcm.decrypt(iv_bytes, memoryview(buf)[hdr_end:data_end],
                                    plan.aad(buf[:hdr_end]))
            except InvalidTag:
                plain = None
        elif plan.service is ServiceType.AUTHENTICATED_ENCRYPTION:
            plain = plan.suite.open(iv_bytes, buf[hdr_end:mac_start], buf[mac_start:data_end],
                                    plan.aad(buf[:hdr_end]))
        elif plan.service is ServiceType.ENCRYPTION:
            plain = plan.suite.decrypt(iv_bytes, buf[hdr_end:mac_start])
        else:
            body = buf[hdr_end:mac_start]
            plain = body if plan.suite.verify(iv_bytes, plan.aad(buf[:mac_start]),
                                              buf[mac_start:data_end]) else None
        if plain is None:
            return self._reject(RejectReason.BAD_MAC, spi, "MAC does not verify", now)
        # anti-replay (355.0-B-2 §3.5.2)
        if plan.iv_counter and iv_window is None:
            iv_window = sa.replay_window("iv")
        if iv_window is not None and not iv_window.check(iv):  # type: ignore[arg-type]
            return self._reject(RejectReason.REPLAY, spi, _replay_detail("IV", iv, iv_window),
                                now)
        if arsn_window is not None and not arsn_window.check(arsn):  # type: ignore[arg-type]
            return self._reject(RejectReason.REPLAY, spi,
                                _replay_detail("ARSN", arsn, arsn_window), now)
        if pad > len(plain):
            return self._reject(RejectReason.BAD_LENGTH, spi,
                                f"Pad Length {pad} exceeds the {len(plain)}-octet data", now)
        # the frame is accepted: as SaDatabase.commit, with the windows already in hand
        if iv_window is not None:
            iv_window.accept(iv)  # type: ignore[arg-type]
            sa.iv = iv_window.top
        elif iv is not None:
            sa.iv = iv
        if arsn_window is not None:
            arsn_window.accept(arsn)  # type: ignore[arg-type]
            sa.arsn = arsn_window.top
        if pad:
            plain = plain[:len(plain) - pad]
        # restore the clear frame for the next layer
        tail_end = length - fecf
        if self._sets_length:
            head = bytearray(buf[:pos])
            set_frame_length(head, self.channel, length - plan.overhead - pad)
            first = bytes(head)
        else:
            first = buf[:pos]
        out = b"".join((first, plain, buf[data_end:tail_end]))
        if fecf == 2:
            out += crc16_ccitt(out).to_bytes(2, "big")
        elif fecf:
            out += compute_fecf(out, fecf)
        self.counters.accepted += 1
        return FrameAccepted(out, spi, scid, vcid, iv, arsn, now)


def _replay_detail(name: str, value: int | None, window: ReplayWindow) -> str:
    if value is not None and value <= window.top and window.seen(value):
        what = "already accepted" if window.top - value < window.span else "below the window"
        return f"{name} {value:x} {what} (highest accepted {window.top:x})"
    return (f"{name} {value:x} outside the window ({window.top:x} - {window.span}, "
            f"{window.top:x} + {window.ahead}]")
