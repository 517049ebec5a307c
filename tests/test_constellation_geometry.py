"""Constellation geometry: SGP4 propagation, Earth-fixed frame, stations, windows, ISLs, plans.

Independent references: the ``sgp4`` package's own verification data (``SGP4-VER.TLE`` and
``tcppver.out``, Vallado 2006), skyfield (its own TEME/ITRS frames, WGS-84 stations and
``EarthSatellite.find_events``), and closed-form circular-orbit geometry.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import sgp4
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skyfield.api import EarthSatellite, load, wgs84
from skyfield.framelib import itrs
from skyfield.sgp4lib import theta_GMST1982

from linkstack.sims.constellation.contacts import (
    IslLink,
    IslPolicy,
    Window,
    build_contact_plan,
    grazing_height_km,
    ground_windows,
    isl_available,
    isl_windows,
    plus_grid_links,
    ring_links,
    segment_windows,
    to_ion,
    topology_links,
    write_ion,
)
from linkstack.sims.constellation.orbits import (
    DEFAULT_EPOCH,
    Constellation,
    GroundStation,
    WalkerShell,
    epoch_jd,
    gmst_rad,
    parse_tle,
    propagate_teme,
    read_tle,
    teme_to_ecef,
    tle_checksum,
    walker_satellites,
)
from linkstack.sims.constellation.plan import Contact, ContactPlan, NodeTable
from linkstack.sims.geometry import EARTH_RADIUS_KM, SPEED_OF_LIGHT_KM_S

SGP4_DIR = Path(os.path.dirname(sgp4.__file__))
TS = load.timescale(builtin=True)
DAY = 86400.0
# skyfield's UT1 - UTC at the default epoch, so that both Earth-fixed frames turn alike
DUT1 = float(TS.utc(2026, 1, 1).dut1)

STATIONS = (
    GroundStation("Svalbard", 78.2297, 15.4077, 0.45, 10.0),
    GroundStation("Wallops", 37.9402, -75.4664, 0.01, 10.0),
    GroundStation("Hartebeesthoek", -25.8869, 27.7078, 1.54, 10.0),
)


def _topos(station: GroundStation):
    return wgs84.latlon(
        station.latitude_deg, station.longitude_deg, elevation_m=station.altitude_km * 1000.0
    )


def _sky_times(seconds):
    return TS.utc(2026, 1, 1, 0, 0, np.asarray(seconds, dtype=float))


def _sky_sat(c: Constellation, node: int) -> EarthSatellite:
    return EarthSatellite.from_satrec(c.satellites[node - c.n_stations].satrec, TS)


@pytest.fixture(scope="module")
def polar_ring() -> Constellation:
    shell = WalkerShell(12, 1, 0, 550.0, 97.5)
    return Constellation.from_walker(shell, STATIONS, horizon_s=DAY, ut1_minus_utc_s=DUT1)


@pytest.fixture(scope="module")
def inclined_ring() -> Constellation:
    shell = WalkerShell(12, 1, 0, 550.0, 53.0)
    return Constellation.from_walker(shell, STATIONS, horizon_s=DAY, ut1_minus_utc_s=DUT1)


# -- SGP4 propagation against the sgp4 package's verification outputs ------------------------------


def _reference_sections() -> dict[int, list[list[float]]]:
    """tcppver.out: for each satellite, rows of tsince (min), x, y, z (km), vx, vy, vz (km/s)."""
    sections: dict[int, list[list[float]]] = {}
    current: list[list[float]] | None = None
    for line in (SGP4_DIR / "tcppver.out").read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1] == "xx":
            satnum = int(fields[0])
            current = None if satnum in sections else sections.setdefault(satnum, [])
        elif current is not None and len(fields) >= 7:
            current.append([float(x) for x in fields[:7]])
    return sections


def _reference_tle(satnum: int) -> str:
    lines = (SGP4_DIR / "SGP4-VER.TLE").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("1 ") and int(line[2:7]) == satnum:
            return f"{lines[i][:69]}\n{lines[i + 1][:69]}\n"
    raise LookupError(satnum)


@pytest.mark.parametrize("satnum", [5, 6251, 8195, 28057])
def test_teme_matches_sgp4_verification_output(satnum: int) -> None:
    # near-Earth with drag (6251, 28057), eccentric (5) and deep-space Molniya (8195) cases
    (sat,) = parse_tle(_reference_tle(satnum))
    rows = np.array(_reference_sections()[satnum])
    epoch = (sat.satrec.jdsatepoch, sat.satrec.jdsatepochF)
    r, v = propagate_teme([sat], epoch, rows[:, 0] * 60.0)
    # sgp4's own test compares the printed values with this tolerance ("error = 2e-7")
    assert np.abs(r[0] - rows[:, 1:4]).max() < 2e-7
    assert np.abs(v[0] - rows[:, 4:7]).max() < 2e-7


def test_propagation_error_names_the_satellite() -> None:
    (sat,) = parse_tle(_reference_tle(22312))  # decays within hours (SGP4 error 1 at 10 h)
    epoch = (sat.satrec.jdsatepoch, sat.satrec.jdsatepochF)
    assert propagate_teme([sat], epoch, np.array([0.0, 3600.0]))[0].shape == (1, 2, 3)
    with pytest.raises(ValueError, match=r"^sgp4: satellite 22312 failed at t=36000 s \(error 1\)"):
        propagate_teme([sat], epoch, np.array([0.0, 36000.0]))


# -- Earth-fixed frame, stations and elevations against skyfield -----------------------------------


@pytest.mark.parametrize("when", [(2000, 1, 1, 12), (2026, 1, 1, 0), (2031, 7, 14, 17.25)])
def test_gmst_matches_skyfield_iau82(when: tuple[int, int, int, float]) -> None:
    t = TS.utc(*when)
    theta, _ = theta_GMST1982(t.whole, t.ut1_fraction)
    assert abs(float(gmst_rad(t.whole, t.ut1_fraction)) - theta) < 1e-12


def test_ecef_position_and_velocity_match_skyfield(polar_ring: Constellation) -> None:
    c = polar_ring
    times = np.array([0.0, 5.0, 1234.5, 40000.25, 86395.0, DAY])
    for node in (3, 8, 14):
        sky = _sky_sat(c, node).at(_sky_times(times))
        pos, vel = sky.frame_xyz_and_velocity(itrs)
        mine_p = c.position_km(node, times)
        mine_v = c.velocity_km_s(node, times)
        # skyfield's UT1 drifts by 0.1 ms over the day: 5e-5 km of Earth rotation
        assert np.abs(pos.km.T - mine_p).max() < 2e-4
        # skyfield reports SGP4's velocity, which is not exactly the derivative of SGP4's
        # position (~2e-5 km/s apart); ours is the derivative of the interpolated position
        assert np.abs(vel.km_per_s.T - mine_v).max() < 5e-5


def test_ut1_offset_is_applied(polar_ring: Constellation) -> None:
    plain = Constellation(polar_ring.satellites[:1], horizon_s=60.0)
    shifted = Constellation(polar_ring.satellites[:1], horizon_s=60.0, ut1_minus_utc_s=0.5)
    moved = np.linalg.norm(plain.position_km(0, 30.0) - shifted.position_km(0, 30.0))
    r = np.linalg.norm(plain.position_km(0, 30.0)[:2])
    # Earth rotation over 0.5 s at the satellite's distance from the axis
    assert moved == pytest.approx(r * 7.2921159e-5 * 0.5, rel=1e-3)


def test_station_ecef_matches_skyfield_wgs84() -> None:
    for station in STATIONS:
        sky = _topos(station).itrs_xyz.km
        assert np.abs(station.ecef_km - sky).max() < 1e-9


def test_elevation_matches_skyfield(inclined_ring: Constellation) -> None:
    c = inclined_ring
    times = np.linspace(0.0, DAY, 97)
    for j, station in enumerate(STATIONS):
        for node in (3, 9):
            alt = (_sky_sat(c, node) - _topos(station)).at(_sky_times(times)).altaz()[0].degrees
            mine = c.elevation_deg(j, node, times)
            assert np.abs(alt - mine).max() < 1e-4


def test_visible_agrees_with_elevations(polar_ring: Constellation) -> None:
    c = polar_ring
    seen_any = False
    for t in np.arange(0.0, 6000.0, 37.0):
        for j, station in enumerate(STATIONS):
            visible = c.visible(j, float(t))
            elev = [c.elevation_deg(j, n, float(t)) for n in range(3, 15)]
            expected = {3 + i for i, e in enumerate(elev) if e >= station.min_elevation_deg}
            assert set(visible) == expected
            assert [c.elevation_deg(j, n, float(t)) for n in visible] == sorted(
                (c.elevation_deg(j, n, float(t)) for n in visible), reverse=True
            )
            seen_any |= bool(visible)
    assert seen_any


# -- interpolation ---------------------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.floats(0.0, DAY), min_size=1, max_size=20))
def test_interpolation_within_stated_bound(polar_ring: Constellation, times: list[float]) -> None:
    c = polar_ring
    t = np.array(times)
    jd, fr = c.epoch

    def direct(times: np.ndarray) -> np.ndarray:
        r, v = propagate_teme(c.satellites, c.epoch, times)
        fr_ut1 = fr + (times + c.ut1_minus_utc_s) / DAY
        return teme_to_ecef(r, v, np.full_like(times, jd), fr_ut1)[0]

    exact = direct(t)
    # the derivative of SGP4's Earth-fixed position, by a central difference
    rate = direct(t + 0.5) - direct(t - 0.5)
    bound = c.interpolation_bound_km()
    for i in range(c.n_satellites):
        node = c.satellite_node(i)
        assert np.abs(c.position_km(node, t) - exact[i]).max() <= bound + 1e-9
        assert np.abs(c.velocity_km_s(node, t) - rate[i]).max() < 2e-6


def test_interpolation_bound_is_small_for_leo(polar_ring: Constellation) -> None:
    assert 1e-8 < polar_ring.interpolation_bound_km() < 1e-6  # 10 s grid: well under 1 mm


def test_queries_outside_the_span_are_refused(polar_ring: Constellation) -> None:
    with pytest.raises(ValueError, match="outside the propagated span"):
        polar_ring.range_km(3, 4, DAY + 20.0)
    with pytest.raises(ValueError, match="outside the propagated span"):
        polar_ring.position_km(3, np.array([-1.0, 5.0]))


def test_node_numbers_and_queries(polar_ring: Constellation) -> None:
    c = polar_ring
    assert c.nodes.names[:3] == ["Svalbard", "Wallops", "Hartebeesthoek"]
    assert c.nodes.kinds == ["ground"] * 3 + ["satellite"] * 12
    assert c.node("sat-0-5") == 8 and c.satellite_node(5) == 8
    assert c.range_km(3, 7, 100.0) == pytest.approx(c.range_km(7, 3, 100.0), abs=1e-12)
    assert c.range_km("Wallops", "sat-0-0", 10.0) == pytest.approx(
        np.linalg.norm(c.position_km(3, 10.0) - STATIONS[1].ecef_km), abs=1e-9
    )
    assert c.range_km(0, 1, 5.0) == pytest.approx(
        np.linalg.norm(STATIONS[0].ecef_km - STATIONS[1].ecef_km)
    )
    scalar = c.range_km(2, 9, 777.7)
    vector = c.range_km(2, 9, np.array([777.7]))
    assert scalar == pytest.approx(float(vector[0]), abs=1e-9)
    delay = c.delay(2, 9)
    assert delay.delay_ns(777_700_000_000) == round(scalar / SPEED_OF_LIGHT_KM_S * 1e9)
    assert delay.delay_ns_array(np.array([777_700_000_000]))[0] == delay.delay_ns(777_700_000_000)
    with pytest.raises(ValueError, match="not a ground station"):
        c.elevation_deg(3, 4, 0.0)
    with pytest.raises(KeyError):
        c.node("nowhere")


# -- ground contact windows against skyfield's find_events -----------------------------------------


@pytest.mark.parametrize("ring", ["polar_ring", "inclined_ring"])
def test_ground_windows_match_skyfield_find_events(ring: str, request) -> None:
    c: Constellation = request.getfixturevalue(ring)
    windows = ground_windows(c)
    compared = 0
    for j, station in enumerate(STATIONS):
        for node in range(3, 15):
            times, events = _sky_sat(c, node).find_events(
                _topos(station),
                _sky_times(0.0),
                _sky_times(DAY),
                altitude_degrees=station.min_elevation_deg,
            )
            seconds = (times.tt - _sky_times(0.0).tt) * DAY
            sky = [t for t, e in zip(seconds, events, strict=True) if e != 1]  # rise, set
            mine = [
                x
                for w in windows
                if w.a == j and w.b == node
                for x in (w.start_s, w.end_s)
                if 0.0 < x < DAY
            ]
            assert len(mine) == len(sky), (station.name, node)
            if sky:
                assert np.abs(np.array(mine) - np.array(sky)).max() < 1.0
            compared += len(sky)
    assert compared > 100


def test_window_edges_are_at_the_mask(polar_ring: Constellation) -> None:
    c = polar_ring
    windows = [w for w in ground_windows(c) if w.start_s > 0 and w.end_s < DAY][:40]
    assert windows
    for w in windows:
        station = STATIONS[w.a]
        alt = (_sky_sat(c, w.b) - _topos(station)).at(_sky_times([w.start_s, w.end_s]))
        assert np.abs(alt.altaz()[0].degrees - station.min_elevation_deg).max() < 1e-4
        inside = (w.start_s + w.end_s) / 2
        assert c.elevation_deg(w.a, w.b, inside) > station.min_elevation_deg


def test_short_passes_between_grid_points_are_found(polar_ring: Constellation) -> None:
    step = 180.0  # interpolation error ~40 m at this step: crossing times within ~0.1 s
    coarse = Constellation(
        polar_ring.satellites, STATIONS, horizon_s=DAY, step_s=step, ut1_minus_utc_s=DUT1
    )
    fine = ground_windows(polar_ring)
    found = ground_windows(coarse)
    # the scenario has passes that lie entirely between two points of the coarse grid
    between = [w for w in fine if math.floor(w.start_s / step) == math.floor(w.end_s / step)]
    assert len(between) >= 3
    assert [(w.a, w.b) for w in found] == [(w.a, w.b) for w in fine]
    edges = np.array([(w.start_s, w.end_s) for w in found])
    assert np.abs(edges - np.array([(w.start_s, w.end_s) for w in fine])).max() < 0.2


# -- ISLs ------------------------------------------------------------------------------------------


def test_ring_isl_range_matches_skyfield_and_the_chord(polar_ring: Constellation) -> None:
    c = polar_ring
    links = ring_links(c)
    assert len(links) == 12 and all(not link.inter_plane for link in links)
    assert {(link.a, link.b) for link in links} == {
        tuple(sorted((3 + i, 3 + (i + 1) % 12))) for i in range(12)
    }
    times = np.linspace(0.0, DAY, 41)
    chord = 2.0 * (EARTH_RADIUS_KM + 550.0) * math.sin(math.radians(15.0))
    for link in links[:4]:
        pa = _sky_sat(c, link.a).at(_sky_times(times)).position.km
        pb = _sky_sat(c, link.b).at(_sky_times(times)).position.km
        sky = np.linalg.norm(pa - pb, axis=0)
        mine = c.range_km(link.a, link.b, times)
        assert np.abs(mine - sky).max() < 1e-3  # range is frame-independent: no UT1 in it
        # Kepler: a chord of 30 deg on a circle of radius R + h (J2 moves it by < 0.5 %)
        assert np.abs(mine / chord - 1.0).max() < 0.005


def test_grazing_height_of_a_ring() -> None:
    shell = WalkerShell(12, 1, 0, 500.0, 97.5)
    c = Constellation.from_walker(shell, horizon_s=600.0)
    pa = c.position_km(0, np.arange(0.0, 600.0, 60.0))
    pb = c.position_km(1, np.arange(0.0, 600.0, 60.0))
    radius = np.linalg.norm(pa, axis=-1)
    grazing = grazing_height_km(pa, pb)
    # the chord's midpoint: r cos(15 deg) - R, about 266 km for 500 km
    nominal = (EARTH_RADIUS_KM + 500.0) * math.cos(math.radians(15.0)) - EARTH_RADIUS_KM
    assert nominal == pytest.approx(265.6, abs=0.1)
    assert np.abs(grazing - nominal).max() < 12.0
    assert np.abs(grazing - (radius * math.cos(math.radians(15.0)) - EARTH_RADIUS_KM)).max() < 3.0
    # segments whose closest point is an end point
    p = np.array([7000.0, 0.0, 0.0])
    assert grazing_height_km(p, p + np.array([100.0, 0.0, 0.0])) == pytest.approx(
        7000.0 - EARTH_RADIUS_KM
    )
    assert grazing_height_km(p, -p) == pytest.approx(-EARTH_RADIUS_KM)


@pytest.mark.parametrize(
    ("n_sats", "policy", "up"),
    [
        (12, IslPolicy(max_range_km=5000.0), True),
        (12, IslPolicy(max_range_km=3000.0), False),  # the 3,590 km chord is too long
        (8, IslPolicy(min_grazing_km=80.0, max_range_km=6000.0), False),  # grazes at ~23 km
        (8, IslPolicy(min_grazing_km=0.0, max_range_km=6000.0), True),  # 5,300 km chords
        (6, IslPolicy(min_grazing_km=0.0, max_range_km=1e5), False),  # through the Earth
    ],
)
def test_isl_policy_on_rings(n_sats: int, policy: IslPolicy, up: bool) -> None:
    c = Constellation.from_walker(WalkerShell(n_sats, 1, 0, 550.0, 53.0), horizon_s=1800.0)
    links = ring_links(c)
    windows = isl_windows(c, links, policy)
    if up:
        assert [(w.start_s, w.end_s) for w in windows] == [(0.0, 1800.0)] * n_sats
    else:
        assert windows == []
    assert isl_available(c, links[0], 900.0, policy) is up


def test_plus_grid_topology_and_ranges() -> None:
    shell = WalkerShell(2800, 56, 1, 550.0, 53.0)
    c = Constellation.from_walker(shell, horizon_s=600.0, step_s=30.0)
    links = plus_grid_links(c)
    assert len(links) == 5600
    degree = np.bincount([n for link in links for n in (link.a, link.b)], minlength=2800)
    assert (degree == 4).all()
    intra = [link for link in links if not link.inter_plane]
    inter = [link for link in links if link.inter_plane]
    assert len(intra) == len(inter) == 2800
    # the seam: plane 55 slot s to plane 0 slot s + F
    assert IslLink(1, 55 * 50, True) in inter
    times = np.array([0.0, 300.0, 600.0])
    a = np.array([link.a for link in intra])
    b = np.array([link.b for link in intra])
    pa, pb = c.states(a[:, None], times)[0], c.states(b[:, None], times)[0]
    r_intra = np.linalg.norm(pa - pb, axis=-1)
    chord = 2.0 * (EARTH_RADIUS_KM + 550.0) * math.sin(math.pi / 50)  # 869 km
    assert np.abs(r_intra / chord - 1.0).max() < 0.005
    a = np.array([link.a for link in inter])
    b = np.array([link.b for link in inter])
    pa, pb = c.states(a[:, None], times)[0], c.states(b[:, None], times)[0]
    r_inter = np.linalg.norm(pa - pb, axis=-1)
    assert r_inter.min() > 380.0 and r_inter.max() < 870.0
    no_seam = plus_grid_links(c, seam=False)
    assert len(no_seam) == 5600 - 50
    assert topology_links(c, "+grid") == links
    with pytest.raises(ValueError, match="ring needs one plane"):
        ring_links(c)


def test_inter_plane_links_off_near_the_poles() -> None:
    shell = WalkerShell(48, 12, 1, 550.0, 87.0)
    c = Constellation.from_walker(shell, horizon_s=6000.0)
    policy = IslPolicy(max_range_km=6000.0, max_latitude_deg=75.0)
    links = [link for link in plus_grid_links(c, seam=False) if link.inter_plane][:8]
    windows = isl_windows(c, links, policy)
    assert windows and any(w.end_s < 6000.0 for w in windows)
    times = np.arange(0.0, 6000.0, 11.0)
    sky_times = _sky_times(times)
    lat = {}  # an independent latitude: skyfield's Earth-fixed positions
    for node in {n for link in links for n in (link.a, link.b)}:
        xyz = _sky_sat(c, node).at(sky_times).frame_xyz(itrs).km
        lat[node] = np.degrees(np.arcsin(np.abs(xyz[2]) / np.linalg.norm(xyz, axis=0)))
    for link in links:
        expected = (lat[link.a] <= 75.0) & (lat[link.b] <= 75.0)
        mine = [w for w in windows if (w.a, w.b) == (link.a, link.b)]
        starts = np.array([w.start_s for w in mine])
        ends = np.array([w.end_s for w in mine])
        inside = ((times[:, None] >= starts) & (times[:, None] < ends)).any(axis=1)
        edges = np.concatenate([starts, ends])
        clear = np.abs(times[:, None] - edges[None, :]).min(axis=1) > 0.5
        assert (inside == expected)[clear].all()
        for w in mine:
            for edge in (w.start_s, w.end_s):
                if 0.0 < edge < 6000.0:
                    lats = [abs(c.geocentric_latitude_deg(n, edge)) for n in (link.a, link.b)]
                    assert min(abs(x - 75.0) for x in lats) < 1e-4


# -- the contact plan ------------------------------------------------------------------------------


def test_contact_plan_segments_and_worst_case_light_time(inclined_ring: Constellation) -> None:
    c = inclined_ring
    links = ring_links(c)
    plan = build_contact_plan(
        c, links, ground_rate_bps=2e6, downlink_rate_bps=1e8, isl_rate_bps=1e9, max_segment_s=60.0
    )
    assert isinstance(plan, ContactPlan) and plan.horizon_s == DAY
    windows = ground_windows(c) + isl_windows(c, links)
    assert sum(w.end_s - w.start_s for w in windows) * 2 == pytest.approx(
        sum(ct.end_s - ct.start_s for ct in plan.contacts)
    )
    keys = [(ct.start_s, ct.frm, ct.to) for ct in plan.contacts]
    assert keys == sorted(keys)
    by_pair: dict[tuple[int, int], list[Contact]] = {}
    for ct in plan.contacts:
        assert ct.end_s - ct.start_s <= 60.0 + 1e-9
        by_pair.setdefault((ct.frm, ct.to), []).append(ct)
        if ct.frm < 3:
            assert ct.rate_bps == 2e6  # uplink
        elif ct.to < 3:
            assert ct.rate_bps == 1e8  # downlink
        else:
            assert ct.rate_bps == 1e9
    for (frm, to), contacts in by_pair.items():
        back = by_pair[(to, frm)]
        assert [(x.start_s, x.end_s, x.owlt_s) for x in contacts] == [
            (x.start_s, x.end_s, x.owlt_s) for x in back
        ]
        ends = {x.end_s for x in contacts}
        for x in contacts:  # a window is cut at the multiples of 60 s only
            assert x.start_s % 60.0 == 0.0 or x.start_s not in ends
    rng = np.random.default_rng(7)
    sample = [plan.contacts[i] for i in rng.choice(len(plan.contacts), 300, replace=False)]
    for ct in sample:
        t = np.linspace(ct.start_s, ct.end_s, 601)
        light = np.asarray(c.light_time_s(ct.frm, ct.to, t))
        assert ct.owlt_s >= light.max() - 1e-12  # never optimistic
        assert ct.owlt_s - light.max() < 2e-6  # and the largest value, not a loose bound


def test_owlt_catches_an_interior_range_maximum() -> None:
    # cross-plane links of a polar shell: the range peaks over the equator, inside a segment
    c = Constellation.from_walker(WalkerShell(48, 12, 1, 550.0, 87.0), horizon_s=6000.0)
    link = next(link for link in plus_grid_links(c) if link.inter_plane)
    window = Window(link.a, link.b, 0.0, 6000.0, "isl")
    plan = build_contact_plan(
        c, ground_rate_bps=1.0, isl_rate_bps=1.0, max_segment_s=600.0, windows=[window]
    )
    interior = 0
    for ct in plan.contacts:
        t = np.linspace(ct.start_s, ct.end_s, 6001)
        light = np.asarray(c.light_time_s(ct.frm, ct.to, t))
        ends = max(light[0], light[-1])
        interior += light.max() > ends + 1e-6
        assert light.max() - 1e-12 <= ct.owlt_s < light.max() + 1e-9
    assert interior >= 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 5000.0), st.floats(0.001, 2000.0)), min_size=1, max_size=8),
    st.sampled_from([1.0, 7.5, 60.0, 600.0]),
)
def test_segments_cover_windows(spans: list[tuple[float, float]], length: float) -> None:
    windows = [Window(0, 1, s, s + d, "isl") for s, d in spans]
    w_idx, starts, ends = segment_windows(windows, length)
    for i, w in enumerate(windows):
        seg = np.flatnonzero(w_idx == i)
        assert starts[seg[0]] == w.start_s and ends[seg[-1]] == w.end_s
        assert (ends[seg] > starts[seg]).all() and (ends[seg] - starts[seg] <= length + 1e-9).all()
        assert (starts[seg[1:]] == ends[seg[:-1]]).all()
        cuts = starts[seg[1:]] / length
        assert np.allclose(cuts, np.round(cuts), rtol=0, atol=1e-9)


# -- ION export ------------------------------------------------------------------------------------

_CONTACT = re.compile(r"^a contact \+(\d+) \+(\d+) (\d+) (\d+) (\d+)$")
_RANGE = re.compile(r"^a range \+(\d+) \+(\d+) (\d+) (\d+) (\d+)$")


def _parse_ion(text: str) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    contacts, ranges = [], []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _CONTACT.match(line) or _RANGE.match(line)
        assert m, line
        (contacts if line.startswith("a contact") else ranges).append(tuple(map(int, m.groups())))
    return contacts, ranges


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 1e5),
            st.floats(0.01, 500.0),
            st.integers(0, 5),
            st.integers(0, 5),
            st.floats(1.0, 1e10),
            st.floats(0.0, 3.0),
        ),
        max_size=20,
    )
)
def test_ion_export_parses_back(rows: list[tuple[float, float, int, int, float, float]]) -> None:
    nodes = NodeTable()
    for i in range(6):
        nodes.add(f"n{i}", "satellite")
    contacts = [Contact(s, s + d, a, b, r, o) for s, d, a, b, r, o in rows]
    text = to_ion(ContactPlan(nodes, contacts, 2e5))
    parsed, ranges = _parse_ion(text)
    kept = [ct for ct in contacts if math.floor(ct.end_s) > math.ceil(ct.start_s)]
    assert len(parsed) == len(ranges) == len(kept)
    for ct, (start, stop, frm, to, rate), rg in zip(kept, parsed, ranges, strict=True):
        assert ct.start_s <= start and start - 1 < ct.start_s  # rounded up
        assert stop <= ct.end_s and ct.end_s < stop + 1  # rounded down
        assert (frm, to) == (ct.frm + 1, ct.to + 1)  # ION node numbers start at 1
        assert rate == max(1, math.floor(ct.rate_bps / 8))  # bytes per second
        assert rg[:4] == (start, stop, frm, to)
        assert ct.owlt_s <= rg[4] and rg[4] - 1 < ct.owlt_s  # whole seconds, rounded up


def test_ion_export_of_a_real_plan(inclined_ring: Constellation, tmp_path: Path) -> None:
    plan = build_contact_plan(
        inclined_ring, ring_links(inclined_ring), ground_rate_bps=1e6, isl_rate_bps=8e6
    )
    path = tmp_path / "plan.ionrc"
    write_ion(plan, path)
    text = path.read_text()
    assert "# node 1: Svalbard (ground)" in text and "# node 4: sat-0-0 (satellite)" in text
    contacts, ranges = _parse_ion(text)
    assert len(contacts) > 1000 and len(ranges) == len(contacts)
    assert {c[4] for c in contacts} == {125000, 1000000}
    assert {r[4] for r in ranges} == {1}  # LEO light times round up to one second
    # integer max_segment_s: a long ISL window stays contiguous after rounding
    isl = sorted(c for c in contacts if (c[2], c[3]) == (4, 5))
    assert isl[0][0] == 0 and isl[-1][1] == int(DAY)
    assert all(x[1] == y[0] for x, y in itertools.pairwise(isl))


def test_plan_builder_checks_the_contacts_it_makes(inclined_ring: Constellation) -> None:
    # The builder makes its contacts without running Contact's own checks one by one; it checks
    # the columns first and refuses a bad one with the constructor's error.
    good = Window(0, inclined_ring.n_stations, 100.0, 200.0, "ground")
    plan = build_contact_plan(inclined_ring, ground_rate_bps=1e6, isl_rate_bps=8e6,
                              windows=[good])
    # cut at the multiples of max_segment_s (60 s), both directions
    assert [(c.start_s, c.end_s) for c in plan.contacts] == [
        (100.0, 120.0), (100.0, 120.0), (120.0, 180.0), (120.0, 180.0), (180.0, 200.0),
        (180.0, 200.0)]
    empty = Window(0, inclined_ring.n_stations, 300.0, 300.0, "ground")
    with pytest.raises(ValueError, match=r"must be after start_s 300\.0"):
        build_contact_plan(inclined_ring, ground_rate_bps=1e6, isl_rate_bps=8e6,
                           windows=[good, empty])


# -- Walker shells and TLE files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ((36, 6, 7), "walker.phasing: 7 is outside 0..P-1 (P=6)"),
        ((36, 6, -1), "walker.phasing: -1 is outside 0..P-1 (P=6)"),
        ((35, 6, 1), "walker.total: 35 is not divisible by planes=6"),
        ((6, 12, 1), "walker.planes: 12 is more than total=6"),
        ((0, 1, 0), "walker.total: must be a positive integer, got 0"),
        ((12, 0, 0), "walker.planes: must be a positive integer, got 0"),
        ((12.0, 1, 0), "walker.total: must be a positive integer, got 12.0"),
    ],
)
def test_walker_validation(params: tuple, message: str) -> None:
    with pytest.raises(ValueError) as info:
        WalkerShell(*params, altitude_km=550.0, inclination_deg=53.0)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("altitude", "inclination", "key"),
    [(50.0, 53.0, "walker.altitude_km"), (550.0, 181.0, "walker.inclination_deg")],
)
def test_walker_validation_of_the_orbit(altitude: float, inclination: float, key: str) -> None:
    with pytest.raises(ValueError, match=rf"^{key}: ") as info:
        WalkerShell(12, 1, 0, altitude, inclination)
    assert "\n" not in str(info.value)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda p: st.tuples(st.just(p), st.integers(1, 5), st.integers(0, p - 1))
    )
)
def test_walker_pattern(pattern: tuple[int, int, int]) -> None:
    planes, per_plane, phasing = pattern
    total = planes * per_plane
    shell = WalkerShell(total, planes, phasing, 700.0, 60.0)
    sats = walker_satellites(shell)
    r, v = propagate_teme(sats, epoch_jd(DEFAULT_EPOCH), np.array([0.0]))
    normal = np.cross(r[:, 0], v[:, 0])
    raan = np.degrees(np.arctan2(normal[:, 0], -normal[:, 1])) % 360.0
    node_vec = np.stack([np.cos(np.radians(raan)), np.sin(np.radians(raan)), 0 * raan], axis=-1)
    rr = r[:, 0] / np.linalg.norm(r[:, 0], axis=-1, keepdims=True)
    nn = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    sin_u = np.einsum("ij,ij->i", np.cross(node_vec, rr), nn)
    u = np.degrees(np.arctan2(sin_u, np.einsum("ij,ij->i", node_vec, rr)))
    for k, sat in enumerate(sats):
        p, s = divmod(k, per_plane)
        assert (sat.plane, sat.slot) == (p, s)
        expect_raan = 360.0 * p / planes
        expect_u = 360.0 * s / per_plane + 360.0 * phasing * p / total
        # osculating vs mean elements: J2 short-period terms, about a tenth of a degree
        assert abs((raan[k] - expect_raan + 180.0) % 360.0 - 180.0) < 0.25
        assert abs((u[k] - expect_u + 180.0) % 360.0 - 180.0) < 0.25


TLE_TEXT = """ISS (ZARYA)
1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927
2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537
SGP4-VER 28057
1 28057U 03049A   06177.78615833  .00000060  00000-0  35940-4 0  1836
2 28057  98.4283 247.6961 0000884  88.1964 271.9322 14.35478080140550
"""


def test_tle_parse_and_checksums(tmp_path: Path) -> None:
    sats = parse_tle(TLE_TEXT)
    assert [s.name for s in sats] == ["ISS (ZARYA)", "SGP4-VER 28057"]
    assert sats[0].satrec.satnum == 25544
    assert tle_checksum(TLE_TEXT.splitlines()[1]) == 7
    path = tmp_path / "set.tle"
    path.write_text(TLE_TEXT)
    c = Constellation.from_tle(path, STATIONS[:1], horizon_s=600.0)
    latest = sats[0].satrec  # the 2008 element set is the latest
    assert c.epoch == (latest.jdsatepoch, latest.jdsatepochF)
    assert c.nodes.names == ["Svalbard", "ISS (ZARYA)", "SGP4-VER 28057"]
    assert 6500 < np.linalg.norm(c.position_km(1, 300.0)) < 6800


@pytest.mark.parametrize("line_index", [1, 2, 4, 5])
def test_tle_checksum_error_names_the_line(tmp_path: Path, line_index: int) -> None:
    lines = TLE_TEXT.splitlines()
    bad = lines[line_index]
    digit = (int(bad[68]) + 3) % 10
    lines[line_index] = bad[:68] + str(digit)
    path = tmp_path / "bad.tle"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as info:
        read_tle(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_index + 1}: TLE checksum error")
    assert "\n" not in message


def test_tle_structure_errors() -> None:
    lines = TLE_TEXT.splitlines()
    with pytest.raises(ValueError, match=r"^<tle>:3: TLE line 2 without a line 1"):
        parse_tle("\n".join([lines[0], "", lines[2]]))
    with pytest.raises(ValueError, match=r"^<tle>:2: TLE line 1 without a line 2"):
        parse_tle("\n".join(lines[:2]))
    with pytest.raises(ValueError, match=r"no element sets"):
        parse_tle("# nothing\n")
