"""Preprocessing engines: one scene plus the event grid in, sigma0 GeoTIFF out.

Two engines share this interface: ``snap`` (ESA SNAP's gpt driven by pyroSAR) and
``native`` (sarflow's own numpy/GDAL chain).  ``get("auto")`` picks SNAP when it is
installed, else native.

Every engine writes the same output so that the stacker does not care which ran:
one float32 GeoTIFF on the event grid with bands, in this order,
``sigma0_<POL>`` for each requested polarisation (linear sigma0, NaN outside the image)
then ``layover_shadow`` (0 clear, 1 layover, 2 shadow, 3 both; NaN outside the image),
and the tags listed in :data:`REQUIRED_TAGS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from ..errors import DependencyError, InputError
from ..grid import Grid

ENGINE_MODULES = {"snap": "sarflow.engines.snap", "native": "sarflow.engines.native",
                  "import": "sarflow.engines.imported"}

REQUIRED_TAGS = ("product_id", "pass", "relative_orbit", "acquisition_time", "orbit_source",
                 "engine", "polarisations", "sarflow_version")
"""Tags every scene output carries: pass is ASCENDING/DESCENDING, acquisition_time is the
ISO 8601 UTC start time, polarisations a comma-separated list such as ``VV,VH``."""

MASK_BAND = "layover_shadow"


def band_names(polarisations: Sequence[str], radiometry: str = "sigma0") -> list[str]:
    """Band descriptions of a scene output, in order (``radiometry``: sigma0 or gamma0)."""
    return [f"{radiometry}_{p}" for p in polarisations] + [MASK_BAND]


@dataclass
class SceneJob:
    """Everything an engine needs to turn one scene into one output file."""

    scene: Path
    output: Path
    grid: Grid
    polarisations: list[str] = field(default_factory=lambda: ["VV", "VH"])
    dem: Path | None = None
    """DEM GeoTIFF with heights above the EGM96 geoid (as SRTM); None: engine's default."""
    orbit_dir: Path | None = None
    """Folder (or file) of POEORB/RESORB EOF files; None: annotation state vectors."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine settings from the config (``processing.snap`` or ``processing.native``)."""
    log: Path | None = None
    """Per-scene log file (default: the output path with ``.log``)."""

    @property
    def log_path(self) -> Path:
        return self.log or self.output.with_suffix(".log")


@dataclass
class SceneResult:
    """What an engine reports about one processed scene."""

    output: Path
    engine: str
    orbit_source: str
    seconds: float
    notes: list[str] = field(default_factory=list)


class Engine(Protocol):
    """The interface both engines implement."""

    name: str

    def available(self, options: Mapping[str, Any] | None = None) -> bool:
        """True when the engine can run on this machine (with these engine settings)."""

    def process(self, job: SceneJob) -> SceneResult:
        """Process one scene; write ``job.output`` atomically; raise SarflowError on failure."""


def get(name: str, options: Mapping[str, Any] | None = None) -> Engine:
    """The engine called ``name`` (``snap``, ``native``, or ``auto``); ``options`` are the
    engine settings of the config (e.g. where SNAP's gpt is)."""
    if name == "auto":
        snap = _load("snap")
        return snap if snap.available(options) else _load("native")
    if name not in ENGINE_MODULES:
        raise InputError(f"unknown engine {name!r}; choose snap, native, import or auto")
    engine = _load(name)
    if not engine.available(options):
        raise DependencyError(
            f"engine {name!r} is not available on this machine"
            + ("; install ESA SNAP (gpt on PATH or SNAP_HOME set) or use --engine native"
               if name == "snap" else ""))
    return engine


def _load(name: str) -> Engine:
    return importlib.import_module(ENGINE_MODULES[name]).ENGINE


def validate_output(path: Path, grid: Grid, polarisations: Sequence[str]) -> None:
    """Raise InputError unless ``path`` is a complete scene output for ``grid``.

    Complete means: readable, on the grid, the expected bands and tags, and not all NaN.
    """
    import numpy as np

    from ..grid import raster_info, read_raster

    if not Path(path).is_file():
        raise InputError(f"scene output missing: {path}")
    info = raster_info(path)
    grid.check_same(info.grid, what=str(path))
    expected = band_names(polarisations, info.tags.get("radiometry", "sigma0"))
    if list(info.descriptions) != expected:
        raise InputError(f"{path}: bands {list(info.descriptions)}, expected {expected}")
    missing = [t for t in REQUIRED_TAGS if t not in info.tags]
    if missing:
        raise InputError(f"{path}: missing tags {missing}")
    step = max(1, min(grid.shape) // 64)
    sample = read_raster(path, bands=[1])[0, ::step, ::step]
    if not np.isfinite(sample).any():
        raise InputError(f"{path}: every sampled pixel is nodata; the scene does not cover the area")
