"""Per-hop time accounting: where every unit spent its time on one link direction.

specs/architecture.md principle 5 ("time is accounted, not guessed").

:class:`Tap` — attached to one link :class:`~linkstack.sims.link.Direction` (a
*hop*).  For each unit it records when the unit entered the transmit queue, when
its serialization started and ended, and when its last bit arrived, split into
the components *queueing*, *serialization*, *propagation* and *reorder* (the
extra delay of a reordered unit), or the reason it was lost.  It also keeps
running totals (:class:`HopTotals`), so an hour-long run can account for every
unit with bounded memory (``max_records`` keeps only the latest records).
Layers above the link fill the other components of a hop -- coding compute, ARQ
waiting -- per unit with :meth:`Tap.annotate` (by the unit's ``seq``) or in the
totals only with :meth:`Tap.add`.

The end-to-end view of one prompt -- every instant of each hop given to one component, rows
that sum to the measured total -- is :mod:`linkstack.sims.breakdown`'s; a tap counts per hop.

All times are integer nanoseconds of simulated time (:mod:`linkstack.sims.engine`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from linkstack.sims.link import BulkDelivery, Delivery

__all__ = [
    "LINK_COMPONENTS",
    "Component",
    "HopTotals",
    "Tap",
    "TapRecord",
]


class Component(StrEnum):
    """Where time goes.  The first four are filled by the link simulator."""

    QUEUEING = "queueing"
    SERIALIZATION = "serialization"
    PROPAGATION = "propagation"
    REORDER = "reorder"
    CODING = "coding"
    ARQ_WAIT = "arq_wait"
    PROCESSING = "processing"
    INFERENCE = "inference"


LINK_COMPONENTS: tuple[Component, ...] = (
    Component.QUEUEING,
    Component.SERIALIZATION,
    Component.PROPAGATION,
    Component.REORDER,
)


@dataclass(slots=True)
class TapRecord:
    """What happened to one unit on one hop.  Times in integer nanoseconds.

    ``t_tx_start``/``t_tx_end``/``t_arrival`` are ``None`` for a unit dropped at a
    full queue (it never left).  For a lost unit (``loss`` set) ``t_arrival`` is
    when its last bit would have arrived.
    """

    hop: str
    seq: int
    meta: Any
    octets: int
    t_enqueued: int
    t_tx_start: int | None
    t_tx_end: int | None
    t_arrival: int | None
    propagation_ns: int
    reorder_ns: int
    bit_errors: int
    loss: str | None
    extra: dict[Component, int] | None = None
    """Time added on this hop by the layers above (coding compute, ARQ wait ...)."""

    @property
    def queueing_ns(self) -> int:
        return 0 if self.t_tx_start is None else self.t_tx_start - self.t_enqueued

    @property
    def serialization_ns(self) -> int:
        if self.t_tx_start is None or self.t_tx_end is None:
            return 0
        return self.t_tx_end - self.t_tx_start

    @property
    def link_ns(self) -> int | None:
        """``t_arrival - t_enqueued``: the time the link itself took."""
        return None if self.t_arrival is None else self.t_arrival - self.t_enqueued

    @property
    def total_ns(self) -> int | None:
        """Link time plus the time the layers above added on this hop."""
        link = self.link_ns
        return None if link is None else link + sum((self.extra or {}).values())

    def components(self) -> dict[Component, int]:
        """The four link components plus any added ones; they sum to :attr:`total_ns`."""
        result = {
            Component.QUEUEING: self.queueing_ns,
            Component.SERIALIZATION: self.serialization_ns,
            Component.PROPAGATION: self.propagation_ns if self.t_tx_start is not None else 0,
            Component.REORDER: self.reorder_ns if self.t_tx_start is not None else 0,
        }
        for component, ns in (self.extra or {}).items():
            result[component] = result.get(component, 0) + ns
        return result


_COMPONENTS: tuple[Component, ...] = tuple(Component)
_INDEX: dict[Component, int] = {c: i for i, c in enumerate(_COMPONENTS)}
_Q, _S, _P, _R = (_INDEX[c] for c in LINK_COMPONENTS)


@dataclass
class HopTotals:
    """Running totals of one hop; component sums cover *delivered* units only."""

    units_sent: int = 0
    octets_sent: int = 0
    units_delivered: int = 0
    units_errored: int = 0
    bit_errors: int = 0
    lost: dict[str, int] = field(default_factory=dict)
    # per component, indexed like tuple(Component) (plain lists: the per-unit path is hot)
    sums: list[int] = field(default_factory=lambda: [0] * len(_COMPONENTS))
    peaks: list[int] = field(default_factory=lambda: [-1] * len(_COMPONENTS))
    counts: list[int] = field(default_factory=lambda: [0] * len(_COMPONENTS))

    @property
    def units_lost(self) -> int:
        return sum(self.lost.values())

    @property
    def sum_ns(self) -> dict[Component, int]:
        """Total time per component (components observed at least once)."""
        return {c: self.sums[i] for i, c in enumerate(_COMPONENTS) if self.counts[i]}

    @property
    def max_ns(self) -> dict[Component, int]:
        return {c: self.peaks[i] for i, c in enumerate(_COMPONENTS) if self.counts[i]}

    @property
    def component_counts(self) -> dict[Component, int]:
        return {c: self.counts[i] for i, c in enumerate(_COMPONENTS) if self.counts[i]}

    def add(self, component: Component, total_ns: int, *, count: int = 1, max_ns: int | None = None
            ) -> None:
        """Add ``count`` observations summing to ``total_ns`` of one component."""
        i = _INDEX[Component(component)]
        self.sums[i] += int(total_ns)
        self.counts[i] += count
        peak = int(total_ns) if max_ns is None else int(max_ns)
        if peak > self.peaks[i]:
            self.peaks[i] = peak

    def mean_ns(self, component: Component) -> float:
        i = _INDEX[Component(component)]
        return self.sums[i] / self.counts[i] if self.counts[i] else 0.0

    def lose(self, reason: str, count: int = 1) -> None:
        self.lost[reason] = self.lost.get(reason, 0) + count


class Tap:
    """Per-hop recorder attached to a link direction (see module docstring).

    Args:
        hop: name of the hop (usually the direction's name).
        max_records: keep at most this many latest :class:`TapRecord` (``None``: all,
            ``0``: none; the totals are always kept).
    """

    def __init__(
        self,
        hop: str,
        *,
        max_records: int | None = None,
    ) -> None:
        if max_records is not None and max_records < 0:
            raise ValueError("max_records must be >= 0 or None")
        self.hop = hop
        self.records: deque[TapRecord] = deque(maxlen=max_records)
        self._keep = max_records != 0
        self.totals = HopTotals()

    # -- called by the link ----------------------------------------------------------

    def record_delivery(self, delivery: Delivery) -> None:
        """Account one unit that left the transmitter (delivered or lost in the channel)."""
        totals = self.totals
        totals.units_sent += 1
        totals.octets_sent += delivery.octets
        loss = None if delivery.loss is None else delivery.loss.value
        if loss is None:
            totals.units_delivered += 1
            if delivery.bit_errors:
                totals.bit_errors += delivery.bit_errors
                totals.units_errored += 1
            # the four link components, unrolled (one call per unit of every simulation)
            sums, counts, peaks = totals.sums, totals.counts, totals.peaks
            ns = delivery.t_tx_start - delivery.t_enqueued
            sums[_Q] += ns
            counts[_Q] += 1
            if ns > peaks[_Q]:
                peaks[_Q] = ns
            ns = delivery.t_tx_end - delivery.t_tx_start
            sums[_S] += ns
            counts[_S] += 1
            if ns > peaks[_S]:
                peaks[_S] = ns
            ns = delivery.propagation_ns
            sums[_P] += ns
            counts[_P] += 1
            if ns > peaks[_P]:
                peaks[_P] = ns
            ns = delivery.reorder_ns
            sums[_R] += ns
            counts[_R] += 1
            if ns > peaks[_R]:
                peaks[_R] = ns
        else:
            totals.lose(loss)
        if self._keep:
            self.records.append(
                TapRecord(
                    self.hop, delivery.seq, delivery.meta, delivery.octets, delivery.t_enqueued,
                    delivery.t_tx_start, delivery.t_tx_end, delivery.t_arrival,
                    delivery.propagation_ns, delivery.reorder_ns, delivery.bit_errors, loss,
                )
            )

    def record_drop(self, seq: int, meta: Any, octets: int, t_enqueued: int, count: int = 1
                    ) -> None:
        """Account units refused by a full transmit queue (drop policy)."""
        self.totals.units_sent += count
        self.totals.octets_sent += octets * count
        self.totals.lose("queue_full", count)
        if self._keep:
            self.records.append(
                TapRecord(self.hop, seq, meta, octets * count, t_enqueued, None, None, None, 0, 0,
                          0, "queue_full")
            )

    def record_bulk(self, bulk: BulkDelivery) -> None:
        """Account a bulk batch (aggregated: no per-unit records)."""
        totals = self.totals
        n = bulk.count
        totals.units_sent += n
        totals.octets_sent += n * bulk.unit_octets
        errors = bulk.error_counts
        if 0 < len(errors) <= 64:  # a few errored units (the usual case): Python ints
            listed = errors.tolist()
            totals.bit_errors += sum(listed)
            totals.units_errored += len(listed) - listed.count(0)
        elif len(errors):
            totals.bit_errors += int(errors.sum())
            totals.units_errored += int(np.count_nonzero(errors))
        if bulk.clean and not len(bulk.reorder_idx):  # the usual batch: Python ints only
            totals.units_delivered += n
            ser = bulk.serialization_ns
            head = bulk.t_tx_start - bulk.t_enqueued
            self._add_link_components(n, n * head + ser * (n * (n - 1) // 2),
                                      head + (n - 1) * ser, ser, bulk.propagation_ns, 0, 0)
            return
        n_erased = bulk.units_erased
        n_outage = bulk.units_outage
        if n_erased:
            totals.lose("erasure", n_erased)
        if n_outage:
            totals.lose("outage", n_outage)
        m = n - n_erased - n_outage
        totals.units_delivered += m
        if m == 0:
            return
        # O(losses + errors) arithmetic, no per-unit arrays: unit i waited head + i * ser
        ser = bulk.serialization_ns
        head = bulk.t_tx_start - bulk.t_enqueued
        queueing = m * head + ser * (n * (n - 1) // 2 - bulk.lost_index_sum())
        extra = bulk.delivered_reorder_extra()
        self._add_link_components(m, queueing, head + bulk.last_delivered() * ser, ser,
                                  bulk.propagation_ns, int(extra.sum()) if len(extra) else 0,
                                  int(extra.max()) if len(extra) else 0)

    def _add_link_components(self, m: int, queueing: int, queueing_peak: int, ser: int,
                             propagation: int, reorder: int, reorder_peak: int) -> None:
        """Add ``m`` delivered units of a batch to the four link components."""
        totals = self.totals
        sums, counts, peaks = totals.sums, totals.counts, totals.peaks
        for i, total, peak in (
            (_Q, queueing, queueing_peak),
            (_S, ser * m, ser),
            (_P, propagation * m, propagation),
            (_R, reorder, reorder_peak),
        ):
            sums[i] += total
            counts[i] += m
            if peak > peaks[i]:
                peaks[i] = peak

    # -- called by the layers above ------------------------------------------------

    def add(self, component: Component, ns: int, *, count: int = 1) -> None:
        """Add time spent on this hop by a layer above the link (coding, ARQ wait ...)."""
        self.totals.add(component, ns, count=count)

    def annotate(self, seq: int, component: Component, ns: int) -> bool:
        """Add ``ns`` of ``component`` to unit ``seq`` on this hop (e.g. its decoding).

        Counts in the totals in any case; returns whether the unit's record was still
        kept (``max_records``) and got the time too.
        """
        self.totals.add(component, ns)
        for record in reversed(self.records):
            if record.seq == seq:
                if record.extra is None:
                    record.extra = {}
                component = Component(component)
                record.extra[component] = record.extra.get(component, 0) + ns
                return True
        return False

    def summary(self) -> str:
        """A few lines: counts, losses and mean components of this hop."""
        t = self.totals
        lines = [
            f"{self.hop}: sent {t.units_sent} ({t.octets_sent} octets), delivered "
            f"{t.units_delivered}, errored {t.units_errored} ({t.bit_errors} bit errors), "
            f"lost {t.units_lost} {dict(sorted(t.lost.items()))}"
        ]
        counts = t.component_counts
        for component in Component:
            if counts.get(component):
                lines.append(
                    f"  {component.value:<14} mean {t.mean_ns(component) / 1e6:12.6f} ms   "
                    f"max {t.max_ns.get(component, 0) / 1e6:12.6f} ms"
                )
        return "\n".join(lines)
