"""``linkstack cadu|cltu encode|decode`` (linkstack/cli/coding.py), through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from linkstack.cli.coding import register
from linkstack.codecs.asm import ASM_BYTES
from linkstack.codecs.chain import CodingChain
from linkstack.codecs.cltu import TAIL_SEQUENCE


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def tc_frame(rng: np.random.Generator, length: int) -> bytes:
    frame = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
    frame[0] &= 0x3F
    frame[2] = (frame[2] & 0xFC) | ((length - 1) >> 8)
    frame[3] = (length - 1) & 0xFF
    return bytes(frame)


def test_cadu_binary_round_trip_with_json_stats(app: typer.Typer, runner: CliRunner) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, 1115 * 4, dtype=np.uint8).tobytes()
    enc = runner.invoke(app, ["cadu", "encode"], input=frames)
    assert enc.exit_code == 0, enc.stderr
    cadus = enc.stdout_bytes
    assert len(cadus) == 4 * 1279 and cadus[:4] == ASM_BYTES
    # same bytes as the library
    chain = CodingChain.from_name("tm-rs-255-223-i5")
    assert cadus == chain.encode([frames[i : i + 1115] for i in range(0, len(frames), 1115)])
    # flip a few symbols in the second CADU; prepend three garbage bits
    damaged = bytearray(cadus)
    for k in (10, 20, 30):
        damaged[1279 + 4 + k] ^= 0xA5
    bits = np.concatenate([[1, 0, 1], np.unpackbits(np.frombuffer(bytes(damaged), np.uint8))])
    stream = np.packbits(bits.astype(np.uint8)).tobytes()
    dec = runner.invoke(app, ["cadu", "decode", "--json"], input=stream)
    assert dec.exit_code == 0, dec.stderr
    assert dec.stdout_bytes == frames
    stats = json.loads(dec.stderr)
    assert stats["frames"] == 4 and stats["corrected_symbols"] == 3
    assert stats["failures"] == 0 and stats["slips"] == 0 and stats["code"] == chain.name
    assert stats["skipped_bits"] == 3 + 5


def test_cadu_hex_and_options(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, 100, dtype=np.uint8).tobytes() for _ in range(3)]
    src = tmp_path / "frames.hex"
    src.write_text("# three frames\n" + "\n".join(f.hex() for f in frames) + "\n\n")
    out = tmp_path / "cadus.hex"
    args = ["--code", "tm-uncoded", "--frame-length", "100", "--no-randomize", "--hex"]
    enc = runner.invoke(app, ["cadu", "encode", str(src), "--out", str(out), *args])
    assert enc.exit_code == 0, enc.stderr
    lines = out.read_text().split()
    assert lines == [(ASM_BYTES + f).hex() for f in frames]
    dec = runner.invoke(app, ["cadu", "decode", str(out), *args, "--json", "-o",
                              str(tmp_path / "back.hex")])
    assert dec.exit_code == 0, dec.stderr
    assert (tmp_path / "back.hex").read_text().split() == [f.hex() for f in frames]
    assert json.loads(dec.stdout)["frames"] == 3  # with --out the JSON goes to stdout


def test_cadu_interleave_option(app: typer.Typer, runner: CliRunner) -> None:
    frames = bytes(range(239)) * 2
    enc = runner.invoke(app, ["cadu", "encode", "-c", "tm-rs-255-239", "-I", "2"], input=frames)
    assert enc.exit_code == 0, enc.stderr
    assert len(enc.stdout_bytes) == 4 + 510
    dec = runner.invoke(app, ["cadu", "decode", "-c", "tm-rs-255-239", "-I", "2"],
                        input=enc.stdout_bytes)
    assert dec.stdout_bytes == frames
    assert "frames 1" in dec.stderr


def test_cltu_binary_frames_split_by_length_field(app: typer.Typer, runner: CliRunner) -> None:
    rng = np.random.default_rng(3)
    frames = [tc_frame(rng, n) for n in (5, 17, 300, 64)]
    enc = runner.invoke(app, ["cltu", "encode", "--code", "tc-bch-rand"], input=b"".join(frames))
    assert enc.exit_code == 0, enc.stderr
    chain = CodingChain.from_name("tc-bch-rand")
    assert enc.stdout_bytes == chain.encode(frames)
    assert enc.stdout_bytes.count(TAIL_SEQUENCE) == 4
    dec = runner.invoke(app, ["cltu", "decode", "--code", "tc-bch-rand", "--hex", "--json"],
                        input=enc.stdout_bytes.hex() + "\n")
    assert dec.exit_code == 0, dec.stderr
    assert dec.stdout.split() == [f.hex() for f in frames]
    assert json.loads(dec.stderr)["frames"] == 4
    # without the randomizer on the receive side the frames do not come out
    wrong = runner.invoke(app, ["cltu", "decode", "--no-randomize", "--json", "-c",
                                "tc-bch-rand"], input=enc.stdout_bytes)
    assert json.loads(wrong.stderr)["frames"] < 4


def test_cltu_carries_mixed_tc_and_uslp_frames(app: typer.Typer, runner: CliRunner) -> None:
    """Concatenated binary input is split by each frame's own length field: TC (10 bits in
    octets 2-3) or USLP (16 bits in octets 4-5, TFVN 1100)."""
    from linkstack.frames.uslp import UslpFrame

    rng = np.random.default_rng(4)
    uslp = UslpFrame(0x2A, 1, data_field=b"over USLP", vc_frame_count_length=1,
                     vc_frame_count=9).encode()
    frames = [tc_frame(rng, 40), uslp, tc_frame(rng, 9)]
    enc = runner.invoke(app, ["cltu", "encode"], input=b"".join(frames))
    assert enc.exit_code == 0, enc.stderr
    assert enc.stdout_bytes.count(TAIL_SEQUENCE) == 3
    dec = runner.invoke(app, ["cltu", "decode", "--hex"], input=enc.stdout_bytes.hex() + "\n")
    assert dec.exit_code == 0, dec.stderr
    assert dec.stdout.split() == [f.hex() for f in frames]
    cut = runner.invoke(app, ["cltu", "encode"], input=b"".join(frames)[:-3])
    assert cut.exit_code != 0 and "frame_length" in cut.stderr


def test_cltu_encode_json(app: typer.Typer, runner: CliRunner) -> None:
    frame = tc_frame(np.random.default_rng(4), 20)
    res = runner.invoke(app, ["cltu", "encode", "--json"], input=frame)
    assert res.exit_code == 0
    stats = json.loads(res.stderr)
    assert stats == {"code": "tc-bch", "frames": 1, "frame_octets": 20,
                     "output_octets": 2 + 3 * 8 + 8}


def test_cltu_decode_reports_rejections(app: typer.Typer, runner: CliRunner) -> None:
    frame = tc_frame(np.random.default_rng(5), 30)
    cltu = bytearray(CodingChain.from_name("tc-bch").encode_frame(frame))
    cltu[2] ^= 0x03  # two errors in the first codeblock
    res = runner.invoke(app, ["cltu", "decode", "--json"], input=bytes(cltu))
    assert res.exit_code == 0
    stats = json.loads(res.stderr)
    assert stats["frames"] == 0 and stats["failures"] == 1
    assert "uncorrectable" in stats["rejected"][0]
    assert res.stdout_bytes == b""


@pytest.mark.parametrize(
    ("args", "data", "code", "message"),
    [
        (["cadu", "encode", "--code", "tm-rs-255-223-i7"], b"", 2, "i7"),
        (["cadu", "encode", "--code", "tc-bch"], b"", 2, "cltu"),
        (["cltu", "encode", "--code", "tm-rs-255-239-i1"], b"", 2, "cadu"),
        (["cadu", "encode"], b"\x00" * 1000, 2, "1115"),
        (["cltu", "encode"], b"\x00\x00\x00\x20\x00", 2, "frame length"),
        (["cltu", "encode", "--hex"], b"zz\n", 2, "not hex"),
        (["cadu", "decode", "--code", "tm-uncoded"], b"", 2, "frame_length"),
    ],
)
def test_errors_exit_nonzero_with_message(app: typer.Typer, runner: CliRunner, args: list[str],
                                          data: bytes, code: int, message: str) -> None:
    res = runner.invoke(app, args, input=data)
    assert res.exit_code == code
    assert message in res.stderr and res.stderr.startswith("error:")


def test_missing_input_file(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["cadu", "decode", str(tmp_path / "nope.bin")])
    assert res.exit_code == 2


def test_decode_random_bytes_does_not_crash(app: typer.Typer, runner: CliRunner) -> None:
    junk = np.random.default_rng(6).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    for group in ("cadu", "cltu"):
        res = runner.invoke(app, [group, "decode", "--json"], input=junk)
        assert res.exit_code == 0, res.stderr
        assert json.loads(res.stderr)["skipped_octets"] > 0


def test_cadu_decode_with_erasures_file(app: typer.Typer, runner: CliRunner,
                                        tmp_path: Path) -> None:
    """A fade wipes 150 octets of the second CADU (30 per codeword of I = 5: beyond E = 16
    errors, within 2E = 32 erasures): with --erasures naming them every frame comes back."""
    rng = np.random.default_rng(8)
    frames = rng.integers(0, 256, 1115 * 3, dtype=np.uint8).tobytes()
    cadus = bytearray(CodingChain.from_name("tm-rs-255-223-i5").encode(
        [frames[i : i + 1115] for i in range(0, len(frames), 1115)]))
    start = 1279 + 4 + 100
    cadus[start : start + 150] = bytes(150)
    src = tmp_path / "cadus.bin"
    src.write_bytes(bytes(cadus))
    plain = runner.invoke(app, ["cadu", "decode", str(src), "--json"])
    assert plain.exit_code == 0 and json.loads(plain.stderr)["failures"] == 1
    marks = tmp_path / "erased.txt"
    marks.write_text(f"# a fade\n{start}-{start + 99}, {start + 100}\n"
                     f"{start + 101}-{start + 149} {start + 120}\n")
    dec = runner.invoke(app, ["cadu", "decode", str(src), "--json", "--erasures", str(marks)])
    assert dec.exit_code == 0, dec.stderr
    assert dec.stdout_bytes == frames
    stats = json.loads(dec.stderr)
    assert (stats["frames"], stats["failures"], stats["erased_octets"]) == (3, 0, 150)
    # stdin and hex input count the same octets
    res = runner.invoke(app, ["cadu", "decode", "--erasures", str(marks)], input=bytes(cadus))
    assert res.exit_code == 0 and res.stdout_bytes == frames
    hex_lines = bytes(cadus[:2000]).hex() + "\n" + bytes(cadus[2000:]).hex() + "\n"
    res = runner.invoke(app, ["cadu", "decode", "--hex", "--erasures", str(marks)],
                        input=hex_lines)
    assert res.exit_code == 0 and "".join(res.stdout.split()) == frames.hex()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("12\n3-x\n", "line 2: '3-x' is not an octet offset"),
        ("-4\n", "'-4' is not an octet offset"),
        ("0x10\n", "'0x10'"),
        ("10-2\n", "line 1: the range 10-2 runs backwards"),
        ("5000\n", "offset 5000 is beyond the input (1279 octets)"),
        ("0-99999999999999\n", "beyond the input"),
        (b"\xff\n", "cannot read"),
        (None, "cannot read"),
    ],
)
def test_cadu_decode_bad_erasures_file(app: typer.Typer, runner: CliRunner, tmp_path: Path,
                                       content: str | bytes | None, message: str) -> None:
    src = tmp_path / "cadu.bin"
    src.write_bytes(CodingChain.from_name("tm-rs-255-223-i5").encode([bytes(1115)]))
    marks = tmp_path / "erased.txt"
    if isinstance(content, bytes):
        marks.write_bytes(content)
    elif content is not None:
        marks.write_text(content)
    res = runner.invoke(app, ["cadu", "decode", str(src), "--erasures", str(marks)])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --erasures: ") and message in res.stderr
    assert res.stderr.count("\n") == 1
    assert res.stdout_bytes == b""  # checked before any output (the input is a file)


def test_cadu_decode_fecf_code_drops_a_false_frame(app: typer.Typer, runner: CliRunner) -> None:
    # a false ASM 10 octets before the stream: with I = 1 RS alone "decodes" the slipped
    # false CADU (10 corrections); the -fecf chain rejects it and every real frame comes out
    from linkstack.codecs.crc import append_fecf

    rng = np.random.default_rng(9)
    frames = [append_fecf(rng.integers(0, 256, 221, dtype=np.uint8).tobytes())
              for _ in range(3)]
    garbage = bytearray(rng.integers(0, 256, 30, dtype=np.uint8).tobytes())
    garbage[20:24] = ASM_BYTES
    stream = bytes(garbage) + CodingChain.from_name("tm-rs-255-223-i1").encode(frames)
    plain = runner.invoke(app, ["cadu", "decode", "-c", "tm-rs-255-223-i1", "--json"],
                          input=stream)
    assert plain.exit_code == 0 and len(plain.stdout_bytes) == 4 * 223
    assert plain.stdout_bytes[223:] == b"".join(frames)
    res = runner.invoke(app, ["cadu", "decode", "-c", "tm-rs-255-223-i1-fecf", "--json"],
                        input=stream)
    assert res.exit_code == 0 and res.stdout_bytes == b"".join(frames)
    stats = json.loads(res.stderr)
    assert (stats["code"], stats["frames"], stats["fecf_failures"], stats["false_markers"]) == (
        "tm-rs-255-223-i1-fecf", 3, 1, 1)
    assert "FECF" in stats["rejected"][0]
