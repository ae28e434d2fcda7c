"""Benchmark: how much harder the realism models make an event (issue 18, "Must show" 3).

The default synthetic event and the same event made with ``--preset hard`` (same seed,
size and scene count: resolution-cell speckle, orbit tube, IW1-IW3 with imperfect noise
vectors, scar change from land cover and local incidence, a wet first post-event date)
each go through the normal stages (``sarflow.pipeline.run_event``: native preprocess,
stack, G1 dataset, DPPA-UNet training with CPU-sized settings, predict, evaluate).  For the
training and validation areas it reports the DPPA-UNet F1 (the evaluate stage's pixel
scores) and, as the baseline measured in the same run, the F1 of the best single threshold
on the change alone (``sarflow.train.threshold_baseline``: feature, sign and threshold
chosen on the training area's train split, then applied to every pixel of each area).

    python bench/bench_realism.py [--root /tmp/realism] [--seed 0] [--size 512,768]
                                  [--scenes 4] [--epochs 40] [--filters 16]

Prints one JSON object.  Events and work folders are kept under ``--root``: a second run
reuses what is done (the pipeline's own resume rule).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

AREAS = ("training", "validation")


def cpu_model(filters: int, epochs: int, seed: int) -> dict:
    """The demo's CPU-sized DPPA-UNet settings (``sarflow.demo.DEMO_MODEL``) with ``filters``,
    ``epochs`` and ``seed``."""
    from sarflow.demo import DEMO_MODEL

    return {**DEMO_MODEL, "filters": filters, "epochs": epochs, "seed": seed}


def simulated_config(folder: Path, seed: int, size: tuple[int, int], scenes: int,
                     preset: str, model: dict):
    """Simulate an event once (``preset``) and load its config with ``model`` settings."""
    from sarflow.config import load_config
    from sarflow.simulate import SimulationSettings, simulate_event

    event = folder / "event.yaml"
    if not event.exists():
        settings = SimulationSettings.preset(preset, size=size, scenes_per_window=scenes)
        simulate_event(folder, seed=seed, settings=settings)
    cfg = load_config(event)
    return with_model(cfg, model)


def with_model(cfg, model: dict):
    """``cfg`` with its model section replaced by ``model`` (validated)."""
    from sarflow.config import ModelSettings

    return cfg.model_copy(update={"model": ModelSettings(**model)})


def area_threshold_scores(cfg, baseline: dict) -> dict[str, dict]:
    """Pixel scores per area of the change threshold ``baseline`` (from
    ``threshold_baseline``: feature, sign, normalised threshold) on the G1 raster."""
    import numpy as np

    from sarflow.dataset import load_dataset, normalise
    from sarflow.evaluate import pixel_scores
    from sarflow.grid import read_raster
    from sarflow.workdir import WorkDir

    wd = WorkDir(cfg.output)
    group = cfg.model.resolved().group
    data = load_dataset(wd.dataset(group))
    grid = cfg.grid()
    out = {}
    for area in AREAS:
        window = grid.window_of(cfg.area_grid(area))
        raw = np.moveaxis(read_raster(wd.group(group), window), 0, -1)
        valid = np.all(np.isfinite(raw), axis=-1)
        x = normalise(raw, data.normalisation["mean"], data.normalisation["std"])
        name = baseline["feature"]
        v = x.mean(axis=-1) if name not in data.channels else x[..., data.channels.index(name)]
        t = baseline["threshold_normalised"]
        predicted = v >= t if baseline["sign"] == "greater" else v <= t
        truth = read_raster(wd.labels, window, [1])[0]
        out[area] = _short(pixel_scores(predicted, truth, valid))
    return out


def _short(scores: dict) -> dict:
    """Rounded pixel scores with the confusion counts (for pooling over events)."""
    return ({k: round(float(scores[k]), 4) for k in ("precision", "recall", "f1", "iou")}
            | {k: int(scores[k]) for k in ("tp", "fp", "fn") if k in scores})


def network_scores(cfg) -> dict[str, dict]:
    """The evaluate stage's pixel scores per area (``evaluation/<area>.json``)."""
    from sarflow.workdir import WorkDir

    wd = WorkDir(cfg.output)
    return {a: _short(json.loads(wd.evaluation(a).read_text())["pixel"]) for a in AREAS}


def train_result(cfg) -> dict:
    """The published training run's result (``models/<group>_<arch>/result.json``)."""
    from sarflow.train import best_model_path

    result = json.loads((best_model_path(cfg).parent / "result.json").read_text())
    out = {k: result[k] for k in ("n_train", "n_test", "epochs_run", "best_epoch",
                                  "train_seconds", "init")} | {
        "test_f1": round(result["test"]["f1"], 4)}
    if result.get("start_test"):   # fine-tuning: the starting model on the test split
        out["start_test_f1"] = round(result["start_test"]["f1"], 4)
        out["optimizer_learning_rate"] = result["optimizer_learning_rate"]
    return out


def run_and_score(cfg) -> dict[str, Any]:
    """Run every stage up to evaluate; DPPA-UNet and threshold scores per area."""
    from sarflow.pipeline import RunOptions, run_event
    from sarflow.dataset import load_dataset
    from sarflow.train import threshold_baseline
    from sarflow.workdir import WorkDir

    t0 = time.perf_counter()
    outcomes = run_event(cfg, until="evaluate",
                         options=RunOptions(engine="native", progress=False))
    m = cfg.model.resolved()
    data = load_dataset(WorkDir(cfg.output).dataset(m.group))
    baseline = threshold_baseline(data, seed=m.seed)
    return {"dppa_unet": network_scores(cfg),
            "threshold": area_threshold_scores(cfg, baseline),
            "threshold_rule": {k: baseline[k] for k in ("feature", "sign")}
            | {"threshold_normalised": round(float(baseline["threshold_normalised"]), 4),
               "threshold_db": (round(float(baseline["threshold"]), 4)
                                if "threshold" in baseline else None),
               "train_split_f1": round(baseline["train_f1"], 4)},
            "training": train_result(cfg),
            "stage_seconds": {o.name: round(o.seconds, 1) for o in outcomes},
            "seconds": round(time.perf_counter() - t0, 1)}


def machine() -> dict:
    """What the numbers were measured on: the CPU (its bfloat16 decides the precision
    ``auto`` trains in, recorded too) and the load when the bench started."""
    from sarflow.train import cpu_description, resolve_precision

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu_count": os.cpu_count(), "machine": platform.machine(),
            "cpu": cpu_description(), "auto_precision": resolve_precision("auto"),
            "load_average_at_start": None if load is None else [round(v, 2) for v in load]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/sarflow-bench-realism")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="512,768")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--filters", type=int, default=16)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    info = machine()
    t0 = time.perf_counter()
    model = cpu_model(args.filters, args.epochs, args.seed)
    events = {}
    for preset in ("default", "hard"):
        folder = Path(args.root) / f"{preset}_seed{args.seed}"
        ts = time.perf_counter()
        cfg = simulated_config(folder, args.seed, size, args.scenes, preset, model)
        simulate_s = round(time.perf_counter() - ts, 1)
        events[preset] = {"event": str(folder / "event.yaml"), "simulate_seconds": simulate_s,
                          **run_and_score(cfg)}
    drop = {f"{who}_{area}": round(events["default"][who][area]["f1"]
                                   - events["hard"][who][area]["f1"], 4)
            for who in ("dppa_unet", "threshold") for area in AREAS}
    print(json.dumps({
        "benchmark": "realism_before_after", "seed": args.seed, "grid_size": list(size),
        "scenes_per_window": args.scenes, "model": model, **info,
        "events": events,
        "f1_drop_default_minus_hard": drop,
        "dppa_unet_minus_threshold_f1": {
            f"{p}_{a}": round(events[p]["dppa_unet"][a]["f1"] - events[p]["threshold"][a]["f1"], 4)
            for p in events for a in AREAS},
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }, indent=2, default=float))


if __name__ == "__main__":
    main()
