"""``linkstack frame decode|encode``: transfer frames and Space Packets, field by field.

``decode`` prints every field of one frame under its Blue Book name (a rich table, or one
JSON object with ``--json``), the data field and the Space Packets it carries, located
with the First Header Pointer (TM, AOS M_PDU, USLP rule 000) or from the start of the
data field (TC, USLP rule 111). The managed parameters that a frame does not carry itself
(FECF presence, frame length, insert zone, FHEC, OCF on AOS, Segment Header on TC,
truncated length on USLP) are options. ``encode`` builds one frame from ``--field
NAME=VALUE`` pairs and ``--data HEX`` and prints it as hex.

``decode --sa FILE [--spi N] [--key-file F]`` decodes a frame secured with SDLS (CCSDS
355.0-B-2): it is verified and decrypted first (``linkstack sdls verify``), then the clear
frame is decoded; the report gains an ``sdls`` entry (Security Header fields, MAC,
``verified``). A frame that fails verification is not decoded: exit status 1.

Errors print the layer, the Blue Book field and the byte offset, and exit with code 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from linkstack.cli.inputs import FormatOpt, split_input
from linkstack.cli.options import (
    LAYOUT_OPTIONS,
    FecfOpt,
    FecfSizeOpt,
    FhecOpt,
    InsertZoneOpt,
    OcfOpt,
    SegmentOpt,
    fail,
    group,
)
from linkstack.errors import (
    ConfigError,
    DecodeError,
    EncodeError,
    LinkstackError,
    TruncatedError,
)
from linkstack.frames.aos import (
    BDP_ALL_FILL,
    BDP_ALL_VALID,
    AosChannelConfig,
    AosDataUnit,
    AosFrame,
)
from linkstack.frames.aos import IDLE_VCID as AOS_IDLE_VCID
from linkstack.frames.clcw import Clcw
from linkstack.frames.tc import (
    TcChannelConfig,
    TcFrame,
    TcFrameType,
    parse_control_command,
    tc_frame_length,
)
from linkstack.frames.tm import (
    FHP_IDLE_DATA,
    FHP_NO_PACKET_START,
    PacketZone,
    TmChannelConfig,
    TmFrame,
    split_packet_zone,
)
from linkstack.frames.uslp import (
    FIXED_LENGTH_RULES,
    POINTER_NONE,
    TfdzConstructionRule,
    UslpChannelConfig,
    UslpFrame,
    UslpProtocolId,
    uslp_frame_length,
)
from linkstack.spp.packet import PRIMARY_HEADER_SIZE, SpacePacket, idle_packet

__all__ = ["register"]

LAYERS = ("spp", "tc", "tm", "aos", "uslp")

LABELS: dict[str, str] = {
    "transfer_frame_version_number": "Transfer Frame Version Number",
    "bypass_flag": "Bypass Flag",
    "control_command_flag": "Control Command Flag",
    "scid": "Spacecraft Identifier",
    "vcid": "Virtual Channel Identifier",
    "frame_length": "Frame Length",
    "frame_sequence_number": "Frame Sequence Number N(S)",
    "frame_type": "Frame Type",
    "map_id": "MAP Identifier",
    "sequence_flags": "Sequence Flags",
    "control_command": "Control Command",
    "ocf_flag": "Operational Control Field Flag",
    "mc_frame_count": "Master Channel Frame Count",
    "vc_frame_count": "Virtual Channel Frame Count",
    "secondary_header_flag": "Transfer Frame Secondary Header Flag",
    "synchronization_flag": "Synchronization Flag",
    "packet_order_flag": "Packet Order Flag",
    "segment_length_id": "Segment Length Identifier",
    "first_header_pointer": "First Header Pointer",
    "secondary_header": "Transfer Frame Secondary Header Data Field",
    "replay_flag": "Replay Flag",
    "vc_frame_count_usage_flag": "VC Frame Count Usage Flag",
    "vc_frame_count_cycle": "VC Frame Count Cycle",
    "frame_header_error_control": "Frame Header Error Control",
    "fhec_corrections": "FHEC Corrected Nibbles",
    "insert_zone": "Transfer Frame Insert Zone",
    "data_unit": "Data Unit",
    "bitstream_data_pointer": "Bitstream Data Pointer",
    "source_or_destination_id": "Source-or-Destination Identifier",
    "end_of_frame_primary_header": "End of Frame Primary Header Flag",
    "bypass_sequence_control_flag": "Bypass/Sequence Control Flag",
    "protocol_control_command_flag": "Protocol Control Command Flag",
    "vc_frame_count_length": "VC Frame Count Length",
    "tfdz_construction_rules": "TFDZ Construction Rules",
    "uslp_protocol_id": "USLP Protocol Identifier",
    "truncated": "Truncated Transfer Frame",
    "ocf": "Operational Control Field",
    "frame_error_control": "Frame Error Control Field",
    "data_field": "Transfer Frame Data Field",
    "packet_version_number": "Packet Version Number",
    "packet_type": "Packet Type",
    "apid": "Application Process Identifier",
    "sequence_count": "Packet Sequence Count",
    "packet_data_length": "Packet Data Length",
}

# --------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------

LayerOpt = Annotated[str, typer.Option("--layer", "-l", help="spp, tc, tm, aos or uslp.",
                                       case_sensitive=False)]
HexArg = Annotated[str | None, typer.Option("--hex", help="The octets as hex text.")]
FileArg = Annotated[Path | None, typer.Argument(
    help="File holding the frame ('-' = stdin): binary, or several frames as hex lines or "
    "KISS (--format).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (per frame, one "
                                       "per line).")]
FrameLengthOpt = Annotated[int | None, typer.Option(
    "--frame-length", "-n", min=1, help="Fixed frame length. TM/AOS default: the input length "
    "(decode) or just enough for the data (encode). USLP: given = fixed-length channel.")]
DataUnitOpt = Annotated[str, typer.Option("--data-unit", help="AOS data unit of this VC: "
                                          "m_pdu, b_pdu or vca (VC 63 is always idle).")]
TruncatedOpt = Annotated[int | None, typer.Option(
    "--truncated-length", help="USLP: length of truncated frames (variable-length channel).")]


@dataclasses.dataclass
class Options:
    fecf: bool
    fecf_size: int
    frame_length: int | None
    ocf: bool
    insert_zone: int
    fhec: bool
    data_unit: str
    truncated_length: int | None
    segment_header: bool


def _tc_config(opts: Options, vcid: int) -> TcChannelConfig:
    segmented = frozenset({vcid}) if opts.segment_header else frozenset()
    return TcChannelConfig(has_fecf=opts.fecf, segmented_vcids=segmented)


def _aos_config(opts: Options, vcid: int, frame_length: int) -> AosChannelConfig:
    unit = opts.data_unit.lower().replace("-", "_")
    if unit not in ("m_pdu", "b_pdu", "vca"):
        raise ConfigError(f"{opts.data_unit!r} is not m_pdu, b_pdu or vca", key="--data-unit")
    vcs = frozenset({vcid}) if vcid != AOS_IDLE_VCID else frozenset()
    return AosChannelConfig(
        frame_length=frame_length, has_fecf=opts.fecf, has_fhec=opts.fhec,
        insert_zone_length=opts.insert_zone,
        ocf_vcids=frozenset({vcid}) if opts.ocf else frozenset(),
        bpdu_vcids=vcs if unit == "b_pdu" else frozenset(),
        vca_vcids=vcs if unit == "vca" else frozenset(),
    )


def _uslp_config(opts: Options) -> UslpChannelConfig:
    return UslpChannelConfig(
        frame_length=opts.frame_length, fecf_size=opts.fecf_size if opts.fecf else 0,
        insert_zone_length=opts.insert_zone, truncated_frame_length=opts.truncated_length,
    )


# --------------------------------------------------------------------------------------
# Decoding into a report: {key: value} plus packets
# --------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, int) else str(value.value)
    return value


def _packet_report(raw: bytes) -> dict[str, Any]:
    pkt = SpacePacket.decode(raw)
    return {
        "packet_version_number": 0,
        "packet_type": int(pkt.packet_type),
        "secondary_header_flag": pkt.secondary_header_flag,
        "apid": pkt.apid,
        "sequence_flags": int(pkt.sequence_flags),
        "sequence_count": pkt.sequence_count,
        "packet_data_length": len(pkt.data) - 1,
        "idle": pkt.is_idle,
        "data": pkt.data.hex(),
    }


def _zone_report(zone: PacketZone) -> dict[str, Any]:
    return {
        "idle": zone.idle,
        "leading_fragment": zone.head.hex(),
        "packets": [_packet_report(p) for p in zone.packets],
        "trailing_fragment": zone.tail.hex(),
    }


def _clcw(ocf: bytes | None) -> dict[str, Any] | None:
    if ocf is None or ocf[0] & 0x80:  # Control Word Type 1: not a CLCW
        return None
    try:
        clcw = Clcw.decode(ocf)
    except DecodeError:
        return None
    return {f.name: _plain(getattr(clcw, f.name)) for f in dataclasses.fields(clcw)}


def _fields(frame: Any, skip: tuple[str, ...] = ("data_field",)) -> dict[str, Any]:
    return {f.name: _plain(getattr(frame, f.name)) for f in dataclasses.fields(frame)
            if f.name not in skip}


def decode_report(layer: str, buf: bytes, opts: Options) -> dict[str, Any]:
    """Decode ``buf`` as ``layer`` and return the report ``frame decode`` prints."""
    layer = layer.lower()
    if layer == "spp":
        return _decode_spp(buf)
    if layer == "tc":
        return _decode_tc(buf, opts)
    if layer == "tm":
        return _decode_tm(buf, opts)
    if layer == "aos":
        return _decode_aos(buf, opts)
    if layer == "uslp":
        return _decode_uslp(buf, opts)
    raise ConfigError(f"{layer!r} is not one of {', '.join(LAYERS)}", key="--layer")


def _at_least(buf: bytes, n: int, layer: str) -> int:
    """The input length, used as the frame length; a typed error if no frame fits in it."""
    if len(buf) < n:
        raise TruncatedError(f"{len(buf)} octets cannot hold a {layer.upper()} frame",
                             layer=layer, field="header", offset=len(buf))
    return len(buf)


def _decode_spp(buf: bytes) -> dict[str, Any]:
    packets = []
    pos = 0
    while pos < len(buf):
        pkt = SpacePacket.decode(buf, pos)
        packets.append(_packet_report(buf[pos:pos + len(pkt)]))
        pos += len(pkt)
    return {"layer": "spp", "length": len(buf), "packets": packets}


def _decode_tc(buf: bytes, opts: Options) -> dict[str, Any]:
    vcid = (buf[2] >> 2) if len(buf) > 2 else 0
    config = _tc_config(opts, vcid)
    frame = TcFrame.decode(buf, config)
    length = tc_frame_length(buf)
    fields: dict[str, Any] = {"transfer_frame_version_number": 0, **_fields(frame),
                              "frame_length": length - 1,
                              "frame_type": (None if frame.frame_type is None
                                             else frame.frame_type.name)}
    if frame.map_id is None:
        fields.pop("map_id")
        fields.pop("sequence_flags")
    report: dict[str, Any] = {
        "layer": "tc", "length": length, "header": fields,
        "data_field": frame.data_field.hex(),
        "frame_error_control": buf[length - 2:length].hex() if opts.fecf else None,
        "trailing_octets": len(buf) - length,
    }
    if frame.frame_type is TcFrameType.BC:
        cmd = parse_control_command(frame.data_field)
        report["control_command"] = {"command": cmd.command.name, "vr": cmd.vr}
    elif frame.map_id is None or frame.sequence_flags == 0b11:
        report.update(_zone_report(split_packet_zone(frame.data_field, 0, layer="tc",
                                                     base_offset=5)))
    return report


def _decode_tm(buf: bytes, opts: Options) -> dict[str, Any]:
    config = TmChannelConfig(frame_length=opts.frame_length or _at_least(buf, 9, "tm"),
                             has_fecf=opts.fecf)
    frame = TmFrame.decode(buf, config)
    fields = {"transfer_frame_version_number": 0, "scid": frame.scid, "vcid": frame.vcid,
              "ocf_flag": frame.ocf_flag, "mc_frame_count": frame.mc_frame_count,
              "vc_frame_count": frame.vc_frame_count,
              "secondary_header_flag": frame.secondary_header_flag,
              "synchronization_flag": frame.synchronization_flag,
              "packet_order_flag": frame.packet_order_flag,
              "segment_length_id": frame.segment_length_id,
              "first_header_pointer": frame.first_header_pointer,
              "secondary_header": _plain(frame.secondary_header)}
    report: dict[str, Any] = {
        "layer": "tm", "length": len(buf), "header": fields,
        "data_field": frame.data_field.hex(),
        "ocf": frame.ocf.hex() if frame.ocf is not None else None, "clcw": _clcw(frame.ocf),
        "frame_error_control": buf[-2:].hex() if opts.fecf else None,
    }
    if not frame.synchronization_flag:
        report.update(_zone_report(split_packet_zone(frame.data_field,
                                                     frame.first_header_pointer)))
    return report


def _decode_aos(buf: bytes, opts: Options) -> dict[str, Any]:
    vcid = buf[1] & 0x3F if len(buf) > 1 else 0
    config = _aos_config(opts, vcid, opts.frame_length or _at_least(buf, 11, "aos"))
    frame = AosFrame.decode(buf, config)
    fields = {"transfer_frame_version_number": 1, **_fields(frame, ("data_field", "ocf")),
              "data_unit": config.data_unit(frame.vcid).value}
    if opts.fhec:
        fields["frame_header_error_control"] = buf[6:8].hex()
    else:
        fields.pop("fhec_corrections")
    if frame.first_header_pointer is None:
        fields.pop("first_header_pointer")
    if frame.bitstream_data_pointer is None:
        fields.pop("bitstream_data_pointer")
    report: dict[str, Any] = {
        "layer": "aos", "length": len(buf), "header": fields,
        "data_field": frame.data_field.hex(),
        "ocf": frame.ocf.hex() if frame.ocf is not None else None, "clcw": _clcw(frame.ocf),
        "frame_error_control": buf[-2:].hex() if opts.fecf else None,
    }
    if frame.first_header_pointer is not None:
        report.update(_zone_report(split_packet_zone(frame.data_field,
                                                     frame.first_header_pointer, layer="aos")))
    return report


def _decode_uslp(buf: bytes, opts: Options) -> dict[str, Any]:
    config = _uslp_config(opts)
    frame = UslpFrame.decode(buf, config)
    length = uslp_frame_length(buf[:config.frame_length] if config.fixed else buf, config)
    fields = {"transfer_frame_version_number": 12, **_fields(frame, ("data_field", "ocf"))}
    if not frame.truncated:
        fields["frame_length"] = length - 1
        fields["ocf_flag"] = frame.ocf_flag
    fields["end_of_frame_primary_header"] = frame.truncated
    fields.pop("truncated")
    if frame.first_header_pointer is None:
        fields.pop("first_header_pointer")
    fecf = config.fecf_size
    report: dict[str, Any] = {
        "layer": "uslp", "length": length, "header": fields,
        "data_field": frame.data_field.hex(),
        "ocf": frame.ocf.hex() if frame.ocf is not None else None, "clcw": _clcw(frame.ocf),
        "frame_error_control": buf[length - fecf:length].hex() if fecf else None,
        "trailing_octets": len(buf) - length,
    }
    if frame.uslp_protocol_id == UslpProtocolId.SPACE_PACKETS:
        rule = frame.tfdz_construction_rules
        if rule == TfdzConstructionRule.PACKETS_SPANNING_FRAMES:
            report.update(_zone_report(split_packet_zone(
                frame.data_field, frame.first_header_pointer or 0, no_packet_start=POINTER_NONE,
                idle_data=None, layer="uslp")))
        elif rule == TfdzConstructionRule.NO_SEGMENTATION:
            report.update(_zone_report(split_packet_zone(frame.data_field, 0, layer="uslp")))
    return report


def _decode_secured(layer: str, buf: bytes, opts: Options, sa_file: Path, spi: int | None,
                    key_file: Path | None) -> dict[str, Any]:
    """Verify ``buf`` with SDLS, then decode the clear frame (:func:`decode_report`)."""
    from linkstack.cli import sdls
    from linkstack.sdls import FrameAccepted, SdlsEngine

    layer = layer.lower()
    if layer not in sdls.LAYERS:
        raise ConfigError(f"SDLS secures TC, TM, AOS and USLP frames, not {layer!r}",
                          key="--layer")
    fixed = opts.frame_length
    if fixed is None and layer in ("tm", "aos"):
        fixed = len(buf)
    channel_opts = sdls.ChannelOptions(layer, opts.fecf, opts.fecf_size, fixed, opts.ocf,
                                       opts.insert_zone, opts.fhec, opts.segment_header)
    db = sdls.load_database(sdls.SecurityOptions(sa_file, spi, key_file), layer=layer)
    engine: Any = SdlsEngine(db, sdls.physical_channel(channel_opts, fixed))
    security, result = sdls.verify_report(engine, buf)
    security.pop("frame")
    if not isinstance(result, FrameAccepted):
        return {"layer": layer, "length": len(buf), "sdls": security}
    clear = result.frame
    clear_opts = dataclasses.replace(
        opts, frame_length=len(clear) if fixed is not None else None)
    report = decode_report(layer, clear, clear_opts)
    report["sdls"] = security
    return report


# --------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------

_SPECIAL = {
    ("tm", "first_header_pointer"): {FHP_NO_PACKET_START: "no packet starts",
                                     FHP_IDLE_DATA: "only idle data"},
    ("aos", "first_header_pointer"): {FHP_NO_PACKET_START: "no packet starts",
                                      FHP_IDLE_DATA: "only idle data"},
    ("aos", "bitstream_data_pointer"): {BDP_ALL_VALID: "all data valid",
                                        BDP_ALL_FILL: "only fill"},
    ("uslp", "first_header_pointer"): {POINTER_NONE: "none (all ones)"},
}


def _show(layer: str, key: str, value: Any) -> str:
    if value is None:
        return "—"
    if value == "":
        return "(empty)"
    if isinstance(value, str) and len(value) > 96:
        return f"{value[:96]}… ({len(value) // 2} octets)"
    note = _SPECIAL.get((layer, key), {}).get(value) if isinstance(value, int) else None
    if key == "tfdz_construction_rules" and isinstance(value, int):
        note = TfdzConstructionRule(value).name.lower().replace("_", " ")
    if key == "uslp_protocol_id" and isinstance(value, int):
        try:
            note = UslpProtocolId(value).name.lower().replace("_", " ")
        except ValueError:
            note = "reserved"
    if key == "sequence_flags" and isinstance(value, int):
        note = ("continuation", "first", "last", "unsegmented")[value]
    return f"{value} ({note})" if note else str(value)


def _label(layer: str, key: str) -> str:
    if layer == "uslp" and key == "first_header_pointer":
        return "First Header Pointer / Last Valid Octet Pointer"
    return LABELS.get(key, key.replace("_", " ").title())


_ORDER: dict[str, tuple[str, ...]] = {
    "aos": ("transfer_frame_version_number", "scid", "vcid", "vc_frame_count", "replay_flag",
            "vc_frame_count_usage_flag", "vc_frame_count_cycle", "frame_header_error_control",
            "fhec_corrections", "insert_zone", "data_unit", "first_header_pointer",
            "bitstream_data_pointer"),
    "uslp": ("transfer_frame_version_number", "scid", "source_or_destination_id", "vcid",
             "map_id", "end_of_frame_primary_header", "frame_length",
             "bypass_sequence_control_flag", "protocol_control_command_flag", "ocf_flag",
             "vc_frame_count_length", "vc_frame_count", "insert_zone", "tfdz_construction_rules",
             "uslp_protocol_id", "first_header_pointer"),
    "tc": ("transfer_frame_version_number", "bypass_flag", "control_command_flag", "scid",
           "vcid", "frame_length", "frame_sequence_number", "frame_type", "sequence_flags",
           "map_id"),
}


def _ordered(layer: str, header: dict[str, Any]) -> list[tuple[str, Any]]:
    order = _ORDER.get(layer, ())
    keys = [k for k in order if k in header] + [k for k in header if k not in order]
    return [(k, header[k]) for k in keys]


def _print_sdls(sdls: dict[str, Any], console: Console) -> None:
    table = Table(title="SDLS (CCSDS 355.0-B-2): Security Header and Trailer")
    table.add_column("Field")
    table.add_column("Value")
    header = sdls.get("security_header") or {}
    rows = [("Security Parameter Index", header.get("spi")),
            ("Initialization Vector (transmitted)", header.get("iv")),
            ("Sequence Number / ARSN (transmitted)", header.get("sequence_number")),
            ("Pad Length", header.get("pad_length")),
            ("Message Authentication Code", sdls.get("mac")),
            ("Verified", "yes" if sdls["verified"] else f"no: {sdls['reason']} "
                                                          f"({sdls['detail']})")]
    if sdls["verified"]:
        rows.insert(4, ("IV / ARSN (full)", " / ".join(
            str(v) for v in (sdls.get("iv"), sdls.get("arsn")) if v is not None) or None))
    for name, value in rows:
        if value is not None and value != "":
            table.add_row(name, str(value))
    console.print(table)


def print_report(report: dict[str, Any], console: Console) -> None:
    """Print a :func:`decode_report` result as rich tables."""
    layer = report["layer"]
    if report.get("sdls") is not None:
        _print_sdls(report["sdls"], console)
        if not report["sdls"]["verified"]:
            return
    if layer != "spp":
        table = Table(title=f"{layer.upper()} Transfer Frame, {report['length']} octets")
        table.add_column("Field (Blue Book)")
        table.add_column("Name")
        table.add_column("Value")
        for key, value in _ordered(layer, report["header"]):
            table.add_row(_label(layer, key), key, _show(layer, key, value))
        for key in ("ocf", "frame_error_control", "data_field"):
            if report.get(key) is not None:
                table.add_row(_label(layer, key), key, _show(layer, key, report[key]))
        if report.get("control_command"):
            cmd = report["control_command"]
            text = cmd["command"] + (f" V(R)={cmd['vr']}" if cmd["vr"] is not None else "")
            table.add_row(LABELS["control_command"], "control_command", text)
        console.print(table)
        if report.get("clcw"):
            clcw = Table(title="CLCW (Operational Control Field)")
            clcw.add_column("Field")
            clcw.add_column("Value")
            for key, value in report["clcw"].items():
                clcw.add_row(key, str(value))
            console.print(clcw)
        if report.get("trailing_octets"):
            console.print(f"{report['trailing_octets']} octets after the frame were ignored")
        if report.get("idle"):
            console.print("The data field holds only idle data.")
        if report.get("leading_fragment"):
            console.print(f"Leading fragment (end of an earlier packet): "
                          f"{len(report['leading_fragment']) // 2} octets")
    packets = report.get("packets") or []
    if packets:
        table = Table(title=f"Space Packets ({len(packets)})")
        for col in ("APID", "Type", "Sec. Hdr", "Seq. Flags", "Seq. Count", "Data Length",
                    "Data"):
            table.add_column(col)
        for p in packets:
            table.add_row(
                f"{p['apid']}" + (" (idle)" if p["idle"] else ""), ("TM", "TC")[p["packet_type"]],
                str(int(p["secondary_header_flag"])), _show(layer, "sequence_flags",
                                                            p["sequence_flags"]),
                str(p["sequence_count"]), str(p["packet_data_length"] + 1),
                _show(layer, "data", p["data"]),
            )
        console.print(table)
    if report.get("trailing_fragment"):
        console.print(f"Trailing fragment (continues in the next frame): "
                      f"{len(report['trailing_fragment']) // 2} octets")


# --------------------------------------------------------------------------------------
# Encoding from NAME=VALUE pairs
# --------------------------------------------------------------------------------------

_FRAME_CLASSES: dict[str, type] = {
    "spp": SpacePacket, "tc": TcFrame, "tm": TmFrame, "aos": AosFrame, "uslp": UslpFrame,
}
_NOT_SETTABLE = {"data_field", "data", "fhec_corrections"}


def settable_fields(layer: str) -> list[str]:
    """Field names ``frame encode --field`` accepts for ``layer``."""
    cls = _FRAME_CLASSES[layer]
    return [f.name for f in dataclasses.fields(cls) if f.name not in _NOT_SETTABLE]


def _parse_value(layer: str, name: str, text: str) -> Any:
    cls = _FRAME_CLASSES[layer]
    ftype = str({f.name: f.type for f in dataclasses.fields(cls)}[name])
    lowered = text.strip().lower()
    try:
        if "None" in ftype and lowered in ("none", "null", ""):
            return None
        if ftype.startswith("bytes"):
            return bytes.fromhex(text.replace(" ", ""))
        if ftype.startswith("bool"):
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{text!r} is not a boolean")
        return int(text, 0)
    except ValueError as exc:
        raise EncodeError(f"cannot parse {text!r}: {exc}", layer=layer, field=name) from None


def build(layer: str, pairs: list[str], data: bytes, opts: Options, pad: bool = False) -> bytes:
    """Build one ``layer`` frame (or Space Packet) from ``NAME=VALUE`` pairs and ``data``."""
    layer = layer.lower()
    if layer not in _FRAME_CLASSES:
        raise ConfigError(f"{layer!r} is not one of {', '.join(LAYERS)}", key="--layer")
    valid = settable_fields(layer)
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or name not in valid:
            raise ConfigError(
                f"unknown field {name!r}; valid fields for {layer}: {', '.join(valid)}",
                key="--field",
            )
        values[name] = _parse_value(layer, name, text)
    if layer == "spp":
        return SpacePacket(**{"apid": 0, "sequence_count": 0, **values, "data": data}).encode()
    values.setdefault("scid", 0)
    values.setdefault("vcid", 0)
    if layer == "tc":
        config = _tc_config(opts, values["vcid"])
        if opts.segment_header:
            values.setdefault("map_id", 0)
        return TcFrame(**values, data_field=data).encode(config)
    if layer == "tm":
        ocf, sec = values.get("ocf"), values.get("secondary_header")
        overhead = (6 + (0 if sec is None else 1 + len(sec)) + (0 if ocf is None else 4)
                    + (2 if opts.fecf else 0))
        config = TmChannelConfig(frame_length=opts.frame_length or overhead + len(data),
                                 has_fecf=opts.fecf)
        capacity = config.frame_length - overhead
        return TmFrame(**values, data_field=_padded(data, capacity, pad, layer)).encode(config)
    if layer == "aos":
        vcid = values["vcid"]
        probe = _aos_config(opts, vcid, 2048)
        capacity = probe.data_field_capacity(vcid)
        config = _aos_config(opts, vcid, opts.frame_length or 2048 - capacity + len(data))
        if config.data_unit(vcid) is AosDataUnit.M_PDU:
            values.setdefault("first_header_pointer", 0)
        elif config.data_unit(vcid) is AosDataUnit.B_PDU:
            values.setdefault("bitstream_data_pointer", BDP_ALL_VALID)
        values.setdefault("insert_zone", bytes(opts.insert_zone))
        if opts.ocf:
            values.setdefault("ocf", Clcw(vcid, 0).encode())
        data = _padded(data, config.data_field_capacity(vcid), pad, layer)
        return AosFrame(**values, data_field=data).encode(config)
    config = _uslp_config(opts)
    if config.fixed:
        values.setdefault("tfdz_construction_rules", TfdzConstructionRule.PACKETS_SPANNING_FRAMES)
    if values.get("tfdz_construction_rules", 7) in FIXED_LENGTH_RULES:
        values.setdefault("first_header_pointer", 0)
    values.setdefault("insert_zone", bytes(opts.insert_zone))
    frame = UslpFrame(**values, data_field=data)
    target = config.truncated_frame_length if frame.truncated else config.frame_length
    if target is not None:
        capacity = target - (frame.encoded_length(config) - len(data))
        frame = dataclasses.replace(frame, data_field=_padded(data, capacity, pad, layer))
    return frame.encode(config)


def _padded(data: bytes, capacity: int, pad: bool, layer: str) -> bytes:
    if not pad or len(data) >= capacity:
        return data
    room = capacity - len(data)
    if room < PRIMARY_HEADER_SIZE + 1:
        raise EncodeError(f"{room} octets left: too few for an idle packet (7 at least)",
                          layer=layer, field="data_field")
    return data + idle_packet(room)


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------


def _read_input(hex_text: str | None, path: Path | None) -> bytes:
    if (hex_text is None) == (path is None):
        raise ConfigError("give exactly one of --hex HEX or FILE", key="input")
    if hex_text is not None:
        cleaned = "".join(hex_text.split()).removeprefix("0x")
        try:
            return bytes.fromhex(cleaned)
        except ValueError as exc:
            raise ConfigError(f"not hex: {exc}", key="--hex") from None
    assert path is not None
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(exc), key="FILE") from None


def register(app: typer.Typer) -> None:
    """Add the ``frame`` command group to ``app``."""
    frame_app = group("Decode or build TC/TM/AOS/USLP transfer frames and Space Packets.")

    @frame_app.command("decode")
    def decode(
        layer: LayerOpt,
        file: FileArg = None,
        hex_text: HexArg = None,
        input_format: FormatOpt = "auto",
        as_json: JsonOpt = False,
        fecf: FecfOpt = True,
        fecf_size: FecfSizeOpt = 2,
        frame_length: FrameLengthOpt = None,
        ocf: OcfOpt = False,
        insert_zone: InsertZoneOpt = 0,
        fhec: FhecOpt = False,
        data_unit: DataUnitOpt = "m_pdu",
        truncated_length: TruncatedOpt = None,
        segment_header: SegmentOpt = False,
        sa_file: Annotated[Path | None, typer.Option(
            "--sa", help="SDLS: verify and decrypt the frame with the SAs of this file "
            "(CCSDS 355.0-B-2), then decode the clear frame; exit 1 if it is rejected.")
        ] = None,
        spi: Annotated[int | None, typer.Option(
            "--spi", help="SDLS: with this SA only (default: the one the frame's SPI "
            "names).")] = None,
        key_file: Annotated[Path | None, typer.Option(
            "--key-file", help="SDLS key file (chmod 600). Default: "
            "$LINKSTACK_SDLS_KEY_FILE, else the SA file's key_file.")] = None,
    ) -> None:
        """Decode frames (or a run of Space Packets) and print every field.

        One frame per input, or several: one per line of hex text, or KISS frames
        (--format); each is decoded on its own.
        """
        opts = Options(fecf, fecf_size, frame_length, ocf, insert_zone, fhec, data_unit,
                       truncated_length, segment_header)
        try:
            if sa_file is None and (spi is not None or key_file is not None):
                raise ConfigError("needs --sa FILE (the SDLS SAs)",
                                  key="--spi" if spi is not None else "--key-file")
            data = _read_input(hex_text, file)
            items = [data] if hex_text is not None else (split_input(data, input_format)
                                                          or [data])
        except LinkstackError as exc:
            raise fail(exc, LAYOUT_OPTIONS) from None
        rejected = False
        console = Console()
        for index, item in enumerate(items):
            try:
                if sa_file is None:
                    report = decode_report(layer, item, opts)
                else:
                    report = _decode_secured(layer, item, opts, sa_file, spi, key_file)
            except LinkstackError as exc:
                if len(items) > 1 and isinstance(exc, DecodeError):
                    exc = type(exc)(f"frame {index}: {exc.reason}", layer=exc.layer,
                                    field=exc.field, offset=exc.offset)
                raise fail(exc, LAYOUT_OPTIONS) from None
            if as_json:
                typer.echo(json.dumps(report))
            else:
                if len(items) > 1:
                    console.print(f"[bold]frame {index}[/bold] ({len(item)} octets)")
                print_report(report, console)
            if report.get("sdls") is not None and not report["sdls"]["verified"]:
                rejected = True
                if not as_json:
                    sdls = report["sdls"]
                    which = f"frame {index}" if len(items) > 1 else "frame"
                    typer.echo(f"error: sdls: {which} rejected ({sdls['reason']}): "
                               f"{sdls['detail']}", err=True)
        if rejected:
            raise typer.Exit(1)

    @frame_app.command("encode")
    def encode(
        layer: LayerOpt,
        field: Annotated[list[str] | None, typer.Option(
            "--field", "-f", help="NAME=VALUE, repeatable (ints accept 0x..; bytes as hex; "
            "bools true/false). Unset fields keep their defaults (scid, vcid: 0).")] = None,
        data: Annotated[str, typer.Option("--data", "-d", help="Data field as hex.")] = "",
        pad: Annotated[bool, typer.Option("--pad", help="Fill a fixed-length frame with an "
                                          "idle packet.")] = False,
        fecf: FecfOpt = True,
        fecf_size: FecfSizeOpt = 2,
        frame_length: FrameLengthOpt = None,
        ocf: OcfOpt = False,
        insert_zone: InsertZoneOpt = 0,
        fhec: FhecOpt = False,
        data_unit: DataUnitOpt = "m_pdu",
        truncated_length: TruncatedOpt = None,
        segment_header: SegmentOpt = False,
    ) -> None:
        """Build one frame (or Space Packet) and print it as hex."""
        opts = Options(fecf, fecf_size, frame_length, ocf, insert_zone, fhec, data_unit,
                       truncated_length, segment_header)
        try:
            try:
                payload = bytes.fromhex("".join(data.split()))
            except ValueError as exc:
                raise ConfigError(f"not hex: {exc}", key="--data") from None
            raw = build(layer, field or [], payload, opts, pad)
        except LinkstackError as exc:
            raise fail(exc, LAYOUT_OPTIONS) from None
        except TypeError as exc:  # e.g. a field the frame type does not accept together
            raise fail(ValueError(str(exc))) from None
        typer.echo(raw.hex())

    app.add_typer(frame_app, name="frame")
