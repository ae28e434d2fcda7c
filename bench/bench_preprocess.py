"""Bulk preprocessing scales with workers: 2 scenes on 2 workers vs 2 scenes on 1 worker.

Simulates a small event, then preprocesses the same 2 scenes with the native engine on a
LocalCluster of 1 worker and on one of 2 workers (clusters started and warmed up before the
clock starts; each setting timed ``REPEATS`` times, alternating, best kept), through the
same ``preprocess_event(..., scheduler=ADDRESS)`` path users take.  Prints one JSON object;
target: ratio = t(2 workers) / t(1 worker) <= 0.65.  ``machine_ratio_2_over_1`` measures,
in the same run, what 2 plain CPU-bound processes achieve against 1: on a busy shared
machine it shows how much parallelism was available at all.

    python bench/bench_preprocess.py [--size 1536] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

TARGET = 0.65


def _warm(client) -> None:
    """Import what a scene task needs on every worker: the clock measures processing."""
    def imports() -> None:
        import filelock  # noqa: F401
        from osgeo import gdal  # noqa: F401

        import sarflow.engines.native  # noqa: F401
        import sarflow.preprocess  # noqa: F401
        import sarflow.sentinel1  # noqa: F401

    client.run(imports)


def _burn(n: int = 20_000_000) -> None:
    total = 0
    for i in range(n):
        total += i


def _machine_ratio() -> float:
    """The same CPU-bound work split over 2 processes against 1 process, wall-time ratio:
    the best the preprocessing ratio can be on this machine now (about 0.5 with 2 free
    cores; near 1.0 where this session's processes share one slice of a busy machine)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    n = 20_000_000
    times = {}
    for k in (1, 2):
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_burn, args=(2 * n // k,)) for _ in range(k)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        times[k] = time.perf_counter() - t0
    return times[2] / times[1]


def _timed(cfg, n_workers: int, out: Path) -> float:
    from distributed import Client, LocalCluster

    from sarflow.preprocess import preprocess_event

    shutil.rmtree(out, ignore_errors=True)
    cfg.output = out
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            _warm(client)
        t0 = time.perf_counter()
        summary = preprocess_event(cfg, engine="native", scheduler=cluster.scheduler_address,
                                   progress=False)
        seconds = time.perf_counter() - t0
    if summary.counts["done"] != 2:
        raise SystemExit(f"expected 2 scenes done, got {summary.counts}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1536, help="grid pixels per side (the default event: about 1500)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from sarflow.catalog import select_scenes
    from sarflow.config import load_config
    from sarflow.preprocess import resolve_dem
    from sarflow.simulate import simulate_event

    tmp = Path(tempfile.mkdtemp(prefix="sarflow-bench-preprocess-"))
    try:
        t0 = time.perf_counter()
        event = simulate_event(tmp / "event", seed=args.seed, size=(args.size, args.size),
                               scenes_per_window=1)
        simulate_s = time.perf_counter() - t0
        cfg = load_config(event)
        two = [r.path for r in select_scenes(cfg) if r.ok][:2]
        cfg.scenes = two
        resolve_dem(cfg)  # the parent's one-time imports (GDAL) stay out of the timings
        one_worker, two_workers = [], []
        for i in range(args.repeats):
            one_worker.append(_timed(cfg, 1, tmp / f"w1_{i}"))
            two_workers.append(_timed(cfg, 2, tmp / f"w2_{i}"))
        machine = _machine_ratio()
        t1, t2 = min(one_worker), min(two_workers)
        ratio = t2 / t1
        print(json.dumps({
            "benchmark": "preprocess_scaling",
            "scenes": 2, "grid": [args.size, args.size], "engine": "native",
            "seconds_1_worker": [round(t, 3) for t in one_worker],
            "seconds_2_workers": [round(t, 3) for t in two_workers],
            "best_1_worker_s": round(t1, 3), "best_2_workers_s": round(t2, 3),
            "ratio_2_over_1": round(ratio, 3), "target": TARGET, "pass": ratio <= TARGET,
            "machine_ratio_2_over_1": round(machine, 3),
            "cpus": len(os.sched_getaffinity(0)), "load_average": [round(x, 2) for x in os.getloadavg()],
            "simulate_s": round(simulate_s, 1),
        }))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
