"""The one provenance rule, end to end on a tiny simulated event: what changes, what reruns.

* After a native run, choosing SNAP (a stand-in gpt: SNAP cannot be installed here) or
  changing a native engine setting reprocesses every scene and every stage after it, both
  through ``sarflow run`` and through ``sarflow preprocess`` alone (the per-scene rule).
* Changing ``model.epochs`` reruns training and what follows it, nothing before it.
* ``sarflow preprocess --engine snap --workers 2 --memory-per-worker 3`` starts each gpt
  with a heap of 70 % of 3 GB and at most half the machine's cores.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sarflow.config import dump_config, load_config
from sarflow.engines import cpu_count
from sarflow.grid import raster_info
from sarflow.pipeline import STAGE_NAMES, RunOptions, run_event
from sarflow.provenance import Provenance
from sarflow.workdir import WorkDir

from snap_standin import install_standin

TINY_MODEL = {"architecture": "dppa_unet", "group": "G1", "filters": 4, "batch_size": 4,
              "learning_rate": 0.002, "epochs": 1, "patience": 2, "patch_size": 64, "seed": 5}
QUIET = RunOptions(workers=1, progress=False)


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sarflow.simulate import simulate_event

    root = tmp_path_factory.mktemp("prov")
    return Path(simulate_event(root / "ev", seed=13, size=(192, 256), scenes_per_window=1))


@pytest.fixture()
def config(event: Path, tmp_path: Path):
    """Write a copy of the event config (own work folder, tiny model, a stand-in gpt)."""
    gpt = install_standin(tmp_path / "snap" / "bin")

    def write(**processing) -> Path:
        data = dump_config(load_config(event))  # absolute paths
        data["output"] = str(tmp_path / "work")
        data["model"] = TINY_MODEL
        data["processing"] = {"engine": "native", "snap": {"gpt": str(gpt.path)}, **processing}
        path = tmp_path / "event.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    write.gpt = gpt
    return write


def _scene_engines(cfg) -> dict[str, str]:
    return {p.stem: raster_info(p).tags["engine"]
            for p in sorted(WorkDir(cfg.output).preprocessed.glob("*.tif"))}


def _statuses(outcomes) -> dict[str, str]:
    return {o.name: o.status for o in outcomes}


def test_switching_to_snap_reprocesses_every_scene_and_everything_after(config) -> None:
    cfg = load_config(config())
    first = _statuses(run_event(cfg, until="dataset", options=QUIET))
    assert first == {"preprocess": "ran", "stack": "ran", "dataset": "ran"}
    native = _scene_engines(cfg)
    assert len(native) == 4 and set(native.values()) == {"native"}

    again = run_event(cfg, until="dataset",
                      options=RunOptions(engine="snap", workers=1, progress=False))
    assert _statuses(again) == {"preprocess": "redone", "stack": "redone", "dataset": "redone"}
    assert set(_scene_engines(cfg).values()) == {"snap"}
    assert len(config.gpt.calls()) == 4  # one gpt run per scene


def test_preprocess_alone_redoes_scenes_another_engine_made(config) -> None:
    """The per-scene rule: an output is reused only when the engine that would run now made
    it with the same settings (no stage record involved)."""
    from sarflow.preprocess import preprocess_event

    cfg = load_config(config())
    assert preprocess_event(cfg, engine="native", workers=1, progress=False).ok
    snap = preprocess_event(cfg, engine="snap", workers=1, progress=False)
    assert [s.outcome for s in snap.scenes] == ["done"] * 4
    assert set(_scene_engines(cfg).values()) == {"snap"}
    logs = [Path(s.log).read_text() for s in snap.scenes]
    assert all("redone:" in t and "engine 'native', now 'snap'" in t for t in logs)
    same = preprocess_event(cfg, engine="snap", workers=1, progress=False)
    assert [s.outcome for s in same.scenes] == ["existing"] * 4
    assert len(config.gpt.calls()) == 4


def test_a_native_setting_reprocesses_every_scene(config) -> None:
    cfg = load_config(config())
    run_event(cfg, until="stack", options=QUIET)
    before = {p: raster_info(p).tags["provenance"]
              for p in WorkDir(cfg.output).preprocessed.glob("*.tif")}
    cfg = load_config(config(native={"lut_stride": 8}))
    assert _statuses(run_event(cfg, until="stack", options=QUIET)) == \
        {"preprocess": "redone", "stack": "redone"}
    for path, old in before.items():
        new = Provenance.from_json(raster_info(path).tags["provenance"])
        assert new.settings["engine_settings"]["lut_stride"] == 8
        assert Provenance.from_json(old).settings["engine_settings"]["lut_stride"] == 16
    # a resource knob (threads) decides nothing about the values: nothing is redone
    cfg = load_config(config(native={"lut_stride": 8, "threads": 2}))
    assert set(_statuses(run_event(cfg, until="stack", options=QUIET)).values()) == {"skipped"}


def test_epochs_rerun_training_and_after_nothing_before(config) -> None:
    cfg = load_config(config())
    assert set(_statuses(run_event(cfg, options=QUIET)).values()) == {"ran"}
    stamps = {p: p.stat().st_mtime_ns for p in WorkDir(cfg.output).preprocessed.glob("*.tif")}
    cfg.model.epochs = 2
    out = _statuses(run_event(cfg, options=QUIET))
    assert out == {**{s: "skipped" for s in ("preprocess", "stack", "dataset")},
                   **{s: "redone" for s in ("train", "predict", "evaluate", "report")}}
    assert list(out) == STAGE_NAMES
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # scenes untouched
    # an inference-only setting remaps without retraining
    cfg.prediction.flip_average = False
    out = _statuses(run_event(cfg, options=QUIET))
    assert out == {**{s: "skipped" for s in ("preprocess", "stack", "dataset", "train")},
                   **{s: "redone" for s in ("predict", "evaluate", "report")}}
    prob = WorkDir(cfg.output).prediction("training") / "probability.tif"
    assert raster_info(prob).tags["flip_average"] == "false"


def test_gpt_sized_per_worker_through_the_cli(config) -> None:
    from sarflow.cli import cli

    path = config()
    result = CliRunner().invoke(cli, ["preprocess", str(path), "--engine", "snap", "--workers", "2",
                                      "--memory-per-worker", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    calls = config.gpt.calls()
    assert len(calls) == 4
    for call in calls:
        (xmx,) = [a for a in call if a.startswith("-J-Xmx")]
        heap = int(re.fullmatch(r"-J-Xmx(\d+)M", xmx).group(1))
        assert heap == int(0.7 * 3 * 1024)  # 70 % of the worker's 3 GB, never the machine's
        threads = int(call[call.index("-q") + 1])
        assert 1 <= threads <= max(1, cpu_count() // 2)
        cache = int(call[call.index("-c") + 1].removesuffix("M"))
        assert cache < heap


def test_a_scene_taken_out_of_the_config_leaves_the_stack(config, tmp_path: Path) -> None:
    """Its output stays on disk, but the stack is made from what the catalog selects now."""
    import json

    from sarflow.stack import selection_path

    cfg = load_config(config())
    run_event(cfg, until="stack", options=QUIET)
    before = json.loads(selection_path(WorkDir(cfg.output)).read_text())["selection"]
    assert len(before["desc_post"]) == 1
    data = dump_config(cfg)
    folder = Path(data["scenes"][0])
    keep = tmp_path / "fewer"
    keep.mkdir()
    for p in sorted(folder.glob("*.zip")):
        if "T2031" not in p.name or "2022081" not in p.name:  # drop the descending post scene
            (keep / p.name).symlink_to(p)
    assert len(list(keep.glob("*.zip"))) == 3
    data["scenes"] = [str(keep)]
    path = tmp_path / "fewer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    fewer = load_config(path)
    out = _statuses(run_event(fewer, until="stack", options=QUIET))
    assert out["preprocess"] == "redone"
    after = json.loads(selection_path(WorkDir(fewer.output)).read_text())
    assert after["selection"]["desc_post"] == []  # the dropped scene is not stacked
    assert len(list(WorkDir(fewer.output).preprocessed.glob("*.tif"))) >= 3
