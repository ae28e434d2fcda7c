"""The DEM for an event grid: a GeoTIFF, or SRTM 1" / Copernicus 30 m tiles mosaicked.

Terrain correction needs, for every grid pixel, the terrain height above the WGS84
ellipsoid.  DEMs come with heights above the EGM96 geoid (SRTM; Copernicus GLO-30 uses
EGM2008, which differs from EGM96 by well under 2 m almost everywhere, a few hundredths of
a pixel here), so :class:`DemSampler` samples the DEM bilinearly at the grid's pixel
centres and adds the geoid undulation (``sarflow.sentinel1.geoid``).

``dem_for_grid`` resolves the config's ``dem`` setting: a GeoTIFF path is checked for
coverage; ``auto`` mosaics the 1 x 1 degree tiles found in a local folder into a VRT and
downloads missing tiles (Copernicus GLO-30 from its public bucket) only when allowed.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import CorruptInputError, InputError
from .grid import Grid, Window, atomic_path

COPERNICUS_URL = ("https://copernicus-dem-30m.s3.amazonaws.com/"
                  "{name}/{name}.tif")
"""Where ``auto`` downloads missing tiles from (override with ``SARFLOW_DEM_URL``; the
template gets ``{name}``, the Copernicus tile name without extension)."""

DEM_MARGIN_DEG = 0.01
"""Margin around the grid that the DEM must cover (bilinear neighbours, resampling)."""

_SRTM_RE = re.compile(r"^([NS])(\d{2})([EW])(\d{3})(?:\.SRTMGL1)?\.(?:hgt|tif|tiff|hgt\.zip)$",
                      re.IGNORECASE)
_COP_RE = re.compile(
    r"^Copernicus_DSM_(?:COG_)?10_([NS])(\d{2})_00_([EW])(\d{3})_00_DEM\.(?:tif|tiff|dt2)$",
    re.IGNORECASE)


# ------------------------------------------------------------------------------------
# tiles
# ------------------------------------------------------------------------------------

def tile_id(lat: int, lon: int) -> str:
    """SRTM-style id of the 1 x 1 degree tile whose south-west corner is (lat, lon)."""
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"


def copernicus_name(lat: int, lon: int) -> str:
    """Copernicus GLO-30 COG name of the tile whose south-west corner is (lat, lon)."""
    return (f"Copernicus_DSM_COG_10_{'N' if lat >= 0 else 'S'}{abs(lat):02d}_00_"
            f"{'E' if lon >= 0 else 'W'}{abs(lon):03d}_00_DEM")


def tiles_for_bounds(bounds: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """(lat, lon) south-west corners of the 1-degree tiles that cover the bounds."""
    west, south, east, north = bounds
    lats = range(math.floor(south), math.ceil(north))
    lons = range(math.floor(west), math.ceil(east))
    return [(la, lo) for la in lats for lo in lons]


def _parse_tile(name: str) -> tuple[str, tuple[int, int]] | None:
    for kind, rx in (("srtm", _SRTM_RE), ("copernicus", _COP_RE)):
        m = rx.match(name)
        if m:
            ns, lat, ew, lon = m.groups()
            la = int(lat) * (1 if ns.upper() == "N" else -1)
            lo = int(lon) * (1 if ew.upper() == "E" else -1)
            return kind, (la, lo)
    return None


def index_tiles(folder: Path) -> dict[tuple[int, int], Path]:
    """Tiles found under ``folder`` (recursively), keyed by (lat, lon); SRTM preferred."""
    found: dict[tuple[int, int], tuple[str, Path]] = {}
    if not folder.is_dir():
        return {}
    for p in sorted(folder.rglob("*")):
        parsed = _parse_tile(p.name) if p.is_file() else None
        if parsed is None:
            continue
        kind, key = parsed
        if key not in found or (kind == "srtm" and found[key][0] != "srtm"):
            found[key] = (kind, p)
    return {k: v[1] for k, v in found.items()}


def _gdal_name(path: Path) -> str:
    """GDAL's name for a tile (zipped SRTM tiles are read in place)."""
    if path.name.lower().endswith(".hgt.zip"):
        inner = path.name[: -len(".zip")]
        inner = inner.replace(".SRTMGL1", "")
        return f"/vsizip/{path}/{inner}"
    return str(path)


def download_tile(lat: int, lon: int, folder: Path, url_template: str | None = None) -> Path:
    """Fetch one Copernicus GLO-30 tile into ``folder`` (atomic); InputError when it fails."""
    name = copernicus_name(lat, lon)
    url = (url_template or os.environ.get("SARFLOW_DEM_URL") or COPERNICUS_URL).format(name=name)
    dest = folder / f"{name}.tif"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=120) as resp, atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(resp, fh)
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(f"cannot download DEM tile {tile_id(lat, lon)} from {url}: {exc}; "
                         f"put the tile into {folder} yourself") from None
    return dest


def mosaic_tiles(bounds: tuple[float, float, float, float], dem_dir: Path | None,
                 out_dir: Path, allow_download: bool = False) -> Path:
    """A VRT mosaic of the tiles covering ``bounds`` (downloading missing ones if allowed)."""
    from osgeo import gdal

    gdal.UseExceptions()
    need = tiles_for_bounds(bounds)
    folder = Path(dem_dir) if dem_dir else Path(out_dir) / "tiles"
    index = index_tiles(folder)
    missing = [t for t in need if t not in index]
    if missing and allow_download:
        for lat, lon in missing:
            index[(lat, lon)] = download_tile(lat, lon, folder)
        missing = []
    if missing:
        names = ", ".join(tile_id(*t) for t in missing)
        raise InputError(
            f"DEM tiles missing for the area: {names}; put SRTM 1 arc-second (e.g. "
            f"{tile_id(*missing[0])}.hgt) or Copernicus GLO-30 tiles into {folder}, "
            "or set allow_download: true")
    files = [_gdal_name(index[t]) for t in need]
    w, s, e, n = bounds
    out = Path(out_dir) / f"dem_{_bounds_tag(bounds)}.vrt"
    with atomic_path(out) as tmp:
        try:
            vrt = gdal.BuildVRT(str(tmp), files, resolution="highest", srcNodata=-32768,
                                VRTNodata=-32768)
        except RuntimeError as exc:
            raise CorruptInputError(f"cannot mosaic DEM tiles {files}: {exc}") from None
        if vrt is None:
            raise CorruptInputError(f"cannot mosaic DEM tiles {files}")
        vrt = None  # noqa: F841 - flushes the VRT
    return out


def _bounds_tag(bounds: Iterable[float]) -> str:
    return "_".join(f"{b:.4f}" for b in bounds).replace("-", "m")


# ------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemInfo:
    """Size, georeference and nodata of a DEM raster (north-up EPSG:4326)."""

    width: int
    height: int
    geotransform: tuple[float, ...]
    nodata: float | None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, dx, _, y0, _, dy = self.geotransform
        return x0, y0 + dy * self.height, x0 + dx * self.width, y0


class DemSampler:
    """Bilinear DEM heights at any (lon, lat), geoid (EGM96) or ellipsoidal.

    Reads only the DEM window each request needs, so memory follows the block size.
    """

    def __init__(self, path: str | os.PathLike, geoid: bool = True) -> None:
        from osgeo import gdal, osr

        gdal.UseExceptions()
        self.path = Path(path)
        self.geoid = geoid
        if not self.path.exists():
            raise InputError(f"DEM not found: {self.path}")
        try:
            self._ds = gdal.Open(str(self.path))
        except RuntimeError as exc:
            raise CorruptInputError(f"cannot read DEM {self.path}: {exc}") from None
        gt = self._ds.GetGeoTransform()
        if gt[2] != 0 or gt[4] != 0 or gt[5] >= 0:
            raise InputError(f"DEM {self.path} is rotated or not north-up; warp it to "
                             "EPSG:4326 (gdalwarp -t_srs EPSG:4326)")
        wkt = self._ds.GetProjection()
        if wkt:
            srs = osr.SpatialReference(wkt=wkt)
            if not (srs.IsGeographic() and srs.GetAuthorityCode("GEOGCS") in (None, "4326")):
                raise InputError(f"DEM {self.path} is not in EPSG:4326 longitude/latitude; "
                                 "warp it with gdalwarp -t_srs EPSG:4326")
        band = self._ds.GetRasterBand(1)
        self._lock = threading.Lock()  # one GDAL dataset: reads from threads take turns
        self.info = DemInfo(self._ds.RasterXSize, self._ds.RasterYSize, tuple(gt),
                            band.GetNoDataValue())

    # -- coverage -------------------------------------------------------------------------
    def check_covers(self, grid: Grid, margin: float = 0.0) -> None:
        """InputError unless the DEM's extent covers the grid (plus ``margin`` degrees)."""
        w, s, e, n = self.info.bounds
        gw, gs, ge, gn = grid.bounds
        half = abs(self.info.geotransform[1]) / 2
        if gw - margin < w + half or ge + margin > e - half or \
                gs - margin < s + half or gn + margin > n - half:
            raise InputError(
                f"DEM {self.path} (lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f}) does not cover "
                f"the area (lon {gw:.4f}..{ge:.4f}, lat {gs:.4f}..{gn:.4f}); use a larger DEM "
                "or dem: auto with tiles for the whole area")

    # -- sampling -------------------------------------------------------------------------
    def _pixel(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x0, dx, _, y0, _, dy = self.info.geotransform
        return (lon - x0) / dx - 0.5, (lat - y0) / dy - 0.5

    def heights(self, lon: np.ndarray, lat: np.ndarray, geoid: bool | None = None
                ) -> np.ndarray:
        """Heights (float64, metres) at the points: ellipsoidal when the DEM holds geoid
        heights (``geoid`` overrides the sampler's setting; False: the DEM's own values).

        NaN where the DEM has no data or the point lies outside it.
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        x, y = self._pixel(lon, lat)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            return np.full(lon.shape, np.nan)
        c0 = max(int(np.floor(np.nanmin(x[ok]))), 0)
        r0 = max(int(np.floor(np.nanmin(y[ok]))), 0)
        c1 = min(int(np.floor(np.nanmax(x[ok]))) + 2, self.info.width)
        r1 = min(int(np.floor(np.nanmax(y[ok]))) + 2, self.info.height)
        if c1 <= c0 or r1 <= r0:
            return np.full(lon.shape, np.nan)
        data = self.read(Window(r0, c0, r1 - r0, c1 - c0))
        h = bilinear(data, y - r0, x - c0)
        if self.geoid if geoid is None else geoid:
            h = geoid_to_ellipsoid(h, lat, lon)
        return h

    def lattice_heights(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Heights at every (lat[i], lon[j]) of 1-D coordinate vectors (a lat/lon lattice),
        bilinear and separable (rows, then columns), without the geoid: (len(lat), len(lon)).

        NaN where the DEM has no data or the point lies outside it.
        """
        x, y = self._pixel(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        out = np.full((y.size, x.size), np.nan)
        eps = 1e-6
        okx = (x >= -eps) & (x <= self.info.width - 1 + eps)
        oky = (y >= -eps) & (y <= self.info.height - 1 + eps)
        if not okx.any() or not oky.any():
            return out
        xs, ys = np.clip(x[okx], 0, self.info.width - 1), np.clip(y[oky], 0, self.info.height - 1)
        c0, r0 = int(np.floor(xs.min())), int(np.floor(ys.min()))
        c1 = min(int(np.floor(xs.max())) + 2, self.info.width)
        r1 = min(int(np.floor(ys.max())) + 2, self.info.height)
        data = self.read(Window(r0, c0, r1 - r0, c1 - c0))
        ri = np.minimum(np.floor(ys) - r0, max(data.shape[0] - 2, 0)).astype(np.intp)
        ci = np.minimum(np.floor(xs) - c0, max(data.shape[1] - 2, 0)).astype(np.intp)
        fy = (ys - r0 - ri)[:, None]
        fx = xs - c0 - ci
        r1i = np.minimum(ri + 1, data.shape[0] - 1)
        c1i = np.minimum(ci + 1, data.shape[1] - 1)
        top = data[ri]
        rows = data[r1i] - top
        rows *= fy
        rows += top
        left = np.take(rows, ci, axis=1)
        val = np.take(rows, c1i, axis=1)
        val -= left
        val *= fx
        val += left
        # coordinates are monotonic, so the inside points form one block of the lattice
        iy, ix = np.flatnonzero(oky), np.flatnonzero(okx)
        out[iy[0]:iy[-1] + 1, ix[0]:ix[-1] + 1] = val
        return out

    def read(self, window: Window) -> np.ndarray:
        """DEM pixels of a window as float64 with NaN for nodata."""
        try:
            with self._lock:
                arr = self._ds.GetRasterBand(1).ReadAsArray(window.col, window.row, window.width,
                                                            window.height)
        except RuntimeError as exc:
            raise CorruptInputError(f"cannot read DEM {self.path}: {exc}") from None
        arr = arr.astype(np.float64)
        nd = self.info.nodata
        if nd is not None and not math.isnan(nd):
            arr[arr == nd] = np.nan
        arr[arr < -1000] = np.nan  # SRTM voids written as -32767/-32768 without nodata
        return arr

    def grid_heights(self, grid: Grid, window: Window | None = None) -> np.ndarray:
        """Heights at the pixel centres of a window of ``grid`` (float64, NaN = no data)."""
        lon, lat = grid.coordinates(window)
        return self.heights(lon, lat)

    def height_range(self, grid: Grid, step: int = 4) -> tuple[float, float]:
        """(min, max) height over the grid, from every ``step``-th pixel and the DEM itself."""
        x0, dx, _, y0, _, dy = self.info.geotransform
        w, s, e, n = grid.bounds
        c0 = max(int((w - x0) / dx) - 1, 0)
        c1 = min(int((e - x0) / dx) + 2, self.info.width)
        r0 = max(int((n - y0) / dy) - 1, 0)
        r1 = min(int((s - y0) / dy) + 2, self.info.height)
        data = self.read(Window(r0, c0, r1 - r0, c1 - c0))
        if not np.isfinite(data).any():
            raise InputError(f"DEM {self.path} has no data over the area {grid.bounds}; "
                             "use a DEM that covers it")
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        if not self.geoid:
            return lo, hi
        lon, lat = np.meshgrid(np.linspace(w, e, 5), np.linspace(s, n, 5))
        und = geoid_to_ellipsoid(np.zeros_like(lon), lat, lon)
        return lo + float(und.min()), hi + float(und.max())


def bilinear(data: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``data`` at fractional (row, col); NaN outside or next to NaN.

    Integer (row, col) are the centres of data[row, col].
    """
    h, w = data.shape
    eps = 1e-6  # points on the outermost centres, up to rounding, count as inside
    row = np.asarray(row, dtype=np.float64)
    col = np.asarray(col, dtype=np.float64)
    inside = (row >= -eps) & (col >= -eps) & (row <= h - 1 + eps) & (col <= w - 1 + eps)
    row = np.clip(np.where(inside, row, 0.0), 0.0, h - 1.0)
    col = np.clip(np.where(inside, col, 0.0), 0.0, w - 1.0)
    # a point exactly on the last row/column uses the last cell with weight 1
    r0i = np.minimum(np.floor(row), max(h - 2, 0)).astype(np.intp)
    c0i = np.minimum(np.floor(col), max(w - 2, 0)).astype(np.intp)
    fr = row - r0i
    fc = col - c0i
    r1i = np.minimum(r0i + 1, h - 1)
    c1i = np.minimum(c0i + 1, w - 1)
    out = ((data[r0i, c0i] * (1 - fc) + data[r0i, c1i] * fc) * (1 - fr)
           + (data[r1i, c0i] * (1 - fc) + data[r1i, c1i] * fc) * fr)
    return np.where(inside, out, np.nan)


def geoid_to_ellipsoid(h: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """EGM96 geoid heights to WGS84 ellipsoidal heights (``sarflow.sentinel1.geoid``)."""
    from .sentinel1 import geoid

    return np.asarray(geoid.geoid_to_ellipsoid(h, lat, lon), dtype=np.float64)


# ------------------------------------------------------------------------------------
# resolving the config's dem setting
# ------------------------------------------------------------------------------------

def dem_for_grid(dem: str | os.PathLike, grid: Grid, dem_dir: str | os.PathLike | None = None,
                 allow_download: bool = False,
                 out_dir: str | os.PathLike | None = None) -> Path:
    """The DEM file to use for ``grid``: ``dem`` itself (checked) or, for ``auto``, a mosaic.

    ``auto`` mosaics SRTM 1" / Copernicus 30 m tiles from ``dem_dir`` into a VRT in
    ``out_dir`` (default ``dem_dir``); missing tiles are downloaded only with
    ``allow_download``.  InputError when the result does not cover the grid.
    """
    margin = DEM_MARGIN_DEG
    if str(dem) == "auto":
        if dem_dir is None and out_dir is None:
            raise InputError("dem: auto needs dem_dir (the folder with SRTM/Copernicus tiles)")
        w, s, e, n = grid.bounds
        bounds = (w - margin, s - margin, e + margin, n + margin)
        path = mosaic_tiles(bounds, Path(dem_dir) if dem_dir else None,
                            Path(out_dir or dem_dir), allow_download)
    else:
        path = Path(dem)
        if not path.is_file():
            raise InputError(f"DEM not found: {path}; set dem: to a GeoTIFF or to auto")
        margin = 0.0
    sampler = DemSampler(path, geoid=False)
    sampler.check_covers(grid, margin=margin / 2)
    sampler.height_range(grid)  # raises when the area holds no data at all
    return path


def dem_for_config(cfg: "object", out_dir: str | os.PathLike | None = None) -> Path:
    """``dem_for_grid`` with the settings of an :class:`~sarflow.config.EventConfig`."""
    from .workdir import WorkDir

    c: Any = cfg
    out = out_dir or WorkDir(c.output).dem
    return dem_for_grid(c.dem, c.grid(), c.dem_dir, c.allow_download, out_dir=out)
