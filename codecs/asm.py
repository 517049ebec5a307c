"""TM synchronization: Attached Sync Marker and a bit-level frame synchronizer.

CCSDS 131.0-B-3 §8 puts the 32-bit Attached Sync Marker ``1ACFFC1D`` (not randomized) in
front of every codeblock; ASM + codeblock is a CADU (Channel Access Data Unit). The receiver
sees a *bit* stream: the CADUs may start at any bit offset, bits may be inverted (BPSK phase
ambiguity), inserted or lost, and markers may carry bit errors. The Blue Book does not specify
the receiver; :class:`FrameSynchronizer` implements the search → check → lock → flywheel
state machine in the style of typical (hardware) frame synchronizers, sans-IO: feed it byte
chunks of any size, get events.

State machine (all tolerances in marker bit errors):

``SEARCH``
    Every bit position is tested (vectorized: a 32-bit window at each of the 8 bit offsets of
    every octet, Hamming distance by ``numpy.bitwise_count``) for the marker with at most
    ``search_tolerance`` errors, and, when ``detect_inverted``, for its complement. Bits passed
    over are reported by one :class:`SearchSkipped` when a marker is found (or at
    :meth:`~FrameSynchronizer.flush`). The frame at the found marker is delivered at once
    (``locked=False``) and the synchronizer enters CHECK.
``CHECK``
    The marker must be seen at the predicted position (one CADU later) with at most
    ``lock_tolerance`` errors ``check_count`` times in a row; then :class:`SyncLocked` and LOCK
    (``check_count=0`` locks on the first marker). A miss in CHECK (after the slip search
    below) returns to SEARCH, from the predicted position, except for the first check:
``False marker``
    When the marker SEARCH found is never confirmed — the marker one CADU later misses (after
    the slip search and, when locked at once, the flywheel) — it was most likely a chance
    match in garbage, and the real stream may start less than one CADU after it. SEARCH then
    resumes right after that marker (at its bit + 1), not after its whole CADU, so the first
    real CADU is not lost. Its CADU was already delivered (unconfirmed), so those bits are
    searched again: :class:`SyncLost` reports them as ``reused_bits``; the receive chain
    rejects such a CADU (Reed-Solomon, or the FECF check of the chain).
``LOCK``
    Markers are checked at the predicted positions, many CADUs at a time (one shift-realign of
    the bytes, one reshape, one vectorized marker comparison). A marker that misses is looked
    for, in order: with the other polarity (``detect_inverted``: a 180° phase slip flips the
    polarity and is followed), then within ±``slip_window`` bits (found: :class:`Slip` with the
    signed number of bits, positive = bits were inserted). Otherwise the *flywheel* rides
    over it: up to ``flywheel`` consecutive misses are tolerated and those CADUs are **held**
    at their predicted positions. The next marker that is found releases them
    (``flywheel=True``); if the flywheel runs out instead, :class:`SyncLost` is reported, the
    held CADUs are discarded (they were misaligned) and SEARCH restarts at the first of them,
    so that a burst of inserted garbage costs no real CADU.

Every bit of the input ends up in exactly one place: in a delivered CADU, in a positive slip,
or in a :class:`SearchSkipped`; a negative slip and a search resumed after a false marker
(``SyncLost.reused_bits``) re-use bits. So delivered CADU bits + slip bits + skipped bits −
reused bits = bits in. Tests check this accounting.

For throughput, :meth:`FrameSynchronizer.feed_batches` returns runs of CADUs as
:class:`FrameBatch` (``numpy`` arrays ``[k, cadu_length]``) for a vectorized receive chain;
:meth:`FrameSynchronizer.feed` expands them into one :class:`FrameSynced` per CADU.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from linkstack.errors import ConfigError, EncodeError

__all__ = [
    "ASM",
    "ASM_BYTES",
    "ASM_OCTETS",
    "FrameBatch",
    "FrameSynced",
    "FrameSynchronizer",
    "MarkerScanner",
    "SearchSkipped",
    "Slip",
    "SyncEvent",
    "SyncLocked",
    "SyncLost",
    "SyncState",
    "SyncStats",
    "attach_asm",
    "attach_asm_array",
    "extract_octets",
    "find_pattern",
]

ASM = 0x1ACFFC1D
"""Attached Sync Marker for uncoded, RS and convolutional TM codeblocks, 131.0-B-3 §8."""
ASM_BYTES = ASM.to_bytes(4, "big")
ASM_OCTETS = 4
_ASM_ARRAY = np.frombuffer(ASM_BYTES, dtype=np.uint8)

_SEARCH_CHUNK_OCTETS = 1 << 15
_FIRST_SEARCH_CHUNK_OCTETS = 1 << 9


# --------------------------------------------------------------------------------------------
# Encoding side


def attach_asm(codeblock: bytes) -> bytes:
    """CADU = ASM + (randomized) codeblock, 131.0-B-3 §8 / 132.0-B-3 (CADU)."""
    return ASM_BYTES + bytes(codeblock)


def attach_asm_array(codeblocks: np.ndarray) -> np.ndarray:
    """CADUs ``[m, 4 + n]`` from codeblocks ``[m, n]`` (uint8), in one copy."""
    if codeblocks.ndim != 2:
        raise EncodeError(
            f"expected an [m, n] array of codeblocks, got shape {codeblocks.shape}",
            layer="asm", field="codeblock",
        )
    out = np.empty((codeblocks.shape[0], ASM_OCTETS + codeblocks.shape[1]), dtype=np.uint8)
    out[:, :ASM_OCTETS] = _ASM_ARRAY
    out[:, ASM_OCTETS:] = codeblocks
    return out


# --------------------------------------------------------------------------------------------
# Bit-level helpers (shared with the CLTU start-sequence search)


def extract_octets(buf: np.ndarray, start_bit: int, count: int) -> np.ndarray:
    """``count`` octets read from ``buf`` (uint8) starting at bit ``start_bit`` (MSB first).

    One slice when ``start_bit`` is octet-aligned, otherwise two shifted slices OR-ed: the
    realignment of a whole run of CADUs costs three vector operations. ``buf`` must hold
    the bits up to ``start_bit + 8 * count``.
    """
    q, r = divmod(start_bit, 8)
    if r == 0:
        return buf[q : q + count]
    seg = buf[q : q + count + 1]
    if seg.size < count + 1:  # the last octet needs no bits from beyond the buffer
        seg = np.concatenate([seg, np.zeros(count + 1 - seg.size, dtype=np.uint8)])
    return (seg[:-1] << np.uint8(r)) | (seg[1:] >> np.uint8(8 - r))


def _windows(buf: np.ndarray, q0: int, q1: int, nbits: int) -> np.ndarray:
    """``[q1 - q0, 8]`` uint64: the ``nbits``-bit window starting at bit r of octet q."""
    n = q1 - q0
    seg = buf[q0 : q1 + 4]
    if seg.size < n + 4:
        seg = np.concatenate([seg, np.zeros(n + 4 - seg.size, dtype=np.uint8)])
    seg = seg.astype(np.uint64)
    v = (
        (seg[0:n] << np.uint64(32))
        | (seg[1 : n + 1] << np.uint64(24))
        | (seg[2 : n + 2] << np.uint64(16))
        | (seg[3 : n + 3] << np.uint64(8))
        | seg[4 : n + 4]
    )
    shifts = (40 - nbits - np.arange(8, dtype=np.uint64)).astype(np.uint64)
    windows: np.ndarray = (v[:, None] >> shifts[None, :]) & np.uint64((1 << nbits) - 1)
    return windows


def find_pattern(
    buf: np.ndarray,
    start_bit: int,
    pattern: int,
    nbits: int,
    tolerance: int,
    *,
    detect_inverted: bool = False,
    end_bit: int | None = None,
) -> tuple[int, int, bool] | None:
    """First bit position ``p >= start_bit`` where the ``nbits``-bit window of ``buf`` is
    within ``tolerance`` bit errors of ``pattern`` (or of its complement, when
    ``detect_inverted``), with the whole window inside ``buf`` and ``p < end_bit``.

    Returns ``(p, errors, inverted)`` or None. ``nbits`` is at most 32. Vectorized: the
    Hamming distance at all 8 bit offsets of 512 octets, then of twice as many each
    numpy pass up to 32 Ki octets.
    """
    if not 1 <= nbits <= 32:
        raise ValueError("nbits must be 1..32")
    last = buf.size * 8 - nbits  # last valid start
    if end_bit is not None:
        last = min(last, end_bit - 1)
    if start_bit > last:
        return None
    pat = np.uint64(pattern)
    q = start_bit // 8
    q_last = last // 8
    chunk = _FIRST_SEARCH_CHUNK_OCTETS  # grows: a marker is often near the start
    while q <= q_last:
        q_end = min(q + chunk, q_last + 1)
        chunk = min(2 * chunk, _SEARCH_CHUNK_OCTETS)
        dist = np.bitwise_count(_windows(buf, q, q_end, nbits) ^ pat).ravel()
        ok = dist <= tolerance
        if detect_inverted:
            ok |= dist >= nbits - tolerance
        lo = start_bit - q * 8 if q * 8 < start_bit else 0
        hi = last - q * 8 + 1
        hits = np.flatnonzero(ok[lo:hi])
        if hits.size:
            i = lo + int(hits[0])
            d = int(dist[i])
            inverted = d > tolerance
            return q * 8 + i, (nbits - d if inverted else d), inverted
        q = q_end
    return None


# --------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class FrameSynced:
    """One CADU found in the bit stream.

    Attributes:
        cadu_bytes: the CADU, ASM included, re-inverted when the stream was inverted (so a
            clean marker reads ``1ACFFC1D``).
        bit_offset: absolute bit position of the marker's first bit in the fed stream.
        marker_errors: bit errors in the marker.
        inverted: the stream had inverted polarity here (and the bits were re-inverted).
        locked: the synchronizer was in LOCK (confirmed) when it delivered this CADU.
        flywheel: the marker was missing; the CADU was delivered at its predicted position.
    """

    cadu_bytes: bytes
    bit_offset: int
    marker_errors: int
    inverted: bool
    locked: bool = True
    flywheel: bool = False

    @property
    def codeblock(self) -> bytes:
        """The codeblock (the CADU without its ASM)."""
        return self.cadu_bytes[ASM_OCTETS:]


@dataclass(frozen=True, slots=True)
class SyncLocked:
    """CHECK succeeded: the synchronizer entered LOCK at the marker at ``bit_offset``."""

    bit_offset: int
    inverted: bool


@dataclass(frozen=True, slots=True)
class SyncLost:
    """The synchronizer went back to SEARCH, restarting at ``bit_offset``.

    ``was_locked`` is False for a failed CHECK; ``discarded_frames`` counts the flywheel CADUs
    that were held and are dropped (their bits are searched again). ``reused_bits`` is
    non-zero when the marker that started this acquisition was never confirmed (a false
    marker, most likely): the search restarts right after it, inside its CADU, which was
    already delivered, and these bits of that CADU are searched again.
    """

    bit_offset: int
    was_locked: bool
    discarded_frames: int = 0
    reused_bits: int = 0


@dataclass(frozen=True, slots=True)
class Slip:
    """The marker was found ``bits`` away from its predicted position (positive: bits were
    inserted, negative: lost); ``bit_offset`` is where it was found."""

    bits: int
    bit_offset: int


@dataclass(frozen=True, slots=True)
class SearchSkipped:
    """SEARCH passed over ``bits`` bits starting at ``bit_offset`` with no marker;
    ``octets`` is ``bits // 8`` (whole octets)."""

    octets: int
    bits: int
    bit_offset: int


@dataclass(frozen=True, slots=True, eq=False)
class FrameBatch:
    """A run of CADUs sharing their flags, as arrays (for the vectorized receive chain).

    ``cadus[k, cadu_length]`` (already re-inverted), ``bit_offsets[k]``, ``marker_errors[k]``.
    """

    cadus: np.ndarray
    bit_offsets: np.ndarray
    marker_errors: np.ndarray
    inverted: bool
    locked: bool
    flywheel: bool

    def __len__(self) -> int:
        return int(self.cadus.shape[0])

    def events(self) -> list[FrameSynced]:
        """One :class:`FrameSynced` per CADU."""
        n = self.cadus.shape[1]
        raw = self.cadus.tobytes()
        offsets = self.bit_offsets.tolist()
        errors = self.marker_errors.tolist()
        return [
            FrameSynced(raw[i * n : (i + 1) * n], offsets[i], errors[i],
                        self.inverted, self.locked, self.flywheel)
            for i in range(len(offsets))
        ]


SyncEvent = FrameSynced | SyncLocked | SyncLost | Slip | SearchSkipped


class SyncState(enum.StrEnum):
    """Frame synchronizer state (FLYWHEEL = LOCK with at least one missed marker pending)."""

    SEARCH = "search"
    CHECK = "check"
    LOCK = "lock"
    FLYWHEEL = "flywheel"


@dataclass(slots=True)
class SyncStats:
    """Counters since construction.

    ``false_markers`` counts acquisitions whose marker was never confirmed (SEARCH resumed
    right after it), ``reused_bits`` the bits of their delivered CADUs searched again.
    """

    frames: int = 0
    flywheel_frames: int = 0
    slips: int = 0
    slip_bits: int = 0
    skipped_bits: int = 0
    sync_losses: int = 0
    locks: int = 0
    discarded_frames: int = 0
    bits_in: int = 0
    false_markers: int = 0
    reused_bits: int = 0

    @property
    def skipped_octets(self) -> int:
        """Whole octets skipped (``skipped_bits // 8``)."""
        return self.skipped_bits // 8


# --------------------------------------------------------------------------------------------
# The synchronizer


class MarkerScanner:
    """The bit-stream buffer and skipped-bit accounting shared by the receivers that look
    for a marker at any bit offset (:class:`FrameSynchronizer`, the CLTU decoder).

    ``_buf`` holds the octets not yet consumed, ``_base`` the absolute bit index of its
    bit 0, ``_pos`` the receiver's position in it. Bits passed over while searching are
    counted from ``_skip_start`` and reported as one :class:`SearchSkipped` when a marker is
    found or the stream ends. Subclasses set ``detect_inverted`` and a ``stats`` with a
    ``skipped_bits`` counter.
    """

    detect_inverted: bool
    stats: Any

    def __init__(self) -> None:
        self._buf = np.zeros(0, dtype=np.uint8)
        self._base = 0  # absolute bit index of _buf bit 0 (a multiple of 8)
        self._pos = 0
        self._skip_bits = 0
        self._skip_start = 0

    def _append(self, data: bytes | bytearray | memoryview) -> int:
        """Add stream octets to the buffer; returns how many."""
        if len(data):
            new = np.frombuffer(data, dtype=np.uint8)
            self._buf = np.concatenate([self._buf, new]) if self._buf.size else new.copy()
        return len(data)

    def _skip(self, nbits: int) -> None:
        """Count ``nbits`` from ``_pos`` as skipped (the run starts at the first of them)."""
        if self._skip_bits == 0:
            self._skip_start = self._base + self._pos
        self._skip_bits += nbits

    def _emit_skip(self, out: list[Any]) -> None:
        if self._skip_bits:
            out.append(SearchSkipped(self._skip_bits // 8, self._skip_bits, self._skip_start))
            self.stats.skipped_bits += self._skip_bits
            self._skip_bits = 0

    def _search(self, out: list[Any], marker: int, nbits: int, tolerance: int
                ) -> tuple[int, bool] | None:
        """Find ``marker`` from ``_pos``: (its position, inverted), the bits before it counted
        as skipped and reported; None when not in the buffer yet (``_pos`` then moves up to
        the last ``nbits - 1`` bits, which may start a marker)."""
        found = find_pattern(self._buf, self._pos, marker, nbits, tolerance,
                             detect_inverted=self.detect_inverted)
        if found is None:
            new_pos = max(self._pos, self._buf.size * 8 - (nbits - 1))
            self._skip(new_pos - self._pos)
            self._pos = new_pos
            return None
        p, _errors, inverted = found
        self._skip(p - self._pos)
        self._emit_skip(out)
        return p, inverted

    def _skip_rest(self, out: list[Any]) -> None:
        """End of stream: the bits from ``_pos`` on are skipped; empty the buffer (bit
        offsets keep counting)."""
        total = self._buf.size * 8
        self._skip(max(0, total - self._pos))
        self._emit_skip(out)
        self._base += total
        self._buf = np.zeros(0, dtype=np.uint8)
        self._pos = 0


class FrameSynchronizer(MarkerScanner):
    """Sans-IO bit-level CADU synchronizer (search → check → lock → flywheel).

    Args:
        cadu_length: octets per CADU, ASM included (4 + codeblock length).
        asm: the 32-bit marker.
        search_tolerance: marker bit errors accepted in SEARCH (default 2).
        lock_tolerance: marker bit errors accepted in CHECK and LOCK (default 4, must be at
            least ``search_tolerance``).
        check_count: consecutive markers at the predicted position needed to lock (default 1).
        flywheel: consecutive missing markers ridden over in LOCK (default 2).
        slip_window: bits either side of a missing marker searched for a slip (default 1).
        detect_inverted: also acquire on the complemented marker and re-invert the data.

    Feed byte chunks with :meth:`feed` (or :meth:`feed_batches`); at the end of the stream call
    :meth:`flush` to get the CADUs still held and the last skipped bits.

    A locked stream fed one CADU per call takes a fast path (:meth:`_feed_next_cadu`) with
    the same events, counters and state; ``_fast_paths = False`` (tests) turns it off.
    """

    _fast_paths: bool = True

    def __init__(
        self,
        cadu_length: int,
        *,
        asm: int = ASM,
        search_tolerance: int = 2,
        lock_tolerance: int = 4,
        check_count: int = 1,
        flywheel: int = 2,
        slip_window: int = 1,
        detect_inverted: bool = False,
    ) -> None:
        if cadu_length < ASM_OCTETS + 1:
            raise ConfigError(f"{cadu_length} octets cannot hold an ASM and a codeblock",
                              key="cadu_length")
        if not 0 <= asm <= 0xFFFFFFFF:
            raise ConfigError("the ASM is a 32-bit value", key="asm")
        if not 0 <= search_tolerance <= lock_tolerance < 16:
            raise ConfigError(
                f"need 0 <= search_tolerance ({search_tolerance}) <= lock_tolerance "
                f"({lock_tolerance}) < 16", key="search_tolerance",
            )
        if check_count < 0:
            raise ConfigError("must be >= 0", key="check_count")
        if flywheel < 0:
            raise ConfigError("must be >= 0", key="flywheel")
        if not 0 <= slip_window < cadu_length * 4:
            raise ConfigError("must be >= 0 and well below a CADU", key="slip_window")
        self.cadu_length = cadu_length
        self.asm = asm
        self.search_tolerance = search_tolerance
        self.lock_tolerance = lock_tolerance
        self.check_count = check_count
        self.flywheel = flywheel
        self.slip_window = slip_window
        self.detect_inverted = detect_inverted
        self.stats = SyncStats()
        self._bits = cadu_length * 8
        super().__init__()  # _pos: SEARCH: next bit to test; CHECK/LOCK: predicted marker
        self._state = SyncState.SEARCH
        self._inverted = False
        self._confirm = 0
        self._misses = 0
        self._held_first: int | None = None  # position of the first held flywheel CADU
        self._held_errors: list[int] = []
        # position of the marker SEARCH found, until a second marker confirms it
        self._unconfirmed: int | None = None

    # -- public ----------------------------------------------------------------------------

    @property
    def state(self) -> SyncState:
        """Current state; FLYWHEEL while missed markers are being ridden over."""
        if self._state is SyncState.LOCK and self._misses:
            return SyncState.FLYWHEEL
        return self._state

    @property
    def inverted(self) -> bool:
        """Polarity currently followed (True: the stream is complemented)."""
        return self._inverted

    @property
    def retained_bit(self) -> int:
        """Absolute bit position of the oldest bit still buffered: no CADU delivered from now
        on starts before it (receivers can forget per-octet state below it)."""
        return self._base

    def feed(self, data: bytes | bytearray | memoryview) -> list[SyncEvent]:
        """Add bytes of the stream; return the events they complete, in stream order."""
        return _expand(self.feed_batches(data))

    def feed_batches(self, data: bytes | bytearray | memoryview) -> list[SyncEvent | FrameBatch]:
        """Like :meth:`feed`, with runs of CADUs as :class:`FrameBatch` arrays."""
        if (self._state is SyncState.LOCK and self._held_first is None and self._fast_paths
                and self._unconfirmed is None and isinstance(data, bytes | bytearray)):
            fast = self._feed_next_cadu(bytes(data))
            if fast is not None:
                return fast
        self.stats.bits_in += self._append(data) * 8
        out: list[SyncEvent | FrameBatch] = []
        self._run(out, final=False)
        self._trim()
        return out

    def flush(self) -> list[SyncEvent]:
        """End of stream: decide the held flywheel CADUs (delivered, unless a marker inside
        their span shows them misaligned: then sync is lost and the rest searched), report the
        unused tail as skipped, and return to SEARCH with an empty buffer (bit offsets keep
        counting)."""
        return _expand(self.flush_batches())

    def flush_batches(self) -> list[SyncEvent | FrameBatch]:
        """Like :meth:`flush`, with :class:`FrameBatch` runs."""
        out: list[SyncEvent | FrameBatch] = []
        self._run(out, final=True)
        while self._held_first is not None or self._unconfirmed is not None:
            held = self._held_first is not None
            if held:
                # Held CADUs cannot be confirmed any more. A marker inside their span (or
                # inside the unconfirmed CADU before them) shows that they are misaligned:
                # drop them and search there, as a flywheel loss would.
                assert self._held_first is not None
                start = self._unconfirmed if self._unconfirmed is not None else self._held_first
                found = find_pattern(self._buf, start + 1, self.asm, 32, self.search_tolerance,
                                     detect_inverted=self.detect_inverted)
            elif self._marker_confirms(self._pos):
                found = None  # the stream goes on as predicted, only its CADU is cut short
            else:
                # The acquisition marker is unconfirmed and the stream ends within a CADU
                # after it: a marker with a whole CADU before the end shows it was false.
                assert self._unconfirmed is not None
                found = find_pattern(self._buf, self._unconfirmed + 1, self.asm, 32,
                                     self.search_tolerance, detect_inverted=self.detect_inverted,
                                     end_bit=self._buf.size * 8 - self._bits + 1)
            if found is not None:
                restart = self._held_first if self._held_first is not None else self._pos
                self._lose(out, restart)
                self._run(out, final=True)
            elif held:
                self._release_held(out)
                self._unconfirmed = None
            else:
                self._unconfirmed = None
        if self._state is not SyncState.SEARCH:
            self._skip_bits = 0  # (outside SEARCH nothing is being counted as skipped)
        self._skip_rest(out)
        self._state = SyncState.SEARCH
        self._misses = 0
        self._confirm = 0
        return out

    # -- internals -------------------------------------------------------------------------

    def _feed_next_cadu(self, data: bytes) -> list[SyncEvent | FrameBatch] | None:
        """Fast path of :meth:`feed_batches` for a locked stream fed CADU by CADU.

        Taken when the synchronizer is in LOCK with nothing held or unconfirmed, the
        predicted marker is octet-aligned and is the first octet of ``data`` (every octet
        still buffered lies before it: they are only the slip window), ``data`` holds one
        CADU but not two, and that marker is within ``lock_tolerance`` (current polarity).
        The general path would then check exactly this one marker, deliver exactly this
        CADU as a one-CADU :class:`FrameBatch` (nothing else fits in the rest of
        ``data``), and trim the buffer to the octets from ``_pos - slip_window`` on, all of
        which lie in ``data`` (the slip window is under half a CADU). This does the same
        with one integer compare and no realignment or concatenation of the buffer.
        Returns None (nothing done) when the case does not apply.
        """
        pos = self._pos
        n = self.cadu_length
        if pos & 7 or pos >> 3 != self._buf.size or not n <= len(data) < 2 * n:
            return None
        errors = ((int.from_bytes(data[:ASM_OCTETS], "big") ^ self.asm).bit_count())
        if self._inverted:
            errors = 32 - errors
        if errors > self.lock_tolerance:
            return None
        self.stats.bits_in += len(data) * 8
        cadus = np.frombuffer(data, dtype=np.uint8, count=n).reshape(1, n)  # read-only
        if self._inverted:
            cadus = cadus ^ np.uint8(0xFF)
        batch = FrameBatch(cadus, np.array([self._base + pos], dtype=np.int64),
                           np.array([errors], dtype=np.int64), self._inverted, True, False)
        self.stats.frames += 1
        self._misses = 0
        # _trim after the general path: keep the octets from (pos + L - slip_window) on
        end = pos + self._bits
        drop = (end - self.slip_window) >> 3
        kept = drop - self._buf.size  # the first octet of data kept
        self._buf = np.frombuffer(data[kept:], dtype=np.uint8)
        self._base += drop * 8
        self._pos = end - drop * 8
        return [batch]

    def _marker_confirms(self, pos: int) -> bool:
        """The marker at ``pos`` is there, within the lock tolerance (current polarity)."""
        word = self._marker_at(pos)
        if word is None:
            return False
        d = (word ^ self.asm).bit_count()
        return (32 - d if self._inverted else d) <= self.lock_tolerance

    def _marker_at(self, pos: int) -> int | None:
        """The 32-bit word at bit ``pos`` of the buffer, or None if outside it."""
        if pos < 0 or pos + 32 > self._buf.size * 8:
            return None
        return int.from_bytes(extract_octets(self._buf, pos, 4).tobytes(), "big")

    def _batch(
        self, out: list[SyncEvent | FrameBatch], pos: int, cadus: np.ndarray | None,
        count: int, errors: np.ndarray, *, locked: bool, flywheel: bool,
    ) -> None:
        """Append a :class:`FrameBatch` of ``count`` CADUs starting at bit ``pos`` (``cadus``:
        the already realigned ``[count, cadu_length]`` octets, or None to extract them)."""
        if cadus is None:
            cadus = extract_octets(self._buf, pos, count * self.cadu_length)
            cadus = cadus.reshape(count, self.cadu_length)
        if self._inverted:
            cadus = cadus ^ np.uint8(0xFF)
        elif cadus.base is not None and cadus.flags.writeable:
            cadus = cadus.view()  # a view of the receive buffer: hand it out read-only
            cadus.flags.writeable = False
        offsets = self._base + pos + self._bits * np.arange(count, dtype=np.int64)
        out.append(FrameBatch(cadus, offsets, np.asarray(errors, dtype=np.int64),
                              self._inverted, locked, flywheel))
        self.stats.frames += count
        if flywheel:
            self.stats.flywheel_frames += count

    def _release_held(self, out: list[SyncEvent | FrameBatch]) -> None:
        assert self._held_first is not None
        errors = np.array(self._held_errors, dtype=np.int64)
        self._batch(out, self._held_first, None, len(self._held_errors), errors,
                    locked=self._state is SyncState.LOCK, flywheel=True)
        self._held_first = None
        self._held_errors = []

    def _run(self, out: list[SyncEvent | FrameBatch], *, final: bool) -> None:
        L = self._bits  # noqa: N806 - CADU length in bits
        w = self.slip_window
        asm = self.asm
        while True:
            total = self._buf.size * 8
            if self._state is SyncState.SEARCH:
                found = self._search(out, asm, 32, self.search_tolerance)
                if found is None:
                    return
                p, inverted = found
                self._pos = p
                self._inverted = inverted
                self._state = SyncState.CHECK
                self._confirm = -1
                self._misses = 0
                self._unconfirmed = p
                continue

            # CHECK / LOCK: a CADU is predicted at self._pos
            pos = self._pos
            avail = total - pos
            if avail < L:
                return
            m = avail // L
            if self._state is SyncState.CHECK:
                m = min(m, self.check_count - self._confirm) if self._confirm >= 0 else 1
                m = max(m, 1)
            block = extract_octets(self._buf, pos, m * self.cadu_length)
            block = block.reshape(m, self.cadu_length)
            words = np.ascontiguousarray(block[:, :ASM_OCTETS]).view(">u4").ravel()
            dist = np.bitwise_count(words ^ np.uint32(asm)).astype(np.int64)
            if self._inverted:
                dist = 32 - dist
            bad = np.flatnonzero(dist > self.lock_tolerance)
            k = int(bad[0]) if bad.size else m
            if k:
                if self._unconfirmed is not None and pos != self._unconfirmed:
                    self._unconfirmed = None  # a second marker where predicted
                if self._held_first is not None:
                    self._release_held(out)
                self._batch(out, pos, block[:k], k, dist[:k],
                            locked=self._state is SyncState.LOCK, flywheel=False)
                self._pos = pos + k * L
                self._misses = 0
                if self._state is SyncState.CHECK:
                    self._confirm += k
                    if self._confirm >= self.check_count:
                        self._state = SyncState.LOCK
                        self.stats.locks += 1
                        out.append(SyncLocked(self._base + pos + (k - 1) * L, self._inverted))
                continue

            # the marker at `pos` is missing
            if not final and avail < L + w:
                return
            if self._miss(out, pos, final=final):
                continue
            return

    def _miss(self, out: list[SyncEvent | FrameBatch], pos: int, *, final: bool) -> bool:
        """Handle a missing marker at ``pos``; return True to keep processing."""
        L = self._bits  # noqa: N806
        tol = self.lock_tolerance
        total = self._buf.size * 8
        word = self._marker_at(pos)
        assert word is not None
        # 1. a 180° phase slip: the other polarity is there
        if self.detect_inverted:
            d = (word ^ self.asm).bit_count()
            other = d if self._inverted else 32 - d
            if other <= tol:
                self._inverted = not self._inverted
                return True
        # 2. a bit slip within the window, nearest first
        best: tuple[int, int, int, bool] | None = None
        for s in range(-self.slip_window, self.slip_window + 1):
            if s == 0 or pos + s + (L if not final else 32) > total:
                continue
            cand = self._marker_at(pos + s)
            if cand is None:
                continue
            d = (cand ^ self.asm).bit_count()
            for inv, dd in ((self._inverted, 32 - d if self._inverted else d),
                            (not self._inverted, d if self._inverted else 32 - d)):
                if inv != self._inverted and not self.detect_inverted:
                    continue
                if dd <= tol:
                    key = (abs(s), dd, s, inv)
                    if best is None or key < best:
                        best = key
        if best is not None:
            _, _, s, inv = best
            self._inverted = inv
            self._pos = pos + s
            self.stats.slips += 1
            self.stats.slip_bits += s
            out.append(Slip(s, self._base + pos + s))
            return True
        # 3. flywheel
        if self._state is SyncState.LOCK and self._misses < self.flywheel:
            if self._held_first is None:
                self._held_first = pos
            d = (word ^ self.asm).bit_count()
            self._held_errors.append(32 - d if self._inverted else d)
            self._misses += 1
            self._pos = pos + L
            return True
        # 4. sync lost: search again from the first CADU not delivered (or right after an
        # unconfirmed marker, see _lose)
        self._lose(out, self._held_first if self._held_first is not None else pos)
        return True

    def _lose(self, out: list[SyncEvent | FrameBatch], restart: int) -> None:
        """Back to SEARCH at ``restart``, dropping the held flywheel CADUs.

        If the marker SEARCH found was never confirmed, it was most likely a false marker in
        garbage and the real stream may begin less than a CADU after it: the search restarts
        right after that marker instead, re-using the bits of its (delivered) CADU.
        """
        discarded = len(self._held_errors)
        reused = 0
        if self._unconfirmed is not None:
            restart = self._unconfirmed + 1
            reused = self._bits - 1
            self.stats.false_markers += 1
            self.stats.reused_bits += reused
            self._unconfirmed = None
        out.append(SyncLost(self._base + restart, self._state is SyncState.LOCK, discarded,
                            reused))
        self.stats.sync_losses += 1
        self.stats.discarded_frames += discarded
        self._held_first = None
        self._held_errors = []
        self._state = SyncState.SEARCH
        self._misses = 0
        self._pos = restart
        self._skip_bits = 0

    def _trim(self) -> None:
        """Drop the octets no longer needed (keeps the slip window and held CADUs)."""
        if self._state is SyncState.SEARCH:
            keep = self._pos
        else:
            keep = self._pos - self.slip_window
            if self._held_first is not None:
                keep = min(keep, self._held_first)
            if self._unconfirmed is not None:
                keep = min(keep, self._unconfirmed + 1)
        drop = max(0, keep) // 8
        if drop:
            self._buf = self._buf[drop:]
            self._base += drop * 8
            self._pos -= drop * 8
            if self._held_first is not None:
                self._held_first -= drop * 8
            if self._unconfirmed is not None:
                self._unconfirmed -= drop * 8


def _expand(items: list[SyncEvent | FrameBatch]) -> list[SyncEvent]:
    out: list[SyncEvent] = []
    for item in items:
        if isinstance(item, FrameBatch):
            out.extend(item.events())
        else:
            out.append(item)
    return out
