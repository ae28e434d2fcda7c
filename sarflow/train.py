"""Training: Dice loss, Adam, flip augmentation, whole-split metrics, and the paper's grid.

One run (:func:`train_run`) trains one architecture with one (filters, batch size,
learning rate) on a patch dataset (:mod:`sarflow.dataset`) and writes to its run folder::

    model.keras     the best epoch's weights (by test F1), with sarflow metadata (modelio)
    history.csv     one row per epoch (1-based): loss, test precision / recall / F1 /
                    IoU, seconds since the start (written as training goes); a
                    fine-tuning run also has row 0, the starting model before any step
    result.json     settings; "test" (the reported scores: whole test split, inference
                    mode, the saved model reproduces them exactly), "train",
                    "test_running_bn" (the checkpoint before BN recomputation),
                    "test_training_mode_bn" (batch statistics, as metrics inside ``fit``
                    would see them: shows the BN trap), "bn_statistics", "baseline" (best
                    threshold on the change alone, chosen on the train split), timing;
                    written last, with "complete": true, so a finished run is recognised
                    and skipped when a grid search resumes

Metrics are computed once per epoch over the whole test split from accumulated pixel
counts (:mod:`sarflow.metrics`), in inference mode (batch normalisation using its running
averages), never averaged per batch.

Batch-normalisation trap: after a short training the running averages lag the weights,
and inference-mode scores fall well below what training saw.  sarflow uses momentum 0.9
(:data:`sarflow.nets.BN_MOMENTUM`) measures every epoch's test metrics in inference mode
(so the checkpoint is chosen on the scores prediction will see).  After restoring the best
epoch it recomputes every batch-normalisation layer's statistics as the plain average over
one pass of the (unaugmented) training patches (:func:`recompute_bn_statistics`; weights
unchanged) and keeps them unless the checkpoint's running averages score a higher test
F1; ``bn_statistics`` in the result says which were kept, and both scores are recorded.
The saved model reproduces the reported test metrics exactly in inference mode.

Fine-tuning (``init``: a trained model of the same group and channels): the starting model
is scored on the test split as epoch 0 and is a candidate checkpoint like any epoch, so the
run never ends worse on the test split than the model it started from; Adam's learning rate
is ``learning_rate`` x ``fine_tune_lr_factor`` (default
:data:`sarflow.config.FINE_TUNE_LR_FACTOR`, 0.1: small steps that adjust the pretrained
features instead of overwriting them).  Training from scratch is unaffected by both.

Reproducibility: ``keras.utils.set_random_seed``, TensorFlow op determinism, and shuffling
and flips drawn per epoch from numpy generators seeded by (seed, epoch): the same seed and
data give the same metrics on CPU, bit for bit (checked across processes with 1 and 2
threads).  The pipeline declares its length (:func:`make_pipeline`), so Adam's step
count is the number of real steps (a pipeline of unknown length made Keras run one empty
step per epoch, which still advanced Adam's counter and so its bias correction).  The
epochs' orders and flips are planned in numpy and applied by ``tf.data`` ops, one patch at
a time and in order (no parallel map): a Python generator there made every step slower,
and an earlier in-graph pipeline whose ops ran in parallel was not reproducible.
Scale: a ``tf.distribute`` strategy is chosen automatically (MultiWorkerMirrored when
``TF_CONFIG`` is set, Mirrored with several GPUs, the default strategy otherwise), and
the precision is ``auto`` by default (:func:`resolve_precision`): mixed float16 on GPUs,
mixed bfloat16 on CPUs that compute it natively, float32 elsewhere.
TensorFlow is imported only by the functions that train.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .config import FINE_TUNE_LR_FACTOR
from .dataset import FORMAT, MANIFEST, PatchDataset, build_dataset, load_dataset
from .errors import ConfigError, InputError
from .grid import atomic_path
from .metrics import Confusion
from .products import TrainedModel
from .provenance import Provenance, file_fingerprint, is_current

log = logging.getLogger(__name__)

RESULT = "result.json"
HISTORY = "history.csv"
MODEL = "model.keras"


# ------------------------------------------------------------------------------------
# TensorFlow set-up
# ------------------------------------------------------------------------------------

def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def limit_threads(n: int) -> None:
    """Cap TensorFlow's CPU threads (only possible before TensorFlow starts computing)."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)


def choose_strategy():
    """MultiWorkerMirrored with TF_CONFIG, Mirrored with several GPUs, else the default."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief() -> bool:
    """Whether this process writes outputs (always, except non-chief multi-worker tasks)."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    except ValueError:
        return True
    return task.get("type", "chief") == "chief" or (task.get("type") == "worker"
                                                     and int(task.get("index", 0)) == 0)


PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
"""Keras precision policies a run may ask for; ``auto`` picks one for the machine
(:func:`resolve_precision`)."""


def _cpuinfo_field(name: str, cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str | None:
    """The first ``name`` line of /proc/cpuinfo (None where there is none)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.split(":", 1)[0].strip() == name and ":" in line), None)


def cpu_has_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 products natively (AVX512-BF16 or AMX-BF16), so
    that oneDNN's bfloat16 convolutions are faster than float32, not emulated."""
    flags = (_cpuinfo_field("flags", cpuinfo) or "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_description() -> str:
    """The CPU's model name and whether it has native bfloat16 (for benchmark records)."""
    name = _cpuinfo_field("model name") or "unknown CPU"
    return f"{name}, {os.cpu_count()} cores, {'native' if cpu_has_bf16() else 'no'} bfloat16"


def resolve_precision(requested: str = "auto") -> str:
    """The Keras policy a run trains with: ``requested`` itself, or for ``auto``
    mixed_float16 on a GPU, mixed_bfloat16 on a CPU with native bfloat16 (about 1.5x
    faster training steps on 2 AVX512-BF16 cores) and float32 elsewhere.  Variables,
    batch-norm statistics, the output and the loss stay float32 under both mixed ones."""
    import tensorflow as tf

    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


@contextlib.contextmanager
def precision_policy(requested: str = "auto") -> Iterator[str]:
    """The resolved policy (:func:`resolve_precision`) as Keras' global one while the
    network is built and compiled (its layers keep it, also when saved and reloaded)."""
    import keras

    old = keras.mixed_precision.global_policy().name
    name = resolve_precision(requested)
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(old)


# ------------------------------------------------------------------------------------
# data pipeline
# ------------------------------------------------------------------------------------

class EpochPlan:
    """Which patches each epoch's batches hold, in which order and flipped how: epoch k's
    order and flips come from ``numpy.random.default_rng([seed, k])`` alone, so every epoch
    is the same whatever threads TensorFlow runs (TensorFlow's own reshuffling seeds are not:
    they raced with two inter-op threads here).  Each patch is flipped left-right and/or
    up-down with probability 1/2 each, image and mask together.  A short last batch is
    dropped (it would retrace the training step and give noisy BN statistics)."""

    def __init__(self, n: int, batch_size: int, seed: int, augment: bool = True) -> None:
        self.n, self.batch_size, self.seed, self.augment = n, batch_size, seed, augment
        self.batches = n // batch_size if n >= batch_size else 1

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch ``epoch``'s patch indices, batch after batch, and each one's flip code
        (bit 0: left-right, bit 1: up-down; 0 without augmentation)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.n)
        coins = rng.integers(0, 4, self.n)
        idx = order[:self.batches * self.batch_size]
        return idx, (coins[idx] if self.augment else np.zeros_like(idx))


def make_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                  augment: bool = True, epochs: int = 1):
    """A ``tf.data`` pipeline of :class:`EpochPlan`'s batches: each pass over it is the next
    epoch's (``epochs`` planned; a pass beyond them fails), and it declares its number of
    batches, so Keras runs exactly that many steps per epoch (without it Keras runs one
    empty step at each epoch's end, which still advances Adam's step counter).

    No Python runs in the pipeline: the epochs' orders and flips are drawn in numpy up front
    (:meth:`EpochPlan.plan`) and the patches gathered and flipped in the graph from a
    CPU copy of ``x`` and ``y``.  Any Python generator in a pipeline (even one call per
    epoch) made every training step fault its working memory in afresh: 1.6-1.8x slower
    steps on a 2-core AVX2 host, with most of the difference in system time.  The batches,
    and so the training, are bit for bit those of the generator it replaces."""
    import tensorflow as tf

    plan = EpochPlan(len(x), batch_size, seed, augment)
    orders, flips = (np.stack(a).astype(np.int64)
                     for a in zip(*(plan.plan(e) for e in range(max(1, int(epochs))))))
    with tf.device("/CPU:0"):
        xs = tf.Variable(x, trainable=False, dtype=tf.float32)
        ys = tf.Variable(y, trainable=False, dtype=tf.float32)
        passes = tf.Variable(0, trainable=False, dtype=tf.int64)

    def next_epoch(_):
        e = passes.assign_add(1) - 1
        with tf.control_dependencies([tf.debugging.assert_less(
                e, np.int64(len(orders)), message="the training pipeline was planned for "
                "fewer epochs than it is being iterated; pass epochs= to make_pipeline")]):
            return tf.identity(e)

    def epoch_patches(e):
        return tf.data.Dataset.from_tensor_slices((tf.gather(orders, e), tf.gather(flips, e)))

    data = (tf.data.Dataset.from_tensors(np.int64(0)).map(next_epoch).flat_map(epoch_patches)
            .map(_flipped_patch(xs, ys)).batch(batch_size)
            .apply(tf.data.experimental.assert_cardinality(plan.batches)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options).prefetch(2)


def _flipped_patch(xs, ys):
    """The map function: patch ``i`` of ``xs``/``ys``, flipped by code ``f`` as
    :class:`EpochPlan` flips it (bit 0: left-right, bit 1: up-down)."""
    import tensorflow as tf

    def flip(a, on, axis):
        return tf.cond(on, lambda: tf.reverse(a, [axis]), lambda: a)

    def patch(i, f):
        xi, yi = tf.gather(xs, i), tf.gather(ys, i)
        lr, ud = tf.equal(f % 2, 1), tf.equal(f // 2, 1)
        xi, yi = flip(xi, lr, 1), flip(yi, lr, 1)
        return flip(xi, ud, 0), flip(yi, ud, 0)

    return patch


def build_optimizer(model) -> None:
    """Create the compiled optimizer's slots (Adam's moments, its step counter) now.

    Without a distribution strategy Keras creates them inside the first traced training
    step, and a ``tf.function`` that creates variables is traced twice: built here, the
    training step is traced once (about 5 s less before the first epoch on 2 cores).
    The slots start at zero either way, so training is unchanged bit for bit."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def predict_confusion(model, x: np.ndarray, y: np.ndarray, threshold: float = 0.5,
                      batch_size: int = 16) -> Confusion:
    """Pixel counts of the model's inference-mode predictions over a whole split."""
    conf = Confusion()
    for start in range(0, len(x), 256):
        p = model.predict(x[start:start + 256], batch_size=batch_size, verbose=0)
        conf.add(y[start:start + 256], p, threshold)
    return conf


class InferenceScorer:
    """Inference-mode confusion counts through one traced function (any batch length, in
    chunks of ``chunk`` patches): scoring the test split every epoch then costs one trace
    in all, not Keras ``predict``'s data set-up on every call."""

    def __init__(self, model, patch_shape: tuple[int, ...], chunk: int = 16) -> None:
        import tensorflow as tf

        self.chunk = int(chunk)
        spec = tf.TensorSpec((None, *(int(v) for v in patch_shape)), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def confusion(self, x: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> Confusion:
        """Pixel counts of the inference-mode predictions over a whole split."""
        conf = Confusion()
        for a in range(0, len(x), self.chunk):
            xb = np.ascontiguousarray(x[a:a + self.chunk], dtype=np.float32)
            conf.add(y[a:a + self.chunk], np.asarray(self._fn(xb)), threshold)
        return conf


def recompute_bn_statistics(model, x: np.ndarray, batch_size: int) -> int:
    """Set every BatchNormalization layer's running mean and variance to the average of its
    batch statistics over one pass of ``x`` (training-mode forward passes, weights kept).
    Returns the number of batches used."""
    import keras

    bns = [layer for layer in model._flatten_layers()
           if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns or len(x) == 0:
        return 0
    n_full = len(x) // batch_size
    stops = [(i * batch_size, (i + 1) * batch_size) for i in range(n_full)] or [(0, len(x))]
    momenta = [bn.momentum for bn in bns]
    try:
        for k, (a, b) in enumerate(stops):
            for bn in bns:
                bn.momentum = k / (k + 1.0)  # running mean of the per-batch statistics
            model(x[a:b], training=True)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
    return len(stops)


# ------------------------------------------------------------------------------------
# callbacks
# ------------------------------------------------------------------------------------

HISTORY_FIELDS = ("epoch", "loss", "test_precision", "test_recall", "test_f1", "test_iou",
                  "seconds")


def _test_monitor(x, y, threshold: float, scorer: "InferenceScorer", patience: int,
                  max_seconds: float | None, history: Path, progress=None,
                  score_start: bool = False):
    """A Keras callback; per epoch: test metrics over the whole split (inference mode) into
    the logs and a CSV row of ``history``; keeps the best weights by test F1; stops after
    ``patience`` epochs without improvement or when ``max_seconds`` have passed.
    ``score_start``: the model as training begins is scored too, as epoch 0 (fine-tuning:
    the starting model is a candidate checkpoint)."""
    import keras

    class TestMonitor(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best_f1, self.best_epoch, self.best_weights, self.best_scores = -1.0, -1, None, {}
            self.epochs_run = 0
            self.t0 = time.perf_counter()
            self.first_epoch_seconds = None
            self.scoring_seconds = 0.0
            self.start_scores = None
            with open(history, "w", newline="") as fh:
                csv.writer(fh).writerow(HISTORY_FIELDS)

        def on_train_begin(self, logs: dict | None = None) -> None:
            if score_start:
                self.start_scores = self._score(0, {}).as_dict()

        def _score(self, epoch: int, logs: dict) -> Confusion:
            """Test-split scores of the current weights as ``epoch`` (history row, best)."""
            t_score = time.perf_counter()
            conf = scorer.confusion(x, y, threshold)
            self.scoring_seconds += time.perf_counter() - t_score
            s = conf.scores()
            for key, value in s.items():
                logs[f"test_{key}"] = value
            row = {"epoch": epoch, "seconds": round(time.perf_counter() - self.t0, 3),
                   **{k: float(v) for k, v in logs.items()}}
            with open(history, "a", newline="") as fh:
                csv.writer(fh).writerow([row.get(k, "") for k in HISTORY_FIELDS])
            if s["f1"] > self.best_f1:
                self.best_f1, self.best_epoch, self.best_scores = s["f1"], epoch, conf.as_dict()
                self.best_weights = [w.copy() for w in self.model.get_weights()]
            return conf

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs if logs is not None else {}
            if self.first_epoch_seconds is None:
                self.first_epoch_seconds = time.perf_counter() - self.t0
            self._score(epoch + 1, logs)
            self.epochs_run = epoch + 1
            if progress is not None:
                progress(epoch + 1, logs)
            if epoch + 1 - self.best_epoch >= patience:
                self.model.stop_training = True
            if max_seconds is not None and time.perf_counter() - self.t0 > max_seconds:
                log.info("time budget of %.0f s reached after epoch %d", max_seconds, epoch + 1)
                self.model.stop_training = True

    return TestMonitor()


# ------------------------------------------------------------------------------------
# baseline
# ------------------------------------------------------------------------------------

def threshold_baseline(data: PatchDataset, max_pixels: int = 2_000_000, seed: int = 0) -> dict:
    """Best single threshold on the change alone: each channel and the channel mean, either
    sign, threshold chosen for the best F1 on the train split, then scored on the test split."""
    rng = np.random.default_rng(seed)
    y_train = data.y_train[..., 0].reshape(-1) > 0.5
    features = {name: (lambda x, i=i: x[..., i]) for i, name in enumerate(data.channels)}
    if len(data.channels) > 1:
        features["mean of channels"] = lambda x: x.mean(axis=-1)
    pick = None
    if y_train.size > max_pixels:
        pick = rng.choice(y_train.size, max_pixels, replace=False)
    best: dict[str, Any] = {"train_f1": -1.0}
    for name, fn in features.items():
        v_all = fn(data.x_train).reshape(-1)
        v, t = (v_all, y_train) if pick is None else (v_all[pick], y_train[pick])
        for sign, (thr, f1) in zip((1.0, -1.0), _best_thresholds(v, t)):
            if f1 > best["train_f1"]:
                best = {"feature": name, "sign": "greater" if sign > 0 else "less",
                        "threshold_normalised": sign * thr, "train_f1": f1, "_fn": fn,
                        "_sign": sign, "_thr": thr}
    fn, sign, thr = best.pop("_fn"), best.pop("_sign"), best.pop("_thr")
    test = Confusion().add(data.y_test, (sign * fn(data.x_test)) >= thr, 0.5)
    best["test"] = test.as_dict()
    idx = data.channels.index(best["feature"]) if best["feature"] in data.channels else None
    if idx is not None:
        best["threshold"] = (best["threshold_normalised"] * data.normalisation["std"][idx]
                             + data.normalisation["mean"][idx])
    return best


def _best_threshold(values: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``values >= threshold`` (exact, by sorting)."""
    order = np.argsort(-values)
    return _best_cut(values[order], truth[order])


def _best_thresholds(values: np.ndarray, truth: np.ndarray) -> tuple[tuple[float, float], ...]:
    """:func:`_best_threshold` of ``values`` and of ``-values`` from one sort (a cut only
    falls between distinct values, so the order within ties does not matter)."""
    order = np.argsort(-values)
    v, t = values[order], truth[order]
    return _best_cut(v, t), _best_cut(-v[::-1], t[::-1])


def _best_cut(v: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the best cut of ``v`` sorted in descending order."""
    tp = np.cumsum(t)
    k = np.arange(1, len(v) + 1)
    fp = k - tp
    fn = t.sum() - tp
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    last = np.r_[v[1:] != v[:-1], True]  # a cut is only possible between distinct values
    f1 = np.where(last, f1, -1.0)
    i = int(np.argmax(f1))
    return float(v[i]), float(f1[i])


# ------------------------------------------------------------------------------------
# one run
# ------------------------------------------------------------------------------------

def run_name(architecture: str, filters: int, batch_size: int, learning_rate: float,
             prefix: str = "", init: str | os.PathLike | None = None) -> str:
    """Folder name of one configuration, e.g. ``G1_dppa_unet_f16_b8_lr0.0005``; a run
    fine-tuned from ``init`` gets ``_from-<its file stem>`` so that it does not replace the
    same configuration trained from scratch."""
    name = f"{prefix}{architecture}_f{filters}_b{batch_size}_lr{learning_rate:g}"
    return name if init is None else f"{name}_from-{Path(init).stem}"


def read_result(run_dir: str | os.PathLike) -> dict | None:
    """The result of a finished run (None when the run is absent or incomplete)."""
    d = Path(run_dir)
    try:
        result = json.loads((d / RESULT).read_text())
    except (OSError, ValueError):
        return None
    if not result.get("complete") or not (d / MODEL).is_file() or not (d / HISTORY).is_file():
        return None
    return result


def run_settings(*, architecture: str, filters: int, batch_size: int, learning_rate: float,
                 epochs: int, patience: int, seed: int, depth: int, threshold: float,
                 bn_momentum: float | None = None, augment: bool = True,
                 max_seconds: float | None = None,
                 init: str | os.PathLike | None = None,
                 fine_tune_lr_factor: float = FINE_TUNE_LR_FACTOR,
                 precision: str = "auto") -> dict[str, Any]:
    """The resolved settings of one training run (what its provenance records); the
    fine-tuning factor only when ``init`` is given (it changes nothing otherwise)."""
    from .nets import BN_MOMENTUM

    tuning = {} if init is None else {"fine_tune_lr_factor": float(fine_tune_lr_factor)}
    return {"architecture": architecture, "filters": int(filters),
            "batch_size": int(batch_size), "learning_rate": float(learning_rate),
            "epochs": int(epochs), "patience": int(patience), "seed": int(seed),
            "depth": int(depth), "threshold": float(threshold),
            "bn_momentum": float(bn_momentum or BN_MOMENTUM), "augment": augment,
            "max_seconds": max_seconds, "precision": precision,
            "init": None if init is None else str(init), **tuning}


def run_provenance(dataset_dir: str | os.PathLike, settings: dict[str, Any]) -> Provenance:
    """What decides a training run: its settings, the dataset it learns from (the
    dataset's own provenance digest, or its manifest's fingerprint for a user dataset) and
    the starting model's file when it fine-tunes."""
    manifest = Path(dataset_dir) / MANIFEST
    try:
        recorded = json.loads(manifest.read_text()).get("provenance")
    except (OSError, ValueError):
        recorded = None
    dataset = (Provenance.from_dict(recorded).digest if isinstance(recorded, dict)
               else file_fingerprint(manifest))
    init = settings.get("init")
    return Provenance(stage="train", settings=settings,
                      inputs={"dataset": dataset, "init": file_fingerprint(init) if init else None})


def _reusable(run_dir: Path, expected: Provenance) -> dict | None:
    """The finished run in ``run_dir`` when it was made as ``expected`` says, else None."""
    result = read_result(run_dir)
    if result is None or not isinstance(result.get("provenance"), dict):
        return None
    return result if is_current(Provenance.from_dict(result["provenance"]), expected) else None


def train_run(dataset_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
              architecture: str = "dppa_unet", filters: int = 32, batch_size: int = 16,
              learning_rate: float = 5e-4, epochs: int = 60, patience: int = 12,
              seed: int = 0, depth: int = 4, threshold: float = 0.5,
              bn_momentum: float | None = None, augment: bool = True,
              max_seconds: float | None = None, progress: bool = False,
              data: PatchDataset | None = None, init: str | os.PathLike | None = None,
              fine_tune_lr_factor: float = FINE_TUNE_LR_FACTOR, precision: str = "auto") -> dict:
    """Train one configuration on a dataset folder; write model, history and result.
    ``init``: start from that trained model's weights (fine-tuning, :func:`initial_model`),
    scored as epoch 0, with Adam's rate ``learning_rate * fine_tune_lr_factor``."""
    import keras

    from . import nets

    t_start = time.perf_counter()
    data = data or load_dataset(dataset_dir)
    out = Path(out_dir)
    settings = run_settings(architecture=architecture, filters=filters, batch_size=batch_size,
                            learning_rate=learning_rate, epochs=epochs, patience=patience,
                            seed=seed, depth=depth, threshold=threshold,
                            bn_momentum=bn_momentum, augment=augment, max_seconds=max_seconds,
                            init=init, fine_tune_lr_factor=fine_tune_lr_factor,
                            precision=precision)
    prov = run_provenance(dataset_dir, settings)
    # the change-threshold baseline is numpy only: it runs beside the training
    baseline = _Background(threshold_baseline, data, seed=seed)
    set_seed(seed)
    strategy = choose_strategy()
    t0 = time.perf_counter()
    with precision_policy(precision) as policy, strategy.scope():
        model = (nets.build(architecture, len(data.channels), filters, depth,
                            settings["bn_momentum"]) if init is None
                 else initial_model(init, data, architecture))
        rate = learning_rate if init is None else learning_rate * fine_tune_lr_factor
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=nets.DiceLoss())
        build_optimizer(model)
    scorer = InferenceScorer(model, data.x_test.shape[1:], max(16, batch_size))
    pipeline = make_pipeline(data.x_train, data.y_train, batch_size, seed, augment, epochs)
    t_fit = time.perf_counter()
    with _progress(progress, epochs, run_name(architecture, filters, batch_size,
                                               learning_rate)) as report:
        out.mkdir(parents=True, exist_ok=True)
        partial = out / f".{HISTORY}.part"
        monitor = _test_monitor(data.x_test, data.y_test, threshold, scorer, patience,
                                max_seconds, partial, report, score_start=init is not None)
        model.fit(pipeline, epochs=epochs, verbose=0, shuffle=False, callbacks=[monitor])
    train_seconds = time.perf_counter() - t0
    t_after = time.perf_counter()
    if monitor.best_weights is not None:
        model.set_weights(monitor.best_weights)
    test, bn_used, bn_batches = _settle_bn(model, data, monitor, threshold, batch_size, scorer)
    train_scores = scorer.confusion(data.x_train, data.y_train, threshold)
    batch_stats = training_mode_confusion(model, data.x_test, data.y_test, threshold, batch_size)
    t_scored = time.perf_counter()
    result = {
        **settings, "group": data.group, "channels": data.channels,
        "dataset": str(Path(dataset_dir)), "patch_size": data.patch_size,
        "n_train": len(data.x_train), "n_test": len(data.x_test),
        "params": int(model.count_params()), "precision_policy": policy,
        "replicas": int(strategy.num_replicas_in_sync),
        "epochs_run": monitor.epochs_run, "best_epoch": monitor.best_epoch,
        "test": test.as_dict(), "train": train_scores.as_dict(),
        "test_running_bn": monitor.best_scores, "bn_recompute_batches": bn_batches,
        "bn_statistics": bn_used, "test_training_mode_bn": batch_stats.as_dict(),
        "baseline": baseline.result(),
        "train_seconds": round(train_seconds, 2),
        "patches_per_second": round(monitor.epochs_run * len(data.x_train) / train_seconds, 3),
        "provenance": prov.to_dict(),
    }
    if init is not None:   # what fine-tuning started from and the rate it used
        result.update({"start_test": monitor.start_scores, "optimizer_learning_rate": rate})
    timing = {"setup": t_fit - t_start, "first_epoch": monitor.first_epoch_seconds,
              "fit": t_after - t_fit, "epoch_scoring": monitor.scoring_seconds,
              "bn_and_final_scores": t_scored - t_after}
    if _is_chief():
        _write_run(out, model, data, result, partial, timing)
    return result


def initial_model(path: str | os.PathLike, data: PatchDataset, architecture: str):
    """The trained model at ``path`` to fine-tune on ``data``: it must take the same input
    group and channels and have the same architecture (a one-line error otherwise)."""
    from .modelio import load_model

    model, meta = load_model(path)
    if meta["group"] != data.group or list(meta["channels"]) != list(data.channels):
        raise InputError(f"{path} was trained on {meta['group']} ({', '.join(meta['channels'])}), "
                         f"the dataset is {data.group} ({', '.join(data.channels)}): start from "
                         f"a model of the same group and channels")
    if meta["architecture"] != architecture:
        raise InputError(f"{path} is a {meta['architecture']}, not a {architecture}: choose "
                         f"--architecture {meta['architecture']} or another starting model")
    return model


class _Background:
    """``fn(*args, **kwargs)`` in a daemon thread (for numpy work that releases the GIL);
    :meth:`result` waits for it and re-raises its exception."""

    def __init__(self, fn, *args, **kwargs) -> None:
        import threading

        self._value, self._error = None, None

        def work() -> None:
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
                self._error = exc

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def training_mode_confusion(model, x: np.ndarray, y: np.ndarray, threshold: float,
                            batch_size: int) -> Confusion:
    """Counts of predictions made with batch statistics (BN in training mode), as metrics
    computed during ``fit`` see them; the model's weights and BN averages are restored."""
    saved = [w.copy() for w in model.get_weights()]
    conf = Confusion()
    try:
        for a in range(0, len(x), batch_size):
            p = np.asarray(model(x[a:a + batch_size], training=True), dtype=np.float32)
            conf.add(y[a:a + batch_size], p, threshold)
    finally:
        model.set_weights(saved)
    return conf


def _settle_bn(model, data: PatchDataset, monitor, threshold: float,
               batch_size: int, scorer: "InferenceScorer | None" = None
               ) -> tuple[Confusion, str, int]:
    """Recompute the BN statistics of the best weights; keep them unless the running
    averages of the checkpoint score a higher test F1 (both measured in inference mode)."""
    running = [w.copy() for w in model.get_weights()]
    batches = recompute_bn_statistics(model, data.x_train, batch_size)
    if scorer is None:
        test = predict_confusion(model, data.x_test, data.y_test, threshold, batch_size)
    else:
        test = scorer.confusion(data.x_test, data.y_test, threshold)
    if monitor.best_scores and monitor.best_scores["f1"] > test.scores()["f1"]:
        model.set_weights(running)
        b = monitor.best_scores
        return Confusion(b["tp"], b["fp"], b["fn"], b["tn"]), "running averages", batches
    return test, "recomputed", batches


def _write_run(out: Path, model, data: PatchDataset, result: dict, partial: Path,
               timing: dict | None = None) -> None:
    from .modelio import save_model

    t_save = time.perf_counter()
    meta = {"group": data.group, "channels": data.channels,
            "normalisation": {"mean": data.normalisation["mean"],
                              "std": data.normalisation["std"]},
            "patch_size": data.patch_size, "nan_policy": "normalise, then NaN -> 0",
            **{k: result[k] for k in ("architecture", "filters", "depth", "batch_size",
                                      "learning_rate", "threshold", "seed", "best_epoch")},
            "test_metrics": {k: result["test"][k] for k in ("precision", "recall", "f1", "iou")}}
    save_model(model, out / MODEL, meta)
    os.replace(partial, out / HISTORY)
    result["model"] = str(out / MODEL)
    if timing is not None:   # seconds per phase of the run
        timing = {**timing, "save": time.perf_counter() - t_save}
        result["timing"] = {k: None if v is None else round(v, 3) for k, v in timing.items()}
    result["complete"] = True
    with atomic_path(out / RESULT) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float))


@contextlib.contextmanager
def _progress(enabled: bool, epochs: int, label: str):
    """A rich progress bar over epochs (a no-op reporter when disabled)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[status]}")) as bar:
        task = bar.add_task(label, total=epochs, status="")

        def report(epoch: int, logs: dict) -> None:
            bar.update(task, completed=epoch, status=f"loss {logs.get('loss', float('nan')):.3f} "
                                                     f"test F1 {logs.get('test_f1', 0):.3f}")
        yield report


# ------------------------------------------------------------------------------------
# grid search and events
# ------------------------------------------------------------------------------------

def grid_configs(grid: dict[str, list]) -> list[dict]:
    """Every (filters, batch_size, learning_rate) combination of a grid, in paper order."""
    unknown = set(grid) - {"filters", "batch_size", "learning_rate"}
    if unknown:
        raise ConfigError(f"model grid has unknown keys {sorted(unknown)}; use filters, "
                          "batch_size, learning_rate")
    keys = ("filters", "batch_size", "learning_rate")
    values = [list(grid[k]) for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def table_row(name: str, result: dict) -> dict:
    """One line of the grid table (as the paper's Tables 3 and 4)."""
    t = result["test"]
    return {"run": name, "filters": result["filters"], "batch_size": result["batch_size"],
            "learning_rate": result["learning_rate"], "precision": t["precision"],
            "recall": t["recall"], "f1": t["f1"], "iou": t["iou"],
            "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
            "train_seconds": result["train_seconds"]}


def train_grid(dataset_dir: str | os.PathLike, out_root: str | os.PathLike,
               grid: dict[str, list], *, architecture: str = "dppa_unet", prefix: str = "",
               progress: bool = False, **run_kwargs: Any) -> tuple[dict, list[dict]]:
    """Train every grid configuration (skipping finished ones); (best result, table rows)."""
    configs = grid_configs(grid)
    data = load_dataset(dataset_dir)
    results, rows = [], []
    for i, c in enumerate(configs):
        name = run_name(architecture, c["filters"], c["batch_size"], c["learning_rate"], prefix,
                        run_kwargs.get("init"))
        run_dir = Path(out_root) / name
        expected = run_provenance(dataset_dir, run_settings(architecture=architecture, **c,
                                                             **run_kwargs))
        result = _reusable(run_dir, expected)
        if result is not None:
            log.info("[%d/%d] %s done before (F1 %.3f), skipped", i + 1, len(configs), name,
                     result["test"]["f1"])
        else:
            log.info("[%d/%d] training %s", i + 1, len(configs), name)
            result = train_run(dataset_dir, run_dir, architecture=architecture, data=data,
                               progress=progress, **c, **run_kwargs)
        result.setdefault("run", name)
        results.append(result)
        rows.append(table_row(name, result))
    best = max(results, key=lambda r: r["test"]["f1"])
    return best, rows


def train_event(cfg, *, group: str | None = None, architecture: str | None = None,
                grid: bool | dict = False, epochs: int | None = None,
                patience: int | None = None, max_seconds: float | None = None,
                progress: bool = False) -> TrainedModel:
    """Train an event's model (one setting, or the grid when ``grid`` is true or a subset
    mapping); the best run is copied to ``models/<group>_<architecture>/``."""
    from .workdir import WorkDir

    updates = {k: v for k, v in {"group": group, "architecture": architecture,
                                 "epochs": epochs, "patience": patience}.items() if v}
    m = cfg.model.model_copy(update=updates).resolved()
    wd = WorkDir(cfg.output)
    ds_dir = _event_dataset(cfg, m.group)
    kwargs = {"epochs": m.epochs, "patience": m.patience, "seed": m.seed, "depth": m.depth,
              "threshold": m.threshold, "max_seconds": max_seconds,
              "init": None if m.init is None else str(m.init),
              "fine_tune_lr_factor": m.fine_tune_lr_factor, "precision": m.precision}
    prefix = f"{m.group}_"
    use_grid = bool(grid) or m.grid_search
    if use_grid:
        values = grid if isinstance(grid, dict) else (m.grid or {})
        values = {**{"filters": [m.filters], "batch_size": [m.batch_size],
                     "learning_rate": [m.learning_rate]}, **values}
        best, rows = train_grid(ds_dir, wd.root / "models", values,
                                architecture=m.architecture, prefix=prefix,
                                progress=progress, **kwargs)
    else:
        name = run_name(m.architecture, m.filters, m.batch_size, m.learning_rate, prefix,
                        kwargs["init"])
        run_dir = wd.model_run(name)
        expected = run_provenance(ds_dir, run_settings(
            architecture=m.architecture, filters=m.filters, batch_size=m.batch_size,
            learning_rate=m.learning_rate, **kwargs))
        best = _reusable(run_dir, expected)
        if best is None:
            best = train_run(ds_dir, run_dir, architecture=m.architecture, filters=m.filters,
                             batch_size=m.batch_size, learning_rate=m.learning_rate,
                             progress=progress, **kwargs)
        best.setdefault("run", name)
        rows = [table_row(name, best)]
    return publish_best(best, rows, wd.model_run(f"{m.group}_{m.architecture}"))


def _event_dataset(cfg, group: str) -> Path:
    """The event's dataset folder, built (or refreshed) unless it is a user-made one."""
    from .workdir import WorkDir

    ds_dir = WorkDir(cfg.output).dataset(group)
    manifest = ds_dir / MANIFEST
    if manifest.is_file():
        try:
            fmt = json.loads(manifest.read_text()).get("format")
        except ValueError:
            raise InputError(f"{manifest} is not valid JSON") from None
        if fmt != FORMAT:
            return ds_dir
    return build_dataset(cfg, group).folder


def publish_best(best: dict, rows: list[dict], dest: str | os.PathLike) -> TrainedModel:
    """Copy the best run's model to ``dest`` with a result.json holding the grid table."""
    dest = Path(dest)
    if "model" not in best:   # a non-chief multi-worker task wrote nothing
        return TrainedModel(dest, best)
    src = Path(best["model"])
    with atomic_path(dest / MODEL) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
    summary = {**best, "best_run": best.get("run"), "model": str(dest / MODEL), "table": rows,
               "test_metrics": {k: best["test"][k] for k in ("precision", "recall", "f1", "iou")},
               "settings": {k: best[k] for k in ("architecture", "filters", "batch_size",
                                                 "learning_rate", "epochs", "patience", "seed")}}
    with atomic_path(dest / RESULT) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float))
    with atomic_path(dest / "grid.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return TrainedModel(dest, summary)



def best_model_path(cfg) -> Path:
    """Where :func:`train_event` puts the event's chosen model:
    ``models/<group>_<architecture>/model.keras`` (no TensorFlow import)."""
    from .workdir import WorkDir

    m = cfg.model.resolved()
    return WorkDir(cfg.output).model_run(f"{m.group}_{m.architecture}") / MODEL
