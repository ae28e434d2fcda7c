"""`sarflow predict MODEL.keras GROUP_RASTER.tif -o OUT`: map landslides over a whole area."""

from __future__ import annotations

from pathlib import Path

import click

_existing = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("model", metavar="MODEL.keras", type=_existing)
@click.argument("raster", metavar="GROUP_RASTER.tif", type=_existing)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for probability.tif, mask.tif and landslides.gpkg.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Probability at or above which a pixel is a landslide "
              "(default: the model's, else 0.5).")
@click.option("--overlap", type=click.IntRange(min=0), default=None,
              help="Pixels by which neighbouring windows overlap (default: patch size / 4).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Windows per inference batch.")
@click.option("--min-area", "min_area", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="Leave out polygons smaller than this (square metres).")
@click.option("--flip-average/--no-flip-average", default=True, show_default=True,
              help="Average each window's predictions over its four flips (4x the passes).")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="W S E N",
              help="Map only this part of the raster (degrees).")
@click.pass_context
def predict(ctx: click.Context, model: Path, raster: Path, output: Path,
            threshold: float | None, overlap: int | None, batch_size: int, min_area: float,
            flip_average: bool, bbox: tuple[float, float, float, float] | None) -> None:
    """Map landslides on GROUP_RASTER.tif with a trained MODEL.keras.

    GROUP_RASTER.tif may be any georeferenced raster with the model's bands, in any CRS: on
    sarflow's lattice it is mapped on its own grid; otherwise it is first regridded onto the
    lattice (OUT/input_on_lattice.tif; area average where finer, bilinear where coarser),
    and the command says which.

    Sliding windows of the model's patch size, overlapping and smoothly blended; writes a
    probability GeoTIFF, a 0/1 mask GeoTIFF (255 where the input has no data) and a
    GeoPackage of landslide polygons with their area in square metres, all on the input grid.
    Each window's prediction is the mean over its four flips unless --no-flip-average.
    """
    from rich.console import Console

    from ..grid import Grid, raster_info
    from ..predict import predict_raster

    raster, how = _input_on_lattice(raster, output)
    window = None
    if bbox:
        full = raster_info(raster).grid
        part = full.intersection(Grid.from_bounds(*bbox, spacing=full.spacing))
        if part is None:
            from ..errors import InputError

            raise InputError(f"--bbox {list(bbox)} does not overlap the raster {full.bounds}")
        window = full.window_of(part)
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    paths = predict_raster(model, raster, output, threshold=threshold, overlap=overlap,
                           batch_size=batch_size, min_area_m2=min_area, window=window,
                           progress=not quiet, flip_average=flip_average)
    if not quiet:
        console = Console()
        console.print(how)
        for name, path in paths.items():
            console.print(f"{name:12s} {path}")


def _input_on_lattice(raster: Path, output: Path) -> tuple[Path, str]:
    """The raster itself when it lies on the lattice, else its regridded copy; and a line saying which."""
    from ..regrid import describe_method, on_lattice, regrid_file

    if on_lattice(str(raster)):
        return raster, f"mapping {raster.name} on its own grid (the sarflow lattice)"
    target, method = regrid_file(str(raster), output / "input_on_lattice.tif")
    return target, (f"{raster.name} is not on the sarflow lattice: regridded onto it first "
                    f"({describe_method(method)}) -> {target}")
