"""The no-model heatmap scored like a model (issue 16): its sign and z threshold chosen on
the training area's pixels reproduce a brute-force search, and its scores on the validation
area equal sarflow.metrics on the same mask; the pipeline's evaluate stage and the report
carry them beside the model's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from sarflow.grid import raster_info, read_raster, write_raster
from sarflow.heatmap_scores import SIGNS, best_threshold, choose_rule, signed_score
from sarflow.metrics import binary_scores


def _brute_force(score: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(threshold, F1): every distinct finite score tried as a threshold with
    sarflow.metrics; among equal F1 the highest threshold."""
    valid = np.isfinite(score) & np.isfinite(truth)
    best = (np.nan, -1.0)
    for t in np.unique(score[valid])[::-1]:           # highest first: ties keep the highest
        f1 = binary_scores(np.nan_to_num(truth), np.nan_to_num(score, nan=-np.inf), t, valid)["f1"]
        if f1 > best[1]:
            best = (float(t), f1)
    return best


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    truth = (rng.random(2000) < 0.1).astype(np.float32)
    score = np.round(rng.normal(size=2000) + 2.0 * truth, 1)   # rounded: many ties
    score[rng.random(2000) < 0.05] = np.nan
    truth[rng.random(2000) < 0.05] = np.nan
    t, f1, n = best_threshold(score, truth)
    assert (t, f1) == pytest.approx(_brute_force(score, truth), rel=1e-12)
    assert n == int((np.isfinite(score) & np.isfinite(truth)).sum())


def test_choose_rule_by_hand():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], np.float32)
    z = np.array([-5, -4, 6, -1, 0, 1, 2, -3, 0.5, 7], np.float32)
    # decrease (-z): 5 T, 4 T, 3 F ...: best t = 4 with TP 2 of 2 flagged, 3 true -> 4/5
    dec = choose_rule(z, truth, sign="decrease")
    assert (dec.threshold, dec.training_f1) == (4.0, pytest.approx(0.8))
    assert dec.rule == "z_fused_VV <= -4"
    # increase (z): 7 F, 6 T, 2 F, ...: flagging all gives 2*3/(10+3), the best
    inc = choose_rule(z, truth, sign="increase")
    assert (inc.threshold, inc.training_f1) == (-5.0, pytest.approx(6 / 13))
    # either (|z|): 7 F, 6 T, 5 T, 4 T, 3 F: t = 4, TP 3 of 4 flagged -> 6/7; auto takes it
    auto = choose_rule(z, truth)
    assert (auto.sign, auto.threshold, auto.training_f1) == ("either", 4.0, pytest.approx(6 / 7))
    assert auto.rule == "|z_fused_VV| >= 4" and auto.training_pixels == 10


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    """A small simulated event stacked, with a hand-made model prediction (the truth, blurred
    by noise) for both areas, then the evaluate and report stages run by the pipeline."""
    from sarflow.config import load_config
    from sarflow.pipeline import RunOptions, run_event
    from sarflow.simulate import simulate_event
    from sarflow.workdir import WorkDir

    root = tmp_path_factory.mktemp("heatscores")
    cfg = load_config(simulate_event(root / "sim", seed=7, size=(128, 192), scenes_per_window=3))
    opt = RunOptions(workers=1, progress=False)
    run_event(cfg, until="stack", options=opt)
    truth = read_raster(root / "sim" / "truth" / "landslides.tif")[0]
    rng = np.random.default_rng(0)
    full = cfg.grid()
    for area in ("training", "validation"):
        g = cfg.area_grid(area)
        w = full.window_of(g)
        t = truth[w.row:w.row + w.height, w.col:w.col + w.width]
        prob = np.clip(0.8 * t + 0.3 * rng.random(t.shape), 0, 1).astype(np.float32)
        write_raster(WorkDir(cfg.output).prediction(area) / "probability.tif", prob, g,
                     tags={"threshold": 0.5})
    outcomes = run_event(cfg, start="evaluate", until="report", options=opt)
    assert [o.status for o in outcomes] == ["ran", "ran"]
    return cfg, truth, outcomes


def _area(a: np.ndarray, cfg, area: str) -> np.ndarray:
    w = cfg.grid().window_of(cfg.area_grid(area))
    return a[..., w.row:w.row + w.height, w.col:w.col + w.width]


def test_rule_chosen_on_training_pixels_is_the_brute_force_one(event):
    from sarflow.heatmap import heatmap_path
    from sarflow.workdir import WorkDir

    cfg, truth, _ = event
    wd = WorkDir(cfg.output)
    rec = json.loads(wd.heatmap_evaluation("training").read_text())["heatmap"]
    assert rec["band"] == "z_fused_VV" and rec["chosen_on"] == "training"
    info = raster_info(heatmap_path(wd))
    z = _area(read_raster(heatmap_path(wd))[info.descriptions.index("z_fused_VV")], cfg, "training")
    t_truth = _area(truth, cfg, "training")
    best = {s: _brute_force(signed_score(z, s), t_truth) for s in SIGNS}
    top = max(best.values(), key=lambda v: v[1])[1]
    assert rec["sign"] == next(s for s in SIGNS if best[s][1] == top)  # first of the best
    assert (rec["threshold"], rec["training_f1"]) == pytest.approx(best[rec["sign"]], rel=1e-6)
    # the rule flags what it says on the training area, and reaches that F1 there
    tr = json.loads(wd.heatmap_evaluation("training").read_text())["pixel"]
    assert tr["f1"] == pytest.approx(rec["training_f1"], rel=1e-9)


def test_validation_scores_equal_metrics_on_the_same_mask(event, tmp_path):
    from sarflow.evaluate import evaluate_prediction
    from sarflow.heatmap import heatmap_path
    from sarflow.workdir import WorkDir

    cfg, truth, _ = event
    wd = WorkDir(cfg.output)
    res = json.loads(wd.heatmap_evaluation("validation").read_text())
    rule = res["heatmap"]
    z = _area(read_raster(heatmap_path(wd))[raster_info(heatmap_path(wd)).descriptions.index(
        rule["band"])], cfg, "validation")
    t_val = _area(truth, cfg, "validation")
    score = {"decrease": -z, "increase": z, "either": np.abs(z)}[rule["sign"]]
    with np.errstate(invalid="ignore"):
        flagged = (score >= rule["threshold"]).astype(np.float32)
    want = binary_scores(t_val, flagged, 0.5, np.isfinite(z))
    assert {k: res["pixel"][k] for k in want} == pytest.approx(want)
    assert res["pixel"]["pixels"] == int(np.isfinite(z).sum())
    # object scores: those of the same mask written by hand and scored as a model's mask
    mask = np.where(np.isfinite(z), flagged, 255).astype(np.uint8)
    write_raster(tmp_path / "mask.tif", mask, cfg.area_grid("validation"), dtype="uint8",
                 nodata=255)
    by_hand = evaluate_prediction(tmp_path / "mask.tif", cfg.inventory)
    assert res["objects"] == by_hand["objects"] and res["pixel"] == by_hand["pixel"]
    assert res["objects"]["inventory"] > 3   # landslides to hit in the validation area
    assert res["name"] == "heatmap_validation"


def test_pipeline_records_and_report_show_the_heatmap(event):
    from sarflow.pipeline import RunOptions, run_event
    from sarflow.workdir import WorkDir

    cfg, _, _ = event
    wd = WorkDir(cfg.output)
    again = run_event(cfg, start="evaluate", until="report", options=RunOptions(workers=1))
    assert [o.status for o in again] == ["skipped", "skipped"]
    page = wd.report.read_text()
    for area in ("training", "validation"):
        f1 = json.loads(wd.heatmap_evaluation(area).read_text())["pixel"]["f1"]
        model = json.loads(wd.evaluation(area).read_text())["pixel"]["f1"]
        assert f"{area} (heatmap, no model)</td><td>" in page and f"{f1:.3f}" in page
        assert f"{model:.3f}" in page
    assert page.count('alt="Heatmap z (no model)"') == 2
    assert page.count('alt="Heatmap errors (TP / FP / FN)"') == 2
    assert "maximise F1 on the training area" in page
    # a removed heatmap score makes the evaluate stage incomplete: it is redone
    wd.heatmap_evaluation("validation").unlink()
    redo = run_event(cfg, start="evaluate", until="evaluate", options=RunOptions(workers=1))
    assert redo[0].status == "resumed" and wd.heatmap_evaluation("validation").exists()


def test_cli_scores_a_heatmap_like_a_model(event):
    from sarflow.cli import cli
    from sarflow.heatmap import heatmap_path
    from sarflow.workdir import WorkDir

    cfg, _, _ = event
    wd = WorkDir(cfg.output)
    train = [str(v) for v in cfg.area_grid("training").bounds]
    val = [str(v) for v in cfg.area_grid("validation").bounds]
    res = CliRunner().invoke(cli, ["evaluate", str(heatmap_path(wd)), str(cfg.inventory),
                                   "--train-area", *train, "--area", *val, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    saved = json.loads(wd.heatmap_evaluation("validation").read_text())
    assert out["pixel"] == saved["pixel"] and out["objects"] == saved["objects"]
    assert out["heatmap"]["rule"] == saved["heatmap"]["rule"]
    table = CliRunner().invoke(cli, ["evaluate", str(heatmap_path(wd)), str(cfg.inventory),
                                     "--train-area", *train, "--area", *val])
    assert table.exit_code == 0 and saved["heatmap"]["rule"] in table.output
    bad = CliRunner().invoke(cli, ["evaluate", str(heatmap_path(wd)), str(cfg.inventory),
                                   "--threshold", "0.5"])
    assert bad.exit_code == 2 and "chosen on --train-area" in bad.output
