"""What every ARQ engine of linkstack exposes: frame types, events and counters.

Two ARQ families live in :mod:`linkstack.arq`:

- COP-1 (CCSDS 232.1-B-2): :mod:`linkstack.arq.fop1` (sending end, go-back-N driven by the
  CLCW) and :mod:`linkstack.arq.farm1` (receiving end, sliding window, CLCW generation);
- selective repeat for high-rate, long-delay links: :mod:`linkstack.arq.sr`.

Both are sans-IO (specs/architecture.md principle 1): they are fed with frames, reports and
the current time ``now`` (seconds, any epoch) and return lists of *events*. The events and the
:class:`ArqCounters` defined here are shared, so that a simulator can run COP-1 and selective
repeat over the same channel and compare them field by field.

``FrameType`` is the TC frame layer's :class:`~linkstack.frames.tc.TcFrameType` (``AD``, ``BD``,
``BC``, with ``bypass_flag``, ``control_command_flag`` and ``from_flags``) under the name COP-1
uses (232.1-B-2 §2.2): one enum for the one concept, owned by the wire format.

Events a sender returns: :class:`SduAccepted` / :class:`SduRejected` (flow control),
:class:`Acknowledged` (the peer confirmed the SDU), :class:`Undelivered` (the engine gave the
SDU up: it is reported by sequence number and by the caller's handle, never dropped silently),
:class:`Alert` (a protocol alert with its reason, never an exception). Events a receiver
returns: :class:`Delivered` (an SDU for the higher layer, in order).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from linkstack.frames.tc import TcFrameType as FrameType

__all__ = [
    "Acknowledged",
    "Alert",
    "ArqCounters",
    "Delivered",
    "FrameType",
    "SduAccepted",
    "SduRejected",
    "TransmitFrame",
    "Undelivered",
]


@dataclass(frozen=True, slots=True)
class TransmitFrame:
    """FOP-1 asks the Lower Procedures to transmit one TC Transfer Frame.

    The engine does not build the frame (the TC frame encoder does): it gives the frame type
    (which sets the Bypass and Control Command flags), the Frame Sequence Number ``ns`` (V(S)
    at first transmission for AD frames; 0 for BD and BC frames, whose N(S) COP-1 does not
    use), the frame data field ``data`` (for BC frames the control command itself: ``00`` for
    Unlock, ``82 00 V(R)`` for Set V(R)), the ``vcid``, the caller's ``handle`` of the SDU, and
    whether this is a retransmission of a frame already sent.
    """

    frame_type: FrameType
    ns: int
    data: bytes
    vcid: int
    handle: Any = None
    retransmission: bool = False


@dataclass(frozen=True, slots=True)
class SduAccepted:
    """The engine took the SDU in (232.1-B-2 'Accept Response to Request to Transfer FDU')."""

    handle: Any


@dataclass(frozen=True, slots=True)
class SduRejected:
    """The engine refused the SDU (232.1-B-2 'Reject Response'); the caller still owns it."""

    handle: Any
    reason: str


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The peer confirmed reception of the SDU sent with sequence number ``seq``
    (232.1-B-2 'Positive Confirm Response to Request to Transfer FDU')."""

    handle: Any
    seq: int


@dataclass(frozen=True, slots=True)
class Undelivered:
    """The engine gave the SDU up without a confirmation (232.1-B-2 'Negative Confirm
    Response'). It may or may not have reached the peer: ``seq`` tells the caller which
    frame it was, so that it can compare with the peer's report (e.g. the CLCW N(R))."""

    handle: Any
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Alert:
    """A protocol alert (232.1-B-2 §5.2.15 'Alert' with its reason code)."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Delivered:
    """A receiver passes one SDU to its higher layer. ``seq`` is the frame's sequence number
    (N(S) for COP-1, the absolute sequence number for selective repeat); ``expedited`` is true
    for COP-1 Type-BD data, which bypasses the sequence control."""

    data: bytes
    seq: int
    expedited: bool = False


@dataclass(slots=True)
class ArqCounters:
    """The same counters for every ARQ engine, sender or receiver (fields an engine does not
    use stay at zero). Add two with ``+`` to get the totals of a link.

    Sender side: ``frames_sent`` (every frame handed to the lower layer, retransmissions
    included), ``bytes_sent`` (their data field octets), ``retransmissions``,
    ``acknowledged`` / ``undelivered`` (SDUs), ``acks_received`` (CLCWs or ack frames
    processed), ``timeouts`` (retransmission timer expiries), ``alerts``.
    Receiver side: ``delivered`` (SDUs passed up), ``duplicates_discarded`` (frames already
    delivered), ``out_of_order`` (frames that arrived ahead of a gap), ``frames_discarded``
    (every frame not delivered, duplicates and out-of-order included), ``acks_sent``.
    """

    frames_sent: int = 0
    bytes_sent: int = 0
    retransmissions: int = 0
    acknowledged: int = 0
    undelivered: int = 0
    acks_received: int = 0
    timeouts: int = 0
    alerts: int = 0
    delivered: int = 0
    duplicates_discarded: int = 0
    out_of_order: int = 0
    frames_discarded: int = 0
    acks_sent: int = 0

    def __add__(self, other: ArqCounters) -> ArqCounters:
        if not isinstance(other, ArqCounters):
            return NotImplemented
        return ArqCounters(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
