"""Layover and shadow of ground points in a radar image: one rule, for the native engine
and the simulator.

Along a zero-Doppler line, ordered across track (increasing away from the radar):
layover where another point nearer on the ground lies farther in slant range, or one
farther on the ground lies nearer (active and passive layover); shadow where a point
nearer on the ground is seen under a larger look angle.  Codes: 0 clear, 1 layover,
2 shadow, 3 both (255 where the geometry is unknown).

Two samplings of the rule:

* :func:`layover_shadow` / :func:`layover_shadow_grid` - on points of any grid (the
  native engine's output lattice): points are binned into zero-Doppler lines by rounding
  their image line, so points up to half a line apart in azimuth share a bin; reversals
  below ``tol_range`` (3 m, half a GRD pixel in slant range) are that jitter, not layover.
* :func:`profile_flags` - on exact image-line profiles (the simulator, which defines the
  image, samples every line at half-pixel steps): no binning, so the tolerance is only
  numerical (0.02 pixel, 1 m at the slant range in look angle).

The native engine's masks are tested against the simulator's (tests/test_24_native_simulated.py).
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels
from .geometry import A as WGS84_A, E2 as WGS84_E2

CLEAR, LAYOVER, SHADOW = 0, 1, 2
TOL_RANGE = 3.0
"""Slant range reversals (m) below which points of one binned line count as jitter."""


def metres_per_pixel(grid) -> tuple[float, float]:
    """(north-south, east-west) size of a lattice pixel in metres at the grid's centre."""
    lat = math.radians((grid.north + grid.south) / 2)
    s = math.sin(lat)
    w = math.sqrt(1 - WGS84_E2 * s * s)
    m = WGS84_A * (1 - WGS84_E2) / w ** 3
    n = WGS84_A / w
    step = math.radians(grid.spacing)
    return m * step, n * math.cos(lat) * step


def layover_shadow(line: np.ndarray, slant_range: np.ndarray, look: np.ndarray,
                   order: np.ndarray, tol_range: float = TOL_RANGE, tol_look: float | None = None
                   ) -> np.ndarray:
    """Layover/shadow codes (0 clear, 1 layover, 2 shadow, 3 both; 255 unknown) of points.

    Points are grouped into zero-Doppler lines by rounded ``line`` and ordered by
    ``order`` (ground position across track, increasing away from the radar).  Layover:
    another point of the line, nearer on the ground, lies farther in slant range, or one
    farther on the ground lies nearer (active and passive layover).  Shadow: a point nearer
    on the ground is seen under a larger look angle.  Vectorised: segmented running max/min
    through per-line offsets.

    Reversals smaller than ``tol_range`` metres of slant range (default 3 m, half a GRD
    pixel in slant range) are sub-resolution jitter (two points of one zero-Doppler line at
    almost the same ground range but different heights), not layover; ``tol_look``
    (default: ``tol_range`` over the mean slant range) does the same for shadow.
    """
    shape = line.shape
    line, rng, lk, order = (np.asarray(a, dtype=np.float64).ravel()
                            for a in (line, slant_range, look, order))
    ok = np.isfinite(line) & np.isfinite(rng) & np.isfinite(lk) & np.isfinite(order)
    codes = np.full(line.size, 255, dtype=np.uint8)
    if not ok.any():
        return codes.reshape(shape)
    idx = np.flatnonzero(ok)
    if tol_look is None:
        tol_look = tol_range / float(np.mean(rng[idx]))
    if kernels.COMPILED:
        kernels.layover_codes(*(np.ascontiguousarray(a) for a in (line, rng, lk, order)),
                              idx, float(tol_range), float(tol_look), codes)
        return codes.reshape(shape)
    bins = np.rint(line[idx])
    bins -= bins.min()
    o = order[idx] - order[idx].min()
    srt = np.argsort(bins * (o.max() + 1.0) + o)  # by line, then across track
    idx, bins = idx[srt], bins[srt]
    starts = np.r_[True, bins[1:] != bins[:-1]]
    seg = np.cumsum(starts) - 1
    ends = np.r_[starts[1:], True]
    r = rng[idx] - rng[idx].min()
    a = lk[idx] - lk[idx].min()
    rspan = r.max() + 1.0
    aspan = a.max() + 1.0
    rv = r + seg * rspan
    av = a + seg * aspan
    prev_rmax = _shift_fwd(np.maximum.accumulate(rv), starts, -np.inf)
    next_rmin = _shift_bwd(np.minimum.accumulate(rv[::-1])[::-1], ends, np.inf)
    prev_amax = _shift_fwd(np.maximum.accumulate(av), starts, -np.inf)
    lay = (rv < prev_rmax - tol_range) | (rv > next_rmin + tol_range)
    sha = av < prev_amax - tol_look
    codes[idx] = lay * LAYOVER + sha * SHADOW
    return codes.reshape(shape)


STEEP = 0.35
"""Terrain gradient (per axis) below which no layover or shadow can occur: IW incidences
are at least 29 degrees (layover needs a slope steeper than tan 29 = 0.55 along some
path, shadow tan 44 = 0.97), and a 4-neighbour path between two pixels is at most
sqrt(2) times longer than the straight line (0.35 * sqrt(2) < 0.55)."""


def layover_shadow_grid(geo: dict[str, np.ndarray], pixel_m: tuple[float, float],
                        reach: float = np.inf) -> np.ndarray:
    """:func:`layover_shadow` over a grid window, sorting only what can be affected.

    Only pixels whose zero-Doppler line (+-1) holds a steep pixel (gradient above
    :data:`STEEP`) and that lie within ``reach`` metres across track of one can be in
    layover or shadow (a reversal needs a steep stretch between the two points, and
    spans at most relief / tan(incidence) or relief * tan(incidence) of ground); all
    other pixels are clear (255 where the geometry is unknown).  Across track, lines are
    cut into cells ``reach`` wide: a pixel is sorted when a cell next to its own (or its
    own) holds a steep pixel of the lines next door.
    """
    keys = ("line", "range", "look", "order")
    if kernels.COMPILED:
        return _layover_shadow_grid_compiled(geo, pixel_m, reach)
    ok = np.isfinite(geo["line"])
    for k in keys[1:]:
        ok &= np.isfinite(geo[k])
    codes = np.where(ok, np.uint8(CLEAR), np.uint8(255))
    steep = _steep(geo["height"], pixel_m) & ok
    if not steep.any():
        return codes
    sel = _near_steep(geo["line"], geo["order"], ok, steep, reach)
    codes[sel] = layover_shadow(*(geo[k][sel] for k in keys))
    return codes


def _layover_shadow_grid_compiled(geo: dict[str, np.ndarray], pixel_m: tuple[float, float],
                                  reach: float) -> np.ndarray:
    """:func:`layover_shadow_grid` through one kernel call (:func:`kernels.layover_grid`):
    the same selection, the codes of the selected points computed in place."""
    arrays = [np.ascontiguousarray(geo[k]) for k in ("height", "line", "range", "look", "order")]
    codes = np.empty(arrays[0].shape, dtype=np.uint8)
    width = reach if np.isfinite(reach) and reach > 0 else np.inf
    kernels.layover_grid(*arrays, STEEP * pixel_m[0], STEEP * pixel_m[1], float(width),
                         TOL_RANGE, codes)
    return codes


def _steep(h: np.ndarray, pixel_m: tuple[float, float]) -> np.ndarray:
    """Pixels next to a height step steeper than :data:`STEEP` along either grid axis."""
    ny, nx = pixel_m
    steep = np.zeros(h.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        gy = np.abs(np.diff(h, axis=0)) > STEEP * ny
        gx = np.abs(np.diff(h, axis=1)) > STEEP * nx
    steep[:-1] |= gy
    steep[1:] |= gy
    steep[:, :-1] |= gx
    steep[:, 1:] |= gx
    return steep


def _near_steep(line: np.ndarray, order: np.ndarray, ok: np.ndarray, steep: np.ndarray,
                reach: float) -> np.ndarray:
    """Valid pixels within ``reach`` across track of a steep pixel of their zero-Doppler
    line or the lines next to it (by cells ``reach`` wide: a superset)."""
    width = reach if np.isfinite(reach) and reach > 0 else np.inf
    b = np.rint(line[ok]).astype(np.int64)
    o = order[ok]
    b -= b.min() - 1
    c = np.zeros(o.shape, dtype=np.int64) if not np.isfinite(width) else \
        np.floor((o - o.min()) / width).astype(np.int64) + 1
    cells = np.zeros((int(b.max()) + 2, int(c.max()) + 2), dtype=bool)
    st = steep[ok]
    cells[b[st], c[st]] = True
    grown = cells.copy()  # 3 x 3 dilation: the lines and the cells next door
    grown[1:] |= cells[:-1]
    grown[:-1] |= cells[1:]
    wide = grown.copy()
    wide[:, 1:] |= grown[:, :-1]
    wide[:, :-1] |= grown[:, 1:]
    sel = np.zeros(ok.shape, dtype=bool)
    sel[ok] = wide[b, c]
    return sel


def _shift_fwd(cum: np.ndarray, starts: np.ndarray, fill: float) -> np.ndarray:
    out = np.empty_like(cum)
    out[0] = fill
    out[1:] = cum[:-1]
    out[starts] = fill
    return out


def _shift_bwd(cum: np.ndarray, ends: np.ndarray, fill: float) -> np.ndarray:
    out = np.empty_like(cum)
    out[-1] = fill
    out[:-1] = cum[1:]
    out[ends] = fill
    return out




PROFILE_TOL_PIXEL = 0.02
"""Ground-range pixels below which a reversal along an exact profile is numerical noise."""
PROFILE_TOL_LOOK = 1.0 / 8.5e5
"""Look angle (rad) below which a reversal along an exact profile is noise: 1 m at the
slant range of Sentinel-1 IW (about 850 km)."""


def profile_flags(px: np.ndarray, beta: np.ndarray, tol_p: float = PROFILE_TOL_PIXEL,
                  tol_b: float = PROFILE_TOL_LOOK) -> np.ndarray:
    """Layover (1) and shadow (2) flags along axis 1 (near to far range) of profiles of
    image pixel ``px`` and look angle ``beta`` sampled along exact image lines."""
    prev_b = np.maximum.accumulate(beta, axis=1)
    shadow = np.zeros(beta.shape, dtype=bool)
    shadow[:, 1:] = beta[:, 1:] < prev_b[:, :-1] - tol_b
    prev_p = np.maximum.accumulate(px, axis=1)
    lay = np.zeros(px.shape, dtype=bool)
    lay[:, 1:] = px[:, 1:] < prev_p[:, :-1] - tol_p
    next_p = np.minimum.accumulate(px[:, ::-1], axis=1)[:, ::-1]
    lay[:, :-1] |= px[:, :-1] > next_p[:, 1:] + tol_p
    return lay.astype(np.uint8) * LAYOVER + shadow.astype(np.uint8) * SHADOW
