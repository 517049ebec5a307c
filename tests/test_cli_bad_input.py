"""Bad input on the command line: one line naming the option or key, exit 2, no traceback.

Each case reproduces a defect reported from outside (issue 17): before the fix it ended in a
Python traceback or blamed the wrong option.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkstack.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
RECORDED = f"recorded:{ROOT / 'sims' / 'scenarios' / 'gemma-recorded.json'}"


@pytest.fixture
def not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[scenario]\nname = "\xff"\n')
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--backend", "recorded:/no/such/recording.json"], "--backend"),
        (["run", "--pcap", "/no/such/dir/run.pcap", "--backend", RECORDED], "--pcap"),
        (["arq", "--protocol", "sr", "--window", "2147483648"], "--window"),
        (["arq", "--return-loss", "1.5"], "--return-loss"),
    ],
)
def test_bad_option_is_one_line_naming_it(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert needle in res.output and "Traceback" not in res.output


def test_a_scenario_that_is_not_utf8_is_named(not_utf8: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(not_utf8), "--backend", RECORDED])
    assert res.exit_code == 2
    assert isinstance(res.exception, SystemExit)
    assert str(not_utf8) in res.output and "UTF-8" in res.output


def test_a_recording_that_is_not_utf8_is_named(not_utf8: Path) -> None:
    res = CliRunner().invoke(app, ["run", "--backend", f"recorded:{not_utf8}"])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert "--backend" in res.output and "UTF-8" in res.output
