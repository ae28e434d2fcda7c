"""Benchmark of sarflow.sentinel1 geolocation (issue 3); prints one JSON object.

One 2048 x 2048 grid of DEM points (event-grid spacing, ~20 x 20 km around Rome, heights
from the Rome 1" DEM fixture, EGM96 -> ellipsoid) inside the footprint of the S1B fixture
(IPF 003.40).  Timed in the same run:

- ``image_coordinates`` (zero Doppler + bistatic term + ground range -> line, pixel): points/s;
- baseline 1: sarsen's ``backward_geocode`` (zero-Doppler time and slant range only, with
  its own polynomial orbit), on a 1024 x 1024 subset: points/s and agreement with ours;
- baseline 2: plain vectorised Newton on the 8-point Lagrange orbit (no polynomial fit, no
  Taylor model), on a 512 x 512 subset: points/s;
- ``geoid_to_ellipsoid`` on the whole grid: points/s.

Usage: python bench/bench_geolocation.py [--size 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT.parent / "shared" / "fixtures"


def _points(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lat, lon, geoid height of a size x size grid centred on the Rome DEM."""
    from osgeo import gdal
    from scipy.ndimage import map_coordinates

    from sarflow.grid import SPACING

    ds = gdal.Open(str(FIXTURES / "dem" / "Rome-30m-DEM.tif"))
    dem = ds.ReadAsArray().astype(np.float64)
    dem[dem < -1000] = 0.0
    gt = ds.GetGeoTransform()
    lat0, lon0 = 42.0 + size / 2 * SPACING, 12.5 - size / 2 * SPACING
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    lat = lat0 - (rows + 0.5) * SPACING
    lon = lon0 + (cols + 0.5) * SPACING
    r = (lat - gt[3]) / gt[5] - 0.5
    c = (lon - gt[0]) / gt[1] - 0.5
    h = map_coordinates(dem, [r.ravel(), c.ravel()], order=1, mode="nearest").reshape(lat.shape)
    return lat, lon, h


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()

    from sarflow.sentinel1 import geodetic_to_ecef, open_product, zero_doppler
    from sarflow.sentinel1.geoid import geoid_to_ellipsoid

    safe = next((FIXTURES / "s1").glob("S1B*.SAFE"))
    prod = open_product(safe)
    geom = prod.geometry("VV")
    lat, lon, hg = _points(args.size)
    n = lat.size

    h, t_geoid = _timed(geoid_to_ellipsoid, hg, lat, lon)
    (line, pixel), t_ours = _timed(prod.image_coordinates, lat, lon, h)
    inside = (line >= 0) & (line < prod.shape[0]) & (pixel >= 0) & (pixel < prod.shape[1])

    # baseline 1: sarsen's backward geocoding on a subset
    sub = min(1024, args.size)
    sarsen_res = _sarsen(prod, geom, lat[:sub, :sub], lon[:sub, :sub], h[:sub, :sub])

    # baseline 2: plain Newton on the Lagrange orbit on a smaller subset
    m = min(512, args.size)
    xyz = geodetic_to_ecef(lat[:m, :m], lon[:m, :m], h[:m, :m])
    t0 = np.full(m * m, geom.t_first + 0.5 * prod.shape[0] * geom.ati)
    (t_plain, r_plain), t_lag = _timed(zero_doppler, prod.orbit, xyz, t0)
    t_fast, r_fast = zero_doppler(geom.fast_orbit, xyz, t0=float(t0[0]))

    ours_pps = n / t_ours
    out = {
        "bench": "geolocation", "product": prod.id, "grid": [args.size, args.size],
        "points": n, "points_inside_image": int(inside.sum()),
        "cpu_count": os.cpu_count(),
        "image_coordinates_s": round(t_ours, 3),
        "image_coordinates_points_per_s": round(ours_pps),
        "geoid_to_ellipsoid_points_per_s": round(n / t_geoid),
        "sarsen_backward_geocode": sarsen_res,
        "speedup_vs_sarsen_zero_doppler": round(ours_pps / sarsen_res["points_per_s"], 2),
        "plain_newton_lagrange_points_per_s": round(m * m / t_lag),
        "speedup_vs_plain_newton": round(ours_pps / (m * m / t_lag), 2),
        "fast_vs_plain_max_dt_lines": float(np.abs(t_fast - t_plain).max() / geom.ati),
        "fast_vs_plain_max_drange_m": float(np.abs(r_fast - r_plain).max()),
        "line_range": [float(line.min()), float(line.max())],
        "pixel_range": [float(pixel.min()), float(pixel.max())],
    }
    print(json.dumps(out, indent=2))


def _sarsen(prod, geom, lat, lon, h) -> dict:
    """sarsen's zero-Doppler solution on the same points (in the reference virtualenv, timed
    there): speed and agreement with ours."""
    from sarflow.sentinel1 import geodetic_to_ecef, zero_doppler
    from tests.reference import Reference

    o = prod.orbit
    times = np.array([np.datetime64(o.to_datetime(t).replace(tzinfo=None), "ns") for t in o.times])
    ny, nx = lat.shape
    xyz = geodetic_to_ecef(lat, lon, h)
    with Reference() as ref:
        acq = ref.call("sarsen_backward_geocode", orbit_times_ns=times.astype(np.int64),
                       orbit_positions=o.positions, xyz=xyz.reshape(ny, nx, 3))
    t = acq["wall_s"]
    t_ref = np.asarray(o.to_seconds(acq["azimuth_time_ns"].astype("datetime64[ns]")))
    r_ref = acq["slant_range"]
    t_ours, r_ours = zero_doppler(geom.fast_orbit, xyz,
                                  t0=geom.t_first + 0.5 * prod.shape[0] * geom.ati)
    return {"points": ny * nx, "seconds": round(t, 3), "points_per_s": round(ny * nx / t),
            "max_dt_s_vs_ours": float(np.abs(t_ours - t_ref).max()),
            "max_drange_m_vs_ours": float(np.abs(r_ours - r_ref).max())}


if __name__ == "__main__":
    main()
