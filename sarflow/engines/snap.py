"""The SNAP engine: ESA SNAP's ``gpt`` runs ``graphs/s1_grd_sigma0.xml`` for one scene.

Per scene: the graph is loaded and filled in with pyroSAR's ``Workflow`` (polarisations,
orbit type, DEM, lattice spacing and the subset region from the event grid), saved next to
the output (``<output>.xml``, provenance), and run as
``gpt -J-Xmx<heap> -q <threads> -c <cache> -e <graph> -Pinput=<scene> -Poutput=<tmp>``.
SNAP's GeoTIFF is then windowed onto the event grid with GDAL, its bands renamed to
sarflow's convention (``sigma0_<POL>``..., ``layover_shadow``) and the result validated.
With ``processing.snap.split`` the three stage graphs run instead, one gpt each, chained
through BEAM-DIMAP products in a scratch folder, under one shared timeout.

gpt is started here rather than through ``pyroSAR.snap.auxil.execute``: that function waits
without a timeout, keeps the whole log in memory and silently deletes parameters SNAP does
not know; bulk processing needs a timeout that kills the process tree, a log streamed to a
file, and a typed error saying what to fix.  pyroSAR is used (via
:mod:`sarflow.pyrosar_compat`) for graphs and scene metadata.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import ConfigError, DependencyError, InputError, ProcessingError, SarflowError
from ..grid import Grid
from ..config import SnapSettings
from ..resources import graphs_dir
from . import footprint
from . import (MASK_BAND, SceneJob, SceneResult, WorkerResources, band_names, job_tags,
               validate_output)

log = logging.getLogger(__name__)

GRAPHS_DIR = graphs_dir()
FULL_GRAPH = GRAPHS_DIR / "s1_grd_sigma0.xml"
STAGE_GRAPHS = tuple(GRAPHS_DIR / f"s1_grd_sigma0_{n}.xml"
                     for n in ("1_noise", "2_calibrate", "3_terrain"))
"""The full chain split in three gpt runs (``processing.snap.split: true``), for scenes
too large for one JVM: intermediate products go to BEAM-DIMAP in a scratch folder."""
WGS84_A = 6378137.0
REGION_MARGIN_DEG = 0.05
"""Margin added around the event grid for Subset: terrain shifts radar positions by up to
height / tan(incidence) (about 5 km for 3000 m at 30 degrees), and Subset cuts in radar
geometry from the ellipsoid geocoding."""

ORBIT_TYPES = {"precise": ("Sentinel Precise (Auto Download)", "POEORB"),
               "restituted": ("Sentinel Restituted (Auto Download)", "RESORB")}
SNAP_INSTALL_HINT = ("install ESA SNAP 9-14 from https://step.esa.int (then put its bin/ on "
                     "PATH, set SNAP_HOME, or set processing.snap.gpt) or use --engine native")


# ------------------------------------------------------------------------------------
# errors: the known ways gpt fails, each with its fix
# ------------------------------------------------------------------------------------

class SnapNotFoundError(DependencyError):
    """gpt is not installed or not where the configuration says."""

    transient = False


class SnapError(ProcessingError):
    """A gpt run failed.  ``transient``: whether running the scene again may succeed
    (the preprocess stage retries only those: memory, timeout, download)."""

    transient = False


class SnapParameterError(SnapError):
    """The graph names a parameter this SNAP version's operator does not define."""


class SnapMemoryError(SnapError):
    """The JVM ran out of heap or the process was killed for memory."""

    transient = True


class SnapOrbitError(SnapError):
    """Apply-Orbit-File found or downloaded no orbit file for the scene."""


class SnapDemError(SnapError):
    """Terrain-Correction could not get its DEM (download failure, bad external DEM)."""


class SnapDownloadError(SnapError):
    """SNAP could not download auxiliary data (network), or a download was cut short and
    its truncated file was removed: a later run downloads it again."""

    transient = True


class SnapTimeoutError(SnapError):
    """gpt ran longer than ``timeout_s`` and was killed with its process tree."""

    transient = True


class SnapStallError(SnapTimeoutError):
    """gpt wrote no log line and its output did not grow for ``stall_timeout_s``."""


class SnapNoOutputError(SnapError):
    """gpt ended without writing the output product."""


class SceneOutsideAreaError(SnapError):
    """The scene does not intersect the area of interest (SNAP's Subset is empty)."""


# ------------------------------------------------------------------------------------
# finding gpt and its settings
# ------------------------------------------------------------------------------------

def _exe_name() -> str:
    return "gpt.exe" if os.name == "nt" else "gpt"


def _is_exe(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def find_gpt(configured: str | os.PathLike | None = None) -> Path | None:
    """gpt from ``configured`` (file or SNAP folder), ``$SNAP_HOME/bin``, PATH, or None.

    A configured path that is not an executable raises :class:`SnapNotFoundError`.
    """
    if configured:
        p = Path(os.path.expanduser(str(configured)))
        for cand in (p, p / "bin" / _exe_name(), p / _exe_name()):
            if _is_exe(cand):
                return cand
        raise SnapNotFoundError(f"processing.snap.gpt = {configured} is not SNAP's gpt "
                                f"executable; point it at <SNAP>/bin/gpt or {SNAP_INSTALL_HINT}")
    home = os.environ.get("SNAP_HOME")
    if home:
        cand = Path(home) / "bin" / _exe_name()
        if _is_exe(cand):
            return cand
    found = shutil.which("gpt")
    return Path(found) if found else None


HEAP_SHARE = 0.7
"""Share of a worker's memory given to gpt's JVM heap (the rest: JVM overhead, GDAL, OS)."""
CACHE_SHARE = 0.6
"""Share of the heap given to SNAP's tile cache (SNAP's own advice)."""
MIN_HEAP_GB = 1.0


@dataclass(frozen=True)
class GptSettings:
    """How one gpt process runs: executable, JVM heap, tile cache, threads, timeout."""

    gpt: Path
    memory_gb: float
    tile_cache_gb: float
    threads: int
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: SnapSettings, resources: WorkerResources,
                      gpt: Path | None = None) -> "GptSettings":
        """One gpt process's settings: the config's where set, else sized to its worker.

        The rule (each part overridable in ``processing.snap``): JVM heap
        :data:`HEAP_SHARE` of the worker's memory (at least :data:`MIN_HEAP_GB`), tile cache
        :data:`CACHE_SHARE` of the heap (SNAP's advice), ``-q`` threads the worker's cores.
        With several workers on one machine each gets its share, never the whole machine.
        """
        exe = gpt or find_gpt(settings.gpt)
        if exe is None:
            raise SnapNotFoundError(f"SNAP's gpt was not found; {SNAP_INSTALL_HINT}")
        memory = float(settings.memory_gb or max(MIN_HEAP_GB,
                                                 round(HEAP_SHARE * resources.memory_gb, 1)))
        cache = float(settings.tile_cache_gb or round(CACHE_SHARE * memory, 1))
        if cache >= memory:
            raise ConfigError(f"processing.snap.tile_cache_gb = {cache:g} must be smaller than "
                              f"the JVM heap memory_gb = {memory:g} (about 60 % of it)")
        threads = int(settings.threads or max(1, resources.cores))
        return cls(gpt=Path(exe), memory_gb=memory, tile_cache_gb=cache, threads=threads,
                   timeout_s=float(settings.timeout_s))

    def args(self) -> list[str]:
        """gpt's own options: ``-J-Xmx`` heap, ``-q`` threads, ``-c`` tile cache, ``-e``."""
        return [f"-J-Xmx{int(self.memory_gb * 1024)}M", "-q", str(self.threads),
                "-c", f"{int(self.tile_cache_gb * 1024)}M", "-e"]


# ------------------------------------------------------------------------------------
# rendering the graph for one scene and the event grid
# ------------------------------------------------------------------------------------

@dataclass
class SceneInfo:
    """What the engine needs from the scene's metadata (via pyroSAR's ``identify``)."""

    product_id: str
    pass_: str
    relative_orbit: int
    acquisition_time: str
    polarisations: list[str]
    mission: str = "S1A"
    start: str = ""
    """Sensing start, ``YYYYmmddTHHMMSS`` (pyroSAR's format)."""
    footprint: str = ""
    """The scene's corner coordinates as WKT (for "outside the area" messages)."""


def scene_info(scene: Path) -> SceneInfo:
    """Metadata of a Sentinel-1 product (.zip or .SAFE) through pyroSAR."""
    from ..catalog import product_id
    from ..pyrosar_compat import identify

    meta = identify(scene).meta
    start = dt.datetime.strptime(meta["start"], "%Y%m%dT%H%M%S")
    return SceneInfo(product_id=product_id(scene),
                     pass_={"A": "ASCENDING", "D": "DESCENDING"}[str(meta["orbit"])[:1].upper()],
                     relative_orbit=int(meta["orbitNumber_rel"]),
                     acquisition_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     polarisations=[str(p).upper() for p in meta["polarizations"]],
                     mission=str(meta.get("sensor", "S1A")), start=str(meta["start"]),
                     footprint=_footprint_wkt(meta.get("coordinates") or []))


def _footprint_wkt(coords: Sequence[Sequence[float]]) -> str:
    """A closed WKT polygon of (lon, lat) corner coordinates ('' when there are none)."""
    pts = [(float(x), float(y)) for x, y in coords]
    if not pts:
        return ""
    pts.append(pts[0])
    return "POLYGON((" + ", ".join(f"{x:.4f} {y:.4f}" for x, y in pts) + "))"


def region_wkt(grid: Grid, margin_deg: float | tuple[float, float] = REGION_MARGIN_DEG) -> str:
    """The subset region: the grid's bounds plus a margin (degrees; one value, or
    (longitude, latitude) margins), as a closed WKT polygon."""
    mx, my = margin_deg if isinstance(margin_deg, tuple) else (margin_deg, margin_deg)
    w, s, e, n = grid.bounds
    w, s, e, n = w - mx, s - my, e + mx, n + my
    return f"POLYGON(({w!r} {s!r}, {e!r} {s!r}, {e!r} {n!r}, {w!r} {n!r}, {w!r} {s!r}))"


MIN_INCIDENCE_DEG = 29.0
"""Smallest incidence angle of Sentinel-1 IW (near range of IW1)."""
GEOCODING_SLACK_M = 1000.0
"""Subset cuts with the ellipsoid tie-point geocoding: slack for its error and Doppler."""
DEFAULT_MAX_HEIGHT_M = 3000.0


def subset_margin(grid: Grid, max_height_m: float) -> tuple[float, float]:
    """(longitude, latitude) margins in degrees for Subset.

    Terrain at height h appears displaced towards the sensor by h / tan(incidence) in
    ground range (largest at the smallest IW incidence, :data:`MIN_INCIDENCE_DEG`); plus
    :data:`GEOCODING_SLACK_M`.  Metres become degrees of latitude (111.32 km) and of
    longitude at the grid's latitude farthest from the equator (the widest in degrees).
    """
    metres = max(0.0, max_height_m) / math.tan(math.radians(MIN_INCIDENCE_DEG)) + GEOCODING_SLACK_M
    w, s, e, n = grid.bounds
    lat = min(89.0, max(abs(s), abs(n)))
    deg_lat = metres / 111_320.0
    return deg_lat / math.cos(math.radians(lat)), deg_lat


def dem_max_height(dem: Path, bounds: Sequence[float]) -> float:
    """Highest DEM value within ``bounds`` (west, south, east, north; nodata ignored)."""
    import numpy as np
    from osgeo import gdal

    gdal.UseExceptions()
    ds = gdal.Open(str(dem))
    band = ds.GetRasterBand(1)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    w, s, e, n = bounds
    c0 = max(0, int(math.floor((w - x0) / dx))); c1 = min(ds.RasterXSize, int(math.ceil((e - x0) / dx)))
    r0 = max(0, int(math.floor((n - y0) / dy))); r1 = min(ds.RasterYSize, int(math.ceil((s - y0) / dy)))
    if c1 <= c0 or r1 <= r0:
        return DEFAULT_MAX_HEIGHT_M
    data = band.ReadAsArray(c0, r0, c1 - c0, r1 - r0).astype("float64")
    nodata = band.GetNoDataValue()
    if nodata is not None:
        data[data == nodata] = np.nan
    return float(np.nanmax(data)) if np.isfinite(data).any() else 0.0


def _margin(job: SceneJob, opts: SnapSettings, dem: Path | None) -> tuple[float, float]:
    """The configured fixed margin, else :func:`subset_margin` for the DEM's highest point."""
    if opts.region_margin_deg is not None:
        return float(opts.region_margin_deg), float(opts.region_margin_deg)
    height = opts.max_height_m
    if height is None and dem is not None:
        first = subset_margin(job.grid, DEFAULT_MAX_HEIGHT_M)
        w, s, e, n = job.grid.bounds
        height = dem_max_height(dem, (w - first[0], s - first[1], e + first[0], n + first[1]))
    return subset_margin(job.grid, DEFAULT_MAX_HEIGHT_M if height is None else float(height))


def _dem_nodata(dem: Path) -> float:
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        ds = gdal.Open(str(dem))
        value = ds.GetRasterBand(1).GetNoDataValue()
        ds = None
    except RuntimeError as exc:
        raise InputError(f"DEM {dem} is not a readable raster: {exc}") from None
    return 0.0 if value is None or math.isnan(value) else float(value)


def graph_values(job: SceneJob) -> dict[str, dict[str, str]]:
    """Per node, the parameter values the engine sets for ``job`` (strings, as in XML)."""
    pols = ",".join(job.polarisations)
    opts = _settings(job)
    orbit_type = _orbit_choice(opts)[0]
    spacing = job.grid.spacing
    tc = {"pixelSpacingInDegree": repr(spacing),
          "pixelSpacingInMeter": repr(spacing * math.pi / 180 * WGS84_A),
          "standardGridOriginX": repr(-spacing / 2), "standardGridOriginY": repr(spacing / 2),
          "saveLayoverShadowMask": "true"}
    dem = job.dem or _dem_path_option(opts.dem)
    if dem is not None:
        if not Path(dem).is_file():
            raise InputError(f"DEM {dem} does not exist; set dem: in the event config to a GeoTIFF")
        tc.update(demName="External DEM", externalDEMFile=str(Path(dem).resolve()),
                  externalDEMNoDataValue=repr(_dem_nodata(Path(dem))),
                  externalDEMApplyEGM=_bool(opts.geoid))
    else:
        tc.update(demName=str(opts.dem or "SRTM 1Sec HGT"))
    margin = _margin(job, opts, Path(dem) if dem is not None else None)
    return {
        "Apply-Orbit-File": {"orbitType": orbit_type,
                             "continueOnFail": _bool(opts.orbit_continue_on_fail)},
        "Remove-GRD-Border-Noise": {"selectedPolarisations": pols},
        "ThermalNoiseRemoval": {"selectedPolarisations": pols},
        "Calibration": {"selectedPolarisations": pols},
        "Subset": {"geoRegion": region_wkt(job.grid, margin)},
        "Terrain-Correction": tc,
    }


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _dem_path_option(value: Any) -> Path | None:
    """``processing.snap.dem`` is a SNAP DEM name, or a file path (then an external DEM)."""
    if value and (os.sep in str(value) or str(value).lower().endswith((".tif", ".tiff"))):
        return Path(str(value))
    return None


def _settings(job: SceneJob) -> SnapSettings:
    """The job's SNAP settings (the defaults when it has none)."""
    if job.settings is None:
        return SnapSettings()
    if not isinstance(job.settings, SnapSettings):
        raise ConfigError(f"the SNAP engine takes SnapSettings, not {type(job.settings).__name__}")
    return job.settings


def _orbit_choice(settings: SnapSettings) -> tuple[str, str]:
    key = str(settings.orbit_type).lower()
    if key not in ORBIT_TYPES:
        raise ConfigError(f"processing.snap.orbit_type = {key!r}: choose precise or restituted")
    return ORBIT_TYPES[key]


def render_graph(job: SceneJob, out_xml: Path, template: Path = FULL_GRAPH) -> dict[str, dict[str, str]]:
    """Write the graph for ``job`` to ``out_xml`` (atomically); return the values set.

    ``${input}`` and ``${output}`` stay placeholders, passed to gpt with ``-P``.
    """
    from ..grid import atomic_path
    from ..pyrosar_compat import is_consistent, workflow

    values = graph_values(job)
    flow = workflow(template)
    for node_id, params in values.items():
        if node_id not in flow.ids:
            continue
        for key, value in params.items():
            if key not in flow[node_id].parameters.keys():
                raise ProcessingError(f"{template.name}: node {node_id} has no parameter {key}; "
                                      "restore the graph from sarflow's graphs/")
            flow[node_id].parameters[key] = value
    if not is_consistent(flow):
        raise ProcessingError(f"{template}: the graph is not consistent (a node's source is "
                              "missing or a node does not lead to Write)")
    with atomic_path(out_xml) as tmp:
        flow.write(str(tmp))
    return values


def gpt_command(settings: GptSettings, graph: Path, scene: Path, output: Path,
                jvm: Sequence[str] = ()) -> list[str]:
    """The argument list that runs ``graph`` on ``scene`` writing ``output`` (``jvm``:
    extra ``-J`` options, e.g. the worker's SNAP user folder)."""
    return [str(settings.gpt), *jvm, *settings.args(), str(graph),
            f"-Pinput={_read_target(scene)}", f"-Poutput={output}"]


def _read_target(scene: Path) -> Path:
    """What SNAP's Read takes: the .zip, or manifest.safe inside a .SAFE folder."""
    scene = Path(scene)
    if scene.is_dir():
        manifest = scene / "manifest.safe"
        if not manifest.is_file():
            raise InputError(f"{scene} has no manifest.safe; it is not a Sentinel-1 SAFE folder")
        return manifest
    return scene


# ------------------------------------------------------------------------------------
# running gpt
# ------------------------------------------------------------------------------------

@dataclass
class GptRun:
    """How a gpt process ended."""

    returncode: int
    seconds: float
    log_text: str = field(repr=False)
    command: list[str] = field(default_factory=list)
    killed: str | None = None
    """Why the watchdog killed it: ``memory``, ``after_completion``; None: it exited."""


def kill_tree(pid: int, grace_s: float = 5.0) -> list[int]:
    """Terminate process ``pid`` and all its descendants (then kill survivors); their pids."""
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return []
    procs = [root] + root.children(recursive=True)
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(os.getpgid(pid), signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    return [p.pid for p in procs]


def _new_group() -> dict[str, Any]:
    """Popen arguments that start gpt in its own process group (so its tree can be killed)."""
    if os.name == "posix":
        return {"start_new_session": True}
    return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}


POLL_S = 0.5
"""How often the watchdog looks at gpt's log and output."""
COMPLETED = re.compile(r"Processing completed in")
"""gpt's last line on success (``GPT``/``CommandLineTool``)."""
LIVE_MEMORY = re.compile(r"OutOfMemoryError|Cannot construct DataBuffer")
"""Memory failures a JVM may survive (a JAI tile thread dies, the main thread waits)."""


@dataclass(frozen=True)
class Watch:
    """What the watchdog of one gpt run looks at, and its limits."""

    output: Path
    """The folder gpt writes into (its growth counts as progress)."""
    stall_s: float = 1800.0
    finish_grace_s: float = 60.0
    poll_s: float = POLL_S


def _tree_size(folder: Path) -> int:
    """Total size of the files under ``folder`` (0 if it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def run_gpt(cmd: Sequence[str], log_path: Path, timeout_s: float,
            budget_s: float | None = None, watch: Watch | None = None) -> GptRun:
    """Run gpt, streaming stdout+stderr to ``log_path``, under a watchdog.

    The process tree is killed when the time is up (:class:`SnapTimeoutError`), when
    neither the log nor ``watch.output`` grew for ``watch.stall_s`` (:class:`SnapStallError`),
    when the log shows a memory failure while the JVM lives on (``killed="memory"``), or
    when gpt lingers ``watch.finish_grace_s`` after "Processing completed"
    (``killed="after_completion"``: the caller checks the output).  ``budget_s`` is the
    configured timeout the message names (split runs share one).
    """
    budget = timeout_s if budget_s is None else budget_s
    if timeout_s <= 0:
        raise SnapTimeoutError(f"no time left of processing.snap.timeout_s = {budget:g} s for "
                               f"the next gpt stage; raise timeout_s; log: {log_path}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with open(log_path, "ab") as fh:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        fh.write(f"[{stamp} sarflow.snap] {subprocess.list2cmdline(list(cmd))}\n".encode())
        fh.flush()
        start = log_path.stat().st_size
        proc = subprocess.Popen(list(cmd), stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **_new_group())
        try:
            rc, killed = _watch(proc, log_path, start, timeout_s, budget, watch)
        except SnapError as exc:
            fh.write(f"\n[sarflow.snap] killed: {exc.one_line()}\n".encode())
            raise
        except BaseException:  # Ctrl-C or a cancelled Dask task: leave no gpt behind
            kill_tree(proc.pid, grace_s=2.0)
            raise
        if killed:
            fh.write(f"\n[sarflow.snap] killed gpt ({killed})\n".encode())
    return GptRun(returncode=rc, seconds=time.perf_counter() - began,
                  log_text=_read_from(log_path, start), killed=killed)


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode("utf-8", "replace")


def _watch(proc: subprocess.Popen, log_path: Path, start: int, timeout_s: float,
           budget: float, watch: Watch | None) -> tuple[int, str | None]:
    """Wait for ``proc`` as :func:`run_gpt` describes; (return code, why it was killed)."""
    watch = watch or Watch(output=log_path.parent, stall_s=math.inf, finish_grace_s=math.inf)
    now = time.monotonic()
    deadline, last_change, completed_at = now + timeout_s, now, None
    seen, out_size, text = start, _tree_size(watch.output), ""
    while True:
        try:
            return proc.wait(timeout=min(watch.poll_s, max(0.01, deadline - now))), None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        size = log_path.stat().st_size
        grown = _tree_size(watch.output)
        if size != seen or grown != out_size:
            last_change = now
        if size != seen:
            text = text[-500:] + _read_from(log_path, seen)
            seen = size
            if LIVE_MEMORY.search(text):
                kill_tree(proc.pid)
                return proc.wait(), "memory"
            if completed_at is None and COMPLETED.search(text):
                completed_at = now
        out_size = grown
        if completed_at is not None and now - completed_at > watch.finish_grace_s:
            kill_tree(proc.pid)
            proc.wait()
            return 0, "after_completion"
        if now >= deadline:
            kill_tree(proc.pid)
            proc.wait()
            raise SnapTimeoutError(
                f"gpt ran longer than processing.snap.timeout_s = {budget:g} s and was "
                f"killed with its child processes; raise timeout_s, give it more threads/"
                f"memory, or run the split graphs (graphs/README.md); log: {log_path}")
        if now - last_change > watch.stall_s:
            kill_tree(proc.pid)
            proc.wait()
            raise SnapStallError(
                f"gpt printed nothing and its output did not grow for "
                f"processing.snap.stall_timeout_s = {watch.stall_s:g} s (a stalled download "
                f"or a hung JVM) and was killed; check network access to step.esa.int or "
                f"raise stall_timeout_s; log: {log_path}")


UNKNOWN_ELEMENT = re.compile(r"(?:\[NodeId:\s*(?P<node>[\w.-]+)\][^\n]*?)?"
                             r"Unknown element '(?P<par>\w+)'")
MEMORY = re.compile(r"OutOfMemoryError|Java heap space|GC overhead limit exceeded|^Killed\b|"
                    r"Cannot construct DataBuffer", re.M)
NO_HEAP = re.compile(r"Could not reserve enough space for object heap|"
                     r"Invalid maximum heap size|Cannot allocate memory")
ORBIT = re.compile(r"(?i)(no valid orbit file|orbit file[^\n]{0,80}not (found|available)|"
                   r"(unable|failed) to (download|find|retrieve)[^\n]{0,60}orbit|"
                   r"orbit[^\n]{0,60}download[^\n]{0,40}fail)")
RESORB_FALLBACK = re.compile(r"Using Sentinel Restituted (?P<file>\S*) instead")
"""ApplyOrbitFileOp.updateOrbits: no POEORB, RESORB applied (a warning, not a failure)."""
GEOID = re.compile(r"(?im)^(?=[^\n]*(ww15mgh_b|egm96|EarthGravitationalModel96))"
                   r"(?=[^\n]*(error|exception|fail|unable|cannot|invalid|corrupt|truncat))[^\n]*$")
"""A log line about the EGM96 geoid grid that reports a failure."""
NETWORK = re.compile(r"UnknownHostException|ConnectException|SocketTimeoutException|"
                     r"(?i:connection (refused|reset|timed out))|NoRouteToHost")
DEM = re.compile(r"(?i)((srtm|\bdem\b|elevation|\.hgt)[^\n]{0,100}(not found|unable|failed|"
                 r"could not|cannot|not supported|no such file|error)|"
                 r"(unable|failed|could not|cannot)[^\n]{0,60}(srtm|\bdem\b|elevation|\.hgt))")
NO_INTERSECTION = re.compile(r"(?i)no intersection|region[^\n]{0,40}(outside|empty)|"
                             r"subset region[^\n]{0,40}invalid")
MEMORY_FIX = ("run fewer --workers so each gpt gets more memory (--memory-per-worker), lower "
              "processing.snap.threads or tile_cache_gb, or set processing.snap.split: true")
"""Memory failures are fixed by less parallelism, never more."""


def classify_failure(run: GptRun, settings: GptSettings, graph: Path, log_path: Path,
                     machine_gb: float | None = None) -> SarflowError:
    """The typed error, with its fix, for a gpt run that failed (non-zero exit or killed)."""
    text, rc = run.log_text, run.returncode
    where = f"log: {log_path}"
    m = UNKNOWN_ELEMENT.search(text)
    if m:
        node = m.group("node") or "?"
        return SnapParameterError(
            f"this SNAP's gpt does not know parameter '{m.group('par')}' of node {node} in "
            f"{graph.name}: the graphs target SNAP 9-14; update SNAP (https://step.esa.int) or "
            f"delete <{m.group('par')}> from the graph; {where}")
    if NO_HEAP.search(text):
        total = machine_gb if machine_gb is not None else WorkerResources.of_machine().memory_gb
        return SnapMemoryError(
            f"the JVM could not reserve its {settings.memory_gb:g} GB heap (machine: "
            f"{total:.0f} GB); lower processing.snap.memory_gb or run fewer workers; {where}")
    if run.killed == "memory" or MEMORY.search(text) or rc in (-9, 137):
        how = ("gpt's JVM hit OutOfMemoryError and was killed (it would have waited until "
               "the timeout)" if run.killed == "memory" else
               "gpt was killed by the system for memory" if rc in (-9, 137) and
               not MEMORY.search(text) else "gpt ran out of memory")
        return SnapMemoryError(
            f"{how} (heap {settings.memory_gb:g} GB, tile cache {settings.tile_cache_gb:g} GB, "
            f"{settings.threads} threads, exit {rc}); {MEMORY_FIX}; {where}")
    if GEOID.search(text) and not ORBIT.search(text):
        return SnapDownloadError(
            f"Terrain-Correction could not read SNAP's EGM96 geoid grid "
            f"({GEOID.search(text).group(0).strip()[:120]}); a truncated "
            f"auxdata/dem/egm96/ww15mgh_b.zip is removed before the next run, which downloads "
            f"it again (or copy it from https://step.esa.int/auxdata/dem/egm96/ww15mgh_b.zip); "
            f"{where}")
    if ORBIT.search(text):
        return (SnapDownloadError if NETWORK.search(text) else SnapOrbitError)(
            "Apply-Orbit-File got no orbit file for this scene; check internet access to "
            "step.esa.int, put the EOF file in processing.orbits (sarflow places it where "
            "SNAP looks), or set processing.snap.orbit_type: restituted for scenes younger "
            f"than about 3 weeks; {where}")
    if DEM.search(text):
        return (SnapDownloadError if NETWORK.search(text) else SnapDemError)(
            "Terrain-Correction could not get its DEM; check internet access for SNAP's DEM "
            "auto-download, or set dem: in the event config to a local DEM GeoTIFF "
            f"(heights above EGM96, or processing.snap.geoid: false); {where}")
    if NO_INTERSECTION.search(text):
        return SceneOutsideAreaError(
            f"the scene does not overlap the event area (SNAP's Subset is empty); remove it "
            f"from the event's scenes; {where}")
    if NETWORK.search(text):
        return SnapDownloadError(f"gpt could not download auxiliary data "
                                 f"({_last_error(text)}); check network access; {where}")
    return SnapError(f"gpt failed (exit {rc}): {_last_error(text)}; {where}")


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if re.search(r"(?i)error|exception|severe", ln)]
    last = lines[-1] if lines else (text.strip().splitlines() or ["no output"])[-1]
    return last[:300]


# ------------------------------------------------------------------------------------
# reading SNAP's GeoTIFF
# ------------------------------------------------------------------------------------

DIMAP_TAG = 65000
"""Private TIFF tag in which SNAP's GeoTIFF writers store the product's DIMAP header."""

_TIFF_BYTES = (1, 2, 7)  # BYTE, ASCII, UNDEFINED: one byte per value
_TIFF_INTS = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def tiff_tags(path: Path) -> dict[int, Any] | None:
    """The first IFD of a TIFF or BigTIFF: byte/ASCII tags as bytes, single integers as
    int (others left out); None when ``path`` is not a TIFF."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return None
        e = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(e + "H", head[2:4])[0]
        if magic == 42:
            ifd, count_fmt, entry_fmt, inline = struct.unpack(e + "I", head[4:8])[0], "H", "HHII", 4
        elif magic == 43 and len(head) >= 16:
            ifd, count_fmt, entry_fmt, inline = struct.unpack(e + "Q", head[8:16])[0], "Q", "HHQQ", 8
        else:
            return None
        fh.seek(ifd)
        csize = struct.calcsize(e + count_fmt)
        raw_n = fh.read(csize)
        if len(raw_n) < csize:
            return None
        (n,) = struct.unpack(e + count_fmt, raw_n)
        esize = struct.calcsize(e + entry_fmt)
        entries = fh.read(n * esize)
        tags: dict[int, Any] = {}
        for i in range(len(entries) // esize):
            entry = entries[i * esize:(i + 1) * esize]
            t, typ, count, value = struct.unpack(e + entry_fmt, entry)
            field_bytes = entry[esize - inline:]
            if typ in _TIFF_BYTES:
                if count <= inline:
                    raw = field_bytes[:count]
                else:
                    fh.seek(value)
                    raw = fh.read(count)
                tags[t] = raw
            elif typ in _TIFF_INTS and count == 1:
                fmt = e + _TIFF_INTS[typ]
                tags[t] = struct.unpack(fmt, field_bytes[:struct.calcsize(fmt)])[0]
        return tags


def tiff_tag_text(path: Path, tag: int = DIMAP_TAG) -> str | None:
    """The text of a byte/ASCII tag in the first IFD of a TIFF or BigTIFF, or None."""
    tags = tiff_tags(path)
    if not tags or not isinstance(tags.get(tag), bytes):
        return None
    return tags[tag].rstrip(b"\0").decode("utf-8", "replace")


def product_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a product SNAP wrote: a GeoTIFF's first IFD or a BEAM-DIMAP
    header's NCOLS/NROWS; None when unreadable."""
    if path.suffix.lower() == ".dim":
        text = path.read_text(errors="replace")
        cols, rows = re.search(r"<NCOLS>\s*(\d+)", text), re.search(r"<NROWS>\s*(\d+)", text)
        return (int(cols[1]), int(rows[1])) if cols and rows else None
    tags = tiff_tags(path)
    if not tags or 256 not in tags or 257 not in tags:
        return None
    return int(tags[256]), int(tags[257])


ORBIT_ATTRIBUTE = re.compile(r'<MDATTR name="orbit_state_vector_file"[^>]*>([^<]*)</MDATTR>')
"""Set by ApplyOrbitFileOp.updateOrbitStateVectors to ``<requested type> <file name>``
(the requested type even when it fell back to RESORB: the file name tells)."""


def applied_orbit(metadata: str | None) -> tuple[str, str] | None:
    """(POEORB | RESORB | annotation, orbit file name) from a product's DIMAP header, or
    None when it has no abstracted metadata to tell."""
    if not metadata or "Abstracted_Metadata" not in metadata:
        return None
    m = ORBIT_ATTRIBUTE.search(metadata)
    value = m.group(1).strip() if m else ""
    kind = re.search(r"(POEORB|RESORB)", value)
    if kind is None:
        return "annotation", ""
    name = value.split()[-1]
    return kind.group(1), name


def snap_band_names(path: Path) -> list[str]:
    """Band names of a SNAP GeoTIFF, in band order (DIMAP header, else GDAL descriptions)."""
    from lxml import etree

    text = tiff_tag_text(path)
    if text and "Spectral_Band_Info" in text:
        root = etree.fromstring(text.encode())
        bands = sorted((int(b.findtext("BAND_INDEX")), b.findtext("BAND_NAME").strip())
                       for b in root.iter("Spectral_Band_Info"))
        return [name for _, name in bands]
    from osgeo import gdal

    ds = gdal.Open(str(path))
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    if all(names):
        return names
    raise ProcessingError(f"{path}: cannot tell SNAP's bands apart (no DIMAP header in TIFF tag "
                          f"{DIMAP_TAG}, no band descriptions); was it written by SNAP's GeoTIFF writer?")


def _band_map(names: Sequence[str], polarisations: Sequence[str], path: Path) -> dict[str, int]:
    """sarflow band name -> 1-based band index in SNAP's file."""
    wanted = {f"Sigma0_{p}": f"sigma0_{p}" for p in polarisations}
    wanted["layoverShadowMask"] = MASK_BAND
    found = {}
    for i, name in enumerate(names):
        if name in wanted:
            found[wanted[name]] = i + 1
    missing = [k for k, v in wanted.items() if v not in found]
    if missing:
        raise ProcessingError(f"{path}: SNAP wrote bands {list(names)}, lacking {missing}; "
                              "check the graph's Calibration and Terrain-Correction nodes")
    return found


def _on_lattice(gt: Sequence[float], grid: Grid, tol: float = 1e-3) -> bool:
    """True when a geotransform shares the grid's lattice (same spacing, whole-pixel origin)."""
    x0, dx, rx, y0, ry, dy = gt
    if rx or ry or not math.isclose(dx, grid.spacing, rel_tol=1e-7) \
            or not math.isclose(-dy, grid.spacing, rel_tol=1e-7):
        return False
    cx, cy = x0 / grid.spacing, y0 / grid.spacing
    return abs(cx - round(cx)) < tol and abs(cy - round(cy)) < tol


def _warp_band(ds: Any, band: int, grid: Grid, resample: str,
               src_nodata: float | None) -> tuple[Any, Any]:
    """One band of ``ds`` on ``grid`` as a warped VRT (NaN where the source has no data).

    Returns (warped, its source VRT): keep both alive while reading, GDAL does not.
    """
    from osgeo import gdal

    one = gdal.Translate("", ds, format="VRT", bandList=[band], outputType=gdal.GDT_Float32)
    warped = gdal.Warp("", one, format="VRT", outputBounds=grid.bounds, width=grid.width,
                       height=grid.height, dstSRS="EPSG:4326", resampleAlg=resample,
                       srcNodata=src_nodata, dstNodata=float("nan"),
                       outputType=gdal.GDT_Float32, multithread=False)
    return warped, one


def _check_crs(ds: Any, path: Path) -> None:
    from osgeo import osr

    srs = osr.SpatialReference(wkt=ds.GetProjection() or "")
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    if not ds.GetProjection() or not srs.IsGeographic() or not srs.IsSameGeogCS(wgs):
        raise ProcessingError(f"{path}: SNAP's output is not in geographic WGS84 (EPSG:4326); "
                              "check the graph's Terrain-Correction mapProjection")


def convert_output(snap_tif: Path, job: SceneJob, tags: Mapping[str, object],
                   output: Path | None = None) -> list[str]:
    """Write ``output`` (default ``job.output``) from SNAP's GeoTIFF: bands renamed and
    reordered, windowed onto the grid, SNAP's 0 nodata as NaN, the sigma0 floor rule
    (:mod:`sarflow.engines.floor`), mask NaN outside the image; return notes."""
    from .floor import apply_floor

    opts = _settings(job)
    import numpy as np
    from osgeo import gdal

    from ..grid import RasterWriter

    gdal.UseExceptions()
    names = snap_band_names(snap_tif)
    index = _band_map(names, job.polarisations, snap_tif)
    ds = gdal.Open(str(snap_tif))
    _check_crs(ds, snap_tif)
    aligned = _on_lattice(ds.GetGeoTransform(), job.grid)
    notes = [] if aligned else [
        f"SNAP's output grid {tuple(round(v, 12) for v in ds.GetGeoTransform())} is not on the "
        "lattice; resampled (bilinear sigma0, nearest mask)"]
    out_names = band_names(job.polarisations)
    sources = [_warp_band(ds, index[n], job.grid, "near" if aligned or n == MASK_BAND else "bilinear",
                          None if n == MASK_BAND else 0.0) for n in out_names]
    with RasterWriter(output or job.output, job.grid, count=len(out_names),
                      descriptions=out_names, tags=tags) as writer:
        for win in job.grid.blocks(1024):
            arrays = [src.GetRasterBand(1).ReadAsArray(win.col, win.row, win.width, win.height)
                      .astype(np.float32) for src, _ in sources]
            sigma = [apply_floor(a, float(opts.noise_floor), opts.noise_clip) for a in arrays[:-1]]
            outside = np.all([~np.isfinite(a) for a in sigma], axis=0)
            mask = arrays[-1]
            mask[outside] = np.nan
            writer.write(np.stack(sigma + [mask]), win)
    return notes


# ------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------

def orbit_provenance(settings: SnapSettings, product: Path | None,
                     log_text: str) -> tuple[str, str, list[str]]:
    """(orbit source, orbit file, notes): what Apply-Orbit-File applied, read from the
    metadata SNAP wrote into ``product`` (its ``orbit_state_vector_file``); the log's
    "Using Sentinel Restituted ... instead" only where the product has no metadata."""
    asked = _orbit_choice(settings)[1]
    found = applied_orbit(tiff_tag_text(product)) if product is not None else None
    notes: list[str] = []
    if found is None:
        m = RESORB_FALLBACK.search(log_text)
        if m:
            found = ("RESORB", Path(m.group("file")).name)
        elif settings.orbit_continue_on_fail and "ApplyOrbit ignoring error" in log_text:
            found = ("annotation", "")
        else:
            found = (asked, "")
        notes.append("SNAP's output has no orbit metadata; the orbit source comes from its log")
    source, name = found
    if source != asked:
        notes.append(f"{asked} was asked for but SNAP applied "
                     + (f"{source} ({name})" if name else "the annotation orbit")
                     + ("; rerun when the POEORB is published (about 3 weeks after "
                        "acquisition) for a homogeneous stack" if asked == "POEORB" else ""))
    return source, name, notes


@contextlib.contextmanager
def _scratch(output: Path) -> Iterator[Path]:
    """A private folder next to the output for SNAP's product; removed afterwards."""
    path = output.parent / f".{output.stem}.snap-tmp"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _snap_output(scratch: Path, name: str) -> Path | None:
    """SNAP's written product in ``scratch`` (GeoTIFF-BigTIFF may add its own .tif)."""
    for cand in (scratch / name, scratch / (name + ".tif")):
        if cand.is_file() and cand.stat().st_size > 0:
            return cand
    return None


def _userdir_root(job: SceneJob, opts: SnapSettings) -> Path:
    return Path(opts.userdir) if opts.userdir else Path(job.output).parent / ".snap-workers"


class SnapEngine:
    """ESA SNAP's gpt through sarflow's graphs (see the module docstring)."""

    name = "snap"

    def available(self, settings: SnapSettings | None = None) -> bool:
        """True when gpt is configured (``settings.gpt``), on PATH or under ``$SNAP_HOME/bin``."""
        return find_gpt(settings.gpt if settings is not None else None) is not None

    def version(self, settings: SnapSettings | None = None) -> str:
        """SNAP's version, from the ``VERSION.txt`` of the installation gpt belongs to."""
        exe = find_gpt(settings.gpt if settings is not None else None)
        return snap_version(exe) if exe is not None else "SNAP (not found)"

    def settings(self, job: SceneJob) -> GptSettings:
        return GptSettings.from_settings(_settings(job), job.worker())

    def process(self, job: SceneJob) -> SceneResult:
        """Prepare aux data, render, run gpt, convert onto the grid, validate; raise a typed
        error on failure (leaving no output and no scratch behind)."""
        from . import snap_aux

        began = time.perf_counter()
        settings, opts = self.settings(job), _settings(job)
        info = scene_info(job.scene)
        missing = [p for p in job.polarisations if p not in info.polarisations]
        if missing:
            raise InputError(f"{job.scene.name} has {','.join(info.polarisations)} only, not "
                             f"{','.join(missing)}; set polarisations: accordingly")
        output = Path(job.output)
        graphs = rendered_graph_paths(output, bool(opts.split))
        for template, path in graphs:
            values = render_graph(job, path, template)
        from .snap_operators import ensure_graphs_run

        ensure_graphs_run(settings.gpt, [p for _, p in graphs])
        srtm = None if "externalDEMFile" in values["Terrain-Correction"] else \
            _region_bounds(values["Subset"]["geoRegion"])
        with snap_aux.worker_userdir(_userdir_root(job, opts)) as userdir, _scratch(output) as scratch:
            aux = snap_aux.prepare(userdir, mission=info.mission,
                                   when=dt.datetime.strptime(info.start, "%Y%m%dT%H%M%S"),
                                   orbit_source=job.orbit_dir, orbit_kind=_orbit_choice(opts)[1],
                                   srtm_bounds=srtm, allow_downloads=opts.allow_downloads)
            for note in aux.notes:
                log.info("%s: %s", output.stem, note)
            try:
                produced, runs = self._run_chain(job, settings, [p for _, p in graphs], scratch,
                                                 userdir, info)
            except SnapError as exc:
                removed = snap_aux.remove_corrupt(userdir)
                if removed:
                    raise SnapDownloadError(
                        f"{exc.one_line()}; SNAP left unreadable auxiliary file(s) "
                        f"{', '.join(map(str, removed))} (a download cut short): removed, the "
                        f"next run downloads them again") from None
                raise
            source, orbit_file, notes = orbit_provenance(opts, produced,
                                                         "".join(r.log_text for r in runs))
            notes = [n for n in aux.notes if n.startswith("removed")] + notes
            notes += [f"gpt hung after 'Processing completed' and was killed; its output "
                      f"was complete" for r in runs if r.killed == "after_completion"]
            tags = _tags(job, info, values, source, orbit_file, graphs, runs)
            staged = footprint.staging_path(output) if opts.edge_erosion_px else output
            notes += convert_output(produced, job, tags, output=staged)
        if opts.edge_erosion_px:
            footprint.erode_output(staged, output, int(opts.edge_erosion_px))
        try:
            validate_output(output, job.grid, job.polarisations)
        except SarflowError as exc:
            output.unlink(missing_ok=True)
            raise SnapError(f"SNAP's output for {info.product_id} is not usable: "
                            f"{exc.one_line()}; log: {job.log_path}") from None
        return SceneResult(output=output, engine=self.name, orbit_source=source,
                           seconds=time.perf_counter() - began, notes=notes)

    def _run_chain(self, job: SceneJob, settings: GptSettings, graphs: Sequence[Path],
                   scratch: Path, userdir: Path, info: SceneInfo) -> tuple[Path, list["GptRun"]]:
        """Run the graph (or the stage graphs, each feeding the next) within one timeout."""
        from .snap_aux import jvm_options

        opts = _settings(job)
        deadline = time.monotonic() + settings.timeout_s
        watch = Watch(output=scratch, stall_s=float(opts.stall_timeout_s),
                      finish_grace_s=float(opts.finish_grace_s))
        source, runs = Path(job.scene), []
        for i, graph in enumerate(graphs):
            last = i == len(graphs) - 1
            target = scratch / (f"{job.output.stem}_snap.tif" if last
                                else f"{job.output.stem}_stage{i + 1}.dim")
            cmd = gpt_command(settings, graph, source, target, jvm_options(userdir))
            log.info("%s: %s", job.output.stem, subprocess.list2cmdline(cmd))
            run = run_gpt(cmd, job.log_path, deadline - time.monotonic(), settings.timeout_s,
                          watch)
            run.command = cmd
            runs.append(run)
            produced = _snap_output(scratch, target.name)
            _check_not_empty(run, produced, info, job, graph)
            if run.killed == "after_completion":
                if produced is None or not _complete(produced, last):
                    raise SnapTimeoutError(
                        f"gpt hung after 'Processing completed' and was killed after "
                        f"processing.snap.finish_grace_s = {opts.finish_grace_s:g} s, and its "
                        f"output is incomplete; log: {job.log_path}")
            elif run.returncode != 0 or run.killed:
                raise classify_failure(run, settings, graph, job.log_path)
            if produced is None:
                raise SnapNoOutputError(
                    f"gpt exited 0 but wrote no product for {job.output.stem} ({graph.name}); "
                    f"see the log {job.log_path} (a SNAP plugin missing or a failure SNAP "
                    "did not report)")
            source = produced
        return source, runs


def _region_bounds(wkt: str) -> tuple[float, float, float, float]:
    nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?", wkt)]
    xs, ys = nums[0::2], nums[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _check_not_empty(run: GptRun, produced: Path | None, info: SceneInfo, job: SceneJob,
                     graph: Path) -> None:
    """SceneOutsideAreaError when Subset was empty: SubsetOp logs "No intersection with
    source product boundary" and returns a 0 x 0 product, gpt exits 0 (SNAP 9-14)."""
    size = product_size(produced) if produced is not None else None
    empty = size is not None and (size[0] == 0 or size[1] == 0)
    if not (empty or NO_INTERSECTION.search(run.log_text)):
        return
    w, s, e, n = job.grid.bounds
    raise SceneOutsideAreaError(
        f"{info.product_id} does not overlap the event area ({graph.name}: SNAP's Subset is "
        f"empty{', a 0 x 0 product' if empty else ''}): scene footprint "
        f"{info.footprint or '(unknown)'}, event grid {w:.4f},{s:.4f},{e:.4f},{n:.4f}; remove "
        f"the scene from the event's scenes; log: {job.log_path}")


def _complete(product: Path, geotiff: bool) -> bool:
    """True when SNAP's product opens and has pixels (the GeoTIFF fully readable)."""
    size = product_size(product)
    if size is None or 0 in size:
        return False
    if not geotiff:
        return product.with_suffix(".data").is_dir()
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        ds = gdal.Open(str(product))
        for b in range(ds.RasterCount):
            ds.GetRasterBand(b + 1).Checksum()
    except RuntimeError:
        return False
    return True


def rendered_graph_paths(output: Path, split: bool) -> list[tuple[Path, Path]]:
    """(template, where its rendered copy goes) for the full chain or the three stages."""
    if not split:
        return [(FULL_GRAPH, output.with_suffix(".xml"))]
    return [(t, output.with_name(f"{output.stem}.stage{i + 1}.xml"))
            for i, t in enumerate(STAGE_GRAPHS)]


def _tags(job: SceneJob, info: SceneInfo, values: Mapping[str, Mapping[str, str]],
          orbit_source: str, orbit_file: str, graphs: Sequence[tuple[Path, Path]],
          runs: Sequence[GptRun]) -> dict:
    """The stage's tags (``job.tags``) plus SNAP's provenance (graphs, commands, DEM, orbit)."""
    tc = values["Terrain-Correction"]
    return {**job_tags(job, ENGINE, _settings(job)), "orbit_source": orbit_source,
            "orbit_file": orbit_file,
            "units": "linear sigma0", "graphs": ",".join(p.name for _, p in graphs),
            "gpt_commands": [subprocess.list2cmdline(r.command) for r in runs],
            "scene": str(job.scene), "dem": tc.get("externalDEMFile") or tc["demName"],
            "region": values["Subset"]["geoRegion"]}


def snap_version(gpt: Path) -> str:
    """``SNAP <version>`` from the installation's VERSION.txt (``SNAP (version unknown)``)."""
    for folder in (gpt.resolve().parent.parent, gpt.resolve().parent):
        text = folder / "VERSION.txt"
        if text.is_file():
            m = re.search(r"(\d+\.\d+(?:\.\d+)?)", text.read_text(errors="replace"))
            if m:
                return f"SNAP {m.group(1)}"
    return "SNAP (version unknown)"


ENGINE = SnapEngine()
