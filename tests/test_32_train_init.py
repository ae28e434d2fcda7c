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
