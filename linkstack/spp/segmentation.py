"""Segmentation of large payloads into Space Packets, and their reassembly.

CCSDS 133.0-B-2 §4.1.3.4.2 lets one user data unit that does not fit one packet travel as a
*segmented* series on one APID: a FIRST segment (Sequence Flags ``01``), any number of
CONTINUATION segments (``00``) and a LAST segment (``10``), with consecutive Packet Sequence
Counts (§4.1.3.4.3). A payload that fits is sent as one UNSEGMENTED packet (``11``).

:class:`Segmenter` is the sending side. :class:`Reassembler` is the receiving side: it takes
packets of any APIDs interleaved, one at a time, and returns events. Its rules, per APID:

Sequence check (§4.1.3.4.3; counts compared modulo 2**14, distance ``d = received - last``):

- a packet identical to one of the last ``history`` packets kept on its APID (e.g. the
  previous one, ``d == 0``): :class:`DuplicatePacket`; the copy is dropped (its octets are
  counted in the event). Nothing is delivered twice.
- ``d == 1``: in sequence. The first packet seen on an APID is always in sequence.
- ``2 <= d < 8192``: :class:`SequenceGap` (``missing = d - 1``); the packet is then used.
- otherwise the count went *back* (``d == 0`` with other contents, or ``d >= 8192``):

  - if a kept packet among the last ``history`` had this count with other contents, the
    count was reused, which reordering cannot cause: the source restarted its counter.
    :class:`SequenceReset`, reassembly re-anchors on this packet and uses it;
  - else it is a late arrival (a reordered packet, perhaps one a gap already reported):
    :class:`OutOfOrder` with its octets, and it is dropped, so that deliveries on an APID
    stay in sending order. If it was more than ``history`` counts behind and the next
    packet continues from it, that is also taken as a restart (:class:`SequenceReset`;
    the late packet is the one lost to it). So reordering deeper than ``history`` packets
    may be taken for a restart.

Segment check (Sequence Flags, §4.1.3.4.2.2), for a packet the sequence check kept:

- a gap or a reset while a segmented payload is open discards that partial payload:
  :class:`PartialDiscarded` (APID, octets, packets, reason). Data on both sides of a gap is
  never glued together;
- FIRST while a payload is open: :class:`OutOfOrder` (octets 0) and the open one is
  discarded; the new FIRST starts a new payload;
- UNSEGMENTED while a payload is open: the open one is discarded; the packet is delivered;
- CONTINUATION or LAST with no open payload: :class:`OutOfOrder` with its octets, dropped;
- LAST completes the payload: :class:`PayloadComplete`;
- a payload that grows beyond ``max_payload`` stops being stored (memory is bounded) and is
  reported as discarded when it ends or is interrupted.

Accounting invariant (tested): the data field octets of every non-idle packet fed end up in
exactly one of ``PayloadComplete.data``, ``PartialDiscarded.octets``, ``OutOfOrder.octets``,
``DuplicatePacket.octets`` or :attr:`Reassembler.pending_octets`. Nothing is lost silently.
Idle packets (APID 2047, §4.1.3.3.4.4) carry no user data: they are counted in
:attr:`Reassembler.idle_packets` and otherwise ignored.

The Packet Data Field is reassembled as a whole: a packet secondary header, if any, is part
of each segment's data (split it with :mod:`linkstack.spp.secondary` first if needed). One
Reassembler serves one direction of one link (counts of TM and TC packets with the same APID
are independent, so do not feed both to the same Reassembler).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linkstack.errors import ConfigError, EncodeError
from linkstack.fast_dataclass import fast_init
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import (
    IDLE_APID,
    LAYER,
    MAX_APID,
    MAX_DATA_FIELD_LENGTH,
    SEQUENCE_COUNT_MODULUS,
    PacketType,
    SequenceFlags,
    SpacePacket,
)

__all__ = [
    "DuplicatePacket",
    "OutOfOrder",
    "PartialDiscarded",
    "PayloadComplete",
    "Reassembler",
    "ReassemblyEvent",
    "Segmenter",
    "SequenceGap",
    "SequenceReset",
]

_HALF = SEQUENCE_COUNT_MODULUS // 2
# The Sequence Flags as module constants: an enum attribute look-up costs more than the
# comparison it feeds, several times per packet.
_FIRST = SequenceFlags.FIRST
_LAST = SequenceFlags.LAST
_CONTINUATION = SequenceFlags.CONTINUATION
_UNSEGMENTED = SequenceFlags.UNSEGMENTED


# -- events ----------------------------------------------------------------------------------
@fast_init
@dataclass(frozen=True, slots=True)
class PayloadComplete:
    """A whole payload: one UNSEGMENTED packet or a FIRST..LAST series (§4.1.3.4.2.2)."""

    apid: int
    data: bytes
    first_count: int
    packets: int


@fast_init
@dataclass(frozen=True, slots=True)
class SequenceGap:
    """The Packet Sequence Count jumped forward: ``missing`` packets were lost (§4.1.3.4.3)."""

    apid: int
    expected: int
    received: int
    missing: int


@fast_init
@dataclass(frozen=True, slots=True)
class SequenceReset:
    """The source restarted its Packet Sequence Count: after ``previous`` came a packet that
    was behind it, and then ``received``, which continues from that packet. Reassembly
    re-anchors on ``received`` (the packet before it was reported as :class:`OutOfOrder`)."""

    apid: int
    previous: int
    received: int


@fast_init
@dataclass(frozen=True, slots=True)
class DuplicatePacket:
    """A packet identical to the previous one on its APID (same count, same bytes); dropped.
    ``octets`` is its data field length (already delivered or pending with the original)."""

    apid: int
    sequence_count: int
    octets: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class OutOfOrder:
    """A packet in the wrong place. ``octets`` is how much of its data field was dropped:
    its whole length for a late packet or an orphan segment, 0 for a FIRST segment that
    interrupted an open payload (that FIRST starts a new payload)."""

    apid: int
    sequence_count: int
    reason: str
    octets: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class PartialDiscarded:
    """An incomplete payload was abandoned: ``octets`` data octets in ``packets`` packets."""

    apid: int
    octets: int
    reason: str
    packets: int = 0


ReassemblyEvent = (
    PayloadComplete | SequenceGap | SequenceReset | DuplicatePacket | OutOfOrder
    | PartialDiscarded
)


# -- sending side ----------------------------------------------------------------------------
class Segmenter:
    """Cut payloads into Space Packets of one APID (133.0-B-2 §4.1.3.4.2).

    Args:
        apid: Application Process Identifier of every packet (0..2046; 2047 is idle).
        max_data_length: largest Packet Data Field per packet (1..65536 octets).
        packet_type: TM or TC.
        counter: the per-APID :class:`SequenceCounter` to draw counts from; share one between
            every source of one spacecraft side. A private counter is made if omitted.
    """

    def __init__(
        self,
        apid: int,
        *,
        max_data_length: int = MAX_DATA_FIELD_LENGTH,
        packet_type: PacketType = PacketType.TM,
        counter: SequenceCounter | None = None,
    ) -> None:
        if not 0 <= apid < MAX_APID:
            raise ConfigError(f"APID {apid!r} outside 0..{MAX_APID - 1} (2047 is idle)",
                              key="apid")
        if not 1 <= max_data_length <= MAX_DATA_FIELD_LENGTH:
            raise ConfigError(
                f"{max_data_length!r} outside 1..{MAX_DATA_FIELD_LENGTH}", key="max_data_length"
            )
        self.apid = apid
        self.max_data_length = max_data_length
        self.packet_type = PacketType(packet_type)
        self.counter = counter if counter is not None else SequenceCounter()

    def packets_needed(self, length: int) -> int:
        """How many packets a payload of ``length`` octets takes."""
        return max(1, -(-length // self.max_data_length))

    def segment(self, payload: bytes) -> list[SpacePacket]:
        """Return the packets carrying ``payload``: one UNSEGMENTED packet if it fits, else
        FIRST, CONTINUATION..., LAST with consecutive counts. Raises :class:`EncodeError`
        for an empty payload (a Packet Data Field holds at least one octet, §4.1.4.1)."""
        n = len(payload)
        if n == 0:
            raise EncodeError("empty payload: a packet data field holds at least 1 octet",
                              layer=LAYER, field="packet_data_field")
        size = self.max_data_length
        if n <= size:
            count = self.counter.next(self.apid)
            return [SpacePacket(self.apid, count, bytes(payload), self.packet_type)]
        view = memoryview(payload)
        k = -(-n // size)
        counts = self.counter.reserve(self.apid, k)
        packets = []
        for i, count in enumerate(counts):
            if i == 0:
                flags = SequenceFlags.FIRST
            elif i == k - 1:
                flags = SequenceFlags.LAST
            else:
                flags = SequenceFlags.CONTINUATION
            chunk = bytes(view[i * size:(i + 1) * size])
            packets.append(SpacePacket(self.apid, count, chunk, self.packet_type, False, flags))
        return packets


# -- receiving side --------------------------------------------------------------------------
@dataclass(slots=True)
class _Partial:
    first_count: int
    chunks: list[bytes] = field(default_factory=list)
    octets: int = 0
    packets: int = 0
    overflow: bool = False


@dataclass(slots=True)
class _ApidState:
    last: SpacePacket  # last packet the sequence check kept
    # (count, hash) of the last kept packets, oldest first (a dict is an ordered set)
    history: dict[tuple[int, int], None] = field(default_factory=dict)
    late: int | None = None  # count of the last packet dropped because it went back
    partial: _Partial | None = None


class Reassembler:
    """Receiving side of segmentation with per-APID sequence checking (133.0-B-2 §4.1.3.4).

    See the module docstring for the exact rules. ``feed`` never raises on link errors; it
    reports them as events. ``max_payload`` bounds the memory one partial payload may hold;
    ``history`` is how many recent packets per APID are remembered (as hashes) to recognise
    late duplicates.
    """

    def __init__(self, *, max_payload: int = 16 * 2**20, history: int = 64) -> None:
        if max_payload < 1:
            raise ConfigError(f"{max_payload!r} must be at least 1", key="max_payload")
        if history < 1:
            raise ConfigError(f"{history!r} must be at least 1", key="history")
        self.max_payload = max_payload
        self.history = history
        self._apids: dict[int, _ApidState] = {}
        self.idle_packets = 0

    # -- queries ---------------------------------------------------------------------------
    @property
    def pending_octets(self) -> int:
        """Data octets held (or counted, past ``max_payload``) in open partial payloads."""
        return sum(s.partial.octets for s in self._apids.values() if s.partial is not None)

    def open_apids(self) -> list[int]:
        """APIDs with a segmented payload in progress."""
        return sorted(a for a, s in self._apids.items() if s.partial is not None)

    def is_open(self, apid: int) -> bool:
        """True if a segmented payload is in progress on ``apid`` (``apid in open_apids()``,
        without sorting every APID)."""
        state = self._apids.get(apid)
        return state is not None and state.partial is not None

    # -- input -----------------------------------------------------------------------------
    def feed(self, packet: SpacePacket) -> list[ReassemblyEvent]:
        """Take one packet; return what it completed or revealed, in causal order."""
        apid = packet.apid
        if apid == IDLE_APID:
            self.idle_packets += 1
            return []
        count = packet.sequence_count
        state = self._apids.get(apid)
        events: list[ReassemblyEvent] = []
        digest = hash(packet)
        if state is None:
            state = self._apids[apid] = _ApidState(packet)
        else:
            if (count, digest) in state.history:
                return [DuplicatePacket(apid, count, len(packet.data))]
            last_count = state.last.sequence_count
            d = (count - last_count) % SEQUENCE_COUNT_MODULUS
            if d == 1:
                state.late = None
            elif 2 <= d < _HALF:
                state.late = None
                events.append(SequenceGap(apid, (last_count + 1) % SEQUENCE_COUNT_MODULUS,
                                          count, d - 1))
                self._interrupt(state, apid, f"sequence gap: {d - 1} packet(s) missing",
                                events)
            else:  # the count went back (or repeated with other contents)
                behind = SEQUENCE_COUNT_MODULUS - d if d else 0
                if any(c == count for c, _ in state.history) or (
                    state.late is not None
                    and count == (state.late + 1) % SEQUENCE_COUNT_MODULUS
                ):
                    state.late = None
                    events.append(SequenceReset(apid, last_count, count))
                    self._interrupt(state, apid, "sequence count reset by the source", events)
                else:
                    # A late arrival. Only one far behind can start a restarted sequence.
                    state.late = count if behind > self.history else None
                    events.append(OutOfOrder(apid, count,
                                             f"late: {behind} behind count {last_count}",
                                             len(packet.data)))
                    return events
            state.last = packet
        history = state.history
        history[(count, digest)] = None
        if len(history) > self.history:
            del history[next(iter(history))]
        self._segment(state, packet, events)
        return events

    def flush(self, apid: int | None = None) -> list[ReassemblyEvent]:
        """Abandon the open partial payload of ``apid`` (or of all APIDs), e.g. at the end of
        a pass or when the application's timeout expires. Returns the discards."""
        events: list[ReassemblyEvent] = []
        for a in ([apid] if apid is not None else sorted(self._apids)):
            state = self._apids.get(a)
            if state is not None:
                self._interrupt(state, a, "flushed", events)
        return events

    def reset(self, apid: int | None = None) -> list[ReassemblyEvent]:
        """Forget the sequence state of ``apid`` (or all APIDs), e.g. when the application
        knows its source rebooted; any open partial payload is reported as discarded."""
        events = self.flush(apid)
        if apid is None:
            self._apids.clear()
        else:
            self._apids.pop(apid, None)
        return events

    # -- internals -------------------------------------------------------------------------
    def _interrupt(self, state: _ApidState, apid: int, reason: str,
                   events: list[ReassemblyEvent]) -> None:
        partial = state.partial
        if partial is not None:
            state.partial = None
            if partial.overflow:
                reason = f"payload exceeds max_payload ({self.max_payload} octets)"
            events.append(PartialDiscarded(apid, partial.octets, reason, partial.packets))

    def _segment(self, state: _ApidState, packet: SpacePacket,
                 events: list[ReassemblyEvent]) -> None:
        apid = packet.apid
        flags = packet.sequence_flags
        data = packet.data
        if flags == _UNSEGMENTED:
            self._interrupt(state, apid, "unsegmented packet before the last segment", events)
            if len(data) > self.max_payload:
                events.append(PartialDiscarded(
                    apid, len(data), f"payload exceeds max_payload ({self.max_payload} octets)",
                    1))
            else:
                events.append(PayloadComplete(apid, data, packet.sequence_count, 1))
            return
        if flags == _FIRST:
            if state.partial is not None:
                events.append(OutOfOrder(apid, packet.sequence_count,
                                         "first segment while a payload is open"))
                self._interrupt(state, apid, "interrupted by a new first segment", events)
            state.partial = _Partial(packet.sequence_count)
            self._add(state.partial, data)
            return
        partial = state.partial
        if partial is None:
            kind = "continuation" if flags == _CONTINUATION else "last"
            events.append(OutOfOrder(apid, packet.sequence_count,
                                     f"{kind} segment without a first segment", len(data)))
            return
        self._add(partial, data)
        if flags == _LAST:
            state.partial = None
            if partial.overflow:
                events.append(PartialDiscarded(
                    apid, partial.octets,
                    f"payload exceeds max_payload ({self.max_payload} octets)", partial.packets))
            else:
                events.append(PayloadComplete(apid, b"".join(partial.chunks),
                                              partial.first_count, partial.packets))

    def _add(self, partial: _Partial, data: bytes) -> None:
        partial.octets += len(data)
        partial.packets += 1
        if partial.overflow:
            return
        if partial.octets > self.max_payload:
            partial.overflow = True
            partial.chunks.clear()
        else:
            partial.chunks.append(data)
