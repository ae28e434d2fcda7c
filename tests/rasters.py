"""A GeoTIFF writer for test inputs (DEM tiles, UTM products): north-up, one band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal, osr


def write_geotiff(path: Path, data: np.ndarray, origin: tuple[float, float], step: float,
                  epsg: int = 4326, nodata: float | None = None) -> Path:
    """``data`` at ``origin`` (west, north) with square pixels of ``step`` in EPSG ``epsg``;
    float data as Float32, integers as Int16."""
    gdt = gdal.GDT_Float32 if data.dtype.kind == "f" else gdal.GDT_Int16
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, gdt)
    ds.SetGeoTransform((origin[0], step, 0, origin[1], 0, -step))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    if nodata is not None:
        ds.GetRasterBand(1).SetNoDataValue(nodata)
    ds.GetRasterBand(1).WriteArray(data)
    ds = None
    return path
