"""Bulk preprocessing on a tiny simulated event with the real native engine: one valid
output per selected scene on a local cluster of 2 workers, resume after Ctrl-C (engine
calls counted), a corrupt zip reported as failed, a run through `--scheduler` on a real
LocalCluster on loopback, locks, retries and worker planning."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from filelock import FileLock

from sarflow.catalog import select_scenes
from sarflow.cli import cli
from sarflow.config import dump_config, load_config
from sarflow.engines import get, validate_output
from sarflow.errors import CorruptInputError, ProcessingError
from sarflow.grid import raster_info
from sarflow.preprocess import (SceneTask, make_tasks, pick_engine, plan_workers,
                                preprocess_event, run_scene, scene_batch)
from sarflow.workdir import WorkDir
from tests.signals import default_sigint

SCENES_PER_WINDOW = 1
SIZE = (48, 48)


class CountingEngine:
    """The real native engine, plus one line per call in ``calls`` (counts across processes)."""

    name = "native"

    def __init__(self, calls: Path, fail_first: int = 0, error: type = ProcessingError) -> None:
        self.calls, self.fail_first, self.error = Path(calls), fail_first, error

    def available(self, settings=None) -> bool:
        return True

    def version(self, settings=None) -> str:
        return get("native").version(settings)  # the real engine computes the pixels

    def process(self, job):
        with open(self.calls, "a") as fh:
            fh.write(f"{job.scene.name}\n")
        if self.fail_first and len(self.count_lines()) <= self.fail_first:
            raise self.error(f"injected failure before the real run of {job.scene.name}")
        return get("native").process(job)

    def count_lines(self) -> list[str]:
        return self.calls.read_text().split() if self.calls.exists() else []


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sarflow.simulate import simulate_event

    root = tmp_path_factory.mktemp("event")
    return Path(simulate_event(root / "ev", seed=7, size=SIZE,
                               scenes_per_window=SCENES_PER_WINDOW))


def _config(event: Path, tmp_path: Path, extra_scenes: list[Path] = ()) -> Path:
    """A copy of the event config writing to ``tmp_path/work`` (absolute paths)."""
    cfg = load_config(event)
    data = dump_config(cfg)
    data["output"] = str(tmp_path / "work")
    data["scenes"] = data["scenes"] + [str(p) for p in extra_scenes]
    path = tmp_path / "event.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _expected_count() -> int:
    return 2 * 2 * SCENES_PER_WINDOW  # passes x windows x scenes per window


def _assert_outputs_valid(cfg, ids: list[str]) -> None:
    wd = WorkDir(cfg.output)
    grid = cfg.grid()
    for pid in ids:
        out = wd.scene_output(pid)
        validate_output(out, grid, cfg.polarisations)
        tags = raster_info(out).tags
        assert tags["product_id"] == pid and tags["engine"] == "native"


def test_local_cluster_of_two_workers(event: Path, tmp_path: Path) -> None:
    cfg = load_config(_config(event, tmp_path))
    selected = select_scenes(cfg)
    assert len(selected) == _expected_count() and all(r.ok for r in selected)
    assert {(r.pass_direction, r.window) for r in selected} == {
        (p, w) for p in ("ASCENDING", "DESCENDING") for w in ("pre", "post")}
    engine = CountingEngine(tmp_path / "calls.txt")
    summary = preprocess_event(cfg, engine=engine, workers=2, progress=False)
    assert summary.workers == 2 and summary.cluster.startswith("local: 2 worker processes")
    assert summary.counts["done"] == len(selected) and summary.ok
    ids = [r.product_id for r in selected]
    assert sorted(engine.count_lines()) == sorted(r.path.name for r in selected)
    _assert_outputs_valid(cfg, ids)
    wd = WorkDir(cfg.output)
    assert sorted(p.stem for p in wd.preprocessed.glob("*.tif")) == sorted(ids)
    data = json.loads(wd.preprocess_summary.read_text())
    assert data["counts"]["done"] == len(ids)
    assert {s["product_id"]: s["orbit_source"] for s in data["scenes"]} == {i: "annotation" for i in ids}
    assert all(s["seconds"] > 0 and s["log"].endswith(".log") for s in data["scenes"])

    # a second run finds everything done: no engine call, no cluster
    again = preprocess_event(cfg, engine=engine, workers=2, progress=False)
    assert again.counts["existing"] == len(ids) and again.cluster.startswith("none")
    assert {(s.engine, s.orbit_source) for s in again.scenes} == {("native", "annotation")}
    assert len(engine.count_lines()) == len(ids)


def test_ctrl_c_then_rerun_finishes_only_the_rest(event: Path, tmp_path: Path) -> None:
    path = _config(event, tmp_path)
    cfg = load_config(path)
    wd = WorkDir(cfg.output)
    ids = [r.product_id for r in select_scenes(cfg)]
    exe = Path(sys.executable).with_name("sarflow")
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.Popen([str(exe), "preprocess", str(path), "--engine", "native",
                             "--workers", "1", "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if list(wd.preprocessed.glob("*.tif")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read().decode()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, out.decode()
    done_before = sorted(p.stem for p in wd.preprocessed.glob("*.tif"))
    assert 1 <= len(done_before) < len(ids), (done_before, out.decode())
    _assert_outputs_valid(cfg, done_before)  # nothing half-written looks finished
    assert not wd.preprocess_summary.exists()

    engine = CountingEngine(tmp_path / "calls.txt")
    summary = preprocess_event(cfg, engine=engine, workers=2, progress=False)
    rest = sorted(set(ids) - set(done_before))
    assert sorted(Path(c).name.removesuffix(".zip") for c in engine.count_lines()) == rest
    assert summary.counts["existing"] == len(done_before) and summary.counts["done"] == len(rest)
    _assert_outputs_valid(cfg, ids)
    assert not list(wd.preprocessed.glob(".*tmp-*"))


def test_corrupt_zip_fails_alone_via_scheduler_on_loopback(event: Path, tmp_path: Path) -> None:
    """The batch runs on a real LocalCluster on 127.0.0.1 through `--scheduler ADDRESS`."""
    from distributed import LocalCluster

    cfg0 = load_config(event)
    first = select_scenes(cfg0)[-1]  # a post-event scene: its date lies in the window
    bad = tmp_path / "bad" / (first.product_id[:-4] + "DEAD.zip")
    bad.parent.mkdir()
    data = first.path.read_bytes() if first.path.is_file() else b""
    bad.write_bytes(data[: max(64, len(data) // 2)])
    path = _config(event, tmp_path, extra_scenes=[bad])
    cfg = load_config(path)
    ids = [r.product_id for r in select_scenes(cfg) if r.ok]
    assert len(ids) == _expected_count()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        res = CliRunner(env={"COLUMNS": "250"}).invoke(
            cli, ["preprocess", str(path), "--scheduler", address, "--no-progress"])
    assert res.exit_code == 2, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: 1 of 5 scenes failed, first {bad.stem}: not a readable zip")
    summary = json.loads(WorkDir(cfg.output).preprocess_summary.read_text())
    assert summary["cluster"] == f"scheduler {address}" and summary["workers"] == 2
    by_id = {s["product_id"]: s for s in summary["scenes"]}
    failed = by_id[bad.stem]
    assert failed["outcome"] == "failed" and "\n" not in failed["reason"]
    assert "not a readable zip" in failed["reason"]
    assert failed["reason"] in Path(failed["log"]).read_text()
    assert all(by_id[i]["outcome"] == "done" for i in ids)
    _assert_outputs_valid(cfg, ids)


# -- the per-scene task without a cluster ------------------------------------------------

def _one_task(event: Path, tmp_path: Path, engine) -> SceneTask:
    from dataclasses import replace

    cfg = load_config(_config(event, tmp_path))
    batch = scene_batch(cfg)
    one = replace(batch, records=batch.records[:1])
    tasks, settled = make_tasks(one, pick_engine(cfg.processing, engine), retries=1)
    assert not settled
    return tasks[0]


def test_lock_retry_and_stale_temporaries(event: Path, tmp_path: Path) -> None:
    engine = CountingEngine(tmp_path / "calls.txt", fail_first=1)
    task = _one_task(event, tmp_path, engine)
    out = Path(task.job.output)
    out.parent.mkdir(parents=True)
    # another run holds the scene's lock: this one leaves it alone
    with FileLock(str(out) + ".lock"):
        assert run_scene(task).outcome == "locked"
    assert engine.count_lines() == []
    # a temporary left by a killed run is cleared; a transient failure is retried
    stale = out.with_name(f".{out.stem}.tmp-99999{out.suffix}")
    stale.write_bytes(b"half written")
    result = run_scene(task)
    assert result.outcome == "done" and result.attempts == 2, result.reason
    assert not stale.exists()
    assert len(engine.count_lines()) == 2
    assert "attempt 1 failed: injected failure" in Path(task.job.log_path).read_text()
    assert run_scene(task).outcome == "existing" and len(engine.count_lines()) == 2


def test_corrupt_input_is_not_retried(event: Path, tmp_path: Path) -> None:
    engine = CountingEngine(tmp_path / "calls.txt", fail_first=5, error=CorruptInputError)
    task = _one_task(event, tmp_path, engine)
    task.retries = 3
    result = run_scene(task)
    assert result.outcome == "failed" and result.attempts == 1
    assert result.reason.startswith("injected failure") and len(engine.count_lines()) == 1
    assert not Path(task.job.output).exists()


def test_plan_workers_from_cores_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    from sarflow import preprocess as pp

    class VM:
        total = 32 * 2**30

    monkeypatch.setattr(psutil, "virtual_memory", lambda: VM())
    monkeypatch.setattr(pp, "_cpus", lambda: 16)
    # 32 GiB x 0.8 = 25.6 GiB: 12 native workers of 2 GiB, 16 cores allow more
    assert plan_workers("native") == (12, round(25.6 / 12, 2))
    # SNAP: 4 cores a scene -> 4 by cores, 3 by memory (8 GiB each)
    assert plan_workers("snap") == (3, round(25.6 / 3, 2))
    assert plan_workers("native", workers=2) == (2, 12.8)
    assert plan_workers("native", workers=3, memory_per_worker_gb=2.5) == (3, 2.5)
    monkeypatch.setattr(pp, "_cpus", lambda: 2)
    assert plan_workers("native")[0] == 2


def test_local_cluster_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from sarflow import preprocess as pp

    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    with pytest.raises(ProcessingError, match="__name__"):
        pp._local_cluster(1, 1.0)


def test_scenes_list_of_the_simulated_event(event: Path) -> None:
    res = CliRunner().invoke(cli, ["scenes", "list", str(event), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    n = SCENES_PER_WINDOW
    assert data["counts"] == {"ASCENDING": {"pre": n, "post": n}, "DESCENDING": {"pre": n, "post": n}}
    assert data["warnings"] == []  # both passes, both windows, full coverage, VV+VH
    assert {s["relative_orbit"] for s in data["scenes"]} == {46, 119}
    assert all(s["coverage"] == 1.0 for s in data["scenes"])


def test_snap_engine_missing_fails_fast_with_one_line(event: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no gpt anywhere
    monkeypatch.delenv("SNAP_HOME", raising=False)
    path = _config(event, tmp_path)
    res = CliRunner().invoke(cli, ["preprocess", str(path), "--engine", "snap"])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "--engine native" in res.output
    assert not WorkDir(load_config(path).output).preprocessed.exists()
