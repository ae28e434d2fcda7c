"""Run an event's stages in order, skipping what is done and redoing what changed.

Each stage's product records (:class:`~sarflow.products.StageProduct`, in
``state/<stage>.json``) the :class:`~sarflow.provenance.Provenance` it was made from: its
own resolved settings (for preprocess: the engine that actually runs, its version and
settings) and its upstream stage's digest, so a change anywhere reaches everything after
it.  :func:`sarflow.provenance.is_current` decides.  On a rerun a stage is

* skipped when its digest matches and it completed;
* resumed (its own per-item checkpoints skip finished work) when its digest matches but
  it did not complete, e.g. after Ctrl-C or a crash;
* cleaned and redone when its digest differs (a config change upstream or here).

So a rerun after a failure or a config change redoes only what changed, and its results
equal those of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import EventConfig, dump_config
from .errors import ConfigError
from .products import StageProduct
from .provenance import Provenance, file_fingerprint, is_current
from .workdir import WorkDir

log = logging.getLogger("sarflow.pipeline")

AREAS = ("training", "validation")
PRODUCT_SUFFIXES = (".zip", ".safe", ".tif", ".tiff", ".h5")
"""Files of a scenes folder that are products: GRDs (SAFE, zip), HyP3 zips, OPERA and
sidecar GeoTIFFs."""


@dataclass
class RunOptions:
    """Run-time choices that do not change results (where to run, how to show progress)."""

    engine: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True


@dataclass
class Stage:
    """One step of the pipeline: what it depends on, what it produces, how to run it."""

    name: str
    settings: Callable[[EventConfig], Any]
    run: Callable[[EventConfig, RunOptions], Any]
    outputs: Callable[[EventConfig], list[Path]]
    clean: Callable[[EventConfig], list[Path]] = field(default=lambda cfg: [])
    summary: Callable[[EventConfig], str] = field(default=lambda cfg: "")


# ------------------------------------------------------------------------------------
# stage definitions
# ------------------------------------------------------------------------------------

def _wd(cfg: EventConfig) -> WorkDir:
    return WorkDir(cfg.output)


def _scene_fingerprint(cfg: EventConfig) -> list:
    """Name, size and time of every product the config points at (folders expanded)."""
    def products(root: Path) -> list[Path]:
        if root.is_dir() and root.suffix != ".SAFE":
            return sorted(q for q in root.iterdir() if q.suffix.lower() in PRODUCT_SUFFIXES)
        return [root]

    return [file_fingerprint(p) for root in cfg.scenes for p in products(root)]


def _preprocess_settings(cfg: EventConfig) -> dict:
    """The scenes, area, windows, DEM and the engine that actually runs (name, version and
    the settings that decide its values; ``auto`` resolved)."""
    from .preprocess import pick_engine

    d = dump_config(cfg)
    dem = cfg.dem if cfg.dem == "auto" else file_fingerprint(cfg.dem)
    engine = pick_engine(cfg.processing)
    return {"scenes": _scene_fingerprint(cfg), "windows": d["windows"], "area": d["area"],
            "spacing": cfg.spacing, "polarisations": cfg.polarisations, "dem": dem,
            "orbits": d["processing"]["orbits"], "engine": engine.name,
            "engine_version": engine.version, "engine_settings": engine.provenance_settings()}


def _run_preprocess(cfg: EventConfig, opt: RunOptions) -> Any:
    from .preprocess import preprocess_event

    summary = preprocess_event(cfg, engine=opt.engine, workers=opt.workers,
                               scheduler=opt.scheduler, progress=opt.progress)
    summary.raise_for_failures()  # the stage stays incomplete; a rerun retries only those
    return summary


def _run_stack(cfg: EventConfig, opt: RunOptions) -> Any:
    from .stack import stack_event

    return stack_event(cfg, workers=opt.workers, scheduler=opt.scheduler,
                       progress=opt.progress)


def _stack_outputs(cfg: EventConfig) -> list[Path]:
    """The groups the stack stage must have made: all six, less those its last run recorded
    as left out in ``selection.json`` (a pass without pre- or post-event scenes)."""
    import json

    from .stack import selection_path

    groups = ["G1", "G2", "G3", "G4", "G5", "G6"]
    try:
        left_out = json.loads(selection_path(_wd(cfg)).read_text())["selection"]["left_out"]
    except (OSError, ValueError, KeyError, TypeError):
        left_out = {}
    return [_wd(cfg).group(g) for g in groups if g not in left_out]


def _model(cfg: EventConfig):
    return cfg.model.resolved()


def _dataset_settings(cfg: EventConfig) -> dict:
    m = _model(cfg)
    d = dump_config(cfg)
    return {"inventory": file_fingerprint(cfg.inventory), "training_area": d["training_area"],
            "group": m.group, "patch_size": m.patch_size, "test_fraction": m.test_fraction,
            "seed": m.seed}


def _run_dataset(cfg: EventConfig, opt: RunOptions) -> Any:
    from .dataset import build_dataset

    return build_dataset(cfg, _model(cfg).group)


def _train_settings(cfg: EventConfig) -> dict:
    return _model(cfg).model_dump(mode="json")


def _run_train(cfg: EventConfig, opt: RunOptions) -> Any:
    from .train import train_event

    return train_event(cfg)


def _areas(cfg: EventConfig) -> list[str]:
    return [a for a in AREAS if getattr(cfg, f"{a}_area") is not None] or ["training"]


def _predict_settings(cfg: EventConfig) -> dict:
    d = dump_config(cfg)
    return {"areas": {a: d.get(f"{a}_area") for a in _areas(cfg)},
            "threshold": _model(cfg).threshold, **cfg.prediction.model_dump(mode="json")}


def _run_predict(cfg: EventConfig, opt: RunOptions) -> Any:
    from .predict import predict_event

    from .products import TrainedModel

    trained = TrainedModel.read(best_model(cfg).parent)  # a one-line error when missing
    return predict_event(cfg, trained.model_path, areas=_areas(cfg))


def _run_evaluate(cfg: EventConfig, opt: RunOptions) -> Any:
    from .evaluate import evaluate_event

    results = evaluate_event(cfg, areas=_areas(cfg))
    if _has_stack(cfg):
        _run_heatmap_evaluate(cfg)
    return results


def _has_stack(cfg: EventConfig) -> bool:
    """Whether the stack stage has run (its selection record exists): the heatmap needs the
    same pre- and post-event scenes it chose."""
    from .stack import selection_path

    return selection_path(_wd(cfg)).is_file()


def _evaluate_settings(cfg: EventConfig) -> dict:
    """The heatmap's scoring settings (the model's own scores have none)."""
    from .heatmap_scores import heatmap_settings

    return {"heatmap": heatmap_settings()}


def _run_heatmap_evaluate(cfg: EventConfig) -> Any:
    """The no-model heatmap, scored like the model (its rule chosen on the training area)."""
    from .heatmap import heatmap_event
    from .heatmap_scores import evaluate_heatmap_event

    s = _evaluate_settings(cfg)["heatmap"]
    heatmap_event(cfg, floor_db=s["floor_db"])
    return evaluate_heatmap_event(cfg, areas=_areas(cfg), band=s["band"], sign=s["sign"])


def _evaluate_outputs(cfg: EventConfig) -> list[Path]:
    """The model's evaluation per area, and the heatmap's when the stack exists."""
    from .heatmap import heatmap_path

    wd = _wd(cfg)
    out = [wd.evaluation(a) for a in _areas(cfg)]
    if _has_stack(cfg):
        out += [heatmap_path(wd), wd.heatmap_mask] + [wd.heatmap_evaluation(a) for a in _areas(cfg)]
    return out


def _run_report(cfg: EventConfig, opt: RunOptions) -> Any:
    from .ablation import experiment_rows
    from .report import write_report

    return write_report(cfg, experiment_table=experiment_rows(cfg) or None)


def best_model(cfg: EventConfig) -> Path:
    """The model file the train stage chose (recorded in its result)."""
    from .train import best_model_path

    return best_model_path(cfg)


STAGES: list[Stage] = [
    Stage("preprocess", _preprocess_settings, _run_preprocess,
          outputs=lambda cfg: [_wd(cfg).preprocess_summary],
          clean=lambda cfg: [_wd(cfg).preprocessed]),
    Stage("stack", lambda cfg: {}, _run_stack,
          outputs=_stack_outputs,
          clean=lambda cfg: [_wd(cfg).stack]),
    Stage("dataset", _dataset_settings, _run_dataset,
          outputs=lambda cfg: [_wd(cfg).dataset(_model(cfg).group)],
          clean=lambda cfg: [_wd(cfg).dataset(_model(cfg).group), _wd(cfg).labels.parent]),
    Stage("train", _train_settings, _run_train,
          outputs=lambda cfg: [best_model(cfg)],
          clean=lambda cfg: [_wd(cfg).root / "models"]),
    Stage("predict", _predict_settings, _run_predict,
          outputs=lambda cfg: [_wd(cfg).prediction(a) / "probability.tif" for a in _areas(cfg)],
          clean=lambda cfg: [_wd(cfg).root / "predictions"]),
    Stage("evaluate", _evaluate_settings, _run_evaluate,
          outputs=_evaluate_outputs,
          clean=lambda cfg: [_wd(cfg).root / "evaluation", _wd(cfg).root / "heatmap"]),
    Stage("report", lambda cfg: {}, _run_report,
          outputs=lambda cfg: [_wd(cfg).report],
          clean=lambda cfg: [_wd(cfg).report.parent]),
]
STAGE_NAMES = [s.name for s in STAGES]


# ------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------

def select_stages(start: str | None = None, until: str | None = None) -> list[Stage]:
    """The stages from ``start`` to ``until`` inclusive (names checked)."""
    for name, value in (("--from", start), ("--until", until)):
        if value is not None and value not in STAGE_NAMES:
            raise ConfigError(f"{name} {value!r} is not a stage; choose one of "
                              f"{', '.join(STAGE_NAMES)}")
    i = STAGE_NAMES.index(start) if start else 0
    j = STAGE_NAMES.index(until) if until else len(STAGES) - 1
    if i > j:
        raise ConfigError(f"--from {start} comes after --until {until}")
    return STAGES[i:j + 1]


@dataclass
class StageOutcome:
    """What happened to one stage in a run."""

    name: str
    status: str  # "skipped", "ran", "resumed", "redone"
    seconds: float
    digest: str


def stage_provenances(cfg: EventConfig) -> dict[str, Provenance]:
    """Each stage's provenance: its own settings chained with its upstream's digest."""
    out: dict[str, Provenance] = {}
    upstream = ""
    for stage in STAGES:
        prov = Provenance(stage=stage.name, settings={"settings": stage.settings(cfg)},
                          inputs={"upstream": upstream})
        out[stage.name] = prov
        upstream = prov.digest
    return out


def stage_digests(cfg: EventConfig) -> dict[str, str]:
    """Each stage's provenance digest (see :func:`stage_provenances`)."""
    return {name: p.digest for name, p in stage_provenances(cfg).items()}


def _with_engine(cfg: EventConfig, engine: str | None) -> EventConfig:
    """``cfg`` with a run-time engine choice (``--engine``) written into it."""
    if engine is None or engine == cfg.processing.engine:
        return cfg
    processing = cfg.processing.model_copy(update={"engine": engine})
    return cfg.model_copy(update={"processing": processing})


def run_event(cfg: EventConfig, *, start: str | None = None, until: str | None = None,
              options: RunOptions | None = None,
              on_stage: Callable[[str, str], None] | None = None) -> list[StageOutcome]:
    """Run (or skip) the selected stages of an event in order."""
    opt = options or RunOptions()
    cfg = _with_engine(cfg, opt.engine)
    _wd(cfg).root.mkdir(parents=True, exist_ok=True)
    provenances = stage_provenances(cfg)
    outcomes = []
    for stage in select_stages(start, until):
        outcomes.append(_run_stage(cfg, stage, provenances[stage.name], opt, on_stage))
    return outcomes


def stage_product(cfg: EventConfig, stage: Stage) -> StageProduct:
    """The product of ``stage`` for this event: its outputs, what a redo cleans, its record."""
    return StageProduct(stage=stage.name, record_path=_wd(cfg).state(stage.name),
                        paths=[Path(p) for p in stage.outputs(cfg)],
                        clean=[Path(p) for p in stage.clean(cfg)])


def _run_stage(cfg: EventConfig, stage: Stage, prov: Provenance, opt: RunOptions,
               on_stage: Callable[[str, str], None] | None) -> StageOutcome:
    product = stage_product(cfg, stage)
    if product.is_current(prov):
        if on_stage:
            on_stage(stage.name, "skipped")
        return StageOutcome(stage.name, "skipped", 0.0, prov.digest)
    recorded, _ = product.recorded()
    if recorded is not None and not is_current(recorded, prov):
        status = "redone"
        for path in product.clean:
            _remove(path)
    else:
        status = "resumed" if recorded is not None else "ran"
    if on_stage:
        on_stage(stage.name, status)
    product.mark(prov, complete=False, started=time.time())
    t0 = time.perf_counter()
    stage.run(cfg, opt)
    seconds = time.perf_counter() - t0
    product.mark(prov, complete=True, seconds=seconds, finished=time.time())
    return StageOutcome(stage.name, status, seconds, prov.digest)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
