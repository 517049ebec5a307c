"""Link geometry: slant ranges, inter-satellite chords, light time, LEO passes.

Model (deliberately simple, and stated so a reader can check every number):

* Spherical Earth of equatorial radius ``R = 6378.137 km`` (WGS 84 semi-major axis).
* Circular orbits of altitude ``h``: orbital radius ``r = R + h``, period
  ``T = 2 pi sqrt(r^3 / mu)`` with ``mu = 398600.4418 km^3/s^2``.
* Light time = distance / c with ``c = 299 792.458 km/s``; the motion of the ends
  during the flight of the signal is ignored (it changes a LEO delay by < 0.01 %).

Slant range from elevation ``e`` (law of cosines in the Earth-centre / station /
satellite triangle)::

    rho(e) = sqrt(r^2 - (R cos e)^2) - R sin e

Two satellites in the same circular orbit separated by the central angle ``theta``
are a chord apart: ``d = 2 r sin(theta / 2)``; the chord's lowest point is at
altitude ``r cos(theta / 2) - R`` (the grazing altitude), which must stay above the
Earth (plus any atmosphere margin) for a line of sight.

LEO pass over a ground station (:class:`LeoPass`).  Non-rotating Earth, the station
at a central angle ``lambda_min`` ("cross-track angle") from the orbital plane.
With ``w = 2 pi / T`` and ``phi = w (t - t_mid)`` the along-track angle from the
point of closest approach, the Earth central angle between sub-satellite point and
station obeys ``cos lambda = cos lambda_min cos phi``.  The satellite is visible
above the elevation mask ``e_min`` while ``lambda <= lambda_max`` with::

    lambda_max = 90 deg - e_min - asin(R cos e_min / r)

so a pass lasts ``2 acos(cos lambda_max / cos lambda_min) / w`` (the classic
result, e.g. Wertz & Larson, *Space Mission Analysis and Design*, §5.4).  Range and
elevation follow from ``lambda``::

    rho = sqrt(R^2 + r^2 - 2 R r cos lambda)
    e   = atan2(r cos lambda - R, r sin lambda)

Because Earth rotation is ignored, passes repeat with a fixed period (by default
the orbital period; set ``period_s`` to e.g. one day to model one pass a day).  The
real sequence of a LEO's passes over one station (a few consecutive passes, then
none for hours) is out of scope: give explicit windows for that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linkstack.sims.engine import NS_PER_S

__all__ = [
    "EARTH_RADIUS_KM",
    "MU_EARTH_KM3_S2",
    "SPEED_OF_LIGHT_KM_S",
    "LeoPass",
    "grazing_altitude_km",
    "isl_chord_km",
    "light_time_s",
    "orbital_period_s",
    "slant_range_km",
]

EARTH_RADIUS_KM = 6378.137
"""WGS 84 equatorial radius (NIMA TR8350.2), used as the spherical Earth's radius."""
MU_EARTH_KM3_S2 = 398600.4418
"""Earth's gravitational parameter GM (IERS / WGS 84 value), km^3/s^2."""
SPEED_OF_LIGHT_KM_S = 299792.458
"""Speed of light in vacuum (exact, SI definition of the metre), km/s."""


def _check_altitude(altitude_km: float) -> None:
    if not (math.isfinite(altitude_km) and altitude_km > 0):
        raise ValueError(f"altitude must be > 0 km, got {altitude_km!r}")


def light_time_s(distance_km: float) -> float:
    """One-way light time over ``distance_km`` in vacuum, seconds."""
    if not (math.isfinite(distance_km) and distance_km >= 0):
        raise ValueError(f"distance must be >= 0 km, got {distance_km!r}")
    return distance_km / SPEED_OF_LIGHT_KM_S


def orbital_period_s(altitude_km: float) -> float:
    """Period of a circular orbit at ``altitude_km`` (Kepler's third law), seconds."""
    _check_altitude(altitude_km)
    radius = EARTH_RADIUS_KM + altitude_km
    return 2.0 * math.pi * math.sqrt(radius**3 / MU_EARTH_KM3_S2)


def slant_range_km(elevation_deg: float, altitude_km: float) -> float:
    """Distance from a ground station to a satellite seen at ``elevation_deg``."""
    _check_altitude(altitude_km)
    if not (0.0 <= elevation_deg <= 90.0):
        raise ValueError(f"elevation must be within [0, 90] deg, got {elevation_deg!r}")
    radius = EARTH_RADIUS_KM + altitude_km
    elevation = math.radians(elevation_deg)
    ground = EARTH_RADIUS_KM * math.cos(elevation)
    return math.sqrt(radius * radius - ground * ground) - EARTH_RADIUS_KM * math.sin(elevation)


def grazing_altitude_km(altitude_km: float, separation_deg: float) -> float:
    """Altitude of the lowest point of the chord between two co-orbital satellites."""
    _check_altitude(altitude_km)
    radius = EARTH_RADIUS_KM + altitude_km
    return radius * math.cos(math.radians(separation_deg) / 2.0) - EARTH_RADIUS_KM


def isl_chord_km(
    altitude_km: float, separation_deg: float, *, min_grazing_km: float = 0.0
) -> float:
    """Distance between two satellites of one circular orbit ``separation_deg`` apart.

    Raises ``ValueError`` if the line of sight passes lower than ``min_grazing_km``
    above the Earth's surface (use e.g. 100 km to keep a laser beam out of the
    atmosphere).
    """
    _check_altitude(altitude_km)
    if not (0.0 < separation_deg <= 180.0):
        raise ValueError(f"separation must be within (0, 180] deg, got {separation_deg!r}")
    grazing = grazing_altitude_km(altitude_km, separation_deg)
    if grazing < min_grazing_km:
        raise ValueError(
            f"no line of sight: the chord grazes at {grazing:.1f} km "
            f"(minimum {min_grazing_km:.1f} km)"
        )
    radius = EARTH_RADIUS_KM + altitude_km
    return 2.0 * radius * math.sin(math.radians(separation_deg) / 2.0)


@dataclass(frozen=True)
class LeoPass:
    """Periodic passes of a circular-orbit satellite over one ground station.

    Args:
        altitude_km: orbit altitude.
        min_elevation_deg: the station's elevation mask.
        cross_track_deg: central angle between the station and the orbital plane
            (0 = the satellite passes overhead).
        first_aos_s: time of the first acquisition of signal (start of the first
            window), seconds of simulation time.
        period_s: time between passes; ``None`` = the orbital period.
    """

    altitude_km: float
    min_elevation_deg: float = 10.0
    cross_track_deg: float = 0.0
    first_aos_s: float = 0.0
    period_s: float | None = None

    def __post_init__(self) -> None:
        _check_altitude(self.altitude_km)
        if not (0.0 <= self.min_elevation_deg < 90.0):
            raise ValueError(f"elevation mask must be in [0, 90) deg: {self.min_elevation_deg}")
        if not (0.0 <= self.cross_track_deg < 90.0):
            raise ValueError(f"cross-track angle must be in [0, 90) deg: {self.cross_track_deg}")
        if self.cross_track_deg >= math.degrees(self.max_central_angle_rad):
            raise ValueError(
                f"no pass: the station is {self.cross_track_deg} deg off track, beyond the "
                f"{math.degrees(self.max_central_angle_rad):.3f} deg visibility radius"
            )
        if self.period_s is not None and not (self.period_s >= self.duration_s):
            raise ValueError(f"pass period {self.period_s} s is shorter than a pass")

    @property
    def radius_km(self) -> float:
        return EARTH_RADIUS_KM + self.altitude_km

    @property
    def orbital_period_s(self) -> float:
        return orbital_period_s(self.altitude_km)

    @property
    def repeat_s(self) -> float:
        """Time between the starts of two passes."""
        return self.orbital_period_s if self.period_s is None else self.period_s

    @property
    def max_central_angle_rad(self) -> float:
        """``lambda_max``: Earth central angle of the visibility circle at the mask."""
        e_min = math.radians(self.min_elevation_deg)
        nadir = math.asin(EARTH_RADIUS_KM * math.cos(e_min) / self.radius_km)
        return math.pi / 2.0 - e_min - nadir

    @property
    def half_angle_rad(self) -> float:
        """Along-track angle from closest approach to the mask crossing."""
        cos_ratio = math.cos(self.max_central_angle_rad) / math.cos(
            math.radians(self.cross_track_deg)
        )
        return math.acos(min(1.0, cos_ratio))

    @property
    def duration_s(self) -> float:
        """Length of one pass above the elevation mask."""
        return 2.0 * self.half_angle_rad / (2.0 * math.pi / self.orbital_period_s)

    def midpoint_s(self, k: int) -> float:
        """Time of closest approach of pass ``k`` (0-based)."""
        return self.first_aos_s + self.duration_s / 2.0 + k * self.repeat_s

    def windows(self, until_s: float) -> list[tuple[float, float]]:
        """Visibility windows ``(aos, los)`` that start before ``until_s``."""
        result: list[tuple[float, float]] = []
        k = 0
        while True:
            start = self.first_aos_s + k * self.repeat_s
            if start >= until_s:
                return result
            result.append((start, start + self.duration_s))
            k += 1

    def _cos_central(self, t_s: np.ndarray | float) -> np.ndarray:
        """cos of the Earth central angle station / sub-satellite point at ``t_s``."""
        repeat = self.repeat_s
        # fold the time onto [-repeat/2, repeat/2) around the nearest closest approach
        offset = np.asarray(t_s, dtype=np.float64) - self.midpoint_s(0)
        offset = offset - np.round(offset / repeat) * repeat
        along = (2.0 * math.pi / self.orbital_period_s) * offset
        return math.cos(math.radians(self.cross_track_deg)) * np.cos(along)

    def range_km(self, t_s: float | np.ndarray) -> np.ndarray:
        """Slant range at time(s) ``t_s`` (also defined below the mask)."""
        cos_central = self._cos_central(t_s)
        r = self.radius_km
        return np.sqrt(EARTH_RADIUS_KM**2 + r * r - 2.0 * EARTH_RADIUS_KM * r * cos_central)

    def elevation_deg(self, t_s: float | np.ndarray) -> np.ndarray:
        """Elevation of the satellite seen from the station at time(s) ``t_s``."""
        cos_central = np.clip(self._cos_central(t_s), -1.0, 1.0)
        sin_central = np.sqrt(1.0 - cos_central * cos_central)
        r = self.radius_km
        return np.degrees(np.arctan2(r * cos_central - EARTH_RADIUS_KM, r * sin_central))

    def _range_scalar_km(self, t_s: float) -> float:
        """:meth:`range_km` for one time, with the math module (no numpy overhead)."""
        c = self._constants
        offset = t_s - c[0]
        offset -= round(offset / c[1]) * c[1]
        cos_central = c[3] * math.cos(c[2] * offset)
        return math.sqrt(c[4] - c[5] * cos_central)

    @property
    def _constants(self) -> tuple[float, ...]:
        cached = self.__dict__.get("_cached_constants")
        if cached is None:
            r = self.radius_km
            cached = (
                self.midpoint_s(0),
                self.repeat_s,
                2.0 * math.pi / self.orbital_period_s,
                math.cos(math.radians(self.cross_track_deg)),
                EARTH_RADIUS_KM**2 + r * r,
                2.0 * EARTH_RADIUS_KM * r,
            )
            object.__setattr__(self, "_cached_constants", cached)
        return cached

    # -- link.Propagation protocol -------------------------------------------------

    def delay_ns(self, t_ns: int) -> int:
        """One-way light time (integer ns) for a signal leaving at ``t_ns``."""
        distance = self._range_scalar_km(t_ns / NS_PER_S)
        return round(distance / SPEED_OF_LIGHT_KM_S * NS_PER_S)

    def delay_ns_array(self, t_ns: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`delay_ns` for an int64 array of departure times."""
        distance = self.range_km(t_ns.astype(np.float64) / NS_PER_S)
        return np.rint(distance / SPEED_OF_LIGHT_KM_S * NS_PER_S).astype(np.int64)
