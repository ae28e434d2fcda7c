"""`sarflow evaluate PREDICTION INVENTORY`: pixel and object scores of a landslide map."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import json_option


@click.command()
@click.argument("prediction", type=click.Path(exists=True, path_type=Path))
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--area", nargs=4, type=float, default=None, metavar="W S E N",
              help="Evaluate only inside this box (degrees; default: the whole prediction).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Landslide threshold for a probability raster "
              "(default: the one recorded by predict, else 0.5).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the result as JSON to this file.")
@json_option
def evaluate(prediction: Path, inventory: Path, area: tuple[float, ...] | None,
             threshold: float | None, output: Path | None, as_json: bool) -> None:
    """Precision, recall, F1 and IoU of PREDICTION against the INVENTORY polygons.

    PREDICTION is a folder written by `sarflow predict`, or its probability.tif or
    mask.tif.  Also reports the share of inventory landslides hit and the share of predicted
    polygons that are false, by size class.
    """
    from ..evaluate import evaluate_prediction, write_json

    result = evaluate_prediction(prediction, inventory, bounds=tuple(area) if area else None,
                                 threshold=threshold)
    if output is not None:
        write_json(result, output)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    print_result(result)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_result(result: dict) -> None:
    """Pixel scores and the object table, with rich."""
    from rich.console import Console
    from rich.table import Table

    px, ob = result["pixel"], result["objects"]
    pixel = Table(title="pixels")
    for col in ("precision", "recall", "F1", "IoU", "TP", "FP", "FN", "TN"):
        pixel.add_column(col, justify="right")
    pixel.add_row(_fmt(px["precision"]), _fmt(px["recall"]), _fmt(px["f1"]), _fmt(px["iou"]),
                  *(str(px[k]) for k in ("tp", "fp", "fn", "tn")))
    objects = Table(title="landslides (objects)")
    for col in ("size", "inventory", "hit", "hit share", "predicted", "false", "false share"):
        objects.add_column(col, justify="right")
    for row in ob["by_size"] + [{**ob, "class": "all"}]:
        objects.add_row(row["class"], str(row["inventory"]), str(row["hit"]),
                        _fmt(row["hit_share"]), str(row["predicted"]), str(row["false"]),
                        _fmt(row["false_share"]))
    console = Console()
    console.print(pixel)
    console.print(objects)
