"""The paper's ablation (``sarflow experiment``): every (group, model) row trained on the
same stack; the table and the check of the paper's orderings are in :mod:`sarflow.ablation`."""

from __future__ import annotations

from typing import Callable, Sequence

from .ablation import experiment_dir, write_table
from .config import EventConfig
from .pipeline import RunOptions, run_event

__all__ = ["EXPERIMENT_ROWS", "experiment_dir", "run_experiment"]

EXPERIMENT_ROWS: list[tuple[str, str]] = [
    *[(g, "dppa_unet") for g in ("G1", "G2", "G3", "G4", "G5", "G6")],
    ("G1", "unet"), ("G1", "segnet"),
]


def run_experiment(cfg: EventConfig, *, rows: Sequence[tuple[str, str]] = EXPERIMENT_ROWS,
                   grid: bool | None = None, options: RunOptions | None = None,
                   on_row: Callable[[str, str], None] | None = None) -> list[dict]:
    """Train every (group, model) row on the same stack; write table.md and table.csv."""
    opt = options or RunOptions()
    run_event(cfg, until="stack", options=opt)
    results = []
    for group, arch in rows:
        if on_row:
            on_row(group, arch)
        results.append(_experiment_row(cfg, group, arch, grid))
    write_table(cfg, results)
    return results


def _experiment_row(cfg: EventConfig, group: str, arch: str, grid: bool | None) -> dict:
    from .dataset import build_dataset
    from .train import train_event

    model = cfg.model.model_copy(update={"group": group, "architecture": arch})
    if grid is not None:
        model = model.model_copy(update={"grid_search": grid})
    sub = cfg.model_copy(update={"model": model})
    build_dataset(sub, group)
    trained = train_event(sub)
    test, settings = trained.test, trained.settings
    return {"group": group, "model": arch,
            **{k: settings.get(k) for k in ("batch_size", "learning_rate", "filters")},
            "precision": test.precision, "recall": test.recall, "f1": test.f1, "iou": test.iou}
