"""A synthetic co-seismic landslide inventory: many elongated scars of power-law sizes,
started on steep slopes and running downslope, written as a GeoPackage and rasterised
exactly as GDAL rasterises polygons (pixel centres inside).

The scar change model (``SimulationSettings.change_model = "scar"``) also changes the
ground surface: material leaves the upper 60 % of each landslide (by height within it) and
comes to rest in the lower 40 %, a half-sine depletion and a half-sine deposit of equal
volume.  The mean depletion depth follows the area-volume scaling of Larsen, Montgomery &
Korup (2010, Nature Geoscience 3:247-251): V = alpha A^gamma, global fit alpha = 0.146,
gamma = 1.332, so a 10,000 m^2 landslide is about 3 m deep.  The post-event surface sets
the scar's local incidence angle after the event; the pipeline's DEM stays pre-event, as
SRTM does.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid, atomic_path
from .settings import SimulationSettings
from .terrain import metric_spacing, smooth_field

_VERTICES = 24


@dataclass(frozen=True)
class Landslide:
    """One landslide polygon (closed ring of lon/lat vertices) and its area (m^2)."""

    ring: np.ndarray  # (n, 2) lon, lat; first vertex repeated at the end
    area_m2: float
    change_jitter_db: float


def _areas(n: int, rng: np.random.Generator, settings: SimulationSettings) -> np.ndarray:
    """Truncated power-law areas p(A) ~ A^-exponent between the settings' bounds."""
    a0, a1 = settings.landslide_area_m2
    k = settings.landslide_exponent - 1.0
    u = rng.random(n)
    lo, hi = a0 ** -k, a1 ** -k
    return (lo - u * (lo - hi)) ** (-1.0 / k)


def _shape(area: float, ratio: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Outline (along-slope u, cross-slope v) in metres of a scar starting at (0, 0) and
    running towards +u: a teardrop, widest downslope, with a ragged edge."""
    t = np.linspace(0.0, 2.0 * math.pi, _VERTICES, endpoint=False)
    rough = 1.0 + 0.12 * np.convolve(np.tile(rng.standard_normal(_VERTICES), 3),
                                     np.ones(3) / 3.0, mode="same")[_VERTICES:2 * _VERTICES]
    u = np.cos(t)
    v = np.sin(t) * (1.0 + 0.35 * u)
    x, y = u * rough, v * rough
    # scale to the requested area (shoelace) and length/width ratio
    a_unit = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    length = math.sqrt(area * ratio / a_unit)
    width = area / (a_unit * length)
    return (x + 1.0) * length, y * width


def make_landslides(dem: Grid, window: tuple[slice, slice], slope: np.ndarray,
                    p: np.ndarray, q: np.ndarray, rng: np.random.Generator,
                    settings: SimulationSettings) -> list[Landslide]:
    """Landslides whose sources lie in ``window`` (the event grid within the DEM), preferring
    steep slopes, until they cover ``settings.landslide_fraction`` of the window."""
    from matplotlib.path import Path as MplPath

    dxs, dy = metric_spacing(dem)
    rs, cs = window
    win_slope = slope[window]
    intensity = np.exp(0.8 * smooth_field(win_slope.shape, float(np.mean(dxs)), dy, rng, 4000.0))
    weight = intensity / (1.0 + np.exp(-(win_slope - 30.0) / 4.0))
    weight = weight.ravel() / weight.sum()
    area_total = float(np.sum(dxs[rs]) * dy * (cs.stop - cs.start))
    target = settings.landslide_fraction * area_total
    occupied = np.zeros(dem.shape, dtype=bool)
    slides: list[Landslide] = []
    covered = 0.0
    tries = 0
    while covered < target and tries < 40:
        tries += 1
        n = 4000
        src = rng.choice(weight.size, size=n, p=weight)
        areas = _areas(n, rng, settings)
        ratios = rng.uniform(1.8, 4.0, n)
        jitter = rng.normal(0.0, settings.change_jitter_db, n)
        for k in range(n):
            r = rs.start + src[k] // win_slope.shape[1]
            c = cs.start + src[k] % win_slope.shape[1]
            down = math.atan2(-float(q[r, c]), -float(p[r, c]))  # steepest descent, E-N angle
            u, v = _shape(float(areas[k]), float(ratios[k]), rng)
            e = u * math.cos(down) - v * math.sin(down)
            nn = u * math.sin(down) + v * math.cos(down)
            # outline in fractional (row, col) of the DEM
            rows = r - nn / dy
            cols = c + e / dxs[r]
            r0, r1 = int(math.floor(rows.min())), int(math.ceil(rows.max())) + 1
            c0, c1 = int(math.floor(cols.min())), int(math.ceil(cols.max())) + 1
            if r0 < 1 or c0 < 1 or r1 >= dem.height - 1 or c1 >= dem.width - 1:
                continue
            rr, cc = np.mgrid[r0:r1, c0:c1]
            inside = MplPath(np.stack([cols, rows], axis=1)).contains_points(
                np.stack([cc.ravel(), rr.ravel()], axis=1)).reshape(rr.shape)
            if not inside.any() or occupied[r0:r1, c0:c1][inside].any():
                continue
            # keep a one-cell gap to the neighbours
            grown = inside.copy()
            grown[1:] |= inside[:-1]
            grown[:-1] |= inside[1:]
            grown[:, 1:] |= inside[:, :-1]
            grown[:, :-1] |= inside[:, 1:]
            occupied[r0:r1, c0:c1] |= grown
            lon, lat = dem.lonlat(rows, cols)
            ring = np.stack([lon, lat], axis=1)
            ring = np.vstack([ring, ring[:1]])
            slides.append(Landslide(ring=ring, area_m2=float(areas[k]),
                                    change_jitter_db=float(jitter[k])))
            covered += float(areas[k])
            if covered >= target:
                break
    return slides


def scar_surface_change(slide_id: np.ndarray, height: np.ndarray, slides: list[Landslide],
                        depth: tuple[float, float]) -> np.ndarray:
    """Height change (m, float64; < 0 depletion, > 0 deposit) of every DEM cell caused by
    the landslides (module docstring); 0 outside them."""
    from scipy import ndimage

    out = np.zeros(height.shape)
    if not slides:
        return out
    idx = np.arange(1, len(slides) + 1)
    hmax = np.zeros(len(slides) + 1)
    hmin = np.zeros(len(slides) + 1)
    hmax[1:] = ndimage.maximum(height, slide_id, idx)
    hmin[1:] = ndimage.minimum(height, slide_id, idx)
    alpha, gamma = depth
    area = np.array([0.0] + [sl.area_m2 for sl in slides])
    d = 0.5 * math.pi * alpha * np.maximum(area, 1.0) ** (gamma - 1.0)  # peak depletion depth
    sel = slide_id > 0
    ids = slide_id[sel]
    span = np.maximum(hmax[ids] - hmin[ids], 1e-6)
    t = (hmax[ids] - height[sel]) / span  # 0 at the crown, 1 at the toe
    dh = np.where(t < 0.6, -d[ids] * np.sin(math.pi * t / 0.6),
                  1.5 * d[ids] * np.sin(math.pi * (t - 0.6) / 0.4))
    out[sel] = dh
    return out


def _memory_layer(slides: list[Landslide]):
    """An OGR in-memory layer of the polygons with an integer ``id`` (1-based)."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    ds = ogr.GetDriverByName("Memory").CreateDataSource("slides")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = ds.CreateLayer("landslides", srs, ogr.wkbPolygon)
    _fill(layer, slides)
    return ds, layer


def _fill(layer, slides: list[Landslide], change_db: dict[str, float] | None = None) -> None:
    from osgeo import ogr

    layer.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("area_m2", ogr.OFTReal))
    for pol in (change_db or {}):
        layer.CreateField(ogr.FieldDefn(f"change_{pol.lower()}_db", ogr.OFTReal))
    defn = layer.GetLayerDefn()
    for i, s in enumerate(slides, start=1):
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for lon, lat in s.ring:
            ring.AddPoint_2D(float(lon), float(lat))
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        feat = ogr.Feature(defn)
        feat.SetField("id", i)
        feat.SetField("area_m2", round(s.area_m2, 1))
        for pol, base in (change_db or {}).items():
            feat.SetField(f"change_{pol.lower()}_db", round(base + s.change_jitter_db, 3))
        feat.SetGeometry(poly)
        feat.SetFID(i)
        layer.CreateFeature(feat)


def rasterize_ids(slides: list[Landslide], grid: Grid) -> np.ndarray:
    """Landslide id (1-based, 0 none) of every cell of ``grid``, pixel centres inside."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    out = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Int32)
    out.SetGeoTransform(grid.geotransform)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    out.SetProjection(srs.ExportToWkt())
    if slides:
        ds, layer = _memory_layer(slides)
        gdal.RasterizeLayer(out, [1], layer, options=["ATTRIBUTE=id"])
    return out.GetRasterBand(1).ReadAsArray().astype(np.int32)


def write_inventory(path: str | os.PathLike, slides: list[Landslide],
                    change_db: dict[str, float] | None = None) -> Path:
    """Write the polygons as a GeoPackage (EPSG:4326), reproducibly: fields ``id``,
    ``area_m2`` and, with ``change_db``, each landslide's simulated backscatter change
    ``change_<pol>_db`` (post - pre)."""
    from osgeo import gdal, ogr, osr

    ogr.UseExceptions()
    path = Path(path)
    with atomic_path(path) as tmp:
        old = gdal.GetConfigOption("OGR_CURRENT_DATE")
        gdal.SetConfigOption("OGR_CURRENT_DATE", "2000-01-01T00:00:00.000Z")
        try:
            ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
            srs = osr.SpatialReference()
            srs.ImportFromEPSG(4326)
            layer = ds.CreateLayer("landslides", srs, ogr.wkbPolygon,
                                   options=["SPATIAL_INDEX=NO"])
            ds.StartTransaction()
            _fill(layer, slides, change_db)
            ds.CommitTransaction()
            ds = None
        finally:
            gdal.SetConfigOption("OGR_CURRENT_DATE", old)
    return path
