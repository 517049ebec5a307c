"""Spec pages of the packet and transfer-frame layers: Space Packet, TC, TM, AOS, USLP.

The field texts below are data keyed by the construct field names of each declaration; the
generator refuses to build when a declaration gains, loses or renames a field that the dict
does not follow (:meth:`~linkstack.specgen.render.HeaderSpec.check_docs`). Every worked
example is built by running the code printed with it and decoded with the layer's decoder.
"""

from __future__ import annotations

from fractions import Fraction

from linkstack.codecs.crc import crc16_ccitt, crc32_proximity1
from linkstack.frames import aos, clcw, tc, tm, uslp
from linkstack.specgen.render import (
    SPARE,
    Example,
    FieldDoc,
    HeaderSpec,
    Page,
    Row,
    Span,
    SpecBuildError,
    fmt_int,
    header_rows,
)
from linkstack.spp import packet as spp
from linkstack.spp import timecode

__all__ = [
    "AOS_PAGE", "SPP_PAGE", "TC_PAGE", "TM_PAGE", "USLP_PAGE", "check", "fecf_row", "octets_row",
    "zone_rows",
]

SPP_BOOK = "CCSDS 133.0-B-2 (Space Packet Protocol)"
TIME_BOOK = "CCSDS 301.0-B-4 (Time Code Formats)"
TC_BOOK = "CCSDS 232.0-B-4 (TC Space Data Link Protocol)"
TM_BOOK = "CCSDS 132.0-B-3 (TM Space Data Link Protocol)"
AOS_BOOK = "CCSDS 732.0-B-4 (AOS Space Data Link Protocol)"
USLP_BOOK = "CCSDS 732.1-B-2 (Unified Space Data Link Protocol)"

SEQUENCE_FLAG_NAMES = {0: "continuation segment", 1: "first segment", 2: "last segment",
                       3: "unsegmented"}
FLAG = {0: "no", 1: "yes"}


# ---------------------------------------------------------------------------------------------
# Helpers shared by the example decoders
# ---------------------------------------------------------------------------------------------


def check(condition: bool, what: str) -> None:
    """A build-time consistency check between two decodings of an example."""
    if not condition:
        raise SpecBuildError(f"worked example inconsistent: {what}")


def octets_row(part: str, name: str, octets: bytes, start: int, end: int, value: str) -> Row:
    """A row for a run of octets (shown as hex, up to 12 octets, then elided)."""
    chunk = octets[start:end]
    raw = chunk.hex(" ") if len(chunk) <= 12 else chunk[:12].hex(" ") + " …"
    where = f"octet {start}" if end - start == 1 else f"octets {start}–{end - 1}"
    return (part, name, where, raw, value)


def fecf_row(octets: bytes, start: int, *, size: int = 2) -> Row:
    """The FECF row: the CRC over the whole frame including the FECF must leave 0."""
    if size == 2:
        ok = crc16_ccitt(octets[:start + 2]) == 0
        name = "CRC-16/CCITT-FALSE"
    else:
        ok = crc32_proximity1(octets[:start + 4]) == 0
        name = "CRC-32 (Proximity-1)"
    check(ok, "FECF does not check")
    return octets_row("trailer", "Frame Error Control Field", octets, start, start + size,
                      f"{name} over octets 0–{start - 1}: matches")


# ---------------------------------------------------------------------------------------------
# Space Packet (133.0-B-2) and the time codes of its secondary header (301.0-B-4)
# ---------------------------------------------------------------------------------------------

SPP_HEADER = HeaderSpec(
    key="spp.primary_header",
    title="Space Packet Primary Header",
    struct=spp.PRIMARY_HEADER,
    declared_in="linkstack.spp.packet.PRIMARY_HEADER",
    docs={
        "packet_version_number": FieldDoc(
            "Packet Version Number", "Version of the packet format: version 1 is coded 000.",
            "000 only", "§4.1.3.2", "PVN"),
        "packet_type": FieldDoc(
            "Packet Type", "Telemetry (reporting) or telecommand (requesting) packet.",
            "0 = TM, 1 = TC", "§4.1.3.3.2", "T", {0: "telemetry", 1: "telecommand"}),
        "secondary_header_flag": FieldDoc(
            "Secondary Header Flag", "A Packet Secondary Header starts the data field.",
            "0 = absent, 1 = present (then the data field must hold it)", "§4.1.3.3.3",
            "S", FLAG),
        "apid": FieldDoc(
            "Application Process Identifier", "Names the application process the packet "
            "belongs to; the key for routing and for sequence counting.",
            "0..2047; 2047 (0x7FF) = idle packet", "§4.1.3.3.4", "APID",
            {spp.IDLE_APID: "idle packet"}),
        "sequence_flags": FieldDoc(
            "Sequence Flags", "Whether the packet carries a whole user data unit or a "
            "segment of one.", "00 continuation, 01 first, 10 last, 11 unsegmented",
            "§4.1.3.4.2", "SF", SEQUENCE_FLAG_NAMES),
        "packet_sequence_count": FieldDoc(
            "Packet Sequence Count or Packet Name", "Counts the packets of each APID, modulo "
            "16384, so the receiver can detect loss and reorder segments.", "0..16383, wraps "
            "to 0", "§4.1.3.4.3", "Sequence Count"),
        "packet_data_length": FieldDoc(
            "Packet Data Length", "Number of octets in the Packet Data Field minus 1.",
            "0..65535 (data field of 1..65536 octets)", "§4.1.3.5", "Data Length"),
    },
)

CUC_P_SPEC = HeaderSpec(
    key="time.cuc_p_field",
    title="CUC P-field, octet 1",
    struct=timecode.CUC_P_FIELD,
    declared_in="linkstack.spp.timecode.CUC_P_FIELD",
    docs={
        "extension_flag": FieldDoc(
            "Extension flag", "A second P-field octet follows.", "0 or 1", "§3.2.2", "E", FLAG),
        "time_code_id": FieldDoc(
            "Time code identification", "Which code and which epoch.",
            "001 CUC, epoch 1958-01-01 TAI; 010 CUC, agency-defined epoch", "§3.2.2", "ID",
            {1: "CUC, 1958 epoch", 2: "CUC, agency epoch"}),
        "coarse_time_octets_minus_1": FieldDoc(
            "Number of octets of coarse time, minus 1", "Length of the seconds counter.",
            "0..3 (1..4 octets)", "§3.2.2", "C"),
        "fine_time_octets": FieldDoc(
            "Number of octets of fine time", "Length of the binary fraction of a second.",
            "0..3", "§3.2.2", "F"),
    },
)

CUC_P2_SPEC = HeaderSpec(
    key="time.cuc_p_field_extension",
    title="CUC P-field, extension octet",
    struct=timecode.CUC_P_FIELD_EXTENSION,
    declared_in="linkstack.spp.timecode.CUC_P_FIELD_EXTENSION",
    docs={
        "extension_flag": FieldDoc(
            "Extension flag", "A further P-field octet follows (not defined: always 0 here).",
            "0", "§3.2.2", "E", FLAG),
        "additional_coarse_time_octets": FieldDoc(
            "Additional octets of coarse time", "Added to the coarse length of octet 1.",
            "0..3 (up to 7 octets in all)", "§3.2.2", "AC"),
        "additional_fine_time_octets": FieldDoc(
            "Additional octets of fine time", "Added to the fine length of octet 1.",
            "0..7 (up to 10 octets in all)", "§3.2.2", "AF"),
        SPARE: FieldDoc("Reserved", "Reserved for future use.", "written 0, ignored",
                        "§3.2.2", "R"),
    },
)

CDS_P_SPEC = HeaderSpec(
    key="time.cds_p_field",
    title="CDS P-field",
    struct=timecode.CDS_P_FIELD,
    declared_in="linkstack.spp.timecode.CDS_P_FIELD",
    docs={
        "extension_flag": FieldDoc("Extension flag", "No extension octet for CDS.", "0",
                                   "§3.3.2", "E"),
        "time_code_id": FieldDoc("Time code identification", "Identifies CDS.", "100",
                                 "§3.3.2", "ID", {4: "CDS"}),
        "epoch_id": FieldDoc("Epoch identification", "Which epoch the day count starts at.",
                             "0 = 1958-01-01, 1 = agency-defined", "§3.3.2", "Ep"),
        "day_segment_length": FieldDoc("Length of day segment", "Size of the day counter.",
                                       "0 = 16 bits, 1 = 24 bits", "§3.3.2", "D"),
        "submillisecond_resolution": FieldDoc(
            "Length of submillisecond segment", "Resolution below the millisecond.",
            "00 none, 01 microseconds (16 bits), 10 picoseconds (32 bits)", "§3.3.2", "Sub"),
    },
)


def _spp_spans(octets: bytes) -> list[Span]:
    return [Span(0, 6, "primary header"), Span(6, len(octets), "packet data field")]


def _spp_decode(octets: bytes) -> list[Row]:
    rows, v = header_rows(SPP_HEADER, octets, 0, "primary header")
    pkt = spp.SpacePacket.decode(octets)
    check((pkt.apid, pkt.sequence_count, int(pkt.packet_type), int(pkt.sequence_flags))
          == (v["apid"], v["packet_sequence_count"], v["packet_type"], v["sequence_flags"]),
          "SpacePacket.decode disagrees with the header fields")
    check(len(pkt.data) == v["packet_data_length"] + 1, "data length")
    rows.append(octets_row("packet data field", "user data", octets, 6, len(octets),
                           f"{len(pkt.data)} octets = Packet Data Length + 1"))
    return rows


SPP_EXAMPLE = Example(
    key="spp.tc_packet",
    title="a telecommand packet (the spacepackets interoperability vector)",
    intro="APID 0x42, sequence count 5, unsegmented, four octets of user data. The same octets "
          "are produced by the independent `spacepackets` library "
          "([sources.md](sources.md) §1.15).",
    code="""
from linkstack.spp.packet import PacketType, SpacePacket

packet = SpacePacket(apid=0x42, sequence_count=5, data=bytes([1, 2, 3, 4]),
                     packet_type=PacketType.TC)
octets = packet.encode()
""",
    spans=_spp_spans,
    decode=_spp_decode,
)

_CUC_FORMAT = timecode.CucFormat(coarse_octets=4, fine_octets=2)


def _spp_time_spans(octets: bytes) -> list[Span]:
    size = _CUC_FORMAT.size
    return [Span(0, 6, "primary header"), Span(6, 7, "secondary header: CUC P-field"),
            Span(7, 6 + size, "secondary header: CUC T-field (4 + 2 octets)"),
            Span(6 + size, len(octets), "user data")]


def _spp_time_decode(octets: bytes) -> list[Row]:
    from linkstack.spp.secondary import SecondaryHeaderFormat

    rows, v = header_rows(SPP_HEADER, octets, 0, "primary header")
    check(v["secondary_header_flag"] == 1, "secondary header flag")
    p_rows, p = header_rows(CUC_P_SPEC, octets, 6, "CUC P-field")
    rows += p_rows
    coarse_n = p["coarse_time_octets_minus_1"] + 1
    fine_n = p["fine_time_octets"]
    fmt = SecondaryHeaderFormat(_CUC_FORMAT)
    header, user = fmt.split(spp.SpacePacket.decode(octets))
    coarse, fine = _CUC_FORMAT.decode_fields(octets, 6)
    check(header.time == coarse + Fraction(fine, 1 << (8 * fine_n)), "CUC time")
    t0 = 7
    rows.append(octets_row("CUC T-field", "coarse time", octets, t0, t0 + coarse_n,
                           f"{coarse} s since 1958-01-01 TAI"))
    rows.append(octets_row("CUC T-field", "fine time", octets, t0 + coarse_n,
                           t0 + coarse_n + fine_n, f"{fine}/{1 << (8 * fine_n)} s"))
    start = t0 + coarse_n + fine_n
    rows.append(octets_row("user data", "user data", octets, start, len(octets),
                           repr(bytes(user))))
    return rows


SPP_TIME_EXAMPLE = Example(
    key="spp.tm_packet_with_cuc_time",
    title="a telemetry packet with a CUC time code in its secondary header",
    intro="The mission layout of the secondary header (`SecondaryHeaderFormat`) is a CUC time "
          "code with an explicit P-field, 4 octets of seconds and 2 octets of fraction "
          "(CCSDS 301.0-B-4 §3.2); the time is 2 000 000 000.75 s after the 1958 epoch.",
    code="""
from fractions import Fraction

from linkstack.spp.secondary import SecondaryHeaderFormat
from linkstack.spp.timecode import CucFormat

layout = SecondaryHeaderFormat(CucFormat(coarse_octets=4, fine_octets=2))
packet = layout.build(apid=0x101, sequence_count=9, time=Fraction(8000000003, 4),
                      user_data=b"hello")
octets = packet.encode()
""",
    spans=_spp_time_spans,
    decode=_spp_time_decode,
)

SPP_PAGE = Page(
    filename="space-packet.md",
    title="Space Packets (CCSDS 133.0-B-2)",
    summary="the unit of application data: APID, sequence count, length; time-coded "
            "secondary headers",
    book=SPP_BOOK,
    parts=(
        """
## Purpose and place in the stack

A Space Packet carries one unit of application data — here, one prompt or one result of the
AI payload, or a segment of one — from a source application to its destination, across as many
links as needed. The packet is the *network* unit: transfer frames (TC, TM, AOS, USLP) carry
packets over one link each, and relays forward packets by their APID without opening them.

```text
  application  (Prompt / Result messages, payload.md)
  Space Packet <-- this page: APID, sequence count, length
  transfer frame (TC, TM, AOS or USLP), one per link hop
  channel coding (CLTU/BCH uplink, ASM + Reed-Solomon downlink and ISL)
```

Three ideas to take away:

- **APID routes.** The 11-bit Application Process Identifier names the application; the
  receiver demultiplexes on it. APID 2047 is reserved for *idle packets*, filler that the
  receiver throws away (linkstack uses them to fill the end of a TM/AOS packet zone).
- **The sequence count detects loss.** It counts packets per APID modulo 16384; a jump tells
  the receiver packets were lost (linkstack's reassembler reports the gap by name, it never
  hides it).
- **The length field is length − 1.** A data field is 1 to 65536 octets, so the field stores
  the length minus one, and the shortest packet is 7 octets.

Segmentation: a message longer than one packet is cut into several packets with the Sequence
Flags first (01), continuation (00)… and last (10), consecutive sequence counts and the same
APID (`linkstack.spp.segmentation`); an unsegmented packet has flags 11.
""",
        "## Headers",
        SPP_HEADER,
        """
The Packet Secondary Header (when the Secondary Header Flag is 1) is laid out by the mission:
linkstack's `SecondaryHeaderFormat` puts a CCSDS time code (CUC or CDS, 301.0-B-4) first,
then optional ancillary data. A time code starts with a P-field (preamble) that says which
code it is and how long its T-field (the time itself) is; the P-field may be left out when
both ends agree on the format.
""",
        CUC_P_SPEC,
        CUC_P2_SPEC,
        CDS_P_SPEC,
        "## Worked examples",
        SPP_EXAMPLE,
        SPP_TIME_EXAMPLE,
        """
## In the code

- `linkstack.spp.packet`: `SpacePacket`, `PRIMARY_HEADER`, `packet_length`, `idle_packet`.
- `linkstack.spp.segmentation`: `Segmenter` and `Reassembler` (sequence flags, gaps,
  duplicates reported as events).
- `linkstack.spp.stream`: `PacketStreamParser`, packets out of a byte stream, resynchronising
  after garbage.
- `linkstack.spp.secondary`, `linkstack.spp.timecode`: secondary headers and CUC/CDS time codes.
""",
    ),
)


# ---------------------------------------------------------------------------------------------
# TC Transfer Frame (232.0-B-4)
# ---------------------------------------------------------------------------------------------

TC_HEADER = HeaderSpec(
    key="tc.primary_header",
    title="TC Transfer Frame Primary Header",
    struct=tc.PRIMARY_HEADER,
    declared_in="linkstack.frames.tc.PRIMARY_HEADER",
    docs={
        "transfer_frame_version_number": FieldDoc(
            "Transfer Frame Version Number", "Version 1 of the TC frame is coded 00.", "00",
            "§4.1.2.2", "Ver"),
        "bypass_flag": FieldDoc(
            "Bypass Flag", "0: Type-A frame, checked by FARM-1 (sequence control); 1: Type-B "
            "frame, accepted without the sequence check.", "0 or 1", "§4.1.2.3", "B",
            {0: "Type-A (sequence-controlled)", 1: "Type-B (expedited)"}),
        "control_command_flag": FieldDoc(
            "Control Command Flag", "0: the data field carries user data (D); 1: it carries "
            "a COP-1 control command (C). With the Bypass Flag: AD 00, BD 10, BC 11; 01 is "
            "invalid.", "0 or 1 (bypass 0 with control 1 is refused)", "§4.1.2.4", "C",
            {0: "data", 1: "control command"}),
        SPARE: FieldDoc("Reserved Spare", "Reserved by CCSDS.", "00", "§4.1.2.5", "Sp"),
        "scid": FieldDoc(
            "Spacecraft Identifier", "The spacecraft the frame is for (assigned by SANA).",
            "0..1023", "§4.1.2.6", "SCID"),
        "vcid": FieldDoc(
            "Virtual Channel Identifier", "The virtual channel; each VC has its own FARM-1 "
            "and its own sequence numbers.", "0..63", "§4.1.2.7", "VCID"),
        "frame_length": FieldDoc(
            "Frame Length", "Total frame length in octets minus 1 (TC frames vary in length).",
            "4..1023 (frames of 5..1024 octets)", "§4.1.2.8", "Frame Length"),
        "frame_sequence_number": FieldDoc(
            "Frame Sequence Number N(S)", "Sequence number of Type-AD frames, modulo 256, "
            "per VC; FARM-1 compares it with V(R). 0 in BD and BC frames.", "0..255",
            "§4.1.2.9", "N(S)"),
    },
)

TC_SEGMENT = HeaderSpec(
    key="tc.segment_header",
    title="Segment Header",
    struct=tc.SEGMENT_HEADER,
    declared_in="linkstack.frames.tc.SEGMENT_HEADER",
    note="Present on the VCs configured for the MAP service (`TcChannelConfig.segmented_vcids`)"
         ", never in a BC frame.",
    docs={
        "sequence_flags": FieldDoc(
            "Sequence Flags", "Whether the data field holds a whole MAP SDU or a segment.",
            "01 first, 00 continuing, 10 last, 11 no segmentation", "§4.1.3.2.2", "SF",
            SEQUENCE_FLAG_NAMES),
        "map_id": FieldDoc(
            "MAP Identifier", "Multiplexer Access Point: a sub-channel of the VC.", "0..63",
            "§4.1.3.2.3", "MAP ID"),
    },
)

_TC_AD_CODE = """
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.spp.packet import PacketType, SpacePacket

packet = SpacePacket(apid=0x42, sequence_count=5, data=bytes([1, 2, 3, 4]),
                     packet_type=PacketType.TC).encode()
config = TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({1}))
frame = TcFrame(scid=0x2A, vcid=1, frame_sequence_number=7, data_field=packet, map_id=0)
octets = frame.encode(config)
"""
_TC_AD_CONFIG = tc.TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({1}))


def _tc_ad_spans(octets: bytes) -> list[Span]:
    n = len(octets)
    return [Span(0, 5, "primary header"), Span(5, 6, "segment header"),
            Span(6, 12, "data: Space Packet primary header"),
            Span(12, n - 2, "data: Space Packet data field"), Span(n - 2, n, "FECF")]


def _tc_ad_decode(octets: bytes) -> list[Row]:
    frame = tc.TcFrame.decode(octets, _TC_AD_CONFIG)
    rows, v = header_rows(TC_HEADER, octets, 0, "primary header")
    check(v["frame_length"] + 1 == len(octets), "frame length")
    check((frame.scid, frame.vcid, frame.ns, frame.frame_type)
          == (v["scid"], v["vcid"], v["frame_sequence_number"], tc.TcFrameType.AD),
          "TcFrame.decode disagrees with the header fields")
    seg_rows, s = header_rows(TC_SEGMENT, octets, 5, "segment header")
    check((frame.map_id, int(frame.sequence_flags)) == (s["map_id"], s["sequence_flags"]),
          "segment header")
    rows += seg_rows
    pkt_rows, p = header_rows(SPP_HEADER, octets, 6, "Space Packet header")
    rows += pkt_rows
    pkt = spp.SpacePacket.decode(frame.data_field)
    check(pkt.apid == p["apid"], "packet APID")
    rows.append(octets_row("Space Packet data", "user data", octets, 12, len(octets) - 2,
                           f"{len(pkt.data)} octets"))
    rows.append(fecf_row(octets, len(octets) - 2))
    return rows


TC_AD_EXAMPLE = Example(
    key="tc.ad_frame",
    title="a Type-AD frame carrying one Space Packet",
    intro="Spacecraft 42, VC 1 (configured with a Segment Header, MAP 0), N(S) = 7, carrying "
          "the packet of the Space Packet page, with the FECF.",
    code=_TC_AD_CODE,
    spans=_tc_ad_spans,
    decode=_tc_ad_decode,
)

_TC_BC_CONFIG = tc.TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({1}))


def _tc_bc_spans(octets: bytes) -> list[Span]:
    n = len(octets)
    return [Span(0, 5, "primary header"), Span(5, n - 2, "control command"),
            Span(n - 2, n, "FECF")]


def _tc_bc_decode(octets: bytes) -> list[Row]:
    frame = tc.TcFrame.decode(octets, _TC_BC_CONFIG)
    rows, v = header_rows(TC_HEADER, octets, 0, "primary header")
    check(frame.frame_type is tc.TcFrameType.BC and frame.map_id is None
          and (v["bypass_flag"], v["control_command_flag"]) == (1, 1), "BC frame")
    cmd = tc.parse_control_command(frame.data_field)
    check(cmd.command is tc.ControlCommand.SET_VR, "Set V(R)")
    rows.append(octets_row("data field", "control command", octets, 5, len(octets) - 2,
                           f"Set V(R), V*(R) = {cmd.vr}"))
    rows.append(fecf_row(octets, len(octets) - 2))
    return rows


TC_BC_EXAMPLE = Example(
    key="tc.bc_set_vr_frame",
    title="a Type-BC frame: the Set V(R) control command",
    intro="FOP-1 sends this frame for the directive *Initiate AD Service with Set V(R)*: "
          "FARM-1 sets its V(R) to 200. BC frames never carry a Segment Header, even on a VC "
          "that uses one.",
    code="""
from linkstack.frames.tc import TcChannelConfig, bc_frame, set_vr_command

config = TcChannelConfig(has_fecf=True, segmented_vcids=frozenset({1}))
octets = bc_frame(scid=0x2A, vcid=1, command=set_vr_command(200)).encode(config)
""",
    spans=_tc_bc_spans,
    decode=_tc_bc_decode,
)

TC_PAGE = Page(
    filename="tc.md",
    title="TC Transfer Frames (CCSDS 232.0-B-4)",
    summary="the uplink frame: variable length up to 1024 octets, AD/BD/BC types, MAP "
            "segmentation",
    book=TC_BOOK,
    parts=(
        """
## Purpose and place in the stack

The TC (telecommand) Transfer Frame carries Space Packets from the ground station up to the
spacecraft over one link. Frames are variable in length (5 to 1024 octets), addressed by
spacecraft (SCID) and virtual channel (VCID), and protected end to end by a CRC (the FECF).

```text
  Space Packets (space-packet.md)
  TC Transfer Frame  <-- this page; FOP-1 / FARM-1 of COP-1 (clcw-cop1.md) run per VC
  CLTU: randomizer + BCH(63,56) codeblocks, start and tail sequences (cltu-bch.md)
  RF uplink
```

Three frame types, set by two header flags:

| Bypass | Control Command | type | what it carries | checked by FARM-1 |
|---|---|---|---|---|
| 0 | 0 | AD | user data, sequence-controlled | yes: accepted only if N(S) = V(R) |
| 1 | 0 | BD | user data, expedited | no: always accepted |
| 1 | 1 | BC | a COP-1 control command (Unlock `00`, Set V(R) `82 00 V(R)`) | executed |
| 0 | 1 | — | invalid: the decoder raises `DecodeError` naming `control_command_flag` | discarded |

The optional Segment Header (per VC, a managed parameter) splits the VC into 64 MAP channels
and lets a long MAP SDU (e.g. a large Space Packet) span several frames.
""",
        "## Headers",
        TC_HEADER,
        TC_SEGMENT,
        """
After the header (and the Segment Header) comes the Transfer Frame Data Field, then the
optional 2-octet Frame Error Control Field: a CRC-16/CCITT-FALSE (polynomial 0x1021, initial
value 0xFFFF) over everything before it (§4.1.4). Whether frames carry an FECF is a managed
parameter of the physical channel (`TcChannelConfig.has_fecf`). The largest data field is
1024 − 5 = 1019 octets, 1017 with the FECF; with a Segment Header too, 1016 octets of it are
left for the MAP data.
""",
        "## Worked examples",
        TC_AD_EXAMPLE,
        TC_BC_EXAMPLE,
        """
## In the code

- `linkstack.frames.tc`: `TcFrame`, `TcChannelConfig`, `bc_frame`, `unlock_command`,
  `set_vr_command`, `parse_control_command`, `segment_map_sdu`, `MapReassembler`.
- COP-1 over these frames: `linkstack.arq.fop1`, `linkstack.arq.farm1` (see clcw-cop1.md).
- Coding of the frames for the RF link: `linkstack.codecs.cltu` (see cltu-bch.md).
""",
    ),
)


# ---------------------------------------------------------------------------------------------
# TM Transfer Frame (132.0-B-3)
# ---------------------------------------------------------------------------------------------

FHP_VALUES = {tm.FHP_NO_PACKET_START: "no packet starts in this frame",
              tm.FHP_IDLE_DATA: "only idle data"}

TM_HEADER = HeaderSpec(
    key="tm.primary_header",
    title="TM Transfer Frame Primary Header",
    struct=tm.PRIMARY_HEADER,
    declared_in="linkstack.frames.tm.PRIMARY_HEADER",
    docs={
        "transfer_frame_version_number": FieldDoc(
            "Transfer Frame Version Number", "Version 1 of the TM frame is coded 00.", "00",
            "§4.1.2.2.2", "Ver"),
        "scid": FieldDoc("Spacecraft Identifier", "The spacecraft that sends the frame.",
                         "0..1023", "§4.1.2.2.3", "SCID"),
        "vcid": FieldDoc("Virtual Channel Identifier", "One of 8 virtual channels sharing "
                         "the master channel.", "0..7", "§4.1.2.3", "VCID"),
        "ocf_flag": FieldDoc("Operational Control Field Flag", "The frame ends with a 4-octet "
                             "OCF (before the FECF); linkstack puts a CLCW there.",
                             "0 = absent, 1 = present", "§4.1.2.4", "O", FLAG),
        "mc_frame_count": FieldDoc(
            "Master Channel Frame Count", "Counts all frames of the spacecraft, modulo 256: "
            "a jump means frames were lost.", "0..255", "§4.1.2.5", "MC Frame Count"),
        "vc_frame_count": FieldDoc(
            "Virtual Channel Frame Count", "Counts the frames of this VC, modulo 256: the "
            "packet extractor detects a gap (lost packets) with it.", "0..255", "§4.1.2.6",
            "VC Frame Count"),
        "secondary_header_flag": FieldDoc(
            "Transfer Frame Secondary Header Flag", "A Transfer Frame Secondary Header "
            "follows the primary header.", "0 or 1", "§4.1.2.7.2", "S", FLAG),
        "synchronization_flag": FieldDoc(
            "Synchronization Flag", "0: the data field holds octet-synchronized Space "
            "Packets (packet service); 1: VCA_SDUs (no packet structure).", "0 or 1",
            "§4.1.2.7.3", "Y"),
        "packet_order_flag": FieldDoc(
            "Packet Order Flag", "Reserved when the Synchronization Flag is 0.",
            "0 (when synchronization flag is 0)", "§4.1.2.7.4", "P"),
        "segment_length_id": FieldDoc(
            "Segment Length Identifier", "Legacy field, fixed when the Synchronization Flag "
            "is 0.", "11 (when synchronization flag is 0)", "§4.1.2.7.5", "SL"),
        "first_header_pointer": FieldDoc(
            "First Header Pointer", "Offset, in the data field, of the first octet of the "
            "first packet header that starts in this frame. Packets span frames, so the "
            "octets before it end a packet from an earlier frame.",
            "0..2045; 0x7FF no packet starts here; 0x7FE only idle data", "§4.1.2.7.6",
            "First Header Pointer", FHP_VALUES),
    },
)

TM_SECONDARY = HeaderSpec(
    key="tm.secondary_header_id",
    title="Transfer Frame Secondary Header Identification",
    struct=tm.SECONDARY_HEADER_ID,
    declared_in="linkstack.frames.tm.SECONDARY_HEADER_ID",
    note="First octet of the optional secondary header; up to 63 octets of mission data follow.",
    docs={
        "secondary_header_version_number": FieldDoc(
            "Secondary Header Version Number", "Version 1 is coded 00.", "00", "§4.1.3.2.2",
            "Ver"),
        "secondary_header_length": FieldDoc(
            "Secondary Header Length", "Total length of the secondary header (this octet "
            "included) minus 1.", "0..63", "§4.1.3.2.3", "Length"),
    },
)

_TM_CODE = """
from linkstack.frames.clcw import Clcw
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.spp.packet import SpacePacket, idle_packet

config = TmChannelConfig(frame_length=32, has_fecf=True, has_ocf=True)
packet = SpacePacket(apid=0x101, sequence_count=1, data=b"answer").encode()
zone = packet + idle_packet(config.data_field_capacity() - len(packet))
frame = TmFrame(scid=0x2A, vcid=0, mc_frame_count=3, vc_frame_count=3,
                first_header_pointer=0, data_field=zone,
                ocf=Clcw(vcid=1, report_value=8).encode())
octets = frame.encode(config)
"""
_TM_CONFIG = tm.TmChannelConfig(frame_length=32, has_fecf=True, has_ocf=True)


def _tm_spans(octets: bytes) -> list[Span]:
    return [Span(0, 6, "primary header"), Span(6, 18, "data field: Space Packet (APID 0x101)"),
            Span(18, 26, "data field: idle packet (APID 0x7FF)"), Span(26, 30, "OCF: CLCW"),
            Span(30, 32, "FECF")]


def zone_rows(octets: bytes, zone_start: int, zone: bytes, fhp: int, part: str,
               *, layer: str = "tm") -> list[Row]:
    rows: list[Row] = []
    kwargs = {} if layer == "tm" else {"no_packet_start": uslp.POINTER_NONE, "idle_data": None,
                                       "layer": "uslp"}
    split = tm.split_packet_zone(zone, fhp, **kwargs)  # type: ignore[arg-type]
    pos = zone_start + len(split.head)
    for raw in split.packets:
        pkt = spp.SpacePacket.decode(raw)
        what = "idle packet" if pkt.is_idle else f"Space Packet, APID {pkt.apid:#05x}"
        rows.append(octets_row(part, what, octets, pos, pos + len(raw),
                               f"{len(raw)} octets, sequence count {pkt.sequence_count}"
                               + ("" if pkt.is_idle else f", data {bytes(pkt.data)!r}")))
        pos += len(raw)
    check(not split.tail, "the example zone ends on a packet boundary")
    return rows


def _tm_decode(octets: bytes) -> list[Row]:
    frame = tm.TmFrame.decode(octets, _TM_CONFIG)
    rows, v = header_rows(TM_HEADER, octets, 0, "primary header")
    check((frame.scid, frame.vcid, frame.vc_frame_count, frame.first_header_pointer)
          == (v["scid"], v["vcid"], v["vc_frame_count"], v["first_header_pointer"]),
          "TmFrame.decode disagrees with the header fields")
    rows += zone_rows(octets, 6, frame.data_field, frame.first_header_pointer, "data field")
    assert frame.ocf is not None
    word = clcw.Clcw.decode(frame.ocf)
    rows.append(octets_row("trailer", "Operational Control Field", octets, 26, 30,
                           f"CLCW: VCID {word.vcid}, report value V(R) = {word.report_value}, "
                           "no flag set (see clcw-cop1.md)"))
    rows.append(fecf_row(octets, 30))
    return rows


TM_EXAMPLE = Example(
    key="tm.frame_with_packet_and_clcw",
    title="a 32-octet frame with a packet, an idle packet and a CLCW",
    intro="The physical channel uses 32-octet frames with an FECF; this frame carries the "
          "CLCW of the uplink's FARM-1 in its OCF. The 20-octet data field holds one 12-octet "
          "Space Packet, starting at offset 0 (First Header Pointer 0), and an idle packet "
          "filling the rest.",
    code=_TM_CODE,
    spans=_tm_spans,
    decode=_tm_decode,
)

TM_PAGE = Page(
    filename="tm.md",
    title="TM Transfer Frames (CCSDS 132.0-B-3)",
    summary="the downlink frame: fixed length, 8 VCs, frame counts, First Header Pointer, "
            "OCF for the CLCW",
    book=TM_BOOK,
    parts=(
        """
## Purpose and place in the stack

The TM (telemetry) Transfer Frame carries Space Packets from the spacecraft down to the
ground. Unlike TC frames, TM frames have a **fixed length** on a physical channel (a managed
parameter; at most 2048 octets): the channel coding below (Reed-Solomon codeblocks) needs
it. Packets are therefore packed back to back in the data field regardless of frame
boundaries, and a packet may start in one frame and end in the next.

```text
  Space Packets (space-packet.md)
  TM Transfer Frame  <-- this page; OCF carries the CLCW of COP-1 (clcw-cop1.md)
  CADU: Reed-Solomon codeblock, randomizer, ASM (tm-coding.md)
  RF downlink
```

- **First Header Pointer (FHP).** Tells where in the data field the first packet header
  that starts in this frame is. The receiver uses it to resynchronise after a lost frame:
  it drops the octets before the FHP (the end of a packet whose start was lost) and
  continues from there. 0x7FF: no packet starts in this frame (a long packet continues);
  0x7FE: the frame holds only idle data.
- **Frame counts.** The Master Channel Frame Count counts all frames, the VC Frame Count
  those of one VC, both modulo 256; a jump is a loss, reported by the demultiplexer.
- **Trailer.** An optional Operational Control Field (4 octets, flagged in the header) —
  the CLCW that tells the ground FOP-1 what the spacecraft's FARM-1 received — then an
  optional FECF (CRC-16, a managed parameter of the physical channel).
""",
        "## Headers",
        TM_HEADER,
        TM_SECONDARY,
        """
The frame continues with the data field (the *packet zone*: its length is what the fixed
frame length leaves, `TmChannelConfig.data_field_capacity()`), the OCF if the OCF Flag is 1,
and the FECF if the channel has one. The maximum frame length, 2048 octets, is that of the
TM channel coding; the widely used `spacepackets` library refuses a 2048-octet frame, linkstack
accepts it.
""",
        "## Worked example",
        TM_EXAMPLE,
        """
## In the code

- `linkstack.frames.tm`: `TmFrame`, `TmChannelConfig`, `split_packet_zone`, FHP constants.
- `linkstack.mux.packet_zone`: `PacketZoneBuilder` / `PacketExtractor` (packets spanning
  frames, idle fill, gaps naming the lost packets).
- `linkstack.mux.tm`: `TmMultiplexer` / `TmDemultiplexer` (VC scheduling, MC/VC counts, OCF,
  idle frames).
""",
    ),
)


# ---------------------------------------------------------------------------------------------
# AOS Transfer Frame (732.0-B-4)
# ---------------------------------------------------------------------------------------------

AOS_HEADER = HeaderSpec(
    key="aos.primary_header",
    title="AOS Transfer Frame Primary Header",
    struct=aos.PRIMARY_HEADER,
    declared_in="linkstack.frames.aos.PRIMARY_HEADER",
    docs={
        "transfer_frame_version_number": FieldDoc(
            "Transfer Frame Version Number", "Version 2 (AOS) is coded 01.", "01",
            "§4.1.2.2.2", "Ver"),
        "scid": FieldDoc("Spacecraft Identifier", "8 bits in AOS (TM has 10).", "0..255",
                         "§4.1.2.2.3", "SCID"),
        "vcid": FieldDoc("Virtual Channel Identifier", "64 VCs; VC 63 is the idle VC.",
                         "0..63; 63 = idle", "§4.1.2.3", "VCID", {aos.IDLE_VCID: "idle VC"}),
        "vc_frame_count": FieldDoc(
            "Virtual Channel Frame Count", "Frames of this VC, modulo 2^24 (extended by the "
            "cycle field when its usage flag is set).", "0..16777215", "§4.1.2.4",
            "VC Frame Count"),
        "replay_flag": FieldDoc("Replay Flag", "1: the frame is a replay of recorded data.",
                                "0 or 1", "§4.1.2.5.2", "R", {0: "real-time", 1: "replay"}),
        "vc_frame_count_usage_flag": FieldDoc(
            "VC Frame Count Usage Flag", "1: the VC Frame Count Cycle is in use.", "0 or 1",
            "§4.1.2.5.3", "U", FLAG),
        SPARE: FieldDoc("Reserved Spare", "Reserved by CCSDS.", "00", "§4.1.2.5.4", "Sp"),
        "vc_frame_count_cycle": FieldDoc(
            "VC Frame Count Cycle", "Counts the wraps of the VC Frame Count (4 more bits).",
            "0..15 (0 when unused)", "§4.1.2.5.5", "Cycle"),
    },
)

AOS_FHEC = HeaderSpec(
    key="aos.fhec",
    title="Frame Header Error Control",
    struct=aos.FHEC_FIELD,
    declared_in="linkstack.frames.aos.FHEC_FIELD",
    note="Optional (managed). A Reed-Solomon (10,6) code over GF(16), x^4+x+1, generator "
         "roots α^6..α^9, on the 6 nibbles of the TFVN/SCID/VCID word and the Signaling Field:"
         " it corrects up to 2 wrong nibbles in those fields (not in the VC Frame Count).",
    docs={
        "frame_header_error_control": FieldDoc(
            "Frame Header Error Control", "Four parity nibbles of the RS(10,6) code.",
            "computed", "§4.1.2.6", "FHEC"),
    },
)

AOS_MPDU = HeaderSpec(
    key="aos.m_pdu_header",
    title="M_PDU Header (packet service)",
    struct=aos.M_PDU_HEADER,
    declared_in="linkstack.frames.aos.M_PDU_HEADER",
    docs={
        SPARE: FieldDoc("Reserved Spare", "Reserved by CCSDS.", "00000", "§4.1.4.2.2", "Sp"),
        "first_header_pointer": FieldDoc(
            "First Header Pointer", "Offset of the first packet header that starts in the "
            "packet zone, as in TM.", "0..2045; 0x7FF none starts; 0x7FE only idle data",
            "§4.1.4.2.3", "First Header Pointer", FHP_VALUES),
    },
)

AOS_BPDU = HeaderSpec(
    key="aos.b_pdu_header",
    title="B_PDU Header (bitstream service)",
    struct=aos.B_PDU_HEADER,
    declared_in="linkstack.frames.aos.B_PDU_HEADER",
    docs={
        SPARE: FieldDoc("Reserved Spare", "Reserved by CCSDS.", "00", "§4.1.4.3.2", "Sp"),
        "bitstream_data_pointer": FieldDoc(
            "Bitstream Data Pointer", "Position of the last valid bit of the bitstream data; "
            "the bits after it are fill.", "0..16381; 0x3FFF all valid; 0x3FFE all fill",
            "§4.1.4.3.3", "Bitstream Data Pointer",
            {aos.BDP_ALL_VALID: "all data valid", aos.BDP_ALL_FILL: "only fill"}),
    },
)

_AOS_CONFIG = aos.AosChannelConfig(frame_length=32, has_fecf=True, has_fhec=True)


def _aos_spans(octets: bytes) -> list[Span]:
    return [Span(0, 6, "primary header"), Span(6, 8, "FHEC"), Span(8, 10, "M_PDU header"),
            Span(10, 22, "packet zone: Space Packet (APID 0x101)"),
            Span(22, 30, "packet zone: idle packet"), Span(30, 32, "FECF")]


def _aos_decode(octets: bytes) -> list[Row]:
    frame = aos.AosFrame.decode(octets, _AOS_CONFIG)
    rows, v = header_rows(AOS_HEADER, octets, 0, "primary header")
    check((frame.scid, frame.vcid, frame.vc_frame_count, frame.vc_frame_count_cycle)
          == (v["scid"], v["vcid"], v["vc_frame_count"], v["vc_frame_count_cycle"]),
          "AosFrame.decode disagrees with the header fields")
    f_rows, f = header_rows(AOS_FHEC, octets, 6, "FHEC")
    word, sig = (octets[0] << 8) | octets[1], octets[5]
    check(aos.fhec_parity(word, sig) == f["frame_header_error_control"], "FHEC parity")
    check(aos.fhec_correct(word, sig, f["frame_header_error_control"])[3] == 0, "FHEC syndrome")
    (part, name, where, raw, value) = f_rows[0]
    rows.append((part, name, where, raw, value + "; syndrome 0: header valid"))
    m_rows, m = header_rows(AOS_MPDU, octets, 8, "M_PDU header")
    rows += m_rows
    check(frame.first_header_pointer == m["first_header_pointer"], "FHP")
    rows += zone_rows(octets, 10, frame.data_field, m["first_header_pointer"], "packet zone")
    rows.append(fecf_row(octets, 30))
    return rows


AOS_EXAMPLE = Example(
    key="aos.m_pdu_frame_with_fhec",
    title="a 32-octet M_PDU frame with the Frame Header Error Control",
    intro="VC 5 carries Space Packets (M_PDU); the channel has the FHEC and an FECF. The VC "
          "Frame Count (70 000) needs more than 16 bits, and the cycle field is in use.",
    code="""
from linkstack.frames.aos import AosChannelConfig, AosFrame
from linkstack.spp.packet import SpacePacket, idle_packet

config = AosChannelConfig(frame_length=32, has_fecf=True, has_fhec=True)
packet = SpacePacket(apid=0x101, sequence_count=2, data=b"answer").encode()
zone = packet + idle_packet(config.data_field_capacity(5) - len(packet))
frame = AosFrame(scid=0x2A, vcid=5, vc_frame_count=70000, data_field=zone,
                 first_header_pointer=0, vc_frame_count_usage_flag=True,
                 vc_frame_count_cycle=1)
octets = frame.encode(config)
""",
    spans=_aos_spans,
    decode=_aos_decode,
)

AOS_PAGE = Page(
    filename="aos.md",
    title="AOS Transfer Frames (CCSDS 732.0-B-4)",
    summary="fixed-length frames for high-rate links: 64 VCs, 24-bit frame counts, header "
            "error control, M_PDU/B_PDU",
    book=AOS_BOOK,
    parts=(
        """
## Purpose and place in the stack

AOS (Advanced Orbiting Systems) frames are the high-rate cousins of TM frames: fixed length,
usable in both directions, with 64 virtual channels, a 24-bit VC frame count (plus a 4-bit
cycle), an optional Insert Zone for isochronous data, and an optional header code that
*corrects* errors in the addressing fields so that a frame is not routed to the wrong VC.

```text
  Space Packets (M_PDU), a bitstream (B_PDU) or VCA_SDUs
  AOS Transfer Frame  <-- this page
  CADU: Reed-Solomon codeblock, randomizer, ASM (tm-coding.md)
```

What the data field carries is set per VC (`AosChannelConfig`): an M_PDU (2-octet header with
a First Header Pointer, then packets exactly as in TM), a B_PDU (2-octet header with a
Bitstream Data Pointer, then bits), a VCA_SDU (no header), or, on VC 63, idle data. AOS has
no OCF flag: whether a VC's frames end with an OCF is a managed parameter.
""",
        "## Headers",
        AOS_HEADER,
        AOS_FHEC,
        AOS_MPDU,
        AOS_BPDU,
        """
Frame layout after the header: Frame Header Error Control (2 octets, optional), Insert Zone
(fixed length, optional), data field (M_PDU, B_PDU, VCA_SDU or idle data), OCF (4 octets, per
VC), FECF (2 octets, optional).
""",
        "## Worked example",
        AOS_EXAMPLE,
        """
## In the code

- `linkstack.frames.aos`: `AosFrame`, `AosChannelConfig`, `AosDataUnit`, `fhec_parity`,
  `fhec_correct` (RS(10,6) over GF(16), 16-entry tables, bounded-distance decoder).
""",
    ),
)


# ---------------------------------------------------------------------------------------------
# USLP Transfer Frame (732.1-B-2)
# ---------------------------------------------------------------------------------------------

RULE_NAMES = {r.value: r.name.lower().replace("_", " ") for r in uslp.TfdzConstructionRule}
UPID_NAMES = {p.value: p.name.replace("_", " ") for p in uslp.UslpProtocolId}

USLP_HEADER = HeaderSpec(
    key="uslp.primary_header",
    title="USLP Transfer Frame Primary Header",
    struct=uslp.PRIMARY_HEADER,
    declared_in="linkstack.frames.uslp.PRIMARY_HEADER",
    variable_text={"vc_frame_count": "VC Frame Count: 0..7 octets (VC Frame Count Length)"},
    note="The first 4 octets are all a *truncated* header has (End of Frame Primary Header "
         "Flag = 1); the other fields exist only in a non-truncated header.",
    docs={
        "transfer_frame_version_number": FieldDoc(
            "Transfer Frame Version Number", "Version 4 (USLP) is coded 1100.", "1100 (12)",
            "§4.1.2.2.2", "TFVN"),
        "scid": FieldDoc("Spacecraft Identifier", "16 bits in USLP.", "0..65535",
                         "§4.1.2.2.3", "SCID"),
        "source_or_destination_id": FieldDoc(
            "Source or Destination Identifier", "Whether the SCID names the sender or the "
            "receiver of the frame.", "0 = source, 1 = destination", "§4.1.2.3", "D",
            {0: "SCID is the source", 1: "SCID is the destination"}),
        "vcid": FieldDoc("Virtual Channel Identifier", "64 VCs; VC 63 is for idle frames.",
                         "0..63", "§4.1.2.4", "VCID"),
        "map_id": FieldDoc("MAP Identifier", "One of 16 MAP channels of the VC.", "0..15",
                           "§4.1.2.5", "MAP"),
        "end_of_frame_primary_header": FieldDoc(
            "End of Frame Primary Header Flag", "1: the header stops here (truncated "
            "header, 4 octets).", "0 or 1", "§4.1.2.6", "E",
            {0: "non-truncated header", 1: "truncated header"}),
        "frame_length": FieldDoc("Frame Length", "Total frame length in octets minus 1.",
                                 "0..65535", "§4.1.2.7", "Frame Length"),
        "bypass_sequence_control_flag": FieldDoc(
            "Bypass/Sequence Control Flag", "0: sequence-controlled (COP); 1: expedited.",
            "0 or 1", "§4.1.2.8.1", "B", {0: "sequence-controlled", 1: "expedited"}),
        "protocol_control_command_flag": FieldDoc(
            "Protocol Control Command Flag", "1: the TFDF carries protocol control "
            "information (e.g. COP-1 control commands) instead of user data.", "0 or 1",
            "§4.1.2.8.2", "P", {0: "user data", 1: "protocol control information"}),
        SPARE: FieldDoc("Reserved Spare", "Reserved by CCSDS.", "00", "§4.1.2.8.3", "Sp"),
        "ocf_flag": FieldDoc("OCF Flag", "A 4-octet OCF precedes the FECF.", "0 or 1",
                             "§4.1.2.9", "O", FLAG),
        "vc_frame_count_length": FieldDoc(
            "VC Frame Count Length", "Octets of VC Frame Count that follow.", "0..7",
            "§4.1.2.10", "Len"),
        "vc_frame_count": FieldDoc(
            "VC Frame Count", "Frames of the VC (per QoS), modulo 2^(8·length); COP-1 over "
            "USLP uses it as N(S).", "0 .. 2^(8·length) − 1", "§4.1.2.11", "VCFC"),
    },
)

USLP_TFDF = HeaderSpec(
    key="uslp.tfdf_header",
    title="Transfer Frame Data Field Header",
    struct=uslp.TFDF_HEADER,
    declared_in="linkstack.frames.uslp.TFDF_HEADER",
    note="The pointer is present only for construction rules 000, 001 and 010 (fixed-length "
         "TFDZ) in a non-truncated frame.",
    docs={
        "tfdz_construction_rules": FieldDoc(
            "TFDZ Construction Rules", "How the data zone is built: packets spanning frames "
            "(000), MAPA_SDU start/continuation (001/010), octet stream (011), starting/"
            "continuing/last segment (100/101/110), no segmentation (111).", "000..111",
            "§4.1.4.2.2", "Rules", RULE_NAMES),
        "uslp_protocol_id": FieldDoc(
            "USLP Protocol Identifier", "What the data zone carries (SANA registry): 0 Space "
            "Packets/Encapsulation, 1 COP-1 control commands, 2 COP-P, 3 SDLS, 4 user octet "
            "stream, 5 MAPA_SDU, 7 Proximity-1, 31 idle.", "0..31", "§4.1.4.2.3", "UPID",
            UPID_NAMES),
        "first_header_pointer": FieldDoc(
            "First Header Pointer / Last Valid Octet Pointer", "Rule 000: offset of the first "
            "packet header in the TFDZ; rules 001/010: offset of the last valid octet.",
            "0..65534; 0xFFFF none", "§4.1.4.2.4", "FHP/LVOP",
            {uslp.POINTER_NONE: "no packet starts / SDU does not end"}),
    },
)

_USLP_CONFIG = uslp.UslpChannelConfig(fecf_size=2)


def _uslp_spans(octets: bytes) -> list[Span]:
    n = len(octets)
    return [Span(0, 7, "primary header"), Span(7, 8, "primary header: VC Frame Count"),
            Span(8, 9, "TFDF header"), Span(9, n - 2, "TFDZ: Space Packet"),
            Span(n - 2, n, "FECF")]


def _uslp_decode(octets: bytes) -> list[Row]:
    frame = uslp.UslpFrame.decode(octets, _USLP_CONFIG)
    rows, v = header_rows(USLP_HEADER, octets, 0, "primary header")
    check(v["frame_length"] + 1 == len(octets), "frame length")
    check((frame.scid, frame.vcid, frame.map_id, frame.vc_frame_count_length)
          == (v["scid"], v["vcid"], v["map_id"], v["vc_frame_count_length"]),
          "UslpFrame.decode disagrees with the header fields")
    n = v["vc_frame_count_length"]
    count = int.from_bytes(octets[7:7 + n], "big")
    check(count == frame.vc_frame_count, "VC frame count")
    rows.append(octets_row("primary header", "VC Frame Count", octets, 7, 7 + n,
                           fmt_int(count, 8 * n)))
    t_rows, t = header_rows(USLP_TFDF, octets, 7 + n, "TFDF header",
                            only=lambda f: not f.conditional)
    check(not uslp.has_pointer(t["tfdz_construction_rules"]), "rule 111 has no pointer")
    rows += t_rows
    pkt = spp.SpacePacket.decode(frame.data_field)
    rows.append(octets_row("TFDZ", f"Space Packet, APID {pkt.apid:#05x}", octets, 8 + n,
                           len(octets) - 2, f"{len(frame.data_field)} octets"))
    rows.append(fecf_row(octets, len(octets) - 2))
    return rows


USLP_EXAMPLE = Example(
    key="uslp.variable_frame",
    title="a variable-length frame carrying one Space Packet (the spacepackets vector)",
    intro="SCID 0x1234, VC 3, MAP 1, a 1-octet VC Frame Count of 7, rule 111 (no "
          "segmentation), protocol 0 (Space Packets), CRC-16 FECF. The independent "
          "`spacepackets` library produces the same octets ([sources.md](sources.md) §1.15).",
    code="""
from linkstack.frames.uslp import (TfdzConstructionRule, UslpChannelConfig, UslpFrame,
                                   UslpProtocolId)
from linkstack.spp.packet import PacketType, SpacePacket

packet = SpacePacket(apid=0x42, sequence_count=5, data=bytes([1, 2, 3, 4]),
                     packet_type=PacketType.TC).encode()
frame = UslpFrame(scid=0x1234, vcid=3, map_id=1, data_field=packet,
                  tfdz_construction_rules=TfdzConstructionRule.NO_SEGMENTATION,
                  uslp_protocol_id=UslpProtocolId.SPACE_PACKETS,
                  vc_frame_count_length=1, vc_frame_count=7)
octets = frame.encode(UslpChannelConfig(fecf_size=2))
""",
    spans=_uslp_spans,
    decode=_uslp_decode,
)

USLP_PAGE = Page(
    filename="uslp.md",
    title="USLP Transfer Frames (CCSDS 732.1-B-2)",
    summary="the unified frame: 16-bit SCID, fixed or variable length, truncated headers, "
            "TFDF construction rules",
    book=USLP_BOOK,
    parts=(
        """
## Purpose and place in the stack

USLP (Unified Space Data Link Protocol) merges what TC, TM and AOS do into one frame format
for any link: fixed- or variable-length frames (a physical-channel parameter), a 16-bit
spacecraft identifier, 64 VCs with 16 MAPs each, a VC frame count of 0 to 7 octets, an optional
Insert Zone, OCF and a 16- or 32-bit FECF. linkstack uses it on the laser inter-satellite
links, with selective-repeat ARQ (sr.md).

```text
  Space Packets, octet streams, MAPA_SDUs
  USLP Transfer Frame  <-- this page; TFDF header says how the data zone is built
  CADU: Reed-Solomon codeblock, randomizer, ASM (tm-coding.md) on fixed-length channels
```

The Transfer Frame Data Field starts with its own header: the construction rule (packets
spanning frames with a First Header Pointer, as in TM; or segments of a larger SDU; or an
octet stream) and the protocol identifier of what it carries. A *truncated* frame has only
the first 4 header octets and a 1-octet TFDF header: it is for short variable-length frames
whose length is known in advance.
""",
        "## Headers",
        USLP_HEADER,
        USLP_TFDF,
        """
Frame layout after the header: Insert Zone (fixed length, managed), TFDF header, TFDZ, OCF (4
octets, if the OCF Flag is set), FECF (2 octets CRC-16 or 4 octets CRC-32 of Proximity-1,
managed; the `spacepackets` library has no CRC-32 FECF).
""",
        "## Worked example",
        USLP_EXAMPLE,
        """
## In the code

- `linkstack.frames.uslp`: `UslpFrame`, `UslpChannelConfig`, `TfdzConstructionRule`,
  `UslpProtocolId`, `uslp_frame_length`.
""",
    ),
)
