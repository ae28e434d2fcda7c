"""The products that pass between stages: where each lives, what it carries, whether it is
current.

One class per stage product.  Each names its files in the work folder (through
:class:`~sarflow.workdir.WorkDir`), owns its metadata schema and its validation, and records
the :class:`~sarflow.provenance.Provenance` that made it; :func:`sarflow.provenance.is_current`
is the only rule that decides whether a product is reused.

* :class:`SceneOutput` - one preprocessed scene (sigma0 GeoTIFF on the event grid); its
  provenance is a tag of the file itself, so a scene made by another engine, another engine
  setting or another version of the input product is never taken for current.
* :class:`StageProduct` and its subclasses - the outputs of the whole-event stages (stack,
  dataset, model, predictions, evaluation, report); their provenance is a record in
  ``state/<stage>.json`` written when the stage completes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .errors import InputError
from .grid import Grid
from .provenance import Provenance, file_fingerprint, is_current

# ------------------------------------------------------------------------------------
# scene outputs
# ------------------------------------------------------------------------------------

MASK_BAND = "layover_shadow"
REQUIRED_TAGS = ("product_id", "pass", "relative_orbit", "acquisition_time", "window",
                 "orbit_source", "engine", "engine_version", "polarisations", "sarflow_version",
                 "provenance")
"""Tags every scene output carries: pass is ASCENDING/DESCENDING, acquisition_time the
ISO 8601 UTC start time with microseconds (``2018-09-01T08:47:12.123456Z``), window
``pre``/``post`` as the catalog selected it, polarisations a comma-separated list such as
``VV,VH``, provenance the JSON of the :class:`~sarflow.provenance.Provenance` that made it."""
STACK_TAGS = ("product_id", "pass", "relative_orbit", "acquisition_time")
"""The part of the schema the stacker reads (outputs of other tools may carry only these)."""
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


RADIOMETRIES = ("sigma0", "gamma0", "beta0")
"""Radiometric conventions a scene output may hold (the ``radiometry`` tag, the band prefix);
sigma0 and gamma0 differ by the local incidence angle and are never stacked together."""


def band_names(polarisations: Sequence[str], radiometry: str = "sigma0") -> list[str]:
    """Band descriptions of a scene output, in order (``radiometry``: sigma0, gamma0, beta0)."""
    return [f"{radiometry}_{p}" for p in polarisations] + [MASK_BAND]


def scene_radiometry(record: Any, settings: Any) -> str:
    """The convention a scene output will hold: an RTC product's own (from its record), else
    the GRD engine's calibration setting (sigma0 when it has none)."""
    if getattr(record, "product_type", "GRD") != "GRD" and getattr(record, "radiometry", None):
        return str(record.radiometry)
    return str(getattr(settings, "calibration", None) or "sigma0")


def scene_provenance(*, engine: str, engine_version: str, engine_settings: Mapping[str, Any],
                     scene: Path, grid: Grid, polarisations: Sequence[str], dem: Optional[Path],
                     orbits: Optional[Path], radiometry: str = "sigma0") -> Provenance:
    """What decides one scene output's values: the engine that runs and its settings, the
    input product, the grid, the polarisations, the radiometric convention, the DEM and the
    orbit files."""
    return Provenance(
        stage="preprocess",
        settings={"engine": engine, "engine_version": engine_version,
                  "engine_settings": dict(engine_settings),
                  "grid": [grid.col0, grid.row0, grid.width, grid.height, grid.spacing],
                  "polarisations": list(polarisations), "radiometry": radiometry},
        inputs={"scene": file_fingerprint(scene), "dem": file_fingerprint(dem),
                "orbits": None if orbits is None else str(orbits)})


def scene_tags(record: Any, provenance: Provenance, polarisations: Sequence[str]) -> dict[str, str]:
    """The tags of a scene output, from the catalog's record (one format for every engine).

    ``orbit_source`` is left to the engine: only it knows which orbit it applied.
    """
    start = record.start.astimezone(dt.timezone.utc) if record.start else None
    return {"product_id": record.product_id, "pass": str(record.pass_direction),
            "relative_orbit": str(record.relative_orbit),
            "acquisition_time": start.strftime(TIME_FORMAT) if start else "",
            "window": str(record.window or "none"),
            "engine": str(provenance.settings["engine"]),
            "engine_version": str(provenance.settings["engine_version"]),
            "polarisations": ",".join(polarisations),
            "radiometry": str(provenance.settings.get("radiometry", "sigma0")),
            "provenance": provenance.to_json()}


@dataclass(frozen=True)
class SceneOutput:
    """One preprocessed scene: ``preprocessed/<product_id>.tif`` (sigma0 - or, from an RTC
    product, gamma0 - bands, then the layover/shadow mask) with the tags of
    :data:`REQUIRED_TAGS` and ``radiometry``."""

    path: Path

    def validate(self, grid: Grid, polarisations: Sequence[str]) -> None:
        """Raise InputError unless the file is a complete scene output for ``grid``:
        readable, on the grid, the expected bands and tags, and not all NaN."""
        import numpy as np

        from .grid import raster_info, read_raster

        if not self.path.is_file():
            raise InputError(f"scene output missing: {self.path}")
        info = raster_info(self.path)
        grid.check_same(info.grid, what=str(self.path))
        radiometry = info.tags.get("radiometry", "sigma0")
        if radiometry not in RADIOMETRIES:
            raise InputError(f"{self.path}: radiometry tag {radiometry!r} is not one of "
                             f"{', '.join(RADIOMETRIES)}; rerun sarflow preprocess")
        expected = band_names(polarisations, radiometry)
        if list(info.descriptions) != expected:
            raise InputError(f"{self.path}: bands {list(info.descriptions)}, expected {expected}")
        missing = [t for t in REQUIRED_TAGS if t not in info.tags]
        if missing:
            raise InputError(f"{self.path}: missing tags {missing}; it was made by an older "
                             "sarflow or another tool: rerun sarflow preprocess")
        step = max(1, min(grid.shape) // 64)
        sample = read_raster(self.path, bands=[1])[0, ::step, ::step]
        if not np.isfinite(sample).any():
            raise InputError(f"{self.path}: every sampled pixel is nodata; the scene does not "
                             "cover the area")

    def provenance(self) -> Optional[Provenance]:
        """The provenance recorded in the file (None when absent or unreadable)."""
        return raster_provenance(self.path)

    def why_not_current(self, grid: Grid, polarisations: Sequence[str],
                        expected: Provenance) -> Optional[str]:
        """None when the file is complete and made exactly as ``expected`` says, else why
        not (one line)."""
        from .errors import SarflowError

        try:
            self.validate(grid, polarisations)
        except SarflowError as exc:
            return exc.one_line()
        recorded = self.provenance()
        if is_current(recorded, expected):
            return None
        return f"{self.path.name} was made {_difference(recorded, expected)}: it is redone"


def _difference(recorded: Optional[Provenance], expected: Provenance) -> str:
    """Which part of the provenance differs, in words (for logs)."""
    if recorded is None:
        return "without a provenance record"
    for key in ("engine", "engine_version", "engine_settings", "grid", "polarisations",
                "radiometry"):
        got, want = recorded.settings.get(key), expected.settings.get(key)
        if json.dumps(got, sort_keys=True, default=str) != json.dumps(want, sort_keys=True,
                                                                      default=str):
            return f"with {key} {got!r}, now {want!r}"
    return "from other inputs (scene, DEM or orbit files)"


# ------------------------------------------------------------------------------------
# rasters made by a stage (stack outputs, labels): provenance in a tag
# ------------------------------------------------------------------------------------

def raster_provenance(path: Path) -> Optional[Provenance]:
    """The provenance recorded in a raster's ``provenance`` tag (None if none/unreadable)."""
    from .errors import SarflowError
    from .grid import raster_info

    try:
        return Provenance.from_json(raster_info(path).tags.get("provenance"))
    except (SarflowError, RuntimeError, OSError):  # unreadable: no provenance, not current
        return None


def raster_fingerprint(path: Path) -> Any:
    """What identifies a raster as an input: its provenance digest when sarflow made it,
    else its file fingerprint (a user's own raster)."""
    prov = raster_provenance(Path(path)) if Path(path).is_file() else None
    return prov.digest if prov is not None else file_fingerprint(path)


def rasters_current(paths: Sequence[Path], expected: Provenance, grid: Optional[Grid] = None) -> bool:
    """True when every raster exists, is on ``grid`` (when given) and records ``expected``."""
    from .grid import raster_info

    for path in paths:
        if not Path(path).is_file():
            return False
        if not is_current(raster_provenance(Path(path)), expected):
            return False
        if grid is not None and raster_info(path).grid != grid:
            return False
    return True


# ------------------------------------------------------------------------------------
# whole-event stage products
# ------------------------------------------------------------------------------------

@dataclass
class StageProduct:
    """The outputs of one whole-event stage and the record of what made them.

    ``paths`` are the files that must exist for the stage to count as done; ``clean`` what
    a redo removes first; the record (``state/<stage>.json``) holds the provenance and
    whether the stage completed.
    """

    stage: str
    record_path: Path
    paths: list[Path] = field(default_factory=list)
    clean: list[Path] = field(default_factory=list)

    def recorded(self) -> tuple[Optional[Provenance], bool]:
        """(provenance, complete) from the record; (None, False) when there is none."""
        try:
            data = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None, False
        prov = data.get("provenance")
        return (Provenance.from_dict(prov) if isinstance(prov, dict) else None,
                bool(data.get("complete")))

    def is_current(self, expected: Provenance) -> bool:
        """Made as ``expected`` says, completed, and every output still there."""
        recorded, complete = self.recorded()
        return complete and is_current(recorded, expected) and all(p.exists() for p in self.paths)

    def mark(self, provenance: Provenance, complete: bool, **extra: Any) -> None:
        """Write the record atomically (started: complete False; finished: True)."""
        from .grid import atomic_path

        data = {"stage": self.stage, "complete": complete, "provenance": provenance.to_dict(),
                **extra}
        with atomic_path(self.record_path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, default=str))


# ------------------------------------------------------------------------------------
# the trained model
# ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scores:
    """Pixel scores of a binary map (see :mod:`sarflow.metrics`)."""

    precision: float
    recall: float
    f1: float
    iou: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Scores":
        return cls(*(float(data[k]) for k in ("precision", "recall", "f1", "iou")))


@dataclass(frozen=True)
class TrainedModel:
    """The train stage's product: ``models/<group>_<architecture>/`` holding the chosen
    run's ``model.keras``, ``result.json`` (its settings, scores, the grid table and
    provenance) and ``grid.csv``."""

    folder: Path
    summary: Mapping[str, Any]
    """The content of ``result.json``."""

    @property
    def model_path(self) -> Path:
        return self.folder / "model.keras"

    @property
    def test(self) -> Scores:
        """Scores on the test split, inference mode (what the paper reports)."""
        return Scores.from_dict(self.summary["test"])

    @property
    def settings(self) -> dict[str, Any]:
        """architecture, filters, batch_size, learning_rate, epochs, patience, seed."""
        return dict(self.summary["settings"])

    @property
    def provenance(self) -> Optional[Provenance]:
        prov = self.summary.get("provenance")
        return Provenance.from_dict(prov) if isinstance(prov, dict) else None

    @classmethod
    def read(cls, folder: Path) -> "TrainedModel":
        """The product in ``folder``; InputError when it is missing or incomplete."""
        result = Path(folder) / "result.json"
        try:
            summary = json.loads(result.read_text())
        except (OSError, ValueError):
            raise InputError(f"no trained model in {folder} ({result} missing or unreadable); "
                             "run `sarflow train` first") from None
        return cls(Path(folder), summary)


# ------------------------------------------------------------------------------------
# the stack, predictions and evaluations
# ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackOutputs(abc.Mapping):
    """The stack stage's product: medians, changes, fusion quality and the groups G1..G6,
    all recording one provenance; a read-only mapping of output name (``G1``,
    ``median_asc_VV_pre``, ``change_desc_VH``, ``fusion_quality``) to path.  Outputs a
    one-pass event cannot make are absent."""

    paths: Mapping[str, Path]
    provenance: Provenance

    def group(self, name: str) -> Path:
        """The 2-band raster of input group ``name`` (G1..G6)."""
        if name not in self.paths:
            raise InputError(f"group {name} was not made for this event (see "
                             "stack/selection.json: left_out says why)")
        return self.paths[name]

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class Prediction:
    """One mapped area: ``predictions/<area>/`` with the probability and mask GeoTIFFs and
    the landslide polygons."""

    area: str
    probability: Path
    mask: Path
    polygons: Path

    @classmethod
    def from_paths(cls, area: str, paths: Mapping[str, Path]) -> "Prediction":
        return cls(area, Path(paths["probability"]), Path(paths["mask"]),
                   Path(paths["polygons"]))


@dataclass(frozen=True)
class Evaluation:
    """One area's scores against the inventory: ``evaluation/<area>.json``."""

    area: str
    path: Path
    pixel: Scores
    record: Mapping[str, Any]
    """The whole JSON record (pixel counts, objects by size class, grid)."""

    @classmethod
    def from_record(cls, area: str, path: Path, record: Mapping[str, Any]) -> "Evaluation":
        return cls(area, Path(path), Scores.from_dict(record["pixel"]), record)


@dataclass(frozen=True)
class PatchFolder:
    """The dataset stage's product: ``dataset/<group>/`` holding the patches
    (``images.npy``, ``masks.npy``) and ``manifest.json`` (split, normalisation, provenance).
    Path-like, so it can be passed wherever a dataset folder is expected."""

    folder: Path

    def __fspath__(self) -> str:
        return str(self.folder)
