"""`sarflow map EVENT.yaml --model MODEL.keras`: rapid-response map of an event without an
inventory, with a model trained elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import engine_option, event_argument, json_option, load_event, workers_option


@click.command(name="map")
@event_argument
@click.option("--model", "model", metavar="MODEL.keras", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A model trained with sarflow (on another event).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the map (default: map/ in the event's work folder).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Probability at or above which a pixel is a landslide "
              "(default: the model's, else 0.5).")
@click.option("--min-area", "min_area", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="Leave out polygons smaller than this (square metres).")
@click.option("--flip-average/--no-flip-average", default=None,
              help="Average each window's predictions over its four flips (4x the passes; "
                   "default: the config's prediction.flip_average, else on).")
@engine_option
@workers_option
@json_option
@click.pass_context
def map_(ctx: click.Context, event_config: Path, model: Path, output: Path | None,
         threshold: float | None, min_area: float, flip_average: bool | None,
         engine: str | None, workers: int | None, as_json: bool) -> None:
    """Map an event that has no inventory from whatever scenes exist (one pass is enough).

    Preprocesses and stacks what is not done yet, makes the no-model heatmap, maps the whole
    area with MODEL.keras, and writes probability, mask and heatmap as Cloud-Optimized
    GeoTIFFs, landslides.gpkg (area, mean and max probability, passes that saw each
    polygon), map.json and report.html (what was missing and why, counts and areas by size).
    """
    from ..mapping import map_event

    cfg = load_event(event_config)
    if flip_average is not None:
        cfg = cfg.model_copy(update={"prediction": cfg.prediction.model_copy(
            update={"flip_average": flip_average})})
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    result = map_event(cfg, model, out=output, threshold=threshold, min_area_m2=min_area,
                       engine=engine, workers=workers, progress=not (quiet or as_json))
    s = result.summary
    if as_json:
        click.echo(json.dumps({**s, "outputs": {k: str(v) for k, v in result.paths.items()}}, indent=2))
        return
    click.echo(f"{s['landslides']} landslides, {s['landslide_area_m2']:.0f} m2, from "
               f"{', '.join(s['passes'])} ({s['group']}, threshold {s['threshold']:.2f})")
    for note in s["missing"]:
        click.echo(f"  missing: {note}")
    for name, path in result.paths.items():
        click.echo(f"{name:12s} {path}")
