"""SDLS from the command line and the shipped ``secure`` scenario (issue 15).

- ``linkstack sdls protect|verify`` and ``linkstack frame decode --sa``: round trips on every
  frame type, the JSON report of ``verify``, exit status 1 for a rejected frame, one
  ``error:`` line naming the option (exit status 2) for bad input;
- ``linkstack run secure``: the default scenario with SDLS on every hop answers as the
  default one does, with the SDLS overhead in the breakdown; its SA file and public test keys
  are package data, not scenarios, and the test keys are read through a private copy.
"""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linkstack.cli.main import app
from linkstack.errors import ConfigError
from linkstack.frames.aos import AosChannelConfig, AosFrame
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.frames.uslp import UslpChannelConfig, UslpFrame
from linkstack.sdls import load_key_file, read_sa_file
from linkstack.sims import scenario as scenario_module
from linkstack.sims.scenario import (
    KEY_FILE_ENV,
    is_shipped_test_keys,
    load_scenario,
    private_key_file,
    read_scenario_source,
    scenario_names,
)
from linkstack.spp.packet import SpacePacket, idle_packet

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "sims" / "scenarios"
SA_FILE = SCENARIOS / "sdls" / "secure-sa.toml"
TEST_KEYS = SCENARIOS / "sdls" / "secure-test-keys.toml"
BACKEND = f"recorded:{SCENARIOS / 'gemma-recorded.json'}"

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_key_file_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def invoke(*args: str, input: bytes | None = None) -> tuple[int, str, str, bytes]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr, result.stdout_bytes


def packet() -> bytes:
    return SpacePacket(0x101, 7, b"the answer is 42").encode()


TM_SECURED = 100  # octets of the secured TM frames in these tests


def _tm_clear() -> bytes:
    cfg = TmChannelConfig(frame_length=TM_SECURED - 30)
    data = packet()
    data += idle_packet(cfg.data_field_capacity(ocf=True) - len(data))
    return TmFrame(42, 0, 1, 1, 0, data, ocf=b"\x00\x01\x02\x03").encode(cfg)


# one clear frame per layer, built for the SA's clear channel (30 octets shorter)
CLEAR = {
    "tm": _tm_clear(),
    "tc": TcFrame(42, 0, 5, packet()).encode(TcChannelConfig()),
    "uslp": UslpFrame(42, 1, 0, packet()).encode(UslpChannelConfig()),
}
SPI = {"tm": 1, "tc": 2, "uslp": 3}


@pytest.mark.parametrize("layer", ["tm", "tc", "uslp"])
def test_protect_then_verify_round_trip(layer: str, tmp_path: Path) -> None:
    clear = CLEAR[layer]
    src = tmp_path / "clear.bin"
    src.write_bytes(clear + clear)  # two frames back to back
    counter = tmp_path / "ctr.json"
    # TM frames are all one length: --frame-length (the secured frames') cuts the input
    extra = ["--frame-length", str(len(clear) + 30)] if layer == "tm" else []
    code, _, err, secured = invoke("sdls", "protect", "-l", layer, "--sa", str(SA_FILE),
                                   "--spi", str(SPI[layer]), "--counter-file", str(counter),
                                   *extra, str(src))
    assert code == 0, err
    assert len(secured) == 2 * (len(clear) + 30)
    assert secured[:len(secured) // 2] != secured[len(secured) // 2:]  # a fresh IV each
    assert counter.is_file() and stat.S_IMODE(counter.stat().st_mode) == 0o600
    sec = tmp_path / "secured.bin"
    sec.write_bytes(secured)
    code, out, err, _ = invoke("sdls", "verify", "-l", layer, "--sa", str(SA_FILE), "--spi",
                               str(SPI[layer]), "--json", "--out", str(tmp_path / "clear2.bin"),
                               *extra, str(sec))
    assert code == 0, (out, err)
    reports = [json.loads(line) for line in out.splitlines()]
    assert [r["frame"] for r in reports] == [0, 1]
    for i, r in enumerate(reports):
        assert r["verified"] is True and r["reason"] is None and r["spi"] == SPI[layer]
        assert r["security_header"]["spi"] == SPI[layer]
        assert int(r["security_header"]["iv"], 16) == int(r["iv"], 16) == i + 1
        assert r["security_header"]["sequence_number"] == "" and len(r["mac"]) == 32
        assert r["clear_length"] == len(clear)
    assert (tmp_path / "clear2.bin").read_bytes() == clear + clear
    # the next run resumes after the counter's reservation: no IV is used twice
    code, _, _, again = invoke("sdls", "protect", "-l", layer, "--sa", str(SA_FILE), "--spi",
                               str(SPI[layer]), "--counter-file", str(counter), "--hex",
                               clear.hex())
    assert code == 0
    code, out, _, _ = invoke("sdls", "verify", "-l", layer, "--sa", str(SA_FILE), "--spi",
                             str(SPI[layer]), "--json", "--hex", again.decode())
    assert code == 0 and int(json.loads(out)["iv"], 16) > 2


def test_frames_from_stdin_and_to_a_pipe(tmp_path: Path) -> None:
    """protect reads binary from stdin and writes binary; verify reads them from stdin ('-')
    and writes the clear frames to stdout with --out -, its report going to stderr."""
    clear = CLEAR["tc"]
    code, _, err, secured = invoke("sdls", "protect", "-l", "tc", "--sa", str(SA_FILE),
                                   "--spi", "2", "--counter-file", str(tmp_path / "c.json"),
                                   input=clear + clear)
    assert code == 0, err
    code, _, err, out = invoke("sdls", "verify", "-l", "tc", "--sa", str(SA_FILE), "--out",
                               "-", "-", input=secured)
    assert code == 0 and out == clear + clear
    assert [line.split(",")[0] for line in err.splitlines()] == [
        "frame 0: verified", "frame 1: verified"]


def test_aos_with_insert_zone_fhec_and_ocf(tmp_path: Path) -> None:
    sa = tmp_path / "aos-sa.toml"
    sa.write_text('key_file = "keys.toml"\n[[sa]]\nspi = 300\nframe = "aos"\nscid = 42\n'
                  'vcids = [3]\nservice = "authentication"\nalgorithm = "aes-cmac"\n'
                  'iv_length = 0\narsn_length = 4\nkey_id = 7\nstate = "operational"\n')
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[key]]\nid = 7\nvalue = "{"ab" * 32}"\n')
    keys.chmod(0o600)
    cfg = AosChannelConfig(frame_length=80 - 22, has_fhec=True, insert_zone_length=2,
                           ocf_vcids=frozenset({3}))
    clear = AosFrame(42, 3, 9, bytes(range(cfg.data_field_capacity(3))), 0, None, b"iz",
                     b"\x00\x00\x00\x00").encode(cfg)
    options = ["-l", "aos", "--sa", str(sa), "--fhec", "--insert-zone", "2", "--ocf"]
    code, out, err, _ = invoke("sdls", "protect", *options, "--spi", "300", "--counter-file",
                               str(tmp_path / "c.json"), "--hex", clear.hex())
    assert code == 0, err
    secured = bytes.fromhex(out.strip())
    assert len(secured) == 80
    code, out, err, _ = invoke("sdls", "verify", *options, "--json", "--hex", secured.hex())
    report = json.loads(out)
    assert code == 0 and report["verified"], (out, err)
    assert report["security_header"]["sequence_number"] == "00000001"
    assert report["mac"] and report["clear_length"] == len(clear)


def test_verify_reports_a_rejected_frame_and_exits_1(tmp_path: Path) -> None:
    from linkstack.codecs.crc import compute_fecf

    clear = CLEAR["tm"]
    code, out, _, _ = invoke("sdls", "protect", "-l", "tm", "--sa", str(SA_FILE), "--spi", "1",
                             "--counter-file", str(tmp_path / "c.json"), "--hex", clear.hex())
    assert code == 0
    secured = bytearray.fromhex(out.strip())
    secured[30] ^= 0x01  # a data octet: the MAC fails once the FECF is made right again
    forged = bytes(secured[:-2]) + compute_fecf(bytes(secured[:-2]))
    code, out, _, _ = invoke("sdls", "verify", "-l", "tm", "--sa", str(SA_FILE), "--json",
                             "--hex", forged.hex())
    report = json.loads(out)
    assert code == 1
    assert report["verified"] is False and report["reason"] == "bad_mac"
    assert report["detail"] == "MAC does not verify"
    assert report["security_header"]["spi"] == 1 and "clear_length" not in report
    code, out, _, _ = invoke("sdls", "verify", "-l", "tm", "--sa", str(SA_FILE), "--hex",
                             bytes(secured).hex())  # FECF left wrong: the cheap check first
    assert code == 1 and out.startswith("frame 0: rejected (bad_fecf)")
    # a good frame, then the same frame again: the replay is caught within the run
    good = invoke("sdls", "protect", "-l", "tm", "--sa", str(SA_FILE), "--spi", "1",
                  "--counter-file", str(tmp_path / "c.json"), "--hex", clear.hex())[1].strip()
    code, out, _, _ = invoke("sdls", "verify", "-l", "tm", "--sa", str(SA_FILE),
                             "--frame-length", str(TM_SECURED), "--hex", good + good)
    assert code == 1
    assert out.splitlines()[0].startswith("frame 0: verified, SPI 1, IV ")
    assert out.splitlines()[1].startswith("frame 1: rejected (replay)")


def test_frame_decode_with_an_sa_file_decodes_the_clear_frame(tmp_path: Path) -> None:
    clear = CLEAR["tm"]
    code, out, _, _ = invoke("sdls", "protect", "-l", "tm", "--sa", str(SA_FILE), "--spi", "1",
                             "--counter-file", str(tmp_path / "c.json"), "--hex", clear.hex())
    secured = out.strip()
    code, out, err, _ = invoke("frame", "decode", "-l", "tm", "--sa", str(SA_FILE), "--json",
                               "--hex", secured)
    assert code == 0, err
    report = json.loads(out)
    assert report["length"] == len(clear) and report["header"]["scid"] == 42
    assert report["ocf"] == "00010203"
    assert [p["apid"] for p in report["packets"]][:1] == [0x101]
    assert bytes.fromhex(report["packets"][0]["data"]) == b"the answer is 42"
    assert report["sdls"]["verified"] and report["sdls"]["security_header"]["spi"] == 1
    code, out, _, _ = invoke("frame", "decode", "-l", "tm", "--sa", str(SA_FILE), "--spi", "1",
                             "--hex", secured)
    assert code == 0 and "Security Parameter Index" in out and "the answer" not in out
    assert "Space Packets (2)" in out  # the packet and the idle packet
    tampered = secured[:40] + ("0" if secured[40] != "0" else "1") + secured[41:]
    code, out, err, _ = invoke("frame", "decode", "-l", "tm", "--sa", str(SA_FILE), "--hex",
                               tampered)
    assert code == 1 and "Space Packets" not in out
    assert err.strip().startswith("error: sdls: frame rejected (bad_fecf)")
    code, _, err, _ = invoke("frame", "decode", "-l", "tm", "--spi", "1", "--hex", secured)
    assert code == 2 and err.startswith("error: --spi: needs --sa")


def _open_keys(tmp_path: Path) -> Path:
    keys = tmp_path / "open-keys.toml"
    keys.write_bytes(TEST_KEYS.read_bytes())
    keys.chmod(0o644)
    return keys


@pytest.mark.parametrize(("args", "option"), [
    (["protect", "-l", "tx", "--spi", "1"], "--layer"),
    (["verify", "-l", "tm", "--hex", "zz"], "--hex"),
    (["verify", "-l", "tm", "--sa", "/no/such/sa.toml"], "--sa"),
    (["verify", "-l", "tm", "--spi", "9"], "--spi"),
    (["verify", "-l", "tc", "--spi", "1"], "--layer"),
    (["verify", "-l", "uslp"], "--spi"),  # two USLP SAs (one per direction): say which
    (["protect", "-l", "tm", "--spi", "1"], "--counter-file"),
    (["protect", "-l", "tm", "--spi", "1", "--key-file", "OPEN"], "--key-file"),
    (["protect", "-l", "tm", "--spi", "1", "--key-file", "/no/such/keys.toml"], "--key-file"),
    (["verify", "-l", "tm", "--frame-length", "7"], "--frame-length"),
    (["protect", "-l", "tc", "--spi", "2", "--counter-file", "CTR", "--hex",
      TcFrame(42, 0, 0, bytes(993)).encode(TcChannelConfig()).hex()],  # 1000 > 1024 - 30
     "tc encode failed: field frame_length"),
])
def test_bad_input_is_one_error_line_naming_the_option(tmp_path: Path, args: list[str],
                                                       option: str) -> None:
    full = [a.replace("OPEN", str(_open_keys(tmp_path))).replace("CTR", str(tmp_path / "c"))
            for a in args]
    if "--sa" not in full:
        full += ["--sa", str(SA_FILE)]
    if "--hex" not in full:
        full += ["--hex", (CLEAR["tm"] + bytes(30)).hex()]  # 100 octets
    code, out, err, _ = invoke("sdls", *full)
    lines = err.strip().splitlines()
    assert code == 2, (full, out, err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {option}"), (full, err)
    assert "Traceback" not in out + err
    keys = TEST_KEYS.read_text()
    for value in (line.split('"')[1] for line in keys.splitlines()
                  if line.startswith("value")):
        assert value not in out + err


# ---------------------------------------------------------------------------------------------
# the shipped secure scenario


def test_run_secure_answers_like_default_with_the_sdls_overhead_in_the_breakdown() -> None:
    def run(name: str) -> dict[str, Any]:
        code, out, err, _ = invoke("run", name, "--backend", BACKEND, "--prompts", "2",
                                   "--json")
        assert code == 0, err
        return dict(json.loads(out))

    secure, default = run("secure"), run("default")
    assert secure["scenario"] == "secure" and secure["segments"] == default["segments"]
    for s, d in zip(secure["prompts"], default["prompts"], strict=True):
        assert s["status"] == d["status"] == "ok" and s["answer"] == d["answer"]
        assert sum(s["breakdown"].values()) == pytest.approx(s["total_s"], abs=1e-9)
        for hop in ("uplink", "isl-forward", "isl-return", "downlink"):
            assert s["breakdown"][f"{hop}.sdls"] > 0, hop
            assert d["breakdown"][f"{hop}.sdls"] == 0, hop
        assert s["total_s"] > d["total_s"]  # 30 more octets in every uplink frame
    for name, status in secure["links"].items():
        assert status["sdls_applied"] > 0 and status["sdls_accepted"] > 0, name
        assert not status["sdls_rejected"], name
    code, out, _, _ = invoke("run", "secure", "--backend", BACKEND, "--prompts", "1")
    assert code == 0 and "uplink.sdls" in out and "downlink.sdls" in out


def test_secure_scenario_is_the_default_one_with_sdls() -> None:
    secure = tomllib.loads((SCENARIOS / "secure.toml").read_text())
    default = tomllib.loads((SCENARIOS / "default.toml").read_text())
    assert secure.pop("security") == {"sa_file": "sdls/secure-sa.toml"}
    sas = {link: secure["links"][link]["stack"].pop("sdls") for link in secure["links"]}
    assert sas == {"uplink": "uplink", "downlink": "downlink", "isl-forward": "isl-forward",
                   "isl-return": "isl-return"}
    for key in ("name", "description"):
        secure["scenario"].pop(key)
        default["scenario"].pop(key)
    assert secure == default
    # SA 1 is the downlink's: AES-256-GCM authenticated encryption of TM frames
    by_spi = {sa.spi: sa for sa in read_sa_file(SA_FILE)}
    down = by_spi[1]
    assert (down.name, down.frame.value, down.service.value, down.algorithm.value,
            sorted(down.vcids)) == ("downlink", "tm", "authenticated_encryption", "aes-gcm",
                                    [0, 7])
    assert sorted(by_spi) == [1, 2, 3, 4] and len({sa.key_id for sa in by_spi.values()}) == 4


def test_sa_and_key_files_are_not_scenarios() -> None:
    names = scenario_names()
    assert "secure" in names and "default" in names
    assert not any("sa" in n.split("-") or "keys" in n for n in names), names
    with pytest.raises(ConfigError):
        load_scenario("secure-sa")


def test_relative_security_paths_are_taken_from_the_scenario_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    data = read_scenario_source("secure")
    assert Path(data["security"]["sa_file"]) == SA_FILE  # the package's own folder
    copy = tmp_path / "elsewhere" / "mine.toml"
    copy.parent.mkdir()
    copy.write_text((SCENARIOS / "secure.toml").read_text())
    monkeypatch.chdir(tmp_path)
    assert read_scenario_source(copy)["security"]["sa_file"] == str(
        copy.parent / "sdls" / "secure-sa.toml")
    # --set paths stay relative to the working directory
    sc = load_scenario("secure", ["security.sa_file=here.toml"])
    assert sc.security is not None and sc.security.sa_file == "here.toml"


def test_the_shipped_test_keys_are_read_through_a_private_copy(tmp_path: Path) -> None:
    assert is_shipped_test_keys(TEST_KEYS)
    assert "PUBLIC TEST KEYS" in TEST_KEYS.read_text() and "TESTS AND EXAMPLES ONLY" in (
        TEST_KEYS.read_text())
    with private_key_file(TEST_KEYS) as copy:
        assert copy != TEST_KEYS and stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert copy.read_bytes() == TEST_KEYS.read_bytes()
        ring = load_key_file(copy)
    assert not copy.exists()  # deleted once the keys are loaded
    assert sorted(k.key_id for k in ring) == [1, 2, 3, 4]
    assert all(k.length == 32 for k in ring)
    # any other file is used as it is: a readable copy of the same keys is refused
    open_copy = _open_keys(tmp_path)
    assert not is_shipped_test_keys(open_copy)
    with private_key_file(open_copy) as same:
        assert same == open_copy
        with pytest.raises(ConfigError, match="chmod 600"):
            load_key_file(same)
    assert scenario_module._shipped_folder() == SCENARIOS  # this checkout is the package
