"""The ground ↔ spacecraft RF hop: COP-1 over TC (or USLP) on the uplink, TM (or USLP) with
the CLCW on the downlink.

Uplink (ground → spacecraft): each Space Packet rides in one TC Transfer Frame (232.0-B-4
§4.1) — or one USLP Transfer Frame (732.1-B-2, ``uplink_frame="uslp"``; see
:mod:`linkstack.hops.cop1_frames`) — of Type-AD, sequence-controlled by FOP-1 (232.1-B-2 §5),
encoded into a CLTU with the TC randomizer and BCH(63,56) (231.0-B-3). On board: CLTU
decoding, frame validation, FARM-1 (232.1-B-2 §6), packets delivered.

Downlink (spacecraft → ground): packets multiplexed into fixed-length TM Transfer Frames
(132.0-B-3) — or USLP Transfer Frames (``downlink_frame="uslp"``; see
:mod:`linkstack.hops.clcw_downlink`) — on one VC, every frame carrying FARM-1's current CLCW
in its OCF (232.0-B-4 §4.2.1), Reed-Solomon coded, randomized and ASM-prefixed into CADUs
(131.0-B-3). The ground decodes, demultiplexes, and feeds each CLCW to FOP-1.

Security (optional, :mod:`linkstack.hops.security`): with an SA per direction, every uplink
frame (AD, BD and BC) is secured after FOP-1 builds it — once per transmission — and verified
on board before FARM-1 sees it; every downlink frame (idle frames too) is secured after the
multiplexer builds it and verified on the ground before the demultiplexer reads its packets
or FOP-1 its CLCW. A rejected frame is counted by reason in ``status()["sdls_rejected"]``.

Ground operations (what the operator of a COP-1 link does, as in
:mod:`linkstack.sims.arq_loopback`): the AD service is initiated at start; after an alert
(transmission limit, T1, lockout, synchronisation), the operator waits ``recovery_wait``
seconds for a fresh CLCW, sorts the frames FOP-1 gave up into delivered (N(S) < N(R)) and not,
puts the latter back at the head of the queue, and re-initiates the AD service — with Unlock
(after Set V(S) := N(R)) if FARM-1 is in Lockout, otherwise with Set V(R) := N(R). No packet is
lost or delivered twice; the alerts are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from linkstack.arq.common import Acknowledged, Delivered, FrameType, TransmitFrame
from linkstack.arq.farm1 import Farm1
from linkstack.arq.fop1 import Fop1, Fop1Event, FopState
from linkstack.arq.operator import Cop1Operator
from linkstack.arq.params import (
    BC_HOLD,
    CLCW_INTERVAL,
    COP1_T1_INITIAL,
    COP1_TRANSMISSION_LIMIT,
    COP1_WINDOW_WIDTH,
    RECOVERY_WAIT,
    farm_window_width,
)
from linkstack.codecs.chain import CodingChain
from linkstack.errors import ConfigError
from linkstack.frames.clcw import Clcw
from linkstack.hops.base import Reception, Unit, split_packets
from linkstack.hops.clcw_downlink import DOWNLINK_FRAMES, ClcwDownlink, clcw_downlink
from linkstack.hops.cop1_frames import UPLINK_FRAMES, Cop1Frames, cop1_frames
from linkstack.hops.security import HopSdls, SdlsLayer, clear_frames, sdls_status
from linkstack.mux.channel import FrameDuplicate, FrameRejected, OcfReceived
from linkstack.mux.packet_zone import PacketExtracted
from linkstack.sdls.ep import EP_APID, EpService
from linkstack.sdls.layout import ChannelConfig
from linkstack.spp.packet import PRIMARY_HEADER_SIZE, packet_apid


@dataclass(frozen=True, slots=True)
class RfHopConfig:
    """Managed parameters of the RF hop (both ends use the same); the COP-1 defaults are
    :mod:`linkstack.arq.params`'s.

    Attributes:
        scid: Spacecraft Identifier (TC and TM).
        vcid: the VC carrying packets (TC VC for COP-1, TM VC for the downlink).
        uplink_frame: ``"tc"`` (TC Transfer Frames) or ``"uslp"`` (USLP Transfer Frames,
            the VC Frame Count as N(S)); both in CLTUs.
        downlink_frame: ``"tm"`` or ``"uslp"``: the frames that bring packets and the
            CLCW (in their OCF) down; both in CADUs.
        uplink_code / downlink_code: coding chain names (:mod:`linkstack.codecs.chain`).
        downlink_frame_length: TM frame length; None takes the chain's (an RS chain's
            I·(k−Q)); needed for ``tm-uncoded``; with an RS chain it sets the virtual fill.
        uplink_max_frame_length: Maximum uplink Transfer Frame Length (TC ≤ 1024,
            232.0-B-4 §4.1.2.7; USLP ≤ 65536, 732.1-B-2 §4.1.2.7).
        window: FOP-1 sliding window width K (232.1-B-2 §5.1.4).
        farm_window: FARM-1 sliding window width W, even, ≥ 2K (§6.1.8.2).
        t1: FOP-1 Timer_Initial_Value, seconds (set it above one round trip).
        transmission_limit: FOP-1 Transmission_Limit.
        clcw_interval: the spacecraft sends a frame with a fresh CLCW at least this often.
        recovery_wait: after an alert, how long the operator waits for a CLCW to recover.
            On links that reorder or duplicate frames, set it to at least twice (one-way
            delay + worst extra lag), so that the CLCW it recovers from was generated after
            every frame sent before the alert had landed.
        bc_hold: after sending a control (BC) frame, no new AD frame for this long. COP-1
            assumes a link that neither reorders nor duplicates (231.0-B-3 delivers CLTUs in
            order): a late copy of a Set V(R) landing after newer AD frames moves V(R) under
            the operator, and packets are skipped or taken twice. Set it to the link's worst
            extra lag (0: off).
        uplink_sdls_overhead / downlink_sdls_overhead: octets SDLS adds to every frame of
            that direction (the SA's Security Header and Trailer, 355.0-B-2), 0 without SDLS.
            COP-1 and the multiplexer build frames that much shorter than
            ``uplink_max_frame_length`` / the downlink frame length, so that the secured
            frames fit the channel; the endpoints then need the SA (``uplink_sdls``,
            ``downlink_sdls``) and check that its overhead is this.
    """

    scid: int = 0x2A
    vcid: int = 0
    uplink_frame: str = "tc"
    downlink_frame: str = "tm"
    uplink_code: str = "tc-bch-rand"
    downlink_code: str = "tm-rs-255-223-i1"
    downlink_frame_length: int | None = None
    uplink_max_frame_length: int = 1024
    window: int = COP1_WINDOW_WIDTH
    farm_window: int = farm_window_width(COP1_WINDOW_WIDTH)
    t1: float = COP1_T1_INITIAL
    transmission_limit: int = COP1_TRANSMISSION_LIMIT
    clcw_interval: float = CLCW_INTERVAL
    recovery_wait: float = RECOVERY_WAIT
    bc_hold: float = BC_HOLD
    uplink_sdls_overhead: int = 0
    downlink_sdls_overhead: int = 0

    def __post_init__(self) -> None:
        if self.farm_window % 2 or not 2 <= self.farm_window <= 254:
            raise ConfigError(f"{self.farm_window}: W is even, 2..254", key="farm_window")
        if self.window > self.farm_window // 2:
            raise ConfigError(f"K={self.window} exceeds FARM-1's positive window "
                              f"W/2={self.farm_window // 2}", key="window")
        for key in ("t1", "clcw_interval", "recovery_wait"):
            if not getattr(self, key) > 0:
                raise ConfigError("must be > 0", key=key)
        if not self.bc_hold >= 0:
            raise ConfigError("must be >= 0", key="bc_hold")
        for key in ("uplink_sdls_overhead", "downlink_sdls_overhead"):
            if getattr(self, key) < 0:
                raise ConfigError("must be >= 0", key=key)
        if self.uplink_frame not in UPLINK_FRAMES:
            raise ConfigError(f"{self.uplink_frame!r}: COP-1 runs over "
                              f"{' or '.join(UPLINK_FRAMES)} frames", key="uplink_frame")
        try:
            self.uplink_channel()
        except ConfigError as exc:
            raise ConfigError(exc.reason, key="uplink_max_frame_length") from None
        if self.uplink_sdls_overhead:
            try:
                if self.uplink_frames().capacity(self.vcid) < PRIMARY_HEADER_SIZE + 1:
                    raise ConfigError("no room for a Space Packet", key="capacity")
            except ConfigError as exc:
                raise ConfigError(f"{exc.reason} once SDLS adds {self.uplink_sdls_overhead} "
                                  "octets", key="uplink_sdls_overhead") from None
        if self.downlink_frame not in DOWNLINK_FRAMES:
            raise ConfigError(f"{self.downlink_frame!r}: the CLCW comes down in "
                              f"{' or '.join(DOWNLINK_FRAMES)} frames", key="downlink_frame")

    def uplink_frames(self) -> Cop1Frames:
        """Encoder/decoder of the uplink frames (:mod:`linkstack.hops.cop1_frames`): the
        clear frames, ``uplink_sdls_overhead`` octets short of the channel's maximum."""
        return cop1_frames(self.uplink_frame, self.scid,
                           self.uplink_max_frame_length - self.uplink_sdls_overhead)

    def uplink_channel(self) -> ChannelConfig:
        """The uplink physical channel's managed parameters (the frames as transmitted)."""
        frames = cop1_frames(self.uplink_frame, self.scid, self.uplink_max_frame_length)
        return frames.config

    def uplink_chain(self) -> CodingChain:
        """The uplink CLTU chain; its receiver takes CLTUs as long as the longest frame."""
        if CodingChain.from_name(self.uplink_code).kind != "tc":
            raise ConfigError(f"{self.uplink_code}: the uplink needs a CLTU chain (tc-bch...)",
                              key="uplink_code")
        return CodingChain.from_name(
            self.uplink_code, max_codeblocks=max(147, -(-self.uplink_max_frame_length // 7)))

    @property
    def max_packet_length(self) -> int:
        """Largest Space Packet the uplink carries in one frame."""
        return self.uplink_frames().capacity(self.vcid)

    def downlink_chain(self) -> CodingChain:
        """The downlink coding chain, with the configured frame length if any."""
        try:
            if self.downlink_frame_length is None:
                return CodingChain.from_name(self.downlink_code)
            return CodingChain.from_name(self.downlink_code,
                                         frame_length=self.downlink_frame_length)
        except ConfigError as exc:
            key = "downlink_frame_length" if exc.key == "frame_length" else "downlink_code"
            raise ConfigError(exc.reason, key=key) from None

    def downlink_frames(self, chain: CodingChain, *, secured: bool = False) -> ClcwDownlink:
        """Multiplexer and demultiplexer of the downlink frames (one VC, CLCW in the OCF):
        the clear frames, ``downlink_sdls_overhead`` octets shorter than the chain's — or,
        with ``secured``, the frames as transmitted."""
        if chain.frame_length is None:
            raise ConfigError(f"{self.downlink_code} is not a TM (CADU) chain",
                              key="downlink_code")
        try:
            down = clcw_downlink(self.downlink_frame, self.scid, self.vcid, chain.frame_length)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key="downlink_frame_length") from None
        if secured or not self.downlink_sdls_overhead:
            return down
        try:
            return clcw_downlink(self.downlink_frame, self.scid, self.vcid,
                                 chain.frame_length - self.downlink_sdls_overhead)
        except ConfigError as exc:
            raise ConfigError(f"{exc.reason} once SDLS adds {self.downlink_sdls_overhead} "
                              "octets", key="downlink_sdls_overhead") from None


def _sdls_layer(sdls: HopSdls | None, overhead: int, channel: ChannelConfig, scid: int,
                vcids: tuple[int, ...], key: str) -> SdlsLayer | None:
    """The SDLS layer of one direction, checked against the hop configuration's overhead."""
    if sdls is None:
        if overhead:
            raise ConfigError(f"the hop leaves {overhead} octets per frame for SDLS, but no SA "
                              "is given", key=key)
        return None
    layer = SdlsLayer(sdls, channel, scid=scid, vcids=vcids, key=key)
    if layer.overhead != overhead:
        raise ConfigError(f"SA {layer.spi} adds {layer.overhead} octets per frame, the hop "
                          f"configuration says {overhead} ({key}_overhead)", key=key)
    return layer


class RfGround:
    """Ground end of the RF hop: FOP-1 + TC/CLTU out, CADU/TM + CLCW in.

    ``uplink_sdls`` secures the uplink frames, ``downlink_sdls`` verifies the downlink
    frames (:mod:`linkstack.hops.security`); each is needed iff the configuration's overhead
    for that direction is not 0.
    """

    name = "rf-ground"

    def __init__(self, config: RfHopConfig, *, now: float = 0.0,
                 uplink_sdls: HopSdls | None = None,
                 downlink_sdls: HopSdls | None = None) -> None:
        self.config = config
        self.frames = config.uplink_frames()
        self._max_packet = config.max_packet_length  # read once: the property builds frames
        self.uplink = config.uplink_chain()
        downlink = config.downlink_chain()
        self.decoder = downlink.decoder()
        self.demux = config.downlink_frames(downlink)
        self.uplink_sdls = _sdls_layer(uplink_sdls, config.uplink_sdls_overhead,
                                       config.uplink_channel(), config.scid, (config.vcid,),
                                       "uplink_sdls")
        self.downlink_sdls = _sdls_layer(
            downlink_sdls, config.downlink_sdls_overhead,
            config.downlink_frames(downlink, secured=True).config, config.scid,
            self.demux.vcids, "downlink_sdls")
        self.fop = Fop1(config.vcid, window_width=config.window, t1_initial=config.t1,
                        transmission_limit=config.transmission_limit, timeout_type=0)
        self._sdus: dict[int, tuple[bytes, object]] = {}
        self.operator: Cop1Operator[int] = Cop1Operator(self.fop, lambda h: self._sdus[h][0])
        self._out: list[Unit] = []
        self._handles = 0
        self._recover_after: float | None = None  # after an Alert: recover on a CLCW from then
        self._hold_until = -math.inf  # no new AD frame before (after a BC frame, bc_hold)
        self.units_sent = 0
        self._handle(self.fop.initiate_ad(now=now), now)

    # -- sending ---------------------------------------------------------------------------
    def send_packet(self, packet: bytes, tag: object = None, *, now: float) -> None:
        if len(packet) > self._max_packet:
            raise ConfigError(
                f"a {len(packet)}-octet packet does not fit one "
                f"{self.frames.layer.upper()} frame "
                f"({self._max_packet} octets)", key="packet")
        self._handles += 1
        self._sdus[self._handles] = (bytes(packet), tag)
        self.operator.offer(self._handles)
        self._feed(now)

    def poll(self, now: float) -> list[Unit]:
        self._feed(now)
        out, self._out = self._out, []
        self.units_sent += len(out)
        return out

    def _feed(self, now: float) -> None:
        self.operator.feed(now, lambda events: self._handle(events, now),
                           lambda: self._recover_after is None and now >= self._hold_until)

    def _handle(self, events: list[Fop1Event], now: float) -> None:
        for ev in events:
            if isinstance(ev, TransmitFrame):
                self._transmit(ev, now)
                if ev.frame_type is FrameType.BC and self.config.bc_hold > 0:
                    self._hold_until = now + self.config.bc_hold
            elif isinstance(ev, Acknowledged):
                self._sdus.pop(ev.handle, None)
            elif self.operator.absorb(ev):  # an Alert: recover once recovery_wait has passed
                self._recover_after = now + self.config.recovery_wait

    def _transmit(self, ev: TransmitFrame, now: float) -> None:
        ft = ev.frame_type
        frame = self.frames.encode(ev.vcid, ft, ev.ns, ev.data)
        if self.uplink_sdls is not None:  # every transmission: a fresh IV / ARSN
            frame = self.uplink_sdls.protect(frame, now)
        sdu = self._sdus.get(ev.handle) if ft is not FrameType.BC else None
        tags = (sdu[1],) if sdu is not None and sdu[1] is not None else ()
        self._out.append(Unit(self.uplink.encode_frame(frame), tags, ft.name, len(frame),
                              ev.retransmission,
                              self.uplink_sdls.overhead if self.uplink_sdls else 0))

    # -- receiving -------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> Reception:
        rec = Reception()
        # a frame SDLS rejects goes no further: nothing of it, not even the CLCW
        for frame in clear_frames(self.decoder.feed(data), self.downlink_sdls, now, rec.notes):
            good = True
            for e in self.demux.receive_frame(frame):
                if isinstance(e, PacketExtracted):
                    rec.packets.append(e.packet)
                elif isinstance(e, OcfReceived):
                    clcw = Clcw.decode(e.ocf)
                    self._handle(self.fop.on_clcw(clcw, now=now), now)
                    self._maybe_recover(clcw, now)
                else:
                    good = good and not isinstance(e, FrameRejected | FrameDuplicate)
                    rec.notes.append(e)
            rec.accepted = rec.accepted or good
        self._feed(now)
        return rec

    def _maybe_recover(self, clcw: Clcw, now: float) -> None:
        if (self._recover_after is None or now < self._recover_after
                or self.fop.state is not FopState.S6):
            return
        delivered, events = self.operator.recover(clcw, now)
        for handle in delivered:
            self._sdus.pop(handle, None)  # FARM-1 has it: the CLCW says so
        self._recover_after = None
        self._handle(events, now)

    # -- timers and status -----------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadline = self.fop.next_deadline()
        if self.operator.backlog and self._hold_until > -math.inf:
            deadline = self._hold_until if deadline is None else min(deadline, self._hold_until)
        return deadline

    def on_timer(self, now: float) -> None:
        if now >= self._hold_until:
            self._hold_until = -math.inf
        self._handle(self.fop.on_timer(now), now)
        self._feed(now)

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing unacknowledged."""
        return not self.operator.backlog and not self._sdus

    def status(self) -> dict[str, object]:
        return {
            "cop1_state": self.fop.state.name, "vs": self.fop.vs, "nnr": self.fop.nnr,
            "outstanding": self.fop.outstanding, "backlog": len(self.operator.backlog),
            "units_sent": self.units_sent, "alerts": dict(self.operator.alerts),
            "recoveries": self.operator.recoveries, "frames_received": self.demux.demux.frames,
            "frames_rejected": self.demux.demux.rejected,
            "frames_duplicate": self.demux.demux.duplicates,
            "counters": self.fop.counters.as_dict(),
            **sdls_status(self.uplink_sdls, self.downlink_sdls),
        }


class RfSpace:
    """Spacecraft end of the RF hop: CLTU/TC + FARM-1 in, TM + CLCW in the OCF out.

    ``uplink_sdls`` verifies the uplink frames before FARM-1, ``downlink_sdls`` secures the
    downlink frames (:mod:`linkstack.hops.security`).
    """

    name = "rf-space"

    def __init__(self, config: RfHopConfig, *, now: float = 0.0,
                 uplink_sdls: HopSdls | None = None,
                 downlink_sdls: HopSdls | None = None) -> None:
        self.config = config
        self.frames = config.uplink_frames()
        self.decoder = config.uplink_chain().decoder()
        self.downlink = config.downlink_chain()
        self.mux = config.downlink_frames(self.downlink)
        self.uplink_sdls = _sdls_layer(uplink_sdls, config.uplink_sdls_overhead,
                                       config.uplink_channel(), config.scid, (config.vcid,),
                                       "uplink_sdls")
        self.downlink_sdls = _sdls_layer(
            downlink_sdls, config.downlink_sdls_overhead,
            config.downlink_frames(self.downlink, secured=True).config, config.scid,
            self.mux.vcids, "downlink_sdls")
        self.farm = Farm1(config.vcid, window_width=config.farm_window)
        # SA management commands (355.1-B-1) from the ground act on this end's SAs; they are
        # executed only if they came in an authenticated frame (linkstack.sdls.ep)
        self.ep = EpService([h.sadb for h in (uplink_sdls, downlink_sdls) if h is not None])
        self._clcw_due = False
        self._next_clcw = now
        self.units_sent = 0

    def send_packet(self, packet: bytes, tag: object = None, *, now: float) -> None:
        if len(packet) < PRIMARY_HEADER_SIZE + 1:
            raise ConfigError("not a Space Packet", key="packet")
        self.mux.add_packet(packet, tag)

    def receive(self, data: bytes, now: float) -> Reception:
        rec = Reception()
        cfg = self.config
        # a frame SDLS rejects never reaches FARM-1
        for clear in clear_frames(self.decoder.feed(data), self.uplink_sdls, now, rec.notes):
            frame = self.frames.intake(clear)
            if isinstance(frame, FrameRejected):
                rec.notes.append(frame.error)
                continue
            if frame.vcid != cfg.vcid:
                rec.notes.append(f"frame for VC {frame.vcid} ignored")
                continue
            via = self.uplink_sdls.last_spi if self.uplink_sdls is not None else None
            for e in self.farm.receive(frame.frame_type, frame.ns, frame.data):
                if isinstance(e, Delivered):
                    for packet in split_packets(e.data):
                        if packet_apid(packet) == EP_APID:  # SA management: executed here
                            reply = self.ep.handle(packet, via)
                            if reply is not None:
                                self.mux.add_packet(reply)
                        else:
                            rec.packets.append(packet)
                    rec.accepted = True
                else:
                    rec.notes.append(e)
            self._clcw_due = True
        return rec

    def poll(self, now: float) -> list[Unit]:
        ocf = self.farm.clcw().encode()
        units = []
        while self.mux.pending_octets():
            units.append(self._cadu(self.mux.next_frame(ocf), now))
        if not units and (self._clcw_due or now >= self._next_clcw):
            units.append(self._cadu(self.mux.next_frame(ocf), now))
        if units:
            self._clcw_due = False
            self._next_clcw = now + self.config.clcw_interval
            self.units_sent += len(units)
        return units

    def _cadu(self, frame: Any, now: float) -> Unit:
        kind = self.mux.layer.upper()
        data = frame.data
        if self.downlink_sdls is not None:
            data = self.downlink_sdls.protect(data, now)
        return Unit(self.downlink.encode_frame(data), frame.tags,
                    f"{kind}-IDLE" if frame.idle else kind, len(data),
                    sdls_octets=self.downlink_sdls.overhead if self.downlink_sdls else 0)

    def next_deadline(self) -> float | None:
        return self._next_clcw

    def on_timer(self, now: float) -> None:
        """The periodic CLCW report comes out of the next :meth:`poll`."""

    def status(self) -> dict[str, object]:
        clcw = self.farm.clcw()
        return {
            "farm1_state": self.farm.state.name,
            "vr": clcw.report_value, "lockout": clcw.lockout, "wait": clcw.wait,
            "retransmit": clcw.retransmit, "units_sent": self.units_sent,
            "frames_rejected": self.frames.rejected, "frames_sent": self.mux.frames_sent,
            **sdls_status(self.downlink_sdls, self.uplink_sdls),
            **({"sdls_ep": dict(self.ep.counters)} if self.ep.counters else {}),
        }
