"""``simulate_event``: a complete synthetic landslide event that sarflow reads like real data.

OUTDIR/
  event.yaml                    event config (relative paths; engine native; output work)
  dem.tif                       heights above EGM96 on the event lattice, grid + margin
  inventory.gpkg                landslide polygons (EPSG:4326)
  scenes/<product_id>.zip       Sentinel-1 IW GRDH VV+VH, ascending and descending
  truth/landslides.tif          0/1 landslide mask on the event grid
  truth/landcover.tif           land cover codes (0 forest, 1 grassland, 2 bare)
  truth/sigma0/<product_id>.tif noise-free sigma0 per scene on the event grid
                                (bands sigma0_VV, sigma0_VH, layover_shadow)
  truth/settings.json           every simulation parameter and per-scene factor

Every random draw comes from a generator keyed by (seed, purpose, pass, date, pol), so the
same seed gives the same bytes whatever the order of work.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import yaml

from .. import __version__
from ..errors import InputError
from ..grid import SPACING, Grid, atomic_path, standard_tags, write_raster
from . import backscatter, geometry, inventory, safe_writer, terrain
from .orbit import design_orbit, displaced, tube_offset
from .settings import LANDCOVER_CLASSES, SimulationSettings

Progress = Callable[[str, int, int], None]
"""progress(what, done, total)."""

_PASS_LOCAL_HOUR = {"ASCENDING": 18.0, "DESCENDING": 6.0}
"""Sentinel-1's dusk (ascending) and dawn (descending) passes, local solar time."""
_DEM_NODATA = -32768.0


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def simulate_event(outdir: str | Path, seed: int = 0, size: Optional[tuple[int, int]] = None,
                   scenes_per_window: Optional[int] = None,
                   settings: Optional[SimulationSettings] = None,
                   progress: Optional[Progress] = None, workers: Optional[int] = None,
                   overwrite: bool = False) -> Path:
    """Write a synthetic event into ``outdir`` and return the path of its ``event.yaml``.

    ``size`` (rows, cols of the event grid) and ``scenes_per_window`` override the
    corresponding fields of ``settings`` (default :class:`SimulationSettings`).  Scenes
    are written by ``workers`` processes (default: up to 2 of the machine's cores); the
    output does not depend on it.  A folder that already holds an event is an error unless
    ``overwrite`` (then the previous scenes, truth, DEM, inventory and event.yaml go first).
    """
    s = settings or SimulationSettings()
    if size is not None:
        s = replace(s, size=tuple(size))
    if scenes_per_window is not None:
        s = replace(s, scenes_per_window=int(scenes_per_window))
    if isinstance(size, int):
        size = (size, size)
    out = Path(outdir)
    _prepare(out, overwrite)
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    (out / "truth" / "sigma0").mkdir(parents=True, exist_ok=True)
    report = progress or (lambda what, done, total: None)
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)

    world = _World.build(s, seed, out)
    report("terrain and inventory", 1, 1)
    times = acquisition_times(s)
    total = sum(len(v) for v in times.values())
    done = [0]

    def one_more() -> None:
        done[0] += 1
        report("scenes", done[0], total)

    scene_records = _simulate_scenes(world, times, out, n_workers, one_more)
    _write_settings(out / "truth" / "settings.json", s, seed, world, scene_records)
    path = _write_event_yaml(out, s, seed, world.event, times)
    report("done", 1, 1)
    return path


_OUTPUTS = ("event.yaml", "dem.tif", "inventory.gpkg", "scenes", "truth")


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse to mix two events in one folder; with ``overwrite`` remove the old one."""
    import shutil

    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder for the synthetic event")
    old = [out / name for name in _OUTPUTS if (out / name).exists()]
    if not old:
        return
    if not overwrite:
        raise InputError(f"{out} already holds a synthetic event ({old[0].name}); choose another "
                         f"folder or overwrite it (sarflow simulate --overwrite)")
    for p in old:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


# ------------------------------------------------------------------------------------
# the static world: terrain, land cover, landslides
# ------------------------------------------------------------------------------------

class _World:
    """Terrain, land cover, landslides and texture on the DEM lattice."""

    def __init__(self, settings: SimulationSettings, seed: int, event: Grid, dem: Grid,
                 height: np.ndarray, h_ell: np.ndarray, p: np.ndarray, q: np.ndarray,
                 landcover: np.ndarray, slide_id: np.ndarray, jitter: np.ndarray,
                 texture: np.ndarray, slides: list, p_post: Optional[np.ndarray] = None,
                 q_post: Optional[np.ndarray] = None) -> None:
        self.settings, self.seed, self.event, self.dem = settings, seed, event, dem
        self.p_post, self.q_post = p_post, q_post
        self.height, self.h_ell, self.p, self.q = height, h_ell, p, q
        self.landcover, self.slide_id, self.jitter, self.texture = landcover, slide_id, jitter, texture
        self.slides = slides
        m = settings.dem_margin
        self.window = (slice(m, m + event.height), slice(m, m + event.width))

    @classmethod
    def build(cls, s: SimulationSettings, seed: int, out: Path) -> "_World":
        event, dem = terrain.grids(s)
        height = terrain.make_terrain(dem, _rng(seed, 1), s)
        write_raster(out / "dem.tif", height, dem, descriptions=["height"],
                     tags={"vertical_datum": "EGM96 geoid", "units": "m",
                           "source": f"sarflow.simulate seed {seed}"},
                     nodata=_DEM_NODATA)
        h_ell = height.astype(np.float64) + _geoid(dem)
        p, q = terrain.gradients(h_ell, dem)
        slope = np.degrees(np.arctan(np.hypot(p, q)))
        landcover = terrain.make_landcover(height, slope, dem, _rng(seed, 2))
        m = s.dem_margin
        window = (slice(m, m + event.height), slice(m, m + event.width))
        slides = inventory.make_landslides(dem, window, slope, p, q, _rng(seed, 3), s)
        inventory.write_inventory(out / "inventory.gpkg", slides,
                                  {pol: s.change_db[pol] for pol in s.polarisations}
                                  if s.change_model == "constant" else None)
        slide_id = inventory.rasterize_ids(slides, dem)
        jitter = np.array([0.0] + [sl.change_jitter_db for sl in slides], dtype=np.float32)
        write_raster(out / "truth" / "landslides.tif", (slide_id[window] > 0).astype(np.uint8),
                     event, descriptions=["landslide"], dtype="uint8", nodata=None,
                     tags={"source": f"sarflow.simulate seed {seed}",
                           "landslides": len(slides)})
        write_raster(out / "truth" / "landcover.tif", landcover[window], event,
                     descriptions=["landcover"], dtype="uint8", nodata=None,
                     tags={"classes": ",".join(f"{k}={c}" for k, c in enumerate(LANDCOVER_CLASSES))})
        dxs, dy = terrain.metric_spacing(dem)
        n = terrain.noise_field(dem.shape, float(np.mean(dxs)), dy, _rng(seed, 4), 2.0, 2 * dy, 60.0)
        texture = 10.0 ** (s.texture_db * n / 10.0)
        texture = (texture / texture.mean()).astype(np.float32)
        p_post = q_post = None
        if s.change_model == "scar":
            dh = inventory.scar_surface_change(slide_id, h_ell, slides, s.scar_depth)
            p_post, q_post = terrain.gradients(h_ell + dh, dem)
            write_raster(out / "truth" / "surface_change.tif", dh[window].astype(np.float32),
                         event, descriptions=["height_change_m"],
                         tags={"source": f"sarflow.simulate seed {seed}",
                               "model": "scar depth alpha A^(gamma-1), depletion above, "
                                        "deposit below"})
        return cls(s, seed, event, dem, height, h_ell, p, q, landcover, slide_id, jitter,
                   texture, slides, p_post, q_post)


def _geoid(dem: Grid) -> np.ndarray:
    """EGM96 undulation on the DEM lattice (exact on a coarse lattice, bilinear between)."""
    from ..sentinel1.geoid import geoid_undulation

    rows = geometry._nodes(dem.height, 64)
    cols = geometry._nodes(dem.width, 64)
    lon, lat = dem.lonlat(rows[:, None], cols[None, :])
    lon, lat = np.broadcast_arrays(lon, lat)
    coarse = geoid_undulation(lat, lon)
    wr = geometry._interp_matrix(dem.height, rows)
    wc = geometry._interp_matrix(dem.width, cols)
    return wr @ coarse @ wc.T


# ------------------------------------------------------------------------------------
# acquisitions
# ------------------------------------------------------------------------------------

def acquisition_times(s: SimulationSettings) -> dict[str, list[dt.datetime]]:
    """Centre times of every acquisition per pass: ``scenes_per_window`` before and after the
    event, ``repeat_days`` apart, at the pass's local solar time."""
    event = s.event_datetime
    day = dt.datetime(event.year, event.month, event.day, tzinfo=dt.timezone.utc)
    out = {}
    for pass_dir in s.passes:
        hour = (_PASS_LOCAL_HOUR[pass_dir] - s.center[0] / 15.0) % 24.0
        days = max(1, math.floor(s.first_post_days[pass_dir]))
        first_post = (day + dt.timedelta(days=days, hours=hour)).replace(microsecond=0)
        ks = range(-s.scenes_per_window, s.scenes_per_window)
        out[pass_dir] = [first_post + dt.timedelta(days=s.repeat_days * k) for k in ks]
    return out


def _class_factors(s: SimulationSettings, seed: int, ip: int, idate: int) -> dict[str, dict[str, float]]:
    """gamma0 (dB) per land cover and polarisation on one date: the class's value plus the
    date's soil-moisture / vegetation change; the fresh scar ('scar', with the scar change
    model) varies as bare ground does; wet post-event dates add ``wet_db``."""
    rng = _rng(seed, 10, ip, idate)
    out: dict[str, dict[str, float]] = {}
    for cls in LANDCOVER_CLASSES:
        sd = s.date_sigma_db[cls]
        common = rng.normal(0.0, sd)
        out[cls] = {pol: float(s.gamma0_db[cls][pol] + common + rng.normal(0.0, 0.2 * sd))
                    for pol in ("VV", "VH")}
    if s.change_model == "scar":
        out["scar"] = {pol: float(s.scar_gamma0_db[pol] + out["bare"][pol] - s.gamma0_db["bare"][pol])
                       for pol in ("VV", "VH")}
    k_post = idate - s.scenes_per_window
    if 0 <= k_post < s.wet_post_dates:
        for cls, values in out.items():
            for pol in values:
                values[pol] = float(values[pol] + s.wet_db.get(cls, 0.0))
    return out


def _moisture(s: SimulationSettings, seed: int, ip: int, idate: int, shape: tuple[int, int]
              ) -> np.ndarray:
    """Smooth per-date multiplicative soil-moisture field over the image (linear, float32)."""
    if s.moisture_field_db <= 0:
        return np.ones(shape, dtype=np.float32)
    cshape = (max(shape[0] // 16, 4), max(shape[1] // 16, 4))
    field = terrain.smooth_field(cshape, 160.0, 160.0, _rng(seed, 11, ip, idate), 3000.0)
    rows = np.linspace(0, shape[0] - 1, cshape[0])
    cols = np.linspace(0, shape[1] - 1, cshape[1])
    fine = geometry._interp_matrix(shape[0], rows) @ field @ geometry._interp_matrix(shape[1], cols).T
    return (10.0 ** (s.moisture_field_db * fine / 10.0)).astype(np.float32)


_STATE: dict = {}
"""The pass being simulated, shared with forked worker processes (copy-on-write)."""

_PASSES: dict = {}
"""What each forked pass process needs (world, times, out folder), set before the fork."""


def _simulate_scenes(world: _World, times: dict[str, list[dt.datetime]], out: Path,
                     workers: int, on_scene: Callable[[], None]) -> list[dict]:
    """Every scene's record, pass by pass in order; ``on_scene`` after each is written.
    With at most as many workers as passes, each pass runs whole in its own forked process
    (its frame - geometry, basis images - is serial work, so the passes' frames overlap);
    with more workers the passes run in turn, their scenes spread over the workers.  The
    bytes written do not depend on the choice."""
    passes = list(world.settings.passes)
    if not 2 <= workers <= len(passes):
        records = []
        for ip, pass_dir in enumerate(passes):
            for rec in _simulate_pass(world, ip, pass_dir, times[pass_dir], out, workers):
                records.append(rec)
                on_scene()
        return records
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork")
    _PASSES.update(world=world, times=times, out=out, done=ctx.SimpleQueue())
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_pass_records, ip) for ip in range(len(passes))]
            for _ in range(sum(len(times[p]) for p in passes)):
                if not _wait_for_scene(_PASSES["done"], futures):
                    break  # a pass failed: its exception is raised below
                on_scene()
            return [rec for f in futures for rec in f.result()]
    finally:
        _PASSES.clear()


def _wait_for_scene(done, futures) -> bool:
    """Block until a pass process reports a scene (True) or one has failed (False)."""
    import time

    while done.empty():
        if any(f.done() and f.exception() is not None for f in futures):
            return False
        time.sleep(0.05)
    done.get()
    return True


def _pass_records(ip: int) -> list[dict]:
    """In a forked process: simulate one whole pass of ``_PASSES``, signalling each scene."""
    world, times, out, done = (_PASSES[k] for k in ("world", "times", "out", "done"))
    pass_dir = world.settings.passes[ip]
    recs = []
    for rec in _simulate_pass(world, ip, pass_dir, times[pass_dir], out, workers=1):
        recs.append(rec)
        done.put(ip)
    return recs


def _frame(world: _World, pass_dir: str, orbit_def) -> dict:
    """Everything one orbit gives a pass's images: the image frame, geolocation grid and
    vectors, the basis images, the sampler onto the event grid and the layover/shadow flags."""
    s = world.settings
    win = world.window
    model = geometry.build_image_model(pass_dir, orbit_def, world.dem, win, world.h_ell)
    geom = geometry.compute_pass_geometry(model, world.dem, world.h_ell)
    pp = safe_writer.pass_product(model, s.nesz_db, s.beta_nought, s.subswaths,
                                  s.nesz_offset_db)
    return dict(model=model, pp=pp, bases=_bases(world, geom),
                sampler=backscatter.Sampler(geom.line[win], geom.pixel[win], model.lines,
                                            model.samples),
                flags=geom.flags[win].astype(np.float32),
                sigma_lut2=(pp.sigma_lut_full() ** 2).astype(np.float32)[None, :],
                noise=pp.noise_full())


def _simulate_pass(world: _World, ip: int, pass_dir: str, times: list[dt.datetime], out: Path,
                   workers: int = 1):
    """Simulate and write every acquisition of one pass; yield one record per scene."""
    s = world.settings
    win = world.window
    t_ref = times[s.scenes_per_window]  # first post-event acquisition
    h_centre = float(np.mean(world.h_ell[win]))
    orbit_def = design_orbit(s.center[0], s.center[1], h_centre, s.incidence_deg[pass_dir],
                             pass_dir, t_ref)
    _STATE.clear()
    _STATE.update(world=world, ip=ip, pass_dir=pass_dir, times=times, t_ref=t_ref, out=out,
                  orbit=orbit_def, anx0=orbit_def.ascending_node_time(),
                  frame=None if s.orbit_tube_m > 0 else _frame(world, pass_dir, orbit_def))
    try:
        if workers > 1 and len(times) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                yield from pool.map(_scene, range(len(times)))
        else:
            for idate in range(len(times)):
                yield _scene(idate)
    finally:
        _STATE.clear()


def _scene(idate: int) -> dict:
    """Simulate and write one acquisition of the pass in ``_STATE``; return its record."""
    st = _STATE
    world, ip, pass_dir = st["world"], st["ip"], st["pass_dir"]
    s, seed = world.settings, world.seed
    fr = st["frame"]
    offset = (0.0, 0.0)
    if fr is None:  # a repeat pass anywhere in the orbital tube: its own frame
        offset = tube_offset(_rng(seed, 30, ip, idate), s.orbit_tube_m)
        fr = _frame(world, pass_dir, displaced(st["orbit"], *offset))
    model, pp = fr["model"], fr["pp"]
    t = st["times"][idate]
    shift = t - st["t_ref"]
    first = model.t_first + shift
    last = model.t_last + shift
    rel = s.relative_orbit[pass_dir]
    absolute = safe_writer.orbit_numbers(t, rel)
    scene = safe_writer.SceneInfo(
        mission="S1A", pass_direction=pass_dir, polarisations=tuple(s.polarisations),
        shift=shift, first_line=first, last_line=last, absolute_orbit=absolute,
        relative_orbit=rel, datatake_id=(absolute * 2731 + 0x51000) % 0xFFFFFF,
        anx_time=st["anx0"] + shift)
    post = t > s.event_datetime
    factors = _class_factors(s, seed, ip, idate)
    moist = _moisture(s, seed, ip, idate, (model.lines, model.samples))
    dns, truth, noise_err = {}, [], {}
    for ipol, pol in enumerate(s.polarisations):
        sigma = _sigma0_image(fr["bases"], factors, pol, post, s.change_db[pol], s.change_model)
        sigma *= moist
        truth.append(fr["sampler"](sigma))
        noise, noise_err[pol] = _true_noise(fr, s, seed, ip, idate, ipol)
        dns[pol] = backscatter.to_dn(sigma, fr["sigma_lut2"], noise, s.looks,
                                     _rng(seed, 20, ip, idate, ipol), s.speckle, s.resolution_m)
    files = safe_writer.product_files(scene, pp, dns)
    pid = scene.product_id
    out = st["out"]
    safe_writer.write_zip(out / "scenes" / f"{pid}.zip", f"{pid}.SAFE", files,
                          scene.processing_time)
    _write_truth(out / "truth" / "sigma0" / f"{pid}.tif", world.event, truth, fr["flags"],
                 scene, s)
    rec = {"product_id": pid, "pass": pass_dir, "acquisition_time": _iso(first),
           "post_event": bool(post), "relative_orbit": rel, "absolute_orbit": absolute,
           "gamma0_db": factors,
           "image": {"lines": model.lines, "samples": model.samples,
                     "incidence_mid_deg": pp.incidence_mid}}
    if s.orbit_tube_m > 0:
        rec["orbit_offset_m"] = {"radial": offset[0], "cross_track": offset[1]}
    if s.subswaths != "IW2":
        rec["swaths"] = [{"swath": b.name, "first_sample": b.first_sample,
                          "last_sample": b.last_sample} for b in pp.blocks()]
        rec["noise_error_db"] = noise_err
    return rec


def _true_noise(fr: dict, s: SimulationSettings, seed: int, ip: int, idate: int, ipol: int
                ) -> tuple[np.ndarray, list[float]]:
    """The thermal noise power in the image: the annotated noise, times (``noise_error_db``)
    a per sub-swath factor drawn for this scene and polarisation."""
    if s.noise_error_db <= 0 or s.subswaths == "IW2":
        return fr["noise"], []
    blocks = fr["pp"].blocks()
    err = _rng(seed, 31, ip, idate, ipol).normal(0.0, s.noise_error_db, len(blocks))
    cols = fr["pp"].swath_columns()
    factor = (10.0 ** (err[cols] / 10.0)).astype(np.float32)
    return fr["noise"] * factor[None, :], [float(e) for e in err]


def _bases(world: _World, geom: geometry.PassGeometry) -> dict[str, np.ndarray]:
    """Image-geometry basis images: per land cover, the unchanged facets ('keep'), the
    landslide facets ('slide') and the landslide facets with their per-slide jitter; with
    the scar change model also the post-event scars ('scar', :func:`_scar_weight`)."""
    w = backscatter.facet_weight(geom, world.p, world.q) * world.texture
    slide = world.slide_id > 0
    jit = (10.0 ** (world.jitter[world.slide_id] / 10.0)).astype(np.float32)
    codes = world.landcover
    layers = [(np.where(slide, np.float32(0), w), None, codes),
              (w, slide, codes), (w * jit, slide, codes)]
    scar = world.settings.change_model == "scar"
    if scar:
        layers.append((_scar_weight(world, geom) * jit, slide, np.zeros_like(codes)))
    images = backscatter.splat(geom, layers, len(LANDCOVER_CLASSES))
    keep, sl, slj = images[:3]
    out = {}
    for k, cls in enumerate(LANDCOVER_CLASSES):
        out[f"keep_{cls}"], out[f"slide_{cls}"], out[f"slidej_{cls}"] = keep[k], sl[k], slj[k]
    if scar:
        out["scar"] = images[3][0]
    return out


def _scar_weight(world: _World, geom: geometry.PassGeometry) -> np.ndarray:
    """Per cell, the post-event scar's facet weight (its new surface, ``world.p_post``)
    times the scar's incidence dependence (cos(local incidence) / cos(reference))^k."""
    s = world.settings
    pp, qp = world.p_post, world.q_post
    w = backscatter.facet_weight(geom, pp, qp) * world.texture
    cos_loc = (geom.look_u - pp * geom.look_e - qp * geom.look_n) / np.sqrt(1.0 + pp * pp + qp * qp)
    ratio = np.maximum(cos_loc, 0.0) / np.float32(math.cos(math.radians(s.scar_reference_deg)))
    return (w * ratio ** np.float32(s.scar_cos_exponent)).astype(np.float32)


def _sigma0_image(bases: dict[str, np.ndarray], factors: dict[str, dict[str, float]], pol: str,
                  post: bool, change_db: float, change_model: str = "constant") -> np.ndarray:
    """Noise-free ellipsoid sigma0 of one date and polarisation (image geometry, float32)."""
    out = None
    change = 10.0 ** (change_db / 10.0)
    scar = change_model == "scar" and post
    for cls in LANDCOVER_CLASSES:
        g = np.float32(10.0 ** (factors[cls][pol] / 10.0))
        if scar:
            term = bases[f"keep_{cls}"] * g
        else:
            slide = bases[f"slidej_{cls}"] * np.float32(change) if post else bases[f"slide_{cls}"]
            term = (bases[f"keep_{cls}"] + slide) * g
        out = term if out is None else out + term
    if scar:
        out += bases["scar"] * np.float32(10.0 ** (factors["scar"][pol] / 10.0))
    return out


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_truth(path: Path, grid: Grid, truth: list[np.ndarray], flags: np.ndarray,
                 scene: safe_writer.SceneInfo, s: SimulationSettings) -> None:
    """The truth raster of one scene: float32 bands as the engines write them (NaN nodata,
    band descriptions, tags), ZSTD-compressed for speed; sigma0 keeps 13 mantissa bits
    (relative precision 1e-4, 0.0005 dB), which halves the size."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    data = truth + [flags]
    names = [f"sigma0_{p}" for p in s.polarisations] + ["layover_shadow"]
    tags = standard_tags({"product_id": scene.product_id, "pass": scene.pass_direction,
                          "relative_orbit": str(scene.relative_orbit),
                          "acquisition_time": _iso(scene.first_line),
                          "orbit_source": "annotation", "engine": "truth",
                          "polarisations": ",".join(s.polarisations),
                          "sigma0": "noise-free, speckle-free, ellipsoid-referenced, linear"})
    with atomic_path(path) as tmp:
        ds = gdal.GetDriverByName("GTiff").Create(
            str(tmp), grid.width, grid.height, len(data), gdal.GDT_Float32,
            options=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=ZSTD",
                     "ZSTD_LEVEL=1", "PREDICTOR=3",
                     "DISCARD_LSB=" + ",".join(["10"] * len(truth) + ["0"])])
        ds.SetGeoTransform(grid.geotransform)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        ds.SetProjection(srs.ExportToWkt())
        for i, (arr, name) in enumerate(zip(data, names), start=1):
            band = ds.GetRasterBand(i)
            band.SetNoDataValue(float("nan"))
            band.SetDescription(name)
            band.WriteArray(arr)
        ds.SetMetadata({k: str(v) for k, v in tags.items()})
        ds = None


# ------------------------------------------------------------------------------------
# event.yaml and settings.json
# ------------------------------------------------------------------------------------

def _write_event_yaml(out: Path, s: SimulationSettings, seed: int, event: Grid,
                      times: dict[str, list[dt.datetime]]) -> Path:
    w, so, e, n = event.bounds
    split = event.col0 + int(round(event.width * 2 / 3))
    x_split = split * SPACING
    ev = s.event_datetime
    day = ev.date()
    pre = [t for ts in times.values() for t in ts if t < ev]
    post = [t for ts in times.values() for t in ts if t > ev]
    doc = {
        "name": f"{s.name}_seed{seed}",
        "event": {"time": ev.strftime("%Y-%m-%dT%H:%M:%SZ"), "magnitude": 6.7,
                  "description": f"synthetic landslide event (sarflow simulate, seed {seed})"},
        "area": {"bbox": [w, so, e, n]},
        "training_area": {"bbox": [w, so, x_split, n]},
        "validation_area": {"bbox": [x_split, so, e, n]},
        "windows": {"pre": [min(pre).date().isoformat(), (day - dt.timedelta(days=1)).isoformat()],
                    "post": [(day + dt.timedelta(days=1)).isoformat(), max(post).date().isoformat()]},
        "scenes": "scenes",
        "dem": "dem.tif",
        "inventory": "inventory.gpkg",
        "polarisations": list(s.polarisations),
        "output": "work",
        "processing": {"engine": "native"},
    }
    path = out / "event.yaml"
    with atomic_path(path) as tmp:
        header = (f"# Synthetic landslide event written by sarflow {__version__} "
                  f"(sarflow simulate, seed {seed}).\n# Truth (landslide mask, noise-free sigma0 "
                  f"per scene, settings) is in truth/.\n")
        tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return path


def _write_settings(path: Path, s: SimulationSettings, seed: int, world: _World,
                    scenes: list[dict]) -> None:
    lc = world.landcover[world.window]
    doc = {"seed": seed, "sarflow_version": __version__, "settings": s.to_dict(),
           "grid": world.event.to_dict(), "dem_grid": world.dem.to_dict(),
           "landslides": {"count": len(world.slides),
                          "area_fraction": float((world.slide_id[world.window] > 0).mean())},
           "landcover_fraction": {cls: float((lc == k).mean())
                                  for k, cls in enumerate(LANDCOVER_CLASSES)},
           "scenes": scenes}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=False))
