"""Frame-type-agnostic master channel multiplexing of packet zones.

The packet service works the same way on TM (132.0-B-3 §4.2), AOS M_PDU (732.0-B-4 §4.2.2)
and USLP rule-000 TFDZs (732.1-B-2 §4.2.2): each virtual channel (or, on USLP, each MAP of a
VC) has a packet zone builder; a scheduler picks which channel fills the next frame; the frame
type wraps the zone with its own header, counts and trailer. :class:`ZoneMultiplexer` is that
common part; :mod:`linkstack.mux.tm`, :mod:`linkstack.mux.aos` and :mod:`linkstack.mux.uslp`
add the frames. :class:`ZoneDemultiplexer` is the receiving counterpart: one
:class:`PacketExtractor` per channel, fed with each good frame's count, FHP and zone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic

from linkstack.errors import ConfigError, DecodeError
from linkstack.fast_dataclass import fast_init
from linkstack.mux.packet_zone import (
    ExtractorEvent,
    FhpConvention,
    PacketExtractor,
    PacketZoneBuilder,
    Zone,
)
from linkstack.mux.scheduler import K, VcScheduler


@fast_init
@dataclass(frozen=True, slots=True)
class OutgoingFrame:
    """A frame ready for the coding layer, with the tags of the packets it carries.

    ``channel`` is the VC (or the ``(vcid, map_id)`` pair on USLP); ``vc_frame_count`` its
    frame count; ``idle`` is true when the frame holds fill only.
    """

    data: bytes
    channel: Hashable
    vc_frame_count: int
    tags: tuple[object, ...]
    idle: bool

    @property
    def vcid(self) -> int:
        ch = self.channel
        return ch[0] if isinstance(ch, tuple) else ch  # type: ignore[return-value]


class ZoneMultiplexer(Generic[K]):
    """Per-channel packet zones and a scheduler choosing the channel of each frame.

    Args:
        channels: the channel keys (VCIDs, or ``(vcid, map_id)`` pairs), in round-robin order.
        capacity: octets of packet zone in one frame of a channel.
        convention: the frame type's FHP special values.
        policy / priorities / weights: see :class:`VcScheduler`.
    """

    def __init__(
        self,
        channels: Iterable[K],
        capacity: Callable[[K], int],
        convention: FhpConvention,
        *,
        policy: str = "round_robin",
        priorities: Mapping[K, int] | None = None,
        weights: Mapping[K, int] | None = None,
    ) -> None:
        keys = list(channels)
        self.scheduler = VcScheduler(keys, policy, priorities=priorities, weights=weights)
        self.builders = {k: PacketZoneBuilder(convention) for k in keys}
        self.capacity = {k: capacity(k) for k in keys}
        for k, cap in self.capacity.items():
            if cap < 1:
                raise ConfigError(f"channel {k!r} has no room for data", key="capacity")

    def add_packet(self, channel: K, packet: bytes, tag: object = None) -> None:
        """Queue an encoded Space Packet on ``channel``."""
        try:
            builder = self.builders[channel]
        except KeyError:
            raise ConfigError(f"channel {channel!r} is not configured", key="channel") from None
        builder.add_packet(packet, tag)

    def pending_octets(self, channel: K | None = None) -> int:
        if channel is not None:
            return self.builders[channel].pending_octets
        return sum(b.pending_octets for b in self.builders.values())

    def next_zone(self, *, flush: bool = False) -> tuple[K, Zone] | None:
        """The channel and zone of the next frame, or None when no channel has a full zone
        (with ``flush``: no data at all)."""
        cap = self.capacity
        ready = [k for k, b in self.builders.items() if b.pending_octets >= cap[k]]
        if not ready and flush:
            ready = [k for k, b in self.builders.items() if b.pending_octets]
        key = self.scheduler.pick(ready)
        if key is None:
            return None
        zone = self.builders[key].build(cap[key], flush=flush)
        assert zone is not None  # ready channels have a full zone, or flush completes one
        return key, zone


class ZoneDemultiplexer:
    """One :class:`PacketExtractor` per channel, created on first use."""

    def __init__(self, convention: FhpConvention, frame_count_modulus: int, *,
                 track_sequence: bool = True) -> None:
        self.convention = convention
        self.modulus = frame_count_modulus
        self.track_sequence = track_sequence
        self.extractors: dict[Hashable, PacketExtractor] = {}

    def feed(self, channel: Hashable, frame_count: int, first_header_pointer: int,
             zone: bytes) -> list[ExtractorEvent]:
        ex = self.extractors.get(channel)
        if ex is None:
            vcid = channel[0] if isinstance(channel, tuple) else channel
            ex = self.extractors[channel] = PacketExtractor(
                vcid, self.convention,  # type: ignore[arg-type]
                frame_count_modulus=self.modulus, track_sequence=self.track_sequence)
        return ex.feed(frame_count, first_header_pointer, zone)


@fast_init
@dataclass(frozen=True, slots=True)
class OcfReceived:
    """The OCF of a good frame (a CLCW for COP-1: ``Clcw.decode(ocf)``)."""

    vcid: int
    ocf: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame failed its checks (FECF, header, spacecraft) and was dropped."""

    error: DecodeError


@fast_init
@dataclass(frozen=True, slots=True)
class FrameDuplicate:
    """A good frame identical, octet for octet, to one received shortly before (a ground
    station network or relay delivering it twice) was dropped, so that its packets are not
    delivered twice and its frame count does not look like a gap of almost a whole cycle."""

    layer: str
    vcid: int
    frame: Any


DUPLICATE_WINDOW = 64
"""Frames remembered to recognise a repeat; below every frame count modulus it serves (TM
MC/VC 256, AOS 2**24, USLP VC counts of one or more octets), so two different frames within
it always differ in their counts."""


class FrameIntake:
    """The first step every demultiplexer of this package shares: decode a frame with the
    frame type's own decoder (FECF and header checks), check it belongs to spacecraft
    ``scid``, and count it. A frame that fails comes back as :class:`FrameRejected`."""

    def __init__(self, scid: int, config: Any, decode: Callable[[bytes, Any], Any],
                 layer: str, *, duplicate_window: int = 0,
                 counted: Callable[[Any], bool] | None = None) -> None:
        self.scid = scid
        self.config = config
        self._decode = decode
        self._layer = layer
        self.frames = 0
        self.rejected = 0
        self.duplicates = 0
        self._window = duplicate_window
        self._counted = counted
        self._recent: dict[bytes, None] = {}  # insertion-ordered: the last frames accepted

    def intake(self, buf: bytes) -> Any:
        """The decoded frame, or :class:`FrameRejected`, or (with a ``duplicate_window``)
        :class:`FrameDuplicate` for an exact repeat of one of the last frames that carry a
        frame count (``counted(frame)``, default all)."""
        try:
            frame = self._decode(buf, self.config)
            if frame.scid != self.scid:
                raise DecodeError(f"is {frame.scid}, this channel is {self.scid}",
                                  layer=self._layer, field="scid", offset=0)
        except DecodeError as err:
            self.rejected += 1
            return FrameRejected(err)
        if self._window and (self._counted is None or self._counted(frame)):
            key = bytes(buf)
            recent = self._recent
            if key in recent:
                self.duplicates += 1
                return FrameDuplicate(self._layer, frame.vcid, frame)
            recent[key] = None
            if len(recent) > self._window:
                del recent[next(iter(recent))]
        self.frames += 1
        return frame
