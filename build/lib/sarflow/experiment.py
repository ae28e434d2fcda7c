"""The paper's ablation (``sarflow experiment``): every (group, model) row trained on the
same stack, the table in the layout of Pan & Shi 2023's Tables 3 and 4, and the check of
the paper's F1 orderings against this run's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from .config import EventConfig
from .pipeline import RunOptions, run_event
from .workdir import WorkDir

# ------------------------------------------------------------------------------------

EXPERIMENT_ROWS: list[tuple[str, str]] = [
    *[(g, "dppa_unet") for g in ("G1", "G2", "G3", "G4", "G5", "G6")],
    ("G1", "unet"), ("G1", "segnet"),
]
TABLE_COLUMNS = ["group", "model", "batch_size", "learning_rate", "filters", "precision",
                 "recall", "f1", "iou"]


def experiment_dir(cfg: EventConfig) -> Path:
    return WorkDir(cfg.output).root / "experiment"


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
    _write_table(cfg, results)
    return results


def _experiment_row(cfg: EventConfig, group: str, arch: str, grid: bool | None) -> dict:
    from .dataset import build_dataset
    from .train import train_event

    model = cfg.model.model_copy(update={"group": group, "architecture": arch})
    if grid is not None:
        model = model.model_copy(update={"grid_search": grid})
    sub = cfg.model_copy(update={"model": model})
    build_dataset(sub, group)
    result = train_event(sub)
    metrics = result.get("test_metrics", result)
    settings = result.get("settings", result)
    return {"group": group, "model": arch,
            **{k: settings.get(k) for k in ("batch_size", "learning_rate", "filters")},
            **{k: metrics.get(k) for k in ("precision", "recall", "f1", "iou")}}


def _write_table(cfg: EventConfig, rows: list[dict]) -> None:
    import csv
    import io

    out = experiment_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS)
    w.writeheader()
    w.writerows([{k: r.get(k) for k in TABLE_COLUMNS} for r in rows])
    (out / "table.csv").write_text(buf.getvalue())
    (out / "table.md").write_text(markdown_table(rows))


def markdown_table(rows: list[dict]) -> str:
    """The ablation table in the layout of the paper's Tables 3 and 4."""
    head = ["Group", "Model", "Batch size", "Learning rate", "Filters", "Precision",
            "Recall", "F1", "IoU"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["group"], r["model"], r.get("batch_size"), r.get("learning_rate"),
                r.get("filters")] + [_fmt(r.get(k)) for k in ("precision", "recall", "f1", "iou")]
        lines.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else str(v)


def experiment_rows(cfg: EventConfig) -> list[dict]:
    """The ablation rows written by the last experiment (empty when none ran)."""
    import csv

    path = experiment_dir(cfg) / "table.csv"
    if not path.exists():
        return []
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        for k in ("precision", "recall", "f1", "iou", "learning_rate"):
            r[k] = float(r[k]) if r.get(k) not in (None, "", "None") else None
    return rows


PAPER_ORDER: list[tuple[tuple[str, str], tuple[str, str]]] = [
    (("G1", "dppa_unet"), ("G2", "dppa_unet")), (("G1", "dppa_unet"), ("G3", "dppa_unet")),
    (("G1", "dppa_unet"), ("G4", "dppa_unet")), (("G4", "dppa_unet"), ("G5", "dppa_unet")),
    (("G4", "dppa_unet"), ("G6", "dppa_unet")), (("G1", "dppa_unet"), ("G1", "unet")),
    (("G1", "unet"), ("G1", "segnet")),
]
"""Pairs (better, worse) by F1 in the paper's ablation (Pan & Shi 2023, Tables 3 and 4)."""


def ranking_checks(rows: Sequence[dict]) -> list[dict]:
    """For each of the paper's orderings present in ``rows``: does this run reproduce it?"""
    f1 = {(r["group"], r["model"]): r.get("f1") for r in rows}
    checks = []
    for better, worse in PAPER_ORDER:
        a, b = f1.get(better), f1.get(worse)
        if a is None or b is None:
            continue
        checks.append({"claim": f"{better[0]} {better[1]} > {worse[0]} {worse[1]}",
                       "f1_better": a, "f1_worse": b, "holds": bool(a > b)})
    return checks
