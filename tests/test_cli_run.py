"""`linkstack run`: the README's main command, with a replayed model so the test is fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkstack.cli.main import app

RECORDING = Path(__file__).resolve().parent.parent / "sims" / "scenarios" / "gemma-recorded.json"
BACKEND = f"recorded:{RECORDING}"


def test_run_json_has_prompts_and_summary() -> None:
    result = CliRunner().invoke(app, ["run", "--backend", BACKEND, "--prompts", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["prompts"]) == 2
    for p in data["prompts"]:
        assert p["answer"] and p["status"] == "ok"
        assert sum(p["breakdown"].values()) == pytest.approx(p["total_s"], abs=1e-9)
        assert p["ratio"] == pytest.approx(p["total_s"] / p["bound_s"])
    for key in ("total_s", "ttft_s", "bound_s", "ratio"):
        assert set(data["summary"][key]) == {"median", "p95"}
    for p in data["prompts"]:
        # the recorded answers carry their token times: the default scenario streams them
        # (every 8 tokens or 0.5 s), so the first words arrive before the whole answer
        if p["segments"]:
            assert 0 < p["ttft_s"] < p["total_s"]
        else:
            assert p["ttft_s"] == p["total_s"]
    assert data["segments"] == ["uplink", "isl-forward", "onboard", "isl-return", "downlink"]


def test_run_prints_answers_and_breakdown() -> None:
    result = CliRunner().invoke(app, ["run", "--backend", BACKEND, "--prompts", "1"],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Paris is the capital of France." in result.output
    assert "uplink.serialization" in result.output and "total/bound" in result.output
    assert "ttft 0.440276 s (first words; 1 partial" in result.output  # as specs/latency.md
    assert "median ttft" in result.output


def test_run_bad_override_names_the_key() -> None:
    result = CliRunner().invoke(app, ["run", "--backend", BACKEND, "--set",
                                      "links.uplink.ber=2"])
    assert result.exit_code == 2
    assert "links.uplink.ber" in result.output
