"""The stack stage: temporal medians (dB), changes, ascending/descending fusion and the six
input groups of an event, computed block by block so memory does not grow with the area.

Each block (a window of the event grid) is one task: it reads the scenes' pixels of that
window, computes every output for it and returns them; the main thread writes the results
into the output GeoTIFFs as tasks finish.  Tasks run on a Dask cluster: a local one with
threads by default (the kernel and GDAL release the GIL), or an existing one (``scheduler``).
Only a few blocks are in flight at once, so the memory used is set by the block size and
the number of dates, not by the area.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..grid import Grid, RasterWriter, Window, atomic_path, read_raster
from ..products import StackOutputs, raster_fingerprint, rasters_current
from ..provenance import Provenance
from ..workdir import WorkDir
from .kernel import DB_NOTE, nanmedian_stack, pre_spread, to_db
from .scenes import (PASSES, POLS, WINDOWS, Acquisition, Selection, check_polarisations,
                     scan, select)

log = logging.getLogger("sarflow.stack")

MASK_NOTE = "pixels whose layover_shadow band is not 0 (layover, shadow or outside the image) are NaN"
FUSION_CODES = "0 no valid change, 1 ascending only, 2 descending only, 3 both (mean of the two)"
ALGORITHM = "stack-2"
"""Bump when the outputs' definition changes, so old outputs are recomputed."""

MEDIAN_BANDS = {"pre": ("median_db", "count", "spread_db"), "post": ("median_db", "count")}
"""Bands of the median rasters: the pre-event ones also hold the dates' robust spread."""
SPREAD_NOTE = ("1.4826 x the median absolute deviation of the pre-event dates from their "
               "median (dB): the change heatmap's spread, before its floor")

GROUP_BANDS = {
    "G1": ("fused_change_VV", "fused_change_VH"),
    "G2": ("asc_change_VV", "asc_change_VH"),
    "G3": ("desc_change_VV", "desc_change_VH"),
    "G4": ("asc_single_change_VV", "asc_single_change_VH"),
    "G5": ("asc_pre_VV", "asc_post_VV"),
    "G6": ("asc_pre_VH", "asc_post_VH"),
}


# ------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Bands of one file to stack: data bands (1-based) and an optional layover/shadow band."""

    path: Path
    bands: tuple[int, ...]
    mask_band: int | None = None


def _read_db(src: Source, window: Window | None) -> np.ndarray:
    """One source's data bands in dB, (bands, rows, cols), masked pixels NaN."""
    nb = len(src.bands)
    raw = read_raster(src.path, window, bands=list(src.bands) + ([src.mask_band] if src.mask_band else []))
    out = to_db(raw[:nb])
    if src.mask_band:
        out[:, raw[nb] != 0] = np.nan
    return out


def read_db_stack(sources: Sequence[Source | Sequence[Source]], window: Window | None = None
                  ) -> np.ndarray:
    """Pixels of ``sources`` in dB as (bands, time, rows, cols) float32, masked pixels NaN.

    An item that is a sequence of sources is one date made of several frames: each pixel
    takes the first frame that has a valid value there.
    """
    if not sources:
        raise ValueError("read_db_stack needs at least one source")
    out = None
    for i, item in enumerate(sources):
        frames = (item,) if isinstance(item, Source) else tuple(item)
        data = _read_db(frames[0], window)
        for frame in frames[1:]:
            gap = np.isnan(data)
            data[gap] = _read_db(frame, window)[gap]
        if out is None:
            out = np.empty((data.shape[0], len(sources)) + data.shape[1:], np.float32)
        out[:, i] = data
    return out


def median_db_files(paths: Sequence[Path | str], band: int = 1, mask_band: int | None = None,
                    window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median (dB) and valid count of one band of linear-power rasters over time.

    The files need only share their size (any CRS): this is the stacker's reading, dB
    conversion and median for plain file lists.
    """
    data = read_db_stack([Source(Path(p), (band,), mask_band) for p in paths], window)
    return nanmedian_stack(data[0])


def _sources(acq: Acquisition) -> tuple[Source, ...]:
    """The frames of one acquisition as sources of the VV, VH and mask bands."""
    return tuple(Source(s.path, tuple(s.bands[p] for p in POLS), s.mask_band) for s in acq.scenes)


# ------------------------------------------------------------------------------------
# one block
# ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockPlan:
    """What every block task reads: the sources of each (pass, window) stack and the pair."""

    stacks: dict[tuple[str, str], tuple[tuple[Source, ...], ...]]
    single_pre: tuple[Source, ...]
    single_post: tuple[Source, ...]
    passes: tuple[str, ...] = ("asc", "desc")
    """Passes with pre- and post-event scenes; the others' changes are left out."""


def fuse(change_asc: np.ndarray, change_desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the two passes' changes; one pass's change where only it is valid.

    Returns (fused, quality) with quality 1 ascending only, 2 descending only, 3 both, 0 none.
    """
    va, vd = np.isfinite(change_asc), np.isfinite(change_desc)
    fused = np.where(va & vd, (change_asc + change_desc) * np.float32(0.5),
                     np.where(va, change_asc, change_desc)).astype(np.float32)
    quality = (va.astype(np.float32) + 2 * vd.astype(np.float32))
    return fused, quality


def process_block(plan: BlockPlan, window: Window) -> dict[str, np.ndarray]:
    """Every output's pixels for one window, as name -> (bands, h, w) float32."""
    out: dict[str, np.ndarray] = {}
    med: dict[tuple[str, str, str], np.ndarray] = {}
    for (pass_, win), sources in plan.stacks.items():
        data = read_db_stack(sources, window)
        for b, pol in enumerate(POLS):
            m, c = nanmedian_stack(data[b])
            med[(pass_, pol, win)] = m
            bands = [m, c.astype(np.float32)]
            if win == "pre":  # the heatmap's robust spread of the pre-event dates
                bands.append(pre_spread(data[b], m))
            out[f"median_{pass_}_{pol}_{win}"] = np.stack(bands)
        del data
    change = {}
    for pass_ in plan.passes:
        for pol in POLS:
            change[(pass_, pol)] = med[(pass_, pol, "pre")] - med[(pass_, pol, "post")]
            out[f"change_{pass_}_{pol}"] = change[(pass_, pol)][None]
    none = np.full((window.height, window.width), np.nan, np.float32)  # a pass left out
    fused = [fuse(change.get(("asc", p), none), change.get(("desc", p), none)) for p in POLS]
    out["G1"] = np.stack([f for f, _ in fused])
    out["fusion_quality"] = np.stack([q for _, q in fused])
    if "asc" in plan.passes:
        out["G2"] = np.stack([change[("asc", p)] for p in POLS])
    if "desc" in plan.passes:
        out["G3"] = np.stack([change[("desc", p)] for p in POLS])
    if not plan.single_pre:
        return out
    pair = read_db_stack([plan.single_pre, plan.single_post], window)  # (pol, 2, h, w)
    out["G4"] = pair[:, 0] - pair[:, 1]
    out["G5"] = pair[POLS.index("VV")]
    out["G6"] = pair[POLS.index("VH")]
    return out


# ------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """One output raster: where it goes, its band descriptions and tags."""

    path: Path
    descriptions: tuple[str, ...]
    tags: dict


def fusion_quality_path(wd: WorkDir) -> Path:
    """Where the fusion quality raster (which passes G1's change comes from) lives."""
    return wd.stack / "changes" / "fusion_quality.tif"


def selection_path(wd: WorkDir) -> Path:
    """Where the stage records which scenes went into which stack (JSON)."""
    return wd.stack / "selection.json"


def _dates(scenes: Sequence[Acquisition]) -> list[str]:
    return [s.date for s in scenes]


def plan_outputs(wd: WorkDir, sel: Selection, common: dict) -> dict[str, Output]:
    """Every output of the stage with its bands and the tags saying which dates went in."""
    outs: dict[str, Output] = {}
    st = sel.stacks
    for pass_ in PASSES.values():
        for pol in POLS:
            for win in WINDOWS:
                s = st[(pass_, win)]
                if f"median_{pass_}_{pol}_{win}" in sel.left_out:
                    continue
                spread = {"spread_band": SPREAD_NOTE} if win == "pre" else {}
                outs[f"median_{pass_}_{pol}_{win}"] = Output(
                    wd.median(pass_, pol, win), MEDIAN_BANDS[win],
                    {**common, "pass": pass_, "polarisation": pol, "window": win,
                     "dates": _dates(s), "product_ids": [x.product_id for x in s],
                     "count_band": "number of valid (unmasked, finite) dates per pixel",
                     **spread})
            if f"change_{pass_}_{pol}" in sel.left_out:
                continue
            outs[f"change_{pass_}_{pol}"] = Output(
                wd.change(pass_, pol), ("change_db",),
                {**common, "pass": pass_, "polarisation": pol,
                 "definition": "median_pre - median_post (dB)",
                 "pre_dates": _dates(st[(pass_, "pre")]), "post_dates": _dates(st[(pass_, "post")])})
    all_dates = {f"{p}_{w}_dates": _dates(st[(p, w)]) for p in PASSES.values() for w in WINDOWS}
    pair = {}
    if sel.nearest_pre is not None:
        pair = {"pre_date": sel.nearest_pre.date, "post_date": sel.nearest_post.date,
                "pre_product_id": sel.nearest_pre.product_id,
                "post_product_id": sel.nearest_post.product_id,
                "relative_orbits": [sel.nearest_pre.relative_orbit, sel.nearest_post.relative_orbit]}
    names = {"asc": "ascending", "desc": "descending"}
    passes_note = ("both passes" if len(sel.passes) == 2 else
                   f"{names[sel.passes[0]]} only: the fused change is the {names[sel.passes[0]]} "
                   f"change ({sel.left_out.get('G2') or sel.left_out.get('G3')})")
    asc = {k: v for k, v in all_dates.items() if k.startswith("asc_")}
    desc = {k: v for k, v in all_dates.items() if k.startswith("desc_")}
    defs = {
        "G1": ({"definition": "(change_asc + change_desc) / 2 per polarisation; one pass's change "
                              "where only it is valid (see fusion_quality.tif)",
                "fusion_codes": FUSION_CODES, "passes": passes_note, **all_dates}),
        "G2": {"definition": "ascending median_pre - median_post (dB)", **asc},
        "G3": {"definition": "descending median_pre - median_post (dB)", **desc},
        "G4": {"definition": "ascending single-scene change: pre scene - post scene (dB)", **pair},
        "G5": {"definition": "ascending VV of the single pre and post scenes (dB)", **pair},
        "G6": {"definition": "ascending VH of the single pre and post scenes (dB)", **pair},
    }
    for g, extra in defs.items():
        if g in sel.left_out:
            continue
        outs[g] = Output(wd.group(g), GROUP_BANDS[g], {**common, "group": g, **extra})
    outs["fusion_quality"] = Output(
        fusion_quality_path(wd), ("fusion_VV", "fusion_VH"),
        {**common, "definition": "which passes G1's fused change comes from",
         "fusion_codes": FUSION_CODES, **all_dates})
    return outs


def _up_to_date(outs: dict[str, Output], grid: Grid, prov: Provenance) -> bool:
    """Every output exists on the grid and records ``prov`` (the one currency rule)."""
    return rasters_current([o.path for o in outs.values()], prov, grid)


# ------------------------------------------------------------------------------------
# running blocks
# ------------------------------------------------------------------------------------

def default_workers(block_size: int, max_dates: int) -> int:
    """Threads for the local cluster: the cores, fewer if a block's stack would not fit."""
    import psutil

    per_block = max_dates * block_size * block_size * 4 * 2 * 3 + 64 * block_size * block_size * 4
    fit = int(psutil.virtual_memory().available * 0.5 // max(per_block, 1))
    return max(1, min(os.cpu_count() or 1, fit))


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator[object]:
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            from ..errors import ProcessingError

            raise ProcessingError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; "
                                  "check the address or leave --scheduler out") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=1, threads_per_worker=workers, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def _run_blocks(plan: BlockPlan, windows: list[Window], workers: int, scheduler: str | None,
                progress: bool) -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
    """Yield (window, results) as blocks finish, keeping at most 2 x workers in flight."""
    if scheduler is None and workers == 1:
        for w in windows:
            yield w, process_block(plan, w)
        return
    from distributed import as_completed

    with _client(workers, scheduler) as client:
        nthreads = sum(client.nthreads().values()) if scheduler else workers
        plan_f = client.scatter(plan, broadcast=True)
        todo = iter(windows)
        futures = {}
        ac = as_completed()
        for w in islice(todo, 2 * max(nthreads, 1)):
            f = client.submit(process_block, plan_f, w, pure=False)
            futures[f.key] = w
            ac.add(f)
        for f in ac:
            result = f.result()
            w = futures.pop(f.key)
            f.release()
            nxt = next(todo, None)
            if nxt is not None:
                g = client.submit(process_block, plan_f, nxt, pure=False)
                futures[g.key] = nxt
                ac.add(g)
            yield w, result


GDAL_CACHE_BYTES = 256 * 2**20
"""GDAL block cache while stacking: new outputs are filled with NaN through the cache, so
with GDAL's default (5 % of RAM) the cache, not the blocks, would set the peak memory."""


@contextlib.contextmanager
def _gdal_cache(limit: int) -> Iterator[None]:
    """Cap GDAL's (process-wide) block cache at ``limit`` bytes for the duration."""
    from osgeo import gdal

    before = gdal.GetCacheMax()
    gdal.SetCacheMax(min(before, limit))
    try:
        yield
    finally:
        gdal.SetCacheMax(before)


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[bold]stack", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task("blocks", total=total)
        yield lambda: bar.advance(task)


# ------------------------------------------------------------------------------------
# the stage
# ------------------------------------------------------------------------------------

def stack_event(cfg, *, workers: int | None = None, scheduler: str | None = None,
                block_size: int = 512, progress: bool = True, force: bool = False) -> StackOutputs:
    """Compute an event's medians, changes, fusion and groups G1..G6 from its scene outputs.

    Returns the :class:`~sarflow.products.StackOutputs` (paths by output name: ``G1``..``G6``,
    ``fusion_quality``, ``median_<pass>_<pol>_<window>``, ``change_<pass>_<pol>``).  Outputs
    whose provenance matches the inputs and settings are kept unless ``force``.
    """
    check_polarisations(cfg.polarisations)
    grid = cfg.grid()
    wd = WorkDir(cfg.output)
    sel = stack_selection(cfg)
    settings = {"grid": grid.to_dict(), "algorithm": ALGORITHM, "event_time": cfg.event.time}
    prov = stack_provenance(sel, settings)
    common = {"stage": "stack", "event": cfg.name, "event_time": cfg.event.time.isoformat(),
              "units": "dB", "db_conversion": DB_NOTE, "masking": MASK_NOTE,
              "radiometry": sel.radiometry, "left_out": sel.left_out,
              "provenance": prov.to_json(), "algorithm": ALGORITHM}
    outs = plan_outputs(wd, sel, common)
    paths = {name: o.path for name, o in outs.items()}
    if not force and _up_to_date(outs, grid, prov):
        log.info("stack outputs are up to date (%s); nothing to do", wd.stack)
        return StackOutputs(paths, prov)
    for s in sel.ignored:
        log.info("not in the pre or post window, ignored: %s (%s)", s.product_id, s.date)
    by_reason: dict[str, list[str]] = {}
    for name, why in sel.left_out.items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        log.warning("left out %s: %s", ", ".join(names), why)
    plan = BlockPlan(stacks={k: tuple(_sources(a) for a in v) for k, v in sel.stacks.items() if v},
                     single_pre=_sources(sel.nearest_pre) if sel.nearest_pre else (),
                     single_post=_sources(sel.nearest_post) if sel.nearest_post else (),
                     passes=sel.passes)
    max_dates = max(len(v) for v in sel.stacks.values())
    n = workers or default_workers(block_size, max_dates)
    windows = list(grid.blocks(block_size))
    used = sum(len(a.scenes) for v in sel.stacks.values() for a in v)
    log.info("stacking %d scene outputs on a %d x %d grid in %d blocks (%s)", used,
             grid.width, grid.height, len(windows), scheduler or f"{n} local threads")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_gdal_cache(GDAL_CACHE_BYTES))
        writers = {name: stack.enter_context(RasterWriter(o.path, grid, len(o.descriptions),
                                                          o.descriptions, o.tags))
                   for name, o in outs.items()}
        advance = stack.enter_context(_progress(progress, len(windows)))
        for window, result in _run_blocks(plan, windows, n, scheduler, progress):
            for name, arr in result.items():
                writers[name].write(arr, window)
            advance()
    _write_state(wd, prov, sel, paths)
    return StackOutputs(paths, prov)


def stack_selection(cfg) -> Selection:
    """Which scene outputs go into which (pass, window) stack: those of the last
    preprocessing run on the event grid, by the event's windows (the stack and the heatmap
    made from it use this one rule)."""
    wd = WorkDir(cfg.output)
    scenes = _in_last_run(scan(wd.preprocessed, cfg.grid(), POLS), wd)
    return select(scenes, cfg.pre_window(), cfg.post_window(), cfg.event.time)


def _in_last_run(scenes: list, wd: WorkDir) -> list:
    """The scene outputs the last preprocessing run selected (its summary lists them):
    outputs of scenes since taken out of the config stay on disk but are not stacked.
    Without a summary (outputs made elsewhere) every output in the folder is used."""
    try:
        summary = json.loads(wd.preprocess_summary.read_text())
    except (OSError, ValueError):
        return scenes
    keep = {s["product_id"] for s in summary.get("scenes", [])
            if s.get("outcome") in ("done", "existing")}
    dropped = [s.product_id for s in scenes if s.product_id not in keep]
    if dropped:
        log.info("not stacked (not in the last preprocessing run's selection): %s",
                 ", ".join(dropped))
    return [s for s in scenes if s.product_id in keep]


def stack_provenance(sel: Selection, settings: dict) -> Provenance:
    """What decides the stack: every scene output in each (pass, window) stack (by its own
    provenance digest, or its file fingerprint when another tool made it), the single
    pre/post pair, the grid, the algorithm and the event time."""
    scenes = {f"{p}_{w}": [[s.product_id, raster_fingerprint(s.path)] for a in acqs for s in a.scenes]
              for (p, w), acqs in sorted(sel.stacks.items())}
    scenes["single"] = [getattr(sel.nearest_pre, "product_id", None),
                        getattr(sel.nearest_post, "product_id", None)]
    return Provenance(stage="stack", settings=settings, inputs=scenes)


def _write_state(wd: WorkDir, prov: Provenance, sel: Selection, paths: dict[str, Path]) -> None:
    """Record the selection beside the outputs (state/stack.json belongs to the pipeline)."""
    state = {"stage": "stack", "provenance": prov.to_dict(), "selection": sel.describe(),
             "outputs": {k: str(v) for k, v in paths.items()}}
    target = selection_path(wd)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(state, indent=2))
