"""`sarflow config check`: validate an event config and show it resolved."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import event_argument, json_option, load_event


@click.group()
def config() -> None:
    """Check and show event configurations."""


@config.command("check")
@event_argument
@json_option
def check(event_config: Path, as_json: bool) -> None:
    """Validate EVENT.yaml and print the resolved configuration.

    Paths that do not exist yet (scenes not downloaded) are listed as warnings; they
    become errors only in the stages that need them.
    """
    from rich.console import Console
    from rich.table import Table

    from ..config import dump_config, missing_paths

    cfg = load_event(event_config)
    data = dump_config(cfg)
    grid = cfg.grid()
    warnings = missing_paths(cfg)
    if as_json:
        click.echo(json.dumps({"config": data, "grid": grid.to_dict(), "warnings": warnings},
                              indent=2))
        return
    table = Table(title=f"{cfg.name}  ({event_config})", show_header=True)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in _flatten(data):
        table.add_row(key, value)
    table.add_row("grid", f"{grid.width} x {grid.height} px, bounds {tuple(round(b, 6) for b in grid.bounds)}")
    console = Console()
    console.print(table)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print("[green]config OK[/]")


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, "" if value is None else str(value)
