"""The one place sarflow imports pyroSAR, with the two small shims it needs here.

pyroSAR is the bridge to ESA SNAP (graph editing) and a robust Sentinel-1 metadata reader
(``identify``).  Its newest release (0.39) needs GDAL >= 3.8; this machine class has GDAL
3.6.2, on which pyroSAR 0.33.x with spatialist 0.16.x work once two gaps are bridged.  Both
shims are feature-detected, so on a machine that needs neither they do nothing:

1. **SQLite extensions.**  spatialist (imported by pyroSAR) refuses to import when the
   standard library's ``sqlite3`` cannot load extensions (pyenv builds by default).  It then
   falls back to ``from pysqlite2 import dbapi2``; we make ``pysqlite2`` / ``pysqlite2.dbapi2``
   resolve to ``pysqlite3`` (package ``pysqlite3-binary``), which can.  pyroSAR's ``Archive``
   goes through SQLAlchemy, whose sqlite dialect imports the standard ``sqlite3``: while
   :func:`archive` creates its engine, that dialect is handed ``pysqlite3`` instead.  The
   Archive also needs SpatiaLite (Debian: ``libsqlite3-mod-spatialite``).
2. **``ogr.Geometry.IsClockwise``** (GDAL >= 3.8) is called by ``ID.geometry()`` /
   ``ID.bbox()``.  When missing we add a stand-in computing the ring's signed area
   (shoelace formula), which is what OGR's implementation decides on.

Everything else in sarflow calls :func:`pyrosar`, :func:`identify`, :func:`archive`,
:func:`workflow`, :func:`parse_recipe` or :func:`is_consistent` from here, never pyroSAR.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
from pathlib import Path
from typing import Any, Iterator

from .errors import CorruptInputError, DependencyError, InputError

SUPPORTED = ">=0.24,<0.34 with GDAL 3.6/3.7; any release with GDAL >= 3.8"
"""pyroSAR releases known to work (0.34+ call GDAL >= 3.8 APIs: MEM vector driver, ...)."""


def _stdlib_sqlite_loads_extensions() -> bool:
    """True when the interpreter's own sqlite3 supports ``enable_load_extension``."""
    try:
        import sqlite3
    except ImportError:
        return False
    try:
        conn = sqlite3.connect(":memory:")
        conn.enable_load_extension(True)
        conn.close()
        return True
    except (AttributeError, sqlite3.OperationalError):
        return False


def _alias_pysqlite2() -> bool:
    """Make ``pysqlite2.dbapi2`` resolve to ``pysqlite3.dbapi2`` if needed; True if aliased."""
    if _stdlib_sqlite_loads_extensions():
        return False
    try:
        import pysqlite2.dbapi2  # noqa: F401 - a real pysqlite2 is fine as it is
        return False
    except ImportError:
        pass
    try:
        dbapi2 = importlib.import_module("pysqlite3.dbapi2")
    except ImportError:
        raise DependencyError(
            "this Python's sqlite3 cannot load extensions, which pyroSAR needs; "
            "install pysqlite3-binary (pip install pysqlite3-binary)") from None
    package = types.ModuleType("pysqlite2")
    package.__doc__ = "sarflow alias: pysqlite3 standing in for pysqlite2 (see pyrosar_compat)"
    package.dbapi2 = dbapi2
    package.__path__ = []  # mark as a package so 'import pysqlite2.dbapi2' works
    sys.modules["pysqlite2"] = package
    sys.modules["pysqlite2.dbapi2"] = dbapi2
    return True


def _ring_is_clockwise(ring: Any) -> bool:
    """OGR's ``IsClockwise`` for a ring: True when its signed (shoelace) area is negative."""
    pts = ring.GetPoints() or []
    area2 = 0.0
    for (x0, y0, *_), (x1, y1, *_) in zip(pts, pts[1:] + pts[:1]):
        area2 += x0 * y1 - x1 * y0
    return area2 < 0


def _patch_ogr() -> bool:
    """Add ``ogr.Geometry.IsClockwise`` when this GDAL lacks it; True if patched."""
    from osgeo import ogr

    if hasattr(ogr.Geometry, "IsClockwise"):
        return False
    ogr.Geometry.IsClockwise = _ring_is_clockwise
    return True


SHIMS: dict[str, bool] = {}
"""Which shims :func:`pyrosar` applied on this machine (``pysqlite2``, ``IsClockwise``)."""


@functools.lru_cache(maxsize=1)
def pyrosar() -> types.ModuleType:
    """The ``pyroSAR`` module, imported once with the shims this machine needs."""
    SHIMS["pysqlite2"] = _alias_pysqlite2()
    SHIMS["IsClockwise"] = _patch_ogr()
    try:
        module = importlib.import_module("pyroSAR")
    except ImportError as exc:
        raise DependencyError(f"pyroSAR is not importable ({exc}); install pyroSAR{SUPPORTED.split(' ')[0]} "
                              "with spatialist and SQLAlchemy<2") from None
    return module


def version() -> str:
    """The installed pyroSAR version string."""
    from importlib.metadata import version as _v

    return _v("pyroSAR")


def identify(path: str | Path) -> Any:
    """pyroSAR's metadata handler (``pyroSAR.drivers.ID``) for a scene (.zip or .SAFE)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"scene not found: {p}")
    mod = pyrosar()
    try:
        return mod.identify(str(p))
    except RuntimeError as exc:
        raise CorruptInputError(f"{p}: not a readable SAR product ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - pyroSAR raises many types on broken input
        raise CorruptInputError(f"{p}: cannot read product metadata "
                                f"({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def _sqlalchemy_uses_pysqlite3() -> Iterator[None]:
    """While active, new SQLAlchemy sqlite engines use pysqlite3 (extension loading) if needed."""
    if _stdlib_sqlite_loads_extensions():
        yield
        return
    from sqlalchemy.dialects.sqlite import pysqlite as sa_pysqlite

    dialect = sa_pysqlite.SQLiteDialect_pysqlite
    original = dialect.__dict__["dbapi"]
    dialect.dbapi = classmethod(lambda cls: importlib.import_module("pysqlite3.dbapi2"))
    try:
        yield
    finally:
        dialect.dbapi = original


def archive(dbfile: str | Path, **kwargs: Any) -> Any:
    """pyroSAR's scene ``Archive`` (SQLite + SpatiaLite) at ``dbfile``; use as a context manager."""
    mod = pyrosar()
    try:
        with _sqlalchemy_uses_pysqlite3():
            return mod.drivers.Archive(str(dbfile), **kwargs)
    except RuntimeError as exc:
        if "spatialite" in str(exc).lower():
            raise DependencyError("pyroSAR's Archive needs SpatiaLite: apt-get install "
                                  "libsqlite3-mod-spatialite") from None
        raise


def _auxil() -> types.ModuleType:
    pyrosar()
    return importlib.import_module("pyroSAR.snap.auxil")


def workflow(xmlfile: str | Path) -> Any:
    """A pyroSAR ``Workflow`` (an editable SNAP graph) read from ``xmlfile``."""
    p = Path(xmlfile)
    if not p.is_file():
        raise InputError(f"graph not found: {p}")
    try:
        return _auxil().Workflow(str(p))
    except Exception as exc:  # noqa: BLE001 - ElementTree and pyroSAR errors alike
        raise CorruptInputError(f"{p}: not a SNAP graph ({type(exc).__name__}: {exc})") from None


def parse_recipe(name: str) -> Any:
    """One of pyroSAR's bundled graph recipes (``base``, ``blank``) as a ``Workflow``."""
    return _auxil().parse_recipe(name)


def is_consistent(flow: Any) -> bool:
    """pyroSAR's graph consistency check (every source exists, every node reaches Write)."""
    return bool(_auxil().is_consistent(flow))
