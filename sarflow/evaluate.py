"""How far to trust a landslide map: pixel and object scores against an inventory.

Pixel level: precision, recall, F1 and IoU over the pixels of an area (the conventions of
:mod:`sarflow.metrics`); pixels without a prediction (NaN probability, mask 255) are left
out.  The inventory is rasterised on the prediction grid with
:func:`sarflow.dataset.rasterize_labels` (a pixel is a landslide when its centre lies in a
polygon).

Object level: an inventory landslide is *hit* when a predicted landslide polygon overlaps it
(shared area > 0); a predicted polygon is *false* when it overlaps no inventory polygon.
Inventory landslides count for an area when a point inside them lies in the area on a pixel
that has a prediction; predicted polygons are those of the area's mask (4-connected
regions).  A raster inventory's landslides are the 4-connected regions of its labels.  Both are also broken down by size class (ellipsoidal area in square metres).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import InputError
from .grid import Grid, Window, atomic_path, raster_info, read_raster
from .metrics import Confusion
from .vector import geometries

if TYPE_CHECKING:
    from .products import Evaluation

log = logging.getLogger("sarflow.evaluate")

SIZE_CLASSES_M2 = (1_000.0, 10_000.0, 100_000.0)
"""Upper edges of the size classes: < 1,000 m^2 (< 10 pixels), 1,000-10,000, 10,000-100,000
and >= 100,000 m^2."""

DEFAULT_THRESHOLD = 0.5


# ------------------------------------------------------------------------------------
# reading a prediction
# ------------------------------------------------------------------------------------

def prediction_raster(prediction: str | os.PathLike) -> Path:
    """The raster of a prediction: a file, or probability.tif (else mask.tif) in a folder."""
    p = Path(prediction)
    if p.is_dir():
        for name in ("probability.tif", "mask.tif"):
            if (p / name).is_file():
                return p / name
        raise InputError(f"{p} holds neither probability.tif nor mask.tif; run `sarflow predict`")
    if not p.is_file():
        raise InputError(f"prediction not found: {p}")
    return p


def read_prediction(path: str | os.PathLike, window: Window | None = None,
                    threshold: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(landslide, valid, threshold) boolean maps of a probability or 0/1/255 mask raster."""
    info = raster_info(path)
    data = read_raster(path, window, bands=[1])[0]
    if info.dtype.startswith("float"):
        t = float(threshold if threshold is not None
                  else _float_tag(info.tags.get("threshold"), DEFAULT_THRESHOLD))
        valid = np.isfinite(data)
        return valid & (np.nan_to_num(data, nan=0.0) >= t), valid, t
    nodata = info.nodata
    valid = np.ones(data.shape, bool) if nodata is None else data != nodata
    return valid & (data == 1), valid, float("nan")


def _float_tag(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


# ------------------------------------------------------------------------------------
# inventory
# ------------------------------------------------------------------------------------

def inventory_labels(inventory: str | os.PathLike, grid: Grid) -> np.ndarray:
    """The inventory rasterised on ``grid`` (float32 0/1, NaN unknown), via the dataset stage."""
    from .dataset import rasterize_labels

    with tempfile.TemporaryDirectory(prefix="sarflow-eval-") as tmp:
        out = rasterize_labels(inventory, grid, Path(tmp) / "labels.tif")
        return read_raster(out)[0]


def inventory_polygons(inventory: str | os.PathLike) -> list:
    """Shapely geometries (EPSG:4326, lon/lat) of every polygon feature of every layer."""
    from shapely import make_valid, wkb

    out = []
    for geom in geometries(inventory):
        shape = make_valid(wkb.loads(bytes(geom.ExportToWkb())))
        if shape.area > 0:
            out.append(shape)
    return out


# ------------------------------------------------------------------------------------
# scores
# ------------------------------------------------------------------------------------

def pixel_scores(predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> dict:
    """Precision, recall, F1, IoU and the confusion counts over the valid pixels."""
    keep = valid & np.isfinite(truth)
    out = Confusion().add(np.nan_to_num(truth, nan=0.0), predicted.astype(np.float32), 0.5,
                          keep).as_dict()
    out["pixels"] = int(np.count_nonzero(keep))
    return out


def size_class_labels(edges: Sequence[float] = SIZE_CLASSES_M2) -> list[str]:
    """Human names of the size classes, e.g. '< 1,000 m2', '1,000-10,000 m2', '>= 100,000 m2'."""
    e = [f"{x:,.0f}" for x in edges]
    return ([f"< {e[0]} m2"] + [f"{a}-{b} m2" for a, b in zip(e, e[1:])] + [f">= {e[-1]} m2"])


def size_class(area_m2: float, edges: Sequence[float] = SIZE_CLASSES_M2) -> int:
    """Index of the size class of an area."""
    return int(np.searchsorted(np.asarray(edges), area_m2, side="right"))


def object_scores(inventory: Sequence, predicted: Sequence, counted: Sequence[bool],
                  edges: Sequence[float] = SIZE_CLASSES_M2) -> dict:
    """Hit and false-alarm counts of polygons, overall and by size class.

    ``counted[i]`` says whether inventory polygon ``i`` belongs to the evaluated area; every
    inventory polygon may still excuse a predicted polygon that overlaps it.  Vectorised
    (one tree query and one batch of intersections): a change heatmap yields tens of
    thousands of small polygons.
    """
    from .predict import geodesic_areas_m2

    inv = np.asarray(list(inventory), dtype=object)
    pred = np.asarray(list(predicted), dtype=object)
    use = np.asarray(list(counted), dtype=bool).reshape(-1)
    hit_inv, hit_pred = _overlapping(inv, pred)
    n = len(edges) + 1
    k_inv = np.searchsorted(np.asarray(edges), geodesic_areas_m2(inv[use]), side="right")
    inv_n = np.bincount(k_inv, minlength=n)
    inv_hit = np.bincount(k_inv, weights=hit_inv[use], minlength=n).astype(int)
    k_pred = np.searchsorted(np.asarray(edges), geodesic_areas_m2(pred), side="right")
    pred_n = np.bincount(k_pred, minlength=n)
    pred_false = np.bincount(k_pred, weights=~hit_pred, minlength=n).astype(int)
    by_size = []
    for k, name in enumerate(size_class_labels(edges)):
        lo = 0.0 if k == 0 else float(edges[k - 1])
        hi = float(edges[k]) if k < len(edges) else None
        by_size.append({"class": name, "min_m2": lo, "max_m2": hi,
                        "inventory": int(inv_n[k]), "hit": int(inv_hit[k]),
                        "hit_share": _share(inv_hit[k], inv_n[k]),
                        "predicted": int(pred_n[k]), "false": int(pred_false[k]),
                        "false_share": _share(pred_false[k], pred_n[k])})
    return {"inventory": int(inv_n.sum()), "hit": int(inv_hit.sum()),
            "hit_share": _share(inv_hit.sum(), inv_n.sum()),
            "predicted": int(pred_n.sum()), "false": int(pred_false.sum()),
            "false_share": _share(pred_false.sum(), pred_n.sum()), "by_size": by_size}


def _overlapping(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which polygons of ``a`` share area with some polygon of ``b``, and vice versa
    (touching edges or corners do not count)."""
    import shapely

    hit_a, hit_b = np.zeros(len(a), bool), np.zeros(len(b), bool)
    if len(a) == 0 or len(b) == 0:
        return hit_a, hit_b
    ia, ib = shapely.STRtree(b).query(a, predicate="intersects")
    shared = shapely.area(shapely.intersection(a[ia], b[ib])) > 0
    hit_a[ia[shared]] = True
    hit_b[ib[shared]] = True
    return hit_a, hit_b


def _share(num: int, den: int) -> float | None:
    """num / den, or None (JSON null) when there is nothing to count."""
    return float(num) / float(den) if den else None


# ------------------------------------------------------------------------------------
# stages
# ------------------------------------------------------------------------------------

def _counted(inventory: Sequence, grid: Grid, valid: np.ndarray) -> list[bool]:
    """Which inventory polygons have a point inside the grid on a pixel with a prediction."""
    out = []
    for geom in inventory:
        pt = geom.representative_point()
        row, col = grid.rowcol(pt.x, pt.y)
        r, c = int(math.floor(row + 0.5)), int(math.floor(col + 0.5))
        out.append(0 <= r < grid.height and 0 <= c < grid.width and bool(valid[r, c]))
    return out


def _mask_polygons(predicted: np.ndarray, grid: Grid) -> list:
    """4-connected polygons of a boolean map on ``grid``, via an in-memory raster."""
    from osgeo import gdal

    from .predict import mask_polygons

    gdal.UseExceptions()
    path = f"/vsimem/sarflow_eval_{os.getpid()}_{id(predicted)}.tif"
    ds = gdal.GetDriverByName("GTiff").Create(path, grid.width, grid.height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(grid.geotransform)
    ds.GetRasterBand(1).WriteArray(predicted.astype(np.uint8))
    ds = None  # noqa: F841 - flush
    try:
        return mask_polygons(path)
    finally:
        gdal.Unlink(path)


def evaluate_prediction(prediction: str | os.PathLike, inventory: str | os.PathLike, *,
                        bounds: tuple[float, float, float, float] | None = None,
                        threshold: float | None = None,
                        size_classes: Sequence[float] = SIZE_CLASSES_M2) -> dict:
    """Pixel and object scores of a prediction (folder, probability or mask raster) against
    an inventory, over the whole prediction or the part inside ``bounds`` (W, S, E, N)."""
    raster = prediction_raster(prediction)
    full = raster_info(raster).grid
    grid = full
    if bounds is not None:
        part = full.intersection(Grid.from_bounds(*bounds, spacing=full.spacing))
        if part is None:
            raise InputError(f"area {list(bounds)} does not overlap the prediction {full.bounds}")
        grid = part
    predicted, valid, t = read_prediction(raster, full.window_of(grid), threshold)
    truth = inventory_labels(inventory, grid)
    from .dataset import RASTER_SUFFIXES

    if Path(inventory).suffix.lower() in RASTER_SUFFIXES:  # a raster inventory: its regions
        polygons = _mask_polygons(np.nan_to_num(truth, nan=0.0) > 0.5, grid)
    else:
        polygons = inventory_polygons(inventory)
    objects = object_scores(polygons, _mask_polygons(predicted, grid),
                            _counted(polygons, grid, valid), size_classes)
    return {"prediction": str(raster), "inventory": str(Path(inventory)),
            "threshold": None if math.isnan(t) else t,
            "area": {"bounds": list(grid.bounds), "grid": grid.to_dict()},
            "pixel": pixel_scores(predicted, truth, valid), "objects": objects}


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """Write a result as JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return Path(path)


def evaluate_event(cfg: Any, areas: Sequence[str] = ("training", "validation")
                   ) -> dict[str, Evaluation]:
    """Evaluate the event's predictions per area into ``WorkDir.evaluation(area)``."""
    from .products import Evaluation
    from .workdir import WorkDir

    if cfg.inventory is None:
        raise InputError("the event config has no inventory; set 'inventory' to evaluate")
    wd = WorkDir(cfg.output)
    results = {}
    for area in areas:
        result = evaluate_prediction(wd.prediction(area), cfg.inventory)
        result["name"] = area
        cfg.area_grid(area).check_same(Grid(**result["area"]["grid"]),
                                       what=f"prediction of the {area} area")
        write_json(result, wd.evaluation(area))
        results[area] = Evaluation.from_record(area, wd.evaluation(area), result)
    return results
