"""`sarflow heatmap EVENT.yaml`: the no-model change heatmap (robust z-scores)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import event_argument, load_event


@click.command()
@event_argument
@click.option("--floor-db", type=click.FloatRange(min=0.001), default=0.1, show_default=True,
              help="Smallest pre-event spread (dB) a z-score divides by.")
@click.option("--threshold", type=float, default=3.0, show_default=True,
              help="z above which a pixel counts as flagged in the printed summary.")
def heatmap(event_config: Path, floor_db: float, threshold: float) -> None:
    """Per-pixel z-score of the post-event median against the pre-event median and spread.

    Reads the event's stack (its medians and pre-event spread; the stack is made first
    from the preprocessed scenes when missing or out of date); writes heatmap/heatmap.tif
    (bands z_<pass>_<pol> and z_fused_<pol>) in the work folder.  Needs no model and no
    inventory.
    """
    import numpy as np

    from ..grid import raster_info, read_raster
    from ..heatmap import heatmap_event

    cfg = load_event(event_config)
    path = heatmap_event(cfg, floor_db=floor_db)
    info = raster_info(path)
    data = read_raster(path)
    click.echo(f"heatmap: {path}")
    for name, band in zip(info.descriptions, data):
        ok = np.isfinite(band)
        share = float((band[ok] > threshold).mean()) if ok.any() else float("nan")
        click.echo(f"  {name}: {100 * share:.2f}% of {int(ok.sum())} pixels have z > {threshold:g}")
