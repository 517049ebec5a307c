"""Virtual-channel scheduling for the Master Channel (CCSDS 132.0-B-3 §4.2.6, 732.0-B-4 §4.2.5).

The Blue Books leave the *VC Frame Service* multiplexing algorithm to the mission: they define
the frames, not the order in which virtual channels get the physical channel. Two common
policies are offered:

- ``priority``: strict priority — the ready VC with the highest priority (lowest number) always
  goes first (a command-echo or ARQ-control VC over bulk data).
- ``round_robin``: weighted round robin — each ready VC gets ``weight`` consecutive frames per
  cycle (weight 1 everywhere is plain round robin), so no VC starves.

A scheduler is a small sans-IO object: :meth:`VcScheduler.pick` is given the VCs that have a
frame ready and returns the one to send.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from typing import Generic, TypeVar

from linkstack.errors import ConfigError

POLICIES = ("priority", "round_robin")

K = TypeVar("K", bound=Hashable)
"""A channel key: a VCID, or a ``(vcid, map_id)`` pair where MAPs are multiplexed too."""


class VcScheduler(Generic[K]):
    """Choose the next virtual channel to emit a frame on.

    The channels are VCIDs or, where MAPs are multiplexed too, ``(vcid, map_id)`` pairs (any
    hashable key: the scheduler is generic in it).

    Args:
        vcids: the configured VCs, in round-robin order.
        policy: ``"priority"`` or ``"round_robin"``.
        priorities: for ``priority``, VC → priority (lower is served first; default: VC order).
        weights: for ``round_robin``, VC → consecutive frames per turn (default 1).
    """

    def __init__(
        self,
        vcids: Collection[K],
        policy: str = "round_robin",
        *,
        priorities: Mapping[K, int] | None = None,
        weights: Mapping[K, int] | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"unknown policy {policy!r}, choose from {POLICIES}", key="policy")
        self.vcids = list(vcids)
        if not self.vcids:
            raise ConfigError("at least one virtual channel is needed", key="vcids")
        self.policy = policy
        self.priorities = {v: i for i, v in enumerate(self.vcids)}
        if priorities:
            self.priorities.update(priorities)
        self.weights = {v: 1 for v in self.vcids}
        if weights:
            for v, w in weights.items():
                if w < 1:
                    raise ConfigError(f"weight of VC {v} must be >= 1, got {w}", key="weights")
                self.weights[v] = w
        for v in list(self.priorities) + list(self.weights):
            if v not in self.vcids:
                raise ConfigError(f"VC {v} is not configured", key="vcids")
        self._turn = 0  # index into vcids of the VC whose turn it is
        self._used = 0  # frames the current VC already had in this turn

    def pick(self, ready: Collection[K]) -> K | None:
        """Return the VC to serve among ``ready`` (``None`` if none is ready)."""
        if not ready:
            return None
        if self.policy == "priority":
            return min(ready, key=self.priorities.__getitem__)
        n = len(self.vcids)
        for step in range(n):
            idx = (self._turn + step) % n
            vc = self.vcids[idx]
            if vc in ready:
                if step:
                    self._turn, self._used = idx, 0
                self._used += 1
                if self._used >= self.weights[vc]:
                    self._turn, self._used = (idx + 1) % n, 0
                return vc
        return None  # ready holds only unconfigured VCs
