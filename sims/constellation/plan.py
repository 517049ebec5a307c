"""The contact plan: when each directed link between two nodes is up, at what rate and delay.

A contact plan is the input of contact-graph routing (CCSDS 734.3-B-1, Schedule-Aware Bundle
Routing) and of DTN tools such as ION, whose text form is ``a contact +START +STOP FROM TO RATE``
and ``a range +START +STOP FROM TO OWLT``. Here one :class:`Contact` carries both: during
``[start_s, end_s)`` node ``frm`` can send to node ``to`` at ``rate_bps`` and a signal takes
``owlt_s`` (one-way light time) to arrive. Geometry changes the range continuously; the plan
builder cuts long windows into segments short enough that the segment's largest OWLT is a
close bound (see :mod:`.contacts`).

Nodes are small integers (ION node numbers are integers too); :class:`NodeTable` maps them to
names. Ground stations come first, then satellites, so a node number says nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linkstack.fast_dataclass import fast_init

__all__ = ["Contact", "ContactPlan", "NodeKind", "NodeTable"]

NodeKind = str
"""``"ground"`` or ``"satellite"``."""


@fast_init
@dataclass(frozen=True, slots=True)
class Contact:
    """One directed contact: ``frm`` can reach ``to`` during ``[start_s, end_s)``."""

    start_s: float
    end_s: float
    frm: int
    to: int
    rate_bps: float
    owlt_s: float

    def __post_init__(self) -> None:
        if not self.end_s > self.start_s:
            raise ValueError(f"contact end_s {self.end_s} must be after start_s {self.start_s}")
        if self.owlt_s < 0 or self.rate_bps <= 0:
            raise ValueError("contact owlt_s must be >= 0 and rate_bps > 0")


@dataclass(slots=True)
class NodeTable:
    """Node numbers and names. Numbers are dense, ``0 .. len - 1``."""

    names: list[str] = field(default_factory=list)
    kinds: list[NodeKind] = field(default_factory=list)

    def add(self, name: str, kind: NodeKind) -> int:
        if name in self.names:
            raise ValueError(f"duplicate node name {name!r}")
        self.names.append(name)
        self.kinds.append(kind)
        return len(self.names) - 1

    def number(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown node {name!r}") from None

    def __len__(self) -> int:
        return len(self.names)


@dataclass(slots=True)
class ContactPlan:
    """Nodes and the contacts between them over ``[0, horizon_s)`` seconds of scenario time."""

    nodes: NodeTable
    contacts: list[Contact]
    horizon_s: float
