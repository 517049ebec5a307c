"""AOS Master Channel: packet VCs multiplexed into AOS Transfer Frames and back.

CCSDS 732.0-B-4 §4.2 (Packet Processing and VC Generation with M_PDUs, §4.1.4.2; Master
Channel Multiplexing) and §4.3 (demultiplexing, packet extraction). The M_PDU header's First
Header Pointer uses the TM special values (all ones: no packet starts). VCs named in the
channel's ``ocf_vcids`` carry the caller's OCF (AOS has no OCF flag: the OCF is a managed
parameter per VC). With nothing to send, an idle frame goes out on VC 63 (§4.1.2.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from linkstack.errors import ConfigError
from linkstack.frames.aos import (
    IDLE_VCID,
    VC_FRAME_COUNT_MODULUS,
    AosChannelConfig,
    AosDataUnit,
    AosFrame,
)
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
from linkstack.mux.packet_zone import ExtractorEvent, FhpConvention

_AOS = FhpConvention.for_layer("aos")


class AosMultiplexer:
    """Sending side of one AOS Master Channel for M_PDU (packet) VCs."""

    def __init__(self, scid: int, config: AosChannelConfig, vcids: Iterable[int] = (0,), *,
                 policy: str = "round_robin", priorities: Mapping[int, int] | None = None,
                 weights: Mapping[int, int] | None = None) -> None:
        vcs = list(vcids)
        for v in vcs:
            if config.data_unit(v) is not AosDataUnit.M_PDU:
                raise ConfigError(f"VC {v} does not carry M_PDUs on this channel", key="vcids")
        self.scid = scid
        self.config = config
        self.zones = ZoneMultiplexer(vcs, config.data_field_capacity, _AOS, policy=policy,
                                     priorities=priorities, weights=weights)
        self.vc_frame_counts = dict.fromkeys([*vcs, IDLE_VCID], 0)
        self.frames_sent = 0

    def add_packet(self, vcid: int, packet: bytes, tag: object = None) -> None:
        self.zones.add_packet(vcid, packet, tag)

    def pending_octets(self, vcid: int | None = None) -> int:
        return self.zones.pending_octets(vcid)

    def next_frame(self, *, ocf: bytes | None = None, flush: bool = False) -> OutgoingFrame | None:
        """The next frame (see :meth:`linkstack.mux.tm.TmMultiplexer.next_frame`); ``ocf`` is
        put in frames of the VCs that carry one."""
        cfg = self.config
        picked = self.zones.next_zone(flush=flush)
        tags: tuple[object, ...]
        if picked is None:
            if not flush:
                return None
            vcid, zone_data, fhp, tags, idle = (IDLE_VCID, bytes(cfg.data_field_capacity(
                IDLE_VCID)), None, (), True)
        else:
            key, zone = picked
            vcid = int(key)
            zone_data, fhp, tags = zone.data, zone.first_header_pointer, zone.tags
            idle = zone.idle_octets == len(zone.data)
        if cfg.has_ocf(vcid) and ocf is None:
            raise ConfigError(f"VC {vcid} carries an OCF in every frame", key="ocf")
        count = self.vc_frame_counts[vcid]
        frame = AosFrame(self.scid, vcid, count, zone_data, fhp,
                         insert_zone=bytes(cfg.insert_zone_length),
                         ocf=ocf if cfg.has_ocf(vcid) else None).encode(cfg)
        self.vc_frame_counts[vcid] = (count + 1) % VC_FRAME_COUNT_MODULUS
        self.frames_sent += 1
        return OutgoingFrame(frame, vcid, count, tags, idle)


class AosDemultiplexer(FrameIntake):
    """Receiving side of one AOS Master Channel; bad frames become :class:`FrameRejected`."""

    def __init__(self, scid: int, config: AosChannelConfig, *,
                 track_sequence: bool = True) -> None:
        super().__init__(scid, config, AosFrame.decode, "aos",
                         duplicate_window=DUPLICATE_WINDOW)
        self.zones = ZoneDemultiplexer(_AOS, VC_FRAME_COUNT_MODULUS,
                                       track_sequence=track_sequence)
        self.idle_frames = 0

    def receive_frame(self, buf: bytes
                      ) -> list[ExtractorEvent | OcfReceived | FrameRejected | FrameDuplicate]:
        frame = self.intake(buf)
        if isinstance(frame, FrameRejected | FrameDuplicate):
            return [frame]
        events: list[ExtractorEvent | OcfReceived | FrameRejected | FrameDuplicate] = []
        if frame.ocf is not None:
            events.append(OcfReceived(frame.vcid, frame.ocf))
        if frame.is_idle or frame.first_header_pointer is None:
            self.idle_frames += frame.is_idle
            return events
        events.extend(self.zones.feed(frame.vcid, frame.vc_frame_count,
                                      frame.first_header_pointer, frame.data_field))
        return events
