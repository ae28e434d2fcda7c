"""The native engine on a small synthetic event (sarflow.simulate) against its known truth:
noise-free sigma0 and the layover/shadow mask of each scene on the event grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sarflow.config import NativeSettings
from sarflow.engines import SceneJob, validate_output
from sarflow.grid import raster_info, read_raster

from test_23_native_rome import measure_shift  # tests/ is on sys.path under pytest

BLOCK = 16


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 256 x 256 event, one scene per pass and window; the two pre-event scenes
    (one ascending, one descending) processed by the native engine."""
    from sarflow.config import load_config
    from sarflow.engines.native import ENGINE
    from sarflow.simulate import simulate_event
    from sarflow.sentinel1 import open_product

    out = tmp_path_factory.mktemp("simevent")
    cfg = load_config(simulate_event(out, seed=11, size=(256, 256), scenes_per_window=1))
    grid = cfg.grid()
    scenes = {}
    for zip_path in sorted((out / "scenes").glob("*.zip")):
        prod = open_product(zip_path)
        if prod.pass_direction in scenes:
            continue  # the first (pre-event) scene of each pass
        job = SceneJob(scene=zip_path, output=out / "native" / f"{prod.id}.tif", grid=grid,
                       polarisations=["VV", "VH"], dem=cfg.dem)
        result = ENGINE.process(job)
        scenes[prod.pass_direction] = {"job": job, "result": result, "id": prod.id,
                                       "truth": out / "truth" / "sigma0" / f"{prod.id}.tif"}
    return {"cfg": cfg, "grid": grid, "scenes": scenes, "out": out}


def block_db_difference(est: np.ndarray, truth: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """10 log10(mean est / mean truth) over 16 x 16 blocks that are at least 90 % clear."""
    h, w = (est.shape[0] // BLOCK) * BLOCK, (est.shape[1] // BLOCK) * BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(
            h // BLOCK, w // BLOCK, -1)

    ok = clear & np.isfinite(est) & np.isfinite(truth)
    keep = blocks(ok).mean(axis=-1) >= 0.9
    e = blocks(np.where(ok, est, 0.0)).sum(axis=-1)[keep]
    t = blocks(np.where(ok, truth, 0.0)).sum(axis=-1)[keep]
    return 10 * np.log10(e / t)  # equal pixel counts: ratio of sums = ratio of means


def _db(a: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.clip(np.where(np.isfinite(a), a, 1e-3), 1e-5, None))


@pytest.mark.parametrize("pass_", ["ASCENDING", "DESCENDING"])
def test_geocoded_sigma0_matches_truth(event: dict, pass_: str) -> None:
    scene = event["scenes"][pass_]
    out = scene["job"].output
    validate_output(out, event["grid"], ["VV", "VH"])
    tags = raster_info(out).tags
    assert tags["pass"] == pass_ and tags["product_id"] == scene["id"]
    assert tags["orbit_source"] == "annotation" and tags["engine"] == "native"
    native = read_raster(out)
    truth = read_raster(scene["truth"])
    clear = (truth[2] == 0) & (native[2] == 0)
    assert clear.mean() > 0.6
    for band, pol in enumerate(["VV", "VH"]):
        d = block_db_difference(native[band], truth[band], clear)
        assert d.size > 100
        assert abs(np.median(d)) < 0.3, (pol, np.median(d))
        # speckle (4.4 looks) averaged over a block: a few tenths of a dB at most
        assert np.percentile(np.abs(d), 90) < 0.6
        shift = measure_shift(_db(truth[band]), _db(native[band]))
        assert np.hypot(*shift) < 0.2, (pol, shift)


@pytest.mark.parametrize("pass_", ["ASCENDING", "DESCENDING"])
def test_layover_shadow_matches_truth(event: dict, pass_: str) -> None:
    scene = event["scenes"][pass_]
    mask = read_raster(scene["job"].output)[2]
    truth = read_raster(scene["truth"])[2]
    assert np.isfinite(mask).all()
    assert (mask == truth).mean() > 0.95
    lay_n, lay_t = (mask % 2 == 1), (truth % 2 == 1)
    # most of the truth's layover is found, and what is found is mostly right
    assert lay_t.sum() > 50
    assert (lay_n & lay_t).sum() > 0.75 * lay_t.sum()
    assert (lay_n & lay_t).sum() > 0.75 * lay_n.sum()


def test_thermal_noise_removal_removes_the_bias(event: dict, tmp_path: Path) -> None:
    """Without noise removal VH is biased high (the simulated NESZ is -24 dB); with it,
    the bias goes; NaN clipping leaves the other pixels as they were."""
    from dataclasses import replace

    from sarflow.engines.native import ENGINE

    scene = event["scenes"]["DESCENDING"]
    truth = read_raster(scene["truth"])
    base = read_raster(scene["job"].output)
    clear = (truth[2] == 0) & (base[2] == 0)
    noisy_job = replace(scene["job"], output=tmp_path / "noisy.tif",
                        settings=NativeSettings(thermal_noise=False))
    ENGINE.process(noisy_job)
    noisy = read_raster(noisy_job.output)
    bias_with = np.median(block_db_difference(base[1], truth[1], clear))
    bias_without = np.median(block_db_difference(noisy[1], truth[1], clear))
    assert bias_without > bias_with + 0.05
    nan_job = replace(scene["job"], output=tmp_path / "nan.tif", settings=NativeSettings(noise_clip="nan"))
    ENGINE.process(nan_job)
    nan_out = read_raster(nan_job.output)
    both = np.isfinite(nan_out[1])
    assert np.isnan(nan_out[1]).sum() > 0
    np.testing.assert_allclose(nan_out[1][both], base[1][both], rtol=1e-6)
