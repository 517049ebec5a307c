"""The MQTT ground gateway: prompts in from MQTT, over the link, results out to MQTT.

Topics (``<sc>`` = a spacecraft name from the scenario, ``sat1`` by default):

=================================  =================================================================
``linkstack/<sc>/prompt``          subscribed, QoS 1. JSON ``{"id": ..., "prompt": ...,
                                   "max_tokens": ...}``; ``id`` a string (or an integer) without
                                   ``/ + #`` or NUL, at most 128 characters; ``prompt`` a
                                   non-empty string; ``max_tokens`` optional, 1..65535
                                   (default 64). Other keys are ignored.
``linkstack/<sc>/result/<id>``     published, QoS 1: ``{"id", "status", "text", "breakdown",
                                   "total_s", ...}`` — ``status`` ``ok`` or an error status
                                   (``malformed``, ``busy``, ``timeout``, ...), ``breakdown``
                                   seconds per ``segment.component`` summing to ``total_s``, plus
                                   token counts when the model ran. A message that is not a valid
                                   prompt gets ``status: "malformed"`` with the reason in
                                   ``text``, on ``result/<id>`` when the id is usable, else on
                                   ``result/_`` with ``"id": null``. A message the gateway
                                   cannot read at all (JSON nested too deeply, a number too
                                   long to convert, ...) is ``malformed`` too; the gateway
                                   goes on with the next.
                                   An id names one prompt: the same id with the same prompt
                                   and ``max_tokens`` again gets the same result (the cached
                                   one once answered); the same id with a different prompt
                                   gets ``status: "duplicate_id"`` on ``result/<id>`` and is
                                   not run (the first prompt's result comes, or came, on the
                                   same topic: a new prompt needs a new id). More than
                                   ``max_queued`` prompts taken and not yet answered: a new
                                   one gets ``status: "busy"`` at once and is not kept (send
                                   it again later).
``linkstack/<sc>/result/<id>/``    published, QoS 1, while the answer is generated (when the
``partial``                        service streams and its endpoint is set to): ``{"id",
                                   "segment", "text", "so_far", "elapsed_s"}`` — ``text`` the
                                   words new since the last partial, ``so_far`` the answer so
                                   far, in order; the final result on ``result/<id>`` follows
                                   them and carries the whole text. A partial lost on the link
                                   is not published (the later ones wait for the gap, the
                                   result closes it). Not journaled; ``result/+`` does not
                                   match them, ``result/#`` does.
``linkstack/<sc>/status``          published, QoS 1, retained: the gateway's counters, result
                                   latency percentiles and the service's link status (COP-1
                                   state, frame counts, retransmissions...); every
                                   ``status_interval_s`` and after each result. The will message
                                   (retained) says ``"gateway": "offline"``.
=================================  =================================================================

Delivery guarantees (at least once, end to end, across broker restarts):

- The gateway's MQTT session is persistent (fixed client id, ``clean_session=False``) and it
  subscribes with QoS 1, so prompts published while it is disconnected are queued by the broker
  and delivered on reconnection — across a broker restart too, *if the broker persists its
  state* (mosquitto: ``persistence true`` and a ``persistence_location``; the state is written
  on a clean shutdown and every ``autosave_interval``).
- A prompt is acknowledged (PUBACK) once the gateway has taken it (and written it to its
  journal, if it keeps one), within the MQTT client's message callback: no prompt waits
  acknowledged and untaken in a client-side queue. From then on the gateway owns it: it is
  carried over the link even while the broker is away, and its result waits in the
  gateway's outbox until the broker acknowledges the result's PUBLISH (QoS 1). After a
  reconnection the outbox is published again from its first unacknowledged message, so a
  result may arrive twice (QoS 1 semantics), never zero times.
- A prompt redelivered by the broker (a DUP after a lost PUBACK) with an id the gateway is
  working on is not sent twice over the link; one whose result was already published gets
  that result again.
- The gateway *process* dying loses the prompts it had acknowledged and not answered (the
  broker considers them delivered) -- unless it keeps a journal (``journal=``, ``linkstack
  gateway --journal FILE``, :mod:`linkstack.gateway.journal`): every prompt taken is written
  there before it is worked on, its result when the link gives it, and marked answered once
  the broker has the result; a gateway started on the same journal publishes the results it
  had again and forwards the other unanswered prompts again.
- Duplicates: a result can reach a subscriber twice (QoS 1 after a lost PUBACK: a broker
  restart, a gateway crash). Every copy for one id is the same message, octet for octet (a
  redelivered prompt gets the remembered result, a journaled result is published as it was,
  and an id names one prompt: another prompt with a used id is ``duplicate_id``), so a
  subscriber that keeps the ids it has seen and drops a repeat gets each result once.

Flood: at most ``max_queued`` prompts (``--max-queued``, 1000 by default) are taken and not
answered at once (at the service, or their result waiting for the broker's acknowledgement);
one more gets ``busy`` at once and is neither kept nor journaled (send it again later). The
gateway's memory thus grows with ``max_queued`` times the prompt size, not with the flood,
and its journal, compacted as prompts are answered, stays under about twice the pending
prompts' records (:mod:`linkstack.gateway.journal`). Measured with ``bench/gateway_flood.py``
(a real mosquitto, the simulated service answering about 60 prompts/s, 3,000 prompts of
20 kB, one run on a loaded machine): with the default limit the gateway's RSS went from 86 to
141 MB and its journal peaked at 21.5 MB (ended at 0.7 MB), 1,999 prompts answered ``busy``;
without a limit (``max_queued`` 100000) RSS 87 to 208 MB, journal peak 64 MB. Before, the
MQTT client acknowledged and queued every prompt it read, without limit, and that queue was
lost with the connection (6,000 prompts: 3,249 never answered), and the journal kept every
answered prompt until the next start (62 MB after 3,000).

Security (:mod:`linkstack.gateway.security`): with ``tls=True`` (``mqtts://``) the connection
is TLS 1.2+ with the broker's certificate verified (``ca_file``) and its host name checked; the
gateway authenticates with a client certificate (``cert_file``, ``key_file``) and/or a user
name and password. What each identity may do is the broker's access control list: only the
gateway's identity should read ``prompt`` and write ``result/#`` and ``status``, users write
``prompt`` and read ``result/#`` (README, "The MQTT ground gateway"). A first connection that
the broker or its certificate refuses (untrusted certificate, wrong host name, failed
handshake, credentials refused) stops :meth:`Gateway.run` with a :class:`ConfigError`; once
connected, every failure is retried as a broker outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiomqtt

from linkstack.drivers.service import PartialUpdate, PromptService, ServiceResult
from linkstack.errors import ConfigError
from linkstack.gateway.journal import PromptJournal
from linkstack.gateway.security import client_tls_context, refusal, reset_hint

log = logging.getLogger(__name__)

DEFAULT_SPACECRAFT = "sat1"
DEFAULT_MAX_TOKENS = 64
MAX_TOKENS_LIMIT = 0xFFFF  # the Prompt message's 16-bit max_tokens field
MAX_ID_LENGTH = 128
NO_ID_TOPIC_LEVEL = "_"
_FORBIDDEN_ID_CHARS = frozenset("/+#\x00")


class BrokerUrl(NamedTuple):
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://HOST:PORT`` (plain TCP, port 1883 if omitted) or ``mqtts://HOST:PORT`` (TLS,
    port 8883 if omitted) → (host, port, tls). No credentials in the URL: a password there
    would be on the command line and in the process list."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    tls = parts.scheme in ("mqtts", "ssl")
    if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
        raise ConfigError(f"{url!r}: mqtt://HOST:PORT (plain TCP) or mqtts://HOST:PORT (TLS)",
                          key="broker")
    if "@" in parts.netloc:
        raise ConfigError("no user name or password in the URL (they would show in the "
                          "process list): use the username and password settings",
                          key="broker")
    if not parts.hostname:
        raise ConfigError(f"{url!r}: no host", key="broker")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"{url!r}: bad port", key="broker") from None
    return BrokerUrl(parts.hostname, port, tls)


def compute_spacecraft(scenario: Any) -> str:
    """The compute satellite of a scenario: the node farthest (in hops) from the ground
    station — ``sat1`` in the default scenario (the same rule as the round trip's path)."""
    from linkstack.sims.topology import plan_path

    hops = plan_path(scenario, getattr(getattr(scenario, "run", None), "compute", None))
    return str(hops[-1].forward.destination)


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """A validated prompt message."""

    id: str | int
    prompt: str
    max_tokens: int

    @property
    def key(self) -> str:
        """The id as it appears in the result topic."""
        return str(self.id)

    @property
    def fingerprint(self) -> str:
        """What makes two messages with one id the same prompt: its text and max_tokens."""
        digest = hashlib.sha256(self.prompt.encode("utf-8", "surrogatepass"))
        digest.update(b"\0%d" % self.max_tokens)
        return digest.hexdigest()


class MalformedPrompt(ValueError):
    """A prompt message that breaks the JSON contract; ``request_id`` is the usable id, if
    any."""

    def __init__(self, reason: str, request_id: str | int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


def _usable_id(value: object) -> str | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH \
            and not _FORBIDDEN_ID_CHARS & set(value) and value != NO_ID_TOPIC_LEVEL:
        return value
    return None


def parse_prompt(payload: bytes, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> PromptRequest:
    """Validate one prompt message (the JSON contract in the module docstring).

    Raises :class:`MalformedPrompt` naming what is wrong (with the id when it is usable).
    """
    try:
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedPrompt(f"not UTF-8: {exc.reason} at octet {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise MalformedPrompt(f"not JSON: {exc.msg} at line {exc.lineno} column "
                              f"{exc.colno}") from None
    except RecursionError:
        raise MalformedPrompt("not readable: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than int() converts (4300 digits)
        raise MalformedPrompt(f"not readable: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedPrompt(f"not a JSON object but {type(doc).__name__}")
    if "id" not in doc:
        raise MalformedPrompt('missing "id"')
    rid = _usable_id(doc["id"])
    if rid is None:
        raise MalformedPrompt(
            f'"id" must be a string of 1..{MAX_ID_LENGTH} characters without / + # NUL '
            f'(and not "_"), or an integer')
    prompt = doc.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise MalformedPrompt('"prompt" must be a non-empty string', rid)
    max_tokens = doc.get("max_tokens", default_max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) \
            or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise MalformedPrompt(f'"max_tokens" must be an integer 1..{MAX_TOKENS_LIMIT}', rid)
    return PromptRequest(rid, prompt, max_tokens)


def result_message(request_id: str | int | None, result: ServiceResult) -> dict[str, Any]:
    """The JSON object published on the result topic."""
    return {"id": request_id, "status": result.status, "text": result.text,
            "breakdown": dict(result.breakdown), "total_s": result.total_s, **result.info}


def percentiles(values: list[float], qs: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """Linear-interpolation percentiles (``p50``...) and ``max`` of ``values``."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for q in qs:
        k = (len(ordered) - 1) * q / 100
        lo = math.floor(k)
        hi = min(lo + 1, len(ordered) - 1)
        out[f"p{q}"] = ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
    out["max"] = ordered[-1]
    return out


@dataclass
class GatewayConfig:
    """Settings of a :class:`Gateway`.

    Attributes:
        host / port: the broker.
        spacecraft: the ``<spacecraft>`` topic level.
        client_id: the MQTT client id (fixed, for the persistent session); default
            ``linkstack-gateway-<spacecraft>``. Two gateways must not share one.
        max_in_flight: prompts forwarded to the service at once (more wait in the gateway).
        status_interval_s: period of the status message.
        default_max_tokens: ``max_tokens`` of a prompt that gives none.
        reconnect_min_s / reconnect_max_s: reconnection back-off (doubling).
        keepalive_s: MQTT keep-alive.
        latency_window: results kept for the latency percentiles.
        remember_results: results kept to answer redelivered prompts.
        max_queued: prompts taken and not yet answered (forwarded, waiting for a slot, or
            their result waiting for the broker's acknowledgement) at most; one more is
            answered ``busy`` at once and not kept, so that a flood of prompts cannot grow
            the gateway's memory (or its journal) without bound.
        connect_timeout_s: give up (:class:`ConfigError`) when no connection to the broker
            succeeded this many seconds after the start (None: retry for ever). Every
            failed attempt is logged with the delay before the next.
        journal: file of the prompts taken and not yet answered (None: no journal); a
            gateway started on it forwards them again (:mod:`linkstack.gateway.journal`).
        journal_sync: fsync each journal record (survives a power cut, not only a crash).
        tls: TLS to the broker (TLS 1.2+, certificate verified, host name checked).
        ca_file: PEM file of the CA certificate(s) the broker's certificate must chain to
            (None: the system's trusted CAs).
        cert_file / key_file: PEM client certificate and its unencrypted private key (mode
            0600), both or neither.
        username / password: MQTT user name and password (TLS only; the password is left
            out of ``repr``).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    spacecraft: str = DEFAULT_SPACECRAFT
    client_id: str | None = None
    max_in_flight: int = 4
    status_interval_s: float = 5.0
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 5.0
    keepalive_s: int = 30
    latency_window: int = 1000
    remember_results: int = 10000
    max_queued: int = 1000
    connect_timeout_s: float | None = None
    journal: str | None = None
    journal_sync: bool = False
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            if getattr(self, name) is not None and not self.tls:
                raise ConfigError("needs TLS (an mqtts:// broker)", key=name)
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("a client certificate needs both cert_file and key_file",
                              key="key_file" if self.key_file is None else "cert_file")
        if self.password is not None and self.username is None:
            raise ConfigError("a password needs a username", key="username")
        if self.username is not None:
            if not self.username:
                raise ConfigError("empty", key="username")
            if self.password is None:
                raise ConfigError("a username needs a password", key="password")
            if not self.tls:
                raise ConfigError("the password would cross the network in clear: use TLS "
                                  "(an mqtts:// broker)", key="username")
        if not self.spacecraft or _FORBIDDEN_ID_CHARS & set(self.spacecraft):
            raise ConfigError("empty or contains / + # NUL", key="spacecraft")
        if self.max_in_flight < 1:
            raise ConfigError("must be >= 1", key="max_in_flight")
        if self.max_queued < 1:
            raise ConfigError("must be >= 1", key="max_queued")
        if self.connect_timeout_s is not None and not self.connect_timeout_s > 0:
            raise ConfigError("must be > 0", key="connect_timeout")
        if not self.status_interval_s > 0:
            raise ConfigError("must be > 0", key="status_interval_s")
        if not 1 <= self.default_max_tokens <= MAX_TOKENS_LIMIT:
            raise ConfigError(f"must be 1..{MAX_TOKENS_LIMIT}", key="default_max_tokens")

    @property
    def identifier(self) -> str:
        return self.client_id or f"linkstack-gateway-{self.spacecraft}"


@dataclass
class GatewayStats:
    prompts_received: int = 0
    prompts_forwarded: int = 0
    duplicates: int = 0
    malformed: int = 0
    busy: int = 0
    duplicate_ids: int = 0
    results_published: int = 0
    publish_retries: int = 0
    connects: int = 0
    disconnects: int = 0
    replayed: int = 0
    partials_published: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    retain: bool = False
    kind: str = "result"
    key: str | None = None  # the prompt it answers (journal), None for status, busy...


class Gateway:
    """Bridge MQTT prompts to a :class:`~linkstack.drivers.service.PromptService`
    (module docstring).

    ``await gateway.run()`` runs until cancelled, reconnecting to the broker whenever the
    connection drops; cancelled, it publishes a retained ``"gateway": "offline"`` status.
    ``connected`` is an :class:`asyncio.Event` set while subscribed.
    """

    def __init__(self, service: PromptService, config: GatewayConfig | None = None) -> None:
        self.service = service
        self.config = config or GatewayConfig()
        base = f"linkstack/{self.config.spacecraft}"
        self.prompt_topic = f"{base}/prompt"
        self.status_topic = f"{base}/status"
        self.result_prefix = f"{base}/result/"
        self.stats = GatewayStats()
        self.connected = asyncio.Event()
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_ready = asyncio.Event()
        self._in_progress: dict[str, str] = {}  # id -> fingerprint of its prompt
        # ids taken whose result the broker has not acknowledged yet (max_queued counts them)
        self._unanswered: set[str] = set()
        self._done: OrderedDict[str, tuple[str, bytes]] = OrderedDict()  # id -> (fp, result)
        self._latencies: deque[float] = deque(maxlen=self.config.latency_window)
        self._slots = asyncio.Semaphore(self.config.max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = time.time()
        # (files checked before the journal is touched)
        self._tls = (client_tls_context(self.config.ca_file, self.config.cert_file,
                                        self.config.key_file) if self.config.tls else None)
        self._client_log = _ClientLog()
        self.journal = (PromptJournal(self.config.journal, sync=self.config.journal_sync)
                        if self.config.journal else None)
        self._replay = self.journal.pending_results() if self.journal is not None else []

    # -- topics and messages ---------------------------------------------------------------
    def result_topic(self, request_id: str | int | None) -> str:
        return self.result_prefix + (NO_ID_TOPIC_LEVEL if request_id is None
                                     else str(request_id))

    def status_message(self, state: str = "online") -> dict[str, Any]:
        s = self.stats
        return {
            "spacecraft": self.config.spacecraft, "gateway": state,
            "uptime_s": round(time.time() - self._started, 3),
            "prompts_received": s.prompts_received, "prompts_forwarded": s.prompts_forwarded,
            "duplicates": s.duplicates, "malformed": s.malformed, "busy": s.busy,
            "duplicate_ids": s.duplicate_ids,
            "results_published": s.results_published, "results_by_status": dict(s.statuses),
            "partials_published": s.partials_published,
            "in_flight": len(self._in_progress),
            "outbox": sum(1 for o in self._outbox if o.kind == "result"),
            "publish_retries": s.publish_retries, "connects": s.connects, "replayed": s.replayed,
            "disconnects": s.disconnects,
            "latency_s": {"count": len(self._latencies), **percentiles(list(self._latencies))},
            "link": self._service_status(),
        }

    def _service_status(self) -> dict[str, object]:
        try:
            return self.service.status()
        except Exception as exc:  # a status report must not take the gateway down
            log.exception("service status failed")
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _queue(self, item: _Outgoing) -> None:
        if item.kind == "status":  # only the newest status is worth sending
            for old in [o for o in self._outbox if o.kind == "status"]:
                self._outbox.remove(old)
        self._outbox.append(item)
        self._outbox_ready.set()

    def _queue_status(self) -> None:
        payload = json.dumps(self.status_message(), ensure_ascii=False).encode()
        self._queue(_Outgoing(self.status_topic, payload, retain=True, kind="status"))

    def _queue_result(self, request_id: str | int | None, result: ServiceResult,
                      fingerprint: str | None = None) -> None:
        """Queue a result; with the ``fingerprint`` of the prompt it answers, it is also
        remembered, to answer that prompt again (a redelivery) without running it."""
        payload = json.dumps(result_message(request_id, result), ensure_ascii=False).encode()
        key = None if request_id is None else str(request_id)
        if key is not None and fingerprint is not None:
            self._done[key] = (fingerprint, payload)
            if self.journal is not None:  # a crash before the broker has it: sent as is again
                self.journal.result(key, payload)
            while len(self._done) > self.config.remember_results:
                self._done.popitem(last=False)
        self.stats.statuses[result.status] = self.stats.statuses.get(result.status, 0) + 1
        # only the answer of a prompt taken answers it (journal, max_queued): not a busy or
        # duplicate_id result, whose id may be another prompt's, taken and in progress
        self._queue(_Outgoing(self.result_topic(request_id), payload,
                              key=key if fingerprint is not None else None))

    # -- incoming ----------------------------------------------------------------------------
    def handle_prompt(self, payload: bytes) -> None:
        """Take one message from the prompt topic (never raises: a message it cannot take is
        answered ``malformed``, and the gateway goes on)."""
        self.stats.prompts_received += 1
        try:
            self._take(payload)
        except Exception as exc:  # a bug here must not stop the gateway nor lose the others
            log.exception("could not take a prompt message")
            self.stats.malformed += 1
            self._queue_result(None, ServiceResult(
                "malformed", f"gateway: could not take this message: {exc}", {}, 0.0))

    def _take(self, payload: bytes) -> None:
        try:
            request = parse_prompt(payload, self.config.default_max_tokens)
        except MalformedPrompt as bad:
            self.stats.malformed += 1
            self._queue_result(bad.request_id, ServiceResult("malformed", bad.reason, {}, 0.0))
            return
        key = request.key
        fingerprint = request.fingerprint
        taken = self._in_progress.get(key)
        if taken is None and key in self._done:
            taken = self._done[key][0]
        if taken is not None and taken != fingerprint:
            self.stats.duplicate_ids += 1
            self._queue_result(request.id, ServiceResult(
                "duplicate_id", f"id {key!r} is already used by a different prompt; a new "
                "prompt needs a new id", {}, 0.0))
            return
        if key in self._in_progress:  # the same prompt again (a redelivery): one answer
            self.stats.duplicates += 1
            return
        done = self._done.get(key)
        if done is not None:
            self.stats.duplicates += 1
            self._queue(_Outgoing(self.result_topic(request.id), done[1], key=key))
            return
        if len(self._unanswered) >= self.config.max_queued:
            self.stats.busy += 1
            self._queue_result(request.id, ServiceResult(
                "busy", f"gateway busy: {len(self._unanswered)} prompts taken and not yet "
                "answered (max_queued); send it again later", {}, 0.0))
            return
        if self.journal is not None:
            self.journal.taken(key, payload)
        self._in_progress[key] = fingerprint
        self._unanswered.add(key)
        task = asyncio.get_running_loop().create_task(self._forward(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _republish(self, payload: bytes, result: bytes) -> None:
        """Publish again, octet for octet, the result an earlier process had for a prompt
        (the broker may have it already: a subscriber sees the same message twice)."""
        try:
            request = parse_prompt(payload, self.config.default_max_tokens)
        except MalformedPrompt:  # (only valid prompts are journaled)
            self.handle_prompt(payload)
            return
        self._done[request.key] = (request.fingerprint, result)
        self._unanswered.add(request.key)
        self._queue(_Outgoing(self.result_topic(request.id), result, key=request.key))

    async def _forward(self, request: PromptRequest) -> None:
        try:
            async with self._slots:
                self.stats.prompts_forwarded += 1
                try:
                    if getattr(self.service, "streams", False):
                        result = await self.service.ask(  # type: ignore[call-arg]
                            request.key, request.prompt, request.max_tokens,
                            on_partial=self._partial_publisher(request))
                    else:
                        result = await self.service.ask(request.key, request.prompt,
                                                        request.max_tokens)
                except Exception as exc:  # a service bug must not lose the request
                    log.exception("service failed on %s", request.key)
                    result = ServiceResult("backend_error", f"gateway: service failed: {exc}",
                                           {}, 0.0)
            if result.status == "ok":
                self._latencies.append(result.total_s)
            self._in_progress.pop(request.key, None)
            self._queue_result(request.id, result, request.fingerprint)
            self._queue_status()
        finally:
            self._in_progress.pop(request.key, None)

    def _partial_publisher(self, request: PromptRequest) -> Callable[[PartialUpdate], None]:
        topic = self.result_topic(request.id) + "/partial"

        def publish(update: PartialUpdate) -> None:
            if not update.text:  # held behind a lost segment: nothing new to show
                return
            payload = json.dumps({"id": request.id, "segment": update.segment,
                                  "text": update.text, "so_far": update.so_far,
                                  "elapsed_s": round(update.elapsed_s, 6)},
                                 ensure_ascii=False).encode()
            self._queue(_Outgoing(topic, payload, kind="partial"))

        return publish

    # -- the connection --------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until cancelled."""
        cfg = self.config
        delay = cfg.reconnect_min_s
        started = time.monotonic()
        attempts = 0
        status_task = asyncio.get_running_loop().create_task(self._status_loop())
        replay, self._replay = self._replay, []
        for payload, result in replay:  # taken by an earlier gateway process, never answered
            self.stats.replayed += 1
            if result is None:
                self.handle_prompt(payload)
            else:
                self._republish(payload, result)
        try:
            while True:
                failure: BaseException | None = None
                try:
                    await self._session()
                except* aiomqtt.MqttError as group:
                    failure = group.exceptions[0]
                # Python 3.11's TaskGroup can turn a cancellation that meets a failing child
                # into an ExceptionGroup: never swallow the request to stop
                _reraise_cancellation()
                if failure is not None:
                    # never connected yet: a refusal is the configuration's fault, final
                    held = self._client_log.last_error if self._client_log.hold else None
                    fatal = refusal(failure, host=cfg.host, port=cfg.port,
                                    username=cfg.username,
                                    client_certificate=cfg.cert_file is not None,
                                    socket_error=held) if self._client_log.hold else None
                    if fatal is not None:
                        raise fatal
                    hint = reset_hint(failure) if cfg.tls and self._client_log.hold else ""
                    attempts += 1
                    never = self._client_log.hold  # no connection succeeded yet
                    waited = time.monotonic() - started
                    if (never and cfg.connect_timeout_s is not None
                            and waited + delay > cfg.connect_timeout_s):
                        raise ConfigError(
                            f"no connection to the broker {cfg.host}:{cfg.port} in "
                            f"{waited:.1f} s ({attempts} attempts; last: {failure}"
                            f"{f' ({held})' if held else ''})", key="connect_timeout")
                    log.warning("broker connection%s: %s%s%s; next attempt in %.1f s",
                                f" attempt {attempts}" if never else "", failure,
                                f" ({held})" if held else "", hint, delay)
                if self.connected.is_set():
                    self.stats.disconnects += 1
                    self.connected.clear()
                    delay = cfg.reconnect_min_s
                await asyncio.sleep(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
        finally:
            status_task.cancel()
            for task in list(self._tasks):
                task.cancel()
            self.connected.clear()

    async def _session(self) -> None:
        cfg = self.config
        will = aiomqtt.Will(self.status_topic, json.dumps(
            {"spacecraft": cfg.spacecraft, "gateway": "offline"}).encode(), qos=1, retain=True)
        self._client_log.last_error = None
        async with aiomqtt.Client(cfg.host, cfg.port, identifier=cfg.identifier,
                                  clean_session=False, will=will, keepalive=cfg.keepalive_s,
                                  timeout=10.0, tls_context=self._tls, username=cfg.username,
                                  password=cfg.password, queue_type=self._intake_queue(),
                                  logger=self._client_log) as client:  # type: ignore[arg-type]
            await client.subscribe(self.prompt_topic, qos=1)
            self._client_log.hold = False
            self.stats.connects += 1
            self.connected.set()
            self._queue_status()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._publisher(client))
                    # the prompts are taken as they arrive (_intake_queue): this only waits
                    # for the connection to end
                    async for _ in client.messages:
                        pass
                    raise aiomqtt.MqttError("message stream ended")
            except asyncio.CancelledError:
                # stopping: say so (retained) before the clean disconnect, which discards the
                # will; the results still in the outbox are lost with this process
                offline = dict(self.status_message("offline"))
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await client.publish(self.status_topic, json.dumps(offline).encode(),
                                             qos=1, retain=True)
                raise

    def _intake_queue(self) -> type[asyncio.Queue[aiomqtt.Message]]:
        """The MQTT client's incoming queue, which takes each prompt as the client hands it
        over, holding none: within the client's message callback, so before the client
        acknowledges it (PUBACK). Through the client's own queue, a prompt acknowledged and
        not yet taken was held in memory, and lost when the connection dropped (a flood of
        6,000 prompts of 20 kB lost 3,249 so when a result's publication timed out)."""
        gateway = self

        class Intake(asyncio.Queue[aiomqtt.Message]):
            def put_nowait(self, item: aiomqtt.Message) -> None:
                if item.topic.matches(gateway.prompt_topic):
                    gateway.handle_prompt(_payload_bytes(item.payload))

        return Intake

    async def _publisher(self, client: aiomqtt.Client) -> None:
        """Publish the outbox in order; an item leaves it only once the broker acknowledged
        it (QoS 1 PUBACK). On a connection error the item stays first, for the next session."""
        while True:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            item = self._outbox[0]
            try:
                await client.publish(item.topic, item.payload, qos=1, retain=item.retain)
            except aiomqtt.MqttError:
                self.stats.publish_retries += 1
                raise
            _reraise_cancellation()
            if item in self._outbox:  # (a newer status may have replaced it meanwhile)
                self._outbox.remove(item)
            if item.kind == "partial":
                self.stats.partials_published += 1
            if item.kind == "result":
                self.stats.results_published += 1
                if item.key is not None:
                    self._unanswered.discard(item.key)
                    if self.journal is not None:
                        self.journal.answered(item.key)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            self._queue_status()


class _ClientLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger of the gateway's MQTT client (aiomqtt's ``mqtt`` logger, which paho-mqtt
    logs to as well) that remembers the last error logged, and holds errors back while
    ``hold`` is set (until the first connection): they go into the gateway's own message."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("mqtt"), {})
        self.hold = True
        self.last_error: str | None = None

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level >= logging.ERROR:
            try:
                self.last_error = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                self.last_error = str(msg)
            if self.hold:
                return
        super().log(level, msg, *args, **kwargs)


def _reraise_cancellation() -> None:
    """Raise CancelledError if this task was asked to stop and the request got lost.

    Python 3.11's ``asyncio.wait_for`` (used inside aiomqtt's ``publish``) returns the result
    and drops the cancellation when both arrive together (CPython gh-86296, fixed in 3.12);
    :meth:`asyncio.Task.cancelling` still counts the request.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if payload is None:
        return b""
    return str(payload).encode("utf-8")
