"""`sarflow report EVENT.yaml`: the self-contained HTML report of an event."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import event_argument, load_event


@click.command()
@event_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the page (default: <output>/report/index.html).")
@click.option("--experiments", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Experiment rows as JSON (a list of {group, model, f1, ...}); "
              "default: the last `sarflow experiment` table of the event, if any.")
@click.option("--max-px", type=click.IntRange(min=64), default=700, show_default=True,
              help="Largest side of a map figure, in pixels.")
def report(event_config: Path, output: Path | None, experiments: Path | None,
           max_px: int) -> None:
    """Write the HTML report: maps of the training and validation areas side by side
    (DEM hillshade, fused VV change, inventory, prediction, errors), the metrics and the
    experiment chart, with every image embedded."""
    from rich.console import Console

    from ..errors import InputError
    from ..report import write_report

    cfg = load_event(event_config)
    rows = None
    if experiments is not None:
        try:
            rows = json.loads(experiments.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{experiments} is not valid JSON: {exc}") from None
        if not isinstance(rows, list):
            raise InputError(f"{experiments} must hold a JSON list of rows (group, model, f1)")
    else:
        from ..ablation import experiment_rows

        rows = experiment_rows(cfg) or None
    path = write_report(cfg, experiment_table=rows, max_px=max_px, out=output)
    Console().print(f"report: {path}")
