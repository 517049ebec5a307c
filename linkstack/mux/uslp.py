"""USLP Master Channel: packets on (VC, MAP) channels in fixed-length USLP frames and back.

CCSDS 732.1-B-2 §4.2: the MAP Packet service puts Space Packets into the TFDZ with TFDZ
construction rule 000 ("packets spanning multiple frames", §4.1.4.2.2.2), the First Header
Pointer in the TFDF header (all ones: no packet starts in this TFDZ), on fixed-length frames
(rule 000 is defined for fixed-length TFDZs). MAP Multiplexing and VC Multiplexing
(§4.2.4–4.2.6) are done by one scheduler over the ``(vcid, map_id)`` channels; each VC keeps its
VC Frame Count (``vc_frame_count_length`` octets), shared by its MAPs, and the receiver uses
it to find lost frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from linkstack.errors import ConfigError
from linkstack.frames.uslp import (
    TfdzConstructionRule,
    UslpChannelConfig,
    UslpFrame,
    UslpProtocolId,
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

_USLP = FhpConvention.for_layer("uslp")


class UslpMultiplexer:
    """Sending side: packets on ``(vcid, map_id)`` channels into fixed-length USLP frames.

    ``vc_frame_count_length`` (1..7 octets) sets the VC Frame Count field and its modulus.
    With ``ocf``, every frame carries the OCF passed to :meth:`next_frame`.
    """

    def __init__(self, scid: int, config: UslpChannelConfig,
                 channels: Iterable[tuple[int, int]] = ((0, 0),), *,
                 vc_frame_count_length: int = 1, ocf: bool = False,
                 policy: str = "round_robin",
                 priorities: Mapping[tuple[int, int], int] | None = None,
                 weights: Mapping[tuple[int, int], int] | None = None) -> None:
        if not config.fixed:
            raise ConfigError("the packet service (rule 000) needs fixed-length frames",
                              key="frame_length")
        if not 1 <= vc_frame_count_length <= 7:
            raise ConfigError(f"{vc_frame_count_length} outside 1..7",
                              key="vc_frame_count_length")
        keys = [(int(v), int(m)) for v, m in channels]
        for v, m in keys:
            if not (0 <= v <= 63 and 0 <= m <= 15):
                raise ConfigError(f"channel {(v, m)} outside VC 0..63 / MAP 0..15",
                                  key="channels")
        self.scid = scid
        self.config = config
        self.ocf = ocf
        self.count_length = vc_frame_count_length
        self.modulus = 1 << (8 * vc_frame_count_length)
        capacity = config.data_field_capacity(vc_frame_count_length=vc_frame_count_length,
                                              ocf=ocf, tfdz_construction_rules=0)
        self.zones = ZoneMultiplexer(keys, lambda _k: capacity, _USLP, policy=policy,
                                     priorities=priorities, weights=weights)
        self.vc_frame_counts = {v: 0 for v, _ in keys}
        self.frames_sent = 0

    def add_packet(self, channel: tuple[int, int], packet: bytes, tag: object = None) -> None:
        self.zones.add_packet(channel, packet, tag)

    def pending_octets(self, channel: tuple[int, int] | None = None) -> int:
        return self.zones.pending_octets(channel)

    def next_frame(self, *, ocf: bytes | None = None, flush: bool = False) -> OutgoingFrame | None:
        """The next frame, or None when no channel fills one and ``flush`` is false. With
        ``flush`` and nothing queued at all, None too: USLP idle frames are the caller's
        choice (an OID frame on VC 63)."""
        if self.ocf and ocf is None:
            raise ConfigError("this channel carries an OCF in every frame", key="ocf")
        picked = self.zones.next_zone(flush=flush)
        if picked is None:
            return None
        (vcid, map_id), zone = picked
        count = self.vc_frame_counts[vcid]
        frame = UslpFrame(
            self.scid, vcid, map_id, zone.data,
            tfdz_construction_rules=TfdzConstructionRule.PACKETS_SPANNING_FRAMES,
            uslp_protocol_id=UslpProtocolId.SPACE_PACKETS,
            first_header_pointer=zone.first_header_pointer,
            vc_frame_count_length=self.count_length, vc_frame_count=count,
            ocf=ocf if self.ocf else None,
        ).encode(self.config)
        self.vc_frame_counts[vcid] = (count + 1) % self.modulus
        self.frames_sent += 1
        return OutgoingFrame(frame, (vcid, map_id), count, zone.tags,
                             zone.idle_octets == len(zone.data))


class UslpDemultiplexer(FrameIntake):
    """Receiving side: one packet extractor per ``(vcid, map_id)``.

    The VC Frame Count is per VC, so a frame lost on a VC is seen by the MAP that receives the
    next frame of that VC; the MAP that lost it finds out through its packets' sequence counts
    (and its next FHP resynchronises it).
    """

    def __init__(self, scid: int, config: UslpChannelConfig, *,
                 track_sequence: bool = True) -> None:
        # only frames with a VC Frame Count can be told from a legitimate identical frame
        super().__init__(scid, config, UslpFrame.decode, "uslp",
                         duplicate_window=DUPLICATE_WINDOW,
                         counted=lambda frame: frame.vc_frame_count_length > 0)
        self.track_sequence = track_sequence
        self._per_vc: dict[int, ZoneDemultiplexer] = {}
        self._last: dict[int, int] = {}

    def receive_frame(self, buf: bytes
                      ) -> list[ExtractorEvent | OcfReceived | FrameRejected | FrameDuplicate]:
        frame = self.intake(buf)
        if isinstance(frame, FrameRejected | FrameDuplicate):
            return [frame]
        events: list[ExtractorEvent | OcfReceived | FrameRejected | FrameDuplicate] = []
        if frame.ocf is not None:
            events.append(OcfReceived(frame.vcid, frame.ocf))
        if (frame.tfdz_construction_rules != TfdzConstructionRule.PACKETS_SPANNING_FRAMES
                or frame.first_header_pointer is None):
            return events
        modulus = 1 << (8 * frame.vc_frame_count_length) if frame.vc_frame_count_length else 1
        demux = self._per_vc.get(frame.vcid)
        if demux is None:
            demux = self._per_vc[frame.vcid] = ZoneDemultiplexer(
                _USLP, modulus, track_sequence=self.track_sequence)
        # Frame counts are per VC: give each MAP's extractor the count it should expect, i.e.
        # the VC's count if nothing of this VC was lost since that MAP's last frame.
        key = (frame.vcid, frame.map_id)
        ex = demux.extractors.get(key)
        count = frame.vc_frame_count
        last_vc = self._last.get(frame.vcid)
        self._last[frame.vcid] = count
        contiguous = last_vc is not None and (count - last_vc - 1) % modulus == 0
        if ex is not None and contiguous and ex.expected_frame_count is not None:
            count = ex.expected_frame_count  # nothing lost on the VC: no gap on this MAP
        # Otherwise frames were lost on the VC and may have been this MAP's: the extractor
        # sees a gap and drops its partial packet rather than risk gluing wrong pieces.
        events.extend(demux.feed(key, count, frame.first_header_pointer, frame.data_field))
        return events
