"""`sarflow info SCENE`: a Sentinel-1 product's metadata as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import json_option


@click.command()
@click.argument("scene", metavar="SCENE", type=click.Path(exists=True, path_type=Path))
@click.option("--orbit", "orbit_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="EOF orbit file, or a folder of them, to use instead of the annotation's.")
@json_option
def info(scene: Path, orbit_path: Path | None, as_json: bool) -> None:
    """Show SCENE's metadata (a Sentinel-1 GRD .zip or .SAFE folder): mission, pass
    direction, orbits, polarisations, IPF version, noise format, image size, footprint."""
    from ..sentinel1 import open_product

    prod = open_product(scene)
    if orbit_path is not None:
        prod = prod.with_orbit(orbit_path)
    data = prod.summary()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _print_table(data)


def _print_table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    fp = data.get("footprint")
    rows = [
        ("product", data["id"]), ("mission", data["mission"]),
        ("mode / type", f"{data['mode']} {data['product_type']}"),
        ("start", data["start"]), ("stop", data["stop"]),
        ("pass direction", data["pass_direction"]),
        ("absolute orbit", data["absolute_orbit"]), ("relative orbit", data["relative_orbit"]),
        ("polarisations", ", ".join(data["polarisations"]) or "none"),
        ("IPF version", data["ipf_version"]), ("noise format", data["noise_format"]),
        ("image size", f"{data.get('lines', '?')} lines x {data.get('pixels', '?')} pixels"),
        ("pixel spacing", f"{data.get('range_pixel_spacing', '?')} m"),
        ("orbit", f"{data['orbit_source']} ({data.get('orbit_state_vectors', '?')} state vectors)"),
        ("footprint (lon/lat)", _bounds(fp) if fp else "unknown"),
        ("missing files", str(len(data["missing"]))),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)  # notes (e.g. no EOF covers the product) are logged as warnings


def _bounds(coords: list) -> str:
    lons = [c[0] for c in coords]
    lats = [c[1] for c in coords]
    return f"{min(lons):.4f}..{max(lons):.4f} E, {min(lats):.4f}..{max(lats):.4f} N"
