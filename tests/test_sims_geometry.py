"""Tests of linkstack.sims.geometry against closed forms computed here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.sims.geometry import (
    EARTH_RADIUS_KM,
    SPEED_OF_LIGHT_KM_S,
    LeoPass,
    grazing_altitude_km,
    isl_chord_km,
    light_time_s,
    orbital_period_s,
    slant_range_km,
)

R = 6378.137  # WGS 84 equatorial radius, km


def test_constants() -> None:
    assert EARTH_RADIUS_KM == R
    assert SPEED_OF_LIGHT_KM_S == 299792.458  # exact by the SI definition of the metre


def test_slant_range_limits() -> None:
    assert slant_range_km(90.0, 700.0) == pytest.approx(700.0, abs=1e-9)
    assert slant_range_km(0.0, 700.0) == pytest.approx(math.sqrt((R + 700.0) ** 2 - R * R))


@settings(max_examples=200, deadline=None)
@given(elevation=st.floats(0.0, 90.0), altitude=st.floats(200.0, 40000.0))
def test_slant_range_satisfies_the_triangle(elevation: float, altitude: float) -> None:
    """Station S, satellite P, Earth centre O: |OP|^2 = R^2 + rho^2 + 2 R rho sin(e)."""
    rho = slant_range_km(elevation, altitude)
    r = R + altitude
    lhs = r * r
    rhs = R * R + rho * rho + 2 * R * rho * math.sin(math.radians(elevation))
    assert lhs == pytest.approx(rhs, rel=1e-12)
    assert altitude - 1e-9 <= rho <= math.sqrt(r * r - R * R) + 1e-9


def test_light_time() -> None:
    assert light_time_s(299792.458) == 1.0
    assert light_time_s(0.0) == 0.0
    with pytest.raises(ValueError):
        light_time_s(-1.0)


def test_orbital_period() -> None:
    # 700 km circular orbit: 98.8 min; GEO (35 786 km): one sidereal day, 86 164 s
    assert orbital_period_s(700.0) / 60 == pytest.approx(98.8, abs=0.05)
    assert orbital_period_s(35786.0) == pytest.approx(86164.1, rel=1e-4)


def test_isl_chord() -> None:
    r = R + 700.0
    assert isl_chord_km(700.0, 180.0, min_grazing_km=-R) == pytest.approx(2 * r)
    assert isl_chord_km(700.0, 60.0, min_grazing_km=-R) == pytest.approx(r)  # equilateral
    assert grazing_altitude_km(700.0, 15.0) == pytest.approx(r * math.cos(math.radians(7.5)) - R)
    with pytest.raises(ValueError):
        isl_chord_km(700.0, 60.0)  # grazes at -248 km: through the Earth
    assert isl_chord_km(700.0, 45.0, min_grazing_km=100.0) > 0  # grazes at 161 km
    with pytest.raises(ValueError):
        isl_chord_km(700.0, 50.0, min_grazing_km=100.0)  # grazes at 37 km: in the atmosphere

    with pytest.raises(ValueError):
        isl_chord_km(700.0, 0.0)


def _lambda_max(altitude: float, mask_deg: float) -> float:
    """Central angle at the mask, from the slant range and the law of cosines."""
    r = R + altitude
    rho = slant_range_km(mask_deg, altitude)
    return math.acos((R * R + r * r - rho * rho) / (2 * R * r))


@pytest.mark.parametrize(("altitude", "mask", "cross"), [(700.0, 10.0, 0.0), (550.0, 5.0, 8.0),
                                                         (1000.0, 20.0, 3.0)])
def test_leo_pass(altitude: float, mask: float, cross: float) -> None:
    leo = LeoPass(altitude, mask, cross, first_aos_s=100.0)
    period = orbital_period_s(altitude)
    assert leo.max_central_angle_rad == pytest.approx(_lambda_max(altitude, mask))
    # duration: 2 acos(cos lambda_max / cos lambda_min) / w
    expected = 2 * math.acos(math.cos(_lambda_max(altitude, mask))
                             / math.cos(math.radians(cross))) * period / (2 * math.pi)
    assert leo.duration_s == pytest.approx(expected)
    aos, los = leo.windows(200.0)[0]
    assert (aos, los) == (100.0, pytest.approx(100.0 + expected))
    # at the window edges the satellite is on the mask, at the slant range of the mask
    edges = np.array([aos, los])
    assert np.allclose(leo.elevation_deg(edges), mask, atol=1e-6)
    assert np.allclose(leo.range_km(edges), slant_range_km(mask, altitude), rtol=1e-9)
    # closest approach: the central angle is the cross-track angle
    mid = leo.midpoint_s(0)
    r = R + altitude
    nearest = math.sqrt(R * R + r * r - 2 * R * r * math.cos(math.radians(cross)))
    assert float(leo.range_km(mid)) == pytest.approx(nearest)
    inside = np.linspace(aos + 1, los - 1, 50)
    assert (leo.elevation_deg(inside) > mask).all()
    # the next pass is one orbit later (Earth rotation ignored)
    assert leo.windows(100.0 + period + 1)[1][0] == pytest.approx(100.0 + period)
    assert float(leo.range_km(mid + period)) == pytest.approx(nearest)


def test_overhead_pass_reaches_zenith() -> None:
    leo = LeoPass(700.0, 10.0, 0.0)
    assert float(leo.elevation_deg(leo.midpoint_s(0))) == pytest.approx(90.0)
    assert float(leo.range_km(leo.midpoint_s(0))) == pytest.approx(700.0)


def test_pass_delays() -> None:
    leo = LeoPass(700.0, 10.0, 5.0)
    t_ns = np.arange(0, 7_000_000_000_000, 7_919_000_003, dtype=np.int64)
    array = leo.delay_ns_array(t_ns)
    assert [leo.delay_ns(int(t)) for t in t_ns] == array.tolist()
    expected = slant_range_km(10.0, 700.0) / SPEED_OF_LIGHT_KM_S * 1e9
    assert leo.delay_ns(0) == round(expected)


def test_no_pass_and_bad_parameters() -> None:
    with pytest.raises(ValueError):
        LeoPass(700.0, 10.0, 30.0)  # the station is beyond the visibility circle
    with pytest.raises(ValueError):
        LeoPass(700.0, 95.0)
    with pytest.raises(ValueError):
        LeoPass(-1.0)
    with pytest.raises(ValueError):
        LeoPass(700.0, period_s=60.0)  # shorter than a pass
    with pytest.raises(ValueError):
        slant_range_km(91.0, 700.0)
