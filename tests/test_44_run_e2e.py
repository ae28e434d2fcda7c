"""`sarflow run` end to end on a tiny simulated event: every stage runs, a rerun skips
everything, and runs interrupted (SIGINT) during preprocessing and during training finish
with the same metrics as an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.signals import default_sigint

TINY_MODEL = {"architecture": "dppa_unet", "group": "G1", "filters": 8, "batch_size": 4,
              "learning_rate": 0.002, "epochs": 6, "patience": 6, "patch_size": 64, "seed": 5}


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import tiny_event

    return tiny_event(tmp_path_factory.mktemp("e2e"), TINY_MODEL)


def _config_copy(event: Path, name: str) -> Path:
    """The same event with its own work folder."""
    data = yaml.safe_load(event.read_text())
    data["output"] = name
    p = event.parent / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _cmd(cfg: Path) -> list[str]:
    return [sys.executable, "-m", "sarflow", "-q", "run", str(cfg), "--workers", "1"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _interrupt_when(cfg: Path, ready: Callable[[], bool], timeout: float = 600) -> None:
    """Start `sarflow run`, send SIGINT to its process group once ``ready()``, wait."""
    proc = subprocess.Popen(_cmd(cfg), env=_env(), start_new_session=True,
                            preexec_fn=default_sigint,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while not ready():
        assert proc.poll() is None, f"run ended before the interrupt: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() - t0 < timeout, "interrupt point never reached"
        time.sleep(0.05)
    # like a user pressing Ctrl-C again: a SIGINT that lands inside a finaliser is
    # swallowed by Python ("Exception ignored in ..."), so repeat until the run stops
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode != 0


def _run(cfg: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(_cmd(cfg), env=_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _metrics(work: Path) -> dict:
    out = {}
    for area in ("training", "validation"):
        m = json.loads((work / "evaluation" / f"{area}.json").read_text())
        out[area] = {"pixel": m["pixel"], "objects": m["objects"]}
    return out


def test_interrupted_runs_finish_like_an_uninterrupted_one(event: Path) -> None:
    ref_cfg = _config_copy(event, "work_ref")
    _run(ref_cfg)
    ref = event.parent / "work_ref"
    reference = _metrics(ref)
    assert (ref / "report" / "index.html").is_file()
    # quality is the training tests' and the demo's concern; here the tiny model only has
    # to make a map whose metrics the interrupted runs must reproduce exactly
    assert 0.0 <= reference["validation"]["pixel"]["f1"] <= 1.0

    # a second run skips every stage
    again = _run(ref_cfg)
    states = [json.loads(p.read_text()) for p in (ref / "state").glob("*.json")]
    assert len(states) == 7 and all(s["complete"] for s in states)
    assert _metrics(ref) == reference, again.stdout

    cfg = _config_copy(event, "work_int")
    work = event.parent / "work_int"
    pre = work / "preprocessed"
    _interrupt_when(cfg, lambda: len(list(pre.glob("*.tif"))) >= 1)
    done = len(list(pre.glob("*.tif")))
    assert 1 <= done < 8 and not (pre / "summary.json").exists()

    models = work / "models"
    # the partial epoch log exists while a configuration trains (after its first epoch)
    _interrupt_when(cfg, lambda: any(models.glob("*/.history.csv.part")) if models.exists() else False)
    assert not json.loads((work / "state" / "train.json").read_text())["complete"]

    _run(cfg)
    assert _metrics(work) == reference
    shutil.rmtree(work / "dataset")  # keep the tmp folder small
