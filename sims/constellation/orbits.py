"""Satellite orbits (Walker-delta shells or TLE sets, propagated with SGP4) and ground stations.

Model, with its sources, so that every number can be checked:

* **Propagation.** Every satellite is an SGP4/SDP4 element set propagated by the ``sgp4``
  package (Vallado's reference implementation) with its vectorised ``SatrecArray``. SGP4 and its
  element sets are defined in Hoots & Roehrich, *Spacetrack Report #3* (1980), as revised by
  Vallado, Crawford, Hujsak & Kelso, *Revisiting Spacetrack Report #3*, AIAA 2006-6753 (2006),
  "Vallado 2006" below. Times are UTC; the scenario epoch (``t = 0``) is a parameter.
* **Walker-delta shells** ``i: T/P/F`` (Walker, *Satellite constellations*, J. British
  Interplanetary Society 37, 1984): ``T`` satellites in ``P`` circular orbits of equal
  inclination ``i``, ascending nodes spread evenly over 360 deg, ``S = T/P`` satellites per plane
  evenly spaced, and satellite ``s`` of plane ``p`` ahead by ``p F 360/T`` deg of argument of
  latitude relative to plane 0 (``F`` in ``0..P-1``). Each satellite is made with
  ``Satrec.sgp4init`` (WGS-72 constants, as SGP4 element sets are) from mean elements with
  eccentricity 0, argument of perigee 0 and no drag (``B* = 0``), and a Kozai mean motion
  ``n = sqrt(mu / a^3)`` with ``a = R + h`` (``R`` = :data:`EARTH_RADIUS_KM`, ``mu`` = WGS-72's
  398600.8 km^3/s^2). ``h`` is therefore a *mean* altitude: SGP4's short-period J2 terms make the
  osculating radius vary along the orbit (542-557 km for a 550 km shell at 97.5 deg).
* **Earth-fixed frame.** SGP4's output frame is TEME (true equator, mean equinox). It is turned
  into the Earth-fixed pseudo-Earth-fixed frame (PEF) by one rotation about the z axis through
  the Greenwich mean sidereal time of the IAU-82 model (Vallado 2006, Appendix C, ``gstime``)::

      T    = (JD_UT1 - 2451545.0) / 36525
      GMST = 67310.54841 + (876600 h + 8640184.812866) T + 0.093104 T^2 - 6.2e-6 T^3   [s]

  ``r_pef = R3(GMST) r_teme`` and ``v_pef = R3(GMST) v_teme - omega x r_pef``. **Polar motion is
  ignored** (PEF is used as the Earth-fixed frame; the pole wanders by < 0.5 arcsec, < 15 m on the
  ground), and UT1 = UTC + ``ut1_minus_utc_s`` (default 0; ``|UT1 - UTC| < 0.9 s`` by the rules
  of UTC; 0.9 s of Earth rotation moves the equator by 0.42 km).
* **Ground stations**: WGS-84 geodetic latitude, longitude, height (NIMA TR8350.2: ``a`` =
  6378.137 km, ``1/f`` = 298.257223563) converted to Earth-fixed Cartesian coordinates::

      N = a / sqrt(1 - e^2 sin^2 lat)
      x = (N + h) cos lat cos lon,  y = (N + h) cos lat sin lon,  z = (N (1 - e^2) + h) sin lat

  Elevation is measured from the plane normal to the ellipsoid (the geodetic horizon) at the
  station; a station sees a satellite while the elevation is at least its mask.
* **Interpolation.** :class:`Constellation` propagates all satellites once (one ``SatrecArray``
  call), on a time grid of step ``h`` (default 10 s), and answers queries at any ``t`` by cubic
  Hermite interpolation between the two neighbouring grid points. The grid velocities are the
  5-point central differences of the grid positions (``(x[-2] - 8 x[-1] + 8 x[1] - x[2]) / 12h``,
  error ``h^4 |x^(5)| / 30``), not SGP4's velocity output: SGP4's velocity is not exactly the
  derivative of its position (they differ by up to about 3e-5 km/s in LEO), which would cost
  centimetres of interpolation error. For a circular orbit of radius ``r`` and mean motion ``n``
  seen from the Earth turning at ``omega_E``, ``|x^(k)| <= r w^k`` with ``w = n + omega_E``, so
  the position error is at most::

      r w^4 h^4 / 384                 (cubic Hermite, exact end velocities)
    + (4/27) h * r w^5 h^4 / 30       (the end velocities' difference error)

  plus 10 % for SGP4's own short-period terms (J2: < 10 km at twice the orbital frequency).
  For a 550 km LEO (``w = 1.18e-3 rad/s``) this is 0.4 mm at ``h`` = 10 s, 0.03 m at 30 s and
  0.5 m at 60 s (:meth:`Constellation.interpolation_bound_km`; the tests check it against direct
  SGP4 evaluations). Velocities are the derivative of the interpolant (within 1e-6 km/s of the
  derivative of SGP4's position at 10 s).

Nodes are numbered as in :class:`~.plan.NodeTable`: ground stations first (in the order given),
then satellites.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sgp4.api import WGS72, Satrec, SatrecArray, jday

from linkstack.sims.constellation.plan import NodeTable
from linkstack.sims.engine import NS_PER_S
from linkstack.sims.geometry import EARTH_RADIUS_KM, SPEED_OF_LIGHT_KM_S

__all__ = [
    "DEFAULT_EPOCH",
    "WGS72_MU_KM3_S2",
    "WGS84_A_KM",
    "WGS84_F",
    "Constellation",
    "Epoch",
    "GroundStation",
    "NodeDelay",
    "Satellite",
    "WalkerShell",
    "epoch_jd",
    "geodetic_to_ecef_km",
    "gmst_rad",
    "parse_tle",
    "propagate_teme",
    "read_tle",
    "teme_to_ecef",
    "tle_checksum",
    "walker_satellites",
]

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
"""Default scenario epoch (``t = 0``): 2026-01-01T00:00:00Z."""
WGS84_A_KM = 6378.137
"""WGS-84 semi-major axis (NIMA TR8350.2), km."""
WGS84_F = 1.0 / 298.257223563
"""WGS-84 flattening (NIMA TR8350.2)."""
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
WGS72_MU_KM3_S2 = 398600.8
"""Earth's GM in the WGS-72 constants SGP4 element sets are defined with (Vallado 2006)."""

_JD_1949_12_31 = 2433281.5  # sgp4init counts its epoch in days since 1949 December 31 00:00 UT
_J2000_JD = 2451545.0
_SECONDS_PER_DAY = 86400.0
# GMST rate terms of the IAU-82 formula (Vallado 2006, Appendix C), seconds of time per century
_GMST_RATE = 876600.0 * 3600.0 + 8640184.812866

Epoch = tuple[float, float]
"""A UTC instant as a Julian date split in two parts ``(jd, fr)`` as ``sgp4`` takes it."""


def epoch_jd(epoch: datetime | Epoch) -> Epoch:
    """``(jd, fr)`` of a timezone-aware UTC datetime (or a ``(jd, fr)`` pair, returned as is)."""
    if isinstance(epoch, datetime):
        if epoch.tzinfo is None:
            raise ValueError("epoch: must be timezone-aware (UTC), e.g. 2026-01-01T00:00:00Z")
        e = epoch.astimezone(UTC)
        seconds = e.second + e.microsecond / 1e6
        jd, fr = jday(e.year, e.month, e.day, e.hour, e.minute, seconds)
        return float(jd), float(fr)
    jd, fr = epoch
    return float(jd), float(fr)


# -- Earth rotation ------------------------------------------------------------------------------


def gmst_rad(jd_ut1: np.ndarray | float, fr_ut1: np.ndarray | float = 0.0) -> np.ndarray:
    """Greenwich mean sidereal time (IAU-82, Vallado 2006 ``gstime``) in radians, [0, 2 pi).

    The Julian date may be split in two parts (``jd_ut1 + fr_ut1``) to keep its precision.
    """
    jd = np.asarray(jd_ut1, dtype=np.float64)
    fr = np.asarray(fr_ut1, dtype=np.float64)
    tut1 = ((jd - _J2000_JD) + fr) / 36525.0
    # The term 876600 h * T is one turn per day since J2000.0: taken as the fraction of the day
    # (J2000.0 is a whole Julian date), so that no 1e9 s sum rounds away the precision.
    seconds = ((-6.2e-6 * tut1 + 0.093104) * tut1 + 8640184.812866) * tut1 + 67310.54841
    turns = np.mod(jd, 1.0) + np.mod(fr, 1.0) + np.mod(seconds / _SECONDS_PER_DAY, 1.0)
    return np.mod(turns, 1.0) * (2.0 * math.pi)


def _gmst_rate_rad_s(jd_ut1: np.ndarray | float) -> np.ndarray:
    """Time derivative of :func:`gmst_rad`, rad/s (about 7.2921e-5)."""
    tut1 = (np.asarray(jd_ut1, dtype=np.float64) - _J2000_JD) / 36525.0
    seconds_per_century = _GMST_RATE + 2.0 * 0.093104 * tut1 - 3.0 * 6.2e-6 * tut1 * tut1
    return np.radians(seconds_per_century / 240.0) / (36525.0 * _SECONDS_PER_DAY)


def teme_to_ecef(
    r_teme: np.ndarray, v_teme: np.ndarray, jd_ut1: np.ndarray, fr_ut1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """TEME position/velocity (``(..., n_times, 3)``) to the Earth-fixed frame (PEF).

    ``r_pef = R3(GMST) r``, ``v_pef = R3(GMST) v - omega x r_pef`` with ``omega`` the GMST rate
    about z; polar motion ignored (module docstring).
    """
    theta = gmst_rad(jd_ut1, fr_ut1)
    omega = _gmst_rate_rad_s(np.asarray(jd_ut1) + np.asarray(fr_ut1))
    c, s = np.cos(theta), np.sin(theta)
    x, y, z = r_teme[..., 0], r_teme[..., 1], r_teme[..., 2]
    xe = c * x + s * y
    ye = -s * x + c * y
    vx, vy, vz = v_teme[..., 0], v_teme[..., 1], v_teme[..., 2]
    vxe = c * vx + s * vy + omega * ye
    vye = -s * vx + c * vy - omega * xe
    return np.stack((xe, ye, z), axis=-1), np.stack((vxe, vye, vz), axis=-1)


def geodetic_to_ecef_km(latitude_deg: float, longitude_deg: float, height_km: float) -> np.ndarray:
    """WGS-84 geodetic coordinates to Earth-fixed Cartesian coordinates, km."""
    lat, lon = math.radians(latitude_deg), math.radians(longitude_deg)
    sin_lat = math.sin(lat)
    n = WGS84_A_KM / math.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    return np.array(
        [
            (n + height_km) * math.cos(lat) * math.cos(lon),
            (n + height_km) * math.cos(lat) * math.sin(lon),
            (n * (1.0 - WGS84_E2) + height_km) * sin_lat,
        ]
    )


# -- ground stations and satellites --------------------------------------------------------------


@dataclass(frozen=True)
class GroundStation:
    """A ground station: WGS-84 geodetic position and an elevation mask."""

    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_km: float = 0.0
    min_elevation_deg: float = 10.0

    def __post_init__(self) -> None:
        def bad(key: str, value: object, rule: str) -> ValueError:
            return ValueError(f"station {self.name!r}.{key}: {value!r} {rule}")

        if not self.name:
            raise ValueError("station.name: must not be empty")
        if not (-90.0 <= self.latitude_deg <= 90.0):
            raise bad("latitude_deg", self.latitude_deg, "is outside -90..90")
        if not (-180.0 <= self.longitude_deg <= 360.0):
            raise bad("longitude_deg", self.longitude_deg, "is outside -180..360")
        if not (math.isfinite(self.altitude_km) and -1.0 <= self.altitude_km <= 100.0):
            raise bad("altitude_km", self.altitude_km, "is outside -1..100 km")
        if not (0.0 <= self.min_elevation_deg < 90.0):
            raise bad("min_elevation_deg", self.min_elevation_deg, "is outside 0..90 (90 excluded)")

    @property
    def ecef_km(self) -> np.ndarray:
        """Earth-fixed position (WGS-84), km."""
        return geodetic_to_ecef_km(self.latitude_deg, self.longitude_deg, self.altitude_km)

    @property
    def up(self) -> np.ndarray:
        """Unit normal of the WGS-84 ellipsoid at the station (the local geodetic zenith)."""
        lat, lon = math.radians(self.latitude_deg), math.radians(self.longitude_deg)
        return np.array(
            [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)]
        )


@dataclass(frozen=True, eq=False)
class Satellite:
    """An SGP4 element set with a name; ``plane``/``slot`` are set for Walker satellites."""

    name: str
    satrec: Satrec
    plane: int | None = None
    slot: int | None = None


# -- Walker-delta shells -------------------------------------------------------------------------


def _positive_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"walker.{key}: must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class WalkerShell:
    """A Walker-delta shell ``inclination: total/planes/phasing`` at one altitude.

    Satellite ``k`` (0-based) is slot ``k % S`` of plane ``k // S`` (``S = total / planes``); its
    right ascension of the ascending node is ``360 p / P`` deg and its argument of latitude at the
    epoch ``360 s / S + 360 F p / T`` deg (module docstring). Invalid parameters raise
    ``ValueError`` with one line naming the key, e.g. ``walker.phasing: 7 is outside 0..P-1
    (P=6)``.
    """

    total: int
    planes: int
    phasing: int
    altitude_km: float
    inclination_deg: float
    name_prefix: str = "sat"

    def __post_init__(self) -> None:
        total = _positive_int("total", self.total)
        planes = _positive_int("planes", self.planes)
        if planes > total:
            raise ValueError(f"walker.planes: {planes} is more than total={total}")
        if total % planes:
            raise ValueError(f"walker.total: {total} is not divisible by planes={planes}")
        phasing = self.phasing
        if isinstance(phasing, bool) or not isinstance(phasing, int | np.integer):
            raise ValueError(f"walker.phasing: must be an integer, got {phasing!r}")
        if not (0 <= phasing <= planes - 1):
            raise ValueError(f"walker.phasing: {phasing} is outside 0..P-1 (P={planes})")
        if not (isinstance(self.altitude_km, int | float) and 120.0 <= self.altitude_km <= 50000.0):
            raise ValueError(
                f"walker.altitude_km: {self.altitude_km!r} is outside 120..50000 km "
                "(SGP4 needs a perigee well above the atmosphere)"
            )
        if not (isinstance(self.inclination_deg, int | float) and 0 <= self.inclination_deg <= 180):
            raise ValueError(f"walker.inclination_deg: {self.inclination_deg!r} is outside 0..180")

    @property
    def per_plane(self) -> int:
        """Satellites per plane, ``S = T / P``."""
        return self.total // self.planes

    @property
    def radius_km(self) -> float:
        return EARTH_RADIUS_KM + self.altitude_km

    def raan_deg(self, plane: int) -> float:
        return 360.0 * plane / self.planes

    def argument_of_latitude_deg(self, plane: int, slot: int) -> float:
        """Argument of latitude at the epoch, degrees in [0, 360)."""
        u = 360.0 * slot / self.per_plane + 360.0 * self.phasing * plane / self.total
        return u % 360.0

    def satellite_name(self, plane: int, slot: int) -> str:
        return f"{self.name_prefix}-{plane}-{slot}"


def walker_satellites(
    shell: WalkerShell, epoch: datetime | Epoch = DEFAULT_EPOCH
) -> list[Satellite]:
    """The shell's satellites as SGP4 element sets (``Satrec.sgp4init``) at ``epoch``."""
    jd, fr = epoch_jd(epoch)
    days_since_1949 = (jd - _JD_1949_12_31) + fr
    a = shell.radius_km
    n_rad_min = math.sqrt(WGS72_MU_KM3_S2 / a**3) * 60.0
    inclination = math.radians(shell.inclination_deg)
    satellites: list[Satellite] = []
    for plane in range(shell.planes):
        raan = math.radians(shell.raan_deg(plane))
        for slot in range(shell.per_plane):
            satrec = Satrec()
            satrec.sgp4init(
                WGS72,
                "i",
                len(satellites) + 1,  # catalogue number
                days_since_1949,
                0.0,  # bstar: no drag
                0.0,  # ndot
                0.0,  # nddot
                0.0,  # eccentricity
                0.0,  # argument of perigee
                inclination,
                math.radians(shell.argument_of_latitude_deg(plane, slot)),  # mean anomaly
                n_rad_min,
                raan,
            )
            if satrec.error:
                raise ValueError(
                    f"walker: sgp4init failed for plane {plane} slot {slot} (error {satrec.error})"
                )
            satellites.append(Satellite(shell.satellite_name(plane, slot), satrec, plane, slot))
    return satellites


# -- TLE files -----------------------------------------------------------------------------------


def tle_checksum(line: str) -> int:
    """The modulo-10 checksum of a TLE line's first 68 columns (digits, and 1 for each ``-``)."""
    total = 0
    for ch in line[:68]:
        if ch.isdigit():
            total += int(ch)
        elif ch == "-":
            total += 1
    return total % 10


def _check_tle_line(line: str, number: str, source: str, lineno: int) -> None:
    where = f"{source}:{lineno}"
    if len(line) < 69:
        raise ValueError(f"{where}: TLE line {number} has {len(line)} columns, expected 69")
    if not line[68].isdigit():
        raise ValueError(f"{where}: TLE line {number} has no checksum digit in column 69")
    expected = tle_checksum(line)
    if int(line[68]) != expected:
        raise ValueError(
            f"{where}: TLE checksum error: column 69 says {line[68]}, the line sums to {expected}"
        )


def parse_tle(text: str, source: str = "<tle>") -> list[Satellite]:
    """Satellites from two-line (optionally three-line, with a name line) element sets.

    Checksums are verified; an error names ``source`` and the 1-based line number. Blank lines
    and lines starting with ``#`` are skipped; a name line may start with ``0 ``.
    """
    lines = text.splitlines()
    satellites: list[Satellite] = []
    name: str | None = None
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip()
        lineno = i + 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        if raw.startswith("1 ") and len(raw) >= 60:
            if i + 1 >= len(lines):
                raise ValueError(f"{source}:{lineno}: TLE line 1 without a line 2")
            line2 = lines[i + 1].rstrip()
            if not line2.startswith("2 "):
                raise ValueError(f"{source}:{lineno + 1}: expected TLE line 2, got {line2[:20]!r}")
            _check_tle_line(raw, "1", source, lineno)
            _check_tle_line(line2, "2", source, lineno + 1)
            if raw[2:7] != line2[2:7]:
                raise ValueError(
                    f"{source}:{lineno + 1}: catalogue number {line2[2:7].strip()} differs from "
                    f"line 1's {raw[2:7].strip()}"
                )
            try:
                satrec = Satrec.twoline2rv(raw[:69], line2[:69])
            except ValueError as exc:
                first = str(exc).splitlines()[0]
                raise ValueError(f"{source}:{lineno}: {first}") from None
            label = name if name else raw[2:7].strip()
            satellites.append(Satellite(label, satrec))
            name = None
            i += 2
            continue
        if raw.startswith("2 ") and len(raw) >= 60:
            raise ValueError(f"{source}:{lineno}: TLE line 2 without a line 1")
        if name is not None:
            raise ValueError(f"{source}:{lineno}: two name lines in a row (not a TLE file?)")
        name = raw[2:].strip() if raw.startswith("0 ") else raw.strip()
        i += 1
    if name is not None:
        raise ValueError(f"{source}:{len(lines)}: name line {name!r} without its element set")
    if not satellites:
        raise ValueError(f"{source}: no element sets found")
    return satellites


def read_tle(path: str | os.PathLike[str]) -> list[Satellite]:
    """:func:`parse_tle` of a file; errors name the file and line."""
    p = Path(path)
    return parse_tle(p.read_text(encoding="ascii", errors="replace"), source=str(p))


# -- propagation -----------------------------------------------------------------------------------


def propagate_teme(
    satellites: Sequence[Satellite] | Sequence[Satrec],
    epoch: datetime | Epoch,
    t_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """TEME positions (km) and velocities (km/s), shape ``(n_sat, n_times, 3)``.

    One vectorised ``SatrecArray`` call at the instants ``epoch + t_s``. An SGP4 error (e.g. a
    decayed orbit) raises ``ValueError`` naming the satellite and the time.
    """
    satrecs = [s.satrec if isinstance(s, Satellite) else s for s in satellites]
    jd0, fr0 = epoch_jd(epoch)
    t = np.asarray(t_s, dtype=np.float64)
    jd = np.full(t.shape, jd0)
    fr = fr0 + t / _SECONDS_PER_DAY
    err, r, v = SatrecArray(satrecs).sgp4(jd, fr)
    if err.any():
        i, k = np.argwhere(err)[0]
        label = satellites[i].name if isinstance(satellites[i], Satellite) else f"#{i}"
        raise ValueError(f"sgp4: satellite {label} failed at t={t[k]:g} s (error {err[i, k]})")
    return r, v


# -- the constellation ---------------------------------------------------------------------------


class Constellation:
    """Ground stations and satellites, with Earth-fixed geometry queried at any time.

    All satellites are propagated once (one ``SatrecArray`` call) on the grid
    ``t = 0, h, 2h, ...`` covering ``[0, horizon_s]``; positions and velocities between grid
    points come from cubic Hermite interpolation, whose error is bounded in the module docstring
    (< 1 mm for LEO at the default ``h`` = 10 s; see :meth:`interpolation_bound_km`). Queries
    outside ``[0, horizon_s]`` raise ``ValueError``.

    Node numbers follow :class:`~.plan.NodeTable`: stations ``0 .. n_stations - 1``, then
    satellites. Arguments that take a node accept its number or its name.

    Memory: one float64 array of ``n_sat x n_grid x 6`` (2,800 satellites over one hour at
    10 s: 49 MB).
    """

    def __init__(
        self,
        satellites: Sequence[Satellite],
        stations: Sequence[GroundStation] = (),
        *,
        horizon_s: float,
        step_s: float = 10.0,
        epoch: datetime | Epoch = DEFAULT_EPOCH,
        ut1_minus_utc_s: float = 0.0,
        shell: WalkerShell | None = None,
    ) -> None:
        if not satellites:
            raise ValueError("constellation: no satellites")
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"horizon_s: must be > 0, got {horizon_s!r}")
        if not (math.isfinite(step_s) and 0 < step_s <= 300):
            raise ValueError(f"step_s: {step_s!r} is outside (0, 300] s")
        if not abs(ut1_minus_utc_s) < 1.0:
            raise ValueError(f"ut1_minus_utc_s: {ut1_minus_utc_s!r} is outside -1..1 s")
        self.satellites: tuple[Satellite, ...] = tuple(satellites)
        self.stations: tuple[GroundStation, ...] = tuple(stations)
        self.shell = shell
        self.horizon_s = float(horizon_s)
        self.step_s = float(step_s)
        self.epoch: Epoch = epoch_jd(epoch)
        self.ut1_minus_utc_s = float(ut1_minus_utc_s)

        self.nodes = NodeTable()
        for st in self.stations:
            self.nodes.add(st.name, "ground")
        for sat in self.satellites:
            self.nodes.add(sat.name, "satellite")
        self.n_stations = len(self.stations)
        self.n_satellites = len(self.satellites)

        n_steps = math.ceil(self.horizon_s / self.step_s - 1e-9)
        self.times_s = np.arange(n_steps + 1, dtype=np.float64) * self.step_s
        self.n_grid = len(self.times_s)
        # two extra grid points at each end for the velocities' 5-point differences
        padded = np.arange(-2, n_steps + 3, dtype=np.float64) * self.step_s
        r_teme, v_teme = propagate_teme(self.satellites, self.epoch, padded)
        jd0, fr0 = self.epoch
        fr_ut1 = fr0 + (padded + self.ut1_minus_utc_s) / _SECONDS_PER_DAY
        pos, _ = teme_to_ecef(r_teme, v_teme, np.full_like(fr_ut1, jd0), fr_ut1)
        del r_teme, v_teme
        # (n_sat, n_grid, 2, 3): Earth-fixed position (km) and step * velocity (km), the four
        # rows of a grid interval being the Hermite basis' coefficients. The velocity is the
        # 5-point central difference of the positions (module docstring), not SGP4's own.
        self._pv = np.empty((self.n_satellites, self.n_grid, 2, 3))
        self._pv[:, :, 0] = pos[:, 2:-2]
        self._pv[:, :, 1] = (pos[:, :-4] - pos[:, 4:] + 8.0 * (pos[:, 3:-1] - pos[:, 1:-3])) / 12.0
        del pos
        self._station_pos = (
            np.array([st.ecef_km for st in self.stations]) if self.stations else np.zeros((0, 3))
        )
        self._station_up = (
            np.array([st.up for st in self.stations]) if self.stations else np.zeros((0, 3))
        )
        self._station_xyz: list[list[float]] = self._station_pos.tolist()
        self._rows: dict[tuple[int, int], list[float]] = {}  # (node, k) -> _pv[.., k:k+2]

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_walker(
        cls,
        shell: WalkerShell,
        stations: Sequence[GroundStation] = (),
        *,
        horizon_s: float,
        step_s: float = 10.0,
        epoch: datetime | Epoch = DEFAULT_EPOCH,
        ut1_minus_utc_s: float = 0.0,
    ) -> Constellation:
        """A Walker-delta shell (:func:`walker_satellites`) with its element epoch at ``t = 0``."""
        return cls(
            walker_satellites(shell, epoch),
            stations,
            horizon_s=horizon_s,
            step_s=step_s,
            epoch=epoch,
            ut1_minus_utc_s=ut1_minus_utc_s,
            shell=shell,
        )

    @classmethod
    def from_tle(
        cls,
        path: str | os.PathLike[str],
        stations: Sequence[GroundStation] = (),
        *,
        horizon_s: float,
        step_s: float = 10.0,
        epoch: datetime | Epoch | None = None,
        ut1_minus_utc_s: float = 0.0,
    ) -> Constellation:
        """Satellites of a TLE file; ``epoch`` defaults to the latest element-set epoch."""
        satellites = read_tle(path)
        if epoch is None:
            latest = max(satellites, key=lambda s: s.satrec.jdsatepoch + s.satrec.jdsatepochF)
            epoch = (latest.satrec.jdsatepoch, latest.satrec.jdsatepochF)
        return cls(
            satellites,
            stations,
            horizon_s=horizon_s,
            step_s=step_s,
            epoch=epoch,
            ut1_minus_utc_s=ut1_minus_utc_s,
        )

    # -- node helpers ---------------------------------------------------------------------------

    def node(self, node: int | str) -> int:
        """The node number of ``node`` (a number or a name)."""
        if isinstance(node, str):
            return self.nodes.number(node)
        n = int(node)
        if not 0 <= n < len(self.nodes):
            raise KeyError(f"unknown node {node!r} (0..{len(self.nodes) - 1})")
        return n

    def is_satellite(self, node: int | str) -> bool:
        return self.node(node) >= self.n_stations

    def satellite_node(self, index: int) -> int:
        """Node number of satellite ``index`` (0-based among the satellites)."""
        return self.n_stations + index

    def _station_index(self, node: int | str) -> int:
        n = self.node(node)
        if n >= self.n_stations:
            raise ValueError(f"node {self.nodes.names[n]!r} is not a ground station")
        return n

    def _satellite_index(self, node: int | str) -> int:
        n = self.node(node)
        if n < self.n_stations:
            raise ValueError(f"node {self.nodes.names[n]!r} is not a satellite")
        return n - self.n_stations

    def interpolation_bound_km(self) -> float:
        """Upper bound of the interpolation error of a position, km (module docstring)."""
        r = float(np.linalg.norm(self._pv[:, 0, 0], axis=-1).max())
        n = max(s.satrec.no_kozai for s in self.satellites) / 60.0  # rad/s
        w = n + 7.2921159e-5
        h = self.step_s
        return 1.1 * r * (w * h) ** 4 * (1.0 / 384.0 + 4.0 * w * h / (27.0 * 30.0))

    # -- interpolation --------------------------------------------------------------------------

    def _check_times(self, t: np.ndarray) -> None:
        if t.size and (not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > self.times_s[-1]):
            bad = t[~((t >= 0) & (t <= self.times_s[-1]))][0]
            raise ValueError(f"t={bad!r} s is outside the propagated span [0, {self.times_s[-1]}]")

    def satellite_states(
        self, sat: np.ndarray, t: np.ndarray, *, velocity: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Interpolated Earth-fixed states of satellites ``sat[i]`` at ``t[i]`` (broadcast).

        ``sat`` holds satellite indices (``node - n_stations``); ``t`` is not range-checked
        (times beyond the grid are extrapolated from its end intervals).
        """
        sat, t = np.broadcast_arrays(np.asarray(sat, dtype=np.intp), np.asarray(t, dtype=float))
        h = self.step_s
        k = np.clip((t / h).astype(np.intp), 0, self.n_grid - 2)
        s = ((t - k * h) / h)[..., None]
        a = self._pv[sat, k]  # (..., 2, 3): p_k, h v_k
        b = self._pv[sat, k + 1]
        s2 = s * s
        s3 = s2 * s
        pos = (
            (2 * s3 - 3 * s2 + 1) * a[..., 0, :]
            + (s3 - 2 * s2 + s) * a[..., 1, :]
            + (3 * s2 - 2 * s3) * b[..., 0, :]
            + (s3 - s2) * b[..., 1, :]
        )
        if not velocity:
            return pos, None
        vel = (
            (6 * s2 - 6 * s) * a[..., 0, :]
            + (3 * s2 - 4 * s + 1) * a[..., 1, :]
            + (6 * s - 6 * s2) * b[..., 0, :]
            + (3 * s2 - 2 * s) * b[..., 1, :]
        ) / h
        return pos, vel

    def _position_scalar(self, node: int, t: float) -> np.ndarray:
        """:meth:`position_km` for one node and one time, without the vector machinery."""
        return np.array(self._position_xyz(node, t))

    def _position_xyz(self, node: int, t: float) -> list[float]:
        """The position of one node at one time as three floats: the cubic Hermite
        interpolation of :meth:`satellite_states` in plain float arithmetic (a few
        microseconds; the light time of every frame on a hop asks for two)."""
        if node < self.n_stations:
            return self._station_xyz[node]
        if not 0.0 <= t <= self.times_s[-1]:
            raise ValueError(f"t={t!r} s is outside the propagated span [0, {self.times_s[-1]}]")
        h = self.step_s
        k = min(int(t / h), self.n_grid - 2)
        s = (t - k * h) / h
        s2 = s * s
        s3 = s2 * s
        w0, w1, w2, w3 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, 3 * s2 - 2 * s3, s3 - s2
        rows = self._rows.get((node, k))
        if rows is None:
            if len(self._rows) >= 1 << 16:
                self._rows.clear()
            rows = self._rows[(node, k)] = self._pv[node - self.n_stations, k : k + 2].ravel(
            ).tolist()
        ax, ay, az, avx, avy, avz, bx, by, bz, bvx, bvy, bvz = rows
        return [w0 * ax + w1 * avx + w2 * bx + w3 * bvx,
                w0 * ay + w1 * avy + w2 * by + w3 * bvy,
                w0 * az + w1 * avz + w2 * bz + w3 * bvz]

    def grid_states(self, nodes: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact (SGP4) Earth-fixed positions and velocities of ``nodes[i]`` at grid index ``k[i]``.

        Stations have zero velocity.
        """
        nodes, k = np.broadcast_arrays(np.asarray(nodes, np.intp), np.asarray(k, np.intp))
        sat = nodes >= self.n_stations
        if sat.all():
            pv = self._pv[nodes - self.n_stations, k]
            return pv[..., 0, :], pv[..., 1, :] / self.step_s
        pos = np.empty((*nodes.shape, 3))
        vel = np.zeros((*nodes.shape, 3))
        pv = self._pv[nodes[sat] - self.n_stations, k[sat]]
        pos[sat] = pv[..., 0, :]
        vel[sat] = pv[..., 1, :] / self.step_s
        pos[~sat] = self._station_pos[nodes[~sat]]
        return pos, vel

    def states(
        self, nodes: np.ndarray, t: np.ndarray, *, velocity: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Earth-fixed positions (km) and velocities (km/s) of ``nodes[i]`` at ``t[i]``.

        Vectorised over broadcast arrays of node numbers and times; stations have zero velocity.
        """
        nodes, t = np.broadcast_arrays(np.asarray(nodes, dtype=np.intp), np.asarray(t, float))
        self._check_times(t)
        if nodes.size and (nodes.min() < 0 or nodes.max() >= len(self.nodes)):
            raise KeyError("node number out of range")
        is_sat = nodes >= self.n_stations
        pos = np.empty((*nodes.shape, 3))
        vel = np.zeros((*nodes.shape, 3)) if velocity else None
        if is_sat.all():
            return self.satellite_states(nodes - self.n_stations, t, velocity=velocity)
        pos[~is_sat] = self._station_pos[nodes[~is_sat]]
        if is_sat.any():
            sat = nodes[is_sat] - self.n_stations
            p, v = self.satellite_states(sat, t[is_sat], velocity=velocity)
            pos[is_sat] = p
            if vel is not None and v is not None:
                vel[is_sat] = v
        return pos, vel

    # -- queries --------------------------------------------------------------------------------

    def position_km(self, node: int | str, t: float | np.ndarray) -> np.ndarray:
        """Earth-fixed position of ``node`` at ``t`` (shape ``(3,)``, or ``t.shape + (3,)``)."""
        if isinstance(t, float | int):
            return self._position_scalar(self.node(node), float(t))
        pos, _ = self.states(np.asarray(self.node(node)), np.asarray(t, float), velocity=False)
        return pos

    def velocity_km_s(self, node: int | str, t: float | np.ndarray) -> np.ndarray:
        """Earth-fixed velocity of ``node`` at ``t`` (zero for a station)."""
        _, vel = self.states(np.asarray(self.node(node)), np.asarray(t, float))
        assert vel is not None
        return vel

    def satellite_positions_km(self, t: float) -> np.ndarray:
        """Earth-fixed positions of all satellites at ``t``, shape ``(n_satellites, 3)``."""
        t = float(t)
        if not 0.0 <= t <= self.times_s[-1]:
            raise ValueError(f"t={t!r} s is outside the propagated span [0, {self.times_s[-1]}]")
        h = self.step_s
        k = min(int(t / h), self.n_grid - 2)
        s = (t - k * h) / h
        s2 = s * s
        s3 = s2 * s
        w = np.array([2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, 3 * s2 - 2 * s3, s3 - s2])
        rows = self._pv[:, k : k + 2].reshape(self.n_satellites, 4, 3)
        return np.einsum("j,njk->nk", w, rows)

    def range_km(self, a: int | str, b: int | str, t: float | np.ndarray) -> float | np.ndarray:
        """Distance between nodes ``a`` and ``b`` (stations or satellites) at ``t``, km.

        A float ``t`` takes a scalar path (a few microseconds); an array ``t`` is vectorised.
        """
        if isinstance(t, float | int):
            pb = self._position_xyz(self.node(b), float(t))
            pa = self._position_xyz(self.node(a), float(t))
            return math.dist(pa, pb)
        tt = np.asarray(t, dtype=float)
        pa, _ = self.states(np.asarray(self.node(a)), tt, velocity=False)
        pb, _ = self.states(np.asarray(self.node(b)), tt, velocity=False)
        d = np.linalg.norm(pb - pa, axis=-1)
        return float(d) if d.ndim == 0 else d

    def light_time_s(self, a: int | str, b: int | str, t: float | np.ndarray) -> float | np.ndarray:
        """One-way light time between ``a`` and ``b`` at ``t`` (ends' motion ignored), s."""
        return self.range_km(a, b, t) / SPEED_OF_LIGHT_KM_S

    def elevation_deg(
        self, station: int | str, sat: int | str, t: float | np.ndarray
    ) -> float | np.ndarray:
        """Elevation of satellite ``sat`` above the geodetic horizon of ``station`` at ``t``."""
        j = self._station_index(station)
        i = self._satellite_index(sat)
        if isinstance(t, float | int):
            d = self._position_scalar(self.n_stations + i, float(t)) - self._station_pos[j]
            return math.degrees(math.asin(float(d @ self._station_up[j]) / math.sqrt(d @ d)))
        tt = np.asarray(t, dtype=float)
        self._check_times(np.atleast_1d(tt))
        pos, _ = self.satellite_states(np.asarray(i), tt, velocity=False)
        d = pos - self._station_pos[j]
        el = np.degrees(np.arcsin(d @ self._station_up[j] / np.linalg.norm(d, axis=-1)))
        return float(el) if el.ndim == 0 else el

    def elevations_deg(self, station: int | str, t: float) -> np.ndarray:
        """Elevation of every satellite seen from ``station`` at ``t``, shape ``(n_sat,)``."""
        j = self._station_index(station)
        d = self.satellite_positions_km(t) - self._station_pos[j]
        return np.degrees(np.arcsin(d @ self._station_up[j] / np.linalg.norm(d, axis=-1)))

    def visible(self, station: int | str, t: float) -> list[int]:
        """Node numbers of the satellites at or above ``station``'s mask at ``t``, highest first."""
        j = self._station_index(station)
        el = self.elevations_deg(j, t)
        idx = np.flatnonzero(el >= self.stations[j].min_elevation_deg)
        idx = idx[np.argsort(-el[idx], kind="stable")]
        return [self.n_stations + int(i) for i in idx]

    def geocentric_latitude_deg(self, node: int | str, t: float | np.ndarray) -> float | np.ndarray:
        """Geocentric latitude of ``node`` at ``t``, degrees."""
        pos = self.position_km(node, t)
        lat = np.degrees(np.arcsin(pos[..., 2] / np.linalg.norm(pos, axis=-1)))
        return float(lat) if lat.ndim == 0 else lat

    def delay(self, a: int | str, b: int | str) -> NodeDelay:
        """A ``link.Propagation`` (``delay_ns(t_ns)``) for the light time from ``a`` to ``b``."""
        return NodeDelay(self, self.node(a), self.node(b))

    # -- grid access (for contacts.py) ----------------------------------------------------------

    @property
    def station_positions_km(self) -> np.ndarray:
        """Stations' Earth-fixed positions, ``(n_stations, 3)``."""
        return self._station_pos.copy()

    @property
    def grid_positions_km(self) -> np.ndarray:
        """Satellites' Earth-fixed positions on the grid, ``(n_sat, n_grid, 3)`` (read-only)."""
        view = self._pv[:, :, 0]
        view.flags.writeable = False
        return view

    @property
    def grid_velocities_km_s(self) -> np.ndarray:
        """Satellites' Earth-fixed velocities on the grid, ``(n_sat, n_grid, 3)`` (a copy)."""
        return self._pv[:, :, 1] / self.step_s


@dataclass(frozen=True)
class NodeDelay:
    """Light time between two nodes of a :class:`Constellation`, as a ``link.Propagation``.

    ``delay_ns(t_ns)`` is the range at the departure time over ``c`` (the motion of the ends
    during the flight is ignored, < 0.01 % for LEO; see :mod:`linkstack.sims.geometry`).
    """

    constellation: Constellation = field(repr=False)
    a: int
    b: int

    def delay_ns(self, t_ns: int) -> int:
        t = t_ns / NS_PER_S
        con = self.constellation  # (a and b were checked when the delay was made)
        d = math.dist(con._position_xyz(self.a, t), con._position_xyz(self.b, t))
        return round(d / SPEED_OF_LIGHT_KM_S * NS_PER_S)

    def delay_ns_array(self, t_ns: np.ndarray) -> np.ndarray:
        d = self.constellation.range_km(self.a, self.b, np.asarray(t_ns, np.float64) / NS_PER_S)
        return np.rint(np.asarray(d) / SPEED_OF_LIGHT_KM_S * NS_PER_S).astype(np.int64)
