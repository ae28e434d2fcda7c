"""Fine-tuning: `sarflow train --init MODEL.keras` and the config's model.init start from a
trained model of the same group and channels, and refuse any other."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sarflow import train

train.limit_threads(2)

from sarflow.dataset import make_patches  # noqa: E402
from sarflow.errors import InputError  # noqa: E402

from test_31_train import SMALL, _write_inputs, synthetic_change  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("init")
    image, labels = _write_inputs(tmp, *synthetic_change())
    ds = make_patches(image, labels, tmp / "dataset", patch_size=32, seed=0, group="G1")
    other = make_patches(image, labels, tmp / "dataset_g2", patch_size=32, seed=0, group="G2")
    result = train.train_run(ds, tmp / "a", epochs=8, **SMALL)
    return {"dataset": ds, "other": other, "model": tmp / "a" / "model.keras",
            "result": result, "tmp": tmp}


def test_fine_tuning_starts_from_the_trained_weights(trained: dict) -> None:
    """One epoch at a tiny learning rate from the trained model keeps (about) its F1;
    the same epoch from scratch is far below it."""
    kw = {**SMALL, "learning_rate": 1e-6, "epochs": 1}
    tuned = train.train_run(trained["dataset"], trained["tmp"] / "tuned", init=trained["model"], **kw)
    scratch = train.train_run(trained["dataset"], trained["tmp"] / "scratch", **kw)
    f1 = trained["result"]["test"]["f1"]
    assert tuned["init"] == str(trained["model"])
    assert tuned["test"]["f1"] > f1 - 0.05
    assert scratch["test"]["f1"] < f1 - 0.2
    assert tuned["params"] == trained["result"]["params"]


def _history(run: Path) -> list[dict]:
    import csv

    with open(run / "history.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def test_fine_tuning_scores_the_start_as_epoch_0_and_never_ends_below_it(trained: dict) -> None:
    """A learning rate that wrecks the weights in one step: epoch 0 (the starting model,
    as the history's first row) stays the best checkpoint, so the run's test F1 is at least
    the starting model's; a from-scratch run has no epoch 0."""
    tuned = train.train_run(trained["dataset"], trained["tmp"] / "wreck", init=trained["model"],
                            **{**SMALL, "learning_rate": 0.9, "epochs": 2,
                               "fine_tune_lr_factor": 1.0})
    rows = _history(trained["tmp"] / "wreck")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and rows[0]["loss"] == ""
    start = tuned["start_test"]
    assert float(rows[0]["test_f1"]) == start["f1"]
    assert start["f1"] > trained["result"]["test"]["f1"] - 0.05   # the trained model's F1
    assert max(float(r["test_f1"]) for r in rows[1:]) < start["f1"]
    assert tuned["best_epoch"] == 0 and tuned["test"]["f1"] >= start["f1"]
    assert "start_test" not in trained["result"]
    assert _history(trained["tmp"] / "a")[0]["epoch"] == "1"


def test_fine_tuning_rate_is_learning_rate_times_the_factor(trained: dict) -> None:
    """learning rate 0.008 x factor 0.5 trains exactly as 0.004 x 1.0 (the same history,
    bit for bit), and differently from 0.008 x 1.0; the factor is in the provenance."""
    kw = {**SMALL, "epochs": 2}
    runs = {}
    for name, lr, factor in (("half", 0.008, 0.5), ("same", 0.004, 1.0), ("full", 0.008, 1.0)):
        runs[name] = train.train_run(trained["dataset"], trained["tmp"] / f"lr_{name}",
                                     init=trained["model"], fine_tune_lr_factor=factor,
                                     **{**kw, "learning_rate": lr})
    h = {name: _history(trained["tmp"] / f"lr_{name}") for name in runs}
    assert h["half"] == h["same"] and h["half"][1:] != h["full"][1:]
    assert runs["half"]["optimizer_learning_rate"] == 0.004
    assert runs["half"]["provenance"]["settings"]["fine_tune_lr_factor"] == 0.5
    assert "fine_tune_lr_factor" not in trained["result"]["provenance"]["settings"]


def test_init_refuses_another_group_or_architecture(trained: dict) -> None:
    with pytest.raises(InputError, match="same group and channels"):
        train.train_run(trained["other"], trained["tmp"] / "g2", init=trained["model"],
                        **{**SMALL, "epochs": 1})
    with pytest.raises(InputError, match="not a unet"):
        train.train_run(trained["dataset"], trained["tmp"] / "u", init=trained["model"],
                        **{**SMALL, "architecture": "unet", "epochs": 1})


def test_cli_train_init(trained: dict) -> None:
    from sarflow.cli import cli

    runner = CliRunner()
    out = trained["tmp"] / "cli"
    res = runner.invoke(cli, ["train", "--dataset", str(trained["dataset"]), "--out", str(out),
                              "--init", str(trained["model"]), "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert '"init"' in res.output
    bad = runner.invoke(cli, ["train", "--dataset", str(trained["other"]), "--out",
                              str(trained["tmp"] / "bad"), "--init", str(trained["model"]),
                              "--epochs", "1"])
    assert bad.exit_code == 2 and "same group and channels" in bad.output
    assert [ln for ln in bad.output.splitlines() if ln.startswith("Error")] == [
        bad.output.strip().splitlines()[-1]] and "Traceback" not in bad.output
    missing = runner.invoke(cli, ["train", "--dataset", str(trained["dataset"]), "--out",
                                  str(out), "--init", str(trained["tmp"] / "none.keras")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_config_model_init_resolves_against_the_config(tmp_path: Path) -> None:
    from sarflow.config import ModelSettings


    from sarflow.config import parse_config

    doc = {"name": "x", "event": {"time": "2018-09-05T18:07:59Z"},
           "area": {"bbox": [141.9, 42.7, 142.0, 42.8]},
           "windows": {"pre": ["2018-08-01", "2018-09-04"], "post": ["2018-09-06", "2018-10-01"]},
           "scenes": "scenes", "model": {"init": "pretrained/G1.keras"}}
    cfg = parse_config(doc, base=tmp_path)
    assert cfg.model.init == (tmp_path / "pretrained" / "G1.keras").resolve()
    assert ModelSettings().init is None
    assert ModelSettings().fine_tune_lr_factor == 0.1
    with pytest.raises(ValueError, match="less than or equal to 1"):
        ModelSettings(fine_tune_lr_factor=2.0)


def test_fine_tuned_runs_get_their_own_folder_name() -> None:
    """A fine-tuned run must not replace the same settings trained from scratch (a rerun of
    either would otherwise train again)."""
    scratch = train.run_name("dppa_unet", 16, 8, 1e-3, "G1_")
    assert scratch == "G1_dppa_unet_f16_b8_lr0.001"
    tuned = train.run_name("dppa_unet", 16, 8, 1e-3, "G1_", "/m/G1_dppa_unet-0-0.1.0.keras")
    assert tuned == "G1_dppa_unet_f16_b8_lr0.001_from-G1_dppa_unet-0-0.1.0"
