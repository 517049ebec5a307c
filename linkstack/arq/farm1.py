"""FARM-1, the receiving end of COP-1 (CCSDS 232.1-B-2 §6), as a sans-IO state machine.

FARM-1 accepts Type-AD frames strictly in sequence (N(S) = V(R)), discards the others
according to its sliding window, accepts every Type-BD frame, executes the two Type-BC
control commands (Unlock, Set V(R)), and reports its state in the CLCW
(:class:`linkstack.frames.clcw.Clcw`) that FOP-1 reads.

Window (232.1-B-2 §6.1.8). FARM_Sliding_Window_Width W is even, 2..254; the positive window
(PW = W/2 values) runs from V(R) to V(R)+PW-1 and the negative window (NW = W/2 values) from
V(R)-NW to V(R)-1, modulo 256; the remaining 256-W values form the lockout area.

The state table (232.1-B-2 table 6-1) is data: :data:`FARM1_STATE_TABLE` maps
``(event, state)`` to the actions and the next state. Events:

====  =====================================================================
E1    Type-AD, N(S) = V(R), buffer space available
E2    Type-AD, N(S) = V(R), no buffer space
E3    Type-AD, N(S) > V(R), in the positive window
E4    Type-AD, N(S) < V(R), in the negative window
E5    Type-AD, N(S) in the lockout area
E6    Type-BD frame
E7    Type-BC Unlock
E8    Type-BC Set V(R)
E9    invalid frame (illegal flags 0/1, malformed control command)
E10   buffer release signal from the Higher Procedures
E11   CLCW report
====  =====================================================================

Sources: the Blue Book table was not at hand; the table follows dariol83/ccsds
``S1/S2/S3FarmState`` (DL) and oresat ``ccsds-cop`` ``farm.py`` (OC), which agree on every
cell; E1 in S2 cannot happen (the Wait state means the buffer is full, and the buffer
release is E10) and is marked not applicable.

Buffer. With ``buffer_capacity=None`` the Higher Procedures take every FDU at once and FARM-1
never enters Wait. With a capacity of *n* FDUs, each AD FDU delivered occupies one place until
the caller calls :meth:`Farm1.release`; a full buffer makes the next in-sequence frame E2
(Wait), and the release that frees a place is E10. Type-BD FDUs do not use that buffer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from linkstack.arq.common import ArqCounters, Delivered, FrameType
from linkstack.errors import ConfigError, DecodeError
from linkstack.frames.clcw import COP_1, Clcw
from linkstack.frames.tc import FRAME_SEQUENCE_MODULUS as MODULUS
from linkstack.frames.tc import BcCommand, ControlCommand
from linkstack.frames.tc import parse_control_command as _parse_bc

__all__ = [
    "FARM1_EVENT_CONDITIONS",
    "FARM1_STATE_TABLE",
    "BcCommand",
    "Farm1",
    "Farm1Event",
    "FarmAction",
    "FarmEvent",
    "FarmState",
    "FarmTransition",
    "FrameDiscarded",
    "parse_control_command",
    "state_table_rows",
]


class FarmState(enum.IntEnum):
    """FARM-1 states (232.1-B-2 §6.1.2)."""

    S1 = 1
    """Open."""
    S2 = 2
    """Wait."""
    S3 = 3
    """Lockout."""

    @property
    def title(self) -> str:
        return ("Open", "Wait", "Lockout")[self - 1]


class FarmEvent(enum.IntEnum):
    """FARM-1 events (232.1-B-2 table 6-1)."""

    E1 = 1
    E2 = 2
    E3 = 3
    E4 = 4
    E5 = 5
    E6 = 6
    E7 = 7
    E8 = 8
    E9 = 9
    E10 = 10
    E11 = 11


FARM1_EVENT_CONDITIONS: dict[FarmEvent, str] = {
    FarmEvent.E1: "valid Type-AD frame, N(S) = V(R), buffer available",
    FarmEvent.E2: "valid Type-AD frame, N(S) = V(R), no buffer available",
    FarmEvent.E3: "valid Type-AD frame, N(S) > V(R) and N(S) <= V(R)+PW-1 (positive window)",
    FarmEvent.E4: "valid Type-AD frame, N(S) < V(R) and N(S) >= V(R)-NW (negative window)",
    FarmEvent.E5: "valid Type-AD frame, N(S) in the lockout area",
    FarmEvent.E6: "valid Type-BD frame",
    FarmEvent.E7: "valid Type-BC frame, Unlock",
    FarmEvent.E8: "valid Type-BC frame, Set V(R) to V*(R)",
    FarmEvent.E9: "invalid frame",
    FarmEvent.E10: "buffer release signal",
    FarmEvent.E11: "CLCW report time",
}


class FarmAction(enum.Enum):
    """Actions of the FARM-1 state table (232.1-B-2 §6.2); the value is the Blue Book wording."""

    ACCEPT = "Accept FDU"
    INCREMENT_VR = "V(R) := V(R)+1"
    DISCARD = "Discard"
    SET_RETRANSMIT = "Retransmit_Flag := 1"
    CLEAR_RETRANSMIT = "Retransmit_Flag := 0"
    SET_WAIT = "Wait_Flag := 1"
    CLEAR_WAIT = "Wait_Flag := 0"
    SET_LOCKOUT = "Lockout_Flag := 1"
    CLEAR_LOCKOUT = "Lockout_Flag := 0"
    INCREMENT_FARM_B = "FARM-B_Counter := FARM-B_Counter+1"
    SET_VR = "V(R) := V*(R)"
    REPORT = "Generate CLCW"


class FarmTransition(NamedTuple):
    """One cell of table 6-1. ``applicable`` is False where the event cannot occur."""

    actions: tuple[FarmAction, ...]
    next_state: FarmState
    applicable: bool = True


_A = FarmAction
_S1, _S2, _S3 = FarmState

FARM1_STATE_TABLE: dict[tuple[FarmEvent, FarmState], FarmTransition] = {}
"""Table 6-1 of 232.1-B-2: ``(event, state) -> FarmTransition``."""


def _row(event: FarmEvent, *cells: FarmTransition) -> None:
    for state, cell in zip(FarmState, cells, strict=True):
        FARM1_STATE_TABLE[(event, state)] = cell


_T = FarmTransition
_D = (_A.DISCARD,)
_row(FarmEvent.E1, _T((_A.ACCEPT, _A.INCREMENT_VR, _A.CLEAR_RETRANSMIT), _S1),
     _T((), _S2, applicable=False), _T(_D, _S3))
_row(FarmEvent.E2, _T((_A.DISCARD, _A.SET_RETRANSMIT, _A.SET_WAIT), _S2), _T(_D, _S2),
     _T(_D, _S3))
_row(FarmEvent.E3, _T((_A.DISCARD, _A.SET_RETRANSMIT), _S1), _T(_D, _S2), _T(_D, _S3))
_row(FarmEvent.E4, _T(_D, _S1), _T(_D, _S2), _T(_D, _S3))
_row(FarmEvent.E5, _T((_A.DISCARD, _A.SET_LOCKOUT), _S3), _T((_A.DISCARD, _A.SET_LOCKOUT), _S3),
     _T(_D, _S3))
_row(FarmEvent.E6, *(_T((_A.ACCEPT, _A.INCREMENT_FARM_B), s) for s in FarmState))
_row(FarmEvent.E7, _T((_A.INCREMENT_FARM_B, _A.CLEAR_RETRANSMIT), _S1),
     _T((_A.INCREMENT_FARM_B, _A.CLEAR_RETRANSMIT, _A.CLEAR_WAIT), _S1),
     _T((_A.INCREMENT_FARM_B, _A.CLEAR_RETRANSMIT, _A.CLEAR_WAIT, _A.CLEAR_LOCKOUT), _S1))
_row(FarmEvent.E8, _T((_A.INCREMENT_FARM_B, _A.CLEAR_RETRANSMIT, _A.SET_VR), _S1),
     _T((_A.INCREMENT_FARM_B, _A.CLEAR_RETRANSMIT, _A.CLEAR_WAIT, _A.SET_VR), _S1),
     _T((_A.INCREMENT_FARM_B,), _S3))
_row(FarmEvent.E9, *(_T(_D, s) for s in FarmState))
_row(FarmEvent.E10, _T((), _S1), _T((_A.CLEAR_WAIT,), _S1), _T((_A.CLEAR_WAIT,), _S3))
_row(FarmEvent.E11, *(_T((_A.REPORT,), s) for s in FarmState))

assert len(FARM1_STATE_TABLE) == len(FarmEvent) * len(FarmState)


def state_table_rows() -> list[tuple[str, str, list[str]]]:
    """Table 6-1 as text rows ``(event, condition, [cell S1, S2, S3])`` for the specs."""
    rows = []
    for event in FarmEvent:
        cells = []
        for state in FarmState:
            t = FARM1_STATE_TABLE[(event, state)]
            if not t.applicable:
                cells.append("(not applicable)")
                continue
            acts = "; ".join(a.value for a in t.actions) or "Ignore"
            cells.append(f"{acts} -> {t.next_state.name}")
        rows.append((event.name, FARM1_EVENT_CONDITIONS[event], cells))
    return rows


def parse_control_command(data: bytes) -> BcCommand | None:
    """The control command of a BC frame, or None for anything else (FARM-1 event E9).

    The wire format is the TC frame layer's (:func:`linkstack.frames.tc.parse_control_command`,
    232.0-B-4 §4.1.3.3); FARM-1 only turns its error into "not a valid BC frame".
    """
    try:
        return _parse_bc(data)
    except DecodeError:
        return None


@dataclass(frozen=True, slots=True)
class FrameDiscarded:
    """FARM-1 discarded a frame (the event says why: E2..E5, E9, E1 in Lockout)."""

    frame_type: FrameType | None
    ns: int
    event: FarmEvent
    reason: str


Farm1Event = Delivered | FrameDiscarded | BcCommand
"""Everything a :class:`Farm1` call returns: an FDU for the Higher Procedures
(:class:`~linkstack.arq.common.Delivered`), a discarded frame with the reason, or the control
command of a BC frame FARM-1 executed (:class:`~linkstack.frames.tc.BcCommand`). Not to be
confused with :class:`FarmEvent`, the events (E1..E11) of the state table."""


class Farm1:
    """FARM-1 for one TC Virtual Channel (CCSDS 232.1-B-2 §6).

    Args:
        vcid: the Virtual Channel (reported in the CLCW).
        window_width: FARM_Sliding_Window_Width W, even, 2..254.
        vr: initial V(R).
        buffer_capacity: AD FDUs the Higher Procedures can hold before :meth:`release`
            (None: unlimited, FARM-1 never waits).
        status_field: the mission-specific CLCW Status Field (3 bits).

    Variables: ``state``, ``vr``, ``lockout``, ``wait``, ``retransmit``, ``farm_b_counter``
    (the CLCW carries its two least significant bits), ``window_width``,
    ``positive_window_width``, ``negative_window_width``, and the physical-layer flags
    ``no_rf_available`` / ``no_bit_lock`` that the caller sets for the CLCW.
    """

    def __init__(self, vcid: int = 0, *, window_width: int = 254, vr: int = 0,
                 buffer_capacity: int | None = None, status_field: int = 0) -> None:
        if not 0 <= vcid <= 63:
            raise ConfigError(f"{vcid} is outside 0..63", key="vcid")
        if window_width % 2 or not 2 <= window_width <= 254:
            raise ConfigError(f"{window_width} must be even and in 2..254 "
                              "(232.1-B-2 §6.1.8.2)", key="window_width")
        if not 0 <= vr <= 255:
            raise ConfigError(f"{vr} is outside 0..255", key="vr")
        if buffer_capacity is not None and buffer_capacity < 1:
            raise ConfigError(f"{buffer_capacity} must be >= 1", key="buffer_capacity")
        if not 0 <= status_field <= 7:
            raise ConfigError(f"{status_field} is outside 0..7", key="status_field")
        self.vcid = vcid
        self.state = FarmState.S1
        self.vr = vr
        self.lockout = False
        self.wait = False
        self.retransmit = False
        self.farm_b_counter = 0
        self.window_width = window_width
        self.positive_window_width = window_width // 2
        self.negative_window_width = window_width // 2
        self.buffer_capacity = buffer_capacity
        self.buffered = 0
        self.status_field = status_field
        self.no_rf_available = False
        self.no_bit_lock = False
        self.counters = ArqCounters()
        self.last_transition: tuple[FarmEvent, FarmState, FarmState] | None = None
        self._out: list[Farm1Event] = []

    # -- inputs ----------------------------------------------------------------------------
    def receive(self, frame_type: FrameType | None, ns: int,
                data: bytes) -> list[Farm1Event]:
        """A valid TC frame for this VC arrived (232.1-B-2 §6.3.2: frame validation is done
        before). ``frame_type`` None stands for the illegal flag combination (E9)."""
        data = bytes(data)
        ns &= 0xFF
        if frame_type is FrameType.AD:
            event = self._classify_ad(ns)
        elif frame_type is FrameType.BD:
            event = FarmEvent.E6
        elif frame_type is FrameType.BC:
            cmd = parse_control_command(data)
            event = FarmEvent.E9 if cmd is None else (
                FarmEvent.E7 if cmd.command is ControlCommand.UNLOCK else FarmEvent.E8)
        else:
            event = FarmEvent.E9
        return self._run(event, frame_type, ns, data)

    def receive_flags(self, bypass_flag: int, control_command_flag: int, ns: int,
                      data: bytes) -> list[Farm1Event]:
        """Like :meth:`receive`, from the two TC primary header flags."""
        return self.receive(FrameType.from_flags(bypass_flag, control_command_flag), ns, data)

    def release(self, count: int = 1) -> list[Farm1Event]:
        """The Higher Procedures freed ``count`` buffer places (E10, buffer release signal)."""
        self.buffered = max(0, self.buffered - count)
        return self._run(FarmEvent.E10, None, 0, b"")

    def clcw(self) -> Clcw:
        """E11: the CLCW reporting the current state (232.0-B-4 §4.2.1, 232.1-B-2 §6.2)."""
        self._run(FarmEvent.E11, None, 0, b"")
        return Clcw(
            vcid=self.vcid, report_value=self.vr, lockout=self.lockout, wait=self.wait,
            retransmit=self.retransmit, farm_b_counter=self.farm_b_counter & 0b11,
            no_rf_available=self.no_rf_available, no_bit_lock=self.no_bit_lock,
            status_field=self.status_field, cop_in_effect=COP_1,
        )

    # -- classification ----------------------------------------------------------------------
    @property
    def buffer_available(self) -> bool:
        return self.buffer_capacity is None or self.buffered < self.buffer_capacity

    def _classify_ad(self, ns: int) -> FarmEvent:
        ahead = (ns - self.vr) % MODULUS
        if ahead == 0:
            return FarmEvent.E1 if self.buffer_available else FarmEvent.E2
        if ahead < self.positive_window_width:
            return FarmEvent.E3
        if (self.vr - ns) % MODULUS <= self.negative_window_width:
            return FarmEvent.E4
        return FarmEvent.E5

    # -- the state machine -------------------------------------------------------------------
    def _run(self, event: FarmEvent, frame_type: FrameType | None, ns: int,
             data: bytes) -> list[Farm1Event]:
        state = self.state
        t = FARM1_STATE_TABLE[(event, state)]
        if not t.applicable:  # pragma: no cover - unreachable by construction (see module doc)
            raise AssertionError(f"FARM-1 {event.name} cannot occur in {state.name}")
        for action in t.actions:
            self._act(action, event, frame_type, ns, data)
        self.state = t.next_state
        self.last_transition = (event, state, t.next_state)
        out, self._out = self._out, []
        return out

    def _act(self, action: FarmAction, event: FarmEvent, frame_type: FrameType | None,
             ns: int, data: bytes) -> None:
        match action:
            case FarmAction.ACCEPT:
                self.counters.delivered += 1
                expedited = frame_type is not FrameType.AD
                if not expedited:
                    self.buffered += 1
                self._out.append(Delivered(data, ns, expedited))
            case FarmAction.INCREMENT_VR:
                self.vr = (self.vr + 1) % MODULUS
            case FarmAction.DISCARD:
                self.counters.frames_discarded += 1
                if event is FarmEvent.E4:
                    self.counters.duplicates_discarded += 1
                elif event is FarmEvent.E3:
                    self.counters.out_of_order += 1
                self._out.append(FrameDiscarded(
                    frame_type, ns, event,
                    f"{event.name} in {self.state.name}: {FARM1_EVENT_CONDITIONS[event]}"))
            case FarmAction.SET_RETRANSMIT:
                self.retransmit = True
            case FarmAction.CLEAR_RETRANSMIT:
                self.retransmit = False
            case FarmAction.SET_WAIT:
                self.wait = True
            case FarmAction.CLEAR_WAIT:
                self.wait = False
            case FarmAction.SET_LOCKOUT:
                self.lockout = True
            case FarmAction.CLEAR_LOCKOUT:
                self.lockout = False
            case FarmAction.INCREMENT_FARM_B:
                self.farm_b_counter += 1
                if event is not FarmEvent.E6:
                    cmd = parse_control_command(data)
                    assert cmd is not None
                    self._out.append(cmd)
            case FarmAction.SET_VR:
                cmd = parse_control_command(data)
                assert cmd is not None and cmd.vr is not None
                self.vr = cmd.vr
            case FarmAction.REPORT:
                self.counters.acks_sent += 1
