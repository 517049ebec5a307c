"""Every command of ``linkstack``, given bad input: no traceback, exit 2, a line naming it.

Issue 17 tried 168 bad inputs from outside (numbers out of range, negative, missing files,
directories that do not exist, files that are not UTF-8, unknown keys, bad TOML) and 13 ended
in a Python traceback. This table runs the same kinds of input against every command (the
first test checks that no command is left out) in-process with typer's ``CliRunner``; two
cases go through a real ``python -m linkstack`` process to see what a user's terminal shows.

Each case names the text that must appear in the one error line: the option (``--out``), the
scenario key (``links.uplink.stack.arq_params.t1_inital``), or the argument (``FILE``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from linkstack.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
REC = f"recorded:{RECORDING}"
LICENSE = str(ROOT / "LICENSE")
ARQ = "links.uplink.stack.arq_params"
BROKER = ["--broker", "mqtt://127.0.0.1:1"]  # never reached: each case fails before


@dataclass(frozen=True)
class Files:
    """Inputs of the table, made in a temporary folder."""

    tmp: Path
    missing: str  # a file that does not exist
    nodir: str  # a folder that does not exist
    folder: str  # an existing folder where a file is expected
    not_utf8: str
    bad_toml: str
    garbage: str  # octets that are no model, no frame
    json_list: str  # valid JSON of the wrong shape


@pytest.fixture
def files(tmp_path: Path) -> Files:
    (tmp_path / "not-utf8.toml").write_bytes(b'[scenario]\nname = "\xff"\n')
    (tmp_path / "bad.toml").write_text("[scenario\nname =", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "garbage.bin").write_bytes(b"\x00\x01 not a model, not a frame")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    return Files(
        tmp_path,
        str(tmp_path / "missing.toml"),
        str(tmp_path / "no" / "such"),
        str(tmp_path / "folder"),
        str(tmp_path / "not-utf8.toml"),
        str(tmp_path / "bad.toml"),
        str(tmp_path / "garbage.bin"),
        str(tmp_path / "list.json"),
    )


# (command words, arguments with {placeholders} of Files, text the error line names)
CASES: list[tuple[str, list[str], str]] = [
    # run: scenario files, --set keys, the backend, outputs
    ("run", ["{missing}", "--backend", REC], "{missing}"),
    ("run", ["{not_utf8}", "--backend", REC], "UTF-8"),
    ("run", ["{bad_toml}", "--backend", REC], "not valid TOML"),
    ("run", ["{folder}", "--backend", REC], "{folder}"),
    ("run", ["--set", f"{ARQ}.window_width=ten", "--backend", REC], f"{ARQ}.window_width"),
    ("run", ["--set", f"{ARQ}.window_width=2.5", "--backend", REC], f"{ARQ}.window_width"),
    ("run", ["--set", f"{ARQ}.t1_inital=99", "--backend", REC], "did you mean 't1_initial'"),
    ("run", ["--set", f"{ARQ}.rto_backoff=9.0", "--backend", REC], f"{ARQ}.rto_backoff"),
    ("run", ["--set", "links.uplink.pas.altitude_km=1", "--backend", REC], "did you mean 'pass'"),
    ("run", ["--set", "links.uplink.ber=2", "--backend", REC], "links.uplink.ber"),
    ("run", ["--set", "nokey", "--backend", REC], "KEY=VALUE"),
    ("run", ["--prompt", "a prompt nobody recorded", "--backend", REC], "--backend"),
    ("run", ["--backend", "recorded:{json_list}"], "--backend"),
    ("run", ["--backend", "recorded:{not_utf8}"], "--backend"),
    ("run", ["--backend", "elsewhere"], "--backend"),
    ("run", ["--model", "{garbage}"], "--model"),
    ("run", ["--model", "{missing}"], "--model"),
    ("run", ["--pcap", "{folder}", "--backend", REC], "--pcap"),
    ("run", ["--pcap", "{nodir}/run.pcap", "--backend", REC], "--pcap"),
    ("run", ["--hours", "1", "--backend", REC], "--hours"),
    ("run", ["--prompts", "0", "--backend", REC], "--prompts"),
    # constellation
    ("constellation contacts", ["default"], "not a constellation scenario"),
    ("constellation contacts", ["star-compute", "--out", "{nodir}/plan.txt"], "--out"),
    ("constellation contacts", ["star-compute", "--hours", "0"], "--hours"),
    (
        "constellation contacts",
        ["star-compute", "--set", "constellation.slot=2"],
        "did you mean 'slots'",
    ),
    ("constellation plot", ["star-compute", "--out", "{nodir}/map.png"], "--out"),
    (
        "constellation plot",
        ["star-compute", "--out", "{tmp}/map.png", "--report", "{not_utf8}"],
        "--report",
    ),
    # sweep and tune: checked before any run
    ("sweep", ["--backend", REC, "--workers", "1"], "--vary"),
    (
        "sweep",
        ["--vary", "nokey=1,2", "--backend", REC, "--workers", "1", "--out", "{tmp}/sw"],
        "nokey",
    ),
    (
        "sweep",
        ["--vary", "ber=0", "--backend", REC, "--workers", "1", "--out", "{not_utf8}"],
        "--out",
    ),
    ("sweep", ["--vary", "ber=0", "--workers", "1", "--scheduler", "tcp://x:1"], "--workers"),
    ("tune", ["--backend", REC, "--workers", "1", "--out", "{nodir}/tuned.toml"], "--out"),
    ("tune", ["--backend", REC, "--workers", "1", "--out", "{folder}"], "--out"),
    ("tune", ["--objective", "max", "--backend", REC], "--objective"),
    (
        "tune",
        [
            "--set",
            f"{ARQ}.window_width=ten",
            "--backend",
            REC,
            "--workers",
            "1",
            "--out",
            "{tmp}/t.toml",
        ],
        f"{ARQ}.window_width",
    ),
    # files (CFDP)
    ("download", ["x.txt", "--class", "3"], "--class"),
    ("download", ["x.txt", "--pcap", "{nodir}/d.pcap"], "--pcap"),
    ("download", ["x.txt", "--place", "{missing}"], "--place"),
    ("download", ["x.txt", "--scenario", "{not_utf8}"], "UTF-8"),
    ("upload", ["{missing}"], "FILE"),
    ("upload", [LICENSE, "--entity", "-1"], "--entity"),
    ("upload", [LICENSE, "--sha256", "xyz"], "--sha256"),
    ("upload", [LICENSE, "--pcap", "{folder}"], "--pcap"),
    ("upload", [LICENSE, "--as", ""], "--as"),
    # real-time processes: refused before they bind or connect
    ("serve", ["--role", "relay", "--listen", ":0", "--peer", ":9"], "--role"),
    ("serve", ["--role", "ground", "--listen", "nohost", "--peer", ":9"], "--listen"),
    ("serve", ["--role", "ground", "--listen", ":0", "--peer", "abc:def"], "--peer"),
    (
        "serve",
        ["--role", "ground", "--listen", ":0", "--peer", ":9", "--pcap", "{nodir}/g.pcap"],
        "--pcap",
    ),
    (
        "serve",
        [
            "--role",
            "satellite",
            "--listen",
            ":0",
            "--peer",
            ":9",
            "--backend",
            "recorded:{missing}",
        ],
        "--backend",
    ),
    (
        "serve",
        ["--role", "ground", "--listen", ":0", "--peer", ":9", "--scenario", "{bad_toml}"],
        "not valid TOML",
    ),
    ("gateway", ["--broker", "http://x"], "--broker"),
    ("gateway", [*BROKER, "--service", "bogus", "--backend", REC], "--service"),
    ("gateway", [*BROKER, "--pcap", "{tmp}/g.pcap", "--backend", REC], "--pcap"),
    ("gateway", [*BROKER, "--listen", "nohost", "--backend", REC], "--listen"),
    ("gateway", [*BROKER, "--service", "udp", "--peer", ":9", "--listen", "nohost"], "--listen"),
    ("gateway", [*BROKER, "--journal", "{folder}", "--backend", REC], "--journal"),
    ("gateway", [*BROKER, "--backend", "recorded:{missing}"], "--backend"),
    (
        "gateway",
        [*BROKER, "--set", f"{ARQ}.t1_inital=9", "--backend", REC],
        "did you mean 't1_initial'",
    ),
    (
        "channel",
        ["--ground-side", "bad", "--space-side", ":0", "--ground", ":9", "--satellite", ":9"],
        "--ground-side",
    ),
    (
        "channel",
        [
            "--ground-side",
            ":0",
            "--space-side",
            ":0",
            "--ground",
            ":9",
            "--satellite",
            ":9",
            "--ber",
            "0.6",
        ],
        "--ber",
    ),
    (
        "channel",
        [
            "--ground-side",
            ":0",
            "--space-side",
            ":0",
            "--ground",
            ":9",
            "--satellite",
            ":9",
            "--scenario",
            "{missing}",
        ],
        "{missing}",
    ),
    # frames, SDLS, coding
    ("frame decode", ["-l", "bogus", "--hex", "00"], "--layer"),
    ("frame decode", ["-l", "tm", "--hex", "zz"], "--hex"),
    ("frame decode", ["-l", "tm", "{missing}"], "FILE"),
    ("frame decode", ["-l", "tm", "--hex", "00" * 20, "--sa", "{not_utf8}"], "--sa"),
    ("frame decode", ["-l", "uslp", "--hex", "00" * 20, "--fecf-size", "3"], "--fecf-size"),
    ("frame decode", ["-l", "aos", "--hex", "00" * 20, "--insert-zone", "-1"], "--insert-zone"),
    ("frame encode", ["-l", "tc", "-f", "nosuchfield=1"], "--field"),
    ("frame encode", ["-l", "tc", "-n", "-1", "-d", "00"], "--frame-length"),
    ("frame encode", ["-l", "tm", "-d", "zz"], "--data"),
    ("sdls protect", ["-l", "tc", "--sa", "{not_utf8}", "--spi", "1", "--hex", "00"], "--sa"),
    ("sdls protect", ["-l", "bogus", "--sa", "{missing}", "--spi", "1", "--hex", "00"], "--layer"),
    (
        "sdls protect",
        ["-l", "tm", "--sa", "{missing}", "--spi", "1", "--hex", "00", "-n", "0"],
        "--frame-length",
    ),
    ("sdls verify", ["-l", "tc", "--sa", "{missing}", "--hex", "00"], "--sa"),
    ("sdls verify", ["-l", "tc", "--sa", "{bad_toml}", "--hex", "00"], "--sa"),
    ("cadu decode", ["{missing}"], "INPUT"),
    ("cadu decode", ["{garbage}", "-o", "{nodir}/out.bin"], "--out"),
    ("cadu decode", ["{garbage}", "-I", "0"], "--interleave"),
    ("cadu decode", ["{garbage}", "--erasures", "{missing}"], "--erasures"),
    ("cadu encode", ["{garbage}", "-c", "bogus"], "--code"),
    ("cadu encode", ["{garbage}", "-c", "tm-uncoded"], "--frame-length"),
    ("cltu decode", ["{garbage}", "-o", "{folder}"], "--out"),
    ("cltu encode", ["{garbage}", "-c", "tm-rs-255-223-i1"], "--code"),
    ("cltu encode", ["{folder}"], "INPUT"),
    # arq loopback
    ("arq", ["--packets", "-1"], "--packets"),
    ("arq", ["--loss", "1.5"], "--loss"),
    ("arq", ["--return-loss", "1.5"], "--return-loss"),
    ("arq", ["--protocol", "sr", "--window", "2147483648"], "--window"),
    ("arq", ["--max-time", "0"], "--max-time"),
    ("arq", ["--protocol", "x"], "--protocol"),
    # the model endpoint
    ("endpoint ask", ["hi", "--model", "{missing}"], "--model"),
    ("endpoint ask", ["hi", "--model", "{garbage}"], "--model"),
    ("endpoint ask", ["hi", "--max-tokens", "0"], "--max-tokens"),
    # specs
    ("specs build", ["--root", "{missing}"], "--root"),
    ("specs build", ["--out", LICENSE], "--out"),
]


def _commands() -> set[str]:
    """Every leaf command of the application, as its words ("frame decode")."""
    found: set[str] = set()

    def walk(cmd: object, words: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, [*words, name])
        else:
            found.add(" ".join(words))

    walk(typer.main.get_command(app), [])
    return found


def test_the_table_covers_every_command() -> None:
    assert _commands() - {command for command, _, _ in CASES} == set()


def _fill(text: str, f: Files) -> str:
    return text.format(**{k: str(v) for k, v in vars(f).items()})


@pytest.mark.parametrize(
    ("command", "args", "needle"), CASES, ids=[f"{c}:{' '.join(a)[:60]}" for c, a, _ in CASES]
)
def test_bad_input_is_one_line_naming_it(
    files: Files, command: str, args: list[str], needle: str
) -> None:
    argv = [*command.split(), *(_fill(a, files) for a in args)]
    res = CliRunner().invoke(app, argv)
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        f"{argv}: {res.exception!r}"
    )
    assert "Traceback" not in res.output
    assert res.exit_code == 2, (argv, res.output)
    name = _fill(needle, files)
    assert any(name in line for line in res.output.splitlines()), (name, res.output)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--set", f"{ARQ}.window_width=ten", "--backend", REC], f"{ARQ}.window_width"),
        (["run", "--prompt", "a prompt nobody recorded", "--backend", REC], "--backend"),
    ],
)
def test_a_real_process_prints_one_line_not_a_traceback(args: list[str], needle: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "linkstack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
