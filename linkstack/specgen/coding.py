"""Spec pages of the synchronization and channel coding sublayer: CLTU/BCH and TM coding.

The codecs have no construct declaration (their framing is a few fixed sequences around
codeblocks), so their layouts are built here from the codec modules' own constants
(:data:`linkstack.codecs.cltu.START_SEQUENCE`, :data:`linkstack.codecs.asm.ASM`, ...); the
tables of sizes are computed by :class:`~linkstack.codecs.chain.CodingChain`.
"""

from __future__ import annotations

from linkstack.codecs import asm, bch, cltu, rs
from linkstack.codecs.chain import CodingChain, FrameDecoded
from linkstack.codecs.randomizer import TC_RANDOMIZER, TM_RANDOMIZER, Randomizer
from linkstack.frames import tc, tm
from linkstack.specgen.frames import TM_HEADER, check, fecf_row, octets_row, zone_rows
from linkstack.specgen.render import (
    Example,
    FieldDoc,
    FieldInfo,
    HeaderSpec,
    Page,
    Row,
    Span,
    header_rows,
    md_table,
)

__all__ = ["CLTU_PAGE", "TM_CODING_PAGE", "polynomial"]

_CODEC_NOTE = ("Decoded part by part with linkstack's decoders (the codecs have no construct "
               "declaration: each codeblock is checked by the real decoder).")
TC_CODING_BOOK = "CCSDS 231.0-B-3 (TC Synchronization and Channel Coding)"
TM_CODING_BOOK = "CCSDS 131.0-B-3 (TM Synchronization and Channel Coding)"


def polynomial(exponents: list[int] | tuple[int, ...]) -> str:
    """``x^8 + x^7 + x^2 + x + 1`` from the exponents."""
    terms = []
    for e in sorted(exponents, reverse=True):
        terms.append("1" if e == 0 else "x" if e == 1 else f"x^{e}")
    return " + ".join(terms)


def _bits_set(value: int) -> list[int]:
    return [i for i in range(value.bit_length()) if value >> i & 1]


# ---------------------------------------------------------------------------------------------
# CLTU and BCH (231.0-B-3)
# ---------------------------------------------------------------------------------------------

_START_BITS = 8 * len(cltu.START_SEQUENCE)
_TAIL_BITS = 8 * len(cltu.TAIL_SEQUENCE)
_INFO_BITS = 8 * bch.INFO_OCTETS
_PARITY_BITS = bch.CODE_BITS - _INFO_BITS
_FILLER_BITS = 8 * bch.CODEBLOCK_OCTETS - bch.CODE_BITS

CLTU_LAYOUT = HeaderSpec(
    key="cltu.cltu",
    title="Communications Link Transmission Unit (CLTU)",
    declared_in="linkstack.codecs.cltu (START_SEQUENCE, TAIL_SEQUENCE)",
    explicit_fields=(
        FieldInfo("start_sequence", _START_BITS, 0,
                  int.from_bytes(cltu.START_SEQUENCE, "big")),
        FieldInfo("codeblocks", None, _START_BITS),
        FieldInfo("tail_sequence", _TAIL_BITS, None,
                  int.from_bytes(cltu.TAIL_SEQUENCE, "big")),
    ),
    variable_text={"codeblocks": "BCH codeblocks: ⌈frame octets / 7⌉ × 8 octets"},
    docs={
        "start_sequence": FieldDoc(
            "Start Sequence", "Marks the start of a CLTU; the receiver searches the bit "
            "stream for it at any bit offset.", f"{cltu.START_SEQUENCE.hex().upper()}", "§4",
            "Start Sequence"),
        "codeblocks": FieldDoc(
            "Encoded data (BCH codeblocks)", "One transfer frame (randomized if the "
            "randomizer is on), 7 octets per codeblock, the last one filled with "
            f"0x{bch.FILL_OCTET:02X} octets.", "1..147 codeblocks (a frame of up to 1024 "
            "octets)", "§3, §4", "Codeblocks"),
        "tail_sequence": FieldDoc(
            "Tail Sequence", "A codeblock-sized pattern that the BCH decoder always rejects: "
            "it ends the CLTU.", f"{cltu.TAIL_SEQUENCE.hex().upper()}", "§4", "Tail Sequence"),
    },
)

BCH_LAYOUT = HeaderSpec(
    key="bch.codeblock",
    title="BCH(63,56) codeblock",
    declared_in="linkstack.codecs.bch (INFO_OCTETS, CODE_BITS, CODEBLOCK_OCTETS)",
    explicit_fields=(
        FieldInfo("information", _INFO_BITS, 0),
        FieldInfo("parity", _PARITY_BITS, _INFO_BITS),
        FieldInfo("filler", _FILLER_BITS, _INFO_BITS + _PARITY_BITS, 0),
    ),
    docs={
        "information": FieldDoc(
            "Information bits", "Seven octets of the (randomized) transfer frame, or fill.",
            "any", "§3", "Information (56 bits)"),
        "parity": FieldDoc(
            "Parity bits", "Remainder of i(x)·x^7 divided by g(x) = "
            f"{polynomial(_bits_set(bch.GENERATOR))}, complemented.", "computed", "§3",
            "Parity"),
        "filler": FieldDoc("Filler bit", "Outside the code; keeps the codeblock a whole "
                           "number of octets.", "0", "§3", "F"),
    },
)

_CLTU_FRAME_CODE = """
from linkstack.codecs.cltu import encode_cltu
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.spp.packet import PacketType, SpacePacket

packet = SpacePacket(apid=0x42, sequence_count=5, data=bytes([1, 2, 3, 4]),
                     packet_type=PacketType.TC).encode()
config = TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({1}))
frame = TcFrame(scid=0x2A, vcid=1, frame_sequence_number=7, data_field=packet,
                map_id=0).encode(config)
octets = encode_cltu(frame)
"""


def _cltu_spans(octets: bytes) -> list[Span]:
    spans = [Span(0, 2, "start sequence")]
    body_end = len(octets) - len(cltu.TAIL_SEQUENCE)
    for k, at in enumerate(range(2, body_end, bch.CODEBLOCK_OCTETS), start=1):
        spans.append(Span(at, at + bch.INFO_OCTETS, f"codeblock {k}: information"))
        spans.append(Span(at + bch.INFO_OCTETS, at + bch.CODEBLOCK_OCTETS,
                          f"codeblock {k}: parity + filler"))
    spans.append(Span(body_end, len(octets), "tail sequence"))
    return spans


def _cltu_rows(octets: bytes, randomized: bool) -> tuple[list[Row], bytes]:
    check(octets[:2] == cltu.START_SEQUENCE, "start sequence")
    rows: list[Row] = [octets_row("CLTU", "Start Sequence", octets, 0, 2, "start of a CLTU")]
    result = cltu.decode_cltu(octets, derandomize=randomized)
    check(result.complete and result.rejected == 0 and result.corrected == 0, "clean CLTU")
    frame_length = tc.tc_frame_length(result.frame_data)
    body_end = len(octets) - len(cltu.TAIL_SEQUENCE)
    for k, at in enumerate(range(2, body_end, bch.CODEBLOCK_OCTETS), start=1):
        block = octets[at:at + bch.CODEBLOCK_OCTETS]
        info, corrected = bch.decode_codeblock(block)
        check(not corrected and info == block[:bch.INFO_OCTETS], "no error in the example")
        first = (k - 1) * bch.INFO_OCTETS
        used = max(0, min(bch.INFO_OCTETS, frame_length - first))
        if used == 1:
            what = f"frame octet {first}"
        elif used:
            what = f"frame octets {first}–{first + used - 1}"
        else:
            what = "no frame octet"
        if randomized and used:
            what += " (randomized)"
        if used < bch.INFO_OCTETS:
            what += f", {bch.INFO_OCTETS - used} fill octets 0x{bch.FILL_OCTET:02X}"
        rows.append(octets_row(f"codeblock {k}", "information", octets, at,
                               at + bch.INFO_OCTETS, what))
        p = block[-1]
        rows.append((f"codeblock {k}", "parity + filler", f"octet {at + 7}",
                     format(p, "08b"), "parity checks: codeblock accepted"))
    rows.append(octets_row("CLTU", "Tail Sequence", octets, body_end, len(octets),
                           "rejected by the BCH decoder: end of the CLTU"))
    return rows, result.frame_data[:frame_length]


def _cltu_decode(octets: bytes) -> list[Row]:
    rows, frame_octets = _cltu_rows(octets, randomized=False)
    frame = tc.TcFrame.decode(frame_octets, tc.TcChannelConfig(
        has_fecf=True, segmented_vcids=frozenset({1})))
    rows.append(("TC frame", "recovered frame", f"{len(frame_octets)} octets",
                 frame_octets[:12].hex(" ") + " …",
                 f"AD frame, SCID {frame.scid}, VC {frame.vcid}, N(S) {frame.ns}: FECF checks"))
    return rows


CLTU_EXAMPLE = Example(
    key="cltu.ad_frame",
    title="the CLTU of an 18-octet TC frame",
    intro="The Type-AD frame of the TC page (18 octets) needs ⌈18/7⌉ = 3 codeblocks; the last "
          "one carries 4 frame octets and 3 fill octets. No randomizer.",
    code=_CLTU_FRAME_CODE,
    spans=_cltu_spans,
    decode=_cltu_decode,
    note=_CODEC_NOTE,
)


def _cltu_rand_decode(octets: bytes) -> list[Row]:
    rows, frame_octets = _cltu_rows(octets, randomized=True)
    frame = tc.TcFrame.decode(frame_octets, tc.TcChannelConfig(has_fecf=True))
    check(frame.frame_type is tc.TcFrameType.BC, "BC frame")
    cmd = tc.parse_control_command(frame.data_field)
    rows.append(("TC frame", "recovered frame (de-randomized)", f"{len(frame_octets)} octets",
                 frame_octets.hex(" "),
                 f"BC frame {cmd.command.name}, SCID {frame.scid}, VC {frame.vcid}: FECF checks"))
    return rows


CLTU_RAND_EXAMPLE = Example(
    key="cltu.randomized_unlock",
    title="a randomized CLTU carrying the Unlock command",
    intro="With the TC randomizer the frame is XORed with the pseudo-random sequence before "
          "BCH encoding; the fill octets of the last codeblock are added after it, so they "
          "are not randomized.",
    code="""
from linkstack.codecs.cltu import encode_cltu
from linkstack.frames.tc import TcChannelConfig, bc_frame, unlock_command

frame = bc_frame(scid=0x2A, vcid=1, command=unlock_command()).encode(TcChannelConfig())
octets = encode_cltu(frame, randomize=True)
""",
    spans=_cltu_spans,
    decode=_cltu_rand_decode,
    note=_CODEC_NOTE,
)


def _randomizer_line(r: Randomizer) -> str:
    return (f"h(x) = {polynomial(r.exponents)}, register all ones at the start of every "
            f"{'transfer frame' if r.name == 'tc' else 'codeblock'}; first octets "
            f"`{bytes(r.sequence(10 if r.name == 'tc' else 16)).hex(' ')}`")


def _cltu_sizes() -> str:
    rows = []
    for n in (8, 18, 100, 1024):
        total = cltu.cltu_length(n)
        rows.append((str(n), str(-(-n // bch.INFO_OCTETS)), str(total), str(total - n),
                     f"{n / total:.3f}"))
    return "\n".join([
        "CLTU sizes (`linkstack.codecs.cltu.cltu_length`):", "",
        md_table(("TC frame octets", "codeblocks", "CLTU octets", "overhead octets",
                  "frame / CLTU"), rows),
    ])


CLTU_PAGE = Page(
    filename="cltu-bch.md",
    title="CLTU and BCH coding (CCSDS 231.0-B-3)",
    summary="how a TC frame goes on the uplink: randomizer, BCH(63,56) codeblocks, start and "
            "tail sequences",
    book=TC_CODING_BOOK,
    parts=(
        f"""
## Purpose and place in the stack

Below the TC frame, the TC Synchronization and Channel Coding sublayer makes the frame
survive and be found in the uplink bit stream:

```text
  TC Transfer Frame (tc.md)
  randomizer (optional): frame XOR pseudo-random sequence
  BCH(63,56): 7 octets of frame -> one 8-octet codeblock
  CLTU = start sequence EB90 + codeblocks + tail sequence   <-- this page
  RF uplink (the physical layer adds acquisition and idle sequences; not modelled)
```

- **BCH(63,56)** protects each 7 octets with 7 parity bits (a filler bit makes 8 octets).
  The code has minimum distance 4: the decoder either corrects one bit error per codeblock
  (`BchMode.CORRECT`) or only detects up to three (`BchMode.DETECT`).
- **The start sequence** (16 bits) is what the receiver looks for; the **tail sequence** is a
  codeblock that can never decode, so the first rejected codeblock ends the CLTU. The receiver
  then hands the information octets to the TC frame layer, which finds the frame's end from its
  Frame Length field (the fill after it is ignored).
- **The randomizer** ({_randomizer_line(TC_RANDOMIZER)}) guarantees enough bit transitions
  for the receiver's bit synchronizer whatever the frame contains.
""",
        "## Layouts",
        CLTU_LAYOUT,
        BCH_LAYOUT,
        _cltu_sizes,
        "## Worked examples",
        CLTU_EXAMPLE,
        CLTU_RAND_EXAMPLE,
        """
## In the code

- `linkstack.codecs.bch`: `encode`, `encode_codeblock`, `decode_codeblock`, `decode_array`
  (numpy batches), `BchMode`.
- `linkstack.codecs.cltu`: `encode_cltu`, `decode_cltu`, `CltuDecoder` (bit-stream search at
  any bit offset, inverted streams, partial CLTUs reported, never hidden).
- `linkstack.codecs.randomizer`: `TC_RANDOMIZER`.
- `linkstack.codecs.chain`: chains `tc-bch`, `tc-bch-rand`, `tc-bch-detect`.
""",
    ),
)


# ---------------------------------------------------------------------------------------------
# TM synchronization and channel coding (131.0-B-3)
# ---------------------------------------------------------------------------------------------

CADU_LAYOUT = HeaderSpec(
    key="tm_coding.cadu",
    title="Channel Access Data Unit (CADU)",
    declared_in="linkstack.codecs.asm (ASM) and linkstack.codecs.chain",
    explicit_fields=(
        FieldInfo("asm", 8 * asm.ASM_OCTETS, 0, asm.ASM),
        FieldInfo("codeblock", None, 8 * asm.ASM_OCTETS),
    ),
    variable_text={"codeblock": "codeblock: frame + RS check symbols, randomized"},
    docs={
        "asm": FieldDoc("Attached Sync Marker", "Marks the start of every codeblock; the "
                        "receiver searches, checks and locks on it. Not randomized.",
                        f"{asm.ASM:08X}", "§8", "Attached Sync Marker (ASM)"),
        "codeblock": FieldDoc(
            "Codeblock", "The transfer frame followed by I·2E Reed-Solomon check symbols "
            "(I·(255−Q) octets), XORed with the pseudo-random sequence.", "fixed per channel",
            "§4, §9", "Codeblock"),
    },
)

RS_LAYOUT = HeaderSpec(
    key="tm_coding.rs_codeblock",
    title="Reed-Solomon codeblock",
    declared_in="linkstack.codecs.rs.ReedSolomon",
    explicit_fields=(FieldInfo("transfer_frame", None, 0), FieldInfo("check_symbols", None, None)),
    variable_text={"transfer_frame": "transfer frame: I·(k − Q) octets",
                   "check_symbols": "check symbols: I·2E octets (interleaved)"},
    docs={
        "transfer_frame": FieldDoc(
            "Transfer frame (information symbols)", "The TM/AOS/USLP frame; octet n belongs to "
            "codeword n mod I.", "k = 223 (E = 16) or 239 (E = 8)", "§4.3", "Frame"),
        "check_symbols": FieldDoc(
            "Check symbols", "2E parity symbols per codeword, interleaved the same way.",
            "computed", "§4.3", "Check symbols"),
    },
)


def _chain_table() -> str:
    rows = []
    names = ("tm-rs-255-223-i1", "tm-rs-255-223-i4", "tm-rs-255-223-i5", "tm-rs-255-223-i8",
             "tm-rs-255-239-i1", "tm-rs-255-223-i5-q10")
    for name in names:
        chain = CodingChain.from_name(name)
        code = chain.rs
        assert code is not None and chain.frame_length is not None
        assert chain.cadu_length is not None
        rows.append((f"`{chain.name}`", str(code.e), str(code.interleave),
                     str(code.virtual_fill), str(chain.frame_length),
                     str(code.codeblock_length), str(chain.cadu_length),
                     f"{chain.frame_length / chain.cadu_length:.3f}",
                     f"{code.e} per codeword, a burst of {code.e * code.interleave} octets"))
    return "\n".join([
        "Sizes of common chains (computed by `CodingChain.from_name`; the default scenario's "
        "downlink and ISLs use `tm-rs-255-223-i5`):", "",
        md_table(("chain", "E", "I", "Q", "frame octets", "codeblock octets", "CADU octets",
                  "frame / CADU", "corrects"), rows),
    ])


def _rs_facts() -> str:
    g = rs.generator_polynomial(16)
    return "\n".join([
        "Code facts (from `linkstack.codecs.rs` and `linkstack.codecs.gf256`):",
        "",
        "- symbols are octets of GF(2^8) with field polynomial F(x) = "
        f"{polynomial([8, 7, 2, 1, 0])};",
        f"- g(x) = ∏ (x − α^({rs.ROOT_STEP}·j)) for j = 128 − E … 127 + E: first root "
        f"j = {rs.FIRST_ROOT[16]} for E = 16, {rs.FIRST_ROOT[8]} for E = 8; the E = 16 "
        f"generator's coefficients begin {', '.join(str(x) for x in g[:8])} …;",
        "- on the wire symbols are in Berlekamp's dual basis (a managed parameter can select the "
        "conventional basis: chain part `conv`);",
        f"- interleaving depths {', '.join(str(i) for i in rs.INTERLEAVE_DEPTHS)}; virtual "
        "fill Q shortens every codeword by Q implicit zero symbols that are not sent.",
    ])


def _interleave_table() -> str:
    depth = 5
    rows = [(str(n), str(n % depth), str(n // depth)) for n in range(12)]
    return "\n".join([
        f"Interleaving, I = {depth}: octet n of the codeblock is symbol n div I of codeword "
        "n mod I, so a burst of up to I·E consecutive damaged octets costs each codeword at "
        "most E symbols:", "",
        md_table(("codeblock octet n", "codeword", "symbol in codeword"), rows),
    ])


_CADU_CODE = """
from linkstack.codecs.chain import CodingChain
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.spp.packet import SpacePacket, idle_packet

chain = CodingChain.from_name("tm-rs-255-223-i1-q200")  # 23-octet frames
config = TmChannelConfig(frame_length=chain.frame_length, has_fecf=True)
packet = SpacePacket(apid=0x101, sequence_count=4, data=b"42").encode()
zone = packet + idle_packet(config.data_field_capacity() - len(packet))
frame = TmFrame(scid=0x2A, vcid=0, first_header_pointer=0, data_field=zone).encode(config)
octets = chain.encode_frame(frame)
"""
_CADU_CHAIN = "tm-rs-255-223-i1-q200"


def _cadu_spans(octets: bytes) -> list[Span]:
    chain = CodingChain.from_name(_CADU_CHAIN)
    assert chain.frame_length is not None
    end = asm.ASM_OCTETS + chain.frame_length
    return [Span(0, 4, "ASM"), Span(4, end, "codeblock: transfer frame (randomized)"),
            Span(end, len(octets), "codeblock: RS check symbols (randomized)")]


def _cadu_common(octets: bytes) -> tuple[list[Row], FrameDecoded, bytes]:
    chain = CodingChain.from_name(_CADU_CHAIN)
    assert chain.rs is not None and chain.frame_length is not None
    check(octets[:4] == asm.ASM_BYTES, "ASM")
    events = chain.decoder().feed(octets)
    decoded = [ev for ev in events if isinstance(ev, FrameDecoded)]
    check(len(decoded) == 1, "one frame decoded from the CADU")
    got = decoded[0]
    codeblock = TM_RANDOMIZER.apply(octets[4:])
    end = 4 + chain.frame_length
    rows: list[Row] = [octets_row("CADU", "Attached Sync Marker", octets, 0, 4,
                                  "found: codeblock starts at octet 4")]
    rows.append(("codeblock", "de-randomized transfer frame", f"octets 4–{end - 1}",
                 codeblock[:12].hex(" ") + " …", "XOR with the TM pseudo-random sequence"))
    rows.append(("codeblock", "de-randomized check symbols", f"octets {end}–{len(octets) - 1}",
                 codeblock[chain.frame_length:][:12].hex(" ") + " …",
                 f"RS(255,223) with {chain.rs.virtual_fill} virtual fill symbols: "
                 f"{got.corrected} symbol(s) corrected"))
    return rows, got, codeblock


def _cadu_decode(octets: bytes) -> list[Row]:
    rows, got, codeblock = _cadu_common(octets)
    check(got.corrected == 0 and codeblock[:len(got.frame)] == got.frame, "clean codeblock")
    config = tm.TmChannelConfig(frame_length=len(got.frame), has_fecf=True)
    frame = tm.TmFrame.decode(got.frame, config)
    f_rows, _ = header_rows(TM_HEADER, got.frame, 0, "TM frame")
    rows += f_rows
    rows += zone_rows(got.frame, 6, frame.data_field, frame.first_header_pointer, "TM frame")
    (_, name, where, raw, value) = fecf_row(got.frame, len(got.frame) - 2)
    rows.append(("TM frame", name, where, raw, value))
    return rows


CADU_EXAMPLE = Example(
    key="tm_coding.cadu",
    title="a CADU carrying a 23-octet TM frame",
    intro="A short code keeps the example small: RS(255,223) shortened by a virtual fill of "
          "Q = 200 symbols carries 23 frame octets and 32 check symbols per codeblock. The "
          "frame (6-octet header, an 8-octet packet and a 7-octet idle packet, FECF) is "
          "encoded, randomized and given its ASM.",
    code=_CADU_CODE,
    spans=_cadu_spans,
    decode=_cadu_decode,
    note=_CODEC_NOTE + " The frame's fields are those of the TM page; their positions count "
                       "from the start of the frame.",
)

_DAMAGED_CODE = _CADU_CODE.replace(
    "octets = chain.encode_frame(frame)\n",
    "cadu = bytearray(chain.encode_frame(frame))\n"
    "for i in (5, 6, 7, 30, 50):  # five damaged octets (up to E = 16 are corrected)\n"
    "    cadu[i] ^= 0xFF\n"
    "octets = bytes(cadu)\n",
)


def _damaged_decode(octets: bytes) -> list[Row]:
    rows, got, _ = _cadu_common(octets)
    chain = CodingChain.from_name(_CADU_CHAIN)
    assert chain.rs is not None
    clean = TM_RANDOMIZER.apply(chain.rs.encode(got.frame))
    fixed = [4 + i for i, (a, b) in enumerate(zip(clean, octets[4:], strict=True)) if a != b]
    check(len(fixed) == got.corrected, "corrected symbols = damaged octets")
    rows.append(("codeblock", "symbols corrected", "octets " + ", ".join(map(str, fixed)), "",
                 f"{len(fixed)} of at most {chain.rs.e}: the frame is delivered intact"))
    config = tm.TmChannelConfig(frame_length=len(got.frame), has_fecf=True)
    frame = tm.TmFrame.decode(got.frame, config)
    rows.append(("TM frame", "recovered frame", f"{len(got.frame)} octets",
                 got.frame[:12].hex(" ") + " …",
                 f"SCID {frame.scid}, VC {frame.vcid}: FECF checks"))
    return rows


DAMAGED_EXAMPLE = Example(
    key="tm_coding.cadu_with_errors",
    title="the same CADU with five damaged octets",
    intro="Five octets of the CADU are inverted on the way (three in the frame, two in the check "
          "symbols); the Reed-Solomon decoder finds and corrects them.",
    code=_DAMAGED_CODE,
    spans=_cadu_spans,
    decode=_damaged_decode,
    note=_CODEC_NOTE,
)

TM_CODING_PAGE = Page(
    filename="tm-coding.md",
    title="TM synchronization and channel coding (CCSDS 131.0-B-3)",
    summary="how fixed-length frames cross a noisy link: Reed-Solomon, interleaving, "
            "randomizer, ASM",
    book=TM_CODING_BOOK,
    parts=(
        f"""
## Purpose and place in the stack

Fixed-length frames (TM, AOS, and USLP on fixed-length channels) cross the downlink and the
inter-satellite links as CADUs:

```text
  TM / AOS / USLP Transfer Frame (tm.md, aos.md, uslp.md)
  Reed-Solomon: frame + check symbols = codeblock (I interleaved codewords)
  pseudo-randomizer: codeblock XOR pseudo-random sequence
  ASM 1ACFFC1D in front = CADU   <-- this page
  RF or optical link
```

- **Reed-Solomon** RS(255,223) (E = 16) or RS(255,239) (E = 8) corrects up to E wrong
  octets per codeword and detects most heavier damage: the receiver then drops the whole
  frame rather than deliver a wrong one. Interleaving I codewords spreads a burst over them.
- **The randomizer** ({_randomizer_line(TM_RANDOMIZER)}) covers the codeblock, not the ASM;
  the receiver de-randomizes *before* Reed-Solomon decoding.
- **The ASM** lets the receiver find codeblock boundaries in the bit stream: it searches
  for the marker at every bit offset, checks that the next one is where the fixed length says,
  then locks, rides over a damaged marker (flywheel) and follows bit slips.
""",
        "## Layouts",
        CADU_LAYOUT,
        RS_LAYOUT,
        _rs_facts,
        _interleave_table,
        _chain_table,
        "## Worked examples",
        CADU_EXAMPLE,
        DAMAGED_EXAMPLE,
        """
## In the code

- `linkstack.codecs.rs`: `ReedSolomon` (vectorized encode/decode, interleaving, virtual fill,
  dual basis), `linkstack.codecs.gf256`.
- `linkstack.codecs.randomizer`: `TM_RANDOMIZER`.
- `linkstack.codecs.asm`: `FrameSynchronizer` (search, check, lock, flywheel, slips, inverted
  streams).
- `linkstack.codecs.chain`: `CodingChain.from_name("tm-rs-255-223-i5")` and its decoder.
""",
    ),
)
