"""`sarflow map` (issue 16): an event without an inventory, mapped with a model made
elsewhere; and the same event when its post-event scenes are ascending only.

The model is a hand-set pixelwise net (a 1x1 convolution and a sigmoid, saved with sarflow's
metadata), so the probability it must give is known: sigmoid(w . (x - mean) / std + b) of
the G1 raster, which the tiled predictor's blending must reproduce exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sarflow.cli import cli
from sarflow.config import dump_config, load_config
from sarflow.grid import raster_info, read_raster
from sarflow.workdir import WorkDir

W, B, THRESHOLD = (1.5, 0.5), -2.0, 0.5


def _model(path: Path) -> Path:
    """A pixelwise model: p = sigmoid(1.5 * VV + 0.5 * VH - 2) of G1 in dB (mean 0, std 1)."""
    import keras

    from sarflow.modelio import save_model

    inp = keras.Input((None, None, 2))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name="pixel")
    model = keras.Model(inp, conv(inp))
    conv.set_weights([np.array(W, np.float32).reshape(1, 1, 2, 1), np.array([B], np.float32)])
    meta = {"group": "G1", "channels": ["fused_change_VV", "fused_change_VH"],
            "normalisation": {"mean": [0.0, 0.0], "std": [1.0, 1.0]}, "patch_size": 32,
            "architecture": "pixel", "threshold": THRESHOLD}
    return save_model(model, path, meta)


def _expected_probability(g1: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        p = 1 / (1 + np.exp(-(W[0] * g1[0] + W[1] * g1[1] + B)))
    return np.where(np.isfinite(g1).all(axis=0), p, np.nan)


def _write(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """(no-inventory config, ascending-only config, model): one simulated event, twice."""
    from sarflow.catalog import select_scenes
    from sarflow.simulate import simulate_event

    root = tmp_path_factory.mktemp("map")
    base = load_config(simulate_event(root / "sim", seed=21, size=(128, 160), scenes_per_window=1))
    data = dump_config(base)
    data.pop("inventory", None)
    data.pop("training_area", None)
    data.pop("validation_area", None)
    data["output"] = str(root / "work_full")
    full = _write(data, root / "full.yaml")
    # the same event when the descending pass has no post-event scene yet
    keep = [r for r in select_scenes(base) if not (r.pass_direction == "DESCENDING" and r.window == "post")]
    asc = {**data, "scenes": [str(r.path) for r in keep], "output": str(root / "work_asc"),
           "name": "asc_only"}
    return full, _write(asc, root / "asc.yaml"), _model(root / "pixel.keras"), keep


def _invoke(args):
    return CliRunner().invoke(cli, ["-q"] + [str(a) for a in args], catch_exceptions=False)


def _json(out: str) -> dict:
    """The JSON document at the end of the output (warnings may come before it)."""
    return json.loads(out[out.index("\n{\n") + 1:] if not out.startswith("{") else out)


@pytest.fixture(scope="module")
def full_map(events):
    full, _, model, _ = events
    res = _invoke(["map", full, "--model", model, "--workers", "1", "--json"])
    assert res.exit_code == 0, res.output
    return load_config(full), _json(res.stdout)


@pytest.fixture(scope="module")
def asc_map(events, full_map):
    _, asc, model, keep = events
    cfg = load_config(asc)
    # the scenes it keeps were preprocessed for the full event: share them (as a user's
    # rerun would find them); the provenance rule must accept them as current
    src, dst = WorkDir(full_map[0].output).preprocessed, WorkDir(cfg.output).preprocessed
    dst.mkdir(parents=True)
    for r in keep:
        name = WorkDir(cfg.output).scene_output(r.product_id).name
        os.link(src / name, dst / name)
    res = _invoke(["map", asc, "--model", model, "--workers", "1", "--json",
                   "--no-flip-average"])
    assert res.exit_code == 0, res.output
    return cfg, _json(res.stdout)


def _cog(path: Path) -> None:
    from osgeo import gdal

    ds = gdal.Open(str(path))
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG", path
    assert ds.GetRasterBand(1).GetOverviewCount() >= 1, path
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"


def _features(path: Path) -> list[dict]:
    from osgeo import ogr

    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    out = []
    for f in layer:
        rec = {layer.GetLayerDefn().GetFieldDefn(i).GetName(): f.GetField(i)
               for i in range(f.GetFieldCount())}
        rec["wkb"] = bytes(f.GetGeometryRef().ExportToWkb())
        out.append(rec)
    return out


def _burn(wkb: bytes, grid) -> np.ndarray:
    """Pixels whose centres the polygon covers (an independent rasterisation)."""
    import shapely

    geom = shapely.from_wkb(wkb)
    lon, lat = grid.coordinates()
    return shapely.contains_xy(geom, lon, lat)


def _seen(cfg, inside: np.ndarray, passes: list[str]) -> str:
    """The passes whose VV and VH changes are valid on at least half the polygon's pixels."""
    wd = WorkDir(cfg.output)
    saw = []
    for p, name in (("asc", "ascending"), ("desc", "descending")):
        if p in passes:
            ok = np.isfinite(read_raster(wd.change(p, "VV"))[0]) & np.isfinite(read_raster(wd.change(p, "VH"))[0])
            if ok[inside].mean() >= 0.5:
                saw.append(name)
    return ",".join(saw)


def _check_outputs(cfg, summary, passes: list[str]) -> list[dict]:
    out = {k: Path(v) for k, v in summary["outputs"].items()}
    for name in ("probability", "mask", "heatmap"):
        _cog(out[name])
        assert raster_info(out[name]).grid == cfg.grid()
    g1 = read_raster(WorkDir(cfg.output).group("G1"))
    prob = read_raster(out["probability"])[0]
    np.testing.assert_allclose(prob, _expected_probability(g1), rtol=0, atol=2e-6, equal_nan=True)
    mask = read_raster(out["mask"])[0]
    np.testing.assert_array_equal(mask, np.where(np.isnan(prob), 255, prob >= THRESHOLD))
    feats = _features(out["polygons"])
    assert summary["landslides"] == len(feats) > 0
    from scipy import ndimage

    _, n = ndimage.label(mask == 1)  # 4-connected by default
    assert len(feats) == n
    burnt = np.zeros(mask.shape, int)
    for f in feats:
        inside = _burn(f["wkb"], cfg.grid())
        burnt += inside
        assert f["pixels"] == inside.sum()
        assert f["mean_probability"] == pytest.approx(float(prob[inside].mean()), abs=1e-4)
        assert f["max_probability"] == pytest.approx(float(prob[inside].max()), abs=1e-4)
        assert f["passes"] == _seen(cfg, inside, passes)
    np.testing.assert_array_equal(burnt, mask == 1)  # the polygons tile the mask exactly
    sizes = {r["size_class"]: r for r in summary["size_classes"]}
    for label, row in sizes.items():
        these = [f for f in feats if f["size_class"] == label]
        assert row["count"] == len(these)
        assert row["area_m2"] == pytest.approx(sum(f["area_m2"] for f in these), abs=0.1)
    # one pixel of the lattice is ~ 10 m x 10 m: areas follow from the pixel counts
    lat = np.radians(np.mean(cfg.grid().bounds[1::2]))
    px_m2 = (cfg.grid().spacing * 111_320) ** 2 * np.cos(lat)
    total = sum(f["pixels"] for f in feats) * px_m2
    assert summary["landslide_area_m2"] == pytest.approx(total, rel=0.01)
    return feats


def test_map_without_inventory(full_map):
    cfg, summary = full_map
    assert summary["inventory"] is None and summary["passes"] == ["ascending", "descending"]
    assert summary["flip_average"] is True   # the config's default
    assert raster_info(summary["outputs"]["probability"]).tags["flip_average"] == "true"
    feats = _check_outputs(cfg, summary, ["asc", "desc"])
    assert any(f["passes"] == "ascending,descending" for f in feats)
    page = Path(summary["outputs"]["report"]).read_text()
    assert "no inventory" in page and "Heatmap (no model)" in page and "Model: landslide probability" in page
    assert page.count("<img") == 5  # probability, heatmap, mask, G1, coverage
    assert "ascending only" not in page


def test_map_ascending_only(asc_map):
    cfg, summary = asc_map
    assert summary["passes"] == ["ascending"]
    assert summary["flip_average"] is False   # --no-flip-average
    assert raster_info(summary["outputs"]["probability"]).tags["flip_average"] == "false"
    assert "G3" in summary["left_out"] and "no descending post-event scenes" in summary["left_out"]["G3"]
    feats = _check_outputs(cfg, summary, ["asc"])
    assert {f["passes"] for f in feats} == {"ascending"}  # G1 is NaN where ascending is masked
    # one pass: the fused change is that pass's change
    wd = WorkDir(cfg.output)
    np.testing.assert_array_equal(read_raster(wd.group("G1")), read_raster(wd.group("G2")))
    heat = read_raster(summary["outputs"]["heatmap"])
    names = raster_info(summary["outputs"]["heatmap"]).descriptions
    np.testing.assert_array_equal(heat[names.index("z_fused_VV")], heat[names.index("z_asc_VV")])
    page = Path(summary["outputs"]["report"]).read_text()
    assert "no descending post-event scenes" in page
    assert "only the ascending pass has pre- and post-event scenes" in page
    assert "heatmap: fewer than 3 pre-event dates" in page  # one pre-event date per pass
    assert "(ascending only)" in page  # on the heatmap and G1 panels
    assert page.count("<img") == 5
    pre = json.loads(WorkDir(cfg.output).preprocess_summary.read_text())
    assert pre["counts"]["existing"] == 3 and pre["counts"]["done"] == 0  # shared, current


def test_map_refuses_a_model_of_a_missing_group(events, asc_map, tmp_path):
    """A model of G3 (descending change) cannot map an ascending-only event: one line, exit 2."""
    import zipfile

    _, asc, model, _ = events
    g3 = tmp_path / "g3.keras"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(g3, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "sarflow.json":
                meta = json.loads(data)
                meta.update(group="G3", channels=["desc_change_VV", "desc_change_VH"])
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    res = CliRunner().invoke(cli, ["map", str(asc), "--model", str(g3), "--workers", "1"])
    assert res.exit_code == 2
    assert "group G3, which this event cannot make (no descending post-event scenes)" in res.output
    assert "G1, G2" in res.output
