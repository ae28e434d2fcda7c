"""The compiled kernels (sarflow.sentinel1.kernels) against the numpy reference they
replace.  Without numba the kernels run as plain Python, so the inputs are small; with
numba these are the compiled functions the engine calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sarflow.engines import native
from sarflow.grid import Grid, Window
from sarflow.sentinel1 import kernels, layover
from sarflow.sentinel1.lookup import GeometryLUT

SAFE = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"


@pytest.fixture
def numpy_path(monkeypatch):
    """Within the test, the engine's functions take their numpy path."""
    def use_numpy():
        monkeypatch.setattr(kernels, "COMPILED", False)
    return use_numpy


def test_lut_kernel_matches_numpy_evaluation(numpy_path) -> None:
    grid = Grid.from_bounds(12.40, 41.90, 12.405, 41.905)

    def coords(lat, lon, h):
        return {"a": 1000 * lat + 3 * lon ** 2 - 0.01 * h + 1e-6 * h ** 2,
                "b": np.sin(np.radians(lat * 50)) * h + 1e-9 * h ** 3}

    win = Window(-5, -7, grid.height + 10, grid.width + 14)
    h = np.random.default_rng(3).uniform(-50, 1450, (win.height, win.width))
    h[0, 0] = np.nan
    lut = GeometryLUT.build(grid, win, -50.0, 1450.0, coords, stride=16, degree=3)
    got = lut._evaluate_compiled(h, ["a", "b"], {"a100": ("a", 100.0)})
    numpy_path()
    want = lut.evaluate(h, at={"a100": ("a", 100.0)})
    assert np.isnan(got["a"][0, 0]) and np.isnan(got["b"][0, 0])
    assert np.isnan(got["a100"][0, 0]) and np.isnan(want["a100"][0, 0])
    for k in ("a", "b", "a100"):  # the numpy path computes residuals in float32
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=2e-4)
    np.testing.assert_allclose(got["a100"][1:], lut.at_height(100.0, "a")[1:], rtol=0,
                               atol=2e-4)
    lon, lat = grid.coordinates(win)
    exact = coords(lat, lon, h)["a"]
    assert np.nanmax(np.abs(got["a"] - exact)) < 6 * (16 * grid.spacing) ** 2 / 8 + 1e-7


def test_pixel_kernel_matches_numpy_inverse(fixtures_dir: Path, numpy_path) -> None:
    """Slant range to pixel on the real product's conversion records, across several
    records and a block's span of range: the round trip through range_time returns the
    pixel, as the numpy path does."""
    from sarflow.sentinel1 import open_product

    geom = open_product(fixtures_dir / "s1" / SAFE).geometry("VV")
    rng = np.random.default_rng(1)
    line = rng.uniform(0, geom.swath.lines - 1, 3000)
    pixel = rng.uniform(9000, 11000, 3000)
    _, slant = geom.range_time(line, pixel)
    line[:3] = np.nan
    k = geom._nearest(geom.t_first + line[3:] * geom.ati)
    assert np.unique(k).size > 5
    mid, half = 0.5 * (slant.min() + slant.max()), 0.5 * np.ptp(slant)
    coef = np.array([geom._record_series(kk, mid, half) for kk in range(k.min(), k.max() + 1)])
    got = np.empty((1, line.size))
    kernels.fitted_pixel(line[None], slant[None], geom.t_first, geom.ati, geom.conv_time,
                         int(k.min()), coef, mid, half, geom.rps, got)
    got = got[0]
    assert np.isnan(got[:3]).all()
    np.testing.assert_allclose(got[3:], pixel[3:], rtol=0, atol=1e-5)
    numpy_path()
    np.testing.assert_allclose(got, geom.pixel_of(line, slant), rtol=0, atol=1e-6)


def test_resample_and_window_kernels_match_numpy(numpy_path) -> None:
    rng = np.random.default_rng(2)
    img = rng.uniform(0.01, 1, (40, 50)).astype(np.float32)
    img[10, 20] = np.nan
    line = rng.uniform(95, 145, (30, 31))  # image coordinates; the window starts at 100
    pixel = rng.uniform(195, 255, (30, 31))
    line[0, :4] = np.nan
    line[1, 0], pixel[1, 0] = 110.0, 205.0  # on a pixel centre
    line[1, 1], pixel[1, 1] = 139.0, 249.0  # the window's last pixel
    got = np.empty(line.shape, dtype=np.float32)
    kernels.bilinear_at(img, line, pixel, 100.0, 200.0, got)
    bounds = kernels.coordinate_bounds(line[:, ::-1], pixel[:, ::-1], -2.0, 131.0, -2.0,
                                       241.0)  # any memory layout
    assert got[1, 0] == img[10, 5] and got[1, 1] == img[39, 49]
    assert np.isnan(got[0, :4]).all()
    numpy_path()
    want = native.resample(img, line, pixel, (100, 200))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.isnan(got).sum() > 100  # outside the window and next to the NaN pixel
    inside = (line < 131) & (pixel < 241)
    assert bounds == (line[inside].min(), line[inside].max(), pixel[inside].min(),
                      pixel[inside].max())
    win = native.image_window(line, pixel, (130, 240), margin=2)
    assert win.row == 93 and win.row + win.height == 130  # clipped by the image


def test_layover_kernel_matches_numpy_and_brute_force(numpy_path) -> None:
    """Ridges across several zero-Doppler lines (layover and shadow), shuffled, with ties."""
    height_sat = 700e3
    x = np.linspace(400e3, 404e3, 300)
    parts = []
    for k, (peak, width) in enumerate([(1500.0, 300.0), (800.0, 150.0), (0.0, 1.0)]):
        z = peak * np.exp(-((x - 402e3) / width) ** 2)
        jitter = np.random.default_rng(k).uniform(-0.4, 0.4, x.size)
        parts.append((np.full(x.size, 100.0 + k) + jitter, np.hypot(x, height_sat - z),
                      np.arctan2(x, height_sat - z), x))
    line, rng, look, order = (np.concatenate(a) for a in zip(*parts))
    perm = np.random.default_rng(9).permutation(line.size)
    line, rng, look, order = line[perm], rng[perm], look[perm], order[perm]
    tol_look = 3.0 / rng.mean()
    got = np.full(line.size, 255, dtype=np.uint8)
    kernels.layover_codes(line, rng, look, order, np.arange(line.size), 3.0, tol_look, got)
    assert (got & layover.LAYOVER).sum() > 10 and (got & layover.SHADOW).sum() > 10
    numpy_path()
    np.testing.assert_array_equal(got, layover.layover_shadow(line, rng, look, order))
    bins = np.rint(line)
    for i in range(0, line.size, 7):  # brute force on a sample
        same = bins == bins[i]
        nearer, farther = same & (order < order[i]), same & (order > order[i])
        lay = (rng[nearer] > rng[i] + 3).any() or (rng[farther] < rng[i] - 3).any()
        sha = (look[nearer] > look[i] + tol_look).any()
        assert got[i] == lay * layover.LAYOVER + sha * layover.SHADOW


def test_near_steep_kernel_matches_numpy() -> None:
    """The selection of points near steep ones, in cells across track: kernel and numpy."""
    rng = np.random.default_rng(4)
    line = rng.uniform(0, 40, (50, 60)) + np.arange(60)[None, :] * 0.1
    order = np.arange(60)[None, :] * 10.0 + rng.uniform(0, 5, (50, 60))
    ok = rng.random((50, 60)) > 0.05
    steep = (rng.random((50, 60)) > 0.995) & ok
    line[~ok] = np.nan
    for reach in (35.0, np.inf):
        got = np.empty(ok.size, dtype=bool)
        kernels.near_steep(line.ravel(), order.ravel(), ok.ravel(), steep.ravel(), reach, got)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(kernels, "COMPILED", False)
            want = layover._near_steep(line, order, ok, steep, reach)
        np.testing.assert_array_equal(got.reshape(ok.shape), want)
        assert steep[ok].sum() > 0 and 0 < want.sum() < ok.sum() or reach == np.inf


def test_layover_grid_kernels_match_numpy() -> None:
    """The whole grid rule (known points, steep points, selection, codes) through the
    kernels and through numpy, on hills with a steep massif and unknown pixels."""
    from scipy.ndimage import gaussian_filter

    rows, cols = np.mgrid[0:120, 0:160].astype(float)
    hills = gaussian_filter(np.random.default_rng(5).standard_normal((120, 160)), 4)
    h = 30 * hills / hills.std() + 100
    h += 900 * np.exp(-(((cols - 100) / 12) ** 2 + ((rows - 60) / 25) ** 2))
    x = 400e3 + 10.0 * cols + 1.5 * rows
    geo = {"height": h, "line": rows + 0.15 * cols, "range": np.hypot(x, 700e3 - h),
           "look": np.arctan2(x, 700e3 - h), "order": np.hypot(x, 700e3 - h.min())}
    geo["look"][3, :7] = np.nan
    geo["height"][50, 20:30] = np.nan
    got = layover._layover_shadow_grid_compiled(geo, (10.0, 10.0), 1000 / np.tan(0.5))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "COMPILED", False)
        want = layover.layover_shadow_grid(geo, (10.0, 10.0), 1000 / np.tan(0.5))
    np.testing.assert_array_equal(got, want)
    assert (got[3, :7] == 255).all() and (got & layover.LAYOVER).sum() > 20
    assert (got & layover.SHADOW).sum() > 20


def test_geoid_and_code_band_kernels_match_numpy() -> None:
    from sarflow.sentinel1.lookup import upsample

    nodes = np.random.default_rng(6).uniform(40, 50, (5, 7))
    base = np.random.default_rng(7).uniform(0, 100, (60, 90))
    got = base.copy()
    kernels.add_upsampled(nodes, 16, got)
    np.testing.assert_allclose(got, base + upsample(nodes, 16, 60, 90), rtol=0, atol=1e-12)
    line = np.array([[0.0, 5.5, -0.1, np.nan], [99.0, 99.01, 3.0, 4.0]])
    pixel = np.array([[0.0, 7.0, 3.0, 3.0], [49.0, 2.0, 50.0, 8.0]])
    codes = np.array([[1, 0, 2, 0], [3, 1, 0, 255]], dtype=np.uint8)
    out = np.empty(codes.shape, dtype=np.float32)
    kernels.code_band(line, pixel, codes, 100, 50, out)
    want = np.array([[1, 0, np.nan, np.nan], [3, np.nan, np.nan, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(out, want)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "COMPILED", False)
        np.testing.assert_array_equal(native.code_band(line, pixel, codes, (100, 50)), want)
