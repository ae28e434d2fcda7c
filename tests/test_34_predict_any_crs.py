"""`sarflow predict` on a raster in another CRS: regridded onto the lattice first, and says so;
on the lattice: mapped on its own grid, and says so."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from osgeo import gdal, ogr, osr

from sarflow.cli import cli
from sarflow.grid import raster_info, read_raster
from sarflow.modelio import save_model

from test_33_predict import CHANNELS, _meta, _step_model  # tests/ is on sys.path under pytest


def _utm_group(path, data, origin, pixel=20.0, epsg=32632):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1], 2, gdal.GDT_Float32)
    ds.SetGeoTransform((origin[0], pixel, 0, origin[1], 0, -pixel))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetMetadata({"group": "G1"})
    for i in range(2):
        ds.GetRasterBand(i + 1).WriteArray(data[i])
        ds.GetRasterBand(i + 1).SetDescription(CHANNELS[i])
    ds = None


def test_predict_regrids_a_utm_raster(tmp_path):
    model = tmp_path / "step.keras"
    save_model(_step_model(), model, _meta(patch=32))
    data = np.zeros((2, 100, 100), np.float32)
    data[0, 30:50, 40:60] = 1.0     # a 400 m x 400 m square where band 0 is 1 (prob ~ 1)
    _utm_group(tmp_path / "g1_utm.tif", data, (530000.0, 5095000.0))
    res = CliRunner().invoke(cli, ["predict", str(model), str(tmp_path / "g1_utm.tif"),
                                   "-o", str(tmp_path / "o"), "--batch-size", "4"])
    assert res.exit_code == 0, res.output
    assert "not on the sarflow lattice: regridded onto it first" in res.output
    assert "bilinear" in res.output  # 20 m is coarser than the 10 m lattice
    info = raster_info(tmp_path / "o" / "probability.tif")   # on the lattice (raster_info checks)
    assert raster_info(tmp_path / "o" / "input_on_lattice.tif").descriptions == tuple(CHANNELS)
    mask = read_raster(tmp_path / "o" / "mask.tif")[0]
    assert info.grid.shape == mask.shape and (mask == 1).sum() > 0
    ds = ogr.Open(str(tmp_path / "o" / "landslides.gpkg"))
    layer = ds.GetLayer(0)
    areas = [f.GetField("area_m2") for f in layer]
    assert len(areas) == 1 and abs(areas[0] - 160000.0) / 160000.0 < 0.1


def test_predict_says_own_grid_on_the_lattice(tmp_path):
    from sarflow.grid import Grid, write_raster

    model = tmp_path / "step.keras"
    save_model(_step_model(), model, _meta(patch=32))
    grid = Grid(col0=1_580_000, row0=475_000, width=40, height=40)
    write_raster(tmp_path / "G1.tif", np.zeros((2, 40, 40), np.float32), grid,
                 descriptions=CHANNELS, tags={"group": "G1"})
    res = CliRunner().invoke(cli, ["predict", str(model), str(tmp_path / "G1.tif"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "on its own grid" in res.output
    assert not (tmp_path / "o" / "input_on_lattice.tif").exists()
