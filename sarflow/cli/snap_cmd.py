"""`sarflow snap check [EVENT.yaml]`: will SNAP run sarflow's graphs here?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from .options import json_option, load_event


@click.group()
def snap() -> None:
    """ESA SNAP: check the installation against sarflow's graphs."""


@snap.command("check")
@click.argument("event_config", metavar="[EVENT.yaml]", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Workers the batch will run (decides each JVM's memory).")
@json_option
def check(event_config: Optional[Path], workers: Optional[int], as_json: bool) -> None:
    """gpt, SNAP version, every graph node/parameter vs the installed operators, EGM96,
    memory per worker; exit 2 with the first problem."""
    from ..engines.snap_check import first_problem, rows_for_event

    rows = rows_for_event(load_event(event_config) if event_config else None, workers)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("check", "", "detail")
        for r in rows:
            table.add_row(r.item, "[green]ok[/]" if r.ok else "[red]fix[/]", r.detail)
        Console().print(table)
    first_problem(rows)
