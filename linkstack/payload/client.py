"""The ground side of the AI payload channel: :class:`PromptClient` (sans-IO).

It builds Prompt packets (uplink TC Space Packets on the prompt APID, CCSDS 133.0-B-2) with
fresh request ids, matches Result packets (downlink TM on the result APID) to the requests
waiting for them, and reports requests that got no answer in time. PartialResults of a
streamed answer are put together in order (:class:`StreamAssembler`) and reported as
:class:`PartialReceived` with the text so far; the Result closes the stream, whatever
segments were lost. Like every protocol engine
here it never reads a clock: ``now`` is passed in, and :meth:`next_deadline` /
:meth:`on_timer` drive the timeouts.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from linkstack.errors import ConfigError
from linkstack.fast_dataclass import fast_init
from linkstack.payload.messages import (
    UNKNOWN_REQUEST_ID,
    GenerationParams,
    MessageType,
    PartialResult,
    Prompt,
    Result,
)
from linkstack.payload.transport import (
    MessageReceived,
    MessageReceiver,
    MessageSender,
    TransportConfig,
    TransportEvent,
)
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import PacketType, SpacePacket


class StreamAssembler:
    """Puts the PartialResult segments of one answer together in order (sans-IO).

    Segments are slices of the answer's UTF-8 octets at ``text_offset``; one that arrives
    after a gap is held until the gap is filled, an overlap or a duplicate is trimmed.
    :meth:`add` returns the text that became contiguous.
    """

    __slots__ = ("_have", "_held", "segments")

    def __init__(self) -> None:
        self._have = bytearray()
        self._held: dict[int, bytes] = {}
        self.segments = 0
        """Segments taken (duplicates included)."""

    @property
    def text(self) -> str:
        """The contiguous text from the start of the answer."""
        return self._have.decode("utf-8", "replace")

    @property
    def held(self) -> int:
        """Segments waiting for a gap before them to be filled."""
        return len(self._held)

    def add(self, partial: PartialResult) -> str:
        """Take one segment; return the text it (and any held segments) appended."""
        self.segments += 1
        before = len(self._have)
        raw = partial.text.encode("utf-8", "surrogatepass")
        if partial.text_offset > len(self._have):
            if len(raw) > len(self._held.get(partial.text_offset, b"")):
                self._held[partial.text_offset] = raw
            return ""
        self._append(partial.text_offset, raw)
        while True:
            ready = [o for o in self._held if o <= len(self._have)]
            if not ready:
                break
            for o in sorted(ready):
                self._append(o, self._held.pop(o))
        return self._have[before:].decode("utf-8", "replace")

    def _append(self, offset: int, raw: bytes) -> None:
        skip = len(self._have) - offset
        if skip < len(raw):
            self._have += raw[skip:]


@dataclass(slots=True)
class PendingRequest:
    """A prompt sent and not yet answered."""

    prompt: Prompt
    sent_at: float
    deadline: float | None
    packets: int
    stream: StreamAssembler | None = None
    """The partial results received so far (None: none yet)."""
    first_text_at: float | None = None
    """When the first partial result with text arrived."""


@fast_init
@dataclass(frozen=True, slots=True)
class ResultReceived:
    """The Result for one of our requests. ``round_trip_s`` = arrival − send time;
    ``ttft_s`` = arrival of the first text (the first partial result, else this Result) −
    send time; ``segments``: partial results received before it."""

    request_id: int
    result: Result
    prompt: Prompt
    round_trip_s: float
    ttft_s: float = 0.0
    segments: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class PartialReceived:
    """A PartialResult for one of our requests. ``new_text`` is what it made contiguous (""
    if it arrived after a gap and is held), ``text`` the whole answer so far."""

    request_id: int
    partial: PartialResult
    new_text: str
    text: str
    elapsed_s: float


@fast_init
@dataclass(frozen=True, slots=True)
class UnmatchedPartial:
    """A PartialResult for no pending request (its Result already came, or not ours)."""

    partial: PartialResult


@fast_init
@dataclass(frozen=True, slots=True)
class UnmatchedResult:
    """A Result for no pending request: late (after its timeout), duplicated, not ours, or a
    ``MALFORMED`` answer to bytes whose request id the endpoint could not read."""

    result: Result


@fast_init
@dataclass(frozen=True, slots=True)
class RequestTimedOut:
    """No Result arrived within ``timeout_s`` of sending."""

    request_id: int
    prompt: Prompt
    sent_at: float


ClientEvent = (ResultReceived | PartialReceived | UnmatchedResult | UnmatchedPartial
               | RequestTimedOut | TransportEvent)


class PromptClient:
    """Builds prompt packets and matches result packets to them (the ground application).

    Args:
        config: APIDs and packet size (must match the endpoint's).
        timeout_s: how long to wait for a Result (None: forever).
        first_request_id: request id of the first prompt; ids then count up modulo 2**32,
            skipping :data:`~linkstack.payload.messages.UNKNOWN_REQUEST_ID`.
        counter: the Packet Sequence Count source of the prompt APID (133.0-B-2 §4.1.3.4.3);
            share one with every other source of packets on that APID.
    """

    def __init__(self, config: TransportConfig | None = None, *, timeout_s: float | None = 900.0,
                 first_request_id: int = 0, counter: SequenceCounter | None = None) -> None:
        self.config = config or TransportConfig()
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError("must be > 0 or None", key="timeout_s")
        if not 0 <= first_request_id < UNKNOWN_REQUEST_ID:
            raise ConfigError(f"must be 0..{UNKNOWN_REQUEST_ID - 1}", key="first_request_id")
        self.timeout_s = timeout_s
        self._next_id = first_request_id
        self.counter = counter if counter is not None else SequenceCounter()
        self._sender = MessageSender(self.config.prompt_apid, packet_type=PacketType.TC,
                                     max_data_length=self.config.max_data_length,
                                     counter=self.counter)
        self._receivers: dict[Hashable, MessageReceiver] = {}
        self.pending: dict[int, PendingRequest] = {}

    def _take_id(self) -> int:
        while True:
            rid = self._next_id
            self._next_id = (self._next_id + 1) % (1 << 32)
            if rid != UNKNOWN_REQUEST_ID and rid not in self.pending:
                return rid

    def ask(self, text: str, now: float, *, model_id: str = "",
            params: GenerationParams | None = None, priority: int = 0
            ) -> tuple[int, list[bytes]]:
        """Make a Prompt (``priority`` 0..3, highest served first); return its request id
        and the packet octets to uplink.

        Raises :class:`~linkstack.errors.EncodeError` if the prompt breaks a message limit
        (nothing is then pending).
        """
        rid = self._take_id()
        prompt = Prompt(rid, text, model_id, params or GenerationParams(), priority)
        packets = self._sender.encode(prompt)
        deadline = None if self.timeout_s is None else now + self.timeout_s
        self.pending[rid] = PendingRequest(prompt, now, deadline, len(packets))
        return rid, packets

    def receive_packet(self, packet: SpacePacket | bytes | bytearray | memoryview,
                       now: float, *, source: Hashable = None) -> list[ClientEvent]:
        """Take one downlinked result packet at ``now``; return events.

        ``source`` names the spacecraft it came from when several answer on the same APID (a
        constellation): Packet Sequence Counts run per source (133.0-B-2 §4.1.3.4.3), so each
        gets its own reassembly and sequence check."""
        receiver = self._receivers.get(source)
        if receiver is None:
            receiver = self._receivers[source] = MessageReceiver(
                [self.config.result_apid], expect=MessageType.RESULT,
                max_message=self.config.max_message)
        out: list[ClientEvent] = []
        for event in receiver.feed(packet, now):
            if isinstance(event, MessageReceived) and isinstance(event.message, PartialResult):
                out.append(self._partial(event.message, now))
            elif isinstance(event, MessageReceived):
                result = event.message
                assert isinstance(result, Result)
                pending = self.pending.pop(result.request_id, None)
                if pending is None:
                    out.append(UnmatchedResult(result))
                else:
                    first = pending.first_text_at if pending.first_text_at is not None else now
                    segments = pending.stream.segments if pending.stream is not None else 0
                    out.append(ResultReceived(result.request_id, result, pending.prompt,
                                              now - pending.sent_at,
                                              first - pending.sent_at, segments))
            else:
                out.append(event)
        return out

    def _partial(self, partial: PartialResult, now: float) -> ClientEvent:
        pending = self.pending.get(partial.request_id)
        if pending is None:
            return UnmatchedPartial(partial)
        if pending.stream is None:
            pending.stream = StreamAssembler()
        new = pending.stream.add(partial)
        if new and pending.first_text_at is None:
            pending.first_text_at = now
        return PartialReceived(partial.request_id, partial, new, pending.stream.text,
                               now - pending.sent_at)

    def forget_source(self, source: Hashable) -> None:
        """Drop the reassembly and sequence state of ``source`` (it will send no more)."""
        self._receivers.pop(source, None)

    def cancel(self, request_id: int) -> None:
        """Stop waiting for ``request_id`` (a later Result becomes an UnmatchedResult)."""
        self.pending.pop(request_id, None)

    def next_deadline(self) -> float | None:
        deadlines = [p.deadline for p in self.pending.values() if p.deadline is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> list[ClientEvent]:
        """Report (and forget) every request whose deadline has passed."""
        out: list[ClientEvent] = []
        for rid, p in list(self.pending.items()):
            if p.deadline is not None and now >= p.deadline:
                del self.pending[rid]
                out.append(RequestTimedOut(rid, p.prompt, p.sent_at))
        return out
