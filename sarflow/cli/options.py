"""Option decorators shared by several commands (as in rasterio's CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

event_argument = click.argument(
    "event_config", metavar="EVENT.yaml",
    type=click.Path(exists=True, dir_okay=False, path_type=Path))

engine_option = click.option(
    "--engine", type=click.Choice(["snap", "native", "import", "auto"]), default=None,
    help="Preprocessing engine (default: the config's, else auto: import for terrain-corrected "
         "products (OPERA, HyP3, GeoTIFF folders), else SNAP if installed, else native).")

workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Local Dask workers (default: derived from cores and memory).")

scheduler_option = click.option(
    "--scheduler", metavar="ADDRESS", default=None,
    help="Run on an existing Dask cluster (e.g. tcp://10.0.0.5:8786) instead of a local one.")

seed_option = click.option("--seed", type=int, default=None, help="Random seed (default: config's).")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def load_event(path: Path):
    """Load an event config (import deferred so --help stays fast)."""
    from ..config import load_config

    return load_config(path)


def compose(*decorators: Callable) -> Callable:
    """Apply several option decorators at once."""
    def wrap(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f
    return wrap
