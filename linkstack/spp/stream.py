"""Streaming Space Packet parser with resynchronisation (CCSDS 133.0-B-2 §4.1).

A byte stream that carries Space Packets back to back (a packet zone reassembled across
frames, a TCP/serial/UDP byte pipe, a recorded file) is fed in arbitrary chunks to
:meth:`PacketStreamParser.feed`, which returns events: :class:`PacketReceived` for every
complete packet and :class:`BytesSkipped` for octets that could not start a packet.

A position starts a packet only if its primary header is *plausible*:

- Packet Version Number 0 (§4.1.3.2);
- its Packet Identification (type, secondary header flag, APID; §4.1.3.3) is one of the
  configured ``packet_ids`` / ``apids`` (as spacepackets' ``parse_space_packets`` matches on
  packet ID), or anything when neither is configured; idle packets (APID 2047) are accepted
  unless ``accept_idle`` is false;
- its total length (Packet Data Length + 7, §4.1.3.5) is at most ``max_packet_length``.

On an implausible header the parser skips forward one octet at a time until a plausible one
is found, and reports each run of skipped octets with its absolute stream offset. (A run is
reported when it ends, and at the end of every ``feed`` call, so a long run of garbage may
be reported in several pieces whose octets add up exactly.) Memory is bounded: between calls
the parser holds less than ``max(6, max_packet_length)`` octets, because a header declaring
more than ``max_packet_length`` is garbage. A plausible header whose packet has not fully
arrived is waited for; if garbage happens to look like a plausible header the parser will
take it for one, which is why a tight ``packet_ids`` set and ``max_packet_length`` make
resynchronisation more reliable. The parser never reads a clock and never blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from linkstack.errors import ConfigError
from linkstack.fast_dataclass import fast_init
from linkstack.spp.packet import (
    _PACKET_TYPES,
    _SEQUENCE_FLAGS,
    IDLE_APID,
    MAX_APID,
    MAX_PACKET_LENGTH,
    MIN_PACKET_LENGTH,
    PACKET_ID_MASK,
    PRIMARY_HEADER_SIZE,
    SpacePacket,
)

__all__ = ["BytesSkipped", "PacketReceived", "PacketStreamParser", "StreamEvent"]


@fast_init
@dataclass(frozen=True, slots=True)
class PacketReceived:
    """A complete packet that started at absolute stream ``offset``."""

    packet: SpacePacket
    offset: int


_NO_HEADER = "no plausible packet header"


@fast_init
@dataclass(frozen=True, slots=True)
class BytesSkipped:
    """``octets`` octets from absolute stream ``offset`` on were not part of any packet."""

    octets: int
    offset: int
    reason: str = _NO_HEADER


StreamEvent = PacketReceived | BytesSkipped

_IDLE_IDS = frozenset(t << 12 | s << 11 | IDLE_APID for t in (0, 1) for s in (0, 1))


class PacketStreamParser:
    """Sans-IO Space Packet stream parser (see the module docstring).

    Args:
        packet_ids: accepted 13-bit Packet Identifications (``packet_identification()`` or
            spacepackets' ``PacketId.raw()``).
        apids: accepted APIDs, of either packet type and secondary header flag. With both
            ``packet_ids`` and ``apids`` a header matching either is accepted; with neither,
            any Packet Identification is.
        max_packet_length: largest plausible total packet length (7..65542 octets).
        accept_idle: accept idle packets (APID 2047) even if not listed.
        drop_idle: do not report idle packets; count them in :attr:`idle_dropped`.

    Counters: :attr:`packets_received`, :attr:`octets_skipped`, :attr:`idle_dropped`,
    :attr:`offset` (octets consumed so far) and :attr:`buffered` (octets waiting).
    """

    def __init__(
        self,
        *,
        packet_ids: Iterable[int] | None = None,
        apids: Iterable[int] | None = None,
        max_packet_length: int = MAX_PACKET_LENGTH,
        accept_idle: bool = True,
        drop_idle: bool = False,
    ) -> None:
        if not MIN_PACKET_LENGTH <= max_packet_length <= MAX_PACKET_LENGTH:
            raise ConfigError(f"{max_packet_length!r} outside {MIN_PACKET_LENGTH}.."
                              f"{MAX_PACKET_LENGTH}", key="max_packet_length")
        accepted: set[int] | None = None
        if packet_ids is not None or apids is not None:
            accepted = set()
            for pid in packet_ids or ():
                if not 0 <= pid <= PACKET_ID_MASK:
                    raise ConfigError(f"{pid!r} is not a 13-bit packet ID", key="packet_ids")
                accepted.add(pid)
            for apid in apids or ():
                if not 0 <= apid <= MAX_APID:
                    raise ConfigError(f"{apid!r} outside 0..{MAX_APID}", key="apids")
                accepted.update(t << 12 | s << 11 | apid for t in (0, 1) for s in (0, 1))
            if accept_idle:
                accepted |= _IDLE_IDS
            else:
                accepted -= _IDLE_IDS
        self._accepted: frozenset[int] | None = (
            frozenset(accepted) if accepted is not None else None
        )
        # First octets a header can start with (version 0 leaves 0x00..0x1F); skipping
        # garbage jumps from one candidate to the next with a C-level search.
        firsts = sorted({pid >> 8 for pid in accepted} if accepted is not None else range(32))
        self._candidate = re.compile(
            b"[" + b"".join(re.escape(bytes([x])) for x in firsts) + b"]" if firsts else b"(?!)"
        )
        self._reject_idle = not accept_idle
        self.max_packet_length = max_packet_length
        self.drop_idle = drop_idle
        self._buf = bytearray()
        self._base = 0  # absolute stream offset of _buf[0]
        self.packets_received = 0
        self.octets_skipped = 0
        self.idle_dropped = 0

    @property
    def offset(self) -> int:
        """Octets consumed (delivered, dropped or skipped) since the start of the stream."""
        return self._base

    @property
    def buffered(self) -> int:
        """Octets held while waiting for the rest of a packet (or of a header)."""
        return len(self._buf)

    def plausible(self, header: bytes) -> bool:
        """Whether ``header`` (6 octets) could start a packet under this configuration."""
        if len(header) < PRIMARY_HEADER_SIZE:
            return False
        w = int.from_bytes(header[:PRIMARY_HEADER_SIZE], "big")
        first, total = w >> 32, (w & 0xFFFF) + 7
        if first >> 13 or total > self.max_packet_length:
            return False
        accepted = self._accepted
        if accepted is not None:
            return first in accepted
        return not (self._reject_idle and first & 0x7FF == IDLE_APID)

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Add ``chunk`` to the stream; return the packets completed and octets skipped."""
        self._buf += chunk
        return self._scan(final=False)

    def close(self) -> list[StreamEvent]:
        """End of stream. A plausible header whose packet can no longer complete is garbage
        after all: the rest of the buffer is scanned again one octet further on, so packets
        after a false header are still found; what remains is reported as skipped."""
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> list[StreamEvent]:
        buf = self._buf
        n = len(buf)
        base = self._base
        events: list[StreamEvent] = []
        accepted = self._accepted
        max_len = self.max_packet_length
        reject_idle = self._reject_idle
        reason = "no complete packet before the end of the stream" if final else _NO_HEADER
        search = self._candidate.search
        i = 0
        skip: int | None = None  # absolute offset where the current skip run began
        while n - i >= PRIMARY_HEADER_SIZE:
            w = int.from_bytes(buf[i:i + PRIMARY_HEADER_SIZE], "big")
            first = w >> 32
            total = (w & 0xFFFF) + 7
            if (first >> 13 or total > max_len
                    or (first not in accepted if accepted is not None
                        else reject_idle and first & 0x7FF == IDLE_APID)
                    or (final and i + total > n)):
                if skip is None:
                    skip = base + i
                m = search(buf, i + 1)
                i = m.start() if m is not None else n
                continue
            if i + total > n:
                break
            if skip is not None:
                events.append(BytesSkipped(base + i - skip, skip, reason))
                self.octets_skipped += base + i - skip
                skip = None
            apid = first & 0x7FF
            if apid == IDLE_APID and self.drop_idle:
                self.idle_dropped += 1
            else:
                packet = SpacePacket(
                    apid, (w >> 16) & 0x3FFF, bytes(buf[i + PRIMARY_HEADER_SIZE:i + total]),
                    _PACKET_TYPES[(w >> 44) & 1], bool((w >> 43) & 1),
                    _SEQUENCE_FLAGS[(w >> 30) & 3],
                )
                events.append(PacketReceived(packet, base + i))
                self.packets_received += 1
            i += total
        if final and i < n:
            if skip is None:
                skip = base + i
            i = n
        if skip is not None:
            # Report the run so far; the octets from i on are kept for the next call.
            events.append(BytesSkipped(base + i - skip, skip, reason))
            self.octets_skipped += base + i - skip
        del buf[:i]
        self._base = base + i
        return events
