"""Evaluation: pixel scores and object counts on a hand-made case."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from sarflow.cli import cli
from sarflow.evaluate import evaluate_event, evaluate_prediction, object_scores
from sarflow.grid import Grid, Window, write_raster

GRID = Grid(col0=1_580_000, row0=475_000, width=10, height=8)
# inventory boxes as (row, col, height, width) in pixels of GRID
INVENTORY = {"A": (1, 1, 2, 3), "B": (5, 6, 2, 2), "C": (6, 0, 2, 1), "D": (0, 8, 1, 2)}
PREDICTED = {"P1": (1, 2, 2, 3), "P2": (5, 6, 1, 2), "P3": (4, 0, 1, 2)}
NAN_BOX = (0, 8, 1, 2)  # no prediction where D lies


def _box(r, c, h, w, grid=GRID):
    return grid.subgrid(Window(r, c, h, w)).bounds


def _geojson(path, boxes):
    feats = []
    for name, b in boxes.items():
        w, s, e, n = _box(*b)
        feats.append({"type": "Feature", "properties": {"name": name}, "geometry": {
            "type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _probability():
    prob = np.full(GRID.shape, 0.1, np.float32)
    for r, c, h, w in PREDICTED.values():
        prob[r:r + h, c:c + w] = 0.9
    r, c, h, w = NAN_BOX
    prob[r:r + h, c:c + w] = np.nan
    prob[7, 9] = 0.55  # a landslide at threshold 0.5 only
    return prob


@pytest.fixture()
def case(tmp_path):
    inv = _geojson(tmp_path / "inventory.geojson", INVENTORY)
    pred = tmp_path / "pred"
    write_raster(pred / "probability.tif", _probability(), GRID, tags={"threshold": 0.6})
    return pred, inv


def test_pixel_scores_hand_computed(case):
    pred, inv = case
    r = evaluate_prediction(pred, inv)  # threshold 0.6 from the raster's tag
    px = r["pixel"]
    # truth: A 6 + B 4 + C 2 px (D lies on NaN); predicted: P1 6 + P2 2 + P3 2 px
    # TP = A&P1 4 + B&P2 2 = 6; FP = 2 + 0 + 2 = 4; FN = 12 - 6 = 6; valid = 80 - 2
    assert (px["tp"], px["fp"], px["fn"], px["tn"]) == (6, 4, 6, 78 - 16)
    assert px["pixels"] == 78
    assert px["precision"] == pytest.approx(6 / 10)
    assert px["recall"] == pytest.approx(6 / 12)
    assert px["f1"] == pytest.approx(2 * 6 / (2 * 6 + 4 + 6))
    assert px["iou"] == pytest.approx(6 / 16)
    assert r["threshold"] == 0.6
    # the 0.55 pixel becomes a false positive at 0.5
    r5 = evaluate_prediction(pred, inv, threshold=0.5)
    assert (r5["pixel"]["tp"], r5["pixel"]["fp"]) == (6, 5)


def test_object_counts_by_size_hand_made(case):
    from pyproj import Geod

    pred, inv = case
    w, s, e, n = _box(0, 0, 1, 1)
    pixel_m2 = abs(Geod(ellps="WGS84").polygon_area_perimeter([w, e, e, w], [s, s, n, n])[0])
    assert 60 < pixel_m2 < 80  # ~10 m x 7.4 m at 42.7 N
    # classes: < 3 px, 3-5 px, >= 5 px  (C 2 px, B 4 px, A 6 px; P2, P3 2 px, P1 6 px)
    edges = (2.5 * pixel_m2, 5 * pixel_m2)
    ob = evaluate_prediction(pred, inv, size_classes=edges)["objects"]
    assert (ob["inventory"], ob["hit"], ob["predicted"], ob["false"]) == (3, 2, 3, 1)
    assert ob["hit_share"] == pytest.approx(2 / 3) and ob["false_share"] == pytest.approx(1 / 3)
    got = [(c["inventory"], c["hit"], c["predicted"], c["false"]) for c in ob["by_size"]]
    assert got == [(1, 0, 2, 1), (1, 1, 0, 0), (1, 1, 1, 0)]
    assert ob["by_size"][1]["false_share"] is None


def test_area_subset_and_mask_input(case, tmp_path):
    pred, inv = case
    # the left half: A (centre col 2) and C, P3 and P1 (cols 2-4)
    w, s, _, n = GRID.bounds
    bounds = (w, s, _box(0, 5, 1, 1)[0], n)
    r = evaluate_prediction(pred, inv, bounds=bounds)
    assert r["area"]["grid"]["width"] == 5
    assert (r["pixel"]["tp"], r["pixel"]["fp"], r["pixel"]["fn"]) == (4, 4, 4)
    assert (r["objects"]["inventory"], r["objects"]["hit"]) == (2, 1)
    # a 0/1/255 mask gives the same scores as the probability it came from
    prob = _probability()
    mask = np.where(np.isnan(prob), 255, prob >= 0.6).astype(np.uint8)
    write_raster(tmp_path / "mask.tif", mask, GRID, dtype="uint8", nodata=255)
    m = evaluate_prediction(tmp_path / "mask.tif", inv)
    full = evaluate_prediction(pred, inv)
    assert m["pixel"] == full["pixel"] and m["objects"] == full["objects"]


def test_raster_inventory_gives_the_same_scores(case, tmp_path):
    pred, inv = case
    truth = np.zeros(GRID.shape, np.float32)
    for r, c, h, w in INVENTORY.values():
        truth[r:r + h, c:c + w] = 1
    write_raster(tmp_path / "inventory.tif", truth, GRID)
    a = evaluate_prediction(pred, inv)
    b = evaluate_prediction(pred, tmp_path / "inventory.tif")
    assert a["pixel"] == b["pixel"] and a["objects"] == b["objects"]


def test_object_scores_overlap_rules():
    from shapely.geometry import box

    inv = [box(0, 0, 1, 1), box(5, 5, 6, 6)]
    pred = [box(1, 0, 2, 1), box(0.5, 0.5, 3, 3), box(10, 10, 11, 11)]  # touching only
    ob = object_scores(inv, pred, [True, True], edges=(1e20,))
    assert (ob["hit"], ob["inventory"], ob["false"], ob["predicted"]) == (1, 2, 2, 3)
    empty = object_scores([], [], [], edges=(1.0,))
    assert empty["hit_share"] is None and empty["false_share"] is None


def test_cli_evaluate_json_and_table(case, tmp_path):
    pred, inv = case
    res = CliRunner().invoke(cli, ["evaluate", str(pred), str(inv), "--json",
                                   "-o", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["pixel"]["f1"] == pytest.approx(12 / 22)
    assert json.loads((tmp_path / "e.json").read_text()) == out
    res = CliRunner().invoke(cli, ["evaluate", str(pred), str(inv), "--threshold", "0.5"])
    assert res.exit_code == 0, res.output
    assert "0.545" in res.output and "hit share" in res.output  # P = 6/11
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path), str(inv)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "sarflow predict" in res.output


def test_evaluate_event_writes_workdir(case, tmp_path):
    from sarflow.config import parse_config
    from sarflow.workdir import WorkDir

    _, inv = case
    cfg = parse_config({
        "name": "t", "event": {"time": "2018-09-05T18:00:00Z"}, "area": {"bbox": list(GRID.bounds)},
        "windows": {"pre": ["2018-08-01", "2018-09-05"], "post": ["2018-09-06", "2018-09-30"]},
        "scenes": [], "output": str(tmp_path / "work"), "inventory": str(inv)}, base=tmp_path)
    assert cfg.grid() == GRID
    write_raster(WorkDir(cfg.output).prediction("training") / "probability.tif", _probability(),
                 GRID, tags={"threshold": 0.6})
    res = evaluate_event(cfg, areas=("training",))
    saved = json.loads(WorkDir(cfg.output).evaluation("training").read_text())
    assert saved["pixel"]["tp"] == 6 and saved["name"] == "training"
    assert res["training"].record["pixel"] == saved["pixel"]
    assert res["training"].pixel.f1 == saved["pixel"]["f1"]
