"""Benchmark: simulate the default synthetic event (issue: under 2 minutes on 2 cores).

Prints one JSON object: wall and CPU seconds of ``simulate_event`` (default: 1500 x 1500
grid, 2 passes, 8 dates per window per pass, VV+VH), output sizes, and, as a baseline
measured in the same run, the exact zero-Doppler solution for every DEM cell of one pass
against the coarse-lattice interpolation the simulator uses (time ratio and largest
difference in image pixels).

    python bench/bench_simulate.py [--size 1500] [--scenes-per-window 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _geometry_baseline(settings) -> dict:
    """Exact zero Doppler for every DEM cell vs the simulator's interpolated geometry."""
    from sarflow.sentinel1 import geodetic_to_ecef, zero_doppler
    from sarflow.simulate import geometry, terrain
    from sarflow.simulate.event import _geoid
    from sarflow.simulate.orbit import design_orbit

    event, dem = terrain.grids(settings)
    h = terrain.make_terrain(dem, np.random.default_rng([1, 1]), settings)
    h_ell = h.astype(np.float64) + _geoid(dem)
    m = settings.dem_margin
    win = (slice(m, m + event.height), slice(m, m + event.width))
    t_ref = dt.datetime(2022, 8, 17, 8, 32, tzinfo=dt.timezone.utc)
    orbit_def = design_orbit(*settings.center, float(h_ell[win].mean()), 39.0, "ASCENDING", t_ref)
    model = geometry.build_image_model("ASCENDING", orbit_def, dem, win, h_ell)
    flags_s = []
    original = geometry._layover_shadow

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            flags_s.append(time.perf_counter() - t)

    geometry._layover_shadow = timed
    try:
        t0 = time.perf_counter()
        geom = geometry.compute_pass_geometry(model, dem, h_ell)
        t_all = time.perf_counter() - t0
    finally:
        geometry._layover_shadow = original
    t_interp = t_all - flags_s[0]
    orbit = model.orbit()
    fast = orbit.polynomial(orbit.start, orbit.stop)
    t_first = orbit.to_seconds(model.t_first)
    lon, lat = dem.coordinates()
    t0 = time.perf_counter()
    err = 0.0
    for r0 in range(0, dem.height, 256):
        sl = slice(r0, r0 + 256)
        xyz = geodetic_to_ecef(lat[sl], lon[sl], h_ell[sl])
        t, rng = zero_doppler(fast, xyz, t0=t_first)
        line, pixel = model.line_pixel(t, rng, t_first)
        err = max(err, float(np.abs(line - geom.line[sl].ravel()).max()),
                  float(np.abs(pixel - geom.pixel[sl].ravel()).max()))
    t_exact = time.perf_counter() - t0
    return {"dem_cells": int(dem.width * dem.height),
            "geometry_interpolated_s": round(t_interp, 2),
            "layover_shadow_s": round(flags_s[0], 2),
            "exact_zero_doppler_s": round(t_exact, 2),
            "exact_over_interpolated": round(t_exact / t_interp, 2),
            "max_difference_px": err,
            "note": "interpolated: line, pixel, look vectors, look angle, area factor per cell; "
                    "exact: line and pixel only"}


def main() -> None:
    from sarflow.simulate import SimulationSettings, simulate_event

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1500)
    ap.add_argument("--scenes-per-window", type=int, default=8)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    settings = SimulationSettings(size=(args.size, args.size),
                                  scenes_per_window=args.scenes_per_window)
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        out = Path(tmp) / "event"
        cpu0, t0 = _cpu(), time.perf_counter()
        simulate_event(out, seed=1, settings=settings, workers=args.workers)
        wall = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        scenes = sorted((out / "scenes").glob("*.zip"))
        size = {d: sum(p.stat().st_size for p in (out / d).rglob("*") if p.is_file())
                for d in ("scenes", "truth")}
    result = {
        "benchmark": "simulate_event",
        "grid": [args.size, args.size], "scenes": len(scenes),
        "scenes_per_window_per_pass": args.scenes_per_window, "workers": args.workers,
        "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "target_s": 120.0, "wall_over_target": round(wall / 120.0, 3),
        "cpu_over_2_cores_over_target": round(cpu / 2.0 / 120.0, 3),
        "scenes_mb": round(size["scenes"] / 1e6, 1), "truth_mb": round(size["truth"] / 1e6, 1),
    }
    if not args.no_baseline:
        result["geometry_baseline"] = _geometry_baseline(settings)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
