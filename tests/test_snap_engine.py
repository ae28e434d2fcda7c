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


@pytest.fixture()
def gpt(tmp_path: Path):
    """A stand-in gpt in its own folder; ``set(mode, **kw)`` chooses its behaviour."""
    return install_standin(tmp_path / "snap" / "bin")


def make_job(fixtures_dir: Path, tmp_path: Path, gpt_path: Path, **options) -> SceneJob:
    opts = {"gpt": str(gpt_path), "memory_gb": 2, "tile_cache_gb": 1, "threads": 2,
            "timeout_s": 60, "region_margin_deg": MARGIN}
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
    assert call == [str(gpt.path), "-J-Xmx2048M", "-q", "2", "-c", "1024M", "-e",
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
    assert [c[7] for c in calls] == [str(out.with_name(f"{out.stem}.stage{i}.xml")) for i in (1, 2, 3)]
    assert [c[8:] for c in calls] == [
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
     snap.SnapMemoryError, "raise processing.snap.memory_gb"),
    ("", -9, snap.SnapMemoryError, "raise processing.snap.memory_gb"),
    ("Error occurred during initialization of VM\nCould not reserve enough space for object heap",
     1, snap.SnapMemoryError, "lower processing.snap.memory_gb"),
    ("SEVERE: eu.esa.sar.orbits: No valid orbit file found for 19-JAN-2021 03:16:53", 1,
     snap.SnapOrbitError, "orbit_type: restituted"),
    ("org.esa.snap.core.gpf.OperatorException: Unable to download SRTM 1Sec HGT tile N41E012", 1,
     snap.SnapDemError, "dem:"),
    ("Error: [NodeId: Subset] No intersection with source product boundary", 1,
     snap.SceneOutsideAreaError, "does not overlap"),
    ("INFO: downloading SRTM 1Sec HGT tile N41E012\nError: something else broke\nmore", 3,
     ProcessingError, "something else broke"),
    ("Killed", 1, snap.SnapMemoryError, "raise processing.snap.memory_gb"),
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
