"""Training throughput of DPPA-UNet (patches per second) at 16 and 64 base filters.

Steady-state training steps (Dice loss, Adam) on random 2-channel 128 x 128 patches, after
one warm-up step that traces the graph; the plain U-Net at the same width is the baseline
measured in the same run (ratio = cost of the pixel-attention blocks).  Runs on whatever
TensorFlow sees: the CPU here, a GPU (mixed precision) where one is lent.

    python bench/bench_train.py [--filters 16,64] [--batch-size 8] [--steps 3]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", default="16,64")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--patch", type=int, default=128)
    args = parser.parse_args()
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
