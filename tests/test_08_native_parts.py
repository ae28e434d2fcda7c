"""The native engine's building blocks on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sarflow.engines.native import (LAYOVER, SHADOW, GeometryLUT, border_noise_mask, calibrate,
                                    image_window, intensity, layover_shadow,
                                    upsample)
from sarflow.grid import Grid, Window


def test_intensity_and_calibration_hand_computed() -> None:
    dn = np.array([[0, 10, 20], [3, 100, 65535]], dtype=np.uint16)
    noise = np.array([[5.0, 40.0, 50.0], [20.0, 400.0, 0.0]])
    lut = np.array([[500.0, 500.0, 400.0], [500.0, 250.0, 1000.0]])
    p = intensity(dn, noise)
    assert np.isnan(p[0, 0])  # DN 0: outside the swath
    assert p[0, 1] == pytest.approx(100 - 40)
    assert p[1, 0] == pytest.approx(9 - 20)
    assert p[1, 2] == pytest.approx(65535.0 ** 2, rel=1e-6)
    s = calibrate(p, lut, clip="floor", floor=1e-5)
    assert s.dtype == np.float32
    assert s[0, 1] == pytest.approx(60 / 500.0 ** 2)
    assert s[0, 2] == pytest.approx((400 - 50) / 400.0 ** 2)
    assert s[1, 1] == pytest.approx((10000 - 400) / 250.0 ** 2)
    assert s[1, 0] == pytest.approx(1e-5)  # negative after noise removal -> floor
    assert np.isnan(s[0, 0])
    s_nan = calibrate(p, lut, clip="nan")
    assert np.isnan(s_nan[1, 0]) and np.isfinite(s_nan[0, 1])
    # without noise removal the intensity is DN^2
    assert intensity(dn, None)[1, 1] == pytest.approx(1e4)


def test_border_noise_mask_scans_inwards_from_named_edges() -> None:
    rng = np.random.default_rng(0)
    power = rng.uniform(50, 100, size=(40, 60)).astype(np.float32)
    near_width = rng.integers(0, 12, size=40)
    far_width = rng.integers(0, 8, size=40)
    for i in range(40):
        power[i, :near_width[i]] = rng.uniform(-5, 0.4, size=near_width[i])
        power[i, 60 - far_width[i]:] = rng.uniform(-5, 0.4, size=far_width[i])
    power[:3, :] = 0.1  # three noisy first lines
    power[5, 30] = -1.0  # a dark pixel inside the image is kept
    mask = border_noise_mask(power, ["near", "far", "first"], limit=20, threshold=0.5)
    expect = np.zeros_like(mask)
    for i in range(3, 40):
        expect[i, :near_width[i]] = True
        expect[i, 60 - far_width[i]:] = True
    expect[:3, :] = True
    np.testing.assert_array_equal(mask, expect)
    # only the named edges are searched: the window does not reach the far edge here
    mask2 = border_noise_mask(power, ["near"], limit=20)
    assert not mask2[10:, 50:].any()
    # the search stops at the limit
    power[20, :] = 0.0
    assert border_noise_mask(power, ["near"], limit=15)[20].sum() == 15


def test_image_window() -> None:
    line = np.array([[10.2, 11.0], [np.nan, 30.7]])
    pixel = np.array([[5.5, 100.1], [7.0, 50.0]])
    assert image_window(line, pixel, (1000, 1000)) == Window(8, 3, 26, 101)
    assert image_window(line, pixel, (20, 1000)) == Window(8, 3, 6, 101)  # line 30.7 is outside
    assert image_window(line + 5000, pixel, (1000, 1000)) is None


def _brute_force(line: np.ndarray, rng: np.ndarray, look: np.ndarray, order: np.ndarray
                 ) -> np.ndarray:
    codes = np.zeros(line.size, dtype=np.uint8)
    bins = np.rint(line)
    for i in range(line.size):
        same = bins == bins[i]
        nearer = same & (order < order[i])
        farther = same & (order > order[i])
        lay = (rng[nearer] > rng[i] + 3.0).any() or (rng[farther] < rng[i] - 3.0).any()
        sha = (look[nearer] > look[i] + 3.0 / rng.mean()).any()
        codes[i] = lay * LAYOVER + sha * SHADOW
    return codes


def test_layover_shadow_matches_brute_force_on_ridges() -> None:
    """Flat-earth profiles across a steep ridge, several zero-Doppler lines, shuffled."""
    height_sat = 700e3
    x = np.linspace(400e3, 404e3, 400)  # ground distance from the nadir track, 10 m steps
    lines, rngs, looks, orders = [], [], [], []
    for k, (peak, width) in enumerate([(1500.0, 300.0), (800.0, 150.0), (0.0, 1.0)]):
        z = peak * np.exp(-((x - 402e3) / width) ** 2)
        rngs.append(np.hypot(x, height_sat - z))
        looks.append(np.arctan2(x, height_sat - z))
        orders.append(x)
        jitter = np.random.default_rng(k).uniform(-0.4, 0.4, x.size)
        lines.append(np.full(x.size, 100.0 + k) + jitter)
    line, rng, look, order = (np.concatenate(a) for a in (lines, rngs, looks, orders))
    perm = np.random.default_rng(9).permutation(line.size)
    line, rng, look, order = line[perm], rng[perm], look[perm], order[perm]
    codes = layover_shadow(line, rng, look, order)
    np.testing.assert_array_equal(codes, _brute_force(line, rng, look, order))
    by_line = {k: codes[np.rint(line) == 100 + k] for k in range(3)}
    assert (by_line[0] & LAYOVER).sum() > 10 and (by_line[0] & SHADOW).sum() > 10
    assert not by_line[2].any()  # flat line: clear
    # unknown points stay unknown and do not disturb the others
    line2 = line.copy()
    line2[:5] = np.nan
    codes2 = layover_shadow(line2, rng, look, order)
    assert (codes2[:5] == 255).all()


def test_upsample_is_bilinear_between_nodes() -> None:
    nodes = np.array([[0.0, 16.0, 32.0], [160.0, 176.0, 192.0]])  # 10 per row, 1 per col
    full = upsample(nodes, 16, 17, 33)
    rows, cols = np.mgrid[0:17, 0:33]
    np.testing.assert_allclose(full, 10 * rows + cols)


def test_geometry_lut_reproduces_smooth_functions() -> None:
    grid = Grid.from_bounds(12.40, 41.90, 12.45, 41.95)

    def coords(lat, lon, h):
        return {"a": 1000 * lat + 3 * lon ** 2 - 0.01 * h + 1e-6 * h ** 2,
                "b": np.sin(np.radians(lat * 50)) * h + 1e-9 * h ** 3}

    win = Window(-10, -10, grid.height + 20, grid.width + 20)
    rng = np.random.default_rng(3)
    h = rng.uniform(-50, 1450, (win.height, win.width))
    h[0, 0] = np.nan
    lut = GeometryLUT.build(grid, win, -50.0, 1450.0, coords, stride=16, degree=3)
    got = lut.evaluate(h)
    lon, lat = grid.coordinates(win)
    exact = coords(lat, lon, h)
    assert np.isnan(got["a"][0, 0])
    err_a = np.abs(got["a"] - exact["a"])[1:]
    # cubic in height is exact; what remains is bilinear in lon^2 over 16 pixels, plus
    # float32 rounding of the residuals (a few tens here) in the per-pixel arithmetic
    assert err_a.max() < 6 * (16 * grid.spacing) ** 2 / 8 + 1e-5
    # b: bilinear error of h * sin(50 lat) over 16 pixels of latitude
    step_deg = 16 * grid.spacing
    bound_b = 1450 * (50 * np.pi / 180) ** 2 * step_deg ** 2 / 8  # h * f'' * dlat^2 / 8
    assert np.abs(got["b"] - exact["b"])[1:].max() < 1.05 * bound_b + 1e-4  # + float32
    # the degree grows with the relief
    assert GeometryLUT.degree_for(50) == 1 and GeometryLUT.degree_for(4000) == 3
    flat = np.full((win.height, win.width), 700.0)
    np.testing.assert_allclose(lut.at_height(700.0, "a"), lut.evaluate(flat)["a"])


def test_layover_shadow_grid_prefilter_is_exact() -> None:
    """Sorting only the lines near steep pixels gives the full computation's answer."""
    from sarflow.engines.native import layover_shadow_grid

    rows, cols = np.mgrid[0:300, 0:400].astype(float)
    rng = np.random.default_rng(5)
    from scipy.ndimage import gaussian_filter

    hills = gaussian_filter(rng.standard_normal((300, 400)), 6)
    h = 40 * hills / hills.std() + 100  # gentle hills (slopes well below 0.35)
    h += 900 * np.exp(-(((cols - 250) / 25) ** 2 + ((rows - 150) / 60) ** 2))  # a steep massif
    x = 400e3 + 10.0 * cols + 1.5 * rows  # ground across track, m (slightly tilted grid)
    sat_h = 700e3
    geo = {"height": h, "line": rows + 0.15 * cols,
           "range": np.hypot(x, sat_h - h), "look": np.arctan2(x, sat_h - h),
           "order": np.hypot(x, sat_h - h.min())}
    geo["height"][0, :5] = np.nan
    for k in ("line", "range", "look", "order"):
        geo[k][0, :5] = np.nan
    full = layover_shadow(geo["line"], geo["range"], geo["look"], geo["order"])
    fast = layover_shadow_grid(geo, (10.0, 10.0))
    np.testing.assert_array_equal(fast, full)
    # reach: 1000 m of relief at 29..46 degrees incidence spans at most 1000 / tan 29 m
    reach = 1000 / np.tan(np.radians(29))
    np.testing.assert_array_equal(layover_shadow_grid(geo, (10.0, 10.0), reach), full)
    assert (full & LAYOVER).sum() > 100 and (full & SHADOW).sum() > 100
    assert (full[0, :5] == 255).all()
    # layover on the slope facing the radar (near range, small x), shadow behind the peak
    lay_cols = cols[(full & LAYOVER) > 0]
    sha_cols = cols[(full & SHADOW) > 0]
    assert np.median(lay_cols) < 250 < np.median(sha_cols)


def test_eroded_blocks_match_eroding_the_written_file(tmp_path) -> None:
    """Erosion of blocks as they come (the native engine) gives the pixels of eroding the
    written output (the SNAP engine), whatever the blocking, and keeps the grid's edges."""
    from sarflow.engines.footprint import erode_output, eroded_blocks
    from sarflow.grid import read_raster, write_raster

    grid = Grid(col0=1000, row0=2000, width=70, height=53)
    rng = np.random.default_rng(3)
    data = rng.uniform(0.01, 1.0, size=(3, grid.height, grid.width)).astype(np.float32)
    data[:, :, :9] = np.nan            # the scene ends 9 columns in
    data[:2, 30:33, 40:44] = np.nan    # a hole
    data[0, 10:12, 20:25] = np.nan     # one band missing: still inside
    write_raster(tmp_path / "raw.tif", data, grid)
    erode_output(tmp_path / "raw.tif", tmp_path / "eroded.tif", 3, block=16)
    want = read_raster(tmp_path / "eroded.tif")
    assert np.isnan(want[:, :, :12]).all() and np.isfinite(want[1:, :, 12:29]).all()
    for size in (8, 16, 64, 100):
        got = np.full_like(data, -1.0)
        blocks = ((w, data[:, w.row:w.row + w.height, w.col:w.col + w.width].copy())
                  for w in grid.blocks(size))
        for w, d in eroded_blocks(blocks, grid, 3):
            got[:, w.row:w.row + w.height, w.col:w.col + w.width] = d
        np.testing.assert_array_equal(got, want)


def test_output_options_replace_the_defaults(tmp_path) -> None:
    """The engine's GTiff options override the writer's defaults key by key (GDAL reads
    the first of a repeated key) and give back the same float32 values, NaN included."""
    from osgeo import gdal

    from sarflow.config import NativeSettings
    from sarflow.engines.native import output_options
    from sarflow.grid import RasterWriter, merge_options, read_raster

    assert merge_options(["COMPRESS=DEFLATE", "PREDICTOR=3", "TILED=YES"],
                         ["predictor=1", "ZLEVEL=2"]) == ["COMPRESS=DEFLATE", "predictor=1",
                                                           "TILED=YES", "ZLEVEL=2"]
    grid = Grid(col0=1000, row0=2000, width=300, height=270)
    data = np.random.default_rng(0).uniform(0, 1, (2, 270, 300)).astype(np.float32)
    data[0, :5] = np.nan
    with RasterWriter(tmp_path / "o.tif", grid, 2, ["a", "b"],
                      options=output_options(NativeSettings())) as w:
        w.write(data)
    np.testing.assert_array_equal(read_raster(tmp_path / "o.tif"), data)
    ds = gdal.Open(str(tmp_path / "o.tif"))
    structure = ds.GetMetadata("IMAGE_STRUCTURE")
    assert structure["COMPRESSION"] == "ZSTD" and structure["INTERLEAVE"] == "BAND"
    assert "PREDICTOR" not in structure or structure["PREDICTOR"] == "1"
