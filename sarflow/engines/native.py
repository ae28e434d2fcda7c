"""The embedded engine: Sentinel-1 GRD to sigma0 on the event grid with numpy and GDAL.

Chain per scene and polarisation, as SNAP's graph does it, block by block over the grid:

1. read only the window of the measurement raster the block needs (uint16 DN);
2. GRD border noise removal, for products before IPF 2.90 (ESA's procedure: within
   ``border_limit`` pixels of the image edges, mask everything up to the first pixel whose
   noise-corrected intensity exceeds ``trim_threshold``); a no-op with a note otherwise;
3. thermal noise removal: DN^2 minus the noise LUT; non-positive values become
   ``noise_floor`` (sigma0, linear) or NaN, as ``noise_clip`` says;
4. calibration: divide by the sigma0 LUT squared;
5. range-Doppler terrain correction onto the grid: DEM height per grid pixel (bilinear,
   geoid to ellipsoid), zero-Doppler image coordinates, bilinear resampling of sigma0.

Geometry is exact at the nodes of a coarse 3-D lookup table (every ``lut_stride`` grid
pixels, heights every ``height_step`` metres, computed with ``sarflow.sentinel1``) and
interpolated trilinearly in between: line, slant range and look angle are smooth there
(errors below 0.01 pixel, checked in the tests), while the slant-to-ground-range conversion,
which switches polynomial between annotation records, is applied per pixel.  The layover /
shadow mask compares slant ranges and look angles along zero-Doppler lines (a halo around
each block gives mountains outside the block their say).
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..dem import DemSampler, bilinear
from ..errors import InputError, ProcessingError, SarflowError
from ..grid import Grid, RasterWriter, Window
from . import REQUIRED_TAGS, SceneJob, SceneResult, band_names

DEFAULTS: dict[str, Any] = {
    "noise_clip": "floor",      # "floor" or "nan"
    "noise_floor": 1e-5,        # sigma0 (linear) given to non-positive noise-corrected pixels
    "block_size": 1024,         # grid pixels per block side
    "border_limit": 500,        # ESA/SNAP border noise search width (pixels)
    "trim_threshold": 0.5,      # noise-corrected intensity below which border pixels go
    "lut_stride": 16,           # grid pixels between geometry lookup nodes
    "height_step": 250.0,       # metres between geometry lookup height levels
    "max_halo": 768,            # cap on the layover/shadow context around a block (pixels)
    "calibration": "sigma0",    # sigma0 (default), beta0 or gamma0
    "thermal_noise": True,      # subtract the noise LUT
    "geoid": True,              # the DEM holds EGM96 heights (SRTM); False: ellipsoidal
}

BORDER_NOISE_IPF = 2.90
"""Products processed before this IPF version carry GRD border noise."""

CLEAR, LAYOVER, SHADOW = 0, 1, 2

WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3


# ------------------------------------------------------------------------------------
# radiometry
# ------------------------------------------------------------------------------------

def intensity(dn: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """DN^2 minus the thermal noise LUT (float32, may be negative); NaN where DN is 0."""
    x = dn.astype(np.float32)
    out = x * x
    if noise is not None:
        out -= noise.astype(np.float32, copy=False)
    out[dn == 0] = np.nan  # DN 0 marks pixels outside the swath
    return out


def border_noise_mask(power: np.ndarray, edges: Iterable[str], limit: int = 500,
                      threshold: float = 0.5) -> np.ndarray:
    """True for GRD border noise: within ``limit`` pixels of each named image edge
    (``near``, ``far``, ``first``, ``last``), everything before the first pixel (scanning
    inwards) whose noise-corrected intensity exceeds ``threshold``.

    ``power`` must reach the named edges (its first/last column or row is the image's).
    """
    mask = np.zeros(power.shape, dtype=bool)
    good = np.nan_to_num(power, nan=-np.inf) > threshold
    for edge in edges:
        view_good, view_mask = _edge_views(good, mask, edge)
        n = min(limit, view_good.shape[1])
        if n == 0:
            continue
        strip = view_good[:, :n]
        first = np.where(strip.any(axis=1), strip.argmax(axis=1), n)
        view_mask[:, :n] |= np.arange(n)[None, :] < first[:, None]
    return mask


def _edge_views(good: np.ndarray, mask: np.ndarray, edge: str) -> tuple[np.ndarray, np.ndarray]:
    """Views with the named edge as column 0, scanning inwards along axis 1."""
    if edge == "near":
        return good, mask
    if edge == "far":
        return good[:, ::-1], mask[:, ::-1]
    if edge == "first":
        return good.T, mask.T
    if edge == "last":
        return good[::-1].T, mask[::-1].T
    raise ValueError(f"unknown edge {edge!r}")


def calibrate(power: np.ndarray, lut: np.ndarray, clip: str = "floor",
              floor: float = 1e-5) -> np.ndarray:
    """Backscatter = noise-corrected intensity / LUT^2 (float32); non-positive -> floor/NaN."""
    a = lut.astype(np.float32, copy=False)
    out = power / (a * a)
    bad = out <= 0  # NaN compares False and stays NaN
    out[bad] = floor if clip == "floor" else np.nan
    return out


# ------------------------------------------------------------------------------------
# geometry lookup table
# ------------------------------------------------------------------------------------

CoordsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]]
"""(lat, lon, height) -> {name: array}: exact geometry at lookup nodes."""


@dataclass
class GeometryLUT:
    """Exact geometry at coarse nodes (rows x cols x height levels) of a grid window,
    interpolated trilinearly to any pixel of it."""

    row0: float
    col0: float
    stride: int
    h0: float
    dh: float
    values: dict[str, np.ndarray]  # name -> (levels, nodes_r, nodes_c)

    @classmethod
    def build(cls, grid: Grid, window: Window, hmin: float, hmax: float, coords: CoordsFn,
              stride: int = 16, height_step: float = 250.0) -> "GeometryLUT":
        """Nodes every ``stride`` pixels over ``window`` (ends included) and heights
        ``hmin..hmax`` every ``height_step`` metres (at least two levels)."""
        nr = max(2, math.ceil((window.height - 1) / stride) + 1)
        nc = max(2, math.ceil((window.width - 1) / stride) + 1)
        rows = window.row + np.arange(nr) * stride
        cols = window.col + np.arange(nc) * stride
        nlev = max(2, math.ceil((hmax - hmin) / height_step) + 1)
        dh = max((hmax - hmin) / (nlev - 1), 1e-3)
        levels = hmin + dh * np.arange(nlev)
        lon, lat = grid.lonlat(rows[:, None], cols[None, :])
        lon, lat = np.broadcast_arrays(lon, lat)
        lat3 = np.broadcast_to(lat, (nlev, nr, nc))
        lon3 = np.broadcast_to(lon, (nlev, nr, nc))
        h3 = np.broadcast_to(levels[:, None, None], (nlev, nr, nc))
        out = coords(lat3.ravel(), lon3.ravel(), h3.ravel())
        values = {k: np.asarray(v, dtype=np.float64).reshape(nlev, nr, nc) for k, v in out.items()}
        return cls(float(window.row), float(window.col), stride, float(hmin), dh, values)

    def interpolate(self, rows: np.ndarray, cols: np.ndarray, height: np.ndarray,
                    names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Trilinear values at grid (row, col) pixels (broadcast) and heights; NaN height
        gives NaN."""
        rows, cols, height = np.broadcast_arrays(np.asarray(rows, dtype=np.float64),
                                                 np.asarray(cols, dtype=np.float64), height)
        first = next(iter(self.values.values()))
        nlev, nr, nc = first.shape
        y = (rows - self.row0) / self.stride
        x = (cols - self.col0) / self.stride
        z = (height - self.h0) / self.dh
        r0 = np.clip(np.floor(y), 0, nr - 2).astype(np.intp)
        c0 = np.clip(np.floor(x), 0, nc - 2).astype(np.intp)
        zf = np.nan_to_num(z, nan=0.0)
        k0 = np.clip(np.floor(zf), 0, nlev - 2).astype(np.intp)
        fy, fx, fz = y - r0, x - c0, zf - k0
        bad = ~np.isfinite(height)
        out = {}
        for name in names or self.values:
            v = self.values[name]
            acc = 0.0
            for dk, wz in ((0, 1 - fz), (1, fz)):
                k = k0 + dk
                acc = acc + wz * ((1 - fy) * ((1 - fx) * v[k, r0, c0] + fx * v[k, r0, c0 + 1])
                                  + fy * ((1 - fx) * v[k, r0 + 1, c0] + fx * v[k, r0 + 1, c0 + 1]))
            out[name] = np.where(bad, np.nan, acc)
        return out


# ------------------------------------------------------------------------------------
# layover and shadow
# ------------------------------------------------------------------------------------

def layover_shadow(line: np.ndarray, slant_range: np.ndarray, look: np.ndarray,
                   order: np.ndarray, tol_range: float = 0.05, tol_look: float = 1e-7
                   ) -> np.ndarray:
    """Layover/shadow codes (0 clear, 1 layover, 2 shadow, 3 both; 255 unknown) of points.

    Points are grouped into zero-Doppler lines by rounded ``line`` and ordered by
    ``order`` (ground position across track, increasing away from the radar).  Layover:
    another point of the line, nearer on the ground, lies farther in slant range, or one
    farther on the ground lies nearer (active and passive layover).  Shadow: a point nearer
    on the ground is seen under a larger look angle.  Vectorised: segmented running max/min
    through per-line offsets.
    """
    shape = line.shape
    line, rng, lk, order = (np.asarray(a, dtype=np.float64).ravel()
                            for a in (line, slant_range, look, order))
    ok = np.isfinite(line) & np.isfinite(rng) & np.isfinite(lk) & np.isfinite(order)
    codes = np.full(line.size, 255, dtype=np.uint8)
    if not ok.any():
        return codes.reshape(shape)
    idx = np.flatnonzero(ok)
    bins = np.rint(line[idx]).astype(np.int64)
    srt = np.lexsort((order[idx], bins))
    idx, bins = idx[srt], bins[srt]
    _, seg = np.unique(bins, return_inverse=True)
    starts = np.r_[True, seg[1:] != seg[:-1]]
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


# ------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------

def ipf_number(version: Any) -> float:
    """IPF version as a float (``'003.40'`` -> 3.40); NaN when unknown."""
    try:
        return float(str(version).strip())
    except (TypeError, ValueError):
        return float("nan")


def image_window(line: np.ndarray, pixel: np.ndarray, shape: tuple[int, int], margin: int = 2
                 ) -> Window | None:
    """The image window (lines x pixels) covering the finite coordinates plus a margin."""
    ok = np.isfinite(line) & np.isfinite(pixel)
    ok &= (line > -margin) & (line < shape[0] - 1 + margin)
    ok &= (pixel > -margin) & (pixel < shape[1] - 1 + margin)
    if not ok.any():
        return None
    l0 = max(int(np.floor(line[ok].min())) - margin, 0)
    l1 = min(int(np.ceil(line[ok].max())) + margin + 1, shape[0])
    p0 = max(int(np.floor(pixel[ok].min())) - margin, 0)
    p1 = min(int(np.ceil(pixel[ok].max())) + margin + 1, shape[1])
    if l1 <= l0 or p1 <= p0:
        return None
    return Window(l0, p0, l1 - l0, p1 - p0)


def metres_per_pixel(grid: Grid) -> tuple[float, float]:
    """(north-south, east-west) size of a grid pixel in metres at the grid's centre."""
    lat = math.radians((grid.north + grid.south) / 2)
    s = math.sin(lat)
    w = math.sqrt(1 - WGS84_E2 * s * s)
    m = WGS84_A * (1 - WGS84_E2) / w ** 3
    n = WGS84_A / w
    step = math.radians(grid.spacing)
    return m * step, n * math.cos(lat) * step
