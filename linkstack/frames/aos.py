"""AOS Transfer Frame, CCSDS 732.0-B-4 §4.1, with the Frame Header Error Control.

Layout (big-endian, MSB first)::

    Primary Header (6 octets, §4.1.2)
      Transfer Frame Version Number (2) = 01 | Spacecraft Identifier (8) |
      Virtual Channel Identifier (6) | Virtual Channel Frame Count (24) |
      Signaling Field (8): Replay Flag (1) | VC Frame Count Usage Flag (1) |
        Reserved Spare (2) | VC Frame Count Cycle (4)
      Frame Header Error Control (16, optional, managed; §4.1.2.6)
    Transfer Frame Insert Zone (fixed length, managed; §4.1.3)
    Transfer Frame Data Field (§4.1.4), by the VC's service:
      M_PDU: Reserved Spare (5) | First Header Pointer (11) | packet zone
      B_PDU: Reserved Spare (2) | Bitstream Data Pointer (14) | bitstream data
      VCA_SDU: the data, no header
      idle frames (VCID 63): idle data, no header
    Operational Control Field (4 octets, managed per VC; AOS has no OCF flag; §4.1.5)
    Frame Error Control Field (2 octets, optional, managed; §4.1.6)

FHEC: a Reed-Solomon (10,6) code over GF(16), field polynomial x^4+x+1, generator roots
α^6..α^9, over the 6 information nibbles = the 16-bit (TFVN|SCID|VCID) word and the 8-bit
Signaling Field (the VC Frame Count is not protected). yamcs builds it as RS(15,11)
``nroots=4 symsize=4 fcr=6 prim=1 gfpoly=0x13`` shortened by 5 (specs/sources.md §1.5). The
encoder and the decoder (up to 2 nibble errors, bounded-distance) are implemented here
with 16-entry tables; the tests check them against galois and yamcs' published vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from itertools import combinations

import construct as c

from linkstack.bitfields import BitHeader
from linkstack.codecs.crc import check_fecf, compute_fecf, crc16_ccitt
from linkstack.errors import (
    ConfigError,
    DecodeError,
    EncodeError,
    TruncatedError,
    UncorrectableError,
)
from linkstack.fast_dataclass import fast_init
from linkstack.frames.tm import FHP_IDLE_DATA, FHP_NO_PACKET_START

LAYER = "aos"

PRIMARY_HEADER = c.BitStruct(
    "transfer_frame_version_number" / c.Const(1, c.BitsInteger(2)),
    "scid" / c.BitsInteger(8),
    "vcid" / c.BitsInteger(6),
    "vc_frame_count" / c.BitsInteger(24),
    "replay_flag" / c.Flag,
    "vc_frame_count_usage_flag" / c.Flag,
    c.Padding(2),
    "vc_frame_count_cycle" / c.BitsInteger(4),
)
"""The single declaration of the AOS primary header without FHEC (732.0-B-4 §4.1.2)."""

FHEC_FIELD = c.BitStruct("frame_header_error_control" / c.BitsInteger(16))
"""Frame Header Error Control (732.0-B-4 §4.1.2.6), after the 6 header octets."""

M_PDU_HEADER = c.BitStruct(
    c.Padding(5),
    "first_header_pointer" / c.BitsInteger(11),
)
"""M_PDU header (732.0-B-4 §4.1.4.2)."""

B_PDU_HEADER = c.BitStruct(
    c.Padding(2),
    "bitstream_data_pointer" / c.BitsInteger(14),
)
"""B_PDU header (732.0-B-4 §4.1.4.3)."""

HEADER = BitHeader(LAYER, PRIMARY_HEADER)
FHEC = BitHeader(LAYER, FHEC_FIELD)
M_PDU = BitHeader(LAYER, M_PDU_HEADER)
B_PDU = BitHeader(LAYER, B_PDU_HEADER)

PRIMARY_HEADER_SIZE = 6
FHEC_SIZE = 2
DATA_UNIT_HEADER_SIZE = 2
OCF_SIZE = 4
FECF_SIZE = 2
MAX_FRAME_LENGTH = 2048  # same physical-channel limit as TM (131.0-B coding); specs/sources.md §1.3
MAX_VCID = 63
IDLE_VCID = 63  # yamcs AosFrameDecoder, astro OIDVCID (specs/sources.md §1.5)
VC_FRAME_COUNT_MODULUS = 1 << 24

BDP_ALL_VALID = 0x3FFF
"""Bitstream Data Pointer: every bit of the B_PDU data is valid."""
BDP_ALL_FILL = 0x3FFE
"""Bitstream Data Pointer: the B_PDU holds only fill."""

class AosDataUnit(Enum):
    """What a VC's Transfer Frame Data Field carries (732.0-B-4 §4.1.4)."""

    M_PDU = "M_PDU"
    B_PDU = "B_PDU"
    VCA = "VCA_SDU"
    IDLE = "idle"


# --------------------------------------------------------------------------------------
# GF(16) and the RS(10,6) FHEC code
# --------------------------------------------------------------------------------------

_GF_POLY = 0x13  # x^4 + x + 1
_EXP = [0] * 30
_LOG = [0] * 16
_x = 1
for _i in range(15):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x10:
        _x ^= _GF_POLY
for _i in range(15, 30):
    _EXP[_i] = _EXP[_i - 15]

_FCR = 6  # first consecutive root α^6
_NROOTS = 4


def _gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _generator() -> list[int]:
    """g(x) = (x - α^6)(x - α^7)(x - α^8)(x - α^9), highest degree first."""
    g = [1]
    for k in range(_FCR, _FCR + _NROOTS):
        root = _EXP[k % 15]
        nxt = [*g, 0]
        for i, coef in enumerate(g):
            nxt[i + 1] ^= _gf_mul(coef, root)
        g = nxt
    return g


FHEC_GENERATOR: tuple[int, ...] = tuple(_generator())
"""Coefficients of the FHEC generator polynomial, x^4 first (monic)."""


def _header_nibbles(b0: int, b1: int, signaling: int) -> list[int]:
    return [b0 >> 4, b0 & 0xF, b1 >> 4, b1 & 0xF, signaling >> 4, signaling & 0xF]


def _codeword(word: int, signaling: int, fhec: int) -> list[int]:
    """The 10 nibbles of the FHEC codeword: 6 information nibbles, then 4 parity nibbles."""
    return [*_header_nibbles(word >> 8, word & 0xFF, signaling),
            (fhec >> 12) & 0xF, (fhec >> 8) & 0xF, (fhec >> 4) & 0xF, fhec & 0xF]


@lru_cache(maxsize=4096)
def fhec_parity(word: int, signaling_field: int) -> int:
    """The 16-bit FHEC for the (TFVN|SCID|VCID) ``word`` and the ``signaling_field``.

    Systematic RS encoding: the remainder of m(x)·x^4 divided by g(x), parity nibbles
    most significant first. Cached: a channel uses few distinct headers.
    """
    parity = [0, 0, 0, 0]
    g = FHEC_GENERATOR
    for d in _header_nibbles(word >> 8, word & 0xFF, signaling_field):
        fb = d ^ parity[0]
        parity[0] = parity[1] ^ _gf_mul(fb, g[1])
        parity[1] = parity[2] ^ _gf_mul(fb, g[2])
        parity[2] = parity[3] ^ _gf_mul(fb, g[3])
        parity[3] = _gf_mul(fb, g[4])
    return (parity[0] << 12) | (parity[1] << 8) | (parity[2] << 4) | parity[3]


def _syndromes(nibbles: list[int]) -> tuple[int, ...]:
    """S_j = r(α^j), j = 6..9, for the 10 received nibbles (r_0 has degree 9)."""
    out = []
    for j in range(_FCR, _FCR + _NROOTS):
        aj = _EXP[j % 15]
        s = 0
        for r in nibbles:
            s = _gf_mul(s, aj) ^ r
        out.append(s)
    return tuple(out)


_CORRECTIONS: dict[tuple[int, ...], tuple[tuple[int, int], ...]] | None = None


def _correction_table() -> dict[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Syndrome -> error pattern for every pattern of 1 or 2 nibble errors (built once).

    The code has minimum distance 5, so these 10 275 syndromes are distinct and this is a
    complete bounded-distance decoder; anything else is uncorrectable.
    """
    global _CORRECTIONS
    if _CORRECTIONS is None:
        # single-error syndromes: value v at position p (degree 9 - p) gives v·α^(j(9-p))
        single: dict[tuple[int, int], tuple[int, ...]] = {}
        for p in range(10):
            for v in range(1, 16):
                single[(p, v)] = tuple(
                    _gf_mul(v, _EXP[(j * (9 - p)) % 15]) for j in range(_FCR, _FCR + _NROOTS)
                )
        table: dict[tuple[int, ...], tuple[tuple[int, int], ...]] = {
            s: ((p, v),) for (p, v), s in single.items()
        }
        for p1, p2 in combinations(range(10), 2):
            for v1 in range(1, 16):
                s1 = single[(p1, v1)]
                for v2 in range(1, 16):
                    s2 = single[(p2, v2)]
                    syn = (s1[0] ^ s2[0], s1[1] ^ s2[1], s1[2] ^ s2[2], s1[3] ^ s2[3])
                    table[syn] = ((p1, v1), (p2, v2))
        _CORRECTIONS = table
    return _CORRECTIONS


def fhec_correct(word: int, signaling_field: int, fhec: int) -> tuple[int, int, int, int]:
    """Decode the FHEC codeword: returns ``(word, signaling_field, fhec, corrected)``.

    ``corrected`` is the number of nibbles fixed (0, 1 or 2). More errors raise
    :class:`UncorrectableError` naming ``frame_header_error_control``.
    """
    nibbles = _codeword(word, signaling_field, fhec)
    syn = _syndromes(nibbles)
    if not any(syn):
        return word, signaling_field, fhec, 0
    pattern = _correction_table().get(syn)
    if pattern is None:
        raise UncorrectableError(
            "more than 2 nibble errors in the header (syndrome "
            f"{''.join(f'{s:x}' for s in syn)})",
            layer=LAYER, field="frame_header_error_control", offset=PRIMARY_HEADER_SIZE,
        )
    for p, v in pattern:
        nibbles[p] ^= v
    word = (nibbles[0] << 12) | (nibbles[1] << 8) | (nibbles[2] << 4) | nibbles[3]
    sig = (nibbles[4] << 4) | nibbles[5]
    fhec = (nibbles[6] << 12) | (nibbles[7] << 8) | (nibbles[8] << 4) | nibbles[9]
    return word, sig, fhec, len(pattern)


def _correct_header(buf: bytes) -> tuple[bytes, int]:
    """Apply FHEC decoding to the first 8 octets of ``buf``; returns (new buf, corrections)."""
    word = (buf[0] << 8) | buf[1]
    sig = buf[5]
    fhec = (buf[6] << 8) | buf[7]
    w2, s2, f2, n = fhec_correct(word, sig, fhec)
    if not n:
        return buf, 0
    fixed = bytearray(buf)
    fixed[0], fixed[1], fixed[5], fixed[6], fixed[7] = w2 >> 8, w2 & 0xFF, s2, f2 >> 8, f2 & 0xFF
    return bytes(fixed), n


# --------------------------------------------------------------------------------------
# Managed parameters and the frame
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AosChannelConfig:
    """Managed parameters of an AOS physical channel and its VCs (732.0-B-4 §5).

    Attributes:
        frame_length: Transfer Frame Length, fixed for the physical channel.
        has_fecf: the 2-octet FECF ends every frame.
        has_fhec: the 2-octet Frame Header Error Control follows the primary header.
        fhec_correction: on decode, correct up to 2 header nibble errors (else only detect).
        insert_zone_length: octets of the Insert Zone (0 = none).
        ocf_vcids: VCs whose frames carry the 4-octet OCF.
        bpdu_vcids: VCs carrying B_PDUs (bitstream service).
        vca_vcids: VCs carrying VCA_SDUs (no data-unit header). Every other VC except 63
            carries M_PDUs; VC 63 carries idle data.
    """

    frame_length: int = 1115
    has_fecf: bool = True
    has_fhec: bool = False
    fhec_correction: bool = True
    insert_zone_length: int = 0
    ocf_vcids: frozenset[int] = frozenset()
    bpdu_vcids: frozenset[int] = frozenset()
    vca_vcids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for name in ("ocf_vcids", "bpdu_vcids", "vca_vcids"):
            vcids = frozenset(getattr(self, name))
            object.__setattr__(self, name, vcids)
            for vcid in vcids:
                if not 0 <= vcid <= MAX_VCID:
                    raise ConfigError(f"VCID {vcid} outside 0..{MAX_VCID}", key=name)
        if self.bpdu_vcids & self.vca_vcids:
            raise ConfigError("a VC cannot carry both B_PDUs and VCA_SDUs", key="vca_vcids")
        if IDLE_VCID in self.bpdu_vcids | self.vca_vcids:
            raise ConfigError("VC 63 is the idle VC", key="bpdu_vcids")
        if self.insert_zone_length < 0:
            raise ConfigError("negative", key="insert_zone_length")
        if not 0 < self.frame_length <= MAX_FRAME_LENGTH:
            raise ConfigError(f"{self.frame_length} outside 1..{MAX_FRAME_LENGTH}",
                              key="frame_length")
        worst = min(self.data_field_capacity(v) for v in (0, *self.ocf_vcids, *self.bpdu_vcids))
        if worst < 1:
            raise ConfigError("header, insert zone and trailer leave no data field",
                              key="frame_length")

    def data_unit(self, vcid: int) -> AosDataUnit:
        """The data unit VC ``vcid`` carries."""
        if vcid == IDLE_VCID:
            return AosDataUnit.IDLE
        if vcid in self.bpdu_vcids:
            return AosDataUnit.B_PDU
        if vcid in self.vca_vcids:
            return AosDataUnit.VCA
        return AosDataUnit.M_PDU

    def has_ocf(self, vcid: int) -> bool:
        return vcid in self.ocf_vcids

    def data_field_capacity(self, vcid: int = 0) -> int:
        """Octets of packet zone (after the M_PDU/B_PDU header) in one frame of ``vcid``."""
        unit = self.data_unit(vcid)
        return (
            self.frame_length - PRIMARY_HEADER_SIZE
            - (FHEC_SIZE if self.has_fhec else 0)
            - self.insert_zone_length
            - (DATA_UNIT_HEADER_SIZE if unit in (AosDataUnit.M_PDU, AosDataUnit.B_PDU) else 0)
            - (OCF_SIZE if self.has_ocf(vcid) else 0)
            - (FECF_SIZE if self.has_fecf else 0)
        )


DEFAULT_CONFIG = AosChannelConfig()


@fast_init
@dataclass(frozen=True, slots=True)
class AosFrame:
    """One AOS Transfer Frame (732.0-B-4 §4.1).

    ``data_field`` is the packet zone (M_PDU), the bitstream data (B_PDU), the VCA_SDU or
    the idle data (VC 63). ``first_header_pointer`` is set for M_PDU VCs and
    ``bitstream_data_pointer`` for B_PDU VCs, else None. ``fhec_corrections`` reports how
    many header nibbles the FHEC decoder fixed (not part of equality).
    """

    scid: int
    vcid: int
    vc_frame_count: int = 0
    data_field: bytes = b""
    first_header_pointer: int | None = None
    bitstream_data_pointer: int | None = None
    insert_zone: bytes = b""
    ocf: bytes | None = None
    replay_flag: bool = False
    vc_frame_count_usage_flag: bool = False
    vc_frame_count_cycle: int = 0
    fhec_corrections: int = field(default=0, compare=False)

    @property
    def is_idle(self) -> bool:
        return self.vcid == IDLE_VCID

    @property
    def signaling_field(self) -> int:
        return ((int(self.replay_flag) << 7) | (int(self.vc_frame_count_usage_flag) << 6)
                | (self.vc_frame_count_cycle & 0xF))

    def encode(self, config: AosChannelConfig = DEFAULT_CONFIG) -> bytes:
        """Return the ``config.frame_length`` octets; the data field must fill it exactly."""
        unit = config.data_unit(self.vcid)
        want_fhp = unit is AosDataUnit.M_PDU
        want_bdp = unit is AosDataUnit.B_PDU
        if (self.first_header_pointer is not None) != want_fhp:
            raise EncodeError(
                f"VC {self.vcid} carries {unit.value}: first_header_pointer must be "
                f"{'set' if want_fhp else 'None'}",
                layer=LAYER, field="first_header_pointer",
            )
        if (self.bitstream_data_pointer is not None) != want_bdp:
            raise EncodeError(
                f"VC {self.vcid} carries {unit.value}: bitstream_data_pointer must be "
                f"{'set' if want_bdp else 'None'}",
                layer=LAYER, field="bitstream_data_pointer",
            )
        if len(self.insert_zone) != config.insert_zone_length:
            raise EncodeError(
                f"{len(self.insert_zone)} octets, the channel's Insert Zone is "
                f"{config.insert_zone_length}",
                layer=LAYER, field="insert_zone",
            )
        if config.has_ocf(self.vcid) != (self.ocf is not None):
            raise EncodeError(
                f"VC {self.vcid} {'carries' if config.has_ocf(self.vcid) else 'has no'} an OCF "
                "(managed parameter)",
                layer=LAYER, field="ocf",
            )
        if self.ocf is not None and len(self.ocf) != OCF_SIZE:
            raise EncodeError(f"{len(self.ocf)} octets, must be 4", layer=LAYER, field="ocf")
        capacity = config.data_field_capacity(self.vcid)
        if len(self.data_field) != capacity:
            raise EncodeError(
                f"{len(self.data_field)} octets; a {config.frame_length}-octet frame of VC "
                f"{self.vcid} needs exactly {capacity}",
                layer=LAYER, field="data_field",
            )
        out = HEADER.pack(
            self.scid, self.vcid, self.vc_frame_count, int(self.replay_flag),
            int(self.vc_frame_count_usage_flag), self.vc_frame_count_cycle,
        )
        if config.has_fhec:
            out += FHEC.pack(fhec_parity((out[0] << 8) | out[1], out[5]))
        out += bytes(self.insert_zone)
        if self.first_header_pointer is not None:
            _check_pointer(self.first_header_pointer, capacity, "first_header_pointer",
                           (FHP_NO_PACKET_START, FHP_IDLE_DATA), 1)
            out += M_PDU.pack(self.first_header_pointer)
        elif self.bitstream_data_pointer is not None:
            _check_pointer(self.bitstream_data_pointer, 8 * capacity, "bitstream_data_pointer",
                           (BDP_ALL_VALID, BDP_ALL_FILL), 8)
            out += B_PDU.pack(self.bitstream_data_pointer)
        out += bytes(self.data_field)
        if self.ocf is not None:
            out += bytes(self.ocf)
        if config.has_fecf:
            out += compute_fecf(out, FECF_SIZE)
        return out

    @classmethod
    def decode(cls, buf: bytes, config: AosChannelConfig = DEFAULT_CONFIG) -> AosFrame:
        """Decode one frame of exactly ``config.frame_length`` octets.

        Order: the FECF first (a :class:`ChecksumError`, unless the FHEC corrects header
        errors and the corrected frame then passes it), then the FHEC
        (:class:`UncorrectableError` naming ``frame_header_error_control``), then fields.
        """
        n = config.frame_length
        got = len(buf)
        if got != n:
            if got < n:
                raise TruncatedError(f"{got} octets, the channel's frames are {n}",
                                     layer=LAYER, field="frame_length", offset=got)
            raise DecodeError(f"{got} octets, the channel's frames are {n}",
                              layer=LAYER, field="frame_length", offset=n)
        buf = bytes(buf)
        corrections = 0
        fecf = FECF_SIZE if config.has_fecf else 0
        if fecf and crc16_ccitt(buf):
            fixed = None
            if config.has_fhec and config.fhec_correction and n >= PRIMARY_HEADER_SIZE + 2:
                try:
                    fixed, corrections = _correct_header(buf)
                except UncorrectableError:
                    fixed = None
            if fixed is None or not corrections or crc16_ccitt(fixed):
                check_fecf(buf, layer=LAYER, size=FECF_SIZE)  # raises ChecksumError
            buf = fixed  # type: ignore[assignment]
        elif config.has_fhec:
            if n < PRIMARY_HEADER_SIZE + FHEC_SIZE:
                raise TruncatedError("no room for the FHEC", layer=LAYER,
                                     field="frame_header_error_control", offset=6)
            if fecf or not config.fhec_correction:
                # Header intact per the FECF (or correction off): the FHEC must check.
                # Systematic code: the syndrome is zero iff the parity recomputes.
                if fhec_parity((buf[0] << 8) | buf[1], buf[5]) != (buf[6] << 8) | buf[7]:
                    raise UncorrectableError(
                        "FHEC does not match the header" + (
                            " although the FECF does" if fecf else ""),
                        layer=LAYER, field="frame_header_error_control", offset=6,
                    )
            else:
                buf, corrections = _correct_header(buf)
        scid, vcid, vcfc, replay, usage, cycle = HEADER.unpack(buf)
        pos = PRIMARY_HEADER_SIZE + (FHEC_SIZE if config.has_fhec else 0)
        iz_end = pos + config.insert_zone_length
        insert_zone = buf[pos:iz_end]
        pos = iz_end
        end = n - fecf
        ocf: bytes | None = None
        if config.has_ocf(vcid):
            end -= OCF_SIZE
            ocf = buf[end:end + OCF_SIZE]
        unit = config.data_unit(vcid)
        fhp: int | None = None
        bdp: int | None = None
        if unit in (AosDataUnit.M_PDU, AosDataUnit.B_PDU):
            if end - pos < DATA_UNIT_HEADER_SIZE:
                raise TruncatedError(f"no room for the {unit.value} header", layer=LAYER,
                                     field="data_field", offset=pos)
            if unit is AosDataUnit.M_PDU:
                (fhp,) = M_PDU.unpack(buf, pos)
                zone = end - pos - DATA_UNIT_HEADER_SIZE
                if fhp < FHP_IDLE_DATA and fhp >= zone:
                    raise DecodeError(f"{fhp} points beyond the {zone}-octet packet zone",
                                      layer=LAYER, field="first_header_pointer", offset=pos)
            else:
                (bdp,) = B_PDU.unpack(buf, pos)
                bits = 8 * (end - pos - DATA_UNIT_HEADER_SIZE)
                if bdp < BDP_ALL_FILL and bdp >= bits:
                    raise DecodeError(f"{bdp} points beyond the {bits}-bit data",
                                      layer=LAYER, field="bitstream_data_pointer", offset=pos)
            pos += DATA_UNIT_HEADER_SIZE
        if end < pos:
            raise DecodeError("insert zone and trailer leave no data field", layer=LAYER,
                              field="frame_length", offset=0)
        return cls(scid, vcid, vcfc, buf[pos:end], fhp, bdp, insert_zone, ocf, bool(replay),
                   bool(usage), cycle, corrections)


def aos_header_fields(buf: bytes, offset: int = 0) -> tuple[int, ...]:
    """Fast unpack of the 6-octet primary header: ``(scid, vcid, vc_frame_count,
    replay_flag, vc_frame_count_usage_flag, vc_frame_count_cycle)``."""
    return HEADER.unpack(buf, offset)


def _check_pointer(value: int, limit: int, name: str, specials: tuple[int, ...],
                   unit: int) -> None:
    if value not in specials and not 0 <= value < limit:
        raise EncodeError(
            f"{value} is neither a special value nor inside the data "
            f"({limit // unit} octets)",
            layer=LAYER, field=name,
        )
