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
@click.option("--train-area", nargs=4, type=float, default=None, metavar="W S E N",
              help="Heatmap only: choose its sign and z threshold inside this box "
              "(default: the whole heatmap).")
@click.option("--band", default=None, help="Heatmap only: the band to threshold "
              "(default: z_fused_VV).")
@click.option("--sign", type=click.Choice(["auto", "decrease", "increase", "either"]),
              default="auto", show_default=True,
              help="Heatmap only: flag -z, z or |z| above the threshold; auto picks the best "
              "on the training box.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the result as JSON to this file.")
@json_option
def evaluate(prediction: Path, inventory: Path, area: tuple[float, ...] | None,
             threshold: float | None, train_area: tuple[float, ...] | None, band: str | None,
             sign: str, output: Path | None, as_json: bool) -> None:
    """Precision, recall, F1 and IoU of PREDICTION against the INVENTORY polygons.

    PREDICTION is a folder written by `sarflow predict`, or its probability.tif or
    mask.tif, or a heatmap written by `sarflow heatmap`: its sign and z threshold are then
    chosen to maximise F1 inside --train-area and it is scored inside --area.  Also reports
    the share of inventory landslides hit and the share of predicted polygons that are
    false, by size class.
    """
    from ..evaluate import evaluate_prediction, write_json
    from ..heatmap_scores import is_heatmap

    if is_heatmap(prediction):
        if threshold is not None:
            raise click.UsageError("--threshold is for probabilities; a heatmap's threshold is "
                                   "chosen on --train-area")
        result = _evaluate_heatmap(prediction, inventory, area, train_area, band, sign)
    elif train_area is not None or band is not None or sign != "auto":
        raise click.UsageError("--train-area, --band and --sign apply to a heatmap only")
    else:
        result = evaluate_prediction(prediction, inventory,
                                     bounds=tuple(area) if area else None, threshold=threshold)
    if output is not None:
        write_json(result, output)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    print_result(result)


def _evaluate_heatmap(heatmap: Path, inventory: Path, area: tuple[float, ...] | None,
                      train_area: tuple[float, ...] | None, band: str | None, sign: str) -> dict:
    """The heatmap's scores inside ``area``, its rule chosen inside ``train_area``."""
    import tempfile

    from ..errors import InputError
    from ..grid import Grid, raster_info
    from ..heatmap_scores import DEFAULT_BAND, evaluate_heatmap

    full = raster_info(heatmap).grid

    def box(bounds: tuple[float, ...] | None, what: str) -> Grid:
        if bounds is None:
            return full
        part = full.intersection(Grid.from_bounds(*bounds, spacing=full.spacing))
        if part is None:
            raise InputError(f"{what} {list(bounds)} does not overlap the heatmap {full.bounds}")
        return part

    with tempfile.TemporaryDirectory(prefix="sarflow-heat-") as tmp:
        result = evaluate_heatmap(heatmap, inventory, box(train_area, "--train-area"),
                                  {"area": box(area, "--area")}, Path(tmp) / "mask.tif",
                                  band=band or DEFAULT_BAND, sign=sign)["area"]
    result["heatmap"]["training_area"] = list(box(train_area, "--train-area").bounds)
    return result


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
    if result.get("heatmap"):
        h = result["heatmap"]
        console.print(f"heatmap: landslide where {h['rule']} (chosen on the training area, "
                      f"F1 {h['training_f1']:.3f} there)", markup=False)
    console.print(pixel)
    console.print(objects)
