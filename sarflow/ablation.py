"""The paper's ablation table and orderings: the table in the layout of Pan & Shi 2023's
Tables 3 and 4 (``experiment/table.md`` and ``table.csv``), and the check of the paper's
F1 orderings against a run's numbers.  Reading and writing only (no stage is run here),
so the report can use it without depending on the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .config import EventConfig
from .workdir import WorkDir

TABLE_COLUMNS = ["group", "model", "batch_size", "learning_rate", "filters", "precision",
                 "recall", "f1", "iou"]


def experiment_dir(cfg: EventConfig) -> Path:
    """Where the ablation's table goes: ``<output>/experiment``."""
    return WorkDir(cfg.output).root / "experiment"


def write_table(cfg: EventConfig, rows: list[dict]) -> None:
    """Write the rows as ``table.csv`` and ``table.md`` in :func:`experiment_dir`."""
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
