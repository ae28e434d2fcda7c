"""Labels and patch datasets: rasterisation against shapely, tiling, split, normalisation,
user-made datasets, and the `sarflow dataset` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sarflow.dataset import (MAX_INVALID_FRACTION, load_dataset, make_patches,
                             rasterize_labels, random_split)
from sarflow.errors import InputError
from sarflow.grid import Grid, read_raster, write_raster

POLYGON = "rtc_stack/papau_new_guinea_landslide_2024.geojson"


def _polygon(fixtures_dir: Path):
    import shapely

    data = json.loads((fixtures_dir / POLYGON).read_text())
    return shapely.geometry.shape(data["features"][0]["geometry"])


def _centres_inside(poly, grid: Grid) -> np.ndarray:
    import shapely

    lon, lat = grid.coordinates()
    return shapely.contains_xy(poly, lon, lat)


def test_rasterised_polygon_matches_pixel_centres(fixtures_dir, tmp_path):
    poly = _polygon(fixtures_dir)
    w, s, e, n = poly.bounds
    grid = Grid.from_bounds(w - 0.002, s - 0.002, e + 0.002, n + 0.002)
    out = rasterize_labels(fixtures_dir / POLYGON, grid, tmp_path / "labels.tif")
    labels = read_raster(out)[0]
    inside = _centres_inside(poly, grid)
    assert inside.sum() > 500             # the Enga landslide: ~860 pixels of ~10 m
    assert labels.dtype == np.float32 and set(np.unique(labels)) == {0.0, 1.0}
    np.testing.assert_array_equal(labels == 1, inside)
    touched = read_raster(rasterize_labels(fixtures_dir / POLYGON, grid,
                                           tmp_path / "touched.tif", all_touched=True))[0]
    assert touched.sum() > labels.sum() and np.all(touched >= labels)


def test_polygons_in_another_crs_are_reprojected(fixtures_dir, tmp_path):
    from osgeo import gdal

    gdal.UseExceptions()
    utm = tmp_path / "inventory_utm.gpkg"
    gdal.VectorTranslate(str(utm), str(fixtures_dir / POLYGON), dstSRS="EPSG:32754",
                         format="GPKG")
    poly = _polygon(fixtures_dir)
    w, s, e, n = poly.bounds
    grid = Grid.from_bounds(w - 0.002, s - 0.002, e + 0.002, n + 0.002)
    labels = read_raster(rasterize_labels(utm, grid, tmp_path / "labels.tif"))[0]
    inside = _centres_inside(poly, grid)
    # the reprojected edges bend a little; only pixels whose centre is on the edge may differ
    assert np.count_nonzero((labels == 1) != inside) <= 0.01 * inside.sum()


def test_raster_inventory_is_resampled_with_nearest_neighbour(tmp_path):
    grid = Grid(col0=100_000, row0=50_000, width=8, height=6)
    coarse = Grid(col0=50_000, row0=25_000, width=4, height=3, spacing=grid.spacing * 2)
    values = np.array([[0, 2, 0, 0], [0, 0, 1, np.nan], [5, 0, 0, 0]], np.float32)
    write_raster(tmp_path / "inv.tif", values, coarse)
    labels = read_raster(rasterize_labels(tmp_path / "inv.tif", grid, tmp_path / "l.tif"))[0]
    expected = np.repeat(np.repeat(np.where(np.isnan(values), np.nan, values != 0), 2, 0), 2, 1)
    np.testing.assert_array_equal(labels, expected.astype(np.float32))


def _event_rasters(tmp: Path, size=(100, 90)):
    rng = np.random.default_rng(0)
    grid = Grid(col0=1_500_000, row0=470_000, width=size[1], height=size[0])
    img = rng.normal(0, 1, (2, *size)).astype(np.float32)
    img[1] += 5
    img[:, :20, :20] = np.nan                         # patch (0, 0) fully invalid
    img[0, 20:28, 20:40] = np.nan                     # patch (0, 1): 160 / 400 invalid, kept
    lab = (rng.random(size) < 0.1).astype(np.float32)
    write_raster(tmp / "G1.tif", img, grid, descriptions=["VV change", "VH change"])
    write_raster(tmp / "labels.tif", lab, grid)
    return grid, img, lab


def test_patches_tiles_split_and_normalisation(tmp_path):
    grid, img, lab = _event_rasters(tmp_path)
    out = make_patches(tmp_path / "G1.tif", tmp_path / "labels.tif", tmp_path / "ds",
                       patch_size=16, seed=7)
    m = json.loads((out / "manifest.json").read_text())
    images, masks = np.load(out / "images.npy"), np.load(out / "masks.npy")
    # 6 x 5 whole tiles of 16 px in 100 x 90; the all-NaN corner tile is skipped
    assert len(m["patches"]) == 29 == len(images) and m["split"]["skipped_invalid"] == 1
    assert m["channels"] == ["VV change", "VH change"] and m["patch_size"] == 16
    assert [m["split"]["train"], m["split"]["test"]] == [23, 6]
    for rec, x, y in zip(m["patches"], images, masks):
        r, c = rec["row"], rec["col"]
        assert r % 16 == 0 and c % 16 == 0 and r + 16 <= 100 and c + 16 <= 90
        np.testing.assert_array_equal(x, np.moveaxis(img[:, r:r + 16, c:c + 16], 0, -1))
        np.testing.assert_array_equal(y, lab[r:r + 16, c:c + 16])
        assert rec["nan_fraction"] <= MAX_INVALID_FRACTION
    train = np.array([rec["split"] == "train" for rec in m["patches"]])
    for ch in range(2):
        v = images[train][..., ch]
        assert m["normalisation"]["mean"][ch] == pytest.approx(np.nanmean(v), rel=1e-6)
        assert m["normalisation"]["std"][ch] == pytest.approx(np.nanstd(v), rel=1e-5)
    assert m["normalisation"]["mean"][1] == pytest.approx(5, abs=0.1)
    data = load_dataset(out)
    assert data.x_train.shape == (23, 16, 16, 2) and data.y_test.shape == (6, 16, 16, 1)
    assert np.isfinite(data.x_train).all()
    first = images[train][0]
    expected = (first - m["normalisation"]["mean"]) / m["normalisation"]["std"]
    np.testing.assert_allclose(data.x_train[0], np.nan_to_num(expected), rtol=1e-5, atol=1e-6)
    # same seed -> same split; the folder is reused when nothing changed
    again = make_patches(tmp_path / "G1.tif", tmp_path / "labels.tif", tmp_path / "ds2",
                         patch_size=16, seed=7)
    assert json.loads((again / "manifest.json").read_text())["patches"] == m["patches"]
    stamp = (out / "images.npy").stat().st_mtime_ns
    make_patches(tmp_path / "G1.tif", tmp_path / "labels.tif", out, patch_size=16, seed=7)
    assert (out / "images.npy").stat().st_mtime_ns == stamp


def test_random_split_is_seeded():
    a, b, c = random_split(50, 0.2, 1), random_split(50, 0.2, 1), random_split(50, 0.2, 2)
    assert a == b != c and a.count("test") == 10
    assert random_split(2, 0.2, 0).count("test") == 1


def test_patches_only_inside_the_window(tmp_path):
    from sarflow.grid import Window

    _event_rasters(tmp_path)
    out = make_patches(tmp_path / "G1.tif", tmp_path / "labels.tif", tmp_path / "ds",
                       window=Window(40, 30, 50, 40), patch_size=16)
    rows_cols = {(p["row"], p["col"]) for p in json.loads((out / "manifest.json").read_text())["patches"]}
    assert rows_cols == {(40 + 16 * i, 30 + 16 * j) for i in range(3) for j in range(2)}


def test_user_dataset_of_npy_and_geotiff_pairs(tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    grid = Grid(col0=0, row0=1000, width=32, height=32)
    stack = []
    for i in range(10):
        x = rng.normal(3, 2, (32, 32, 2)).astype(np.float32)
        stack.append(x)
        y = (rng.random((32, 32)) < 0.3).astype(np.uint8)
        if i % 2:
            np.save(tmp_path / "images" / f"p{i}.npy", np.moveaxis(x, -1, 0))  # (C, H, W)
            np.save(tmp_path / "masks" / f"p{i}.npy", y)
        else:
            write_raster(tmp_path / "images" / f"p{i}.tif", np.moveaxis(x, -1, 0), grid)
            write_raster(tmp_path / "masks" / f"p{i}.tif", y.astype(np.float32), grid)
    (tmp_path / "manifest.json").write_text(json.dumps({"channels": ["a", "b"], "seed": 3}))
    data = load_dataset(tmp_path)
    assert len(data.x_train) == 8 and len(data.x_test) == 2
    split = random_split(10, 0.2, 3)
    train = np.stack([s for s, k in zip(stack, split) if k == "train"])
    np.testing.assert_allclose(data.normalisation["mean"], train.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 1, 2)), [1, 1], rtol=1e-4)
    (tmp_path / "masks" / "p3.npy").unlink()
    with pytest.raises(InputError, match="p3"):
        load_dataset(tmp_path)


def test_user_manifest_with_explicit_split(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"x{i}.npy", np.full((16, 16, 1), i, np.float32))
        np.save(tmp_path / f"y{i}.npy", np.zeros((16, 16), np.uint8))
    patches = [{"image": f"x{i}.npy", "mask": f"y{i}.npy", "split": s}
               for i, s in enumerate(["train", "test", "train"])]
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"channels": ["c"], "patches": patches, "normalisation": {"mean": [1], "std": [2]}}))
    data = load_dataset(tmp_path)
    np.testing.assert_allclose(data.x_test, 0.0)                     # (1 - 1) / 2
    np.testing.assert_allclose(data.x_train[1], 0.5)                 # (2 - 1) / 2
    with pytest.raises(InputError, match="not a dataset folder"):
        load_dataset(tmp_path / "nowhere")


def _write_event(tmp: Path) -> Path:
    """An event config whose grid is 96 x 96 px; G1 and an inventory polygon on it."""
    from sarflow.config import load_config
    from sarflow.workdir import WorkDir

    sp = Grid(0, 0, 1, 1).spacing
    west, north = 1_500_000 * sp, 470_000 * sp
    bbox = [west, north - 96 * sp, west + 96 * sp, north]
    poly = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [[
                [west + 10 * sp, north - 10 * sp], [west + 30 * sp, north - 10 * sp],
                [west + 30 * sp, north - 40 * sp], [west + 10 * sp, north - 40 * sp],
                [west + 10 * sp, north - 10 * sp]]]}}]}
    (tmp / "inv.geojson").write_text(json.dumps(poly))
    cfg = {"name": "tiny", "event": {"time": "2020-06-01T00:00:00Z"},
           "area": {"bbox": bbox}, "windows": {"pre": ["2020-01-01", "2020-05-31"],
                                              "post": ["2020-06-02", "2020-07-01"]},
           "scenes": "scenes", "inventory": "inv.geojson", "output": "work",
           "training_area": {"bbox": [bbox[0], bbox[1] + 32 * sp, bbox[2], bbox[3]]},
           "model": {"patch_size": 32, "seed": 1}}
    path = tmp / "event.yaml"
    path.write_text(yaml.safe_dump(cfg))
    conf = load_config(path)
    grid = conf.grid()
    assert grid.shape == (96, 96)
    img = np.random.default_rng(0).normal(size=(2, 96, 96)).astype(np.float32)
    write_raster(WorkDir(conf.output).group("G1"), img, grid,
                 descriptions=["VV change (dB)", "VH change (dB)"])
    return path


def test_build_dataset_from_event_and_cli(tmp_path):
    from sarflow.cli import cli
    from sarflow.workdir import WorkDir

    path = _write_event(tmp_path)
    result = CliRunner().invoke(cli, ["-q", "dataset", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    wd = WorkDir(tmp_path / "work")
    labels = read_raster(wd.labels)[0]
    assert labels.sum() == 20 * 30 and labels[10:40, 10:30].all()
    m = json.loads((wd.dataset("G1") / "manifest.json").read_text())
    # the training area is the northern 64 rows: 2 x 3 patches of 32 px
    assert {(p["row"], p["col"]) for p in m["patches"]} == {(r, c) for r in (0, 32)
                                                            for c in (0, 32, 64)}
    assert report["train"] + report["test"] == 6 and m["group"] == "G1"
    missing = CliRunner().invoke(cli, ["dataset", str(path), "--group", "G2"])
    assert missing.exit_code == 2 and "sarflow stack" in missing.output


def test_labels_follow_a_changed_inventory(tmp_path):
    import os

    from sarflow.config import load_config
    from sarflow.dataset import build_dataset
    from sarflow.workdir import WorkDir

    path = _write_event(tmp_path)
    cfg = load_config(path)
    build_dataset(cfg, "G1")
    labels = WorkDir(cfg.output).labels
    assert read_raster(labels)[0].sum() == 600
    inv = json.loads((tmp_path / "inv.geojson").read_text())
    ring = inv["features"][0]["geometry"]["coordinates"][0]
    ring[2][1] = ring[3][1] = ring[0][1] - (ring[0][1] - ring[2][1]) / 3  # 30 -> 10 rows
    (tmp_path / "inv.geojson").write_text(json.dumps(inv))
    later = labels.stat().st_mtime + 5
    os.utime(tmp_path / "inv.geojson", (later, later))
    build_dataset(cfg, "G1")
    assert read_raster(labels)[0].sum() == 200
    with pytest.raises(InputError, match="not found"):
        build_dataset(cfg, "G1", labels_path=tmp_path / "none.tif")
