"""Sentinel-1 orbit files (Earth Explorer ``.EOF``): precise (POEORB) and restituted (RESORB).

:func:`read_eof` parses one file into an :class:`~sarflow.sentinel1.orbit.Orbit`;
:func:`find_eof` picks, from a file or a folder, the file whose state vectors cover a time
span, precise before restituted, newest first.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lxml import etree

from ..errors import CorruptInputError, InputError
from .orbit import Orbit, as_utc

_NAME = re.compile(r"(S1[A-D_])_OPER_AUX_(POEORB|RESORB)_OPOD_(\d{8}T\d{6})_V(\d{8}T\d{6})_(\d{8}T\d{6})")
_MARGIN = 30.0  # s of state vectors wanted either side of a product


@dataclass(frozen=True)
class EofInfo:
    """What an EOF file's name says: mission, kind, production time and validity."""

    path: Path
    mission: str
    kind: str  # POEORB or RESORB
    created: _dt.datetime
    start: _dt.datetime
    stop: _dt.datetime

    @property
    def rank(self) -> tuple[int, _dt.datetime]:
        """Sort key: precise first, then the newest production."""
        return (0 if self.kind == "POEORB" else 1, -self.created.timestamp())


def _stamp(text: str) -> _dt.datetime:
    return _dt.datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=_dt.timezone.utc)


def eof_info(path: str | os.PathLike) -> EofInfo | None:
    """The name fields of an EOF file, or None if the name is not an S1 orbit file's."""
    p = Path(path)
    m = _NAME.search(p.name)
    if not m:
        return None
    return EofInfo(p, m.group(1), m.group(2), _stamp(m.group(3)), _stamp(m.group(4)),
                   _stamp(m.group(5)))


def read_eof(path: str | os.PathLike) -> Orbit:
    """All state vectors of an EOF file (UTC times, ECEF metres); source names the file."""
    p = Path(path)
    try:
        root = etree.parse(str(p)).getroot()
    except OSError as exc:
        raise InputError(f"{p}: cannot read orbit file ({exc})") from None
    except etree.XMLSyntaxError as exc:
        raise CorruptInputError(f"{p}: broken orbit file ({exc}); download it again") from None
    osvs = root.findall(".//Data_Block/List_of_OSVs/OSV")
    if len(osvs) < 2:
        raise CorruptInputError(f"{p}: not a Sentinel-1 orbit file (fewer than 2 state vectors)")
    try:
        times = [as_utc(o.findtext("UTC")) for o in osvs]
        vals = np.array([[float(o.findtext(t)) for t in ("X", "Y", "Z", "VX", "VY", "VZ")]
                         for o in osvs])
    except (TypeError, ValueError) as exc:
        raise CorruptInputError(f"{p}: unreadable state vector ({exc})") from None
    kind = root.findtext(".//Fixed_Header/File_Type") or ""
    kind = kind.replace("AUX_", "") if kind else (eof_info(p).kind if eof_info(p) else "EOF")
    return Orbit.from_datetimes(times, vals[:, :3], vals[:, 3:], source=f"{kind} {p.name}")


def candidates(path: str | os.PathLike) -> list[Path]:
    """EOF files named by ``path``: the file itself, or every ``*.EOF`` in a folder tree."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.upper() == ".EOF")
    raise InputError(f"{p}: no such orbit file or folder")


def find_eof(path: str | os.PathLike, mission: str, start: _dt.datetime, stop: _dt.datetime
             ) -> tuple[Orbit | None, str]:
    """The best orbit covering [start, stop] for ``mission`` from a file or folder, with a
    note; (None, reason) when no file covers it."""
    start, stop = as_utc(start), as_utc(stop)
    lo = start - _dt.timedelta(seconds=_MARGIN)
    hi = stop + _dt.timedelta(seconds=_MARGIN)
    infos = []
    for cand in candidates(path):
        info = eof_info(cand)
        if info is None:
            continue
        if info.mission not in (mission, "S1_") or not (info.start <= lo and hi <= info.stop):
            continue
        infos.append(info)
    for info in sorted(infos, key=lambda i: i.rank):
        orbit = read_eof(info.path)
        if orbit.covers(orbit.to_seconds(lo), orbit.to_seconds(hi)):
            t0, t1 = orbit.to_seconds(lo), orbit.to_seconds(hi)
            return orbit.subset(t0, t1, margin=12), f"{info.kind} {info.path.name}"
    return None, (f"no {mission} orbit file in {path} covers {start:%Y-%m-%dT%H:%M:%S}"
                  f"..{stop:%H:%M:%S}; using the annotation's state vectors")
