"""Packet Sequence Count generation, one counter per APID (CCSDS 133.0-B-2 §4.1.3.4.3).

The Packet Sequence Count is a 14-bit binary count of the packets one application (one APID)
has released; it wraps from 16383 to 0 (§4.1.3.4.3.2). A receiver uses it to detect lost,
repeated and reordered packets (see :mod:`linkstack.spp.segmentation`). This module is pure
state: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from linkstack.errors import EncodeError
from linkstack.spp.packet import LAYER, MAX_APID, SEQUENCE_COUNT_MODULUS

__all__ = ["SEQUENCE_COUNT_MODULUS", "SequenceCounter", "count_distance"]


def count_distance(older: int, newer: int) -> int:
    """How far ``newer`` is ahead of ``older`` modulo 2**14 (0..16383).

    ``count_distance(16383, 0) == 1``: the count wrapped (§4.1.3.4.3.2).
    """
    return (newer - older) % SEQUENCE_COUNT_MODULUS


def _check_apid(apid: int) -> None:
    if not 0 <= apid <= MAX_APID:
        raise EncodeError(f"{apid!r} is outside 0..{MAX_APID}", layer=LAYER, field="apid")


def _check_count(value: int) -> None:
    if not 0 <= value < SEQUENCE_COUNT_MODULUS:
        raise EncodeError(
            f"{value!r} is outside 0..{SEQUENCE_COUNT_MODULUS - 1}",
            layer=LAYER, field="packet_sequence_count",
        )


class SequenceCounter:
    """Independent Packet Sequence Counts for every APID (133.0-B-2 §4.1.3.4.3).

    ``next(apid)`` returns the count to put in the next packet of that APID and advances it;
    the first packet of an APID gets 0 (or the value given in ``start``). Counts wrap at
    16384. One counter object is shared by every :class:`~linkstack.spp.segmentation.Segmenter`
    (or other packet source) of one spacecraft side, so that two sources on one APID never
    reuse a count.
    """

    __slots__ = ("_next",)

    def __init__(self, start: Mapping[int, int] | None = None) -> None:
        self._next: dict[int, int] = {}
        for apid, value in (start or {}).items():
            self.set(apid, value)

    def next(self, apid: int) -> int:
        """Return the count for the next packet on ``apid`` and advance by one."""
        value = self._next.get(apid)
        if value is None:
            _check_apid(apid)
            value = 0
        self._next[apid] = (value + 1) % SEQUENCE_COUNT_MODULUS
        return value

    def reserve(self, apid: int, n: int) -> list[int]:
        """Return ``n`` consecutive counts for ``apid`` (wrapping) and advance by ``n``."""
        if n < 0:
            raise EncodeError(f"cannot reserve {n} counts", layer=LAYER,
                              field="packet_sequence_count")
        first = self.peek(apid)
        self._next[apid] = (first + n) % SEQUENCE_COUNT_MODULUS
        return [(first + i) % SEQUENCE_COUNT_MODULUS for i in range(n)]

    def peek(self, apid: int) -> int:
        """The count the next packet on ``apid`` will get, without advancing."""
        value = self._next.get(apid)
        if value is None:
            _check_apid(apid)
            return 0
        return value

    def set(self, apid: int, value: int) -> None:
        """Make ``value`` the next count of ``apid`` (e.g. restored after a reboot)."""
        _check_apid(apid)
        _check_count(value)
        self._next[apid] = value

    def reset(self, apid: int | None = None) -> None:
        """Restart ``apid`` (or every APID) at count 0."""
        if apid is None:
            self._next.clear()
        else:
            self._next.pop(apid, None)

    def __repr__(self) -> str:
        return f"SequenceCounter({dict(sorted(self._next.items()))!r})"
