"""``linkstack frame decode|encode`` (linkstack/cli/frame.py), through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import fastcrc
import pytest
import typer
from spacepackets.ccsds.tm_frame import (
    MasterChannelId,
    TmFramePrimaryHeader,
    TmTransferFrame,
    TransferFrameDataFieldStatus,
)
from typer.testing import CliRunner

from linkstack.cli.frame import register, settable_fields
from linkstack.frames.aos import AosChannelConfig, AosFrame
from linkstack.frames.clcw import Clcw
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
from linkstack.spp.packet import SpacePacket, idle_packet

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # keep "frame" a sub-command even with one group
        """test app"""

    return app


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["frame", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


USLP_VECTOR = "c123406200140107e0" "1042c005000301020304" "b44f"  # specs/sources.md §1.15


def test_decode_uslp_vector_json(app: typer.Typer) -> None:
    code, out, _ = run(app, "decode", "--layer", "uslp", "--hex", USLP_VECTOR, "--json")
    assert code == 0
    report = json.loads(out)
    h = report["header"]
    assert (h["scid"], h["vcid"], h["map_id"], h["vc_frame_count_length"], h["vc_frame_count"],
            h["tfdz_construction_rules"], h["frame_length"]) == (0x1234, 3, 1, 1, 7, 7, 20)
    assert report["frame_error_control"] == "b44f"
    assert [p["apid"] for p in report["packets"]] == [0x42]
    assert report["packets"][0]["data"] == "01020304" and report["packets"][0]["packet_type"] == 1


def test_decode_spacepackets_tm_frame_table(app: typer.Typer) -> None:
    # A TM frame built by spacepackets (independent encoder), FECF by fastcrc.
    p1 = SpacePacket(0x55, 9, b"prompt").encode()
    zone = p1 + idle_packet(40 - len(p1))
    status = TransferFrameDataFieldStatus(False, False, False, 0b11, 0)
    header = TmFramePrimaryHeader(MasterChannelId(0, 0x1AB), 2, True, 7, 3, status)
    ocf = Clcw(2, 17).encode()
    frame = TmTransferFrame(52, header, None, zone, ocf, b"\x00\x00")
    body = frame.pack()[:-2]
    raw = body + fastcrc.crc16.ibm_3740(body).to_bytes(2, "big")
    code, out, _ = run(app, "decode", "-l", "tm", "--hex", raw.hex())
    assert code == 0
    for text in ("Spacecraft Identifier", "Virtual Channel Identifier", "First Header Pointer",
                 "Master Channel Frame Count", "Operational Control Field", "427", "report_value"):
        assert text in out, text
    code, out, _ = run(app, "decode", "-l", "tm", "--hex", raw.hex(), "--json")
    report = json.loads(out)
    assert report["header"]["scid"] == 0x1AB and report["clcw"]["report_value"] == 17
    assert [(p["apid"], p["idle"]) for p in report["packets"]] == [(0x55, False), (0x7FF, True)]


def test_decode_tc_segments_and_bc(app: typer.Typer) -> None:
    # SpacePyLibrary TC_FRAME_02 (last segment of MAP 2, see test_frames_tc.py).
    raw = "22f600230082000f001dff000000000f001eff000000000f001fff000000000fac8f0068"
    code, out, _ = run(app, "decode", "-l", "tc", "--hex", raw, "--segment-header", "--json")
    assert code == 0
    h = json.loads(out)["header"]
    assert (h["scid"], h["bypass_flag"], h["map_id"], h["sequence_flags"], h["frame_type"]) == (
        758, True, 2, 2, "BD")
    bc = TcFrame(1, 1, 0, b"\x82\x00\x09", True, True).encode(TcChannelConfig())
    code, out, _ = run(app, "decode", "-l", "tc", "--hex", bc.hex(), "--json")
    assert json.loads(out)["control_command"] == {"command": "SET_VR", "vr": 9}
    # Type-AD: TcFrameType.AD is 0, so falsy; it must still be reported by name.
    ad = TcFrame(1, 1, 5, b"\x01\x02").encode(TcChannelConfig())
    code, out, _ = run(app, "decode", "-l", "tc", "--hex", ad.hex(), "--json")
    assert code == 0 and json.loads(out)["header"]["frame_type"] == "AD"


def test_decode_aos_with_fhec_insert_zone_ocf(app: typer.Typer, tmp_path: Path) -> None:
    config = AosChannelConfig(80, has_fhec=True, insert_zone_length=3, ocf_vcids=frozenset({4}))
    pkt = SpacePacket(3, 1, b"x" * 20).encode()
    cap = config.data_field_capacity(4)
    frame = AosFrame(0x42, 4, 1000, pkt + idle_packet(cap - len(pkt)), first_header_pointer=0,
                     insert_zone=b"abc", ocf=Clcw(4, 1).encode())
    path = tmp_path / "frame.bin"
    path.write_bytes(frame.encode(config))
    code, out, _ = run(app, "decode", "-l", "aos", str(path), "--fhec", "--insert-zone", "3",
                       "--ocf", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["header"]["insert_zone"] == b"abc".hex()
    assert report["header"]["vc_frame_count"] == 1000 and report["header"]["fhec_corrections"] == 0
    assert report["packets"][0]["apid"] == 3


def test_decode_spp(app: typer.Typer) -> None:
    raw = SpacePacket(1, 2, b"ab").encode() + SpacePacket(3, 4, b"c").encode()
    code, out, _ = run(app, "decode", "-l", "spp", "--hex", raw.hex(), "--json")
    assert code == 0
    assert [(p["apid"], p["sequence_count"]) for p in json.loads(out)["packets"]] == [
        (1, 2), (3, 4)]


def test_decode_errors_exit_2_with_layer_field_offset(app: typer.Typer) -> None:
    raw = bytearray.fromhex(USLP_VECTOR)
    raw[12] ^= 0x01
    result = runner.invoke(app, ["frame", "decode", "-l", "uslp", "--hex", raw.hex()])
    assert result.exit_code == 2
    assert "uslp" in result.stderr and "frame_error_control" in result.stderr
    assert f"offset {len(raw) - 2}" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2), not a crash
    code, _, err = run(app, "decode", "-l", "tm", "--hex", "0011")
    assert code == 2 and "tm" in err
    code, _, err = run(app, "decode", "-l", "tm", "--hex", "zz")
    assert code == 2 and "--hex" in err
    code, _, err = run(app, "decode", "-l", "nope", "--hex", "00")
    assert code == 2


def test_encode_tm_matches_library(app: typer.Typer) -> None:
    data = SpacePacket(7, 0, b"hi").encode()
    code, out, _ = run(app, "encode", "-l", "tm", "-f", "scid=0x2F", "-f", "vcid=3",
                       "-f", "mc_frame_count=5", "-d", data.hex())
    assert code == 0
    expected = TmFrame(0x2F, 3, 5, 0, 0, data).encode(TmChannelConfig(6 + len(data) + 2))
    assert out.strip() == expected.hex()


def test_encode_unknown_field_lists_valid_ones(app: typer.Typer) -> None:
    code, _, err = run(app, "encode", "-l", "tm", "-f", "spacecraft=1", "-d", "00")
    assert code == 2
    assert "spacecraft" in err
    for name in settable_fields("tm"):
        assert name in err


@pytest.mark.parametrize(("layer", "args"), [
    ("tc", ["-f", "scid=5", "-f", "vcid=2", "-f", "frame_sequence_number=9"]),
    ("tc", ["-f", "vcid=2", "-f", "map_id=4", "--segment-header"]),
    ("tm", ["-f", "scid=5", "-f", "ocf=01020304", "-f", "secondary_header=aabb",
            "--frame-length", "60", "--pad"]),
    ("aos", ["-f", "scid=5", "-f", "vcid=9", "--fhec", "--insert-zone", "2", "--ocf"]),
    ("uslp", ["-f", "scid=0x1234", "-f", "vcid=3", "-f", "map_id=1",
              "-f", "vc_frame_count_length=2", "-f", "vc_frame_count=300", "--fecf-size", "4"]),
    ("uslp", ["-f", "scid=1", "--frame-length", "64", "--pad"]),
    ("spp", ["-f", "apid=100", "-f", "sequence_count=3"]),
])
def test_encode_decode_round_trip(app: typer.Typer, layer: str, args: list[str]) -> None:
    data = SpacePacket(0x33, 1, b"payload").encode()
    code, out, err = run(app, "encode", "-l", layer, *args, "-d", data.hex())
    assert code == 0, err
    raw = bytes.fromhex(out.strip())
    decode_args = [a for a in args if a.startswith("--") and a != "--pad"]
    for opt in ("--frame-length", "--insert-zone", "--fecf-size"):
        if opt in args:
            decode_args.insert(decode_args.index(opt) + 1, args[args.index(opt) + 1])
    code, out, err = run(app, "decode", "-l", layer, "--hex", raw.hex(), "--json", *decode_args)
    assert code == 0, err
    report = json.loads(out)
    assert report["packets"][0]["apid"] == (100 if layer == "spp" else 0x33)
    # the library agrees with the CLI's view of the octets
    if layer == "uslp" and "--frame-length" not in args:
        frame = UslpFrame.decode(raw, UslpChannelConfig(fecf_size=4))
        assert (frame.vc_frame_count, frame.scid) == (300, 0x1234)


def test_encode_errors_exit_2(app: typer.Typer) -> None:
    code, _, err = run(app, "encode", "-l", "tc", "-f", "scid=4096", "-d", "00")
    assert code == 2 and "scid" in err
    code, _, err = run(app, "encode", "-l", "tm", "-f", "vcid=x", "-d", "00")
    assert code == 2 and "vcid" in err
    code, _, err = run(app, "encode", "-l", "uslp", "--frame-length", "64", "-d", "00")
    assert code == 2 and "data_field" in err
