"""Communications Link Transmission Units, CCSDS 231.0-B-3 §4 (TC synchronization).

A CLTU is the 16-bit start sequence ``EB90``, the BCH(63,56) codeblocks of one transfer
frame (:mod:`linkstack.codecs.bch`; the last codeblock filled with ``0x55`` octets) and the
8-octet tail sequence ``C5C5C5C5C5C5C579`` (231.0-B-3 §4, specs/sources.md §1.8/§1.9). When the
TC randomizer (231.0-B-3 §6) is in use, it is applied to the frame *before* BCH encoding, and
the fill is added after it (so the fill is not randomized).

Decoding follows the receiving procedure of 231.0-B-3 §4:

1. SEARCH the bit stream, at any bit offset, for the start sequence (``start_tolerance``
   bit errors, default 0; optionally its complement, for an inverted stream).
2. DECODE codeblock after codeblock in the selected :class:`~linkstack.codecs.bch.BchMode`
   (error detection, or single-error correction), delivering the information octets of every
   accepted codeblock.
3. The first codeblock that is *rejected* ends the CLTU and the decoder returns to SEARCH. The
   tail sequence is such a codeblock by design: its syndrome is the one odd syndrome that no
   single error produces, so it is rejected in both modes, and it still is with one bit error.
   A rejected codeblock within one bit of the tail is reported as the tail (``complete``);
   any other rejected codeblock is an uncorrectable error (``rejected = 1``).

Decision on partial CLTUs (231.0-B-3 §4 hands the data of the accepted codeblocks to the
frame layer, which uses the frame length field): :class:`CltuDecodeResult` carries the
accepted octets with ``complete``/``end_reason``/``rejected`` saying how the CLTU ended;
nothing is hidden. :class:`~linkstack.codecs.chain.CodingChain` delivers a TC frame from an
incomplete CLTU only when its Frame Length field (232.0-B-3 §4.1.2) places the whole frame
inside the codeblocks that were accepted — the octets of a rejected codeblock are never
delivered. One CLTU carries one transfer frame.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np

from linkstack.codecs import bch
from linkstack.codecs.asm import MarkerScanner, SearchSkipped, extract_octets
from linkstack.codecs.bch import CODEBLOCK_OCTETS, INFO_OCTETS, BchMode
from linkstack.codecs.randomizer import TC_RANDOMIZER
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError

__all__ = [
    "MAX_CODEBLOCKS",
    "START_SEQUENCE",
    "TAIL_SEQUENCE",
    "CltuDecodeResult",
    "CltuDecoded",
    "CltuDecoder",
    "CltuEvent",
    "CltuStats",
    "EndReason",
    "cltu_length",
    "decode_cltu",
    "encode_cltu",
]

START_SEQUENCE = bytes.fromhex("EB90")
"""CLTU start sequence, 231.0-B-3 §4 (specs/sources.md §1.8)."""
TAIL_SEQUENCE = bytes.fromhex("C5C5C5C5C5C5C579")
"""CLTU tail sequence, 231.0-B-3 §4 (specs/sources.md §1.8)."""

_START = 0xEB90
_TAIL_ARRAY = np.frombuffer(TAIL_SEQUENCE, dtype=np.uint8)
_TAIL_INT = int.from_bytes(TAIL_SEQUENCE, "big")
_INVERT = bytes(0xFF ^ x for x in range(256))
"""``bytes.translate`` table complementing every octet (an inverted stream)."""
_ERROR_POSITION = tuple(int(bch.SINGLE_ERROR_POSITION[s >> 1]) for s in range(256))
"""Left-aligned syndrome octet (:func:`~linkstack.codecs.bch.syndrome_octets`) → bit
position of the single error, -1 if none: :data:`~linkstack.codecs.bch.SINGLE_ERROR_POSITION`."""
_NONZERO = re.compile(b"[^\x00]")
TAIL_TOLERANCE = 1
"""A rejected codeblock this close (in bits) to the tail sequence is taken as the tail."""

MAX_CODEBLOCKS = -(-1024 // INFO_OCTETS)
"""Codeblocks of the longest TC frame (1024 octets, 232.0-B-3 §4.1.2): 147."""


class EndReason(enum.StrEnum):
    """How a CLTU ended."""

    TAIL = "tail"  # the tail sequence: complete
    UNCORRECTABLE = "uncorrectable"  # a codeblock (not the tail) was rejected
    TOO_LONG = "too_long"  # max_codeblocks accepted and still no tail
    TRUNCATED = "truncated"  # the input ended first


@dataclass(frozen=True, slots=True)
class CltuDecodeResult:
    """One decoded CLTU.

    Attributes:
        frame_data: information octets of the accepted codeblocks, in order, de-randomized
            when the decoder was asked to; the fill of the last codeblock is included (the TC
            frame length field says where the frame ends).
        codeblocks: accepted codeblocks (the tail and a rejected codeblock not counted).
        corrected: accepted codeblocks in which one bit error was corrected.
        rejected: 1 when the CLTU ended on an uncorrectable codeblock, else 0.
        end_reason: :class:`EndReason`.
        octets: CLTU length on the wire in octets, start sequence to the codeblock that ended
            it (tail or rejected codeblock) inclusive.
    """

    frame_data: bytes
    codeblocks: int
    corrected: int
    rejected: int
    end_reason: EndReason
    octets: int

    @property
    def complete(self) -> bool:
        """The CLTU ended with its tail sequence."""
        return self.end_reason is EndReason.TAIL


def cltu_length(frame_length: int) -> int:
    """Octets of the CLTU carrying a ``frame_length``-octet frame: 2 + 8·⌈n/7⌉ + 8."""
    return len(START_SEQUENCE) + CODEBLOCK_OCTETS * -(-frame_length // INFO_OCTETS) + len(
        TAIL_SEQUENCE
    )


def encode_cltu(frame: bytes, *, randomize: bool = False) -> bytes:
    """The CLTU of one transfer frame (231.0-B-3 §4); ``randomize`` applies the TC
    randomizer to the frame before BCH encoding (231.0-B-3 §6)."""
    if not frame:
        raise EncodeError("a CLTU carries at least one octet", layer="cltu", field="frame")
    data = TC_RANDOMIZER.apply(frame) if randomize else bytes(frame)
    return START_SEQUENCE + bch.encode(data) + TAIL_SEQUENCE


class _Assembler:
    """Accumulates the codeblocks of one CLTU (shared by the one-shot and stream decoders)."""

    __slots__ = ("chunks", "codeblocks", "corrected")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.codeblocks = 0
        self.corrected = 0

    def take(
        self, blocks: np.ndarray, mode: BchMode, limit: int
    ) -> tuple[int, EndReason | None]:
        """Decode ``blocks[m, 8]``; return (codeblocks consumed, end reason or None).

        The codeblock that ends the CLTU (tail / rejected) counts as consumed.
        """
        if blocks.shape[0] <= bch.SMALL_BATCH:
            return self.take_octets(blocks.tobytes(), blocks.shape[0], mode, limit)
        m = min(blocks.shape[0], limit - self.codeblocks + 1)
        blocks = blocks[:m]
        res = bch.decode_array(blocks, mode)
        bad = np.flatnonzero(res.rejected)
        k = int(bad[0]) if bad.size else m
        k = min(k, limit - self.codeblocks)
        if k:
            self.chunks.append(res.info[:k].tobytes())
            self.codeblocks += k
            self.corrected += int(res.corrected[:k].sum())
        if k < m and res.rejected[k]:
            tail_errors = int(np.bitwise_count(blocks[k] ^ _TAIL_ARRAY).sum())
            if tail_errors <= TAIL_TOLERANCE:
                return k + 1, EndReason.TAIL
            return k + 1, EndReason.UNCORRECTABLE
        if self.codeblocks >= limit and k < m:
            return k, EndReason.TOO_LONG
        return k, None

    def take_octets(
        self, raw: bytes, m: int, mode: BchMode, limit: int
    ) -> tuple[int, EndReason | None]:
        """:meth:`take` of the ``m`` codeblocks in ``raw`` (``8·m`` octets), on ``bytes``.

        For a CLTU's few dozen codeblocks numpy's fixed cost per call dominates, so the
        syndromes come from :func:`~linkstack.codecs.bch.syndrome_octets` (a fixed number of
        ``bytes`` operations) and only the codeblocks with a non-zero syndrome are looked at,
        in order. The decisions are those of :func:`~linkstack.codecs.bch.decode_array`
        (231.0-B-3 §3): a zero syndrome accepts; in CORRECT mode a single-error syndrome
        corrects (flips the bit when it is an information bit), any other rejects; in
        DETECT mode any non-zero syndrome rejects. The first rejected codeblock ends the
        CLTU, as in :meth:`take`.
        """
        room = limit - self.codeblocks
        m = min(m, room + 1)
        syndromes = bch.syndrome_octets(raw[: m * CODEBLOCK_OCTETS]) if m > 0 else b""
        rejected = m  # first rejected codeblock
        corrected = 0
        fixes: list[tuple[int, int]] = []
        for hit in _NONZERO.finditer(syndromes):
            i = hit.start()
            position = -1 if mode is BchMode.DETECT else _ERROR_POSITION[syndromes[i]]
            if position < 0:
                rejected = i
                break
            if i < room:
                corrected += 1
                if position < INFO_OCTETS * 8:
                    fixes.append((i, position))
        k = min(rejected, room)
        if k:
            info = np.frombuffer(raw, dtype=np.uint8, count=k * CODEBLOCK_OCTETS)
            info = info.reshape(k, CODEBLOCK_OCTETS)[:, :INFO_OCTETS]
            if fixes:
                info = info.copy()
                for i, position in fixes:
                    info[i, position >> 3] ^= 0x80 >> (position & 7)
            self.chunks.append(info.tobytes())
            self.codeblocks += k
            self.corrected += corrected
        if k < m and k == rejected:
            end = raw[k * CODEBLOCK_OCTETS : (k + 1) * CODEBLOCK_OCTETS]
            if (int.from_bytes(end, "big") ^ _TAIL_INT).bit_count() <= TAIL_TOLERANCE:
                return k + 1, EndReason.TAIL
            return k + 1, EndReason.UNCORRECTABLE
        if self.codeblocks >= limit and k < m:
            return k, EndReason.TOO_LONG
        return k, None

    def result(self, reason: EndReason, derandomize: bool, octets: int) -> CltuDecodeResult:
        data = b"".join(self.chunks)
        if derandomize and data:
            data = TC_RANDOMIZER.apply(data)
        rejected = 1 if reason is EndReason.UNCORRECTABLE else 0
        return CltuDecodeResult(data, self.codeblocks, self.corrected, rejected, reason, octets)


def decode_cltu(
    cltu: bytes,
    *,
    mode: BchMode | str = BchMode.CORRECT,
    derandomize: bool = False,
    max_codeblocks: int = MAX_CODEBLOCKS,
) -> CltuDecodeResult:
    """Decode one CLTU that starts at octet 0 of ``cltu`` (231.0-B-3 §4).

    Octets after the codeblock that ends the CLTU are ignored (``result.octets`` says how many
    were used). Raises :class:`DecodeError` (field ``start_sequence``) when ``cltu`` does not
    begin with ``EB90`` and :class:`TruncatedError` (field ``tail_sequence``) when it ends
    before a tail or rejected codeblock. A CLTU ended by an uncorrectable codeblock is
    *returned*, with ``rejected == 1`` and ``complete`` False.
    """
    mode = BchMode(mode)
    buf = bytes(cltu)
    if len(buf) < 2:
        raise TruncatedError(f"{len(buf)} octets cannot hold the start sequence",
                             layer="cltu", field="start_sequence", offset=0)
    if buf[:2] != START_SEQUENCE:
        raise DecodeError(f"start sequence is {buf[:2].hex()}, expected eb90",
                          layer="cltu", field="start_sequence", offset=0)
    body = buf[2:]
    m = len(body) // CODEBLOCK_OCTETS
    blocks = np.frombuffer(body, dtype=np.uint8, count=m * CODEBLOCK_OCTETS)
    asm = _Assembler()
    used, reason = asm.take(blocks.reshape(m, CODEBLOCK_OCTETS), mode, max_codeblocks)
    if reason is None:
        raise TruncatedError(
            f"no tail sequence after {asm.codeblocks} codeblocks",
            layer="cltu", field="tail_sequence", offset=2 + used * CODEBLOCK_OCTETS,
        )
    return asm.result(reason, derandomize, 2 + used * CODEBLOCK_OCTETS)


@dataclass(frozen=True, slots=True)
class CltuDecoded:
    """A CLTU found in the stream: its start sequence began at absolute ``bit_offset``."""

    result: CltuDecodeResult
    bit_offset: int
    inverted: bool = False


CltuEvent = CltuDecoded | SearchSkipped


@dataclass(slots=True)
class CltuStats:
    """Counters since construction."""

    cltus: int = 0
    complete: int = 0
    codeblocks: int = 0
    corrected: int = 0
    rejected: int = 0
    skipped_bits: int = 0


class _State(enum.Enum):
    SEARCH = 0
    DECODE = 1


class CltuDecoder(MarkerScanner):
    """Sans-IO CLTU receiver over a bit stream (231.0-B-3 §4): feed bytes, get events.

    Args:
        mode: BCH decoding mode (:class:`BchMode` or ``"correct"``/``"detect"``).
        derandomize: apply the TC randomizer to the decoded data (231.0-B-3 §6).
        start_tolerance: bit errors accepted in the 16-bit start sequence (default 0).
        detect_inverted: also accept the complemented start sequence and re-invert the CLTU.
        max_codeblocks: a CLTU with this many accepted codeblocks and no tail is ended
            (``too_long``); default 147, the longest TC frame.

    A start sequence right where the search resumes is taken without the vectorized scan
    (:meth:`_start_here`), and up to :data:`~linkstack.codecs.bch.SMALL_BATCH` codeblocks
    are decoded on ``bytes`` (:meth:`_Assembler.take_octets`): the same events and counters.
    ``_fast_paths = False`` (tests) turns the first off; the second follows the threshold.
    """

    _fast_paths: bool = True

    def __init__(
        self,
        *,
        mode: BchMode | str = BchMode.CORRECT,
        derandomize: bool = False,
        start_tolerance: int = 0,
        detect_inverted: bool = False,
        max_codeblocks: int = MAX_CODEBLOCKS,
    ) -> None:
        try:
            self.mode = BchMode(mode)
        except ValueError:
            raise ConfigError(f"unknown BCH mode {mode!r} (detect, correct)",
                              key="mode") from None
        if not 0 <= start_tolerance <= 3:
            raise ConfigError("must be 0..3", key="start_tolerance")
        if max_codeblocks < 1:
            raise ConfigError("must be >= 1", key="max_codeblocks")
        self.derandomize = derandomize
        self.start_tolerance = start_tolerance
        self.detect_inverted = detect_inverted
        self.max_codeblocks = max_codeblocks
        self.stats = CltuStats()
        super().__init__()
        self._state = _State.SEARCH
        self._inverted = False
        self._start = 0  # start sequence position of the CLTU being decoded
        self._asm = _Assembler()

    def feed(self, data: bytes | bytearray | memoryview) -> list[CltuEvent]:
        """Add bytes of the stream; return the CLTUs and skips they complete."""
        self._append(data)
        out: list[CltuEvent] = []
        self._run(out)
        self._trim()
        return out

    def flush(self) -> list[CltuEvent]:
        """End of stream: a CLTU being decoded ends as ``truncated``; the rest is skipped."""
        out: list[CltuEvent] = []
        self._run(out)
        if self._state is _State.DECODE:
            octets = (self._pos - self._start) // 8
            self._finish(out, EndReason.TRUNCATED, octets)
        self._skip_rest(out)
        return out

    def _finish(self, out: list[CltuEvent], reason: EndReason, octets: int) -> None:
        result = self._asm.result(reason, self.derandomize, octets)
        out.append(CltuDecoded(result, self._base + self._start, self._inverted))
        st = self.stats
        st.cltus += 1
        st.complete += result.complete
        st.codeblocks += result.codeblocks
        st.corrected += result.corrected
        st.rejected += result.rejected
        self._asm = _Assembler()
        self._state = _State.SEARCH

    def _run(self, out: list[CltuEvent]) -> None:
        block_bits = CODEBLOCK_OCTETS * 8
        while True:
            total = self._buf.size * 8
            if self._state is _State.SEARCH:
                found = self._start_here() if self._fast_paths else None
                if found is None:
                    found = self._search(out, _START, 16, self.start_tolerance)
                    if found is None:
                        return
                else:
                    self._emit_skip(out)
                p, inverted = found
                self._start = p
                self._inverted = inverted
                self._pos = p + 16
                self._state = _State.DECODE
                continue
            m = (total - self._pos) // block_bits
            if m == 0:
                return
            m = min(m, self.max_codeblocks - self._asm.codeblocks + 1)
            blocks = extract_octets(self._buf, self._pos, m * CODEBLOCK_OCTETS)
            if m <= bch.SMALL_BATCH:
                raw = blocks.tobytes()
                if self._inverted:
                    raw = raw.translate(_INVERT)
                used, reason = self._asm.take_octets(raw, m, self.mode, self.max_codeblocks)
            else:
                if self._inverted:
                    blocks = blocks ^ np.uint8(0xFF)
                used, reason = self._asm.take(blocks.reshape(m, CODEBLOCK_OCTETS), self.mode,
                                              self.max_codeblocks)
            if reason is EndReason.UNCORRECTABLE:
                # search again from the rejected codeblock: a new start sequence may be in it
                self._pos += (used - 1) * block_bits
                self._finish(out, reason, (self._pos - self._start) // 8 + CODEBLOCK_OCTETS)
            else:
                self._pos += used * block_bits
                if reason is not None:
                    self._finish(out, reason, (self._pos - self._start) // 8)

    def _start_here(self) -> tuple[int, bool] | None:
        """SEARCH fast path: the start sequence, exact and upright, octet-aligned at
        ``_pos`` (a CLTU fed right after the previous one).

        :func:`~linkstack.codecs.asm.find_pattern` tests the positions from ``_pos`` on and
        returns the first within tolerance (a clean match is within any tolerance and is
        not taken as inverted), so it would return ``_pos`` itself, not inverted, with no
        bit skipped: the same as :meth:`_search` minus its vectorized window scan. Returns
        None when the case does not apply (then :meth:`_search` runs).
        """
        pos = self._pos
        q = pos >> 3
        if pos & 7 or q + 2 > self._buf.size:
            return None
        if self._buf[q] != 0xEB or self._buf[q + 1] != 0x90:
            return None
        self._skip(0)  # opens a skip run at _pos if none is open, as _search does
        return pos, False

    def _trim(self) -> None:
        drop = max(0, self._pos) // 8
        if drop:
            self._buf = self._buf[drop:]
            self._base += drop * 8
            self._pos -= drop * 8
            self._start -= drop * 8
