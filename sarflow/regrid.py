"""Resample a georeferenced raster in any CRS onto the event lattice (EPSG:4326).

The rule: **area averaging where the source is finer than the lattice, bilinear where it
is coarser** (or about as fine).  Finer means a source pixel smaller, in metres, than a
lattice pixel at the grid's centre latitude by more than 5 %; there every lattice pixel is
the mean of the source pixels that overlap it, weighted by the overlap (GDAL's
``average``), which keeps the speckle statistics of a multi-look.  A coarser source is
interpolated bilinearly between the four nearest source pixel centres.  Nodata (NaN, or
the file's nodata value) never enters a mean: GDAL renormalises over the valid pixels.

Backscatter is resampled in **linear power**: the caller converts dB or amplitude first,
since averaging dB values is a geometric, not an arithmetic, mean.  Coordinates are
transformed exactly (GDAL's error threshold 0), so the result does not depend on GDAL's
approximate transformer.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from .errors import CorruptInputError, InputError
from .grid import CRS_EPSG, Grid

FINER_MARGIN = 0.05
"""A source counts as finer than the lattice when its pixel is this much smaller."""


def _gdal():
    from osgeo import gdal

    gdal.UseExceptions()
    return gdal


def lattice_pixel_m(grid: Grid) -> float:
    """The size of a lattice pixel in metres at the grid's centre (square root of its area)."""
    lat = (grid.north + grid.south) / 2
    return grid.spacing * 111_320.0 * math.sqrt(max(math.cos(math.radians(lat)), 1e-6))


def source_pixel_m(ds) -> float:
    """A GDAL dataset's pixel size in metres (square root of the pixel area)."""
    from osgeo import osr

    gt = ds.GetGeoTransform()
    area = abs(gt[1] * gt[5] - gt[2] * gt[4])
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    if srs.IsGeographic():
        lat = gt[3] + gt[5] * ds.RasterYSize / 2
        return math.sqrt(area) * 111_320.0 * math.sqrt(max(math.cos(math.radians(lat)), 1e-6))
    return math.sqrt(area) * srs.GetLinearUnits()


def choose_method(source_m: float, target_m: float) -> str:
    """``average`` when the source pixel is finer than the target's, else ``bilinear``."""
    return "average" if source_m < target_m * (1 - FINER_MARGIN) else "bilinear"


def open_raster(path: str, need_crs: bool = True):
    """A GDAL dataset; a one-line error when it is unreadable (or, with ``need_crs``, not
    georeferenced)."""
    gdal = _gdal()
    try:
        ds = gdal.Open(path)
    except RuntimeError as exc:
        raise CorruptInputError(f"cannot read raster {path}: {' '.join(str(exc).split())}") from None
    if need_crs and not ds.GetProjection():
        raise InputError(f"{path} has no coordinate reference system; georeference it first")
    return ds


def _source_window(ds, grid: Grid, margin: int = 3) -> Optional[tuple[int, int, int, int]]:
    """(col, row, width, height) of the source pixels the grid needs, or None if disjoint."""
    from osgeo import osr

    src = osr.SpatialReference(wkt=ds.GetProjection())
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(CRS_EPSG)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(dst, src)
    w, s_, e, n = grid.bounds
    pts = [(w + (e - w) * i / 8, s_ + (n - s_) * j / 8) for i in range(9) for j in range(9)]
    xy = np.array([tr.TransformPoint(lon, lat)[:2] for lon, lat in pts])
    gt = ds.GetGeoTransform()
    det = gt[1] * gt[5] - gt[2] * gt[4]
    dx, dy = xy[:, 0] - gt[0], xy[:, 1] - gt[3]
    cols = (gt[5] * dx - gt[2] * dy) / det
    rows = (-gt[4] * dx + gt[1] * dy) / det
    c0 = max(0, int(math.floor(cols.min())) - margin)
    r0 = max(0, int(math.floor(rows.min())) - margin)
    c1 = min(ds.RasterXSize, int(math.ceil(cols.max())) + margin)
    r1 = min(ds.RasterYSize, int(math.ceil(rows.max())) + margin)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0, r0, c1 - c0, r1 - r0


def resample_to_grid(path: str, grid: Grid, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                     method: str | None = None, band: int = 1, nodata: float | None = None
                     ) -> tuple[np.ndarray, str]:
    """One band of ``path`` on ``grid`` as float32 (h, w), NaN where the source has no data.

    ``transform`` is applied to the source pixels before resampling (e.g. dB to linear
    power); ``method`` defaults to :func:`choose_method`'s (``average``/``bilinear``;
    ``nearest`` for class rasters).  ``nodata`` overrides the file's nodata value.
    Returns (pixels, the method used).
    """
    gdal = _gdal()
    ds = open_raster(path)
    if method is None:
        method = choose_method(source_pixel_m(ds), lattice_pixel_m(grid))
    out = np.full(grid.shape, np.nan, np.float32)
    win = _source_window(ds, grid)
    if win is None:
        return out, method
    c0, r0, wc, hr = win
    b = ds.GetRasterBand(band)
    try:
        raw = b.ReadAsArray(c0, r0, wc, hr).astype(np.float64)
    except RuntimeError as exc:
        raise CorruptInputError(f"cannot read pixels of {path}: {' '.join(str(exc).split())}") from None
    nd = nodata if nodata is not None else b.GetNoDataValue()
    if nd is not None and not math.isnan(nd):
        raw[raw == nd] = np.nan
    data = (transform(raw) if transform is not None else raw).astype(np.float32)
    gt = ds.GetGeoTransform()
    sub_gt = (gt[0] + c0 * gt[1] + r0 * gt[2], gt[1], gt[2],
              gt[3] + c0 * gt[4] + r0 * gt[5], gt[4], gt[5])
    mem = gdal.GetDriverByName("MEM").Create("", wc, hr, 1, gdal.GDT_Float32)
    mem.SetGeoTransform(sub_gt)
    mem.SetProjection(ds.GetProjection())
    mb = mem.GetRasterBand(1)
    mb.SetNoDataValue(float("nan"))
    mb.WriteArray(data)
    dst = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Float32)
    dst.SetGeoTransform(grid.geotransform)
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(CRS_EPSG)
    dst.SetProjection(srs.ExportToWkt())
    db = dst.GetRasterBand(1)
    db.SetNoDataValue(float("nan"))
    db.Fill(float("nan"))
    gdal.Warp(dst, mem, resampleAlg=method, errorThreshold=0, srcNodata="nan", dstNodata="nan",
              multithread=False)
    out[:] = db.ReadAsArray()
    return out, method


def describe_method(method: str) -> str:
    """The resampling rule behind a method name, for output tags."""
    return {"average": "area average (source finer than the lattice)",
            "bilinear": "bilinear (source coarser than, or as fine as, the lattice)",
            "nearest": "nearest neighbour (class raster)"}.get(method, method)


def on_lattice(path: str) -> bool:
    """True when a raster already lies on sarflow's EPSG:4326 lattice."""
    from osgeo import osr

    from .errors import GridMismatchError

    ds = open_raster(path)
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    if srs.GetAuthorityCode(None) != str(CRS_EPSG) and not (srs.IsGeographic() and srs.GetAttrValue("DATUM") == "WGS_1984"):
        return False
    try:
        Grid.from_geotransform(ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize)
    except GridMismatchError:
        return False
    return True


def regrid_file(path: str, out_path, spacing: float | None = None) -> tuple["Path", str]:
    """Every band of ``path`` (any CRS) resampled onto the lattice window covering it, written
    to ``out_path`` with the band descriptions and tags kept; returns (path, method used).

    Values are resampled as they are (no power conversion): meant for derived rasters such
    as the change groups, in dB.
    """
    from pathlib import Path

    from .grid import SPACING, write_raster

    ds = open_raster(path)
    footprint, _ = raster_footprint(path)
    grid = Grid.from_bounds(*footprint.bounds, spacing=spacing or SPACING)
    bands, method = [], "bilinear"
    for b in range(1, ds.RasterCount + 1):
        data, method = resample_to_grid(path, grid, band=b)
        bands.append(data)
    descriptions = [ds.GetRasterBand(b).GetDescription() or f"band_{b}" for b in range(1, ds.RasterCount + 1)]
    tags = dict(ds.GetMetadata() or {})
    tags.update({"regridded_from": str(path), "regrid_method": describe_method(method)})
    write_raster(out_path, np.stack(bands), grid, descriptions, tags)
    return Path(out_path), method


def raster_footprint(path: str) -> tuple[Any, float]:
    """(lon/lat polygon of a raster's extent, centre longitude), from its own CRS."""
    from osgeo import osr
    from shapely.geometry import Polygon

    ds = open_raster(path)
    gt, w, h = ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize
    src = osr.SpatialReference(wkt=ds.GetProjection())
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    edge = []
    n = 8
    for i in range(n):  # densified outline: UTM edges are not straight in lon/lat
        edge.append((w * i / n, 0))
    for i in range(n):
        edge.append((w, h * i / n))
    for i in range(n):
        edge.append((w - w * i / n, h))
    for i in range(n):
        edge.append((0, h - h * i / n))
    pts = []
    for c, r in edge:
        x, y = gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]
        lon, lat, _ = tr.TransformPoint(x, y)
        pts.append((lon, lat))
    poly = Polygon(pts)
    return poly, float(poly.centroid.x)
