"""Synthetic terrain: fractal relief with V-shaped valleys, steep slopes and flat plains,
as heights above the EGM96 geoid on the event lattice (as SRTM gives them), plus land cover.
"""

from __future__ import annotations

import math

import numpy as np

from ..grid import Grid
from .settings import SimulationSettings

WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3


def grids(settings: SimulationSettings) -> tuple[Grid, Grid]:
    """(event grid, DEM grid): the event grid centred on ``settings.center`` and the DEM
    grid that adds ``settings.dem_margin`` lattice pixels on every side."""
    from ..grid import SPACING

    h, w = settings.size
    lon, lat = settings.center
    col0 = int(round(lon / SPACING)) - w // 2
    row0 = int(round(lat / SPACING)) + h // 2
    event = Grid(col0=col0, row0=row0, width=w, height=h)
    m = settings.dem_margin
    dem = Grid(col0=col0 - m, row0=row0 + m, width=w + 2 * m, height=h + 2 * m)
    return event, dem


def metric_spacing(grid: Grid) -> tuple[np.ndarray, float]:
    """(east-west spacing per row (m), north-south spacing (m)) of a lattice grid."""
    _, lat = grid.lonlat(np.arange(grid.height), 0)
    phi = np.radians(lat)
    w = np.sqrt(1.0 - WGS84_E2 * np.sin(phi) ** 2)
    n = WGS84_A / w
    m = WGS84_A * (1.0 - WGS84_E2) / w ** 3
    d = math.radians(grid.spacing)
    return n * np.cos(phi) * d, float(np.mean(m) * d)


def gradients(height: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Terrain slopes dh/dEast and dh/dNorth (m/m) by central differences."""
    dx, dy = metric_spacing(grid)
    gy, gx = np.gradient(height.astype(np.float64))
    return (gx / dx[:, None]).astype(np.float32), (-gy / dy).astype(np.float32)


def slope_deg(height: np.ndarray, grid: Grid) -> np.ndarray:
    """Terrain slope in degrees."""
    p, q = gradients(height, grid)
    return np.degrees(np.arctan(np.hypot(p, q))).astype(np.float32)


def noise_field(shape: tuple[int, int], dx: float, dy: float, rng: np.random.Generator,
           beta: float, lmin: float, lmax: float) -> np.ndarray:
    """Gaussian random field with power spectrum k^-beta between wavelengths lmin..lmax (m),
    isotropic in metres, normalised to zero mean and unit standard deviation."""
    ky = np.fft.fftfreq(shape[0], d=dy)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=dx)[None, :]
    k = np.hypot(kx, ky)
    amp = np.zeros_like(k)
    band = (k >= 1.0 / lmax) & (k <= 1.0 / lmin)
    amp[band] = k[band] ** (-beta / 2.0)
    spec = amp * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
    field = np.fft.irfft2(spec, s=shape)
    field -= field.mean()
    sd = field.std()
    return field / sd if sd > 0 else field


def smooth_field(shape: tuple[int, int], dx: float, dy: float, rng: np.random.Generator,
                 wavelength: float) -> np.ndarray:
    """A smooth unit-variance field with features of about ``wavelength`` metres."""
    return noise_field(shape, dx, dy, rng, 4.0, wavelength / 4.0, wavelength * 4.0)


def make_terrain(grid: Grid, rng: np.random.Generator, settings: SimulationSettings
                 ) -> np.ndarray:
    """Heights above the geoid (m, float32) on ``grid``: fractal hills and mountains cut by
    V-shaped valleys, with flat alluvial plains in the lowest parts."""
    dxs, dy = metric_spacing(grid)
    dx = float(np.mean(dxs))
    shape = grid.shape
    size_m = max(shape[0] * dy, shape[1] * dx)
    lmax = max(6000.0, size_m)
    rough = noise_field(shape, dx, dy, rng, 4.0, 4 * dy, lmax)          # fractal relief
    valleys = np.abs(noise_field(shape, dx, dy, rng, 3.6, 400.0, 5000.0))  # creases -> V valleys
    fine = noise_field(shape, dx, dy, rng, 3.0, 3 * dy, 300.0)         # small-scale roughness
    region = smooth_field(shape, dx, dy, rng, 8000.0)             # hills vs mountains
    amp = 0.6 + 0.4 * np.tanh(region)                             # 0.2 .. 1.0
    h = amp * (rough + 1.2 * valleys + 0.03 * fine)
    # scale so that the median slope is settings.median_slope_deg
    gy, gx = np.gradient(h)
    tan_med = np.median(np.hypot(gx / dx, gy / dy))
    h *= math.tan(math.radians(settings.median_slope_deg)) / tan_med
    # flat plains where the land is lowest: soft floor at the 12th percentile
    floor = np.percentile(h, 12.0)
    s = 6.0
    h = floor + s * np.logaddexp(0.0, (h - floor) / s)
    h = h - h.min() + settings.base_height_m
    return h.astype(np.float32)


def make_landcover(height: np.ndarray, slope: np.ndarray, grid: Grid,
                   rng: np.random.Generator) -> np.ndarray:
    """Land cover codes (0 forest, 1 grassland/fields, 2 bare rock or soil), uint8."""
    dxs, dy = metric_spacing(grid)
    patches = smooth_field(height.shape, float(np.mean(dxs)), dy, rng, 1500.0)
    lc = np.zeros(height.shape, dtype=np.uint8)
    gentle = slope < 4.0
    lc[gentle | ((slope < 12.0) & (patches > 1.0))] = 1
    high = height > np.percentile(height, 97.0)
    lc[(slope > 50.0) | (high & (slope > 30.0))] = 2
    return lc
