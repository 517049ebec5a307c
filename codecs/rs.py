"""CCSDS Reed-Solomon coding with interleaving and virtual fill (CCSDS 131.0-B-3 §4).

The code (CCSDS 131.0-B-3 §4.2):

- symbols are octets of GF(2^8) with F(x) = x^8 + x^7 + x^2 + x + 1 (:mod:`.gf256`);
- E = 16 gives RS(255,223), E = 8 gives RS(255,239); the code generator polynomial is
  g(x) = ∏_{j=128-E}^{127+E} (x - α^{11 j}), i.e. first consecutive root 112 (E=16) or
  120 (E=8) in powers of β = α^11 (α^11 = 0xAD);
- symbols on the wire are in Berlekamp's dual basis (CCSDS 131.0-B-3 §4.2, annex F) unless a
  managed parameter selects the conventional basis (``dual_basis=False``);
- interleaving depth I ∈ {1, 2, 3, 4, 5, 8} (§4.3): octet ``n`` of a codeblock belongs to
  codeword ``n mod I``;
- virtual fill Q (§4.4, shortening): each codeword has Q leading zero symbols that are not
  transmitted, so a codeblock carries I·(k-Q) information octets and I·(255-Q) octets in all.

Implementation: the encoder is GF(2)-linear, so for each data position the parity contribution
of every possible octet is precomputed (``k`` x 256 rows of 2E octets, basis conversions folded
in) and a codeword's parity is the XOR of ``k`` gathered rows.  Whole batches of codewords are
gathered with ``numpy.take`` (in L2-sized blocks) and XOR-reduced.  The clean-channel check of
the decoder is the same computation compared with the received parity (recomputed == received
⇔ all 2E syndromes are zero).  Only codewords that fail the check go to the error decoder,
which is also vectorized over codewords: syndromes (table gather from the parity difference,
which is the remainder r(x) mod g(x)), Berlekamp-Massey (2E numpy steps for the whole batch),
Chien search (table gather), Forney, then a re-check of every corrected codeword.  A codeword
is declared uncorrectable — never silently wrong where the decoder can tell — when the locator
length exceeds E or differs from its degree, the number of distinct roots differs from the
degree, a root falls in the virtual fill, an error value is zero, or the corrected word is not
a codeword.

Errors and erasures: the caller may name *erased* octets (the channel marked them lost; their
received values are ignored). Codewords with erasures go to a second decoder, vectorized the
same way: the erasure locator Γ(x) = ∏ (1 − β^p x) over the erased degrees p starts
Berlekamp-Massey (Λ = B = Γ, L = f, steps f .. 2E−1: Blahut's errors-and-erasures form),
whose result is the errata locator; the errata evaluator is
Ω(x) = S(x)Λ(x) mod x^2E, and Forney gives every value (zero allowed at an erased position: the
octet was right). A codeword with f erasures and e errors is corrected when 2e + f ≤ 2E. The
decoder accepts a result only if it is a codeword at that distance from the received word
(2·(symbols changed outside the erasures) + f ≤ 2E), so it is the unique such codeword: at
2e + f = 2E + 1 no other codeword is within that distance (d = 2E + 1), so the codeword is
always reported uncorrectable, never miscorrected; from 2e + f ≥ 2E + 2 on a miscorrection is
possible, as beyond E errors without erasures. More than 2E erasures in a codeword make it
uncorrectable whatever was received (even a received word that is a codeword: nothing could
check it). The error-only path is not touched by any of this.

``encode``/``decode`` handle one codeblock (about 25 µs a call); ``encode_many``/``decode_many``
handle batches and are the fast path (over 100 MB/s on one core, see bench/codecs_rs.py).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from linkstack.codecs.gf256 import EXP, FROM_DUAL, INV, LOG, MUL, MUL_FLAT, ORDER, TO_DUAL
from linkstack.errors import (
    ConfigError,
    DecodeError,
    EncodeError,
    TruncatedError,
    UncorrectableError,
)

__all__ = [
    "CODEWORD_LENGTH",
    "FIRST_ROOT",
    "INTERLEAVE_DEPTHS",
    "ROOT_STEP",
    "ReedSolomon",
    "RsBatchResult",
    "RsResult",
    "generator_polynomial",
]

LAYER = "rs"
CODEWORD_LENGTH = 255
"""n = 2^8 - 1 symbols per (unshortened) codeword."""
INTERLEAVE_DEPTHS = (1, 2, 3, 4, 5, 8)
"""Allowed interleaving depths I (CCSDS 131.0-B-3 §4.3)."""
FIRST_ROOT = {16: 112, 8: 120}
"""First consecutive root 128 - E (in powers of β = α^11) for each E (§4.2)."""
ROOT_STEP = 11
"""β = α^11 (= 0xAD): g(x) has roots β^j, j = 128-E .. 127+E (§4.2)."""

_WORD = np.dtype(np.uint64)
# Row bases (position · 256) are uint16: every table has < 256 positions, so base + octet
# fits, and numpy adds uint16 + uint8 several times faster than into intp.
_CHIEN_BASE = np.arange(17, dtype=np.uint16) * 256
_INV_HI = INV.astype(np.intp) << 8  # a^-1 << 8, a ready MUL_FLAT row index
_CODEWORD_CHUNK = 1024  # codewords per batch on the clean path
_GATHER_BLOCK = 512 * 1024  # octets gathered per XOR-reduce step (stays in L2)
_ERROR_CHUNK = 1024  # codewords per vectorized error-decoder batch

_U8 = npt.NDArray[np.uint8]


def generator_polynomial(e: int) -> tuple[int, ...]:
    """Coefficients of g(x) for E = ``e``, highest degree first (CCSDS 131.0-B-3 §4.2).

    Conventional basis.  For E=16 it begins 1, 91, 127, 86, 16, 30, 13, 235 and is palindromic.
    """
    if e not in FIRST_ROOT:
        raise ConfigError(f"E must be 8 or 16, not {e!r}", key="e")
    poly = [1]
    for j in range(FIRST_ROOT[e], FIRST_ROOT[e] + 2 * e):
        root = int(EXP[(ROOT_STEP * j) % ORDER])
        # poly · (x - root): highest degree first
        nxt = [*poly, 0]
        for i, c in enumerate(poly):
            nxt[i + 1] ^= int(MUL[c, root])
        poly = nxt
    return tuple(poly)


@dataclass(frozen=True)
class _Tables:
    """Precomputed tables of one (E, basis) code; shared by every ReedSolomon instance."""

    e: int
    parity: _U8  # (k*256,) void rows of 2E octets: parity contribution of (position, octet)
    syndrome: _U8  # (2E*256,) void rows of 2E octets: syndromes of (parity-diff position, octet)
    chien: _U8  # ((E+1)*256,) void rows of 256 octets: v·β^(-p·k) for p = 0..254
    forney_log: npt.NDArray[np.int32]  # (255,) log_α of β^(p·(1-fcr))


@functools.cache
def _tables(e: int, dual_basis: bool) -> _Tables:
    nroots = 2 * e
    k = CODEWORD_LENGTH - nroots
    fcr = FIRST_ROOT[e]
    gen = np.array(generator_polynomial(e)[1:], dtype=np.uint8)  # below the leading 1
    values = np.arange(256, dtype=np.intp)
    conv_in = FROM_DUAL[values] if dual_basis else values.astype(np.uint8)

    # rem[d] = x^d mod g(x), 2E coefficients, highest degree (2E-1) first = wire order.
    rem = np.zeros((CODEWORD_LENGTH, nroots), dtype=np.uint8)
    cur = np.zeros(nroots, dtype=np.uint8)
    cur[-1] = 1
    for d in range(CODEWORD_LENGTH):
        rem[d] = cur
        top = int(cur[0])
        cur = np.concatenate([cur[1:], np.zeros(1, dtype=np.uint8)])
        if top:
            cur ^= MUL[top, gen]
    # Data symbol i (wire order, unshortened) has degree n-1-i.
    degrees = CODEWORD_LENGTH - 1 - np.arange(k)
    parity = MUL[conv_in[None, :, None], rem[degrees][:, None, :]]  # (k, 256, 2E)
    if dual_basis:
        parity = TO_DUAL[parity]

    # Syndromes S_j = R(β^(fcr+j)) of the remainder R (conventional) at parity position i,
    # which has degree 2E-1-i.
    i = np.arange(nroots)[:, None]
    j = np.arange(nroots)[None, :]
    powers = EXP[(ROOT_STEP * (fcr + j) * (nroots - 1 - i)) % ORDER]  # (2E pos, 2E synd)
    syndrome = MUL[conv_in[None, :, None], powers[:, None, :]]  # (2E, 256, 2E)

    # Chien rows: v·β^(-p·k) for k = 0..E, p = 0..254 (column 255 is padding).
    kk = np.arange(e + 1)[:, None]
    p = np.arange(CODEWORD_LENGTH)[None, :]
    pw = EXP[(-ROOT_STEP * p * kk) % ORDER]  # (E+1, 255)
    chien = np.zeros((e + 1, 256, 256), dtype=np.uint8)
    chien[:, :, :CODEWORD_LENGTH] = MUL[np.arange(256)[None, :, None], pw[:, None, :]]

    forney_log = ((ROOT_STEP * np.arange(CODEWORD_LENGTH) * (1 - fcr)) % ORDER).astype(np.int32)

    def rows(a: _U8) -> _U8:
        a = np.ascontiguousarray(a, dtype=np.uint8)
        return a.reshape(-1).view(np.dtype((np.void, a.shape[-1])))

    return _Tables(
        e=e,
        parity=rows(parity),
        syndrome=rows(syndrome),
        chien=rows(chien),
        forney_log=forney_log,
    )


@functools.cache
def _chien_wide(e: int) -> _U8:
    """Chien rows v·β^(-p·k) for k = 0..2E (the errata locator and evaluator of the
    errors-and-erasures decoder have degree up to 2E); built on first use."""
    kk = np.arange(2 * e + 1)[:, None]
    p = np.arange(CODEWORD_LENGTH)[None, :]
    pw = EXP[(-ROOT_STEP * p * kk) % ORDER]
    chien = np.zeros((2 * e + 1, 256, 256), dtype=np.uint8)
    chien[:, :, :CODEWORD_LENGTH] = MUL[np.arange(256)[None, :, None], pw[:, None, :]]
    return chien.reshape(-1).view(np.dtype((np.void, 256)))


def _is_int(value: object) -> bool:
    """An integer managed parameter (Python or numpy integer, not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _xor_gather(
    table: _U8, base: npt.NDArray[np.uint16], symbols: _U8, width: int
) -> npt.NDArray[np.uint64]:
    """XOR of table rows ``base[t] + symbols[t, c]`` over t, for every column c.

    ``symbols`` is uint8 [terms, cols]; ``table`` holds rows of ``width`` octets.  Returns
    uint64 [cols, width/8].  The terms are processed in blocks of about
    :data:`_GATHER_BLOCK` gathered octets so that each block's indices and rows are still in
    the core's L2 cache when they are XOR-reduced.
    """
    terms, cols = symbols.shape
    if cols == 0 or terms == 0:
        return np.zeros((cols, width // 8), dtype=_WORD)
    step = max(1, _GATHER_BLOCK // (cols * width))
    acc = np.zeros(cols * (width // 8), dtype=_WORD)
    for lo in range(0, terms, step):
        hi = min(terms, lo + step)
        index = np.add(base[lo:hi, None], symbols[lo:hi], order="C")
        words = table.take(index.reshape(-1)).view(_WORD).reshape(hi - lo, -1)
        acc ^= np.bitwise_xor.reduce(words, axis=0)
    return acc.reshape(cols, width // 8)


@dataclass(frozen=True)
class RsResult:
    """Result of :meth:`ReedSolomon.decode` for one codeblock.

    ``data``: the I·(k-Q) information octets; ``corrected``: symbols corrected per codeword
    (length I, codeword j holds codeblock octets j, j+I, j+2I, ...), i.e. symbols whose value
    was changed (an erased octet that was right is not counted).
    """

    data: bytes
    corrected: tuple[int, ...]


@dataclass(frozen=True)
class RsBatchResult:
    """Result of :meth:`ReedSolomon.decode_many` for m codeblocks.

    ``data``: uint8 [m, data_length] (for a failed codeword its octets are left as received);
    ``corrected``: int [m, I] symbols corrected (changed); ``failed``: bool [m, I]
    uncorrectable codewords.
    """

    data: _U8
    corrected: npt.NDArray[np.int64]
    failed: npt.NDArray[np.bool_]


class ReedSolomon:
    """CCSDS Reed-Solomon encoder/decoder (CCSDS 131.0-B-3 §4).

    Args:
        e: error-correction capability E per codeword: 16 for RS(255,223), 8 for RS(255,239).
        interleave: interleaving depth I ∈ {1, 2, 3, 4, 5, 8} (§4.3).
        virtual_fill: Q, virtual-fill (shortening) symbols per codeword, 0 ≤ Q < k (§4.4).
        dual_basis: symbols on the wire in the dual basis (the standard's, default) or in the
            conventional basis.
    """

    data_length: int
    """I·(k-Q): information octets (the frame) per codeblock."""
    codeblock_length: int
    """I·(n-Q): octets per codeblock (frame + check symbols)."""

    def __init__(
        self, e: int = 16, interleave: int = 1, virtual_fill: int = 0, dual_basis: bool = True
    ) -> None:
        if not _is_int(e) or int(e) not in FIRST_ROOT:
            raise ConfigError(f"E must be 8 or 16, not {e!r}", key="e")
        if not _is_int(interleave) or int(interleave) not in INTERLEAVE_DEPTHS:
            raise ConfigError(
                f"interleaving depth must be one of {INTERLEAVE_DEPTHS}, not {interleave!r}",
                key="interleave",
            )
        e, interleave = int(e), int(interleave)
        k = CODEWORD_LENGTH - 2 * e
        if not _is_int(virtual_fill) or not 0 <= int(virtual_fill) < k:
            raise ConfigError(
                f"virtual fill must be an integer in 0..{k - 1}, not {virtual_fill!r}",
                key="virtual_fill",
            )
        virtual_fill = int(virtual_fill)
        self.e = e
        self.interleave = interleave
        self.virtual_fill = virtual_fill
        self.dual_basis = bool(dual_basis)
        self.n = CODEWORD_LENGTH
        self.k = k
        self.parity_length = 2 * e
        self.first_root = FIRST_ROOT[e]
        self._ks = k - virtual_fill  # transmitted data symbols per codeword
        self._ns = CODEWORD_LENGTH - virtual_fill  # transmitted symbols per codeword
        self.data_length = interleave * self._ks
        self.codeblock_length = interleave * self._ns
        self._t = _tables(e, self.dual_basis)
        q = virtual_fill
        self._parity_rows = self._t.parity[q * 256 :]
        self._data_base = np.arange(self._ks, dtype=np.uint16) * 256
        # One codeblock (see _parity_one): the same rows as 2E/8 uint64 words each, and the
        # row base of every data octet of a codeblock, [ks, I] (position-major, wire order).
        self._parity_words = self._parity_rows.view(_WORD).reshape(-1, 2 * e // 8)
        self._one_base = np.repeat(
            np.arange(self._ks, dtype=np.intp) * 256, interleave).reshape(self._ks, interleave)
        self._parity_base = np.arange(2 * e, dtype=np.uint16) * 256
        self._chunk = max(1, _CODEWORD_CHUNK // interleave)

    def __repr__(self) -> str:
        return (
            f"ReedSolomon(e={self.e}, interleave={self.interleave}, "
            f"virtual_fill={self.virtual_fill}, dual_basis={self.dual_basis})"
        )

    # ------------------------------------------------------------------ encoding

    def encode(self, data: bytes) -> bytes:
        """Encode one frame of :attr:`data_length` octets into one codeblock (§4.3, §4.4)."""
        buf = np.frombuffer(data, dtype=np.uint8)
        if buf.shape[0] != self.data_length:
            raise EncodeError(
                f"{buf.shape[0]} octets, the codeblock holds exactly {self.data_length}",
                layer=LAYER,
                field="data",
            )
        parity = self._parity(buf.reshape(1, self._ks, self.interleave))
        tail: bytes = parity[0].T.tobytes()
        return bytes(data) + tail

    def encode_many(self, data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """Encode uint8 [m, data_length] frames into uint8 [m, codeblock_length] codeblocks."""
        arr = np.asarray(data)
        if arr.dtype != np.uint8:
            raise TypeError(f"encode_many needs a uint8 array, not {arr.dtype}")
        if arr.ndim != 2 or arr.shape[1] != self.data_length:
            raise EncodeError(
                f"shape {arr.shape}, expected (m, {self.data_length})", layer=LAYER, field="data"
            )
        m = arr.shape[0]
        i_depth, ks, ns = self.interleave, self._ks, self._ns
        out = np.empty((m, ns, i_depth), dtype=np.uint8)
        out[:, :ks, :] = arr.reshape(m, ks, i_depth)
        for lo in range(0, m, self._chunk):
            hi = min(m, lo + self._chunk)
            par = self._parity(out[lo:hi, :ks, :])  # (rows, I, 2E)
            out[lo:hi, ks:, :] = par.transpose(0, 2, 1)
        return out.reshape(m, ns * i_depth)

    def _parity(self, data3: _U8) -> _U8:
        """Wire-basis parity of data laid out [rows, ks, I] → uint8 [rows, I, 2E]."""
        rows, ks, depth = data3.shape
        if rows == 1:
            return self._parity_one(data3[0])[None]
        if depth == 1:
            by_position = np.ascontiguousarray(data3[:, :, 0].T)  # (ks, rows)
        else:
            # Move whole I-octet groups at once (a void view), then flatten (ks, rows·I).
            groups = data3.view(np.dtype((np.void, depth))).reshape(rows, ks)
            by_position = np.ascontiguousarray(groups.T).view(np.uint8).reshape(ks, rows * depth)
        words = _xor_gather(self._parity_rows, self._data_base, by_position, self.parity_length)
        return words.view(np.uint8).reshape(rows, depth, self.parity_length)

    def _parity_one(self, symbols: _U8) -> _U8:
        """Wire-basis parity of one codeblock's data ``symbols[ks, d]`` (position-major: octet
        ``p·d + j`` is symbol p of codeword j; d is I, or 1 for single codewords) → uint8
        [d, 2E].

        The single-codeblock form of :func:`_xor_gather` (the same table rows XOR-ed, so the
        same parity, §4.3): the row indices come from one add, the rows are gathered as
        uint64 words straight in [position, codeword, word] order, and one reduction over
        the positions leaves every codeword's 2E octets. No blocking: one codeblock gathers
        at most I·k rows (8·239 = 1912 rows of 2E octets).
        """
        ks, depth = symbols.shape
        index = np.add(self._one_base[:, :depth], symbols)
        words = self._parity_words.take(index.reshape(-1), axis=0).reshape(ks, -1)
        parity: _U8 = np.bitwise_xor.reduce(words, axis=0).view(np.uint8)
        return parity.reshape(depth, self.parity_length)

    def _clean_one(self, codeblock: _U8) -> bool:
        """One codeblock (uint8 [codeblock_length], wire order) has zero syndromes in every
        codeword: its recomputed parity equals the received parity (the clean-channel check
        of :meth:`decode_many`, for one codeblock, §4.3)."""
        dl = self.data_length
        parity = self._parity_one(codeblock[:dl].reshape(self._ks, self.interleave))
        return bool(parity.T.tobytes() == codeblock[dl:].tobytes())

    # ------------------------------------------------------------------ decoding

    def decode(
        self, codeblock: bytes, *, base_offset: int = 0, erasures: Iterable[int] | None = None
    ) -> RsResult:
        """Decode one codeblock (§4).

        ``erasures``: offsets in the codeblock (0 ≤ offset < :attr:`codeblock_length`; octet n
        is symbol n div I of codeword n mod I) of octets the channel marked lost. Their values
        are ignored; a codeword with f erasures and e errors is corrected when 2e + f ≤ 2E.

        Raises :class:`~linkstack.errors.UncorrectableError` (field ``"codeword <j>"``, offset
        ``base_offset``, the codeblock's position in the caller's buffer) if any codeword is
        uncorrectable, :class:`~linkstack.errors.TruncatedError` /
        :class:`~linkstack.errors.DecodeError` (field ``"codeblock"``) for a wrong length, and
        :class:`~linkstack.errors.DecodeError` (field ``"erasures"``) for an erasure offset
        outside the codeblock.
        """
        buf = np.frombuffer(codeblock, dtype=np.uint8)
        self._check_length(buf.shape[0], base_offset)
        mask = self._erasure_mask(erasures, base_offset) if erasures is not None else None
        if mask is None:
            # Fast path: recomputed parity == received parity ⇔ every syndrome is zero.
            parity = self._parity(buf[: self.data_length].reshape(1, self._ks, self.interleave))
            if parity[0].T.tobytes() == bytes(buf[self.data_length :]):
                return RsResult(bytes(buf[: self.data_length]), (0,) * self.interleave)
        res = self.decode_many(buf.reshape(1, -1), erasures=mask)
        if res.failed.any():
            j = int(np.flatnonzero(res.failed[0])[0])
            f = 0 if mask is None else int(mask[0, j :: self.interleave].sum())
            if f > self.parity_length:
                reason = (f"{f} erasures in codeword {j} of {self.interleave}, more than "
                          f"2E={2 * self.e}")
            elif f:
                reason = (f"codeword {j} of {self.interleave} is uncorrectable with its {f} "
                          f"erasures: 2·errors + erasures > 2E={2 * self.e}")
            else:
                reason = (f"more than E={self.e} symbol errors detected in codeword {j} of "
                          f"{self.interleave}")
            raise UncorrectableError(reason, layer=LAYER, field=f"codeword {j}",
                                     offset=base_offset)
        return RsResult(res.data[0].tobytes(), tuple(int(c) for c in res.corrected[0]))

    def _erasure_mask(
        self, erasures: Iterable[int], base_offset: int
    ) -> npt.NDArray[np.bool_] | None:
        """[1, codeblock_length] bool mask of the erasure offsets (None when there are none)."""
        mask = np.zeros((1, self.codeblock_length), dtype=np.bool_)
        for pos in erasures:
            if not _is_int(pos) or not 0 <= int(pos) < self.codeblock_length:
                raise DecodeError(
                    f"erasure offset {pos!r} is not an octet of the {self.codeblock_length}-octet "
                    "codeblock",
                    layer=LAYER,
                    field="erasures",
                    offset=base_offset,
                )
            mask[0, int(pos)] = True
        return mask if mask.any() else None

    def _check_length(self, length: int, base_offset: int) -> None:
        if length < self.codeblock_length:
            raise TruncatedError(
                f"{length} octets, a codeblock has {self.codeblock_length}",
                layer=LAYER,
                field="codeblock",
                offset=base_offset + length,
            )
        if length > self.codeblock_length:
            raise DecodeError(
                f"{length} octets, a codeblock has {self.codeblock_length}",
                layer=LAYER,
                field="codeblock",
                offset=base_offset + self.codeblock_length,
            )

    def decode_many(
        self, blocks: npt.NDArray[np.uint8], erasures: npt.NDArray[np.bool_] | None = None
    ) -> RsBatchResult:
        """Decode uint8 [m, codeblock_length] codeblocks; failures are reported in the mask.

        ``erasures``: optional bool [m, codeblock_length], True where the channel marked the
        octet lost (see :meth:`decode`).
        """
        arr = np.asarray(blocks)
        if arr.dtype != np.uint8:
            raise TypeError(f"decode_many needs a uint8 array, not {arr.dtype}")
        if arr.ndim != 2:
            raise DecodeError(
                f"shape {arr.shape}, expected (m, {self.codeblock_length})",
                layer=LAYER,
                field="codeblock",
                offset=0,
            )
        self._check_length(arr.shape[1], 0)
        m = arr.shape[0]
        i_depth, ks, ns, nroots = self.interleave, self._ks, self._ns, self.parity_length
        if m == 1 and erasures is None and self._clean_one(arr[0]):
            # One clean codeblock (the common case of a receiver fed CADU by CADU): the
            # check below would find no codeword to correct; skip its batch bookkeeping.
            return RsBatchResult(np.array(arr[:, : self.data_length], dtype=np.uint8, order="C"),
                                 np.zeros((1, i_depth), dtype=np.int64),
                                 np.zeros((1, i_depth), dtype=np.bool_))
        data = np.array(arr[:, : self.data_length], dtype=np.uint8, order="C")
        data3 = data.reshape(m, ks, i_depth)
        corrected = np.zeros((m, i_depth), dtype=np.int64)
        failed = np.zeros((m, i_depth), dtype=np.bool_)
        blocks3 = arr.reshape(m, ns, i_depth)
        erased3: npt.NDArray[np.bool_] | None = None
        counts: npt.NDArray[np.intp] | None = None  # erasures per codeword [m, I]
        if erasures is not None:
            mask = np.asarray(erasures)
            if mask.dtype != np.bool_:
                raise TypeError(f"erasures must be a bool array, not {mask.dtype}")
            if mask.shape != arr.shape:
                raise DecodeError(
                    f"erasure mask of shape {mask.shape}, the codeblocks are {arr.shape}",
                    layer=LAYER,
                    field="erasures",
                    offset=0,
                )
            if mask.any():
                erased3 = mask.reshape(m, ns, i_depth)
                counts = erased3.sum(axis=1)
                # more than 2E erasures: nothing can be checked, whatever was received
                failed |= counts > nroots
        bad_rows: list[npt.NDArray[np.intp]] = []
        bad_diff: list[_U8] = []
        for lo in range(0, m, self._chunk):
            hi = min(m, lo + self._chunk)
            par = self._parity(blocks3[lo:hi, :ks, :])  # (rows, I, 2E)
            received = np.ascontiguousarray(blocks3[lo:hi, ks:, :].transpose(0, 2, 1))
            diff = par ^ received
            nonzero = diff.view(_WORD).reshape(-1, nroots // 8).any(axis=1)
            if nonzero.any():
                idx = np.flatnonzero(nonzero)
                bad_rows.append(idx + lo * i_depth)
                bad_diff.append(diff.reshape(-1, nroots)[idx])
        if bad_rows:
            rows = np.concatenate(bad_rows)  # codeword index = block * I + j
            diffs = np.concatenate(bad_diff)
            block_idx, cw_idx = np.divmod(rows, i_depth)
            if counts is not None:
                assert erased3 is not None
                f = counts[block_idx, cw_idx]
                with_erasures = f > 0
                if with_erasures.any():
                    pick = with_erasures & (f <= nroots)
                    self._decode_erasures(
                        blocks3, erased3, data3, corrected, failed,
                        block_idx[pick], cw_idx[pick], diffs[pick],
                    )
                    keep = ~with_erasures
                    block_idx, cw_idx, diffs = block_idx[keep], cw_idx[keep], diffs[keep]
            for lo in range(0, block_idx.shape[0], _ERROR_CHUNK):
                sl = slice(lo, lo + _ERROR_CHUNK)
                b, j = block_idx[sl], cw_idx[sl]
                words = np.ascontiguousarray(blocks3[b, :, j])  # (nb, ns)
                nerr, ok = self._correct(words, diffs[sl])
                data3[b[ok], :, j[ok]] = words[ok, :ks]
                corrected[b, j] = np.where(ok, nerr, 0)
                failed[b, j] = ~ok
        return RsBatchResult(data, corrected, failed)

    def _decode_erasures(
        self,
        blocks3: _U8,
        erased3: npt.NDArray[np.bool_],
        data3: _U8,
        corrected: npt.NDArray[np.int64],
        failed: npt.NDArray[np.bool_],
        block_idx: npt.NDArray[np.intp],
        cw_idx: npt.NDArray[np.intp],
        diffs: _U8,
    ) -> None:
        """Errors-and-erasures decoding of the listed codewords (1..2E erasures each, non-zero
        parity difference), results written into ``data3``/``corrected``/``failed``."""
        ks = self._ks
        for lo in range(0, block_idx.shape[0], _ERROR_CHUNK):
            sl = slice(lo, lo + _ERROR_CHUNK)
            b, j = block_idx[sl], cw_idx[sl]
            words = np.ascontiguousarray(blocks3[b, :, j])  # (nb, ns)
            erased = np.ascontiguousarray(erased3[b, :, j])
            changed, ok = self._correct_erasures(words, diffs[sl], erased)
            data3[b[ok], :, j[ok]] = words[ok, :ks]
            corrected[b, j] = np.where(ok, changed, 0)
            failed[b, j] = ~ok

    def _correct_erasures(
        self, words: _U8, diff: _U8, erased: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Correct codewords with erasures in place (wire basis, [nb, ns]).

        ``erased`` [nb, ns] marks the erased symbols (1..2E per row). Returns (symbols
        changed, ok); rows not ok are left untouched. Polynomials are coefficient-major, as
        in :meth:`_correct`.
        """
        nroots, ns, t = self.parity_length, self._ns, self._t
        nb = words.shape[0]
        width = nroots + 2
        syn = _xor_gather(t.syndrome, self._parity_base, np.ascontiguousarray(diff.T), nroots)
        syn_t = np.ascontiguousarray(syn.view(np.uint8).reshape(nb, nroots).T)

        # Erasure locator Γ(x) = ∏ (1 - β^p x), p = ns-1-s the degree of erased symbol s.
        f = erased.sum(axis=1).astype(np.intp)
        fmax = int(f.max())
        slot = np.cumsum(erased, axis=1) - 1  # rank of each erased symbol in its row
        row, sym = np.nonzero(erased)
        locators = np.zeros((fmax, nb), dtype=np.intp)
        locators[slot[row, sym], row] = EXP[(ROOT_STEP * (ns - 1 - sym)) % ORDER]
        gamma = np.zeros((width, nb), dtype=np.intp)
        gamma[0] = 1
        for i in range(fmax):
            # Γ ← Γ·(1 - X x): rows with fewer erasures multiply by 1 (X = 0)
            gamma[1 : i + 2] ^= MUL_FLAT.take((locators[i] << 8) | gamma[: i + 1], mode="wrap")

        lam, length = self._berlekamp_massey_erasures(syn_t, gamma, f)
        degree = np.max((lam != 0) * np.arange(width)[:, None], axis=0)
        # 2L - f ≤ 2E: errors e = L - f with 2e + f ≤ 2E
        ok = (2 * length - f <= nroots) & (degree == length)
        if not ok.any():
            return length, ok
        lmax = int(degree[ok].max())
        lam_u8 = lam[: lmax + 1].astype(np.uint8)
        lam_u8[:, ~ok] = 0

        # Errata evaluator Ω(x) = S(x)Λ(x) mod x^2E.
        s_hi = syn_t.astype(np.intp) << 8
        omega = np.zeros((nroots, nb), dtype=np.uint8)
        for jj in range(min(lmax + 1, nroots)):
            omega[jj:] ^= MUL_FLAT.take(s_hi[: nroots - jj] | lam[jj], mode="wrap")
        omega[:, ~ok] = 0
        deriv = np.zeros((max(lmax, 1), nb), dtype=np.uint8)
        deriv[0:lmax:2] = lam_u8[1 : lmax + 1 : 2]

        lam_at = self._evaluate_wide(lam_u8)
        roots = (lam_at == 0) & ok[:, None]
        count = roots.sum(axis=1)
        count_in = roots[:, :ns].sum(axis=1)
        ok &= (count == length) & (count_in == length)
        roots &= ok[:, None]
        row, p = np.nonzero(roots)
        if row.size == 0:
            return length, ok
        omega_at = self._evaluate_wide(omega)[row, p]
        deriv_at = self._evaluate_wide(deriv)[row, p]
        at_erasure = erased[row, ns - 1 - p]
        # A zero value is fine where the octet was erased (it was right); elsewhere the
        # locator has a false root.
        bad_value = (deriv_at == 0) | ((omega_at == 0) & ~at_erasure)
        if bad_value.any():
            ok[row[bad_value]] = False
            keep = ok[row]
            row, p, omega_at, deriv_at = row[keep], p[keep], omega_at[keep], deriv_at[keep]
            at_erasure = at_erasure[keep]
        log_e = (
            t.forney_log[p] + LOG[omega_at].astype(np.int32) - LOG[deriv_at].astype(np.int32)
        ) % ORDER
        value = np.where(omega_at == 0, 0, EXP[log_e]).astype(np.uint8)
        if self.dual_basis:
            value = TO_DUAL[value]
        # The decoding radius: 2·(symbols changed outside the erasures) + f ≤ 2E.
        nonzero = value != 0
        outside = np.bincount(row[nonzero & ~at_erasure], minlength=nb)
        changed = np.bincount(row[nonzero], minlength=nb)
        ok &= 2 * outside + f <= nroots
        fixed = words[ok].copy()
        pos = np.cumsum(ok) - 1
        keep = ok[row]
        fixed[pos[row[keep]], ns - 1 - p[keep]] ^= value[keep]
        check = self._parity(fixed[:, : self._ks, None])[:, 0, :]
        good = (check == fixed[:, self._ks :]).all(axis=1)
        ok_idx = np.flatnonzero(ok)
        words[ok_idx[good]] = fixed[good]
        ok[ok_idx[~good]] = False
        return changed, ok

    def _berlekamp_massey_erasures(
        self, syndromes: _U8, gamma: npt.NDArray[np.intp], f: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Errata locators from Berlekamp-Massey started at the erasure locator.

        Λ = B = Γ and L = f; steps r = f .. 2E-1 (each codeword starts at its own f and is
        left alone before); Δ = Σ_i Λ_i S_(r-i); where Δ ≠ 0, Λ ← Λ - Δ·x·B, and when also
        2L ≤ r + f the length becomes r + 1 + f - L and B ← Λ/Δ, else B ← x·B. 2E + 2
        coefficients are kept (deg Λ ≤ L ≤ 2E for every codeword that can be accepted).
        """
        nroots = syndromes.shape[0]
        width = gamma.shape[0]
        srev = syndromes[::-1].astype(np.intp)
        lam = gamma.copy()
        bb = gamma.copy()
        xb = np.zeros_like(bb)
        length = f.copy()
        for r in range(int(f.min()), nroots):
            active = f <= r
            w = min(r + 1, width)
            c0 = nroots - 1 - r
            products = MUL_FLAT.take((lam[:w] << 8) | srev[c0 : c0 + w], mode="wrap")
            delta = np.where(active, np.bitwise_xor.reduce(products, axis=0), 0).astype(np.intp)
            xb[1:] = bb[:-1]
            update = (delta != 0) & (2 * length <= r + f)
            lam_next = lam ^ MUL_FLAT.take((delta << 8) | xb, mode="wrap")
            scaled = MUL_FLAT.take(_INV_HI.take(delta) | lam, mode="wrap")
            np.copyto(bb, np.where(update, scaled, xb), where=active)
            length = np.where(update, r + 1 + f - length, length)
            lam = lam_next
        return lam, length

    def _evaluate_wide(self, coeffs: _U8) -> _U8:
        """Like :meth:`_evaluate_all`, for up to 2E+1 coefficients."""
        nb = coeffs.shape[1]
        base = np.arange(coeffs.shape[0], dtype=np.uint16) * 256
        words = _xor_gather(_chien_wide(self.e), base, np.ascontiguousarray(coeffs), 256)
        return words.view(np.uint8).reshape(nb, 256)[:, :CODEWORD_LENGTH]

    def _correct(self, words: _U8, diff: _U8) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Correct codewords in place (wire basis, [nb, ns]) from their parity difference.

        Returns (errors corrected, ok).  Rows not ok are left untouched.  Polynomials are
        held coefficient-major ([coefficient, codeword]) so that every numpy step runs along
        long contiguous rows of codewords.
        """
        e, nroots, ns, t = self.e, self.parity_length, self._ns, self._t
        nb = words.shape[0]
        # Syndromes S_j = r(β^(fcr+j)), j = 0..2E-1 (conventional basis), as [j, codeword].
        syn = _xor_gather(t.syndrome, self._parity_base, np.ascontiguousarray(diff.T), nroots)
        syn_t = np.ascontiguousarray(syn.view(np.uint8).reshape(nb, nroots).T)

        lam, length = self._berlekamp_massey(syn_t)
        width = lam.shape[0]
        degree = np.max((lam != 0) * np.arange(width)[:, None], axis=0)
        ok = (length <= e) & (length >= 1) & (degree == length)
        if not ok.any():
            return length, ok
        lmax = int(length[ok].max())
        lam_u8 = lam[: lmax + 1].astype(np.uint8)
        lam_u8[:, ~ok] = 0

        # Error evaluator Ω(x) = S(x)Λ(x) mod x^L (the coefficients from L to 2E-1 are the
        # Berlekamp-Massey discrepancies, zero by construction).
        s_hi = syn_t[:lmax].astype(np.intp) << 8
        omega = np.zeros((lmax, nb), dtype=np.uint8)
        for jj in range(lmax):
            omega[jj:] ^= MUL_FLAT.take(s_hi[: lmax - jj] | lam[jj], mode="wrap")
        omega[:, ~ok] = 0
        # Formal derivative: Λ'(x) = Σ_{k odd} λ_k x^(k-1).
        deriv = np.zeros((lmax, nb), dtype=np.uint8)
        deriv[0:lmax:2] = lam_u8[1 : lmax + 1 : 2]

        # Chien search: Λ(β^-p) for every p = 0..254 (error at degree p ⇔ root β^-p).
        lam_at = self._evaluate_all(lam_u8)
        roots = (lam_at == 0) & ok[:, None]
        count = roots.sum(axis=1)
        count_in = roots[:, :ns].sum(axis=1)
        ok &= (count == length) & (count_in == length)
        roots &= ok[:, None]
        row, p = np.nonzero(roots)
        if row.size == 0:
            return length, ok
        # Forney: e = β^(p(1-fcr)) Ω(β^-p) / Λ'(β^-p).
        omega_at = self._evaluate_all(omega)[row, p]
        deriv_at = self._evaluate_all(deriv)[row, p]
        bad_value = (omega_at == 0) | (deriv_at == 0)
        if bad_value.any():
            ok[row[bad_value]] = False
            keep = ok[row]
            row, p, omega_at, deriv_at = row[keep], p[keep], omega_at[keep], deriv_at[keep]
        log_e = (
            t.forney_log[p] + LOG[omega_at].astype(np.int32) - LOG[deriv_at].astype(np.int32)
        ) % ORDER
        value = EXP[log_e]
        if self.dual_basis:
            value = TO_DUAL[value]
        fixed = words[ok].copy()
        # Map rows of `words` to rows of `fixed`.
        pos = np.cumsum(ok) - 1
        fixed[pos[row], ns - 1 - p] ^= value
        # Re-check: the corrected words must be codewords.
        check = self._parity(fixed[:, : self._ks, None])[:, 0, :]
        good = (check == fixed[:, self._ks :]).all(axis=1)
        ok_idx = np.flatnonzero(ok)
        words[ok_idx[good]] = fixed[good]
        ok[ok_idx[~good]] = False
        return length, ok

    def _berlekamp_massey(
        self, syndromes: _U8
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Error locators Λ(x) ([coefficient, codeword], ascending) and lengths L, all at once.

        Massey's LFSR synthesis (IEEE Trans. IT-15, 1969) in Blahut's form, vectorized over
        codewords; ``syndromes`` is [2E, codeword].  Only E+2 coefficients are kept: a
        codeword whose length stays ≤ E never has a non-zero coefficient beyond degree E
        (deg Λ ≤ L throughout), and one whose length exceeds E is rejected anyway.
        Products are looked up in :data:`MUL_FLAT` with ``take`` on intp indices (the
        fastest numpy gather here).
        """
        nroots, nb = syndromes.shape
        width = self.e + 2
        srev = syndromes[::-1].astype(np.intp)  # srev[c] = S_(2E-1-c)
        lam = np.zeros((width, nb), dtype=np.intp)
        lam[0] = 1
        bb = lam.copy()
        xb = np.zeros_like(bb)
        length = np.zeros(nb, dtype=np.intp)
        for r in range(nroots):
            # Before step r, deg Λ ≤ r and deg B ≤ r: only the first r+2 rows can be non-zero.
            a = min(r + 2, width)
            w = min(r + 1, width)
            c0 = nroots - 1 - r
            # Δ = Σ_i Λ_i S_(r-i)
            products = MUL_FLAT.take((lam[:w] << 8) | srev[c0 : c0 + w], mode="wrap")
            delta = np.bitwise_xor.reduce(products, axis=0)
            xb[1:a] = bb[: a - 1]
            update = (delta != 0) & (2 * length <= r)
            # Λ ← Λ - Δ·x·B ;  B ← Λ/Δ where the length changes, else x·B
            lam_next = lam[:a] ^ MUL_FLAT.take((delta.astype(np.intp) << 8) | xb[:a], mode="wrap")
            scaled = MUL_FLAT.take(_INV_HI.take(delta) | lam[:a], mode="wrap")
            bb[:a] = xb[:a]
            np.copyto(bb[:a], scaled, where=update)
            length = np.where(update, r + 1 - length, length)
            lam[:a] = lam_next
        return lam, length

    def _evaluate_all(self, coeffs: _U8) -> _U8:
        """Evaluate polynomials at β^-p, p = 0..254.

        ``coeffs`` is [coefficient (ascending, at most E+1), codeword]; returns [codeword, p].
        """
        nb = coeffs.shape[1]
        words = _xor_gather(self._t.chien, _CHIEN_BASE, np.ascontiguousarray(coeffs), 256)
        return words.view(np.uint8).reshape(nb, 256)[:, :CODEWORD_LENGTH]


def _check_tables() -> None:
    """Cheap import-time sanity check of the field constants (specs/sources.md §1.11)."""
    if int(EXP[ROOT_STEP]) != 0xAD or int(LOG[0xAD]) != ROOT_STEP:  # pragma: no cover
        raise AssertionError("α^11 must be 0xAD in GF(2^8)/0x187")
    if int(FROM_DUAL[TO_DUAL[0x5A]]) != 0x5A:  # pragma: no cover
        raise AssertionError("dual-basis tables are not inverse")


_check_tables()
