"""FOP-1 (CCSDS 232.1-B-2 §5): the state table row by row, and the engine's behaviour.

The expected table below is written out again from 232.1-B-2 table 5-1 (events E1..E46 and
the Revision B events E101..E104, states S1..S6), independently of the engine's own table.
Where the public implementations disagree on a cell the choice is commented:
DL = dariol83/ccsds FopEngine, OC = oresat ccsds-cop, YM = yamcs Cop1TcPacketHandler.

Each row is checked twice: the engine's table must hold the expected actions and next state,
and the engine, put in that state and fed an input meeting the event's condition, must
classify the input as that event, end in the expected state and show the *effects* of the
expected actions (alerts, responses, frames passed down, variables), checked here from the
outside.
"""

from __future__ import annotations

from typing import Any

import pytest

from linkstack.arq.common import (
    Acknowledged,
    Alert,
    FrameType,
    SduAccepted,
    SduRejected,
    TransmitFrame,
    Undelivered,
)
from linkstack.arq.fop1 import (
    FOP1_STATE_TABLE,
    DirectiveResponse,
    DirectiveResponseKind,
    Fop1,
    FopDirective,
    FopEvent,
    FopState,
    Suspended,
    WaitEntry,
    set_vr_command,
    state_table_rows,
    unlock_command,
)
from linkstack.errors import ConfigError
from linkstack.frames.clcw import Clcw

IGN = "ignore"
AS, AC, AN, AL, AT = ("ALERT_SYNCH", "ALERT_CLCW", "ALERT_NN_R", "ALERT_LIMIT", "ALERT_T1")
REJ_D, REJ_F = "REJECT_DIRECTIVE", "REJECT_FDU"
RCL = "REMOVE_ACKNOWLEDGED, CANCEL_TIMER, LOOK_FOR_FDU"
RL = "REMOVE_ACKNOWLEDGED, LOOK_FOR_FDU"
RRL = "REMOVE_ACKNOWLEDGED, INITIATE_AD_RETRANSMISSION, LOOK_FOR_FDU"
RETX = "INITIATE_AD_RETRANSMISSION, LOOK_FOR_FDU"
BCRETX = "INITIATE_BC_RETRANSMISSION, LOOK_FOR_DIRECTIVE"
LLIF = "ALERT_LLIF -> S6"

# 232.1-B-2 table 5-1. Each cell: "actions -> next state" for S1 .. S6.
EXPECTED: dict[str, list[str]] = {
    # CLCW arrival
    "E1": ["ignore -> S1", f"{AS} -> S6", f"{AS} -> S6", "CONFIRM_DIRECTIVE, CANCEL_TIMER -> S1",
           "RELEASE_BC_FRAME, CANCEL_TIMER, CONFIRM_DIRECTIVE -> S1", "ignore -> S6"],
    # S4/S5 cells of E2, E5..E12, E101..E103: Ignore in DL and OC (YM handles E2 like E1).
    "E2": [f"{RCL} -> S1", f"{RCL} -> S1", f"{RCL} -> S1", "ignore -> S4", "ignore -> S5",
           "ignore -> S6"],
    # E3 in S5: Ignore in DL and OC, Alert [CLCW] in YM.
    "E3": [f"{AC} -> S6", f"{AC} -> S6", f"{AC} -> S6", f"{AC} -> S6", "ignore -> S5",
           "ignore -> S6"],
    "E4": [f"{AS} -> S6", f"{AS} -> S6", f"{AS} -> S6", f"{AS} -> S6", "ignore -> S5",
           "ignore -> S6"],
    "E5": ["ignore -> S1", f"{AS} -> S6", f"{AS} -> S6", "ignore -> S4", "ignore -> S5",
           "ignore -> S6"],
    "E6": [f"{RL} -> S1", f"{RL} -> S1", f"{RL} -> S1", "ignore -> S4", "ignore -> S5",
           "ignore -> S6"],
    "E7": [f"{AC} -> S6", f"{AC} -> S6", f"{AC} -> S6", "ignore -> S4", "ignore -> S5",
           "ignore -> S6"],
    "E101": [f"REMOVE_ACKNOWLEDGED, {AL} -> S6"] * 3 + ["ignore -> S4", "ignore -> S5",
                                                        "ignore -> S6"],
    "E102": [f"{AL} -> S6"] * 3 + ["ignore -> S4", "ignore -> S5", "ignore -> S6"],
    "E8": [f"{RRL} -> S2"] * 3 + ["ignore -> S4", "ignore -> S5", "ignore -> S6"],
    "E9": ["REMOVE_ACKNOWLEDGED -> S3"] * 3 + ["ignore -> S4", "ignore -> S5", "ignore -> S6"],
    # E10 in S3: OC and YM 'Initiate AD Retransmission, Look for FDU'; DL omits the Look.
    "E10": [f"{RETX} -> S2", "ignore -> S2", f"{RETX} -> S2", "ignore -> S4", "ignore -> S5",
            "ignore -> S6"],
    "E11": ["ignore -> S3"] * 3 + ["ignore -> S4", "ignore -> S5", "ignore -> S6"],
    "E12": ["ignore -> S2"] * 3 + ["ignore -> S4", "ignore -> S5", "ignore -> S6"],
    "E103": ["ignore -> S3"] * 3 + ["ignore -> S4", "ignore -> S5", "ignore -> S6"],
    "E13": [f"{AN} -> S6"] * 4 + ["ignore -> S5", "ignore -> S6"],
    "E14": ["ALERT_LOCKOUT -> S6"] * 4 + ["ignore -> S5", "ignore -> S6"],
    "E15": [f"{AC} -> S6"] * 5 + ["ignore -> S6"],
    # Timer expiry (no timer runs in S6)
    "E16": [f"{RETX} -> S1", f"{RETX} -> S2", "ignore -> S3", f"{AT} -> S6", f"{BCRETX} -> S5",
            "ignore -> S6"],
    "E104": [f"{RETX} -> S1", f"{RETX} -> S2", "ignore -> S3", "SUSPEND -> S6",
             f"{BCRETX} -> S5", "ignore -> S6"],
    "E17": [f"{AT} -> S6"] * 5 + ["ignore -> S6"],
    # E18 in S5: Alert [T1] in DL and YM (S5 is not resumable); OC suspends.
    "E18": ["SUSPEND -> S6"] * 4 + [f"{AT} -> S6", "ignore -> S6"],
    # Requests to transfer FDUs
    "E19": ["ADD_TO_WAIT_QUEUE, LOOK_FOR_FDU -> S1", "ADD_TO_WAIT_QUEUE, LOOK_FOR_FDU -> S2",
            "ADD_TO_WAIT_QUEUE -> S3", f"{REJ_F} -> S4", f"{REJ_F} -> S5", f"{REJ_F} -> S6"],
    "E20": [f"{REJ_F} -> S{i}" for i in range(1, 7)],
    "E21": [f"ACCEPT_FDU, TRANSMIT_BD_FRAME -> S{i}" for i in range(1, 7)],
    "E22": [f"{REJ_F} -> S{i}" for i in range(1, 7)],
    # Directives
    "E23": [f"{REJ_D} -> S{i}" for i in range(1, 6)]
    + ["ACCEPT_DIRECTIVE, INITIALIZE, CONFIRM_DIRECTIVE -> S1"],
    "E24": [f"{REJ_D} -> S{i}" for i in range(1, 6)]
    + ["ACCEPT_DIRECTIVE, INITIALIZE, START_TIMER -> S4"],
    "E25": [f"{REJ_D} -> S{i}" for i in range(1, 6)]
    + ["ACCEPT_DIRECTIVE, INITIALIZE, TRANSMIT_BC_UNLOCK -> S5"],
    "E26": [f"{REJ_D} -> S{i}" for i in range(1, 7)],
    "E27": [f"{REJ_D} -> S{i}" for i in range(1, 6)]
    + ["ACCEPT_DIRECTIVE, INITIALIZE, SET_VS_TO_VR, TRANSMIT_BC_SET_VR -> S5"],
    "E28": [f"{REJ_D} -> S{i}" for i in range(1, 7)],
    "E29": ["ACCEPT_DIRECTIVE, ALERT_TERM, CONFIRM_DIRECTIVE -> S6"] * 5
    + ["ACCEPT_DIRECTIVE, CONFIRM_DIRECTIVE -> S6"],
    "E30": [f"{REJ_D} -> S{i}" for i in range(1, 7)],
    # E31..E34 cannot occur outside S6 (SS != 0 only there): rejected.
    **{f"E{30 + ss}": [f"{REJ_D} -> S{i}" for i in range(1, 6)]
       + [f"ACCEPT_DIRECTIVE, RESUME, CONFIRM_DIRECTIVE -> S{ss}"] for ss in range(1, 5)},
    # E35 in S6: rejected while suspended (DL, YM).
    "E35": [f"{REJ_D} -> S{i}" for i in range(1, 6)] + ["SET_VS -> S6"],
    "E36": [f"ACCEPT_DIRECTIVE, SET_WINDOW_WIDTH, CONFIRM_DIRECTIVE -> S{i}" for i in range(1, 7)],
    "E37": [f"ACCEPT_DIRECTIVE, SET_T1_INITIAL, CONFIRM_DIRECTIVE -> S{i}" for i in range(1, 7)],
    "E38": [f"ACCEPT_DIRECTIVE, SET_TRANSMISSION_LIMIT, CONFIRM_DIRECTIVE -> S{i}"
            for i in range(1, 7)],
    "E39": [f"ACCEPT_DIRECTIVE, SET_TIMEOUT_TYPE, CONFIRM_DIRECTIVE -> S{i}"
            for i in range(1, 7)],
    "E40": [f"{REJ_D} -> S{i}" for i in range(1, 7)],
    # Lower Procedures
    "E41": ["AD_OUT_READY, LOOK_FOR_FDU -> S1", "AD_OUT_READY, LOOK_FOR_FDU -> S2"]
    + [f"AD_OUT_READY -> S{i}" for i in range(3, 7)],
    "E42": [LLIF] * 6,
    "E43": [f"BC_OUT_READY -> S{i}" for i in range(1, 5)]
    + ["BC_OUT_READY, LOOK_FOR_DIRECTIVE -> S5", "BC_OUT_READY -> S6"],
    "E44": [LLIF] * 6,
    "E45": [f"BD_OUT_READY -> S{i}" for i in range(1, 7)],
    "E46": [LLIF] * 6,
}


def _parse(cell: str) -> tuple[tuple[str, ...], str]:
    actions, nxt = cell.split(" -> ")
    names = () if actions == IGN else tuple(a.strip() for a in actions.split(","))
    return names, nxt.strip()


ROWS = [(event, state) for event in FopEvent for state in FopState]


def _id(row: tuple[FopEvent, FopState]) -> str:
    return f"{row[0].name}-{row[1].name}"


def test_expected_table_is_complete() -> None:
    assert set(EXPECTED) == {e.name for e in FopEvent}
    assert all(len(cells) == 6 for cells in EXPECTED.values())
    assert len(FOP1_STATE_TABLE) == 50 * 6


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_table_row(row: tuple[FopEvent, FopState]) -> None:
    event, state = row
    want_actions, want_next = _parse(EXPECTED[event.name][state - 1])
    got = FOP1_STATE_TABLE[(event, state)]
    assert tuple(a.name for a in got.actions) == want_actions
    assert got.next_state.name == want_next


# ---------------------------------------------------------------------------------------------
# Behaviour, row by row
# ---------------------------------------------------------------------------------------------

VC = 1
T1 = 1.0
NOW = 10.0


def _engine_in(state: FopState) -> Fop1:
    """S1..S3 with frames 0, 1, 2 outstanding (NN(R) = 0, V(S) = 3); S4..S6 reached from
    there through Terminate, so NN(R) = 0 and V(S) = 3 with empty queues."""
    fop = Fop1(VC, window_width=10, t1_initial=T1, transmission_limit=3,
               immediate_lower_accept=False)
    fop.initiate_ad(now=0.0)
    for i in range(3):
        fop.request_ad(b"ad%d" % i, f"fdu{i}", now=0.0)
        fop.lower_response(FrameType.AD, True, now=0.0)
    assert (fop.state, fop.vs, fop.nnr, len(fop.sent_queue)) == (FopState.S1, 3, 0, 3)
    if state is FopState.S2:
        fop.on_clcw(Clcw(VC, 0, retransmit=True), now=0.0)
    elif state is FopState.S3:
        fop.on_clcw(Clcw(VC, 0, retransmit=True, wait=True), now=0.0)
    elif state >= FopState.S4:
        fop.terminate(now=0.0)
        if state is FopState.S4:
            fop.initiate_ad(now=0.0, clcw_check=True)
        elif state is FopState.S5:
            fop.initiate_ad_with_unlock(now=0.0)
    assert fop.state is state
    return fop


def _clcw(fop: Fop1, nr: int, **flags: Any) -> list[Any]:
    return fop.on_clcw(Clcw(VC, nr % 256, **flags), now=NOW)


def _timer(fop: Fop1, *, at_limit: bool, tt: int) -> list[Any]:
    fop.timeout_type = tt
    fop.transmission_count = fop.transmission_limit if at_limit else 1
    fop.timer_deadline = NOW - 1.0  # make the timer due, whatever the state
    return fop.on_timer(NOW)


def _fire(fop: Fop1, event: FopEvent) -> list[Any]:
    """Feed ``fop`` an input that meets the condition of ``event`` (table 5-1)."""
    e = FopEvent
    vs, nnr = fop.vs, fop.nnr
    match event:
        case e.E1:
            fop.nnr = fop.vs
            return _clcw(fop, fop.vs)
        case e.E2:
            return _clcw(fop, vs)
        case e.E3:
            return _clcw(fop, vs, wait=True)
        case e.E4:
            return _clcw(fop, vs, retransmit=True)
        case e.E5:
            return _clcw(fop, nnr)
        case e.E6:
            return _clcw(fop, nnr + 1)
        case e.E7:
            return _clcw(fop, nnr, wait=True)
        case e.E101:
            fop.transmission_limit = 1
            return _clcw(fop, nnr + 1, retransmit=True)
        case e.E102:
            fop.transmission_limit = 1
            return _clcw(fop, nnr, retransmit=True)
        case e.E8:
            return _clcw(fop, nnr + 1, retransmit=True)
        case e.E9:
            return _clcw(fop, nnr + 1, retransmit=True, wait=True)
        case e.E10 | e.E11 | e.E12 | e.E103:
            fop.transmission_count = 1 if event in (e.E10, e.E11) else fop.transmission_limit
            return _clcw(fop, nnr, retransmit=True, wait=event in (e.E11, e.E103))
        case e.E13:
            return _clcw(fop, vs + 5)
        case e.E14:
            return _clcw(fop, nnr, lockout=True)
        case e.E15:
            return _clcw(fop, nnr, cop_in_effect=0)
        case e.E16:
            return _timer(fop, at_limit=False, tt=0)
        case e.E104:
            return _timer(fop, at_limit=False, tt=1)
        case e.E17:
            return _timer(fop, at_limit=True, tt=0)
        case e.E18:
            return _timer(fop, at_limit=True, tt=1)
        case e.E19:
            return fop.request_ad(b"new", "h", now=NOW)
        case e.E20:
            fop.wait_queue = WaitEntry(b"w", "w")
            return fop.request_ad(b"new", "h", now=NOW)
        case e.E21:
            fop.bd_out_ready = True
            return fop.request_bd(b"bd", "h", now=NOW)
        case e.E22:
            fop.bd_out_ready = False
            return fop.request_bd(b"bd", "h", now=NOW)
        case e.E23:
            return fop.initiate_ad(now=NOW, tag="d")
        case e.E24:
            return fop.initiate_ad(now=NOW, clcw_check=True, tag="d")
        case e.E25 | e.E26:
            fop.bc_out_ready = event is e.E25
            return fop.initiate_ad_with_unlock(now=NOW, tag="d")
        case e.E27 | e.E28:
            fop.bc_out_ready = event is e.E27
            return fop.initiate_ad_with_set_vr(7, now=NOW, tag="d")
        case e.E29:
            return fop.terminate(now=NOW, tag="d")
        case e.E30 | e.E31 | e.E32 | e.E33 | e.E34:
            fop.suspend_state = int(event) - 30
            return fop.resume(now=NOW, tag="d")
        case e.E35:
            return fop.set_vs(9, now=NOW, tag="d")
        case e.E36:
            return fop.set_window_width(5, now=NOW, tag="d")
        case e.E37:
            return fop.set_t1_initial(2.5, now=NOW, tag="d")
        case e.E38:
            return fop.set_transmission_limit(4, now=NOW, tag="d")
        case e.E39:
            return fop.set_timeout_type(1, now=NOW, tag="d")
        case e.E40:
            return fop.set_window_width(0, now=NOW, tag="d")
        case e.E41 | e.E42:
            fop.ad_out_ready = False
            return fop.lower_response(FrameType.AD, event is e.E41, now=NOW)
        case e.E43 | e.E44:
            fop.bc_out_ready = False
            return fop.lower_response(FrameType.BC, event is e.E43, now=NOW)
        case e.E45 | e.E46:
            fop.bd_out_ready = False
            return fop.lower_response(FrameType.BD, event is e.E45, now=NOW)
    raise AssertionError(event)


def _snapshot(fop: Fop1) -> tuple[Any, ...]:
    return (fop.state, fop.vs, fop.nnr, [f.ns for f in fop.sent_queue], fop.wait_queue,
            fop.transmission_count, fop.timer_deadline, fop.suspend_state, fop.ad_out_ready,
            fop.bc_out_ready, fop.bd_out_ready, fop.bc_frame, fop.window_width, fop.t1_initial,
            fop.transmission_limit, fop.timeout_type)


def _of(out: list[Any], kind: type) -> list[Any]:
    return [x for x in out if isinstance(x, kind)]


def _responses(out: list[Any], kind: DirectiveResponseKind) -> list[DirectiveResponse]:
    return [r for r in _of(out, DirectiveResponse) if r.response is kind]


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_row_behaviour(row: tuple[FopEvent, FopState]) -> None:
    event, state = row
    actions, nxt = _parse(EXPECTED[event.name][state - 1])
    fop = _engine_in(state)
    ad_ready_before = fop.ad_out_ready
    sent_before = [f.ns for f in fop.sent_queue]
    flagged_before = any(f.to_be_retransmitted for f in fop.sent_queue)
    snap_after_setup: tuple[Any, ...] | None = None
    if not actions:
        # the setup inside _fire may change variables to meet the condition: compare with a
        # twin engine given the same setup but not the input
        probe = _engine_in(state)
        _fire_setup_only(probe, event)
        snap_after_setup = _snapshot(probe)
    out = _fire(fop, event)

    # classification and transition
    assert fop.last_transition == (event, state, FopState[nxt])
    assert fop.state is FopState[nxt]

    alerts = _of(out, Alert)
    alert_actions = [a for a in actions if a.startswith("ALERT_")]
    if alert_actions:
        code = alert_actions[0].removeprefix("ALERT_")
        assert [a.code for a in alerts] == [code]
        assert fop.timer_deadline is None
        assert not fop.sent_queue and fop.wait_queue is None and fop.bc_frame is None
        # every frame that was on the Sent_Queue is reported by N(S) and handle (§5.2.2)
        acked = {a.seq for a in _of(out, Acknowledged)}
        undelivered = {u.seq: u.handle for u in _of(out, Undelivered)}
        assert set(undelivered) == set(sent_before) - acked
        assert all(undelivered[ns] == f"fdu{ns}" for ns in undelivered)
    else:
        assert alerts == []

    if not actions:
        assert out == []
        assert snap_after_setup is not None
        assert _snapshot(fop)[1:] == snap_after_setup[1:]  # nothing but the state changes
        return

    if "REJECT_FDU" in actions:
        assert _of(out, SduRejected) == [SduRejected("h", _of(out, SduRejected)[0].reason)]
    if "ACCEPT_FDU" in actions:
        assert SduAccepted("h") in out
    if "TRANSMIT_BD_FRAME" in actions:
        assert TransmitFrame(FrameType.BD, 0, b"bd", VC, "h", False) in out
        assert fop.bd_out_ready is False
    if "REJECT_DIRECTIVE" in actions:
        assert [r.tag for r in _responses(out, DirectiveResponseKind.REJECT)] == ["d"]
    if "ACCEPT_DIRECTIVE" in actions:
        assert [r.tag for r in _responses(out, DirectiveResponseKind.ACCEPT)] == ["d"]
    if "CONFIRM_DIRECTIVE" in actions:
        confirms = _responses(out, DirectiveResponseKind.POSITIVE_CONFIRM)
        if event in (FopEvent.E1,):  # confirms the pending Initiate directive
            want = (FopDirective.INITIATE_AD_WITH_CLCW_CHECK if state is FopState.S4
                    else FopDirective.INITIATE_AD_WITH_UNLOCK)
            assert [c.directive for c in confirms] == [want]
        else:
            assert [c.tag for c in confirms] == ["d"]
    if "REMOVE_ACKNOWLEDGED" in actions:
        nr = fop.nnr
        assert [a.seq for a in _of(out, Acknowledged)] == [ns for ns in sent_before if ns < nr]
        assert nr == (fop.vs if event is FopEvent.E2 else 1)
    if "INITIATE_AD_RETRANSMISSION" in actions:
        # Transmission_Count was 1 (reset by Remove Acknowledged Frames, or by the setup)
        assert fop.transmission_count == 2
        assert fop.timer_deadline == NOW + T1
        retx = [t for t in _of(out, TransmitFrame) if t.retransmission]
        if ad_ready_before:
            # Look for FDU passes the first flagged frame down at once
            assert [t.ns for t in retx] == [fop.sent_queue[0].ns]
            assert fop.ad_out_ready is False
        else:
            assert retx == []
            assert all(f.to_be_retransmitted for f in fop.sent_queue)
    if "CANCEL_TIMER" in actions:
        assert fop.timer_deadline is None
    if "START_TIMER" in actions or "RESUME" in actions:
        assert fop.timer_deadline == NOW + T1
    if "SUSPEND" in actions:
        assert out == [Suspended(int(state))]
        assert fop.suspend_state == int(state)
    if "RESUME" in actions:
        assert fop.suspend_state == 0
    if "INITIALIZE" in actions:
        assert fop.wait_queue is None and fop.transmission_count == 1
        assert fop.suspend_state == 0 and not fop.sent_queue
    if "TRANSMIT_BC_UNLOCK" in actions:
        assert _of(out, TransmitFrame) == [
            TransmitFrame(FrameType.BC, 0, b"\x00", VC, "d", False)]
        assert fop.bc_out_ready is False and fop.bc_frame is not None
    if "TRANSMIT_BC_SET_VR" in actions:
        assert _of(out, TransmitFrame) == [
            TransmitFrame(FrameType.BC, 0, bytes.fromhex("820007"), VC, "d", False)]
        assert (fop.vs, fop.nnr) == (7, 7)
    if "SET_VS" in actions:
        assert (fop.vs, fop.nnr) == (9, 9)
        assert [r.response for r in _of(out, DirectiveResponse)] == [
            DirectiveResponseKind.ACCEPT, DirectiveResponseKind.POSITIVE_CONFIRM]
    if "SET_WINDOW_WIDTH" in actions:
        assert fop.window_width == 5
    if "SET_T1_INITIAL" in actions:
        assert fop.t1_initial == 2.5
    if "SET_TRANSMISSION_LIMIT" in actions:
        assert fop.transmission_limit == 4
    if "SET_TIMEOUT_TYPE" in actions:
        assert fop.timeout_type == 1
    if "AD_OUT_READY" in actions:
        # ready, unless 'Look for FDU' used it at once for a flagged frame
        assert fop.ad_out_ready or any(t.retransmission for t in _of(out, TransmitFrame))
    if "BC_OUT_READY" in actions:
        assert fop.bc_out_ready or _of(out, TransmitFrame)
    if "BD_OUT_READY" in actions:
        assert fop.bd_out_ready
    if "RELEASE_BC_FRAME" in actions:
        assert fop.bc_frame is None
    if "INITIATE_BC_RETRANSMISSION" in actions:
        assert fop.transmission_count == 2
        assert fop.timer_deadline == NOW + T1
        # BC_Out is not ready (the Unlock frame was never accepted): the copy waits, flagged
        assert fop.bc_frame is not None and fop.bc_frame.to_be_retransmitted
        assert _of(out, TransmitFrame) == []
    if "ADD_TO_WAIT_QUEUE" in actions:
        if "LOOK_FOR_FDU" in actions and ad_ready_before and not flagged_before:
            # Look for FDU takes it at once: Accept, then Transmit Type-AD Frame as N(S)=V(S)
            assert SduAccepted("h") in out and fop.wait_queue is None
            assert TransmitFrame(FrameType.AD, 3, b"new", VC, "h", False) in out
        else:
            assert fop.wait_queue == WaitEntry(b"new", "h")
            assert SduAccepted("h") not in out


def _fire_setup_only(fop: Fop1, event: FopEvent) -> None:
    """Apply the variable changes _fire makes before its input, without the input."""
    e = FopEvent
    if event is e.E1:
        fop.nnr = fop.vs
    elif event in (e.E101, e.E102):
        fop.transmission_limit = 1
    elif event in (e.E10, e.E11):
        fop.transmission_count = 1
    elif event in (e.E12, e.E103):
        fop.transmission_count = fop.transmission_limit
    elif event in (e.E16, e.E104, e.E17, e.E18):
        fop.timeout_type = 1 if event in (e.E104, e.E18) else 0
        at_limit = event in (e.E17, e.E18)
        fop.transmission_count = fop.transmission_limit if at_limit else 1
        fop.timer_deadline = None  # on_timer consumes the deadline it fires
    elif event is e.E20:
        fop.wait_queue = WaitEntry(b"w", "w")
    elif event is e.E22:
        fop.bd_out_ready = False
    elif event in (e.E26, e.E28):
        fop.bc_out_ready = False
    elif event in (e.E30, e.E31, e.E32, e.E33, e.E34):
        fop.suspend_state = int(event) - 30
    elif event in (e.E41, e.E42):
        fop.ad_out_ready = False
    elif event in (e.E43, e.E44):
        fop.bc_out_ready = False
    elif event in (e.E45, e.E46):
        fop.bd_out_ready = False


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def _active(**kw: Any) -> Fop1:
    fop = Fop1(0, **kw)
    out = fop.initiate_ad(now=0.0)
    assert [r.response for r in out] == [DirectiveResponseKind.ACCEPT,
                                         DirectiveResponseKind.POSITIVE_CONFIRM]
    assert fop.state is FopState.S1
    return fop


def test_starts_in_initial_and_rejects_ad_until_initiated() -> None:
    fop = Fop1(0)
    assert fop.state is FopState.S6
    out = fop.request_ad(b"x", "h", now=0.0)
    assert len(out) == 1 and isinstance(out[0], SduRejected) and out[0].handle == "h"


def test_bc_control_commands() -> None:
    # 232.0-B-4 §4.1.3.3: Unlock = 00, Set V(R) = 82 00 V(R) (specs/sources.md §1.13; YM, OC).
    assert unlock_command() == bytes.fromhex("00")
    assert set_vr_command(0xA5) == bytes.fromhex("8200A5")


def test_window_limits_outstanding_frames_and_wait_queue_holds_one() -> None:
    fop = _active(window_width=3)
    accepted = []
    for i in range(5):
        out = fop.request_ad(bytes([i]), i, now=0.0)
        accepted += [x.handle for x in out if isinstance(x, SduAccepted)]
    # 3 frames in the window, the 4th waits on the Wait_Queue, the 5th is rejected (E20)
    assert accepted == [0, 1, 2]
    assert fop.outstanding == 3 and fop.wait_queue == WaitEntry(b"\x03", 3)
    assert fop.last_transition == (FopEvent.E20, FopState.S1, FopState.S1)
    # an acknowledgement of frame 0 opens the window: the waiting FDU goes out as N(S)=3
    out = fop.on_clcw(Clcw(0, 1), now=1.0)
    assert Acknowledged(0, 0) in out and SduAccepted(3) in out
    assert [t.ns for t in out if isinstance(t, TransmitFrame)] == [3]


def test_go_back_n_retransmission_driven_by_clcw() -> None:
    fop = _active(window_width=10, transmission_limit=3)
    for i in range(4):
        fop.request_ad(b"p%d" % i, i, now=0.0)
    # FARM got frame 0, missed frame 1, saw 2 and 3 in its positive window: N(R)=1, R=1
    out = fop.on_clcw(Clcw(0, 1, retransmit=True), now=0.5)
    # (with immediate lower accept, E41 transitions follow the CLCW's own)
    assert (FopEvent.E8, FopState.S1, FopState.S2) in fop.history
    assert Acknowledged(0, 0) in out
    retx = [(t.ns, t.data) for t in out if isinstance(t, TransmitFrame)]
    assert retx == [(1, b"p1"), (2, b"p2"), (3, b"p3")]
    assert all(t.retransmission for t in out if isinstance(t, TransmitFrame))
    # all acknowledged: back to Active, timer cancelled
    out = fop.on_clcw(Clcw(0, 4), now=1.0)
    assert fop.state is FopState.S1 and fop.next_deadline() is None
    assert [a.seq for a in out if isinstance(a, Acknowledged)] == [1, 2, 3]


def test_timer_retransmits_then_alerts_at_the_limit() -> None:
    fop = _active(t1_initial=2.0, transmission_limit=2)
    fop.request_ad(b"a", "A", now=0.0)
    assert fop.next_deadline() == 2.0
    assert fop.on_timer(1.9) == []  # early: nothing
    out = fop.on_timer(2.0)
    assert fop.history[-2] == (FopEvent.E16, FopState.S1, FopState.S1)
    assert [t.retransmission for t in out if isinstance(t, TransmitFrame)] == [True]
    assert fop.transmission_count == 2 and fop.next_deadline() == 4.0
    out = fop.on_timer(4.0)
    assert fop.last_transition == (FopEvent.E17, FopState.S1, FopState.S6)
    assert Undelivered("A", 0, out[0].reason) in out
    assert [a.code for a in out if isinstance(a, Alert)] == ["T1"]


def test_suspend_and_resume() -> None:
    fop = _active(t1_initial=1.0, transmission_limit=1, timeout_type=1)
    fop.request_ad(b"a", "A", now=0.0)
    out = fop.on_timer(1.0)
    assert out == [Suspended(1)] and fop.state is FopState.S6 and fop.suspend_state == 1
    assert len(fop.sent_queue) == 1  # kept for the resumption
    # Set V(S) is refused while suspended (E35 with SS != 0)
    out = fop.set_vs(5, now=1.5)
    assert [r.response for r in out] == [DirectiveResponseKind.REJECT]
    out = fop.resume(now=2.0)
    assert fop.state is FopState.S1 and fop.suspend_state == 0 and fop.next_deadline() == 3.0
    out = fop.on_clcw(Clcw(0, 1), now=2.5)
    assert Acknowledged("A", 0) in out


def test_initiate_with_set_vr_completes_on_clcw() -> None:
    fop = Fop1(0)
    out = fop.initiate_ad_with_set_vr(200, now=0.0, tag="t")
    assert TransmitFrame(FrameType.BC, 0, bytes.fromhex("8200C8"), 0, "t", False) in out
    assert fop.state is FopState.S5 and (fop.vs, fop.nnr) == (200, 200)
    # a CLCW still showing the old V(R) is ignored in S5 (E13)
    assert fop.on_clcw(Clcw(0, 17), now=0.5) == []
    out = fop.on_clcw(Clcw(0, 200, farm_b_counter=1), now=1.0)
    assert fop.state is FopState.S1
    assert [r.response for r in out] == [DirectiveResponseKind.POSITIVE_CONFIRM]


def test_setting_a_parameter_keeps_the_pending_initiate_directive() -> None:
    fop = Fop1(0)
    fop.initiate_ad(now=0.0, clcw_check=True, tag="init")
    out = fop.set_t1_initial(5.0, now=0.1, tag="t1")  # E37 in S4: its own confirm only
    assert [(r.tag, r.response) for r in out] == [
        ("t1", DirectiveResponseKind.ACCEPT), ("t1", DirectiveResponseKind.POSITIVE_CONFIRM)]
    out = fop.on_clcw(Clcw(0, 0), now=0.2)  # E1 in S4
    assert [(r.tag, r.response) for r in out] == [
        ("init", DirectiveResponseKind.POSITIVE_CONFIRM)]
    assert fop.state is FopState.S1


def test_bc_frame_retransmitted_on_timer_then_negative_confirm() -> None:
    fop = Fop1(0, t1_initial=1.0, transmission_limit=2)
    fop.initiate_ad_with_unlock(now=0.0, tag="u")
    out = fop.on_timer(1.0)
    assert [t.data for t in out if isinstance(t, TransmitFrame)] == [b"\x00"]
    out = fop.on_timer(2.0)  # count reached the limit: Alert [T1], negative confirm
    kinds = [r.response for r in out if isinstance(r, DirectiveResponse)]
    assert kinds == [DirectiveResponseKind.NEGATIVE_CONFIRM]
    assert [a.code for a in out if isinstance(a, Alert)] == ["T1"]


def test_sequence_numbers_wrap_modulo_256() -> None:
    fop = Fop1(0, vs=254, window_width=5)
    fop.initiate_ad(now=0.0)
    ns = []
    for i in range(4):
        ns += [t.ns for t in fop.request_ad(b"%d" % i, i, now=0.0)
               if isinstance(t, TransmitFrame)]
    assert ns == [254, 255, 0, 1]
    out = fop.on_clcw(Clcw(0, 1), now=0.1)  # N(R)=1 lies in [NN(R)=254, V(S)=2)
    assert fop.last_transition[0] is FopEvent.E6
    assert [a.seq for a in out if isinstance(a, Acknowledged)] == [254, 255, 0]
    fop.on_clcw(Clcw(0, 100), now=0.2)  # outside [1, 2]: invalid N(R)
    assert fop.last_transition == (FopEvent.E13, FopState.S1, FopState.S6)


def test_clcw_of_another_vc_is_not_for_this_fop() -> None:
    fop = _active()
    fop.request_ad(b"x", 1, now=0.0)
    assert fop.on_clcw(Clcw(5, 1), now=0.1) == []
    assert fop.counters.acks_received == 0 and fop.outstanding == 1


def test_invalid_directive_qualifiers_are_e40() -> None:
    fop = Fop1(0)
    for d, q in [(FopDirective.SET_FOP_SLIDING_WINDOW, 256),
                 (FopDirective.SET_TIMEOUT_TYPE, 2), (FopDirective.SET_T1_INITIAL, 0),
                 (FopDirective.SET_TRANSMISSION_LIMIT, 0), (FopDirective.SET_VS, 256),
                 (FopDirective.INITIATE_AD_WITH_SET_VR, -1), (FopDirective.SET_VS, True)]:
        out = fop.directive(d, q, now=0.0)
        assert fop.last_transition[0] is FopEvent.E40
        assert [r.response for r in out] == [DirectiveResponseKind.REJECT]


def test_immediate_lower_accept_runs_e41() -> None:
    fop = _active(window_width=4)  # immediate_lower_accept=True by default
    for i in range(6):
        fop.request_ad(b"x", i, now=0.0)
    assert fop.outstanding == 4 and fop.ad_out_ready
    assert fop.counters.frames_sent == 4


def test_explicit_lower_accept_paces_frames() -> None:
    fop = _active(immediate_lower_accept=False)
    out = fop.request_ad(b"a", 0, now=0.0)
    assert len([t for t in out if isinstance(t, TransmitFrame)]) == 1
    out = fop.request_ad(b"b", 1, now=0.0)  # AD_Out not ready: the FDU waits
    assert out == [] and fop.wait_queue == WaitEntry(b"b", 1)
    out = fop.lower_response(FrameType.AD, True, now=0.1)
    assert [t.ns for t in out if isinstance(t, TransmitFrame)] == [1]
    out = fop.lower_response(FrameType.AD, False, now=0.2)
    assert [a.code for a in out if isinstance(a, Alert)] == ["LLIF"]


def test_config_errors() -> None:
    for kw in ({"window_width": 0}, {"window_width": 256}, {"t1_initial": 0},
               {"transmission_limit": 0}, {"timeout_type": 2}, {"vs": 256}):
        with pytest.raises(ConfigError):
            Fop1(0, **kw)
    with pytest.raises(ConfigError):
        Fop1(64)


def test_state_table_rows_render() -> None:
    rows = state_table_rows()
    assert len(rows) == 50
    e1 = next(r for r in rows if r[0] == "E1")
    assert e1[2][0] == "Ignore -> S1"
    assert e1[2][3] == "Confirm (Directive); Cancel Timer -> S1"
