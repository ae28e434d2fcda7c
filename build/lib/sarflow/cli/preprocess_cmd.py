"""`sarflow preprocess EVENT.yaml`: calibrate and terrain-correct every selected scene."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from .options import (compose, engine_option, event_argument, json_option, load_event,
                      scheduler_option, workers_option)


@click.command()
@compose(event_argument, engine_option, workers_option, scheduler_option)
@click.option("--retries", type=click.IntRange(min=0), default=None,
              help="Extra attempts per failed scene (default: processing.retries).")
@click.option("--memory-per-worker", "memory_gb", type=click.FloatRange(min=0.1), default=None,
              metavar="GB", help="Memory limit of each local worker (default: derived).")
@click.option("--no-progress", is_flag=True, help="No progress display.")
@json_option
@click.pass_context
def preprocess(ctx: click.Context, event_config: Path, engine: Optional[str],
               workers: Optional[int], scheduler: Optional[str], retries: Optional[int],
               memory_gb: Optional[float], no_progress: bool, as_json: bool) -> None:
    """Run the engine once per scene of EVENT.yaml as Dask tasks (resumable).

    Scenes whose valid output exists are skipped; failed scenes are retried, then reported
    with their log.  Runs on a local cluster of worker processes, or with --scheduler on an
    existing Dask cluster whose workers see the same paths.
    """
    from ..preprocess import preprocess_event

    cfg = load_event(event_config)
    if memory_gb is not None:
        cfg.processing.memory_per_worker_gb = memory_gb
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    try:
        summary = preprocess_event(cfg, engine=engine, workers=workers, scheduler=scheduler,
                                   retries=retries, progress=not (no_progress or quiet or as_json))
    except KeyboardInterrupt:
        click.echo("Interrupted: finished scenes are kept and nothing half-written remains; "
                   "run the same command again to process the rest.", err=True)
        ctx.exit(130)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary)
    summary.raise_for_failures()


def print_summary(summary) -> None:
    """The run summary as a rich table: one row per scene, then the counts."""
    from rich.console import Console
    from rich.table import Table

    style = {"done": "green", "existing": "green", "failed": "red", "skipped": "yellow",
             "locked": "yellow"}
    table = Table(title=f"{summary.event}: preprocessing ({summary.cluster})")
    for col in ("scene", "window", "pass", "engine", "orbit", "seconds", "outcome", "log / reason"):
        table.add_column(col, justify="right" if col == "seconds" else "left",
                         overflow="fold")
    for s in summary.scenes:
        detail = Path(s.log).name if s.outcome == "done" else f"{s.reason} (log: {Path(s.log).name})"
        table.add_row(s.product_id, s.window or "?", {"ASCENDING": "asc", "DESCENDING": "desc"}.get(s.pass_direction or "", "?"),
                      s.engine or "", s.orbit_source or "", f"{s.seconds:.1f}" if s.seconds else "",
                      f"[{style[s.outcome]}]{s.outcome}[/]",
                      detail if s.outcome != "existing" else "")
    console = Console()
    console.print(table)
    counts = ", ".join(f"{n} {k}" for k, n in summary.counts.items() if n)
    console.print(f"{counts} in {summary.seconds:.1f} s; outputs and logs in "
                  f"{summary.path.parent}; summary: {summary.path.name}")
