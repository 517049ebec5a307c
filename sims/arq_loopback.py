"""Loopback harness: COP-1 or selective repeat over a lossy link, in the simulator's virtual time.

A sender and a receiver engine of :mod:`linkstack.arq` talk over the two directions of a
simulated link (:class:`linkstack.sims.link.Direction`; forward: data frames, return: CLCWs or
ack frames), inside :func:`linkstack.sims.engine.run_simulation`: the clock is the engine's
virtual clock, the engines' timers and the offered traffic are callbacks of the engine's
scheduler (``call_at``), the frames arrive through ``Direction(on_delivery=...)``, and every
random draw comes from the simulation's seeded streams. Same configuration and seed, same
result.

Channel, per direction (:class:`ChannelModel` -> :class:`~linkstack.sims.link.Direction`):

- a FIFO transmitter at ``rate`` bit/s (no rate: :data:`UNLIMITED_RATE_BPS`, a frame then
  takes a few nanoseconds), then a fixed one-way ``delay`` (the propagation);
- per frame: lost with probability ``loss`` (an erasure); held an extra exponential time of
  mean ``reorder_delay`` (default half the one-way delay) with probability ``reorder``, so that
  later frames overtake it; received a second time with probability ``dup`` (the copy's
  reception starts when the original's ends);
- ``outages``: down intervals ``(start_s, end_s)``; a frame any part of whose reception falls
  in one is lost.

Frame sizes on the links (what the rate charges for): COP-1 AD/BD/BC frames are TC frames,
data + 7 octets (5 header + 2 FECF, CCSDS 232.0-B-4 §4.1); a CLCW report is 12 octets (a
minimal TM frame: 6 header + 4 OCF + 2 FECF, 132.0-B-3 §4.1). Selective-repeat data frames are
the SR frame + the same 7 octets; acks are the ack frame + 8 octets (6 header + 2 FECF). The
channel here erases frames but flips no bits, so a frame travels as its on-air size and its
content rides in the delivery's ``meta``.

COP-1 operation (what a ground operator does, CCSDS 232.1-B-2):

- FOP-1 with K = ``window`` (at most 127), FARM-1 with W = 2K (at most 254), Timeout_Type 0,
  T1 and Transmission_Limit chosen for the link (:func:`default_tx_limit`, override with
  ``tx_limit``); the Lower Procedures accept the next frame when the previous one has been
  serialized (AD_Out pacing, §5.2.2);
- FARM-1 sends a CLCW after every frame it receives and every ``clcw_interval``;
- on an Alert, the operator waits for a CLCW generated after every frame already sent has
  landed, takes its N(R) (V(R) of FARM-1) to sort the frames FOP-1 gave up (Undelivered, by
  N(S)) into delivered (N(S) < N(R)) and not delivered, puts the latter back at the head of
  the queue, and re-initiates the AD service: with Unlock (after Set V(S) := N(R)) if FARM-1
  is in Lockout, otherwise with Set V(R) := N(R). COP-1 assumes that the forward link does not
  reorder frames (§2.2.2): with ``reorder`` or ``dup`` a late BC frame would rewind V(R), so
  new AD frames are held while a BC frame (or a copy of it) may still be on its way. No packet
  is lost or duplicated, and the alerts are reported. "Landed" is known exactly: the harness
  sees every arrival and every loss on the link (an operator would wait out a bound on the
  link's delay, which an exponential reordering delay does not have).

Results (:class:`LoopbackResult`): packets delivered, duplicated and out of order at the
receiving application, lost (not delivered at the end), retransmissions, goodput (payload bits
delivered / time of the last delivery) and latency percentiles (delivery time minus the time
the packet was offered).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import trio

from linkstack.arq.common import (
    Acknowledged,
    ArqCounters,
    Delivered,
    FrameType,
    TransmitFrame,
)
from linkstack.arq.farm1 import Farm1
from linkstack.arq.fop1 import Fop1, Fop1Event, FopState
from linkstack.arq.operator import Cop1Operator
from linkstack.arq.sr import SrConfig, SrFrameKind, SrReceiver, SrSender, TransmitSrFrame
from linkstack.errors import ConfigError
from linkstack.frames.clcw import Clcw
from linkstack.sims import engine
from linkstack.sims.channel import DownIntervals, Reorder
from linkstack.sims.engine import NS_PER_S, now_ns, run_simulation
from linkstack.sims.link import Delivery, Direction

__all__ = [
    "UNLIMITED_RATE_BPS",
    "ChannelModel",
    "LoopbackConfig",
    "LoopbackLinkStats",
    "LoopbackResult",
    "default_tx_limit",
    "run_loopback",
]

TC_FRAMING_OCTETS = 7
CLCW_REPORT_OCTETS = 12
ACK_FRAMING_OCTETS = 8
HANDLE_OCTETS = 4

UNLIMITED_RATE_BPS = 1e12
"""The rate of a direction given no rate: 1 Tbit/s, a TC frame of 1024 octets takes 9 ns."""


@dataclass(frozen=True)
class ChannelModel:
    """One direction of the loopback link (see the module docstring); :meth:`direction`
    builds the :class:`~linkstack.sims.link.Direction` that simulates it."""

    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay: float = 0.02
    rate: float | None = None
    reorder_delay: float | None = None
    outages: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        for name in ("loss", "dup", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{p} is outside 0..1", key=name)
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise ConfigError(f"{self.delay} must be >= 0", key="delay")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"{self.rate} must be > 0", key="rate")
        if self.reorder_delay is not None and not (
                math.isfinite(self.reorder_delay) and self.reorder_delay > 0):
            raise ConfigError(f"{self.reorder_delay} must be > 0", key="reorder_delay")
        for start, end in self.outages:
            if not (math.isfinite(start) and math.isfinite(end) and end >= start):
                raise ConfigError(f"({start}, {end}) is not an interval", key="outages")

    @property
    def mean_reorder_delay(self) -> float:
        """Mean extra delay of a reordered frame: ``reorder_delay``, by default half the
        one-way delay (1 ms on a link without delay)."""
        if self.reorder_delay is not None:
            return self.reorder_delay
        return self.delay / 2 if self.delay > 0 else 0.001

    def direction(self, name: str, *, on_delivery: Callable[[Delivery], object]) -> Direction:
        """A fresh :class:`~linkstack.sims.link.Direction` with this model; its random streams
        are ``link/<name>/...`` of the running simulation's seed."""
        return Direction(
            name,
            rate_bps=UNLIMITED_RATE_BPS if self.rate is None else self.rate,
            propagation=self.delay,
            erasure=self.loss,
            reorder=Reorder(self.reorder, self.mean_reorder_delay) if self.reorder else None,
            duplicate=self.dup,
            visibility=DownIntervals(self.outages) if self.outages else None,
            on_delivery=on_delivery,  # type: ignore[arg-type]  # single units only
        )


@dataclass
class LoopbackLinkStats:
    """What happened on one direction: frames (and octets) sent, frames lost, copies that
    arrived (``duplicated``), frames that arrived with a reordering delay."""

    frames: int = 0
    octets: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0


@dataclass(frozen=True)
class LoopbackConfig:
    """A loopback run. ``window`` is K for COP-1 (capped at 127) and the SR window;
    ``interval`` spaces the offered packets (0: all offered at time 0, a bulk transfer);
    ``seed`` seeds the simulation; ``max_time`` bounds the virtual time of the run."""

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
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"{self.seed!r} must be an integer >= 0", key="seed")
        if self.window < 1:
            raise ConfigError(f"{self.window} must be >= 1", key="window")
        if self.tx_limit is not None and self.tx_limit < 1:
            raise ConfigError(f"{self.tx_limit} must be >= 1", key="tx_limit")
        if not (math.isfinite(self.interval) and self.interval >= 0):
            raise ConfigError(f"{self.interval} must be >= 0", key="interval")
        for name in ("clcw_interval", "t1"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{value} must be > 0", key=name)
        if not self.max_time > 0:
            raise ConfigError(f"{self.max_time} must be > 0", key="max_time")

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
    forward_link: LoopbackLinkStats
    return_link: LoopbackLinkStats
    complete: bool = True
    """False: the run reached ``max_time`` before every packet was delivered (``lost`` then
    counts the packets still undelivered at that time, not packets given up)."""
    max_time: float = 3600.0

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


def _now() -> float:
    """The virtual time in seconds, as the engines take it."""
    return now_ns() / NS_PER_S


def _ns_not_before(t: float) -> int:
    """The first nanosecond whose time in seconds is not earlier than ``t``: a timer posted
    there finds the engine's deadline reached (``now >= deadline``)."""
    t_ns = math.ceil(t * NS_PER_S)
    while t_ns / NS_PER_S < t:
        t_ns += 1
    return t_ns


_UNITS: dict[int, bytes] = {}


def _unit(octets: int) -> bytes:
    """The on-air stand-in of a frame of ``octets`` octets (its content rides in ``meta``)."""
    unit = _UNITS.get(octets)
    if unit is None:
        unit = _UNITS[octets] = bytes(octets)
    return unit


class _App:
    """Both ends of the application: offers packets, checks what comes out. Times in ns."""

    def __init__(self, cfg: LoopbackConfig) -> None:
        self.cfg = cfg
        self.offered_at: dict[int, int] = {}
        self.delivered_at: dict[int, int] = {}
        self.duplicated = 0
        self.out_of_order = 0
        self.next_index = 0
        self.last_delivery = 0
        self.acked: set[int] = set()
        filler = bytes(range(256)) * (cfg.size // 256 + 1)
        self._filler = filler[: cfg.size - HANDLE_OCTETS]

    def payload(self, index: int) -> bytes:
        return index.to_bytes(HANDLE_OCTETS, "big") + self._filler

    def deliver(self, data: bytes, t_ns: int) -> None:
        index = int.from_bytes(data[:HANDLE_OCTETS], "big")
        if index in self.delivered_at:
            self.duplicated += 1
            return
        if index != self.next_index:
            self.out_of_order += 1
        self.next_index = index + 1
        self.delivered_at[index] = t_ns
        self.last_delivery = t_ns

    @property
    def done(self) -> bool:
        n = self.cfg.packets
        return len(self.delivered_at) == n and len(self.acked) == n


class _Hop:
    """One direction of the loopback: the simulated :class:`Direction`, what the harness
    counts on it, and which frames are still on their way."""

    def __init__(self, run: _LoopbackRun, name: str, channel: ChannelModel,
                 receive: Callable[[Any], None]) -> None:
        self._run = run
        self._receive = receive
        self.direction = channel.direction(name, on_delivery=self._arrived)
        self.stats = LoopbackLinkStats()
        self._copies = channel.dup > 0
        self._in_flight: set[int] = set()
        self._last_seq = 0
        self._max_octets = 0
        self._barriers: deque[tuple[int, Callable[[], None]]] = deque()

    def serialization_s(self, octets: int) -> float:
        return self.direction.serialization_ns(octets) / NS_PER_S

    def send(self, item: Any, octets: int) -> int:
        """Queue a frame of ``octets`` octets carrying ``item``; returns when its
        serialization ends (ns)."""
        receipt = self.direction.send_nowait(_unit(octets), item)
        assert receipt.t_tx_end is not None  # an unbounded queue never refuses
        self.stats.frames += 1
        self.stats.octets += octets
        self._in_flight.add(receipt.seq)
        self._last_seq = receipt.seq
        if octets > self._max_octets:
            self._max_octets = octets
        return receipt.t_tx_end

    def when_drained(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once every frame sent so far, and any copy of it, has arrived or been
        lost."""
        self._barriers.append((self._last_seq, fn))
        self._release()

    def _release(self) -> None:
        oldest = min(self._in_flight, default=self._last_seq + 1)
        lag = self.direction.serialization_ns(self._max_octets) if self._copies else 0
        while self._barriers and self._barriers[0][0] < oldest:
            # a copy's reception starts when its original's ends: one serialization later
            self._run.scheduler.call_at(now_ns() + lag, self._barriers.popleft()[1])

    def _arrived(self, delivery: Delivery) -> None:
        if self._run.stopped:
            return
        stats = self.stats
        if delivery.duplicate:
            if not delivery.erased:
                stats.duplicated += 1
                self._receive(delivery.meta)
            return
        self._in_flight.discard(delivery.seq)
        if delivery.erased:
            stats.lost += 1
        else:
            if delivery.reorder_ns:
                stats.reordered += 1
            self._receive(delivery.meta)
        if self._barriers:
            self._release()


class _LoopbackRun:
    """One run, built and driven inside the simulation."""

    def __init__(self, cfg: LoopbackConfig) -> None:
        self.cfg = cfg
        self.scheduler = engine.current_simulation().scheduler
        self.app = _App(cfg)
        self.alerts: Counter[str] = Counter()
        self.recoveries = 0
        self.max_outstanding = 0
        self.stopped = False
        self._finished = trio.Event()
        self.forward = _Hop(self, "forward", cfg.forward, self._on_forward)
        self.reverse = _Hop(self, "return", cfg.return_channel, self._on_return)
        fwd_ser = self.forward.serialization_s(cfg.size + 2 * TC_FRAMING_OCTETS)
        ret_ser = self.reverse.serialization_s(CLCW_REPORT_OCTETS + 16)
        self.rtt_estimate = (cfg.forward.delay + cfg.return_channel.delay + fwd_ser + ret_ser)
        self._timer: engine.TimerHandle | None = None

    # -- to override --------------------------------------------------------------------------
    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_forward(self, item: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_return(self, item: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _deadline(self) -> float | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_timer(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _result(self) -> LoopbackResult:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- common --------------------------------------------------------------------------------
    async def run(self) -> LoopbackResult:
        self._start()
        self._check_done()  # nothing to transfer
        with trio.move_on_at(self.cfg.max_time):
            await self._finished.wait()
        self.stopped = True
        return self._result()

    def _arm(self) -> None:
        """Keep one scheduler callback at the engines' earliest deadline."""
        dl = self._deadline()
        if dl is None:
            return
        t_ns = _ns_not_before(dl)
        timer = self._timer
        if timer is not None:
            if timer.t_ns <= t_ns:
                return
            timer.cancel()
        self._timer = self.scheduler.call_at(t_ns, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self.stopped:
            self._on_timer()
            self._arm()

    def _check_done(self) -> None:
        if self.app.done and not self.stopped:
            self.stopped = True
            self._finished.set()

    def _schedule_offers(self, offer: Callable[[int], None]) -> None:
        cfg = self.cfg
        if cfg.packets == 0:
            return
        if cfg.interval == 0:
            self.scheduler.call_at(0, self._offer_all, offer)
        else:
            self.scheduler.call_at(0, self._offer_paced, offer, 0)

    def _offer_all(self, offer: Callable[[int], None]) -> None:
        for i in range(self.cfg.packets):
            offer(i)

    def _offer_paced(self, offer: Callable[[int], None], index: int) -> None:
        if self.stopped:
            return
        offer(index)
        if index + 1 < self.cfg.packets:
            t_ns = round((index + 1) * self.cfg.interval * NS_PER_S)
            self.scheduler.call_at(t_ns, self._offer_paced, offer, index + 1)

    def _measure(self, sender: ArqCounters, receiver: ArqCounters, window: int,
                 tx_limit: int | None, timeout: float) -> LoopbackResult:
        app, cfg = self.app, self.cfg
        lat = [(app.delivered_at[i] - app.offered_at[i]) / NS_PER_S for i in app.delivered_at]
        duration = app.last_delivery / NS_PER_S
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
            complete=app.done, max_time=cfg.max_time,
        )


class _Cop1Run(_LoopbackRun):
    def __init__(self, cfg: LoopbackConfig) -> None:
        super().__init__(cfg)
        self.k = min(cfg.window, 127)
        self.tx_limit = cfg.tx_limit or default_tx_limit(
            cfg.forward.loss, cfg.packets, reorder=cfg.forward.reorder)
        self.clcw_interval = cfg.clcw_interval or max(cfg.return_channel.delay / 2, 0.001)
        self._clcw_interval_ns = round(self.clcw_interval * NS_PER_S)
        self.t1 = cfg.t1 or (2 * self.rtt_estimate + self.clcw_interval + 0.001)
        self.fop = Fop1(0, window_width=self.k, t1_initial=self.t1,
                        transmission_limit=self.tx_limit, timeout_type=0,
                        immediate_lower_accept=False)
        self.farm = Farm1(0, window_width=min(254, 2 * self.k))
        self.operator: Cop1Operator[int] = Cop1Operator(self.fop, self.app.payload)
        self.alerts = self.operator.alerts  # the operator counts them (and its recoveries)
        self.recovering = False
        self.awaiting_clcw = False  # after an alert, until the operator has recovered
        self.clean_after: int | None = None  # CLCWs generated after this show everything sent
        self._epoch = 0
        self.bc_in_flight = 0

    def _start(self) -> None:
        self._handle(self.fop.initiate_ad(now=_now()))
        self._schedule_offers(self._offer)
        self.scheduler.call_at(0, self._periodic_clcw)

    def _result(self) -> LoopbackResult:
        self.recoveries = self.operator.recoveries
        return self._measure(self.fop.counters, self.farm.counters, self.k, self.tx_limit,
                             self.t1)

    # -- ground side -------------------------------------------------------------------------
    def _offer(self, index: int) -> None:
        self.app.offered_at[index] = now_ns()
        self.operator.offer(index)
        self._feed()

    def _feed(self) -> None:
        if not self.bc_in_flight and not self.recovering:
            self.operator.feed(_now(), self._handle)

    def _handle(self, events: list[Fop1Event]) -> None:
        for ev in events:
            if isinstance(ev, TransmitFrame):
                ft = ev.frame_type
                t_tx_end = self.forward.send((ft, ev.ns, ev.data),
                                             len(ev.data) + TC_FRAMING_OCTETS)
                self.scheduler.call_at(t_tx_end, self._lower_accept, ft)
                if ft is FrameType.BC:
                    # COP-1 wants an in-order link: no new AD frame until this BC frame and
                    # any copy of it have landed (a late one would rewind V(R))
                    self.bc_in_flight += 1
                    self.forward.when_drained(self._bc_landed)
            elif isinstance(ev, Acknowledged):
                self.app.acked.add(ev.handle)
            elif self.operator.absorb(ev):  # an Alert: recover on a CLCW sent after a drain
                self._start_recovery()
        self.max_outstanding = max(self.max_outstanding, self.fop.outstanding)
        if self.fop.outstanding > self.k:  # pragma: no cover - an engine bug
            raise AssertionError(f"FOP-1 exceeded its window: {self.fop.outstanding} > {self.k}")
        if self.recovering and not self.awaiting_clcw and self.fop.state is FopState.S1:
            self.recovering = False
        self._feed()
        self._arm()
        self._check_done()

    def _lower_accept(self, frame_type: FrameType) -> None:
        if not self.stopped:
            self._handle(self.fop.lower_response(frame_type, True, now=_now()))

    def _bc_landed(self) -> None:
        self.bc_in_flight -= 1
        if not self.stopped:
            self._handle([])

    def _start_recovery(self) -> None:
        self.recovering = True
        self.awaiting_clcw = True
        self.clean_after = None
        self._epoch += 1
        epoch = self._epoch
        self.forward.when_drained(lambda: self._drained(epoch))

    def _drained(self, epoch: int) -> None:
        """Every frame sent before the alert has landed: the next CLCW tells the truth."""
        if epoch == self._epoch and self.awaiting_clcw:
            self.clean_after = now_ns()

    def _recover(self, clcw: Clcw) -> None:
        """The operator: sort what FOP-1 gave up by the FARM's V(R), re-initiate AD."""
        delivered, events = self.operator.recover(clcw, _now())
        self.app.acked.update(delivered)  # FARM-1 has them: the CLCW says so
        self.awaiting_clcw = False
        self.clean_after = None
        self._handle(events)

    def _on_return(self, item: Any) -> None:
        clcw, generated = item
        self._handle(self.fop.on_clcw(clcw, now=_now()))
        if (self.awaiting_clcw and self.clean_after is not None
                and generated > self.clean_after and self.fop.state is FopState.S6):
            self._recover(clcw)

    # -- space side ----------------------------------------------------------------------------
    def _on_forward(self, item: Any) -> None:
        frame_type, ns, data = item
        for ev in self.farm.receive(frame_type, ns, data):
            if isinstance(ev, Delivered):
                self.app.deliver(ev.data, now_ns())
        self._send_clcw()
        self._check_done()

    def _send_clcw(self) -> None:
        self.reverse.send((self.farm.clcw(), now_ns()), CLCW_REPORT_OCTETS)

    def _periodic_clcw(self) -> None:
        if self.stopped:
            return
        self._send_clcw()
        self.scheduler.call_at(now_ns() + self._clcw_interval_ns, self._periodic_clcw)

    # -- timer ---------------------------------------------------------------------------------
    def _deadline(self) -> float | None:
        return self.fop.next_deadline()

    def _on_timer(self) -> None:
        self._handle(self.fop.on_timer(_now()))


class _SrRun(_LoopbackRun):
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

    def _start(self) -> None:
        self._schedule_offers(self._offer)

    def _result(self) -> LoopbackResult:
        self.max_outstanding = self.sender.max_outstanding
        return self._measure(self.sender.counters, self.receiver.counters, self.cfg.window,
                             None, self.rto0)

    def _offer(self, index: int) -> None:
        self.app.offered_at[index] = now_ns()
        self._handle(self.sender.send(self.app.payload(index), index, now=_now()))

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
                self.app.deliver(ev.data, now_ns())
        if self.sender.max_outstanding > self.cfg.window:  # pragma: no cover - an engine bug
            raise AssertionError("SR sender exceeded its window")
        self._arm()
        self._check_done()

    def _on_forward(self, item: Any) -> None:
        self._handle(self.receiver.receive(item, now=_now()))

    def _on_return(self, item: Any) -> None:
        self._handle(self.sender.receive_ack(item, now=_now()))

    def _deadline(self) -> float | None:
        deadlines = [d for d in (self.sender.next_deadline(), self.receiver.next_deadline())
                     if d is not None]
        return min(deadlines) if deadlines else None

    def _on_timer(self) -> None:
        now = _now()
        self._handle(self.sender.on_timer(now) + self.receiver.on_timer(now))


async def _main(cfg: LoopbackConfig) -> LoopbackResult:
    runner: _Cop1Run | _SrRun = _Cop1Run(cfg) if cfg.protocol == "cop1" else _SrRun(cfg)
    return await runner.run()


def run_loopback(cfg: LoopbackConfig) -> LoopbackResult:
    """Run one loopback experiment in virtual time (seeded by ``cfg.seed``) and return its
    measurements."""
    return run_simulation(_main, cfg, seed=cfg.seed)
