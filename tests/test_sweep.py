"""Sweeps (linkstack/sims/sweep.py), the memoizing backend (sims/memo.py) and ``linkstack sweep``
(linkstack/cli/sweep.py): key expansion, the grid, latency against BER, CSV and PNG output."""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from linkstack.cli.sweep import register
from linkstack.errors import ConfigError
from linkstack.payload.backend import Generation, RecordedBackend
from linkstack.payload.messages import GenerationParams
from linkstack.sims.memo import LazyBackend, MemoBackend
from linkstack.sims.sweep import (
    RowContext,
    RowStore,
    bootstrap_ci,
    expand_key,
    expand_sets,
    grid,
    parse_vary,
    plan_rows,
    plot_sweep,
    read_scenario_source,
    repeat_seeds,
    run_row,
    run_sweep,
    split_values,
    write_samples_csv,
    write_sweep_csv,
)

ANSWER = Generation("Paris is the capital of France.", 69, 8, 0.5)
PROMPT = "What is the capital of France?"
LINKS = ("uplink", "downlink", "isl-forward", "isl-return")


def recorded() -> RecordedBackend:
    return RecordedBackend({}, default=ANSWER)


def quiet_links() -> list[str]:
    """Overrides that take every time-dependent effect out of the default scenario except the
    BER: fixed RF delays (no pass geometry, no contact windows), no Gilbert-Elliott bursts, no
    laser pointing losses, no periodic CLCW report; prompts time out after 30 s."""
    sets = []
    for name in ("uplink", "downlink"):
        sets += [f'links.{name}.propagation={{model = "fixed", delay_s = 0.005}}',
                 f'links.{name}.outages={{model = "none"}}']
    for name in ("downlink", "isl-forward", "isl-return"):
        sets.append(f'links.{name}.ge={{model = "none"}}')
    for name in ("isl-forward", "isl-return"):
        sets.append(f'links.{name}.outages={{model = "none"}}')
    return [*sets, "links.downlink.stack.arq_params.clcw_interval=1e6", "run.timeout_s=30.0"]


# ---------------------------------------------------------------------------------------------
# keys and values


def test_expand_key_aliases_globs_and_plus() -> None:
    raw = read_scenario_source("default")
    assert expand_key(raw, "ber") == [f"links.{n}.ber" for n in LINKS]
    assert expand_key(raw, "links.*.ber") == [f"links.{n}.ber" for n in LINKS]
    assert expand_key(raw, "links.isl-*.stack.coding") == [
        "links.isl-forward.stack.coding", "links.isl-return.stack.coding"]
    assert expand_key(raw, "links.uplink.ber+links.downlink.ber") == [
        "links.uplink.ber", "links.downlink.ber"]
    # a plain key is taken as it is, even if the file does not set it (the profile does)
    assert expand_key(raw, "links.uplink.rate_bps") == ["links.uplink.rate_bps"]


@pytest.mark.parametrize("key", ["links.nothing*.ber", "links..ber", "a+"])
def test_expand_key_errors_name_the_key(key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        expand_key(read_scenario_source("default"), key)
    assert exc.value.key


def test_set_takes_the_keys_of_vary() -> None:
    raw = read_scenario_source("default")
    assert expand_sets(raw, ["ber=1e-4", "run.timeout_s=5.0", "links.isl-*.erasure=0.1"]) == [
        *(f"links.{n}.ber=1e-4" for n in LINKS), "run.timeout_s=5.0",
        "links.isl-forward.erasure=0.1", "links.isl-return.erasure=0.1"]
    result = run_sweep("default", ["links.uplink.stack.frame_length=256"], recorded(),
                       sets=["ber=1e-4"], prompts=[PROMPT])
    assert result.base_overrides[:4] == tuple(f"links.{n}.ber=1e-4" for n in LINKS)


def test_split_values_keeps_brackets_and_quotes_whole() -> None:
    assert split_values("1e-6, 1e-5,1e-4") == ["1e-6", "1e-5", "1e-4"]
    assert split_values('[[0, 60], [90, 120]],"a,b",\'c,d\',x') == [
        "[[0, 60], [90, 120]]", '"a,b"', "'c,d'", "x"]
    assert split_values('"q\\",r",s') == ['"q\\",r"', "s"]


def test_parse_vary_and_grid_order() -> None:
    raw = read_scenario_source("default")
    a = parse_vary("ber=0,1e-5", raw)
    b = parse_vary("links.uplink.stack.frame_length=256,512,1024", raw)
    assert a.keys == tuple(f"links.{n}.ber" for n in LINKS) and a.values == ("0", "1e-5")
    assert a.overrides("1e-5") == [f"links.{n}.ber=1e-5" for n in LINKS]
    points = grid([a, b])
    assert len(points) == 6
    assert [p["ber"] for p in points] == ["0"] * 3 + ["1e-5"] * 3  # first key slowest
    assert [p[b.label] for p in points[:3]] == ["256", "512", "1024"]
    for bad in ("ber", "ber=", "ber=1,1", "=1,2"):
        with pytest.raises(ConfigError):
            parse_vary(bad, raw)
    with pytest.raises(ConfigError):
        grid([a, a])


def test_a_bad_value_fails_before_anything_runs() -> None:
    backend = MemoBackend(recorded())
    with pytest.raises(ConfigError) as exc:
        run_sweep("default", ["ber=0,0.9"], backend, prompts=[PROMPT])
    assert exc.value.key == "links.uplink.ber"
    assert backend.misses == 0


# ---------------------------------------------------------------------------------------------
# latency against BER


def test_latency_does_not_decrease_as_ber_rises() -> None:
    """Median total over three identical prompts, every link at the same BER, one seed.

    Why this cannot fail by chance (it is deterministic for the seed; the argument says why the
    property holds for any seed): with the time-dependent effects taken out (quiet_links), an
    undelayed prompt takes exactly the error-free time T0 — serialization, propagation, coding
    and inference, no waiting — whenever it is sent, and no prompt can take less (errors only
    add retransmissions and waits). So every point's median is >= T0, and BER 0 gives exactly
    T0 (one nanosecond of tolerance: the simulator counts integer nanoseconds, the totals are
    floats). At 1e-5 and 1e-4 a prompt loses a frame with probability < 1e-3 (BCH(63,56)
    corrects one bit per 64-bit codeblock, RS(255,223) sixteen symbols), so the median stays T0
    unless two of the three prompts are hit (~1e-6). At 3e-3 about a quarter of the uplink
    CLTUs are lost (each costs T1 = 3 s): the median is T0 or more. At 1e-2 every hop loses
    most frames and the X-band downlink has no ARQ, so a prompt completes within the 30 s
    timeout with probability ~1e-7: the median is the timeout, and every total is capped by
    it. Hence a non-decreasing chain, strictly higher at the top.
    """
    result = run_sweep("default", ["ber=0,1e-5,1e-4,3e-3,1e-2"], MemoBackend(recorded()),
                       sets=quiet_links(), prompts=[PROMPT] * 3)
    medians = [p.stats.median_total_s for p in result.points]
    for lower, higher in itertools.pairwise(medians):
        assert higher >= lower - 1e-9, medians
    t0 = medians[0]
    assert all(s.total_s == pytest.approx(t0, abs=1e-9)
               for s in result.points[0].evaluation.samples)
    top = result.points[-1].stats
    assert top.median_total_s == pytest.approx(30.0) and top.timeouts == 3
    assert medians[-1] > medians[0] + 1.0


def test_repeats_use_spawned_seeds_and_the_same_seeds_at_every_point() -> None:
    result = run_sweep("default", ["links.uplink.ber=1e-5,1e-3"], recorded(),
                       sets=["scenario.seed=5"], prompts=[PROMPT, PROMPT], repeat=3)
    # numpy's SeedSequence, spawned from the scenario seed: the first 32-bit word of each child
    children = np.random.SeedSequence(5).spawn(3)
    seeds = [int(c.generate_state(1, np.uint32)[0]) for c in children]
    assert seeds == repeat_seeds(5, 3) and len(set(seeds)) == 3
    for point in result.points:
        samples = point.evaluation.samples
        assert [(s.repeat, s.seed) for s in samples] == [
            (r, seeds[r]) for r in range(3) for _ in range(2)]
        assert point.stats.prompts == 6
    assert result.prompts == 2 and result.repeat == 3


def test_repeat_seeds_are_a_prefix_of_more_repeats() -> None:
    """Seed i depends on the scenario seed and i only: more repeats add runs, keep the others
    (so a resumed sweep with a larger --repeat reuses the rows it has)."""
    assert repeat_seeds(7, 5)[:2] == repeat_seeds(7, 2)
    assert repeat_seeds(7, 3) != repeat_seeds(8, 3)
    assert all(0 <= s < 2**32 for s in repeat_seeds(2**63 - 1, 4))


def test_bootstrap_interval_brackets_the_statistic() -> None:
    result = run_sweep("default", ["links.uplink.ber=3e-3"], recorded(),
                       sets=[*quiet_links(), "scenario.seed=3"], prompts=[PROMPT] * 3, repeat=6)
    point = result.points[0]
    ci = point.ci
    assert ci["median"][0] <= point.stats.median_total_s <= ci["median"][1]
    assert ci["p95"][0] <= ci["p95"][1]
    assert bootstrap_ci(point.evaluation.samples) == ci  # fixed bootstrap seed
    one = run_sweep("default", ["links.uplink.ber=0"], recorded(), prompts=[PROMPT])
    assert all(math.isnan(v) for pair in one.points[0].ci.values() for v in pair)


# ---------------------------------------------------------------------------------------------
# output


def test_csv_rows_are_the_point_statistics(tmp_path: Path) -> None:
    result = run_sweep("default", ["ber=0,1e-3", "links.uplink.stack.arq_params.t1_initial="
                                   "0.2,3.0"], MemoBackend(recorded()), prompts=[PROMPT] * 2)
    path = write_sweep_csv(result, tmp_path / "sweep.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 4
    for row, point in zip(rows, result.points, strict=True):
        totals = [s.total_s for s in point.evaluation.samples]
        assert row["ber"] == point.values["ber"]
        assert float(row["median_total_s"]) == statistics.median(totals)
        assert float(row["max_total_s"]) == max(totals)
        assert int(row["prompts"]) == 2 and int(row["repeat"]) == 1
    samples = list(csv.DictReader(write_samples_csv(result, tmp_path / "s.csv").open()))
    assert len(samples) == 8 and {r["status"] for r in samples} == {"ok"}
    png = plot_sweep(result, tmp_path / "sweep.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_with_a_categorical_x_axis(tmp_path: Path) -> None:
    result = run_sweep("default", ['links.uplink.stack.coding="tc-bch","tc-bch-rand"'],
                       recorded(), prompts=[PROMPT])
    assert plot_sweep(result, tmp_path / "c.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------
# memoizing backend


class CountingBackend(RecordedBackend):
    def __init__(self) -> None:
        super().__init__({}, default=ANSWER)
        self.fail_next = False

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("model crashed")
        return super().generate(prompt, params)


def test_memo_runs_the_model_once_per_prompt_and_parameters() -> None:
    inner = CountingBackend()
    memo = MemoBackend(inner)
    greedy = GenerationParams(max_tokens=16, temperature=0.0, seed=1)
    a = memo.generate("q", greedy)
    assert memo.generate("q", GenerationParams(max_tokens=16, temperature=0.0, seed=2)) is a
    assert len(inner.calls) == 1  # greedy: the seed cannot change the answer
    memo.generate("q", GenerationParams(max_tokens=8, temperature=0.0, seed=1))
    memo.generate("q", GenerationParams(max_tokens=16, temperature=0.7, seed=1))
    memo.generate("q", GenerationParams(max_tokens=16, temperature=0.7, seed=2))
    memo.generate("other", greedy)
    assert len(inner.calls) == 5 and (memo.misses, memo.hits) == (5, 1)
    inner.fail_next = True
    with pytest.raises(RuntimeError):
        memo.generate("fails once", greedy)
    assert memo.generate("fails once", greedy) == ANSWER  # errors are not remembered
    assert memo.model_ids == inner.model_ids
    assert memo.max_prompt_tokens == inner.max_prompt_tokens
    assert "model runs: 6" in memo.describe()


def test_every_point_of_a_sweep_sees_the_same_inference() -> None:
    inner = CountingBackend()
    result = run_sweep("default", ["ber=0,1e-4,1e-3"], MemoBackend(inner),
                       prompts=[PROMPT, "Name a planet."], repeat=2)
    assert len(inner.calls) == 2  # once per prompt for 12 round trips
    inference = {(s.prompt, s.inference_s) for p in result.points
                 for s in p.evaluation.samples}
    assert len(inference) == 2


def test_the_memo_is_kept_in_the_store_and_a_resumed_sweep_does_not_load_the_model(
        tmp_path: Path) -> None:
    loads: list[int] = []

    def model() -> CountingBackend:
        loads.append(1)
        return CountingBackend()

    store = RowStore(tmp_path / "out", "recorded:counting")
    first = run_sweep("default", ["ber=0,1e-3"], MemoBackend(LazyBackend(model)),
                      prompts=[PROMPT], store=store)
    assert len(loads) == 1 and first.ran == 2
    again = run_sweep("default", ["ber=0,1e-3"], MemoBackend(LazyBackend(model)),
                      prompts=[PROMPT], store=store)
    assert len(loads) == 1 and (again.ran, again.reused) == (0, 2)  # answers from memo.json
    other = run_sweep("default", ["ber=0,1e-3"], MemoBackend(LazyBackend(model)),
                      prompts=[PROMPT], store=RowStore(tmp_path / "out", "recorded:other"))
    assert len(loads) == 2  # another model: its memo is not trusted
    assert other.reused == 2  # ... but it answers the same, so the rows keep their keys


def test_memo_json_round_trip() -> None:
    memo = MemoBackend(CountingBackend())
    params = GenerationParams(max_tokens=16, temperature=0.7, seed=3, stop=("\nQ:",))
    memo.prime(PROMPT, params)
    text = memo.dumps("id")
    again = MemoBackend(CountingBackend())
    assert again.restore(text, "other") == 0 and again.restore("not json", "id") == 0
    assert again.restore(text, "id") == 1
    assert again.generations == memo.generations
    assert again.fingerprint([PROMPT], params) == memo.fingerprint([PROMPT], params)
    assert again.replay().generate(PROMPT, params) == ANSWER


def test_a_run_the_client_did_not_prime_fails_instead_of_guessing() -> None:
    base = read_scenario_source("default")
    memo = MemoBackend(recorded())
    (row,) = plan_rows(base, [], memo, prompts=[PROMPT])
    empty = MemoBackend(recorded())
    empty.count_tokens(PROMPT)
    result = run_row(RowContext(base, empty.replay()), row)
    assert result.samples is None and result.error_type == "ReplayMiss"
    # the replay missed: the round trip answers backend_error, the row names the miss
    assert "not memoized by the client" in (result.error or "") and PROMPT[:20] in result.error
    ok = run_row(RowContext(base, memo.replay()), row)
    assert ok.error is None and ok.samples is not None and len(ok.samples) == 1


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_sweep_writes_csv_and_png(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    rec = tmp_path / "rec.json"
    rec.write_text(RecordedBackend({PROMPT: ANSWER}).to_json())
    out = tmp_path / "out"
    res = CliRunner().invoke(app, [
        "sweep", "default", "--vary", "ber=0,1e-4", "--vary",
        "links.uplink.stack.frame_length=256,1024", "--prompts", "1", "--repeat", "2",
        "--set", f"run.prompts=[{PROMPT!r}]", "--backend", f"recorded:{rec}", "--out", str(out),
        "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "inference memoized" in res.output
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["ber"], r["links.uplink.stack.frame_length"]) for r in rows] == [
        ("0", "256"), ("0", "1024"), ("1e-4", "256"), ("1e-4", "1024")]
    assert all(r["repeat"] == "2" and r["ok"] == "2" for r in rows)
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_sweep_errors_are_reported_not_raised(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    rec = tmp_path / "rec.json"
    rec.write_text(RecordedBackend({PROMPT: ANSWER}).to_json())
    res = CliRunner().invoke(app, ["sweep", "default", "--vary", "links.nowhere*.ber=0,1",
                                   "--backend", f"recorded:{rec}", "--out", str(tmp_path),
                                   "--workers", "1"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["sweep", "default", "--backend", f"recorded:{rec}"])
    assert res.exit_code != 0
