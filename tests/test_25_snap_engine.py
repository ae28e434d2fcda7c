"""The SNAP engine's side of the gpt boundary, driven by a stand-in ``gpt`` script.

The stand-in is a small Python program written by these tests: it records its argument
list, then behaves like gpt in one chosen way (writes a SNAP-like GeoTIFF, hangs with a
child process, fails with SNAP's "Unknown element" message, writes nothing, ...).  These
tests prove what sarflow does around gpt (command line, -P values, timeout, error mapping,
conversion onto the grid, validation, provenance); they do NOT exercise SNAP itself.  The
test marked ``snap`` at the end runs the real gpt where SNAP is installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sarflow import engines
from sarflow.config import Processing, SnapSettings
from sarflow.engines import REQUIRED_TAGS, SceneJob, WorkerResources
from sarflow.products import scene_tags
from sarflow.engines import snap
from sarflow.errors import ConfigError, DependencyError, ProcessingError
from sarflow.grid import SPACING, Grid, Window, raster_info, read_raster

from snap_standin import install_standin

SCENE_NAME = "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"
GRID = Grid.from_bounds(33.0, -18.0, 33.01, -17.99)  # inside the scene's footprint
MARGIN = 0.002

def expected_vv(grid: Grid) -> np.ndarray:
    """What the stand-in's VV is at the grid's pixel centres (an independent formula)."""
    lon, lat = grid.coordinates()
    K = np.round(lon / SPACING - 0.5).astype(np.int64)
    J = np.round(lat / SPACING - 0.5).astype(np.int64)
    return (0.01 + 1e-4 * ((7 * K + 3 * J) % 1000)).astype(np.float32), K, J


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch) -> None:
    """The user's real ~/.snap is never read or seeded from."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture()
def gpt(tmp_path: Path):
    """A stand-in gpt in its own folder; ``set(mode, **kw)`` chooses its behaviour."""
    return install_standin(tmp_path / "snap" / "bin")


def make_job(fixtures_dir: Path, tmp_path: Path, gpt_path: Path, **options) -> SceneJob:
    opts = {"gpt": str(gpt_path), "memory_gb": 2, "tile_cache_gb": 1, "threads": 2,
            "timeout_s": 60, "region_margin_deg": MARGIN, "edge_erosion_px": 0,
            "userdir": str(tmp_path / "snap-users")}
    opts.update(options)
    return SceneJob(scene=fixtures_dir / "s1" / SCENE_NAME,
                    output=tmp_path / "work" / "preprocessed" / f"{SCENE_NAME[:-4]}.tif",
                    grid=GRID, polarisations=["VV", "VH"], settings=SnapSettings(**opts),
                    tags=scene_tags(_record(), stage_provenance(), ["VV", "VH"]))


def _record():
    from sarflow.catalog import read_record

    from conftest import FIXTURES

    return read_record(FIXTURES / "s1" / SCENE_NAME)


def stage_provenance():
    """The provenance the preprocess stage would give the fixture scene's SNAP output."""
    from sarflow.products import scene_provenance

    return scene_provenance(engine="snap", engine_version="SNAP test", engine_settings={},
                            scene=_record().path, grid=GRID, polarisations=["VV", "VH"],
                            dem=None, orbits=None)


# ------------------------------------------------------------------------------------
# finding gpt, settings
# ------------------------------------------------------------------------------------

def test_find_gpt_order(gpt, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SNAP_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert snap.find_gpt() is None
    assert snap.ENGINE.available() is False
    monkeypatch.setenv("SNAP_HOME", str(gpt.path.parent.parent))
    assert snap.find_gpt() == gpt.path and snap.ENGINE.available()
    monkeypatch.delenv("SNAP_HOME")
    monkeypatch.setenv("PATH", str(gpt.path.parent))
    assert snap.find_gpt() == gpt.path
    assert snap.find_gpt(gpt.path.parent.parent) == gpt.path  # a SNAP folder is enough
    with pytest.raises(snap.SnapNotFoundError, match="not SNAP's gpt"):
        snap.find_gpt(tmp_path / "nowhere" / "gpt")


def test_gpt_from_config_is_enough(gpt, tmp_path: Path, monkeypatch) -> None:
    """processing.snap.gpt alone (no PATH, no SNAP_HOME) makes SNAP available."""
    monkeypatch.delenv("SNAP_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert engines.get("auto").name == "native"
    processing = Processing(snap=SnapSettings(gpt=gpt.path))
    assert engines.get("auto", processing).name == "snap"
    assert engines.get("snap", processing).name == "snap"


def test_get_snap_without_gpt_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SNAP_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DependencyError) as err:
        engines.get("snap")
    text = err.value.one_line()
    assert "\n" not in str(err.value)
    assert "install ESA SNAP" in text and "--engine native" in text


def test_auto_picks_snap_only_when_gpt_exists(gpt, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SNAP_HOME", raising=False)
    monkeypatch.setenv("PATH", str(gpt.path.parent))
    assert engines.get("auto") is snap.ENGINE and engines.get("snap") is snap.ENGINE
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert engines.get("auto").name == "native"


def test_settings_from_the_worker_and_config(gpt) -> None:
    """Heap 70 % of the worker's memory, cache 60 % of the heap, -q its cores; the config
    overrides each; several workers never each get the whole machine."""
    whole = snap.GptSettings.from_settings(SnapSettings(), WorkerResources(16.0, 8), gpt=gpt.path)
    assert (whole.memory_gb, whole.tile_cache_gb, whole.threads, whole.timeout_s) == \
        (11.2, 6.7, 8, 7200.0)
    assert whole.args() == ["-J-Xmx11468M", "-q", "8", "-c", "6860M", "-e"]
    s = snap.GptSettings.from_settings(SnapSettings(memory_gb=6, threads=3, timeout_s=30),
                                       WorkerResources(64.0, 16), gpt=gpt.path)
    assert s.args() == ["-J-Xmx6144M", "-q", "3", "-c", "3686M", "-e"] and s.timeout_s == 30
    small = snap.GptSettings.from_settings(SnapSettings(), WorkerResources(1.0, 1), gpt=gpt.path)
    assert small.memory_gb == 1.0  # never below 1 GB
    # the review's case: 4 workers on a 64 GB, 16-core machine get 12.8 GB and 4 cores each
    quarter = snap.GptSettings.from_settings(SnapSettings(), WorkerResources(12.8, 4), gpt=gpt.path)
    assert quarter.args() == ["-J-Xmx9216M", "-q", "4", "-c", "5529M", "-e"]
    with pytest.raises(ConfigError, match="tile_cache_gb"):
        snap.GptSettings.from_settings(SnapSettings(memory_gb=4, tile_cache_gb=4),
                                       WorkerResources(8.0, 2), gpt=gpt.path)


# ------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------

def test_render_graph_for_scene_and_grid(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """The rendered graph carries the grid's region, lattice and the external DEM."""
    from sarflow.pyrosar_compat import is_consistent, workflow

    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    job = make_job(fixtures_dir, tmp_path, gpt.path, orbit_type="restituted")
    job.dem = dem
    job.polarisations = ["VV"]
    xml = tmp_path / "graph.xml"
    snap.render_graph(job, xml)
    flow = workflow(xml)
    assert is_consistent(flow) and [n.operator for n in flow][5] == "Subset"
    w, s, e, n = GRID.bounds
    region = flow["Subset"].parameters["geoRegion"]
    nums = [float(v) for v in region[len("POLYGON(("):-2].replace(",", " ").split()]
    assert min(nums[0::2]) == pytest.approx(w - MARGIN, abs=1e-12)
    assert max(nums[0::2]) == pytest.approx(e + MARGIN, abs=1e-12)
    assert min(nums[1::2]) == pytest.approx(s - MARGIN, abs=1e-12)
    assert max(nums[1::2]) == pytest.approx(n + MARGIN, abs=1e-12)
    tc = flow["Terrain-Correction"].parameters
    assert float(tc["pixelSpacingInDegree"]) == SPACING
    assert float(tc["pixelSpacingInMeter"]) == pytest.approx(10.0, abs=1e-9)
    assert float(tc["standardGridOriginX"]) == -SPACING / 2
    assert float(tc["standardGridOriginY"]) == SPACING / 2
    assert tc["demName"] == "External DEM" and tc["externalDEMFile"] == str(dem.resolve())
    assert float(tc["externalDEMNoDataValue"]) == -32768.0  # the Rome DEM's nodata
    assert tc["externalDEMApplyEGM"] == "true"
    for node in ("Remove-GRD-Border-Noise", "ThermalNoiseRemoval", "Calibration"):
        assert flow[node].parameters["selectedPolarisations"] == "VV"
    assert flow["Apply-Orbit-File"].parameters["orbitType"] == "Sentinel Restituted (Auto Download)"
    assert flow["Read"].parameters["file"] == "${input}"
    assert flow["Write"].parameters["file"] == "${output}"


def test_render_default_dem_and_bad_orbit_type(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    values = snap.graph_values(job)
    assert values["Terrain-Correction"]["demName"] == "SRTM 1Sec HGT"
    assert "externalDEMFile" not in values["Terrain-Correction"]
    assert values["Apply-Orbit-File"] == {"orbitType": "Sentinel Precise (Auto Download)",
                                          "continueOnFail": "false"}
    from sarflow.config import parse_config

    with pytest.raises(ConfigError, match="processing.snap.orbit_type = 'fast'"):
        parse_config({"name": "x", "event": {"time": "2021-01-10T00:00:00Z"},
                      "area": {"bbox": [12.4, 41.9, 12.5, 42.0]},
                      "windows": {"pre": ["2021-01-01", "2021-01-09"],
                                  "post": ["2021-01-10", "2021-01-20"]},
                      "scenes": ["s"], "processing": {"snap": {"orbit_type": "fast"}}})


# ------------------------------------------------------------------------------------
# running the stand-in
# ------------------------------------------------------------------------------------

def test_successful_run_converted_validated_with_provenance(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """Exact gpt argument list and -P values; SNAP's bands reordered, windowed exactly onto
    the grid (values match the stand-in's formula pixel for pixel), 0 -> NaN, tags, graph."""
    gpt.set("ok", nodata_deg=MARGIN + 10 * SPACING)  # SNAP nodata (0) in the first 10 columns
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    result = snap.ENGINE.process(job)

    out = job.output
    scratch = out.parent / f".{out.stem}.snap-tmp"
    (call,) = gpt.calls()
    userdir = tmp_path / "snap-users" / "worker-0"
    assert call == [str(gpt.path), f"-J-Dsnap.userdir={userdir}",
                    f"-J-Djava.io.tmpdir={userdir / 'tmp'}",
                    "-J-Xmx2048M", "-q", "2", "-c", "1024M", "-e",
                    str(out.with_suffix(".xml")), f"-Pinput={job.scene}",
                    f"-Poutput={scratch / (out.stem + '_snap.tif')}"]
    assert not scratch.exists()
    assert result.output == out and result.engine == "snap" and result.orbit_source == "POEORB"
    assert result.notes == []

    info = raster_info(out)
    assert info.grid == GRID
    assert list(info.descriptions) == ["sigma0_VV", "sigma0_VH", "layover_shadow"]
    for tag in REQUIRED_TAGS:
        assert tag in info.tags
    assert info.tags["pass"] == "DESCENDING" and info.tags["relative_orbit"] == "79"
    assert info.tags["acquisition_time"] == "2021-01-19T03:16:53.799379Z"  # one format, both engines
    assert info.tags["orbit_source"] == "POEORB" and info.tags["engine"] == "snap"
    assert info.tags["product_id"] == SCENE_NAME[:-4]
    assert info.tags["polarisations"] == "VV,VH"
    assert json.loads(info.tags["gpt_commands"]) == [subprocess.list2cmdline(call)]
    assert info.tags["graphs"] == out.with_suffix(".xml").name

    data = read_raster(out)
    vv, K, J = expected_vv(GRID)
    assert np.isnan(data[:, :, :10]).all()
    np.testing.assert_array_equal(data[0, :, 10:], vv[:, 10:])
    np.testing.assert_allclose(data[1, :, 10:], vv[:, 10:] / 4, rtol=1e-7)
    mask = np.where(K % 50 < 5, 1, 0) + np.where(J % 40 < 3, 2, 0)
    np.testing.assert_array_equal(data[2, :, 10:], mask[:, 10:])
    assert set(np.unique(data[2, :, 10:])) == {0.0, 1.0, 2.0, 3.0}

    graph = out.with_suffix(".xml")
    assert "Terrain-Correction" in graph.read_text() and "${input}" in graph.read_text()
    log_text = job.log_path.read_text()
    assert "Processing completed" in log_text and str(gpt.path) in log_text


def test_off_lattice_output_is_resampled_with_a_note(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """If SNAP's pixels sit half a pixel off the lattice, the engine interpolates (bilinear:
    the mean of the four SNAP pixels around each grid pixel centre) and says so."""
    gpt.set("ok", ignore_origin=True)
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    result = snap.ENGINE.process(job)
    assert len(result.notes) == 1 and "not on the lattice" in result.notes[0]
    lon, lat = GRID.coordinates()
    k = np.floor(lon / SPACING).astype(np.int64)  # SNAP centres at k and k + 1 around ours
    j = np.floor(lat / SPACING).astype(np.int64)
    f = lambda K, J: 0.01 + 1e-4 * ((7 * K + 3 * J) % 1000)  # noqa: E731
    corners = np.stack([f(k, j), f(k + 1, j), f(k, j + 1), f(k + 1, j + 1)])
    smooth = corners.max(axis=0) - corners.min(axis=0) < 0.01  # no wrap of the modulo
    assert smooth.mean() > 0.9
    vv = read_raster(job.output, bands=[1])[0]
    np.testing.assert_allclose(vv[smooth], corners.mean(axis=0)[smooth], rtol=1e-5)


def test_split_stages_chain_products(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """split: true runs the three stage graphs, each on the previous one's product."""
    job = make_job(fixtures_dir, tmp_path, gpt.path, split=True)
    result = snap.ENGINE.process(job)
    calls = gpt.calls()
    out = job.output
    scratch = out.parent / f".{out.stem}.snap-tmp"
    stage1, stage2 = scratch / f"{out.stem}_stage1.dim", scratch / f"{out.stem}_stage2.dim"
    assert [c[9] for c in calls] == [str(out.with_name(f"{out.stem}.stage{i}.xml")) for i in (1, 2, 3)]
    assert [c[10:] for c in calls] == [
        [f"-Pinput={job.scene}", f"-Poutput={stage1}"],
        [f"-Pinput={stage1}", f"-Poutput={stage2}"],
        [f"-Pinput={stage2}", f"-Poutput={scratch / (out.stem + '_snap.tif')}"]]
    assert json.loads(gpt.read("ops.json")) == [
        "Apply-Orbit-File", "Remove-GRD-Border-Noise", "ThermalNoiseRemoval", "Calibration",
        "Subset", "Terrain-Correction"]
    vv, _, _ = expected_vv(GRID)
    np.testing.assert_array_equal(read_raster(out, bands=[1])[0], vv)
    assert result.notes == [] and not scratch.exists()
    assert raster_info(out).tags["graphs"] == ",".join(f"{out.stem}.stage{i}.xml" for i in (1, 2, 3))


def test_timeout_kills_process_tree(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """A hanging gpt (with a child process, like gpt's JVM) is killed, children included."""
    import psutil

    gpt.set("hang")
    job = make_job(fixtures_dir, tmp_path, gpt.path, timeout_s=2)
    began = time.monotonic()
    with pytest.raises(snap.SnapTimeoutError, match="timeout_s = 2 s"):
        snap.ENGINE.process(job)
    assert time.monotonic() - began < 20
    for name in ("gpt.pid", "child.pid"):
        pid = int(gpt.read(name))
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "10%" in job.log_path.read_text()
    assert not job.output.exists()


def test_unknown_element_is_typed(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    gpt.set("fail", stderr="Error: [NodeId: ThermalNoiseRemoval] Operator 'ThermalNoiseRemoval': "
                           "Unknown element 'clipNegativeValues'")
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    with pytest.raises(snap.SnapParameterError) as err:
        snap.ENGINE.process(job)
    text = err.value.one_line()
    assert isinstance(err.value, ProcessingError)
    assert "'clipNegativeValues'" in text and "ThermalNoiseRemoval" in text
    assert "update SNAP" in text and str(job.log_path) in text
    assert not job.output.exists()


def test_run_that_writes_nothing_fails(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    gpt.set("nothing")
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    with pytest.raises(snap.SnapNoOutputError, match="wrote no product"):
        snap.ENGINE.process(job)
    assert not job.output.exists()


def test_output_outside_grid_is_rejected(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """A run whose product is all SNAP nodata over the grid does not count as done."""
    gpt.set("ok", nodata_deg=1.0)
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    with pytest.raises(ProcessingError, match="not usable.*nodata"):
        snap.ENGINE.process(job)
    assert not job.output.exists()


def test_registered_through_preprocess(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """The preprocess stage's per-scene task records the SNAP run as done, then existing."""
    from sarflow.preprocess import SceneTask, run_scene

    job = make_job(fixtures_dir, tmp_path, gpt.path)
    task = SceneTask(job=job, engine=snap.ENGINE, retries=0, product_id=SCENE_NAME[:-4],
                     provenance=stage_provenance())
    first = run_scene(task)
    assert first.outcome == "done" and first.engine == "snap" and first.orbit_source == "POEORB"
    assert run_scene(task).outcome == "existing"
    assert len(gpt.calls()) == 1


@pytest.mark.parametrize("text, rc, kind, fix", [
    ("Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space", 1,
     snap.SnapMemoryError, "run fewer --workers"),
    ("", -9, snap.SnapMemoryError, "run fewer --workers"),
    ("Error occurred during initialization of VM\nCould not reserve enough space for object heap",
     1, snap.SnapMemoryError, "lower processing.snap.memory_gb"),
    ("SEVERE: eu.esa.sar.orbits: No valid orbit file found for 19-JAN-2021 03:16:53", 1,
     snap.SnapOrbitError, "orbit_type: restituted"),
    ("org.esa.snap.core.gpf.OperatorException: Unable to download SRTM 1Sec HGT tile N41E012", 1,
     snap.SnapDemError, "dem:"),
    ("Error: [NodeId: Subset] No intersection with source product boundary", 1,
     snap.SceneOutsideAreaError, "does not overlap"),
    ("INFO: downloading SRTM 1Sec HGT tile N41E012\nError: something else broke\nmore", 3,
     snap.SnapError, "something else broke"),
    ("Killed", 1, snap.SnapMemoryError, "run fewer --workers"),
])
def test_failure_classification(gpt, tmp_path: Path, text, rc, kind, fix) -> None:
    settings = snap.GptSettings.from_settings(SnapSettings(memory_gb=4), WorkerResources(8.0, 2),
                                              gpt=gpt.path)
    err = snap.classify_failure(snap.GptRun(rc, 1.0, text), settings, snap.FULL_GRAPH,
                                tmp_path / "x.log", machine_gb=8)
    assert type(err) is kind and fix in err.one_line()


def test_tiff_tag_reader_on_plain_gdal_tiff(tmp_path: Path) -> None:
    """A GeoTIFF without SNAP's tag: the reader says None and band descriptions are used."""
    from sarflow.grid import write_raster

    path = tmp_path / "plain.tif"
    write_raster(path, np.ones((2, 4, 4), np.float32), GRID.subgrid(Window(0, 0, 4, 4)),
                 descriptions=["Sigma0_VV", "layoverShadowMask"])
    assert snap.tiff_tag_text(path) is None
    assert snap.snap_band_names(path) == ["Sigma0_VV", "layoverShadowMask"]


# ------------------------------------------------------------------------------------
# SNAP's failure modes (each as the stand-in reproduces it from SNAP's sources)
# ------------------------------------------------------------------------------------

def _no_partial_output(job: SceneJob) -> None:
    out = job.output
    assert not out.exists()
    assert not (out.parent / f".{out.stem}.snap-tmp").exists()
    assert not list(out.parent.glob(f".{out.stem}.tmp-*"))


def _pids_gone(gpt) -> None:
    import psutil

    for name in ("gpt.pid", "child.pid"):
        pid = int(gpt.read(name))
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _attempts(job: SceneJob, retries: int = 2):
    from sarflow.preprocess import SceneTask, run_scene

    task = SceneTask(job=job, engine=snap.ENGINE, retries=retries, product_id=SCENE_NAME[:-4],
                     provenance=stage_provenance())
    return run_scene(task)


def test_resorb_fallback_is_read_from_the_product(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """No POEORB yet: SNAP warns "Using Sentinel Restituted ... instead", exits 0 and writes
    ``Sentinel Precise <RESORB file>`` into orbit_state_vector_file; the tag says RESORB."""
    gpt.set("ok", orbit="resorb_fallback")
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    result = snap.ENGINE.process(job)
    assert "Using Sentinel Restituted" in job.log_path.read_text()
    assert result.orbit_source == "RESORB"
    tags = raster_info(job.output).tags
    assert tags["orbit_source"] == "RESORB"
    assert tags["orbit_file"] == ("S1A_OPER_AUX_RESORB_OPOD_20210119T061544_"
                                  "V20210119T020604_20210119T052334.EOF.zip")
    assert any("POEORB was asked for but SNAP applied RESORB" in n for n in result.notes)
    # the preprocess stage records it too
    job.output.unlink()
    assert _attempts(job).orbit_source == "RESORB"


def test_orbit_sources_poeorb_and_annotation(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    assert snap.ENGINE.process(job).orbit_source == "POEORB"
    assert "_POEORB_" in raster_info(job.output).tags["orbit_file"]
    gpt.set("ok", orbit="none_continue")
    job = make_job(fixtures_dir, tmp_path / "b", gpt.path, orbit_continue_on_fail=True)
    result = snap.ENGINE.process(job)
    assert result.orbit_source == "annotation"
    assert raster_info(job.output).tags.get("orbit_file", "") == ""


def test_orbit_files_from_processing_orbits_are_used(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """An EOF file in processing.orbits is placed where Apply-Orbit-File looks (the
    worker's auxdata/Orbits/Sentinel-1/POEORB/S1A/2021/01/) and is the one applied."""
    name = "S1A_OPER_AUX_POEORB_OPOD_20210208T122000_V20210118T225942_20210120T005942.EOF"
    orbits = tmp_path / "orbits"
    orbits.mkdir()
    (orbits / name).write_text("<Earth_Explorer_File/>")
    (orbits / name.replace("20210118T225942_20210120T005942", "20210101T000000_20210102T000000")
     ).write_text("x")  # does not cover the scene: not placed
    gpt.set("ok", orbit="offline")
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    job.orbit_dir = orbits
    result = snap.ENGINE.process(job)
    placed = tmp_path / "snap-users" / "worker-0" / "auxdata" / "Orbits" / "Sentinel-1" / "POEORB" / "S1A" / "2021" / "01"
    assert [p.name for p in placed.iterdir()] == [name]
    assert result.orbit_source == "POEORB" and raster_info(job.output).tags["orbit_file"] == name


def test_truncated_egm96_is_removed_before_gpt_runs(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """A truncated ww15mgh_b.zip (left by a killed download) would fail every run: it is
    found, removed and named before gpt starts; SNAP then downloads a complete one."""
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    egm = tmp_path / "snap-users" / "worker-0" / "auxdata" / "dem" / "egm96" / "ww15mgh_b.zip"
    egm.parent.mkdir(parents=True)
    egm.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    result = snap.ENGINE.process(job)
    assert any(n.startswith(f"removed {egm}") and "not a complete zip" in n for n in result.notes)
    import zipfile

    assert zipfile.ZipFile(egm).testzip() is None  # the stand-in's "download"


def test_truncated_egm96_as_snap_reports_it(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """If SNAP itself meets the truncated zip (ZipException), the error is a download error
    naming the geoid file: transient (retried), nothing left behind."""
    gpt.set("fail", stderr="SEVERE: eu.esa.sar.commons.EarthGravitationalModel96: "
            "java.util.zip.ZipException: zip END header not found (/x/auxdata/dem/egm96/ww15mgh_b.zip)")
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    with pytest.raises(snap.SnapDownloadError, match="EGM96") as err:
        snap.ENGINE.process(job)
    assert err.value.transient and "ww15mgh_b.zip" in err.value.one_line()
    _no_partial_output(job)


def test_download_cut_short_is_removed_and_retried(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """gpt writes EGM96 straight to its final name and stalls; the watchdog kills it, the
    truncated zip is removed (not left for the retry), the error is transient."""
    gpt.set("ok", egm96="cut")
    job = make_job(fixtures_dir, tmp_path, gpt.path, stall_timeout_s=1.5)
    began = time.monotonic()
    with pytest.raises(snap.SnapDownloadError, match="removed") as err:
        snap.ENGINE.process(job)
    assert time.monotonic() - began < 30 and err.value.transient
    egm = tmp_path / "snap-users" / "worker-0" / "auxdata" / "dem" / "egm96" / "ww15mgh_b.zip"
    assert str(egm) in err.value.one_line() and not egm.exists()
    _pids_gone(gpt)
    _no_partial_output(job)
    gpt.set("ok")  # the network is back: the retry downloads it whole
    assert snap.ENGINE.process(job).orbit_source == "POEORB"


@pytest.mark.parametrize("split", [False, True])
def test_empty_subset_is_scene_outside_area(fixtures_dir: Path, tmp_path: Path, gpt, split) -> None:
    """SubsetOp: a region off the scene gives a WARNING, a 0 x 0 product and exit 0; the
    engine says so at once, with the scene's footprint, and does not retry."""
    gpt.set("ok", empty_subset=True)
    job = make_job(fixtures_dir, tmp_path, gpt.path, split=split)
    with pytest.raises(snap.SceneOutsideAreaError) as err:
        snap.ENGINE.process(job)
    text = err.value.one_line()
    assert "POLYGON((34.6132 -19.2035, 32.2231 -18.6435" in text  # the scene's footprint
    assert "event grid 33.0000,-18.0001,33.0100,-17.9899" in text and "remove the scene" in text
    assert not err.value.transient
    assert len(gpt.calls()) == (2 if split else 1)  # split: stopped after the Subset stage
    _no_partial_output(job)
    outcome = _attempts(job)
    assert outcome.outcome == "failed" and outcome.attempts == 1


def test_hang_after_processing_completed_accepts_a_complete_output(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    gpt.set("ok", hang_after_completion=True)
    job = make_job(fixtures_dir, tmp_path, gpt.path, finish_grace_s=1)
    began = time.monotonic()
    result = snap.ENGINE.process(job)
    assert time.monotonic() - began < 30
    assert any("hung after 'Processing completed'" in n for n in result.notes)
    engines.validate_output(job.output, GRID, ["VV", "VH"])
    _pids_gone(gpt)


def test_stall_watchdog(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """No log line and no output growth for stall_timeout_s: killed long before timeout_s."""
    gpt.set("stall")
    job = make_job(fixtures_dir, tmp_path, gpt.path, stall_timeout_s=1.5, timeout_s=300)
    began = time.monotonic()
    with pytest.raises(snap.SnapStallError, match="stall_timeout_s = 1.5 s") as err:
        snap.ENGINE.process(job)
    assert time.monotonic() - began < 30 and err.value.transient
    _pids_gone(gpt)
    _no_partial_output(job)


def test_out_of_memory_in_a_live_jvm_is_killed(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """A JAI thread dies of OutOfMemoryError, gpt lives on: killed at once (not at the
    timeout), a memory error whose fix lowers parallelism; the partial product removed."""
    gpt.set("oom_alive")
    job = make_job(fixtures_dir, tmp_path, gpt.path, timeout_s=300)
    began = time.monotonic()
    with pytest.raises(snap.SnapMemoryError) as err:
        snap.ENGINE.process(job)
    assert time.monotonic() - began < 30
    text = err.value.one_line()
    assert "OutOfMemoryError and was killed" in text and "run fewer --workers" in text
    assert "raise" not in text and err.value.transient
    _pids_gone(gpt)
    _no_partial_output(job)


def test_cannot_construct_databuffer_is_a_memory_error(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    gpt.set("fail", stderr="Error: Cannot construct DataBuffer.")
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    with pytest.raises(snap.SnapMemoryError, match="run fewer --workers") as err:
        snap.ENGINE.process(job)
    assert err.value.transient and "raise" not in err.value.one_line()
    _no_partial_output(job)


@pytest.mark.parametrize("mode, kw, attempts", [
    ("fail", {"stderr": "Error: Cannot construct DataBuffer."}, 3),          # memory
    ("stall", {}, 3),                                                          # timeout
    ("ok", {"egm96": "offline"}, 3),                                           # download
    ("fail", {"stderr": "Error: [NodeId: Calibration] Unknown element 'outputSigmaBandX'"}, 1),
    ("ok", {"empty_subset": True}, 1),                                         # outside area
    ("nothing", {}, 1),                                                        # wrote nothing
])
def test_retry_policy_retries_only_transient_failures(fixtures_dir: Path, tmp_path: Path, gpt,
                                                      mode, kw, attempts) -> None:
    gpt.set(mode, **kw)
    job = make_job(fixtures_dir, tmp_path, gpt.path, stall_timeout_s=1.0)
    outcome = _attempts(job, retries=2)
    assert outcome.outcome == "failed" and outcome.attempts == attempts
    assert len(gpt.calls()) == attempts
    _no_partial_output(job)


# ------------------------------------------------------------------------------------
# one floor rule, edge erosion, subset margin, DEM datum
# ------------------------------------------------------------------------------------

def test_floor_rule_is_the_same_for_both_engines(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """Pixels that thermal noise removal makes non-positive: SNAP clamps DN^2 to 1e-5 then
    calibrates (about -104 dB with a LUT of 400); the native engine computes a negative
    sigma0.  Both come out as the floor (1e-5, -50 dB)."""
    from sarflow.engines.native import calibrate

    lut = 400.0
    gpt.set("ok", nodata_deg=MARGIN + 10 * SPACING, clamped_cols=5, lut=lut)
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    snap.ENGINE.process(job)
    vv, vh = read_raster(job.output, bands=[1, 2])
    power = np.array([[-30.0, -1e-3, 0.0, 1e-6, 10.0]], np.float32)  # DN^2 - noise
    native = calibrate(power, np.full_like(power, lut))
    np.testing.assert_array_equal(native[0, :4], np.float32(1e-5))
    np.testing.assert_array_equal(vv[:, 10:14], native[0, 0])
    np.testing.assert_array_equal(vh[:, 10:14], native[0, 0])
    assert np.isclose(native[0, 4], 10.0 / lut ** 2) and (vv[:, 16:] > 1e-5).all()
    gpt.set("ok", nodata_deg=MARGIN + 10 * SPACING, clamped_cols=5, lut=lut)
    job_nan = make_job(fixtures_dir, tmp_path / "nan", gpt.path, noise_clip="nan")
    snap.ENGINE.process(job_nan)
    assert np.isnan(read_raster(job_nan.output, bands=[1])[0][:, 10:15]).all()
    assert np.isnan(calibrate(power, np.full_like(power, lut), clip="nan")[0, :4]).all()


def test_edge_erosion_trims_the_scene_border(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    gpt.set("ok", nodata_deg=MARGIN + 10 * SPACING)
    job = make_job(fixtures_dir, tmp_path, gpt.path, edge_erosion_px=4)
    snap.ENGINE.process(job)
    data = read_raster(job.output)
    assert np.isnan(data[:, :, :14]).all()                 # 10 nodata + 4 eroded columns
    vv, _, _ = expected_vv(GRID)
    np.testing.assert_array_equal(data[0, :, 14:], vv[:, 14:])  # the grid edges are kept
    assert raster_info(job.output).tags["orbit_source"] == "POEORB"
    assert not list(job.output.parent.glob(".*tmp-*"))


def test_erode_mask_hand_computed() -> None:
    from sarflow.engines.footprint import erode_mask

    inside = np.zeros((9, 12), bool)
    inside[1:8, 2:11] = True
    inside[4, 6] = False  # a hole inside the scene erodes around it too
    got = erode_mask(inside, 1)
    want = np.zeros_like(inside)
    want[2:7, 3:10] = True
    want[3:6, 5:8] = False
    np.testing.assert_array_equal(got, want)
    edge = np.ones((5, 5), bool)  # the grid's own edge is not the scene's border
    assert erode_mask(edge, 2).all()


def test_subset_margin_from_latitude_and_relief(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    import math

    g = Grid.from_bounds(141.8, 42.6, 142.1, 42.9)
    mx, my = snap.subset_margin(g, 2000.0)
    metres = 2000.0 / math.tan(math.radians(29.0)) + 1000.0  # 4608 m
    assert my == pytest.approx(metres / 111320.0)
    assert mx == pytest.approx(metres / 111320.0 / math.cos(math.radians(42.9)))
    # from the Rome DEM's highest point when no margin is configured
    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    job = make_job(fixtures_dir, tmp_path, gpt.path, region_margin_deg=None)
    job.grid = Grid.from_bounds(12.47, 41.97, 12.53, 42.03)
    job.dem = dem
    values = snap.graph_values(job)
    w, s, e, n = snap._region_bounds(values["Subset"]["geoRegion"])
    top = snap.dem_max_height(dem, (12.47 - 0.06, 41.97 - 0.05, 12.53 + 0.06, 42.03 + 0.05))
    assert 20 < top < 1500
    _, want_my = snap.subset_margin(job.grid, top)
    assert 41.97 - s == pytest.approx(want_my, rel=0.05)
    assert (12.47 - w) > (41.97 - s)  # wider in longitude at 42 degrees north


def test_dem_vertical_datum_sets_apply_egm(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    for geoid, want in ((True, "true"), (False, "false")):
        job = make_job(fixtures_dir, tmp_path, gpt.path, geoid=geoid)
        job.dem = dem
        assert snap.graph_values(job)["Terrain-Correction"]["externalDEMApplyEGM"] == want


# ------------------------------------------------------------------------------------
# sarflow snap check, against the stand-in's `gpt <Operator> -h`
# ------------------------------------------------------------------------------------

def _check_rows(gpt, graphs, **settings):
    from sarflow.engines import snap_check

    return snap_check.run_check(SnapSettings(gpt=gpt.path, **settings), WorkerResources(16.0, 4),
                                graphs, spec_of=snap_check.help_provider(gpt.path))


def test_operator_help_parsed_in_snaps_format(gpt) -> None:
    from sarflow.engines.snap_check import parse_operator_help

    text = subprocess.run([str(gpt.path), "Apply-Orbit-File", "-h"], capture_output=True,
                          text=True).stdout
    spec = parse_operator_help(text)
    assert set(spec) == {"orbitType", "polyDegree", "continueOnFail"}
    assert spec["polyDegree"] is None
    assert spec["orbitType"][:2] == ["Sentinel Precise (Auto Download)",
                                     "Sentinel Restituted (Auto Download)"]
    assert parse_operator_help("Error: Unknown operator 'X'.") is None


def test_check_passes_sarflows_graphs(gpt) -> None:
    rows = _check_rows(gpt, [snap.FULL_GRAPH, *snap.STAGE_GRAPHS])
    bad = [r for r in rows if not r.ok]
    assert bad == []
    assert any(r.item == "SNAP version" and r.detail == "SNAP 9.0.0" for r in rows)
    ops = {r.item.split("(")[1][:-1] for r in rows if r.item.startswith("s1_grd")}
    assert ops == {"Read", "Apply-Orbit-File", "Remove-GRD-Border-Noise", "ThermalNoiseRemoval",
                   "Calibration", "Subset", "Terrain-Correction", "Write"}


def test_check_flags_misspelt_parameter_bad_value_and_missing_operator(gpt, tmp_path: Path) -> None:
    from sarflow.engines.snap_check import SnapCheckError, first_problem

    graph = tmp_path / "edited.xml"
    graph.write_text(snap.FULL_GRAPH.read_text()
                     .replace("demResamplingMethod>", "demResampligMethod>")
                     .replace("<orbitType>Sentinel Precise (Auto Download)<",
                              "<orbitType>Sentinel Precise<"))
    rows = _check_rows(gpt, [graph])
    bad = {r.item: r.detail for r in rows if not r.ok}
    assert set(bad) == {"edited.xml: Terrain-Correction (Terrain-Correction)",
                        "edited.xml: Apply-Orbit-File (Apply-Orbit-File)"}
    assert "unknown parameter <demResampligMethod> (did you mean <demResamplingMethod>?)" in \
        bad["edited.xml: Terrain-Correction (Terrain-Correction)"]
    assert "'Sentinel Precise' is not one of" in bad["edited.xml: Apply-Orbit-File (Apply-Orbit-File)"]
    with pytest.raises(SnapCheckError) as err:
        first_problem(rows)
    assert "\n" not in str(err.value) and "1 more problem" in str(err.value)
    gpt.set("ok", missing_operators=["Remove-GRD-Border-Noise"])
    rows = _check_rows(gpt, [snap.FULL_GRAPH])
    (bad,) = [r for r in rows if not r.ok]
    assert bad.item.endswith("(Remove-GRD-Border-Noise)") and "not installed" in bad.detail


def test_check_flags_truncated_egm96_and_small_heap(gpt, tmp_path: Path) -> None:
    egm = tmp_path / "home" / ".snap" / "auxdata" / "dem" / "egm96" / "ww15mgh_b.zip"
    egm.parent.mkdir(parents=True)
    egm.write_bytes(b"PK\x03\x04truncated")
    rows = _check_rows(gpt, [snap.FULL_GRAPH], memory_gb=1.5)
    bad = {r.item: r.detail for r in rows if not r.ok}
    assert f"EGM96 {egm}" in bad and "not a complete zip" in bad[f"EGM96 {egm}"]
    assert "run fewer --workers" in bad["memory per worker"]


def test_cli_snap_check(gpt, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from sarflow.cli import cli

    monkeypatch.delenv("SNAP_HOME", raising=False)
    monkeypatch.setenv("PATH", str(gpt.path.parent) + os.pathsep + os.environ["PATH"])
    res = CliRunner().invoke(cli, ["snap", "check", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert all(r["ok"] for r in rows) and any(r["detail"] == "SNAP 9.0.0" for r in rows)
    gpt.set("ok", missing_operators=["Terrain-Correction"])
    res = CliRunner().invoke(cli, ["snap", "check"])
    assert res.exit_code == 2
    err = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "Terrain-Correction is not installed" in err[0]


def test_check_runs_before_a_snap_batch(fixtures_dir: Path, tmp_path: Path, gpt) -> None:
    """A missing operator stops the scene before any graph runs, without retries."""
    gpt.set("ok", missing_operators=["ThermalNoiseRemoval"])
    job = make_job(fixtures_dir, tmp_path, gpt.path)
    outcome = _attempts(job)
    assert outcome.outcome == "failed" and outcome.attempts == 1
    assert "ThermalNoiseRemoval is not installed" in outcome.reason
    assert gpt.calls() == [] and gpt.all_calls()  # only the -h look-ups ran


# ------------------------------------------------------------------------------------
# the real SNAP (skipped where gpt is not installed)
# ------------------------------------------------------------------------------------

@pytest.mark.snap
def test_real_gpt_runs_the_chain(fixtures_dir: Path, tmp_path: Path) -> None:
    """Real gpt on a scene: with $SARFLOW_SNAP_SCENE (a full IW GRDH product) the output must
    validate; otherwise on the trimmed fixture SAFE (zero DNs, VV only, with the Rome DEM)
    SNAP must at least accept every graph parameter (no "Unknown element")."""
    scene = os.environ.get("SARFLOW_SNAP_SCENE")
    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    if scene:
        from sarflow.pyrosar_compat import identify

        ext = identify(scene).bbox().extent
        cx, cy = (ext["xmin"] + ext["xmax"]) / 2, (ext["ymin"] + ext["ymax"]) / 2
        grid = Grid.from_bounds(cx - 0.02, cy - 0.02, cx + 0.02, cy + 0.02)
        job = SceneJob(scene=Path(scene), output=tmp_path / "out.tif", grid=grid,
                       settings=SnapSettings(timeout_s=3600))
        result = snap.ENGINE.process(job)
        engines.validate_output(result.output, grid, job.polarisations)
        return
    safe = next((fixtures_dir / "s1").glob("S1B_*.SAFE"))
    job = SceneJob(scene=safe, output=tmp_path / "out.tif", polarisations=["VV"], dem=dem,
                   grid=Grid.from_bounds(12.47, 41.97, 12.53, 42.03), settings=SnapSettings(timeout_s=1800))
    try:
        snap.ENGINE.process(job)
    except snap.SnapParameterError:
        raise
    except ProcessingError:
        pass  # zero DNs give an all-nodata product, or the orbit download is offline
    assert "Unknown element" not in job.log_path.read_text()


@pytest.mark.snap
def test_installed_snap_knows_every_graph_parameter() -> None:
    """``gpt <operator> -h`` of the installed SNAP lists every parameter our graphs set
    (how pyroSAR's parse_node learns an operator's parameters)."""
    import subprocess as sp

    from sarflow.pyrosar_compat import workflow

    exe = snap.find_gpt()
    needed: dict[str, set[str]] = {}
    for path in sorted(snap.GRAPHS_DIR.glob("*.xml")):
        for node in workflow(path):
            needed.setdefault(node.operator, set()).update(node.parameters.keys())
    for op, names in sorted(needed.items()):
        help_text = sp.run([str(exe), op, "-h"], capture_output=True, text=True, timeout=600).stdout
        listed = set(re.findall(r"-P(\w+)=", help_text))
        assert names <= listed, f"{op}: this SNAP lacks {sorted(names - listed)}"


@pytest.mark.snap
def test_real_snap_check_passes() -> None:
    """`sarflow snap check` on the installed SNAP: sarflow's graphs are valid for it."""
    from sarflow.engines import snap_check

    rows = snap_check.rows_for_event(None)
    bad = [r for r in rows if not r.ok and not r.item.startswith("EGM96")]
    assert bad == [], bad


@pytest.mark.snap
def test_real_snap_scene_matches_native(fixtures_dir: Path, tmp_path: Path) -> None:
    """One full scene ($SARFLOW_SNAP_SCENE, with $SARFLOW_SNAP_DEM) through SNAP and the
    native engine on the same grid: median sigma0 difference (dB) and geolocation offset
    (pixels, by phase correlation) are printed; both must be small."""
    scene = os.environ.get("SARFLOW_SNAP_SCENE")
    dem = os.environ.get("SARFLOW_SNAP_DEM")
    if not scene or not dem:
        pytest.skip("set SARFLOW_SNAP_SCENE (an IW GRDH product) and SARFLOW_SNAP_DEM")
    from sarflow.config import NativeSettings
    from sarflow.engines import native
    from sarflow.pyrosar_compat import identify

    ext = identify(scene).bbox().extent
    cx, cy = (ext["xmin"] + ext["xmax"]) / 2, (ext["ymin"] + ext["ymax"]) / 2
    grid = Grid.from_bounds(cx - 0.05, cy - 0.05, cx + 0.05, cy + 0.05)
    outs = {}
    for name, engine, settings in (("snap", snap.ENGINE, SnapSettings(timeout_s=3600)),
                                   ("native", native.ENGINE, NativeSettings())):
        job = SceneJob(scene=Path(scene), output=tmp_path / name / "out.tif", grid=grid,
                       polarisations=["VV"], dem=Path(dem), settings=settings)
        engine.process(job)
        outs[name] = read_raster(job.output, bands=[1])[0]
    a, b = 10 * np.log10(outs["snap"]), 10 * np.log10(outs["native"])
    both = np.isfinite(a) & np.isfinite(b)
    median_db = float(np.median(a[both] - b[both]))
    fa, fb = np.fft.fft2(np.nan_to_num(a - np.nanmean(a))), np.fft.fft2(np.nan_to_num(b - np.nanmean(b)))
    corr = np.fft.ifft2(fa * np.conj(fb) / (np.abs(fa * np.conj(fb)) + 1e-12)).real
    dy, dx = np.unravel_index(np.argmax(corr), corr.shape)
    dy = dy - corr.shape[0] if dy > corr.shape[0] // 2 else dy
    dx = dx - corr.shape[1] if dx > corr.shape[1] // 2 else dx
    print(json.dumps({"median_db_snap_minus_native": median_db, "offset_px": [int(dx), int(dy)],
                      "pixels_compared": int(both.sum())}))
    assert abs(median_db) < 0.5 and abs(dx) <= 1 and abs(dy) <= 1
