"""`sarflow train`: train DPPA-UNet / U-Net / SegNet on an event's (or any) patch dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import load_event, seed_option


def _numbers(text: str | None, kind: type, option: str) -> list | None:
    """A comma-separated list of numbers, or None when the option was not given."""
    if not text:
        return None
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of "
                                 f"{kind.__name__} values", param_hint=option) from None
    if any(v <= 0 for v in values):
        raise click.BadParameter(f"{text!r}: values must be positive", param_hint=option)
    return values


@click.command()
@click.argument("event_config", metavar="[EVENT.yaml]", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", "dataset_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Train on this dataset folder instead of an event's "
                                 "(sarflow's own or image/mask pairs with a manifest).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="With --dataset: folder for the run folders.")
@click.option("--group", type=click.Choice(["G1", "G2", "G3", "G4", "G5", "G6"]), default=None,
              help="Input group (default: the config's model.group).")
@click.option("--architecture", type=click.Choice(["dppa_unet", "unet", "segnet"]),
              default=None, help="Network (default: the config's, else dppa_unet).")
@click.option("--grid", "use_grid", is_flag=True,
              help="Run the hyperparameter grid (the paper's, or the subset given below).")
@click.option("--filters", default=None, metavar="N[,N..]", help="Base filters (list with --grid).")
@click.option("--batch-size", default=None, metavar="N[,N..]", help="Batch size (list with --grid).")
@click.option("--learning-rate", default=None, metavar="X[,X..]",
              help="Adam learning rate (list with --grid).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Maximum epochs.")
@click.option("--patience", type=click.IntRange(min=1), default=None,
              help="Early stopping: epochs without a better test F1.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop each run's training after this many minutes.")
@seed_option
@click.option("--init", "init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="MODEL.keras",
              help="Start from a trained model (same group and channels): fine-tuning.")
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed_bfloat16",
                                                "mixed_float16"]), default=None,
              help="Compute precision (default: the config's, else auto: mixed float16 on a "
                   "GPU, mixed bfloat16 on a CPU with native bfloat16, else float32).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(event_config: Path | None, dataset_dir: Path | None, out_dir: Path | None,
          group: str | None, architecture: str | None, use_grid: bool, filters: str | None,
          batch_size: str | None, learning_rate: str | None, epochs: int | None,
          patience: int | None, max_minutes: float | None, seed: int | None,
          init: Path | None, precision: str | None, as_json: bool) -> None:
    """Train a model for EVENT.yaml (or on --dataset DIR --out DIR).

    One configuration by default (the config's settings, else models/<architecture>.yaml);
    with --grid every combination of filters x batch size x learning rate (the paper's
    16/32/64/128 x 8/16/32 x 1e-3/5e-4/1e-4 unless lists are given), resuming finished
    runs.  The best run by test F1 is copied to <output>/models/<group>_<architecture>/.
    """
    from ..errors import ConfigError

    grid = {k: v for k, v in {
        "filters": _numbers(filters, int, "--filters"),
        "batch_size": _numbers(batch_size, int, "--batch-size"),
        "learning_rate": _numbers(learning_rate, float, "--learning-rate")}.items() if v}
    if not use_grid and any(len(v) > 1 for v in grid.values()):
        raise ConfigError("several values for filters / batch size / learning rate need --grid")
    max_seconds = None if max_minutes is None else 60 * max_minutes
    architecture = architecture or _init_architecture(init)
    if event_config is not None:
        summary = _train_event(event_config, group, architecture, use_grid, grid, epochs,
                               patience, seed, max_seconds, not as_json, init, precision)
    elif dataset_dir is not None and out_dir is not None:
        summary = _train_dataset(dataset_dir, out_dir, architecture, use_grid, grid, epochs,
                                 patience, seed, max_seconds, not as_json, init, precision)
    else:
        raise ConfigError("give EVENT.yaml, or --dataset DIR and --out DIR")
    if as_json:
        click.echo(json.dumps(dict(summary.summary), indent=2, default=float))
    else:
        _print_table(summary.summary)


def _init_architecture(init: Path | None) -> str | None:
    """The architecture of the starting model (so --architecture need not repeat it)."""
    if init is None:
        return None
    from ..modelio import read_meta

    return read_meta(init)["architecture"]


def _train_event(path, group, architecture, use_grid, grid, epochs, patience, seed,
                 max_seconds, progress, init=None, precision=None):
    from ..train import train_event

    cfg = load_event(path)
    updates = {k: v for k, v in {"seed": seed, "init": init,
                                 "precision": precision}.items() if v is not None}
    if not use_grid:
        updates.update({k: v[0] for k, v in grid.items()})
    if updates:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update=updates)})
    return train_event(cfg, group=group, architecture=architecture,
                       grid=(grid or True) if use_grid else False, epochs=epochs,
                       patience=patience, max_seconds=max_seconds, progress=progress)


def _train_dataset(dataset_dir, out_dir, architecture, use_grid, grid, epochs, patience,
                   seed, max_seconds, progress, init=None, precision=None):
    from ..config import ModelSettings
    from ..train import publish_best, train_grid

    m = ModelSettings(architecture=architecture or "dppa_unet", epochs=epochs,
                      patience=patience, seed=seed or 0,
                      precision=precision or "auto").resolved()
    values = {"filters": [m.filters], "batch_size": [m.batch_size],
              "learning_rate": [m.learning_rate]}
    values.update((m.grid or {}) if use_grid else {})
    values.update(grid)
    best, rows = train_grid(dataset_dir, out_dir, values, architecture=m.architecture,
                            progress=progress, epochs=m.epochs, patience=m.patience, seed=m.seed,
                            depth=m.depth, threshold=m.threshold, max_seconds=max_seconds,
                            init=None if init is None else str(init),
                            fine_tune_lr_factor=m.fine_tune_lr_factor, precision=m.precision)
    return publish_best(best, rows, Path(out_dir) / f"best_{m.architecture}")


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['architecture']} on {summary.get('group') or 'dataset'}: "
                        "test split, inference mode")
    for col in ("filters", "batch", "learning rate", "precision", "recall", "F1", "IoU",
                "best epoch"):
        table.add_column(col, justify="right")
    best = summary.get("best_run")
    for r in summary["table"]:
        style = "bold green" if r["run"] == best else None
        table.add_row(str(r["filters"]), str(r["batch_size"]), f"{r['learning_rate']:g}",
                      f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                      f"{r['iou']:.3f}", f"{r['best_epoch']}/{r['epochs_run']}", style=style)
    console = Console()
    console.print(table)
    b = summary["baseline"]["test"]
    console.print(f"threshold on the change alone ({summary['baseline']['feature']}): "
                  f"F1 {b['f1']:.3f}, IoU {b['iou']:.3f}")
    console.print(f"best model: {summary['model']}")
