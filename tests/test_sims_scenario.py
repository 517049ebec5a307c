"""Tests of linkstack.sims.scenario / profiles: TOML -> validated dataclasses."""

from __future__ import annotations

import copy
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from linkstack.errors import ConfigError
from linkstack.sims import geometry
from linkstack.sims.channel import FixedDelay, PeriodicWindows, PointingLosses
from linkstack.sims.engine import NS_PER_S, run_simulation
from linkstack.sims.link import Delivery
from linkstack.sims.profiles import load_profiles, profile, profile_names
from linkstack.sims.scenario import (
    apply_overrides,
    load_scenario,
    parse_scenario,
    scenario_names,
)


def default_dict() -> dict[str, Any]:
    text = resources.files("linkstack.sims").joinpath("scenarios", "default.toml").read_text(
        encoding="utf-8")
    return tomllib.loads(text)


def test_default_scenario_parses() -> None:
    s = load_scenario()
    assert s.name == "default" and s.seed == 1 and s.duration_s == 3600.0
    assert set(s.links) == {"uplink", "downlink", "isl-forward", "isl-return"}
    up, down, isl = s.links["uplink"], s.links["downlink"], s.links["isl-forward"]
    assert (up.source, up.destination, up.rate_bps, up.ber) == ("ground", "relay", 64000.0, 1e-6)
    assert down.rate_bps == 320e6 and isl.rate_bps == 1.8e9
    assert up.stack.frame == "tc" and up.stack.frame_length == 1024
    assert up.stack.arq == "cop-1" and up.stack.arq_params["window_width"] == 10
    assert isl.stack.coding == "tm-rs-255-223-i5" and isl.stack.arq_params["fec"] is True
    assert down.stack.ocf is True
    assert s.duplex_pairs() == [("uplink", "downlink"), ("isl-forward", "isl-return")]
    assert "default" in scenario_names()


def test_default_geometry_and_channels() -> None:
    s = load_scenario()
    isl = s.links["isl-forward"]
    chord = 2 * (geometry.EARTH_RADIUS_KM + 700.0) * math.sin(math.radians(7.5))
    assert isl.propagation.distance_km == pytest.approx(chord)
    assert isinstance(isl.build_propagation(), FixedDelay)
    assert isl.build_propagation().fixed_ns == round(chord / geometry.SPEED_OF_LIGHT_KM_S * 1e9)
    # the Viterbi-burst downlink: mean BER 1e-5, bursts of 14 bits
    ge = s.links["downlink"].ge
    assert ge is not None and ge.mean_bad_bits == pytest.approx(14.0)
    assert ge.mean_ber == pytest.approx(0.5 * 14 / 700014)
    # laser fades given in seconds: converted with the rate
    laser_ge = isl.ge
    assert laser_ge is not None
    assert laser_ge.mean_bad_bits == pytest.approx(0.001 * 1.8e9)
    assert isinstance(isl.build_visibility(), PointingLosses)
    up = s.links["uplink"]
    visibility = up.build_visibility()
    assert isinstance(visibility, PeriodicWindows)
    leo = up.pass_geometry.leo_pass() if up.pass_geometry else None
    assert leo is not None and visibility.duration_ns == round(leo.duration_s * NS_PER_S)


def test_profiles() -> None:
    assert profile_names() == ["laser-isl", "s-band-tc-uplink", "x-band-tm-downlink"]
    assert profile("laser-isl")["rate_bps"] == 1.8e9
    with pytest.raises(ConfigError) as info:
        profile("nope")
    assert info.value.key == "profiles.nope"
    copy_a = load_profiles()
    copy_a["laser-isl"]["rate_bps"] = 1.0
    assert load_profiles()["laser-isl"]["rate_bps"] == 1.8e9  # callers get copies


def test_built_directions_carry_traffic() -> None:
    s = load_scenario()

    async def main() -> list[Delivery]:
        directions = s.build_directions()
        links = s.build_links(directions)
        assert [link.name for link in links] == ["ground-relay", "relay-sat1"]
        out = []
        for name in ("uplink", "isl-forward", "isl-return", "downlink"):
            await directions[name].send(b"\x1a\xcf\xfc\x1d" * 4, meta=name)
            item = await directions[name].receive()
            assert isinstance(item, Delivery)
            out.append(item)
        return out

    deliveries = run_simulation(main, seed=s.seed)
    assert [d.meta for d in deliveries] == ["uplink", "isl-forward", "isl-return", "downlink"]
    isl = deliveries[1]
    assert isl.propagation_ns == s.links["isl-forward"].build_propagation().fixed_ns  # type: ignore[attr-defined]


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def _delete(data: dict[str, Any], dotted: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[part]
    del node[parts[-1]]
    return data


BAD_VALUES = [
    # (dotted key to set, value, key the error must name)
    ("foo", 1, "foo"),
    ("scenario.seed", -1, "scenario.seed"),
    ("scenario.seed", 1.5, "scenario.seed"),
    ("scenario.duration_s", "long", "scenario.duration_s"),
    ("scenario.duration_s", 0, "scenario.duration_s"),
    ("scenario.colour", "red", "scenario.colour"),
    ("nodes.relay.altitude_km", -5.0, "nodes.relay.altitude_km"),
    ("nodes.relay.kind", "asteroid", "nodes.relay.kind"),
    ("nodes.ground.min_elevation_deg", 90, "nodes.ground.min_elevation_deg"),
    ("nodes.ground.altitude_km", 1.0, "nodes.ground.altitude_km"),
    ("links.uplink", 5, "links.uplink"),
    ("links.uplink.bogus", 1, "links.uplink.bogus"),
    ("links.uplink.ber", "high", "links.uplink.ber"),
    ("links.uplink.ber", 0.7, "links.uplink.ber"),
    ("links.uplink.ber", -1e-6, "links.uplink.ber"),
    ("links.uplink.ber", True, "links.uplink.ber"),
    ("links.uplink.ber", math.nan, "links.uplink.ber"),
    ("links.uplink.rate_bps", 0, "links.uplink.rate_bps"),
    ("links.uplink.rate_bps", math.inf, "links.uplink.rate_bps"),
    ("links.uplink.erasure", 1.5, "links.uplink.erasure"),
    ("links.uplink.queue_capacity", 1.5, "links.uplink.queue_capacity"),
    ("links.uplink.queue_capacity", True, "links.uplink.queue_capacity"),
    ("links.uplink.queue_capacity", 0, "links.uplink.queue_capacity"),
    ("links.uplink.queue_policy", "later", "links.uplink.queue_policy"),
    ("links.uplink.deliver_lost", "yes", "links.uplink.deliver_lost"),
    ("links.uplink.from", "moon", "links.uplink.from"),
    ("links.uplink.to", "ground", "links.uplink.to"),
    ("links.uplink.profile", "nope", "links.uplink.profile"),
    ("links.uplink.propagation.model", "warp", "links.uplink.propagation.model"),
    ("links.uplink.propagation.speed", 3, "links.uplink.propagation.speed"),
    ("links.uplink.pass.cross_track_deg", 30.0, "links.uplink.pass.cross_track_deg"),
    ("links.uplink.pass.period_s", 10.0, "links.uplink.pass.period_s"),
    ("links.isl-forward.propagation.separation_deg", 170.0,
     "links.isl-forward.propagation.separation_deg"),
    ("links.isl-forward.propagation.separation_deg", 0.0,
     "links.isl-forward.propagation.separation_deg"),
    ("links.downlink.ge.p_gb", 0.1, "links.downlink.ge.p_bg"),
    ("links.downlink.ge.ber_bad", 2.0, "links.downlink.ge.ber_bad"),
    ("links.downlink.ge.mean_bad_bits", 0.5, "links.downlink.ge.mean_bad_bits"),
    ("links.downlink.ge.model", "markov", "links.downlink.ge.model"),
    ("links.isl-forward.ge.mean_bad_s", 1e-12, "links.isl-forward.ge.mean_bad_s"),
    ("links.isl-forward.outages.rate_per_hour", -1.0, "links.isl-forward.outages.rate_per_hour"),
    ("links.isl-forward.outages.stream", "not a name", "links.isl-forward.outages.stream"),
    ("links.isl-forward.outages.losses", [[1.0]], "links.isl-forward.outages.losses"),
    ("links.isl-forward.outages.losses", [[1.0, -2.0]], "links.isl-forward.outages.losses"),
    ("links.uplink.outages", {"model": "windows"}, "links.uplink.outages.visible"),
    ("links.uplink.outages", {"model": "windows", "visible": [[5, 1]]},
     "links.uplink.outages.visible"),
    ("links.uplink.outages", {"model": "periodic", "period_s": 10, "duration_s": 20},
     "links.uplink.outages.duration_s"),
    ("links.uplink.reorder", {"fraction": 0.1}, "links.uplink.reorder.mean_delay_s"),
    ("links.uplink.reorder", {"fraction": 2, "mean_delay_s": 1}, "links.uplink.reorder.fraction"),
    ("links.uplink.duplicate", {"mean_delay_s": 0.1}, "links.uplink.duplicate.fraction"),
    ("links.uplink.duplicate", {"fraction": -0.1}, "links.uplink.duplicate.fraction"),
    ("links.uplink.duplicate", {"fraction": 0.1, "mean_delay_s": -1},
     "links.uplink.duplicate.mean_delay_s"),
    ("links.uplink.duplicate", {"fraction": 0.1, "copies": 2}, "links.uplink.duplicate.copies"),
    ("links.uplink.stack.frame", "ax25", "links.uplink.stack.frame"),
    ("links.uplink.stack.frame_length", 2000, "links.uplink.stack.frame_length"),
    ("links.uplink.stack.frame_length", "1024", "links.uplink.stack.frame_length"),
    ("links.uplink.stack.vcid", 64, "links.uplink.stack.vcid"),
    ("links.uplink.stack.coding", 5, "links.uplink.stack.coding"),
    ("links.uplink.stack.ocf", 1, "links.uplink.stack.ocf"),
    ("links.uplink.stack.interleave", 5, "links.uplink.stack.interleave"),
    ("links.uplink.stack.arq_params.window_width", [1, 2],
     "links.uplink.stack.arq_params.window_width"),
    ("profiles.laser-isl.rate_bps", "fast", "profiles.laser-isl.rate_bps"),
    ("profiles.mine", {"ber": 3}, "profiles.mine.ber"),
]


@pytest.mark.parametrize(("dotted", "value", "key"), BAD_VALUES,
                         ids=[f"{d}={v!r}" for d, v, _ in BAD_VALUES])
def test_bad_values_name_their_key(dotted: str, value: Any, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(_set(default_dict(), dotted, value))
    assert info.value.key == key


@pytest.mark.parametrize(
    ("dotted", "key"),
    [("scenario", "scenario"), ("nodes", "nodes"), ("links", "links"),
     ("links.uplink.propagation", "links.uplink.propagation"),
     ("links.uplink.from", "links.uplink.from"),
     ("links.uplink.profile", "links.uplink.rate_bps"),
     ("nodes.relay.altitude_km", "nodes.relay.altitude_km")],
)
def test_missing_keys_name_their_key(dotted: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(_delete(default_dict(), dotted))
    assert info.value.key == key


def test_duplication_reaches_the_direction() -> None:
    data = _set(default_dict(), "links.downlink.duplicate", {"fraction": 0.25,
                                                             "mean_delay_s": 0.002})
    spec = parse_scenario(data).links["downlink"]
    assert spec.duplicate is not None
    assert (spec.duplicate.fraction, spec.duplicate.mean_delay_s) == (0.25, 0.002)
    direction = spec.build_direction()
    assert (direction.duplicate, direction.duplicate_delay_s) == (0.25, 0.002)
    plain = parse_scenario(default_dict()).links["downlink"].build_direction()
    assert (plain.duplicate, plain.duplicate_delay_s) == (0.0, 0.0)


def test_links_merge_with_their_profile() -> None:
    data = default_dict()
    # one GE form replaces the profile's other form; the other keys stay
    s = parse_scenario(_set(_set(data, "links.downlink.ge.p_gb", 0.001),
                            "links.downlink.ge.p_bg", 0.1))
    ge = s.links["downlink"].ge
    assert ge is not None and (ge.p_gb, ge.p_bg, ge.ber_bad) == (0.001, 0.1, 0.5)
    # same form: key by key
    s = parse_scenario(_set(data, "links.downlink.ge.mean_bad_bits", 20.0))
    ge = s.links["downlink"].ge
    assert ge is not None and ge.mean_bad_bits == pytest.approx(20.0)
    assert ge.mean_good_bits == pytest.approx(700000.0)
    # another model replaces the profile's table
    s = parse_scenario(_set(data, "links.isl-forward.outages", {"model": "none"}))
    assert s.links["isl-forward"].build_visibility() is None
    s = parse_scenario(_set(data, "links.isl-forward.ge", {"model": "none"}))
    assert s.links["isl-forward"].ge is None
    # a scenario can amend a profile
    s = parse_scenario(_set(data, "profiles.laser-isl.rate_bps", 5.625e9))
    assert s.links["isl-forward"].rate_bps == 5.625e9
    assert s.links["isl-forward"].ge is not None
    assert s.links["isl-forward"].ge.mean_bad_bits == pytest.approx(0.001 * 5.625e9)


def test_other_propagation_models() -> None:
    data = default_dict()
    s = parse_scenario(_set(data, "links.uplink.propagation", {"model": "slant",
                                                               "elevation_deg": 30.0}))
    expected = geometry.light_time_s(geometry.slant_range_km(30.0, 700.0))
    assert s.links["uplink"].propagation.delay_s == pytest.approx(expected)
    s = parse_scenario(_set(data, "links.uplink.propagation", {"model": "fixed",
                                                               "delay_s": 0.25}))
    assert s.links["uplink"].build_propagation().delay_ns(0) == 250_000_000
    s = parse_scenario(_set(data, "links.uplink.propagation", {"model": "distance",
                                                               "distance_km": 299792.458}))
    assert s.links["uplink"].propagation.delay_s == pytest.approx(1.0)


def test_apply_overrides() -> None:
    data = default_dict()
    before = copy.deepcopy(data)
    new = apply_overrides(data, [
        "links.uplink.ber=1e-5",
        "links.uplink.deliver_lost=false",
        "links.isl-forward.profile=laser-isl",
        'scenario.name="stress"',
        "links.uplink.outages.model=windows",
        "links.uplink.outages.visible=[[0, 60], [100, 160]]",
        "links.uplink.stack.arq_params.bc_hold = 7",
    ])
    assert data == before  # not modified in place
    assert new["links"]["uplink"]["ber"] == 1e-5
    assert new["links"]["uplink"]["deliver_lost"] is False
    assert new["scenario"]["name"] == "stress"
    assert new["links"]["uplink"]["stack"]["arq_params"]["bc_hold"] == 7
    s = parse_scenario(new)
    assert s.links["uplink"].ber == 1e-5 and s.name == "stress"
    assert s.links["uplink"].outages.intervals == ((0.0, 60.0), (100.0, 160.0))
    assert s.links["uplink"].stack.arq_params["bc_hold"] == 7.0
    assert load_scenario("default", ["links.uplink.ber=1e-5"]).links["uplink"].ber == 1e-5


@pytest.mark.parametrize(
    ("override", "key"),
    [("links.uplink.ber", "links.uplink.ber"), ("=3", "=3"),
     ("links..ber=1", "links..ber"), ("links.uplink.from.x=1", "links.uplink.from")],
)
def test_bad_override_syntax(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(default_dict(), [override])
    assert info.value.key == key


def test_overrides_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario("default", ["links.uplink.berr=1e-5"])
    assert info.value.key == "links.uplink.berr"
    with pytest.raises(ConfigError) as info:
        load_scenario("default", ["links.uplink.ber=lots"])
    assert info.value.key == "links.uplink.ber"
    with pytest.raises(ConfigError) as info:
        load_scenario("default", ["links.uplink.ber.x=1"])  # makes ber a table
    assert info.value.key == "links.uplink.ber"


def test_load_from_path_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        "[scenario]\nname = 'mine'\n[nodes.a]\nkind = 'satellite'\naltitude_km = 550.0\n"
        "[nodes.b]\nkind = 'satellite'\naltitude_km = 550.0\n"
        "[links.ab]\nfrom = 'a'\nto = 'b'\nrate_bps = 1e6\n"
        "[links.ab.propagation]\nmodel = 'chord'\nseparation_deg = 10.0\n",
        encoding="utf-8")
    s = load_scenario(path)
    assert s.name == "mine" and s.links["ab"].propagation.distance_km == pytest.approx(
        geometry.isl_chord_km(550.0, 10.0))
    assert s.duplex_pairs() == [("ab", None)]
    broken = tmp_path / "broken.toml"
    broken.write_text("[scenario\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_scenario(broken)
    assert info.value.key == str(broken)
    with pytest.raises(ConfigError) as info:
        load_scenario("no-such-scenario")
    assert info.value.key == "no-such-scenario"
    with pytest.raises(ConfigError) as info:
        load_scenario(tmp_path / "missing.toml")
    assert info.value.key == str(tmp_path / "missing.toml")


def test_pass_defaults_come_from_the_nodes() -> None:
    data = _delete(default_dict(), "links.uplink.pass")
    s = parse_scenario(data)
    spec = s.links["uplink"].pass_geometry
    assert spec is not None
    assert (spec.altitude_km, spec.min_elevation_deg, spec.cross_track_deg) == (700.0, 10.0, 0.0)
    # a pass between two satellites has no ground station to take the mask from
    data = _set(default_dict(), "links.isl-forward.propagation", {"model": "pass"})
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert info.value.key == "links.isl-forward.propagation.model"


# -- the key table (linkstack.sims.keys): the parsers read every key through it ---------------

# Overrides of the default scenario that reach the branches the shipped scenarios do not.
_BRANCHES: tuple[tuple[str, ...], ...] = (
    ("links.uplink.propagation={model='fixed', delay_s=0.01}",
     "links.uplink.outages={model='windows', visible=[[0, 60]]}",
     "links.uplink.ge={p_gb=1e-4, p_bg=0.1, ber_bad=0.3, ber_good=0}",
     "links.uplink.reorder={fraction=0.1, mean_delay_s=0.01}",
     "links.uplink.duplicate={fraction=0.1, mean_delay_s=0.01}",
     "links.uplink.queue_capacity=10", "links.uplink.queue_policy='drop'",
     "links.uplink.deliver_lost=false", "links.uplink.erasure=0.01",
     "links.uplink.pass={cross_track_deg=5, first_aos_s=1, period_s=6000, altitude_km=550,"
     " min_elevation_deg=10}",
     "links.uplink.stack.vcid=2", "links.uplink.stack.ocf=true",
     "run.compute='sat1'", "run.prompts=['a']", "run.start_s=1", "run.prompt_gap_s=2",
     "run.timeout_s=5", "run.temperature=0.5", "run.max_tokens=8",
     "run.flight_profile='jetson-orin-nano'", "run.coding_rate_ground_bps=1e9",
     "run.coding_rate_satellite_bps=1e8", "scenario.description='x'",
     "scenario.duration_s=10"),
    ("links.uplink.propagation={model='distance', distance_km=1000}",
     "links.uplink.outages={model='down', intervals=[[0, 1]]}",
     "links.uplink.ge={mean_good_bits=1e5, mean_bad_bits=10}"),
    ("links.uplink.propagation={model='slant', elevation_deg=30, altitude_km=550}",
     "links.uplink.outages={model='periodic', first_start_s=0, period_s=100, duration_s=10}",
     "links.uplink.ge={mean_good_s=1, mean_bad_s=0.001}",
     "links.isl-forward.outages={model='pointing', losses=[[1, 2]], reacquisition_s=1,"
     " rate_per_hour=1, mean_duration_s=1, stream='laser'}"),
    ("links.uplink.ge={model='none'}",),
)


def _read_keys(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    from linkstack.sims import scenario as sc

    seen: set[tuple[str, str]] = set()
    get, table = sc._Table.get, sc._Table.table

    def spy_get(self: Any, name: str, *args: Any, **kw: Any) -> Any:
        seen.add((self.spec.path, name))
        return get(self, name, *args, **kw)

    def spy_table(self: Any, name: str, spec: str | None = None) -> Any:
        if self.spec is not None and name in self.data:
            seen.add((self.spec.path, name))
        return table(self, name, spec)

    monkeypatch.setattr(sc._Table, "get", spy_get)
    monkeypatch.setattr(sc._Table, "table", spy_table)
    return seen


def test_every_declared_key_is_read_by_a_parser(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """The reference page (specs/scenario-keys.md) lists only keys a parser reads: parsing
    the shipped scenarios and a few variants reads every key the table declares."""
    from linkstack.sims.constellation.scenario import load_constellation, parse_constellation
    from linkstack.sims.keys import CHAIN_TABLES, CONSTELLATION_TABLES, TEMPLATE
    from linkstack.sims.scenario import read_scenario_source

    seen = _read_keys(monkeypatch)
    for name in ("default", "anchor", "secure"):
        load_scenario(name)
    for overrides in _BRANCHES:
        load_scenario("default", overrides)
    for name in ("star-compute", "walker-2800"):
        load_constellation(name)
    load_constellation("star-compute", [
        "constellation.computing={planes=1}", "constellation.topology='ring'",
        "constellation.slots=2", "constellation.queue_limit=4", "constellation.epoch='2026-02-01'",
        "constellation.isl={max_range_km=5000, min_grazing_km=50, polar_limit_deg=70,"
        " seam=false}", "routing.policy='fixed'", "routing.compute='sat-1-1'",
        "routing.downlink='origin'", "routing.backhaul_km_s=1e5", "routing.plan_step_s=5",
        "routing.segment_s=30", "traffic.users_per_station=2", "traffic.timeout_s=60",
        "traffic.rate_per_user_per_h=1", "traffic.prompts=['a']", "traffic.max_tokens=4",
        "traffic.temperature=0.1", "ground_stations.kashi.altitude_m=1000",
    ])
    tle = read_scenario_source("star-compute")
    del tle["constellation"]["walker"]
    tle["constellation"]["tle_file"] = str(tmp_path / "sats.tle")  # read at parse, checked later
    (tmp_path / "sats.tle").write_text("a satellite\n", encoding="utf-8")
    parse_constellation(tle)
    declared = {(t.path, k.name) for t in (*CHAIN_TABLES, *CONSTELLATION_TABLES)
                if t is not TEMPLATE for k in t.keys}
    assert declared - seen == set()
    assert {k.name for k in TEMPLATE.keys} < {k.name for k in CHAIN_TABLES[2].keys}


def test_a_key_the_table_does_not_declare_cannot_be_read() -> None:
    from linkstack.sims.scenario import _Table

    t = _Table({"ber": 0.1}, "links.x", "links.<link>")
    assert t.get("ber") == 0.1
    with pytest.raises(KeyError, match="not declared"):
        t.get("bit_error_rate")


def test_the_spec_defaults_are_the_table_defaults() -> None:
    """The dataclasses' defaults (used when a table is absent) equal the key table's (used
    when the table is there without the key)."""
    from dataclasses import fields

    from linkstack.sims.constellation.scenario import (
        IslSpec,
        RoutingSpec,
        TrafficSpec,
        _parse_routing,
        _parse_traffic,
    )
    from linkstack.sims.keys import ISL
    from linkstack.sims.scenario import RunSpec, _parse_run, _Table

    assert _parse_run(_Table({}, "run", "run"), {}) == RunSpec()
    assert _parse_routing(_Table({}, "routing", "routing")) == RoutingSpec()
    assert _parse_traffic(_Table({}, "traffic", "traffic")) == TrafficSpec()
    assert {f.name: f.default for f in fields(IslSpec)} == {k.name: k.default for k in ISL.keys}


# -- issue 17: no silent typos in a scenario ------------------------------------------------
ARQ = "links.uplink.stack.arq_params"


@pytest.mark.parametrize(
    ("override", "key", "reason"),
    [
        (f"{ARQ}.t1_inital=99", f"{ARQ}.t1_inital", "did you mean 't1_initial'?"),
        (f"{ARQ}.rto_backof=9.0", f"{ARQ}.rto_backof", "did you mean 'rto_backoff'?"),
        (f"{ARQ}.zzz=1", f"{ARQ}.zzz", "unknown key; valid here: bc_hold, clcw_interval"),
        (f"{ARQ}.window_width=2.5", f"{ARQ}.window_width", "must be an integer, not a float"),
        (f'{ARQ}.window_width="ten"', f"{ARQ}.window_width", "must be an integer, not a string"),
        (f"{ARQ}.window_width=0", f"{ARQ}.window_width", "0 is outside 1..255"),
        (f"{ARQ}.transmission_limit=0", f"{ARQ}.transmission_limit", "0 must be >= 1"),
        (f"{ARQ}.t1_initial=0", f"{ARQ}.t1_initial", "must be > 0.0"),
        (f"{ARQ}.fec=1", f"{ARQ}.fec", "must be true or false"),
        ("links.uplink.propagaton.model=1", "links.uplink.propagaton",
         "did you mean 'propagation'?"),
        ("scenario.seeed=3", "scenario.seeed", "did you mean 'seed'?"),
        ("links.uplink.stack.frme=1", "links.uplink.stack.frme", "did you mean 'frame'?"),
        ("run.xyzzy=1", "run.xyzzy", "unknown key; valid here: "),
    ],
)
def test_a_key_that_is_not_known_or_not_of_its_type_is_named(override: str, key: str,
                                                              reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario("default", [override])
    assert info.value.key == key
    assert reason in info.value.reason, info.value.reason


def test_unknown_keys_of_a_constellation_scenario_get_the_same_hint() -> None:
    from linkstack.sims.constellation.scenario import load_constellation

    with pytest.raises(ConfigError) as info:
        load_constellation("star-compute", ["constellation.slot=2"])
    assert (info.value.key, info.value.reason) == ("constellation.slot",
                                                   "unknown key; did you mean 'slots'?")


@pytest.mark.parametrize(
    ("override", "owner"),
    [
        (f"{ARQ}.rto_backoff=9.0", "selective-repeat"),  # an SR key on the COP-1 uplink
        ("links.downlink.stack.arq_params.t1_initial=9.0", "COP-1 uplink"),
        ("links.isl-forward.stack.arq_params.window_width=4", "COP-1 uplink"),
    ],
)
def test_an_arq_param_of_another_protocol_is_refused(override: str, owner: str) -> None:
    from linkstack.sims.topology import plan_path

    sc = load_scenario("default", [override])
    with pytest.raises(ConfigError) as info:
        plan_path(sc)
    assert info.value.key == override.split("=")[0] and owner in info.value.reason


def test_every_arq_param_reaches_the_hop() -> None:
    """Each key of ARQ_PARAMS changes the configuration of the hop it belongs to (rto_backoff
    used to be accepted and dropped)."""
    from linkstack.arq.params import ARQ_PARAMS
    from linkstack.hops.rf import RfHopConfig
    from linkstack.sims.topology import build_endpoints, plan_path, rf_config

    values: dict[str, Any] = {"window_width": 7, "farm_window_width": 16, "t1_initial": 4.5,
                              "transmission_limit": 6, "recovery_wait": 2.5, "bc_hold": 0.25,
                              "clcw_interval": 0.75, "window": 99, "initial_rto": 0.3,
                              "min_rto": 0.01, "max_rto": 7.0, "rto_backoff": 3.0,
                              "fec": False}
    assert set(values) == set(ARQ_PARAMS)
    fields = {"window_width": "window", "farm_window_width": "farm_window",
              "t1_initial": "t1"}
    sets = []
    for name, value in values.items():
        link = {"cop-1": "uplink", "cop-1-return": "downlink"}.get(ARQ_PARAMS[name].arq,
                                                                  "isl-forward")
        sets.append(f"links.{link}.stack.arq_params.{name}={str(value).lower()}")
    rf, isl = plan_path(load_scenario("default", sets))
    cfg = rf_config(rf)
    assert isinstance(cfg, RfHopConfig)
    sr = build_endpoints(isl)[0].config
    for name, value in values.items():
        hop_config = cfg if ARQ_PARAMS[name].arq.startswith("cop-1") else sr
        assert getattr(hop_config, fields.get(name, name)) == value, name


def test_the_cop1_defaults_are_one_set() -> None:
    """Fop1, RfHopConfig, a scenario hop without arq_params and the tuner's starting point
    agree (they were 10/3.0/3 in Fop1 and the round trip, 10/2.0/5 in RfHopConfig)."""
    import inspect

    from linkstack.arq import params
    from linkstack.arq.fop1 import Fop1
    from linkstack.hops.rf import RfHopConfig
    from linkstack.sims.topology import plan_path, rf_config

    expected = (params.COP1_WINDOW_WIDTH, params.COP1_T1_INITIAL,
                params.COP1_TRANSMISSION_LIMIT)
    assert expected == (10, 3.0, 3)
    sig = inspect.signature(Fop1.__init__).parameters
    assert (sig["window_width"].default, sig["t1_initial"].default,
            sig["transmission_limit"].default) == expected
    hop_default = RfHopConfig()
    assert (hop_default.window, hop_default.t1, hop_default.transmission_limit) == expected
    assert hop_default.farm_window == 2 * params.COP1_WINDOW_WIDTH
    data = default_dict()
    del data["links"]["uplink"]["stack"]["arq_params"]
    rf = plan_path(parse_scenario(data))[0]
    from_scenario = rf_config(rf)
    assert (from_scenario.window, from_scenario.t1, from_scenario.transmission_limit,
            from_scenario.farm_window, from_scenario.clcw_interval,
            from_scenario.recovery_wait, from_scenario.bc_hold) == (
        *expected, hop_default.farm_window, hop_default.clcw_interval,
        hop_default.recovery_wait, hop_default.bc_hold)
