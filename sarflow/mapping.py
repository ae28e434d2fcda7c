"""Rapid-response mapping: an event without an inventory, a model trained elsewhere.

:func:`map_event` runs what the event needs and has not done yet (preprocessing and
stacking are resumable and skip current outputs), the no-model change heatmap and the
model over the whole event area, from whatever scenes exist: when only one pass has pre-
and post-event scenes the fused change (G1) is that pass's change, and the report says so.

Outputs, in ``<output>/map/`` (or ``out``), made for QGIS and web viewers:

* ``probability.tif``, ``mask.tif`` (1 landslide, 0 not, 255 no data) and ``heatmap.tif``
  (robust z-scores, :mod:`sarflow.heatmap`): Cloud-Optimized GeoTIFFs (GDAL's COG driver,
  DEFLATE, internal overviews);
* ``landslides.gpkg``: one polygon per 4-connected landslide region with its ellipsoidal
  area (m^2), size class, pixel count, mean and maximum probability and the passes that
  saw it (a pass sees a pixel when its VV and VH changes are valid there; it saw the
  polygon when it sees at least half of its pixels);
* ``map.json``: the summary (scenes per pass and window, what was missing and why, counts
  and areas by size class); ``report.html``: the same with maps, needing no inventory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .errors import InputError
from .grid import Grid, atomic_path, raster_info, read_raster
from .workdir import WorkDir

log = logging.getLogger("sarflow.mapping")

PASS_NAMES = {"asc": "ascending", "desc": "descending"}
SIZE_CLASSES = ((0.0, 1e3, "< 1,000 m2"), (1e3, 1e4, "1,000 - 10,000 m2"),
                (1e4, 1e5, "1 - 10 ha"), (1e5, math.inf, ">= 10 ha"))
"""Landslide size classes by area: [low, high) in square metres, and their label."""
SEEN_SHARE = 0.5
"""A pass saw a polygon when its changes are valid on at least this share of its pixels."""
MASK_NODATA = 255


@dataclass(frozen=True)
class MapResult:
    """What :func:`map_event` wrote: output name -> path, and the summary (``map.json``)."""

    folder: Path
    paths: dict[str, Path]
    summary: dict[str, Any]


# ------------------------------------------------------------------------------------
# Cloud-Optimized GeoTIFFs
# ------------------------------------------------------------------------------------

def cog_blocksize(width: int, height: int) -> int:
    """Tile size of a COG: 512, smaller for small rasters so they still get overviews
    (GDAL makes overview levels until one fits in a tile); at least 128 (GDAL's minimum),
    so a raster of at most 128 px on a side has none."""
    size = 512
    while size > 128 and size * 2 > max(width, height):
        size //= 2
    return size


def write_cog(src: str | os.PathLike, dst: str | os.PathLike, *, resampling: str = "AVERAGE") -> Path:
    """Copy raster ``src`` to a Cloud-Optimized GeoTIFF ``dst`` (DEFLATE, overviews made
    with ``resampling``), atomically; band descriptions, nodata and tags are kept."""
    from osgeo import gdal

    gdal.UseExceptions()
    info = raster_info(src)
    block = cog_blocksize(info.grid.width, info.grid.height)
    floating = info.dtype.startswith("float")
    options = [f"BLOCKSIZE={block}", "COMPRESS=DEFLATE", f"OVERVIEW_RESAMPLING={resampling}",
               "OVERVIEWS=IGNORE_EXISTING", "NUM_THREADS=1",
               f"PREDICTOR={'FLOATING_POINT' if floating else 'STANDARD'}"]
    with atomic_path(dst) as tmp:
        gdal.Translate(str(tmp), str(src), format="COG", creationOptions=options)
    return Path(dst)


# ------------------------------------------------------------------------------------
# polygons with attributes
# ------------------------------------------------------------------------------------

def size_class(area_m2: float) -> str:
    """The label of the size class an area falls in."""
    for low, high, label in SIZE_CLASSES:
        if low <= area_m2 < high:
            return label
    raise ValueError(f"area {area_m2} is negative")


def seen_by_pass(wd: WorkDir, passes: Sequence[str]) -> dict[str, np.ndarray]:
    """Per pass with a change: True where its VV and VH changes are both valid."""
    out = {}
    for p in passes:
        vv, vh = (read_raster(wd.change(p, pol))[0] for pol in ("VV", "VH"))
        out[p] = np.isfinite(vv) & np.isfinite(vh)
    return out


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected regions of ``mask == 1``, labelled 1..n (0 elsewhere)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask == 1, structure=ndimage.generate_binary_structure(2, 1))
    return labels.astype(np.int32), int(n)


def _polygons_of_labels(labels: np.ndarray, grid: Grid) -> dict[int, Any]:
    """Label -> shapely polygon of its region (GDAL Polygonize, 4-connected)."""
    import shapely
    from osgeo import gdal, ogr

    from .vector import wgs84

    gdal.UseExceptions()
    mem = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Int32)
    mem.SetGeoTransform(grid.geotransform)
    mem.SetSpatialRef(wgs84())
    band = mem.GetRasterBand(1)
    band.WriteArray(labels)
    band.SetNoDataValue(0)
    src = ogr.GetDriverByName("Memory").CreateDataSource("regions")
    layer = src.CreateLayer("r", wgs84(), ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    gdal.Polygonize(band, band.GetMaskBand(), layer, 0, [], callback=None)
    out: dict[int, Any] = {}
    for f in layer:
        geom = shapely.from_wkb(bytes(f.GetGeometryRef().ExportToWkb()))
        k = int(f.GetField(0))
        out[k] = geom if k not in out else shapely.union(out[k], geom)
    return out


def landslide_polygons(mask: np.ndarray, probability: np.ndarray, grid: Grid,
                       seen: dict[str, np.ndarray], min_area_m2: float = 0.0
                       ) -> tuple[list[Any], list[dict[str, Any]]]:
    """(polygons, attributes) of the landslide regions of ``mask``: id, area_m2, size_class,
    pixels, mean and max probability, and the passes that saw each (see :data:`SEEN_SHARE`).
    Regions smaller than ``min_area_m2`` are left out."""
    from scipy import ndimage

    from .predict import geodesic_areas_m2

    labels, n = label_regions(mask)
    if n == 0:
        return [], []
    index = np.arange(1, n + 1)
    pixels = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    prob = np.where(np.isfinite(probability), probability, 0.0)
    mean = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=n + 1)[1:] / pixels
    peak = np.asarray(ndimage.maximum(prob, labels, index), dtype=float)
    share = {p: np.bincount(labels.ravel(), weights=s.ravel().astype(float), minlength=n + 1)[1:]
             / pixels for p, s in seen.items()}
    shapes = _polygons_of_labels(labels, grid)
    geoms = [shapes[k] for k in index]
    areas = geodesic_areas_m2(geoms)
    polygons, records = [], []
    for i in np.flatnonzero(areas >= min_area_m2):
        saw = [p for p in ("asc", "desc") if p in share and share[p][i] >= SEEN_SHARE]
        polygons.append(geoms[i])
        records.append({"id": len(records) + 1, "area_m2": round(float(areas[i]), 2),
                        "size_class": size_class(float(areas[i])), "pixels": int(pixels[i]),
                        "mean_probability": round(float(mean[i]), 4),
                        "max_probability": round(float(peak[i]), 4),
                        "passes": ",".join(PASS_NAMES[p] for p in saw)})
    return polygons, records


_FIELD_TYPES = {int: "OFTInteger", float: "OFTReal", str: "OFTString"}


def write_attributed_polygons(path: str | os.PathLike, polygons: Sequence[Any],
                              records: Sequence[dict[str, Any]], layer_name: str = "landslides") -> Path:
    """Write polygons (EPSG:4326) with one attribute row each as a GeoPackage, atomically."""
    import shapely
    from osgeo import gdal, ogr

    from .vector import wgs84

    gdal.UseExceptions()
    ogr.UseExceptions()
    fields = {"id": int, "area_m2": float, "size_class": str, "pixels": int,
              "mean_probability": float, "max_probability": float, "passes": str}
    with atomic_path(path) as tmp:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        # no R-tree: TensorFlow's SQLite lacks the rtree module (see predict.write_polygons)
        layer = ds.CreateLayer(layer_name, wgs84(), ogr.wkbMultiPolygon, options=["SPATIAL_INDEX=NO"])
        for name, kind in fields.items():
            layer.CreateField(ogr.FieldDefn(name, getattr(ogr, _FIELD_TYPES[kind])))
        feat = ogr.Feature(layer.GetLayerDefn())
        layer.StartTransaction()
        for geom, rec in zip(polygons, records):
            feat.SetFID(ogr.NullFID)
            for name in fields:
                feat.SetField(name, rec[name])
            multi = geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])
            feat.SetGeometryDirectly(ogr.CreateGeometryFromWkb(shapely.to_wkb(multi)))
            layer.CreateFeature(feat)
        layer.CommitTransaction()
        feat = ds = None  # noqa: F841 - flush before the rename
    return Path(path)


def size_table(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Count and total area (m^2) of the polygons per size class, smallest class first."""
    rows = []
    for _, _, label in SIZE_CLASSES:
        these = [r for r in records if r["size_class"] == label]
        rows.append({"size_class": label, "count": len(these),
                     "area_m2": round(sum(r["area_m2"] for r in these), 2)})
    return rows


# ------------------------------------------------------------------------------------
# what was there and what was missing
# ------------------------------------------------------------------------------------

def coverage_classes(seen: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """0 no pass, 1 ascending only, 2 descending only, 3 both (see figures.COVERAGE_COLOURS)."""
    asc = seen.get("asc", np.zeros(shape, bool))
    desc = seen.get("desc", np.zeros(shape, bool))
    return (asc.astype(np.uint8) + 2 * desc.astype(np.uint8)).astype(np.float32)


def missing_data(wd: WorkDir, selection: dict[str, Any], preprocess: dict[str, Any],
                 coverage: np.ndarray) -> list[str]:
    """Sentences saying where data were missing and why (empty when nothing was)."""
    notes = []
    passes = selection.get("passes", [])
    by_reason: dict[str, list[str]] = {}
    for name, why in selection.get("left_out", {}).items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        notes.append(f"{why}: left out {', '.join(sorted(names))}")
    if len(passes) == 1:
        p = PASS_NAMES[passes[0]]
        notes.append(f"only the {p} pass has pre- and post-event scenes: the fused change (G1) "
                     f"is the {p} change, and the heatmap's fused score is the {p} score")
    for s in preprocess.get("scenes", []):
        if s.get("outcome") in ("failed", "skipped", "locked"):
            notes.append(f"scene {s['product_id']} {s['outcome']}: {s.get('reason') or 'see its log'}")
    for pid in selection.get("ignored", []):
        notes.append(f"scene {pid} lies outside the pre- and post-event windows: not used")
    total = coverage.size
    none = int((coverage == 0).sum())
    if none:
        notes.append(f"{none} of {total} pixels ({100 * none / total:.1f} %) have no valid change "
                     "in any pass (layover/shadow, outside the scenes, or no such pass): no map there")
    for p in passes:
        code = 1 if p == "asc" else 2
        alone = int(((coverage == code)).sum())
        other = "desc" if p == "asc" else "asc"
        if alone and other in passes:
            notes.append(f"{alone} pixels ({100 * alone / total:.1f} %) are seen by the {PASS_NAMES[p]} "
                         f"pass only (the {PASS_NAMES[other]} pass is masked there)")
    return notes


# ------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def check_group(meta: dict[str, Any], selection: dict[str, Any]) -> str:
    """The model's input group, when this event can make it; else a one-line InputError."""
    group = str(meta.get("group", ""))
    why = selection.get("left_out", {}).get(group)
    if why:
        usable = [g for g in ("G1", "G2", "G3", "G4", "G5", "G6")
                  if g not in selection.get("left_out", {})]
        raise InputError(f"the model maps group {group}, which this event cannot make ({why}); "
                         f"use a model trained on one of {', '.join(usable)}")
    return group


def map_event(cfg: Any, model_path: str | os.PathLike, *, out: Optional[str | os.PathLike] = None,
              threshold: Optional[float] = None, min_area_m2: float = 0.0,
              engine: Optional[str] = None, workers: Optional[int] = None,
              progress: bool = True) -> MapResult:
    """Map ``cfg``'s whole area with a model trained elsewhere; see the module docstring."""
    from .heatmap import heatmap_event, heatmap_path
    from .modelio import read_meta
    from .predict import predict_raster
    from .preprocess import preprocess_event
    from .stack import selection_path, stack_event

    meta = read_meta(model_path)  # a bad model fails before any work
    wd = WorkDir(cfg.output)
    folder = Path(out) if out is not None else wd.root / "map"
    summary_pre = preprocess_event(cfg, engine=engine, workers=workers, progress=progress)
    if not any(s.outcome in ("done", "existing") for s in summary_pre.scenes):
        summary_pre.raise_for_failures()
        raise InputError(f"no scene of {cfg.name} could be preprocessed; see {summary_pre.path}")
    stack_event(cfg, workers=workers, progress=progress)
    selection = _read_json(selection_path(wd)).get("selection", {})
    group = check_group(meta, selection)
    heatmap_event(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / ".work"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        raw = predict_raster(model_path, wd.group(group), scratch, threshold=threshold,
                             min_area_m2=min_area_m2, progress=progress,
                             flip_average=cfg.prediction.flip_average)
        paths = {"probability": write_cog(raw["probability"], folder / "probability.tif"),
                 "mask": write_cog(raw["mask"], folder / "mask.tif", resampling="NEAREST"),
                 "heatmap": write_cog(heatmap_path(wd), folder / "heatmap.tif")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    grid = cfg.grid()
    prob = read_raster(paths["probability"])[0]
    mask = read_raster(paths["mask"])[0]
    seen = seen_by_pass(wd, selection.get("passes", []))
    polygons, records = landslide_polygons(mask, prob, grid, seen, min_area_m2)
    paths["polygons"] = write_attributed_polygons(folder / "landslides.gpkg", polygons, records)
    coverage = coverage_classes(seen, grid.shape)
    summary = {
        "event": cfg.name, "event_time": cfg.event.time.isoformat(),
        "model": str(Path(model_path).resolve()), "group": group,
        "architecture": meta.get("architecture"),
        "threshold": float(raster_info(paths["probability"]).tags.get("threshold", "nan")),
        "flip_average": cfg.prediction.flip_average,
        "radiometry": selection.get("radiometry", "sigma0"),
        "passes": [PASS_NAMES[p] for p in selection.get("passes", [])],
        "dates": {k: v for k, v in selection.items() if k.endswith(("_pre", "_post"))
                  and not k.startswith("single")},
        "left_out": selection.get("left_out", {}),
        "missing": missing_data(wd, selection, _read_json(wd.preprocess_summary), coverage),
        "landslides": len(records), "landslide_area_m2": round(sum(r["area_m2"] for r in records), 2),
        "size_classes": size_table(records),
        "mapped_pixels": int(np.isfinite(prob).sum()), "pixels": int(prob.size),
        "inventory": str(cfg.inventory) if cfg.inventory else None,
    }
    heat_warning = raster_info(paths["heatmap"]).tags.get("warning")
    if heat_warning:
        summary["missing"].append(f"heatmap: {heat_warning}")
    with atomic_path(folder / "map.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    paths["summary"] = folder / "map.json"
    from .map_report import write_map_report

    paths["report"] = write_map_report(cfg, folder, paths, summary, records, coverage)
    log.info("mapped %d landslides (%.0f m2) -> %s", len(records), summary["landslide_area_m2"], folder)
    return MapResult(folder=folder, paths=paths, summary=summary)
