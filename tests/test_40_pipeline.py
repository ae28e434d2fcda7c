"""The pipeline's bookkeeping: skip what is done, resume what was interrupted, redo what
changed downstream of a settings change.  Real stages are exercised end to end by the demo
test; here small stages that write files stand in so each rule is checked in isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sarflow import pipeline
from sarflow.config import load_config
from sarflow.errors import ConfigError
from sarflow.ablation import markdown_table
from sarflow.pipeline import RunOptions, Stage, run_event, select_stages

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cfg(tmp_path: Path):
    data = yaml.safe_load((ROOT / "examples" / "hokkaido_2018.yaml").read_text())
    data["output"] = str(tmp_path / "work")
    p = tmp_path / "event.yaml"
    p.write_text(yaml.safe_dump(data))
    return load_config(p)


def _stages(calls: list, fail_at: dict | None = None) -> list[Stage]:
    def make(name: str, key):
        def run(cfg, opt):
            calls.append(name)
            if fail_at and fail_at.get(name):
                fail_at[name] -= 1
                raise KeyboardInterrupt
            out = Path(cfg.output) / f"{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(str(key(cfg)))
        return Stage(name, key, run, outputs=lambda cfg: [Path(cfg.output) / f"{name}.txt"],
                     clean=lambda cfg: [Path(cfg.output) / f"{name}.txt"])
    return [make("a", lambda c: c.polarisations), make("b", lambda c: c.model.filters),
            make("c", lambda c: None)]


def test_skip_resume_and_redo(cfg, monkeypatch) -> None:
    calls: list = []
    fail = {"b": 1}
    monkeypatch.setattr(pipeline, "STAGES", _stages(calls, fail))
    monkeypatch.setattr(pipeline, "STAGE_NAMES", ["a", "b", "c"])
    with pytest.raises(KeyboardInterrupt):
        run_event(cfg)
    assert calls == ["a", "b"]
    out = run_event(cfg)  # a done, b resumed, c new
    assert [o.status for o in out] == ["skipped", "resumed", "ran"]
    assert calls == ["a", "b", "b", "c"]
    assert [o.status for o in run_event(cfg)] == ["skipped"] * 3
    cfg.model.filters = 64  # a change that concerns b: b and everything after it redone
    out = run_event(cfg)
    assert [o.status for o in out] == ["skipped", "redone", "redone"]
    assert (Path(cfg.output) / "b.txt").read_text() == "64"


def test_missing_output_reruns(cfg, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(pipeline, "STAGES", _stages(calls))
    monkeypatch.setattr(pipeline, "STAGE_NAMES", ["a", "b", "c"])
    run_event(cfg)
    (Path(cfg.output) / "c.txt").unlink()
    assert [o.status for o in run_event(cfg)] == ["skipped", "skipped", "resumed"]


def test_select_stages_checks_names() -> None:
    assert [s.name for s in select_stages("stack", "train")] == ["stack", "dataset", "train"]
    with pytest.raises(ConfigError, match="not a stage"):
        select_stages("bake")
    with pytest.raises(ConfigError, match="comes after"):
        select_stages("train", "stack")


def test_markdown_table_layout() -> None:
    md = markdown_table([{"group": "G1", "model": "dppa_unet", "batch_size": 8,
                          "learning_rate": 0.001, "filters": 16, "precision": 0.8,
                          "recall": 0.7, "f1": 0.74667, "iou": 0.6}])
    lines = md.splitlines()
    assert lines[0].startswith("| Group | Model | Batch size | Learning rate | Filters")
    assert lines[2] == "| G1 | dppa_unet | 8 | 0.001 | 16 | 0.800 | 0.700 | 0.747 | 0.600 |"


def test_ranking_checks_against_the_paper() -> None:
    from sarflow.ablation import ranking_checks

    rows = [{"group": "G1", "model": "dppa_unet", "f1": 0.8},
            {"group": "G4", "model": "dppa_unet", "f1": 0.6},
            {"group": "G5", "model": "dppa_unet", "f1": 0.65},
            {"group": "G6", "model": "dppa_unet", "f1": 0.3}]
    checks = {c["claim"]: c["holds"] for c in ranking_checks(rows)}
    assert checks == {"G1 dppa_unet > G4 dppa_unet": True, "G4 dppa_unet > G5 dppa_unet": False,
                      "G4 dppa_unet > G6 dppa_unet": True}


def test_a_new_scene_changes_the_preprocess_digest(cfg, tmp_path: Path) -> None:
    from sarflow.pipeline import stage_digests

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    cfg.scenes = [scenes, tmp_path / "missing.zip"]  # a missing file is fingerprinted, not fatal
    before = stage_digests(cfg)
    (scenes / "S1A_x.zip").write_bytes(b"zip")
    after = stage_digests(cfg)
    assert before["preprocess"] != after["preprocess"]
    assert before["report"] != after["report"]  # everything downstream follows
