"""Run an event's stages in order, skipping what is done and redoing what changed.

Each stage records, in ``state/<stage>.json`` of the work folder, a digest of the settings
and upstream digests it was made from and whether it completed.  On a rerun a stage is

* skipped when its digest matches and it completed;
* resumed (its own per-item checkpoints skip finished work) when its digest matches but
  it did not complete, e.g. after Ctrl-C or a crash;
* cleaned and redone when its digest differs (a config change upstream or here).

So a rerun after a failure or a config change redoes only what changed, and its results
equal those of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import EventConfig, dump_config
from .errors import ConfigError
from .workdir import WorkDir

log = logging.getLogger("sarflow.pipeline")

AREAS = ("training", "validation")


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
            return sorted([*root.glob("*.zip"), *root.glob("*.SAFE")])
        return [root]

    return [_file_fingerprint(p) for root in cfg.scenes for p in products(root)]


def _file_fingerprint(path: Path | None) -> list | None:
    if path is None or not Path(path).exists():
        return None if path is None else [str(path), "missing"]
    st = Path(path).stat()
    return [Path(path).name, st.st_size, int(st.st_mtime)]


def _preprocess_settings(cfg: EventConfig) -> dict:
    d = dump_config(cfg)
    dem = cfg.dem if cfg.dem == "auto" else _file_fingerprint(cfg.dem)
    return {"scenes": _scene_fingerprint(cfg), "windows": d["windows"], "area": d["area"],
            "spacing": cfg.spacing, "polarisations": cfg.polarisations, "dem": dem,
            "orbits": d["processing"]["orbits"], "engine": cfg.processing.engine,
            "native": d["processing"]["native"], "snap": d["processing"]["snap"]}


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


def _model(cfg: EventConfig):
    return cfg.model.resolved()


def _dataset_settings(cfg: EventConfig) -> dict:
    m = _model(cfg)
    d = dump_config(cfg)
    return {"inventory": _file_fingerprint(cfg.inventory), "training_area": d["training_area"],
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
            "threshold": _model(cfg).threshold}


def _run_predict(cfg: EventConfig, opt: RunOptions) -> Any:
    from .predict import predict_event

    return predict_event(cfg, best_model(cfg), areas=_areas(cfg))


def _run_evaluate(cfg: EventConfig, opt: RunOptions) -> Any:
    from .evaluate import evaluate_event

    return evaluate_event(cfg, areas=_areas(cfg))


def _run_report(cfg: EventConfig, opt: RunOptions) -> Any:
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
          outputs=lambda cfg: [_wd(cfg).group(g) for g in ("G1", "G2", "G3", "G4", "G5", "G6")],
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
    Stage("evaluate", lambda cfg: {}, _run_evaluate,
          outputs=lambda cfg: [_wd(cfg).evaluation(a) for a in _areas(cfg)],
          clean=lambda cfg: [_wd(cfg).root / "evaluation"]),
    Stage("report", lambda cfg: {}, _run_report,
          outputs=lambda cfg: [_wd(cfg).report],
          clean=lambda cfg: [_wd(cfg).report.parent]),
]
STAGE_NAMES = [s.name for s in STAGES]


# ------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------

def digest(data: Any) -> str:
    """A short stable hash of JSON-able data."""
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str))
    tmp.replace(path)


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


def stage_digests(cfg: EventConfig) -> dict[str, str]:
    """Each stage's digest: its own settings chained with its upstream digest."""
    out: dict[str, str] = {}
    upstream = ""
    for stage in STAGES:
        upstream = digest([stage.name, upstream, stage.settings(cfg)])
        out[stage.name] = upstream
    return out


def run_event(cfg: EventConfig, *, start: str | None = None, until: str | None = None,
              options: RunOptions | None = None,
              on_stage: Callable[[str, str], None] | None = None) -> list[StageOutcome]:
    """Run (or skip) the selected stages of an event in order."""
    opt = options or RunOptions()
    wd = _wd(cfg)
    wd.root.mkdir(parents=True, exist_ok=True)
    digests = stage_digests(cfg)
    outcomes = []
    for stage in select_stages(start, until):
        outcomes.append(_run_stage(cfg, stage, digests[stage.name], opt, on_stage))
    return outcomes


def _run_stage(cfg: EventConfig, stage: Stage, dig: str, opt: RunOptions,
               on_stage: Callable[[str, str], None] | None) -> StageOutcome:
    state_path = _wd(cfg).state(stage.name)
    state = _read_state(state_path)
    done = state.get("digest") == dig and state.get("complete")
    if done and all(Path(p).exists() for p in stage.outputs(cfg)):
        if on_stage:
            on_stage(stage.name, "skipped")
        return StageOutcome(stage.name, "skipped", 0.0, dig)
    if state.get("digest") not in (None, dig):
        status = "redone"
        for path in stage.clean(cfg):
            _remove(path)
    else:
        status = "resumed" if state.get("digest") == dig else "ran"
    if on_stage:
        on_stage(stage.name, status)
    _write_state(state_path, {"digest": dig, "complete": False, "started": time.time()})
    t0 = time.perf_counter()
    stage.run(cfg, opt)
    seconds = time.perf_counter() - t0
    _write_state(state_path, {"digest": dig, "complete": True, "seconds": seconds,
                              "finished": time.time()})
    return StageOutcome(stage.name, status, seconds, dig)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# ------------------------------------------------------------------------------------
# experiment: the paper's ablation
# ------------------------------------------------------------------------------------

EXPERIMENT_ROWS: list[tuple[str, str]] = [
    *[(g, "dppa_unet") for g in ("G1", "G2", "G3", "G4", "G5", "G6")],
    ("G1", "unet"), ("G1", "segnet"),
]
TABLE_COLUMNS = ["group", "model", "batch_size", "learning_rate", "filters", "precision",
                 "recall", "f1", "iou"]


def experiment_dir(cfg: EventConfig) -> Path:
    return _wd(cfg).root / "experiment"


def run_experiment(cfg: EventConfig, *, rows: Sequence[tuple[str, str]] = EXPERIMENT_ROWS,
                   grid: bool | None = None, options: RunOptions | None = None,
                   on_row: Callable[[str, str], None] | None = None) -> list[dict]:
    """Train every (group, model) row on the same stack; write table.md and table.csv."""
    opt = options or RunOptions()
    run_event(cfg, until="stack", options=opt)
    results = []
    for group, arch in rows:
        if on_row:
            on_row(group, arch)
        results.append(_experiment_row(cfg, group, arch, grid))
    _write_table(cfg, results)
    return results


def _experiment_row(cfg: EventConfig, group: str, arch: str, grid: bool | None) -> dict:
    from .dataset import build_dataset
    from .train import train_event

    model = cfg.model.model_copy(update={"group": group, "architecture": arch})
    if grid is not None:
        model = model.model_copy(update={"grid_search": grid})
    sub = cfg.model_copy(update={"model": model})
    build_dataset(sub, group)
    result = train_event(sub)
    metrics = result.get("test_metrics", result)
    settings = result.get("settings", result)
    return {"group": group, "model": arch,
            **{k: settings.get(k) for k in ("batch_size", "learning_rate", "filters")},
            **{k: metrics.get(k) for k in ("precision", "recall", "f1", "iou")}}


def _write_table(cfg: EventConfig, rows: list[dict]) -> None:
    import csv
    import io

    out = experiment_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS)
    w.writeheader()
    w.writerows([{k: r.get(k) for k in TABLE_COLUMNS} for r in rows])
    (out / "table.csv").write_text(buf.getvalue())
    (out / "table.md").write_text(markdown_table(rows))


def markdown_table(rows: list[dict]) -> str:
    """The ablation table in the layout of the paper's Tables 3 and 4."""
    head = ["Group", "Model", "Batch size", "Learning rate", "Filters", "Precision",
            "Recall", "F1", "IoU"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["group"], r["model"], r.get("batch_size"), r.get("learning_rate"),
                r.get("filters")] + [_fmt(r.get(k)) for k in ("precision", "recall", "f1", "iou")]
        lines.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else str(v)


def experiment_rows(cfg: EventConfig) -> list[dict]:
    """The ablation rows written by the last experiment (empty when none ran)."""
    import csv

    path = experiment_dir(cfg) / "table.csv"
    if not path.exists():
        return []
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        for k in ("precision", "recall", "f1", "iou", "learning_rate"):
            r[k] = float(r[k]) if r.get(k) not in (None, "", "None") else None
    return rows


PAPER_ORDER: list[tuple[tuple[str, str], tuple[str, str]]] = [
    (("G1", "dppa_unet"), ("G2", "dppa_unet")), (("G1", "dppa_unet"), ("G3", "dppa_unet")),
    (("G1", "dppa_unet"), ("G4", "dppa_unet")), (("G4", "dppa_unet"), ("G5", "dppa_unet")),
    (("G4", "dppa_unet"), ("G6", "dppa_unet")), (("G1", "dppa_unet"), ("G1", "unet")),
    (("G1", "unet"), ("G1", "segnet")),
]
"""Pairs (better, worse) by F1 in the paper's ablation (Pan & Shi 2023, Tables 3 and 4)."""


def ranking_checks(rows: Sequence[dict]) -> list[dict]:
    """For each of the paper's orderings present in ``rows``: does this run reproduce it?"""
    f1 = {(r["group"], r["model"]): r.get("f1") for r in rows}
    checks = []
    for better, worse in PAPER_ORDER:
        a, b = f1.get(better), f1.get(worse)
        if a is None or b is None:
            continue
        checks.append({"claim": f"{better[0]} {better[1]} > {worse[0]} {worse[1]}",
                       "f1_better": a, "f1_worse": b, "holds": bool(a > b)})
    return checks
