"""``linkstack channel``: a real-time link between two UDP processes.

The process sits between a ground station and a spacecraft (``linkstack serve``), each of which
sends one coded unit (CLTU or CADU) per datagram to it. Every datagram crosses a
:class:`ChannelDirection` — uplink or downlink, each from the scenario's link profile — and is
sent on when it would have arrived:

    t_tx_start = max(t_received, t_tx_end of the previous unit)      (one transmitter, FIFO)
    t_tx_end   = t_tx_start + 8 · octets / rate_bps                   (serialization)
    t_arrival  = t_tx_end + propagation(t_tx_start)                   (fixed, or the LEO pass)

the same timing law as the virtual-time simulator (:mod:`linkstack.sims.link`). On the way, a
unit is lost with probability ``erasure`` (a frame erasure); bits are flipped by the
simulator's own bit-error process (:class:`~linkstack.sims.bit_errors.BitErrorProcess`: the
profile's ``ber`` and, if given, its Gilbert–Elliott bursts, on the direction's bit clock;
bit 0 = MSB of octet 0; the receiving decoder corrects or rejects them); a ``reorder``
fraction of the units is held back by an exponential extra delay; a ``duplicate`` fraction
is delivered a second time, one serialization time (plus an exponential extra delay of mean
``duplicate_delay_s``) after the original; a unit arriving at a full transmit queue
(``queue_capacity``) is dropped, and — only with ``outages=True`` — a unit whose reception
overlaps a down interval of the profile's visibility (the pass's contact windows) is lost.
Draws come from seeded generators per direction, so a run with the same units in the same
order makes the same decisions. Time is the event loop's clock (``loop.time()``, monotonic),
counted from the proxy's start for the pass geometry.

:class:`ChannelDirection` is sans-IO (it is given ``now`` and returns a decision);
:class:`ChannelProxy` is the thin asyncio driver with its two sockets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from linkstack.errors import ConfigError
from linkstack.sims.bit_errors import BitErrorProcess, flip_bits
from linkstack.sims.channel import FixedDelay, GilbertElliott, Propagation, Reorder, Visibility

NS = 1_000_000_000


@dataclass(frozen=True)
class ChannelProfile:
    """What one direction does to the units crossing it.

    Attributes:
        name: for logs and status.
        rate_bps: transmitter bit rate (None: no serialization delay, no queue).
        propagation: one-way delay law (``delay_ns(t_ns)``, t from the proxy's start).
        ber: independent bit error rate.
        erasure: probability of losing a whole unit.
        queue_capacity: units that may wait for the transmitter (None: unbounded).
        visibility: down intervals (losses), applied only if given.
        ge: Gilbert–Elliott burst errors (combined with ``ber``).
        reorder: a fraction of units delayed by an exponential extra delay.
        duplicate: probability that a delivered unit is delivered a second time.
        duplicate_delay_s: mean extra delay of the copy beyond one serialization time.
    """

    name: str
    rate_bps: float | None = None
    propagation: Propagation = field(default_factory=lambda: FixedDelay(0.0))
    ber: float = 0.0
    erasure: float = 0.0
    queue_capacity: int | None = None
    visibility: Visibility | None = None
    ge: GilbertElliott | None = None
    reorder: Reorder | None = None
    duplicate: float = 0.0
    duplicate_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_bps is not None and not self.rate_bps > 0:
            raise ConfigError("must be > 0", key=f"{self.name}.rate_bps")
        if not 0.0 <= self.ber < 0.5:
            raise ConfigError("must be in [0, 0.5)", key=f"{self.name}.ber")
        if not 0.0 <= self.erasure <= 1.0:
            raise ConfigError("must be in [0, 1]", key=f"{self.name}.erasure")
        if self.queue_capacity is not None and self.queue_capacity < 1:
            raise ConfigError("must be >= 1", key=f"{self.name}.queue_capacity")
        if not 0.0 <= self.duplicate <= 1.0:
            raise ConfigError("must be in [0, 1]", key=f"{self.name}.duplicate")
        if not self.duplicate_delay_s >= 0.0:
            raise ConfigError("must be >= 0", key=f"{self.name}.duplicate_delay_s")

    @classmethod
    def from_link(cls, spec: Any, *, outages: bool = False,
                  overrides: dict[str, Any] | None = None) -> ChannelProfile:
        """The profile of a scenario link direction (:class:`linkstack.sims.scenario.LinkSpec`).

        ``overrides`` may set ``rate_bps``, ``delay_s`` (a fixed delay instead of the
        scenario's propagation), ``ber``, ``erasure``.
        """
        o = dict(overrides or {})
        delay_s = o.pop("delay_s", None)
        propagation = FixedDelay(delay_s) if delay_s is not None else spec.build_propagation()
        profile = cls(
            spec.name, rate_bps=o.pop("rate_bps", spec.rate_bps), propagation=propagation,
            ber=o.pop("ber", spec.ber), erasure=o.pop("erasure", spec.erasure),
            queue_capacity=spec.queue_capacity if spec.queue_policy == "drop" else None,
            visibility=spec.build_visibility() if outages else None,
            ge=spec.ge, reorder=spec.reorder,
            duplicate=spec.duplicate.fraction if spec.duplicate else 0.0,
            duplicate_delay_s=spec.duplicate.mean_delay_s if spec.duplicate else 0.0,
        )
        if o:
            raise ConfigError(f"unknown override {sorted(o)[0]!r}", key=spec.name)
        return profile


@dataclass(frozen=True, slots=True)
class Transit:
    """The fate of one unit: ``data`` (possibly with flipped bits) at ``deliver_at`` (seconds,
    the caller's clock), or ``lost`` naming why (``data`` is then None); ``copy_at``: the
    same data is delivered a second time then (duplication), else None."""

    deliver_at: float
    data: bytes | None
    lost: str | None = None
    bit_errors: int = 0
    queueing_s: float = 0.0
    serialization_s: float = 0.0
    propagation_s: float = 0.0
    reorder_s: float = 0.0
    copy_at: float | None = None


class ChannelDirection:
    """One direction of the channel, sans-IO: :meth:`transmit` says when and how a unit
    arrives. ``start`` is the clock value that counts as t = 0 for the propagation law and
    the visibility."""

    def __init__(self, profile: ChannelProfile, *, seed: int = 0, start: float = 0.0) -> None:
        self.profile = profile
        self.rng = np.random.default_rng(seed)
        streams = np.random.SeedSequence(seed).spawn(4)
        self.errors = BitErrorProcess.for_channel(
            profile.ber, profile.ge, np.random.default_rng(streams[0]),
            np.random.default_rng(streams[1]))
        self._reorder_rng = np.random.default_rng(streams[2])
        self._duplicate_rng = np.random.default_rng(streams[3])
        self._slot_end = 0  # bit-clock slot after the last unit sent
        self.duplicates = 0
        self.reordered = 0
        self.start = start
        self._busy_until = start
        self._waiting: list[float] = []  # transmission starts still in the future
        self.units = 0
        self.delivered = 0
        self.lost: dict[str, int] = {}
        self.bit_errors = 0
        self.octets = 0

    def _ns(self, t: float) -> int:
        """Nanoseconds since ``start`` (never negative)."""
        return max(0, round((t - self.start) * NS))

    def _lose(self, why: str, t: float) -> Transit:
        self.lost[why] = self.lost.get(why, 0) + 1
        return Transit(t, None, why)

    def transmit(self, unit: bytes, now: float) -> Transit:
        """Decide the fate of ``unit`` handed to the transmitter at ``now``."""
        p = self.profile
        self.units += 1
        self.octets += len(unit)
        # units still waiting for the transmitter (their transmission starts after now)
        self._waiting = [t for t in self._waiting if t > now]
        if p.queue_capacity is not None and len(self._waiting) >= p.queue_capacity:
            return self._lose("queue_full", now)
        start = max(now, self._busy_until)
        serialization = 0.0 if p.rate_bps is None else 8 * len(unit) / p.rate_bps
        end = start + serialization
        self._busy_until = end
        if start > now:
            self._waiting.append(start)
        propagation = p.propagation.delay_ns(self._ns(start)) / NS
        extra = 0.0
        if (p.reorder is not None and p.reorder.fraction > 0
                and self._reorder_rng.random() < p.reorder.fraction):
            extra = float(self._reorder_rng.exponential(p.reorder.mean_delay_s))
            self.reordered += 1
        arrival = end + propagation + extra
        # the bit clock runs through idle time (at the link rate) and through each unit
        nbits = 8 * len(unit)
        slot = self._slot_end
        if p.rate_bps is not None:
            slot = max(slot, int(self._ns(start) * p.rate_bps) // NS)
        self._slot_end = slot + nbits
        # drawn for every unit, lost or not, so that losses do not shift the error stream
        positions = self.errors.positions(slot, nbits) if self.errors.active and nbits else None
        if p.erasure and self.rng.random() < p.erasure:
            return self._lose("erasure", arrival)
        if p.visibility is not None and p.visibility.down_overlapping(
                self._ns(arrival - serialization), self._ns(arrival) + 1):
            return self._lose("outage", arrival)
        data = bytes(unit)
        errors = 0 if positions is None else len(positions)
        if errors:
            data = flip_bits(data, positions)
        self.bit_errors += errors
        self.delivered += 1
        copy_at = None
        if p.duplicate and self._duplicate_rng.random() < p.duplicate:
            lag = serialization
            if p.duplicate_delay_s > 0:
                lag += float(self._duplicate_rng.exponential(p.duplicate_delay_s))
            copy_at = arrival + lag
            self.duplicates += 1
        return Transit(arrival, data, None, errors, start - now, serialization, propagation,
                       extra, copy_at)

    def status(self) -> dict[str, object]:
        p = self.profile
        return {"name": p.name, "rate_bps": p.rate_bps, "ber": p.ber, "erasure": p.erasure,
                "units": self.units, "delivered": self.delivered, "lost": dict(self.lost),
                "bit_errors": self.bit_errors, "octets": self.octets,
                "reordered": self.reordered, "duplicates": self.duplicates}


class _Side(asyncio.DatagramProtocol):
    def __init__(self, proxy: ChannelProxy, side: str) -> None:
        self.proxy = proxy
        self.side = side
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.proxy._received(self.side, data, addr)

    def error_received(self, exc: Exception) -> None:
        self.proxy.errors += 1


class ChannelProxy:
    """Two UDP sockets and two :class:`ChannelDirection`\\ s.

    Datagrams arriving on ``ground_listen`` cross ``uplink`` and leave from the space-side
    socket to ``space_peer``; datagrams arriving on ``space_listen`` cross ``downlink`` and
    leave from the ground-side socket to ``ground_peer``. A peer left None is learnt from the
    first datagram of its side (its source address).
    """

    def __init__(self, uplink: ChannelProfile, downlink: ChannelProfile, *, seed: int = 0,
                 ground_peer: tuple[str, int] | None = None,
                 space_peer: tuple[str, int] | None = None) -> None:
        self.profiles = {"uplink": uplink, "downlink": downlink}
        self.seed = seed
        self.peers: dict[str, tuple[str, int] | None] = {"ground": ground_peer,
                                                         "space": space_peer}
        self.directions: dict[str, ChannelDirection] = {}
        self.sides: dict[str, _Side] = {}
        self.addresses: dict[str, tuple[str, int]] = {}
        self.errors = 0
        self.undeliverable = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, ground_listen: tuple[str, int],
                    space_listen: tuple[str, int]) -> None:
        """Bind both sockets; ``self.addresses`` then holds the bound addresses."""
        loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        self.directions = {
            "uplink": ChannelDirection(self.profiles["uplink"], seed=self.seed, start=now),
            "downlink": ChannelDirection(self.profiles["downlink"], seed=self.seed + 1,
                                         start=now),
        }
        for side, listen in (("ground", ground_listen), ("space", space_listen)):
            transport, protocol = await loop.create_datagram_endpoint(
                lambda side=side: _Side(self, side), local_addr=listen)
            self.sides[side] = protocol
            self.addresses[side] = transport.get_extra_info("sockname")[:2]

    def _received(self, side: str, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self._loop is not None
        if self.peers[side] is None:
            self.peers[side] = (str(addr[0]), int(addr[1]))
        direction, out = ("uplink", "space") if side == "ground" else ("downlink", "ground")
        now = self._loop.time()
        transit = self.directions[direction].transmit(data, now)
        if transit.data is None:
            return
        self._loop.call_at(transit.deliver_at, self._deliver, out, transit.data)
        if transit.copy_at is not None:
            self._loop.call_at(transit.copy_at, self._deliver, out, transit.data)

    def _deliver(self, side: str, data: bytes) -> None:
        peer = self.peers[side]
        transport = self.sides[side].transport
        if peer is None or transport is None or transport.is_closing():
            self.undeliverable += 1
            return
        transport.sendto(data, peer)

    def status(self) -> dict[str, object]:
        return {name: d.status() for name, d in self.directions.items()} | {
            "errors": self.errors, "undeliverable": self.undeliverable}

    def close(self) -> None:
        for side in self.sides.values():
            if side.transport is not None:
                side.transport.close()

    async def serve_forever(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.close()
