"""`sarflow dataset`: rasterise the inventory and cut a group raster into training patches."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import event_argument, json_option, load_event


@click.command()
@event_argument
@click.option("--group", type=click.Choice(["G1", "G2", "G3", "G4", "G5", "G6"]), default=None,
              help="Input group (default: the config's model.group).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Use this label raster instead of rasterising the inventory.")
@click.option("--force", is_flag=True, help="Rebuild even if the dataset is up to date.")
@json_option
def dataset(event_config: Path, group: str | None, labels_path: Path | None, force: bool,
            as_json: bool) -> None:
    """Labels and non-overlapping patches of EVENT.yaml's training area, split 8:2.

    Writes <output>/labels/labels.tif (if missing) and <output>/dataset/<group>/
    (images.npy, masks.npy, manifest.json with split and train-split normalisation).
    """
    from ..dataset import build_dataset

    cfg = load_event(event_config)
    out = build_dataset(cfg, group, labels_path=labels_path, force=force).folder
    manifest = json.loads((out / "manifest.json").read_text())
    summary = _summary(out, manifest)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dataset {out}")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console().print(table)


def _summary(out: Path, m: dict) -> dict:
    patches = m["patches"]
    pos = [p["positive_fraction"] for p in patches]
    return {"path": str(out), "group": m.get("group"), "channels": m["channels"],
            "patch_size": m["patch_size"], "train": m["split"]["train"],
            "test": m["split"]["test"], "skipped_invalid": m["split"]["skipped_invalid"],
            "landslide_fraction": round(sum(pos) / len(pos), 6),
            "patches_with_landslides": sum(1 for p in pos if p > 0),
            "mean": [round(v, 4) for v in m["normalisation"]["mean"]],
            "std": [round(v, 4) for v in m["normalisation"]["std"]]}
