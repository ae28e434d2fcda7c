"""Benchmark of the stacker (issue 8); prints one JSON object.

1. The median kernel (sarflow.stack.nanmedian_stack) against numpy.nanmedian on the same
   2048 x 2048 x 30 float32 stack with 10 % NaN, in the same run: speed-up and equality.
2. Peak memory (peak RSS of a fresh process, whole process) of stack_event on a 4096 x 4096 event grid with
   30 dates per pass and window (120 scenes, 3 bands each) and, for comparison, on a
   1024 x 1024 grid with the same dates: the peak should not grow with the area.
   The 120 scene outputs are VRT files (named .tif, each with its own tags) over six
   4096 x 4096 GeoTIFFs of random sigma0 with 10 % NaN and a layover strip, so the bench
   reads and decompresses real pixels without writing 24 GB of inputs.

Usage: python bench/bench_median.py [--size 2048] [--dates 30] [--grid 4096] [--skip-memory]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENT = dt.datetime(2021, 1, 1, 12, tzinfo=dt.timezone.utc)


def bench_kernel(size: int, dates: int, nan_fraction: float = 0.1) -> dict:
    """Time the kernel and numpy.nanmedian on one random stack; check they agree."""
    from sarflow.stack import nanmedian_stack

    rng = np.random.default_rng(0)
    x = rng.normal(-12.0, 3.0, size=(dates, size, size)).astype(np.float32)
    x[rng.random(x.shape, dtype=np.float32) < nan_fraction] = np.nan
    t0 = time.perf_counter()
    med, count = nanmedian_stack(x)
    t_kernel = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(x, axis=0)
    t_numpy = time.perf_counter() - t0
    same_nan = bool(np.array_equal(np.isnan(med), np.isnan(ref)))
    return {"shape": [dates, size, size], "nan_fraction": nan_fraction,
            "kernel_s": round(t_kernel, 3), "numpy_nanmedian_s": round(t_numpy, 3),
            "speedup": round(t_numpy / t_kernel, 2),
            "kernel_mpix_per_s": round(size * size / t_kernel / 1e6, 2),
            "max_abs_diff": float(np.nanmax(np.abs(med - ref))), "same_nan_pixels": same_nan}


def _grid(n: int):
    from sarflow.grid import Grid

    return Grid(col0=1_000_000, row0=300_000, width=n, height=n)


def make_bases(folder: Path, n: int, count: int = 6) -> list[Path]:
    """``count`` n x n scene-like GeoTIFFs (VV, VH linear sigma0, layover mask)."""
    from sarflow.engines import band_names
    from sarflow.grid import RasterWriter

    grid = _grid(n)
    paths = []
    rng = np.random.default_rng(1)
    for i in range(count):
        path = folder / f"base{i}.tif"
        with RasterWriter(path, grid, 3, band_names(["VV", "VH"])) as w:
            for win in grid.blocks(1024):
                shape = (win.height, win.width)
                vv = (10 ** (rng.normal(-11, 2, shape) / 10)).astype(np.float32)
                vh = vv * np.float32(0.25)
                nan = rng.random(shape) < 0.1
                vv[nan] = vh[nan] = np.nan
                mask = np.zeros(shape, np.float32)
                mask[:, : max(1, win.width // 20)] = 1
                w.write(np.stack([vv, vh, mask]), win)
        paths.append(path)
    return paths


def make_event(folder: Path, bases: list[Path], n: int, dates: int) -> Path:
    """A config + ``4 * dates`` VRT scene outputs (n x n windows of the bases)."""
    from osgeo import gdal

    import yaml

    gdal.UseExceptions()
    grid = _grid(n)
    pre = folder / "work" / "preprocessed"
    pre.mkdir(parents=True, exist_ok=True)
    k = 0
    for pass_ in ("ASCENDING", "DESCENDING"):
        for sign in (-1, 1):
            for d in range(dates):
                t = EVENT + sign * dt.timedelta(days=6 * d + 1, hours=3 if pass_ == "ASCENDING" else 15)
                name = f"S1_{pass_[:3]}_{t:%Y%m%dT%H%M%S}"
                ds = gdal.Translate(str(pre / f"{name}.tif"), str(bases[k % len(bases)]),
                                    format="VRT", srcWin=[0, 0, n, n])
                for b, desc in enumerate(("sigma0_VV", "sigma0_VH", "layover_shadow"), 1):
                    ds.GetRasterBand(b).SetDescription(desc)
                ds.SetMetadata({"product_id": name, "pass": pass_, "relative_orbit": "46",
                                "acquisition_time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "orbit_source": "POEORB", "engine": "native",
                                "polarisations": "VV,VH", "sarflow_version": "bench"})
                ds = None
                k += 1
    span = dt.timedelta(days=6 * dates + 2)
    cfg = {"name": f"bench_{n}", "event": {"time": EVENT.isoformat()},
           "area": {"bbox": list(grid.bounds)},
           "windows": {"pre": [str((EVENT - span).date()), str((EVENT - dt.timedelta(days=1)).date())],
                       "post": [str(EVENT.date()), str((EVENT + span).date())]},
           "scenes": [str(folder / "scenes")], "output": str(folder / "work")}
    path = folder / "event.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux): ru_maxrss is inherited across fork + exec."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_gb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def child(config: str, block_size: int, workers: int | None) -> None:
    """Run stack_event in this (fresh) process and print its time and peak RSS.

    Peak RSS is the kernel's high-water mark (VmHWM, reset after start-up) and, as a
    cross-check, the largest RSS sampled every 20 ms by a thread.
    """
    import threading

    import psutil

    from sarflow.config import load_config
    from sarflow.stack import stack_event

    cfg = load_config(config)
    proc = psutil.Process()
    sampled = [proc.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            sampled[0] = max(sampled[0], proc.memory_info().rss)

    reset = _reset_peak()
    start_gb = proc.memory_info().rss / 2**30
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    stack_event(cfg, workers=workers, block_size=block_size, progress=False, force=True)
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    hwm = _peak_gb() if reset else None
    print(json.dumps({"seconds": round(seconds, 1),
                      "peak_rss_gb": round(hwm if hwm is not None else sampled[0] / 2**30, 3),
                      "peak_rss_sampled_gb": round(sampled[0] / 2**30, 3),
                      "rss_at_start_gb": round(start_gb, 3)}))


def bench_memory(n_big: int, n_small: int, dates: int, block_size: int, workers: int | None) -> dict:
    """Peak RSS of stack_event on an n_big and an n_small grid, each in a fresh process."""
    out = {"dates_per_pass_and_window": dates, "scenes": 4 * dates, "block_size": block_size}
    with tempfile.TemporaryDirectory(prefix="sarflow_bench_") as tmp:
        tmp = Path(tmp)
        bases = make_bases(tmp, n_big)
        for n in (n_small, n_big):
            folder = tmp / f"event{n}"
            folder.mkdir()
            cfg = make_event(folder, bases, n, dates)
            cmd = [sys.executable, __file__, "--child", str(cfg), "--block-size", str(block_size)]
            if workers:
                cmd += ["--workers", str(workers)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[f"grid_{n}x{n}"] = json.loads(res.stdout.strip().splitlines()[-1])
    big, small = out[f"grid_{n_big}x{n_big}"], out[f"grid_{n_small}x{n_small}"]
    out["peak_ratio_big_over_small"] = round(big["peak_rss_gb"] / small["peak_rss_gb"], 2)
    out["area_ratio"] = (n_big / n_small) ** 2
    out["under_3gb"] = big["peak_rss_gb"] < 3.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--grid", type=int, default=4096)
    ap.add_argument("--small-grid", type=int, default=1024)
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-kernel", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.block_size, args.workers)
        return
    result = {"bench": "stack_median", "cpus": os.cpu_count()}
    if not args.skip_kernel:
        result["kernel"] = bench_kernel(args.size, args.dates)
        result["kernel"]["at_least_4x"] = result["kernel"]["speedup"] >= 4
    if not args.skip_memory:
        result["memory"] = bench_memory(args.grid, args.small_grid, args.dates,
                                        args.block_size, args.workers)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
