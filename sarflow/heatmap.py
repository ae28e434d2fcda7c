"""A change heatmap that needs no model: how unusual the post-event backscatter is, per pixel,
given how much the pre-event dates varied (after Handwerger et al. 2022's Earth Engine
landslide heatmaps).

Per pass p and polarisation, in dB::

    z_p = (median_post - median_pre) / max(1.4826 * MAD_pre, floor)

where MAD_pre is the median absolute deviation of the pre-event dates from their median
(1.4826 * MAD estimates the standard deviation of normal data robustly) and ``floor``
(0.1 dB by default) keeps pixels whose few pre-event dates happen to agree from dividing by
zero.  Negative z: the backscatter fell; positive: it rose.  The fused score is
``(z_asc + z_desc) / sqrt(2)`` where both passes see the pixel (a sum of two independent
standard scores, rescaled to unit variance), one pass's z where only it does.  Passes
without pre- and post-event scenes are left out (the tags say why).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from .grid import RasterWriter, Window, read_raster
from .stack.kernel import nanmedian_stack, pre_spread
from .stack.scenes import POLS
from .workdir import WorkDir

log = logging.getLogger("sarflow.heatmap")

DEFINITION = ("z = (median_post - median_pre) / max(1.4826 * MAD_pre, floor) per pass and "
              "polarisation, in dB; fused z = (z_asc + z_desc) / sqrt(2), one pass's z where only "
              "it is valid")


def heatmap_path(wd: WorkDir) -> Path:
    """Where an event's heatmap GeoTIFF goes."""
    return wd.root / "heatmap" / "heatmap.tif"


def z_score(med_pre: np.ndarray, med_post: np.ndarray, spread: np.ndarray, floor_db: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """(z, sigma) from per-pixel pre/post medians and the pre-event spread (all dB)."""
    sigma = np.maximum(spread, np.float32(floor_db))
    with np.errstate(invalid="ignore"):
        z = ((med_post - med_pre) / sigma).astype(np.float32)
    z[~np.isfinite(med_pre)] = np.nan
    return z, sigma.astype(np.float32)


def robust_z(pre: np.ndarray, post: np.ndarray, floor_db: float) -> tuple[np.ndarray, np.ndarray]:
    """(z, sigma) per pixel from (T_pre, h, w) and (T_post, h, w) dB stacks (NaN = no data):
    the stack stage's medians and spread (:func:`sarflow.stack.kernel.pre_spread`), then
    :func:`z_score` - the same two steps the heatmap takes from the stack's rasters."""
    med_pre, _ = nanmedian_stack(pre)
    med_post, _ = nanmedian_stack(post)
    return z_score(med_pre, med_post, pre_spread(pre, med_pre), floor_db)


def fuse_z(z_asc: np.ndarray | None, z_desc: np.ndarray | None) -> np.ndarray:
    """(z_asc + z_desc) / sqrt(2) where both are valid, the valid one elsewhere."""
    if z_asc is None or z_desc is None:
        return (z_asc if z_desc is None else z_desc).copy()
    va, vd = np.isfinite(z_asc), np.isfinite(z_desc)
    both = (z_asc + z_desc) / np.float32(math.sqrt(2))
    return np.where(va & vd, both, np.where(va, z_asc, z_desc)).astype(np.float32)


def heatmap_block(wd: WorkDir, passes: tuple[str, ...], window: Window, floor_db: float
                  ) -> dict[str, np.ndarray]:
    """Band name -> (h, w) z-scores of one window, from the stack's median rasters (the
    pre-event ones carry the spread): no scene is read again."""
    out: dict[str, np.ndarray] = {}
    for p in passes:
        for pol in POLS:
            pre = read_raster(wd.median(p, pol, "pre"), window, bands=[1, 3])
            post = read_raster(wd.median(p, pol, "post"), window, bands=[1])[0]
            out[f"z_{p}_{pol}"] = z_score(pre[0], post, pre[1], floor_db)[0]
    for pol in POLS:
        out[f"z_fused_{pol}"] = fuse_z(out.get(f"z_asc_{pol}"), out.get(f"z_desc_{pol}"))
    return out


def heatmap_event(cfg: Any, *, floor_db: float = 0.1, block_size: int = 512) -> Path:
    """Write the event's z-score heatmap (bands ``z_<pass>_<pol>``, ``z_fused_<pol>``) from
    its stack, which is made first when missing or out of date (:func:`stack_event`)."""
    from .stack.core import stack_event, stack_selection

    grid = cfg.grid()
    wd = WorkDir(cfg.output)
    stack_event(cfg, progress=False)
    sel = stack_selection(cfg)
    names = [f"z_{p}_{pol}" for p in sel.passes for pol in POLS] + [f"z_fused_{pol}" for pol in POLS]
    left: dict[str, str] = {}
    for p in ("asc", "desc"):
        if p not in sel.passes:
            why = sel.left_out.get("G2" if p == "asc" else "G3", "")
            left.update({f"z_{p}_{pol}": why for pol in POLS})
    n_pre = {p: len(sel.stacks[(p, "pre")]) for p in sel.passes}
    tags = {"stage": "heatmap", "event": cfg.name, "definition": DEFINITION, "units": "standard scores",
            "mad_floor_db": floor_db, "radiometry": sel.radiometry, "passes": list(sel.passes),
            "left_out": left, "pre_dates": {p: [a.date for a in sel.stacks[(p, "pre")]] for p in sel.passes},
            "post_dates": {p: [a.date for a in sel.stacks[(p, "post")]] for p in sel.passes}}
    if any(n < 3 for n in n_pre.values()):
        tags["warning"] = f"fewer than 3 pre-event dates ({n_pre}): the spread is poorly known"
        log.warning("heatmap: %s", tags["warning"])
    target = heatmap_path(wd)
    with RasterWriter(target, grid, len(names), names, tags) as w:
        for window in grid.blocks(block_size):
            res = heatmap_block(wd, sel.passes, window, floor_db)
            w.write(np.stack([res[n] for n in names]), window)
    return target
