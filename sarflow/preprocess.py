"""Bulk preprocessing: one engine run per selected scene, as Dask tasks, resumable.

:func:`preprocess_event` selects the event's scenes (:mod:`sarflow.catalog`), skips those
whose output already passes :func:`~sarflow.engines.validate_output`, and runs the engine
on the rest: on a local ``distributed.LocalCluster`` (worker processes; how many and how
much memory each derived from the machine, overridable) or on an existing Dask cluster
given by its scheduler address (workers must see the same paths, and have sarflow
installed).

Safety: each scene's work happens under a file lock next to its output
(``<product_id>.tif.lock``), so two runs on one event never write the same file; engines
write atomically, so an interrupted run (Ctrl-C, a killed worker) leaves no file that looks
finished, and stale temporaries are removed before a scene is redone.  A failed scene is
retried ``processing.retries`` times (not when its input is missing or corrupt), does not stop the
batch, and is reported at the end with its log.  The run summary (per scene: engine, orbit
source, seconds, outcome, log) goes to ``WorkDir.preprocess_summary``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .catalog import SceneRecord, select_scenes
from .config import EventConfig
from .engines import WorkerResources, cpu_count as _cpus
from .provenance import Provenance
from .errors import (ConfigError, InputError,
                     ProcessingError, SarflowError)
from .grid import Grid, atomic_path
from .workdir import WorkDir

log = logging.getLogger("sarflow.preprocess")

OUTCOMES = ("done", "existing", "failed", "skipped", "locked")
"""done: processed now · existing: a valid output was already there · failed: see reason
and log · skipped: not processable as configured (e.g. a polarisation missing) ·
locked: another run is processing it.  (An interrupted run writes no summary.)"""

DEFAULT_MEMORY_GB = {"native": 2.0, "snap": 8.0}
"""Memory one scene needs by engine: native works in blocks (bench_native's 25 Mpx grid on a
full-size IW frame peaked at 1.3 GB, a Hokkaido-sized event's workers at 0.7 GB); SNAP's JVM
wants more."""
CORES_PER_TASK = {"native": 1, "snap": 4}
"""Cores one scene keeps busy (gpt is multi-threaded)."""
MEMORY_SHARE = 0.8
"""Fraction of the machine's memory the local cluster may use."""


# ------------------------------------------------------------------------------------
# records
# ------------------------------------------------------------------------------------

@dataclass
class SceneOutcome:
    """What happened to one scene in a run."""

    product_id: str
    scene: str
    output: str
    log: str
    outcome: str
    window: Optional[str] = None
    pass_direction: Optional[str] = None
    engine: Optional[str] = None
    orbit_source: Optional[str] = None
    seconds: float = 0.0
    attempts: int = 0
    reason: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """A preprocessing run: where it ran and what happened to each scene."""

    event: str
    engine: str
    cluster: str
    workers: int
    started: str
    seconds: float
    scenes: list[SceneOutcome]
    path: Optional[Path] = None

    @property
    def counts(self) -> dict[str, int]:
        return {k: sum(s.outcome == k for s in self.scenes) for k in OUTCOMES}

    @property
    def failed(self) -> list[SceneOutcome]:
        return [s for s in self.scenes if s.outcome == "failed"]

    @property
    def ok(self) -> bool:
        """True when every selected scene has a valid output now."""
        return all(s.outcome in ("done", "existing") for s in self.scenes)

    def raise_for_failures(self) -> None:
        """Raise a one-line ProcessingError naming the first failed scene, if any failed."""
        if not self.failed:
            return
        first = self.failed[0]
        reason = (first.reason or "see its log").removeprefix(Path(first.scene).name + ": ")
        raise ProcessingError(
            f"{len(self.failed)} of {len(self.scenes)} scenes failed, first "
            f"{first.product_id}: {reason}; logs in {self.path.parent}; fix or remove those "
            "scenes and rerun: only the failed ones are retried")

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "engine": self.engine, "cluster": self.cluster,
                "workers": self.workers, "started": self.started,
                "seconds": round(self.seconds, 3), "counts": self.counts,
                "scenes": [asdict(s) for s in self.scenes]}


# ------------------------------------------------------------------------------------
# the per-scene task (runs on a Dask worker)
# ------------------------------------------------------------------------------------

@dataclass
class SceneTask:
    """Everything a worker needs for one scene (picklable)."""

    job: Any  # engines.SceneJob
    engine: Any
    """Engine name (resolved on the worker) or an engine object with ``process``."""
    retries: int
    product_id: str
    provenance: Provenance
    """What the output must have been made from to count as done (engine, settings, inputs)."""
    window: Optional[str] = None
    pass_direction: Optional[str] = None

    def outcome(self, outcome: str, **kw: Any) -> SceneOutcome:
        return SceneOutcome(product_id=self.product_id, scene=str(self.job.scene),
                            output=str(self.job.output), log=str(self.job.log_path),
                            outcome=outcome, window=self.window,
                            pass_direction=self.pass_direction, **kw)


def _resolve_engine(engine: Any) -> Any:
    if isinstance(engine, str):
        from .engines import _load

        return _load(engine)
    return engine


def output_is_valid(job: Any) -> Optional[str]:
    """None when ``job.output`` is a complete scene output, else why not (one line)."""
    from .errors import SarflowError
    from .products import SceneOutput

    try:
        SceneOutput(Path(job.output)).validate(job.grid, job.polarisations)
    except SarflowError as exc:
        return exc.one_line()
    return None


def output_is_current(task: "SceneTask") -> Optional[str]:
    """None when the task's output is complete and made as its provenance says (the same
    engine, engine version and settings, the same inputs), else why not (one line)."""
    from .products import SceneOutput

    job = task.job
    return SceneOutput(Path(job.output)).why_not_current(job.grid, job.polarisations,
                                                         task.provenance)


def existing_outcome(task: SceneTask) -> SceneOutcome:
    """Outcome of a scene whose valid output is already there (engine, orbit from its tags)."""
    from .grid import raster_info

    tags = raster_info(task.job.output).tags
    return task.outcome("existing", engine=tags.get("engine"), orbit_source=tags.get("orbit_source"))


def _remove_stale_temporaries(output: Path) -> None:
    """Delete temporaries of an earlier, interrupted write of ``output`` (we hold its lock)."""
    for tmp in output.parent.glob(f".{output.stem}.tmp-*{output.suffix}"):
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def _append_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"[{stamp} sarflow.preprocess] {text.rstrip()}\n")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SarflowError):
        return exc.one_line()
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def run_scene(task: SceneTask) -> SceneOutcome:
    """Process one scene under its lock: skip if done, else run the engine with retries."""
    from filelock import FileLock, Timeout

    job = task.job
    output = Path(job.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(str(output) + ".lock", timeout=0)
        lock.acquire()
    except Timeout:
        return task.outcome("locked", reason=f"another run holds {output.name}.lock; "
                                             "rerun when it has finished")
    try:
        stale = output_is_current(task)
        if stale is None:
            return existing_outcome(task)
        if output.exists():
            _append_log(job.log_path, f"redone: {stale}")
        _remove_stale_temporaries(output)
        return _attempts(task)
    finally:
        lock.release()


def _attempts(task: SceneTask) -> SceneOutcome:
    """Run the engine up to ``1 + retries`` times; input errors (missing, corrupt) once."""
    job = task.job
    engine = _resolve_engine(task.engine)
    history: list[str] = []
    reason, attempt, began = "", 0, time.perf_counter()
    for attempt in range(1, task.retries + 2):
        try:
            result = engine.process(job)
        except InputError as exc:  # the input will not get better by retrying
            reason = _one_line(exc)
            _append_log(job.log_path, f"attempt {attempt} failed: {reason}")
            break
        except Exception as exc:  # noqa: BLE001 - one scene's failure must not stop the batch
            reason = _one_line(exc)
            detail = "" if isinstance(exc, SarflowError) else "\n" + traceback.format_exc()
            history.append(f"attempt {attempt} failed: {reason}")
            _append_log(job.log_path, history[-1] + detail)
            if getattr(exc, "transient", True) is False:  # it would fail the same way again
                break
            continue
        invalid = output_is_current(task)
        if invalid is None:
            for line in history:  # the engine rewrote the log; keep what went before
                _append_log(job.log_path, line)
            return task.outcome("done", engine=result.engine, orbit_source=result.orbit_source,
                                seconds=round(time.perf_counter() - began, 3),
                                attempts=attempt, notes=list(result.notes))
        reason = f"engine wrote an invalid output: {invalid}"
        history.append(f"attempt {attempt} failed: {reason}")
        _append_log(job.log_path, history[-1])
        Path(job.output).unlink(missing_ok=True)
    return task.outcome("failed", engine=getattr(engine, "name", None), attempts=attempt,
                        seconds=round(time.perf_counter() - began, 3), reason=reason)


# ------------------------------------------------------------------------------------
# planning: engine, DEM, workers, tasks
# ------------------------------------------------------------------------------------

def resolve_dem(cfg: EventConfig) -> Path:
    """The DEM file for the event: ``cfg.dem`` checked, or ``auto`` via :mod:`sarflow.dem`."""
    from .dem import dem_for_config

    return dem_for_config(cfg)


def plan_workers(engine: str, workers: Optional[int] = None,
                 memory_per_worker_gb: Optional[float] = None) -> tuple[int, float]:
    """(workers, GB per worker) for a local cluster: as many as cores and memory allow."""
    import psutil

    total_gb = psutil.virtual_memory().total / 2**30 * MEMORY_SHARE
    need = memory_per_worker_gb or DEFAULT_MEMORY_GB.get(engine, 4.0)
    if workers is None:
        by_cpu = max(1, _cpus() // CORES_PER_TASK.get(engine, 1))
        by_mem = max(1, int(total_gb // need))
        workers = min(by_cpu, by_mem)
    memory = memory_per_worker_gb or total_gb / workers
    if memory < need:
        log.warning("%d workers share %.1f GB: %.1f GB each, less than the %.1f GB a %s scene "
                    "may need; lower --workers if workers die", workers, total_gb, memory, need, engine)
    return workers, round(float(memory), 2)


def worker_resources(processing: Any, engine: str, workers: Optional[int] = None) -> WorkerResources:
    """What each local worker gets for ``engine`` with the config's processing settings."""
    n, mem = plan_workers(engine, workers or processing.workers, processing.memory_per_worker_gb)
    return WorkerResources(memory_gb=mem, cores=max(1, _cpus() // n))


def _engine_name(engine: Any) -> str:
    return engine if isinstance(engine, str) else getattr(engine, "name", type(engine).__name__)


@dataclass(frozen=True)
class EngineChoice:
    """The engine that will run: what the workers get, its name, version and settings."""

    worker_engine: Any
    """Engine name (loaded on the worker) or an engine object with ``process``."""
    name: str
    version: str
    settings: Any
    """Typed settings (``NativeSettings`` / ``SnapSettings``) or None."""

    def provenance_settings(self) -> dict[str, Any]:
        s = self.settings
        return s.provenance() if hasattr(s, "provenance") else {}


def pick_engine(processing: Any, engine: Any = None) -> EngineChoice:
    """Resolve ``engine`` (a name, ``auto``, None for the config's, or an engine object)
    to the engine that actually runs; fails fast when SNAP is missing."""
    from .engines import get, settings_for

    if engine is None or isinstance(engine, str):
        chosen = get(engine or processing.engine, processing)
        settings = settings_for(chosen.name, processing)
        return EngineChoice(chosen.name, chosen.name, chosen.version(settings), settings)
    name = _engine_name(engine)
    settings = settings_for(name, processing)
    version = engine.version(settings) if hasattr(engine, "version") else "unknown"
    return EngineChoice(engine, name, version, settings)


@dataclass(frozen=True)
class SceneBatch:
    """What the preprocess stage needs from an event, unpacked from its config once: the
    selected scenes, the grid, polarisations, DEM, orbit files and the work folder."""

    event: str
    records: tuple[SceneRecord, ...]
    grid: Grid
    polarisations: tuple[str, ...]
    dem: Optional[Path]
    orbits: Optional[Path]
    workdir: WorkDir


def scene_batch(cfg: EventConfig) -> SceneBatch:
    """The event's batch: its selected scenes (an InputError when none) and what they need
    (a DEM only when a GRD is among them: terrain-corrected products need none)."""
    records = select_scenes(cfg)
    if not records:
        raise InputError(f"no scene of {cfg.name} lies in the pre/post windows over the area; "
                         f"check scenes: ({', '.join(map(str, cfg.scenes))}) with `sarflow scenes list`")
    dem = resolve_dem(cfg) if any(r.ok and r.product_type == "GRD" for r in records) else None
    return SceneBatch(event=cfg.name, records=tuple(records), grid=cfg.grid(),
                      polarisations=tuple(cfg.polarisations), dem=dem,
                      orbits=cfg.processing.orbits, workdir=WorkDir(cfg.output))


def make_tasks(batch: SceneBatch, choice: EngineChoice, retries: int, *, requested: Any = None
               ) -> tuple[list[SceneTask], list[SceneOutcome]]:
    """Tasks for processable scenes, and outcomes for those that cannot run (failed/skipped).

    ``requested`` is the engine the user asked for (``auto`` sends already terrain-corrected
    products to the ``import`` engine, see :func:`route_product`); default: ``choice``.
    """
    from .engines import SceneJob
    from .products import scene_provenance, scene_radiometry, scene_tags

    wd, grid, dem, pols = batch.workdir, batch.grid, batch.dem, list(batch.polarisations)
    tasks, settled = [], []
    for rec in batch.records:
        routed = route_product(rec, choice, requested)
        use = routed if isinstance(routed, EngineChoice) else choice
        scene_dem = None if use.name == "import" else dem  # terrain-corrected already
        prov = scene_provenance(engine=use.name, engine_version=use.version,
                                engine_settings=use.provenance_settings(), scene=rec.path,
                                grid=grid, polarisations=pols, dem=scene_dem,
                                orbits=batch.orbits,
                                radiometry=scene_radiometry(rec, use.settings))
        job = SceneJob(scene=rec.path, output=wd.scene_output(rec.product_id), grid=grid,
                       polarisations=pols, dem=scene_dem,
                       orbit_dir=batch.orbits, settings=use.settings,
                       tags=scene_tags(rec, prov, pols) if rec.ok else {})
        task = SceneTask(job=job, engine=use.worker_engine, retries=retries,
                         product_id=rec.product_id, provenance=prov, window=rec.window,
                         pass_direction=rec.pass_direction)
        missing = rec.missing_polarisations(pols) if rec.ok else []
        if not rec.ok:
            settled.append(task.outcome("failed", reason=rec.reason))
        elif isinstance(routed, str):
            settled.append(task.outcome("failed", reason=routed))
        elif missing:
            settled.append(task.outcome("skipped", reason=f"product lacks {', '.join(missing)}; "
                                        f"the event asks for {', '.join(pols)}"))
        else:
            tasks.append(task)
    return tasks, settled


def import_choice() -> EngineChoice:
    """The ``import`` engine (already terrain-corrected products; it has no settings)."""
    from .engines import _load

    engine = _load("import")
    return EngineChoice("import", "import", engine.version(None), None)


def route_product(rec: SceneRecord, choice: EngineChoice, requested: Any = None
                  ) -> Union[EngineChoice, str]:
    """The engine that runs ``rec``: ``choice``, or the ``import`` engine for an already
    terrain-corrected product when ``auto`` or ``import`` was asked; a string (why) when the
    requested engine cannot read the product."""
    if requested is None:
        requested = choice.worker_engine
    if not isinstance(requested, str):
        return choice  # an engine object given by the caller runs everything
    rtc = rec.product_type != "GRD"
    if rtc and requested in ("auto", "import"):
        return choice if choice.name == "import" else import_choice()
    if rtc:
        return (f"{rec.product_type} is already terrain-corrected: the {requested} engine reads "
                "GRDs; use --engine import or auto")
    if requested == "import":
        return ("a Sentinel-1 GRD needs terrain correction: the import engine reads only RTC "
                "products; use --engine native, snap or auto")
    return choice


# ------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------

def _local_cluster(n: int, memory_gb: float) -> Any:
    from distributed import LocalCluster

    if multiprocessing.parent_process() is not None:
        raise ProcessingError(
            "a local Dask cluster was started while a worker process was importing the "
            "calling script; put the call under `if __name__ == \"__main__\":`")
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                        memory_limit=f"{memory_gb}GiB", host="127.0.0.1",
                        dashboard_address=":0", silence_logs=logging.ERROR)


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        client = Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address} ({_one_line(exc)}); "
                         "check the address (e.g. tcp://HOST:8786) and that it is running") from None
    try:
        client.wait_for_workers(1, timeout=60)
    except TimeoutError:
        client.close()
        raise InputError(f"the Dask scheduler at {address} has no workers; start some "
                         f"(dask worker {address}) and run again") from None
    return client


class _Display:
    """Rich progress: done / running / failed and the time left."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.done = self.failed = 0
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(
                SpinnerColumn(), TextColumn("[bold]preprocess"), BarColumn(),
                MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self.task = self.progress.add_task("scenes", total=total, status="")

    def __enter__(self) -> "_Display":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, running: int, outcome: Optional[str] = None) -> None:
        if outcome is not None:
            self.done += 1
            self.failed += outcome == "failed"
        if self.progress is not None:
            status = (f"{running} running · [red]{self.failed} failed[/]" if self.failed
                      else f"{running} running · 0 failed")
            self.progress.update(self.task, completed=self.done, status=status)


def _run_tasks(client: Any, tasks: list[SceneTask], display: _Display) -> list[SceneOutcome]:
    """Submit one task per scene and gather outcomes; cancel everything on Ctrl-C."""
    from distributed import as_completed

    slots = max(1, sum(client.nthreads().values()))
    futures = {client.submit(run_scene, t, key=f"scene-{t.product_id}-{os.getpid()}-{time.time_ns()}",
                             pure=False): t for t in tasks}
    results: dict[str, SceneOutcome] = {}
    display.update(min(slots, len(tasks)))
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            task = futures[fut]
            results[task.product_id] = _gather_one(fut, task)
            left = len(tasks) - len(results)
            display.update(min(slots, left), results[task.product_id].outcome)
    except BaseException:
        client.cancel(list(futures), force=True)
        raise
    return [results[t.product_id] for t in tasks]


def _gather_one(fut: Any, task: SceneTask) -> SceneOutcome:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the worker process died
        reason = _one_line(exc)
        if type(exc).__name__ == "KilledWorker":
            reason = ("the worker process died while processing it (out of memory?): lower "
                      "--workers or raise processing.memory_per_worker_gb")
        _append_log(task.job.log_path, f"task failed: {reason}")
        return task.outcome("failed", engine=_engine_name(task.engine), reason=reason)


def preprocess_event(cfg: EventConfig, *, engine: Union[str, Any, None] = None,
                     workers: Optional[int] = None, scheduler: Optional[str] = None,
                     retries: Optional[int] = None, progress: bool = True) -> Summary:
    """Preprocess every selected scene of ``cfg`` and write the run summary.

    ``engine``: ``snap``/``native``/``auto`` (default: the config's), or an engine object
    (anything with ``name`` and a picklable ``process(job)``).  ``scheduler``: address of an
    existing Dask scheduler; otherwise a local cluster of ``workers`` processes.
    """
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    processing = cfg.processing
    requested = engine if engine is not None else processing.engine
    choice = pick_engine(processing, engine)
    batch = scene_batch(cfg)
    retries = processing.retries if retries is None else retries
    return run_batch(batch, choice, processing, retries=retries, requested=requested,
                     workers=workers, scheduler=scheduler, progress=progress,
                     started=started, t0=t0)


def run_batch(batch: SceneBatch, choice: EngineChoice, processing: Any, *, retries: int,
              requested: Any = None, workers: Optional[int] = None,
              scheduler: Optional[str] = None, progress: bool = True,
              started: Optional[dt.datetime] = None, t0: Optional[float] = None) -> Summary:
    """Run the engine on every scene of ``batch`` that has no current output; write and
    return the run summary.  ``processing``: where and how (workers, memory, scheduler)."""
    started = started or dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter() if t0 is None else t0
    name = choice.name
    tasks, settled = make_tasks(batch, choice, retries, requested=requested)
    if tasks and all(t.engine == "import" for t in tasks):
        name = "import"
    wd = batch.workdir
    wd.preprocessed.mkdir(parents=True, exist_ok=True)
    wd.preprocess_summary.unlink(missing_ok=True)  # written again only when this run completes
    for o in settled:  # every reported scene has a log saying why
        _append_log(Path(o.log), f"{o.outcome}: {o.reason}")
    existing = [t for t in tasks if output_is_current(t) is None]
    todo = [t for t in tasks if t not in existing]
    settled += [existing_outcome(t) for t in existing]
    outcomes, cluster_text, n_workers = [], "none (nothing to do)", 0
    if todo:
        outcomes, cluster_text, n_workers = _execute(processing, name, todo, workers, scheduler,
                                                     progress)
    by_id = {o.product_id: o for o in settled + outcomes}
    ordered = [by_id[r.product_id] for r in batch.records]
    summary = Summary(event=batch.event, engine=name, cluster=cluster_text, workers=n_workers,
                      started=started.isoformat(timespec="seconds"),
                      seconds=time.perf_counter() - t0, scenes=ordered, path=wd.preprocess_summary)
    write_summary(summary)
    for s in summary.failed:
        log.warning("failed: %s (log: %s)", s.reason, Path(s.log).name)
    return summary


def _execute(processing: Any, engine: str, todo: list[SceneTask], workers: Optional[int],
             scheduler: Optional[str], progress: bool) -> tuple[list[SceneOutcome], str, int]:
    """Run ``todo`` on the given scheduler or on a local cluster that is closed afterwards."""
    from distributed import Client

    address = scheduler or processing.scheduler
    cluster = None
    if address:
        client = _connect(address)
        text = f"scheduler {address}"
    else:
        n, mem = plan_workers(engine, workers or processing.workers,
                              processing.memory_per_worker_gb)
        # each worker keeps its share of the cores even when fewer scenes are left than
        # workers: a scene's settings must not depend on how many scenes are left
        _give_resources(todo, WorkerResources(memory_gb=mem, cores=max(1, _cpus() // n)))
        n = min(n, len(todo))
        cluster = _local_cluster(n, mem)
        client = Client(cluster, set_as_default=False)
        text = f"local: {n} worker processes x {mem:g} GiB"
    try:
        if cluster is None:
            _give_resources(todo, cluster_resources(client))
        n_workers = len(client.nthreads())
        log.info("preprocessing %d scenes on %s", len(todo), text)
        with _Display(len(todo), progress) as display:
            outcomes = _run_tasks(client, todo, display)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes, text, n_workers


def _give_resources(tasks: Sequence[SceneTask], resources: Any) -> None:
    """Tell every job what its worker may use (engines size themselves from it)."""
    for t in tasks:
        t.job.resources = resources


def cluster_resources(client: Any) -> Any:
    """The smallest worker of an existing cluster: its memory limit and threads."""
    workers = client.scheduler_info().get("workers", {}).values()
    mems = [w.get("memory_limit") or 0 for w in workers]
    cores = [w.get("nthreads") or 1 for w in workers]
    mem_gb = min(mems) / 2**30 if mems and min(mems) > 0 else DEFAULT_MEMORY_GB["snap"]
    return WorkerResources(memory_gb=round(mem_gb, 2), cores=max(1, min(cores or [1])))


def write_summary(summary: Summary) -> Path:
    """Write the run summary JSON atomically; returns its path."""
    if summary.path is None:
        raise ConfigError("summary has no path")
    with atomic_path(summary.path) as tmp:
        tmp.write_text(json.dumps(summary.to_dict(), indent=2))
    return summary.path
