"""Latency breakdown: split one message's time on one hop into where it was spent.

specs/architecture.md principle 5: time is accounted, not guessed. For each hop a message
crosses, the simulator records *intervals* (virtual time) in which something happened to the
message:

- ``sdls``: the share of coding and serialization that went to SDLS octets (CCSDS 355.0-B-2
  Security Header and Trailer): of each secured frame's coding and serialization intervals,
  the last ``overhead / frame length`` (zero on a hop without SDLS),
- ``coding``: its frames were being encoded or decoded (channel coding compute),
- ``serialization``: one of its frames that was eventually delivered was being clocked out,
- ``propagation``: such a frame was in flight,
- ``queueing``: such a frame waited in the transmit queue behind other traffic,

and the message's start (handed to the hop) and end (complete at the far side). Every instant
of ``[start, end]`` is given to exactly one component, by the priority above; whatever is left —
transmissions that were lost, retransmission timers, a full ARQ window — is ``arq_wait``. The
components therefore sum to ``end - start`` by construction, and a test checks it.

The sweep is exact on the interval end points (no sampling).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

COMPONENTS = ("queueing", "serialization", "propagation", "coding", "sdls", "arq_wait")
"""Breakdown rows of one hop, in print order."""

PRIORITY = ("sdls", "coding", "serialization", "propagation", "queueing")
"""When intervals overlap, the earlier component in this tuple owns the instant."""


@dataclass
class HopRecord:
    """What happened to one message on one hop (virtual-time intervals, seconds)."""

    hop: str
    start: float
    end: float | None = None
    intervals: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {k: [] for k in PRIORITY}
    )

    def add(self, component: str, a: float, b: float) -> None:
        if component not in self.intervals:
            raise KeyError(f"unknown component {component!r}; choose from {PRIORITY}")
        if b > a:
            self.intervals[component].append((a, b))

    def add_split(self, component: str, a: float, b: float, sdls_fraction: float = 0.0) -> None:
        """``component`` over ``[a, b]``, the last ``sdls_fraction`` of it given to ``sdls``
        (the time of the frame's SDLS octets, which come last in proportion)."""
        if sdls_fraction > 0 and b > a:
            cut = b - (b - a) * sdls_fraction
            self.add(component, a, cut)
            self.add("sdls", cut, b)
        else:
            self.add(component, a, b)

    def add_transmission(self, enqueued: float, tx_start: float, tx_end: float,
                         arrival: float, sdls_fraction: float = 0.0) -> None:
        """Record one delivered-and-used frame transmission (queue, clock out, fly);
        ``sdls_fraction``: the share of the frame's octets that are SDLS's."""
        self.add("queueing", enqueued, tx_start)
        self.add_split("serialization", tx_start, tx_end, sdls_fraction)
        self.add("propagation", tx_end, arrival)

    def breakdown(self) -> dict[str, float]:
        if self.end is None:
            raise ValueError(f"hop {self.hop}: the message has not completed")
        return split_intervals(self.start, self.end, self.intervals)


def split_intervals(
    start: float, end: float, intervals: Mapping[str, Iterable[tuple[float, float]]]
) -> dict[str, float]:
    """Give every instant of ``[start, end]`` to the highest-priority component active then.

    Returns seconds per component in :data:`COMPONENTS`; they sum to ``end - start``.
    """
    result = dict.fromkeys(COMPONENTS, 0.0)
    if end <= start:
        return result
    points = {start, end}
    active: list[tuple[str, list[tuple[float, float]]]] = []  # components with spans, by priority
    for comp in PRIORITY:
        spans = []
        for a, b in intervals.get(comp, ()):
            a, b = max(a, start), min(b, end)
            if b > a:
                spans.append((a, b))
                points.add(a)
                points.add(b)
        if spans:
            active.append((comp, spans))
    edges = sorted(points)
    for lo, hi in itertools.pairwise(edges):
        mid = (lo + hi) / 2
        owner = "arq_wait"
        for comp, spans in active:
            for a, b in spans:
                if a <= mid < b:
                    owner = comp
                    break
            else:
                continue
            break
        result[owner] += hi - lo
    return result
