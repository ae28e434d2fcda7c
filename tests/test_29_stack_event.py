"""stack_event on a small synthetic set of scene outputs with hand-known dB values:
medians, changes, fusion with one-pass fallback, G4-G6 date choice, tags, errors, CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sarflow.config import parse_config
from sarflow.engines import band_names
from sarflow.errors import GridMismatchError, InputError
from sarflow.grid import Grid, raster_info, read_raster, write_raster
from sarflow.stack import fusion_quality_path, selection_path, stack_event
from sarflow.workdir import WorkDir

EVENT = dt.datetime(2020, 6, 15, 12, 0, tzinfo=dt.timezone.utc)
GRID = Grid(col0=1_500_000, row0=400_000, width=40, height=30)
H, W = GRID.shape
L = (slice(5, 13), slice(5, 16))      # landslide: post-event drop
A = (slice(None), slice(30, 35))      # ascending layover (mask 1)
D = (slice(20, 26), slice(None))      # descending shadow (mask 2)
S = (slice(0, 4), slice(20, 40))      # outside the image of one descending post scene
DROP = {"VV": 4.0, "VH": 2.0}         # post-event drop over the landslide (dB)

# (name, pass, hours from event, relative orbit, VV dB); VH = VV - 6
SCENES = [
    ("a_pre1", "ASCENDING", -30 * 24, "46", -10.0),
    ("a_pre2", "ASCENDING", -18 * 24, "46", -12.0),
    ("a_pre3", "ASCENDING", -6 * 24, "46", -11.0),
    ("a_pre4", "ASCENDING", -3 * 24, "99", -13.0),   # nearest, but another orbit
    ("a_post1", "ASCENDING", 6, "46", -14.0),        # event day, after the event
    ("a_post2", "ASCENDING", 12 * 24, "46", -15.0),
    ("a_late", "ASCENDING", 200 * 24, "46", 50.0),   # outside both windows
    ("d_pre1", "DESCENDING", -25 * 24, "18", -9.0),
    ("d_pre2", "DESCENDING", -13 * 24, "18", -8.0),
    ("d_pre3", "DESCENDING", -1 * 24, "18", -7.0),
    ("d_post1", "DESCENDING", 24, "18", -9.0),       # NaN over S
    ("d_post2a", "DESCENDING", 13 * 24, "18", -10.0),   # one date in two frames:
    ("d_post2b", "DESCENDING", 13 * 24 + 0.007, "18", -10.0),  # 25 s later, rows 12-29
    ("d_post3", "DESCENDING", 25 * 24, "18", -11.0),
]


def _write_scene(folder: Path, name: str, pass_: str, hours: float, orbit: str, vv: float,
                 grid: Grid = GRID) -> Path:
    t = EVENT + dt.timedelta(hours=hours)
    db = {"VV": np.full(grid.shape, vv, np.float64), "VH": np.full(grid.shape, vv - 6, np.float64)}
    mask = np.zeros(grid.shape, np.float32)
    if t > EVENT:
        for pol in db:
            db[pol][L] -= DROP[pol]
    if pass_ == "ASCENDING":
        mask[A] = 1
    else:
        mask[D] = 2
    data = np.stack([10 ** (db["VV"] / 10), 10 ** (db["VH"] / 10), mask]).astype(np.float32)
    if name == "d_post1":
        data[:, S[0], S[1]] = np.nan
    if name == "d_post2a":
        data[:, 15:] = np.nan
    if name == "d_post2b":
        data[:, :12] = np.nan
    tags = {"product_id": name, "pass": pass_, "relative_orbit": orbit,
            "acquisition_time": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "orbit_source": "POEORB",
            "engine": "native", "polarisations": "VV,VH"}
    return write_raster(folder / f"{name}.tif", data, grid, band_names(["VV", "VH"]), tags)


def _config(root: Path):
    return parse_config({
        "name": "synthetic_stack", "event": {"time": EVENT.isoformat()},
        "area": {"bbox": list(GRID.bounds)},
        "windows": {"pre": ["2020-05-06", "2020-06-15"], "post": ["2020-06-15", "2020-07-15"]},
        "scenes": [str(root / "scenes")], "output": str(root / "work"),
    }, base=root)


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack_event")
    cfg = _config(root)
    assert cfg.grid() == GRID
    for s in SCENES:
        _write_scene(WorkDir(cfg.output).preprocessed, *s)
    paths = stack_event(cfg, workers=2, block_size=16, progress=False)
    return cfg, paths


def _read(path: Path) -> np.ndarray:
    return read_raster(path)


def test_medians_and_counts(event):
    cfg, paths = event
    assert paths["median_asc_VV_pre"] == WorkDir(cfg.output).median("asc", "VV", "pre")
    m = _read(paths["median_asc_VV_pre"])           # [-10, -12, -11, -13] -> -11.5
    assert m.shape == (3, H, W)
    np.testing.assert_allclose(m[0, 0, 0], -11.5, atol=1e-4)
    assert m[1, 0, 0] == 4
    # spread: |deviations| 1.5, 0.5, 0.5, 1.5 -> MAD 1.0 -> 1.4826 dB
    np.testing.assert_allclose(m[2, 0, 0], 1.4826, atol=1e-4)
    assert np.isnan(m[0][A]).all() and (m[1][A] == 0).all() and np.isnan(m[2][A]).all()
    assert raster_info(paths["median_asc_VV_pre"]).descriptions == ("median_db", "count",
                                                                    "spread_db")
    m = _read(paths["median_desc_VH_post"])         # [-15, -16, -17] -> -16; over S [-16, -17]
    np.testing.assert_allclose(m[0, 15, 5], -16.0, atol=1e-4)
    np.testing.assert_allclose(m[0, 1, 25], -16.5, atol=1e-4)
    np.testing.assert_allclose(m[0, 8, 8], -16.0 - DROP["VH"], atol=1e-4)
    assert m[1, 15, 5] == 3 and m[1, 1, 25] == 2 and m[1, 22, 5] == 0
    info = raster_info(paths["median_desc_VH_post"])
    assert info.descriptions == ("median_db", "count")
    assert json.loads(info.tags["product_ids"]) == ["d_post1", "d_post2a+d_post2b", "d_post3"]
    assert len(json.loads(info.tags["dates"])) == 3      # the two frames are one date
    assert info.tags["units"] == "dB" and "10*log10" in info.tags["db_conversion"]


def test_changes_and_fusion(event):
    cfg, paths = event
    ca = _read(paths["change_asc_VV"])[0]
    cd = _read(paths["change_desc_VV"])[0]
    # asc: -11.5 - (-14.5) = 3; desc: -8 - (-10) = 2; landslide adds the drop
    np.testing.assert_allclose(ca[0, 0], 3.0, atol=1e-4)
    np.testing.assert_allclose(ca[8, 8], 3.0 + DROP["VV"], atol=1e-4)
    np.testing.assert_allclose(cd[15, 0], 2.0, atol=1e-4)
    np.testing.assert_allclose(cd[1, 25], 2.5, atol=1e-4)   # -8 - (-10.5) over S
    g1 = _read(paths["G1"])
    q = _read(fusion_quality_path(WorkDir(cfg.output)))
    assert raster_info(paths["G1"]).descriptions == ("fused_change_VV", "fused_change_VH")
    np.testing.assert_allclose(g1[0, 15, 0], 2.5, atol=1e-4)           # both: (3 + 2) / 2
    np.testing.assert_allclose(g1[0, 8, 8], 2.5 + DROP["VV"], atol=1e-4)
    np.testing.assert_allclose(g1[1, 8, 8], 2.5 + DROP["VH"], atol=1e-4)
    np.testing.assert_allclose(g1[0, 15, 32], 2.0, atol=1e-4)          # asc layover: desc only
    np.testing.assert_allclose(g1[0, 22, 5], 3.0, atol=1e-4)           # desc shadow: asc only
    assert np.isnan(g1[:, 22, 32]).all()                               # both hidden
    assert (q[:, 15, 0] == 3).all() and (q[:, 15, 32] == 2).all()
    assert (q[:, 22, 5] == 1).all() and (q[:, 22, 32] == 0).all()
    np.testing.assert_allclose(_read(paths["G2"])[:, 8, 8], [3 + 4, 3 + 2], atol=1e-4)
    np.testing.assert_allclose(_read(paths["G3"])[:, 8, 8], [2 + 4, 2 + 2], atol=1e-4)
    # the scene outside both windows (+50 dB) went nowhere
    assert np.nanmax(np.abs(g1)) < 10


def test_single_scene_groups_pick_nearest_same_orbit_pair(event):
    cfg, paths = event
    g4, g5, g6 = (_read(paths[g]) for g in ("G4", "G5", "G6"))
    # pre: a_pre3 (-11, orbit 46; a_pre4 is nearer but orbit 99); post: a_post1 (-14, event day)
    np.testing.assert_allclose(g5[:, 0, 0], [-11.0, -14.0], atol=1e-4)
    np.testing.assert_allclose(g6[:, 0, 0], [-17.0, -20.0], atol=1e-4)
    np.testing.assert_allclose(g4[:, 0, 0], [3.0, 3.0], atol=1e-4)
    np.testing.assert_allclose(g4[:, 8, 8], [7.0, 5.0], atol=1e-4)
    assert np.isnan(g4[:, 0, 32]).all()
    tags = raster_info(paths["G4"]).tags
    assert tags["pre_product_id"] == "a_pre3" and tags["post_product_id"] == "a_post1"
    assert tags["pre_date"] == "2020-06-09T12:00:00Z" and tags["post_date"] == "2020-06-15T18:00:00Z"
    assert raster_info(paths["G5"]).descriptions == ("asc_pre_VV", "asc_post_VV")
    g1tags = raster_info(paths["G1"]).tags
    assert len(json.loads(g1tags["asc_pre_dates"])) == 4
    assert json.loads(g1tags["asc_post_dates"]) == ["2020-06-15T18:00:00Z", "2020-06-27T12:00:00Z"]
    assert json.loads(g1tags["desc_post_dates"])[0] == "2020-06-16T12:00:00Z"
    state = json.loads(selection_path(WorkDir(cfg.output)).read_text())
    assert state["selection"]["ignored"] == ["a_late"]


def test_inline_and_dask_give_the_same_pixels_and_rerun_skips(event, tmp_path):
    cfg, paths = event
    before = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    again = stack_event(cfg, workers=2, block_size=16, progress=False)
    assert {k: p.stat().st_mtime_ns for k, p in again.items()} == before   # up to date: kept
    other = cfg.model_copy(update={"output": tmp_path / "work"})
    pre = WorkDir(other.output).preprocessed
    pre.mkdir(parents=True)
    for f in WorkDir(cfg.output).preprocessed.glob("*.tif"):
        os.link(f, pre / f.name)
    inline = stack_event(other, workers=1, block_size=64, progress=True)
    for name in ("G1", "G4", "median_desc_VV_post", "fusion_quality"):
        np.testing.assert_array_equal(_read(inline[name]), _read(paths[name]))


def test_missing_pass_leaves_its_outputs_out(tmp_path):
    """Issue 16: a pass without post-event scenes stacks the other pass alone and lists
    what it left out; with no complete pass at all the error says what to add."""
    cfg = _config(tmp_path)
    for s in SCENES:
        if not s[0].startswith("d_post"):
            _write_scene(WorkDir(cfg.output).preprocessed, *s)
    paths = stack_event(cfg, workers=1, progress=False)
    assert "G3" not in paths and "change_desc_VV" not in paths and "median_desc_VV_post" not in paths
    assert "median_desc_VV_pre" in paths and "G2" in paths
    np.testing.assert_array_equal(read_raster(paths["G1"]), read_raster(paths["G2"]))
    left = json.loads(selection_path(WorkDir(cfg.output)).read_text())["selection"]["left_out"]
    assert left["G3"] == "no descending post-event scenes"
    for s in SCENES:
        if s[0].startswith("a_post"):
            (WorkDir(cfg.output).preprocessed / f"{s[0]}.tif").unlink()
    with pytest.raises(InputError, match="descending post-event.*sarflow preprocess"):
        stack_event(cfg, workers=1, progress=False)


def test_no_preprocessed_scenes_and_wrong_grid(tmp_path):
    cfg = _config(tmp_path)
    with pytest.raises(InputError, match="run `sarflow preprocess"):
        stack_event(cfg, workers=1, progress=False)
    pre = WorkDir(cfg.output).preprocessed
    _write_scene(pre, *SCENES[0])
    shifted = Grid(GRID.col0 + 3, GRID.row0, GRID.width, GRID.height)
    _write_scene(pre, *SCENES[1], grid=shifted)
    with pytest.raises(GridMismatchError, match="a_pre2.tif.*reprocess"):
        stack_event(cfg, workers=1, progress=False)


def test_cli_stack(event, tmp_path):
    from click.testing import CliRunner

    from sarflow.cli import cli

    cfg, paths = event
    yaml_path = tmp_path / "event.yaml"
    import yaml

    yaml_path.write_text(yaml.safe_dump({
        "name": "synthetic_stack", "event": {"time": EVENT.isoformat()},
        "area": {"bbox": list(GRID.bounds)},
        "windows": {"pre": ["2020-05-06", "2020-06-15"], "post": ["2020-06-15", "2020-07-15"]},
        "scenes": [str(tmp_path)], "output": str(cfg.output)}))
    result = CliRunner().invoke(cli, ["stack", str(yaml_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "fused_change_VV" in result.output and "G6" in result.output
    assert "asc pre 4, asc post 2, desc pre 3, desc post 3" in result.output
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml_path.read_text().replace(str(cfg.output), str(tmp_path / "nowork")))
    result = CliRunner().invoke(cli, ["stack", str(empty)])
    assert result.exit_code == 2
    assert "sarflow preprocess" in result.output and "Traceback" not in result.output


def test_existing_dask_cluster_by_address(event, tmp_path):
    from distributed import LocalCluster

    cfg, paths = event
    other = cfg.model_copy(update={"output": tmp_path / "work"})
    pre = WorkDir(other.output).preprocessed
    pre.mkdir(parents=True)
    for f in WorkDir(cfg.output).preprocessed.glob("*.tif"):
        os.link(f, pre / f.name)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        out = stack_event(other, scheduler=cluster.scheduler_address, block_size=16, progress=False)
    np.testing.assert_array_equal(_read(out["G1"]), _read(paths["G1"]))
