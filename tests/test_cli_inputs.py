"""Frames as other ground tools write them: hex lines and KISS (``--format``), issue 19.

``frame decode`` reads hex text from a file or stdin (it took the text for binary octets
and failed on the checksum), several frames per input; ``cadu decode`` and ``cltu decode``
take KISS frames (each a CADU or CLTU, as gr-satellites' KISS file sink writes them). The
KISS stream of the tests is built here from the protocol's rules (FEND 0xC0, command octet,
FESC 0xDB + TFEND 0xDC / TFESC 0xDD; Chepponis & Karn, "The KISS TNC", 1987), independently
of the reader under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkstack.cli.inputs import hex_lines, is_hex_text, kiss_frames, split_input
from linkstack.cli.main import app
from linkstack.codecs.chain import CodingChain
from linkstack.errors import ConfigError
from linkstack.frames import TcChannelConfig, TcFrame, TmChannelConfig, TmFrame


def _kiss(frames: list[bytes], command: int = 0x00) -> bytes:
    out = bytearray()
    for frame in frames:
        body = bytes([command]) + frame
        out += b"\xc0" + body.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
        out += b"\xc0"
    return bytes(out)


def _tm(scid: int, data: bytes) -> bytes:
    config = TmChannelConfig(frame_length=6 + len(data) + 2)
    return TmFrame(scid, 0, data_field=data).encode(config)


def test_kiss_escapes_and_commands() -> None:
    # one data frame holding FEND and FESC, a TXDELAY command frame (skipped), a data frame
    # on port 1, and stray FENDs between frames
    stream = (
        b"\xc0\xc0\x00\x01\xdb\xdc\x02\xdb\xdd\x03\xc0"
        + b"\xc0\x01\x28\xc0"
        + b"\xc0\x10\xaa\xbb\xc0"
    )
    assert kiss_frames(stream) == [b"\x01\xc0\x02\xdb\x03", b"\xaa\xbb"]
    with pytest.raises(ConfigError, match="FESC at octet 3"):
        kiss_frames(b"\xc0\x00\x01\xdb\x05\xc0")
    with pytest.raises(ConfigError, match="no data frame"):
        kiss_frames(b"\xc0\x01\x28\xc0")


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=5))
def test_kiss_round_trip(frames: list[bytes]) -> None:
    assert kiss_frames(_kiss(frames)) == frames


def test_hex_lines_and_detection() -> None:
    text = "# two frames\n0x02a0 0000\n\n  18:00:10 42\n"
    assert hex_lines(text) == [bytes.fromhex("02a00000"), bytes.fromhex("18001042")]
    with pytest.raises(ConfigError, match="line 2 is not hex"):
        hex_lines("00ff\nzz\n")
    assert is_hex_text(b"02a0 00\n") and not is_hex_text(b"\x02\xa0") and not is_hex_text(b"\n")
    assert split_input(b"\x02\xa0", "auto") is None
    assert split_input(b"02a0\n", "AUTO") == [b"\x02\xa0"]


def test_frame_decode_reads_hex_from_stdin() -> None:
    """The issue's command: `echo <hex> | linkstack frame decode --layer tm -` (a checksum
    error before: the hex text was decoded as octets)."""
    frame = _tm(42, b"\x10\x42\xc0\x05\x00\x03\x01\x02\x03\x04")
    res = CliRunner().invoke(
        app, ["frame", "decode", "--layer", "tm", "--json", "-"], input=frame.hex() + "\n"
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["header"]["scid"] == 42 and report["data_field"] == "1042c005000301020304"


def test_frame_decode_several_frames(tmp_path: Path) -> None:
    frames = [_tm(42, b"\x01\x02\x03"), _tm(7, b"\xc0\xdb\xc0\x00")]
    hex_file = tmp_path / "frames.hex"
    spaced = " ".join(frames[1].hex()[i : i + 2] for i in range(0, 2 * len(frames[1]), 2))
    hex_file.write_text(f"# from a log\n{frames[0].hex()}\n\n{spaced}\n", encoding="utf-8")
    kiss_file = tmp_path / "frames.kiss"
    kiss_file.write_bytes(_kiss(frames))
    single = [
        json.loads(
            CliRunner()
            .invoke(app, ["frame", "decode", "-l", "tm", "--json", "--hex", f.hex()])
            .stdout
        )
        for f in frames
    ]
    for args in (["--format", "hex", str(hex_file)], ["--format", "kiss", str(kiss_file)]):
        res = CliRunner().invoke(app, ["frame", "decode", "-l", "tm", "--json", *args])
        assert res.exit_code == 0, res.output
        assert [json.loads(line) for line in res.stdout.splitlines()] == single
    text = CliRunner().invoke(
        app, ["frame", "decode", "-l", "tm", "--format", "kiss", str(kiss_file)], terminal_width=100
    )
    assert text.exit_code == 0 and "frame 1 (12 octets)" in text.stdout


def test_frame_decode_names_the_bad_frame_and_the_format(tmp_path: Path) -> None:
    good = _tm(42, b"\x01\x02\x03")
    bad = bytearray(good)
    bad[-1] ^= 1
    src = tmp_path / "frames.hex"
    src.write_text(f"{good.hex()}\n{bytes(bad).hex()}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["frame", "decode", "-l", "tm", "--format", "hex", str(src)])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines()[-1].startswith("error: tm decode failed")
    assert "frame 1: FECF" in res.stderr and "Traceback" not in res.output
    for fmt, data, needle in (
        ("kiss", b"\xc0\x00\x01\xdb\x05\xc0", "error: --format: KISS"),
        ("hex", b"0102\nxyz\n", "error: --format: line 2"),
        ("tlv", b"0102", "error: --format: 'tlv' is not one of"),
    ):
        path = tmp_path / f"in.{fmt}"
        path.write_bytes(data)
        res = CliRunner().invoke(app, ["frame", "decode", "-l", "tm", "--format", fmt, str(path)])
        assert res.exit_code == 2 and res.stderr.strip() == res.stderr.strip().splitlines()[0]
        assert res.stderr.startswith(needle), res.stderr


def test_cadu_and_cltu_decode_take_kiss_and_hex(tmp_path: Path) -> None:
    tm_chain = CodingChain.from_name("tm-rs-255-223-i1")
    tm_frames = [_tm(42, bytes([i]) * (223 - 8)) for i in range(3)]
    cadus = [tm_chain.encode_frame(f) for f in tm_frames]
    tc_chain = CodingChain.from_name("tc-bch")
    tc_config = TcChannelConfig()
    tc_frames = [
        TcFrame(42, 1, frame_sequence_number=i, data_field=b"\xc0\xdb" * (i + 1)).encode(tc_config)
        for i in range(3)
    ]
    cltus = [tc_chain.encode_frame(f) for f in tc_frames]
    for command, units, frames in (("cadu", cadus, tm_frames), ("cltu", cltus, tc_frames)):
        code = "tm-rs-255-223-i1" if command == "cadu" else "tc-bch"
        for fmt, data in (
            ("kiss", _kiss(units)),
            ("hex", "".join(u.hex() + "\n" for u in units).encode()),
        ):
            res = CliRunner().invoke(
                app, [command, "decode", "-c", code, "--format", fmt], input=data
            )
            assert res.exit_code == 0, (command, fmt, res.output)
            assert res.stdout_bytes == b"".join(frames), (command, fmt)
