"""Transfer on synthetic events (issue 16): does a model trained on one event map another?

Event A is simulated with ``--seed-a`` and ``--scenes-a`` scenes per pass and window, event
B with another seed, weaker landslide changes (``--change-b``, dB, VV,VH) and fewer scenes
(``--scenes-b``).  Each runs the whole pipeline (``sarflow run``: native engine, a small
CPU-sized DPPA-UNet, its evaluate stage also scoring the no-model heatmap, whose sign and
threshold are chosen on the event's own training area).  Then A's model maps B with
``sarflow map`` (:func:`sarflow.mapping.map_event`) and that map is scored on B's
validation area with :func:`sarflow.evaluate.evaluate_prediction`.

The issue's target: the transferred model's F1 on B's validation area within 0.05 of the
F1 of B's own model there.  The heatmap's validation F1 on both events is printed beside.

    python bench/bench_transfer.py [--folder DIR] [--size 512,768] [--epochs 40]

Prints one JSON object.  A folder already holding the events is reused (the pipeline
skips what is current), so a second run only repeats what changed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCH_MODEL = {"architecture": "dppa_unet", "group": "G1", "filters": 8, "batch_size": 8,
               "learning_rate": 0.001, "patch_size": 64, "patience": 10, "seed": 0}
"""Smaller than sarflow.demo.DEMO_MODEL (16 filters, 128 px patches) to fit two trainings
in a few minutes on two shared cores."""


def _event(root: Path, seed: int, size: tuple[int, int], scenes: int,
           change_db: dict[str, float] | None, model: dict) -> Path:
    """Simulate an event once and give it the bench's model settings."""
    import yaml

    from sarflow.simulate import SimulationSettings, simulate_event

    path = root / "event.yaml"
    if not path.exists():
        settings = SimulationSettings() if change_db is None else SimulationSettings(change_db=change_db)
        path = Path(simulate_event(root, seed=seed, size=size, scenes_per_window=scenes,
                                   settings=settings))
    data = yaml.safe_load(path.read_text())
    if data.get("model") != model:
        data["model"] = model
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _scores(record: dict) -> dict:
    px = record["pixel"]
    out = {k: round(px[k], 4) for k in ("precision", "recall", "f1", "iou")}
    out["landslides_hit"] = record["objects"]["hit_share"]
    return out


def _run(cfg_path: Path) -> dict:
    """Run every stage of an event; its model's and its heatmap's validation scores."""
    from sarflow.config import load_config
    from sarflow.pipeline import RunOptions, best_model, run_event
    from sarflow.workdir import WorkDir

    cfg = load_config(cfg_path)
    t0 = time.perf_counter()
    stages = run_event(cfg, options=RunOptions(engine="native", workers=1, progress=False))
    wd = WorkDir(cfg.output)
    model = json.loads(wd.evaluation("validation").read_text())
    heat = json.loads(wd.heatmap_evaluation("validation").read_text())
    trained = json.loads((best_model(cfg).parent / "result.json").read_text())
    return {"cfg": cfg, "model_path": best_model(cfg),
            "training": {k: trained.get(k) for k in ("n_train", "n_test", "epochs_run",
                                                      "best_epoch", "train_seconds")},
            "seconds": round(time.perf_counter() - t0, 1),
            "stage_seconds": {o.name: round(o.seconds, 1) for o in stages},
            "model_validation": _scores(model), "heatmap_validation": _scores(heat),
            "heatmap_rule": heat["heatmap"]["rule"],
            "heatmap_training_f1": round(heat["heatmap"]["training_f1"], 4)}


def _transfer(cfg, model_path: Path) -> dict:
    """Map event ``cfg`` with a model trained elsewhere; its scores on the validation area."""
    from sarflow.evaluate import evaluate_prediction
    from sarflow.mapping import map_event

    t0 = time.perf_counter()
    result = map_event(cfg, model_path, out=Path(cfg.output) / "map_transfer", progress=False,
                       workers=1)
    record = evaluate_prediction(result.paths["probability"], cfg.inventory,
                                 bounds=cfg.area_grid("validation").bounds)
    return {"seconds": round(time.perf_counter() - t0, 1), "map": str(result.folder),
            "threshold": record["threshold"], "validation": _scores(record)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="where the events go (default: a new "
                        "temporary folder)")
    parser.add_argument("--size", default="512,768", help="rows,cols of both events")
    parser.add_argument("--seed-a", type=int, default=11)
    parser.add_argument("--seed-b", type=int, default=12)
    parser.add_argument("--scenes-a", type=int, default=4)
    parser.add_argument("--scenes-b", type=int, default=2)
    parser.add_argument("--change-b", default="-2.5,-1.5",
                        help="landslide change of event B, VV,VH in dB (A: the default -3.5,-2)")
    parser.add_argument("--epochs", type=int, default=40, help="as sarflow.demo.DEMO_MODEL")
    args = parser.parse_args()

    size = tuple(int(v) for v in args.size.split(","))
    vv, vh = (float(v) for v in args.change_b.split(","))
    model = {**BENCH_MODEL, "epochs": args.epochs}
    root = Path(args.folder or tempfile.mkdtemp(prefix="sarflow-transfer-"))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    a_yaml = _event(root / "A", args.seed_a, size, args.scenes_a, None, model)
    b_yaml = _event(root / "B", args.seed_b, size, args.scenes_b, {"VV": vv, "VH": vh}, model)
    simulated = time.perf_counter() - t0
    a, b = _run(a_yaml), _run(b_yaml)
    moved = _transfer(b["cfg"], a["model_path"])
    gap = round(b["model_validation"]["f1"] - moved["validation"]["f1"], 4)
    print(json.dumps({
        "benchmark": "transfer_on_simulated_events",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_start": [round(x, 2) for x in load0],
                    "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "events": {
            "A": {"seed": args.seed_a, "size": list(size), "scenes_per_window": args.scenes_a,
                  "change_db": {"VV": -3.5, "VH": -2.0}},
            "B": {"seed": args.seed_b, "size": list(size), "scenes_per_window": args.scenes_b,
                  "change_db": {"VV": vv, "VH": vh}}},
        "model": model,
        "A_model_on_A_validation": a["model_validation"],
        "B_model_on_B_validation": b["model_validation"],
        "A_model_on_B_validation": moved["validation"],
        "heatmap_on_A_validation": {**a["heatmap_validation"], "rule": a["heatmap_rule"],
                                    "training_f1": a["heatmap_training_f1"]},
        "heatmap_on_B_validation": {**b["heatmap_validation"], "rule": b["heatmap_rule"],
                                    "training_f1": b["heatmap_training_f1"]},
        "f1_gap_own_minus_transferred": gap,
        "target_gap_at_most": 0.05,
        "target_holds": abs(gap) <= 0.05,
        "transferred_not_worse_by_more_than_target": gap <= 0.05,
        "training": {"A": a["training"], "B": b["training"]},
        "seconds": {"simulate": round(simulated, 1), "A_pipeline": a["seconds"],
                    "B_pipeline": b["seconds"], "transfer_map": moved["seconds"],
                    "total": round(time.perf_counter() - t0, 1)},
        "stage_seconds": {"A": a["stage_seconds"], "B": b["stage_seconds"]},
        "folder": str(root),
    }, indent=2))


if __name__ == "__main__":
    main()
