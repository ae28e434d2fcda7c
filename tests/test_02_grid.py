"""The target grid and raster I/O: lattice alignment, transforms, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sarflow.errors import GridMismatchError, InputError
from sarflow.grid import (SPACING, Grid, RasterWriter, Window, raster_info, read_raster,
                          write_raster)


def test_overlapping_bboxes_share_pixels_exactly() -> None:
    a = Grid.from_bounds(141.84, 42.64, 142.13, 42.89)
    b = Grid.from_bounds(141.9001, 42.7003, 142.3, 43.0)
    inter = a.intersection(b)
    assert inter is not None
    wa, wb = a.window_of(inter), b.window_of(inter)
    rows = np.arange(inter.height)[::97]
    cols = np.arange(inter.width)[::89]
    lon_a, lat_a = a.lonlat(rows[:, None] + wa.row, cols[None, :] + wa.col)
    lon_b, lat_b = b.lonlat(rows[:, None] + wb.row, cols[None, :] + wb.col)
    assert np.array_equal(lon_a, lon_b) and np.array_equal(lat_a, lat_b)
    # both origins sit on whole multiples of the spacing
    for g in (a, b):
        assert g.west == g.col0 * SPACING and g.north == g.row0 * SPACING


def test_from_bounds_covers_and_snaps() -> None:
    g = Grid.from_bounds(10.00001, 45.0, 10.01, 45.01)
    assert g.west <= 10.00001 and g.east >= 10.01 and g.south <= 45.0 and g.north >= 45.01
    assert g.width == int(np.ceil(10.01 / SPACING)) - int(np.floor(10.00001 / SPACING))
    # bounds already on the lattice are not grown by a pixel
    h = Grid.from_bounds(g.west, g.south, g.east, g.north)
    assert h == g


def test_pixel_transforms_round_trip() -> None:
    g = Grid.from_bounds(-70.5, -33.6, -70.3, -33.4)
    rows = np.array([0, 10.25, g.height - 1])
    cols = np.array([0, 3.5, g.width - 1])
    lon, lat = g.lonlat(rows, cols)
    r2, c2 = g.rowcol(lon, lat)
    np.testing.assert_allclose(r2, rows, atol=1e-9)
    np.testing.assert_allclose(c2, cols, atol=1e-9)
    # pixel (0, 0) centre is half a pixel inside the north-west corner
    assert lon[0] == pytest.approx(g.west + SPACING / 2)
    assert lat[0] == pytest.approx(g.north - SPACING / 2)


def test_geotransform_round_trip_and_rejects_off_lattice() -> None:
    g = Grid.from_bounds(5.0, 50.0, 5.05, 50.03)
    assert Grid.from_geotransform(g.geotransform, g.width, g.height) == g
    gt = list(g.geotransform)
    gt[0] += SPACING * 0.4
    with pytest.raises(GridMismatchError, match="lattice"):
        Grid.from_geotransform(gt, g.width, g.height)


def test_invalid_bounds() -> None:
    with pytest.raises(InputError):
        Grid.from_bounds(10, 45, 9, 46)


def test_blocks_cover_grid_once() -> None:
    g = Grid(1000, 5000, 300, 170)
    seen = np.zeros(g.shape, dtype=int)
    for w in g.blocks(64):
        seen[w.slices] += 1
    assert (seen == 1).all()


def test_raster_round_trip_with_tags(tmp_path: Path) -> None:
    g = Grid.from_bounds(12.45, 41.95, 12.47, 41.96)
    data = np.random.default_rng(0).normal(size=(2, *g.shape)).astype("float32")
    data[0, 3, 4] = np.nan
    out = write_raster(tmp_path / "x.tif", data, g, descriptions=["a", "b"],
                       tags={"product_id": "P1", "dates": ["2020-01-01", "2020-01-13"]})
    info = raster_info(out)
    assert info.grid == g and info.count == 2 and info.descriptions == ("a", "b")
    assert info.tags["product_id"] == "P1"
    assert info.tags["dates"] == '["2020-01-01", "2020-01-13"]'
    assert "sarflow_version" in info.tags and np.isnan(info.nodata)
    back = read_raster(out)
    np.testing.assert_array_equal(back, data)
    win = Window(2, 3, 5, 7)
    np.testing.assert_array_equal(read_raster(out, win, bands=[2])[0], data[1][win.slices])


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    g = Grid(100, 200, 32, 32)
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with RasterWriter(target, g, 1) as w:
            w.write(np.ones((16, 16)), Window(0, 0, 16, 16), band=1)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_killed_write_leaves_no_output(tmp_path: Path) -> None:
    """A process killed mid-write leaves at most a hidden temporary, never the output name."""
    target = tmp_path / "out.tif"
    code = f"""
import os, signal, numpy as np
from sarflow.grid import Grid, RasterWriter, Window
g = Grid(100, 200, 64, 64)
with RasterWriter({str(target)!r}, g, 1) as w:
    w.write(np.ones((32, 32)), Window(0, 0, 32, 32), band=1)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ})
    assert proc.returncode != 0
    assert not target.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir())


def test_unwritten_windows_read_as_nodata(tmp_path: Path) -> None:
    g = Grid(100, 200, 600, 300)
    with RasterWriter(tmp_path / "sparse.tif", g, 2) as w:
        w.write(np.ones((2, 16, 16)), Window(0, 0, 16, 16))
    back = read_raster(tmp_path / "sparse.tif")
    assert (back[:, :16, :16] == 1).all()
    assert np.isnan(back).sum() == back.size - 2 * 16 * 16
