"""The laser inter-satellite hop: USLP frames, selective-repeat ARQ, Reed-Solomon CADUs.

Both ends are the same :class:`IslEndpoint`. Going out, Space Packets are cut into packet
zones with a First Header Pointer (:mod:`linkstack.mux.packet_zone`, the rule-000 logic of
USLP 732.1-B-2 §4.1.4.2.2), each zone (prefixed by its 2-octet FHP) becomes the data of one
selective-repeat data frame (:mod:`linkstack.arq.sr`), which rides as a user octet stream
(TFDZ construction rule 011, UPID 4, §4.1.4.2) in a variable-length USLP Transfer Frame with a
CRC-16 FECF, sized to fill one Reed-Solomon codeblock exactly; the chain (131.0-B-3) adds RS
parity, randomizes and attaches the ASM. Acknowledgements travel the same way in the other
direction. The receiver hands the in-order SR data to a packet extractor, so a packet may span
any number of frames.

Why not COP-1 here: its 8-bit N(S) caps the window at 127 frames, while a Gbit/s laser link
holds thousands of frames in flight; go-back-N also resends a whole window per loss. SR keeps
the pipe full; ``fec=True`` tells it the link is coded (hybrid ARQ, see :mod:`linkstack.arq.sr`).
Why not fixed-length USLP frames: the standard allows octet streams only on variable-length
VCs (§4.1.4.2.2.4), so the frame is variable-length and filled to the codeblock size.

With SDLS (``tx_sdls`` / ``rx_sdls``, :mod:`linkstack.hops.security`) every frame — SR data
and SR acknowledgements alike — is secured after it is built, its clear frame shorter than the
codeblock by the SA's overhead so that the secured frame fills it, and verified on arrival
before the SR sender or receiver sees it: a forged acknowledgement cannot make the sender
drop frames the far end never received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linkstack.arq.common import Acknowledged, Delivered, Undelivered
from linkstack.arq.params import (
    SR_FEC,
    SR_INITIAL_RTO,
    SR_MAX_RTO,
    SR_MIN_RTO,
    SR_RTO_BACKOFF,
    SR_WINDOW,
)
from linkstack.arq.sr import (
    SrAck,
    SrConfig,
    SrData,
    SrFrameKind,
    SrReceiver,
    SrSender,
    TransmitSrFrame,
    decode_sr_frame,
)
from linkstack.codecs.chain import CodingChain
from linkstack.errors import ConfigError, DecodeError
from linkstack.frames.uslp import (
    TfdzConstructionRule,
    UslpChannelConfig,
    UslpFrame,
    UslpProtocolId,
)
from linkstack.hops.base import Reception, Unit
from linkstack.hops.security import HopSdls, SdlsLayer, clear_frames, sdls_status
from linkstack.mux.packet_zone import (
    FhpConvention,
    PacketExtracted,
    PacketExtractor,
    PacketZoneBuilder,
)

_USLP = FhpConvention.for_layer("uslp")
SR_DATA_OVERHEAD = 7  # SR data frame header (linkstack.arq.sr): flags, seq(32), length(16)
FHP_OCTETS = 2


@dataclass(frozen=True, slots=True)
class IslHopConfig:
    """Managed parameters of the ISL hop (both ends use the same).

    Attributes:
        scid: Spacecraft Identifier in the USLP header.
        vcid: the USLP VC of the SR traffic.
        code: a TM coding chain (fixed codeblock size), e.g. ``tm-rs-255-223-i5``.
        frame_length: USLP frame length; None takes the chain's; needed for ``tm-uncoded``;
            with an RS chain it sets the virtual fill.
        window: SR window (frames in flight).
        initial_rto / min_rto / max_rto / rto_backoff: SR retransmission timer (RFC 6298 style).
        fec: run SR in hybrid-ARQ mode (the link is RS coded).
    """

    scid: int = 0x2A
    vcid: int = 1
    code: str = "tm-rs-255-223-i5"
    frame_length: int | None = None
    window: int = SR_WINDOW
    initial_rto: float = SR_INITIAL_RTO
    min_rto: float = SR_MIN_RTO
    max_rto: float = SR_MAX_RTO
    rto_backoff: float = SR_RTO_BACKOFF
    fec: bool = SR_FEC

    def sr_config(self) -> SrConfig:
        return SrConfig(window=self.window, initial_rto=self.initial_rto, min_rto=self.min_rto,
                        max_rto=self.max_rto, rto_backoff=self.rto_backoff, fec=self.fec)


class IslEndpoint:
    """One end of the ISL hop (SR sender + SR receiver over USLP in CADUs).

    ``tx_sdls`` secures the frames this end sends, ``rx_sdls`` verifies the frames it
    receives (the SAs of the two directions, :mod:`linkstack.hops.security`).
    """

    def __init__(self, config: IslHopConfig, *, name: str = "isl",
                 tx_sdls: HopSdls | None = None, rx_sdls: HopSdls | None = None) -> None:
        self.name = name
        self.config = config
        self.chain = (CodingChain.from_name(config.code) if config.frame_length is None else
                      CodingChain.from_name(config.code, frame_length=config.frame_length))
        if self.chain.frame_length is None:
            raise ConfigError(f"{config.code} has no fixed codeblock", key="code")
        self.frame_length = self.chain.frame_length
        channel = UslpChannelConfig(frame_length=None, fecf_size=2,
                                    max_frame_length=self.frame_length)
        self.tx_sdls: SdlsLayer | None = None
        self.rx_sdls: SdlsLayer | None = None
        if tx_sdls is not None:
            self.tx_sdls = SdlsLayer(tx_sdls, channel, scid=config.scid, vcids=(config.vcid,),
                                     key="tx_sdls")
        if rx_sdls is not None:
            self.rx_sdls = SdlsLayer(rx_sdls, channel, scid=config.scid, vcids=(config.vcid,),
                                     key="rx_sdls")
        self.rx_config = channel
        # the clear frames this end builds: with SDLS, the SA's overhead short of the codeblock
        clear = channel if self.tx_sdls is None else self.tx_sdls.clear
        assert isinstance(clear, UslpChannelConfig)
        self.uslp_config = clear
        self.tfdz_capacity = self.uslp_config.data_field_capacity(
            tfdz_construction_rules=TfdzConstructionRule.OCTET_STREAM)
        self.zone_capacity = self.tfdz_capacity - SR_DATA_OVERHEAD - FHP_OCTETS
        if self.zone_capacity < 8:
            if self.tx_sdls is not None:
                raise ConfigError(f"{self.frame_length}-octet frames are too short once SDLS "
                                  f"adds {self.tx_sdls.overhead} octets", key="tx_sdls")
            raise ConfigError(f"{self.frame_length}-octet frames are too short", key="code")
        self.decoder = self.chain.decoder()
        self.builder = PacketZoneBuilder(_USLP)
        self.extractor = PacketExtractor(config.vcid, _USLP, frame_count_modulus=1 << 62)
        sr = config.sr_config()
        self.tx = SrSender(sr)
        self.rx = SrReceiver(sr)
        self._out: list[Unit] = []
        self._tags: dict[int, tuple[object, ...]] = {}
        self._seq = sr.initial_seq
        self.frames_rejected = 0
        self.undelivered = 0

    # -- sending ---------------------------------------------------------------------------
    def send_packet(self, packet: bytes, tag: object = None, *, now: float) -> None:
        self.builder.add_packet(packet, tag)
        while self.builder.pending_octets:
            zone = self.builder.build(self.zone_capacity, flush=True)
            assert zone is not None
            self._tags[self._seq] = zone.tags
            self._seq += 1
            payload = zone.first_header_pointer.to_bytes(FHP_OCTETS, "big") + zone.data
            self._handle(self.tx.send(payload, zone.tags, now=now), now)

    def poll(self, now: float) -> list[Unit]:
        out, self._out = self._out, []
        return out

    def _handle(self, events: list[Any], now: float) -> list[bytes]:
        packets: list[bytes] = []
        for ev in events:
            if isinstance(ev, TransmitSrFrame):
                self._transmit(ev, now)
            elif isinstance(ev, Delivered):
                data = ev.data
                fhp = int.from_bytes(data[:FHP_OCTETS], "big")
                for e in self.extractor.feed(ev.seq % (1 << 62), fhp, data[FHP_OCTETS:]):
                    if isinstance(e, PacketExtracted):
                        packets.append(e.packet)
            elif isinstance(ev, Acknowledged):
                self._tags.pop(ev.seq, None)
            elif isinstance(ev, Undelivered):  # only on abort(): reported, never silent
                self.undelivered += 1
        return packets

    def _transmit(self, ev: TransmitSrFrame, now: float) -> None:
        cfg = self.config
        tfdz = ev.data + bytes(self.tfdz_capacity - len(ev.data))
        frame = UslpFrame(
            cfg.scid, cfg.vcid, data_field=tfdz,
            tfdz_construction_rules=TfdzConstructionRule.OCTET_STREAM,
            uslp_protocol_id=UslpProtocolId.USER_OCTET_STREAM,
            bypass_sequence_control_flag=True,
        ).encode(self.uslp_config)
        if self.tx_sdls is not None:  # every transmission: a fresh IV / ARSN
            frame = self.tx_sdls.protect(frame, now)
        data = ev.kind is SrFrameKind.DATA
        tags = self._tags.get(ev.seq, ()) if data else ()
        self._out.append(Unit(self.chain.encode_frame(frame), tags,
                              "SR-DATA" if data else "SR-ACK", len(frame), ev.retransmission,
                              self.tx_sdls.overhead if self.tx_sdls else 0))

    # -- receiving -------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> Reception:
        rec = Reception()
        # a frame SDLS rejects goes no further: neither SR data nor an SR ack
        for clear in clear_frames(self.decoder.feed(data), self.rx_sdls, now, rec.notes):
            try:
                frame = UslpFrame.decode(clear, self.rx_config)
                if frame.scid != self.config.scid or frame.vcid != self.config.vcid:
                    raise DecodeError("not this link's SCID/VCID", layer="uslp", field="vcid",
                                      offset=0)
                sr = decode_sr_frame(frame.data_field)
            except DecodeError as err:
                self.frames_rejected += 1
                rec.notes.append(err)
                continue
            if isinstance(sr, SrData):
                before = self.rx.counters.frames_discarded
                rec.packets.extend(self._handle(self.rx.receive(sr, now=now), now))
                rec.accepted = rec.accepted or self.rx.counters.frames_discarded == before
            elif isinstance(sr, SrAck):
                self._handle(self.tx.receive_ack(sr, now=now), now)
        return rec

    # -- timers and status -----------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.tx.next_deadline(), self.rx.next_deadline())
                     if d is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        self._handle(self.tx.on_timer(now), now)
        self._handle(self.rx.on_timer(now), now)

    @property
    def idle(self) -> bool:
        return self.tx.idle and not self.builder.pending_octets

    def status(self) -> dict[str, object]:
        return {
            "sender": self.tx.counters.as_dict(), "receiver": self.rx.counters.as_dict(),
            "in_flight": self.tx.outstanding, "backlog": self.tx.backlog,
            "frames_rejected": self.frames_rejected, "undelivered": self.undelivered,
            **sdls_status(self.tx_sdls, self.rx_sdls),
        }
