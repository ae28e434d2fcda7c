"""`sarflow scenes index|list`: the scene database, and the scenes an event will use."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from .options import event_argument, json_option, load_event


@click.group()
def scenes() -> None:
    """Index downloaded scenes and list those an event uses."""


@scenes.command("index")
@click.argument("folders", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path), metavar="DIR...")
@click.option("--db", default="scenes.db", show_default=True, metavar="PATH|URL",
              help="SQLite/SpatiaLite file, or postgresql://USER:PASSWORD@HOST:PORT/DBNAME.")
@json_option
def index(folders: tuple[Path, ...], db: str, as_json: bool) -> None:
    """Register every *.zip / *.SAFE under DIR... in the scene database (pyroSAR Archive).

    Terrain-corrected products (OPERA RTC-S1, HyP3 RTC, sidecar folders) are listed, not
    indexed: events read them straight from the folders in their scenes list.

    Several processing versions of one acquisition: the newest (IPF version, then
    processing time) goes to the main table, the others to the duplicates table.
    """
    from rich.console import Console
    from rich.progress import Progress

    from ..catalog import index_scenes

    with Progress(console=Console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task("reading products", total=None)
        report = index_scenes(folders, db,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    console = Console()
    console.print(f"[bold]{db}[/]: {report.size[0]} scenes, {report.size[1]} duplicates")
    console.print(f"  registered now: {len(report.registered)}, already there: {len(report.already)}")
    for old, new in report.replaced:
        console.print(f"  [cyan]replaced[/] {old} by the newer {new}")
    for old, new in report.duplicates:
        console.print(f"  [cyan]duplicate[/] {old} (using {new})")
    for path, reason in report.failed:
        console.print(f"  [red]failed[/] {reason}")
    if report.terrain_corrected:
        kinds = Counter(kind for _, kind in report.terrain_corrected)
        console.print(f"  not indexed: {len(report.terrain_corrected)} terrain-corrected products "
                      f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); the "
                      "database holds SAFE products only: list their folders under the "
                      "event's scenes")


@scenes.command("list")
@event_argument
@json_option
def list_(event_config: Path, as_json: bool) -> None:
    """Show the scenes EVENT.yaml will use, by pass and window, and warn about gaps."""
    from ..catalog import scan_scenes, selection_warnings

    cfg = load_event(event_config)
    scan = scan_scenes(cfg)
    records = scan.selected + scan.failed
    warnings = selection_warnings(cfg, records, scan.area)
    if as_json:
        click.echo(json.dumps({"event": cfg.name, "scenes": [r.to_dict() for r in records],
                               "counts": _counts(scan.selected),
                               "duplicates": [[a.product_id, b.product_id] for a, b in scan.duplicates],
                               "outside": len(scan.outside), "warnings": warnings}, indent=2))
        return
    _print(cfg, scan, warnings)


def _counts(records) -> dict[str, dict[str, int]]:
    from ..catalog import PASSES, WINDOWS

    return {p: {w: sum(r.pass_direction == p and r.window == w for r in records) for w in WINDOWS}
            for p in PASSES}


def _print(cfg, scan, warnings: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..catalog import PASSES, WINDOWS

    console = Console()
    table = Table(title=f"{cfg.name}: scenes by pass and window", show_lines=False)
    for col in ("pass", "window", "product", "start (UTC)", "orbit", "pols", "coverage", "status"):
        table.add_column(col, justify="right" if col in ("orbit", "coverage") else "left")
    groups = [(p, w) for p in (*PASSES, None) for w in WINDOWS]
    for pass_, window in groups:
        members = [r for r in scan.selected if r.pass_direction == pass_ and r.window == window]
        if not members and pass_ is None:
            continue
        for i, r in enumerate(members):
            table.add_row((pass_ or "?") if i == 0 else "", window if i == 0 else "", r.product_id,
                          r.start.strftime("%Y-%m-%d %H:%M:%S") if r.start else "?",
                          str(r.relative_orbit or "?"), ",".join(r.polarisations),
                          "?" if r.coverage is None else f"{100 * r.coverage:.0f}%", "[green]ok[/]")
        table.add_row(f"[bold]{pass_ or '?'}[/]", f"[bold]{window}[/]",
                      f"[bold]{len(members)} scene{'s' if len(members) != 1 else ''}[/]",
                      "", "", "", "", "", end_section=True)
    for r in scan.failed:
        table.add_row("?", r.window or "?", r.product_id, r.start.strftime("%Y-%m-%d %H:%M:%S")
                      if r.start else "?", "", "", "", "[red]failed[/]")
    console.print(table)
    console.print(f"{len(scan.selected)} scenes selected, {len(scan.failed)} unreadable, "
                  f"{len(scan.duplicates)} older duplicates ignored, {len(scan.outside)} outside "
                  "the windows or the area")
    for old, new in scan.duplicates:
        console.print(f"[cyan]duplicate:[/] {old.product_id} -> using newer {new.product_id}")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")
