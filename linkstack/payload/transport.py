"""AI payload messages carried as Space Packets (CCSDS 133.0-B-2).

A Prompt travels uplink as telecommand Space Packets (Packet Type 1, §4.1.3.3.2) on the
prompt APID (default 0x100); a Result travels downlink as telemetry packets (Packet Type 0) on
the result APID (default 0x101). A message longer than one packet's maximum data field is
segmented (Sequence Flags FIRST / CONTINUATION… / LAST, §4.1.3.4.2.2) with consecutive Packet
Sequence Counts, by :mod:`linkstack.spp.segmentation`; the receiving side reassembles and
decodes. The user data of the packets is exactly the message octets (no secondary header).
On receipt the APID selects the channel; the Packet Type bit is not checked.

Both ends are sans-IO: :class:`MessageSender` turns a message into packets,
:class:`MessageReceiver` turns packets (objects or octets) into events. Losses are never
silent: a segmented message that cannot be completed is reported with :class:`MessageLost`
(naming the request id when its first packet was seen), undecodable octets with
:class:`MessageRejected` (naming the request id when its common header is readable), and the
reassembler's own gap/duplicate/order events are passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from linkstack.errors import ConfigError, DecodeError, EncodeError
from linkstack.fast_dataclass import fast_init
from linkstack.payload.messages import (
    Message,
    MessageType,
    PartialResult,
    Prompt,
    Result,
    decode_message,
    peek_request_id,
)
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import (
    HEADER,
    MAX_APID,
    MAX_DATA_FIELD_LENGTH,
    PRIMARY_HEADER_SIZE,
    PacketType,
    SequenceFlags,
    SpacePacket,
    packet_length,
)
from linkstack.spp.segmentation import (
    DuplicatePacket,
    OutOfOrder,
    PartialDiscarded,
    PayloadComplete,
    Reassembler,
    ReassemblyEvent,
    Segmenter,
)

PROMPT_APID = 0x100
"""Default APID of prompt packets (uplink, TC)."""
RESULT_APID = 0x101
"""Default APID of result packets (downlink, TM)."""
DEFAULT_MAX_DATA_LENGTH = 1024
"""Default largest Packet Data Field per payload packet: small enough that one packet fits a
typical TC frame (1024 octets max., 232.0-B §4.1.1) after its headers once the frame layer
splits it, big enough that a short prompt is one packet."""
MAX_MESSAGE_OCTETS = 1 << 20
"""Largest reassembled message the receivers accept (texts are ≤ 256 KiB plus headers)."""


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """APIDs and packet sizes of the payload channel (both ends must agree).

    Attributes:
        prompt_apid: APID of prompt packets (uplink TC packets).
        result_apid: APID of result packets (downlink TM packets).
        max_data_length: largest Packet Data Field of one packet; longer messages are
            segmented (133.0-B-2 §4.1.3.4.2.2).
        max_message: largest reassembled message accepted.
    """

    prompt_apid: int = PROMPT_APID
    result_apid: int = RESULT_APID
    max_data_length: int = DEFAULT_MAX_DATA_LENGTH
    max_message: int = MAX_MESSAGE_OCTETS

    def __post_init__(self) -> None:
        for key in ("prompt_apid", "result_apid"):
            apid = getattr(self, key)
            if not 0 <= apid < MAX_APID:  # 0x7FF is the idle APID
                raise ConfigError(f"{apid} is outside 0..{MAX_APID - 1}", key=key)
        if self.prompt_apid == self.result_apid:
            raise ConfigError("prompt and result APIDs must differ", key="result_apid")
        if not 16 <= self.max_data_length <= MAX_DATA_FIELD_LENGTH:
            raise ConfigError(f"{self.max_data_length} is outside 16..{MAX_DATA_FIELD_LENGTH}",
                              key="max_data_length")
        if self.max_message < 64:
            raise ConfigError("must be at least 64 octets", key="max_message")


# -- events ---------------------------------------------------------------------------------

@fast_init
@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A whole message arrived and decoded."""

    message: Message
    apid: int
    first_count: int
    packets: int


@fast_init
@dataclass(frozen=True, slots=True)
class MessageRejected:
    """Octets that do not make a valid message (or packet) of the expected type.

    ``request_id`` is set when the message's common header was readable, so that the
    sender can be told; ``apid`` is None when not even the packet header was readable.
    """

    apid: int | None
    error: DecodeError
    request_id: int | None
    octets: int


@fast_init
@dataclass(frozen=True, slots=True)
class MessageLost:
    """A segmented message was abandoned by the reassembler (gap, order, size)."""

    apid: int
    request_id: int | None
    octets: int
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class PacketIgnored:
    """A packet on an APID this receiver does not serve (or an idle packet)."""

    apid: int
    sequence_count: int


TransportEvent = (
    MessageReceived | MessageRejected | MessageLost | PacketIgnored | ReassemblyEvent
)


# The Sequence Flags as module constants: an enum attribute look-up costs more than the
# comparison it feeds, twice per packet.
_FIRST = SequenceFlags.FIRST
_LAST = SequenceFlags.LAST
_UNSEGMENTED = SequenceFlags.UNSEGMENTED


# -- the two ends -----------------------------------------------------------------------------

class MessageSender:
    """Encodes messages into Space Packets on one APID (133.0-B-2 §4.1)."""

    def __init__(self, apid: int, *, packet_type: PacketType,
                 max_data_length: int = DEFAULT_MAX_DATA_LENGTH,
                 counter: SequenceCounter | None = None) -> None:
        self.apid = apid
        self.packet_type = packet_type
        self._segmenter = Segmenter(apid, max_data_length=max_data_length,
                                    packet_type=packet_type, counter=counter)

    def packets(self, message: Message) -> list[SpacePacket]:
        """The packets carrying ``message`` (one, or FIRST…LAST). Raises EncodeError."""
        return self._segmenter.segment(message.encode())

    def encode(self, message: Message) -> list[bytes]:
        """Like :meth:`packets`, as octets ready for the frame layer."""
        return [p.encode() for p in self.packets(message)]

    def encode_raw(self, data: bytes) -> list[bytes]:
        """Packets carrying arbitrary octets (e.g. a message encoded elsewhere)."""
        if not data:
            raise EncodeError("empty message", layer="payload", field="message")
        return [p.encode() for p in self._segmenter.segment(data)]


class MessageReceiver:
    """Reassembles and decodes the messages of one type arriving on the given APIDs
    (``expect=MessageType.RESULT`` takes Results and PartialResults)."""

    def __init__(self, apids: Iterable[int], *, expect: MessageType,
                 max_message: int = MAX_MESSAGE_OCTETS,
                 reassembly_timeout_s: float | None = None) -> None:
        if reassembly_timeout_s is not None and not reassembly_timeout_s > 0:
            raise ConfigError("must be > 0 or None", key="reassembly_timeout_s")
        self.apids = frozenset(apids)
        self.expect = expect
        self.reassembly_timeout_s = reassembly_timeout_s
        self._reassembler = Reassembler(max_payload=max_message)
        self._open: dict[int, int | None] = {}  # APID -> request id of the open FIRST packet
        self._opened_at: dict[int, float] = {}  # APID -> `now` of that FIRST packet

    def feed(self, packet: SpacePacket | bytes | bytearray | memoryview,
             now: float = 0.0) -> list[TransportEvent]:
        """Take one Space Packet (object, or its exact octets) at time ``now``; return events.

        ``now`` only matters with a ``reassembly_timeout_s``: it starts the clock of a
        segmented message at its FIRST packet.
        """
        if not isinstance(packet, SpacePacket):
            raw = bytes(packet)
            try:
                total = packet_length(raw)
                pkt = SpacePacket.decode(raw)
                if total != len(raw):
                    raise DecodeError(f"{len(raw) - total} octets after the packet",
                                      layer="spp", field="packet_data_length", offset=4)
            except DecodeError as exc:
                return [self._bad_packet(raw, exc)]
            packet = pkt
        if packet.apid not in self.apids:
            return [PacketIgnored(packet.apid, packet.sequence_count)]
        apid = packet.apid
        had = self._open.get(apid)
        out: list[TransportEvent] = []
        dropped = False
        first_discard = self._reassembler.is_open(apid)
        for event in self._reassembler.feed(packet):
            if isinstance(event, PayloadComplete):
                out.append(self._decode(event))
            elif isinstance(event, PartialDiscarded):
                # The first discard on this APID is the open payload (whose FIRST packet we
                # saw); a second one in the same call is this very packet (too large).
                if first_discard:
                    rid, first_discard = had, False
                elif packet.sequence_flags == _UNSEGMENTED:
                    rid = peek_request_id(packet.data, self.expect)
                else:
                    rid = None
                out.append(event)
                out.append(MessageLost(event.apid, rid, event.octets, event.reason))
            else:
                if isinstance(event, DuplicatePacket) or (
                    isinstance(event, OutOfOrder) and event.octets > 0
                ):
                    dropped = True
                out.append(event)
        if not dropped:
            flags = packet.sequence_flags
            if flags == _FIRST:
                self._open[apid] = peek_request_id(packet.data, self.expect)
                self._opened_at[apid] = now
            elif flags in (_LAST, _UNSEGMENTED):
                self._open.pop(apid, None)
        if not self._reassembler.is_open(apid):
            self._open.pop(apid, None)
            self._opened_at.pop(apid, None)
        return out

    def next_deadline(self) -> float | None:
        """When the oldest partial message times out (None: no timeout or none open)."""
        if self.reassembly_timeout_s is None or not self._opened_at:
            return None
        return min(self._opened_at.values()) + self.reassembly_timeout_s

    def on_timer(self, now: float) -> list[TransportEvent]:
        """Abandon every partial message older than ``reassembly_timeout_s``."""
        if self.reassembly_timeout_s is None:
            return []
        out: list[TransportEvent] = []
        for apid, t0 in sorted(self._opened_at.items()):
            if now >= t0 + self.reassembly_timeout_s:
                out.extend(self.flush(apid, f"reassembly timeout after {now - t0:.3f} s"))
        return out

    def open_apids(self) -> list[int]:
        """APIDs on which a segmented message is being reassembled."""
        return self._reassembler.open_apids()

    def flush(self, apid: int | None = None, reason: str = "flushed") -> list[TransportEvent]:
        """Abandon the partial message(s) of ``apid`` (or all), e.g. at a reassembly timeout.
        Returns the reassembler's discards and one :class:`MessageLost` each."""
        out: list[TransportEvent] = []
        for event in self._reassembler.flush(apid):
            out.append(event)
            if isinstance(event, PartialDiscarded):
                out.append(MessageLost(event.apid, self._open.pop(event.apid, None),
                                       event.octets, reason))
                self._opened_at.pop(event.apid, None)
        return out

    def _decode(self, event: PayloadComplete) -> TransportEvent:
        try:
            message = decode_message(event.data)
            if not _is_type(message, self.expect):
                raise DecodeError(
                    f"expected a {self.expect.name.lower()} message", layer="payload",
                    field="message_type", offset=0,
                )
        except DecodeError as exc:
            return MessageRejected(event.apid, exc, peek_request_id(event.data, self.expect),
                                   len(event.data))
        return MessageReceived(message, event.apid, event.first_count, event.packets)

    def _bad_packet(self, raw: bytes, exc: DecodeError) -> MessageRejected:
        """An undecodable packet: name its APID and request id when they are readable."""
        apid: int | None = None
        request_id: int | None = None
        if len(raw) >= PRIMARY_HEADER_SIZE:
            try:
                _ptype, _shf, apid, flags, _count, _length = HEADER.unpack(raw)
            except DecodeError:
                apid = None
            else:
                if apid in self.apids and flags in (SequenceFlags.FIRST,
                                                    SequenceFlags.UNSEGMENTED):
                    request_id = peek_request_id(raw[PRIMARY_HEADER_SIZE:], self.expect)
        return MessageRejected(apid, exc, request_id, len(raw))


_PROMPT = MessageType.PROMPT


def _is_type(message: Message, expect: MessageType) -> bool:
    if expect == _PROMPT:
        return isinstance(message, Prompt)
    return isinstance(message, Result | PartialResult)  # both on the result APID
