"""The scene catalog: which downloaded Sentinel-1 products an event uses.

Two ways in:

* :func:`select_scenes` scans the event's ``scenes`` folders (``*.zip`` and ``*.SAFE``),
  reads each product's metadata and keeps those whose footprint meets the area and whose
  start time falls in the pre- or post-event window.  No database needed; this is what
  ``sarflow preprocess`` uses.
* :func:`index_scenes` registers products in pyroSAR's scene ``Archive`` (SQLite/SpatiaLite
  file, or PostgreSQL/PostGIS given a URL), for users who keep one catalog of everything
  they downloaded.

Both recognise duplicates: the same acquisition (mission, start and stop time) delivered in
several processing versions (another product unique id or IPF version); the newest version
is kept.  A product that cannot be read (truncated zip, broken manifest) becomes a record
with ``status="failed"`` and a one-line ``reason``, never an exception.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence
from urllib.parse import unquote, urlparse

from .archives import zip_names
from .errors import CorruptInputError, InputError, SarflowError

log = logging.getLogger("sarflow.catalog")

PASSES = ("ASCENDING", "DESCENDING")
WINDOWS = ("pre", "post")
FULL_COVERAGE = 0.999
"""Coverage fraction from which an orbit counts as covering the whole area."""

NAME_RE = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>IW|EW|WV|S[1-6])_(?P<product>GRD|SLC|RAW|OCN)"
    r"(?P<resolution>[FHM_])_(?P<level>[0-2])(?P<klass>[SA])(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH)_"
    r"(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_"
    r"(?P<uid>[0-9A-F]{4})(?:\.SAFE)?(?:\.zip)?$", re.IGNORECASE)
"""Sentinel-1 product name (ESA's naming convention, S1-RS-MDA-52-7441 section 2.2)."""

_POL_CODES = {"SH": ["HH"], "SV": ["VV"], "DH": ["HH", "HV"], "DV": ["VV", "VH"],
              "HH": ["HH"], "VV": ["VV"], "HV": ["HV"], "VH": ["VH"]}

# relative orbit = (absolute orbit - offset) mod 175 + 1; offsets from ESA's mission
# description, checked against the relativeOrbitNumber of the manifests in the fixtures
_ORBIT_OFFSET = {"S1A": 73, "S1B": 27}
_CYCLE = 175


def product_id(path: str | Path) -> str:
    """The product name without ``.zip`` / ``.SAFE``: the key of every per-scene output."""
    name = Path(path).name
    for suffix in (".zip", ".SAFE", ".safe"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.removesuffix(".SAFE")


def relative_orbit(mission: str, absolute_orbit: int) -> Optional[int]:
    """Relative orbit (track, 1..175) from the absolute orbit; None for unknown missions."""
    offset = _ORBIT_OFFSET.get(mission.upper())
    if offset is None:
        return None
    return (absolute_orbit - offset) % _CYCLE + 1


def _utc_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)


def parse_name(name: str | Path) -> Optional[dict[str, Any]]:
    """Fields encoded in a Sentinel-1 product name, or None when it does not follow ESA's."""
    m = NAME_RE.match(Path(name).name)
    if m is None:
        return None
    g = m.groupdict()
    mission = g["mission"].upper()
    orbit = int(g["orbit"])
    return {"mission": mission, "mode": g["mode"].upper(), "product": g["product"].upper(),
            "start": _utc_stamp(g["start"]), "stop": _utc_stamp(g["stop"]),
            "absolute_orbit": orbit, "relative_orbit": relative_orbit(mission, orbit),
            "datatake": g["datatake"].upper(), "unique_id": g["uid"].upper(),
            "polarisations": list(_POL_CODES[g["pol"].upper()])}


@dataclass(eq=False)
class SceneRecord:
    """One product as the catalog sees it (``status`` ``ok`` or ``failed``)."""

    path: Path
    product_id: str
    mission: Optional[str] = None
    start: Optional[dt.datetime] = None
    stop: Optional[dt.datetime] = None
    pass_direction: Optional[str] = None
    relative_orbit: Optional[int] = None
    polarisations: list[str] = field(default_factory=list)
    ipf_version: Optional[float] = None
    processed: Optional[dt.datetime] = None
    footprint: Any = None
    """shapely Polygon (lon/lat) of the product, when known."""
    window: Optional[str] = None
    coverage: Optional[float] = None
    """Fraction of the event area inside the footprint (0..1), None when unknown."""
    status: str = "ok"
    reason: str = ""
    source: str = "metadata"
    """Where the fields came from: ``metadata`` (the product) or ``filename``."""
    product_type: str = "GRD"
    """``GRD`` (a Sentinel-1 SAFE), or an already terrain-corrected product read by the
    ``import`` engine: ``OPERA_RTC``, ``HYP3_RTC``, ``RTC_GEOTIFF``."""
    radiometry: Optional[str] = None
    """sigma0 or gamma0 for terrain-corrected products (GRDs are calibrated by the engine)."""
    burst: Optional[str] = None
    """Burst id of a burst product (OPERA): bursts of one acquisition are distinct products."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def key(self) -> tuple:
        """Identity of the acquisition: the same for every processing version of it."""
        stamp = lambda t: t.strftime("%Y%m%dT%H%M%S") if t else None  # noqa: E731
        return (self.mission, stamp(self.start), stamp(self.stop)) + ((self.burst,) if self.burst else ())

    def missing_polarisations(self, wanted: Sequence[str]) -> list[str]:
        """Which of ``wanted`` this product does not have."""
        return [p for p in wanted if p not in self.polarisations]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {"path": str(self.path), "product_id": self.product_id, "mission": self.mission,
                "start": iso(self.start), "stop": iso(self.stop), "pass": self.pass_direction,
                "relative_orbit": self.relative_orbit, "polarisations": self.polarisations,
                "ipf_version": self.ipf_version, "window": self.window,
                "coverage": None if self.coverage is None else round(self.coverage, 4),
                "status": self.status, "reason": self.reason, "source": self.source,
                "product_type": self.product_type, "radiometry": self.radiometry,
                "footprint": self.footprint.wkt if self.footprint is not None else None}


# ------------------------------------------------------------------------------------
# reading products
# ------------------------------------------------------------------------------------

def find_products(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``*.zip`` / ``*.SAFE`` at or under ``paths`` (folders searched recursively)."""
    found: list[Path] = []
    for root in map(Path, paths):
        if _is_product_path(root):
            found.append(root)
        elif root.is_dir():
            found.extend(_walk(root))
        else:
            log.warning("scenes: %s does not exist", root)
    return sorted(dict.fromkeys(p.resolve() for p in found))


def _is_product_path(p: Path) -> bool:
    return (p.suffix.lower() == ".zip" and p.is_file()) or (p.suffix.upper() == ".SAFE" and p.is_dir())


def _walk(folder: Path) -> Iterable[Path]:
    for child in sorted(folder.iterdir()):
        if _is_product_path(child):
            yield child
        elif child.is_dir() and not child.name.startswith("."):
            yield from _walk(child)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_container(path: Path) -> None:
    """Raise CorruptInputError when a zip cannot be opened or holds no manifest."""
    if path.suffix.lower() == ".zip":
        names = zip_names(path)
        if not any(n.endswith("manifest.safe") for n in names):
            raise CorruptInputError(f"{path.name}: zip holds no manifest.safe; "
                                    "not a Sentinel-1 SAFE product")
    elif not (path / "manifest.safe").is_file():
        raise CorruptInputError(f"{path.name}: folder holds no manifest.safe; "
                                "not a Sentinel-1 SAFE product")


def _from_name(path: Path) -> SceneRecord:
    rec = SceneRecord(path=path, product_id=product_id(path), source="filename")
    fields = parse_name(path.name)
    if fields:
        rec.mission, rec.start, rec.stop = fields["mission"], fields["start"], fields["stop"]
        rec.relative_orbit = fields["relative_orbit"]
        rec.polarisations = fields["polarisations"]
    return rec


def _utc(value: Any) -> Optional[dt.datetime]:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "-" in value else _utc_stamp(value[:15])
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    import numpy as np

    if isinstance(value, np.datetime64):
        return _utc(value.astype("datetime64[us]").item())
    return None


def _float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pass_name(value: Any) -> Optional[str]:
    if value is None:
        return None
    text = str(value).upper()
    return {"A": "ASCENDING", "D": "DESCENDING"}.get(text[:1]) if text[:1] in "AD" else None


def _read_with_sentinel1(path: Path, rec: SceneRecord) -> bool:
    """Fill ``rec`` from ``sarflow.sentinel1.open_product``; False when that module is absent."""
    try:
        from .sentinel1 import open_product
    except ImportError:
        return False
    prod = open_product(path)
    rec.mission = getattr(prod, "mission", None) or rec.mission
    rec.start = _utc(getattr(prod, "start", None)) or rec.start
    rec.stop = _utc(getattr(prod, "stop", None)) or rec.stop
    rec.pass_direction = _pass_name(getattr(prod, "pass_direction", None))
    rel = getattr(prod, "relative_orbit", None)
    rec.relative_orbit = int(rel) if rel is not None else rec.relative_orbit
    pols = getattr(prod, "polarisations", None)
    rec.polarisations = [str(p).upper() for p in pols] if pols else rec.polarisations
    rec.footprint = getattr(prod, "footprint", None)
    rec.ipf_version = _float(getattr(prod, "ipf_version", None))
    rec.processed = _utc(getattr(prod, "processing_time", None))
    pid = getattr(prod, "id", None)
    rec.product_id = str(pid) if pid else rec.product_id
    rec.source = "metadata"
    return True


def _read_with_pyrosar(path: Path, rec: SceneRecord) -> None:
    """Fill ``rec`` from pyroSAR's ``identify`` (used where sarflow.sentinel1 is absent)."""
    from shapely.geometry import Polygon

    from .pyrosar_compat import identify

    scene = identify(path)
    meta = scene.meta
    rec.mission = meta.get("sensor", rec.mission)
    rec.start = _utc(meta.get("acquisition_time", {}).get("start")) or _utc(meta.get("start"))
    rec.stop = _utc(meta.get("acquisition_time", {}).get("stop")) or _utc(meta.get("stop"))
    rec.pass_direction = _pass_name(meta.get("orbit"))
    rec.relative_orbit = meta.get("orbitNumber_rel", rec.relative_orbit)
    rec.polarisations = [str(p).upper() for p in meta.get("polarizations", [])] or rec.polarisations
    coords = meta.get("coordinates") or []
    rec.footprint = Polygon(coords) if len(coords) >= 3 else None
    rec.ipf_version = _float(meta.get("IPF_version"))
    rec.source = "metadata"


def read_record(path: str | Path) -> SceneRecord:
    """A :class:`SceneRecord` for one product; unreadable products come back ``failed``."""
    p = Path(path)
    rec = _from_name(p)
    try:
        _check_container(p)
        if not _read_with_sentinel1(p, rec):
            _read_with_pyrosar(p, rec)
    except SarflowError as exc:
        rec.status, rec.reason = "failed", _one_line(exc)
    except Exception as exc:  # noqa: BLE001 - one unreadable product must not stop a listing
        rec.status = "failed"
        rec.reason = _one_line(f"{p.name}: cannot read product metadata ({type(exc).__name__}: {exc})")
    if rec.ok and rec.footprint is not None and not rec.footprint.is_valid:
        rec.footprint = rec.footprint.buffer(0)
    return rec


# ------------------------------------------------------------------------------------
# duplicates, windows, coverage
# ------------------------------------------------------------------------------------

def _newness(rec: SceneRecord) -> tuple:
    """Sort key: later IPF version, then later processing time, then later file time."""
    try:
        mtime = rec.path.stat().st_mtime
    except OSError:
        mtime = 0.0
    processed = rec.processed.timestamp() if rec.processed else 0.0
    return (rec.ipf_version or 0.0, processed, mtime, rec.product_id)


def deduplicate(records: Sequence[SceneRecord]) -> tuple[list[SceneRecord], list[tuple[SceneRecord, SceneRecord]]]:
    """Keep the newest processing version of each acquisition.

    Returns the kept records (input order) and ``(dropped, kept_instead)`` pairs.
    Failed records pass through untouched (their identity is not known for sure).
    """
    groups: dict[tuple, list[SceneRecord]] = {}
    for r in records:
        if r.ok and r.start is not None:
            groups.setdefault(r.key, []).append(r)
    winners = {k: max(v, key=_newness) for k, v in groups.items()}
    kept, dropped = [], []
    for r in records:
        if not r.ok or r.start is None or winners[r.key] is r:
            kept.append(r)
        else:
            dropped.append((r, winners[r.key]))
    return kept, dropped


def area_polygon(cfg: Any) -> Any:
    """The event area as a shapely geometry (lon/lat): its bbox, or the polygons of its file."""
    from shapely.geometry import box

    if cfg.area.file is None:
        return box(*cfg.area.bounds())
    return _vector_union(Path(cfg.area.file))


def _vector_union(path: Path) -> Any:
    """Union of a vector file's geometries in EPSG:4326 (lon/lat order)."""
    from shapely import wkb
    from shapely.ops import unary_union

    from .vector import geometries

    shapes = [wkb.loads(bytes(g.ExportToWkb())) for g in geometries(path, what="area file")]
    if not shapes:
        raise InputError(f"area file {path} holds no geometry; draw the area as a polygon")
    return unary_union(shapes).buffer(0)


def window_of(cfg: Any, start: Optional[dt.datetime]) -> Optional[str]:
    """``pre`` or ``post`` when ``start`` falls in that window of the event, else None."""
    if start is None:
        return None
    for name, (a, b) in (("pre", cfg.pre_window()), ("post", cfg.post_window())):
        if a <= start < b:
            return name
    return None


def coverage(footprint: Any, area: Any) -> Optional[float]:
    """Fraction of ``area`` inside ``footprint`` (None when the footprint is unknown)."""
    if footprint is None or area.area == 0:
        return None
    return float(footprint.intersection(area).area / area.area)


@dataclass
class Scan:
    """Everything a scan of an event's scene folders found."""

    selected: list[SceneRecord]
    """Readable products in a window that meet the area (newest versions only)."""
    failed: list[SceneRecord]
    """Unreadable products (possibly relevant: in a window by name, or name unknown)."""
    duplicates: list[tuple[SceneRecord, SceneRecord]]
    """(older version dropped, newer version kept)."""
    outside: list[SceneRecord]
    """Readable products outside both windows or not meeting the area."""
    area: Any = None


def scan_scenes(cfg: Any) -> Scan:
    """Read every product under ``cfg.scenes`` and sort them into selected/failed/outside."""
    area = area_polygon(cfg)
    rtc = rtc_records(cfg.scenes)
    taken = {str(r.path.resolve()) for r in rtc}
    records = [read_record(p) for p in find_products(cfg.scenes) if str(p.resolve()) not in taken] + rtc
    for r in records:
        r.window = window_of(cfg, r.start)
        if r.ok:
            r.coverage = coverage(r.footprint, area)
    failed = [r for r in records if not r.ok and (r.window is not None or r.start is None)]
    usable = [r for r in records if r.ok and r.window is not None and (r.coverage is None or r.coverage > 0)]
    outside = [r for r in records if r.ok and r not in usable]
    kept, dropped = deduplicate(usable)
    kept.sort(key=_order)
    return Scan(selected=kept, failed=failed, duplicates=dropped, outside=outside, area=area)


def rtc_records(paths: Sequence[str | Path]) -> list[SceneRecord]:
    """Records of the already terrain-corrected products (OPERA, HyP3, generic folders)
    under ``paths``; unreadable ones come back ``failed``."""
    from .rtc_products import find_rtc_products

    products, failed = find_rtc_products(paths)
    out = []
    for p in products:
        out.append(SceneRecord(
            path=p.path.absolute(),  # not resolved: a linked file belongs to its folder's sidecar
            product_id=p.product_id, mission=p.mission, start=p.start,
            pass_direction=p.pass_direction, relative_orbit=p.relative_orbit,
            polarisations=p.polarisations, processed=p.processed, footprint=p.footprint,
            source="metadata" if p.pass_source == "metadata" else "metadata, pass from solar time",
            product_type=p.kind, radiometry=p.radiometry, burst=p.burst))
    for path, reason in failed:
        out.append(SceneRecord(path=Path(path), product_id=Path(path).name, status="failed",
                               reason=reason, product_type="RTC"))
    return out


def _order(r: SceneRecord) -> tuple:
    return (WINDOWS.index(r.window) if r.window in WINDOWS else 9, r.pass_direction or "~",
            r.start or dt.datetime.max.replace(tzinfo=dt.timezone.utc), r.product_id)


def select_scenes(cfg: Any) -> list[SceneRecord]:
    """The scenes an event uses, plus the unreadable ones (``status="failed"``) to report."""
    scan = scan_scenes(cfg)
    for old, new in scan.duplicates:
        log.info("duplicate %s: using the newer processing version %s", old.product_id, new.product_id)
    return scan.selected + scan.failed


def selection_warnings(cfg: Any, records: Sequence[SceneRecord], area: Any = None) -> list[str]:
    """Gaps an event's selection has: pass/window without scenes, partial orbits, pols missing."""
    from shapely.ops import unary_union

    area = area if area is not None else area_polygon(cfg)
    ok = [r for r in records if r.ok]
    out = []
    for window in WINDOWS:
        for pass_ in PASSES:
            if not any(r.window == window and r.pass_direction == pass_ for r in ok):
                a, b = cfg.pre_window() if window == "pre" else cfg.post_window()
                out.append(f"no {pass_} scene in the {window}-event window "
                           f"({a.date()} .. {(b - dt.timedelta(days=1)).date()})")
    tracks: dict[tuple, list[SceneRecord]] = {}
    for r in ok:
        tracks.setdefault((r.pass_direction, r.relative_orbit), []).append(r)
    for (pass_, orbit), recs in sorted(tracks.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        shapes = [r.footprint for r in recs if r.footprint is not None]
        if shapes:
            frac = coverage(unary_union(shapes), area)
            if frac is not None and frac < FULL_COVERAGE:
                out.append(f"relative orbit {orbit} ({pass_ or 'pass unknown'}) covers only "
                           f"{100 * frac:.0f}% of the area")
    for r in ok:
        missing = r.missing_polarisations(cfg.polarisations)
        if missing:
            out.append(f"{r.product_id} lacks {', '.join(missing)} "
                       f"(has {', '.join(r.polarisations) or 'none'})")
    for r in records:
        if not r.ok:
            out.append(f"{r.path.name}: {r.reason}")
    radiometries = sorted({r.radiometry or "sigma0" for r in ok})
    if len(radiometries) > 1:
        out.append(f"the scenes mix {' and '.join(radiometries)} backscatter: one stack cannot "
                   "use both; keep products of one convention in scenes")
    return out


# ------------------------------------------------------------------------------------
# the scene database (pyroSAR's Archive)
# ------------------------------------------------------------------------------------

@dataclass
class IndexReport:
    """What :func:`index_scenes` did."""

    db: str
    registered: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(older product kept as duplicate, newer product in the main table)."""
    replaced: list[tuple[str, str]] = field(default_factory=list)
    """(product moved out of the main table, newer product that took its place)."""
    already: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    terrain_corrected: list[tuple[str, str]] = field(default_factory=list)
    """(path, kind) of the OPERA / HyP3 / sidecar products found: not indexed (the database
    holds SAFE products only); events read them from their folders."""
    size: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"db": self.db, "registered": self.registered,
                "duplicates": [list(x) for x in self.duplicates],
                "replaced": [list(x) for x in self.replaced], "already": self.already,
                "failed": [list(x) for x in self.failed],
                "terrain_corrected": [list(x) for x in self.terrain_corrected],
                "size": {"scenes": self.size[0], "duplicates": self.size[1]}}


def archive_args(db: str | Path) -> tuple[str, dict[str, Any]]:
    """(dbfile, keyword arguments) for pyroSAR's Archive from a path or a PostgreSQL URL."""
    text = str(db)
    if not re.match(r"^postgres(ql)?(\+\w+)?://", text):
        return str(Path(text).expanduser().resolve()), {}
    url = urlparse(text)
    name = url.path.lstrip("/")
    if not name:
        raise InputError(f"database URL {text!r} names no database; "
                         "use postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
    kwargs: dict[str, Any] = {"postgres": True, "host": url.hostname or "localhost",
                              "port": url.port or 5432}
    if url.username:
        kwargs["user"] = unquote(url.username)
    if url.password:
        kwargs["password"] = unquote(url.password)
    return name, kwargs


def _check_server(host: str, port: int) -> None:
    import socket

    try:
        with socket.create_connection((host, port), timeout=5):
            return
    except OSError as exc:
        raise InputError(f"cannot reach PostgreSQL at {host}:{port} ({_one_line(exc)}); "
                         "start the server or check the URL") from None


def open_archive(db: str | Path) -> Any:
    """pyroSAR's Archive for ``db`` (a SQLite file path or ``postgresql://`` URL)."""
    from .pyrosar_compat import archive

    name, kwargs = archive_args(db)
    if kwargs.get("postgres"):
        _check_server(kwargs["host"], kwargs["port"])
    else:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    # pyroSAR's own clean-up drops .SAFE folders (it tests os.path.isfile); ours is below
    return archive(name, cleanup=False, **kwargs)


def _processing_time(scene: Any) -> Optional[dt.datetime]:
    """Start of the last processing step in the manifest (when the product was made)."""
    from lxml import etree

    try:
        with scene.getFileObj(scene.findfiles("manifest.safe")[0]) as fh:
            root = etree.fromstring(fh.getvalue())
    except (OSError, IndexError, etree.XMLSyntaxError, RuntimeError):
        return None
    starts = [el.get("start") for el in root.iter("{*}processing") if el.get("start")]
    return max((_utc(s) for s in starts), default=None)


def _scene_record(scene: Any) -> SceneRecord:
    path = Path(scene.scene)
    rec = SceneRecord(path=path, product_id=product_id(path), mission=scene.meta.get("sensor"),
                      start=_utc(scene.meta.get("start")), stop=_utc(scene.meta.get("stop")),
                      ipf_version=_float(scene.meta.get("IPF_version")))
    rec.processed = _processing_time(scene)
    return rec


def index_scenes(folders: Sequence[str | Path], db: str | Path,
                 progress: Optional[Callable[[int, int], None]] = None) -> IndexReport:
    """Register every product under ``folders`` in the Archive at ``db``, newest versions first.

    ``progress(done, total)`` is called after each product is read.

    An acquisition already in the main table is replaced when a newer processing version
    arrives; the older one is kept in pyroSAR's ``duplicates`` table.
    """
    from .pyrosar_compat import identify
    from .rtc_products import find_rtc_products

    report = IndexReport(db=str(db))
    scenes = []
    rtc, _ = find_rtc_products(folders)  # HyP3 zips would otherwise fail as "no manifest"
    report.terrain_corrected = [(str(p.path), p.kind) for p in rtc]
    taken = {str(Path(p.path).resolve()) for p in rtc}
    paths = [p for p in find_products(folders) if str(p) not in taken]
    for i, path in enumerate(paths):
        try:
            _check_container(path)
            scenes.append(identify(path))
        except SarflowError as exc:
            report.failed.append((str(path), _one_line(exc)))
        if progress is not None:
            progress(i + 1, len(paths))
    groups: dict[str, list[Any]] = {}
    for s in scenes:
        groups.setdefault(s.outname_base(), []).append(s)
    with open_archive(db) as arch:
        _drop_missing(arch)
        for base, members in sorted(groups.items()):
            _register_group(arch, base, members, report)
        report.size = tuple(arch.size)
    return report


def _drop_missing(arch: Any) -> None:
    for (scene,) in _select(arch, "SELECT scene FROM data"):
        if not Path(scene).exists():
            log.info("dropping %s from the database: file is gone", scene)
            arch.drop_element(scene, with_duplicates=True)


def _select(arch: Any, sql: str, *params: Any) -> list[tuple]:
    from sqlalchemy import text

    names = {f"p{i}": v for i, v in enumerate(params)}
    for i in range(len(params)):
        sql = sql.replace("?", f":p{i}", 1)
    with arch.engine.begin() as conn:
        return [tuple(row) for row in conn.execute(text(sql), names)]


def _register_group(arch: Any, base: str, members: list[Any], report: IndexReport) -> None:
    """Put the newest of ``members`` (and any version already stored) in the main table."""
    existing = [row[0] for row in _select(arch, "SELECT scene FROM data WHERE outname_base = ?", base)]
    from .pyrosar_compat import identify

    ids = {s.scene: s for s in members}
    for scene in existing:
        if scene not in ids and Path(scene).exists():
            ids[scene] = identify(scene)
    records = {scene: _scene_record(s) for scene, s in ids.items()}
    newest = max(records.values(), key=_newness)
    current = existing[0] if existing else None
    if current is not None and current != str(newest.path):
        arch.drop_element(current, with_duplicates=True)
        report.replaced.append((product_id(current), newest.product_id))
    if current != str(newest.path):
        arch.insert(ids[str(newest.path)])
        report.registered.append(newest.product_id)
    else:
        report.already.append(newest.product_id)
    known_dups = {row[0] for row in _select(arch, "SELECT scene FROM duplicates WHERE outname_base = ?", base)}
    for scene, rec in sorted(records.items()):
        if rec is newest:
            continue
        if scene not in known_dups:
            # pyroSAR's insert() registers at most one duplicate per acquisition; write directly
            with arch.engine.begin() as conn:
                conn.execute(arch.duplicates_schema.insert().values(outname_base=base, scene=scene))
        report.duplicates.append((rec.product_id, newest.product_id))


def archive_contents(db: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The main and duplicates tables of the Archive at ``db`` as plain rows."""
    with open_archive(db) as arch:
        data = _select(arch, "SELECT scene, outname_base, orbit, orbitNumber_rel, start, vv, vh "
                             "FROM data ORDER BY start")
        dups = _select(arch, "SELECT outname_base, scene FROM duplicates ORDER BY outname_base")
    keys = ("scene", "outname_base", "orbit", "relative_orbit", "start", "vv", "vh")
    return {"data": [dict(zip(keys, row)) for row in data],
            "duplicates": [{"outname_base": b, "scene": s} for b, s in dups]}
