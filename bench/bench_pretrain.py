"""Benchmark: pretraining on a simulated corpus, then fine-tuning (issue 18, "Must show" 4).

1. ``sarflow.simulate.corpus`` writes ``--corpus`` (24) varied hard-preset events
   (``--corpus-size``, 512 x 512 px), each with both passes (``--both-passes``, the default:
   the stacker's fused change needs both; with ``--no-both-passes`` the drawn passes are
   kept and one-pass events are left out and listed); each goes through the normal
   preprocess and stack stages, and every 128 x 128 patch of its G1 raster (the whole event:
   these events are not the one evaluated) becomes training data, normalised with that
   event's own train-split statistics, as fine-tuning later normalises the new event.
2. DPPA-UNet (CPU-sized: the demo's settings, but up to ``--pretrain-epochs`` (80) epochs
   within ``--pretrain-minutes`` (30)) is pretrained on the pooled patches and kept as
   ``<corpus>/models/G1_dppa_unet-<corpus seed>-<sarflow version>.keras``.
3. For each new event (``--new-seeds``, hard preset, not in the corpus) the normal stages
   run twice with the same settings and seed: trained from scratch on the event's training
   area, and fine-tuned from the pretrained model (``model.init``: the starting model is
   epoch 0 of the run, learning rate x ``--fine-tune-lr-factor``).  Both are scored on the
   event's validation area (the evaluate stage), against the change threshold (best single
   threshold chosen on the training area's train split, see ``bench_realism``).

Targets (the issue's): fine-tuned - scratch >= 0.05 F1 and fine-tuned - threshold >= 0.2 on
the validation area; the JSON says for each new event whether they hold.

    python bench/bench_pretrain.py [--root /tmp/pretrain] [--corpus 24] [--new-seeds 101,102]

Prints one JSON object; folders under ``--root`` are reused by a second run.  With the
defaults it takes about 60 minutes on a loaded 2-core machine (results:
docs/pretrain_results.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sarflow.config import FINE_TUNE_LR_FACTOR  # noqa: E402
from sarflow.grid import atomic_path  # noqa: E402

from bench_realism import (cpu_model, machine, run_and_score,  # noqa: E402
                           simulated_config, with_model)


MIN_EVENTS = 10
"""The issue's smallest corpus: at least this many events pretrain the model."""


def fixed_corpus(n: int, out: Path, seed: int, size: tuple[int, int], scenes: int) -> Path:
    """A corpus whose events all have the new events' settings (hard preset, ``scenes``
    dates per pass and window), only the seed differing (``seed * 1000 + 5000 + k``, never a
    new event's): the in-distribution case, an upper bound on what pretraining can add to
    the new events.  Same ``corpus.json`` layout as ``simulate_corpus``."""
    from sarflow.simulate import SimulationSettings
    from sarflow.simulate.corpus import corpus_event

    out.mkdir(parents=True, exist_ok=True)
    settings = SimulationSettings.preset("hard", size=size, scenes_per_window=scenes)
    events = [corpus_event(out, k, settings, seed * 1000 + 5000 + k) for k in range(n)]
    doc = {"seed": seed, "preset": "hard (fixed settings)", "size": list(size),
           "both_passes": True, "events": events}
    with atomic_path(out / "corpus.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    return out / "corpus.json"


def corpus_patches(corpus_json: Path, model: dict) -> tuple[list[Path], dict[str, str]]:
    """Preprocess and stack every corpus event; one G1 patch dataset of its whole grid each.
    Events the stacker refuses (one pass only: G4-G6 need ascending, the fusion both) are
    left out and returned with the reason."""
    from sarflow.config import load_config
    from sarflow.dataset import make_patches, rasterize_labels
    from sarflow.errors import InputError
    from sarflow.pipeline import RunOptions, run_event
    from sarflow.workdir import WorkDir

    doc = json.loads(corpus_json.read_text())
    out, skipped = [], {}
    for k, ev in enumerate(doc["events"]):
        cfg = with_model(load_config(corpus_json.parent / ev["event"]), model)
        try:
            run_event(cfg, until="stack", options=RunOptions(engine="native", progress=False))
        except InputError as exc:
            skipped[ev["folder"]] = f"{'+'.join(ev['settings']['passes'])}: {str(exc)[:90]}"
            continue
        wd = WorkDir(cfg.output)
        if not wd.labels.exists():
            rasterize_labels(cfg.inventory, cfg.grid(), wd.labels)
        out.append(make_patches(wd.group("G1"), wd.labels, wd.root / "dataset" / "G1_whole",
                                patch_size=128, test_fraction=0.2, seed=k, group="G1"))
    return out, skipped


def pooled_dataset(datasets: list[Path], out: Path) -> dict:
    """Write the per-event normalised patches of ``datasets`` as one dataset folder (the
    image/mask-pairs format, identity normalisation: each event is already normalised)."""
    import numpy as np

    from sarflow.dataset import MANIFEST, load_dataset

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "masks").mkdir()
    patches, channels, counts = [], None, {"train": 0, "test": 0}
    for k, path in enumerate(datasets):
        d = load_dataset(path)
        channels = channels or d.channels
        for split, xs, ys in (("train", d.x_train, d.y_train), ("test", d.x_test, d.y_test)):
            for i, (x, y) in enumerate(zip(xs, ys)):
                stem = f"e{k:03d}_{split}_{i:03d}"
                np.save(tmp / "images" / f"{stem}.npy", x)
                np.save(tmp / "masks" / f"{stem}.npy", y[..., 0].astype(np.uint8))
                patches.append({"image": f"images/{stem}.npy", "mask": f"masks/{stem}.npy",
                                "split": split})
                counts[split] += 1
    manifest = {"group": "G1", "channels": channels, "patches": patches,
                "normalisation": {"mean": [0.0] * len(channels), "std": [1.0] * len(channels),
                                  "from": "each event's own train split (already applied)"},
                "sources": [str(p) for p in datasets]}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return counts


def pretrain(corpus_json: Path, model: dict, max_minutes: float,
             min_events: int = MIN_EVENTS) -> tuple[Path, dict]:
    """Pretrain on the corpus (once); the versioned model path and the run's summary."""
    from sarflow import __version__
    from sarflow.train import read_result, train_run

    corpus = corpus_json.parent
    seed = json.loads(corpus_json.read_text())["seed"]
    target = corpus / "models" / f"G1_dppa_unet-{seed}-{__version__}.keras"
    run_dir = corpus / "pretrain" / "run"
    t0 = time.perf_counter()
    datasets, skipped = corpus_patches(corpus_json, model)
    if len(datasets) < min_events:
        raise SystemExit(f"only {len(datasets)} corpus events could be stacked (skipped: "
                         f"{skipped}); give a larger --corpus")
    prepare_s = time.perf_counter() - t0
    result = read_result(run_dir)
    keys = ("architecture", "filters", "batch_size", "learning_rate", "epochs", "patience",
            "seed")
    card = target.with_suffix(".json")
    used = [Path(p).parents[2].name for p in datasets]
    same_corpus = card.is_file() and json.loads(card.read_text())["corpus"]["used"] == used
    if result is not None and ({k: result[k] for k in keys} != {k: model[k] for k in keys}
                               or result["max_seconds"] != 60 * max_minutes
                               or not same_corpus):
        result = None      # made with other settings or other events: pretrain again
    pooled = corpus / "pretrain" / "dataset"
    if result is None:
        pooled_dataset(datasets, pooled)
        result = train_run(pooled, run_dir, architecture=model["architecture"],
                           filters=model["filters"], batch_size=model["batch_size"],
                           learning_rate=model["learning_rate"], epochs=model["epochs"],
                           patience=model["patience"], seed=model["seed"],
                           max_seconds=60 * max_minutes)
    with atomic_path(target) as tmp:   # a new file: never writes through a hard link
        shutil.copyfile(run_dir / "model.keras", tmp)
    write_model_card(target, corpus_json, datasets, skipped, result)
    return target, {"model": str(target), "corpus_events_used": len(datasets),
                    "corpus_events_skipped": skipped,
                    "prepare_seconds": round(prepare_s, 1),
                    "n_train": result["n_train"], "n_test": result["n_test"],
                    "epochs_run": result["epochs_run"], "best_epoch": result["best_epoch"],
                    "train_seconds": result["train_seconds"],
                    "corpus_test_split_f1": round(result["test"]["f1"], 4)}


def write_model_card(target: Path, corpus_json: Path, datasets: list[Path],
                     skipped: dict[str, str], result: dict) -> Path:
    """``<model>.json`` beside the pretrained model: its version (sarflow's, the corpus
    seed), what it was trained on and how, and the model file's SHA-256."""
    import hashlib

    from sarflow import __version__

    doc = json.loads(corpus_json.read_text())
    card = {"model": target.name,
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "sarflow_version": __version__,
            "corpus": {"seed": doc["seed"], "preset": doc["preset"], "size": doc["size"],
                       "events": len(doc["events"]),
                       "used": [Path(p).parents[2].name for p in datasets],
                       "skipped": skipped},
            "normalisation": "each event's own train-split mean/std (fine-tuning renormalises)",
            "settings": {k: result[k] for k in ("architecture", "filters", "depth", "batch_size",
                                                "learning_rate", "epochs", "patience", "seed",
                                                "max_seconds")},
            "group": result["group"], "channels": result["channels"],
            "corpus_test_split": {k: result["test"][k] for k in ("precision", "recall", "f1")}}
    path = target.with_suffix(".json")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(card, indent=1))
    return path


def new_event(root: Path, seed: int, size: tuple[int, int], scenes: int, model: dict,
              pretrained: Path, fine_tune_lr_factor: float) -> dict:
    """Scratch vs fine-tuned vs threshold on a new hard event's validation area."""
    folder = root / f"new_hard_seed{seed}"
    t0 = time.perf_counter()
    cfg = simulated_config(folder, seed, size, scenes, "hard", model)
    simulate_s = round(time.perf_counter() - t0, 1)
    scratch = run_and_score(cfg)
    (folder / "bench_scratch.json").write_text(json.dumps(scratch, indent=1))
    tuned = run_and_score(with_model(cfg, {**model, "init": str(pretrained),
                                           "fine_tune_lr_factor": fine_tune_lr_factor}))
    (folder / "bench_fine_tuned.json").write_text(json.dumps(tuned, indent=1))
    v = {"fine_tuned": tuned["dppa_unet"]["validation"]["f1"],
         "scratch": scratch["dppa_unet"]["validation"]["f1"],
         "threshold": scratch["threshold"]["validation"]["f1"]}
    return {"event": str(folder / "event.yaml"), "seed": seed, "simulate_seconds": simulate_s,
            "scratch": scratch, "fine_tuned": tuned, "validation_f1": v,
            "fine_tuned_minus_scratch": round(v["fine_tuned"] - v["scratch"], 4),
            "fine_tuned_minus_threshold": round(v["fine_tuned"] - v["threshold"], 4),
            "target_scratch_0.05_met": v["fine_tuned"] - v["scratch"] >= 0.05,
            "target_threshold_0.2_met": v["fine_tuned"] - v["threshold"] >= 0.2}


def pooled_validation(events: list[dict]) -> dict:
    """F1 of each method over all new events' validation areas together (summed pixel
    counts): the events' validation thirds hold very different numbers of landslide pixels
    (seed 104: 409), so one event's F1 can rest on a few hundred pixels."""
    def f1(scores: list[dict]) -> float:
        tp, fp, fn = (sum(s[k] for s in scores) for k in ("tp", "fp", "fn"))
        return round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else 0.0

    v = {"fine_tuned": f1([e["fine_tuned"]["dppa_unet"]["validation"] for e in events]),
         "scratch": f1([e["scratch"]["dppa_unet"]["validation"] for e in events]),
         "threshold": f1([e["scratch"]["threshold"]["validation"] for e in events])}
    return {"f1": v, "fine_tuned_minus_scratch": round(v["fine_tuned"] - v["scratch"], 4),
            "fine_tuned_minus_threshold": round(v["fine_tuned"] - v["threshold"], 4),
            "landslide_pixels": sum(e["scratch"]["threshold"]["validation"]["tp"]
                                    + e["scratch"]["threshold"]["validation"]["fn"]
                                    for e in events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/sarflow-bench-pretrain")
    parser.add_argument("--corpus", type=int, default=24)
    parser.add_argument("--corpus-seed", type=int, default=0)
    parser.add_argument("--corpus-size", default="512,512")
    parser.add_argument("--both-passes", action=argparse.BooleanOptionalAction, default=True,
                        help="every corpus event ascending and descending (the stacker needs "
                             "both; --no-both-passes: the drawn passes, one-pass events left "
                             "out)")
    parser.add_argument("--corpus-draw", choices=("varied", "fixed"), default="varied",
                        help="varied: simulate_corpus's drawn settings (the issue's corpus); "
                             "fixed: every corpus event the new events' settings, only the "
                             "seed differing (in-distribution upper bound, in <root>/corpus_fixed)")
    parser.add_argument("--corpus-scenes", type=int, default=None,
                        help="--corpus-draw fixed: dates per pass and window of the corpus "
                             "events (default: --scenes, the new events')")
    parser.add_argument("--new-seeds", default="101,102,103,104")
    parser.add_argument("--new-size", default="512,1024")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--min-events", type=int, default=MIN_EVENTS,
                        help="fewest stackable corpus events (the issue: 10)")
    parser.add_argument("--patience", type=int, default=40,
                        help="early-stopping patience of the new events' runs (scratch and "
                             "fine-tuned alike; default 40 = every epoch; pretraining keeps "
                             "the demo's)")
    parser.add_argument("--pretrain-epochs", type=int, default=80,
                        help="pretraining's most epochs (its patience is the demo's)")
    parser.add_argument("--pretrain-minutes", type=float, default=30.0,
                        help="pretraining's time budget")
    parser.add_argument("--fine-tune-lr-factor", type=float, default=FINE_TUNE_LR_FACTOR,
                        help="fine-tuning's learning rate as a factor of the model's "
                             "(model.fine_tune_lr_factor)")
    args = parser.parse_args()
    from sarflow.simulate.corpus import simulate_corpus

    info = machine()
    t0 = time.perf_counter()
    if args.corpus_scenes is not None and args.corpus_draw != "fixed":
        parser.error("--corpus-scenes needs --corpus-draw fixed (a varied corpus draws its "
                     "events' dates per window)")
    corpus_scenes = args.corpus_scenes or args.scenes
    root = Path(args.root)
    model = cpu_model(args.filters, args.epochs, 0)
    corpus_size = tuple(int(v) for v in args.corpus_size.split(","))
    if args.corpus_draw == "fixed":
        corpus_json = fixed_corpus(args.corpus, root / "corpus_fixed", args.corpus_seed,
                                   corpus_size, corpus_scenes)
    else:
        corpus_json = simulate_corpus(args.corpus, root / "corpus", seed=args.corpus_seed,
                                      preset="hard", size=corpus_size,
                                      both_passes=args.both_passes)
    corpus_s = round(time.perf_counter() - t0, 1)
    pretrained, pre = pretrain(corpus_json, {**model, "epochs": args.pretrain_epochs},
                               args.pretrain_minutes, args.min_events)
    size = tuple(int(v) for v in args.new_size.split(","))
    event_model = {**model, "patience": args.patience or model["patience"]}
    events = [new_event(root, int(s), size, args.scenes, event_model, pretrained,
                        args.fine_tune_lr_factor)
              for s in args.new_seeds.split(",")]
    print(json.dumps({
        "benchmark": "pretrain_finetune", "model": model, **info,
        "corpus": {"events": args.corpus, "seed": args.corpus_seed, "size": list(corpus_size),
                   "preset": "hard", "draw": args.corpus_draw, "both_passes": args.both_passes,
                   "scenes_per_window": corpus_scenes if args.corpus_draw == "fixed" else "drawn",
                   "simulate_or_reuse_seconds": corpus_s},
        "pretrain": {**pre, "max_epochs": args.pretrain_epochs,
                     "budget_minutes": args.pretrain_minutes},
        "new_event_model": event_model,
        "fine_tune_lr_factor": args.fine_tune_lr_factor, "new_event_size": list(size),
        "scenes_per_window": args.scenes,
        "new_events": events,
        "pooled_validation": pooled_validation(events),
        "targets_met_on_all": all(e["target_scratch_0.05_met"] and e["target_threshold_0.2_met"]
                                  for e in events),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }, indent=2, default=float))


if __name__ == "__main__":
    main()
