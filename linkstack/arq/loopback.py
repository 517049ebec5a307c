"""Loopback harness: COP-1 or selective repeat over a simple lossy channel, in virtual time.

A small discrete-event loop (a heap of ``(time, sequence, action)``) drives a sender and a
receiver engine of :mod:`linkstack.arq` over two one-way links (forward: data frames; return:
CLCWs or ack frames). It is deliberately simple and seeded (``random.Random(seed)``); the
simulators of :mod:`linkstack.sims` are the full model.

Channel model, per direction (:class:`ChannelModel`):

- a FIFO transmitter at ``rate`` bit/s (serialization time = octets * 8 / rate; no rate:
  zero), then a fixed one-way ``delay``;
- per frame, independently: lost with probability ``loss``; duplicated with probability
  ``dup`` (the copy arrives one serialization time, at least 1 us, after the original);
  reordered with probability ``reorder`` (held an extra uniform(0, ``reorder_spread``)
  seconds, default ``delay / 2``, so later frames overtake it);
- ``outages``: intervals during which every frame that finishes transmission is lost.

Frame sizes on the links (what the rate charges for): COP-1 AD/BD/BC frames are TC frames,
data + 7 octets (5 header + 2 FECF); a CLCW report is 12 octets (a minimal TM frame: 6 header
+ 4 OCF + 2 FECF). Selective-repeat data frames are the SR frame + the same 7 octets; acks
are the ack frame + 8 octets (6 header + 2 FECF).

COP-1 operation (what a ground operator does):

- FOP-1 with K = ``window`` (at most 127), FARM-1 with W = 2K (at most 254), Timeout_Type 0,
  T1 and Transmission_Limit chosen for the link (:func:`default_tx_limit`, override with
  ``tx_limit``); the Lower Procedures accept the next frame when the previous one has been
  serialized (AD_Out pacing);
- FARM-1 sends a CLCW after every frame it receives and every ``clcw_interval``;
- on an Alert, the operator waits for a CLCW generated after every frame already sent has
  landed, takes its N(R) (V(R) of FARM-1) to sort the frames FOP-1 gave up (Undelivered, by
  N(S)) into delivered (N(S) < N(R)) and not delivered, puts the latter back at the head of
  the queue, and re-initiates the AD service: with Unlock (after Set V(S) := N(R)) if FARM-1
  is in Lockout, otherwise with Set V(R) := N(R), and holds new AD frames until the BC frame
  has certainly landed (COP-1 assumes that the forward link does not reorder frames; with
  ``reorder`` or ``dup`` a late BC frame would otherwise rewind V(R)). No packet is lost or
  duplicated, and the alerts are reported.

Results (:class:`LoopbackResult`): packets delivered, duplicated and out of order at the
receiving application, lost (not delivered at the end), retransmissions, goodput (payload bits
delivered / time of the last delivery) and latency percentiles (delivery time minus the time
the packet was offered).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from linkstack.arq.common import (
    Acknowledged,
    Alert,
    ArqCounters,
    Delivered,
    FrameType,
    SduRejected,
    TransmitFrame,
    Undelivered,
)
from linkstack.arq.farm1 import Farm1
from linkstack.arq.fop1 import MODULUS, DirectiveResponse, Fop1, FopState
from linkstack.arq.sr import SrConfig, SrFrameKind, SrReceiver, SrSender, TransmitSrFrame
from linkstack.errors import ConfigError
from linkstack.frames.clcw import Clcw

__all__ = [
    "ChannelModel",
    "EventLoop",
    "Link",
    "LinkStats",
    "LoopbackConfig",
    "LoopbackResult",
    "default_tx_limit",
    "run_loopback",
]

TC_FRAMING_OCTETS = 7
CLCW_REPORT_OCTETS = 12
ACK_FRAMING_OCTETS = 8
HANDLE_OCTETS = 4


class EventLoop:
    """A minimal discrete-event loop in virtual time: a heap of ``(time, seq, action)``."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.stopped = False

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(when, self.now), next(self._seq), action))

    def run(self, until: float) -> None:
        while self._heap and not self.stopped:
            when, _, action = self._heap[0]
            if when > until:
                break
            heapq.heappop(self._heap)
            self.now = when
            action()


@dataclass(frozen=True)
class ChannelModel:
    """One direction of the loopback channel (see the module docstring)."""

    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay: float = 0.02
    rate: float | None = None
    reorder_spread: float | None = None
    outages: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        for name in ("loss", "dup", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{p} is outside 0..1", key=name)
        if self.delay < 0:
            raise ConfigError(f"{self.delay} must be >= 0", key="delay")
        if self.rate is not None and not self.rate > 0:
            raise ConfigError(f"{self.rate} must be > 0", key="rate")

    @property
    def spread(self) -> float:
        return self.delay / 2 if self.reorder_spread is None else self.reorder_spread

    def serialization(self, octets: int) -> float:
        return 0.0 if self.rate is None else octets * 8 / self.rate

    def in_outage(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)


@dataclass
class LinkStats:
    frames: int = 0
    octets: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0


class Link:
    """One direction: a FIFO transmitter, then the channel of :class:`ChannelModel`."""

    def __init__(self, loop: EventLoop, model: ChannelModel, rng: random.Random,
                 deliver: Callable[[Any], None]) -> None:
        self.loop = loop
        self.model = model
        self.rng = rng
        self.deliver = deliver
        self.busy_until = 0.0
        self.stats = LinkStats()

    def send(self, item: Any, octets: int, on_sent: Callable[[], None] | None = None) -> None:
        m = self.model
        start = max(self.loop.now, self.busy_until)
        ser = m.serialization(octets)
        end = start + ser
        self.busy_until = end
        self.stats.frames += 1
        self.stats.octets += octets
        if on_sent is not None:
            self.loop.call_at(end, on_sent)
        lost = self.rng.random() < m.loss
        dup = self.rng.random() < m.dup
        reorder = self.rng.random() < m.reorder
        extra = self.rng.uniform(0.0, m.spread) if reorder else 0.0
        if lost or m.in_outage(end):
            self.stats.lost += 1
            return
        arrival = end + m.delay + extra
        if reorder:
            self.stats.reordered += 1
        self.loop.call_at(arrival, lambda: self.deliver(item))
        if dup:
            self.stats.duplicated += 1
            self.loop.call_at(arrival + max(ser, 1e-6), lambda: self.deliver(item))

    @property
    def landed_by(self) -> float:
        """Every frame sent so far has arrived (or been lost) by this time."""
        return max(self.loop.now, self.busy_until) + self.model.delay + self.model.spread


@dataclass(frozen=True)
class LoopbackConfig:
    """A loopback run. ``window`` is K for COP-1 (capped at 127) and the SR window;
    ``interval`` spaces the offered packets (0: all offered at time 0, a bulk transfer)."""

    protocol: str = "cop1"
    packets: int = 1000
    size: int = 256
    forward: ChannelModel = field(default_factory=ChannelModel)
    reverse: ChannelModel | None = None
    seed: int = 0
    window: int = 64
    tx_limit: int | None = None
    interval: float = 0.0
    clcw_interval: float | None = None
    t1: float | None = None
    fec: bool = False
    max_time: float = 3600.0

    def __post_init__(self) -> None:
        if self.protocol not in ("cop1", "sr"):
            raise ConfigError(f"{self.protocol!r} is not cop1 or sr", key="protocol")
        if self.packets < 0:
            raise ConfigError(f"{self.packets} must be >= 0", key="packets")
        if not HANDLE_OCTETS <= self.size <= 1017:
            raise ConfigError(f"{self.size} is outside {HANDLE_OCTETS}..1017 "
                              "(TC frame data field with FECF)", key="size")
        if self.window < 1:
            raise ConfigError(f"{self.window} must be >= 1", key="window")
        if self.tx_limit is not None and self.tx_limit < 1:
            raise ConfigError(f"{self.tx_limit} must be >= 1", key="tx_limit")
        if self.interval < 0:
            raise ConfigError(f"{self.interval} must be >= 0", key="interval")

    @property
    def return_channel(self) -> ChannelModel:
        return self.reverse if self.reverse is not None else self.forward


@dataclass
class LoopbackResult:
    """Measurements of one run. ``delivered``/``duplicated``/``out_of_order``/``lost`` count
    packets at the receiving application; ``goodput_bps`` is payload bits over ``duration``
    (time of the last delivery); latencies are delivery minus offer time, in seconds;
    ``timeout`` is T1 for COP-1 and the initial RTO for selective repeat; ``recoveries``
    counts the operator's re-initiations of the AD service after alerts."""

    protocol: str
    packets: int
    delivered: int
    duplicated: int
    out_of_order: int
    lost: int
    retransmissions: int
    frames_sent: int
    goodput_bps: float
    duration: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    alerts: dict[str, int]
    recoveries: int
    window: int
    max_outstanding: int
    tx_limit: int | None
    timeout: float
    sender: ArqCounters
    receiver: ArqCounters
    forward_link: LinkStats
    return_link: LinkStats

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_tx_limit(loss: float, packets: int, *, reorder: float = 0.0) -> int:
    """A Transmission_Limit 'suited to the loss rate': the smallest L >= 3 such that the
    expected number of frames failing L transmissions in a row, packets * p**L, stays below
    0.01, with p the probability a transmission is not accepted (loss, or overtaken by a
    reordering); capped at 64."""
    p = min(loss + reorder, 0.99)
    if p <= 0:
        return 3
    want = 0.01 / max(packets, 1)
    return max(3, min(64, math.ceil(math.log(want) / math.log(p))))


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return math.nan
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class _App:
    """Both ends of the application: offers packets, checks what comes out."""

    def __init__(self, cfg: LoopbackConfig) -> None:
        self.cfg = cfg
        self.offered_at: dict[int, float] = {}
        self.delivered_at: dict[int, float] = {}
        self.duplicated = 0
        self.out_of_order = 0
        self.next_index = 0
        self.last_delivery = 0.0
        self.acked: set[int] = set()
        filler = bytes(range(256)) * (cfg.size // 256 + 1)
        self._filler = filler[: cfg.size - HANDLE_OCTETS]

    def payload(self, index: int) -> bytes:
        return index.to_bytes(HANDLE_OCTETS, "big") + self._filler

    def deliver(self, data: bytes, now: float) -> None:
        index = int.from_bytes(data[:HANDLE_OCTETS], "big")
        if index in self.delivered_at:
            self.duplicated += 1
            return
        if index != self.next_index:
            self.out_of_order += 1
        self.next_index = index + 1
        self.delivered_at[index] = now
        self.last_delivery = now

    @property
    def done(self) -> bool:
        n = self.cfg.packets
        return len(self.delivered_at) == n and len(self.acked) == n


class _Run:
    def __init__(self, cfg: LoopbackConfig) -> None:
        self.cfg = cfg
        self.loop = EventLoop()
        self.rng = random.Random(cfg.seed)
        self.app = _App(cfg)
        self.alerts: Counter[str] = Counter()
        self.recoveries = 0
        self.max_outstanding = 0
        fwd_ser = cfg.forward.serialization(cfg.size + 2 * TC_FRAMING_OCTETS)
        ret_ser = cfg.return_channel.serialization(CLCW_REPORT_OCTETS + 16)
        self.rtt_estimate = (cfg.forward.delay + cfg.return_channel.delay + fwd_ser + ret_ser)
        self.forward = Link(self.loop, cfg.forward, self.rng, self._on_forward)
        self.reverse = Link(self.loop, cfg.return_channel, self.rng, self._on_return)
        self._timer_at: float | None = None

    # -- to override --------------------------------------------------------------------------
    def _on_forward(self, item: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_return(self, item: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _deadline(self) -> float | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _timer(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- common --------------------------------------------------------------------------------
    def _arm(self) -> None:
        """Keep one loop entry at the engines' earliest deadline."""
        dl = self._deadline()
        if dl is None or (self._timer_at is not None and self._timer_at <= dl):
            return
        self._timer_at = dl
        self.loop.call_at(dl, self._fire)

    def _fire(self) -> None:
        self._timer_at = None
        self._timer()
        self._arm()

    def _check_done(self) -> None:
        if self.app.done:
            self.loop.stopped = True

    def _schedule_offers(self, offer: Callable[[int], None]) -> None:
        cfg = self.cfg
        if cfg.interval == 0:
            self.loop.call_at(0.0, lambda: [offer(i) for i in range(cfg.packets)])
        else:
            for i in range(cfg.packets):
                self.loop.call_at(i * cfg.interval, lambda i=i: offer(i))

    def result(self, sender: ArqCounters, receiver: ArqCounters, window: int,
               tx_limit: int | None, timeout: float) -> LoopbackResult:
        app, cfg = self.app, self.cfg
        lat = [app.delivered_at[i] - app.offered_at[i] for i in app.delivered_at]
        duration = app.last_delivery
        goodput = (len(app.delivered_at) * cfg.size * 8 / duration) if duration > 0 else 0.0
        return LoopbackResult(
            protocol=cfg.protocol, packets=cfg.packets, delivered=len(app.delivered_at),
            duplicated=app.duplicated, out_of_order=app.out_of_order,
            lost=cfg.packets - len(app.delivered_at),
            retransmissions=sender.retransmissions, frames_sent=sender.frames_sent,
            goodput_bps=goodput, duration=duration,
            latency_p50=_percentile(lat, 50), latency_p95=_percentile(lat, 95),
            latency_p99=_percentile(lat, 99), alerts=dict(self.alerts),
            recoveries=self.recoveries, window=window, max_outstanding=self.max_outstanding,
            tx_limit=tx_limit, timeout=timeout, sender=sender, receiver=receiver,
            forward_link=self.forward.stats, return_link=self.reverse.stats,
        )


class _Cop1Run(_Run):
    def __init__(self, cfg: LoopbackConfig) -> None:
        super().__init__(cfg)
        self.k = min(cfg.window, 127)
        self.tx_limit = cfg.tx_limit or default_tx_limit(
            cfg.forward.loss, cfg.packets, reorder=cfg.forward.reorder)
        self.clcw_interval = cfg.clcw_interval or max(cfg.return_channel.delay / 2, 0.001)
        self.t1 = cfg.t1 or (2 * self.rtt_estimate + self.clcw_interval + 0.001)
        self.fop = Fop1(0, window_width=self.k, t1_initial=self.t1,
                        transmission_limit=self.tx_limit, timeout_type=0,
                        immediate_lower_accept=False)
        self.farm = Farm1(0, window_width=min(254, 2 * self.k))
        self.backlog: deque[int] = deque()
        self.undelivered: list[tuple[int, Any]] = []
        self.recovering = False
        self.need_clcw_after: float | None = None
        self.hold_until = 0.0

    def run(self) -> LoopbackResult:
        self._handle(self.fop.initiate_ad(now=0.0))
        self._schedule_offers(self._offer)
        self.loop.call_at(0.0, self._periodic_clcw)
        self.loop.run(self.cfg.max_time)
        return self.result(self.fop.counters, self.farm.counters, self.k, self.tx_limit,
                           self.t1)

    # -- ground side -------------------------------------------------------------------------
    def _offer(self, index: int) -> None:
        self.app.offered_at[index] = self.loop.now
        self.backlog.append(index)
        self._feed()

    def _feed(self) -> None:
        fop = self.fop
        if self.loop.now < self.hold_until:
            return
        while (self.backlog and not self.recovering and fop.wait_queue_empty
               and fop.state in (FopState.S1, FopState.S2, FopState.S3)):
            index = self.backlog.popleft()
            self._handle(fop.request_ad(self.app.payload(index), index, now=self.loop.now))

    def _handle(self, events: list[Any]) -> None:
        now = self.loop.now
        for ev in events:
            if isinstance(ev, TransmitFrame):
                ft = ev.frame_type
                self.forward.send((ft, ev.ns, ev.data), len(ev.data) + TC_FRAMING_OCTETS,
                                  on_sent=lambda ft=ft: self._lower_accept(ft))
            elif isinstance(ev, Acknowledged):
                self.app.acked.add(ev.handle)
            elif isinstance(ev, Undelivered):
                self.undelivered.append((ev.seq, ev.handle))
            elif isinstance(ev, SduRejected):
                self.backlog.appendleft(ev.handle)
            elif isinstance(ev, Alert):
                self.alerts[ev.code] += 1
                self._start_recovery(now)
            elif isinstance(ev, DirectiveResponse):
                pass
        self.max_outstanding = max(self.max_outstanding, self.fop.outstanding)
        if self.fop.outstanding > self.k:  # pragma: no cover - an engine bug
            raise AssertionError(f"FOP-1 exceeded its window: {self.fop.outstanding} > {self.k}")
        if self.recovering and self.need_clcw_after is None and self.fop.state is FopState.S1:
            self.recovering = False
        self._feed()
        self._arm()
        self._check_done()

    def _lower_accept(self, frame_type: FrameType) -> None:
        self._handle(self.fop.lower_response(frame_type, True, now=self.loop.now))

    def _start_recovery(self, now: float) -> None:
        self.recovering = True
        self.recoveries += 1
        self.need_clcw_after = self.forward.landed_by

    def _recover(self, clcw: Clcw) -> None:
        """The operator: sort what FOP-1 gave up by the FARM's V(R), re-initiate AD."""
        nr, base = clcw.report_value, self.fop.nnr
        done = (nr - base) % MODULUS
        resend = []
        for ns, handle in self.undelivered:
            if (ns - base) % MODULUS < done:
                self.app.acked.add(handle)  # FARM-1 has it: the CLCW says so
            else:
                resend.append(((ns - base) % MODULUS, handle))
        self.undelivered.clear()
        for _, handle in sorted(resend, reverse=True):
            self.backlog.appendleft(handle)
        self.need_clcw_after = None
        now = self.loop.now
        if clcw.lockout:
            events = self.fop.set_vs(nr, now=now) + self.fop.initiate_ad_with_unlock(now=now)
        else:
            events = self.fop.initiate_ad_with_set_vr(nr, now=now)
        self._handle(events)
        # COP-1 assumes an in-order forward link: hold new AD frames until the BC frame (and
        # any late copy of it) has certainly landed, so that it cannot overtake them.
        self.hold_until = self.forward.landed_by + self.forward.model.serialization(
            CLCW_REPORT_OCTETS) + 1e-6
        self.loop.call_at(self.hold_until, self._feed)

    # -- space side ----------------------------------------------------------------------------
    def _on_forward(self, item: Any) -> None:
        frame_type, ns, data = item
        for ev in self.farm.receive(frame_type, ns, data):
            if isinstance(ev, Delivered):
                self.app.deliver(ev.data, self.loop.now)
        self._send_clcw()
        self._check_done()

    def _send_clcw(self) -> None:
        self.reverse.send((self.farm.clcw(), self.loop.now), CLCW_REPORT_OCTETS)

    def _periodic_clcw(self) -> None:
        if self.loop.stopped:
            return
        self._send_clcw()
        self.loop.call_at(self.loop.now + self.clcw_interval, self._periodic_clcw)

    def _on_return(self, item: Any) -> None:
        clcw, generated = item
        self._handle(self.fop.on_clcw(clcw, now=self.loop.now))
        if (self.recovering and self.need_clcw_after is not None
                and generated >= self.need_clcw_after and self.fop.state is FopState.S6):
            self._recover(clcw)

    # -- timer ---------------------------------------------------------------------------------
    def _deadline(self) -> float | None:
        return self.fop.next_deadline()

    def _timer(self) -> None:
        self._handle(self.fop.on_timer(self.loop.now))


class _SrRun(_Run):
    def __init__(self, cfg: LoopbackConfig) -> None:
        super().__init__(cfg)
        self.rto0 = cfg.t1 or 2 * self.rtt_estimate + 0.001
        # The operator knows the link: RTO floor a quarter of the round trip, and a backed-off
        # RTO never longer than 8 round trips (>= 0.25 s): the link is not congested.
        sr_cfg = SrConfig(window=cfg.window, initial_rto=self.rto0, fec=cfg.fec,
                          min_rto=max(0.001, self.rtt_estimate / 4),
                          max_rto=max(0.25, 8 * self.rtt_estimate, self.rto0))
        self.sender = SrSender(sr_cfg)
        self.receiver = SrReceiver(sr_cfg)

    def run(self) -> LoopbackResult:
        self._schedule_offers(self._offer)
        self.loop.run(self.cfg.max_time)
        self.max_outstanding = self.sender.max_outstanding
        return self.result(self.sender.counters, self.receiver.counters, self.cfg.window,
                           None, self.rto0)

    def _offer(self, index: int) -> None:
        self.app.offered_at[index] = self.loop.now
        self._handle(self.sender.send(self.app.payload(index), index, now=self.loop.now))

    def _handle(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, TransmitSrFrame):
                if ev.kind is SrFrameKind.DATA:
                    self.forward.send(ev.data, len(ev.data) + TC_FRAMING_OCTETS)
                else:
                    self.reverse.send(ev.data, len(ev.data) + ACK_FRAMING_OCTETS)
            elif isinstance(ev, Acknowledged):
                self.app.acked.add(ev.handle)
            elif isinstance(ev, Delivered):
                self.app.deliver(ev.data, self.loop.now)
        if self.sender.max_outstanding > self.cfg.window:  # pragma: no cover - an engine bug
            raise AssertionError("SR sender exceeded its window")
        self._arm()
        self._check_done()

    def _on_forward(self, item: Any) -> None:
        self._handle(self.receiver.receive(item, now=self.loop.now))

    def _on_return(self, item: Any) -> None:
        self._handle(self.sender.receive_ack(item, now=self.loop.now))

    def _deadline(self) -> float | None:
        deadlines = [d for d in (self.sender.next_deadline(), self.receiver.next_deadline())
                     if d is not None]
        return min(deadlines) if deadlines else None

    def _timer(self) -> None:
        now = self.loop.now
        self._handle(self.sender.on_timer(now) + self.receiver.on_timer(now))


def run_loopback(cfg: LoopbackConfig) -> LoopbackResult:
    """Run one loopback experiment and return its measurements."""
    runner: _Cop1Run | _SrRun = _Cop1Run(cfg) if cfg.protocol == "cop1" else _SrRun(cfg)
    return runner.run()
