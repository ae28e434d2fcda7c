"""sarflow.pyrosar_compat: pyroSAR imports and reads real Sentinel-1 metadata on this GDAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from sarflow.errors import CorruptInputError, InputError
from sarflow.pyrosar_compat import _ring_is_clockwise, archive, identify, is_consistent, parse_recipe


def _ring(points: list[tuple[float, float]]):
    from osgeo import ogr

    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in points:
        ring.AddPoint_2D(x, y)
    ring.CloseRings()
    return ring


def test_isclockwise_stand_in_matches_winding() -> None:
    """Unit square listed counter-clockwise has area +1 (not clockwise); reversed, clockwise."""
    ccw = [(0, 0), (1, 0), (1, 1), (0, 1)]
    assert _ring_is_clockwise(_ring(ccw)) is False
    assert _ring_is_clockwise(_ring(ccw[::-1])) is True


@pytest.mark.parametrize("name, orbit, rel, pols, start, ipf", [
    ("S1A_IW_GRDH_1SDV_20150203T043109_20150203T043134_004454_00574F_6D00.zip", "D", 7,
     ["VV", "VH"], "20150203T043109", 2.7),
    ("S1A_IW_GRDH_1SDV_20150222T170750_20150222T170815_004739_005DD8_3768.zip", "A", 117,
     ["VV", "VH"], "20150222T170750", 2.36),
    ("S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip", "D", 79,
     ["VV", "VH"], "20210119T031653", 3.31),
])
def test_identify_fixture_zips(fixtures_dir: Path, name, orbit, rel, pols, start, ipf) -> None:
    """identify() gives pass, relative orbit (= (abs - 73) % 175 + 1 for S1A), polarisations."""
    scene = identify(fixtures_dir / "s1" / name)
    absolute = int(name.split("_")[6])
    assert (absolute - 73) % 175 + 1 == rel
    assert scene.orbit == orbit
    assert scene.meta["orbitNumber_rel"] == rel
    assert scene.polarizations == pols
    assert scene.start == start
    assert scene.meta["IPF_version"] == pytest.approx(ipf)


def test_identify_geometry_uses_shim(fixtures_dir: Path) -> None:
    """ID.bbox() (which calls IsClockwise) works; the footprint contains the scene centre."""
    scene = identify(fixtures_dir / "s1" / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip")
    ext = scene.bbox().extent
    lons = [c[0] for c in scene.meta["coordinates"]]
    lats = [c[1] for c in scene.meta["coordinates"]]
    assert ext["xmin"] == pytest.approx(min(lons)) and ext["xmax"] == pytest.approx(max(lons))
    assert ext["ymin"] == pytest.approx(min(lats)) and ext["ymax"] == pytest.approx(max(lats))
    geom = scene.geometry()
    assert geom.getArea() > 1.0  # a GRD scene spans several square degrees


def test_identify_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        identify(tmp_path / "missing.zip")
    bad = tmp_path / "S1A_IW_GRDH_1SDV_20150203T043109_20150203T043134_004454_00574F_6D00.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorruptInputError):
        identify(bad)


@pytest.mark.no_tensorflow
def test_archive_and_recipes(fixtures_dir: Path, tmp_path: Path) -> None:
    """pyroSAR's Archive (SQLAlchemy + SpatiaLite) indexes the fixture zips; recipes parse."""
    zips = sorted((fixtures_dir / "s1").glob("*.zip"))
    with archive(tmp_path / "scenes.db") as db:
        db.insert([identify(z) for z in zips])
        assert db.size == (3, 0)
        asc = db.select(orbit="A")
    assert [Path(p).name for p in asc] == [zips[1].name]
    flow = parse_recipe("base")
    assert flow.ids == ["Read", "Apply-Orbit-File", "Calibration", "Write"]
    assert is_consistent(flow)


def test_shims_are_feature_detected(monkeypatch) -> None:
    """Where the interpreter's sqlite3 loads extensions / OGR has IsClockwise, nothing is patched."""
    from sarflow import pyrosar_compat as pc

    pc.pyrosar()
    monkeypatch.setattr(pc, "_stdlib_sqlite_loads_extensions", lambda: True)
    assert pc._alias_pysqlite2() is False
    assert pc._patch_ogr() is False  # present now (patched or native), so left alone
    import sys

    if pc.SHIMS["pysqlite2"]:
        assert sys.modules["pysqlite2.dbapi2"] is sys.modules["pysqlite3.dbapi2"]
