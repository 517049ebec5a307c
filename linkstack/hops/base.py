"""The interface every hop endpoint offers to a driver (specs/architecture.md principle 1, sans-IO).

A driver (the virtual-time simulator, the UDP process) does four things with an endpoint:

1. hands it Space Packets to carry: :meth:`HopEndpoint.send_packet`;
2. asks it for coded units to transmit: :meth:`HopEndpoint.poll` — one CLTU or one CADU per
   :class:`Unit`, each carrying exactly one transfer frame;
3. hands it the octets of each unit that arrived: :meth:`HopEndpoint.receive`, which returns
   the Space Packets delivered in order (a :class:`Reception`);
4. keeps its timers: :meth:`HopEndpoint.next_deadline` / :meth:`HopEndpoint.on_timer`.

Endpoints never read a clock, sleep or touch a socket: ``now`` (seconds) is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from linkstack.fast_dataclass import fast_init
from linkstack.spp.packet import packet_length


@fast_init
@dataclass(frozen=True, slots=True)
class Unit:
    """One coded unit for the physical channel.

    Attributes:
        data: the octets to transmit (a CLTU or a CADU).
        tags: the caller's tags of the packets with octets in the frame (for accounting).
        kind: what the frame is — ``"AD"``, ``"BD"``, ``"BC"`` (COP-1 up), ``"TM"``,
            ``"TM-IDLE"``, ``"USLP"``, ``"USLP-IDLE"`` (RF down), ``"SR-DATA"``, ``"SR-ACK"``.
        frame_octets: length of the transfer frame inside the unit.
        retransmission: the frame was sent before.
        sdls_octets: octets of the frame that SDLS added (Security Header and Trailer; 0
            on a direction without SDLS), for the latency breakdown's ``sdls`` share.
    """

    data: bytes
    tags: tuple[object, ...]
    kind: str
    frame_octets: int
    retransmission: bool = False
    sdls_octets: int = 0


@dataclass(slots=True)
class Reception:
    """What one received unit gave.

    Attributes:
        packets: Space Packets delivered to the layer above, in order.
        accepted: the unit's frame was decoded and taken as new data (not a duplicate, not
            rejected) — its transmission counts as useful in the latency breakdown.
        notes: notable events (rejections, alerts, gaps) for logs and counters.
    """

    packets: list[bytes] = field(default_factory=list)
    accepted: bool = False
    notes: list[object] = field(default_factory=list)


class HopEndpoint(Protocol):
    """One end of one hop."""

    name: str

    def send_packet(self, packet: bytes, tag: object = None, *, now: float) -> None:
        """Queue an encoded Space Packet for the far end."""

    def poll(self, now: float) -> list[Unit]:
        """Units to transmit now (possibly none)."""

    def receive(self, data: bytes, now: float) -> Reception:
        """Octets of one unit that arrived (possibly corrupted by the channel)."""

    def next_deadline(self) -> float | None:
        """Earliest time :meth:`on_timer` must be called, or None."""

    def on_timer(self, now: float) -> None:
        """Run the timers that are due at ``now``."""

    def status(self) -> dict[str, object]:
        """JSON-able counters and state for status reports."""


def split_packets(data: bytes) -> list[bytes]:
    """Split a frame data field holding whole Space Packets back to back.

    Octets after the last whole packet (fill) are ignored.
    """
    out = []
    pos = 0
    n = len(data)
    while n - pos >= 7:
        end = pos + packet_length(data, pos)
        if end > n:
            break
        out.append(bytes(data[pos:end]))
        pos = end
    return out
