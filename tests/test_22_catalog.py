"""The scene catalog on the real fixture products: names, selection by window and area,
coverage, duplicates (newest processing version kept), unreadable products, the pyroSAR
Archive on SpatiaLite, and `sarflow scenes index|list`."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from shapely.geometry import Polygon, box

from sarflow.catalog import (archive_args, archive_contents, deduplicate, index_scenes,
                             parse_name, read_record, relative_orbit, scan_scenes,
                             select_scenes, selection_warnings)
from sarflow.cli import cli
from sarflow.config import load_config

S1B = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
S1A_OLD = "S1A_IW_GRDH_1SDV_20150203T043109_20150203T043134_004454_00574F_6D00"
ROME = [12.45, 41.95, 12.55, 42.05]


def _manifest(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("manifest.safe"))
            return zf.read(name).decode()
    return (path / "manifest.safe").read_text()


def _manifest_footprint(path: Path) -> Polygon:
    """The footprint straight from the manifest's gml:coordinates ("lat,lon lat,lon ...")."""
    text = re.search(r"<gml:coordinates>([^<]+)</gml:coordinates>", _manifest(path)).group(1)
    pts = [tuple(map(float, p.split(","))) for p in text.split()]
    return Polygon([(lon, lat) for lat, lon in pts])


def make_version(src: Path, dst_dir: Path, uid: str, ipf: str, processed: str) -> Path:
    """Another processing version of ``src``: new unique id, IPF version, processing time."""
    old = src.stem
    new = old[:-4] + uid
    dst = dst_dir / f"{new}.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("manifest.safe"):
                text = data.decode()
                text = re.sub(r'(name="Sentinel-1 IPF" version=")[0-9.]+"', rf'\g<1>{ipf}"', text)
                text = re.sub(r'(<safe:processing name="GRD Post Processing" start=")[^"]+"',
                              rf'\g<1>{processed}"', text)
                data = text.encode()
            zout.writestr(info.filename.replace(old, new), data)
    return dst


def _event(tmp_path: Path, scenes: list, bbox=ROME, pre=("2021-12-01", "2021-12-24"),
           post=("2021-12-25", "2022-01-31"), time="2021-12-24T12:00:00Z") -> Path:
    data = {"name": "fixture_event", "event": {"time": time}, "area": {"bbox": list(bbox)},
            "windows": {"pre": list(pre), "post": list(post)},
            "scenes": [str(s) for s in scenes], "dem": str(tmp_path / "dem.tif"),
            "output": str(tmp_path / "work")}
    p = tmp_path / "event.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


# -- names ------------------------------------------------------------------------------

def test_names_and_relative_orbits_match_the_manifests(fixtures_dir: Path) -> None:
    products = sorted((fixtures_dir / "s1").iterdir())
    assert len(products) == 4
    for p in products:
        fields = parse_name(p.name)
        manifest = _manifest(p)
        rel = int(re.search(r'relativeOrbitNumber type="start">(\d+)<', manifest).group(1))
        absolute = int(re.search(r'orbitNumber type="start">(\d+)<', manifest).group(1))
        assert fields["absolute_orbit"] == absolute
        assert fields["relative_orbit"] == rel, p.name
        assert fields["polarisations"] == ["VV", "VH"]  # 1SDV
    f = parse_name(S1B + ".SAFE")
    assert f["mission"] == "S1B" and f["unique_id"] == "5371" and f["datatake"] == "039993"
    assert f["start"] == dt.datetime(2021, 12, 23, 5, 11, 22, tzinfo=dt.timezone.utc)
    assert relative_orbit("S1A", 4454) == 7 and relative_orbit("S1B", 30148) == 22
    assert parse_name("S2A_MSIL1C_20210101T000000_N0209_R000_T31TCJ_20210101T000000.zip") is None


def test_read_record_of_each_fixture(fixtures_dir: Path) -> None:
    expect = {"20150203": ("DESCENDING", 7), "20150222": ("ASCENDING", 117),
              "20210119": ("DESCENDING", 79), "20211223": ("DESCENDING", 22)}
    for p in sorted((fixtures_dir / "s1").iterdir()):
        rec = read_record(p)
        assert rec.ok, rec.reason
        assert (rec.pass_direction, rec.relative_orbit) == expect[p.name[17:25]]
        assert rec.start.strftime("%Y%m%dT%H%M%S") == p.name[17:32]
        assert "VV" in rec.polarisations
        # the footprint is the manifest's own polygon
        truth = _manifest_footprint(p)
        assert rec.footprint.symmetric_difference(truth).area < 1e-3 * truth.area


# -- selection --------------------------------------------------------------------------

def test_select_by_window_and_area_with_coverage(tmp_path: Path, fixtures_dir: Path) -> None:
    cfg = load_config(_event(tmp_path, [fixtures_dir / "s1"]))
    recs = select_scenes(cfg)
    assert [r.product_id for r in recs] == [S1B]
    r = recs[0]
    assert (r.window, r.pass_direction, r.relative_orbit) == ("pre", "DESCENDING", 22)
    assert r.coverage == pytest.approx(1.0)

    # an area straddling the footprint's west edge: coverage equals the shapely truth
    bbox = (11.0, 41.5, 12.5, 41.7)
    truth = _manifest_footprint(fixtures_dir / "s1" / f"{S1B}.SAFE").intersection(box(*bbox)).area \
        / box(*bbox).area
    assert 0.2 < truth < 0.9
    cfg = load_config(_event(tmp_path, [fixtures_dir / "s1"], bbox=bbox))
    (r,) = select_scenes(cfg)
    assert r.coverage == pytest.approx(truth, rel=1e-3)
    warnings = selection_warnings(cfg, [r])
    assert f"relative orbit 22 (DESCENDING) covers only {100 * truth:.0f}% of the area" in warnings
    assert any(w.startswith("no ASCENDING scene in the pre-event window") for w in warnings)
    assert any(w.startswith("no DESCENDING scene in the post-event window") for w in warnings)
    assert not any(w.startswith("no DESCENDING scene in the pre-event") for w in warnings)

    # the post window holds the scene instead when the event is earlier
    cfg = load_config(_event(tmp_path, [fixtures_dir / "s1"], pre=("2021-11-01", "2021-12-01"),
                             post=("2021-12-02", "2021-12-31"), time="2021-12-01T18:00:00Z"))
    assert [(r.product_id, r.window) for r in select_scenes(cfg)] == [(S1B, "post")]
    # an area the scene does not reach selects nothing
    cfg = load_config(_event(tmp_path, [fixtures_dir / "s1"], bbox=(100.0, 10.0, 100.1, 10.1)))
    assert select_scenes(cfg) == []


def test_corrupt_zip_is_failed_with_one_line_reason(tmp_path: Path, fixtures_dir: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copytree(fixtures_dir / "s1" / f"{S1B}.SAFE", scenes / f"{S1B}.SAFE")
    # a truncated download of a product acquired inside the post window
    src = (fixtures_dir / "s1" / f"{S1A_OLD}.zip").read_bytes()
    bad_name = "S1A_IW_GRDH_1SDV_20211230T051122_20211230T051147_041234_04E5C1_ABCD.zip"
    (scenes / bad_name).write_bytes(src[: len(src) // 3])
    # a zip without a SAFE product inside
    junk = "S1A_IW_GRDH_1SDV_20211226T051122_20211226T051147_041200_04E5C0_0000.zip"
    with zipfile.ZipFile(scenes / junk, "w") as zf:
        zf.writestr("readme.txt", "not a product")
    cfg = load_config(_event(tmp_path, [scenes]))
    recs = select_scenes(cfg)
    by_id = {r.product_id: r for r in recs}
    assert by_id[S1B].ok
    bad = by_id[bad_name[:-4]]
    assert bad.status == "failed" and bad.window == "post"
    assert "\n" not in bad.reason and "not a readable zip" in bad.reason and bad_name in bad.reason
    assert "no manifest.safe" in by_id[junk[:-4]].reason
    res = CliRunner().invoke(cli, ["scenes", "list", str(tmp_path / "event.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [s["status"] for s in data["scenes"]].count("failed") == 2
    assert data["counts"]["DESCENDING"] == {"pre": 1, "post": 0}


def test_duplicates_keep_the_newest_version(tmp_path: Path, fixtures_dir: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    src = fixtures_dir / "s1" / f"{S1A_OLD}.zip"
    shutil.copy(src, scenes)  # IPF 2.70, processed 2016-04-18
    older = make_version(src, scenes, "1234", "002.36", "2015-02-03T09:00:00.000000")
    recs = [read_record(p) for p in sorted(scenes.iterdir())]
    assert {r.ipf_version for r in recs} == {2.36, 2.7}
    kept, dropped = deduplicate(recs)
    assert [r.product_id for r in kept] == [S1A_OLD]
    assert [(a.product_id, b.product_id) for a, b in dropped] == [(older.stem, S1A_OLD)]
    cfg = load_config(_event(tmp_path, [scenes], bbox=(22.0, 38.0, 22.1, 38.1),
                             pre=("2015-01-01", "2015-02-10"), post=("2015-02-11", "2015-03-01"),
                             time="2015-02-10T12:00:00Z"))
    assert [r.product_id for r in select_scenes(cfg)] == [S1A_OLD]
    scan = scan_scenes(cfg)
    assert [a.product_id for a, _ in scan.duplicates] == [older.stem]


# -- the pyroSAR Archive (SpatiaLite) ---------------------------------------------------

@pytest.mark.filterwarnings("ignore:The 'management' parameter:PendingDeprecationWarning")
@pytest.mark.no_tensorflow
def test_index_on_spatialite_keeps_newest(tmp_path: Path, fixtures_dir: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    src = fixtures_dir / "s1" / f"{S1A_OLD}.zip"
    shutil.copy(src, scenes)
    older = make_version(src, scenes, "1234", "002.36", "2015-02-03T09:00:00.000000")
    (scenes / "S1A_IW_GRDH_1SDV_20150301T043109_20150301T043134_004454_00574F_BAD0.zip").write_bytes(b"x" * 100)
    db = tmp_path / "scenes.db"
    report = index_scenes([scenes, fixtures_dir / "s1" / f"{S1B}.SAFE"], db)
    assert sorted(report.registered) == sorted([S1A_OLD, S1B])
    assert report.duplicates == [(older.stem, S1A_OLD)]
    assert len(report.failed) == 1 and "not a readable zip" in report.failed[0][1]
    assert report.size == (2, 1)

    # a newer reprocessing arrives: it replaces the one in the main table
    newer = make_version(src, scenes, "ABCD", "003.10", "2020-06-01T00:00:00.000000")
    report = index_scenes([scenes], db)
    assert report.replaced == [(S1A_OLD, newer.stem)]
    content = archive_contents(db)
    main = {Path(r["scene"]).name: r for r in content["data"]}
    assert set(main) == {newer.name, f"{S1B}.SAFE"}
    assert main[newer.name]["relative_orbit"] == 7 and main[newer.name]["orbit"] == "D"
    assert sorted(Path(d["scene"]).name for d in content["duplicates"]) == [older.name, src.name]

    # indexing again changes nothing; the CLI reports the same database
    res = CliRunner().invoke(cli, ["scenes", "index", str(scenes), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["registered"] == [] and data["already"] == [newer.stem]
    assert data["size"] == {"scenes": 2, "duplicates": 2}

    # the newest file is deleted: the next newest takes its place
    newer.unlink()
    report = index_scenes([scenes], db)
    content = archive_contents(db)
    assert sorted(Path(r["scene"]).name for r in content["data"]) == sorted([src.name, f"{S1B}.SAFE"])
    assert [Path(d["scene"]).name for d in content["duplicates"]] == [older.name]


@pytest.mark.filterwarnings("ignore:The 'management' parameter:PendingDeprecationWarning")
@pytest.mark.no_tensorflow
def test_index_lists_terrain_corrected_products_without_failing_them(tmp_path: Path,
                                                                    fixtures_dir: Path) -> None:
    """A HyP3 zip (no manifest.safe) and OPERA GeoTIFFs beside a GRD: the GRD is indexed,
    the other two are listed as terrain-corrected, none is reported failed."""
    import numpy as np

    from tests.rasters import write_geotiff

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(fixtures_dir / "s1" / f"{S1A_OLD}.zip", scenes)
    for f in sorted((fixtures_dir / "rtc_stack").rglob("*_20240123T*_V[VH]_tv_cropped.tif")):
        (scenes / f.name).symlink_to(f)
    name = "S1A_IW_20150309T173017_DVP_RTC20_G_gpunem_1A2B"
    tif = write_geotiff(tmp_path / f"{name}_VV.tif", np.ones((20, 20), np.float32),
                        (600000.0, 4800000.0), 20.0, 32631)
    with zipfile.ZipFile(scenes / f"{name}.zip", "w") as zf:
        zf.write(tif, f"{name}/{name}_VV.tif")
    db = tmp_path / "scenes.db"
    report = index_scenes([scenes], db)
    assert report.registered == [S1A_OLD] and report.failed == []
    assert sorted(k for _, k in report.terrain_corrected) == ["HYP3_RTC", "OPERA_RTC"]
    assert report.size == (1, 0)
    res = CliRunner().invoke(cli, ["scenes", "index", str(scenes), "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "not indexed: 2 terrain-corrected products (HYP3_RTC 1, OPERA_RTC 1)" in " ".join(res.output.split())


def test_archive_args_for_files_and_postgres_urls(tmp_path: Path) -> None:
    name, kw = archive_args(tmp_path / "x.db")
    assert name == str(tmp_path / "x.db") and kw == {}
    name, kw = archive_args("postgresql://alice:s%40cret@db.example.org:6543/scenes")
    assert name == "scenes"
    assert kw == {"postgres": True, "host": "db.example.org", "port": 6543, "user": "alice",
                  "password": "s@cret"}
    res = CliRunner().invoke(cli, ["scenes", "index", str(tmp_path), "--db",
                                   "postgresql://u:p@127.0.0.1:1/none"])
    assert res.exit_code == 2 and "cannot reach PostgreSQL at 127.0.0.1:1" in res.output


def test_scenes_list_table(tmp_path: Path, fixtures_dir: Path) -> None:
    path = _event(tmp_path, [fixtures_dir / "s1"], bbox=(11.0, 41.5, 12.5, 41.7))
    res = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["scenes", "list", str(path)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert S1B in res.output
    assert "1 scenes selected, 0 unreadable" in out and "DESCENDING │ pre │ 1 scene" in out
    assert "no ASCENDING scene in the pre-event window (2021-12-01 .. 2021-12-24)" in out
    assert "relative orbit 22 (DESCENDING) covers only" in out


def test_area_from_a_polygon_file(tmp_path: Path, fixtures_dir: Path) -> None:
    """A triangle half inside the footprint: coverage is measured on the polygon, not its bbox."""
    fp = _manifest_footprint(fixtures_dir / "s1" / f"{S1B}.SAFE")
    tri = Polygon([(11.0, 41.5), (12.5, 41.5), (12.5, 41.7)])
    geojson = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
               "geometry": {"type": "Polygon", "coordinates": [list(tri.exterior.coords)]}}]}
    (tmp_path / "area.geojson").write_text(json.dumps(geojson))
    path = _event(tmp_path, [fixtures_dir / "s1"])
    data = yaml.safe_load(path.read_text())
    data["area"] = {"file": str(tmp_path / "area.geojson")}
    path.write_text(yaml.safe_dump(data))
    (r,) = select_scenes(load_config(path))
    truth = fp.intersection(tri).area / tri.area
    assert r.coverage == pytest.approx(truth, rel=1e-3)
    assert abs(truth - fp.intersection(box(*tri.bounds)).area / box(*tri.bounds).area) > 0.05
