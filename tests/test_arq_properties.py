"""Property tests of the ARQs over adversarial channels (hypothesis).

- COP-1 and selective repeat through the loopback harness with loss up to 30 %, duplication,
  reordering, outages, and loss of CLCWs / acks: every packet is delivered exactly once and in
  order, and the sender never has more than its window outstanding.
- FOP-1 fed random inputs keeps its Sent_Queue consistent and answers every SDU at most once.
- Lockout followed by Unlock: both engines resume cleanly and nothing is lost or duplicated.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkstack.arq.common import (
    Acknowledged,
    Alert,
    Delivered,
    FrameType,
    SduAccepted,
    SduRejected,
    TransmitFrame,
    Undelivered,
)
from linkstack.arq.farm1 import Farm1, FarmState
from linkstack.arq.fop1 import Fop1, FopDirective, FopState
from linkstack.frames.clcw import Clcw
from linkstack.sims import engine
from linkstack.sims.arq_loopback import (
    ChannelModel,
    LoopbackConfig,
    _percentile,
    default_tx_limit,
    run_loopback,
)
from linkstack.sims.engine import NS_PER_S, run_simulation
from linkstack.sims.link import Delivery, LossReason

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

probability = st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.3])


@st.composite
def channels(draw: Any, *, reorder: bool) -> tuple[ChannelModel, ChannelModel]:
    delay = draw(st.sampled_from([0.001, 0.02]))
    rate = draw(st.sampled_from([None, 2e5, 1e6]))
    outages: tuple[tuple[float, float], ...] = ()
    if draw(st.booleans()):
        start = draw(st.floats(0.0, 0.5))
        outages = ((start, start + draw(st.floats(0.05, 1.0))),)
    forward = ChannelModel(
        loss=draw(probability), dup=draw(st.sampled_from([0.0, 0.1])),
        reorder=draw(st.sampled_from([0.0, 0.1])) if reorder else 0.0,
        delay=delay, rate=rate, outages=outages)
    back = ChannelModel(  # CLCW / ack path: its own losses, same outage
        loss=draw(probability), dup=draw(st.sampled_from([0.0, 0.1])),
        reorder=draw(st.sampled_from([0.0, 0.1])) if reorder else 0.0,
        delay=delay, rate=rate, outages=outages)
    return forward, back


def _check(cfg: LoopbackConfig) -> None:
    r = run_loopback(cfg)
    assert (r.delivered, r.duplicated, r.out_of_order, r.lost) == (cfg.packets, 0, 0, 0), r
    window = min(cfg.window, 127) if cfg.protocol == "cop1" else cfg.window
    assert r.max_outstanding <= window


@FAST
@given(ch=channels(reorder=True), packets=st.integers(1, 40),
       window=st.sampled_from([1, 2, 7, 32]), tx_limit=st.sampled_from([None, 1, 2, 5]),
       seed=st.integers(0, 2**16))
def test_cop1_exactly_once_in_order(ch: tuple[ChannelModel, ChannelModel], packets: int,
                                    window: int, tx_limit: int | None, seed: int) -> None:
    forward, back = ch
    _check(LoopbackConfig(protocol="cop1", packets=packets, forward=forward, reverse=back,
                          window=window, tx_limit=tx_limit, seed=seed, size=64,
                          max_time=900.0))


@FAST
@given(ch=channels(reorder=True), packets=st.integers(1, 60),
       window=st.sampled_from([1, 3, 16, 128]), fec=st.booleans(),
       seed=st.integers(0, 2**16))
def test_sr_exactly_once_in_order(ch: tuple[ChannelModel, ChannelModel], packets: int,
                                  window: int, fec: bool, seed: int) -> None:
    forward, back = ch
    _check(LoopbackConfig(protocol="sr", packets=packets, forward=forward, reverse=back,
                          window=window, fec=fec, seed=seed, size=64, max_time=900.0))


# -- FOP-1 under random inputs -----------------------------------------------------------

inputs = st.one_of(
    st.tuples(st.just("ad"), st.integers(0, 3)),
    st.tuples(st.just("bd"), st.integers(0, 3)),
    st.tuples(st.just("clcw"), st.tuples(st.integers(0, 255), st.booleans(), st.booleans(),
                                         st.booleans(), st.sampled_from([1, 1, 1, 0]))),
    st.tuples(st.just("clcw_near"), st.tuples(st.integers(-2, 12), st.booleans(),
                                              st.booleans())),
    st.tuples(st.just("timer"), st.floats(0.0, 3.0)),
    st.tuples(st.just("lower"), st.tuples(st.sampled_from(list(FrameType)), st.booleans())),
    st.tuples(st.just("directive"), st.tuples(
        st.sampled_from([d for d in FopDirective if d is not FopDirective.SET_FOP_SLIDING_WINDOW]),
        st.integers(-1, 256))),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(inputs, max_size=80), k=st.integers(1, 8),
       immediate=st.booleans())
def test_fop1_random_inputs_keep_invariants(steps: list[tuple[str, Any]], k: int,
                                            immediate: bool) -> None:
    fop = Fop1(0, window_width=k, t1_initial=1.0, transmission_limit=2,
               immediate_lower_accept=immediate)
    now = 0.0
    next_handle = 0
    accepted: set[int] = set()
    finished: set[int] = set()
    for kind, arg in steps:
        now += 0.1
        match kind:
            case "ad":
                out = fop.request_ad(b"a", next_handle, now=now)
                next_handle += 1
            case "bd":
                out = fop.request_bd(b"b", ("bd", next_handle), now=now)
                next_handle += 1
            case "clcw":
                nr, lockout, wait, retransmit, cop = arg
                out = fop.on_clcw(Clcw(0, nr, lockout, wait, retransmit, cop_in_effect=cop),
                                  now=now)
            case "clcw_near":  # N(R) near NN(R): the interesting region
                off, wait, retransmit = arg
                out = fop.on_clcw(Clcw(0, (fop.nnr + off) % 256, False, wait, retransmit),
                                  now=now)
            case "timer":
                now += arg
                out = fop.on_timer(now)
            case "lower":
                out = fop.lower_response(arg[0], arg[1], now=now)
            case _:
                out = fop.directive(arg[0], arg[1], now=now)
        for ev in out:
            if isinstance(ev, SduAccepted) and isinstance(ev.handle, int):
                assert ev.handle not in accepted
                accepted.add(ev.handle)
            elif isinstance(ev, Acknowledged | Undelivered):
                assert ev.handle in accepted and ev.handle not in finished
                finished.add(ev.handle)
            elif isinstance(ev, SduRejected) and isinstance(ev.handle, int):
                assert ev.handle not in accepted
        # Sent_Queue: consecutive N(S) up to V(S)-1, inside [NN(R), V(S)), never more than K.
        # (It may start above NN(R): purging the Sent_Queue at an alert does not move NN(R),
        # 232.1-B-2 §5.2.2 / §5.2.14, so an Initiate AD without Set V(S) leaves a gap.)
        assert fop.outstanding <= k
        if fop.sent_queue:
            ns = [f.ns for f in fop.sent_queue]
            assert ns == [(ns[0] + i) % 256 for i in range(len(ns))]
            assert (ns[-1] + 1) % 256 == fop.vs
            assert (ns[0] - fop.nnr) % 256 < fop.outstanding
        if fop.state is FopState.S6:  # no timer runs in Initial
            assert fop.timer_deadline is None
        assert fop.suspend_state == 0 or fop.state is FopState.S6
    # every SDU FOP-1 accepted and no longer holds has been answered exactly once
    held = {f.handle for f in fop.sent_queue}
    assert accepted - finished == held


# -- Lockout, then Unlock -----------------------------------------------------------------


class _Pair:
    """FOP-1 and FARM-1 joined by a lossless, immediate channel, driven step by step."""

    def __init__(self, k: int) -> None:
        self.fop = Fop1(0, window_width=k, t1_initial=1.0, transmission_limit=3)
        self.farm = Farm1(0, window_width=2 * k)
        self.delivered: list[int] = []
        self.undelivered: list[tuple[int, int]] = []
        self.alerts: list[str] = []
        self.now = 0.0

    def handle(self, out: list[Any]) -> None:
        for ev in out:
            if isinstance(ev, TransmitFrame):
                self.uplink(ev.frame_type, ev.ns, ev.data)
            elif isinstance(ev, Undelivered):
                self.undelivered.append((ev.seq, ev.handle))
            elif isinstance(ev, Alert):
                self.alerts.append(ev.code)

    def uplink(self, frame_type: FrameType, ns: int, data: bytes) -> None:
        for ev in self.farm.receive(frame_type, ns, data):
            if isinstance(ev, Delivered):
                self.delivered.append(int.from_bytes(ev.data, "big"))
        self.now += 0.01
        self.handle(self.fop.on_clcw(self.farm.clcw(), now=self.now))

    def send(self, index: int) -> None:
        self.handle(self.fop.request_ad(index.to_bytes(2, "big"), index, now=self.now))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(1, 20), inject_at=st.integers(0, 59),
       into_lockout=st.integers(0, 255))
def test_lockout_then_unlock_resumes_cleanly(n: int, k: int, inject_at: int,
                                             into_lockout: int) -> None:
    pair = _Pair(k)
    fop, farm = pair.fop, pair.farm
    pair.handle(fop.initiate_ad(now=0.0))
    inject_at = min(inject_at, n - 1)
    for i in range(inject_at):
        pair.send(i)
    # a rogue AD frame whose N(S) lies in FARM-1's lockout area (256 - W values)
    area = 256 - farm.window_width
    rogue = (farm.vr + farm.positive_window_width + into_lockout % area) % 256
    pair.uplink(FrameType.AD, rogue, b"\xff\xff")
    assert farm.state is FarmState.S3
    assert pair.alerts == ["LOCKOUT"] and fop.state is FopState.S6
    # the operator: V(S) := N(R) of the CLCW, Initiate AD with Unlock, resend what was lost
    nr = farm.clcw().report_value
    resend = [h for ns, h in sorted(pair.undelivered, key=lambda x: (x[0] - nr) % 256)]
    pair.handle(fop.set_vs(nr, now=pair.now))
    pair.handle(fop.initiate_ad_with_unlock(now=pair.now))
    assert farm.state is FarmState.S1 and fop.state is FopState.S1
    for i in [*resend, *range(inject_at, n)]:
        pair.send(i)
    assert pair.delivered == list(range(n))
    assert fop.outstanding == 0 and pair.alerts == ["LOCKOUT"]
    assert farm.clcw() == Clcw(0, farm.vr, farm_b_counter=1)


# -- the harness itself ---------------------------------------------------------------------


def test_default_transmission_limit() -> None:
    # smallest L >= 3 with packets * p**L < 0.01: 2000 * 0.2**8 = 5.1e-3 < 0.01 < 2000 * 0.2**7
    assert default_tx_limit(0.2, 2000) == 8
    assert default_tx_limit(0.05, 2000) == 5  # 2000 * 0.05**5 = 6e-4; 0.05**4 * 2000 = 0.0125
    assert default_tx_limit(0.0, 10**6) == 3
    assert default_tx_limit(0.99, 10) == 64


@pytest.mark.parametrize("q", [0, 10, 50, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    values = [random.Random(q).expovariate(1.0) for _ in range(101)]
    assert _percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_channel_model_builds_the_direction_it_describes() -> None:
    """Loss -> erasure, delay -> propagation, rate -> serialization, outages -> visibility:
    the Direction a ChannelModel builds behaves as the model says."""
    model = ChannelModel(loss=0.25, delay=0.1, rate=8000.0, outages=((5.0, 6.0),))

    async def main() -> list[Delivery]:
        arrivals: list[Delivery] = []
        direction = model.direction("forward", on_delivery=arrivals.append)
        for i in range(2000):
            direction.send_nowait(bytes(10), i)  # 10 octets at 8 kbit/s: 10 ms, back to back
        await engine.sleep_until_ns(100 * NS_PER_S)
        return arrivals

    deliveries = run_simulation(main, seed=7)
    assert sorted(d.meta for d in deliveries) == list(range(2000))  # every loss is reported
    ms = 1_000_000
    for d in deliveries:  # frame i: serialized in [10 i, 10 i + 10) ms, received 100 ms later
        assert (d.t_tx_start, d.t_tx_end) == (d.meta * 10 * ms, (d.meta + 1) * 10 * ms)
        assert d.t_arrival == (d.meta + 1) * 10 * ms + 100 * ms
    # frames whose reception [10 i + 100, 10 i + 110) ms meets [5000, 6000) ms are all lost
    inside = {i for i in range(2000) if 10 * i + 100 < 6000 and 10 * i + 110 > 5000}
    assert len(inside) == 100  # i = 490 .. 589
    lost = {d.meta: d.loss for d in deliveries if d.erased}
    assert inside <= lost.keys()  # (an erasure draw, made first, may claim some of them)
    assert {lost[i] for i in inside} <= {LossReason.OUTAGE, LossReason.ERASURE}
    assert sum(lost[i] is LossReason.OUTAGE for i in inside) > 50
    # the others lose 25 %, each independently: Wilson 99.9 % interval
    outside = [reason for i, reason in lost.items() if i not in inside]
    assert set(outside) == {LossReason.ERASURE}
    n, z = 2000 - len(inside), 3.2905
    p = len(outside) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert centre - half <= 0.25 <= centre + half


def test_loopback_timing_is_the_simulated_link() -> None:
    """One packet over a clean link: its latency is the frame's serialization plus the
    one-way delay, to the nanosecond of the virtual clock."""
    # on-air overhead: TC primary header 5 + FECF 2 (CCSDS 232.0-B-4 §4.1), plus the 7-octet
    # selective-repeat data header for SR
    for protocol, overhead in (("cop1", 7), ("sr", 7 + 7)):
        ch = ChannelModel(delay=0.0123, rate=64000.0)
        r = run_loopback(LoopbackConfig(protocol=protocol, packets=1, size=100, forward=ch))
        frame_ns = math.ceil(8 * (100 + overhead) * NS_PER_S / 64000)
        expected = (frame_ns + 12_300_000) / NS_PER_S
        assert r.latency_p50 == r.duration == expected, protocol
        assert (r.forward_link.frames, r.forward_link.octets) == (1, 100 + overhead)


def test_cop1_outage_raises_alerts_and_the_operator_recovers() -> None:
    ch = ChannelModel(delay=0.02, rate=1e6, outages=((0.05, 1.0),))
    r = run_loopback(LoopbackConfig(protocol="cop1", packets=300, forward=ch, window=16,
                                    tx_limit=2, seed=5))
    assert (r.delivered, r.duplicated, r.out_of_order, r.lost) == (300, 0, 0, 0)
    assert r.alerts.get("T1", 0) >= 1 and r.recoveries >= 1
    # same channel, selective repeat: no alert, the timer backs off and resumes
    r = run_loopback(LoopbackConfig(protocol="sr", packets=300, forward=ch, window=16, seed=5))
    assert (r.delivered, r.duplicated, r.lost) == (300, 0, 0) and r.alerts == {}
    assert r.sender.timeouts >= 1


@pytest.mark.parametrize("protocol", ["cop1", "sr"])
def test_runs_are_deterministic_per_seed(protocol: str) -> None:
    """Every draw comes from the simulation's streams of ``seed``: same seed, same run."""
    cfg = LoopbackConfig(protocol=protocol, packets=100, seed=11, window=16,
                         forward=ChannelModel(loss=0.1, dup=0.05, reorder=0.05, delay=0.01,
                                              rate=5e5, outages=((0.2, 0.3),)))
    first = run_loopback(cfg)
    assert first.delivered == 100 and first.retransmissions > 0
    assert first.forward_link.lost > 0
    assert run_loopback(cfg) == first
    other = run_loopback(replace(cfg, seed=12))
    assert other.delivered == 100
    assert (other.forward_link, other.return_link, other.latency_p95) != (
        first.forward_link, first.return_link, first.latency_p95)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cop1_operator_survives_reordering_and_duplication(seed: int) -> None:
    """A reordering, duplicating link with Transmission_Limit 1: many alerts; the operator's
    recoveries (waiting for the link to drain, holding AD frames behind each BC frame) still
    deliver every packet exactly once and in order."""
    ch = ChannelModel(loss=0.1, dup=0.3, reorder=0.3, delay=0.01, rate=1e6)
    r = run_loopback(LoopbackConfig(protocol="cop1", packets=150, forward=ch, window=16,
                                    tx_limit=1, seed=seed, size=64, max_time=900.0))
    assert (r.delivered, r.duplicated, r.out_of_order, r.lost) == (150, 0, 0, 0)
    assert r.recoveries >= 10 and sum(r.alerts.values()) == r.recoveries
    fwd = r.forward_link
    assert fwd.duplicated > 0 and fwd.reordered > 0 and fwd.lost > 0
    assert fwd.frames == r.frames_sent  # every frame FOP-1 sent went over the forward link
    assert r.receiver.duplicates_discarded > 0  # FARM-1 threw the copies away
