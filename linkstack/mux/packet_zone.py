"""Packet service on one virtual channel: packets spanning frame data fields.

The packet zone of a TM (CCSDS 132.0-B-3 §4.1.4), AOS M_PDU (732.0-B-4 §4.1.4.2) or USLP
TFDZ with construction rule 000 (732.1-B-2 §4.1.4.2.2) carries Space Packets back to back; a
packet may start in one frame and end in a later one. The *First Header Pointer* (FHP) gives
the offset of the first packet header that starts in the zone, or a special value:

- "no packet starts in this zone" (TM/AOS 0x7FF, USLP 0xFFFF): the zone continues a packet;
- "only idle data" (TM/AOS 0x7FE): the zone holds fill only.

:class:`PacketZoneBuilder` (sending side) cuts a stream of packets into zones of the exact
capacity of each frame and computes the FHP; :class:`PacketExtractor` (receiving side) takes
zones in frame-count order, rebuilds the packets, detects frame-count gaps, resynchronises on
the FHP after a gap, and reports the packets the gap cost as events. Both are sans-IO and
frame-type agnostic: the frame layer (``linkstack.frames``) wraps and unwraps the zones.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from linkstack.errors import ConfigError
from linkstack.fast_dataclass import fast_init
from linkstack.spp.packet import IDLE_APID, SEQUENCE_COUNT_MODULUS, idle_packet

FHP_NO_PACKET_START_TM = 0x7FF
"""TM/AOS FHP value: no packet header starts in this zone (132.0-B-3 §4.1.2.7.5)."""
FHP_IDLE_ONLY_TM = 0x7FE
"""TM/AOS FHP value: the zone holds only idle data (132.0-B-3 §4.1.2.7.6)."""
FHP_NO_PACKET_START_USLP = 0xFFFF
"""USLP FHP all ones: no packet starts in this TFDZ (732.1-B-2 §4.1.4.1.5)."""

_MIN_PACKET = 7  # 6-octet header + at least one data octet (133.0-B-2 §4.1.4.1)


@dataclass(frozen=True, slots=True)
class FhpConvention:
    """The FHP's width-specific special values for one frame type."""

    no_packet_start: int
    idle_only: int | None

    @classmethod
    def for_layer(cls, layer: str) -> FhpConvention:
        if layer in ("tm", "aos"):
            return cls(FHP_NO_PACKET_START_TM, FHP_IDLE_ONLY_TM)
        if layer == "uslp":
            return cls(FHP_NO_PACKET_START_USLP, None)
        raise ConfigError(f"no first header pointer on layer {layer!r}", key="layer")


@fast_init
@dataclass(frozen=True, slots=True)
class Zone:
    """One built packet zone: its bytes, its FHP and how many octets of it are idle fill."""

    data: bytes
    first_header_pointer: int
    idle_octets: int
    tags: tuple[object, ...] = ()
    """The caller's tags of every packet with octets in this zone (for latency accounting)."""


class PacketZoneBuilder:
    """Sending side of the packet service on one virtual channel (132.0-B-3 §4.1.4).

    ``add_packet`` queues an encoded Space Packet; ``build(capacity)`` returns the next zone of
    exactly ``capacity`` octets or ``None`` when there is not enough queued data and
    ``flush`` is false. With ``flush`` true the zone is completed with an idle packet
    (APID 2047), which may itself span into the next zone, as the standard allows.
    """

    def __init__(self, convention: FhpConvention) -> None:
        self.convention = convention
        self._buf = bytearray()
        self._base = 0  # absolute stream position of _buf[0]
        self._starts: deque[int] = deque()  # absolute positions of packet headers in _buf
        self._idle_spans: deque[tuple[int, int]] = deque()  # (start, end) of idle fill
        self._idle_count = 0
        self._tagged: deque[tuple[int, int, object]] = deque()  # (start, end, tag)
        self.packets_queued = 0
        self.octets_queued = 0

    @property
    def pending_octets(self) -> int:
        """Octets queued but not yet put in a zone."""
        return len(self._buf)

    def add_packet(self, packet: bytes, tag: object = None) -> None:
        """Queue one encoded Space Packet (at least 7 octets).

        ``tag`` (any object, e.g. a message id) is reported in :attr:`Zone.tags` of every zone
        that carries octets of this packet.
        """
        if len(packet) < _MIN_PACKET:
            raise ConfigError(f"a Space Packet is at least 7 octets, got {len(packet)}",
                              key="packet")
        start = self._base + len(self._buf)
        self._starts.append(start)
        self._buf += packet
        if tag is not None:
            self._tagged.append((start, start + len(packet), tag))
        self.packets_queued += 1
        self.octets_queued += len(packet)

    def _add_idle(self, length: int) -> None:
        start = self._base + len(self._buf)
        self._starts.append(start)
        self._buf += idle_packet(length, self._idle_count)
        self._idle_count = (self._idle_count + 1) % SEQUENCE_COUNT_MODULUS
        self._idle_spans.append((start, start + length))

    def build(self, capacity: int, *, flush: bool = False) -> Zone | None:
        """Return the next zone of ``capacity`` octets (see class docstring)."""
        if capacity < 1:
            raise ConfigError(f"zone capacity must be positive, got {capacity}", key="capacity")
        if not self._buf and flush and self.convention.idle_only is not None:
            # Only Idle Data (132.0-B-3 §4.1.2.7.6): fill, outside the packet stream.
            return Zone(bytes(capacity), self.convention.idle_only, capacity)
        missing = capacity - len(self._buf)
        if missing > 0:
            if not flush:
                return None
            # An idle packet is at least 7 octets; if less is missing, it spans on.
            self._add_idle(max(missing, _MIN_PACKET))
        lo = self._base
        hi = lo + capacity
        starts = self._starts
        while starts and starts[0] < lo:  # cannot happen, kept as an invariant guard
            starts.popleft()
        fhp = self.convention.no_packet_start
        if starts and starts[0] < hi:
            fhp = starts[0] - lo
            while starts and starts[0] < hi:
                starts.popleft()
        idle = 0
        spans = self._idle_spans
        while spans and spans[0][0] < hi:
            s, e = spans[0]
            idle += min(e, hi) - max(s, lo)
            if e <= hi:
                spans.popleft()
            else:
                break
        tags: list[object] = []
        tagged = self._tagged
        while tagged and tagged[0][1] <= hi:  # packets that end in this zone
            tags.append(tagged.popleft()[2])
        if tagged and tagged[0][0] < hi:  # a packet that starts or continues here, spans on
            tags.append(tagged[0][2])
        data = bytes(self._buf[:capacity])
        del self._buf[:capacity]
        self._base = hi
        return Zone(data, fhp, idle, tuple(tags))


# --------------------------------------------------------------------------- receiving side


class PacketExtracted(NamedTuple):
    """A complete packet (encoded octets) came out of the zone stream of ``vcid``.

    (A named tuple rather than a frozen dataclass: it is made once per packet on the hot path.)
    """

    vcid: int
    packet: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class FrameGap:
    """Frames were lost on ``vcid``: the VC frame count jumped from ``expected`` to ``received``.

    ``discarded_octets`` of a packet under reassembly were dropped; ``discarded_apid`` and
    ``discarded_count`` name that packet when its header had arrived (else ``None``).
    """

    vcid: int
    expected: int
    received: int
    lost_frames: int
    discarded_octets: int
    discarded_apid: int | None
    discarded_count: int | None


@fast_init
@dataclass(frozen=True, slots=True)
class PacketsLost:
    """Packets of ``apid`` with sequence counts ``first``..``last`` (inclusive, mod 16384) never
    arrived, found from the per-APID Packet Sequence Count (133.0-B-2 §4.1.3.4.3)."""

    vcid: int
    apid: int
    first: int
    last: int
    count: int


@fast_init
@dataclass(frozen=True, slots=True)
class ZoneError:
    """A zone was inconsistent (e.g. the FHP points past the end, or a packet header is
    corrupt); ``discarded_octets`` were dropped and the extractor resynchronises on the next
    FHP."""

    vcid: int
    frame_count: int
    reason: str
    discarded_octets: int


ExtractorEvent = PacketExtracted | FrameGap | PacketsLost | ZoneError


class PacketExtractor:
    """Receiving side of the packet service on one virtual channel.

    Feed each frame's ``(vc_frame_count, first_header_pointer, zone)`` in arrival order with
    :meth:`feed`. ``frame_count_modulus`` is 256 for TM (8-bit VC frame count), 2**24 for AOS,
    2**(8·n) for USLP. Idle packets (APID 2047) are counted in ``idle_packets`` and not
    delivered. ``track_sequence`` enables per-APID sequence-count continuity checks, which name
    the packets lost in a gap.
    """

    def __init__(
        self,
        vcid: int,
        convention: FhpConvention,
        *,
        frame_count_modulus: int = 256,
        max_packet_length: int = 65542,
        track_sequence: bool = True,
        deliver_idle: bool = False,
    ) -> None:
        self.vcid = vcid
        self.convention = convention
        self.modulus = frame_count_modulus
        self.max_packet_length = max_packet_length
        self.track_sequence = track_sequence
        self.deliver_idle = deliver_idle
        self._partial = bytearray()
        self._synced = False  # True while _partial is a trustworthy packet prefix
        self._expected: int | None = None
        self._last_count: dict[int, int] = {}
        self.packets = 0
        self.idle_packets = 0
        self.frames = 0
        self.lost_frames = 0
        self.discarded_octets = 0

    @property
    def expected_frame_count(self) -> int | None:
        """The frame count the next zone should have (None before the first)."""
        return self._expected

    def feed(
        self, frame_count: int, first_header_pointer: int, zone: bytes
    ) -> list[ExtractorEvent]:
        """Process one zone; return the events it produced, in order."""
        events: list[ExtractorEvent] = []
        self.frames += 1
        conv = self.convention
        if self._expected is not None and frame_count != self._expected:
            lost = (frame_count - self._expected) % self.modulus
            apid = count = None
            if len(self._partial) >= 6:
                apid = ((self._partial[0] & 0x07) << 8) | self._partial[1]
                count = ((self._partial[2] & 0x3F) << 8) | self._partial[3]
            events.append(FrameGap(self.vcid, self._expected, frame_count, lost,
                                   len(self._partial), apid, count))
            self.lost_frames += lost
            self.discarded_octets += len(self._partial)
            self._partial.clear()
            self._synced = False
        self._expected = (frame_count + 1) % self.modulus

        fhp = first_header_pointer
        if fhp == conv.idle_only:
            return events
        n = len(zone)
        partial = self._partial
        if fhp == conv.no_packet_start:
            if self._synced:
                partial += zone
                self._consume(partial, events, frame_count)
            else:
                self.discarded_octets += n
            return events
        if fhp >= n:
            events.append(ZoneError(self.vcid, frame_count,
                                    f"first header pointer {fhp} outside a {n}-octet zone",
                                    len(partial) + n))
            self.discarded_octets += len(partial) + n
            partial.clear()
            self._synced = False
            return events
        if self._synced:
            partial += zone[:fhp]
            if self._consume(partial, events, frame_count) and partial:
                # The packet under reassembly should have ended exactly at the FHP.
                events.append(ZoneError(
                    self.vcid, frame_count,
                    f"packet under reassembly does not end at the first header pointer {fhp}",
                    len(partial)))
                self.discarded_octets += len(partial)
                partial.clear()
        else:
            self.discarded_octets += fhp
        end = self._parse(zone, fhp, events, frame_count)
        self._synced = end >= 0
        self._partial = bytearray(zone[end:]) if end >= 0 else bytearray()
        return events

    def _consume(self, buf: bytearray, events: list[ExtractorEvent], frame_count: int) -> bool:
        """Parse the packets complete in ``buf`` and keep the rest; False after an error."""
        end = self._parse(buf, 0, events, frame_count)
        if end < 0:
            buf.clear()
            self._synced = False
            return False
        if end:
            del buf[:end]
        return True

    def _parse(self, buf: bytes | bytearray, pos: int, events: list[ExtractorEvent],
               frame_count: int) -> int:
        """Extract the complete packets of ``buf`` from ``pos``; return where the incomplete
        rest starts, or -1 after a corrupt header (reported as a :class:`ZoneError`)."""
        n = len(buf)
        maxlen = self.max_packet_length
        vcid = self.vcid
        append = events.append
        track = self.track_sequence
        last_count = self._last_count
        while n - pos >= 6:
            b0 = buf[pos]
            if b0 & 0xE0:  # packet version number must be 000
                return self._corrupt(events, frame_count, n - pos,
                                     "packet version number is not 0")
            length = ((buf[pos + 4] << 8) | buf[pos + 5]) + 7
            if length > maxlen:
                return self._corrupt(events, frame_count, n - pos,
                                     f"packet length {length} exceeds {maxlen}")
            end = pos + length
            if end > n:
                break
            apid = ((b0 & 0x07) << 8) | buf[pos + 1]
            if apid == IDLE_APID:
                self.idle_packets += 1
                if self.deliver_idle:
                    append(PacketExtracted(vcid, bytes(buf[pos:end])))
            else:
                if track:
                    count = ((buf[pos + 2] & 0x3F) << 8) | buf[pos + 3]
                    last = last_count.get(apid)
                    if last is not None and count != (last + 1) & 0x3FFF:
                        missing = (count - last - 1) % SEQUENCE_COUNT_MODULUS
                        if missing < SEQUENCE_COUNT_MODULUS // 2:
                            append(PacketsLost(
                                vcid, apid, (last + 1) % SEQUENCE_COUNT_MODULUS,
                                (count - 1) % SEQUENCE_COUNT_MODULUS, missing))
                    last_count[apid] = count
                self.packets += 1
                append(PacketExtracted(vcid, bytes(buf[pos:end])))
            pos = end
        return pos

    def _corrupt(self, events: list[ExtractorEvent], frame_count: int, dropped: int,
                 reason: str) -> int:
        events.append(ZoneError(self.vcid, frame_count, reason, dropped))
        self.discarded_octets += dropped
        return -1
