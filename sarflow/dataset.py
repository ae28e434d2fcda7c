"""Training data: labels rasterised on the event grid, and 128 x 128 patch datasets.

Labels (``<output>/labels/labels.tif``): the inventory on the event grid as float32,
1 = landslide, 0 = not, NaN = unknown (only where a raster inventory has nodata).  Polygon
inventories (any OGR format, any CRS) are rasterised with GDAL, all-touched off: a pixel is
a landslide when its centre lies inside a polygon.  Raster inventories are resampled to the
grid with nearest neighbour; any non-zero value is a landslide.

A dataset folder (``<output>/dataset/<group>/``) as sarflow writes it::

    manifest.json   format "sarflow-patches", version, group, channels, patch_size,
                    source (image and labels rasters, grid, training window),
                    split (seed, test_fraction), normalisation {mean, std} per channel
                    computed on the train split only (finite pixels), nan_policy,
                    patches: [{row, col, split, nan_fraction, positive_fraction}] with
                    row/col the patch's top-left pixel in the image raster
    images.npy      (N, P, P, C) float32, the raw group values (dB changes), NaN kept
    masks.npy       (N, P, P) uint8, 1 = landslide

Patches are non-overlapping ``P x P`` tiles of the training area (the whole event grid
when no training_area is set), starting at its north-west corner; partial tiles at the
east and south edges are dropped.  A tile with more than half of its pixels invalid (an
input channel NaN or the label unknown) is skipped.  The rest are split at random
(``numpy.random.default_rng(seed)``) into train and test, ``test_fraction`` (0.2) of them
test.  When loaded, images are normalised per channel, ``(x - mean) / std``, and NaN pixels
are then set to 0, i.e. to the train mean; unknown labels count as 0.

Datasets made elsewhere: a folder with ``images/`` and ``masks/`` holding pairs of patches
with the same file stem, as ``.npy`` ((H, W, C) or (C, H, W) images, (H, W) masks) or
GeoTIFF (bands = channels), and a small ``manifest.json``::

    {"channels": ["VV change", "VH change"]}

Optional keys: ``patches`` ([{"image": "images/a.tif", "mask": "masks/a.tif",
"split": "train"|"test"}], instead of pairing by stem), ``seed`` and ``test_fraction``
(for the random split when patches carry no split), ``normalisation`` ({"mean", "std"},
else computed on the train split), ``group``.  All patches must have one square size,
a multiple of 16.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import ConfigError, InputError
from .grid import Grid, Window, raster_info, read_raster, write_raster
from .products import PatchFolder, raster_fingerprint, rasters_current
from .provenance import Provenance, file_fingerprint, is_current
from .vector import geometries, wgs84

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "sarflow-patches"
VERSION = 1
MAX_INVALID_FRACTION = 0.5
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".nc")
NAN_POLICY = ("images normalised per channel with the train-split mean and std, then NaN "
              "set to 0 (the train mean); unknown labels count as 0; patches more than "
              f"{MAX_INVALID_FRACTION:.0%} invalid are skipped")


# ------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------

def rasterize_labels(inventory: str | os.PathLike, grid: Grid, out: str | os.PathLike,
                     *, all_touched: bool = False) -> Path:
    """Write the inventory (polygons or a raster) onto ``grid`` as a 0/1 float32 GeoTIFF."""
    src = Path(inventory)
    if not src.exists():
        raise InputError(f"inventory not found: {src}; set 'inventory' in the event config")
    if src.suffix.lower() in RASTER_SUFFIXES:
        labels = _warp_raster_labels(src, grid)
        how = "nearest-neighbour resampling of a raster inventory (non-zero = landslide)"
    else:
        labels = _burn_polygons(src, grid, all_touched)
        how = f"GDAL rasterisation of polygons, all_touched={all_touched}"
    tags = {"stage": "labels", "inventory": str(src), "method": how,
            "values": "1 landslide, 0 not landslide, NaN unknown",
            "landslide_pixels": int(np.nansum(labels)),
            "provenance": labels_provenance(src, grid, all_touched).to_json()}
    return write_raster(out, labels, grid, descriptions=["landslide"], tags=tags)


def _mem_raster(grid: Grid, fill: float):
    from osgeo import gdal

    gdal.UseExceptions()
    ds = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(grid.geotransform)
    ds.SetProjection(wgs84().ExportToWkt())
    ds.GetRasterBand(1).Fill(fill)
    return ds


def _burn_polygons(path: Path, grid: Grid, all_touched: bool) -> np.ndarray:
    """Polygons of every layer, transformed to EPSG:4326, burnt as 1 on a 0 background."""
    from osgeo import gdal, ogr

    mem = ogr.GetDriverByName("Memory").CreateDataSource("labels")
    layer = mem.CreateLayer("polygons", srs=wgs84(), geom_type=ogr.wkbUnknown)
    count = 0
    for geom in geometries(path):
        out = ogr.Feature(layer.GetLayerDefn())
        out.SetGeometry(geom)
        layer.CreateFeature(out)
        count += 1
    if count == 0:
        raise InputError(f"inventory {path} has no polygons; it must hold landslide polygons")
    ds = _mem_raster(grid, 0.0)
    opts = [f"ALL_TOUCHED={'TRUE' if all_touched else 'FALSE'}"]
    gdal.RasterizeLayer(ds, [1], layer, burn_values=[1.0], options=opts)
    return ds.GetRasterBand(1).ReadAsArray().astype(np.float32)


def _warp_raster_labels(path: Path, grid: Grid) -> np.ndarray:
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        src = gdal.Open(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read inventory raster {path}: {exc}") from None
    dst = _mem_raster(grid, float("nan"))
    dst.GetRasterBand(1).SetNoDataValue(float("nan"))
    gdal.Warp(dst, src, resampleAlg="near", dstNodata=float("nan"))
    values = dst.GetRasterBand(1).ReadAsArray().astype(np.float32)
    return np.where(np.isfinite(values), (values != 0).astype(np.float32), np.nan)


# ------------------------------------------------------------------------------------
# building a dataset
# ------------------------------------------------------------------------------------

def build_dataset(cfg, group: str | None = None, *, labels_path: str | os.PathLike | None = None,
                  force: bool = False) -> PatchFolder:
    """Labels (rasterised if missing) and the patch dataset of ``group`` for an event."""
    from .workdir import WorkDir

    wd = WorkDir(cfg.output)
    group = group or cfg.model.group
    image = wd.group(group)
    if not image.exists():
        raise InputError(f"group raster {image} not found; run `sarflow stack` first")
    grid = cfg.grid()
    grid.check_same(raster_info(image).grid, f"group raster {image}")
    labels = Path(labels_path) if labels_path else wd.labels
    if labels_path is not None and not labels.exists():
        raise InputError(f"labels raster {labels} not found")
    if labels_path is None and _labels_stale(labels, cfg.inventory, grid):
        if cfg.inventory is None:
            raise ConfigError(f"no labels at {labels} and no 'inventory' in the event config; "
                              "set inventory to the landslide polygons")
        log.info("rasterising %s onto the event grid", cfg.inventory)
        rasterize_labels(cfg.inventory, grid, labels)
    window = grid.window_of(cfg.area_grid("training"))
    m = cfg.model
    return PatchFolder(make_patches(image, labels, wd.dataset(group), window=window,
                                    patch_size=m.patch_size, test_fraction=m.test_fraction,
                                    seed=m.seed, group=group, force=force))


def labels_provenance(inventory: Path, grid: Grid, all_touched: bool = False) -> Provenance:
    """What decides the labels raster: the inventory file, the grid, the burn rule."""
    return Provenance(stage="labels", settings={"grid": grid.to_dict(), "all_touched": all_touched},
                      inputs={"inventory": file_fingerprint(inventory)})


def _labels_stale(labels: Path, inventory: Path | None, grid: Grid) -> bool:
    """True when the labels raster is missing, or not made from this inventory on this grid
    (a labels raster given without an inventory is the user's: never stale)."""
    if not labels.exists():
        return True
    if inventory is None or not Path(inventory).exists():
        return False
    return not rasters_current([labels], labels_provenance(Path(inventory), grid))


def make_patches(image: str | os.PathLike, labels: str | os.PathLike, out_dir: str | os.PathLike,
                 *, window: Window | None = None, patch_size: int = 128,
                 test_fraction: float = 0.2, seed: int = 0, group: str | None = None,
                 force: bool = False) -> Path:
    """Cut ``image`` and ``labels`` (same grid) into a patch dataset folder (format above)."""
    image, labels, out = Path(image), Path(labels), Path(out_dir)
    info = raster_info(image)
    info.grid.check_same(raster_info(labels).grid, f"labels {labels}")
    window = window or info.grid.full_window
    prov = dataset_provenance(image, labels, window, patch_size, test_fraction, seed)
    if not force and _is_current(out, prov):
        log.info("dataset %s is up to date", out)
        return out
    x = np.moveaxis(read_raster(image, window), 0, -1).astype(np.float32)
    y = read_raster(labels, window, [1])[0].astype(np.float32)
    tiles = list(_tiles(window.height, window.width, patch_size))
    if not tiles:
        raise InputError(f"the training area ({window.height} x {window.width} px) is smaller "
                         f"than one {patch_size} x {patch_size} patch; enlarge training_area")
    kept, records = [], []
    for r, c in tiles:
        xs, ys = x[r:r + patch_size, c:c + patch_size], y[r:r + patch_size, c:c + patch_size]
        invalid = ~np.all(np.isfinite(xs), axis=-1) | ~np.isfinite(ys)
        frac = float(invalid.mean())
        if frac > MAX_INVALID_FRACTION:
            continue
        kept.append((r, c))
        records.append({"row": window.row + r, "col": window.col + c,
                        "nan_fraction": round(frac, 6),
                        "positive_fraction": round(float(np.nansum(ys) / ys.size), 6)})
    if len(kept) < 2:
        raise InputError(f"only {len(kept)} usable {patch_size} x {patch_size} patch(es) in the "
                         f"training area of {image}; need at least 2 (train and test)")
    splits = random_split(len(kept), test_fraction, seed)
    for rec, s in zip(records, splits):
        rec["split"] = s
    images = np.stack([x[r:r + patch_size, c:c + patch_size] for r, c in kept])
    masks = np.stack([np.nan_to_num(y[r:r + patch_size, c:c + patch_size]) for r, c in kept])
    masks = (masks > 0.5).astype(np.uint8)
    train = np.array([s == "train" for s in splits])
    mean, std = channel_stats(images[train])
    manifest = {
        "format": FORMAT, "version": VERSION, "group": group,
        "channels": list(info.descriptions) or [f"band{i + 1}" for i in range(info.count)],
        "patch_size": patch_size,
        "source": {"image": str(image), "labels": str(labels), "grid": info.grid.to_dict(),
                   "window": [window.row, window.col, window.height, window.width]},
        "split": {"seed": seed, "test_fraction": test_fraction,
                  "train": int(train.sum()), "test": int((~train).sum()),
                  "skipped_invalid": len(tiles) - len(kept)},
        "normalisation": {"mean": mean, "std": std, "from": "train split"},
        "nan_policy": NAN_POLICY, "provenance": prov.to_dict(),
        "files": {"images": "images.npy", "masks": "masks.npy"},
        "patches": records,
    }
    _write_folder(out, manifest, images, masks)
    log.info("dataset %s: %d train, %d test patches (%d skipped)", out, train.sum(),
             (~train).sum(), len(tiles) - len(kept))
    return out


def _tiles(height: int, width: int, size: int) -> Iterator[tuple[int, int]]:
    for r in range(0, height - size + 1, size):
        for c in range(0, width - size + 1, size):
            yield r, c


def random_split(n: int, test_fraction: float, seed: int) -> list[str]:
    """Seeded random train/test labels for ``n`` patches (at least one of each if n >= 2)."""
    n_test = int(round(n * test_fraction))
    if n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    out = ["train"] * n
    for i in order[:n_test]:
        out[i] = "test"
    return out


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over the finite pixels of (N, H, W, C) images."""
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64)
    mean, std = [], []
    for ch in range(flat.shape[1]):
        v = flat[:, ch][np.isfinite(flat[:, ch])]
        m = float(v.mean()) if v.size else 0.0
        s = float(v.std()) if v.size else 1.0
        mean.append(m)
        std.append(s if s > 0 else 1.0)
    return mean, std


def dataset_provenance(image: Path, labels: Path, window: Window, patch_size: int,
                       test_fraction: float, seed: int) -> Provenance:
    """What decides a patch dataset: the group raster and labels it is cut from (their own
    provenance when sarflow made them), the window, patch size, split fraction and seed."""
    return Provenance(stage="dataset",
                      settings={"window": [window.row, window.col, window.height, window.width],
                                "patch_size": patch_size, "test_fraction": test_fraction,
                                "seed": seed},
                      inputs={"image": raster_fingerprint(image),
                              "labels": raster_fingerprint(labels)})


def _is_current(out: Path, expected: Provenance) -> bool:
    """The dataset folder was made as ``expected`` says and all its files are there."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    recorded = manifest.get("provenance")
    files = manifest.get("files", {}).values()
    return (isinstance(recorded, dict) and is_current(Provenance.from_dict(recorded), expected)
            and all((out / f).is_file() for f in files))


def _write_folder(out: Path, manifest: dict, images: np.ndarray, masks: np.ndarray) -> None:
    """Write the dataset into a temporary sibling folder and rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        np.save(tmp / "images.npy", images)
        np.save(tmp / "masks.npy", masks)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------

@dataclass
class PatchDataset:
    """A loaded dataset: normalised images (NaN -> 0) and 0/1 masks per split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    channels: list[str]
    normalisation: dict
    patch_size: int
    path: Path
    manifest: dict = field(default_factory=dict)

    @property
    def group(self) -> str | None:
        return self.manifest.get("group")


def load_dataset(path: str | os.PathLike) -> PatchDataset:
    """Read a dataset folder (sarflow's own format or user image/mask pairs)."""
    p = Path(path)
    mpath = p / MANIFEST
    if not mpath.is_file():
        raise InputError(f"{p} is not a dataset folder (no {MANIFEST}); build one with "
                         "`sarflow dataset` or see the format in sarflow.dataset")
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError as exc:
        raise InputError(f"{mpath} is not valid JSON: {exc}") from None
    if manifest.get("format") == FORMAT:
        images = np.load(p / manifest["files"]["images"])
        masks = np.load(p / manifest["files"]["masks"])
        splits = [rec["split"] for rec in manifest["patches"]]
    else:
        images, masks, splits = _load_pairs(p, manifest)
    return _assemble(p, manifest, images, masks, splits)


def _assemble(p: Path, manifest: dict, images: np.ndarray, masks: np.ndarray,
              splits: list[str]) -> PatchDataset:
    channels = list(manifest.get("channels") or [])
    if len(channels) != images.shape[-1]:
        raise InputError(f"{p}: manifest names {len(channels)} channels, images have "
                         f"{images.shape[-1]}")
    size = images.shape[1]
    if images.shape[1] != images.shape[2] or size % 16:
        raise InputError(f"{p}: patches are {images.shape[1]} x {images.shape[2]}; they must "
                         "be square with a side that is a multiple of 16")
    train = np.array([s == "train" for s in splits])
    if not train.any() or train.all():
        raise InputError(f"{p}: the split needs train and test patches "
                         f"({int(train.sum())} train, {int((~train).sum())} test)")
    norm = manifest.get("normalisation")
    if not norm:
        mean, std = channel_stats(images[train])
        norm = {"mean": mean, "std": std, "from": "train split"}
    x = normalise(images, norm["mean"], norm["std"])
    y = (np.nan_to_num(masks.astype(np.float32)) > 0.5).astype(np.float32)[..., None]
    return PatchDataset(x[train], y[train], x[~train], y[~train], channels,
                        {"mean": list(map(float, norm["mean"])),
                         "std": list(map(float, norm["std"]))},
                        int(size), p, manifest)


def normalise(images: np.ndarray, mean, std) -> np.ndarray:
    """``(x - mean) / std`` per channel (last axis), then NaN -> 0, as float32."""
    x = (images.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _load_pairs(p: Path, manifest: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    pairs = manifest.get("patches") or _pairs_by_stem(p)
    if not pairs:
        raise InputError(f"{p}: no patches listed and no images/ + masks/ pairs found")
    n_ch = len(manifest.get("channels") or [])
    images = [_read_patch(p / rec["image"], n_ch) for rec in pairs]
    masks = [_read_mask(p / rec["mask"]) for rec in pairs]
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise InputError(f"{p}: image patches have different shapes {sorted(shapes)}")
    for rec, img, msk in zip(pairs, images, masks):
        if msk.shape != img.shape[:2]:
            raise InputError(f"{p}: mask {rec['mask']} is {msk.shape}, image is {img.shape[:2]}")
    if all("split" in rec for rec in pairs):
        splits = [rec["split"] for rec in pairs]
        bad = sorted({s for s in splits} - {"train", "test"})
        if bad:
            raise InputError(f"{p}: split values {bad} are not 'train' or 'test'")
    else:
        splits = random_split(len(pairs), float(manifest.get("test_fraction", 0.2)),
                              int(manifest.get("seed", 0)))
    return np.stack(images), np.stack(masks), splits


def _pairs_by_stem(p: Path) -> list[dict]:
    def index(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            return {}
        return {f.stem: f for f in sorted(folder.iterdir())
                if f.suffix.lower() in (".npy", ".tif", ".tiff")}

    imgs, msks = index(p / "images"), index(p / "masks")
    missing = sorted(set(imgs) ^ set(msks))
    if missing:
        raise InputError(f"{p}: images/ and masks/ do not pair up: {missing[:5]} lack a partner")
    return [{"image": str(imgs[k].relative_to(p)), "mask": str(msks[k].relative_to(p))}
            for k in sorted(imgs)]


def _read_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"patch file not found: {path}")
    if path.suffix.lower() == ".npy":
        return np.load(path)
    return np.moveaxis(read_raster(path), 0, -1)


def _read_patch(path: Path, n_channels: int) -> np.ndarray:
    a = _read_array(path).astype(np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim == 3 and a.shape[-1] != n_channels and a.shape[0] == n_channels:
        a = np.moveaxis(a, 0, -1)
    if a.ndim != 3 or a.shape[-1] != n_channels:
        raise InputError(f"{path}: image of shape {a.shape} does not have the manifest's "
                         f"{n_channels} channels")
    return a


def _read_mask(path: Path) -> np.ndarray:
    a = np.squeeze(_read_array(path)).astype(np.float32)
    if a.ndim != 2:
        raise InputError(f"{path}: mask of shape {a.shape} is not a single band")
    return a

