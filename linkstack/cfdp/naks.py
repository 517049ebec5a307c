"""Segment bookkeeping and NAK sequences (CCSDS 727.0-B-5 §4.6.4.3, §5.2.6).

:class:`RangeSet` keeps the file octets one end has (received, or already sent once).
:func:`trim_requests` removes from a NAK's segment requests what arrived since the NAK was
made — the cure for spurious NAKs on a link that reorders: a NAK held for the link's worst
extra lag and trimmed before it goes out asks only for what is really missing.
:func:`nak_sequence` cuts segment requests into NAK PDUs that each fit ``max_pdu_length``,
with the scopes the standard gives a sequence of NAK PDUs: the first starts at the sequence's
start of scope, each later one at the end of scope of the one before, each but the last ends
at its last request's end offset, the last at the sequence's end of scope.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from spacepackets.cfdp import PduConfig
from spacepackets.cfdp.pdu import NakPdu
from spacepackets.cfdp.pdu.nak import get_max_seg_reqs_for_max_packet_size_and_pdu_cfg

__all__ = ["METADATA_REQUEST", "RangeSet", "nak_sequence", "trim_requests"]

METADATA_REQUEST = (0, 0)
"""The segment request that asks for the Metadata PDU again (§4.6.4.3.2)."""


class RangeSet:
    """Disjoint half-open octet ranges ``[start, end)``, merged when they touch."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def total(self) -> int:
        """Octets covered."""
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def covered(self, start: int, end: int) -> int:
        """Octets of ``[start, end)`` already in the set."""
        if end <= start:
            return 0
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        total = 0
        while i < len(self._starts) and self._starts[i] < end:
            total += max(0, min(end, self._ends[i]) - max(start, self._starts[i]))
            i += 1
        return total

    def add(self, start: int, end: int) -> int:
        """Add ``[start, end)``; returns the octets that were new."""
        if end <= start:
            return 0
        new = (end - start) - self.covered(start, end)
        i = bisect.bisect_left(self._ends, start)  # first range ending at or after start
        j = i
        while j < len(self._starts) and self._starts[j] <= end:
            start = min(start, self._starts[j])
            end = max(end, self._ends[j])
            j += 1
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]
        return new

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` not in the set."""
        out: list[tuple[int, int]] = []
        cursor = start
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        while i < len(self._starts) and self._starts[i] < end and cursor < end:
            s, e = self._starts[i], self._ends[i]
            if e > cursor:
                if s > cursor:
                    out.append((cursor, min(s, end)))
                cursor = max(cursor, e)
            i += 1
        if cursor < end:
            out.append((cursor, end))
        return out


def trim_requests(requests: Iterable[tuple[int, int]], have: RangeSet,
                  metadata_received: bool) -> list[tuple[int, int]]:
    """``requests`` minus what ``have`` holds (and minus the Metadata request once it came)."""
    out: list[tuple[int, int]] = []
    for start, end in requests:
        if (start, end) == METADATA_REQUEST:
            if not metadata_received:
                out.append(METADATA_REQUEST)
            continue
        out.extend(have.missing(start, end))
    return out


def nak_sequence(pdu_conf: PduConfig, start_of_scope: int, end_of_scope: int,
                 requests: list[tuple[int, int]], max_pdu_length: int) -> list[NakPdu]:
    """The NAK PDUs of one NAK sequence carrying ``requests``, each at most ``max_pdu_length``
    octets (raises ValueError if not even one request fits)."""
    per_pdu = get_max_seg_reqs_for_max_packet_size_and_pdu_cfg(max_pdu_length, pdu_conf)
    if per_pdu < 1:
        raise ValueError(f"a NAK PDU with one segment request exceeds {max_pdu_length} octets")
    if not requests:
        return []
    batches = [requests[i:i + per_pdu] for i in range(0, len(requests), per_pdu)]
    pdus = []
    start = start_of_scope
    for k, batch in enumerate(batches):
        last = k == len(batches) - 1
        end = end_of_scope if last else max(start, batch[-1][1])
        pdus.append(NakPdu(pdu_conf, start, end, list(batch)))
        start = end
    return pdus
