"""`sarflow stack EVENT.yaml`: medians, changes, fusion and the six input groups."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import event_argument, load_event, scheduler_option, workers_option


@click.command()
@event_argument
@workers_option
@scheduler_option
@click.option("--block-size", type=click.IntRange(min=64), default=512, show_default=True,
              help="Pixels per side of the blocks processed at once (memory per worker).")
@click.option("--force", is_flag=True, help="Recompute even if the outputs are up to date.")
@click.pass_context
def stack(ctx: click.Context, event_config: Path, workers: int | None, scheduler: str | None,
          block_size: int, force: bool) -> None:
    """Temporal medians (dB), changes, ascending/descending fusion and groups G1..G6.

    Reads the event's preprocessed scenes (run `sarflow preprocess` first) and writes
    stack/medians, stack/changes and stack/groups in the event's work folder.
    """
    from rich.console import Console
    from rich.table import Table

    from ..grid import raster_info
    from ..stack import selection_path, stack_event
    from ..workdir import WorkDir

    cfg = load_event(event_config)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    paths = stack_event(cfg, workers=workers or cfg.processing.workers,
                        scheduler=scheduler or cfg.processing.scheduler,
                        block_size=block_size, progress=not quiet, force=force)
    table = Table(title=f"{cfg.name}: stack outputs")
    table.add_column("output", style="bold")
    table.add_column("bands")
    table.add_column("path")
    for name in ("G1", "G2", "G3", "G4", "G5", "G6", "fusion_quality"):
        if name not in paths:
            continue
        info = raster_info(paths[name])
        table.add_row(name, ", ".join(info.descriptions), str(paths[name]))
    table.add_row("medians", "median_db, count", str(paths["G1"].parent.parent / "medians"))
    table.add_row("changes", "change_db", str(paths["fusion_quality"].parent))
    console = Console()
    console.print(table)
    sel = json.loads(selection_path(WorkDir(cfg.output)).read_text())["selection"]
    pair = (f"; G4-G6 pair {sel['single_pre']} / {sel['single_post']}" if sel.get("single_pre")
            else "")
    console.print("dates: " + ", ".join(f"{k.replace('_', ' ')} {len(sel[k])}" for k in
                                         ("asc_pre", "asc_post", "desc_pre", "desc_post")) + pair
                  + f"; {sel.get('radiometry', 'sigma0')}")
    by_reason: dict[str, list[str]] = {}
    for name, why in sel.get("left_out", {}).items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        console.print(f"[yellow]left out[/] {', '.join(names)}: {why}")
