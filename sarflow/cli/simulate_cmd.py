"""`sarflow simulate OUTDIR`: write a synthetic landslide event (scenes, DEM, inventory, truth)."""

from __future__ import annotations

import re
from pathlib import Path

import click


def _size(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+))?\s*", value)
    if not m:
        raise click.BadParameter(f"{value!r}: give N (square) or HxW grid pixels, e.g. 1024x1024")
    h = int(m.group(1))
    w = int(m.group(2) or h)
    if min(h, w) < 32:
        raise click.BadParameter(f"{value!r}: the grid must be at least 32 x 32 pixels")
    return h, w


@click.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--size", callback=_size, default=None, metavar="HxW",
              help="Event grid in pixels (about 10 m), e.g. 1024 or 1024x1536 [default: 1500].")
@click.option("--scenes-per-window", type=click.IntRange(min=1), default=None,
              help="Acquisitions per pass before and after the event [default: 8].")
@click.option("--change-vv", type=float, default=None, metavar="DB",
              help="Landslide backscatter change in VV, post - pre [default: -3.5 dB].")
@click.option("--change-vh", type=float, default=None, metavar="DB",
              help="Landslide backscatter change in VH, post - pre [default: -2.0 dB].")
@click.option("--landslide-fraction", type=click.FloatRange(0.0, 0.5), default=None,
              help="Share of the area covered by landslides [default: 0.04].")
@click.option("--preset", type=click.Choice(["default", "hard"]), default="default",
              show_default=True,
              help="hard: every realism model on (the options below override it).")
@click.option("--speckle", type=click.Choice(["pixel", "cell"]), default=None,
              help="Speckle per pixel, or formed at the 20 x 22 m resolution cell.")
@click.option("--orbit-tube", type=click.FloatRange(min=0.0), default=None, metavar="M",
              help="Diameter of the orbital tube repeat passes are drawn in [default: 0, "
                   "exact repeats; hard: 100].")
@click.option("--subswaths", type=click.Choice(["IW2", "IW1-IW3"]), default=None,
              help="One sub-swath, or IW1-IW3 seams with per-swath noise vectors.")
@click.option("--noise-error", type=click.FloatRange(min=0.0), default=None, metavar="DB",
              help="Std of the true noise's departure from the noise vectors per sub-swath.")
@click.option("--change-model", type=click.Choice(["constant", "scar"]), default=None,
              help="Landslide change: constant (--change-vv/--change-vh), or from the land "
                   "cover lost and the local incidence before and after (scar).")
@click.option("--wet-post-dates", type=click.IntRange(min=0), default=None, metavar="N",
              help="The first N post-event dates of each pass are wet.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes writing scenes [default: up to 2 cores]; output is the same.")
@click.option("--overwrite", is_flag=True, help="Replace an event already in OUTDIR.")
def simulate(outdir: Path, seed: int, size, scenes_per_window: int | None,
             change_vv: float | None, change_vh: float | None,
             landslide_fraction: float | None, preset: str, speckle: str | None,
             orbit_tube: float | None, subswaths: str | None, noise_error: float | None,
             change_model: str | None, wet_post_dates: int | None, workers: int | None,
             overwrite: bool) -> None:
    """Write a synthetic landslide event into OUTDIR.

    Sentinel-1 IW GRDH dual-pol (VV+VH) products (.zip SAFE) of ascending and descending
    passes before and after the event, a DEM (heights above EGM96), a landslide inventory
    (GeoPackage), an event.yaml for the other commands, and the truth beside them
    (landslide mask, noise-free sigma0 per scene, settings). The same seed gives the same
    bytes. Then: `sarflow run OUTDIR/event.yaml`.
    """
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..simulate import SimulationSettings, simulate_event

    realism = {"speckle": speckle, "orbit_tube_m": orbit_tube, "subswaths": subswaths,
               "noise_error_db": noise_error, "change_model": change_model,
               "wet_post_dates": wet_post_dates}
    settings = SimulationSettings.preset(
        preset, **{k: v for k, v in realism.items() if v is not None})
    if size is not None:
        settings.size = size
    if scenes_per_window is not None:
        settings.scenes_per_window = scenes_per_window
    if change_vv is not None:
        settings.change_db["VV"] = change_vv
    if change_vh is not None:
        settings.change_db["VH"] = change_vh
    if landslide_fraction is not None:
        settings.landslide_fraction = landslide_fraction
    console = Console(stderr=True)
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("terrain, inventory", total=None)

        def report(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        path = simulate_event(outdir, seed=seed, settings=settings, progress=report,
                              workers=workers, overwrite=overwrite)
    scenes = sorted((path.parent / "scenes").glob("*.zip"))
    click.echo(f"wrote {path} ({len(scenes)} scenes, grid {settings.size[0]} x "
               f"{settings.size[1]}, seed {seed}, preset {preset}) in "
               f"{time.perf_counter() - start:.1f} s")
    click.echo(f"next: sarflow config check {path}")
