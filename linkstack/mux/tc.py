"""TC virtual channel and MAP multiplexing (CCSDS 232.0-B-4 §4.2–4.3).

Sending: packets queue per ``(vcid, map_id)`` channel (MAP Packet service, §2.2.4); a
:class:`VcScheduler` picks the channel of each frame (MAP Multiplexing and VC Multiplexing,
§4.2.3–4.2.5, mission-defined algorithms); a packet longer than the frame's data field is split
into first/continuing/last segments with the Segment Header (§4.1.3.2), on VCs that use it.
Each frame carries one packet or one segment (no blocking of several packets into one frame,
so every MAP SDU is exactly one Space Packet and the receiver can check its length). Frames
come out with N(S) = 0: on AD VCs, FOP-1 (:mod:`linkstack.arq.fop1`) sets the sequence number.

Receiving: :class:`TcDemultiplexer` validates frames and hands them to a
:class:`~linkstack.frames.tc.MapReassembler`, which routes segments by (VCID, MAP ID) and
reports wrong orders instead of gluing them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from linkstack.errors import ConfigError
from linkstack.fast_dataclass import fast_init
from linkstack.frames.tc import (
    MapReassembler,
    MapSduReceived,
    SegmentsDiscarded,
    TcChannelConfig,
    TcFrame,
    segment_map_sdu,
)
from linkstack.mux.channel import FrameIntake, FrameRejected
from linkstack.mux.scheduler import VcScheduler
from linkstack.spp.packet import SequenceFlags


@fast_init
@dataclass(frozen=True, slots=True)
class TcOutgoing:
    """One TC frame to hand to FOP-1 (AD) or send as it is (BD), with its packet's tag."""

    frame: TcFrame
    channel: tuple[int, int]
    tag: object


class TcMultiplexer:
    """Packets on ``(vcid, map_id)`` channels into TC frames (type AD unless ``bypass``).

    ``map_id`` is ignored (use 0) on VCs without the Segment Header; such VCs cannot carry a
    packet longer than one frame's data field.
    """

    def __init__(self, scid: int, config: TcChannelConfig,
                 channels: Iterable[tuple[int, int]] = ((0, 0),), *, bypass: bool = False,
                 policy: str = "round_robin",
                 priorities: Mapping[tuple[int, int], int] | None = None,
                 weights: Mapping[tuple[int, int], int] | None = None) -> None:
        keys = [(int(v), int(m)) for v, m in channels]
        for v, m in keys:
            if not (0 <= v <= 63 and 0 <= m <= 63):
                raise ConfigError(f"channel {(v, m)} outside VC 0..63 / MAP 0..63",
                                  key="channels")
        self.scid = scid
        self.config = config
        self.bypass = bypass
        self.scheduler = VcScheduler(keys, policy, priorities=priorities, weights=weights)
        self.queues: dict[tuple[int, int], deque[tuple[SequenceFlags, bytes, object]]] = {
            k: deque() for k in keys}

    def add_packet(self, channel: tuple[int, int], packet: bytes, tag: object = None) -> None:
        """Queue an encoded Space Packet, segmented now if it does not fit one frame."""
        if channel not in self.queues:
            raise ConfigError(f"channel {channel!r} is not configured", key="channel")
        vcid = channel[0]
        capacity = self.config.data_field_capacity(vcid)
        if not self.config.has_segment_header(vcid):
            if len(packet) > capacity:
                raise ConfigError(
                    f"a {len(packet)}-octet packet exceeds the {capacity}-octet data field of "
                    f"VC {vcid}, which has no Segment Header", key="packet")
            self.queues[channel].append((SequenceFlags.UNSEGMENTED, bytes(packet), tag))
            return
        for seg in segment_map_sdu(packet, capacity):
            self.queues[channel].append((seg.sequence_flags, seg.data, tag))

    def pending(self) -> int:
        """Frames waiting."""
        return sum(len(q) for q in self.queues.values())

    def next_frame(self) -> TcOutgoing | None:
        """The next frame, or None when nothing is queued. The segments of one packet go out
        back to back on their channel (a MAP never interleaves two SDUs)."""
        ready = [k for k, q in self.queues.items() if q]
        busy = [k for k in ready if self.queues[k][0][0] in (SequenceFlags.CONTINUATION,
                                                             SequenceFlags.LAST)]
        key = busy[0] if busy else self.scheduler.pick(ready)
        if key is None:
            return None
        flags, data, tag = self.queues[key].popleft()
        vcid, map_id = key
        segmented = self.config.has_segment_header(vcid)
        frame = TcFrame(self.scid, vcid, 0, data, bypass_flag=self.bypass,
                        map_id=map_id if segmented else None,
                        sequence_flags=flags if segmented else SequenceFlags.UNSEGMENTED)
        return TcOutgoing(frame, key, tag)


class TcDemultiplexer(FrameIntake):
    """Validates received TC frames and reassembles MAP SDUs (Space Packets)."""

    def __init__(self, scid: int, config: TcChannelConfig) -> None:
        super().__init__(scid, config, TcFrame.decode, "tc")
        self.reassembler = MapReassembler()

    def receive_frame(self, buf: bytes) -> list[MapSduReceived | SegmentsDiscarded
                                                 | FrameRejected]:
        frame = self.intake(buf)
        if isinstance(frame, FrameRejected):
            return [frame]
        if frame.control_command_flag:
            return []  # BC frames carry COP-1 control commands, not MAP data
        if frame.map_id is None:
            return [MapSduReceived(frame.vcid, 0, frame.data_field)]
        return list(self.reassembler.receive_frame(frame))
