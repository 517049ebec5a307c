"""`linkstack upload` and `linkstack download` (small files, fast uplink)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkstack.cli.main import app

FAST = ["--set", "links.uplink.rate_bps=2e6"]
KEYS = {"status", "total_s", "bound_s", "ratio", "retransmitted_octets", "passes", "sha256"}


def test_upload_json_reports_the_transfer(tmp_path: Path) -> None:
    f = tmp_path / "weights.gguf"
    data = os.urandom(12_000)
    f.write_bytes(data)
    result = CliRunner().invoke(app, ["upload", str(f), "--to", "sat1", "--class", "2",
                                      "--json", *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= KEYS
    assert report["status"] == "ok"
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["ratio"] == pytest.approx(report["total_s"] / report["bound_s"])
    assert report["passes"] == 1 and report["apid"] == 0x102
    assert report["model"]["swapped"]  # a .gguf is installed once verified
    assert report["model"]["active"]["name"] == "models/weights.gguf"


def test_upload_prints_a_summary(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_bytes(b"hello " * 1000)
    result = CliRunner().invoke(app, ["upload", str(f), "--class", "1", *FAST],
                                env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "total/bound" in result.stdout and "passes" in result.stdout
    assert "matches the source" in result.stdout
    assert "model" not in result.stdout  # not a model upload


def test_download_json_and_out(tmp_path: Path) -> None:
    out = tmp_path / "answer.txt"
    result = CliRunner().invoke(app, ["download", "answers/long-answer.txt", "--from", "sat1",
                                      "--size", "5000", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= KEYS and report["status"] == "ok"
    assert out.read_bytes().startswith(b"Q: Explain how a CCSDS space link")
    assert report["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_refused_upload_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"abc" * 2000)
    result = CliRunner().invoke(app, ["upload", str(f), "--sha256", "00" * 32, "--json", *FAST])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "sha256_mismatch" and not report["model"]["swapped"]


@pytest.mark.parametrize(("args", "names"), [
    (["upload", "/nonexistent/file.bin"], "FILE"),
    (["upload", "__FILE__", "--to", "sat9"], "--to"),
    (["upload", "__FILE__", "--class", "3"], "--class"),
    (["upload", "__FILE__", "--set", "links.uplink.ber=7"], "links.uplink.ber"),
    (["upload", "__FILE__", "--set", "nodes.sat1.store_octets=-5"], "nodes.sat1.store_octets"),
    (["upload", "__FILE__", "--set", "nodes.sat1.store_octets=1.5"], "nodes.sat1.store_octets"),
    (["upload", "__FILE__", "--set", "nodes.sat1.store_size=9"], "nodes.sat1.store_size"),
    (["download", "nothing/here.txt"], "NAME"),
    (["download", "answers/long-answer.txt", "--from", "ground"], "--from"),
    (["download", "answers/long-answer.txt", "--class", "two"], "--class"),
])
def test_bad_input_is_one_line_naming_the_option(tmp_path: Path, args: list[str],
                                                 names: str) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    argv = [str(f) if a == "__FILE__" else a for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an exception escaping
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and names in lines[0]
    assert result.stdout == ""


def test_bad_input_in_a_real_process_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "linkstack", "upload", "/nonexistent/f.bin",
                           "--class", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: FILE: no such file: /nonexistent/f.bin"
    assert proc.stdout == ""


def test_upload_pcap_holds_the_cfdp_pdus(tmp_path: Path) -> None:
    from linkstack.capture.pcap import read_pcap

    f = tmp_path / "notes.txt"
    f.write_bytes(b"hello " * 500)
    cap = tmp_path / "up.pcap"
    result = CliRunner().invoke(app, ["upload", str(f), "--json", "--pcap", str(cap), *FAST])
    assert result.exit_code == 0, result.output
    layers = {r.layer for r in read_pcap(cap)}
    assert layers >= {"cfdp", "spp", "cltu", "tc", "cadu", "tm", "uslp"}
    missing = CliRunner().invoke(app, ["upload", str(f), "--pcap",
                                       str(tmp_path / "no" / "x.pcap"), *FAST])
    assert missing.exit_code == 2 and "--pcap" in missing.stderr


@pytest.mark.parametrize(("args", "status"), [
    (["--store-capacity", "1000"], "filestore_rejection"),
    (["--set", "nodes.sat1.store_octets=1000"], "filestore_rejection"),
    (["--entity", "9"], "unknown_entity"),
    (["--cancel-after", "0.2"], "cancel_request_received"),
])
def test_upload_faults_name_themselves_in_json(tmp_path: Path, args: list[str],
                                               status: str) -> None:
    f = tmp_path / "new.gguf"
    f.write_bytes(os.urandom(200_000))
    result = CliRunner().invoke(app, ["upload", str(f), "--json", *args, *FAST])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["status"] == status and report["detail"]
    assert report["model"]["swapped"] is False
    assert "factory" in report["model"]["active"]["name"]  # the old model stays
