"""The COP-1 ground operator (linkstack.arq.operator): feeding FOP-1 from a backlog, keeping
what FOP-1 gives up at an Alert, and recovering on the FARM-1's report (CCSDS 232.1-B-2 §5:
Initiate AD service with Set V(R), or with Unlock after a Lockout)."""

from __future__ import annotations

from linkstack.arq.common import Alert, FrameType, SduRejected, TransmitFrame, Undelivered
from linkstack.arq.fop1 import Fop1, Fop1Event, FopState
from linkstack.arq.operator import Cop1Operator
from linkstack.frames.clcw import Clcw

SDUS = {h: bytes([h]) * 4 for h in range(8)}


def _operator(window: int = 4) -> tuple[Cop1Operator[int], list[Fop1Event]]:
    fop = Fop1(0, window_width=window, t1_initial=1.0, transmission_limit=1, timeout_type=0)
    op: Cop1Operator[int] = Cop1Operator(fop, SDUS.__getitem__)
    events: list[Fop1Event] = list(fop.initiate_ad(now=0.0))
    return op, events


def _keep(op: Cop1Operator[int], log: list[Fop1Event]) -> object:
    def handle(events: list[Fop1Event]) -> None:
        for ev in events:
            op.absorb(ev)
            log.append(ev)
    return handle


def test_feed_stops_at_the_window_and_when_not_allowed() -> None:
    op, log = _operator(window=4)
    for h in range(6):
        op.offer(h)
    op.feed(0.0, _keep(op, log), allowed=lambda: False)
    assert list(op.backlog) == list(range(6)) and op.fop.outstanding == 0
    op.feed(0.0, _keep(op, log))
    sent = [ev for ev in log if isinstance(ev, TransmitFrame)]
    assert [(ev.frame_type, ev.ns, ev.data) for ev in sent] == [
        (FrameType.AD, ns, SDUS[ns]) for ns in range(4)]
    # the fifth SDU waits in FOP-1's Wait_Queue; the sixth stays with the operator
    assert op.fop.outstanding == 4 and list(op.backlog) == [5]


def test_an_alert_hands_the_frames_back_and_recover_sorts_them_by_the_report() -> None:
    op, log = _operator(window=4)
    for h in range(4):
        op.offer(h)
    op.feed(0.0, _keep(op, log))
    log.clear()
    _keep(op, log)(op.fop.on_timer(1.5))  # T1 expires with Transmission_Limit 1: Alert
    assert any(isinstance(ev, Alert) for ev in log) and op.fop.state is FopState.S6
    assert sorted(ns for ns, _ in op.undelivered) == [0, 1, 2, 3]
    assert sum(op.alerts.values()) == 1
    # the FARM says V(R) = 2: frames 0 and 1 arrived, 2 and 3 go back first, in order
    op.offer(7)
    delivered, events = op.recover(Clcw(vcid=0, report_value=2), now=2.0)
    assert sorted(delivered) == [0, 1] and list(op.backlog) == [2, 3, 7]
    assert op.undelivered == [] and op.recoveries == 1
    bc = [ev for ev in events if isinstance(ev, TransmitFrame)]
    assert [(ev.frame_type, ev.data) for ev in bc] == [(FrameType.BC, bytes([0x82, 0x00, 2]))]


def test_recovery_from_lockout_sets_vs_and_unlocks() -> None:
    op, log = _operator(window=4)
    for h in range(3):
        op.offer(h)
    op.feed(0.0, _keep(op, log))
    _keep(op, log)(op.fop.on_timer(1.5))
    delivered, events = op.recover(Clcw(vcid=0, report_value=1, lockout=True), now=2.0)
    assert delivered == [0] and list(op.backlog) == [1, 2]
    bc = [ev for ev in events if isinstance(ev, TransmitFrame)]
    assert [(ev.frame_type, ev.data) for ev in bc] == [(FrameType.BC, b"\x00")]  # Unlock
    assert op.fop.vs == 1


def test_a_rejected_sdu_goes_back_to_the_front() -> None:
    op, _ = _operator()
    op.offer(4)
    assert op.absorb(SduRejected(3, "wait queue full")) is False
    assert op.absorb(Undelivered(5, 9, "T1")) is False and op.undelivered == [(9, 5)]
    assert list(op.backlog) == [3, 4]
