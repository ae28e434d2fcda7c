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


class SnapParameterError(ProcessingError):
    """The graph names a parameter this SNAP version's operator does not define."""


class SnapMemoryError(ProcessingError):
    """The JVM ran out of heap or the process was killed for memory."""


class SnapOrbitError(ProcessingError):
    """Apply-Orbit-File found or downloaded no orbit file for the scene."""


class SnapDemError(ProcessingError):
    """Terrain-Correction could not get its DEM (download failure, bad external DEM)."""


class SnapTimeoutError(ProcessingError):
    """gpt ran longer than ``timeout_s`` and was killed with its process tree."""


class SnapNoOutputError(ProcessingError):
    """gpt ended without writing the output product."""


class SceneOutsideAreaError(ProcessingError):
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
                     polarisations=[str(p).upper() for p in meta["polarizations"]])


def region_wkt(grid: Grid, margin_deg: float = REGION_MARGIN_DEG) -> str:
    """The subset region: the grid's bounds plus ``margin_deg``, as a closed WKT polygon."""
    w, s, e, n = grid.bounds
    w, s, e, n = w - margin_deg, s - margin_deg, e + margin_deg, n + margin_deg
    return f"POLYGON(({w!r} {s!r}, {e!r} {s!r}, {e!r} {n!r}, {w!r} {n!r}, {w!r} {s!r}))"


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
                  externalDEMNoDataValue=repr(_dem_nodata(Path(dem))), externalDEMApplyEGM="true")
    else:
        tc.update(demName=str(opts.dem or "SRTM 1Sec HGT"))
    margin = float(opts.region_margin_deg)
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


def gpt_command(settings: GptSettings, graph: Path, scene: Path, output: Path) -> list[str]:
    """The argument list that runs ``graph`` on ``scene`` writing ``output``."""
    return [str(settings.gpt), *settings.args(), str(graph),
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


def run_gpt(cmd: Sequence[str], log_path: Path, timeout_s: float,
            budget_s: float | None = None) -> GptRun:
    """Run gpt, streaming stdout+stderr to ``log_path``; kill the tree after ``timeout_s``.

    ``budget_s`` is the configured timeout the message names (split runs share one).
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
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.wait()
            fh.write(f"\n[sarflow.snap] killed after {timeout_s:g} s (timeout)\n".encode())
            raise SnapTimeoutError(
                f"gpt ran longer than processing.snap.timeout_s = {budget:g} s and was "
                f"killed with its child processes; raise timeout_s, give it more threads/"
                f"memory, or run the split graphs (graphs/README.md); log: {log_path}") from None
        except BaseException:  # Ctrl-C or a cancelled Dask task: leave no gpt behind
            kill_tree(proc.pid, grace_s=2.0)
            raise
    with open(log_path, "rb") as fh:
        fh.seek(start)
        text = fh.read().decode("utf-8", "replace")
    return GptRun(returncode=rc, seconds=time.perf_counter() - began, log_text=text)


UNKNOWN_ELEMENT = re.compile(r"(?:\[NodeId:\s*(?P<node>[\w.-]+)\][^\n]*?)?"
                             r"Unknown element '(?P<par>\w+)'")
MEMORY = re.compile(r"OutOfMemoryError|Java heap space|GC overhead limit exceeded|^Killed\b",
                    re.M)
NO_HEAP = re.compile(r"Could not reserve enough space for object heap|"
                     r"Invalid maximum heap size|Cannot allocate memory")
ORBIT = re.compile(r"(?i)(no valid orbit file|orbit file[^\n]{0,80}not (found|available)|"
                   r"(unable|failed) to (download|find|retrieve)[^\n]{0,60}orbit|"
                   r"orbit[^\n]{0,60}download[^\n]{0,40}fail)")
DEM = re.compile(r"(?i)((srtm|\bdem\b|elevation|\.hgt)[^\n]{0,100}(not found|unable|failed|"
                 r"could not|cannot|not supported|no such file|error)|"
                 r"(unable|failed|could not|cannot)[^\n]{0,60}(srtm|\bdem\b|elevation|\.hgt))")
NO_INTERSECTION = re.compile(r"(?i)no intersection|region[^\n]{0,40}(outside|empty)|"
                             r"subset region[^\n]{0,40}invalid")


def classify_failure(run: GptRun, settings: GptSettings, graph: Path, log_path: Path,
                     machine_gb: float | None = None) -> SarflowError:
    """The typed error, with its fix, for a gpt run that failed (non-zero exit)."""
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
    if MEMORY.search(text) or rc in (-9, 137):
        return SnapMemoryError(
            f"gpt ran out of memory (heap {settings.memory_gb:g} GB, tile cache "
            f"{settings.tile_cache_gb:g} GB, exit {rc}); raise processing.snap.memory_gb, "
            f"lower tile_cache_gb, run fewer --workers, or use the split graphs; {where}")
    if ORBIT.search(text):
        return SnapOrbitError(
            "Apply-Orbit-File got no orbit file for this scene; check internet access to "
            "step.esa.int, put the EOF file under ~/.snap/auxdata/Orbits/Sentinel-1/POEORB/"
            "<S1A|S1B>/<year>/<month>/, or set processing.snap.orbit_type: restituted for "
            f"scenes younger than about 3 weeks; {where}")
    if DEM.search(text):
        return SnapDemError(
            "Terrain-Correction could not get its DEM; check internet access for SNAP's DEM "
            "auto-download, or set dem: in the event config to a local DEM GeoTIFF "
            f"(heights above EGM96); {where}")
    if NO_INTERSECTION.search(text):
        return SceneOutsideAreaError(
            f"the scene does not overlap the event area (SNAP's Subset is empty); remove it "
            f"from the event's scenes; {where}")
    return ProcessingError(f"gpt failed (exit {rc}): {_last_error(text)}; {where}")


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

_TIFF_TYPES = {1: 1, 2: 1, 7: 1}  # BYTE, ASCII, UNDEFINED: one byte per value


def tiff_tag_text(path: Path, tag: int = DIMAP_TAG) -> str | None:
    """The text of a byte/ASCII tag in the first IFD of a TIFF or BigTIFF, or None."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return None
        e = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(e + "H", head[2:4])[0]
        if magic == 42:
            ifd, count_fmt, entry_fmt, inline = struct.unpack(e + "I", head[4:8])[0], "H", "HHII", 4
        elif magic == 43:
            ifd, count_fmt, entry_fmt, inline = struct.unpack(e + "Q", head[8:16])[0], "Q", "HHQQ", 8
        else:
            return None
        fh.seek(ifd)
        csize = struct.calcsize(e + count_fmt)
        (n,) = struct.unpack(e + count_fmt, fh.read(csize))
        esize = struct.calcsize(e + entry_fmt)
        entries = fh.read(n * esize)
        for i in range(n):
            t, typ, count, value = struct.unpack(e + entry_fmt, entries[i * esize:(i + 1) * esize])
            if t != tag or typ not in _TIFF_TYPES:
                continue
            if count <= inline:
                raw = entries[i * esize + esize - inline:][:count]
            else:
                fh.seek(value)
                raw = fh.read(count)
            return raw.rstrip(b"\0").decode("utf-8", "replace")
    return None


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


def convert_output(snap_tif: Path, job: SceneJob, tags: Mapping[str, object]) -> list[str]:
    """Write ``job.output`` from SNAP's GeoTIFF: bands renamed/reordered, windowed onto the
    grid, SNAP's 0 nodata as NaN, mask NaN outside the image; return notes."""
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
    with RasterWriter(job.output, job.grid, count=len(out_names), descriptions=out_names,
                      tags=tags) as writer:
        for win in job.grid.blocks(1024):
            arrays = [src.GetRasterBand(1).ReadAsArray(win.col, win.row, win.width, win.height)
                      .astype(np.float32) for src, _ in sources]
            sigma = arrays[:-1]
            outside = np.all([~np.isfinite(a) for a in sigma], axis=0)
            mask = arrays[-1]
            mask[outside] = np.nan
            writer.write(np.stack(sigma + [mask]), win)
    return notes


# ------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------

def _orbit_source(settings: SnapSettings, log_text: str) -> str:
    """POEORB / RESORB as asked; ``annotation`` if SNAP went on without an orbit file."""
    source = _orbit_choice(settings)[1]
    if settings.orbit_continue_on_fail and ORBIT.search(log_text):
        return "annotation"
    return source


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
        """Render, run gpt, convert onto the grid, validate; raise a typed error on failure."""
        began = time.perf_counter()
        settings = self.settings(job)
        info = scene_info(job.scene)
        missing = [p for p in job.polarisations if p not in info.polarisations]
        if missing:
            raise InputError(f"{job.scene.name} has {','.join(info.polarisations)} only, not "
                             f"{','.join(missing)}; set polarisations: accordingly")
        output = Path(job.output)
        graphs = rendered_graph_paths(output, bool(_settings(job).split))
        for template, path in graphs:
            values = render_graph(job, path, template)
        with _scratch(output) as scratch:
            produced, runs = self._run_chain(job, settings, [p for _, p in graphs], scratch)
            orbit_source = _orbit_source(_settings(job), "".join(r.log_text for r in runs))
            tags = _tags(job, info, values, orbit_source, graphs, runs)
            notes = convert_output(produced, job, tags)
        if job.orbit_dir is not None:
            notes.append("processing.orbits is not used by SNAP, which reads its own orbit "
                         "files (~/.snap/auxdata/Orbits)")
        try:
            validate_output(output, job.grid, job.polarisations)
        except SarflowError as exc:
            output.unlink(missing_ok=True)
            raise ProcessingError(f"SNAP's output for {info.product_id} is not usable: "
                                  f"{exc.one_line()}; log: {job.log_path}") from None
        return SceneResult(output=output, engine=self.name, orbit_source=orbit_source,
                           seconds=time.perf_counter() - began, notes=notes)

    def _run_chain(self, job: SceneJob, settings: GptSettings, graphs: Sequence[Path],
                   scratch: Path) -> tuple[Path, list["GptRun"]]:
        """Run the graph (or the stage graphs, each feeding the next) within one timeout."""
        deadline = time.monotonic() + settings.timeout_s
        source, runs = Path(job.scene), []
        for i, graph in enumerate(graphs):
            last = i == len(graphs) - 1
            target = scratch / (f"{job.output.stem}_snap.tif" if last
                                else f"{job.output.stem}_stage{i + 1}.dim")
            cmd = gpt_command(settings, graph, source, target)
            log.info("%s: %s", job.output.stem, subprocess.list2cmdline(cmd))
            run = run_gpt(cmd, job.log_path, deadline - time.monotonic(), settings.timeout_s)
            run.command = cmd
            runs.append(run)
            if run.returncode != 0:
                raise classify_failure(run, settings, graph, job.log_path)
            produced = _snap_output(scratch, target.name)
            if produced is None:
                if NO_INTERSECTION.search(run.log_text):
                    raise classify_failure(run, settings, graph, job.log_path)
                raise SnapNoOutputError(
                    f"gpt exited 0 but wrote no product for {job.output.stem} ({graph.name}); "
                    f"see the log {job.log_path} (a SNAP plugin missing or a failure SNAP "
                    "did not report)")
            source = produced
        return source, runs


def rendered_graph_paths(output: Path, split: bool) -> list[tuple[Path, Path]]:
    """(template, where its rendered copy goes) for the full chain or the three stages."""
    if not split:
        return [(FULL_GRAPH, output.with_suffix(".xml"))]
    return [(t, output.with_name(f"{output.stem}.stage{i + 1}.xml"))
            for i, t in enumerate(STAGE_GRAPHS)]


def _tags(job: SceneJob, info: SceneInfo, values: Mapping[str, Mapping[str, str]],
          orbit_source: str, graphs: Sequence[tuple[Path, Path]], runs: Sequence[GptRun]) -> dict:
    """The stage's tags (``job.tags``) plus SNAP's provenance (graphs, commands, DEM)."""
    tc = values["Terrain-Correction"]
    return {**job_tags(job, ENGINE, _settings(job)), "orbit_source": orbit_source,
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
