"""`sarflow run`: every stage of an event, skipping what is done."""

from __future__ import annotations

from pathlib import Path

import click

from .options import compose, engine_option, event_argument, load_event, scheduler_option, workers_option

STAGES = ["preprocess", "stack", "dataset", "train", "predict", "evaluate", "report"]


@click.command()
@event_argument
@click.option("--from", "start", type=click.Choice(STAGES), default=None,
              help="First stage to run (earlier stages must be complete).")
@click.option("--until", type=click.Choice(STAGES), default=None, help="Last stage to run.")
@compose(engine_option, workers_option, scheduler_option)
@click.pass_context
def run(ctx: click.Context, event_config: Path, start: str | None, until: str | None,
        engine: str | None, workers: int | None, scheduler: str | None) -> None:
    """Run every stage of EVENT.yaml: preprocess, stack, dataset, train, predict,
    evaluate, report.

    Each stage is skipped when its outputs are complete and were made from the same
    inputs and settings, so a rerun after a failure or a config change redoes only what
    changed. The work folder is the config's `output`.
    """
    from ..pipeline import RunOptions, run_event
    from .report_summary import print_outcomes, print_headline

    cfg = load_event(event_config)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    opts = RunOptions(engine=engine, workers=workers, scheduler=scheduler, progress=not quiet)
    outcomes = run_event(cfg, start=start, until=until, options=opts,
                         on_stage=None if quiet else _announce)
    print_outcomes(outcomes)
    print_headline(cfg)


def _announce(stage: str, status: str) -> None:
    from rich.console import Console

    verb = {"skipped": "[dim]skip[/] (done)", "ran": "[bold]run[/]", "resumed": "[bold]resume[/]",
            "redone": "[bold yellow]redo[/] (inputs or settings changed)"}[status]
    Console(stderr=True).print(f"[cyan]{stage:<10}[/] {verb}")
