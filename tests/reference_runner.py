"""The independent references (sarsen, xarray-sentinel) run here, in their own virtualenv.

sarsen and xarray-sentinel read rasters through rasterio, whose PyPI wheel bundles its own
GDAL; sarflow uses the system GDAL (osgeo). Two GDALs in one process crash, so the
references live in ``.venv-ref`` (no osgeo there) and the tests talk to this script over a
pipe (:mod:`tests.reference`): one JSON request per line on stdin, one JSON reply per line
on stdout. Arrays travel as ``.npy`` files, written as ``{"npy": path}``.

Nothing of sarflow is imported here: this side must stay independent of the code it checks.

    .venv-ref/bin/python tests/reference_runner.py serve
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

REQUESTS: dict[str, Callable[..., dict]] = {}


def request(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Register ``fn`` as a request the client may name."""
    REQUESTS[fn.__name__] = fn
    return fn


@request
def xs_calibrate(calibration_file: str, dn: np.ndarray, line0: int, pixel0: int,
                 kind: str = "sigmaNought") -> dict:
    """xarray-sentinel's intensity calibration of a DN window starting at (line0, pixel0)."""
    import xarray as xr
    from xarray_sentinel import sentinel1 as xs

    cal = xs.open_calibration_dataset(calibration_file)
    da = xr.DataArray(dn.astype(np.float32), dims=("line", "pixel"),
                      coords={"line": np.arange(line0, line0 + dn.shape[0]),
                              "pixel": np.arange(pixel0, pixel0 + dn.shape[1])})
    return {"intensity": np.asarray(xs.calibrate_intensity(da, cal[kind]).values)}


@request
def xs_open_groups(safe: str, groups: list[str]) -> dict:
    """Open each group of a SAFE with xarray-sentinel; sizes per group, measurement dtype."""
    import xarray as xr

    sizes = {g: dict(xr.open_dataset(safe, group=g, engine="sentinel-1").sizes) for g in groups}
    meas = xr.open_dataset(safe, group=groups[0], engine="sentinel-1")["measurement"]
    return {"sizes": sizes, "measurement_dtype": str(meas.dtype)}


@request
def xs_ground_range(safe: str, azimuth_time_ns: np.ndarray, slant_range_time: np.ndarray,
                    group: str = "IW/VV/coordinate_conversion") -> dict:
    """xarray-sentinel's slant-range-time to ground-range conversion (the product's records)."""
    import xarray as xr
    import xarray_sentinel

    conv = xr.open_dataset(safe, engine="sentinel-1", group=group).compute()
    dims = ("y", "x")[-azimuth_time_ns.ndim:]
    az = xr.DataArray(azimuth_time_ns.astype("datetime64[ns]"), dims=dims)
    gr = xarray_sentinel.slant_range_time_to_ground_range(
        az, xr.DataArray(slant_range_time, dims=dims), conv)
    return {"ground_range": np.asarray(gr.values, dtype=np.float64)}


@request
def sarsen_backward_geocode(orbit_times_ns: np.ndarray, orbit_positions: np.ndarray,
                            xyz: np.ndarray, deg: int = 7) -> dict:
    """sarsen's zero-Doppler solution for ECEF points ``xyz`` ((ny, nx, 3) or (n, 3)):
    azimuth time (ns since 1970) and slant range, flat, timed (wall and CPU seconds of the
    solution alone)."""
    import xarray as xr
    from sarsen import geocoding
    from sarsen import orbit as sorbit

    pos = xr.DataArray(orbit_positions, dims=("azimuth_time", "axis"),
                       coords={"azimuth_time": orbit_times_ns.astype("datetime64[ns]"),
                               "axis": [0, 1, 2]})
    interp = sorbit.OrbitPolyfitInterpolator.from_position(pos, deg=deg)
    pts = xyz if xyz.ndim == 3 else xyz.reshape(1, -1, 3)
    ny, nx = pts.shape[:2]
    dem = xr.DataArray(np.moveaxis(pts, -1, 0), dims=("axis", "y", "x"),
                       coords={"axis": [0, 1, 2], "y": np.arange(ny), "x": np.arange(nx)})
    with _timer() as t:
        acq = geocoding.backward_geocode(dem, interp, zero_doppler_distance=1e-4, maxiter=20)
        az = acq.azimuth_time.values.ravel().astype("datetime64[ns]").astype(np.int64)
        rng = np.sqrt((acq.dem_distance ** 2).sum("axis")).values.ravel()
    return {"azimuth_time_ns": az, "slant_range": rng, **t}


@request
def sarsen_terrain_correction(safe: str, dem: str, output: str, group: str = "IW/VV",
                              interp_method: str | None = None) -> dict:
    """sarsen's geometric terrain correction of one measurement onto the DEM's grid; the
    values north-up (sarsen writes south-up), timed (wall and CPU seconds)."""
    import sarsen

    kwargs = {} if interp_method is None else {"interp_method": interp_method}
    Path(output).unlink(missing_ok=True)
    with warnings.catch_warnings(), _timer() as t:
        warnings.simplefilter("ignore")
        prod = sarsen.Sentinel1SarProduct(safe, measurement_group=group)
        gtc = sarsen.terrain_correction(prod, dem, output, chunks=None, **kwargs)
        values = np.asarray(gtc.values, dtype=np.float64)
    if gtc.y.values[0] < gtc.y.values[-1]:
        values = values[::-1]
    return {"values": values, **t}


@request
def versions() -> dict:
    """What this side runs: the reference packages and the GDAL rasterio bundles."""
    import rasterio
    import sarsen
    import xarray_sentinel

    return {"sarsen": sarsen.__version__, "xarray_sentinel": xarray_sentinel.__version__,
            "rasterio": rasterio.__version__, "rasterio_gdal": rasterio.__gdal_version__,
            "osgeo_importable": _importable("osgeo")}


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@contextlib.contextmanager
def _timer():
    """Fill a dict with ``wall_s`` and ``cpu_s`` (this process, all threads) of the block."""
    out: dict[str, float] = {}
    w, c = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall_s"], out["cpu_s"] = time.perf_counter() - w, time.process_time() - c


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"npy"}:
        return np.load(value["npy"], allow_pickle=False)
    return value


def _encode(result: dict, folder: Path, serial: int) -> dict:
    out = {}
    for k, v in result.items():
        if isinstance(v, np.ndarray):
            path = folder / f"reply-{serial}-{k}.npy"
            np.save(path, v, allow_pickle=False)
            out[k] = {"npy": str(path)}
        else:
            out[k] = v
    return out


def answer(line: str, serial: int) -> dict:
    """One request ``{"name", "args", "folder"}`` -> ``{"result"}`` or ``{"error"}``."""
    req = json.loads(line)
    try:
        fn = REQUESTS[req["name"]]
        result = fn(**{k: _decode(v) for k, v in req["args"].items()})
        return {"result": _encode(result, Path(req["folder"]), serial)}
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the test, whole
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def serve() -> None:
    """Answer requests from stdin until it closes. Replies go to a private copy of fd 1;
    fd 1 itself then points at stderr, so nothing a library prints can corrupt them."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for serial, line in enumerate(sys.stdin):
        if line.strip():
            replies.write(json.dumps(answer(line, serial)) + "\n")
            replies.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        raise SystemExit("usage: reference_runner.py serve")
    serve()
