"""The embedded engine: Sentinel-1 GRD to sigma0 on the event grid with numpy and GDAL.

Chain per scene and polarisation, as SNAP's graph does it, block by block over the grid:

1. read only the window of the measurement raster the block needs (uint16 DN);
2. GRD border noise removal, for products before IPF 2.90 (ESA's procedure: within
   ``border_limit`` pixels of the image edges, mask everything up to the first pixel whose
   noise-corrected intensity exceeds ``trim_threshold``); a no-op with a note otherwise;
3. thermal noise removal: DN^2 minus the noise LUT; non-positive values become
   ``noise_floor`` (sigma0, linear) or NaN, as ``noise_clip`` says;
4. calibration: divide by the sigma0 LUT squared;
5. range-Doppler terrain correction onto the grid: DEM height per grid pixel (bilinear,
   geoid to ellipsoid), zero-Doppler image coordinates, bilinear resampling of sigma0.

Geometry is exact (``sarflow.sentinel1``: zero Doppler with the bistatic term) at the
nodes of a coarse lookup table, every ``lut_stride`` grid pixels and at a few heights
spanning the block's terrain, and interpolated in between (bilinear across, a polynomial
in height): line, slant range and look angle are smooth there (below 0.01 pixel from the
exact solution, checked in the tests), while the slant-to-ground-range conversion, which
switches polynomial between annotation records, is applied per pixel.  The layover /
shadow mask compares slant ranges and look angles along zero-Doppler lines; a halo around
each block gives mountains outside the block their say.  Memory follows the block size
(about 1 GB for 25 Mpx with the default 1024); ``threads`` > 1 runs blocks in parallel.
The scene border is eroded on the blocks as they come (``edge_erosion_px``), so the
output is written once.  The per-pixel loops run as numba kernels when numba is
installed (:mod:`sarflow.sentinel1.kernels`), as numpy otherwise: the same values to
float32 rounding.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from ..config import NativeSettings
from ..dem import DemSampler
from ..errors import InputError, ProcessingError, SarflowError
from ..grid import Grid, RasterWriter, Window
from ..sentinel1 import kernels
from ..sentinel1.layover import (CLEAR, LAYOVER, SHADOW, layover_shadow,  # noqa: F401
                                 layover_shadow_grid, metres_per_pixel)
from ..sentinel1.lookup import CoordsFn, GeometryLUT, upsample  # noqa: F401 (re-exported)
from . import SceneJob, SceneResult, band_names, job_tags

DEFAULTS = NativeSettings()
"""The engine's settings when a job gives none (every knob: :class:`~sarflow.config.NativeSettings`)."""

BORDER_NOISE_IPF = 2.90
"""Products processed before this IPF version carry GRD border noise."""


# ------------------------------------------------------------------------------------
# radiometry
# ------------------------------------------------------------------------------------

def intensity(dn: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """DN^2 minus the thermal noise LUT (float32, may be negative); NaN where DN is 0."""
    x = dn.astype(np.float32)
    out = x * x
    if noise is not None:
        out -= noise.astype(np.float32, copy=False)
    out[dn == 0] = np.nan  # DN 0 marks pixels outside the swath
    return out


def border_noise_mask(power: np.ndarray, edges: Iterable[str], limit: int = 500,
                      threshold: float = 0.5) -> np.ndarray:
    """True for GRD border noise: within ``limit`` pixels of each named image edge
    (``near``, ``far``, ``first``, ``last``), everything before the first pixel (scanning
    inwards) whose noise-corrected intensity exceeds ``threshold``.

    ``power`` must reach the named edges (its first/last column or row is the image's).
    """
    mask = np.zeros(power.shape, dtype=bool)
    good = np.nan_to_num(power, nan=-np.inf) > threshold
    for edge in edges:
        view_good, view_mask = _edge_views(good, mask, edge)
        n = min(limit, view_good.shape[1])
        if n == 0:
            continue
        strip = view_good[:, :n]
        first = np.where(strip.any(axis=1), strip.argmax(axis=1), n)
        view_mask[:, :n] |= np.arange(n)[None, :] < first[:, None]
    return mask


def _edge_views(good: np.ndarray, mask: np.ndarray, edge: str) -> tuple[np.ndarray, np.ndarray]:
    """Views with the named edge as column 0, scanning inwards along axis 1."""
    if edge == "near":
        return good, mask
    if edge == "far":
        return good[:, ::-1], mask[:, ::-1]
    if edge == "first":
        return good.T, mask.T
    if edge == "last":
        return good[::-1].T, mask[::-1].T
    raise ValueError(f"unknown edge {edge!r}")


def calibrate(power: np.ndarray, lut: np.ndarray, clip: str = "floor",
              floor: float = 1e-5) -> np.ndarray:
    """Backscatter = noise-corrected intensity / LUT^2 (float32); below ``floor`` -> floor
    or NaN (the rule both engines follow, :mod:`sarflow.engines.floor`)."""
    from .floor import apply_floor

    a = lut.astype(np.float32, copy=False)
    return apply_floor(power / (a * a), floor, clip)


# ------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------

def resample(img: np.ndarray, line: np.ndarray, pixel: np.ndarray,
             origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Bilinear samples (float32) of ``img``, an image window starting at ``origin``, at
    fractional image (line, pixel), integers at pixel centres; NaN outside the window or
    next to a NaN pixel."""
    if kernels.COMPILED:
        line2 = kernels.as_2d(line)
        out = np.empty(line2.shape, dtype=np.float32)
        kernels.bilinear_at(np.ascontiguousarray(img, dtype=np.float32), line2,
                            kernels.as_2d(pixel), float(origin[0]), float(origin[1]), out)
        return out.reshape(np.shape(line))
    line, pixel = line - origin[0], pixel - origin[1]
    h, w = img.shape
    ok = (line >= 0) & (pixel >= 0) & (line <= h - 1) & (pixel <= w - 1)
    out = np.full(line.shape, np.nan, dtype=np.float32)
    if not ok.any() or h < 2 or w < 2:
        return out
    ln, px = line[ok], pixel[ok]
    r0 = np.minimum(ln.astype(np.intp), h - 2)
    c0 = np.minimum(px.astype(np.intp), w - 2)
    fr = (ln - r0).astype(np.float32)
    fc = (px - c0).astype(np.float32)
    flat = np.ascontiguousarray(img, dtype=np.float32).ravel()
    i = r0 * w + c0
    top = flat[i] * (1 - fc) + flat[i + 1] * fc
    bottom = flat[i + w] * (1 - fc) + flat[i + w + 1] * fc
    out[ok] = top * (1 - fr) + bottom * fr
    return out


def image_window(line: np.ndarray, pixel: np.ndarray, shape: tuple[int, int], margin: int = 2
                 ) -> Window | None:
    """The image window (lines x pixels) covering the finite coordinates plus a margin."""
    lims = (-margin, shape[0] - 1 + margin, -margin, shape[1] - 1 + margin)
    if kernels.COMPILED:
        lmin, lmax, pmin, pmax = kernels.coordinate_bounds(
            kernels.as_2d(line), kernels.as_2d(pixel), *map(float, lims))
        if not lmin <= lmax:
            return None
    else:
        with np.errstate(invalid="ignore"):
            ok = (line > lims[0]) & (line < lims[1]) & (pixel > lims[2]) & (pixel < lims[3])
        if not ok.any():
            return None
        lmin, lmax = float(line[ok].min()), float(line[ok].max())
        pmin, pmax = float(pixel[ok].min()), float(pixel[ok].max())
    l0 = max(int(np.floor(lmin)) - margin, 0)
    l1 = min(int(np.ceil(lmax)) + margin + 1, shape[0])
    p0 = max(int(np.floor(pmin)) - margin, 0)
    p1 = min(int(np.ceil(pmax)) + margin + 1, shape[1])
    if l1 <= l0 or p1 <= p0:
        return None
    return Window(l0, p0, l1 - l0, p1 - p0)


def code_band(line: np.ndarray, pixel: np.ndarray, codes: np.ndarray, shape: tuple[int, int]
              ) -> np.ndarray:
    """The layover/shadow band (float32): ``codes`` where (line, pixel) lies inside an
    image of ``shape`` and the code is known, NaN elsewhere."""
    if kernels.COMPILED:
        out = np.empty(codes.shape, dtype=np.float32)
        kernels.code_band(line, pixel, codes, shape[0], shape[1], out)
        return out
    with np.errstate(invalid="ignore"):
        inside = (line >= 0) & (line <= shape[0] - 1) & (pixel >= 0) & (pixel <= shape[1] - 1)
    return np.where(inside & (codes != 255), codes, np.nan).astype(np.float32)


def look_angle(sat: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Off-nadir look angle (radians) at satellite positions ``sat`` towards points ``xyz``
    (both (N, 3) ECEF): the angle between the line of sight and the geocentric nadir."""
    los = xyz - sat
    cosang = -np.einsum("ij,ij->i", los, sat) / (np.linalg.norm(los, axis=1)
                                                 * np.linalg.norm(sat, axis=1))
    return np.arccos(np.clip(cosang, -1.0, 1.0))


# ------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------

@dataclass
class _Scene:
    """One product prepared for a job: geometry, DEM, options and notes."""

    prod: Any
    geom: Any
    dem: DemSampler
    grid: Grid
    pols: list[str]
    opts: NativeSettings
    halo: tuple[int, int]
    """Rows and columns of layover/shadow context around each block."""
    reach: float
    """Metres across track within which terrain can cause layover or shadow."""
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.geom.swath.lines), int(self.geom.swath.pixels)

    # -- geometry -------------------------------------------------------------------------
    def node_geometry(self, lat: np.ndarray, lon: np.ndarray, h: np.ndarray
                      ) -> dict[str, np.ndarray]:
        """Exact line, slant range and look angle of points (the lookup table's nodes):
        one zero-Doppler solution, the line as :meth:`image_coordinates` makes it."""
        from ..sentinel1 import geodetic_to_ecef, zero_doppler
        from ..sentinel1.radar import image_line

        g = self.geom
        xyz = geodetic_to_ecef(lat, lon, h)
        t, rng = zero_doppler(g.fast_orbit, xyz, t0=g.t_first + 0.5 * g.swath.lines * g.ati)
        line = image_line(t, rng, g.t_first, g.ati, g.line_offset, g.bistatic)
        look = look_angle(g.fast_orbit.position(t), xyz)
        return {"line": line, "range": rng, "look": look}

    def block_geometry(self, window: Window, inner: tuple[slice, slice] | None = None
                       ) -> dict[str, np.ndarray]:
        """Per pixel of ``window`` (grid pixels, may reach outside the grid): height, line,
        slant range, look angle and the across-track order key; ``pixel`` only over
        ``inner`` (default: the whole window), where the output needs it."""
        h = self.heights(window)
        inner = inner or (slice(None), slice(None))
        with np.errstate(invalid="ignore"):  # all NaN: no terrain
            hmin, hmax = float(np.fmin.reduce(h, axis=None)), float(np.fmax.reduce(h, axis=None))
        if not np.isfinite(hmin):
            nan = np.full(h.shape, np.nan)
            return {"height": h, "line": nan, "pixel": nan[inner], "range": nan, "look": nan,
                    "order": nan}
        lut = GeometryLUT.build(self.grid, window, hmin, hmax, self.node_geometry,
                                stride=int(self.opts.lut_stride))
        geo = lut.evaluate(h, at={"order": ("range", hmin)})
        geo["height"] = h
        geo["pixel"] = self.geom.pixel_of(geo["line"][inner], geo["range"][inner])
        return geo

    def heights(self, window: Window) -> np.ndarray:
        """Ellipsoidal DEM heights of a grid window: the DEM bilinearly, plus the geoid
        undulation interpolated from every ``lut_stride``-th pixel (it is smooth)."""
        lon, lat = self.grid.lonlat(np.arange(window.row, window.row + window.height),
                                    np.arange(window.col, window.col + window.width))
        h = self.dem.lattice_heights(lon, lat)
        if self.dem.geoid:
            from ..sentinel1.geoid import geoid_undulation

            step = int(self.opts.lut_stride)
            nr = math.ceil((window.height - 1) / step) + 2
            nc = math.ceil((window.width - 1) / step) + 2
            glon, glat = self.grid.lonlat(window.row + np.arange(nr)[:, None] * step,
                                          window.col + np.arange(nc)[None, :] * step)
            und = geoid_undulation(*np.broadcast_arrays(glat, glon))
            if kernels.COMPILED:
                kernels.add_upsampled(und, step, h)
            else:
                h += upsample(und, step, window.height, window.width)
        return h

    # -- radiometry -----------------------------------------------------------------------
    def backscatter(self, pol: str, win: Window) -> np.ndarray:
        """Calibrated, noise-corrected backscatter (float32) of an image window."""
        lines, pixels = self.shape
        limit = int(self.opts.border_limit)
        old = self.prod.ipf < BORDER_NOISE_IPF
        read = win
        edges: list[str] = []
        if old:
            r0 = 0 if win.row < limit else win.row
            c0 = 0 if win.col < limit else win.col
            r1 = lines if win.row + win.height > lines - limit else win.row + win.height
            c1 = pixels if win.col + win.width > pixels - limit else win.col + win.width
            read = Window(r0, c0, r1 - r0, c1 - c0)
            edges = [e for e, hit in (("first", r0 == 0), ("last", r1 == lines),
                                      ("near", c0 == 0), ("far", c1 == pixels)) if hit]
        dn = self.prod.read_dn(pol, read)
        noise = self.prod.noise_lut(pol, read) if self.opts.thermal_noise else None
        power = intensity(dn, noise)
        if edges:
            trim = float(self.opts.trim_threshold)
            power[border_noise_mask(power, edges, limit, trim)] = np.nan
        power = power[win.row - read.row: win.row - read.row + win.height,
                      win.col - read.col: win.col - read.col + win.width]
        lut = self.prod.calibration_lut(pol, self.opts.calibration, win)
        return calibrate(power, lut, self.opts.noise_clip, float(self.opts.noise_floor))

    # -- one block -----------------------------------------------------------------------------
    def block(self, block: Window) -> np.ndarray:
        """Output bands (sigma0 per polarisation, layover/shadow) of one grid block."""
        hr, hc = self.halo
        ext = Window(block.row - hr, block.col - hc, block.height + 2 * hr, block.width + 2 * hc)
        inner = (slice(hr, hr + block.height), slice(hc, hc + block.width))
        geo = self.block_geometry(ext, inner)
        codes = layover_shadow_grid(geo, metres_per_pixel(self.grid), self.reach)
        line, pixel = geo["line"][inner], geo["pixel"]
        out = np.empty((len(self.pols) + 1, block.height, block.width), dtype=np.float32)
        out[-1] = code_band(line, pixel, codes[inner], self.shape)
        win = image_window(line, pixel, self.shape)
        if win is None:
            out[:-1] = np.nan
            return out
        for i, pol in enumerate(self.pols):
            # the window holds every point inside the image: NaN outside it is NaN outside
            out[i] = resample(self.backscatter(pol, win), line, pixel, (win.row, win.col))
        return out


def _open_scene(job: SceneJob, opts: NativeSettings) -> _Scene:
    """Open the product (with the EOF orbit when given), check polarisations and DEM."""
    from ..sentinel1 import open_product

    prod = open_product(job.scene)
    if job.orbit_dir is not None:
        prod = prod.with_orbit(job.orbit_dir)
    missing = [p for p in job.polarisations if p.upper() not in prod.polarisations]
    if missing:
        raise InputError(f"{prod.id} lacks polarisation(s) {', '.join(missing)} (has "
                         f"{', '.join(prod.polarisations)}); set polarisations: accordingly")
    if job.dem is None:
        raise InputError("the native engine needs a DEM: set dem: in the config "
                         "(a GeoTIFF, or auto with dem_dir)")
    dem = DemSampler(job.dem, geoid=bool(opts.geoid))
    dem.check_covers(job.grid)
    hmin, hmax = dem.height_range(job.grid)
    pols = [p.upper() for p in job.polarisations]
    geom = prod.geometry(pols[0])
    # layover reaches dh / tan(29 deg), shadow dh * tan(46 deg) across track (IW incidences);
    # the relief that counts includes the context around the grid, so look twice
    factor = max(1 / math.tan(math.radians(29.0)), math.tan(math.radians(46.0)))
    halo = _halo(job.grid, geom, (hmax - hmin) * factor, 0.5 * (hmin + hmax), int(opts.max_halo))
    g = job.grid
    lo, hi = dem.height_range(Grid(g.col0 - halo[1], g.row0 + halo[0], g.width + 2 * halo[1],
                                   g.height + 2 * halo[0], g.spacing))
    reach = (max(hi, hmax) - min(lo, hmin)) * factor
    halo = _halo(job.grid, geom, reach, 0.5 * (hmin + hmax), int(opts.max_halo))
    scene = _Scene(prod, geom, dem, job.grid, pols, opts, halo, reach + 50.0,
                   list(getattr(prod, "notes", [])))
    if prod.ipf < BORDER_NOISE_IPF:
        scene.notes.append(f"IPF {prod.ipf_version}: GRD border noise removed "
                           f"(limit {opts.border_limit} px, threshold {opts.trim_threshold})")
    else:
        scene.notes.append(f"IPF {prod.ipf_version} >= {BORDER_NOISE_IPF:.2f}: no GRD border "
                           "noise to remove (ESA removes it in the processor)")
    _check_overlap(scene, hmin, hmax)
    return scene


def _halo(grid: Grid, geom: Any, reach: float, height: float, cap: int) -> tuple[int, int]:
    """(rows, cols) of context that cover ``reach`` metres along the range direction."""
    ny, nx = metres_per_pixel(grid)
    r, c = grid.height / 2, grid.width / 2
    lon, lat = grid.lonlat(np.array([r, r + 1, r]), np.array([c, c, c + 1]))
    _, pixel = geom.image_coordinates(lat, lon, np.full(3, height))
    # gradient of the range coordinate in metres north/east: the ground range direction
    dn, de = -(pixel[1] - pixel[0]) / ny, (pixel[2] - pixel[0]) / nx
    norm = math.hypot(dn, de) or 1.0
    rows = int(math.ceil(reach * abs(dn) / norm / ny)) + 4
    cols = int(math.ceil(reach * abs(de) / norm / nx)) + 4
    return min(rows, cap), min(cols, cap)


def _check_overlap(scene: _Scene, hmin: float, hmax: float) -> None:
    """InputError when no part of the grid falls inside the image."""
    g = scene.grid
    n = 33
    rows = np.r_[np.linspace(0, g.height - 1, n), np.zeros(n), np.full(n, g.height - 1),
                 np.linspace(0, g.height - 1, n), np.linspace(0, g.height - 1, n)]
    cols = np.r_[np.linspace(0, g.width - 1, n), np.linspace(0, g.width - 1, n),
                 np.linspace(0, g.width - 1, n), np.zeros(n), np.full(n, g.width - 1)]
    lon, lat = g.lonlat(rows, cols)
    lines, pixels = scene.shape
    for h in (hmin, hmax):
        line, pixel = scene.geom.image_coordinates(lat, lon, np.full(lat.shape, h))
        if ((line >= 0) & (line <= lines - 1) & (pixel >= 0) & (pixel <= pixels - 1)).any():
            return
    raise InputError(f"{scene.prod.id} does not cover the event area {g.bounds}; "
                     "leave it out of the event's scenes")


def _tags(scene: _Scene, job: SceneJob) -> dict[str, Any]:
    """The stage's tags (``job.tags``) plus what only this engine knows."""
    return {**job_tags(job, ENGINE, scene.opts), "orbit_source": scene.prod.orbit_source,
            "ipf_version": scene.prod.ipf_version, "dem": str(job.dem),
            "units": f"linear {scene.opts.calibration}",
            "parameters": scene.opts.model_dump(mode="json"), "notes": scene.notes}


class NativeEngine:
    """sarflow's own numpy/GDAL chain; needs no SNAP."""

    name = "native"

    def available(self, settings: NativeSettings | None = None) -> bool:
        """Always: numpy and GDAL are sarflow's own dependencies."""
        return True

    def version(self, settings: NativeSettings | None = None) -> str:
        """sarflow's version: this engine is part of it."""
        from .. import __version__

        return f"sarflow {__version__}"

    def process(self, job: SceneJob) -> SceneResult:
        """Turn one scene into sigma0 (and layover/shadow) on ``job.grid``, atomically."""
        t0 = time.perf_counter()
        opts = job.settings if job.settings is not None else DEFAULTS
        if not isinstance(opts, NativeSettings):
            raise InputError(f"the native engine takes NativeSettings, not {type(opts).__name__}")
        scene = _open_scene(job, opts)
        bands = band_names(scene.pols)
        if opts.calibration != "sigma0":
            bands = [b.replace("sigma0_", f"{opts.calibration}_") for b in bands]
        from . import footprint

        blocks = _run_blocks(scene, int(opts.block_size), opts.threads)
        if opts.edge_erosion_px:
            blocks = footprint.eroded_blocks(blocks, job.grid, int(opts.edge_erosion_px))
        try:
            with RasterWriter(job.output, job.grid, len(bands), bands, _tags(scene, job),
                              options=output_options(opts)) as w:
                for block, data in blocks:
                    w.write(data, block)
        except SarflowError:
            raise
        except (MemoryError, RuntimeError) as exc:
            raise ProcessingError(f"{scene.prod.id}: native processing failed ({exc}); try a "
                                  "smaller processing.native.block_size") from None
        seconds = time.perf_counter() - t0
        px = job.grid.width * job.grid.height
        rate = px / max(seconds, 1e-9)
        scene.notes.append(f"{px} grid pixels in {seconds:.1f} s ({rate:.0f} px/s)")
        _write_log(job, scene, seconds)
        return SceneResult(output=Path(job.output), engine=self.name,
                           orbit_source=scene.prod.orbit_source, seconds=seconds,
                           notes=list(scene.notes))


def output_options(opts: NativeSettings) -> tuple[str, ...]:
    """GTiff options of the engine's output: ZSTD at level ``zlevel``, band-interleaved,
    without a predictor (a third of DEFLATE's time to write and read, and smaller: the
    noisy float mantissas of sigma0 do not compress and ZSTD passes them through at once,
    the layover band's tiles compress to nothing); DEFLATE where GDAL lacks ZSTD."""
    level = int(opts.zlevel)
    if not _gtiff_has("ZSTD"):
        return (f"ZLEVEL={level}", "PREDICTOR=1")
    return ("COMPRESS=ZSTD", f"ZSTD_LEVEL={level}", "PREDICTOR=1", "INTERLEAVE=BAND")


@functools.lru_cache(maxsize=None)
def _gtiff_has(codec: str) -> bool:
    """Whether this GDAL's GTiff driver can write ``codec``."""
    from osgeo import gdal

    options = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
    return f"<Value>{codec}</Value>" in options


def _run_blocks(scene: _Scene, size: int, threads: int) -> Iterator[tuple[Window, np.ndarray]]:
    """(block, bands) over the grid, row-major; with ``threads`` > 1, that many blocks at a
    time in a thread pool (numpy, GDAL and the kernels release the GIL).  Memory:
    ``threads`` blocks at once."""
    blocks = _blocks(scene.grid, size, threads)
    if threads == 1:
        for block in blocks:
            yield block, scene.block(block)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i in range(0, len(blocks), threads):
            chunk = blocks[i:i + threads]
            yield from zip(chunk, pool.map(scene.block, chunk))


def _blocks(grid: Grid, size: int, threads: int) -> list[Window]:
    """Blocks of at most ``size`` x ``size`` pixels, row-major; when the grid has fewer
    than ``threads`` of them, strips of rows instead, one per thread (full-width strips
    carry less layover halo than square blocks)."""
    blocks = list(grid.blocks(size))
    if threads <= 1 or len(blocks) >= threads:
        return blocks
    rows = max(64, math.ceil(grid.height / threads))
    return [Window(r, c, min(rows, grid.height - r), min(size, grid.width - c))
            for r in range(0, grid.height, rows) for c in range(0, grid.width, size)]


def _write_log(job: SceneJob, scene: _Scene, seconds: float) -> None:
    """Append what was done to the scene's log (the pipeline appends its attempts too)."""
    lines = [f"product {scene.prod.id}", f"engine native, {seconds:.2f} s",
             f"orbit {scene.prod.orbit_source}", f"dem {job.dem}",
             f"halo {scene.halo[0]} rows, {scene.halo[1]} cols"]
    lines += [f"note: {n}" for n in scene.notes]
    try:
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log_path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError:
        pass  # a log that cannot be written must not fail the scene


ENGINE = NativeEngine()
