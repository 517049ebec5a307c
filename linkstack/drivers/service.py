"""The prompt service: what the MQTT gateway (and any ground application) forwards prompts to.

:class:`PromptService` is the interface: ``ask`` one prompt, get one :class:`ServiceResult`
with the answer and where the time went; ``status`` reports the link for dashboards.
Implementations:

- :class:`LocalEndpointService` (here): the payload codec and the onboard model endpoint in
  this process, with Space Packets both ways (CCSDS 133.0-B-2) and no radio link. The whole
  AI payload channel is real (:class:`~linkstack.payload.client.PromptClient` →
  :class:`~linkstack.payload.endpoint.ModelEndpoint` → a
  :class:`~linkstack.payload.backend.ModelBackend` → Result packets → the client); only the
  hops are missing.
- :class:`linkstack.drivers.udp.UdpGroundService`: the same client at a ground station, carrying the
  packets over the RF hop (COP-1, TC/CLTU up, TM/CADU down) as UDP datagrams to a
  ``linkstack serve --role satellite`` process.

Streaming: a service whose ``streams`` attribute is true takes ``on_partial`` in ``ask`` and
calls it with a :class:`PartialUpdate` for each partial result that reaches the ground, in
order, before ``ask`` returns (the endpoint must be configured to stream, see
:class:`~linkstack.payload.endpoint.EndpointConfig`).

Result ``status`` strings are the payload Result statuses in lower case (``ok``,
``unknown_model``, ``prompt_too_long``, ``busy``, ``timeout``, ``malformed``,
``backend_error``); ``breakdown`` maps ``segment.component`` to seconds and sums to
``total_s`` (specs/architecture.md principle 5).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from linkstack.errors import LinkstackError
from linkstack.payload.backend import Generation, ModelBackend
from linkstack.payload.client import (
    PartialReceived,
    PromptClient,
    RequestTimedOut,
    ResultReceived,
)
from linkstack.payload.endpoint import (
    EndpointConfig,
    Job,
    ModelEndpoint,
    PromptQueued,
    ResultSent,
)
from linkstack.payload.messages import GenerationParams, Result, Status
from linkstack.payload.serving import generate
from linkstack.payload.transport import TransportConfig


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """The answer to one prompt.

    Attributes:
        status: ``ok`` or the error status, lower case (see the module docstring).
        text: the answer, or the error detail.
        breakdown: seconds per ``segment.component``; the values sum to ``total_s``.
        total_s: from the prompt handed to the service to its result back.
        info: extra JSON-able facts (token counts, model id) for the result message.
    """

    status: str
    text: str
    breakdown: dict[str, float]
    total_s: float
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartialUpdate:
    """Part of an answer, as it reached the ground.

    Attributes:
        segment: the PartialResult's segment number.
        text: the text it made contiguous ("" when it arrived after a gap and is held).
        so_far: the whole answer so far.
        elapsed_s: from the prompt handed to the service to this arrival.
    """

    segment: int
    text: str
    so_far: str
    elapsed_s: float


PartialCallback = Callable[[PartialUpdate], object]


def partial_update(event: PartialReceived) -> PartialUpdate:
    """The :class:`PartialUpdate` of a client event."""
    return PartialUpdate(event.partial.segment, event.new_text, event.text, event.elapsed_s)


@runtime_checkable
class PromptService(Protocol):
    """Where a gateway sends prompts."""

    async def ask(self, request_id: str, prompt: str, max_tokens: int) -> ServiceResult:
        """Carry one prompt to the model and its result back. ``request_id`` is the caller's
        id (for logs); it never raises for a bad prompt — that is an error result."""
        ...

    def status(self) -> dict[str, object]:
        """JSON-able link status and metrics."""
        ...


def status_name(status: Status | int) -> str:
    """``Status.BACKEND_ERROR`` → ``"backend_error"``."""
    return Status(status).name.lower()


def result_info(result: Result) -> dict[str, object]:
    """The facts of a payload Result worth publishing beside the text."""
    return {"model_id": result.model_id, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "finish_reason": result.finish_reason.name.lower(),
            "inference_time_us": result.inference_time_us,
            "queue_time_us": result.queue_time_us}


@dataclass(slots=True)
class _Marks:
    """Clock marks of one request in the local service (seconds)."""

    asked: float
    uplinked: float | None = None
    started: float | None = None
    generated: float | None = None


async def wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``event`` at most ``timeout`` seconds (None: forever).

    Uses ``asyncio.timeout``, not ``wait_for``: Python 3.11's ``wait_for`` can drop a
    cancellation that arrives together with the result (CPython gh-86296).
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


class TimerTask:
    """The timer/poll pump of a sans-IO engine in asyncio: runs ``on_timer(now)`` whenever
    ``next_deadline()`` passes (an engine's explicit timers, specs/architecture.md principle
    1), then ``on_wake(now)`` if given (a hop link sends what its endpoint has to send), and
    sleeps until the next deadline or :meth:`kick` (after feeding the engine).

    ``min_wait``: how long to sleep when the deadline is still due after ``on_timer`` (an
    engine that did not move it): 0 yields to the loop once, more keeps a lazy engine from
    spinning the CPU.
    """

    def __init__(self, next_deadline: Callable[[], float | None],
                 on_timer: Callable[[float], object], clock: Callable[[], float], *,
                 on_wake: Callable[[float], object] | None = None,
                 min_wait: float = 0.0) -> None:
        self.next_deadline = next_deadline
        self.on_timer = on_timer
        self.clock = clock
        self.on_wake = on_wake
        self.min_wait = min_wait
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            deadline = self.next_deadline()
            if deadline is not None and deadline <= now:
                self.on_timer(now)
            if self.on_wake is not None:
                self.on_wake(now)
            deadline = self.next_deadline()
            timeout = None if deadline is None else deadline - self.clock()
            if timeout is not None and timeout <= 0:
                timeout = self.min_wait
            await wait_event(self._wake, timeout)


class EndpointRunner:
    """Drives a :class:`~linkstack.payload.endpoint.ModelEndpoint` in an asyncio program.

    Prompt packets go in through :meth:`receive_packet`; result packets come out through
    ``send`` — at once for rejections, after generation otherwise. :meth:`run` (a task) hands
    the endpoint's jobs to the backend in worker threads (``asyncio.to_thread``: a one-second
    generation does not stall the event loop; the endpoint itself is only touched from the
    loop's thread, as it requires), up to the endpoint's ``concurrency`` (its inference slots)
    at once, turns a backend exception into a ``backend_error`` result, and runs the
    endpoint's timers (queue timeouts, reassembly timeouts). When the endpoint streams, the
    backend's token callback is brought to the loop's thread and the PartialResult packets
    the endpoint cuts are sent as they come.

    ``on_job`` is told ``(job, "started" | "generated", time)`` for latency accounting.
    """

    def __init__(self, endpoint: ModelEndpoint, send: Callable[[list[bytes]], object], *,
                 clock: Callable[[], float],
                 on_job: Callable[[Job, str, float], object] | None = None) -> None:
        self.endpoint = endpoint
        self.backend = endpoint.backend
        self.send = send
        self.clock = clock
        self.on_job = on_job
        self._wake = asyncio.Event()
        self.generations = 0

    def receive_packet(self, packet: bytes, now: float | None = None) -> list[object]:
        """Feed one prompt packet; results produced at once are sent; returns the events."""
        events: list[object] = list(self.endpoint.receive_packet(
            packet, self.clock() if now is None else now))
        self._send_results(events)
        self._wake.set()
        return events

    def _send_results(self, events: list[object]) -> None:
        for ev in events:
            if isinstance(ev, ResultSent):
                self.send(ev.packets)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as jobs:
            while True:
                self._wake.clear()
                now = self.clock()
                self._send_results(list(self.endpoint.on_timer(now)))
                job = self.endpoint.next_job(now)
                if job is not None:
                    jobs.create_task(self._run(job, now))
                    continue
                deadline = self.endpoint.next_deadline()
                await wait_event(self._wake,
                                 None if deadline is None else max(0.0, deadline - now))

    def _progress(self, job: Job, text: str, tokens: int) -> None:
        packets = self.endpoint.progress(job, text, tokens, self.clock())
        if packets:
            self.send(packets)

    async def _run(self, job: Job, started: float) -> None:
        if self.on_job is not None:
            self.on_job(job, "started", started)
        on_token = None
        if self.endpoint.config.streaming:
            loop = asyncio.get_running_loop()

            def on_token(text: str, tokens: int) -> None:  # in the worker thread
                loop.call_soon_threadsafe(self._progress, job, text, tokens)

        try:
            generation: Generation = await asyncio.to_thread(
                generate, self.backend, job.prompt.text, job.prompt.params, on_token)
        except Exception as exc:  # the backend failing is a result, not a crash
            done = self.clock()
            packets = self.endpoint.fail(job, done, Status.BACKEND_ERROR, f"{exc}")
        else:
            done = self.clock()
            packets = self.endpoint.complete(job, generation, done)
        self.generations += 1
        if self.on_job is not None:
            self.on_job(job, "generated", done)
        self.send(packets)
        self._wake.set()  # a slot is free


class LocalEndpointService:
    """Prompts through the payload codec and the onboard endpoint in this process.

    ``ask`` encodes the prompt into Space Packets with a
    :class:`~linkstack.payload.client.PromptClient` and feeds them to a
    :class:`~linkstack.payload.endpoint.ModelEndpoint` driven by an :class:`EndpointRunner`
    (the model runs in a worker thread); the Result packets go back through the client.
    Endpoint rejections (``busy``, ``prompt_too_long``...) come back the same way.

    Breakdown (seconds, summing to ``total_s``): ``uplink.coding`` (prompt → packets →
    decoded and queued), ``onboard.queueing`` (waiting for the model), ``onboard.inference``
    (the backend call, measured here), ``downlink.coding`` (result → packets → decoded).

    Args:
        backend: the model backend (``RecordedBackend`` in tests, ``LlamaCppBackend`` live).
        endpoint_config: queue limit, timeouts, flight profile; its transport is used by the
            client too.
        timeout_s: the client's deadline for a result.
        clock: seconds, monotonic (default: the running loop's ``time()``).

    It streams (``streams``): ``ask(..., on_partial=...)`` is told each partial result when
    ``endpoint_config`` streams.
    """

    streams = True

    def __init__(self, backend: ModelBackend, endpoint_config: EndpointConfig | None = None, *,
                 timeout_s: float | None = 900.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.backend = backend
        self.endpoint_config = endpoint_config or EndpointConfig()
        transport: TransportConfig = self.endpoint_config.transport
        self.client = PromptClient(transport, timeout_s=timeout_s)
        self.endpoint = ModelEndpoint(backend, self.endpoint_config)
        self._clock = clock
        self._waiting: dict[int, tuple[asyncio.Future[tuple[Result | None, float]], _Marks]] = {}
        self._partials: dict[int, PartialCallback] = {}
        self._runner: EndpointRunner | None = None
        self._timers: TimerTask | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.asked = 0
        self.answered = 0

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # -- the service ------------------------------------------------------------------------
    async def ask(self, request_id: str, prompt: str, max_tokens: int, *,
                  on_partial: PartialCallback | None = None) -> ServiceResult:
        runner = self._start()
        marks = _Marks(self._now())
        try:
            params = GenerationParams(max_tokens=max_tokens)
            rid, packets = self.client.ask(prompt, marks.asked, params=params)
        except LinkstackError as exc:
            return ServiceResult("malformed", str(exc), {}, 0.0)
        self.asked += 1
        future: asyncio.Future[tuple[Result | None, float]] = (
            asyncio.get_running_loop().create_future())
        self._waiting[rid] = (future, marks)
        if on_partial is not None:
            self._partials[rid] = on_partial
        assert self._timers is not None
        self._timers.kick()
        try:
            for packet in packets:
                now = self._now()
                events = runner.receive_packet(packet, now)
                if marks.uplinked is None and any(
                        isinstance(ev, PromptQueued | ResultSent) for ev in events):
                    marks.uplinked = now
            if marks.uplinked is None:  # (a prompt the endpoint neither queued nor answered)
                marks.uplinked = self._now()
            result, arrived = await future
        finally:
            self._partials.pop(rid, None)
            if self._waiting.pop(rid, None) is not None:
                self.client.cancel(rid)
        self.answered += 1
        return self._service_result(result, marks, arrived)

    def status(self) -> dict[str, object]:
        return {
            "service": "local-endpoint",
            "link": None,
            "endpoint": {"queue_depth": self.endpoint.queue_depth,
                         "running": self.endpoint.running, "results": dict(self.endpoint.stats)},
            "client": {"pending": len(self.client.pending)},
            "asked": self.asked, "answered": self.answered,
        }

    async def aclose(self) -> None:
        """Stop the worker tasks (pending asks are cancelled)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._runner = None
        for future, _ in self._waiting.values():
            future.cancel()

    # -- internals --------------------------------------------------------------------------
    def _start(self) -> EndpointRunner:
        if self._runner is None:
            loop = asyncio.get_running_loop()
            self._runner = EndpointRunner(self.endpoint, self._downlink, clock=self._now,
                                          on_job=self._on_job)
            self._timers = TimerTask(self.client.next_deadline, self._client_timer, self._now)
            self._tasks = [loop.create_task(self._runner.run()),
                           loop.create_task(self._timers.run())]
        return self._runner

    def _on_job(self, job: Job, what: str, t: float) -> None:
        entry = self._waiting.get(job.request_id)
        if entry is not None:
            setattr(entry[1], what, t)

    def _client_timer(self, now: float) -> None:
        for ev in self.client.on_timer(now):
            if isinstance(ev, RequestTimedOut):
                self._resolve(ev.request_id, None)

    def _downlink(self, packets: list[bytes]) -> None:
        for packet in packets:
            for ev in self.client.receive_packet(packet, self._now()):
                if isinstance(ev, ResultReceived):
                    self._resolve(ev.request_id, ev.result)
                elif isinstance(ev, PartialReceived):
                    callback = self._partials.get(ev.request_id)
                    if callback is not None:
                        callback(partial_update(ev))

    def _resolve(self, rid: int, result: Result | None) -> None:
        entry = self._waiting.pop(rid, None)
        if entry is not None and not entry[0].done():
            entry[0].set_result((result, self._now()))

    def _service_result(self, result: Result | None, marks: _Marks,
                        arrived: float) -> ServiceResult:
        points = [marks.asked]
        for mark in (marks.uplinked, marks.started, marks.generated):
            points.append(points[-1] if mark is None else max(mark, points[-1]))
        points.append(max(arrived, points[-1]))
        names = ("uplink.coding", "onboard.queueing", "onboard.inference", "downlink.coding")
        breakdown = {n: b - a for n, a, b in zip(names, points, points[1:], strict=False)}
        total = points[-1] - points[0]
        if result is None:
            return ServiceResult("timeout", "no result within the client's timeout",
                                 breakdown, total)
        return ServiceResult(status_name(result.status), result.text, breakdown, total,
                             result_info(result))
