"""End to end on a simulated event (sarflow.simulate -> native engine -> stack): G1 from the
speckled, geocoded scenes matches G1 stacked from the simulation's noise-free truth sigma0,
and separates landslides from stable ground better than either pass alone (G2, G3), above
all where layover/shadow hides one pass.  Steep terrain (median slope 32 degrees) so that
layover and shadow cover a fifth of the area."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sarflow.grid import read_raster
from sarflow.stack import fusion_quality_path, stack_event
from sarflow.workdir import WorkDir

from test_28_stack_synthetic import auc  # tests/ is on sys.path under pytest


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from sarflow.config import load_config
    from sarflow.preprocess import preprocess_event
    from sarflow.simulate import SimulationSettings, simulate_event

    out = tmp_path_factory.mktemp("stack_e2e")
    settings = SimulationSettings(median_slope_deg=32.0)
    cfg = load_config(simulate_event(out, seed=3, size=(192, 192), scenes_per_window=4,
                                     settings=settings))
    preprocess_event(cfg, engine="native", workers=2, progress=False)
    est = stack_event(cfg, workers=2, progress=False)
    # the same stacker on the simulation's noise-free sigma0 (engine convention) = truth
    truth_cfg = cfg.model_copy(update={"output": out / "truth_work"})
    pre = WorkDir(truth_cfg.output).preprocessed
    pre.mkdir(parents=True)
    for f in (out / "truth" / "sigma0").glob("*.tif"):
        os.symlink(f, pre / f.name)
    truth = stack_event(truth_cfg, workers=1, progress=False)
    slides = read_raster(out / "truth" / "landslides.tif")[0] > 0
    quality = read_raster(fusion_quality_path(WorkDir(cfg.output)))
    return est, truth, slides, quality


def test_g1_matches_simulation_truth(simulated):
    est, truth, slides, _ = simulated
    g1, t1 = read_raster(est["G1"]), read_raster(truth["G1"])
    for b, pol in enumerate(("VV", "VH")):
        ok = np.isfinite(g1[b]) & np.isfinite(t1[b])
        assert ok.mean() > 0.95
        assert t1[b][slides & ok].mean() > 0.8            # the scars lowered backscatter
        for region in (slides & ok, ~slides & ok):
            assert abs(g1[b][region].mean() - t1[b][region].mean()) < 0.3, pol


def test_g1_separates_better_than_one_pass_under_layover(simulated):
    est, _, slides, quality = simulated
    g1, g2, g3 = (read_raster(est[g]) for g in ("G1", "G2", "G3"))
    for b in range(2):
        one_pass = (quality[b] == 1) | (quality[b] == 2)
        assert one_pass.mean() > 0.1 and slides[one_pass].sum() > 100
        a1, a2, a3 = (auc(g[b], slides) for g in (g1, g2, g3))
        assert a1 > a2 and a1 > a3
        h1, h2, h3 = (auc(g[b][one_pass], slides[one_pass]) for g in (g1, g2, g3))
        assert h1 > h2 and h1 > h3
