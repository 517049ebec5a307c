"""The COP-1 ground operator: what the user of FOP-1 does around it (CCSDS 232.1-B-2 §5).

FOP-1 stops at an Alert: it gives up the frames it could not get acknowledged
(:class:`~linkstack.arq.common.Undelivered`, one per frame, with its N(S)) and goes to the
Initial state (S6). 232.1-B-2 leaves the rest to "Higher Procedures" (its §2.4, §5.1.7):
someone must look at the FARM-1's report, decide what arrived and start AD service again. In
ground systems that is the spacecraft operator (or an automated procedure); here it is this
class, one for every COP-1 sender in the project (the RF hop's ground end,
:class:`linkstack.hops.rf.RfGround`, and the ``linkstack arq`` loopback simulator).

What it keeps:

- ``backlog``: the handles of SDUs not yet given to FOP-1, oldest first. :meth:`feed` gives
  them to FOP-1 one by one while FOP-1 is in S1..S3 (Active / Retransmit) with its Wait_Queue
  empty, and the driver allows it (a driver can hold the backlog after a BC frame, for
  example, so that a late copy of Set V(R) does not rewind the FARM).
- ``undelivered``: ``(N(S), handle)`` of every frame FOP-1 gave up.

:meth:`recover` runs on a CLCW the driver trusts to be current (received after every frame sent
before the Alert has landed, or after a wait): frames with N(S) below the report value N(R) are
acknowledged by that CLCW (FARM-1 has them); the others go back to the front of the backlog in
N(S) order; then AD service is initiated again — with Unlock if the FARM is in Lockout (after
Set V(S) := N(R), so that FOP-1 and FARM-1 agree), else with Set V(R) := N(R) (232.1-B-2
§5.2.4's Initiate AD service with Set V(R), directive 3). Sans-IO: every method takes ``now``
and returns FOP-1's events for the driver to act on.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from linkstack.arq.common import Alert, SduRejected, Undelivered
from linkstack.arq.fop1 import MODULUS, Fop1, Fop1Event, FopState
from linkstack.frames.clcw import Clcw

__all__ = ["Cop1Operator"]

H = TypeVar("H")

_SERVING = (FopState.S1, FopState.S2, FopState.S3)  # AD service active: FOP-1 takes SDUs


class Cop1Operator(Generic[H]):
    """The backlog, the given-up frames and Alert recovery around one :class:`Fop1`.

    Args:
        fop: the FOP-1 it operates.
        payload: the SDU octets of a handle (called when the handle is given to FOP-1).
    """

    def __init__(self, fop: Fop1, payload: Callable[[H], bytes]) -> None:
        self.fop = fop
        self.payload = payload
        self.backlog: deque[H] = deque()
        self.undelivered: list[tuple[int, H]] = []
        self.alerts: Counter[str] = Counter()
        self.recoveries = 0

    def offer(self, handle: H) -> None:
        """Queue one SDU (by its handle) behind the others."""
        self.backlog.append(handle)

    def can_feed(self) -> bool:
        """FOP-1 would take the next SDU now (AD service active, Wait_Queue empty)."""
        fop = self.fop
        return bool(self.backlog) and fop.wait_queue_empty and fop.state in _SERVING

    def feed(self, now: float, handle_events: Callable[[list[Fop1Event]], object],
             allowed: Callable[[], bool] = lambda: True) -> None:
        """Give FOP-1 SDUs from the backlog while it takes them and ``allowed()``; each
        request's events go to ``handle_events`` before the next request (they can change what
        is allowed, and :meth:`absorb` puts a rejected SDU back in front)."""
        while self.can_feed() and allowed():
            handle = self.backlog.popleft()
            handle_events(self.fop.request_ad(self.payload(handle), handle, now=now))

    def absorb(self, event: Fop1Event) -> bool:
        """Keep what the operator owns of one FOP-1 event: a given-up frame, a rejected SDU
        (back to the front of the backlog), an Alert (counted). True iff it was an Alert."""
        if isinstance(event, Undelivered):
            self.undelivered.append((event.seq, event.handle))
        elif isinstance(event, SduRejected):
            self.backlog.appendleft(event.handle)
        elif isinstance(event, Alert):
            self.alerts[event.code] += 1
            return True
        return False

    def recover(self, clcw: Clcw, now: float) -> tuple[list[H], list[Fop1Event]]:
        """Sort the given-up frames by ``clcw``'s N(R) and initiate AD service again.

        Returns the handles the CLCW acknowledges (FARM-1 has them) and FOP-1's events of the
        re-initiation (BC frames to transmit). Call it with FOP-1 in S6 only.
        """
        nr, base = clcw.report_value, self.fop.nnr
        done = (nr - base) % MODULUS  # frames N(S) = NN(R) .. N(R) - 1 reached the FARM
        delivered: list[H] = []
        resend: list[tuple[int, H]] = []
        for ns, handle in self.undelivered:
            if (ns - base) % MODULUS < done:
                delivered.append(handle)
            else:
                resend.append(((ns - base) % MODULUS, handle))
        self.undelivered.clear()
        self._requeue(h for _, h in sorted(resend, key=lambda item: item[0], reverse=True))
        self.recoveries += 1
        fop = self.fop
        if clcw.lockout:
            events = fop.set_vs(nr, now=now) + fop.initiate_ad_with_unlock(now=now)
        else:
            events = fop.initiate_ad_with_set_vr(nr, now=now)
        return delivered, events

    def _requeue(self, handles_last_first: Iterable[H]) -> None:
        for handle in handles_last_first:
            self.backlog.appendleft(handle)
