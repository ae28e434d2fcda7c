"""Printing helpers shared by `run`, `demo` and `experiment`."""

from __future__ import annotations

import json
from typing import Sequence

from rich.console import Console
from rich.table import Table


def print_outcomes(outcomes: Sequence) -> None:
    """A table of what each stage did and how long it took."""
    table = Table(title="stages")
    for col in ("stage", "status", "seconds"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.name, o.status, f"{o.seconds:.1f}")
    Console().print(table)


def print_headline(cfg) -> None:
    """Where the maps and report are, and the metrics per area."""
    from ..workdir import WorkDir

    wd = WorkDir(cfg.output)
    console = Console()
    for area in ("training", "validation"):
        path = wd.evaluation(area)
        if path.exists():
            m = json.loads(path.read_text())
            px = m.get("pixel", m)
            console.print(f"[bold]{area}[/] area: precision {px.get('precision', float('nan')):.3f}  "
                          f"recall {px.get('recall', float('nan')):.3f}  "
                          f"[bold green]F1 {px.get('f1', float('nan')):.3f}[/]  "
                          f"IoU {px.get('iou', float('nan')):.3f}")
        pred = wd.prediction(area)
        if pred.exists():
            console.print(f"  map: {pred}")
    if wd.report.exists():
        console.print(f"report: {wd.report}")
