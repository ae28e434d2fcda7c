"""Preprocessing engines: one scene plus the event grid in, sigma0 GeoTIFF out.

Two engines share this interface: ``snap`` (ESA SNAP's gpt driven by pyroSAR) and
``native`` (sarflow's own numpy/GDAL chain).  ``get("auto")`` picks SNAP when it is
installed, else native.

Every engine writes the same output so that the stacker does not care which ran:
one float32 GeoTIFF on the event grid with bands, in this order,
``sigma0_<POL>`` for each requested polarisation (linear sigma0, NaN outside the image)
then ``layover_shadow`` (0 clear, 1 layover, 2 shadow, 3 both; NaN outside the image).
Its tags come from the preprocess stage (``SceneJob.tags``: the catalog's record and the
provenance, one format for every engine); the engine adds ``orbit_source`` (the orbit it
applied) and its own notes.  The schema is :class:`sarflow.products.SceneOutput`'s.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from ..errors import DependencyError, InputError
from ..grid import Grid
from ..products import MASK_BAND, REQUIRED_TAGS, SceneOutput, band_names  # noqa: F401 (re-exported)

ENGINE_MODULES = {"snap": "sarflow.engines.snap", "native": "sarflow.engines.native",
                  "import": "sarflow.engines.imported"}



@dataclass(frozen=True)
class WorkerResources:
    """What the worker that runs one scene may use: the engine sizes itself from this."""

    memory_gb: float
    cores: int

    @classmethod
    def of_machine(cls) -> "WorkerResources":
        """The whole machine (one scene at a time, e.g. ``sarflow graphs render``)."""
        import psutil

        return cls(memory_gb=round(psutil.virtual_memory().total / 2**30, 2), cores=cpu_count())


def cpu_count() -> int:
    """Cores this process may use (its affinity on Linux)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
    settings: Any = None
    """The engine's typed settings (``config.NativeSettings`` / ``config.SnapSettings``);
    None: the engine's defaults."""
    resources: WorkerResources | None = None
    """Memory and cores of the worker that runs the scene; None: the whole machine."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags the output must carry verbatim (made by the preprocess stage from the catalog
    record and the provenance, :func:`sarflow.products.scene_tags`)."""
    log: Path | None = None
    """Per-scene log file (default: the output path with ``.log``)."""

    @property
    def log_path(self) -> Path:
        return self.log or self.output.with_suffix(".log")

    def worker(self) -> WorkerResources:
        """The resources of this job's worker (the whole machine when none were given)."""
        return self.resources or WorkerResources.of_machine()


@dataclass
class SceneResult:
    """What an engine reports about one processed scene."""

    output: Path
    engine: str
    orbit_source: str
    seconds: float
    notes: list[str] = field(default_factory=list)


class Engine(Protocol):
    """The interface every engine implements."""

    name: str

    def available(self, settings: Any = None) -> bool:
        """True when the engine can run on this machine (with these engine settings)."""

    def version(self, settings: Any = None) -> str:
        """The version of what computes the pixels (recorded in every output's provenance)."""

    def process(self, job: SceneJob) -> SceneResult:
        """Process one scene; write ``job.output`` atomically with ``job.tags``; raise
        SarflowError on failure."""


def settings_for(name: str, processing: Any) -> Any:
    """The typed settings of engine ``name`` from a config's ``processing`` section."""
    return getattr(processing, name, None) if processing is not None else None


def get(name: str, processing: Any = None) -> Engine:
    """The engine called ``name`` (``snap``, ``native``, or ``auto``); ``processing`` is the
    config's processing section (e.g. where SNAP's gpt is)."""
    if name == "auto":
        snap = _load("snap")
        return snap if snap.available(settings_for("snap", processing)) else _load("native")
    if name not in ENGINE_MODULES:
        raise InputError(f"unknown engine {name!r}; choose snap, native, import or auto")
    engine = _load(name)
    if not engine.available(settings_for(name, processing)):
        raise DependencyError(
            f"engine {name!r} is not available on this machine"
            + ("; install ESA SNAP (gpt on PATH or SNAP_HOME set) or use --engine native"
               if name == "snap" else ""))
    return engine


def _load(name: str) -> Engine:
    return importlib.import_module(ENGINE_MODULES[name]).ENGINE


def job_tags(job: SceneJob, engine: Engine, settings: Any, record: Any = None) -> dict[str, str]:
    """The tags ``engine`` writes for ``job``: ``job.tags`` as the preprocess stage made them,
    or, for an engine called on its own, the same tags made from the product's record
    (``record``, else read from ``job.scene``)."""
    if job.tags:
        return dict(job.tags)
    from ..catalog import read_record
    from ..products import scene_provenance, scene_radiometry, scene_tags

    rec = record if record is not None else read_record(job.scene)
    prov = scene_provenance(engine=engine.name, engine_version=engine.version(settings),
                            engine_settings=settings.provenance() if settings is not None else {},
                            scene=job.scene, grid=job.grid, polarisations=job.polarisations,
                            dem=job.dem, orbits=job.orbit_dir,
                            radiometry=scene_radiometry(rec, settings))
    return scene_tags(rec, prov, job.polarisations)


def validate_output(path: Path, grid: Grid, polarisations: Sequence[str]) -> None:
    """Raise InputError unless ``path`` is a complete scene output for ``grid``
    (:meth:`sarflow.products.SceneOutput.validate`)."""
    SceneOutput(Path(path)).validate(grid, polarisations)
