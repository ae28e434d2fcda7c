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


def band_names(polarisations: Sequence[str]) -> list[str]:
    """Band descriptions of a scene output, in order."""
    return [f"sigma0_{p}" for p in polarisations] + [MASK_BAND]


def scene_provenance(*, engine: str, engine_version: str, engine_settings: Mapping[str, Any],
                     scene: Path, grid: Grid, polarisations: Sequence[str], dem: Optional[Path],
                     orbits: Optional[Path]) -> Provenance:
    """What decides one scene output's values: the engine that runs and its settings, the
    input product, the grid, the polarisations, the DEM and the orbit files."""
    return Provenance(
        stage="preprocess",
        settings={"engine": engine, "engine_version": engine_version,
                  "engine_settings": dict(engine_settings),
                  "grid": [grid.col0, grid.row0, grid.width, grid.height, grid.spacing],
                  "polarisations": list(polarisations)},
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
            "polarisations": ",".join(polarisations), "provenance": provenance.to_json()}


@dataclass(frozen=True)
class SceneOutput:
    """One preprocessed scene: ``preprocessed/<product_id>.tif`` (sigma0 bands, then the
    layover/shadow mask) with the tags of :data:`REQUIRED_TAGS`."""

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
        expected = band_names(polarisations)
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
        from .grid import raster_info

        try:
            return Provenance.from_json(raster_info(self.path).tags.get("provenance"))
        except Exception:  # noqa: BLE001 - an unreadable file has no provenance: not current
            return None

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

    def tags(self) -> dict[str, str]:
        from .grid import raster_info

        return dict(raster_info(self.path).tags)


def _difference(recorded: Optional[Provenance], expected: Provenance) -> str:
    """Which part of the provenance differs, in words (for logs)."""
    if recorded is None:
        return "without a provenance record"
    for key in ("engine", "engine_version", "engine_settings", "grid", "polarisations"):
        got, want = recorded.settings.get(key), expected.settings.get(key)
        if json.dumps(got, sort_keys=True, default=str) != json.dumps(want, sort_keys=True,
                                                                      default=str):
            return f"with {key} {got!r}, now {want!r}"
    return "from other inputs (scene, DEM or orbit files)"


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
