"""Contact windows from constellation geometry, the contact plan, and its ION export.

Ground <-> satellite windows
    A station sees a satellite while the satellite's elevation above the station's geodetic
    horizon is at least the station's mask (:class:`~.orbits.GroundStation`). Windows are found
    from the sign of ``f = d . up - sin(mask) |d|`` (``d`` the station-to-satellite vector,
    ``up`` the ellipsoid normal; ``f >= 0`` exactly when the elevation is >= the mask) on the
    constellation's grid; each sign change is refined by bisection on the interpolated positions
    (error < 1 mm, see :mod:`.orbits`) to better than 1e-6 s. A pass that rises above the mask
    only between two grid points is not lost: at every grid local maximum of ``f`` within a few
    km of the mask the true maximum is located (bisection on ``df/dt``) and, if it is above
    the mask, its two crossings are refined as well.

Inter-satellite links (ISLs)
    The topology says which pairs may have a link (:func:`ring_links`: each satellite of one
    plane to its two neighbours; :func:`plus_grid_links`: "+Grid", the two intra-plane
    neighbours and the satellites of the same slot in the two adjacent planes). The geometry says
    when a link is usable (:class:`IslPolicy`): range at most ``max_range_km``; the straight line
    of sight at least ``min_grazing_km`` above a spherical Earth of radius ``R`` = 6378.137 km
    (the WGS-84 equatorial radius, i.e. the Earth's largest radius: conservative near the poles,
    where the ellipsoid is up to 21 km lower); and, for inter-plane links only, both ends at most
    ``max_latitude_deg`` (geocentric) from the equator, since near the poles adjacent planes cross
    and the pointing of cross-plane terminals changes too fast (e.g. Handley, *Delay is Not an
    Option: Low Latency Routing in Space*, HotNets 2018). Transitions are found on the grid and
    refined by bisection (to < 1e-5 s); an outage or a window shorter than one grid step
    between two grid points may be missed (these conditions change over minutes).

Contact plan (:func:`build_contact_plan`)
    Every window gives directed contacts both ways (CCSDS 734.3-B-1, Schedule-Aware Bundle
    Routing: a contact is directed). A long window is cut at the multiples of ``max_segment_s``
    (so all segments of the plan share their boundaries, and with an integer ``max_segment_s``
    the integer-second ION export stays contiguous); each segment carries the **largest** one-way
    light time over the segment (range at both ends and at any interior maximum of the range,
    found from the sign changes of the range rate, over ``c``), so an arrival time computed
    from the plan is never earlier than the physics allows. Light time is range over ``c``; the
    motion of the ends during the flight of the signal is ignored (< 0.01 % for LEO, see
    :mod:`linkstack.sims.geometry`).

ION export (:func:`to_ion`)
    ION's ``ionadmin`` contact-plan commands (ION's ``ionrc(5)`` manual page):
    ``a contact +START +STOP FROM TO RATE`` with RATE in **bytes** per second and
    ``a range +START +STOP FROM TO OWLT`` with OWLT in whole seconds; ``+S`` is a time relative
    to ION's reference time, in whole seconds. ION node numbers start at 1, so linkstack node
    ``n`` is ION node ``n + 1``. Conversions never promise more than the plan: START is rounded
    up, STOP down (a contact that vanishes is left out), RATE rounded down, OWLT rounded **up**
    (every LEO link therefore gets an ION range of 1 s).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from linkstack.fast_dataclass import fast_new
from linkstack.sims.constellation.orbits import Constellation
from linkstack.sims.constellation.plan import Contact, ContactPlan
from linkstack.sims.geometry import EARTH_RADIUS_KM, SPEED_OF_LIGHT_KM_S

__all__ = [
    "IslLink",
    "IslPolicy",
    "Window",
    "build_contact_plan",
    "grazing_height_km",
    "ground_windows",
    "isl_available",
    "isl_windows",
    "plus_grid_links",
    "ring_links",
    "segment_windows",
    "to_ion",
    "topology_links",
    "write_ion",
]

_BISECTIONS = 30  # a 10 s bracket halved 30 times: < 1e-8 s
# Grid maxima of f this close below the mask are examined. Between grid points f can exceed its
# grid samples by at most |f''| h^2 / 8 and |f''| < 0.2 km/s^2 for any LEO pass (|f''| <= the
# relative acceleration, ~0.01 km/s^2, plus sin(mask) times v^2 / range, < 0.12 km/s^2 at 500 km).
_NEAR_MISS_KM = 5.0
_BLOCK_SAMPLES = 1 << 18  # samples per block of windows (bounds the memory of the plan builder)
_BLOCK_LINKS = 512  # links per block in isl_windows
_NEW_CONTACT = fast_new(Contact)  # a Contact from checked fields (build_contact_plan)
_NEAR_MISS_KM_S2 = 0.2 / 8.0


# -- topology ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IslLink:
    """A possible inter-satellite link between satellite nodes ``a < b`` (node numbers)."""

    a: int
    b: int
    inter_plane: bool = False


def ring_links(constellation: Constellation) -> list[IslLink]:
    """Each satellite linked to the next and previous one, in node order, closing the ring.

    Meant for one orbital plane (a Walker shell with ``planes = 1``, or a TLE file listing one
    plane's satellites in order along the orbit).
    """
    shell = constellation.shell
    if shell is not None and shell.planes != 1:
        raise ValueError(f"topology: ring needs one plane, the shell has {shell.planes}")
    n = constellation.n_satellites
    if n < 2:
        return []
    first = constellation.n_stations
    pairs = {tuple(sorted((first + i, first + (i + 1) % n))) for i in range(n)}
    return [IslLink(a, b, False) for a, b in sorted(pairs)]


def plus_grid_links(constellation: Constellation, *, seam: bool = True) -> list[IslLink]:
    """The "+Grid" links of a Walker shell: intra-plane neighbours and same-slot cross-plane links.

    Satellite ``(p, s)`` links to ``(p, s +- 1 mod S)`` and to ``(p + 1, s)``. Across the seam
    (plane ``P - 1`` to plane 0, included when ``seam``) the partner is ``(0, s + F mod S)``:
    continuing the Walker phasing one more plane lands exactly there (plane ``P`` would be
    plane 0 with every slot advanced by ``F 360 / S``), so the seam link has the same geometry as
    the other cross-plane links. With ``P = 2`` the two planes are linked once (no seam).
    """
    shell = constellation.shell
    if shell is None:
        raise ValueError("topology: +grid needs a Walker shell (Constellation.from_walker)")
    n_planes, per_plane, phasing = shell.planes, shell.per_plane, shell.phasing
    first = constellation.n_stations

    def node(p: int, s: int) -> int:
        return first + p * per_plane + s

    pairs: dict[tuple[int, int], bool] = {}
    for p in range(n_planes):
        for s in range(per_plane):
            if per_plane > 1:
                a, b = sorted((node(p, s), node(p, (s + 1) % per_plane)))
                pairs.setdefault((a, b), False)
            if p + 1 < n_planes:
                a, b = sorted((node(p, s), node(p + 1, s)))
                pairs.setdefault((a, b), True)
            elif seam and n_planes > 2:
                a, b = sorted((node(p, s), node(0, (s + phasing) % per_plane)))
                pairs.setdefault((a, b), True)
    return [IslLink(a, b, inter) for (a, b), inter in sorted(pairs.items())]


def topology_links(
    constellation: Constellation, topology: str, *, seam: bool = True
) -> list[IslLink]:
    """Links of a named topology: ``"ring"``, ``"+grid"`` or ``"none"``."""
    if topology == "ring":
        return ring_links(constellation)
    if topology in ("+grid", "plus-grid", "grid"):
        return plus_grid_links(constellation, seam=seam)
    if topology == "none":
        return []
    raise ValueError(f"topology: {topology!r} is not one of 'ring', '+grid', 'none'")


# -- ISL availability ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IslPolicy:
    """When a topology link is usable (module docstring).

    Args:
        max_range_km: the terminals' longest range.
        min_grazing_km: lowest altitude the line of sight may pass above the (spherical) Earth.
        max_latitude_deg: cross-plane links are off while either end is farther from the
            equator (geocentric latitude); ``None`` = no limit.
    """

    max_range_km: float = 6000.0
    min_grazing_km: float = 80.0
    max_latitude_deg: float | None = 75.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_range_km) and self.max_range_km > 0):
            raise ValueError(f"isl.max_range_km: {self.max_range_km!r} must be > 0")
        if not (math.isfinite(self.min_grazing_km) and self.min_grazing_km >= 0):
            raise ValueError(f"isl.min_grazing_km: {self.min_grazing_km!r} must be >= 0")
        lat = self.max_latitude_deg
        if lat is not None and not (0 < lat <= 90):
            raise ValueError(f"isl.max_latitude_deg: {lat!r} is outside (0, 90]")


def grazing_height_km(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Lowest height above the sphere of radius ``R`` of the segment ``p1``-``p2`` (``(..., 3)``).

    The point of the segment closest to the Earth's centre is ``p1 + u (p2 - p1)`` with
    ``u = clip(-p1 . (p2 - p1) / |p2 - p1|^2, 0, 1)``.
    """
    d = p2 - p1
    dd = np.einsum("...i,...i->...", d, d)
    u = np.clip(-np.einsum("...i,...i->...", p1, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    closest = p1 + u[..., None] * d
    return np.linalg.norm(closest, axis=-1) - EARTH_RADIUS_KM


def _available(pa: np.ndarray, pb: np.ndarray, inter: np.ndarray, policy: IslPolicy) -> np.ndarray:
    """Availability for positions ``pa``, ``pb`` (``(..., 3)``); ``inter`` broadcasts to ``...``."""
    rng = np.linalg.norm(pb - pa, axis=-1)
    ok = (rng <= policy.max_range_km) & (grazing_height_km(pa, pb) >= policy.min_grazing_km)
    if policy.max_latitude_deg is not None:
        limit = math.sin(math.radians(policy.max_latitude_deg))
        sin_a = np.abs(pa[..., 2]) / np.linalg.norm(pa, axis=-1)
        sin_b = np.abs(pb[..., 2]) / np.linalg.norm(pb, axis=-1)
        ok &= ~np.asarray(inter, dtype=bool) | ((sin_a <= limit) & (sin_b <= limit))
    return ok


def isl_available(
    constellation: Constellation,
    link: IslLink,
    t: float | np.ndarray,
    policy: IslPolicy | None = None,
) -> bool | np.ndarray:
    """Whether ``link`` is usable at time(s) ``t`` under ``policy`` (default :class:`IslPolicy`)."""
    policy = policy or IslPolicy()
    pa = constellation.position_km(link.a, t)
    pb = constellation.position_km(link.b, t)
    ok = _available(pa, pb, np.asarray(link.inter_plane), policy)
    return bool(ok) if ok.ndim == 0 else ok


# -- windows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Nodes ``a`` and ``b`` can communicate (both ways) during ``[start_s, end_s)``.

    For a ground window ``a`` is the station and ``b`` the satellite.
    """

    a: int
    b: int
    start_s: float
    end_s: float
    kind: str  # "ground" or "isl"


def _pair_windows(
    above0: np.ndarray,
    above_end: np.ndarray,
    ev_pair: np.ndarray,
    ev_t: np.ndarray,
    ev_rise: np.ndarray,
    t_end: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair rise/set events into windows ``(pair, start, end)``; pairs up at 0 / at the end
    get a virtual rise at 0 / set at ``t_end``."""
    start_pairs = np.flatnonzero(above0)
    end_pairs = np.flatnonzero(above_end)
    pair = np.concatenate([start_pairs, ev_pair, end_pairs])
    t = np.concatenate([np.zeros(len(start_pairs)), ev_t, np.full(len(end_pairs), t_end)])
    rise = np.concatenate(
        [np.ones(len(start_pairs), bool), ev_rise, np.zeros(len(end_pairs), bool)]
    )
    order = np.lexsort((rise, t, pair))  # by pair, time; a set before a rise at equal times
    pair, t, rise = pair[order], t[order], rise[order]
    if len(pair) % 2 or not (
        rise[0::2].all() and not rise[1::2].any() and np.array_equal(pair[0::2], pair[1::2])
    ):
        raise RuntimeError("window detection: rise and set events do not alternate")
    return pair[0::2], t[0::2], t[1::2]


def _bisect(
    predicate: Callable[[np.ndarray], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    value_at_lo: np.ndarray,
    iterations: int = _BISECTIONS,
) -> np.ndarray:
    """Vectorised bisection: the instant in each ``[lo, hi]`` where ``predicate`` flips."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        same = predicate(mid) == value_at_lo
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    return 0.5 * (lo + hi)


def _margin(
    c: Constellation,
    sat: np.ndarray,
    st: np.ndarray,
    up: np.ndarray,
    sin_mask: float,
    t: np.ndarray,
) -> np.ndarray:
    """``f = d . up - sin(mask) |d|`` at ``t``: >= 0 when at or above the mask."""
    p, _ = c.satellite_states(sat, t, velocity=False)
    d = p - st
    return d @ up - sin_mask * np.linalg.norm(d, axis=-1)


def _above(
    c: Constellation,
    sat: np.ndarray,
    st: np.ndarray,
    up: np.ndarray,
    sin_mask: float,
    t: np.ndarray,
) -> np.ndarray:
    return _margin(c, sat, st, up, sin_mask, t) >= 0.0


def _margin_rising(
    c: Constellation,
    sat: np.ndarray,
    st: np.ndarray,
    up: np.ndarray,
    sin_mask: float,
    t: np.ndarray,
) -> np.ndarray:
    """Whether ``df/dt > 0`` (see :func:`_margin`)."""
    p, v = c.satellite_states(sat, t)
    assert v is not None
    d = p - st
    rate = v @ up - sin_mask * np.einsum("...i,...i->...", d, v) / np.linalg.norm(d, axis=-1)
    return rate > 0.0


def ground_windows(constellation: Constellation) -> list[Window]:
    """Every window in which a station sees a satellite at or above its mask, ``[0, horizon)``.

    Sorted by start time, then station, then satellite.
    """
    c = constellation
    h = c.step_s
    grid_t = c.times_s
    n_t = len(grid_t)
    pos = c.grid_positions_km
    near_miss_km = max(_NEAR_MISS_KM, _NEAR_MISS_KM_S2 * h * h)
    windows: list[Window] = []
    for j, station in enumerate(c.stations):
        st = station.ecef_km
        up = station.up
        sin_mask = math.sin(math.radians(station.min_elevation_deg))
        d = pos - st
        f = d @ up - sin_mask * np.linalg.norm(d, axis=-1)  # (n_sat, n_t)
        above = f >= 0.0

        # sign changes on the grid
        sat_i, k = np.nonzero(above[:, 1:] != above[:, :-1])
        lo_t, hi_t = grid_t[k], grid_t[k + 1]
        rise = ~above[sat_i, k]
        # near misses: a grid local maximum of f below the mask, but close enough that f may
        # exceed it between the grid points (see _NEAR_MISS_KM)
        if n_t >= 3:
            fm, f0, fp = f[:, :-2], f[:, 1:-1], f[:, 2:]
            cand = (f0 < 0) & (f0 > -near_miss_km) & (f0 >= fm) & (f0 > fp)
            ms, mk = np.nonzero(cand)
            mk = mk + 1
            if len(ms):
                # the maximum is where df/dt turns negative within [t_{k-1}, t_{k+1}]
                lo = grid_t[mk - 1]
                hi = grid_t[mk + 1]
                rising = partial(_margin_rising, c, ms, st, up, sin_mask)
                t_max = _bisect(rising, lo, hi, np.ones(len(ms), bool))
                hit = _margin(c, ms, st, up, sin_mask, t_max) >= 0
                ms, t_max, lo, hi = ms[hit], t_max[hit], lo[hit], hi[hit]
                sat_i = np.concatenate([sat_i, ms, ms])
                lo_t = np.concatenate([lo_t, lo, t_max])
                hi_t = np.concatenate([hi_t, t_max, hi])
                rise = np.concatenate([rise, np.ones(len(ms), bool), np.zeros(len(ms), bool)])
        above_at = partial(_above, c, sat_i, st, up, sin_mask)
        t_cross = _bisect(above_at, lo_t, hi_t, ~rise)
        sats, starts, ends = _pair_windows(
            above[:, 0], above[:, -1], sat_i, t_cross, rise, float(grid_t[-1])
        )
        for s, a, b in zip(sats.tolist(), starts.tolist(), ends.tolist(), strict=True):
            b = min(b, c.horizon_s)
            if b > a and a < c.horizon_s:
                windows.append(Window(j, c.satellite_node(s), a, b, "ground"))
    windows.sort(key=lambda w: (w.start_s, w.a, w.b))
    return windows


def isl_windows(
    constellation: Constellation,
    links: Sequence[IslLink],
    policy: IslPolicy | None = None,
) -> list[Window]:
    """Windows in which each of ``links`` is usable under ``policy``, over ``[0, horizon)``."""
    c = constellation
    policy = policy or IslPolicy()
    if not links:
        return []
    a = np.array([link.a for link in links], dtype=np.intp)
    b = np.array([link.b for link in links], dtype=np.intp)
    inter = np.array([link.inter_plane for link in links], dtype=bool)
    if (a < c.n_stations).any() or (b < c.n_stations).any():
        raise ValueError("isl: a link end is a ground station")
    grid_t = c.times_s
    pos = c.grid_positions_km
    ia, ib = a - c.n_stations, b - c.n_stations
    ok = np.empty((len(links), len(grid_t)), dtype=bool)
    for first in range(0, len(links), _BLOCK_LINKS):
        blk = slice(first, first + _BLOCK_LINKS)
        ok[blk] = _available(pos[ia[blk]], pos[ib[blk]], inter[blk, None], policy)
    li, k = np.nonzero(ok[:, 1:] != ok[:, :-1])
    rise = ~ok[li, k]

    def avail_at(tm: np.ndarray) -> np.ndarray:
        pa, _ = c.satellite_states(ia[li], tm, velocity=False)
        pb, _ = c.satellite_states(ib[li], tm, velocity=False)
        return _available(pa, pb, inter[li], policy)

    t_cross = _bisect(avail_at, grid_t[k], grid_t[k + 1], ~rise)
    pairs, starts, ends = _pair_windows(ok[:, 0], ok[:, -1], li, t_cross, rise, float(grid_t[-1]))
    windows = []
    for p, s, e in zip(pairs.tolist(), starts.tolist(), ends.tolist(), strict=True):
        e = min(e, c.horizon_s)
        if e > s and s < c.horizon_s:
            windows.append(Window(int(a[p]), int(b[p]), s, e, "isl"))
    windows.sort(key=lambda w: (w.start_s, w.a, w.b))
    return windows


# -- segments and their largest light time -------------------------------------------------------


def segment_windows(
    windows: Sequence[Window], max_segment_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut windows at the multiples of ``max_segment_s``: ``(window_index, start, end)`` arrays.

    Segments of one window are consecutive and in time order.
    """
    if not (math.isfinite(max_segment_s) and max_segment_s > 0):
        raise ValueError(f"max_segment_s: {max_segment_s!r} must be > 0")
    ws = np.array([w.start_s for w in windows], dtype=float)
    we = np.array([w.end_s for w in windows], dtype=float)
    first_cut = np.floor(ws / max_segment_s) + 1  # index of the first multiple after the start
    last_cut = np.ceil(we / max_segment_s) - 1  # index of the last multiple before the end
    n_cuts = np.maximum(last_cut - first_cut + 1, 0).astype(np.intp)
    n_seg = n_cuts + 1
    w_idx = np.repeat(np.arange(len(windows)), n_seg)
    offset = np.arange(len(w_idx)) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)  # 0.. in window
    # segment i of a window starts at its start (i = 0) or at cut first_cut + i - 1
    starts = np.where(offset == 0, ws[w_idx], (first_cut[w_idx] + offset - 1) * max_segment_s)
    is_last = offset == n_seg[w_idx] - 1
    ends = np.where(is_last, we[w_idx], (first_cut[w_idx] + offset) * max_segment_s)
    return w_idx, starts, ends


def _max_range_km(
    c: Constellation,
    wa: np.ndarray,
    wb: np.ndarray,
    ws: np.ndarray,
    we: np.ndarray,
    seg_w: np.ndarray,
    seg_start: np.ndarray,
    seg_end: np.ndarray,
) -> np.ndarray:
    """Largest range over each segment (windows ``wa``, ``wb``, ``ws``, ``we``)."""
    n_seg = len(seg_w)
    if n_seg == 0:
        return np.zeros(0)
    na, nb = wa[seg_w], wb[seg_w]

    def rng(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
        pa, _ = c.states(a, t, velocity=False)
        pb, _ = c.states(b, t, velocity=False)
        return np.linalg.norm(pb - pa, axis=-1)

    def rate(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
        pa, va = c.states(a, t)
        pb, vb = c.states(b, t)
        assert va is not None and vb is not None
        d = pb - pa
        return np.einsum("...i,...i->...", d, vb - va)  # range * range rate: same sign

    best = np.maximum(rng(na, nb, seg_start), rng(na, nb, seg_end))

    # sample each window at its ends and at the grid points inside it, in blocks of windows
    h = c.step_s
    k0 = np.floor(ws / h).astype(np.intp) + 1
    k1 = np.ceil(we / h).astype(np.intp) - 1
    n_samp = np.maximum(k1 - k0 + 1, 0) + 2
    cum = np.cumsum(n_samp)
    turn_w: list[np.ndarray] = []
    turn_lo: list[np.ndarray] = []
    turn_hi: list[np.ndarray] = []
    first = 0
    while first < len(ws):
        done = cum[first - 1] if first else 0
        last = max(int(np.searchsorted(cum, done + _BLOCK_SAMPLES, side="right")), first + 1)
        w_ids = np.arange(first, last)
        sw = np.repeat(w_ids, n_samp[first:last])
        off = np.arange(len(sw)) - np.repeat(
            cum[first:last] - n_samp[first:last] - done, n_samp[first:last]
        )
        k = k0[sw] + off - 1
        is_end = off == n_samp[sw] - 1
        inner = (off > 0) & ~is_end
        t = np.where(off == 0, ws[sw], np.where(is_end, we[sw], k * h))
        t = np.minimum(t, c.times_s[-1])
        rr = np.empty(len(t))
        at_ends = ~inner
        rr[at_ends] = rate(wa[sw[at_ends]], wb[sw[at_ends]], t[at_ends])
        # at grid points: the exact grid states, without interpolation
        ki = np.clip(k[inner], 0, len(c.times_s) - 1)
        pa, va = c.grid_states(wa[sw[inner]], ki)
        pb, vb = c.grid_states(wb[sw[inner]], ki)
        rr[inner] = np.einsum("...i,...i->...", pb - pa, vb - va)
        # a local maximum of the range where the rate turns from + to - between two samples
        turn = np.flatnonzero((rr[:-1] > 0) & (rr[1:] <= 0) & (sw[:-1] == sw[1:]))
        turn_w.append(sw[turn])
        turn_lo.append(t[turn])
        turn_hi.append(t[turn + 1])
        first = last
    tw = np.concatenate(turn_w)
    if len(tw):
        tmax = _bisect(
            lambda tm: rate(wa[tw], wb[tw], tm) > 0,
            np.concatenate(turn_lo),
            np.concatenate(turn_hi),
            np.ones(len(tw), bool),
        )
        rmax = rng(wa[tw], wb[tw], tmax)
        # the segment of window tw containing tmax
        span = float(c.times_s[-1]) + 1.0
        key = seg_w * span + seg_start
        idx = np.searchsorted(key, tw * span + tmax, side="right") - 1
        idx = np.clip(idx, 0, n_seg - 1)
        np.maximum.at(best, idx, np.where(seg_w[idx] == tw, rmax, 0.0))
    return best


# -- the plan --------------------------------------------------------------------------------------


def build_contact_plan(
    constellation: Constellation,
    links: Sequence[IslLink] = (),
    *,
    ground_rate_bps: float,
    isl_rate_bps: float,
    downlink_rate_bps: float | None = None,
    policy: IslPolicy | None = None,
    max_segment_s: float = 60.0,
    windows: Iterable[Window] | None = None,
) -> ContactPlan:
    """The directed contact plan over ``[0, horizon)`` (module docstring).

    Ground windows give station -> satellite contacts at ``ground_rate_bps`` and satellite ->
    station contacts at ``downlink_rate_bps`` (default: ``ground_rate_bps``); ISL windows of
    ``links`` (under ``policy``) give both directions at ``isl_rate_bps``. Each window is cut at
    the multiples of ``max_segment_s`` and each segment's ``owlt_s`` is its largest light time.
    ``windows`` replaces the computed windows (ground and ISL) if given. Contacts are sorted by
    start time, then sender, then receiver.
    """
    c = constellation
    for key, value in (("ground_rate_bps", ground_rate_bps), ("isl_rate_bps", isl_rate_bps)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{key}: {value!r} must be > 0")
    down = ground_rate_bps if downlink_rate_bps is None else downlink_rate_bps
    if not (math.isfinite(down) and down > 0):
        raise ValueError(f"downlink_rate_bps: {down!r} must be > 0")
    wins = list(windows) if windows is not None else []
    if windows is None:
        wins = ground_windows(c) + isl_windows(c, links, policy)
    if not wins:
        return ContactPlan(c.nodes, [], c.horizon_s)
    seg_w, s0, s1 = segment_windows(wins, max_segment_s)
    wa = np.array([w.a for w in wins], dtype=np.intp)
    wb = np.array([w.b for w in wins], dtype=np.intp)
    ws = np.array([w.start_s for w in wins])
    we = np.array([w.end_s for w in wins])
    owlt = _max_range_km(c, wa, wb, ws, we, seg_w, s0, s1) / SPEED_OF_LIGHT_KM_S
    ground = np.array([w.kind == "ground" for w in wins])[seg_w]
    fwd_rate = np.where(ground, ground_rate_bps, isl_rate_bps)
    back_rate = np.where(ground, down, isl_rate_bps)
    # both directions, sorted by (start, sender, receiver) before the objects are made
    start = np.concatenate([s0, s0])
    end = np.concatenate([s1, s1])
    frm = np.concatenate([wa[seg_w], wb[seg_w]])
    to = np.concatenate([wb[seg_w], wa[seg_w]])
    rate = np.concatenate([fwd_rate, back_rate])
    light = np.concatenate([owlt, owlt])
    order = np.lexsort((to, frm, start))
    # Contact.__post_init__'s checks, on the columns at once (then each is made unchecked)
    bad = np.flatnonzero(~(end > start) | (light < 0) | ~(rate > 0))
    if len(bad):
        i = int(bad[0])
        Contact(float(start[i]), float(end[i]), int(frm[i]), int(to[i]), float(rate[i]),
                float(light[i]))  # raises the constructor's own error
    make = _NEW_CONTACT
    contacts = [
        make(*row)
        for row in zip(
            start[order].tolist(),
            end[order].tolist(),
            frm[order].tolist(),
            to[order].tolist(),
            rate[order].tolist(),
            light[order].tolist(),
            strict=True,
        )
    ]
    return ContactPlan(c.nodes, contacts, c.horizon_s)


# -- ION export ------------------------------------------------------------------------------------


def to_ion(plan: ContactPlan, *, header: bool = True) -> str:
    """The plan as ION ``ionadmin`` commands (module docstring for every conversion).

    One ``a contact`` and one ``a range`` line per plan contact (ION node = node + 1, times
    relative to ION's reference time ``+0`` = the plan's ``t = 0``); a contact whose rounded
    interval is empty is left out. With ``header``, ``#`` comment lines name the nodes.
    """
    lines: list[str] = []
    if header:
        lines.append(
            f"# linkstack contact plan: {len(plan.nodes)} nodes, {len(plan.contacts)} contacts, "
            f"horizon {plan.horizon_s:g} s"
        )
        lines.append(
            "# ION node = linkstack node + 1; rate in bytes/s (rounded down); "
            "owlt in whole seconds (rounded up)"
        )
        for n, (name, kind) in enumerate(zip(plan.nodes.names, plan.nodes.kinds, strict=True)):
            lines.append(f"# node {n + 1}: {name} ({kind})")
    for ct in plan.contacts:
        start = math.ceil(ct.start_s)
        stop = math.floor(ct.end_s)
        if stop <= start:
            continue
        rate = max(1, math.floor(ct.rate_bps / 8.0))
        owlt = math.ceil(ct.owlt_s)
        frm, to = ct.frm + 1, ct.to + 1
        lines.append(f"a contact +{start} +{stop} {frm} {to} {rate}")
        lines.append(f"a range +{start} +{stop} {frm} {to} {owlt}")
    return "\n".join(lines) + "\n"


def write_ion(plan: ContactPlan, path: str | os.PathLike[str], *, header: bool = True) -> None:
    """Write :func:`to_ion` to ``path``."""
    Path(path).write_text(to_ion(plan, header=header), encoding="ascii")
