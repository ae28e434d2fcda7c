"""Whole-area inference throughput: sarflow.predict vs plain ``model.predict``.

    python bench/bench_predict.py [--size 800x600] [--filters 16 64] [--repeats 3]

For DPPA-UNet (sarflow.nets) at each base filter count: a random 2-band G1-like raster
(with a NaN hole) of --size pixels is mapped with :func:`sarflow.predict.predict_raster`
(sliding 128 x 128 windows, default overlap, blending, GeoTIFF + mask + polygon writing), and
the very same normalised windows are passed to ``model.predict`` as one array (the
baseline: inference without tiling, blending or writing).  Both are warmed up first and
timed best-of --repeats, interleaved.

overhead = t_sarflow / t_model_predict - 1 (target < 0.25).  The net is untrained: its
threshold is set to the 97th percentile of its output on the raster, so that the mask and
polygons resemble a landslide map's; the polygon step (its cost grows with the number of
polygons, not with the area) is also timed alone and overhead_without_polygons reported.
overhead_outside_net = (time of a sarflow run spent outside the net's calls) /
t_model_predict is less sensitive to other processes sharing the CPUs.  Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATCH = 128
CHANNELS = ["VV_change_fused", "VH_change_fused"]
MEAN, STD = [0.3, 0.1], [1.5, 1.2]


def _raster(path: Path, height: int, width: int) -> None:
    """A G1-like change raster: spatially correlated clutter, landslide-like blobs of strong
    change, and a NaN hole (a real map's structure, unlike white noise)."""
    from scipy.ndimage import gaussian_filter

    from sarflow.grid import Grid, write_raster

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    blobs = np.zeros((height, width), bool)
    for _ in range(max(1, height * width // 12_000)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(3, 20, 2)
        blobs |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    data = np.stack([gaussian_filter(rng.normal(0, 1, (height, width)), 2) * 3 + 4 * blobs,
                     gaussian_filter(rng.normal(0, 1, (height, width)), 2) * 3 + 3 * blobs])
    data = data.astype(np.float32)
    data[:, 40:60, 100:180] = np.nan
    write_raster(path, data, Grid(1_580_000, 475_000, width, height), descriptions=CHANNELS)


def _windows(raster: Path, overlap: int) -> np.ndarray:
    """The normalised windows predict_raster feeds the net (NaN -> 0), as one array."""
    from sarflow.grid import read_raster
    from sarflow.predict import tile_starts

    x = np.moveaxis(read_raster(raster), 0, -1)
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    x[~np.isfinite(x).all(axis=-1)] = 0.0
    h, w = x.shape[:2]
    return np.stack([x[r:r + PATCH, c:c + PATCH]
                     for r in tile_starts(h, PATCH, overlap)
                     for c in tile_starts(w, PATCH, overlap)]).astype(np.float32)


class _Timed:
    """The model, with the seconds spent inside its inference calls counted."""

    def __init__(self, model) -> None:
        self.model = model
        self.seconds = 0.0

    def predict_on_batch(self, x):
        t0 = time.perf_counter()
        out = self.model.predict_on_batch(x)
        self.seconds += time.perf_counter() - t0
        return out


def bench(filters: int, height: int, width: int, repeats: int, batch: int, tmp: Path) -> dict:
    from sarflow.modelio import save_model
    from sarflow.nets import dppa_unet
    from sarflow.predict import default_overlap, polygonize, predict_raster, write_polygons

    import keras

    keras.utils.set_random_seed(filters)
    model = dppa_unet(input_channels=2, filters=filters, depth=4)
    meta = {"group": "G1", "channels": CHANNELS, "patch_size": PATCH,
            "normalisation": {"mean": MEAN, "std": STD}, "architecture": "dppa_unet"}
    raster = tmp / "G1.tif"
    overlap = default_overlap(PATCH)
    windows = _windows(raster, overlap)
    # an untrained net has no calibrated threshold: take the 97th percentile of its output,
    # so the mask marks about 3 % of the area, as a landslide map might
    probe = model.predict(windows, batch_size=batch, verbose=0)
    meta["threshold"] = float(np.clip(np.percentile(probe, 97), 0.001, 0.999))
    model_path = save_model(model, tmp / f"dppa_{filters}.keras", meta)

    timed = _Timed(model)
    outside = []  # seconds of each sarflow run spent outside the net

    def run_sarflow() -> float:
        timed.seconds = 0.0
        t0 = time.perf_counter()
        predict_raster(model_path, raster, tmp / f"out_{filters}", batch_size=batch,
                       progress=False, model=timed)
        total = time.perf_counter() - t0
        outside.append(total - timed.seconds)
        return total

    def run_plain() -> float:
        t0 = time.perf_counter()
        model.predict(windows, batch_size=batch, verbose=0)
        return time.perf_counter() - t0

    run_plain(), run_sarflow()  # warm-up: graph tracing
    t_s, t_p = [], []
    for _ in range(repeats):
        t_p.append(run_plain())
        t_s.append(run_sarflow())
    ts, tp = min(t_s), min(t_p)
    t0 = time.perf_counter()  # the polygon step alone, on the mask just written
    n_polygons = write_polygons(tmp / "polygons.gpkg", polygonize(tmp / f"out_{filters}" / "mask.tif"))
    t_poly = time.perf_counter() - t0
    px = height * width
    return {"filters": filters, "windows": int(len(windows)), "overlap": overlap,
            "batch_size": batch, "seconds_sarflow": round(ts, 3),
            "seconds_model_predict": round(tp, 3),
            "pixels_per_s_sarflow": round(px / ts),
            "pixels_per_s_model_predict_same_windows": round(px / tp),
            "window_pixels_per_s_model_predict": round(len(windows) * PATCH * PATCH / tp),
            "overhead": round(ts / tp - 1, 4),
            "seconds_outside_net_sarflow": round(min(outside[1:]), 3),
            "overhead_outside_net": round(min(outside[1:]) / tp, 4),
            "threshold": round(meta["threshold"], 4), "polygons": n_polygons,
            "seconds_polygons": round(t_poly, 3),
            "overhead_without_polygons": round((ts - t_poly) / tp - 1, 4),
            "overhead_ok": ts / tp - 1 < 0.25,
            "all_seconds_sarflow": [round(t, 3) for t in t_s],
            "all_seconds_model_predict": [round(t, 3) for t in t_p]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="800x600", help="WIDTHxHEIGHT of the raster")
    ap.add_argument("--filters", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    width, height = (int(v) for v in args.size.lower().split("x"))
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="sarflow-bench-predict-") as d:
        tmp = Path(d)
        _raster(tmp / "G1.tif", height, width)
        rows = [bench(f, height, width, args.repeats, args.batch_size, tmp) for f in args.filters]
    print(json.dumps({"benchmark": "predict", "raster": [height, width], "patch": PATCH,
                      "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                      "gpus": len(tf.config.list_physical_devices("GPU")),
                      "results": rows, "ok": all(r["overhead_ok"] for r in rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
