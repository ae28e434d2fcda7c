"""Map and chart figures for the report, as PNG bytes drawn by matplotlib.

Rasters are read decimated (at most ``max_px`` pixels on a side) straight from their
GeoTIFFs, so a figure of a large area never loads the full-resolution raster.  Figures use
matplotlib's object API (no pyplot state) and the Agg canvas, so they work headless.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .grid import Grid, raster_info

MAX_PX = 700
ERROR_COLOURS = {"TN": "#f2f2f2", "TP": "#1a9850", "FP": "#d73027", "FN": "#4575b4",
                 "no data": "#bdbdbd"}
COVERAGE_COLOURS = {"no pass": "#bdbdbd", "ascending only": "#fdae61",
                    "descending only": "#abd9e9", "both passes": "#1a9850"}
"""Classes 0..3 of a data-coverage map (which passes' changes are valid at a pixel)."""
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Preview:
    """A decimated view of an area: its pixel shape and geographic extent."""

    grid: Grid
    shape: tuple[int, int]

    @classmethod
    def of(cls, grid: Grid, max_px: int = MAX_PX) -> "Preview":
        f = max(1.0, max(grid.height, grid.width) / max_px)
        return cls(grid, (max(1, round(grid.height / f)), max(1, round(grid.width / f))))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) for matplotlib's imshow."""
        w, s, e, n = self.grid.bounds
        return (w, e, s, n)


def read_preview(path: str | os.PathLike, preview: Preview, band: int = 1,
                 resample: str = "average") -> np.ndarray:
    """The area's pixels of one band, decimated to the preview's shape (NaN for nodata)."""
    from osgeo import gdal

    gdal.UseExceptions()
    info = raster_info(path)
    win = info.grid.window_of(preview.grid)
    ds = gdal.Open(str(path))
    b = ds.GetRasterBand(band)
    alg = {"average": gdal.GRIORA_Average, "nearest": gdal.GRIORA_NearestNeighbour}[resample]
    h, w = preview.shape
    data = b.ReadAsArray(win.col, win.row, win.width, win.height, buf_xsize=w, buf_ysize=h,
                         resample_alg=alg).astype(np.float32)
    nodata = b.GetNoDataValue()
    if nodata is not None and not math.isnan(nodata):
        data[data == nodata] = np.nan
    return data


def warp_preview(path: str | os.PathLike, preview: Preview) -> np.ndarray:
    """Any georeferenced raster (e.g. a DEM in another CRS) resampled onto the preview."""
    from osgeo import gdal

    gdal.UseExceptions()
    h, w = preview.shape
    west, south, east, north = preview.grid.bounds
    ds = gdal.Warp("", str(path), format="MEM", outputBounds=(west, south, east, north),
                   width=w, height=h, dstSRS="EPSG:4326", resampleAlg="bilinear",
                   dstNodata=float("nan"), outputType=gdal.GDT_Float32)
    return ds.GetRasterBand(1).ReadAsArray().astype(np.float32)


def hillshade(height: np.ndarray, preview: Preview, azimuth: float = 315.0,
              altitude: float = 45.0) -> np.ndarray:
    """Hillshade (0..1, light from the north-west) of heights on the preview's cells."""
    from matplotlib.colors import LightSource

    h, w = preview.shape
    lat = math.radians((preview.grid.north + preview.grid.south) / 2)
    dx = (preview.grid.east - preview.grid.west) / w * _M_PER_DEG * math.cos(lat)
    dy = (preview.grid.north - preview.grid.south) / h * _M_PER_DEG
    finite = np.isfinite(height)
    z = np.where(finite, height, np.nanmean(height) if finite.any() else 0.0)
    shade = LightSource(azdeg=azimuth, altdeg=altitude).hillshade(z, vert_exag=1.0, dx=dx, dy=dy)
    shade[~finite] = np.nan
    return shade


def error_classes(predicted: np.ndarray, truth: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    """Per pixel 0 TN, 1 TP, 2 FP, 3 FN, 4 no data (boolean maps in)."""
    out = np.zeros(predicted.shape, np.uint8)
    out[predicted & truth] = 1
    out[predicted & ~truth] = 2
    out[~predicted & truth] = 3
    out[nodata] = 4
    return out


def error_preview(mask_path: str | os.PathLike, labels_path: str | os.PathLike,
                  preview: Preview, strip: int = 512) -> np.ndarray:
    """Error classes of a 0/1/255 mask against 0/1 labels on the preview.

    Computed at full resolution strip by strip; a preview cell shows its most frequent of
    TP, FP and FN when it has any, else no data or TN, whichever is more frequent."""
    from .grid import Window, read_raster

    mw = raster_info(mask_path).grid.window_of(preview.grid)
    lw = raster_info(labels_path).grid.window_of(preview.grid)
    H, W = preview.grid.shape
    ph, pw = preview.shape
    cell_col = (np.arange(W) * pw) // W
    counts = np.zeros(ph * pw * 5, np.int64)
    for r0 in range(0, H, strip):
        n = min(strip, H - r0)
        m = read_raster(mask_path, Window(mw.row + r0, mw.col, n, W))[0]
        t = read_raster(labels_path, Window(lw.row + r0, lw.col, n, W))[0]
        cls = error_classes(m == 1, np.nan_to_num(t, nan=0.0) > 0.5, m == 255)
        cell = ((np.arange(r0, r0 + n) * ph) // H)[:, None] * pw + cell_col[None, :]
        counts += np.bincount((cell * 5 + cls).ravel(), minlength=counts.size)
    c = counts.reshape(ph * pw, 5)
    errs = c[:, 1:4]
    out = np.where(c[:, 4] > c[:, 0], 4, 0).astype(np.uint8)
    has = errs.sum(axis=1) > 0
    out[has] = 1 + np.argmax(errs[has], axis=1)
    return out.reshape(ph, pw)


def _figure(width_in: float = 3.6, height_in: float = 3.4):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def map_png(data: np.ndarray, preview: Preview, title: str, kind: str,
            background: np.ndarray | None = None) -> bytes:
    """One map panel: ``kind`` is hillshade, change (dB, diverging), zscore (heatmap),
    binary, probability, coverage (classes of :data:`COVERAGE_COLOURS`) or errors (classes
    of :func:`error_classes`); ``background`` a hillshade shown beneath."""
    from matplotlib.colors import ListedColormap

    fig = _figure()
    ax = fig.add_subplot()
    ext = preview.extent
    if background is not None:
        ax.imshow(background, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="nearest")
    if kind == "hillshade":
        ax.imshow(data, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="nearest")
    elif kind == "change":
        finite = data[np.isfinite(data)]
        lim = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
        im = ax.imshow(data, cmap="RdBu_r", vmin=-lim or -1, vmax=lim or 1, extent=ext,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="dB (pre - post)")
    elif kind == "probability":
        im = ax.imshow(data, cmap="magma", vmin=0, vmax=1, extent=ext, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="landslide probability")
    elif kind == "binary":
        shown = np.ma.masked_where(~(np.nan_to_num(data) > 0), np.nan_to_num(data))
        ax.imshow(shown, cmap="autumn_r", vmin=0, vmax=1, extent=ext, interpolation="nearest",
                  alpha=0.9)
    elif kind == "zscore":
        finite = data[np.isfinite(data)]
        lim = max(3.0, float(np.percentile(np.abs(finite), 98))) if finite.size else 3.0
        im = ax.imshow(data, cmap="RdBu", vmin=-lim, vmax=lim, extent=ext, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="z-score (post vs pre)")
    elif kind == "coverage":
        from matplotlib.patches import Patch

        cmap = ListedColormap(list(COVERAGE_COLOURS.values()))
        ax.imshow(data, cmap=cmap, vmin=-0.5, vmax=3.5, extent=ext, interpolation="nearest")
        ax.legend(handles=[Patch(color=c, label=k) for k, c in COVERAGE_COLOURS.items()],
                  loc="lower left", fontsize=7, framealpha=0.8)
    elif kind == "errors":
        cmap = ListedColormap(list(ERROR_COLOURS.values()))
        ax.imshow(data, cmap=cmap, vmin=-0.5, vmax=4.5, extent=ext, interpolation="nearest")
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=c, label=k) for k, c in ERROR_COLOURS.items()
                           if k != "TN"], loc="lower left", fontsize=7, framealpha=0.8)
    else:
        raise ValueError(f"unknown map kind {kind!r}")
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("longitude", fontsize=8)
    ax.set_ylabel("latitude", fontsize=8)
    ax.ticklabel_format(useOffset=False)
    return _png(fig)


def f1_bar_png(rows: Sequence[dict]) -> bytes:
    """Bar chart of F1 per input group, one bar per model (the paper's ablation)."""
    groups = sorted({str(r["group"]) for r in rows})
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    f1 = {(str(r["group"]), str(r["model"])): r.get("f1") for r in rows}
    fig = _figure(max(5.0, 0.9 * len(groups) + 2.5), 3.4)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(models))
    x = np.arange(len(groups))
    for i, m in enumerate(models):
        vals = [f1.get((g, m)) for g in groups]
        heights = [float(v) if v is not None else 0.0 for v in vals]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, heights, width, label=m)
        for g, bar, v in zip(groups, bars, vals):
            if (g, m) in f1:  # a row exists: show its value, or n/a when it has no F1
                label = "n/a" if v is None else f"{float(v):.2f}"
                ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_title("F1 per input group and model", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)
