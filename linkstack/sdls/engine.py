"""The SDLS engine: ApplySecurity and ProcessSecurity (CCSDS 355.0-B-2 §3.4, §3.5).

Sans-IO, like every engine of the stack: :meth:`SdlsEngine.apply` takes a clear frame (and
``now``) and returns the secured frame; :meth:`SdlsEngine.process` takes received octets and
returns a :class:`FrameAccepted` (the clear frame restored for the next layer) or a
:class:`FrameRejected` with a :class:`RejectReason`. ``process`` never raises on its input
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
anti-replay window (355.0-B-2 §3.5.2, positive window as CryptoLib); Pad Length. The SA's
last accepted IV/ARSN only moves after all of these pass. Counters per reason are kept in
:attr:`SdlsEngine.counters`.

The header/trailer placement, AAD and checking order match NASA CryptoLib's unit-test
frames (see tests/test_sdls_vectors.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic

from linkstack.codecs.crc import compute_fecf, crc16_ccitt, crc32_proximity1
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError
from linkstack.sdls.errors import SaStateError
from linkstack.sdls.header import SPI_SIZE, read_spi
from linkstack.sdls.keys import Key
from linkstack.sdls.layout import (
    C,
    clear_channel,
    frame_extent,
    frame_type_of,
    locate,
    peek_channel,
    set_frame_length,
)
from linkstack.sdls.sa import SaDatabase, SaState, SecurityAssociation, expand, in_window
from linkstack.sdls.services import CipherSuite, ServiceType

__all__ = [
    "FrameAccepted",
    "FrameRejected",
    "ProcessResult",
    "RejectReason",
    "SdlsCounters",
    "SdlsEngine",
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


@dataclass(frozen=True, slots=True)
class FrameAccepted:
    """A frame that passed every check; ``frame`` is the clear frame for the next layer.

    ``iv`` and ``arsn`` are the full (expanded) values of the frame, None if the SA has no
    such field.
    """

    frame: bytes
    spi: int
    scid: int
    vcid: int
    iv: int | None
    arsn: int | None
    time: float


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame that failed a check; it goes no further."""

    reason: RejectReason
    spi: int | None
    detail: str
    time: float


ProcessResult = FrameAccepted | FrameRejected


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
        self._suites: dict[int, tuple[Key, CipherSuite]] = {}
        self._clear: dict[int, C] = {}

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

    def _suite(self, sa: SecurityAssociation, key: Key) -> CipherSuite:
        cached = self._suites.get(sa.spi)
        if cached is not None and cached[0] is key and cached[1].algorithm is sa.algorithm:
            return cached[1]
        suite = CipherSuite(sa.algorithm, key.secret(), sa.mac_length)
        self._suites[sa.spi] = (key, suite)
        return suite

    @staticmethod
    def _iv_bytes(sa: SecurityAssociation, iv: int) -> bytes:
        return iv.to_bytes(sa.iv_length, "big") if sa.iv_length else b""

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
        buf = bytes(frame)
        try:
            scid, vcid = peek_channel(buf, self.channel)
        except DecodeError as exc:
            raise EncodeError(exc.reason, layer=exc.layer, field=exc.field) from None
        ft = self.frame_type
        sa = self.sadb.get(spi) if spi is not None else self.sadb.operational_sa(ft, scid, vcid)
        where = f"{ft.value.upper()} SCID {scid} VC {vcid}"
        if sa is None:
            raise SaStateError(f"no {'SA ' + str(spi) if spi is not None else 'operational SA'}"
                               f" for {where}", procedure="apply", spi=spi)
        if sa.state is not SaState.OPERATIONAL:
            raise SaStateError("SA is not OPERATIONAL", procedure="apply", spi=sa.spi,
                               state=sa.state.name)
        if not sa.serves(ft, scid, vcid):
            raise SaStateError(f"SA does not serve {where}", procedure="apply", spi=sa.spi,
                               state=sa.state.name)
        key = self.sadb.active_key(sa)
        if key is None:
            raise SaStateError(f"key {sa.key_id} is not ACTIVE", procedure="apply", spi=sa.spi,
                               state=sa.state.name)
        try:
            geo = locate(buf, self._clear_config(sa.overhead))
        except DecodeError as exc:
            raise EncodeError(f"{exc.reason} (the clear frame for SA {sa.spi})",
                              layer=exc.layer, field=exc.field) from None
        iv, arsn = self.sadb.next_sequence(sa)
        iv_bytes = self._iv_bytes(sa, iv)
        sec = sa.spi.to_bytes(SPI_SIZE, "big")
        if sa.iv_tx:
            sec += iv_bytes[-sa.iv_tx:]
        if sa.arsn_tx:
            sec += arsn.to_bytes(sa.arsn_length, "big")[-sa.arsn_tx:]
        sec += bytes(sa.pad_length_field_length)  # no fill: every algorithm is a stream/MAC
        head = bytearray(buf[:geo.data_start])
        set_frame_length(head, self.channel, geo.length + sa.overhead)
        prefix = bytes(head) + sec
        data = buf[geo.data_start:geo.data_end]
        suite = self._suite(sa, key)
        if sa.service is ServiceType.AUTHENTICATED_ENCRYPTION:
            body, mac = suite.seal(iv_bytes, data, sa.masked(prefix))
        elif sa.service is ServiceType.ENCRYPTION:
            body, mac = suite.encrypt(iv_bytes, data), b""
        else:
            body = data
            mac = suite.mac(iv_bytes, sa.masked(prefix + data))
        out = prefix + body + mac + buf[geo.data_end:geo.length - geo.fecf_size]
        if geo.fecf_size:
            out += compute_fecf(out, geo.fecf_size)
        self.counters.applied += 1
        return out

    # -- ProcessSecurity (355.0-B-2 §3.5) -------------------------------------------------

    def _reject(self, reason: RejectReason, spi: int | None, detail: str,
                now: float) -> FrameRejected:
        self.counters.rejected[reason] += 1
        log.debug("SDLS reject %s (SPI %s): %s", reason.value, spi, detail)
        return FrameRejected(reason, spi, detail, now)

    def process(self, frame: bytes, now: float = 0.0) -> ProcessResult:
        """Verify, decrypt and strip one received frame; never raises on its content."""
        buf = bytes(frame)
        try:
            length, fecf = frame_extent(buf, self.channel)
        except DecodeError as exc:
            return self._reject(RejectReason.BAD_LENGTH, None, str(exc), now)
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
        pos = geo.data_start
        if geo.data_end - pos < SPI_SIZE:
            return self._reject(RejectReason.BAD_LENGTH, None, "no room for the SPI", now)
        spi = read_spi(buf, pos)
        sa = self.sadb.get(spi)
        if sa is None:
            return self._reject(RejectReason.UNKNOWN_SPI, spi, f"no SA {spi}", now)
        ft = self.frame_type
        if not sa.serves(ft, geo.scid, geo.vcid):
            return self._reject(RejectReason.WRONG_CHANNEL, spi,
                                f"SA {spi} does not serve {ft.value.upper()} SCID {geo.scid} "
                                f"VC {geo.vcid}", now)
        if sa.state is not SaState.OPERATIONAL:
            return self._reject(RejectReason.SA_NOT_OPERATIONAL, spi,
                                f"SA {spi} is {sa.state.name}", now)
        key = self.sadb.active_key(sa)
        if key is None:
            return self._reject(RejectReason.KEY_NOT_ACTIVE, spi,
                                f"key {sa.key_id} is not ACTIVE", now)
        if geo.data_end - pos < sa.overhead:
            return self._reject(RejectReason.BAD_LENGTH, spi,
                                f"{geo.data_end - pos} octets cannot hold the {sa.overhead}-octet"
                                " Security Header and Trailer", now)
        # Security Header fields (355.0-B-2 §3.2)
        at = pos + SPI_SIZE
        iv: int | None = None
        arsn: int | None = None
        if sa.iv_length:
            iv = expand(sa.iv, int.from_bytes(buf[at:at + sa.iv_tx], "big"), sa.iv_tx,
                        sa.iv_length)
            if iv > sa.iv_max:
                return self._reject(RejectReason.REPLAY, spi, "IV beyond the counter range", now)
        at += sa.iv_tx
        if sa.arsn_length:
            arsn = expand(sa.arsn, int.from_bytes(buf[at:at + sa.arsn_tx], "big"), sa.arsn_tx,
                          sa.arsn_length)
            if arsn > sa.arsn_max:
                return self._reject(RejectReason.REPLAY, spi, "ARSN beyond the counter range",
                                    now)
        at += sa.arsn_tx
        pad = int.from_bytes(buf[at:at + sa.pad_length_field_length], "big")
        hdr_end = at + sa.pad_length_field_length
        mac_start = geo.data_end - sa.mac_length
        iv_bytes = self._iv_bytes(sa, iv) if iv is not None else b""
        suite = self._suite(sa, key)
        # MAC / decryption (355.0-B-2 §3.5.1)
        body = buf[hdr_end:mac_start]
        plain: bytes | None
        if sa.service is ServiceType.AUTHENTICATED_ENCRYPTION:
            plain = suite.open(iv_bytes, body, buf[mac_start:geo.data_end],
                               sa.masked(buf[:hdr_end]))
        elif sa.service is ServiceType.ENCRYPTION:
            plain = suite.decrypt(iv_bytes, body)
        else:
            plain = body if suite.verify(iv_bytes, sa.masked(buf[:mac_start]),
                                         buf[mac_start:geo.data_end]) else None
        if plain is None:
            return self._reject(RejectReason.BAD_MAC, spi, "MAC does not verify", now)
        # anti-replay (355.0-B-2 §3.5.2)
        if iv is not None and sa.iv_is_counter and not in_window(sa.iv, iv, sa.arsn_window):
            return self._reject(RejectReason.REPLAY, spi,
                                f"IV {iv:x} outside the window ({sa.iv:x}, +{sa.arsn_window}]",
                                now)
        if arsn is not None and not in_window(sa.arsn, arsn, sa.arsn_window):
            return self._reject(RejectReason.REPLAY, spi,
                                f"ARSN {arsn} outside the window ({sa.arsn}, "
                                f"+{sa.arsn_window}]", now)
        if pad > len(plain):
            return self._reject(RejectReason.BAD_LENGTH, spi,
                                f"Pad Length {pad} exceeds the {len(plain)}-octet data", now)
        self.sadb.commit(sa, iv, arsn)
        if pad:
            plain = plain[:len(plain) - pad]
        # restore the clear frame for the next layer
        head = bytearray(buf[:pos])
        tail = buf[geo.data_end:geo.length - geo.fecf_size]
        set_frame_length(head, self.channel, pos + len(plain) + len(tail) + geo.fecf_size)
        out = bytes(head) + plain + tail
        if geo.fecf_size:
            out += compute_fecf(out, geo.fecf_size)
        self.counters.accepted += 1
        return FrameAccepted(out, spi, geo.scid, geo.vcid, iv, arsn, now)
