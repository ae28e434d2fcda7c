"""SNAP's auxiliary data, prepared before gpt runs: one user folder per worker, orbit
files from ``processing.orbits``, EGM96 and SRTM tiles checked.

SNAP downloads auxiliary files (``DownloadableContentImpl``) straight to their final path,
without a temporary name or a timeout: a gpt killed mid-download leaves a truncated zip
that breaks every later run, and two workers sharing ``~/.snap`` can write one file at
once.  So each worker gets its own SNAP user folder (``-Dsnap.userdir``, with ``auxdata/``
and a java tmpdir), claimed with a lock; before each run the files the graph will read are
seeded from the user's own ``~/.snap/auxdata`` (when they are complete), orbit files from
``processing.orbits`` are placed where Apply-Orbit-File looks, and every zip SNAP would
read is tested: a truncated one is removed (and named), never left for the next run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import ProcessingError

EGM96 = Path("dem") / "egm96" / "ww15mgh_b.zip"
"""Where SNAP's EarthGravitationalModel96 reads (and downloads) the geoid grid."""
EGM96_MEMBER = "ww15mgh_b.grd"
EGM96_URL = "https://step.esa.int/auxdata/dem/egm96/ww15mgh_b.zip"
SRTM1 = Path("dem") / "SRTM 1Sec HGT"
"""SNAP's ``SRTM 1Sec HGT`` tiles: ``N41E012.SRTMGL1.hgt.zip``."""
ORBITS = Path("Orbits") / "Sentinel-1"
"""``<type>/<S1A|S1B>/<year>/<month>/<EOF file>``, as SentinelPODOrbitFile searches."""
EOF_NAME = re.compile(r"(?P<mission>S1[A-D])_OPER_AUX_(?P<kind>POEORB|RESORB)_OPOD_\d{8}T\d{6}_"
                      r"V(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})\.EOF(\.zip)?$")


class SnapAuxDataError(ProcessingError):
    """Auxiliary data SNAP needs is missing and may not be downloaded, or is unreadable."""

    transient = False


@dataclass
class AuxReport:
    """What preparing a user folder found and did (``notes``) and what is wrong (``problems``)."""

    userdir: Path
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    orbits: list[Path] = field(default_factory=list)


def auxdata(userdir: Path) -> Path:
    """The auxdata folder of a SNAP user folder."""
    return Path(userdir) / "auxdata"


def jvm_options(userdir: Path) -> list[str]:
    """gpt options that point SNAP at ``userdir`` and a java tmpdir inside it."""
    return [f"-J-Dsnap.userdir={userdir}", f"-J-Djava.io.tmpdir={Path(userdir) / 'tmp'}"]


@contextlib.contextmanager
def worker_userdir(root: Path, slots: int = 256) -> Iterator[Path]:
    """Claim a free ``root/worker-<i>`` SNAP user folder for this run (a file lock held
    while the block runs; the folder, and what SNAP downloaded into it, is kept)."""
    import fcntl

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(slots):
        fh = open(root / f"worker-{i}.lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            continue
        folder = root / f"worker-{i}"
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        auxdata(folder).mkdir(exist_ok=True)
        try:
            yield folder
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
        return
    raise ProcessingError(f"all {slots} SNAP user folders under {root} are in use; remove "
                          "stale worker-*.lock files or run fewer workers")


def zip_problem(path: Path, member: str | None = None) -> str | None:
    """Why the zip ``path`` cannot be read (truncated, not a zip, CRC error), or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            if member is not None and member not in zf.namelist():
                return f"has no {member}"
            bad = zf.testzip()
            if bad is not None:
                return f"member {bad} is corrupt"
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"is not a complete zip ({exc})"
    return None


def remove_corrupt(userdir: Path, report: AuxReport | None = None) -> list[Path]:
    """Find every unreadable zip SNAP would read under ``userdir``'s auxdata (EGM96, DEM
    tiles, orbit files), delete it, and name it in ``report``; the removed paths."""
    removed: list[Path] = []
    root = auxdata(userdir)
    for path in sorted(list((root / "dem").rglob("*.zip")) + list((root / "Orbits").rglob("*.zip"))):
        why = zip_problem(path, EGM96_MEMBER if path.name == EGM96.name else None)
        if why is None:
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
        if report is not None:
            report.removed.append(path)
            report.notes.append(f"removed {path}: it {why} (a download cut short); SNAP "
                                f"downloads it again")
    return removed


def _place(src: Path, dest: Path) -> None:
    """Put ``src`` at ``dest``: a hard link, else a copy to a temporary name then renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def user_auxdata() -> Path:
    """The user's own SNAP auxdata folder (``~/.snap/auxdata``)."""
    return Path(os.path.expanduser("~")) / ".snap" / "auxdata"


def seed(userdir: Path, relative: Path, report: AuxReport, source_root: Path | None = None,
         member: str | None = None) -> bool:
    """Copy ``relative`` from the user's auxdata into ``userdir``'s when missing there and
    complete in the source; True when ``userdir`` now has a readable copy."""
    dest = auxdata(userdir) / relative
    if dest.is_file():
        return True
    src = (source_root or user_auxdata()) / relative
    if not src.is_file():
        return False
    why = zip_problem(src, member)
    if why is not None:
        report.problems.append(f"{src} {why}: delete it (SNAP downloads it again) or copy a "
                               f"complete one there")
        return False
    _place(src, dest)
    report.notes.append(f"seeded {relative} from {src}")
    return True


def srtm1_tiles(bounds: Sequence[float]) -> list[str]:
    """Names of SNAP's SRTM 1Sec tiles covering (west, south, east, north)."""
    import math

    w, s, e, n = bounds
    names = []
    for lat in range(math.floor(s), math.floor(n - 1e-12) + 1):
        for lon in range(math.floor(w), math.floor(e - 1e-12) + 1):
            names.append(f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}"
                         f"{'E' if lon >= 0 else 'W'}{abs(lon):03d}.SRTMGL1.hgt.zip")
    return names


def orbit_files(source: Path | None) -> list[Path]:
    """EOF files (``.EOF`` / ``.EOF.zip``) in ``source`` (a folder, searched recursively,
    or one file)."""
    if source is None:
        return []
    source = Path(source)
    if source.is_file():
        return [source] if EOF_NAME.search(source.name) else []
    return sorted(p for p in source.rglob("*") if p.is_file() and EOF_NAME.search(p.name))


def _stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S")


def covering_orbits(files: Iterable[Path], mission: str, when: dt.datetime) -> list[Path]:
    """The EOF files of ``mission`` whose validity covers ``when`` (POEORB first)."""
    hits = []
    for f in files:
        m = EOF_NAME.search(f.name)
        if m and m["mission"] == mission and _stamp(m["start"]) <= when <= _stamp(m["stop"]):
            hits.append((m["kind"] != "POEORB", f.name, f))
    return [f for _, _, f in sorted(hits)]


def place_orbits(userdir: Path, files: Sequence[Path], mission: str, when: dt.datetime,
                 report: AuxReport) -> list[Path]:
    """Put the EOF files covering the scene where Apply-Orbit-File looks:
    ``Orbits/Sentinel-1/<POEORB|RESORB>/<mission>/<year>/<month>/`` of the scene's time."""
    placed = []
    for f in covering_orbits(files, mission, when):
        kind = EOF_NAME.search(f.name)["kind"]
        dest = (auxdata(userdir) / ORBITS / kind / mission / f"{when:%Y}" / f"{when:%m}" / f.name)
        if not dest.is_file() or dest.stat().st_size != f.stat().st_size:
            _place(f, dest)
        placed.append(dest)
    report.orbits.extend(placed)
    if placed:
        report.notes.append(f"orbit files from processing.orbits: {', '.join(p.name for p in placed)}")
    return placed


def prepare(userdir: Path, *, mission: str, when: dt.datetime, orbit_source: Path | None,
            orbit_kind: str, srtm_bounds: Sequence[float] | None, allow_downloads: bool,
            source_root: Path | None = None) -> AuxReport:
    """Make ``userdir``'s auxdata ready for one scene (see the module docstring).

    Raises :class:`SnapAuxDataError` when something SNAP needs is missing and downloads are
    not allowed (``processing.snap.allow_downloads: false``).
    """
    report = AuxReport(userdir=Path(userdir))
    remove_corrupt(userdir, report)
    needed: list[str] = []
    if not seed(userdir, EGM96, report, source_root, EGM96_MEMBER):
        needed.append(f"{auxdata(userdir) / EGM96} (from {EGM96_URL})")
    for tile in srtm1_tiles(srtm_bounds) if srtm_bounds is not None else []:
        if not seed(userdir, SRTM1 / tile, report, source_root):
            needed.append(f"{auxdata(userdir) / SRTM1 / tile}")
    files = orbit_files(orbit_source)
    home = (source_root or user_auxdata()) / ORBITS / orbit_kind / mission / f"{when:%Y}" / f"{when:%m}"
    if home.is_dir():
        files += [p for p in home.iterdir() if EOF_NAME.search(p.name)
                  and (p.suffix == ".EOF" or zip_problem(p) is None)]
    placed = place_orbits(userdir, files, mission, when, report)
    if not any(orbit_kind in p.name for p in placed):
        needed.append(f"a {orbit_kind} orbit file for {mission} {when:%Y-%m-%d %H:%M} in "
                      f"processing.orbits")
    if needed and not allow_downloads:
        raise SnapAuxDataError(
            f"SNAP needs {needed[0]}"
            + (f" (and {len(needed) - 1} more)" if len(needed) > 1 else "")
            + " and processing.snap.allow_downloads is false; put the file there (or in "
              "~/.snap/auxdata) or allow downloads")
    if needed:
        report.notes.append(f"SNAP will download {len(needed)} auxiliary file(s): "
                            + "; ".join(needed[:3]))
    return report
