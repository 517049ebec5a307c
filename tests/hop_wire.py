"""A tiny sans-IO event loop joining two hop endpoints, for the hop tests (tests/test_hops.py,
tests/test_sdls_hops.py, tests/test_sdls_ep.py): each unit an end polls arrives at the other
after a fixed delay — or not (loss), damaged (bit flips), late (reordering) or twice."""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Any

from linkstack.hops.base import Unit


class Wire:
    """Two endpoints ``a`` (side 0) and ``b`` (side 1) and the channel between them.

    ``loss``, ``flips``, ``late`` and ``copies`` are per-unit probabilities: dropped, a few
    bits flipped, held back up to 20 delays, delivered a second time up to 20 delays later.
    ``got[side]`` collects the packets each side's endpoint delivers; ``sent[side]`` the units
    it sent; ``units`` every unit, both sides, in sending order.
    """

    def __init__(self, a: Any, b: Any, *, delay: float = 0.01, loss: float = 0.0,
                 flips: float = 0.0, seed: int = 1, late: float = 0.0,
                 copies: float = 0.0) -> None:
        self.ends = (a, b)
        self.delay = delay
        self.loss = loss
        self.flips = flips
        self.late = late
        self.copies = copies
        self.rng = random.Random(seed)
        self.now = 0.0
        self.heap: list[tuple[float, int, int, bytes]] = []
        self.seq = itertools.count()
        self.got: tuple[list[bytes], list[bytes]] = ([], [])
        self.sent: tuple[list[Unit], list[Unit]] = ([], [])
        self.units: list[Unit] = []

    def _chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    def _send(self, side: int, now: float) -> None:
        for u in self.ends[side].poll(now):
            self.units.append(u)
            self.sent[side].append(u)
            # loss and bit flips are drawn for every unit (the seeds of tests/test_hops.py's
            # regression cases depend on that stream), late and copies only when asked for
            if self.rng.random() < self.loss:
                continue
            data = bytearray(u.data)
            if self.rng.random() < self.flips:  # a few bit errors somewhere in the unit
                for _ in range(self.rng.randint(1, 6)):
                    i = self.rng.randrange(len(data) * 8)
                    data[i // 8] ^= 0x80 >> (i % 8)
            at = now + self.delay
            if self._chance(self.late):
                at += self.rng.uniform(0, 20 * self.delay)
            heapq.heappush(self.heap, (at, next(self.seq), 1 - side, bytes(data)))
            if self._chance(self.copies):
                copy_at = at + self.rng.uniform(0, 20 * self.delay)
                heapq.heappush(self.heap, (copy_at, next(self.seq), 1 - side, bytes(data)))

    def run(self, until: float) -> None:
        """Run until ``until`` (virtual seconds) or until nothing is left to happen."""
        while self.now < until:
            for side in (0, 1):
                self._send(side, self.now)
            deadlines = [d for d in (e.next_deadline() for e in self.ends) if d is not None]
            nxt = min([*deadlines, *(h[0] for h in self.heap[:1])], default=None)
            if nxt is None:
                return
            self.now = max(self.now, nxt)
            while self.heap and self.heap[0][0] <= self.now:
                _, _, side, data = heapq.heappop(self.heap)
                self.got[side].extend(self.ends[side].receive(data, self.now).packets)
            for e in self.ends:
                d = e.next_deadline()
                if d is not None and d <= self.now:
                    e.on_timer(self.now)
