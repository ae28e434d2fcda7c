"""EGM96 geoid undulation, for converting DEM heights (above the geoid) to WGS84 ellipsoid
heights, which is what range-Doppler geometry needs.

The grid is Debian proj-data's ``egm96_15.gtx`` (15 arc-minutes, read once through GDAL),
interpolated bilinearly with longitude wrap-around.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ..errors import DependencyError

EGM96_CANDIDATES = (
    "/usr/share/proj/egm96_15.gtx",
    "/usr/local/share/proj/egm96_15.gtx",
)


def egm96_path() -> Path:
    """The EGM96 grid file: $SARFLOW_EGM96, else proj-data's usual places."""
    env = os.environ.get("SARFLOW_EGM96")
    for cand in ([env] if env else []) + list(EGM96_CANDIDATES):
        if cand and Path(cand).is_file():
            return Path(cand)
    raise DependencyError("EGM96 geoid grid egm96_15.gtx not found: install Debian's proj-data "
                          "(apt-get install proj-data) or set SARFLOW_EGM96 to the .gtx file")


@functools.lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, float, float, float, float]:
    """(undulation array, lon of column 0 centre, lat of row 0 centre, dlon, dlat)."""
    from osgeo import gdal

    gdal.UseExceptions()
    ds = gdal.Open(str(egm96_path()))
    arr = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
    gt = ds.GetGeoTransform()
    lon0 = gt[0] + gt[1] / 2.0
    lat0 = gt[3] + gt[5] / 2.0
    return arr, lon0, lat0, gt[1], gt[5]


def geoid_undulation(lat: np.ndarray | float, lon: np.ndarray | float) -> np.ndarray:
    """EGM96 geoid height above the WGS84 ellipsoid (m) at lat/lon degrees (bilinear)."""
    arr, lon0, lat0, dlon, dlat = _grid()
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat, lon = np.broadcast_arrays(lat, lon)
    nrow, ncol = arr.shape
    x = ((lon - lon0) / dlon) % ncol
    y = np.clip((lat - lat0) / dlat, 0.0, nrow - 1.0)
    c0 = np.floor(x).astype(np.intp)
    r0 = np.minimum(np.floor(y).astype(np.intp), nrow - 2)
    fx, fy = x - c0, y - r0
    c1 = (c0 + 1) % ncol
    v = ((1 - fy) * ((1 - fx) * arr[r0, c0] + fx * arr[r0, c1])
         + fy * ((1 - fx) * arr[r0 + 1, c0] + fx * arr[r0 + 1, c1]))
    return v


def geoid_to_ellipsoid(h: np.ndarray | float, lat: np.ndarray | float,
                       lon: np.ndarray | float) -> np.ndarray:
    """Heights above the EGM96 geoid to heights above the WGS84 ellipsoid (m)."""
    return np.asarray(h, dtype=np.float64) + geoid_undulation(lat, lon)
