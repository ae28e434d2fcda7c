"""`sarflow demo`: a synthetic event, end to end, on the native engine."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("outdir", required=False, default="demo-output",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Simulation and training seed.")
@click.option("--size", nargs=2, type=click.IntRange(min=256), default=None, metavar="ROWS COLS",
              help="Event grid size in pixels (default 768 1152).")
@click.option("--scenes-per-window", type=click.IntRange(min=1), default=None,
              help="Scenes per pass and window (default 4).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local Dask workers.")
def demo(outdir: Path, seed: int, size: tuple[int, int] | None, scenes_per_window: int | None,
         workers: int | None) -> None:
    """Simulate a landslide event in OUTDIR and run it end to end (native engine, CPU-sized
    model), then print where the map and report are and the headline metrics.

    Rerunning reuses what is already done in OUTDIR.
    """
    from ..demo import DemoSettings, run_demo
    from ..pipeline import RunOptions
    from .report_summary import print_headline

    defaults = DemoSettings()
    settings = DemoSettings(seed=seed, size=tuple(size) if size else defaults.size,
                            scenes_per_window=scenes_per_window or defaults.scenes_per_window)
    cfg = run_demo(outdir, settings, RunOptions(engine="native", workers=workers))
    print_headline(cfg)
