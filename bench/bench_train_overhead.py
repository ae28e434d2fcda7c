"""sarflow's whole training run against a bare ``model.fit`` process on the demo's dataset; JSON.

Both run as fresh processes, timed from start to exit, on the same patches (the demo
event's G1 dataset: 29 train and 7 test 128 x 128 patches), with the same network
(DPPA-UNet, 16 base filters, depth 4), batch size 8, learning rate 1e-3, ``--epochs``
(10) epochs and the same precision policy (``--precision``, default ``auto``: what sarflow
resolves it to on this machine, e.g. mixed bfloat16 on a CPU with AVX512-BF16):

* ``bare``: import, load the patches, build and compile the network, ``model.fit`` on the
  numpy arrays for the same number of full batches per epoch (Keras' own shuffling), exit;
* ``sarflow``: ``sarflow -q train --dataset ...``: the same plus everything a run does
  (op determinism, seeded augmentation, per-epoch inference-mode test scores, best-epoch
  weights, batch-norm statistics, train / test / training-mode scores, the threshold
  baseline, saving the model, history and result).

The rounds alternate (bare, sarflow) so that load from other processes hits both alike;
the ratio is best sarflow over best bare wall time (``ratio_cpu``: the same with the
processes' CPU seconds, which load from other processes disturbs less).  sarflow runs once more (``--repeat`` + 1 runs)
and its metrics and history must be identical every time (bit-reproducibility).
Target: ratio <= 1.15.

    python bench/bench_train_overhead.py [--dataset DIR] [--epochs 10] [--repeat 1]

Without ``--dataset`` the demo event is simulated and processed up to its dataset in
``--workdir`` (default: a folder in the temp dir, reused by later runs).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {"architecture": "dppa_unet", "filters": 16, "batch_size": 8,
            "learning_rate": 1e-3, "seed": 0}

_BARE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import keras
    from sarflow import nets
    from sarflow.dataset import load_dataset

    data = load_dataset({dataset!r})
    keras.mixed_precision.set_global_policy({policy!r})
    keras.utils.set_random_seed({seed})
    model = nets.build({architecture!r}, len(data.channels), {filters}, 4)
    model.compile(optimizer=keras.optimizers.Adam({learning_rate}), loss=nets.DiceLoss())
    n = len(data.x_train) // {batch_size} * {batch_size}   # the same full batches per epoch
    model.fit(data.x_train[:n], data.y_train[:n], batch_size={batch_size}, epochs={epochs},
              shuffle=True, verbose=0)
""")


def demo_dataset(workdir: Path) -> Path:
    """The demo event's G1 dataset (simulated and processed once into ``workdir``)."""
    from sarflow.config import load_config
    from sarflow.demo import prepare_demo
    from sarflow.pipeline import RunOptions, run_event
    from sarflow.workdir import WorkDir

    cfg = load_config(prepare_demo(workdir))
    run_event(cfg, until="dataset", options=RunOptions(engine="native", progress=False))
    return WorkDir(cfg.output).dataset("G1")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of a child process from start to exit."""
    c0, t0 = _cpu_children(), time.perf_counter()
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
    if res.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{res.stderr[-3000:]}")
    return wall, cpu


def bare(dataset: Path, epochs: int, policy: str) -> tuple[float, float]:
    code = _BARE.format(root=str(ROOT), dataset=str(dataset), epochs=epochs, policy=policy,
                        **SETTINGS)
    return _timed([sys.executable, "-c", code])


def sarflow(dataset: Path, out: Path, epochs: int,
            precision: str) -> tuple[tuple[float, float], dict, list]:
    s = SETTINGS
    wall = _timed([sys.executable, "-m", "sarflow", "-q", "train", "--dataset", str(dataset),
                   "--out", str(out), "--architecture", s["architecture"],
                   "--filters", str(s["filters"]), "--batch-size", str(s["batch_size"]),
                   "--learning-rate", str(s["learning_rate"]), "--epochs", str(epochs),
                   "--patience", str(epochs), "--seed", str(s["seed"]),
                   "--precision", precision])
    from sarflow.train import run_name

    run = out / run_name(s["architecture"], s["filters"], s["batch_size"], s["learning_rate"])
    result = json.loads((run / "result.json").read_text())
    with open(run / "history.csv", newline="") as fh:
        history = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]
    return wall, result, history


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=None)
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "sarflow-bench-demo")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--precision", default="auto",
                    choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"))
    args = ap.parse_args()
    from sarflow.train import cpu_description, resolve_precision

    policy = resolve_precision(args.precision)
    dataset = args.dataset or demo_dataset(args.workdir)
    bare_s, sar_s, results, histories = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat + 1):
            if k < args.repeat:
                bare_s.append(bare(dataset, args.epochs, policy))
            wall, result, history = sarflow(dataset, Path(tmp) / f"run{k}", args.epochs,
                                            args.precision)
            if result["precision_policy"] != policy:
                raise SystemExit(f"sarflow trained in {result['precision_policy']}, "
                                 f"the bare process in {policy}")
            sar_s.append(wall)
            results.append(result)
            histories.append(history)
    keys = ("test", "train", "test_running_bn", "test_training_mode_bn", "best_epoch",
            "bn_statistics")
    reproducible = all({k: r[k] for k in keys} == {k: results[0][k] for k in keys}
                       for r in results) and all(h == histories[0] for h in histories)
    ratio = min(w for w, _ in sar_s) / min(w for w, _ in bare_s)
    ratio_cpu = min(c for _, c in sar_s) / min(c for _, c in bare_s)
    r = results[0]
    print(json.dumps({
        "bench": "train_overhead", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cpu": cpu_description(),
        "dataset": str(dataset), "n_train": r["n_train"], "n_test": r["n_test"],
        "epochs": args.epochs, **SETTINGS, "precision_policy": policy,
        "bare_fit_process_s": [round(w, 2) for w, _ in bare_s],
        "sarflow_train_process_s": [round(w, 2) for w, _ in sar_s],
        "bare_fit_process_cpu_s": [round(c, 2) for _, c in bare_s],
        "sarflow_train_process_cpu_s": [round(c, 2) for _, c in sar_s],
        "sarflow_timing": r.get("timing"),
        "ratio": round(ratio, 3), "ratio_cpu": round(ratio_cpu, 3), "target_ratio": 1.15, "ok": ratio <= 1.15 and reproducible,
        "reproducible": reproducible, "test": {k: r["test"][k] for k in ("precision", "recall",
                                                                         "f1", "iou")},
        "bn_statistics": r["bn_statistics"],
    }, indent=2))


if __name__ == "__main__":
    main()
