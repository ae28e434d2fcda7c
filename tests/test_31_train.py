"""Training: learning on a synthetic change raster, reproducibility, inference-mode
consistency, batch-norm statistics, grid resume, and the `sarflow train` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sarflow import train

train.limit_threads(2)

from sarflow.dataset import load_dataset, make_patches  # noqa: E402
from sarflow.grid import Grid, write_raster  # noqa: E402
from sarflow.metrics import Confusion  # noqa: E402

SMALL = dict(architecture="dppa_unet", filters=8, depth=3, batch_size=8, learning_rate=0.01,
             patience=20, seed=1)


def synthetic_change(size: int = 192, contrast: float = 1.2, seed: int = 0):
    """A G1-like raster: unit-noise dB changes, raised by ``contrast`` (VV) and 0.8 x
    ``contrast`` (VH) inside elliptical landslides; too noisy for a per-pixel threshold,
    easy with spatial context.  Returns (image (2, h, w), labels (h, w))."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    lab = np.zeros((size, size), np.float32)
    for _ in range(size * size // 600):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(3, 9, 2)
        lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
    vv = rng.normal(0, 1, lab.shape) + contrast * lab
    vh = rng.normal(0, 1, lab.shape) + 0.8 * contrast * lab
    img = np.stack([vv, vh]).astype(np.float32)
    img[:, :20, :50] = np.nan
    return img, lab


GRID = Grid(col0=1_500_000, row0=470_000, width=192, height=192)


def _write_inputs(folder: Path, img: np.ndarray, lab: np.ndarray) -> tuple[Path, Path]:
    image = write_raster(folder / "G1.tif", img, GRID, descriptions=["VV change (dB)",
                                                                     "VH change (dB)"])
    labels = write_raster(folder / "labels.tif", lab, GRID, descriptions=["landslide"])
    return image, labels


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("synthetic")
    image, labels = _write_inputs(tmp, *synthetic_change())
    return make_patches(image, labels, tmp / "dataset", patch_size=32, seed=0, group="G1")


def _history(run: Path) -> list[dict]:
    import csv

    with open(run / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_training_learns_beats_threshold_and_is_reproducible(dataset_dir, tmp_path):
    from sarflow.modelio import load_model

    a = train.train_run(dataset_dir, tmp_path / "a", epochs=8, **SMALL)
    b = train.train_run(dataset_dir, tmp_path / "b", epochs=8, **SMALL)
    assert a["test"] == b["test"] and a["best_epoch"] == b["best_epoch"]
    assert _history(tmp_path / "a") == _history(tmp_path / "b")
    assert a["test"]["f1"] >= 0.6
    assert a["test"]["f1"] > a["baseline"]["test"]["f1"] + 0.1
    assert a["n_train"] == 28 and a["n_test"] == 7   # 36 tiles, one all-NaN, split 8:2
    history = _history(tmp_path / "a")
    assert [int(r["epoch"]) for r in history] == list(range(1, a["epochs_run"] + 1))
    assert float(history[a["best_epoch"] - 1]["test_f1"]) == a["test_running_bn"]["f1"]
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    assert saved["complete"] and saved["test"] == a["test"]
    # the saved model reproduces the reported test metrics in inference mode
    model, meta = load_model(tmp_path / "a" / "model.keras")
    data = load_dataset(dataset_dir)
    conf = Confusion().add(data.y_test, model.predict(data.x_test, verbose=0), 0.5)
    assert conf.as_dict() == a["test"]
    assert meta["group"] == "G1" and meta["channels"] == ["VV change (dB)", "VH change (dB)"]
    assert meta["normalisation"]["mean"] == data.normalisation["mean"]
    assert meta["patch_size"] == 32 and meta["architecture"] == "dppa_unet"
    assert meta["filters"] == 8 and meta["test_metrics"]["f1"] == a["test"]["f1"]
    assert a["bn_statistics"] in ("recomputed", "running averages")


def test_bn_statistics_become_the_average_of_batch_statistics():
    import keras

    inputs = keras.Input((4, 4, 2))
    bn = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, bn(inputs))
    x = np.random.default_rng(0).normal(3, 2, (10, 4, 4, 2)).astype("float32")
    used = train.recompute_bn_statistics(model, x, batch_size=4)   # two full batches
    assert used == 2 and bn.momentum == 0.99
    means = [x[i:i + 4].mean(axis=(0, 1, 2)) for i in (0, 4)]
    variances = [x[i:i + 4].var(axis=(0, 1, 2)) for i in (0, 4)]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean(means, 0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean(variances, 0), rtol=1e-4)


def test_best_threshold_is_exact():
    v = np.array([0.9, 0.8, 0.3, 0.1, 0.8])
    t = np.array([1, 1, 0, 0, 0], bool)
    thr, f1 = train._best_threshold(v, t)
    # >= 0.9 gives F1 2/3; >= 0.8 gives tp 2, fp 1 -> 0.8; lower cuts add false alarms
    assert thr == 0.8 and f1 == pytest.approx(0.8)


def test_grid_from_the_command_line_runs_every_configuration_and_resumes(
        dataset_dir, tmp_path, monkeypatch):
    from sarflow.cli import cli
    from sarflow.modelio import read_meta

    args = ["-q", "train", "--dataset", str(dataset_dir), "--out", str(tmp_path), "--grid",
            "--filters", "4", "--batch-size", "8,16", "--learning-rate", "0.01",
            "--epochs", "1", "--patience", "1", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    rows = summary["table"]
    assert [r["run"] for r in rows] == ["dppa_unet_f4_b8_lr0.01", "dppa_unet_f4_b16_lr0.01"]
    assert summary["test"]["f1"] == max(r["f1"] for r in rows)
    assert summary["best_run"] in (rows[0]["run"], rows[1]["run"])
    best_dir = tmp_path / "best_dppa_unet"
    assert read_meta(best_dir / "model.keras")["filters"] == 4
    assert (best_dir / "grid.csv").read_text().startswith("run,filters,batch_size")

    def fail(*args, **kwargs):
        raise AssertionError("a finished configuration was trained again")

    monkeypatch.setattr(train, "train_run", fail)
    grid = {"filters": [4], "batch_size": [8, 16], "learning_rate": [0.01]}
    kw = dict(epochs=1, patience=1, seed=0, depth=4, threshold=0.5)
    again, rows2 = train.train_grid(dataset_dir, tmp_path, grid, **kw)
    assert rows2 == rows and again["test"] == summary["test"]
    (tmp_path / rows[1]["run"] / "result.json").unlink()      # an interrupted run reruns
    with pytest.raises(AssertionError, match="trained again"):
        train.train_grid(dataset_dir, tmp_path, grid, **kw)
    neither = CliRunner().invoke(cli, ["train"])
    assert neither.exit_code == 2 and "--dataset" in neither.output


def test_strategy_is_the_default_one_on_one_cpu():
    import tensorflow as tf

    strategy = train.choose_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert not isinstance(strategy, tf.distribute.MirroredStrategy)


def test_train_command_on_an_event(tmp_path):
    from sarflow.cli import cli
    from sarflow.config import load_config
    from sarflow.workdir import WorkDir

    sp = GRID.spacing
    cfg = {"name": "tiny", "event": {"time": "2020-06-01T00:00:00Z"},
           "area": {"bbox": list(GRID.bounds)},
           "windows": {"pre": ["2020-01-01", "2020-05-31"], "post": ["2020-06-02", "2020-07-01"]},
           "scenes": "scenes", "output": "work",
           "training_area": {"bbox": [GRID.west, GRID.south + 64 * sp, GRID.east, GRID.north]},
           "model": {"patch_size": 32, "depth": 2, "filters": 4, "batch_size": 8,
                     "learning_rate": 0.01, "epochs": 2, "patience": 2}}
    path = tmp_path / "event.yaml"
    path.write_text(yaml.safe_dump(cfg))
    conf = load_config(path)
    assert conf.grid() == GRID
    wd = WorkDir(conf.output)
    img, lab = synthetic_change()
    write_raster(wd.group("G1"), img, GRID, descriptions=["VV change (dB)", "VH change (dB)"])
    write_raster(wd.labels, lab, GRID)
    result = CliRunner().invoke(cli, ["-q", "train", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["best_run"] == "G1_dppa_unet_f4_b8_lr0.01"
    assert Path(summary["model"]) == train.best_model_path(conf)
    assert train.best_model_path(conf).is_file()
    assert set(summary["test_metrics"]) == {"precision", "recall", "f1", "iou"}
    assert summary["n_train"] + summary["n_test"] == 23   # 6 x 4 tiles of the north part
    again = CliRunner().invoke(cli, ["-q", "train", str(path), "--json"])
    assert json.loads(again.output)["train_seconds"] == summary["train_seconds"]  # resumed
    bad = CliRunner().invoke(cli, ["train", str(path), "--filters", "4,8"])
    assert bad.exit_code == 2 and "--grid" in bad.output
    bad = CliRunner().invoke(cli, ["train", str(path), "--learning-rate", "fast"])
    assert bad.exit_code == 2 and "--learning-rate" in bad.output


def test_flip_augmentation_moves_image_and_mask_together():
    x = np.arange(2 * 4 * 4 * 2, dtype=np.float32).reshape(2, 4, 4, 2)
    y = (x[..., :1] % 3 == 0).astype(np.float32)
    pipeline = train.make_pipeline(x, y, batch_size=2, seed=5, epochs=12)
    assert int(pipeline.cardinality()) == 1
    seen = set()
    for _ in range(12):                                    # epochs reshuffle and re-flip
        for xb, yb in pipeline:
            for xi, yi in zip(xb.numpy(), yb.numpy()):
                k = int(xi[..., 0].min() // 32)            # which patch
                flips = {(v, h): np.flip(np.flip(x[k], 0) if v else x[k], 1) if h
                         else (np.flip(x[k], 0) if v else x[k])
                         for v in (0, 1) for h in (0, 1)}
                match = [key for key, arr in flips.items() if np.array_equal(arr, xi)]
                assert len(match) == 1
                np.testing.assert_array_equal(yi, (xi[..., :1] % 3 == 0).astype(np.float32))
                seen.add(match[0])
    assert seen == {(0, 0), (0, 1), (1, 0), (1, 1)}


def numpy_batches(x, y, plan, epoch):
    """An independent reference for the tf.data pipeline: epoch ``epoch``'s batches gathered
    and flipped in numpy from the plan's indices and flip codes."""
    idx, flips = plan.plan(epoch)
    for b in range(plan.batches):
        part = slice(b * plan.batch_size, (b + 1) * plan.batch_size)
        xb, yb = x[idx[part]], y[idx[part]]  # fancy indexing: copies
        for k, code in enumerate(flips[part]):
            if code & 1:
                xb[k], yb[k] = xb[k][:, ::-1], yb[k][:, ::-1]
            if code & 2:
                xb[k], yb[k] = xb[k][::-1], yb[k][::-1]
        yield xb, yb


@pytest.mark.parametrize("n,batch,augment", [(10, 4, True), (3, 4, True), (9, 3, False)])
def test_pipeline_declares_its_length_and_yields_the_epoch_batches(n, batch, augment):
    """Keras must know how many batches an epoch has (else it runs an empty step per epoch
    that still advances Adam's step counter); each pass is the next epoch's batches."""
    x = np.random.default_rng(1).normal(size=(n, 4, 6, 2)).astype(np.float32)
    y = (x[..., :1] > 0.3).astype(np.float32)
    pipeline = train.make_pipeline(x, y, batch, seed=7, augment=augment, epochs=3)
    plan = train.EpochPlan(n, batch, 7, augment)
    steps = int(pipeline.cardinality())
    assert steps == plan.batches == max(1, n // batch)
    for epoch in range(3):
        got = [(xb.numpy(), yb.numpy()) for xb, yb in pipeline]
        expected = list(numpy_batches(x, y, plan, epoch))
        assert len(got) == len(expected) == steps
        for (gx, gy), (ex, ey) in zip(got, expected):
            np.testing.assert_array_equal(gx, ex)
            np.testing.assert_array_equal(gy, ey)


def test_pipeline_refuses_a_pass_beyond_its_planned_epochs():
    """A pass the pipeline has no plan for fails loudly instead of repeating an epoch."""
    import tensorflow as tf

    x = np.zeros((4, 4, 4, 1), np.float32)
    pipeline = train.make_pipeline(x, x, 2, seed=0, epochs=2)
    for _ in range(2):
        assert len(list(pipeline)) == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="planned for fewer epochs"):
        list(pipeline)


def test_adam_counts_only_real_steps():
    """Two batches per epoch, three epochs: Adam's step counter ends at exactly 6."""
    import keras

    x = np.random.default_rng(2).normal(size=(10, 16, 16, 2)).astype(np.float32)
    y = (x[..., :1] > 0).astype(np.float32)
    pipeline = train.make_pipeline(x, y, 4, seed=0, epochs=3)
    steps = int(pipeline.cardinality())
    inp = keras.Input((16, 16, 2))
    model = keras.Model(inp, keras.layers.Conv2D(1, 1, activation="sigmoid")(inp))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(pipeline, epochs=3, verbose=0)
    assert steps == 2 and int(model.optimizer.iterations.numpy()) == 6


def test_epoch_batches_depend_only_on_seed_and_epoch():
    x = np.random.default_rng(0).normal(size=(10, 4, 4, 2)).astype(np.float32)
    y = (x[..., :1] > 0).astype(np.float32)
    a, b, c = (train.EpochPlan(10, 4, seed) for seed in (3, 3, 4))
    runs = [[np.concatenate([xb for xb, _ in numpy_batches(x, y, plan, e)]) for e in range(3)]
            for plan in (a, b, c)]
    assert all(np.array_equal(p, q) for p, q in zip(runs[0], runs[1]))
    assert not np.array_equal(runs[0][0], runs[0][1])          # each epoch reshuffles
    assert not np.array_equal(runs[0][0], runs[2][0])          # another seed differs
    assert all(len(r) == 8 for r in runs[0])                   # 2 full batches, 2 dropped


def test_the_optimizer_built_first_traces_the_training_step_once_and_changes_nothing():
    """Keras creates Adam's slots inside the first traced step, which makes TensorFlow trace
    it twice; built beforehand it is traced once, and training is the same bit for bit."""
    import keras

    x = np.random.default_rng(2).normal(size=(8, 16, 16, 2)).astype(np.float32)
    y = (x[..., :1] > 0).astype(np.float32)
    traces, weights = {}, {}
    for prebuilt in (False, True):
        keras.utils.set_random_seed(0)
        inp = keras.Input((16, 16, 2))
        hidden = keras.layers.Conv2D(4, 3, padding="same")(inp)
        model = keras.Model(inp, keras.layers.Conv2D(1, 1, activation="sigmoid")(hidden))
        model.compile(keras.optimizers.Adam(1e-2), "mse")
        if prebuilt:
            train.build_optimizer(model)
            assert model.optimizer.built and int(model.optimizer.iterations.numpy()) == 0
        calls, step = [], model.train_step
        model.train_step = lambda data, step=step, calls=calls: (calls.append(1), step(data))[1]
        model.fit(train.make_pipeline(x, y, 4, seed=0, epochs=2), epochs=2, verbose=0)
        traces[prebuilt], weights[prebuilt] = len(calls), model.get_weights()
    assert traces == {False: 2, True: 1}
    for a, b in zip(weights[False], weights[True]):
        np.testing.assert_array_equal(a, b)


def test_bf16_is_detected_from_the_cpu_flags(tmp_path):
    def cpuinfo(flags: str) -> Path:
        path = tmp_path / f"cpuinfo-{len(list(tmp_path.iterdir()))}"
        path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n"
                        f"processor\t: 1\nflags\t\t: {flags}\n")
        return path

    assert train.cpu_has_bf16(cpuinfo("fpu sse avx2 avx512f avx512_bf16 avx512_vnni"))
    assert train.cpu_has_bf16(cpuinfo("fpu avx512f amx_tile amx_bf16"))
    assert not train.cpu_has_bf16(cpuinfo("fpu sse avx2 avx512f avx512_vnni"))
    assert not train.cpu_has_bf16(tmp_path / "missing")


def test_precision_resolves_for_the_machine_and_rejects_unknown_names():
    from sarflow.config import ModelSettings
    from sarflow.errors import ConfigError

    expected = "mixed_bfloat16" if train.cpu_has_bf16() else "float32"   # no GPU here
    assert train.resolve_precision("auto") == expected == train.resolve_precision()
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert train.resolve_precision(name) == name
    with pytest.raises(ConfigError, match="float32"):
        train.resolve_precision("float64")
    assert ModelSettings().precision == "auto"
    with pytest.raises(ValueError):
        ModelSettings(precision="half")


def test_a_run_trains_and_saves_in_the_precision_it_asks_for(dataset_dir, tmp_path):
    """float32 and mixed bfloat16 runs differ; each records its policy, its provenance
    says which was asked for, and each saved model reproduces its test scores."""
    from sarflow.modelio import load_model

    data = load_dataset(dataset_dir)
    runs = {p: train.train_run(dataset_dir, tmp_path / p, epochs=3, precision=p, **SMALL)
            for p in ("float32", "mixed_bfloat16")}
    for policy, result in runs.items():
        assert result["precision_policy"] == policy
        assert result["provenance"]["settings"]["precision"] == policy
        model, _ = load_model(tmp_path / policy / "model.keras")
        conv = model.get_layer("enc1_conv1")
        assert conv.dtype_policy.name == policy and conv.kernel.dtype == "float32"
        assert model.get_layer("probability").dtype_policy.name == "float32"
        conf = Confusion().add(data.y_test, model.predict(data.x_test, verbose=0), 0.5)
        assert conf.as_dict() == result["test"]
    assert _history(tmp_path / "float32") != _history(tmp_path / "mixed_bfloat16")
