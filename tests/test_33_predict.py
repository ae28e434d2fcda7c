"""Whole-area prediction: seamless tiling, exact grid, NaN handling, polygons and areas."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from osgeo import ogr

from sarflow.cli import cli
from sarflow.errors import ModelError
from sarflow.grid import Grid, Window, raster_info, read_raster, write_raster
from sarflow.modelio import save_model
from sarflow.predict import (blend_weights, geodesic_area_m2, geodesic_areas_m2, predict_event,
                             predict_raster, tile_starts)

CHANNELS = ["VV_change", "VH_change"]
MEAN, STD = [0.5, -1.0], [2.0, 4.0]


def _meta(patch: int = 32, group: str = "G1") -> dict:
    return {"group": group, "channels": CHANNELS, "patch_size": patch,
            "normalisation": {"mean": MEAN, "std": STD}, "architecture": "test_conv",
            "threshold": 0.5}


def _smooth_model(seed: int = 0):
    """Two 3x3 convolutions (receptive radius 2) ending in a sigmoid: any input size."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(inp)
    out = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inp, out)


def _step_model():
    """prob = sigmoid(40 * (x0_raw - 0.5)) on the raw first band (normalisation undone)."""
    import keras

    inp = keras.Input((None, None, 2))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    out = conv(inp)
    # x_norm = (x - 0.5) / 2, so 80 * x_norm = 40 * (x - 0.5)
    conv.set_weights([np.array([80.0, 0.0], np.float32).reshape(1, 1, 2, 1),
                      np.zeros(1, np.float32)])
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def smooth_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "smooth.keras"
    save_model(_smooth_model(), path, _meta())
    return path


def _raster(path, data, grid=None, descriptions=CHANNELS):
    grid = grid or Grid(col0=1_580_000, row0=475_000, width=data.shape[2], height=data.shape[1])
    write_raster(path, data, grid, descriptions=descriptions, tags={"group": "G1"})
    return grid


def _whole(model, data):
    x = (np.moveaxis(data, 0, -1) - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.asarray(model.predict(x[None], verbose=0))[0, :, :, 0]


def test_tile_layout_and_weights_partition_of_unity():
    assert tile_starts(100, 32, 8) == [0, 23, 45, 68]
    assert tile_starts(20, 32, 8) == [0]
    for length in (33, 70, 100, 129, 250):
        starts = tile_starts(length, 32, 8)
        assert starts[0] == 0 and starts[-1] == length - 32
        assert max(np.diff(starts)) <= 24
        total = np.zeros(length)
        for s in starts:
            total[s:s + 32] += blend_weights(32, 8, s == 0, s + 32 >= length)
        assert total.min() > 0.5
    # evenly strided neighbours: the ramps sum to exactly one
    total = np.zeros(32 + 24 * 3)
    for s in (0, 24, 48, 72):
        total[s:s + 32] += blend_weights(32, 8, s == 0, s == 72)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    w = blend_weights(32, 16, False, False)
    assert (w[:4] == 0).all() and (w[-4:] == 0).all() and w[16] == 1.0


def _whole_flip_average(model, data):
    """The whole raster's prediction averaged over its four flips (each flipped back)."""
    total = np.zeros(data.shape[1:], np.float32)
    for rows, cols in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        flipped = np.ascontiguousarray(data[:, ::rows, ::cols])
        total += _whole(model, flipped)[::rows, ::cols]
    return total / 4


def test_tiled_prediction_equals_whole_raster(tmp_path, smooth_model_file):
    rng = np.random.default_rng(1)
    h, w = 77, 101  # not multiples of the 32-pixel patch
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.stack([np.sin(xx / 7.0) * 3 + rng.normal(0, 1, (h, w)),
                     np.cos(yy / 5.0) * 4 + rng.normal(0, 2, (h, w))]).astype(np.float32)
    grid = _raster(tmp_path / "G1.tif", data)
    import keras

    model = keras.saving.load_model(smooth_model_file, compile=False)
    expected = _whole(model, data)
    single = predict_raster(smooth_model_file, tmp_path / "G1.tif", tmp_path / "single",
                            overlap=16, batch_size=3, progress=False, flip_average=False)
    grid.check_same(raster_info(single["probability"]).grid)
    grid.check_same(raster_info(single["mask"]).grid)
    prob = read_raster(single["probability"])[0]
    assert np.isfinite(prob).all()
    np.testing.assert_allclose(prob[8:-8, 8:-8], expected[8:-8, 8:-8], atol=1e-3)
    # raster-edge windows keep full weight, so even the borders match
    np.testing.assert_allclose(prob, expected, atol=1e-3)
    assert 0.05 < prob.std()  # a non-trivial map
    mask = read_raster(single["mask"])[0]
    np.testing.assert_array_equal(mask, (prob >= 0.5).astype(np.uint8))
    # the default: the mean of the four flips' whole-raster predictions, flipped back
    paths = predict_raster(smooth_model_file, tmp_path / "G1.tif", tmp_path / "out",
                           overlap=16, batch_size=3, progress=False)
    averaged = read_raster(paths["probability"])[0]
    flips = _whole_flip_average(model, data)
    assert np.abs(flips - expected).max() > 0.02  # the net is not flip-invariant
    np.testing.assert_allclose(averaged, flips, atol=1e-3)
    np.testing.assert_array_equal(read_raster(paths["mask"])[0],
                                  (averaged >= 0.5).astype(np.uint8))
    assert raster_info(paths["probability"]).tags["flip_average"] == "true"
    # plain tiling (no overlap) does show the convolution's zero padding at window seams
    plain = predict_raster(smooth_model_file, tmp_path / "G1.tif", tmp_path / "plain",
                           overlap=0, progress=False, flip_average=False)
    assert np.abs(read_raster(plain["probability"])[0] - expected).max() > 1e-3


def test_nan_input_gives_nan_probability(tmp_path, smooth_model_file):
    rng = np.random.default_rng(2)
    data = rng.normal(0, 2, (2, 40, 50)).astype(np.float32)
    data[0, 10:15, 20:30] = np.nan
    data[1, 30:33, 0:4] = np.nan
    _raster(tmp_path / "G1.tif", data)
    paths = predict_raster(smooth_model_file, tmp_path / "G1.tif", tmp_path / "out",
                           progress=False)
    prob = read_raster(paths["probability"])[0]
    mask = read_raster(paths["mask"])[0]
    bad = np.isnan(data).any(axis=0)
    np.testing.assert_array_equal(np.isnan(prob), bad)
    assert (mask[bad] == 255).all() and set(np.unique(mask[~bad])) <= {0, 1}


def test_small_raster_and_polygon_areas(tmp_path):
    """A raster smaller than the patch; two square landslides of known size."""
    from pyproj import Geod

    model = tmp_path / "step.keras"
    save_model(_step_model(), model, _meta(patch=32))
    data = np.zeros((2, 20, 30), np.float32)
    data[0, 2:6, 3:8] = 1.0      # 4 x 5 pixels
    data[0, 12:13, 20:21] = 1.0  # a single pixel
    grid = _raster(tmp_path / "G1.tif", data)
    paths = predict_raster(model, tmp_path / "G1.tif", tmp_path / "out", progress=False)
    mask = read_raster(paths["mask"])[0]
    np.testing.assert_array_equal(mask, (data[0] > 0.5).astype(np.uint8))
    ds = ogr.Open(str(paths["polygons"]))
    feats = sorted(ds.GetLayer(0), key=lambda f: -f.GetField("area_m2"))
    assert len(feats) == 2
    geod = Geod(ellps="WGS84")
    big = grid.subgrid(Window(2, 3, 4, 5))
    w, s, e, n = big.bounds
    ref, _ = geod.polygon_area_perimeter([w, e, e, w], [s, s, n, n])
    assert feats[0].GetField("area_m2") == pytest.approx(abs(ref), rel=1e-6)
    env = feats[0].GetGeometryRef().GetEnvelope()  # (minx, maxx, miny, maxy)
    np.testing.assert_allclose(env, (w, e, s, n), atol=1e-9)
    assert feats[1].GetField("area_m2") == pytest.approx(abs(ref) / 20, rel=1e-3)
    # the minimum area drops the single pixel
    again = predict_raster(model, tmp_path / "G1.tif", tmp_path / "out2", min_area_m2=500,
                           progress=False)
    assert ogr.Open(str(again["polygons"])).GetLayer(0).GetFeatureCount() == 1


def test_geodesic_area_matches_pyproj():
    from pyproj import Geod
    from shapely.geometry import Polygon
    from shapely.geometry.polygon import orient

    poly = orient(Polygon([(141.90, 42.70), (141.93, 42.70), (141.92, 42.74), (141.89, 42.72)],
                   holes=[[(141.905, 42.71), (141.915, 42.71), (141.91, 42.72)]]))  # pyproj needs holes wound against the shell
    ref = abs(Geod(ellps="WGS84").geometry_area_perimeter(poly)[0])
    assert geodesic_area_m2(poly) == pytest.approx(ref, rel=2e-4)  # rhumb vs geodesic edges
    from shapely.geometry import GeometryCollection, LineString, MultiPolygon, box

    a, b = box(141.9, 42.7, 141.91, 42.71), box(141.92, 42.7, 141.93, 42.72)
    ra = abs(Geod(ellps="WGS84").geometry_area_perimeter(a)[0])
    rb = abs(Geod(ellps="WGS84").geometry_area_perimeter(b)[0])
    got = geodesic_areas_m2([a, MultiPolygon([a, b]), GeometryCollection([b, LineString([(0, 0), (1, 1)])])])
    np.testing.assert_allclose(got, [ra, ra + rb, rb], rtol=2e-4)


def test_predict_event_writes_area_windows(tmp_path, smooth_model_file):
    from sarflow.config import parse_config
    from sarflow.workdir import WorkDir

    cfg = parse_config({
        "name": "t", "event": {"time": "2018-09-05T18:00:00Z"},
        "area": {"bbox": [141.90, 42.70, 141.906, 42.705]},
        "windows": {"pre": ["2018-08-01", "2018-09-05"], "post": ["2018-09-06", "2018-09-30"]},
        "scenes": [], "output": str(tmp_path / "work"),
        "training_area": {"bbox": [141.90, 42.70, 141.903, 42.705]},
        "validation_area": {"bbox": [141.903, 42.70, 141.906, 42.705]},
        "model": {"threshold": 0.3}}, base=tmp_path)
    grid = cfg.grid()
    data = np.random.default_rng(3).normal(0, 1, (2, *grid.shape)).astype(np.float32)
    write_raster(WorkDir(cfg.output).group("G1"), data, grid, descriptions=CHANNELS)
    out = predict_event(cfg, smooth_model_file, areas=("training", "validation"),
                        progress=False)
    for area in ("training", "validation"):
        got = raster_info(out[area].probability).grid
        cfg.area_grid(area).check_same(got)
        assert out[area].probability.parent == WorkDir(cfg.output).prediction(area)
        assert out[area].polygons.exists()
        assert raster_info(out[area].mask).tags["threshold"] == "0.3"  # the config's


@pytest.mark.parametrize("case", ["bands", "group"])
def test_wrong_raster_is_one_line_error(tmp_path, smooth_model_file, case):
    data = np.zeros((3 if case == "bands" else 2, 20, 20), np.float32)
    names = ["a", "b", "c"] if case == "bands" else ["VV_pre", "VV_post"]
    _raster(tmp_path / "x.tif", data, descriptions=names)
    with pytest.raises(ModelError):
        predict_raster(smooth_model_file, tmp_path / "x.tif", tmp_path / "o", progress=False)
    res = CliRunner().invoke(cli, ["predict", str(smooth_model_file), str(tmp_path / "x.tif"),
                                   "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "G1" in lines[0] and ("band" in lines[0])
    assert not (tmp_path / "o" / "probability.tif").exists()


def test_cli_predict(tmp_path, smooth_model_file):
    data = np.random.default_rng(4).normal(0, 1, (2, 40, 40)).astype(np.float32)
    grid = _raster(tmp_path / "G1.tif", data)
    res = CliRunner().invoke(cli, ["predict", str(smooth_model_file), str(tmp_path / "G1.tif"),
                                   "-o", str(tmp_path / "o"), "--threshold", "0.4",
                                   "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    info = raster_info(tmp_path / "o" / "probability.tif")
    grid.check_same(info.grid)
    assert info.tags["threshold"] == "0.4"
    prob = read_raster(tmp_path / "o" / "probability.tif")[0]
    mask = read_raster(tmp_path / "o" / "mask.tif")[0]
    np.testing.assert_array_equal(mask, (prob >= 0.4).astype(np.uint8))
    # --bbox maps a part of the raster, on exactly that part's lattice window
    part = grid.subgrid(Window(5, 7, 20, 25))
    res = CliRunner().invoke(cli, ["predict", str(smooth_model_file), str(tmp_path / "G1.tif"),
                                   "-o", str(tmp_path / "p"), "--bbox",
                                   *(repr(v) for v in part.bounds)])
    assert res.exit_code == 0, res.output
    part.check_same(raster_info(tmp_path / "p" / "mask.tif").grid)
    # --no-flip-average: one pass per window, the plain prediction
    res = CliRunner().invoke(cli, ["predict", str(smooth_model_file), str(tmp_path / "G1.tif"),
                                   "-o", str(tmp_path / "n"), "--no-flip-average"])
    assert res.exit_code == 0, res.output
    assert raster_info(tmp_path / "n" / "probability.tif").tags["flip_average"] == "false"
    assert info.tags["flip_average"] == "true"
    single = read_raster(tmp_path / "n" / "probability.tif")[0]
    assert np.abs(single - prob).max() > 1e-3
    res = CliRunner().invoke(cli, ["predict", str(smooth_model_file), str(tmp_path / "G1.tif"),
                                   "-o", str(tmp_path / "q"), "--overlap", "20"])
    assert res.exit_code == 2 and "overlap 20" in res.output
