"""TM Master Channel: virtual channels multiplexed into TM Transfer Frames and back.

CCSDS 132.0-B-3 §4.2 (sending: Virtual Channel Packet Processing, VC Generation, Master
Channel Multiplexing) and §4.3 (receiving: demultiplexing, packet extraction). Packets are
put into per-VC packet zones (:mod:`linkstack.mux.packet_zone`), a :class:`VcScheduler`
chooses the VC of each frame, and every frame gets the Master Channel Frame Count, its VC
Frame Count, the current OCF (a CLCW from FARM-1, 232.1-B-2 §4.2.1) and the FECF. When no VC
has data, an Only Idle Data frame goes out on the idle VC (FHP 0x7FE, §4.1.2.7.6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from linkstack.errors import ConfigError
from linkstack.fast_dataclass import fast_init
from linkstack.frames.tm import FRAME_COUNT_MODULUS, MAX_VCID, TmChannelConfig, TmFrame
from linkstack.mux.channel import (
    DUPLICATE_WINDOW,
    FrameDuplicate,
    FrameIntake,
    FrameRejected,
    OcfReceived,
    OutgoingFrame,
    ZoneDemultiplexer,
    ZoneMultiplexer,
)
from linkstack.mux.packet_zone import ExtractorEvent, FhpConvention, PacketZoneBuilder

_TM = FhpConvention.for_layer("tm")


class TmMultiplexer:
    """Sending side of one TM Master Channel (132.0-B-3 §4.2).

    Args:
        scid: Spacecraft Identifier.
        config: the physical channel's managed parameters (frame length, FECF, OCF).
        vcids: virtual channels carrying packets.
        policy / priorities / weights: see :class:`VcScheduler`.
        idle_vcid: VC of Only Idle Data frames (7 by convention).
    """

    def __init__(
        self,
        scid: int,
        config: TmChannelConfig,
        vcids: Iterable[int] = (0,),
        *,
        policy: str = "round_robin",
        priorities: Mapping[int, int] | None = None,
        weights: Mapping[int, int] | None = None,
        idle_vcid: int = MAX_VCID,
    ) -> None:
        self.scid = scid
        self.config = config
        vcs = list(vcids)
        for v in [*vcs, idle_vcid]:
            if not 0 <= v <= MAX_VCID:
                raise ConfigError(f"TM VCID {v} outside 0..{MAX_VCID}", key="vcids")
        self.capacity = config.data_field_capacity(ocf=config.has_ocf)
        self.zones = ZoneMultiplexer(vcs, lambda _vc: self.capacity, _TM, policy=policy,
                                     priorities=priorities, weights=weights)
        self.idle_vcid = idle_vcid
        self.mc_frame_count = 0
        self.vc_frame_counts = dict.fromkeys([*vcs, idle_vcid], 0)
        self.frames_sent = 0
        self.idle_frames_sent = 0

    def add_packet(self, vcid: int, packet: bytes, tag: object = None) -> None:
        """Queue an encoded Space Packet on ``vcid``."""
        self.zones.add_packet(vcid, packet, tag)

    def pending_octets(self, vcid: int | None = None) -> int:
        return self.zones.pending_octets(vcid)

    def next_frame(self, *, ocf: bytes | None = None, flush: bool = False) -> OutgoingFrame | None:
        """Build the next frame, or ``None`` if no VC has a full frame and ``flush`` is false.

        With ``flush``, a VC holding less than a frame is completed with an idle packet, and
        with no data at all an Only Idle Data frame is returned. ``ocf`` is required when the
        channel carries an OCF.
        """
        if self.config.has_ocf and ocf is None:
            raise ConfigError("this channel carries an OCF in every frame", key="ocf")
        cap = self.capacity
        picked = self.zones.next_zone(flush=flush)
        if picked is None:
            if not flush:
                return None
            vcid = self.idle_vcid
            zone = PacketZoneBuilder(_TM).build(cap, flush=True)
            assert zone is not None
        else:
            vcid, zone = picked
        vc_count = self.vc_frame_counts[vcid]
        frame = TmFrame(
            self.scid, vcid, self.mc_frame_count, vc_count, zone.first_header_pointer,
            zone.data, ocf if self.config.has_ocf else None,
        ).encode(self.config)
        out = OutgoingFrame(frame, vcid, vc_count, zone.tags, zone.idle_octets == cap)
        self.mc_frame_count = (self.mc_frame_count + 1) % FRAME_COUNT_MODULUS
        self.vc_frame_counts[vcid] = (vc_count + 1) % FRAME_COUNT_MODULUS
        self.frames_sent += 1
        self.idle_frames_sent += out.idle
        return out


@fast_init
@dataclass(frozen=True, slots=True)
class MasterChannelGap:
    """The Master Channel Frame Count jumped: ``lost`` frames of any VC never arrived."""

    expected: int
    received: int
    lost: int


DemuxEvent = ExtractorEvent | OcfReceived | FrameRejected | FrameDuplicate | MasterChannelGap


class TmDemultiplexer(FrameIntake):
    """Receiving side of one TM Master Channel (132.0-B-3 §4.3).

    :meth:`receive_frame` never raises on bad input: a frame that fails its FECF or header
    checks becomes a :class:`FrameRejected` event and is counted (the VC frame counts then
    reveal the gap it leaves). Frames of another spacecraft are rejected too.
    """

    def __init__(self, scid: int, config: TmChannelConfig, *, idle_vcid: int = MAX_VCID,
                 track_sequence: bool = True) -> None:
        super().__init__(scid, config, TmFrame.decode, "tm", duplicate_window=DUPLICATE_WINDOW)
        self.idle_vcid = idle_vcid
        self.zones = ZoneDemultiplexer(_TM, FRAME_COUNT_MODULUS, track_sequence=track_sequence)
        self._expected_mc: int | None = None
        self.idle_frames = 0

    def receive_frame(self, buf: bytes) -> list[DemuxEvent]:
        frame = self.intake(buf)
        if isinstance(frame, FrameRejected | FrameDuplicate):
            return [frame]
        events: list[DemuxEvent] = []
        mc = frame.mc_frame_count
        if self._expected_mc is not None and mc != self._expected_mc:
            events.append(MasterChannelGap(self._expected_mc, mc,
                                           (mc - self._expected_mc) % FRAME_COUNT_MODULUS))
        self._expected_mc = (mc + 1) % FRAME_COUNT_MODULUS
        if frame.ocf is not None:
            events.append(OcfReceived(frame.vcid, frame.ocf))
        if frame.is_idle or frame.synchronization_flag:
            self.idle_frames += frame.is_idle
            return events
        events.extend(self.zones.feed(frame.vcid, frame.vc_frame_count,
                                      frame.first_header_pointer, frame.data_field))
        return events
