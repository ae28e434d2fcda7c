"""Fresh set-up time (what `make test` does before the tests, no pip cache); JSON.

The project's files (``git ls-files`` of the working tree) are copied into a temporary
folder and the set-up runs there with ``PIP_NO_CACHE_DIR=1``, so every package is
downloaded, as on a clean machine: ``make -j2 setup reference`` (sarflow's virtualenv and,
beside it, the tests' reference virtualenv with sarsen and xarray-sentinel); the Debian
packages are assumed installed (their ``apt-get`` step takes about 20 s on a clean machine
and is reported as skipped).  The baseline, measured in the same run, is the whole tree of
``--baseline-ref`` (default ``4630a4c``: the last Makefile that built rasterio from source
into the one virtualenv; ``--no-baseline`` to skip it) set up the same way.  Each set-up
ends with the check that no process can load two GDALs: sarflow's venv has the system
GDAL's bindings and no rasterio; the reference venv has rasterio and no osgeo (the
baseline: rasterio built against the system GDAL).  Target: 240 s on 2 cores.

    python bench/bench_setup.py [--baseline-ref REF | --no-baseline] [--keep]
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


def _make_targets(tree: Path) -> list[str]:
    """What `make test` sets up in ``tree``: both venvs where the Makefile has a reference
    target, else (older trees) the one venv."""
    two = "\nreference:" in (tree / "Makefile").read_text()
    return ["-j2", "setup", "reference"] if two else ["setup"]


def _probe(python: Path, code: str) -> list[str]:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=True).stdout.split()


def _one_gdal(tree: Path) -> dict:
    """Which GDAL each venv's processes load, and whether any process could load two."""
    main_py, ref_py = tree / ".venv" / "bin" / "python", tree / ".venv-ref" / "bin" / "python"
    bindings = _probe(main_py, "from osgeo import gdal; import importlib.util as u; "
                               "print(gdal.__version__, u.find_spec('rasterio') is not None)")
    out = {"bindings_gdal": bindings[0]}
    if bindings[1] == "True":  # one venv: rasterio must use the system GDAL
        rio = _probe(main_py, "import rasterio; print(rasterio.__gdal_version__)")[0]
        return {**out, "rasterio_gdal": rio, "one_gdal": rio == bindings[0]}
    ref = _probe(ref_py, "import rasterio, sarsen, importlib.util as u; "
                         "print(rasterio.__gdal_version__, u.find_spec('osgeo') is not None)")
    return {**out, "reference_rasterio_gdal": ref[0], "one_gdal": ref[1] == "False"}


def setup_time(tree: Path) -> dict:
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    targets = _make_targets(tree)
    t0 = time.perf_counter()
    res = subprocess.run(["make", *targets, f"PYTHON={_python()}"], cwd=tree, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"make setup failed in {tree}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return {"seconds": round(wall, 1), "make": " ".join(targets), **_one_gdal(tree)}


def _archive(ref: str, dest: Path) -> None:
    """The whole tree of git ``ref`` in ``dest``."""
    dest.mkdir(parents=True)
    tar = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-ref", default="4630a4c")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sarflow-setup-"))
    try:
        new = tmp / "new"
        _copy_tree(new)
        out: dict = {"bench": "setup", "cpu_count": os.cpu_count(), "pip_cache": "disabled",
                     "loadavg_start": list(os.getloadavg()),
                     "apt_step": "skipped (Debian packages already installed)",
                     "target_s": 240, "new": setup_time(new)}
        if not args.no_baseline:
            base = tmp / "baseline"
            _archive(args.baseline_ref, base)
            out["baseline_ref"] = args.baseline_ref
            out["baseline"] = setup_time(base)
            out["ratio"] = round(out["new"]["seconds"] / out["baseline"]["seconds"], 3)
        out["loadavg_end"] = list(os.getloadavg())
        out["ok"] = out["new"]["seconds"] <= 240 and out["new"]["one_gdal"]
        print(json.dumps(out, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
