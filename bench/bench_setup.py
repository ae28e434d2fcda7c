"""Fresh set-up time (`make setup` into a new virtualenv, no pip cache); JSON.

The project's files (``git ls-files`` of the working tree) are copied into a temporary
folder and ``make setup`` runs there with ``PIP_NO_CACHE_DIR=1``, so every package is
downloaded and rasterio is built from source, as on a clean machine; the Debian packages
are assumed installed (their ``apt-get`` step takes about 20 s on a clean machine and is
reported as skipped).  The baseline, measured in the same run, is the same with the
Makefile of ``--baseline-ref`` (default ``main``; ``--no-baseline`` to skip it).
Each set-up ends with the check that rasterio and the GDAL bindings use the same
(system) GDAL.  Target: 240 s on 2 cores.

    python bench/bench_setup.py [--baseline-ref main | --no-baseline] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.splitlines()
    for f in files:
        src = ROOT / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)


def _python() -> str:
    """The interpreter the Makefile should build the venv from (the system one, not a venv)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base


def setup_time(tree: Path) -> dict:
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    t0 = time.perf_counter()
    res = subprocess.run(["make", "setup", f"PYTHON={_python()}"], cwd=tree, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"make setup failed in {tree}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    check = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-c",
                            "import rasterio; from osgeo import gdal; "
                            "print(rasterio.__gdal_version__, gdal.__version__)"],
                           capture_output=True, text=True, check=True).stdout.split()
    return {"seconds": round(wall, 1), "rasterio_gdal": check[0], "bindings_gdal": check[1],
            "one_gdal": check[0] == check[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-ref", default="main")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sarflow-setup-"))
    try:
        new = tmp / "new"
        _copy_tree(new)
        out: dict = {"bench": "setup", "cpu_count": os.cpu_count(), "pip_cache": "disabled",
                     "apt_step": "skipped (Debian packages already installed)",
                     "target_s": 240, "new": setup_time(new)}
        if not args.no_baseline:
            base = tmp / "baseline"
            _copy_tree(base)
            makefile = subprocess.run(["git", "show", f"{args.baseline_ref}:Makefile"], cwd=ROOT,
                                      check=True, capture_output=True, text=True).stdout
            (base / "Makefile").write_text(makefile)
            out["baseline_ref"] = args.baseline_ref
            out["baseline"] = setup_time(base)
            out["ratio"] = round(out["new"]["seconds"] / out["baseline"]["seconds"], 3)
        out["ok"] = out["new"]["seconds"] <= 240 and out["new"]["one_gdal"]
        print(json.dumps(out, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
