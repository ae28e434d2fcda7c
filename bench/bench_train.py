"""Training throughput of DPPA-UNet (patches per second) at 16 and 64 base filters.

Steady-state training steps (Dice loss, Adam) on random 2-channel 128 x 128 patches, after
one warm-up step that traces the graph; the plain U-Net at the same width is the baseline
measured in the same run (ratio = cost of the pixel-attention blocks).  Runs on whatever
TensorFlow sees: the CPU here, a GPU (mixed precision) where one is lent.

    python bench/bench_train.py [--filters 16,64] [--batch-size 8] [--steps 3]

With ``--simulated DIR`` it instead measures learning on a synthetic event (the issue's
check): ``sarflow.simulate`` writes the event (once), the pipeline runs preprocess (native
engine) and stack, then the G1 dataset of the training area is built and DPPA-UNet with 16
base filters trains for at most ``--minutes`` (10) on the CPU.  It reports the test-split
F1 (inference mode) and the F1 of the best threshold on the change alone (chosen on the
train split), both on the same test patches.

    python bench/bench_train.py --simulated /tmp/simevent [--size 768,1152] [--minutes 10]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(architecture: str, filters: int, batch_size: int, steps: int, patch: int) -> dict:
    """Seconds per training step and patches per second for one network width."""
    import keras
    import numpy as np

    from sarflow import nets, train

    train.set_seed(0)
    with train.precision_policy() as policy:
        model = nets.build(architecture, 2, filters)
        model.compile(optimizer=keras.optimizers.Adam(5e-4), loss=nets.DiceLoss())
        rng = np.random.default_rng(0)
        x = rng.normal(size=(batch_size, patch, patch, 2)).astype("float32")
        y = (rng.random((batch_size, patch, patch, 1)) < 0.1).astype("float32")
        t0 = time.perf_counter()
        model.train_on_batch(x, y)                      # traces the step
        warmup = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        step = (time.perf_counter() - t0) / steps
    return {"architecture": architecture, "filters": filters, "params": model.count_params(),
            "batch_size": batch_size, "patch_size": patch, "steps": steps,
            "precision_policy": policy, "warmup_seconds": round(warmup, 3),
            "step_seconds": round(step, 4), "patches_per_second": round(batch_size / step, 3)}


def learning(folder: str, size: tuple[int, int], scenes: int, minutes: float, seed: int,
             batch_size: int) -> dict:
    """Simulate (once), preprocess and stack an event, then train DPPA-UNet (16 filters)
    on its G1 training patches for at most ``minutes``; F1 against the change threshold."""
    from pathlib import Path

    from sarflow.config import load_config
    from sarflow.dataset import build_dataset
    from sarflow.pipeline import RunOptions, run_event
    from sarflow.simulate import simulate_event
    from sarflow.train import train_run
    from sarflow.workdir import WorkDir

    root = Path(folder)
    event = root / "event.yaml"
    t0 = time.perf_counter()
    if not event.exists():
        simulate_event(root, seed=seed, size=size, scenes_per_window=scenes)
    cfg = load_config(event)
    run_event(cfg, until="stack", options=RunOptions(engine="native", progress=False))
    prepared = time.perf_counter() - t0
    ds = build_dataset(cfg, "G1")
    run = WorkDir(cfg.output).model_run("bench_G1_dppa_unet_f16")
    r = train_run(ds, run, architecture="dppa_unet", filters=16, batch_size=batch_size,
                  learning_rate=1e-3, epochs=500, patience=20, seed=seed,
                  max_seconds=60 * minutes)
    return {"benchmark": "learning_on_simulated_event", "event": str(event),
            "grid_size": list(size), "scenes_per_window": scenes,
            "prepare_seconds": round(prepared, 1), "n_train": r["n_train"],
            "n_test": r["n_test"], "train_seconds": r["train_seconds"],
            "epochs_run": r["epochs_run"], "best_epoch": r["best_epoch"],
            "test": r["test"], "bn_statistics": r["bn_statistics"],
            "test_running_bn": r["test_running_bn"],
            "test_training_mode_bn": r["test_training_mode_bn"],
            "baseline_threshold": r["baseline"],
            "f1_minus_baseline": round(r["test"]["f1"] - r["baseline"]["test"]["f1"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", default="16,64")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--simulated", metavar="DIR", default=None)
    parser.add_argument("--size", default="768,1152")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.simulated:
        size = tuple(int(v) for v in args.size.split(","))
        print(json.dumps(learning(args.simulated, size, args.scenes, args.minutes, args.seed,
                                  args.batch_size), indent=2, default=float))
        return
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    rows, ratios = [], {}
    for f in (int(v) for v in args.filters.split(",")):
        dppa = measure("dppa_unet", f, args.batch_size, args.steps, args.patch)
        base = measure("unet", f, args.batch_size, args.steps, args.patch)
        rows += [dppa, base]
        ratios[str(f)] = round(dppa["step_seconds"] / base["step_seconds"], 3)
    print(json.dumps({
        "benchmark": "train_throughput",
        "device": "gpu" if gpus else "cpu",
        "gpus": [g.name for g in gpus],
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "results": rows,
        "dppa_unet_step_time_vs_unet": ratios,
    }, indent=2))


if __name__ == "__main__":
    main()
