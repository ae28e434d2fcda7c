"""DEM resolution, coverage checks, tile mosaicking and geoid-to-ellipsoid sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from sarflow.dem import (DemSampler, bilinear, copernicus_name, dem_for_grid, index_tiles,
                         tiles_for_bounds)
from sarflow.errors import InputError
from sarflow.grid import Grid
from tests.rasters import write_geotiff

gdal.UseExceptions()


def _write_geotiff(path: Path, data: np.ndarray, west: float, north: float, step: float,
                   nodata: float | None = -32768) -> Path:
    return write_geotiff(path, data, (west, north), step, nodata=nodata)


def test_bilinear_hand_computed() -> None:
    data = np.array([[0.0, 10.0], [20.0, 40.0]])
    # centre of the four cells: mean of the corners; a quarter along both axes
    assert bilinear(data, np.array(0.5), np.array(0.5)) == pytest.approx(17.5)
    assert bilinear(data, np.array(0.25), np.array(0.75)) == pytest.approx(
        0.75 * (0.25 * 0 + 0.75 * 10) + 0.25 * (0.25 * 20 + 0.75 * 40))
    assert bilinear(data, np.array(1.0), np.array(1.0)) == pytest.approx(40.0)
    assert np.isnan(bilinear(data, np.array(-0.1), np.array(0.5)))
    assert np.isnan(bilinear(np.array([[0.0, np.nan], [1, 1]]), np.array(0.5), np.array(0.5)))


def test_rome_dem_geoid_heights_at_pixel_centres(fixtures_dir: Path) -> None:
    path = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    raw = gdal.Open(str(path)).ReadAsArray().astype(float)
    x0, dx, _, y0, _, dy = gdal.Open(str(path)).GetGeoTransform()
    rows, cols = np.mgrid[10:350:37, 5:355:41]
    lon, lat = x0 + (cols + 0.5) * dx, y0 + (rows + 0.5) * dy
    geoid = DemSampler(path, geoid=False).heights(lon, lat)
    np.testing.assert_allclose(geoid, raw[rows, cols], atol=1e-6)
    ell = DemSampler(path).heights(lon, lat)
    # EGM96 undulation near Rome is about +47 m (issue 5 facts)
    und = ell - geoid
    assert 45.0 < und.min() and und.max() < 50.0
    assert np.ptp(und) < 1.0


def test_geoid_to_ellipsoid_matches_copernicus_reference(fixtures_dir: Path) -> None:
    """dem-stitcher's LA crop in geoid and ellipsoid heights (EGM2008): differences well
    under 2 m once our EGM96 undulation is added (EGM96 vs EGM2008 here)."""
    geo = fixtures_dir / "dem" / "los_angeles_dem_geoid.tif"
    ell_ref = gdal.Open(str(fixtures_dir / "dem" / "los_angeles_dem_ellipsoid.tif")).ReadAsArray()
    ds = gdal.Open(str(geo))
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    rows, cols = np.mgrid[0:361:20, 0:361:20]
    lon, lat = x0 + (cols + 0.5) * dx, y0 + (rows + 0.5) * dy
    ell = DemSampler(geo).heights(lon, lat)
    diff = ell - ell_ref[rows, cols]
    assert np.isfinite(diff).all()
    assert np.abs(diff).max() < 2.0
    # and the undulation itself is large (about -35 m), so the conversion was applied
    assert (ell - ds.ReadAsArray()[rows, cols]).mean() < -30


def test_dem_for_grid_checks_coverage(fixtures_dir: Path) -> None:
    path = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    inside = Grid.from_bounds(12.47, 41.97, 12.50, 42.00)
    assert dem_for_grid(path, inside) == path
    outside = Grid.from_bounds(12.50, 41.97, 12.60, 42.00)
    with pytest.raises(InputError, match="does not cover the area"):
        dem_for_grid(path, outside)
    with pytest.raises(InputError, match="DEM not found"):
        dem_for_grid(path.with_name("nope.tif"), inside)


def _plane(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return 100.0 + 500.0 * (lat - 41.0) + 300.0 * (lon - 12.0)


def _tile(folder: Path, lat: int, lon: int, name: str, n: int = 120) -> Path:
    step = 1.0 / n
    cols, rows = np.meshgrid(np.arange(n), np.arange(n))
    lo = lon + (cols + 0.5) * step
    la = lat + 1 - (rows + 0.5) * step
    return _write_geotiff(folder / name, _plane(lo, la).astype(np.float32), lon, lat + 1, step)


def test_auto_mosaics_srtm_and_copernicus_tiles(tmp_path: Path) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _tile(tiles, 41, 12, "N41E012.tif")
    _tile(tiles, 42, 12, "N42E012.tif")
    sub = tiles / "cop"
    sub.mkdir()
    _tile(sub, 41, 13, copernicus_name(41, 13) + ".tif")
    _tile(sub, 42, 13, copernicus_name(42, 13) + ".tif")
    (tiles / "README.txt").write_text("not a tile")
    assert set(index_tiles(tiles)) == {(41, 12), (42, 12), (41, 13), (42, 13)}
    grid = Grid.from_bounds(12.95, 41.95, 13.05, 42.05)  # straddles all four tiles
    assert sorted(tiles_for_bounds((12.94, 41.94, 13.06, 42.06))) == [
        (41, 12), (41, 13), (42, 12), (42, 13)]
    path = dem_for_grid("auto", grid, dem_dir=tiles, out_dir=tmp_path / "work")
    assert path.suffix == ".vrt" and path.parent == tmp_path / "work"
    lon, lat = grid.coordinates()
    h = DemSampler(path, geoid=False).grid_heights(grid)
    # bilinear interpolation reproduces a plane exactly, across tile seams too
    np.testing.assert_allclose(h, _plane(lon, lat), atol=1e-3)


def test_auto_missing_tiles_error_and_download(tmp_path: Path, monkeypatch) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _tile(tiles, 41, 12, "N41E012.tif")
    grid = Grid.from_bounds(12.90, 41.40, 13.05, 41.50)  # needs N41E012 and N41E013
    with pytest.raises(InputError, match="N41E013") as err:
        dem_for_grid("auto", grid, dem_dir=tiles, out_dir=tmp_path / "work")
    assert "allow_download" in str(err.value)
    # a "remote" store reachable by URL (file://) stands in for the Copernicus bucket
    remote = tmp_path / "remote"
    remote.mkdir()
    _tile(remote, 41, 13, copernicus_name(41, 13) + ".tif")
    monkeypatch.setenv("SARFLOW_DEM_URL", remote.as_uri() + "/{name}.tif")
    path = dem_for_grid("auto", grid, dem_dir=tiles, allow_download=True,
                        out_dir=tmp_path / "work")
    assert (tiles / (copernicus_name(41, 13) + ".tif")).is_file()
    lon, lat = grid.coordinates()
    np.testing.assert_allclose(DemSampler(path, geoid=False).grid_heights(grid),
                               _plane(lon, lat), atol=1e-3)
    # a tile that the store does not have: one clear error
    grid2 = Grid.from_bounds(13.90, 41.40, 14.05, 41.50)
    with pytest.raises(InputError, match="cannot download DEM tile N41E014"):
        dem_for_grid("auto", grid2, dem_dir=tiles, allow_download=True, out_dir=tmp_path / "w")


def test_dem_without_data_over_area(tmp_path: Path) -> None:
    data = np.full((100, 100), -32768, dtype=np.int16)
    path = _write_geotiff(tmp_path / "void.tif", data, 12.0, 42.0, 0.01)
    with pytest.raises(InputError, match="no data over the area"):
        dem_for_grid(path, Grid.from_bounds(12.2, 41.3, 12.4, 41.5))


def test_lattice_heights_equal_pointwise_sampling(fixtures_dir: Path) -> None:
    """The separable lattice sampler gives the pointwise bilinear values, NaN outside."""
    sampler = DemSampler(fixtures_dir / "dem" / "Rome-30m-DEM.tif", geoid=False)
    grid = Grid.from_bounds(12.44, 41.96, 12.47, 41.99)  # reaches west of the DEM (12.4499)
    rows, cols = np.arange(grid.height), np.arange(grid.width)
    lon, lat = grid.lonlat(rows, cols)
    lattice = sampler.lattice_heights(lon, lat)
    lon2, lat2 = grid.coordinates()
    point = sampler.heights(lon2, lat2)
    np.testing.assert_array_equal(np.isnan(lattice), np.isnan(point))
    assert 0.2 < np.isnan(lattice).mean() < 0.5
    np.testing.assert_allclose(lattice[~np.isnan(point)], point[~np.isnan(point)], atol=1e-9)
