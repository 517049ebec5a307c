"""Constellation runs: scenarios, placement policies, routes and breakdowns (linkstack.sims.
constellation.scenario / .simulate), and the ``linkstack run`` / ``constellation`` commands.

The model is replayed from ``sims/scenarios/gemma-recorded.json`` (answers and inference times
recorded from the real Gemma 3 270M), so every run here is deterministic.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linkstack.cli.main import app
from linkstack.cli.run import load_backend
from linkstack.errors import ConfigError
from linkstack.sims.constellation.scenario import (
    load_constellation,
    parse_constellation,
)
from linkstack.sims.constellation.simulate import (
    build_world,
    poisson_arrivals,
    run_constellation,
)
from linkstack.sims.scenario import read_scenario_source

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
BACKEND = f"recorded:{RECORDING}"


def backend() -> Any:
    return load_backend(None, BACKEND)


@pytest.fixture(scope="module")
def star_raw() -> dict[str, Any]:
    return read_scenario_source("star-compute")


@pytest.fixture(scope="module")
def star_report() -> Any:
    sc = load_constellation("star-compute")
    return run_constellation(sc, backend(), duration_s=3 * 3600.0)


@pytest.fixture(scope="module")
def star_no_isl() -> Any:
    sc = load_constellation("star-compute", ["routing.policy=no-isl"])
    return run_constellation(sc, backend(), duration_s=3 * 3600.0)


# -- scenario validation ------------------------------------------------------------------


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    node = data
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("constellation.walker.phasing", 1, "constellation.walker.phasing"),  # P = 1: only 0
        ("constellation.walker.planes", 5, "constellation.walker.total"),  # 12 % 5
        ("constellation.colour", "red", "constellation.colour"),
        ("constellation.isl.range_km", 1.0, "constellation.isl.range_km"),
        ("constellation.topology", "mesh", "constellation.topology"),
        ("routing.policy", "random", "routing.policy"),
        ("routing.policy", "fixed", "routing.compute"),
        ("traffic.users_per_statoin", 3, "traffic.users_per_statoin"),
        ("links.isl.propagation", {"model": "fixed", "delay_s": 0.1}, "links.isl.propagation"),
        ("links.relay", {"profile": "laser-isl"}, "links.relay"),
        ("ground_stations.miyun.latitude_deg", 91.0, "ground_stations.miyun.latitude_deg"),
        ("constellation.epoch", "yesterday", "constellation.epoch"),
    ],
)
def test_scenario_errors_name_the_key(star_raw: dict[str, Any], path: str, value: Any,
                                      key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_constellation(_with(star_raw, path, value))
    assert info.value.key.startswith(key), info.value


def test_missing_link_template_is_named(star_raw: dict[str, Any]) -> None:
    data = copy.deepcopy(star_raw)
    del data["links"]["isl"]
    with pytest.raises(ConfigError, match="isl"):
        parse_constellation(data)


# Two element sets of a real satellite (ISS, NORAD 25544, from CelesTrak, epoch 2008-09-20
# as printed in the Wikipedia article "Two-line element set"); their checksums are valid.
ISS = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n"
    "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537\n"
)


def test_tle_scenario_runs_and_a_bad_checksum_names_the_line(tmp_path: Path,
                                                             star_raw: dict[str, Any]) -> None:
    good = tmp_path / "iss.tle"
    good.write_text(ISS, encoding="utf-8")
    data = copy.deepcopy(star_raw)
    del data["constellation"]["walker"]
    data["constellation"]["tle_file"] = str(good)
    data["constellation"]["epoch"] = "2008-09-20T12:00:00Z"
    sc = parse_constellation(data)
    world = build_world(sc, 3600.0)
    assert world.plan.nodes.names[-1] == "ISS (ZARYA)" and len(world.satellites) == 1
    bad = tmp_path / "bad.tle"
    bad.write_text(ISS.replace("2927\n", "2928\n"), encoding="utf-8")
    data["constellation"]["tle_file"] = str(bad)
    with pytest.raises(ConfigError) as info:
        build_world(parse_constellation(data), 3600.0)
    assert ":2:" in str(info.value) and "checksum" in str(info.value)


# -- traffic --------------------------------------------------------------------------------


def test_poisson_arrivals_depend_on_the_seed_only() -> None:
    sc = load_constellation("star-compute", ["traffic.rate_per_user_per_h=600"])
    a = poisson_arrivals(sc, 3600.0, 4)
    assert a == poisson_arrivals(sc, 3600.0, 4)
    assert [t for t, _, _ in a] == sorted(t for t, _, _ in a)
    # 4 stations x 600/h for an hour: 2400 expected, Poisson sd ~49
    assert abs(len(a) - 2400) < 5 * 49
    per_station = Counter(s for _, s, _ in a)
    assert set(per_station) == {0, 1, 2, 3}
    other = load_constellation("star-compute", ["traffic.rate_per_user_per_h=600",
                                                "scenario.seed=2"])
    assert poisson_arrivals(other, 3600.0, 4) != a


# -- runs --------------------------------------------------------------------------------------


def test_every_prompt_is_accounted_and_answered_once(star_report: Any) -> None:
    s = star_report.summary()
    assert s["prompts"] == len(star_report.prompts) > 100
    assert s["answered"] + s["lost"] + s["rejected"] == s["prompts"]
    assert s["answered"] == s["prompts"]  # nearest-free spreads the bursts over the ring
    ids = [p.request_id for p in star_report.prompts]
    assert len(ids) == len(set(ids))
    texts = json.loads(RECORDING.read_text())["recordings"]
    for p in star_report.prompts:
        assert p.answer == texts[p.text]["text"]


def test_breakdowns_sum_to_the_totals(star_report: Any) -> None:
    for p in star_report.prompts:
        assert math.isclose(sum(p.breakdown.values()), p.total_s, abs_tol=1e-9)
        assert all(v >= -1e-12 for v in p.breakdown.values())
        assert "onboard.inference" in p.breakdown


def test_routes_join_station_compute_and_egress(star_report: Any) -> None:
    for p in star_report.prompts:
        assert p.route_up[0] == p.station and p.route_up[-1] == p.compute
        assert p.route_down[0] == p.compute and p.route_down[-1] == p.egress
        assert p.hops == len(p.route_up) + len(p.route_down) - 2
        # only ring neighbours are joined by ISLs: sat-0-k to sat-0-(k +- 1 mod 12)
        for route in (p.route_up[1:], p.route_down[:-1]):
            slots = [int(name.rsplit("-", 1)[1]) for name in route]
            assert all((a - b) % 12 in (1, 11) for a, b in itertools.pairwise(slots))
        if p.egress != p.station:
            assert p.breakdown["backhaul"] > 0


def test_isl_routing_against_no_isl(star_report: Any, star_no_isl: Any) -> None:
    with_isl, without = star_report.summary(), star_no_isl.summary()
    assert star_no_isl.policy == "no-isl"
    for p in star_no_isl.prompts:
        if p.status == "ok":
            assert p.hops == 2 and p.route_up[-1] == p.route_down[0] == p.compute
    # with no ISL, each pass's backlog lands on the one satellite in view: its queue overflows
    assert without["rejected"] > 0 and with_isl["rejected"] == 0
    assert with_isl["mean_hops"] > without["mean_hops"] == 2.0
    statuses = Counter(p.status for p in star_no_isl.prompts)
    assert set(statuses) <= {"ok", "busy"}


def test_runs_are_deterministic() -> None:
    sc = load_constellation("star-compute")
    a = run_constellation(sc, backend(), duration_s=1800.0).as_dict()
    b = run_constellation(sc, backend(), duration_s=1800.0).as_dict()
    assert a == b


def test_fixed_policy_sends_everything_to_one_satellite() -> None:
    sc = load_constellation("star-compute", ["routing.policy=fixed",
                                             "routing.compute=sat-0-3"])
    report = run_constellation(sc, backend(), duration_s=1800.0)
    assert {p.compute for p in report.prompts} == {"sat-0-3"}
    assert all(p.route_up[-1] == "sat-0-3" for p in report.prompts if p.status == "ok")


def test_walker_shell_answers_within_seconds() -> None:
    sc = load_constellation("walker-2800")
    report = run_constellation(sc, backend(), duration_s=20.0)
    s = report.summary()
    assert report.satellites == 2800 and report.stations == 12
    assert s["answered"] == s["prompts"] > 100
    assert s["within_120_s"] == 1.0 and s["p99_s"] < 5.0
    computing = {f"sat-{p}-{k}" for p in range(48) for k in range(50)}
    assert {p.compute for p in report.prompts} <= computing


# -- command line ---------------------------------------------------------------------------


def test_run_json_summary() -> None:
    res = CliRunner().invoke(app, ["run", "star-compute", "--hours", "1", "--json",
                                   "--backend", BACKEND])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("p50_s", "p95_s", "p99_s", "within_120_s", "answered", "lost", "mean_hops"):
        assert key in data["summary"]
    first = data["prompts"][0]
    assert first["route_up"] and first["breakdown"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "default", "--hours", "1"], "--hours"),
        (["run", "star-compute", "--prompts", "3"], "--prompts"),
        (["run", "star-compute", "--set", "constellation.walker.phasing=5"],
         "constellation.walker.phasing"),
        (["constellation", "plot", "star-compute", "--out", "/no/such/dir/x.png"], "--out"),
        (["constellation", "contacts", "star-compute", "--set", "routing.polcy=x"],
         "routing.polcy"),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(app, [*args, "--backend", BACKEND] if args[0] == "run" else args)
    assert res.exit_code == 2
    assert needle in res.stderr and "Traceback" not in res.output


def test_contacts_in_ion_format(tmp_path: Path) -> None:
    out = tmp_path / "plan.txt"
    res = CliRunner().invoke(app, ["constellation", "contacts", "star-compute", "--hours",
                                   "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = [x for x in out.read_text().splitlines() if x and not x.startswith("#")]
    contacts = [x.split() for x in lines if x.startswith("a contact")]
    ranges = [x.split() for x in lines if x.startswith("a range")]
    assert contacts and len(contacts) == len(ranges)
    for c in contacts:
        assert c[2].startswith("+") and c[3].startswith("+") and int(c[3]) >= int(c[2])
        assert 1 <= int(c[4]) <= 16 and 1 <= int(c[5]) <= 16 and int(c[6]) > 0


def test_plot_writes_a_png(tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    res = CliRunner().invoke(app, ["run", "star-compute", "--hours", "0.5", "--json",
                                   "--backend", BACKEND])
    report.write_text(res.stdout)
    out = tmp_path / "map.png"
    res = CliRunner().invoke(app, ["constellation", "plot", "star-compute", "--at", "300",
                                   "--out", str(out), "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_isl_routes_with_links_breaking_near_the_poles() -> None:
    # Everything to one satellite, inter-plane links off above 20 deg of latitude: routes of
    # ~20 hops that must follow the +Grid and change as satellites cross the limit.
    sc = load_constellation("walker-2800", [
        "routing.policy=fixed", "routing.compute=sat-10-25",
        "constellation.isl.polar_limit_deg=20", "constellation.slots=64",
        "constellation.queue_limit=100000", "routing.segment_s=60"])
    report = run_constellation(sc, backend(), duration_s=8.0)
    s = report.summary()
    assert s["answered"] == s["prompts"] > 50 and s["mean_hops"] > 10
    assert len({p.request_id for p in report.prompts}) == s["prompts"]
    for p in report.prompts:
        assert p.route_up[-1] == "sat-10-25" == p.route_down[0]
        sats = [tuple(int(x) for x in n.split("-")[1:]) for n in p.route_up[1:]]
        for (pa, sa), (pb, sb) in itertools.pairwise(sats):
            intra = pa == pb and (sa - sb) % 50 in (1, 49)
            inter = (pa - pb) % 56 in (1, 55)  # adjacent planes (the seam shifts the slot)
            assert intra or inter, (pa, sa, pb, sb)


def test_parallel_slots_take_the_measured_service_scale() -> None:
    """With 4 slots on one satellite and prompts arriving faster than one slot serves them,
    each inference takes the recorded time x the flight profile x the measured scale of the
    slots busy when it started (linkstack.payload.serving.SLOT_SERVICE_SCALE)."""
    from linkstack.payload.backend import get_profile
    from linkstack.payload.serving import SLOT_SERVICE_SCALE

    sc = load_constellation("star-compute", [
        "routing.policy=ingress", "constellation.slots=4",
        "constellation.queue_limit=1000", "traffic.rate_per_user_per_h=3600"])
    be = backend()
    report = run_constellation(sc, be, duration_s=30.0)
    factor = get_profile(sc.flight_profile).speed_factor
    scales = []
    for p in report.prompts:
        if p.status != "ok":
            continue
        alone = be.recordings[p.text].inference_s * factor
        scale = p.breakdown["onboard.inference"] / alone
        assert any(math.isclose(scale, s, rel_tol=1e-9) for s in SLOT_SERVICE_SCALE.values()), \
            scale
        scales.append(round(scale, 6))
    assert len(scales) > 20
    assert len(set(scales)) >= 2  # some ran alone, some beside others
