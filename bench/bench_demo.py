"""`sarflow demo` wall time from an empty folder, per stage, with its validation F1; JSON.

Runs ``python -m sarflow demo DIR`` in a fresh temporary folder as ``make demo`` does
(simulation, native preprocessing, stack, dataset, training, prediction, evaluation,
report), timing the whole process (wall and CPU seconds) and reading each stage's
seconds from the work folder's ``state/`` records.  As same-run machine controls, two
fixed numpy workloads are timed before and after: one single-threaded (sorting, FFTs) and
one on every core (float32 matrix products through BLAS, as training keeps both cores
busy); on a slow or busy host they show how much slower than usual everything ran.  Targets: at most 120 s on 2 idle
cores (``ratio`` = seconds / 120) with a validation F1 of at least 0.80.

    python bench/bench_demo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 120.0


def _control() -> float:
    """Seconds of a fixed single-threaded numpy workload (sorting and FFTs)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal(2_000_000)
    t0 = time.perf_counter()
    for _ in range(5):
        np.sort(x)
        np.fft.rfft(x)
    return time.perf_counter() - t0


def _control_all_cores() -> float:
    """Seconds of a fixed multi-threaded workload: float32 matrix products (BLAS threads)."""
    import numpy as np

    a = np.random.default_rng(1).standard_normal((1536, 1536)).astype(np.float32)
    t0 = time.perf_counter()
    for _ in range(40):
        a @ a
    return time.perf_counter() - t0


def run_demo(folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "sarflow", "demo", str(folder)], env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"sarflow demo failed:\n{res.stderr[-3000:]}")
    work = folder / "work"
    stages = {}
    for p in sorted((work / "state").glob("*.json")):
        s = json.loads(p.read_text())
        stages[p.stem] = s.get("seconds")
    val = json.loads((work / "evaluation" / "validation.json").read_text())["pixel"]
    model = json.loads((work / "models" / "G1_dppa_unet" / "result.json").read_text())
    return {"seconds": round(wall, 1),
            "cpu_seconds": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
            "stages_s": stages, "validation": {k: val[k] for k in ("precision", "recall",
                                                                   "f1", "iou")},
            "epochs_run": model.get("epochs_run"), "best_epoch": model.get("best_epoch"),
            "train_timing": model.get("timing")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, default=None, help="run in (and keep) this folder")
    args = ap.parse_args()
    before, before_all = _control(), _control_all_cores()
    if args.keep:
        out = run_demo(args.keep)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="sarflow-demo-"))
        try:
            out = run_demo(tmp / "demo")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    after, after_all = _control(), _control_all_cores()
    sys.path.insert(0, str(ROOT))
    from sarflow.train import cpu_description

    print(json.dumps({"bench": "demo", "cpu_count": os.cpu_count(), "cpu": cpu_description(),
                      **out,
                      "control_s": [round(before, 3), round(after, 3)],
                      "control_all_cores_s": [round(before_all, 3), round(after_all, 3)],
                      "target_s": TARGET_S, "ratio": round(out["seconds"] / TARGET_S, 3),
                      "ok": out["seconds"] <= TARGET_S and out["validation"]["f1"] >= 0.80},
                     indent=2))


if __name__ == "__main__":
    main()
