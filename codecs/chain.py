"""Coding chains: transfer frames to CADUs or CLTUs and back, configured by name.

TM (CCSDS 131.0-B-3, with the CADU of 132.0-B-3): frame → Reed-Solomon codeblock (§4,
optional) → pseudo-randomizer (§9, optional) → ASM (§8) in front = CADU. The receiver is the
reverse, vectorized: :class:`~linkstack.codecs.asm.FrameSynchronizer` hands over runs of
CADUs as arrays, which are de-randomized with one XOR and RS-decoded with one
``decode_many`` call.

TC (CCSDS 231.0-B-3): frame → TC randomizer (§6, optional) → BCH codeblocks (§3) → CLTU
(§4). A CLTU carries a TC Transfer Frame or a (non-truncated) USLP Transfer Frame (231.0-B-4
§1: the TC coding layer serves both; the Transfer Frame Version Number, 0 or 12, tells them
apart). The receiver finds CLTUs in the bit stream and takes the frame out of the decoded data
with the frame's own length field (TC, 232.0-B-3 §4.1.2: 10 bits in octets 2-3; USLP,
732.1-B-2 §4.1.2.7: 16 bits in octets 4-5; value + 1); see :mod:`linkstack.codecs.cltu` for
what happens to partial CLTUs.  USLP frames longer than 1029 octets need the receiver's
``max_codeblocks`` raised to ⌈length / 7⌉.

Chain names (case-insensitive, parts separated by ``-``):

===========================  ==================================================================
``tm-rs-255-223-i5``         RS(255,223), E = 16, interleaving depth 5, randomized, dual basis
``tm-rs-255-239-i1``         RS(255,239), E = 8, depth 1
``tm-rs-255-223-i4-q10``     ... with virtual fill Q = 10 (frame = I·(k - Q) octets)
``tm-uncoded``               ASM + randomizer, no RS (needs ``frame_length=``)
``tc-bch``                   CLTU, BCH(63,56), no randomizer
``tc-bch-rand``              CLTU with the TC randomizer
===========================  ==================================================================

Without RS (``tm-uncoded``) nothing can check a codeblock, so every CADU the synchronizer
delivers becomes a :class:`FrameDecoded` (a false acquisition included), unless the chain checks
the FECF (below). With RS, a codeblock that fails any codeword is a :class:`CodedUnitRejected` and
its octets are never delivered as a frame.

**FECF check** (part ``fecf``, CRC-16, or ``fecf32``, the 32-bit USLP FECF; override
``fecf=True`` / ``2`` / ``4``): every frame that comes out of the decoder must end with a correct
Frame Error Control Field (:mod:`linkstack.codecs.crc`: the CRC over the whole frame is zero),
or it is a :class:`CodedUnitRejected` and counted in ``ChainStats.fecf_failures``. RS alone can
pass a false frame: after a false ASM k octets (less than one CADU) before the real stream, the
false CADU's codeblock is the real one slipped by k octets. Without virtual fill each of its
codewords is then a cyclic shift of a received codeword with about k/I symbols replaced, and
the code is cyclic: without the randomizer the false CADU "decodes" with about k/I corrections
per codeword whenever that is at most E; with the randomizer too wherever each codeword's share
of the randomizer sequence is itself a codeword, which holds (checked) for I = 1, 2, 4 and 8,
and I = 5 with E = 8, but not for I = 3, or I = 5 with E = 16. The FECF rejects such a frame
(it passes with probability 2^-16 with CRC-16). Only for links whose frames carry an FECF.

**Erasures** (TM with RS): :meth:`ChainDecoder.feed` takes the offsets of the fed octets the
channel marked lost; a codeblock octet is erased when any of its bits came from such an
octet, and Reed-Solomon decodes errors and erasures (2·errors + erasures ≤ 2E per codeword). A
frame of an uncoded chain with erased octets is rejected.

Extra parts: ``norand`` / ``rand`` (randomizer off / on), ``conv`` / ``dual`` (RS symbol basis),
``detect`` / ``correct`` (BCH decoder mode), ``fecf`` / ``fecf32``. Keyword overrides of
:meth:`CodingChain.from_name`: ``randomize``, ``dual_basis``, ``interleave``, ``virtual_fill``,
``frame_length`` (TM; for RS it must equal I·(k - Q), or it sets Q when the name gives none),
``bch_mode``, ``fecf``, and the receiver's ``search_tolerance``, ``lock_tolerance``,
``check_count``, ``flywheel``, ``slip_window``, ``detect_inverted`` (TM), ``start_tolerance``,
``max_codeblocks``, ``detect_inverted`` (TC).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from linkstack.codecs.asm import (
    ASM_BYTES,
    ASM_OCTETS,
    FrameBatch,
    FrameSynchronizer,
    SearchSkipped,
    Slip,
    SyncLocked,
    SyncLost,
    attach_asm_array,
)
from linkstack.codecs.bch import BchMode
from linkstack.codecs.cltu import (
    MAX_CODEBLOCKS,
    CltuDecoded,
    CltuDecoder,
    cltu_length,
    encode_cltu,
)
from linkstack.codecs.crc import FECF_SIZES, crc16_ccitt, crc32_proximity1
from linkstack.codecs.randomizer import TM_RANDOMIZER
from linkstack.codecs.rs import INTERLEAVE_DEPTHS, ReedSolomon
from linkstack.errors import ConfigError, EncodeError

__all__ = [
    "ChainDecoder",
    "ChainEvent",
    "ChainStats",
    "CodedUnitRejected",
    "CodingChain",
    "FrameDecoded",
]

TC_MAX_FRAME_LENGTH = 1024
"""232.0-B-3 §4.1.2: the 10-bit Frame Length field (specs/sources.md §1.2)."""
TC_HEADER_OCTETS = 5
USLP_MAX_FRAME_LENGTH = 65536
"""732.1-B-2 §4.1.2.7: the 16-bit Frame Length field (specs/sources.md §1.6)."""
USLP_HEADER_OCTETS = 7
"""The non-truncated USLP primary header without VC Frame Count: where its length field ends."""

_TM_SYNC_KEYS = ("search_tolerance", "lock_tolerance", "check_count", "flywheel", "slip_window",
                 "detect_inverted")
_TC_SYNC_KEYS = ("start_tolerance", "max_codeblocks", "detect_inverted")
_INT_KEYS = ("interleave", "virtual_fill", "frame_length", "search_tolerance", "lock_tolerance",
             "check_count", "flywheel", "slip_window", "start_tolerance", "max_codeblocks")
_BOOL_KEYS = ("randomize", "dual_basis", "detect_inverted")


# --------------------------------------------------------------------------------------------
# Events and statistics


@dataclass(frozen=True, slots=True)
class FrameDecoded:
    """A transfer frame recovered from the stream.

    Attributes:
        frame: the transfer frame octets.
        corrected: RS symbols (TM) or BCH bits (TC) corrected in it.
        bit_offset: absolute bit position of its ASM / CLTU start sequence in the stream.
        marker_errors: bit errors in the ASM (TM; 0 for TC).
        flywheel: TM: delivered by the flywheel (its ASM was missing).
        inverted: the stream had inverted polarity there.
        corrected_per_codeword: TM with RS: symbols corrected in each of the I codewords.
    """

    frame: bytes
    corrected: int
    bit_offset: int
    marker_errors: int = 0
    flywheel: bool = False
    inverted: bool = False
    corrected_per_codeword: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CodedUnitRejected:
    """A CADU / CLTU was found but no trustworthy frame came out of it.

    ``data`` is what was received (de-randomized), for diagnostics only: it is *not* a frame.
    ``failed_codewords`` lists the uncorrectable RS codewords (TM).
    """

    reason: str
    bit_offset: int
    data: bytes = b""
    failed_codewords: tuple[int, ...] = ()


ChainEvent = FrameDecoded | CodedUnitRejected | SyncLocked | SyncLost | Slip | SearchSkipped


@dataclass(frozen=True, slots=True)
class ChainStats:
    """Receiver counters: frames delivered, symbols (TM) / bits (TC) corrected, frames
    rejected (``failures``, all reasons), bit slips, octets skipped while searching,
    synchronization losses; ``fecf_failures``: of the rejected, those that failed the FECF
    check; ``false_markers``: acquisitions never confirmed (the search resumed right after
    the marker); ``erased_octets``: codeblock octets decoded as erasures (TM)."""

    frames: int
    corrected_symbols: int
    failures: int
    slips: int
    skipped_octets: int
    sync_losses: int = 0
    skipped_bits: int = 0
    fecf_failures: int = 0
    false_markers: int = 0
    erased_octets: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# --------------------------------------------------------------------------------------------
# Configuration


def _fail(part: str, name: str, reason: str) -> ConfigError:
    return ConfigError(f"{reason} (in chain name {name!r})", key=part)


_FECF_PARTS = {"fecf": 2, "fecf32": 4}


def _fecf_size(value: Any) -> int:
    """The ``fecf`` override: True (CRC-16), False, or an FECF size 0, 2, 4."""
    if isinstance(value, bool):
        return 2 if value else 0
    if isinstance(value, int) and value in (0, *FECF_SIZES):
        return value
    raise ConfigError(f"must be True, False, 0, 2 or 4 (FECF octets), not {value!r}",
                      key="fecf")


@dataclass(frozen=True)
class CodingChain:
    """One configured coding chain; build it with :meth:`from_name`.

    ``frame_length`` is the fixed TM frame length (octets per codeblock), None for TC;
    ``fecf`` the size of the FECF the receiver checks (0: none, 2: CRC-16, 4: CRC-32).
    """

    name: str
    kind: Literal["tm", "tc"]
    randomize: bool
    frame_length: int | None
    rs: ReedSolomon | None = field(default=None, compare=False)  # the name says it all
    bch_mode: BchMode = BchMode.CORRECT
    receiver: dict[str, Any] = field(default_factory=dict, hash=False)
    fecf: int = 0

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> CodingChain:
        """Build the chain ``name`` (see the module docstring), with keyword overrides.

        Raises :class:`ConfigError` whose ``key`` is the bad part of the name or the bad
        override.
        """
        parts = name.strip().lower().split("-")
        for key, value in overrides.items():
            if key in _BOOL_KEYS and not isinstance(value, bool):
                raise ConfigError(f"must be True or False, not {value!r}", key=key)
            if key in _INT_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"must be an integer, not {value!r}", key=key)
        # the FECF parts are the same for every chain: take them out here
        fecf: int | None = None
        for part in [p for p in parts[1:] if p in _FECF_PARTS]:
            if fecf is not None:
                raise _fail(part, name, "the FECF is given twice")
            fecf = _FECF_PARTS[part]
            parts.remove(part)
        if "fecf" in overrides:
            fecf = _fecf_size(overrides.pop("fecf"))
        if parts[0] == "tm":
            chain = cls._tm(name, parts[1:], dict(overrides))
        elif parts[0] == "tc":
            chain = cls._tc(name, parts[1:], dict(overrides))
        else:
            raise _fail(parts[0], name, "a chain name starts with 'tm' or 'tc'")
        if not fecf:
            return chain
        if chain.frame_length is not None and chain.frame_length <= fecf:
            raise ConfigError(f"a {chain.frame_length}-octet frame cannot end with a "
                              f"{fecf}-octet FECF", key="fecf")
        suffix = "-fecf" if fecf == 2 else "-fecf32"
        return dataclasses.replace(chain, name=chain.name + suffix, fecf=fecf)

    @classmethod
    def _flags(cls, name: str, parts: list[str], allowed: dict[str, tuple[str, Any]]
               ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for part in parts:
            if part not in allowed:
                raise _fail(part, name, f"unknown part {part!r}; expected one of "
                            f"{', '.join(sorted(allowed))}")
            key, value = allowed[part]
            if key in found:
                raise _fail(part, name, f"{key} given twice")
            found[key] = value
        return found

    @classmethod
    def _tm(cls, name: str, parts: list[str], ov: dict[str, Any]) -> CodingChain:
        flags = {"rand": ("randomize", True), "norand": ("randomize", False),
                 "dual": ("dual_basis", True), "conv": ("dual_basis", False)}
        receiver = {k: ov.pop(k) for k in _TM_SYNC_KEYS if k in ov}
        if not parts:
            raise _fail("tm", name, "expected 'tm-rs-...' or 'tm-uncoded'")
        if parts[0] == "uncoded":
            found = cls._flags(name, parts[1:], {k: v for k, v in flags.items()
                                                  if v[0] == "randomize"})
            randomize = ov.pop("randomize", found.get("randomize", True))
            frame_length = ov.pop("frame_length", None)
            for key in ov:
                raise ConfigError(f"not an option of an uncoded TM chain ({name!r})", key=key)
            if frame_length is None:
                raise ConfigError("an uncoded TM chain needs frame_length=", key="frame_length")
            if not 1 <= frame_length <= 65536:
                raise ConfigError(f"{frame_length} is not a TM frame length",
                                  key="frame_length")
            canonical = "tm-uncoded" + ("" if randomize else "-norand")
            chain = cls(canonical, "tm", randomize, frame_length, None, BchMode.CORRECT,
                        receiver)
        elif parts[0] == "rs":
            if len(parts) < 3:
                raise _fail("rs", name, "expected tm-rs-255-<k>[-i<I>][-q<Q>]")
            if parts[1] != "255":
                raise _fail(parts[1], name, "the CCSDS Reed-Solomon code has n = 255")
            e = {"223": 16, "239": 8}.get(parts[2])
            if e is None:
                raise _fail(parts[2], name, "k must be 223 (E=16) or 239 (E=8)")
            interleave: int | None = None
            virtual_fill: int | None = None
            rest: list[str] = []
            for part in parts[3:]:
                if part[:1] in ("i", "q") and part[1:].isdigit():
                    value = int(part[1:])
                    if part[0] == "i":
                        if interleave is not None:
                            raise _fail(part, name, "interleaving depth given twice")
                        if value not in INTERLEAVE_DEPTHS:
                            raise _fail(part, name, f"interleaving depth must be one of "
                                        f"{INTERLEAVE_DEPTHS}")
                        interleave = value
                    else:
                        if virtual_fill is not None:
                            raise _fail(part, name, "virtual fill given twice")
                        virtual_fill = value
                else:
                    rest.append(part)
            found = cls._flags(name, rest, flags)
            interleave = ov.pop("interleave", interleave if interleave is not None else 1)
            q_override = ov.pop("virtual_fill", None)
            if q_override is not None:
                virtual_fill = q_override
            randomize = ov.pop("randomize", found.get("randomize", True))
            dual_basis = ov.pop("dual_basis", found.get("dual_basis", True))
            frame_length = ov.pop("frame_length", None)
            for key in ov:
                raise ConfigError(f"not an option of a TM RS chain ({name!r})", key=key)
            k = 255 - 2 * e
            if frame_length is not None and virtual_fill is None:
                assert isinstance(interleave, int)
                if interleave > 0 and frame_length % interleave == 0:
                    virtual_fill = k - frame_length // interleave
                if virtual_fill is None or not 0 <= virtual_fill < k:
                    raise ConfigError(
                        f"{frame_length} octets is not I·(k - Q) = {interleave}·({k} - Q) "
                        f"for any virtual fill 0 <= Q < {k}", key="frame_length",
                    )
            rs = ReedSolomon(e=e, interleave=interleave, virtual_fill=virtual_fill or 0,
                             dual_basis=dual_basis)
            if frame_length is not None and frame_length != rs.data_length:
                raise ConfigError(
                    f"the {rs!r} codeblock carries {rs.data_length} frame octets, "
                    f"not {frame_length}", key="frame_length",
                )
            canonical = f"tm-rs-255-{k}-i{rs.interleave}"
            if rs.virtual_fill:
                canonical += f"-q{rs.virtual_fill}"
            if not rs.dual_basis:
                canonical += "-conv"
            if not randomize:
                canonical += "-norand"
            chain = cls(canonical, "tm", randomize, rs.data_length, rs, BchMode.CORRECT,
                        receiver)
        else:
            raise _fail(parts[0], name, "expected 'rs' or 'uncoded' after 'tm'")
        chain.decoder()  # validate the receiver options now (ConfigError names the key)
        return chain

    @classmethod
    def _tc(cls, name: str, parts: list[str], ov: dict[str, Any]) -> CodingChain:
        if not parts or parts[0] != "bch":
            raise _fail(parts[0] if parts else "tc", name, "expected 'tc-bch'")
        found = cls._flags(name, parts[1:], {
            "rand": ("randomize", True), "norand": ("randomize", False),
            "detect": ("bch_mode", BchMode.DETECT), "correct": ("bch_mode", BchMode.CORRECT),
        })
        receiver = {k: ov.pop(k) for k in _TC_SYNC_KEYS if k in ov}
        randomize = ov.pop("randomize", found.get("randomize", False))
        mode = ov.pop("bch_mode", found.get("bch_mode", BchMode.CORRECT))
        try:
            mode = BchMode(mode)
        except ValueError:
            raise ConfigError(f"{mode!r} is not 'detect' or 'correct'", key="bch_mode") from None
        for key in ov:
            raise ConfigError(f"not an option of a TC chain ({name!r})", key=key)
        canonical = "tc-bch" + ("-rand" if randomize else "")
        if mode is BchMode.DETECT:
            canonical += "-detect"
        chain = cls(canonical, "tc", randomize, None, None, mode, receiver)
        chain.decoder()
        return chain

    # -- properties ------------------------------------------------------------------------

    @property
    def codeblock_length(self) -> int | None:
        """TM: octets per codeblock (after the ASM); None for TC."""
        if self.kind == "tc":
            return None
        assert self.frame_length is not None
        return self.rs.codeblock_length if self.rs is not None else self.frame_length

    @property
    def cadu_length(self) -> int | None:
        """TM: octets per CADU (ASM + codeblock); None for TC."""
        cb = self.codeblock_length
        return None if cb is None else ASM_OCTETS + cb

    def overhead(self, frame_length: int | None = None) -> int:
        """Octets added per frame: ASM + RS parity (TM), or start sequence + BCH parity and
        fill + tail (TC, for a ``frame_length``-octet frame)."""
        if self.kind == "tm":
            assert self.frame_length is not None and self.cadu_length is not None
            if frame_length is not None and frame_length != self.frame_length:
                raise ConfigError(f"this chain carries {self.frame_length}-octet frames",
                                  key="frame_length")
            return self.cadu_length - self.frame_length
        if frame_length is None or not 1 <= frame_length <= USLP_MAX_FRAME_LENGTH:
            raise ConfigError("a frame length of 1..1024 (TC) or ..65536 (USLP) octets is "
                              "needed", key="frame_length")
        return cltu_length(frame_length) - frame_length

    # -- encoding --------------------------------------------------------------------------

    def encode_frame(self, frame: bytes) -> bytes:
        """One CADU (TM) or CLTU (TC) carrying ``frame``."""
        return self.encode([frame])

    def encode(self, frames: list[bytes]) -> bytes:
        """The stream of CADUs / CLTUs carrying ``frames``, in order (TM: all frames in one
        vectorized RS encode and one randomizer XOR)."""
        if self.kind == "tc":
            out = []
            for i, frame in enumerate(frames):
                self._check_tc_frame(frame, i)
                out.append(encode_cltu(frame, randomize=self.randomize))
            return b"".join(out)
        fl = self.frame_length
        assert fl is not None
        for i, frame in enumerate(frames):
            if len(frame) != fl:
                raise EncodeError(f"frame {i} has {len(frame)} octets, the chain {self.name} "
                                  f"carries {fl}", layer="tm", field="frame")
        if not frames:
            return b""
        if len(frames) == 1:
            # One CADU (encode_frame): the codeblock of ReedSolomon.encode (the same octets
            # as a row of encode_many), randomized and prefixed as bytes, not via arrays.
            block = b"".join(frames)
            if self.rs is not None:
                block = self.rs.encode(block)
            if self.randomize:
                block = TM_RANDOMIZER.apply(block)
            return ASM_BYTES + block
        data = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), fl)
        blocks = self.rs.encode_many(data) if self.rs is not None else data.copy()
        if self.randomize:
            TM_RANDOMIZER.apply_array(blocks, out=blocks)
        return attach_asm_array(blocks).tobytes()

    @staticmethod
    def _check_tc_frame(frame: bytes, index: int) -> None:
        """A CLTU carries one whole TC or non-truncated USLP frame (see the module doc)."""
        if frame[:1] and frame[0] >> 4 == USLP_VERSION:
            layer, low, high = "uslp", USLP_HEADER_OCTETS, USLP_MAX_FRAME_LENGTH
            if frame[3:4] and frame[3] & 1:
                raise EncodeError(f"frame {index}: a truncated USLP frame has no length "
                                  "field, a CLTU cannot carry it", layer=layer,
                                  field="end_of_frame_primary_header")
        else:
            layer, low, high = "tc", TC_HEADER_OCTETS, TC_MAX_FRAME_LENGTH
        if not low <= len(frame) <= high:
            raise EncodeError(f"frame {index}: a {layer.upper()} frame has {low}..{high} "
                              f"octets, not {len(frame)}", layer=layer, field="frame")
        declared = carried_frame_length(frame)
        if declared != len(frame):
            raise EncodeError(
                f"frame {index}: the frame length field says {declared} octets, the frame "
                f"has {len(frame)}", layer=layer, field="frame_length",
            )

    # -- decoding --------------------------------------------------------------------------

    def decoder(self) -> ChainDecoder:
        """A fresh stateful receiver for this chain."""
        return ChainDecoder(self)


def tc_frame_length(data: bytes) -> int:
    """Total octets of the TC frame whose header starts ``data``: the 10-bit Frame Length
    field (octets 2-3) + 1, 232.0-B-3 §4.1.2."""
    return (((data[2] & 0x03) << 8) | data[3]) + 1


USLP_VERSION = 0b1100
"""Transfer Frame Version Number of USLP (specs/sources.md §1.6); TC's is 0 (two bits)."""


def carried_frame_length(data: bytes) -> int:
    """Total octets of the TC or non-truncated USLP frame whose header starts ``data``
    (USLP: the 16-bit Frame Length field, octets 4-5, + 1, 732.1-B-2 §4.1.2.7)."""
    if data[0] >> 4 == USLP_VERSION:
        return ((data[4] << 8) | data[5]) + 1
    return tc_frame_length(data)


class ChainDecoder:
    """Stateful sans-IO receiver of a :class:`CodingChain`: feed bytes, get events.

    Events: :class:`FrameDecoded`, :class:`CodedUnitRejected`, and the synchronizer's
    :class:`SyncLocked`, :class:`SyncLost`, :class:`Slip`, :class:`SearchSkipped`. Call
    :meth:`flush` at the end of the stream.

    A one-CADU batch with a clean codeblock takes a fast path (:meth:`_tm_one`) with the
    same events and counters; ``_fast_paths = False`` (tests) turns it off (the synchronizer
    and the CLTU decoder have their own switch).
    """

    _fast_paths: bool = True

    def __init__(self, chain: CodingChain) -> None:
        self.chain = chain
        self._frames = 0
        self._corrected = 0
        self._failures = 0
        self._fecf_failures = 0
        self._erased_octets = 0
        self._fed = 0  # octets fed so far
        self._erased = np.zeros(0, dtype=np.int64)  # erased stream octets not yet passed
        self._sync: FrameSynchronizer | None = None
        self._cltu: CltuDecoder | None = None
        if chain.kind == "tm":
            assert chain.cadu_length is not None
            try:
                self._sync = FrameSynchronizer(chain.cadu_length, **chain.receiver)
            except TypeError as exc:  # pragma: no cover - keys are filtered by from_name
                raise ConfigError(str(exc), key="receiver") from None
        else:
            opts = {"max_codeblocks": MAX_CODEBLOCKS, **chain.receiver}
            self._cltu = CltuDecoder(mode=chain.bch_mode, derandomize=chain.randomize, **opts)

    @property
    def stats(self) -> ChainStats:
        """Counters since construction."""
        if self._sync is not None:
            s = self._sync.stats
            return ChainStats(self._frames, self._corrected, self._failures, s.slips,
                              s.skipped_bits // 8, s.sync_losses, s.skipped_bits,
                              self._fecf_failures, s.false_markers, self._erased_octets)
        assert self._cltu is not None
        c = self._cltu.stats
        return ChainStats(self._frames, self._corrected, self._failures, 0,
                          c.skipped_bits // 8, 0, c.skipped_bits, self._fecf_failures)

    def feed(self, data: bytes | bytearray | memoryview,
             erasures: Iterable[int] | None = None) -> list[ChainEvent]:
        """Add received bytes; return the events they complete, in stream order.

        ``erasures`` (TM): offsets in ``data`` of the octets the channel marked lost (their
        values are not trusted; Reed-Solomon decodes them as erasures).
        """
        if erasures is not None:
            self._note_erasures(len(data), erasures)
        self._fed += len(data)
        if self._sync is not None:
            events = self._tm(self._sync.feed_batches(data))
            self._forget_erasures()
            return events
        assert self._cltu is not None
        return self._tc(self._cltu.feed(data))

    def flush(self) -> list[ChainEvent]:
        """End of stream (see :meth:`FrameSynchronizer.flush` / :meth:`CltuDecoder.flush`)."""
        if self._sync is not None:
            events = self._tm(self._sync.flush_batches())
            self._forget_erasures()
            return events
        assert self._cltu is not None
        return self._tc(self._cltu.flush())

    # -- FECF and erasures -----------------------------------------------------------------

    def _fecf_reason(self, frame: bytes, corrected: int) -> str | None:
        """Why ``frame`` fails the chain's FECF check, or None (also when there is none)."""
        size = self.chain.fecf
        if not size:
            return None
        crc = crc16_ccitt(frame) if size == 2 else crc32_proximity1(frame)
        if crc == 0:
            return None
        after = f" after {corrected} corrections" if corrected else ""
        return (f"FECF check failed{after}: the CRC-{8 * size} over the {len(frame)}-octet "
                f"frame is {crc:#0{2 + 2 * size}x}, not 0 (a false acquisition or a wrongly "
                "decoded frame)")

    def _note_erasures(self, length: int, erasures: Iterable[int]) -> None:
        if self._sync is None:
            raise ConfigError("a TC chain (BCH) takes no erasures; they are for TM "
                              "Reed-Solomon chains", key="erasures")
        arr = np.asarray(erasures if isinstance(erasures, np.ndarray) else list(erasures))
        if arr.size == 0:
            return
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise ConfigError(f"erasures are octet offsets (integers), not {arr.dtype} "
                              f"values of shape {arr.shape}", key="erasures")
        bad = arr[(arr < 0) | (arr >= length)]
        if bad.size:
            raise ConfigError(f"erasure offset {int(bad[0])} is outside the {length}-octet "
                              "chunk fed with it", key="erasures")
        self._erased = np.union1d(self._erased, arr.astype(np.int64) + self._fed)

    def _forget_erasures(self) -> None:
        """Drop the erased octets before everything the synchronizer still holds."""
        if self._erased.size:
            assert self._sync is not None
            floor = self._sync.retained_bit // 8
            self._erased = self._erased[np.searchsorted(self._erased, floor):]

    def _erasure_mask(self, item: FrameBatch) -> np.ndarray | None:
        """[k, codeblock_length] bool: codeblock octets with a bit from an erased octet."""
        if not self._erased.size:
            return None
        cadu = self.chain.cadu_length
        assert cadu is not None
        offsets = item.bit_offsets
        first = int(offsets[0]) // 8
        last = (int(offsets[-1]) + 8 * cadu + 7) // 8
        cand = self._erased[np.searchsorted(self._erased, first):
                            np.searchsorted(self._erased, last)]
        if not cand.size:
            return None
        mask = np.zeros((len(offsets), cadu), dtype=np.bool_)
        for bit in (cand * 8, cand * 8 + 7):  # first and last bit of each erased octet
            row = np.searchsorted(offsets, bit, side="right") - 1
            inside = row >= 0
            row = np.maximum(row, 0)
            octet = (bit - offsets[row]) >> 3
            inside &= octet < cadu
            mask[row[inside], octet[inside]] = True
        codeblocks = mask[:, ASM_OCTETS:]
        if not codeblocks.any():
            return None
        return np.ascontiguousarray(codeblocks)

    def _accept(self, out: list[ChainEvent], frame: bytes, corrected: int, offset: int,
                marker_errors: int, item: FrameBatch, block: np.ndarray,
                per: tuple[int, ...] = ()) -> None:
        """Deliver ``frame`` unless it fails the FECF check."""
        reason = self._fecf_reason(frame, corrected)
        if reason is not None:
            out.append(CodedUnitRejected(reason, offset, bytes(block)))
            self._failures += 1
            self._fecf_failures += 1
            return
        out.append(FrameDecoded(frame, corrected, offset, marker_errors, item.flywheel,
                                item.inverted, per))
        self._frames += 1
        self._corrected += corrected

    # -- TM --------------------------------------------------------------------------------

    def _tm(self, items: list[Any]) -> list[ChainEvent]:
        out: list[ChainEvent] = []
        chain = self.chain
        rs = chain.rs
        fl = chain.frame_length
        assert fl is not None
        for item in items:
            if not isinstance(item, FrameBatch):
                out.append(item)
                continue
            if (self._fast_paths and item.cadus.shape[0] == 1 and not self._erased.size
                    and self._tm_one(out, item)):
                continue
            blocks = item.cadus[:, ASM_OCTETS:]
            if chain.randomize:
                blocks = TM_RANDOMIZER.apply_array(blocks)
            offsets = item.bit_offsets.tolist()
            errors = item.marker_errors.tolist()
            n = len(offsets)
            erased = self._erasure_mask(item)
            if erased is not None:
                self._erased_octets += int(erased.sum())
            if rs is None:
                raw = np.ascontiguousarray(blocks).tobytes()
                for i in range(n):
                    if erased is not None and erased[i].any():
                        out.append(CodedUnitRejected(
                            f"{int(erased[i].sum())} octets of the frame were marked erased "
                            "and the chain has no code to restore them",
                            offsets[i], bytes(blocks[i]),
                        ))
                        self._failures += 1
                        continue
                    if not chain.fecf:
                        out.append(FrameDecoded(raw[i * fl : (i + 1) * fl], 0, offsets[i],
                                                errors[i], item.flywheel, item.inverted))
                        self._frames += 1
                        continue
                    self._accept(out, raw[i * fl : (i + 1) * fl], 0, offsets[i], errors[i],
                                 item, blocks[i])
                continue
            res = rs.decode_many(np.ascontiguousarray(blocks), erasures=erased)
            raw = res.data.tobytes()
            # a 1-D bool array: the stubs also allow a scalar (axis=None)
            failed_rows = cast(np.ndarray, res.failed.any(axis=1))
            corrected = res.corrected.tolist()
            for i in range(n):
                if failed_rows[i]:
                    bad = tuple(int(j) for j in np.flatnonzero(res.failed[i]))
                    with_erasures = "" if erased is None or not erased[i].any() else (
                        f" with {int(erased[i].sum())} erased octets")
                    out.append(CodedUnitRejected(
                        f"uncorrectable Reed-Solomon codeword(s) {list(bad)} of "
                        f"{rs.interleave}{with_erasures}",
                        offsets[i], bytes(blocks[i]), bad,
                    ))
                    self._failures += 1
                else:
                    per = tuple(corrected[i])
                    total = sum(per)
                    if chain.fecf:
                        self._accept(out, raw[i * fl : (i + 1) * fl], total, offsets[i],
                                     errors[i], item, blocks[i], per)
                        continue
                    out.append(FrameDecoded(raw[i * fl : (i + 1) * fl], total, offsets[i],
                                            errors[i], item.flywheel, item.inverted, per))
                    self._frames += 1
                    self._corrected += total
        return out

    def _tm_one(self, out: list[ChainEvent], item: FrameBatch) -> bool:
        """Fast path of :meth:`_tm` for a one-CADU batch with no erasure pending (a receiver
        fed CADU by CADU): de-randomize the codeblock with one XOR (131.0-B-3 §9) and, with
        RS, check it by recomputing its parity (:meth:`ReedSolomon._clean_one`, §4.3).
        A clean codeblock gives exactly what the general path gives (no symbol corrected in
        any codeword, the same frame octets, the same FECF check); anything else returns
        False and is left to the general path (nothing appended, no counter touched)."""
        chain = self.chain
        rs = chain.rs
        block = item.cadus[0, ASM_OCTETS:]
        if chain.randomize:
            block = np.bitwise_xor(block, TM_RANDOMIZER.sequence(block.shape[0]))
        if rs is not None and not rs._clean_one(block):
            return False
        fl = chain.frame_length
        assert fl is not None
        frame = block[:fl].tobytes()
        offset = int(item.bit_offsets[0])
        errors = int(item.marker_errors[0])
        per = (0,) * rs.interleave if rs is not None else ()
        if chain.fecf:
            self._accept(out, frame, 0, offset, errors, item, block, per)
            return True
        out.append(FrameDecoded(frame, 0, offset, errors, item.flywheel, item.inverted, per))
        self._frames += 1
        return True

    # -- TC --------------------------------------------------------------------------------

    def _tc(self, items: list[Any]) -> list[ChainEvent]:
        out: list[ChainEvent] = []
        for item in items:
            if not isinstance(item, CltuDecoded):
                out.append(item)
                continue
            res = item.result
            data = res.frame_data
            reason: str | None = None
            uslp = bool(data) and data[0] >> 4 == USLP_VERSION
            header = USLP_HEADER_OCTETS if uslp else TC_HEADER_OCTETS
            if len(data) < header:
                reason = (f"CLTU ended ({res.end_reason.value}) after {len(data)} octets, "
                          f"before a {'USLP' if uslp else 'TC'} frame header")
            elif uslp and data[3] & 1:
                reason = "a truncated USLP frame (no length field) cannot come in a CLTU"
            elif not uslp and data[0] >> 6 != 0:
                reason = (f"transfer frame version number {data[0] >> 6}, a CLTU carries TC "
                          f"(0) or USLP (12) frames")
            else:
                length = carried_frame_length(data)
                if length > len(data):
                    reason = (f"CLTU ended ({res.end_reason.value}) after {len(data)} octets; "
                              f"the frame length field says {length}")
            if reason is not None:
                out.append(CodedUnitRejected(reason, item.bit_offset, data))
                self._failures += 1
                continue
            frame = data[: carried_frame_length(data)]
            reason = self._fecf_reason(frame, res.corrected)
            if reason is not None:
                out.append(CodedUnitRejected(reason, item.bit_offset, data))
                self._failures += 1
                self._fecf_failures += 1
                continue
            out.append(FrameDecoded(frame, res.corrected, item.bit_offset, 0, False,
                                    item.inverted))
            self._frames += 1
            self._corrected += res.corrected
        return out
