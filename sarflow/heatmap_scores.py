"""Scoring the no-model heatmap like a model: a z threshold chosen on the training area,
then the same pixel and object scores as a model's map (:mod:`sarflow.evaluate`).

Sign convention.  The heatmap's ``z`` is (post - pre) / spread (:mod:`sarflow.heatmap`):
negative where the backscatter fell, positive where it rose.  A landslide is flagged where
a *signed score* reaches the threshold ``t``:

* ``decrease``: ``-z >= t`` (backscatter fell: vegetation stripped, a smoother scar);
* ``increase``: ``z >= t`` (backscatter rose: rough debris, slopes turned to the sensor);
* ``either``: ``|z| >= t`` (any unusual change);
* ``auto`` (default): the one of the three whose best F1 on the training area is highest
  (ties in that order).

Which way landslides change depends on the landscape, the pass and the polarisation, so
the direction is learnt from the training area's inventory like the threshold itself,
never from the area it is scored on; the choice is recorded with the scores.

Threshold.  Over the training area's pixels that have both a z and a label, ``t`` is the
value that maximises the pixel F1 of ``score >= t`` (an exact search over every distinct
score; among equal F1 the highest ``t``).  The band is the fused VV z by default
(``z_fused_VV``: both passes where both see the pixel, one where only it does).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .errors import InputError
from .grid import Grid, raster_info, read_raster, write_raster

if TYPE_CHECKING:
    from .products import Evaluation

log = logging.getLogger("sarflow.heatmap_scores")

SIGNS = ("decrease", "increase", "either")
DEFAULT_BAND = "z_fused_VV"
DEFAULT_SIGN = "auto"
MASK_NODATA = 255


@dataclass(frozen=True)
class HeatmapRule:
    """A heatmap turned into a landslide map: ``signed(z, sign) >= threshold`` on ``band``."""

    band: str
    sign: str
    threshold: float
    training_f1: float
    training_pixels: int

    @property
    def rule(self) -> str:
        """The rule in words of z, e.g. ``z_fused_VV <= -2.41``."""
        t = f"{self.threshold:.6g}"
        return {"decrease": f"{self.band} <= -{t}", "increase": f"{self.band} >= {t}",
                "either": f"|{self.band}| >= {t}"}[self.sign]

    def as_dict(self) -> dict:
        return {**asdict(self), "rule": self.rule, "chosen_on": "training"}


def signed_score(z: np.ndarray, sign: str) -> np.ndarray:
    """The score a threshold applies to: ``-z``, ``z`` or ``|z|`` (NaN stays NaN)."""
    if sign == "decrease":
        return -z
    if sign == "increase":
        return z
    if sign == "either":
        return np.abs(z)
    raise InputError(f"heatmap sign {sign!r} is not one of {', '.join(SIGNS)} or auto")


def best_threshold(score: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    """(threshold, F1, pixels): the ``t`` maximising the F1 of ``score >= t`` against
    ``truth > 0.5`` over the pixels where both are finite (ties: the highest ``t``)."""
    keep = np.isfinite(score) & np.isfinite(truth)
    s, y = score[keep].astype(np.float64), truth[keep] > 0.5
    positives = int(np.count_nonzero(y))
    if s.size == 0:
        raise InputError("the training area has no pixel with both a heatmap value and a label")
    if positives == 0:
        raise InputError("the training area's inventory has no landslide on pixels the heatmap "
                         "covers: a threshold cannot be chosen there")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the last pixel of each distinct value
    f1 = 2.0 * tp[last] / (last + 1 + positives)         # 2 TP / (predicted + positives)
    i = int(np.argmax(f1))                               # first max: the highest threshold
    return float(s[last[i]]), float(f1[i]), int(s.size)


def choose_rule(z: np.ndarray, truth: np.ndarray, band: str = DEFAULT_BAND,
                sign: str = DEFAULT_SIGN) -> HeatmapRule:
    """The sign (``auto``: the best of :data:`SIGNS`) and threshold maximising training F1."""
    candidates = SIGNS if sign == "auto" else (sign,)
    best: HeatmapRule | None = None
    for s in candidates:
        t, f1, n = best_threshold(signed_score(z, s), truth)
        if best is None or f1 > best.training_f1:
            best = HeatmapRule(band, s, t, f1, n)
    assert best is not None
    return best


def heatmap_mask(z: np.ndarray, rule: HeatmapRule) -> np.ndarray:
    """0/1 landslide mask of ``z`` under ``rule``, :data:`MASK_NODATA` where z is NaN."""
    score = signed_score(z, rule.sign)
    with np.errstate(invalid="ignore"):
        flagged = score >= rule.threshold
    return np.where(np.isfinite(z), flagged, MASK_NODATA).astype(np.uint8)


def read_band(path: str | os.PathLike, band: str, grid: Grid | None = None) -> np.ndarray:
    """One named band of a heatmap raster, over ``grid`` (a window of it) or all of it."""
    info = raster_info(path)
    if band not in info.descriptions:
        raise InputError(f"{path} has no band {band!r}; it has {', '.join(info.descriptions)}")
    window = None if grid is None else info.grid.window_of(grid)
    return read_raster(path, window, bands=[info.descriptions.index(band) + 1])[0]


def evaluate_heatmap(heatmap: str | os.PathLike, inventory: str | os.PathLike,
                     training: Grid, areas: Mapping[str, Grid], mask_path: str | os.PathLike, *,
                     band: str = DEFAULT_BAND, sign: str = DEFAULT_SIGN) -> dict[str, dict]:
    """Choose the rule on ``training``, write the whole heatmap's mask to ``mask_path`` and
    score it on each of ``areas`` (name -> grid) with :func:`sarflow.evaluate.evaluate_prediction`."""
    from .evaluate import evaluate_prediction, inventory_labels

    full = raster_info(heatmap).grid
    rule = choose_rule(read_band(heatmap, band, training), inventory_labels(inventory, training),
                       band, sign)
    log.debug("heatmap rule chosen on the training area: %s (training F1 %.3f)", rule.rule,
             rule.training_f1)
    tags = {"stage": "heatmap-evaluate", "heatmap": str(heatmap), **rule.as_dict(),
            "rule": rule.rule, "values": "1 landslide, 0 not, 255 no heatmap value"}
    write_raster(mask_path, heatmap_mask(read_band(heatmap, band), rule), full,
                 descriptions=["landslide"], tags=tags, dtype="uint8", nodata=MASK_NODATA)
    out = {}
    for name, grid in areas.items():
        result = evaluate_prediction(mask_path, inventory, bounds=grid.bounds)
        grid.check_same(Grid(**result["area"]["grid"]), what=f"heatmap scores of the {name} area")
        out[name] = {"name": f"heatmap_{name}", **result, "heatmap": {"raster": str(heatmap),
                                                                     **rule.as_dict()}}
    return out


def evaluate_heatmap_event(cfg: Any, areas: Sequence[str] = ("training", "validation"), *,
                           band: str = DEFAULT_BAND, sign: str = DEFAULT_SIGN
                           ) -> dict[str, Evaluation]:
    """Score the event's heatmap (``sarflow heatmap``) per area into
    ``WorkDir.heatmap_evaluation(area)``, its rule chosen on the training area."""
    from .evaluate import write_json
    from .heatmap import heatmap_path
    from .products import Evaluation
    from .workdir import WorkDir

    if cfg.inventory is None:
        raise InputError("the event config has no inventory; set 'inventory' to evaluate")
    wd = WorkDir(cfg.output)
    path = heatmap_path(wd)
    if not path.is_file():
        raise InputError(f"no heatmap at {path}: run `sarflow heatmap` first")
    results = evaluate_heatmap(path, cfg.inventory, cfg.area_grid("training"),
                               {a: cfg.area_grid(a) for a in areas}, wd.heatmap_mask,
                               band=band, sign=sign)
    out = {}
    for area, result in results.items():
        write_json(result, wd.heatmap_evaluation(area))
        out[area] = Evaluation.from_record(area, wd.heatmap_evaluation(area), result)
    return out


def heatmap_settings(band: str = DEFAULT_BAND, sign: str = DEFAULT_SIGN,
                     floor_db: float = 0.1) -> dict:
    """What decides the heatmap's scores (the evaluate stage's provenance)."""
    return {"band": band, "sign": sign, "floor_db": floor_db}


def is_heatmap(path: str | os.PathLike) -> bool:
    """Whether a raster is a heatmap written by :func:`sarflow.heatmap.heatmap_event`."""
    p = Path(path)
    if not p.is_file():
        return False
    info = raster_info(p)
    return info.tags.get("stage") == "heatmap" or (
        bool(info.descriptions) and all(str(d).startswith("z_") for d in info.descriptions))
