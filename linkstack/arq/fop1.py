"""FOP-1, the sending end of COP-1 (CCSDS 232.1-B-2 §5), as a sans-IO state machine.

FOP-1 keeps the Type-AD frames it has sent on the Sent_Queue until the CLCW (the FARM-1
report, :class:`linkstack.frames.clcw.Clcw`) acknowledges them through its Report Value N(R),
and retransmits them go-back-N when the CLCW sets the Retransmit flag or the timer T1
expires. Type-BD frames bypass the queues; Type-BC frames carry the two control commands
Unlock (``00``) and Set V(R) (``82 00 V(R)``) (232.0-B-4 §4.1.3.3).

The state table (232.1-B-2 table 5-1) is *data*: :data:`FOP1_STATE_TABLE` maps
``(event, state)`` to the actions, in Blue Book order, and the next state; the engine
classifies every input into one event (232.1-B-2 §5.3 event conditions, E1..E46 and the
Revision B events E101..E104), looks the row up and runs the actions. :func:`state_table_rows`
renders it for the specs.

Sources. The Blue Book table itself was not at hand; the table was assembled from the actions
of §5.2 (quoted in the docstrings) and checked cell by cell against three independent
implementations: dariol83/ccsds ``FopEngine`` (DL), oresat ``ccsds-cop`` (OC) and yamcs
``Cop1TcPacketHandler`` (YM). Where they differ, the choice is noted on the row (search
"NOTE" below).

The engine never reads a clock: every call takes ``now`` (seconds), and the timer is exposed
as :meth:`Fop1.next_deadline` / :meth:`Fop1.on_timer`. Every call returns the list of events
it produced, each a :data:`Fop1Event` (:class:`~linkstack.arq.common.TransmitFrame` requests for
the Lower Procedures, responses, alerts); alerts are events, never exceptions.

Lower Procedures. In the Blue Book each 'Transmit Request for Frame' is answered by the
Lower Procedures with Accept or Reject (events E41..E46), and FOP-1 sends nothing else of
that type until then (AD_Out, BC_Out, BD_Out flags). With ``immediate_lower_accept=True``
(default) the engine answers Accept itself right after each request, i.e. the lower layer is
always ready; with ``False`` the caller must call :meth:`Fop1.lower_response` (that is how a
link of finite rate paces FOP-1).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from linkstack.arq.common import (
    Acknowledged,
    Alert,
    ArqCounters,
    FrameType,
    SduAccepted,
    SduRejected,
    TransmitFrame,
    Undelivered,
)
from linkstack.arq.params import COP1_T1_INITIAL, COP1_TRANSMISSION_LIMIT, COP1_WINDOW_WIDTH
from linkstack.errors import ConfigError
from linkstack.frames.clcw import COP_1, Clcw
from linkstack.frames.tc import FRAME_SEQUENCE_MODULUS as MODULUS
from linkstack.frames.tc import set_vr_command, unlock_command  # the wire layer's BC commands

__all__ = [
    "FOP1_EVENT_CONDITIONS",
    "FOP1_STATE_TABLE",
    "MODULUS",
    "AlertCode",
    "DirectiveResponse",
    "DirectiveResponseKind",
    "Fop1",
    "Fop1Event",
    "FopAction",
    "FopDirective",
    "FopEvent",
    "FopState",
    "FopTransition",
    "SentFrame",
    "Suspended",
    "WaitEntry",
    "state_table_rows",
]

# N(S), V(S), N(R) and NN(R) are 8-bit: all arithmetic is modulo MODULUS, 256 (232.1-B-2
# §5.2.1), the TC frame layer's FRAME_SEQUENCE_MODULUS (re-exported here as MODULUS).


class FopState(enum.IntEnum):
    """FOP-1 states (232.1-B-2 §5.1.2)."""

    S1 = 1
    """Active."""
    S2 = 2
    """Retransmit without Wait."""
    S3 = 3
    """Retransmit with Wait."""
    S4 = 4
    """Initialising without BC Frame."""
    S5 = 5
    """Initialising with BC Frame."""
    S6 = 6
    """Initial."""

    @property
    def title(self) -> str:
        return _STATE_TITLES[self]


_STATE_TITLES = {
    FopState.S1: "Active",
    FopState.S2: "Retransmit without Wait",
    FopState.S3: "Retransmit with Wait",
    FopState.S4: "Initialising without BC Frame",
    FopState.S5: "Initialising with BC Frame",
    FopState.S6: "Initial",
}


class FopEvent(enum.IntEnum):
    """FOP-1 events (232.1-B-2 table 5-1); E101..E104 are the Revision B additions."""

    E1 = 1
    E2 = 2
    E3 = 3
    E4 = 4
    E5 = 5
    E6 = 6
    E7 = 7
    E101 = 101
    E102 = 102
    E8 = 8
    E9 = 9
    E10 = 10
    E11 = 11
    E12 = 12
    E103 = 103
    E13 = 13
    E14 = 14
    E15 = 15
    E16 = 16
    E104 = 104
    E17 = 17
    E18 = 18
    E19 = 19
    E20 = 20
    E21 = 21
    E22 = 22
    E23 = 23
    E24 = 24
    E25 = 25
    E26 = 26
    E27 = 27
    E28 = 28
    E29 = 29
    E30 = 30
    E31 = 31
    E32 = 32
    E33 = 33
    E34 = 34
    E35 = 35
    E36 = 36
    E37 = 37
    E38 = 38
    E39 = 39
    E40 = 40
    E41 = 41
    E42 = 42
    E43 = 43
    E44 = 44
    E45 = 45
    E46 = 46


_NR_ALL = "valid CLCW, Lockout=0, N(R)=V(S)"
_NR_SOME = "valid CLCW, Lockout=0, NN(R)<=N(R)<V(S)"
FOP1_EVENT_CONDITIONS: dict[FopEvent, str] = {
    FopEvent.E1: f"{_NR_ALL}, Retransmit=0, Wait=0, N(R)=NN(R)",
    FopEvent.E2: f"{_NR_ALL}, Retransmit=0, Wait=0, N(R)!=NN(R)",
    FopEvent.E3: f"{_NR_ALL}, Retransmit=0, Wait=1",
    FopEvent.E4: f"{_NR_ALL}, Retransmit=1",
    FopEvent.E5: f"{_NR_SOME}, Retransmit=0, Wait=0, N(R)=NN(R)",
    FopEvent.E6: f"{_NR_SOME}, Retransmit=0, Wait=0, N(R)!=NN(R)",
    FopEvent.E7: f"{_NR_SOME}, Retransmit=0, Wait=1",
    FopEvent.E101: f"{_NR_SOME}, Retransmit=1, Transmission_Limit=1, N(R)!=NN(R)",
    FopEvent.E102: f"{_NR_SOME}, Retransmit=1, Transmission_Limit=1, N(R)=NN(R)",
    FopEvent.E8: f"{_NR_SOME}, Retransmit=1, Transmission_Limit>1, N(R)!=NN(R), Wait=0",
    FopEvent.E9: f"{_NR_SOME}, Retransmit=1, Transmission_Limit>1, N(R)!=NN(R), Wait=1",
    FopEvent.E10: f"{_NR_SOME}, Retransmit=1, N(R)=NN(R), Transmission_Count<Limit, Wait=0",
    FopEvent.E11: f"{_NR_SOME}, Retransmit=1, N(R)=NN(R), Transmission_Count<Limit, Wait=1",
    FopEvent.E12: f"{_NR_SOME}, Retransmit=1, N(R)=NN(R), Transmission_Count>=Limit, Wait=0",
    FopEvent.E103: f"{_NR_SOME}, Retransmit=1, N(R)=NN(R), Transmission_Count>=Limit, Wait=1",
    FopEvent.E13: "valid CLCW, Lockout=0, N(R) neither V(S) nor in [NN(R), V(S)) (invalid N(R))",
    FopEvent.E14: "valid CLCW, Lockout=1",
    FopEvent.E15: "invalid CLCW (COP in Effect is not COP-1)",
    FopEvent.E16: "Timer expires, Transmission_Count<Transmission_Limit, Timeout_Type=0",
    FopEvent.E104: "Timer expires, Transmission_Count<Transmission_Limit, Timeout_Type=1",
    FopEvent.E17: "Timer expires, Transmission_Count>=Transmission_Limit, Timeout_Type=0",
    FopEvent.E18: "Timer expires, Transmission_Count>=Transmission_Limit, Timeout_Type=1",
    FopEvent.E19: "Request to transfer AD FDU, Wait_Queue empty",
    FopEvent.E20: "Request to transfer AD FDU, Wait_Queue not empty",
    FopEvent.E21: "Request to transfer BD FDU, BD_Out_Flag Ready",
    FopEvent.E22: "Request to transfer BD FDU, BD_Out_Flag Not Ready",
    FopEvent.E23: "Directive: Initiate AD Service without CLCW check",
    FopEvent.E24: "Directive: Initiate AD Service with CLCW check",
    FopEvent.E25: "Directive: Initiate AD Service with Unlock, BC_Out_Flag Ready",
    FopEvent.E26: "Directive: Initiate AD Service with Unlock, BC_Out_Flag Not Ready",
    FopEvent.E27: "Directive: Initiate AD Service with Set V(R), BC_Out_Flag Ready",
    FopEvent.E28: "Directive: Initiate AD Service with Set V(R), BC_Out_Flag Not Ready",
    FopEvent.E29: "Directive: Terminate AD Service",
    FopEvent.E30: "Directive: Resume AD Service, Suspend_State=0",
    FopEvent.E31: "Directive: Resume AD Service, Suspend_State=1",
    FopEvent.E32: "Directive: Resume AD Service, Suspend_State=2",
    FopEvent.E33: "Directive: Resume AD Service, Suspend_State=3",
    FopEvent.E34: "Directive: Resume AD Service, Suspend_State=4",
    FopEvent.E35: "Directive: Set V(S) to V*(S)",
    FopEvent.E36: "Directive: Set FOP_Sliding_Window_Width",
    FopEvent.E37: "Directive: Set T1_Initial",
    FopEvent.E38: "Directive: Set Transmission_Limit",
    FopEvent.E39: "Directive: Set Timeout_Type",
    FopEvent.E40: "Invalid directive",
    FopEvent.E41: "AD_Accept from the Lower Procedures",
    FopEvent.E42: "AD_Reject from the Lower Procedures",
    FopEvent.E43: "BC_Accept from the Lower Procedures",
    FopEvent.E44: "BC_Reject from the Lower Procedures",
    FopEvent.E45: "BD_Accept from the Lower Procedures",
    FopEvent.E46: "BD_Reject from the Lower Procedures",
}
"""Condition of every event, as in the left columns of 232.1-B-2 table 5-1."""


class AlertCode(enum.Enum):
    """Alert reason codes (232.1-B-2 §5.2.15 / table 5-1)."""

    LIMIT = "LIMIT"
    T1 = "T1"
    LOCKOUT = "LOCKOUT"
    SYNCH = "SYNCH"
    NN_R = "NN_R"
    CLCW = "CLCW"
    LLIF = "LLIF"
    TERM = "TERM"


class FopAction(enum.Enum):
    """Actions of the FOP-1 state table (232.1-B-2 §5.2); the value is the Blue Book wording."""

    ACCEPT_FDU = "Accept (FDU)"
    REJECT_FDU = "Reject (FDU)"
    ACCEPT_DIRECTIVE = "Accept (Directive)"
    REJECT_DIRECTIVE = "Reject (Directive)"
    CONFIRM_DIRECTIVE = "Confirm (Directive)"
    ADD_TO_WAIT_QUEUE = "Add to Wait_Queue"
    LOOK_FOR_FDU = "Look for FDU"
    LOOK_FOR_DIRECTIVE = "Look for Directive"
    TRANSMIT_BD_FRAME = "Transmit Type-BD Frame"
    TRANSMIT_BC_UNLOCK = "Transmit Type-BC Frame (Unlock)"
    TRANSMIT_BC_SET_VR = "Transmit Type-BC Frame (Set V(R) to V*(R))"
    REMOVE_ACKNOWLEDGED = "Remove Acknowledged Frames from Sent_Queue"
    INITIATE_AD_RETRANSMISSION = "Initiate AD Retransmission"
    INITIATE_BC_RETRANSMISSION = "Initiate BC Retransmission"
    RELEASE_BC_FRAME = "Release copy of Type-BC Frame"
    START_TIMER = "Start Timer"
    CANCEL_TIMER = "Cancel Timer"
    INITIALIZE = "Initialize"
    SET_VS_TO_VR = "Set V(S) to V*(R), Set NN(R) to V*(R)"
    SET_VS = "Accept, Set V(S) and NN(R) to V*(S), Confirm (Reject if SS != 0)"
    SET_WINDOW_WIDTH = "Set FOP_Sliding_Window_Width to K"
    SET_T1_INITIAL = "Set T1_Initial"
    SET_TRANSMISSION_LIMIT = "Set Transmission_Limit"
    SET_TIMEOUT_TYPE = "Set Timeout_Type"
    RESUME = "Resume"
    SUSPEND = "Suspend (SS := current state)"
    AD_OUT_READY = "Set AD_Out_Flag to Ready"
    BC_OUT_READY = "Set BC_Out_Flag to Ready"
    BD_OUT_READY = "Set BD_Out_Flag to Ready"
    ALERT_LIMIT = "Alert [LIMIT]"
    ALERT_T1 = "Alert [T1]"
    ALERT_LOCKOUT = "Alert [LOCKOUT]"
    ALERT_SYNCH = "Alert [SYNCH]"
    ALERT_NN_R = "Alert [NN(R)]"
    ALERT_CLCW = "Alert [CLCW]"
    ALERT_LLIF = "Alert [LLIF]"
    ALERT_TERM = "Alert [TERM]"


_ALERT_OF_ACTION = {
    FopAction.ALERT_LIMIT: AlertCode.LIMIT,
    FopAction.ALERT_T1: AlertCode.T1,
    FopAction.ALERT_LOCKOUT: AlertCode.LOCKOUT,
    FopAction.ALERT_SYNCH: AlertCode.SYNCH,
    FopAction.ALERT_NN_R: AlertCode.NN_R,
    FopAction.ALERT_CLCW: AlertCode.CLCW,
    FopAction.ALERT_LLIF: AlertCode.LLIF,
    FopAction.ALERT_TERM: AlertCode.TERM,
}


class FopTransition(NamedTuple):
    """One cell of table 5-1: the actions, in order, and the next state. No action = Ignore."""

    actions: tuple[FopAction, ...]
    next_state: FopState


# ---------------------------------------------------------------------------------------------
# The state table (232.1-B-2 table 5-1), one row per event, cells for S1..S6.
# ---------------------------------------------------------------------------------------------

FOP1_STATE_TABLE: dict[tuple[FopEvent, FopState], FopTransition] = {}
"""Table 5-1 of 232.1-B-2: ``(event, state) -> FopTransition``, for all 50 events x 6 states."""

_A = FopAction
_S1, _S2, _S3, _S4, _S5, _S6 = FopState


def _row(event: FopEvent, *cells: tuple[tuple[FopAction, ...], FopState]) -> None:
    for state, (actions, next_state) in zip(FopState, cells, strict=True):
        FOP1_STATE_TABLE[(event, state)] = FopTransition(tuple(actions), next_state)


def _ign(state: FopState) -> tuple[tuple[FopAction, ...], FopState]:
    return ((), state)


def _all(actions: tuple[FopAction, ...], to: FopState | None = None) -> list[
        tuple[tuple[FopAction, ...], FopState]]:
    return [(actions, to if to is not None else s) for s in FopState]


_REMOVE_CANCEL_LOOK = (_A.REMOVE_ACKNOWLEDGED, _A.CANCEL_TIMER, _A.LOOK_FOR_FDU)
_REMOVE_LOOK = (_A.REMOVE_ACKNOWLEDGED, _A.LOOK_FOR_FDU)
_REMOVE_RETX_LOOK = (_A.REMOVE_ACKNOWLEDGED, _A.INITIATE_AD_RETRANSMISSION, _A.LOOK_FOR_FDU)
_RETX_LOOK = (_A.INITIATE_AD_RETRANSMISSION, _A.LOOK_FOR_FDU)
_BC_RETX = (_A.INITIATE_BC_RETRANSMISSION, _A.LOOK_FOR_DIRECTIVE)
_REJ_D = (_A.REJECT_DIRECTIVE,)
_REJ_F = (_A.REJECT_FDU,)

# -- CLCW arrival -----------------------------------------------------------------------------
_row(FopEvent.E1, _ign(_S1), ((_A.ALERT_SYNCH,), _S6), ((_A.ALERT_SYNCH,), _S6),
     ((_A.CONFIRM_DIRECTIVE, _A.CANCEL_TIMER), _S1),
     ((_A.RELEASE_BC_FRAME, _A.CANCEL_TIMER, _A.CONFIRM_DIRECTIVE), _S1), _ign(_S6))
# NOTE E2, E5..E12, E101..E103 in S4/S5: Ignore (DL and OC; YM treats E2 like E1 in S4/S5).
_row(FopEvent.E2, (_REMOVE_CANCEL_LOOK, _S1), (_REMOVE_CANCEL_LOOK, _S1),
     (_REMOVE_CANCEL_LOOK, _S1), _ign(_S4), _ign(_S5), _ign(_S6))
# NOTE E3 in S5: Ignore (DL, OC); YM raises Alert [CLCW].
_row(FopEvent.E3, ((_A.ALERT_CLCW,), _S6), ((_A.ALERT_CLCW,), _S6), ((_A.ALERT_CLCW,), _S6),
     ((_A.ALERT_CLCW,), _S6), _ign(_S5), _ign(_S6))
_row(FopEvent.E4, ((_A.ALERT_SYNCH,), _S6), ((_A.ALERT_SYNCH,), _S6),
     ((_A.ALERT_SYNCH,), _S6), ((_A.ALERT_SYNCH,), _S6), _ign(_S5), _ign(_S6))
_row(FopEvent.E5, _ign(_S1), ((_A.ALERT_SYNCH,), _S6), ((_A.ALERT_SYNCH,), _S6),
     _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E6, (_REMOVE_LOOK, _S1), (_REMOVE_LOOK, _S1), (_REMOVE_LOOK, _S1),
     _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E7, ((_A.ALERT_CLCW,), _S6), ((_A.ALERT_CLCW,), _S6), ((_A.ALERT_CLCW,), _S6),
     _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E101, *[((_A.REMOVE_ACKNOWLEDGED, _A.ALERT_LIMIT), _S6)] * 3,
     _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E102, *[((_A.ALERT_LIMIT,), _S6)] * 3, _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E8, *[(_REMOVE_RETX_LOOK, _S2)] * 3, _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E9, *[((_A.REMOVE_ACKNOWLEDGED,), _S3)] * 3, _ign(_S4), _ign(_S5), _ign(_S6))
# NOTE E10 in S3: DL omits 'Look for FDU'; OC and YM have it (a retransmission needs it).
_row(FopEvent.E10, (_RETX_LOOK, _S2), _ign(_S2), (_RETX_LOOK, _S2),
     _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E11, ((), _S3), ((), _S3), ((), _S3), _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E12, ((), _S2), ((), _S2), ((), _S2), _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E103, ((), _S3), ((), _S3), ((), _S3), _ign(_S4), _ign(_S5), _ign(_S6))
_row(FopEvent.E13, *[((_A.ALERT_NN_R,), _S6)] * 4, _ign(_S5), _ign(_S6))
_row(FopEvent.E14, *[((_A.ALERT_LOCKOUT,), _S6)] * 4, _ign(_S5), _ign(_S6))
_row(FopEvent.E15, *[((_A.ALERT_CLCW,), _S6)] * 5, _ign(_S6))

# -- Timer expiry (no timer runs in S6: those cells are Ignore) --------------------------------
_row(FopEvent.E16, (_RETX_LOOK, _S1), (_RETX_LOOK, _S2), _ign(_S3),
     ((_A.ALERT_T1,), _S6), (_BC_RETX, _S5), _ign(_S6))
_row(FopEvent.E104, (_RETX_LOOK, _S1), (_RETX_LOOK, _S2), _ign(_S3),
     ((_A.SUSPEND,), _S6), (_BC_RETX, _S5), _ign(_S6))
_row(FopEvent.E17, *[((_A.ALERT_T1,), _S6)] * 5, _ign(_S6))
# NOTE E18 in S5: Alert [T1] (DL, YM; S5 cannot be resumed, SS only records S1..S4);
# OC suspends.
_row(FopEvent.E18, *[((_A.SUSPEND,), _S6)] * 4, ((_A.ALERT_T1,), _S6), _ign(_S6))

# -- Requests from the Higher Procedures ------------------------------------------------------
_row(FopEvent.E19, ((_A.ADD_TO_WAIT_QUEUE, _A.LOOK_FOR_FDU), _S1),
     ((_A.ADD_TO_WAIT_QUEUE, _A.LOOK_FOR_FDU), _S2), ((_A.ADD_TO_WAIT_QUEUE,), _S3),
     (_REJ_F, _S4), (_REJ_F, _S5), (_REJ_F, _S6))
_row(FopEvent.E20, *_all(_REJ_F))
_row(FopEvent.E21, *_all((_A.ACCEPT_FDU, _A.TRANSMIT_BD_FRAME)))
_row(FopEvent.E22, *_all(_REJ_F))

# -- Directives -------------------------------------------------------------------------------
_row(FopEvent.E23, *_all(_REJ_D)[:5],
     ((_A.ACCEPT_DIRECTIVE, _A.INITIALIZE, _A.CONFIRM_DIRECTIVE), _S1))
_row(FopEvent.E24, *_all(_REJ_D)[:5],
     ((_A.ACCEPT_DIRECTIVE, _A.INITIALIZE, _A.START_TIMER), _S4))
_row(FopEvent.E25, *_all(_REJ_D)[:5],
     ((_A.ACCEPT_DIRECTIVE, _A.INITIALIZE, _A.TRANSMIT_BC_UNLOCK), _S5))
_row(FopEvent.E26, *_all(_REJ_D))
_row(FopEvent.E27, *_all(_REJ_D)[:5],
     ((_A.ACCEPT_DIRECTIVE, _A.INITIALIZE, _A.SET_VS_TO_VR, _A.TRANSMIT_BC_SET_VR), _S5))
_row(FopEvent.E28, *_all(_REJ_D))
_row(FopEvent.E29, *_all((_A.ACCEPT_DIRECTIVE, _A.ALERT_TERM, _A.CONFIRM_DIRECTIVE), _S6)[:5],
     ((_A.ACCEPT_DIRECTIVE, _A.CONFIRM_DIRECTIVE), _S6))
_row(FopEvent.E30, *_all(_REJ_D))
# NOTE E31..E34 cannot occur in S1..S5 (SS != 0 only in S6); the engine rejects them there.
for _event, _to in ((FopEvent.E31, _S1), (FopEvent.E32, _S2), (FopEvent.E33, _S3),
                    (FopEvent.E34, _S4)):
    _row(_event, *_all(_REJ_D)[:5],
         ((_A.ACCEPT_DIRECTIVE, _A.RESUME, _A.CONFIRM_DIRECTIVE), _to))
# NOTE E35 in S6 is rejected while suspended (SS != 0), as in DL and YM.
_row(FopEvent.E35, *_all(_REJ_D)[:5], ((_A.SET_VS,), _S6))
for _event, _set in ((FopEvent.E36, _A.SET_WINDOW_WIDTH), (FopEvent.E37, _A.SET_T1_INITIAL),
                     (FopEvent.E38, _A.SET_TRANSMISSION_LIMIT),
                     (FopEvent.E39, _A.SET_TIMEOUT_TYPE)):
    _row(_event, *_all((_A.ACCEPT_DIRECTIVE, _set, _A.CONFIRM_DIRECTIVE)))
_row(FopEvent.E40, *_all(_REJ_D))

# -- Responses from the Lower Procedures ------------------------------------------------------
_row(FopEvent.E41, ((_A.AD_OUT_READY, _A.LOOK_FOR_FDU), _S1),
     ((_A.AD_OUT_READY, _A.LOOK_FOR_FDU), _S2), *_all((_A.AD_OUT_READY,))[2:])
_row(FopEvent.E42, *_all((_A.ALERT_LLIF,), _S6))
_row(FopEvent.E43, *_all((_A.BC_OUT_READY,))[:4],
     ((_A.BC_OUT_READY, _A.LOOK_FOR_DIRECTIVE), _S5), ((_A.BC_OUT_READY,), _S6))
_row(FopEvent.E44, *_all((_A.ALERT_LLIF,), _S6))
_row(FopEvent.E45, *_all((_A.BD_OUT_READY,)))
_row(FopEvent.E46, *_all((_A.ALERT_LLIF,), _S6))

assert len(FOP1_STATE_TABLE) == len(FopEvent) * len(FopState)


def state_table_rows() -> list[tuple[str, str, list[str]]]:
    """Table 5-1 as text rows ``(event, condition, [cell S1, ..., cell S6])`` for the specs;
    a cell reads ``"action; action -> Sn"`` (``Ignore`` when there is no action)."""
    rows = []
    for event in FopEvent:
        cells = []
        for state in FopState:
            t = FOP1_STATE_TABLE[(event, state)]
            acts = "; ".join(a.value for a in t.actions) or "Ignore"
            cells.append(f"{acts} -> {t.next_state.name}")
        rows.append((event.name, FOP1_EVENT_CONDITIONS[event], cells))
    return rows


# ---------------------------------------------------------------------------------------------
# Directives, responses and other FOP-specific events
# ---------------------------------------------------------------------------------------------


class FopDirective(enum.Enum):
    """FOP-1 directives from Management (232.1-B-2 §4.1.3 / §5.3 E23..E40)."""

    INITIATE_AD_WITHOUT_CLCW_CHECK = "Initiate AD Service without CLCW check"
    INITIATE_AD_WITH_CLCW_CHECK = "Initiate AD Service with CLCW check"
    INITIATE_AD_WITH_UNLOCK = "Initiate AD Service with Unlock"
    INITIATE_AD_WITH_SET_VR = "Initiate AD Service with Set V(R)"
    TERMINATE_AD = "Terminate AD Service"
    RESUME_AD = "Resume AD Service"
    SET_VS = "Set V(S)"
    SET_FOP_SLIDING_WINDOW = "Set FOP_Sliding_Window_Width"
    SET_T1_INITIAL = "Set T1_Initial"
    SET_TRANSMISSION_LIMIT = "Set Transmission_Limit"
    SET_TIMEOUT_TYPE = "Set Timeout_Type"


class DirectiveResponseKind(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    POSITIVE_CONFIRM = "positive confirm"
    NEGATIVE_CONFIRM = "negative confirm"


@dataclass(frozen=True, slots=True)
class DirectiveResponse:
    """Response to a directive (232.1-B-2 §5.2.11-5.2.13, §5.2.15 d)."""

    directive: FopDirective | None
    qualifier: Any
    tag: Any
    response: DirectiveResponseKind


@dataclass(frozen=True, slots=True)
class Suspended:
    """'Suspend' notification (232.1-B-2 §5.2.16): the AD service is suspended in the state
    recorded in Suspend_State; the Resume directive brings it back."""

    suspend_state: int


Fop1Event = (
    TransmitFrame | SduAccepted | SduRejected | Acknowledged | Undelivered | Alert
    | DirectiveResponse | Suspended
)
"""Everything a :class:`Fop1` call returns: requests to the Lower Procedures
(:class:`~linkstack.arq.common.TransmitFrame`), responses to FDU requests and directives,
confirmations, the Suspend notification and alerts. Not to be confused with :class:`FopEvent`,
the events (E1..E46) of the state table."""


@dataclass(slots=True)
class SentFrame:
    """A master copy on the Sent_Queue (232.1-B-2 §5.1.5), with its To_Be_Retransmitted_Flag."""

    frame_type: FrameType
    ns: int
    data: bytes
    handle: Any = None
    to_be_retransmitted: bool = False
    transmissions: int = 1


@dataclass(frozen=True, slots=True)
class WaitEntry:
    """The FDU held on the Wait_Queue (capacity one, 232.1-B-2 §5.1.4)."""

    data: bytes
    handle: Any


@dataclass(slots=True)
class _Ctx:
    now: float
    clcw: Clcw | None = None
    data: bytes = b""
    handle: Any = None
    directive: FopDirective | None = None
    qualifier: Any = None
    tag: Any = None
    frame_type: FrameType | None = None


def _in_half_open(x: int, low: int, high: int) -> bool:
    """``low <= x < high`` modulo 256 (with ``low`` and ``high`` spanning less than 256)."""
    return (x - low) % MODULUS < (high - low) % MODULUS


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


class Fop1:
    """FOP-1 for one TC Virtual Channel (CCSDS 232.1-B-2 §5).

    Args:
        vcid: the Virtual Channel this FOP serves; CLCWs reporting another VCID are not for it
            and are ignored (232.1-B-2 §5.3.2: checked before the state table).
        vs: initial V(S) (and NN(R)).
        window_width: FOP_Sliding_Window_Width K, 1..255; it must not exceed the FARM's
            positive window PW (232.1-B-2 §5.1.7), or retransmissions can lock the FARM out.
        t1_initial: Timer_Initial_Value T1 in seconds.
        transmission_limit: Transmission_Limit, >= 1.
        timeout_type: Timeout_Type TT, 0 (alert on T1 expiry at the limit) or 1 (suspend).
        immediate_lower_accept: answer every 'Transmit Request' with Accept at once (see the
            module docstring); when False, call :meth:`lower_response`.

    Variables keep their Blue Book names: ``state``, ``vs``, ``nnr``, ``wait_queue``,
    ``sent_queue`` (AD frames; the BC frame is held in ``bc_frame``), ``transmission_count``,
    ``transmission_limit``, ``t1_initial``, ``window_width``, ``timeout_type``,
    ``suspend_state``, ``ad_out_ready``, ``bc_out_ready``, ``bd_out_ready``, and the timer
    ``timer_deadline``. The engine starts in S6 (Initial): the AD service must be initiated
    with a directive.
    """

    def __init__(
        self,
        vcid: int = 0,
        *,
        vs: int = 0,
        window_width: int = COP1_WINDOW_WIDTH,
        t1_initial: float = COP1_T1_INITIAL,
        transmission_limit: int = COP1_TRANSMISSION_LIMIT,
        timeout_type: int = 0,
        immediate_lower_accept: bool = True,
    ) -> None:
        if not 0 <= vcid <= 63:
            raise ConfigError(f"{vcid} is outside 0..63", key="vcid")
        if not 0 <= vs <= 255:
            raise ConfigError(f"{vs} is outside 0..255", key="vs")
        if not 1 <= window_width <= 255:
            raise ConfigError(f"{window_width} is outside 1..255", key="window_width")
        if not t1_initial > 0:
            raise ConfigError(f"{t1_initial} must be > 0", key="t1_initial")
        if transmission_limit < 1:
            raise ConfigError(f"{transmission_limit} must be >= 1", key="transmission_limit")
        if timeout_type not in (0, 1):
            raise ConfigError(f"{timeout_type} must be 0 or 1", key="timeout_type")
        self.vcid = vcid
        self.state = FopState.S6
        self.vs = vs
        self.nnr = vs
        self.wait_queue: WaitEntry | None = None
        self.sent_queue: deque[SentFrame] = deque()
        self.bc_frame: SentFrame | None = None
        self.transmission_count = 1
        self.transmission_limit = transmission_limit
        self.t1_initial = float(t1_initial)
        self.window_width = window_width
        self.timeout_type = timeout_type
        self.suspend_state = 0
        self.ad_out_ready = True
        self.bc_out_ready = True
        self.bd_out_ready = True
        self.timer_deadline: float | None = None
        self.immediate_lower_accept = immediate_lower_accept
        self.counters = ArqCounters()
        self.last_transition: tuple[FopEvent, FopState, FopState] | None = None
        self.history: deque[tuple[FopEvent, FopState, FopState]] = deque(maxlen=256)
        self._pending_directive: tuple[FopDirective | None, Any, Any] | None = None
        self._out: list[Fop1Event] = []
        self._lower: deque[FrameType] = deque()

    # -- properties ------------------------------------------------------------------------
    @property
    def wait_queue_empty(self) -> bool:
        return self.wait_queue is None

    @property
    def outstanding(self) -> int:
        """Frames sent and not yet acknowledged: (V(S) - NN(R)) mod 256."""
        return (self.vs - self.nnr) % MODULUS

    # -- inputs ----------------------------------------------------------------------------
    def request_ad(self, data: bytes, handle: Any = None, *, now: float) -> list[Fop1Event]:
        """'Request to Transfer FDU' for a Type-AD FDU (E19 / E20)."""
        event = FopEvent.E19 if self.wait_queue is None else FopEvent.E20
        return self._run(event, _Ctx(now, data=bytes(data), handle=handle))

    def request_bd(self, data: bytes, handle: Any = None, *, now: float) -> list[Fop1Event]:
        """'Request to Transfer FDU' for a Type-BD FDU (E21 / E22)."""
        event = FopEvent.E21 if self.bd_out_ready else FopEvent.E22
        return self._run(event, _Ctx(now, data=bytes(data), handle=handle))

    def on_clcw(self, clcw: Clcw, *, now: float) -> list[Fop1Event]:
        """A CLCW arrived (E1..E15, E101..E103). CLCWs of other VCIDs are ignored."""
        if clcw.vcid != self.vcid:
            return []
        self.counters.acks_received += 1
        return self._run(self._classify_clcw(clcw), _Ctx(now, clcw=clcw))

    def directive(self, directive: FopDirective, qualifier: Any = None, *, now: float,
                  tag: Any = None) -> list[Fop1Event]:
        """A directive from Management (E23..E40). An out-of-range qualifier makes it an
        invalid directive (E40)."""
        event = self._classify_directive(directive, qualifier)
        return self._run(event, _Ctx(now, directive=directive, qualifier=qualifier, tag=tag))

    def lower_response(self, frame_type: FrameType, accepted: bool, *,
                       now: float) -> list[Fop1Event]:
        """Accept / Reject from the Lower Procedures for the outstanding request (E41..E46)."""
        event = _LOWER_EVENTS[(frame_type, bool(accepted))]
        return self._run(event, _Ctx(now, frame_type=frame_type))

    def next_deadline(self) -> float | None:
        """When the timer T1 expires, or None if it is not running."""
        return self.timer_deadline

    def on_timer(self, now: float) -> list[Fop1Event]:
        """Call at or after :meth:`next_deadline` (E16, E104, E17, E18); early calls do nothing."""
        if self.timer_deadline is None or now < self.timer_deadline:
            return []
        self.timer_deadline = None
        self.counters.timeouts += 1
        if self.transmission_count < self.transmission_limit:
            event = FopEvent.E16 if self.timeout_type == 0 else FopEvent.E104
        else:
            event = FopEvent.E17 if self.timeout_type == 0 else FopEvent.E18
        return self._run(event, _Ctx(now))

    # -- directive shortcuts -----------------------------------------------------------------
    def initiate_ad(self, *, now: float, clcw_check: bool = False,
                    tag: Any = None) -> list[Fop1Event]:
        d = (FopDirective.INITIATE_AD_WITH_CLCW_CHECK if clcw_check
             else FopDirective.INITIATE_AD_WITHOUT_CLCW_CHECK)
        return self.directive(d, now=now, tag=tag)

    def initiate_ad_with_unlock(self, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.INITIATE_AD_WITH_UNLOCK, now=now, tag=tag)

    def initiate_ad_with_set_vr(self, vr: int, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.INITIATE_AD_WITH_SET_VR, vr, now=now, tag=tag)

    def terminate(self, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.TERMINATE_AD, now=now, tag=tag)

    def resume(self, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.RESUME_AD, now=now, tag=tag)

    def set_vs(self, vs: int, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.SET_VS, vs, now=now, tag=tag)

    def set_window_width(self, k: int, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.SET_FOP_SLIDING_WINDOW, k, now=now, tag=tag)

    def set_t1_initial(self, t1: float, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.SET_T1_INITIAL, t1, now=now, tag=tag)

    def set_transmission_limit(self, limit: int, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.SET_TRANSMISSION_LIMIT, limit, now=now, tag=tag)

    def set_timeout_type(self, tt: int, *, now: float, tag: Any = None) -> list[Fop1Event]:
        return self.directive(FopDirective.SET_TIMEOUT_TYPE, tt, now=now, tag=tag)

    # -- classification (232.1-B-2 table 5-1, event columns) -------------------------------------
    def _classify_clcw(self, clcw: Clcw) -> FopEvent:
        if clcw.cop_in_effect != COP_1:
            return FopEvent.E15
        if clcw.lockout:
            return FopEvent.E14
        nr = clcw.report_value
        if nr == self.vs:
            if clcw.retransmit:
                return FopEvent.E4
            if clcw.wait:
                return FopEvent.E3
            return FopEvent.E1 if nr == self.nnr else FopEvent.E2
        if not _in_half_open(nr, self.nnr, self.vs):
            return FopEvent.E13
        if not clcw.retransmit:
            if clcw.wait:
                return FopEvent.E7
            return FopEvent.E5 if nr == self.nnr else FopEvent.E6
        if self.transmission_limit == 1:
            return FopEvent.E101 if nr != self.nnr else FopEvent.E102
        if nr != self.nnr:
            return FopEvent.E9 if clcw.wait else FopEvent.E8
        if self.transmission_count < self.transmission_limit:
            return FopEvent.E11 if clcw.wait else FopEvent.E10
        return FopEvent.E103 if clcw.wait else FopEvent.E12

    def _classify_directive(self, d: FopDirective, q: Any) -> FopEvent:
        def is_int(lo: int, hi: int) -> bool:
            return isinstance(q, int) and not isinstance(q, bool) and lo <= q <= hi

        match d:
            case FopDirective.INITIATE_AD_WITHOUT_CLCW_CHECK:
                return FopEvent.E23
            case FopDirective.INITIATE_AD_WITH_CLCW_CHECK:
                return FopEvent.E24
            case FopDirective.INITIATE_AD_WITH_UNLOCK:
                return FopEvent.E25 if self.bc_out_ready else FopEvent.E26
            case FopDirective.INITIATE_AD_WITH_SET_VR:
                if not is_int(0, 255):
                    return FopEvent.E40
                return FopEvent.E27 if self.bc_out_ready else FopEvent.E28
            case FopDirective.TERMINATE_AD:
                return FopEvent.E29
            case FopDirective.RESUME_AD:
                return (FopEvent.E30, FopEvent.E31, FopEvent.E32, FopEvent.E33,
                        FopEvent.E34)[self.suspend_state]
            case FopDirective.SET_VS:
                return FopEvent.E35 if is_int(0, 255) else FopEvent.E40
            case FopDirective.SET_FOP_SLIDING_WINDOW:
                return FopEvent.E36 if is_int(1, 255) else FopEvent.E40
            case FopDirective.SET_T1_INITIAL:
                ok = isinstance(q, int | float) and not isinstance(q, bool) and q > 0
                return FopEvent.E37 if ok else FopEvent.E40
            case FopDirective.SET_TRANSMISSION_LIMIT:
                return FopEvent.E38 if is_int(1, 1 << 30) else FopEvent.E40
            case FopDirective.SET_TIMEOUT_TYPE:
                return FopEvent.E39 if is_int(0, 1) else FopEvent.E40
        return FopEvent.E40  # pragma: no cover - every directive is matched above

    # -- the state machine -------------------------------------------------------------------
    def _run(self, event: FopEvent, ctx: _Ctx) -> list[Fop1Event]:
        self._dispatch(event, ctx)
        while self._lower:
            frame_type = self._lower.popleft()
            self._dispatch(_LOWER_EVENTS[(frame_type, True)], _Ctx(ctx.now, frame_type=frame_type))
        out, self._out = self._out, []
        return out

    def _dispatch(self, event: FopEvent, ctx: _Ctx) -> None:
        state = self.state
        transition = FOP1_STATE_TABLE[(event, state)]
        for action in transition.actions:
            _ACTIONS[action](self, ctx, event)
        self.state = transition.next_state
        self.last_transition = (event, state, transition.next_state)
        self.history.append(self.last_transition)

    # -- actions (232.1-B-2 §5.2) --------------------------------------------------------------
    def _reason(self, event: FopEvent) -> str:
        return f"{event.name} in {self.state.name}: {FOP1_EVENT_CONDITIONS[event]}"

    def _respond(self, ctx: _Ctx, kind: DirectiveResponseKind) -> None:
        self._out.append(DirectiveResponse(ctx.directive, ctx.qualifier, ctx.tag, kind))

    def _accept_fdu(self, ctx: _Ctx, event: FopEvent) -> None:
        self._out.append(SduAccepted(ctx.handle))

    def _reject_fdu(self, ctx: _Ctx, event: FopEvent) -> None:
        self._out.append(SduRejected(ctx.handle, self._reason(event)))

    def _accept_directive(self, ctx: _Ctx, event: FopEvent) -> None:
        self._respond(ctx, DirectiveResponseKind.ACCEPT)

    def _reject_directive(self, ctx: _Ctx, event: FopEvent) -> None:
        self._respond(ctx, DirectiveResponseKind.REJECT)

    def _confirm_directive(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.13. A CLCW event (E1 in S4/S5) confirms the pending Initiate directive."""
        if ctx.directive is not None:
            self._respond(ctx, DirectiveResponseKind.POSITIVE_CONFIRM)
        elif self._pending_directive is not None:
            d, q, tag = self._pending_directive
            self._out.append(DirectiveResponse(d, q, tag, DirectiveResponseKind.POSITIVE_CONFIRM))
            self._pending_directive = None

    def _pass_to_lower(self, frame: SentFrame, retransmission: bool) -> None:
        self.counters.frames_sent += 1
        self.counters.bytes_sent += len(frame.data)
        if retransmission:
            self.counters.retransmissions += 1
        self._out.append(TransmitFrame(frame.frame_type, frame.ns, frame.data, self.vcid,
                                       frame.handle, retransmission))
        if self.immediate_lower_accept:
            self._lower.append(frame.frame_type)

    def _start_timer(self, ctx: _Ctx, event: FopEvent | None = None) -> None:
        self.timer_deadline = ctx.now + self.t1_initial

    def _cancel_timer(self, ctx: _Ctx | None = None, event: FopEvent | None = None) -> None:
        self.timer_deadline = None

    def _add_to_wait_queue(self, ctx: _Ctx, event: FopEvent) -> None:
        self.wait_queue = WaitEntry(ctx.data, ctx.handle)

    def _transmit_ad(self, entry: WaitEntry, ctx: _Ctx) -> None:
        """§5.2.4 'Transmit Type-AD Frame'."""
        frame = SentFrame(FrameType.AD, self.vs, entry.data, entry.handle)
        self.vs = (self.vs + 1) % MODULUS
        if not self.sent_queue:
            self.transmission_count = 1
        self.sent_queue.append(frame)
        self._start_timer(ctx)
        self.ad_out_ready = False
        self._pass_to_lower(frame, retransmission=False)

    def _look_for_fdu(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.10 'Look for FDU'."""
        if not self.ad_out_ready:
            return
        for frame in self.sent_queue:
            if frame.to_be_retransmitted:
                frame.to_be_retransmitted = False
                frame.transmissions += 1
                self.ad_out_ready = False
                self._pass_to_lower(frame, retransmission=True)
                return
        if self.wait_queue is not None and self.outstanding < self.window_width:
            entry, self.wait_queue = self.wait_queue, None
            self._out.append(SduAccepted(entry.handle))
            self._transmit_ad(entry, ctx)

    def _look_for_directive(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.9 'Look for Directive'."""
        bc = self.bc_frame
        if self.bc_out_ready and bc is not None and bc.to_be_retransmitted:
            bc.to_be_retransmitted = False
            bc.transmissions += 1
            self.bc_out_ready = False
            self._pass_to_lower(bc, retransmission=True)

    def _transmit_bd(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.6 'Transmit Type-BD Frame'."""
        self.bd_out_ready = False
        self._pass_to_lower(SentFrame(FrameType.BD, 0, ctx.data, ctx.handle), False)

    def _transmit_bc(self, data: bytes, ctx: _Ctx) -> None:
        """§5.2.5 'Transmit Type-BC Frame'."""
        self.bc_frame = SentFrame(FrameType.BC, 0, data, ctx.tag)
        self.transmission_count = 1
        self._start_timer(ctx)
        self.bc_out_ready = False
        self._pass_to_lower(self.bc_frame, retransmission=False)

    def _transmit_bc_unlock(self, ctx: _Ctx, event: FopEvent) -> None:
        self._pending_directive = (ctx.directive, ctx.qualifier, ctx.tag)
        self._transmit_bc(unlock_command(), ctx)

    def _transmit_bc_set_vr(self, ctx: _Ctx, event: FopEvent) -> None:
        self._pending_directive = (ctx.directive, ctx.qualifier, ctx.tag)
        self._transmit_bc(set_vr_command(int(ctx.qualifier)), ctx)

    def _remove_acknowledged(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.8: confirm and drop every frame below N(R); NN(R) := N(R); count := 1."""
        assert ctx.clcw is not None
        nr = ctx.clcw.report_value
        while self.nnr != nr:
            if self.sent_queue and self.sent_queue[0].ns == self.nnr:
                frame = self.sent_queue.popleft()
                self.counters.acknowledged += 1
                self._out.append(Acknowledged(frame.handle, frame.ns))
            self.nnr = (self.nnr + 1) % MODULUS
        self.transmission_count = 1

    def _initiate_ad_retransmission(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.7 for AD frames (there is no lower-layer request to abort in this engine)."""
        self.transmission_count += 1
        self._start_timer(ctx)
        for frame in self.sent_queue:
            frame.to_be_retransmitted = True

    def _initiate_bc_retransmission(self, ctx: _Ctx, event: FopEvent) -> None:
        self.transmission_count += 1
        self._start_timer(ctx)
        if self.bc_frame is not None:
            self.bc_frame.to_be_retransmitted = True

    def _release_bc_frame(self, ctx: _Ctx, event: FopEvent) -> None:
        self.bc_frame = None

    def _purge_sent_queue(self, reason: str) -> None:
        """§5.2.2: a Negative Confirm for every frame on the Sent_Queue, which is cleared."""
        while self.sent_queue:
            frame = self.sent_queue.popleft()
            self.counters.undelivered += 1
            self._out.append(Undelivered(frame.handle, frame.ns, reason))
        self.bc_frame = None

    def _purge_wait_queue(self, reason: str) -> None:
        """§5.2.3: a Reject for the FDU on the Wait_Queue, which is cleared."""
        if self.wait_queue is not None:
            self._out.append(SduRejected(self.wait_queue.handle, reason))
            self.wait_queue = None

    def _initialize(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.14 'Initialize'."""
        reason = self._reason(event)
        self._purge_sent_queue(reason)
        self._purge_wait_queue(reason)
        self.transmission_count = 1
        self.suspend_state = 0

    def _set_vs_to_vr(self, ctx: _Ctx, event: FopEvent) -> None:
        self.vs = self.nnr = int(ctx.qualifier)

    def _set_vs(self, ctx: _Ctx, event: FopEvent) -> None:
        if self.suspend_state != 0:
            self._respond(ctx, DirectiveResponseKind.REJECT)
            return
        self._respond(ctx, DirectiveResponseKind.ACCEPT)
        self.vs = self.nnr = int(ctx.qualifier)
        self._respond(ctx, DirectiveResponseKind.POSITIVE_CONFIRM)

    def _set_window_width(self, ctx: _Ctx, event: FopEvent) -> None:
        self.window_width = int(ctx.qualifier)

    def _set_t1_initial(self, ctx: _Ctx, event: FopEvent) -> None:
        self.t1_initial = float(ctx.qualifier)

    def _set_transmission_limit(self, ctx: _Ctx, event: FopEvent) -> None:
        self.transmission_limit = int(ctx.qualifier)

    def _set_timeout_type(self, ctx: _Ctx, event: FopEvent) -> None:
        self.timeout_type = int(ctx.qualifier)

    def _resume(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.17 'Resume'."""
        self._start_timer(ctx)
        self.suspend_state = 0

    def _suspend(self, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.16 'Suspend'; Suspend_State records the state the service is suspended in."""
        self.suspend_state = int(self.state)
        self._out.append(Suspended(self.suspend_state))

    def _ad_out_ready(self, ctx: _Ctx, event: FopEvent) -> None:
        self.ad_out_ready = True

    def _bc_out_ready(self, ctx: _Ctx, event: FopEvent) -> None:
        self.bc_out_ready = True

    def _bd_out_ready(self, ctx: _Ctx, event: FopEvent) -> None:
        self.bd_out_ready = True

    def _alert(self, code: AlertCode, ctx: _Ctx, event: FopEvent) -> None:
        """§5.2.15 'Alert': cancel the timer, purge both queues, Negative Confirm for a pending
        Initiate directive, then the Alert notification with its reason."""
        reason = self._reason(event)
        self._cancel_timer()
        self._purge_sent_queue(f"Alert [{code.value}]: {reason}")
        self._purge_wait_queue(f"Alert [{code.value}]: {reason}")
        if self._pending_directive is not None:
            d, q, tag = self._pending_directive
            self._out.append(DirectiveResponse(d, q, tag, DirectiveResponseKind.NEGATIVE_CONFIRM))
            self._pending_directive = None
        self.counters.alerts += 1
        self._out.append(Alert(code.value, reason))


class _Action(Protocol):
    """One action of the state table, run as ``action(fop, ctx, event)``."""

    def __call__(self, fop: Fop1, ctx: _Ctx, event: FopEvent, /) -> None: ...


def _alert_action(code: AlertCode) -> _Action:
    def run(fop: Fop1, ctx: _Ctx, event: FopEvent) -> None:
        fop._alert(code, ctx, event)
    return run


def _start_timer_action(fop: Fop1, ctx: _Ctx, event: FopEvent) -> None:
    # E24 starts the timer of the Initiate-with-CLCW-check directive and remembers it.
    fop._pending_directive = (ctx.directive, ctx.qualifier, ctx.tag)
    fop._start_timer(ctx)


_ACTIONS: dict[FopAction, _Action] = {
    FopAction.ACCEPT_FDU: Fop1._accept_fdu,
    FopAction.REJECT_FDU: Fop1._reject_fdu,
    FopAction.ACCEPT_DIRECTIVE: Fop1._accept_directive,
    FopAction.REJECT_DIRECTIVE: Fop1._reject_directive,
    FopAction.CONFIRM_DIRECTIVE: Fop1._confirm_directive,
    FopAction.ADD_TO_WAIT_QUEUE: Fop1._add_to_wait_queue,
    FopAction.LOOK_FOR_FDU: Fop1._look_for_fdu,
    FopAction.LOOK_FOR_DIRECTIVE: Fop1._look_for_directive,
    FopAction.TRANSMIT_BD_FRAME: Fop1._transmit_bd,
    FopAction.TRANSMIT_BC_UNLOCK: Fop1._transmit_bc_unlock,
    FopAction.TRANSMIT_BC_SET_VR: Fop1._transmit_bc_set_vr,
    FopAction.REMOVE_ACKNOWLEDGED: Fop1._remove_acknowledged,
    FopAction.INITIATE_AD_RETRANSMISSION: Fop1._initiate_ad_retransmission,
    FopAction.INITIATE_BC_RETRANSMISSION: Fop1._initiate_bc_retransmission,
    FopAction.RELEASE_BC_FRAME: Fop1._release_bc_frame,
    FopAction.START_TIMER: _start_timer_action,
    FopAction.CANCEL_TIMER: Fop1._cancel_timer,
    FopAction.INITIALIZE: Fop1._initialize,
    FopAction.SET_VS_TO_VR: Fop1._set_vs_to_vr,
    FopAction.SET_VS: Fop1._set_vs,
    FopAction.SET_WINDOW_WIDTH: Fop1._set_window_width,
    FopAction.SET_T1_INITIAL: Fop1._set_t1_initial,
    FopAction.SET_TRANSMISSION_LIMIT: Fop1._set_transmission_limit,
    FopAction.SET_TIMEOUT_TYPE: Fop1._set_timeout_type,
    FopAction.RESUME: Fop1._resume,
    FopAction.SUSPEND: Fop1._suspend,
    FopAction.AD_OUT_READY: Fop1._ad_out_ready,
    FopAction.BC_OUT_READY: Fop1._bc_out_ready,
    FopAction.BD_OUT_READY: Fop1._bd_out_ready,
    **{action: _alert_action(code) for action, code in _ALERT_OF_ACTION.items()},
}
assert set(_ACTIONS) == set(FopAction)

_LOWER_EVENTS = {
    (FrameType.AD, True): FopEvent.E41,
    (FrameType.AD, False): FopEvent.E42,
    (FrameType.BC, True): FopEvent.E43,
    (FrameType.BC, False): FopEvent.E44,
    (FrameType.BD, True): FopEvent.E45,
    (FrameType.BD, False): FopEvent.E46,
}
