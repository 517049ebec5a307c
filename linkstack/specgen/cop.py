"""Spec pages of the ARQ layer: CLCW and COP-1 (FOP-1, FARM-1), and selective repeat.

The COP-1 state tables and the state diagrams are rendered from the engines' own tables
(:data:`linkstack.arq.fop1.FOP1_STATE_TABLE`, :data:`linkstack.arq.farm1.FARM1_STATE_TABLE`),
so the page shows exactly what the code does; the exchange trace is produced by running the
two engines against each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from linkstack.arq import farm1, fop1, sr
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
from linkstack.frames import clcw, tc
from linkstack.specgen.frames import check, octets_row
from linkstack.specgen.render import (
    SPARE,
    Example,
    FieldDoc,
    HeaderSpec,
    Page,
    Row,
    Span,
    header_rows,
    md_table,
)

__all__ = ["CLCW_SPEC", "COP1_PAGE", "SR_PAGE", "cop1_trace", "mermaid_state_diagram"]

COP_BOOK = ("CCSDS 232.0-B-4 §4.2 (the CLCW) and CCSDS 232.1-B-2 (Communications Operation "
            "Procedure-1)")
SR_BOOK = "linkstack extension (no Blue Book): selective repeat after RFC 2018, RFC 6298, RFC 9002"

FLAG = {0: "no", 1: "yes"}

CLCW_SPEC = HeaderSpec(
    key="clcw.clcw",
    title="Communications Link Control Word (CLCW)",
    struct=clcw.CLCW_STRUCT,
    declared_in="linkstack.frames.clcw.CLCW_STRUCT",
    note="Carried in the 4-octet Operational Control Field of return-link TM, AOS or USLP "
         "frames (232.0-B-4 §4.2.1).",
    docs={
        "control_word_type": FieldDoc(
            "Control Word Type", "0: this OCF holds a CLCW (1 would be another report, e.g. "
            "the SDLS frame security report).", "0", "§4.2.1.2", "T"),
        "clcw_version_number": FieldDoc("CLCW Version Number", "Version 1 is coded 00.", "00",
                                        "§4.2.1.3", "Ver"),
        "status_field": FieldDoc("Status Field", "Mission-specific status.", "0..7",
                                 "§4.2.1.4", "Status"),
        "cop_in_effect": FieldDoc(
            "COP in Effect", "Which Communications Operation Procedure is running; FOP-1 "
            "treats anything but 01 as an invalid CLCW (event E15).", "01 = COP-1",
            "§4.2.1.5", "COP", {1: "COP-1"}),
        "vcid": FieldDoc(
            "Virtual Channel Identification", "The uplink VC whose FARM-1 this CLCW reports; "
            "a FOP-1 ignores CLCWs of other VCs.", "0..63", "§4.2.1.6", "VCID"),
        SPARE: FieldDoc("Reserved Spare", "Reserved by CCSDS.", "0", "§4.2.1.7 / §4.2.1.10",
                        "Sp"),
        "no_rf_available": FieldDoc(
            "No RF Available Flag", "The spacecraft receiver has no RF signal (set by the "
            "physical layer).", "0 or 1", "§4.2.1.8.2", "N", FLAG),
        "no_bit_lock": FieldDoc("No Bit Lock Flag", "The spacecraft receiver has no bit "
                                "lock.", "0 or 1", "§4.2.1.8.3", "B", FLAG),
        "lockout": FieldDoc(
            "Lockout Flag", "FARM-1 is in Lockout (an AD frame fell outside its window); "
            "only an Unlock control command gets it out.", "0 or 1", "§4.2.1.8.4", "L", FLAG),
        "wait": FieldDoc("Wait Flag", "FARM-1 cannot accept AD frames now (no buffer).",
                         "0 or 1", "§4.2.1.8.5", "W", FLAG),
        "retransmit": FieldDoc(
            "Retransmit Flag", "FARM-1 discarded an AD frame it expected (a gap): FOP-1 must "
            "go back and retransmit from N(R).", "0 or 1", "§4.2.1.8.6", "R", FLAG),
        "farm_b_counter": FieldDoc(
            "FARM-B Counter", "Two least significant bits of the count of accepted Type-B "
            "frames (lets the ground see that a BD/BC frame arrived).", "0..3", "§4.2.1.9",
            "FB"),
        "report_value": FieldDoc(
            "Report Value", "V(R): the N(S) FARM-1 expects next; every AD frame before it "
            "was accepted (FOP-1 reads it as N(R)).", "0..255", "§4.2.1.11", "Report Value"),
    },
)

_CLCW_CODE = """
from linkstack.arq.common import FrameType
from linkstack.arq.farm1 import Farm1

farm = Farm1(vcid=1, window_width=10)
for ns in (0, 1, 2, 4):  # the frame with N(S) = 3 was lost on the way
    farm.receive(FrameType.AD, ns, b"data")
octets = farm.clcw().encode()
"""


def _clcw_spans(octets: bytes) -> list[Span]:
    return [Span(0, 4, "CLCW")]


def _clcw_decode(octets: bytes) -> list[Row]:
    rows, v = header_rows(CLCW_SPEC, octets, 0, "CLCW")
    word = clcw.Clcw.decode(octets)
    check((word.vcid, word.report_value, int(word.retransmit), int(word.lockout))
          == (v["vcid"], v["report_value"], v["retransmit"], v["lockout"]),
          "Clcw.decode disagrees with the fields")
    return rows


CLCW_EXAMPLE = Example(
    key="clcw.after_a_gap",
    title="the CLCW after a lost frame",
    intro="FARM-1 of VC 1 accepts N(S) = 0, 1, 2 (V(R) becomes 3), then receives N(S) = 4: "
          "inside its positive window but not the expected frame, so it discards it and sets "
          "the Retransmit flag (event E3). Its next CLCW tells FOP-1 to go back to 3.",
    code=_CLCW_CODE,
    spans=_clcw_spans,
    decode=_clcw_decode,
)


# ---------------------------------------------------------------------------------------------
# State tables and diagrams
# ---------------------------------------------------------------------------------------------


def mermaid_state_diagram(states: Iterable[Any], titles: Mapping[Any, str],
                          table: Mapping[tuple[Any, Any], Any], events: Iterable[Any],
                          initial: Any) -> str:
    """A Mermaid ``stateDiagram-v2`` from a ``(event, state) -> transition`` table.

    One arrow per (state, next state) pair with the events that cause it; transitions that
    stay in the same state are left out (the table lists them).
    """
    states = list(states)
    events = list(events)
    lines = ["```mermaid", "stateDiagram-v2"]
    for s in states:
        lines.append(f'    state "{s.name} {titles[s]}" as {s.name}')
    lines.append(f"    [*] --> {initial.name}")
    for s in states:
        for t in states:
            if s == t:
                continue
            causes = [e.name for e in events
                      if table[(e, s)].next_state == t
                      and getattr(table[(e, s)], "applicable", True)]
            if causes:
                lines.append(f"    {s.name} --> {t.name}: {', '.join(causes)}")
    lines.append("```")
    return "\n".join(lines)


def _state_table_markdown(rows: list[tuple[str, str, list[str]]], states: Iterable[Any],
                          titles: Mapping[Any, str]) -> str:
    header = ["Event", "Condition", *[f"{s.name} {titles[s]}" for s in states]]
    body = [[event, cond, *[cell.replace(" -> ", " → ") for cell in cells]]
            for event, cond, cells in rows]
    return md_table(header, body)


def _defaults(fn: Callable[..., Any], names: Iterable[str]) -> str:
    params = inspect.signature(fn).parameters
    return ", ".join(f"`{n}={params[n].default!r}`" for n in names)


def _fop1_section() -> str:
    titles = {s: s.title for s in fop1.FopState}
    parts = [
        "## FOP-1, the sending end",
        "",
        "FOP-1 keeps every Type-AD frame it sends on the *Sent_Queue* until a CLCW "
        "acknowledges it (N(R) moved past its N(S)); at most K frames are outstanding (the "
        "FOP sliding window). When the CLCW's Retransmit flag is set, or the timer T1 expires, "
        "it sends every outstanding frame again, oldest first (go-back-N). After "
        "Transmission_Limit tries it gives up with an Alert (Timeout_Type 0) or suspends "
        "(Timeout_Type 1). The AD service must first be initiated by a directive, with or "
        "without a CLCW check, or with an Unlock or Set V(R) control command sent in a BC frame.",
        "",
        "Managed parameters and their defaults in `linkstack.arq.fop1.Fop1`: "
        + _defaults(fop1.Fop1.__init__, ("window_width", "t1_initial", "transmission_limit",
                                         "timeout_type")) + ".",
        "",
        "### States",
        "",
        md_table(("State", "Name"), [(s.name, s.title) for s in fop1.FopState]),
        "",
        "### State diagram",
        "",
        "Rendered from `FOP1_STATE_TABLE`; an arrow lists every event that makes the "
        "transition (events that keep the state are in the table only). Directives and CLCWs "
        "that raise an Alert all lead to S6.",
        "",
        mermaid_state_diagram(fop1.FopState, titles, fop1.FOP1_STATE_TABLE, fop1.FopEvent,
                              fop1.FopState.S6),
        "",
        "### State table (232.1-B-2 table 5-1, as implemented)",
        "",
        "Rendered from `linkstack.arq.fop1.state_table_rows()`; each cell lists the actions "
        "in order and the next state. E101–E104 are the events Revision B of the Blue Book "
        "added. The table was assembled from §5.2 and checked cell by cell against three "
        "independent implementations; where they differ the choice is noted in "
        "`linkstack/arq/fop1.py` (search for NOTE).",
        "",
        _state_table_markdown(fop1.state_table_rows(), fop1.FopState, titles),
        "",
        "Alerts (`linkstack.arq.fop1.AlertCode`): "
        + ", ".join(f"`{a.value}`" for a in fop1.AlertCode)
        + ". An alert is an event returned to the caller, never an exception; it purges both "
          "queues, reporting every frame given up as `Undelivered` with its N(S).",
    ]
    return "\n".join(parts)


def _farm1_section() -> str:
    titles = {s: s.title for s in farm1.FarmState}
    parts = [
        "## FARM-1, the receiving end",
        "",
        "FARM-1 accepts a Type-AD frame only if its N(S) equals V(R), the number it expects; "
        "then V(R) := V(R) + 1. It classifies every other N(S) by its window of width W "
        "(even, 2..254): the *positive window* PW = W/2 values from V(R) (a frame was lost: "
        "discard and ask for retransmission), the *negative window* NW = W/2 values below "
        "V(R) (an old duplicate: discard silently), and the rest, the *lockout area* (the "
        "two ends lost synchronization: Lockout until an Unlock arrives). Type-BD frames are "
        "always accepted. Its state goes back to FOP-1 in every CLCW.",
        "",
        "Managed parameters and their defaults in `linkstack.arq.farm1.Farm1`: "
        + _defaults(farm1.Farm1.__init__, ("window_width", "buffer_capacity")) + ".",
        "",
        "### States",
        "",
        md_table(("State", "Name"), [(s.name, s.title) for s in farm1.FarmState]),
        "",
        "### State diagram",
        "",
        mermaid_state_diagram(farm1.FarmState, titles, farm1.FARM1_STATE_TABLE,
                              farm1.FarmEvent, farm1.FarmState.S1),
        "",
        "### State table (232.1-B-2 table 6-1, as implemented)",
        "",
        "Rendered from `linkstack.arq.farm1.state_table_rows()`.",
        "",
        _state_table_markdown(farm1.state_table_rows(), farm1.FarmState, titles),
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# A COP-1 exchange, produced by running the engines
# ---------------------------------------------------------------------------------------------

_TRACE_SCID = 0x2A
_TRACE_VCID = 1
_TRACE_CONFIG = tc.TcChannelConfig(has_fecf=True)


def _tc_octets(t: TransmitFrame) -> bytes:
    frame = tc.TcFrame(_TRACE_SCID, t.vcid, t.ns, t.data,
                       bypass_flag=bool(t.frame_type.bypass_flag),
                       control_command_flag=bool(t.frame_type.control_command_flag))
    return frame.encode(_TRACE_CONFIG)


def _describe(ev: Any) -> str | None:
    if isinstance(ev, TransmitFrame):
        kind = "retransmit" if ev.retransmission else "transmit"
        return (f"{kind} {ev.frame_type.name} frame N(S)={ev.ns}: "
                f"`{_tc_octets(ev).hex(' ')}`")
    if isinstance(ev, Acknowledged):
        return f"acknowledged N(S)={ev.seq}"
    if isinstance(ev, Undelivered):
        return f"undelivered N(S)={ev.seq}"
    if isinstance(ev, Alert):
        return f"alert {ev.code}"
    if isinstance(ev, Delivered):
        return f"deliver {ev.data!r}"
    if isinstance(ev, farm1.FrameDiscarded):
        return f"discard N(S)={ev.ns}"
    if isinstance(ev, fop1.DirectiveResponse):
        return f"directive {ev.response.value}"
    if isinstance(ev, SduAccepted | SduRejected):
        return None
    return type(ev).__name__


def cop1_trace() -> str:
    """Run FOP-1 against FARM-1 over a link that loses one frame; the trace as Markdown."""
    fop = fop1.Fop1(_TRACE_VCID, window_width=4, t1_initial=2.0, transmission_limit=3)
    farm = farm1.Farm1(_TRACE_VCID, window_width=8)
    rows: list[tuple[str, str, str, str, str, str]] = []

    def fop_step(t: float, what: str, call: Callable[[], list[Any]]) -> list[Any]:
        before = len(fop.history)
        out = call()
        trans = list(fop.history)[before:]
        events = ", ".join(e.name for e, _, _ in trans)
        state = f"{trans[0][1].name} → {trans[-1][2].name}" if trans else fop.state.name
        text = "; ".join(d for d in (_describe(ev) for ev in out) if d)
        rows.append((f"{t:.1f}", "FOP-1", what, events, state, text or "—"))
        return out

    def farm_step(t: float, what: str, call: Callable[[], list[Any]]) -> list[Any]:
        before = farm.state
        out = call()
        assert farm.last_transition is not None
        event, _, after = farm.last_transition
        text = "; ".join(d for d in (_describe(ev) for ev in out) if d)
        rows.append((f"{t:.1f}", "FARM-1", what, event.name, f"{before.name} → {after.name}",
                     text or "—"))
        return out

    def report(t: float) -> clcw.Clcw:
        word = farm.clcw()
        rows.append((f"{t:.1f}", "FARM-1", "CLCW report time", "E11",
                     f"{farm.state.name} → {farm.state.name}",
                     f"CLCW `{word.encode().hex(' ')}`: V(R)={word.report_value}, "
                     f"Retransmit={int(word.retransmit)}"))
        return word

    fop_step(0.0, "directive Initiate AD Service without CLCW check",
             lambda: fop.initiate_ad(now=0.0))
    sent: list[TransmitFrame] = []
    for i in range(3):
        out = fop_step(0.0, f"request to transfer FDU {f'P{i}'!r}",
                       lambda i=i: fop.request_ad(f"P{i}".encode(), now=0.0))
        sent += [ev for ev in out if isinstance(ev, TransmitFrame)]
    check([t.ns for t in sent] == [0, 1, 2], "FOP-1 sends N(S) 0, 1, 2")
    farm_step(0.1, "AD frame N(S)=0 arrives", lambda: farm.receive(FrameType.AD, 0, sent[0].data))
    rows.append(("0.1", "link", "AD frame N(S)=1 is lost", "", "", "—"))
    farm_step(0.1, "AD frame N(S)=2 arrives", lambda: farm.receive(FrameType.AD, 2, sent[2].data))
    word = report(0.1)
    out = fop_step(0.2, f"CLCW arrives (N(R)={word.report_value}, Retransmit=1)",
                   lambda: fop.on_clcw(word, now=0.2))
    again = [ev for ev in out if isinstance(ev, TransmitFrame)]
    check([t.ns for t in again] == [1, 2], "go-back-N retransmits 1 and 2")
    for t in again:
        farm_step(0.3, f"AD frame N(S)={t.ns} arrives (retransmission)",
                  lambda t=t: farm.receive(FrameType.AD, t.ns, t.data))
    word = report(0.3)
    fop_step(0.4, f"CLCW arrives (N(R)={word.report_value}, Retransmit=0)",
             lambda: fop.on_clcw(word, now=0.4))
    check(fop.state is fop1.FopState.S1 and not fop.sent_queue, "FOP-1 back in S1, queue empty")
    return "\n".join([
        "## Worked example: a lost frame recovered by go-back-N",
        "",
        "Produced by running `Fop1` (K = 4, T1 = 2 s) against `Farm1` (W = 8) on VC 1, "
        "spacecraft 42, with TC frames built by `TcFrame.encode` (FECF on); the link loses the "
        "first transmission of N(S) = 1 (times are illustrative: the engines are sans-IO and "
        "take `now` as an argument). FOP-1 state transitions include the Lower Procedures' "
        "accept events (E41) that follow each transmission. The code is "
        "`linkstack.specgen.cop.cop1_trace`.",
        "",
        md_table(("t (s)", "Engine", "Input", "Events", "State", "Output"), rows),
    ])


def cop1_over_uslp() -> str:
    """The USLP mapping of COP-1, with the three frame types as the RF hop builds them."""
    from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
    from linkstack.hops.cop1_frames import cop1_frames
    from linkstack.spp.packet import SpacePacket

    frames = cop1_frames("uslp", 0x2A, 1024)
    packet = SpacePacket(0x100, 5, b"hi").encode()
    cases = ((FrameType.AD, 5, packet), (FrameType.BD, 0, packet),
             (FrameType.BC, 0, bytes([0x82, 0x00, 0x09])))
    rows = []
    for frame_type, ns, data in cases:
        octets = frames.encode(1, frame_type, ns, data)
        frame = UslpFrame.decode(octets, UslpChannelConfig(frame_length=None))
        back = frames.intake(octets)
        check(getattr(back, "frame_type", None) is frame_type and getattr(back, "ns", -1) == ns
              and getattr(back, "data", b"") == data, f"USLP {frame_type.name} frame round trip")
        count = (f"{frame.vc_frame_count_length} octet, {frame.vc_frame_count}"
                 if frame.vc_frame_count_length else "absent (length 0)")
        rows.append((
            frame_type.name, f"`{octets.hex(' ')}`",
            f"{int(frame.bypass_sequence_control_flag)} / "
            f"{int(frame.protocol_control_command_flag)}",
            count, f"{frame.tfdz_construction_rules:03b} / {frame.uslp_protocol_id}",
        ))
    return "\n".join([
        "## COP-1 over USLP",
        "",
        "USLP (732.1-B-2) carries COP-1 with the same two flags as TC, renamed: the "
        "Bypass/Sequence Control Flag and the Protocol Control Command Flag. N(S) of a "
        "sequence-controlled (AD) frame is the VC Frame Count, one octet here; BD and BC "
        "frames carry no count. The Transfer Frame Data Field uses construction rule 111 "
        "(no segmentation); its USLP Protocol Identifier says what it holds: 0 for the Space "
        "Packet of a data frame, 1 for the COP-1 control command of a BC frame. FARM-1 and "
        "FOP-1 are unchanged; the CLCW comes back in the OCF of TM or USLP frames. The frames "
        "below are built by `linkstack.hops.cop1_frames` (SCID 42, VC 1) and decoded back by "
        "the USLP decoder when this page is built; select them in a scenario with "
        "`frame = \"uslp\"` in the uplink's (and the downlink's) stack table.",
        "",
        md_table(("Frame", "Octets (header … FECF)", "Bypass / Control flags",
                  "VC Frame Count", "TFDZ rule / UPID"), rows),
        "",
        "COP-1 assumes a link that neither reorders nor duplicates frames, as the TC "
        "coding layer guarantees. Over a channel that does, a late copy of a Set V(R) frame "
        "can move V(R) after newer AD frames: the RF hop then needs `bc_hold` (no new AD frame "
        "that long after a BC frame) and a `recovery_wait` of at least twice the one-way delay "
        "plus the worst extra lag (`linkstack.hops.rf.RfHopConfig`).",
    ])


COP1_PAGE = Page(
    filename="clcw-cop1.md",
    title="CLCW and COP-1 (CCSDS 232.0-B-4 §4.2, 232.1-B-2)",
    summary="the uplink ARQ: FOP-1 on the ground, FARM-1 on board, the CLCW between them; "
            "state tables and diagrams",
    book=COP_BOOK,
    parts=(
        """
## Purpose and place in the stack

COP-1 (Communications Operation Procedure-1) makes the TC uplink reliable: every Type-AD frame
is delivered once, in order, or the operator is told it was not. It is a go-back-N ARQ split
in two state machines:

```text
  ground:  FOP-1 (frame operation procedure)  --- TC frames (AD, BD, BC) --->  FARM-1 (on board)
  ground:  FOP-1 reads N(R), flags  <--- CLCW in the OCF of TM/AOS/USLP frames ---  FARM-1
```

- FOP-1 numbers AD frames with N(S) = V(S) (modulo 256), keeps them until acknowledged and
  retransmits them on request or on timeout.
- FARM-1 accepts only the frame it expects (N(S) = V(R)), reports V(R) and its flags in the
  CLCW, and locks out when the sequence numbers go wild.
- BD frames bypass all this; BC frames carry the two control commands that reset FARM-1:
  Unlock (`00`) and Set V(R) (`82 00 V(R)`).

linkstack implements both as sans-IO engines (`linkstack.arq.fop1.Fop1`,
`linkstack.arq.farm1.Farm1`): they take frames, CLCWs, directives and the current time `now`,
and return events; the timer is exposed as `next_deadline()` / `on_timer(now)`.
""",
        "## The CLCW",
        CLCW_SPEC,
        CLCW_EXAMPLE,
        _fop1_section,
        _farm1_section,
        cop1_trace,
        cop1_over_uslp,
        """
## In the code

- `linkstack.frames.clcw`: `Clcw`, `CLCW_STRUCT`.
- `linkstack.arq.fop1`: `Fop1`, `FOP1_STATE_TABLE`, `FOP1_EVENT_CONDITIONS`, `state_table_rows`.
- `linkstack.arq.farm1`: `Farm1`, `FARM1_STATE_TABLE`, `FARM1_EVENT_CONDITIONS`,
  `state_table_rows`.
- `linkstack.sims.arq_loopback`: COP-1 over a lossy channel in virtual time, with the operator's
  recovery after an alert (`linkstack arq` command).
- `linkstack.hops.cop1_frames`: COP-1 over TC or USLP frames; `linkstack.hops.rf`: the RF hop
  (FOP-1 and the operator on the ground, FARM-1 on board, the CLCW in the downlink's OCF).
""",
    ),
)


# ---------------------------------------------------------------------------------------------
# Selective repeat (linkstack extension)
# ---------------------------------------------------------------------------------------------

SR_DATA_SPEC = HeaderSpec(
    key="sr.data_header",
    title="SR data frame header",
    struct=sr.SR_DATA_HEADER_STRUCT,
    declared_in="linkstack.arq.sr.SR_DATA_HEADER_STRUCT",
    docs={
        "version": FieldDoc("Version", "Format version of the SR frames.", "00", "sr.py",
                            "Ver"),
        "kind": FieldDoc("Kind", "Data frame.", "00", "sr.py", "K"),
        "retransmission": FieldDoc("Retransmission flag", "The frame is a retransmission "
                                   "(Karn's rule: no RTT sample from its ack).", "0 or 1",
                                   "sr.py", "R", FLAG),
        SPARE: FieldDoc("Spare", "Unused.", "000", "sr.py", "Sp"),
        "seq": FieldDoc("Sequence number", "Low 32 bits of the frame's sequence number "
                        "(unwrapped with serial-number arithmetic, RFC 1982).", "0..2^32 − 1",
                        "sr.py", "Sequence Number"),
        "data_length": FieldDoc("Data length", "Octets of data that follow (the rest of a "
                                "fixed-length container is fill).", "0..65535", "sr.py",
                                "Data Length"),
    },
)

SR_ACK_SPEC = HeaderSpec(
    key="sr.ack_header",
    title="SR ack frame header",
    struct=sr.SR_ACK_HEADER_STRUCT,
    declared_in="linkstack.arq.sr.SR_ACK_HEADER_STRUCT",
    docs={
        "version": FieldDoc("Version", "Format version of the SR frames.", "00", "sr.py",
                            "Ver"),
        "kind": FieldDoc("Kind", "Acknowledgement frame.", "01", "sr.py", "K"),
        SPARE: FieldDoc("Spare", "Unused.", "0000", "sr.py", "Spare"),
        "cumulative_ack": FieldDoc(
            "Cumulative ack", "The next sequence number the receiver expects: everything "
            "below it was received.", "0..2^32 − 1", "sr.py", "Cumulative Ack"),
        "echo_seq": FieldDoc("Echo sequence", "Sequence number of the data frame that "
                             "triggered this ack (round-trip measurement).", "0..2^32 − 1",
                             "sr.py", "Echo Seq"),
        "ack_delay": FieldDoc("Ack delay", "How long the receiver held the ack, in units of "
                              "100 µs; subtracted from the RTT sample.", "0..65535", "sr.py",
                              "Ack Delay"),
        "bitmap_length": FieldDoc("Bitmap length", "Octets of SACK bitmap that follow; bit i "
                                  "(MSB first) = frame cumulative_ack + 1 + i received.",
                                  "0..65535", "sr.py", "Bitmap Length"),
    },
)


def _sr_ack_spans(octets: bytes) -> list[Span]:
    return [Span(0, sr.ACK_HEADER_SIZE, "ack header"),
            Span(sr.ACK_HEADER_SIZE, len(octets), "SACK bitmap")]


def _sr_ack_decode(octets: bytes) -> list[Row]:
    rows, v = header_rows(SR_ACK_SPEC, octets, 0, "ack header")
    ack = sr.decode_sr_frame(octets)
    check(isinstance(ack, sr.SrAck) and ack.cumulative_ack == v["cumulative_ack"]
          and ack.echo_seq == v["echo_seq"], "decode_sr_frame disagrees with the fields")
    assert isinstance(ack, sr.SrAck)
    got = [ack.cumulative_ack + i for i in ack.received_offsets()]
    rows.append(octets_row("SACK bitmap", "received above the cumulative ack", octets,
                           sr.ACK_HEADER_SIZE, len(octets),
                           "frames " + ", ".join(str(n) for n in got)))
    return rows


SR_ACK_EXAMPLE = Example(
    key="sr.ack_frame",
    title="an acknowledgement with a gap",
    intro="The receiver has every frame below 70 000, has not got 70 000 and 70 001, but has "
          "70 002, 70 003 and 70 005: the sender retransmits the missing ones only. The ack "
          "was triggered by frame 70 005 and held 2.5 ms.",
    code="""
from linkstack.arq.sr import SrAck

octets = SrAck(cumulative_ack=70000, echo_seq=70005, ack_delay=25,
               bitmap=bytes([0b01101000])).encode()
""",
    spans=_sr_ack_spans,
    decode=_sr_ack_decode,
)


def _sr_data_spans(octets: bytes) -> list[Span]:
    return [Span(0, sr.DATA_HEADER_SIZE, "data header"),
            Span(sr.DATA_HEADER_SIZE, len(octets), "data")]


def _sr_data_decode(octets: bytes) -> list[Row]:
    rows, v = header_rows(SR_DATA_SPEC, octets, 0, "data header")
    frame = sr.decode_sr_frame(octets)
    check(isinstance(frame, sr.SrData) and frame.seq == v["seq"]
          and len(frame.data) == v["data_length"], "decode_sr_frame disagrees with the fields")
    assert isinstance(frame, sr.SrData)
    rows.append(octets_row("data", "data", octets, sr.DATA_HEADER_SIZE, len(octets),
                           repr(frame.data)))
    return rows


SR_DATA_EXAMPLE = Example(
    key="sr.data_frame",
    title="a retransmitted data frame",
    intro="Frame 70 001 sent again after the ack above.",
    code="""
from linkstack.arq.sr import SrData

octets = SrData(seq=70001, data=b"hello", retransmission=True).encode()
""",
    spans=_sr_data_spans,
    decode=_sr_data_decode,
)

SR_PAGE = Page(
    filename="sr.md",
    title="Selective-repeat ARQ frames (linkstack extension)",
    summary="the ARQ of the laser inter-satellite links: 32-bit sequence numbers, SACK "
            "bitmaps, RFC 6298 timers",
    book=SR_BOOK,
    field_header="Field",
    parts=(
        """
## Purpose and place in the stack

COP-1 is go-back-N with 8-bit sequence numbers: one lost frame costs a whole window of
retransmissions, and the window is at most 127 frames. A laser inter-satellite link at
Gbit/s with tens of milliseconds of delay holds thousands of frames in flight, so linkstack
runs a selective-repeat ARQ there, in the spirit of TCP SACK (RFC 2018) and QUIC loss
recovery (RFC 9002). It is **not a CCSDS standard**: its frames ride in the data zone of USLP
(or AOS) frames, and both ends must run linkstack. The sections below cite the module,
`linkstack/arq/sr.py`, instead of a Blue Book.

- Sequence numbers are 32 bits on the wire, unbounded inside the engines.
- An ack carries a cumulative ack and a bitmap of the frames received above it; the sender
  retransmits only what is missing, after `reorder_threshold` later frames were acknowledged
  (packet threshold) or when the RFC 6298 retransmission timer expires.
- With `fec=True` (forward error correction below), a timer expiry sends one probe and holds
  the other expired frames until an ack shows the link is back.
""",
        "## Headers",
        SR_DATA_SPEC,
        SR_ACK_SPEC,
        "## Worked examples",
        SR_ACK_EXAMPLE,
        SR_DATA_EXAMPLE,
        """
## In the code

- `linkstack.arq.sr`: `SrSender`, `SrReceiver`, `SrConfig`, `SrData`, `SrAck`,
  `decode_sr_frame`.
""",
    ),
)
