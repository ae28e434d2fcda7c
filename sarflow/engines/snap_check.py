"""``sarflow snap check``: will SNAP run sarflow's graphs on this machine?

Finds gpt and SNAP's version, validates every node and parameter of the graphs that will
run against the installed operators (their parameter descriptors through esa-snappy when it
imports, else ``gpt <Operator> -h`` parsed in the format SNAP's ``CommandLineUsage``
prints: ``-P<name>=<type>`` lines, ``Value must be one of '...'``), checks the auxiliary
data (EGM96) and the memory each worker's JVM gets.  Each check is one row; the first
problem becomes a one-line :class:`SnapCheckError` (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

from .snap_operators import (PARAM, VALUES, OperatorSpec, Row, SnapCheckError,  # noqa: F401
                             check_graphs, ensure_graphs_run, first_problem, graph_nodes,
                             help_provider, parse_operator_help, snappy_provider)

def check_aux(userdir_root: Path | None, allow_downloads: bool) -> list[Row]:
    """EGM96 in the user's ``~/.snap/auxdata`` (seeded into each worker's folder) and in
    every existing worker folder: complete, or downloads allowed."""
    from .snap_aux import EGM96, EGM96_MEMBER, EGM96_URL, user_auxdata, zip_problem

    rows = []
    places = [user_auxdata() / EGM96]
    if userdir_root is not None and Path(userdir_root).is_dir():
        places += sorted(Path(userdir_root).glob(f"worker-*/auxdata/{EGM96}"))
    found_good = False
    for path in places:
        if not path.is_file():
            continue
        why = zip_problem(path, EGM96_MEMBER)
        if why:
            rows.append(Row(f"EGM96 {path}", False, f"{path} {why}: delete it (sarflow also "
                                                     f"removes it before a run) or copy a complete one "
                                                     f"from {EGM96_URL}"))
        else:
            found_good = True
            rows.append(Row(f"EGM96 {path}", True, "complete"))
    if not found_good:
        rows.append(Row("EGM96 geoid grid", allow_downloads,
                        "not present; SNAP downloads it on the first run" if allow_downloads else
                        f"missing and processing.snap.allow_downloads is false: copy {EGM96_URL} "
                        f"to {user_auxdata() / EGM96}"))
    return rows


def check_memory(settings, resources) -> list[Row]:
    """The JVM heap of one worker fits in the worker's memory (with room for the JVM itself)."""
    heap, total = settings.memory_gb, resources.memory_gb
    ok = heap <= 0.9 * total and heap >= 2.0
    detail = (f"heap {heap:g} GB, tile cache {settings.tile_cache_gb:g} GB, {settings.threads} "
              f"threads of a worker with {total:g} GB / {resources.cores} cores")
    if heap > 0.9 * total:
        detail += "; the heap exceeds the worker's memory: lower processing.snap.memory_gb or run fewer --workers"
    elif heap < 2.0:
        detail += "; below 2 GB SNAP fails on IW GRD scenes: run fewer --workers (more memory each)"
    return [Row("memory per worker", ok, detail)]


def run_check(snap_settings, resources, graphs: Sequence[Path],
              values: Mapping[str, Mapping[str, str]] | None = None,
              userdir_root: Path | None = None,
              spec_of: Callable[[str], OperatorSpec | None] | None = None) -> list[Row]:
    """Every check, as rows (gpt, version, operators of ``graphs``, aux data, memory)."""
    from .snap import GptSettings, SnapNotFoundError, find_gpt, snap_version

    try:
        gpt = find_gpt(snap_settings.gpt)
    except SnapNotFoundError as exc:
        return [Row("gpt", False, exc.one_line())]
    if gpt is None:
        from .snap import SNAP_INSTALL_HINT

        return [Row("gpt", False, f"SNAP's gpt was not found; {SNAP_INSTALL_HINT}")]
    rows = [Row("gpt", True, str(gpt)), Row("SNAP version", True, snap_version(gpt))]
    provider = spec_of or snappy_provider()
    source = "esa-snappy" if spec_of is None and provider is not None else "gpt -h"
    rows.append(Row("operator descriptors", True, f"from {source}"))
    rows += check_graphs(graphs, provider or help_provider(gpt), values)
    rows += check_aux(userdir_root, bool(snap_settings.allow_downloads))
    rows += check_memory(GptSettings.from_settings(snap_settings, resources, gpt=gpt), resources)
    return rows


def rows_for_event(cfg=None, workers: int | None = None,
                   spec_of: Callable[[str], OperatorSpec | None] | None = None) -> list[Row]:
    """:func:`run_check` for an event config (its SNAP settings, grid, DEM and workers) or,
    without one, for the defaults on the whole machine; the graphs that will run, with the
    values the engine sets."""
    from ..config import SnapSettings
    from . import SceneJob, WorkerResources
    from .snap import FULL_GRAPH, STAGE_GRAPHS, graph_values

    if cfg is None:
        settings, resources, values, root = SnapSettings(), WorkerResources.of_machine(), None, None
        graphs = [FULL_GRAPH]
    else:
        from ..preprocess import worker_resources
        from ..workdir import WorkDir

        settings = cfg.processing.snap
        resources = worker_resources(cfg.processing, "snap", workers)
        out = WorkDir(cfg.output).scene_output("check")
        dem = Path(cfg.dem) if cfg.dem != "auto" and Path(str(cfg.dem)).is_file() else None
        job = SceneJob(scene=Path("scene.zip"), output=out, grid=cfg.grid(),
                       polarisations=list(cfg.polarisations), dem=dem, settings=settings)
        values = graph_values(job)
        root = Path(settings.userdir) if settings.userdir else out.parent / ".snap-workers"
        graphs = list(STAGE_GRAPHS) if settings.split else [FULL_GRAPH]
    return run_check(settings, resources, graphs, values, root, spec_of)
