"""Event configuration: one YAML file per event, validated with pydantic.

Relative paths resolve against the config file's folder.  Every invalid value becomes a
:class:`~sarflow.errors.ConfigError` whose one-line message names the key, the value and
what is allowed.  Data paths that do not exist yet are not errors here (scenes may not be
downloaded yet): :func:`missing_paths` lists them, and the stages that need them fail.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from .errors import ConfigError, InputError
from .grid import SPACING, Grid
from .resources import models_dir

ARCHITECTURES = ("dppa_unet", "unet", "segnet")
MODELS_DIR = models_dir()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _utc(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)


class Event(_Strict):
    """What happened, and when (UTC)."""

    time: dt.datetime
    magnitude: Optional[float] = None
    description: str = ""

    @field_validator("time")
    @classmethod
    def _to_utc(cls, v: dt.datetime) -> dt.datetime:
        return _utc(v)


class Area(_Strict):
    """An area: a bbox [west, south, east, north] in degrees, or a GeoJSON/GPKG polygon file."""

    bbox: Optional[tuple[float, float, float, float]] = None
    file: Optional[Path] = None

    @model_validator(mode="after")
    def _one_of(self) -> "Area":
        if (self.bbox is None) == (self.file is None):
            raise ValueError("give exactly one of 'bbox' [west, south, east, north] or 'file'")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not all(math.isfinite(x) for x in self.bbox):
                raise ValueError(f"bbox {list(self.bbox)} has a non-finite value")
            if not (-180 <= w <= 180 and -180 <= e <= 180):
                raise ValueError(f"bbox longitudes {w}, {e} must lie in [-180, 180]")
            if not (-90 <= s <= 90 and -90 <= n <= 90):
                raise ValueError(f"bbox latitudes {s}, {n} must lie in [-90, 90]")
            if not (w < e and s < n):
                raise ValueError(f"bbox {list(self.bbox)} is inverted: it must be "
                                 "[west, south, east, north] with west < east and south < north")
        return self

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the bbox or of the polygon file's extent."""
        if self.bbox is not None:
            return tuple(self.bbox)  # type: ignore[return-value]
        return vector_bounds(self.file)


class Windows(_Strict):
    """Pre- and post-event acquisition windows, inclusive dates [start, end]."""

    pre: tuple[dt.date, dt.date]
    post: tuple[dt.date, dt.date]

    @field_validator("pre", "post")
    @classmethod
    def _ordered(cls, v: tuple[dt.date, dt.date]) -> tuple[dt.date, dt.date]:
        if v[0] > v[1]:
            raise ValueError(f"window [{v[0]}, {v[1]}] ends before it starts")
        return v


class SnapSettings(_Strict):
    """How sarflow runs ESA SNAP's gpt (None: derived from the worker that runs the scene)."""

    gpt: Optional[Path] = None
    memory_gb: Optional[float] = Field(None, gt=0)
    tile_cache_gb: Optional[float] = Field(None, gt=0)
    threads: Optional[int] = Field(None, ge=1)
    timeout_s: float = Field(7200, gt=0)
    dem: str = "SRTM 1Sec HGT"
    orbit_type: Literal["precise", "restituted"] = "precise"
    orbit_continue_on_fail: bool = False
    region_margin_deg: Optional[float] = Field(None, ge=0, lt=1)
    """Fixed subset margin (degrees); None: from latitude and the DEM's highest point."""
    max_height_m: Optional[float] = Field(None, ge=0)
    """Highest terrain for the subset margin; None: the DEM file's maximum (3000 m without one)."""
    geoid: bool = True
    """The external DEM holds EGM96 heights (SRTM-like); False: ellipsoidal heights."""
    split: bool = False
    noise_clip: Literal["floor", "nan"] = "floor"
    noise_floor: float = Field(1e-5, gt=0)
    """sigma0 (linear) given to pixels below it (the rule of both engines, sarflow.engines.floor)."""
    edge_erosion_px: int = Field(4, ge=0, le=100)
    """Pixels trimmed off the terrain-corrected scene border (its artefacts); 0: none."""
    stall_timeout_s: float = Field(1800, gt=0)
    """gpt is killed when neither its log nor its output grew for this long."""
    finish_grace_s: float = Field(60, gt=0)
    """How long gpt may linger after "Processing completed" before it is killed."""
    userdir: Optional[Path] = None
    """Root of the per-worker SNAP user folders (None: <output folder>/.snap-workers)."""
    allow_downloads: bool = True
    """Let SNAP download missing orbit files, EGM96 and SRTM tiles."""

    RESOURCE_KEYS: ClassVar[tuple[str, ...]] = ("gpt", "memory_gb", "tile_cache_gb", "threads",
                                                "timeout_s", "stall_timeout_s", "finish_grace_s",
                                                "userdir", "allow_downloads")
    """How gpt runs, not what it computes: left out of the scenes' provenance."""

    def provenance(self) -> dict[str, Any]:
        """The settings that decide the output's values (resources left out)."""
        return self.model_dump(mode="json", exclude=set(self.RESOURCE_KEYS))


class NativeSettings(_Strict):
    """Every knob of the embedded engine (see :mod:`sarflow.engines.native`)."""

    noise_clip: Literal["floor", "nan"] = "floor"
    noise_floor: float = Field(1e-5, gt=0)
    """sigma0 (linear) given to pixels that thermal noise removal makes non-positive."""
    block_size: int = Field(1024, ge=64)
    border_limit: int = Field(500, ge=0)
    """GRD border noise search width (pixels), ESA's procedure for IPF < 2.90."""
    trim_threshold: float = Field(0.5, ge=0)
    """Noise-corrected intensity below which border pixels are removed."""
    lut_stride: int = Field(16, ge=1)
    """Grid pixels between the geometry lookup table's nodes."""
    max_halo: int = Field(768, ge=0)
    """Cap on the layover/shadow context around a block (pixels)."""
    calibration: Literal["sigma0", "beta0", "gamma0"] = "sigma0"
    thermal_noise: bool = True
    geoid: bool = True
    """The DEM holds EGM96 heights (SRTM); False: ellipsoidal heights."""
    edge_erosion_px: int = Field(4, ge=0, le=100)
    """Pixels trimmed off the terrain-corrected scene border (as SNAP's); 0: none."""
    threads: int = Field(1, ge=1)
    """Blocks processed at once (the preprocess stage runs scenes in parallel instead)."""
    zlevel: int = Field(1, ge=1, le=9)
    """Compression level of the output (ZSTD, or DEFLATE where GDAL lacks ZSTD; 1: fast)."""

    RESOURCE_KEYS: ClassVar[tuple[str, ...]] = ("threads", "zlevel")
    """How the engine runs, not what it computes: left out of the scenes' provenance."""

    def provenance(self) -> dict[str, Any]:
        """The settings that decide the output's values (resources left out)."""
        return self.model_dump(mode="json", exclude=set(self.RESOURCE_KEYS))


class Processing(_Strict):
    """Where and how the per-scene work runs."""

    engine: Literal["snap", "native", "import", "auto"] = "auto"
    workers: Optional[int] = Field(None, ge=1)
    memory_per_worker_gb: Optional[float] = Field(None, gt=0)
    scheduler: Optional[str] = None
    retries: int = Field(1, ge=0)
    orbits: Optional[Path] = None
    snap: SnapSettings = SnapSettings()
    native: NativeSettings = NativeSettings()

    @model_validator(mode="before")
    @classmethod
    def _one_dem_datum(cls, data: Any) -> Any:
        """The DEM's height datum is a fact about the file, said once: ``geoid`` given for
        one engine holds for the other; given differently for the two, it is an error."""
        if not isinstance(data, dict):
            return data
        said = {k: _geoid_said(data.get(k)) for k in ("snap", "native")}
        given = {k: v for k, v in said.items() if v is not None}
        if len(set(given.values())) > 1:
            raise _KeyError("processing.native.geoid", str(given["native"]).lower(),
                            f"processing.snap.geoid is {str(given['snap']).lower()}; the DEM's "
                            "heights have one datum, so set geoid once (either key)")
        if len(given) == 1:
            value = next(iter(given.values()))
            data = {**data, **{k: _with_geoid(data.get(k), value) for k, v in said.items() if v is None}}
        return data


def _geoid_said(settings: Any) -> Optional[bool]:
    """The ``geoid`` an engine's settings state explicitly (None: left to the default)."""
    if isinstance(settings, dict):
        return settings.get("geoid")
    if isinstance(settings, BaseModel) and "geoid" in settings.model_fields_set:
        return settings.geoid
    return None


def _with_geoid(settings: Any, value: bool) -> Any:
    """An engine's settings (mapping, model or None) with ``geoid`` set to ``value``."""
    if isinstance(settings, BaseModel):
        return settings.model_copy(update={"geoid": value})
    return {**(settings or {}), "geoid": value}


FINE_TUNE_LR_FACTOR = 0.1
"""Default learning-rate factor when fine-tuning from ``model.init`` (standard transfer
learning practice: about a tenth of the rate used to train from scratch)."""


class ModelSettings(_Strict):
    """Network and training settings; unset values come from ``models/<architecture>.yaml``."""

    architecture: Literal["dppa_unet", "unet", "segnet"] = "dppa_unet"
    group: Literal["G1", "G2", "G3", "G4", "G5", "G6"] = "G1"
    filters: Optional[int] = Field(None, ge=1)
    depth: Optional[int] = Field(None, ge=1, le=6)
    batch_size: Optional[int] = Field(None, ge=1)
    learning_rate: Optional[float] = Field(None, gt=0, lt=1)
    epochs: Optional[int] = Field(None, ge=1)
    patience: Optional[int] = Field(None, ge=1)
    patch_size: int = Field(128, ge=16)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    threshold: float = Field(0.5, gt=0, lt=1)
    grid_search: bool = False
    grid: Optional[dict[str, list[Any]]] = None
    init: Optional[Path] = None
    """A trained model (.keras, same group and channels) to start training from."""
    fine_tune_lr_factor: float = Field(FINE_TUNE_LR_FACTOR, gt=0, le=1)
    """With ``init``: Adam's learning rate is ``learning_rate`` times this (fine-tuning
    takes smaller steps so the pretrained features are adjusted, not overwritten)."""
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "auto"
    """Compute precision of training: ``auto`` is mixed float16 on a GPU, mixed bfloat16 on
    a CPU with native bfloat16 (AVX512-BF16, AMX), float32 elsewhere; the trained model
    predicts in the precision it was trained in."""

    @field_validator("patch_size")
    @classmethod
    def _pow2(cls, v: int) -> int:
        if v % 16:
            raise ValueError(f"patch_size {v} must be a multiple of 16 (four 2x downsamplings)")
        return v

    def resolved(self) -> "ModelSettings":
        """These settings with every unset value filled from the architecture's spec."""
        spec = load_model_spec(self.architecture)
        values = self.model_dump()
        for key, default in spec.get("defaults", {}).items():
            if key in values and values[key] is None:
                values[key] = default
        if values.get("grid") is None:
            values["grid"] = spec.get("grid")
        return ModelSettings(**values)


class PredictionSettings(_Strict):
    """How a trained model maps an area (the predict stage and ``sarflow map``)."""

    flip_average: bool = True
    """Average each window's predictions over its four flips (left-right, up-down, both:
    the flips training augments with); four forward passes per window."""


class EventConfig(_Strict):
    """A whole event: data, area, windows, processing and model settings."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    event: Event
    area: Area
    windows: Windows
    scenes: list[Path]
    dem: Union[Literal["auto"], Path] = "auto"
    dem_dir: Optional[Path] = None
    allow_download: bool = False
    inventory: Optional[Path] = None
    training_area: Optional[Area] = None
    validation_area: Optional[Area] = None
    polarisations: list[Literal["VV", "VH"]] = ["VV", "VH"]
    spacing: float = Field(SPACING, gt=0, lt=1)
    output: Path = Path("work")
    processing: Processing = Processing()
    model: ModelSettings = ModelSettings()
    prediction: PredictionSettings = PredictionSettings()
    source: Optional[Path] = Field(None, exclude=True)

    @field_validator("scenes", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, (str, os.PathLike)) else v

    @field_validator("polarisations")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"polarisations {v} must be a non-empty list of distinct VV, VH")
        return v

    @model_validator(mode="after")
    def _windows_around_event(self) -> "EventConfig":
        t = self.event.time
        pre_end = _utc(self.windows.pre[1])
        post_start = _utc(self.windows.post[0])
        if pre_end > t:
            raise _KeyError("windows.pre", f"{self.windows.pre[1]}",
                            f"the pre-event window must end on or before the event day "
                            f"({t.date()})")
        if post_start + dt.timedelta(days=1) <= t:
            raise _KeyError("windows.post", f"{self.windows.post[0]}",
                            f"the post-event window must start on or after the event day "
                            f"({t.date()})")
        return self

    # -- derived ----------------------------------------------------------------------
    def grid(self) -> Grid:
        """The event grid: the lattice window covering the area of interest."""
        return Grid.from_bounds(*self.area.bounds(), spacing=self.spacing)

    def area_grid(self, which: Literal["training", "validation"]) -> Grid:
        """The event-grid window of the training or validation area (whole grid if unset)."""
        area = self.training_area if which == "training" else self.validation_area
        event = self.grid()
        if area is None:
            return event
        sub = event.intersection(Grid.from_bounds(*area.bounds(), spacing=self.spacing))
        if sub is None:
            raise ConfigError(f"{which}_area {area.bounds()} does not overlap the event area "
                              f"{event.bounds}; move it inside area")
        return sub

    def pre_window(self) -> tuple[dt.datetime, dt.datetime]:
        """Pre-event window as UTC datetimes, end of the last day inclusive."""
        return _utc(self.windows.pre[0]), _utc(self.windows.pre[1]) + dt.timedelta(days=1)

    def post_window(self) -> tuple[dt.datetime, dt.datetime]:
        """Post-event window as UTC datetimes, end of the last day inclusive."""
        return _utc(self.windows.post[0]), _utc(self.windows.post[1]) + dt.timedelta(days=1)


class _KeyError(ValueError):
    """A model-level check failure that knows which key it is about."""

    def __init__(self, key: str, value: str, allowed: str) -> None:
        super().__init__(f"{key}: {value!s} is not allowed: {allowed}")
        self.key = key


# ------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------

def _format_error(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    ctx_err = (e.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _KeyError):
        return f"{source}: {ctx_err}"
    value = e.get("input")
    shown = "" if isinstance(value, dict) or e["type"] == "missing" else f" = {value!r}"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {key}{shown}: {msg}{more}"


def _resolve_paths(cfg: EventConfig, base: Path) -> EventConfig:
    def fix(p: Optional[Path]) -> Optional[Path]:
        if p is None:
            return None
        p = Path(os.path.expanduser(str(p)))
        return p if p.is_absolute() else (base / p).resolve()

    cfg.scenes = [fix(p) for p in cfg.scenes]
    if cfg.dem != "auto":
        cfg.dem = fix(cfg.dem)
    cfg.dem_dir = fix(cfg.dem_dir)
    cfg.inventory = fix(cfg.inventory)
    cfg.output = fix(cfg.output)
    cfg.processing.orbits = fix(cfg.processing.orbits)
    cfg.model.init = fix(cfg.model.init)
    cfg.processing.snap.gpt = fix(cfg.processing.snap.gpt)
    for area in (cfg.area, cfg.training_area, cfg.validation_area):
        if area is not None and area.file is not None:
            area.file = fix(area.file)
    return cfg


def parse_config(data: dict, source: str = "config", base: Path | None = None) -> EventConfig:
    """Validate a config mapping; relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (name, event, area, ...), "
                          f"got {type(data).__name__}")
    try:
        cfg = EventConfig(**data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None
    return _resolve_paths(cfg, base or Path.cwd())


def load_config(path: str | os.PathLike) -> EventConfig:
    """Read and validate an event YAML file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    cfg = parse_config(data, source=p.name, base=p.resolve().parent)
    cfg.source = p.resolve()
    return cfg


def dump_config(cfg: EventConfig) -> dict:
    """The resolved config as plain data (paths as strings), for tables and digests."""
    return cfg.model_dump(mode="json", exclude={"source"})


def missing_paths(cfg: EventConfig) -> list[str]:
    """Data paths named by the config that do not exist (yet): warnings, not errors."""
    out = []
    for i, p in enumerate(cfg.scenes):
        if not p.exists():
            out.append(f"scenes[{i}]: {p} does not exist")
    checks = {"dem": None if cfg.dem == "auto" else cfg.dem, "dem_dir": cfg.dem_dir,
              "inventory": cfg.inventory, "processing.orbits": cfg.processing.orbits,
              "processing.snap.gpt": cfg.processing.snap.gpt}
    for area_key in ("area", "training_area", "validation_area"):
        area = getattr(cfg, area_key)
        if area is not None and area.file is not None:
            checks[f"{area_key}.file"] = area.file
    for key, p in checks.items():
        if p is not None and not Path(p).exists():
            out.append(f"{key}: {p} does not exist")
    return out


def load_model_spec(name_or_path: str | os.PathLike) -> dict:
    """A model spec (architecture, defaults, grid) from ``models/`` or a YAML path."""
    p = Path(name_or_path)
    if not p.suffix:
        p = MODELS_DIR / f"{name_or_path}.yaml"
    if not p.is_file():
        raise ConfigError(f"model spec not found: {p}; choose one of {', '.join(ARCHITECTURES)}")
    return yaml.safe_load(p.read_text()) or {}


def vector_bounds(path: str | os.PathLike) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a vector file's features, in EPSG:4326."""
    from .vector import geometries

    envelopes = [g.GetEnvelope() for g in geometries(path, what="area file")]
    if not envelopes:
        raise InputError(f"area file {path} holds no geometry; draw the area as a polygon")
    return (min(e[0] for e in envelopes), min(e[2] for e in envelopes),
            max(e[1] for e in envelopes), max(e[3] for e in envelopes))
