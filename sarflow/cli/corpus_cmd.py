"""`sarflow simulate-corpus N OUTDIR`: many varied synthetic events for training."""

from __future__ import annotations

from pathlib import Path

import click

from .simulate_cmd import _size


@click.command("simulate-corpus")
@click.argument("n", type=click.IntRange(min=1))
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Corpus seed.")
@click.option("--preset", type=click.Choice(["default", "hard"]), default="hard",
              show_default=True, help="Realism models every event starts from.")
@click.option("--size", callback=_size, default="384", show_default=True, metavar="HxW",
              help="Event grid in pixels (about 10 m).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes writing scenes [default: up to 2 cores]; output is the same.")
@click.option("--both-passes", is_flag=True,
              help="Every event ascending and descending (the stacker's G1 needs both).")
@click.option("--overwrite", is_flag=True, help="Rewrite events already in OUTDIR.")
def simulate_corpus(n: int, outdir: Path, seed: int, preset: str, size, workers: int | None,
                    both_passes: bool, overwrite: bool) -> None:
    """Write N varied synthetic events into OUTDIR (event_000/, ... and corpus.json).

    Each event draws terrain relief, landslide cover, sizes and changes, scene counts,
    passes, incidence, place and date from the corpus seed; events already written by the
    same corpus are kept, so an interrupted corpus resumes.
    """
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..simulate.corpus import simulate_corpus as run

    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("events", total=n)

        def report(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        path = run(n, outdir, seed=seed, preset=preset, size=size, progress=report,
                   workers=workers, overwrite=overwrite, both_passes=both_passes)
    click.echo(f"wrote {path} ({n} events, grid {size[0]} x {size[1]}, preset {preset}) in "
               f"{time.perf_counter() - start:.1f} s")
