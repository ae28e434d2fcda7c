"""The event grid and raster I/O.

Every raster sarflow writes lies on one global lattice: EPSG:4326 with a fixed spacing
(about 10 m) and an origin at whole multiples of that spacing.  A :class:`Grid` is a window
of that lattice, held as integer indices, so two grids of overlapping areas share their
pixels exactly and stacking never resamples.

Raster I/O goes through GDAL: tiled, compressed float32 GeoTIFFs with NaN nodata, band
descriptions and metadata tags, written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from . import __version__
from .errors import CorruptInputError, GridMismatchError, InputError

SPACING = 8.983152841195215e-05
"""Grid spacing in degrees (1 arc-second-ish, about 10 m at the equator), as in the paper."""

CRS_EPSG = 4326
_SNAP_EPS = 1e-6  # fraction of a pixel below which a bound counts as already on the lattice

GTIFF_OPTIONS = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                 "PREDICTOR=3", "BIGTIFF=IF_SAFER")


@dataclass(frozen=True)
class Window:
    """A pixel window (row/col offset and size) inside a grid."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """numpy slices (rows, cols) selecting this window from a full-grid array."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


@dataclass(frozen=True)
class Grid:
    """A window of the global lattice: pixel (0, 0)'s north-west corner is at
    (``col0 * spacing``, ``row0 * spacing``); rows go south."""

    col0: int
    row0: int
    width: int
    height: int
    spacing: float = SPACING

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"grid size must be positive, got {self.width} x {self.height}")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_bounds(cls, west: float, south: float, east: float, north: float,
                    spacing: float = SPACING) -> "Grid":
        """The smallest lattice window that covers the bounds (degrees)."""
        if not (west < east and south < north):
            raise InputError(f"bounds must satisfy west < east and south < north, got "
                             f"{west}, {south}, {east}, {north}")
        col0 = math.floor(west / spacing + _SNAP_EPS)
        col1 = math.ceil(east / spacing - _SNAP_EPS)
        row0 = math.ceil(north / spacing - _SNAP_EPS)
        row1 = math.floor(south / spacing + _SNAP_EPS)
        return cls(col0=col0, row0=row0, width=col1 - col0, height=row0 - row1,
                   spacing=spacing)

    @classmethod
    def from_geotransform(cls, geotransform: Sequence[float], width: int, height: int,
                          tolerance: float = 1e-3) -> "Grid":
        """The grid of a raster, if its geotransform lies on the lattice (else an error)."""
        x0, dx, rx, y0, ry, dy = geotransform
        if rx != 0 or ry != 0 or not math.isclose(dx, -dy, rel_tol=1e-9):
            raise GridMismatchError(f"raster is rotated or has non-square pixels "
                                    f"({dx}, {dy}); sarflow needs the EPSG:4326 lattice")
        spacing = float(dx)
        col0, row0 = x0 / spacing, y0 / spacing
        if abs(col0 - round(col0)) > tolerance or abs(row0 - round(row0)) > tolerance:
            raise GridMismatchError(
                f"raster origin ({x0}, {y0}) is not on the {spacing:g} degree lattice; "
                "regrid it with sarflow or use outputs made by sarflow")
        return cls(col0=round(col0), row0=round(row0), width=int(width), height=int(height),
                   spacing=spacing)

    # -- geometry -----------------------------------------------------------------------
    @property
    def west(self) -> float:
        return self.col0 * self.spacing

    @property
    def north(self) -> float:
        return self.row0 * self.spacing

    @property
    def east(self) -> float:
        return (self.col0 + self.width) * self.spacing

    @property
    def south(self) -> float:
        return (self.row0 - self.height) * self.spacing

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        return self.west, self.south, self.east, self.north

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform of the grid."""
        return (self.west, self.spacing, 0.0, self.north, 0.0, -self.spacing)

    def lonlat(self, row: np.ndarray | float, col: np.ndarray | float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude of pixel centres (fractional rows/cols allowed)."""
        lon = (self.col0 + np.asarray(col, dtype=np.float64) + 0.5) * self.spacing
        lat = (self.row0 - np.asarray(row, dtype=np.float64) - 0.5) * self.spacing
        return lon, lat

    def rowcol(self, lon: np.ndarray | float, lat: np.ndarray | float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of points; pixel centres have integer values."""
        col = np.asarray(lon, dtype=np.float64) / self.spacing - self.col0 - 0.5
        row = self.row0 - np.asarray(lat, dtype=np.float64) / self.spacing - 0.5
        return row, col

    def coordinates(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """2-D arrays (lon, lat) of the pixel centres of a window (default: all)."""
        w = window or self.full_window
        rows = np.arange(w.row, w.row + w.height)
        cols = np.arange(w.col, w.col + w.width)
        lon, lat = self.lonlat(rows[:, None], cols[None, :])
        return np.broadcast_to(lon, (w.height, w.width)), np.broadcast_to(lat, (w.height, w.width))

    # -- windows and sub-grids --------------------------------------------------------
    @property
    def full_window(self) -> Window:
        return Window(0, 0, self.height, self.width)

    def blocks(self, size: int = 1024) -> Iterator[Window]:
        """Windows of at most ``size`` x ``size`` pixels covering the grid, row-major."""
        for r in range(0, self.height, size):
            for c in range(0, self.width, size):
                yield Window(r, c, min(size, self.height - r), min(size, self.width - c))

    def subgrid(self, window: Window) -> "Grid":
        """The grid of a window of this grid."""
        return Grid(self.col0 + window.col, self.row0 - window.row, window.width,
                    window.height, self.spacing)

    def window_of(self, other: "Grid") -> Window:
        """Where ``other`` lies inside this grid (it must be a sub-grid of it)."""
        self.check_compatible(other)
        w = Window(self.row0 - other.row0, other.col0 - self.col0, other.height, other.width)
        if w.row < 0 or w.col < 0 or w.row + w.height > self.height or w.col + w.width > self.width:
            raise GridMismatchError(f"grid {other.bounds} is not inside grid {self.bounds}")
        return w

    def intersection(self, other: "Grid") -> "Grid | None":
        """The lattice window both grids share, or None."""
        self.check_compatible(other)
        col0, col1 = max(self.col0, other.col0), min(self.col0 + self.width, other.col0 + other.width)
        row0, row1 = min(self.row0, other.row0), max(self.row0 - self.height, other.row0 - other.height)
        if col1 <= col0 or row0 <= row1:
            return None
        return Grid(col0, row0, col1 - col0, row0 - row1, self.spacing)

    def check_compatible(self, other: "Grid") -> None:
        """Raise :class:`GridMismatchError` unless both grids use the same lattice."""
        if not math.isclose(self.spacing, other.spacing, rel_tol=1e-9):
            raise GridMismatchError(f"grid spacings differ: {self.spacing} vs {other.spacing}")

    def check_same(self, other: "Grid", what: str = "raster") -> None:
        """Raise :class:`GridMismatchError` unless ``other`` is exactly this grid."""
        self.check_compatible(other)
        if (self.col0, self.row0, self.width, self.height) != (
                other.col0, other.row0, other.width, other.height):
            raise GridMismatchError(
                f"{what} is on grid {other.bounds} ({other.width} x {other.height}), expected "
                f"{self.bounds} ({self.width} x {self.height}); reprocess it for this event")

    def to_dict(self) -> dict:
        return {"col0": self.col0, "row0": self.row0, "width": self.width,
                "height": self.height, "spacing": self.spacing}


# ------------------------------------------------------------------------------------
# Raster I/O
# ------------------------------------------------------------------------------------

def _gdal():
    from osgeo import gdal

    gdal.UseExceptions()
    return gdal


@dataclass(frozen=True)
class RasterInfo:
    """What a GeoTIFF holds, without its pixels."""

    path: Path
    grid: Grid
    count: int
    dtype: str
    descriptions: tuple[str, ...]
    tags: dict
    nodata: float | None


def _open(path: str | os.PathLike, update: bool = False):
    gdal = _gdal()
    p = Path(path)
    if not p.exists():
        raise InputError(f"raster not found: {p}")
    try:
        return gdal.Open(str(p), gdal.GA_Update if update else gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise CorruptInputError(f"cannot read raster {p}: {exc}") from None


def raster_info(path: str | os.PathLike) -> RasterInfo:
    """Grid, band count, descriptions and tags of a raster on the lattice."""
    ds = _open(path)
    grid = Grid.from_geotransform(ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize)
    band = ds.GetRasterBand(1)
    gdal = _gdal()
    return RasterInfo(
        path=Path(path), grid=grid, count=ds.RasterCount,
        dtype=gdal.GetDataTypeName(band.DataType).lower(),
        descriptions=tuple(ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)),
        tags=dict(ds.GetMetadata() or {}), nodata=band.GetNoDataValue())


def read_raster(path: str | os.PathLike, window: Window | None = None,
                bands: Sequence[int] | None = None) -> np.ndarray:
    """Pixels as (bands, rows, cols); ``bands`` are 1-based, default all."""
    ds = _open(path)
    w = window or Window(0, 0, ds.RasterYSize, ds.RasterXSize)
    idx = list(bands) if bands else list(range(1, ds.RasterCount + 1))
    try:
        out = [ds.GetRasterBand(b).ReadAsArray(w.col, w.row, w.width, w.height) for b in idx]
    except RuntimeError as exc:
        raise CorruptInputError(f"cannot read pixels of {path}: {exc}") from None
    return np.stack(out)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    An interrupted or failed write leaves neither a partial ``path`` nor the temporary.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def standard_tags(extra: Mapping[str, object] | None = None) -> dict[str, str]:
    """Tags every sarflow raster carries (version) merged with the caller's."""
    tags = {"sarflow_version": __version__}
    for k, v in (extra or {}).items():
        tags[str(k)] = v if isinstance(v, str) else _tag_value(v)
    return tags


def _tag_value(v: object) -> str:
    import json

    try:
        return json.dumps(v, default=str)
    except (TypeError, ValueError):
        return str(v)


def merge_options(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """GTiff creation options ``base`` with those of ``extra`` replacing the same keys
    (GDAL reads the first ``KEY=`` of a list, so appending would not override)."""
    merged = {o.split("=", 1)[0].upper(): o for o in base}
    merged.update({o.split("=", 1)[0].upper(): o for o in extra})
    return list(merged.values())


class RasterWriter:
    """Write a float32 GeoTIFF window by window, atomically.

    Use as a context manager: the file appears under its final name only when the block
    ends without an exception.
    """

    def __init__(self, path: str | os.PathLike, grid: Grid, count: int = 1,
                 descriptions: Sequence[str] | None = None,
                 tags: Mapping[str, object] | None = None, dtype: str = "float32",
                 nodata: float | None = float("nan"), options: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.options = tuple(options)  # GTiff creation options replacing the defaults
        self.grid = grid
        self.count = count
        self.descriptions = list(descriptions or [])
        if self.descriptions and len(self.descriptions) != count:
            raise ValueError(f"{len(self.descriptions)} descriptions for {count} bands")
        self.tags = standard_tags(tags)
        self.dtype = dtype
        self.nodata = nodata
        self._ctx = None
        self._ds = None

    def __enter__(self) -> "RasterWriter":
        gdal = _gdal()
        from osgeo import gdal_array

        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        gdt = gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(self.dtype))
        opts = list(GTIFF_OPTIONS)
        if not np.issubdtype(np.dtype(self.dtype), np.floating):
            opts = [o for o in opts if not o.startswith("PREDICTOR")] + ["PREDICTOR=2"]
        opts = merge_options(opts, self.options)
        ds = gdal.GetDriverByName("GTiff").Create(str(tmp), self.grid.width, self.grid.height,
                                                  self.count, gdt, options=opts)
        ds.SetGeoTransform(self.grid.geotransform)
        from osgeo import osr

        srs = osr.SpatialReference()
        srs.ImportFromEPSG(CRS_EPSG)
        ds.SetProjection(srs.ExportToWkt())
        for i in range(self.count):
            band = ds.GetRasterBand(i + 1)
            if self.nodata is not None:
                # GTiff writes tiles that were never written as nodata: no Fill needed
                band.SetNoDataValue(float(self.nodata))
            if self.descriptions:
                band.SetDescription(self.descriptions[i])
        self._ds = ds
        return self

    def write(self, data: np.ndarray, window: Window | None = None, band: int | None = None) -> None:
        """Write (bands, h, w) or, with ``band`` (1-based), (h, w) pixels at ``window``."""
        w = window or self.grid.full_window
        arr = np.asarray(data)
        if band is not None:
            self._ds.GetRasterBand(band).WriteArray(arr.astype(self.dtype, copy=False), w.col, w.row)
            return
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape != (self.count, w.height, w.width):
            raise ValueError(f"data of shape {arr.shape} for window {w} and {self.count} bands")
        for i in range(self.count):
            self._ds.GetRasterBand(i + 1).WriteArray(arr[i].astype(self.dtype, copy=False),
                                                     w.col, w.row)

    def __exit__(self, exc_type, exc, tb) -> bool:
        ds, self._ds = self._ds, None
        try:
            if exc_type is None:
                ds.SetMetadata({k: str(v) for k, v in self.tags.items()})
                ds.FlushCache()
        finally:
            ds = None  # noqa: F841 - closes the dataset before the rename
        return self._ctx.__exit__(exc_type, exc, tb)


def write_raster(path: str | os.PathLike, data: np.ndarray, grid: Grid,
                 descriptions: Sequence[str] | None = None,
                 tags: Mapping[str, object] | None = None, dtype: str = "float32",
                 nodata: float | None = float("nan")) -> Path:
    """Write a whole (bands, rows, cols) or (rows, cols) array as a GeoTIFF, atomically."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[1:] != grid.shape:
        raise GridMismatchError(f"array of shape {arr.shape[1:]} does not match grid {grid.shape}")
    with RasterWriter(path, grid, arr.shape[0], descriptions, tags, dtype, nodata) as w:
        w.write(arr)
    return Path(path)
