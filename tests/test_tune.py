"""Tuning (linkstack/sims/tune.py) and ``linkstack tune``: the search space is valid, tuning is
never worse than the scenario's own settings, it finds the gain where there is one, and the
scenario file it writes loads and reproduces the tuned figures."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkstack.cli.sweep import register
from linkstack.errors import ConfigError
from linkstack.payload.backend import Generation, RecordedBackend
from linkstack.sims.memo import MemoBackend
from linkstack.sims.sweep import evaluate, prepare, read_scenario_source
from linkstack.sims.topology import build_endpoints, plan_path
from linkstack.sims.tune import (
    _rank,
    dump_toml,
    search_space,
    toml_value,
    tune,
    tuned_scenario_text,
)

ANSWER = Generation("Paris is the capital of France.", 69, 8, 0.5)
PROMPT = "What is the capital of France?"


def recorded() -> RecordedBackend:
    return RecordedBackend({}, default=ANSWER)


def quiet_links() -> list[str]:
    """The default scenario with fixed RF delays and no bursts, pointing losses or periodic
    CLCWs (see tests/test_sweep.py): latency differences come from the BER alone."""
    sets = []
    for name in ("uplink", "downlink"):
        sets += [f'links.{name}.propagation={{model = "fixed", delay_s = 0.005}}',
                 f'links.{name}.outages={{model = "none"}}']
    for name in ("downlink", "isl-forward", "isl-return"):
        sets.append(f'links.{name}.ge={{model = "none"}}')
    for name in ("isl-forward", "isl-return"):
        sets.append(f'links.{name}.outages={{model = "none"}}')
    return [*sets, "links.downlink.stack.arq_params.clcw_interval=1e6", "run.timeout_s=30.0"]


def knob(name: str) -> object:
    (k,) = [k for k in search_space(prepare(read_scenario_source("default"), ()))
            if k.name == name]
    return k


# ---------------------------------------------------------------------------------------------
# search space


def test_search_space_of_the_default_scenario_starts_at_its_settings() -> None:
    knobs = {k.name: k for k in search_space(prepare(read_scenario_source("default"), ()))}
    defaults = {name: k.options[k.default].label for name, k in knobs.items()}
    assert defaults == {
        "uplink.t1_initial": "3.0", "uplink.recovery_wait": "1.0",
        "uplink.transmission_limit": "3", "uplink.coding": "tc-bch",
        "uplink.frame_length": "1024", "uplink.window_width": "10",
        "downlink.coding": "tm-rs-255-223-i5", "downlink.clcw_interval": "1.0",
        "isl-forward+isl-return.initial_rto": "0.1", "isl-forward+isl-return.max_rto": "5.0",
        "isl-forward+isl-return.fec": "true", "isl-forward+isl-return.window": "256",
        "isl-forward+isl-return.coding": "tm-rs-255-223-i5",
    }
    # the TM and ISL codes keep stack.frame_length equal to the codeblock's frame length
    opt = knobs["isl-forward+isl-return.coding"].options
    i1 = dict(next(o for o in opt if o.label == "tm-rs-255-239-i1").settings)
    assert i1["links.isl-return.stack.frame_length"] == 239
    assert i1["links.isl-forward.stack.coding"] == "tm-rs-255-239-i1"


@pytest.mark.parametrize("scenario", ["default", "anchor"])
def test_every_option_makes_a_valid_stack(scenario: str) -> None:
    raw = read_scenario_source(scenario)
    for k in search_space(prepare(raw, ())):
        for option in k.options:
            sc = prepare(raw, option.overrides())
            for hop in plan_path(sc, sc.run.compute):
                build_endpoints(hop)  # RfHopConfig / IslHopConfig / chains validate here


# ---------------------------------------------------------------------------------------------
# the search


@settings(max_examples=6, deadline=None)
@given(up_ber=st.sampled_from([0.0, 1e-4, 1e-3, 3e-3]), isl_ber=st.sampled_from([0.0, 1e-3]),
       seed=st.integers(1, 50), objective=st.sampled_from(["p95", "median"]))
def test_tuning_never_returns_settings_worse_than_the_defaults(
        up_ber: float, isl_ber: float, seed: int, objective: str) -> None:
    sets = [f"links.uplink.ber={up_ber}", f"links.isl-forward.ber={isl_ber}",
            f"links.isl-return.ber={isl_ber}", f"scenario.seed={seed}", "run.timeout_s=60.0"]
    result = tune("default", MemoBackend(recorded()), sets=sets, objective=objective,
                  budget=4, prompts=[PROMPT, "Name a planet."])
    first = result.trials[0]
    assert first.accepted and first.evaluation is result.default
    assert all(v == "" or v for v in first.assignment.values())
    assert _rank(result.best.stats, objective) <= _rank(result.default.stats, objective)
    assert result.best_value <= result.default_value
    assert result.improvement >= 0.0
    assert result.evaluations <= 4
    if not result.changed():
        assert result.best is result.default and result.best_overrides() == []


def test_tuning_finds_a_shorter_t1_when_uplink_frames_are_lost() -> None:
    """At uplink BER 3e-3 about a quarter of the CLTUs are lost and each loss costs T1 (3 s):
    a shorter T1 must give a lower p95 (same prompts and seeds for every candidate)."""
    sets = [*quiet_links(), "links.uplink.ber=3e-3"]
    t1 = knob("uplink.t1_initial")
    result = tune("default", MemoBackend(recorded()), sets=sets, objective="p95", budget=7,
                  prompts=[PROMPT] * 4, repeat=2, knobs=[t1])
    assert result.default.stats.max_total_s > 3.0  # some prompt waited for T1
    assert result.best_value < result.default_value - 1.0
    (old, new) = result.changed()["uplink.t1_initial"]
    assert old == "3.0" and float(new) < 3.0
    assert result.best_overrides() == [f"links.uplink.stack.arq_params.t1_initial={new}"]


def test_a_tie_keeps_the_defaults() -> None:
    """At BER 0 the randomizer and the BCH decoder mode change no timing: nothing strictly
    better exists, so the defaults are returned."""
    result = tune("default", recorded(), sets=quiet_links(), budget=10, prompts=[PROMPT],
                  knobs=[knob("uplink.coding")])
    assert result.evaluations == 3  # the defaults and the two other codes, nothing more
    assert {t.evaluation.stats.median_total_s for t in result.trials} == {  # type: ignore
        result.default.stats.median_total_s}
    assert result.changed() == {} and result.best is result.default


def test_budget_and_objective_are_checked() -> None:
    with pytest.raises(ConfigError) as exc:
        tune("default", recorded(), budget=0)
    assert exc.value.key == "budget"
    with pytest.raises(ConfigError) as exc:
        tune("default", recorded(), objective="max")
    assert exc.value.key == "objective"


def test_the_written_scenario_loads_and_reproduces_the_tuned_figures(tmp_path: Path) -> None:
    sets = [*quiet_links(), "links.uplink.ber=3e-3"]
    prompts = [PROMPT] * 3
    backend = MemoBackend(recorded())
    result = tune("default", backend, sets=sets, budget=8, prompts=prompts, repeat=2)
    text = tuned_scenario_text("default", result)
    assert text.startswith("# Tuned by `linkstack tune` from default")
    for name in result.changed():
        assert f"#   {name}: " in text
    path = tmp_path / "t.toml"
    path.write_text(text)
    data = tomllib.loads(text)
    assert data["scenario"]["name"] == "default-tuned"
    assert data["links"]["uplink"]["ber"] == 3e-3
    again = evaluate(read_scenario_source(path), [], backend, prompts=prompts, repeat=2)
    assert again.stats == result.best.stats


# ---------------------------------------------------------------------------------------------
# TOML writer

_scalars = (st.text(max_size=12) | st.integers(-(2**63), 2**63 - 1) | st.booleans()
            | st.floats(allow_nan=False))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8),
                       _values | st.dictionaries(st.text(max_size=8), _values, max_size=4),
                       max_size=5))
def test_dump_toml_round_trips(data: dict) -> None:
    assert tomllib.loads(dump_toml(data)) == data


def test_toml_values() -> None:
    assert toml_value(1e-6) == "1e-06" and tomllib.loads("v = 1e-06")["v"] == 1e-6
    assert toml_value(math.inf) == "inf" and toml_value(True) == "true"
    assert toml_value('a"b\\c\x7f\n') == '"a\\"b\\\\c\\u007f\\n"'
    tricky = 'a"b\\c\x7f\x00é'
    assert tomllib.loads("v = " + toml_value(tricky))["v"] == tricky
    with pytest.raises(ConfigError):
        toml_value(object())


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_tune_writes_a_scenario_and_reports_json(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    rec = tmp_path / "rec.json"
    rec.write_text(RecordedBackend({PROMPT: ANSWER}).to_json())
    out = tmp_path / "tuned.toml"
    args = ["tune", "default", "--budget", "3", "--set", "links.uplink.ber=1e-3",
            "--set", f"run.prompts=[{PROMPT!r}]", "--backend", f"recorded:{rec}",
            "--out", str(out), "--workers", "1"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    assert doc["evaluations"] <= 3 and doc["tuned"]["p95_total_s"] <= doc["default"][
        "p95_total_s"]
    assert doc["conditions"] == ["links.uplink.ber=1e-3", f"run.prompts=[{PROMPT!r}]"]
    sc = prepare(read_scenario_source(out), ())
    assert sc.name == "default-tuned" and sc.links["uplink"].ber == 1e-3
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "improvement of the p95" in res.output and "wrote" in res.output
    res = CliRunner().invoke(app, [*args, "--objective", "max"])
    assert res.exit_code == 2
