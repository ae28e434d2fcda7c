"""`sarflow experiment`: the paper's ablation over groups and models."""

from __future__ import annotations

from pathlib import Path

import click

from .options import compose, engine_option, event_argument, load_event, scheduler_option, workers_option


@click.command()
@event_argument
@click.option("--grid/--no-grid", default=None,
              help="Search the hyperparameter grid per row (default: the config's grid_search).")
@click.option("--rows", default=None, metavar="G:MODEL,...",
              help="Only these rows, e.g. G1:dppa_unet,G4:dppa_unet (default: the paper's 8).")
@compose(engine_option, workers_option, scheduler_option)
def experiment(event_config: Path, grid: bool | None, rows: str | None, engine: str | None,
               workers: int | None, scheduler: str | None) -> None:
    """Run the ablation of EVENT.yaml: groups G1-G6 with DPPA-UNet, and G1 with U-Net and
    SegNet. Writes experiment/table.md and table.csv in the work folder (the layout of the
    paper's Tables 3 and 4) and adds the F1 bar chart to the report.
    """
    from rich.console import Console

    from ..errors import ConfigError
    from ..experiment import EXPERIMENT_ROWS, experiment_dir, run_experiment
    from ..pipeline import RunOptions
    from ..report import write_report

    cfg = load_event(event_config)
    selected = EXPERIMENT_ROWS
    if rows:
        try:
            selected = [tuple(r.split(":")) for r in rows.split(",")]
        except ValueError:
            raise ConfigError(f"--rows {rows!r}: expected GROUP:MODEL pairs such as G1:dppa_unet") from None
    console = Console()
    results = run_experiment(cfg, rows=selected, grid=grid,
                             options=RunOptions(engine=engine, workers=workers, scheduler=scheduler),
                             on_row=lambda g, m: console.print(f"[cyan]{g}[/] {m}"))
    console.print((experiment_dir(cfg) / "table.md").read_text())
    report = write_report(cfg, experiment_table=results)
    console.print(f"report: {report}")
