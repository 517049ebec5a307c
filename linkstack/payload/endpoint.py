"""The onboard model endpoint: a sans-IO request handler in front of a model backend.

:class:`ModelEndpoint` is fed prompt Space Packets (CCSDS 133.0-B-2) and the current time; it
reassembles and decodes Prompts, checks them, queues them, and hands jobs to its driver; the
driver runs each job on the backend (in a thread, or inline while virtual time stands still)
and gives the :class:`~linkstack.payload.backend.Generation` back to :meth:`complete`, which
returns the Result packets to downlink. The endpoint never reads a clock, sleeps, or touches
a socket (specs/architecture.md principle 1); time comes in as ``now`` (seconds, any epoch,
monotonic), and the queue's timer is explicit (:meth:`next_deadline` / :meth:`on_timer`).

A driver loop::

    events = endpoint.receive_packet(packet_octets, now)      # send ResultSent.packets
    while (job := endpoint.next_job(now)) is not None:
        try:
            generation = backend.generate(job.prompt.text, job.prompt.params)
        except Exception as exc:
            packets = endpoint.fail(job, now2, Status.BACKEND_ERROR, str(exc))
        else:
            packets = endpoint.complete(job, generation, now2)  # downlink these

Every bad input gets a Result with its status and the endpoint keeps serving:

=================  ==========================================================================
MALFORMED          the prompt packet or message does not decode (truncated, bad field, bad
                   zstd, wrong type), or a segmented prompt was abandoned by the reassembler
                   after its first packet was seen. The request id is echoed when readable,
                   else :data:`~linkstack.payload.messages.UNKNOWN_REQUEST_ID`.
UNKNOWN_MODEL      ``model_id`` is not one of the backend's ``model_ids`` ("" = the default).
PROMPT_TOO_LONG    the templated prompt has more tokens than ``backend.max_prompt_tokens``
                   (counted with the model's tokenizer), or, when the backend has no
                   tokenizer, more UTF-8 octets than ``max_prompt_octets``.
BUSY               the queue already holds ``queue_limit`` prompts.
TIMEOUT            ``timeout_s`` after arrival the prompt was still queued (answered by
                   :meth:`on_timer`), or its generation completed after that deadline (the
                   result then carries the timings and token counts but no text).
BACKEND_ERROR      the driver reported that the backend raised (:meth:`fail`).
=================  ==========================================================================

Slots and queue: at most ``concurrency`` jobs run at once (the inference slots; the driver
runs them in parallel), at most ``queue_limit`` more wait. The queue is served by priority
(the Prompt's 0..3, highest first), first come first served within a priority.

Streaming: with ``stream_tokens`` or ``stream_interval_s`` set, the driver reports the answer
as it grows (:meth:`progress`), and the endpoint cuts it into
:class:`~linkstack.payload.messages.PartialResult` segments: the first as soon as any text is
final, then whenever ``stream_tokens`` more tokens were generated or ``stream_interval_s``
passed since the last segment, whichever comes first. The Result at the end carries the whole
text and closes the stream.

Queueing time (``queue_time_us``) is job start − prompt arrival, both in the caller's ``now``.
Inference time (``inference_time_us``) is the backend's measured time scaled by the
endpoint's flight profile (:func:`~linkstack.payload.backend.scaled_inference_s`); a simulator
should advance its virtual clock by :meth:`Job.scaled_inference_s` before calling
:meth:`complete`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from linkstack.errors import ConfigError, DecodeError, ProtocolError
from linkstack.fast_dataclass import fast_init
from linkstack.payload.backend import (
    FlightProfile,
    Generation,
    ModelBackend,
    ModelGeneration,
    get_profile,
)
from linkstack.payload.messages import (
    MAX_PROMPT_OCTETS,
    MAX_RESULT_OCTETS,
    UNKNOWN_REQUEST_ID,
    FinishReason,
    MessageType,
    PartialResult,
    Prompt,
    Result,
    Status,
)
from linkstack.payload.transport import (
    MessageLost,
    MessageReceived,
    MessageReceiver,
    MessageRejected,
    MessageSender,
    TransportConfig,
    TransportEvent,
)
from linkstack.spp.counters import SequenceCounter
from linkstack.spp.packet import PacketType, SpacePacket


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Settings of a :class:`ModelEndpoint`.

    Attributes:
        transport: APIDs and packet size of the payload channel.
        queue_limit: prompts that may wait (running jobs not counted); more → ``BUSY``.
        concurrency: jobs handed out at once by :meth:`ModelEndpoint.next_job`.
        timeout_s: per-request deadline after arrival (None: no deadline).
        max_prompt_octets: prompt limit in UTF-8 octets when the backend cannot count tokens.
        profile: flight profile that scales measured inference times.
        reassembly_timeout_s: a segmented prompt whose LAST packet has not arrived this long
            after its FIRST is abandoned and answered ``MALFORMED`` (None: wait forever).
        stream_tokens: stream partial results, a new segment every this many generated
            tokens (0: not by count).
        stream_interval_s: stream partial results, a new segment when this long passed since
            the last one (0: not by time). Both 0: no streaming, the Result only.
    """

    transport: TransportConfig = field(default_factory=TransportConfig)
    queue_limit: int = 4
    concurrency: int = 1
    timeout_s: float | None = 600.0
    max_prompt_octets: int = 8192
    profile: str | FlightProfile = "this-machine"
    reassembly_timeout_s: float | None = 120.0
    stream_tokens: int = 0
    stream_interval_s: float = 0.0

    @property
    def streaming(self) -> bool:
        """True when partial results are sent."""
        return self.stream_tokens > 0 or self.stream_interval_s > 0

    def __post_init__(self) -> None:
        if self.queue_limit < 0:
            raise ConfigError("must be >= 0", key="queue_limit")
        if self.concurrency < 1:
            raise ConfigError("must be >= 1", key="concurrency")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError("must be > 0 or None", key="timeout_s")
        if not 1 <= self.max_prompt_octets <= MAX_PROMPT_OCTETS:
            raise ConfigError(f"must be 1..{MAX_PROMPT_OCTETS}", key="max_prompt_octets")
        if not 0 <= self.stream_tokens <= 0xFFFF:
            raise ConfigError("must be 0..65535", key="stream_tokens")
        if not 0 <= self.stream_interval_s < float("inf"):
            raise ConfigError("must be >= 0 and finite", key="stream_interval_s")
        get_profile(self.profile)


@dataclass(slots=True)
class Job:
    """One accepted prompt, from arrival to its result."""

    prompt: Prompt
    model_id: str
    arrival: float
    deadline: float | None
    prompt_tokens: int | None
    started: float | None = None
    profile: FlightProfile | None = None
    streamed: str = ""
    """The text already sent in partial results."""
    segments: int = 0
    """Partial results sent."""
    cut_tokens: int = 0
    cut_at: float = 0.0

    @property
    def request_id(self) -> int:
        return self.prompt.request_id

    @property
    def priority(self) -> int:
        return self.prompt.priority

    @property
    def queue_time_s(self) -> float:
        """Start − arrival (0 until started)."""
        return 0.0 if self.started is None else self.started - self.arrival

    def scaled_inference_s(self, generation: Generation) -> float:
        """The generation's inference time on the endpoint's flight computer."""
        factor = self.profile.speed_factor if self.profile is not None else 1.0
        return generation.inference_s * factor


# -- events --------------------------------------------------------------------------------------

@fast_init
@dataclass(frozen=True, slots=True)
class PromptQueued:
    """A prompt passed every check and waits for :meth:`ModelEndpoint.next_job`."""

    request_id: int
    model_id: str
    prompt_tokens: int | None
    queue_depth: int


@fast_init
@dataclass(frozen=True, slots=True)
class ResultSent:
    """The endpoint produced a Result without running the model (a rejection or timeout).

    ``packets`` are the Result's Space Packet octets to downlink.
    """

    result: Result
    packets: list[bytes]


@fast_init
@dataclass(frozen=True, slots=True)
class DuplicatePrompt:
    """A prompt whose request id is already queued or running: ignored (no second answer)."""

    request_id: int


EndpointEvent = PromptQueued | ResultSent | DuplicatePrompt | TransportEvent


def _us(seconds: float) -> int:
    return max(0, round(seconds * 1e6))


class ModelEndpoint:
    """Sans-IO request handler of the onboard model (see the module docstring).

    Not thread-safe: call it from one thread. A driver that runs inference in a worker thread
    hands the Generation back to that thread before calling :meth:`complete`.

    ``counter`` is the spacecraft side's Packet Sequence Count source for the result APID
    (133.0-B-2 §4.1.3.4.3); a private one is made if omitted.
    """

    def __init__(self, backend: ModelBackend, config: EndpointConfig | None = None, *,
                 counter: SequenceCounter | None = None) -> None:
        self.backend = backend
        self.config = config or EndpointConfig()
        t = self.config.transport
        self.profile = get_profile(self.config.profile)
        self._receivers: dict[Hashable, MessageReceiver] = {}
        self._sender = MessageSender(t.result_apid, packet_type=PacketType.TM,
                                     max_data_length=t.max_data_length, counter=counter)
        self._queue: deque[Job] = deque()
        self._running: dict[int, Job] = {}
        self.stats: dict[str, int] = {s.name.lower(): 0 for s in Status}

    # -- introspection -----------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- input ---------------------------------------------------------------------------------
    def _receiver_for(self, source: Hashable) -> MessageReceiver:
        receiver = self._receivers.get(source)
        if receiver is None:
            t = self.config.transport
            receiver = self._receivers[source] = MessageReceiver(
                [t.prompt_apid], expect=MessageType.PROMPT, max_message=t.max_message,
                reassembly_timeout_s=self.config.reassembly_timeout_s)
        return receiver

    def receive_packet(self, packet: SpacePacket | bytes | bytearray | memoryview,
                       now: float, *, source: Hashable = None) -> list[EndpointEvent]:
        """Take one prompt packet (object or octets) at time ``now``; return events.

        Rejections come back as :class:`ResultSent` events carrying the packets to downlink.
        ``source`` names the sender when several send on the same APID (the ground stations of
        a constellation): Packet Sequence Counts run per source (133.0-B-2 §4.1.3.4.3), so each
        source gets its own reassembly and sequence check.
        """
        return self._handle(self._receiver_for(source).feed(packet, now), now)

    def forget_source(self, source: Hashable) -> None:
        """Drop the reassembly and sequence state of ``source`` (it will send no more)."""
        self._receivers.pop(source, None)

    def _handle(self, events: list[TransportEvent], now: float) -> list[EndpointEvent]:
        out: list[EndpointEvent] = []
        for event in events:
            if isinstance(event, MessageReceived):
                assert isinstance(event.message, Prompt)
                out.extend(self._accept(event.message, now))
            elif isinstance(event, MessageRejected):
                out.append(event)
                out.append(self._reply(Result(
                    _rid(event.request_id), Status.MALFORMED, _detail(event.error))))
            elif isinstance(event, MessageLost):
                out.append(event)
                if event.request_id is not None:
                    out.append(self._reply(Result(
                        event.request_id, Status.MALFORMED,
                        f"prompt lost in transit ({event.octets} octets received): "
                        f"{event.reason}")))
            else:
                out.append(event)
        return out

    def _accept(self, prompt: Prompt, now: float) -> list[EndpointEvent]:
        rid = prompt.request_id
        if rid in self._running or any(j.request_id == rid for j in self._queue):
            return [DuplicatePrompt(rid)]
        ids = self.backend.model_ids
        model_id = prompt.model_id or ids[0]
        if model_id not in ids:
            return [self._reply(Result(rid, Status.UNKNOWN_MODEL,
                                       f"unknown model; this endpoint serves {', '.join(ids)}",
                                       prompt.model_id))]
        try:
            tokens = self.backend.count_tokens(prompt.text)
        except Exception as exc:  # a tokenizer failure must not stop the endpoint
            return [self._reply(Result(rid, Status.BACKEND_ERROR, f"tokenizer: {exc}",
                                       model_id))]
        if tokens is not None:
            limit = self.backend.max_prompt_tokens
            if tokens > limit:
                return [self._reply(Result(
                    rid, Status.PROMPT_TOO_LONG, f"prompt is {tokens} tokens, at most {limit}",
                    model_id, prompt_tokens=tokens))]
        else:
            octets = len(prompt.text.encode("utf-8"))
            if octets > self.config.max_prompt_octets:
                return [self._reply(Result(
                    rid, Status.PROMPT_TOO_LONG,
                    f"prompt is {octets} octets, at most {self.config.max_prompt_octets}",
                    model_id))]
        if len(self._queue) >= self.config.queue_limit:
            return [self._reply(Result(
                rid, Status.BUSY, f"queue full ({self.config.queue_limit} waiting)", model_id,
                prompt_tokens=tokens or 0))]
        timeout = self.config.timeout_s
        job = Job(prompt, model_id, now, None if timeout is None else now + timeout, tokens,
                  profile=self.profile)
        self._queue.append(job)
        return [PromptQueued(rid, model_id, tokens, len(self._queue))]

    # -- the driver's side ---------------------------------------------------------------------
    def next_job(self, now: float) -> Job | None:
        """The next queued job — highest priority first, the oldest of that priority — marked
        started at ``now``; None if the queue is empty or ``concurrency`` jobs (all the
        slots) are already running. Expired jobs are not handed out (call :meth:`on_timer` to
        answer them)."""
        if len(self._running) >= self.config.concurrency:
            return None
        best: int | None = None
        for i, job in enumerate(self._queue):
            if (job.deadline is None or now < job.deadline) and (
                    best is None or job.priority > self._queue[best].priority):
                best = i
        if best is None:
            return None
        job = self._queue[best]
        del self._queue[best]
        job.started = now
        job.cut_at = now
        self._running[job.request_id] = job
        return job

    def progress(self, job: Job, text: str, completion_tokens: int, now: float) -> list[bytes]:
        """The driver's report that ``job``'s answer has grown to ``text`` (the answer so far,
        as :attr:`Generation.pieces` and the backends' ``on_token`` give it) after
        ``completion_tokens`` tokens, at ``now``. Returns the packets of a PartialResult to
        downlink, or nothing (streaming off, no new text, not yet time for a segment, or
        ``job`` no longer running: a late report is ignored)."""
        cfg = self.config
        if not cfg.streaming or self._running.get(job.request_id) is not job:
            return []
        if not text.startswith(job.streamed) or len(text) == len(job.streamed):
            return []
        due = job.segments == 0 or (
            cfg.stream_tokens > 0 and completion_tokens - job.cut_tokens >= cfg.stream_tokens
        ) or (cfg.stream_interval_s > 0 and now - job.cut_at >= cfg.stream_interval_s)
        if not due or job.segments > 0xFFFF:
            return []
        offset = len(job.streamed.encode("utf-8", "surrogatepass"))
        piece = _clip(text[len(job.streamed):], MAX_RESULT_OCTETS - offset)
        if not piece:
            return []
        started = job.started if job.started is not None else now
        partial = PartialResult(job.request_id, job.segments, offset, piece, completion_tokens,
                                _us(now - started))
        job.streamed += piece
        job.segments += 1
        job.cut_tokens, job.cut_at = completion_tokens, now
        self.stats["partial"] = self.stats.get("partial", 0) + 1
        return self._sender.encode(partial)

    def complete(self, job: Job, generation: Generation, now: float) -> list[bytes]:
        """The driver finished ``job`` at ``now``: return the Result packets to downlink."""
        self._finish(job)
        inference_us = _us(job.scaled_inference_s(generation))
        late = job.deadline is not None and now > job.deadline
        text = generation.text
        status = Status.OK
        if late:
            status, text = Status.TIMEOUT, ""
        text = _clip(text, MAX_RESULT_OCTETS)
        model_id = job.model_id
        if isinstance(generation, ModelGeneration) and generation.model_id:
            model_id = generation.model_id  # the model that answered (it may have changed)
        result = Result(
            job.request_id, status, text, model_id, generation.prompt_tokens,
            generation.completion_tokens, _us(job.queue_time_s), inference_us,
            generation.finish_reason if not late else FinishReason.NONE,
        )
        return self._reply(result).packets

    def fail(self, job: Job, now: float, status: Status = Status.BACKEND_ERROR,
             detail: str = "") -> list[bytes]:
        """The driver could not run ``job`` (the backend raised, or the driver gave up at the
        deadline): return the Result packets (``status`` with ``detail``) to downlink."""
        if status is Status.OK:
            raise ProtocolError("fail() needs an error status")
        self._finish(job)
        running_s = 0.0 if job.started is None else max(0.0, now - job.started)
        detail = _clip(detail, 1024)
        return self._reply(Result(job.request_id, status, detail, job.model_id,
                                  job.prompt_tokens or 0, 0, _us(job.queue_time_s),
                                  _us(running_s))).packets

    def _finish(self, job: Job) -> None:
        if self._running.get(job.request_id) is not job:
            raise ProtocolError(f"job {job.request_id} is not running on this endpoint")
        del self._running[job.request_id]

    # -- timers ----------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """Earliest deadline among queued prompts and partial prompts (None: no timer)."""
        deadlines = [j.deadline for j in self._queue if j.deadline is not None]
        reassembly = min((d for r in self._receivers.values()
                          if (d := r.next_deadline()) is not None), default=None)
        if reassembly is not None:
            deadlines.append(reassembly)
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> list[EndpointEvent]:
        """Answer every queued prompt whose deadline has passed with ``TIMEOUT``, and every
        partial prompt past the reassembly timeout with ``MALFORMED``."""
        out: list[EndpointEvent] = []
        for receiver in self._receivers.values():
            out.extend(self._handle(receiver.on_timer(now), now))
        keep: deque[Job] = deque()
        for job in self._queue:
            if job.deadline is not None and now >= job.deadline:
                out.append(self._reply(Result(
                    job.request_id, Status.TIMEOUT,
                    f"waited {now - job.arrival:.3f} s in the queue", job.model_id,
                    job.prompt_tokens or 0, 0, _us(now - job.arrival), 0)))
            else:
                keep.append(job)
        self._queue = keep
        return out

    # -- output ------------------------------------------------------------------------------------
    def _reply(self, result: Result) -> ResultSent:
        self.stats[result.status.name.lower()] += 1
        return ResultSent(result, self._sender.encode(result))


def _clip(text: str, octets: int) -> str:
    """``text`` as valid UTF-8 of at most ``octets`` octets (lone surrogates replaced)."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= octets and len(raw) == len(text.encode("utf-8", "surrogatepass")):
        return text
    return raw[:octets].decode("utf-8", "ignore")


def _rid(request_id: int | None) -> int:
    return UNKNOWN_REQUEST_ID if request_id is None else request_id


def _detail(error: DecodeError) -> str:
    return f"malformed prompt: {error}"[:1024]
