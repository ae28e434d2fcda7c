"""sarflow.sentinel1 against the real SAFE fixtures in ../shared/fixtures/s1."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sarflow.errors import InputError
from sarflow.grid import Window
from sarflow.sentinel1 import geodetic_to_ecef, open_product

# product name fragment -> facts read off the manifests by hand
EXPECTED = {
    "6D00": dict(mission="S1A", pass_direction="DESCENDING", absolute_orbit=4454, relative_orbit=7,
                 ipf_version="002.70", noise_format="old", polarisations=["VV", "VH"]),
    "3768": dict(mission="S1A", pass_direction="ASCENDING", absolute_orbit=4739, relative_orbit=117,
                 ipf_version="002.36", noise_format="old", polarisations=["VV", "VH"]),
    "8255": dict(mission="S1A", pass_direction="DESCENDING", absolute_orbit=36201, relative_orbit=79,
                 ipf_version="003.31", noise_format="new", polarisations=["VV", "VH"]),
    "5371": dict(mission="S1B", pass_direction="DESCENDING", absolute_orbit=30148, relative_orbit=22,
                 ipf_version="003.40", noise_format="new", polarisations=["VV"]),
}


def _products(fixtures_dir: Path) -> list[Path]:
    paths = sorted((fixtures_dir / "s1").iterdir())
    assert len(paths) == 4
    return paths


def _key(path: Path) -> str:
    return path.name.split(".")[0][-4:]


@pytest.fixture(scope="module")
def products(fixtures_dir):
    return {_key(p): open_product(p) for p in _products(fixtures_dir)}


def test_every_fixture_opens_with_its_metadata(products):
    for key, prod in products.items():
        exp = EXPECTED[key]
        for name, value in exp.items():
            assert getattr(prod, name) == value, (key, name)
        assert prod.mode == "IW" and prod.product_type == "GRD"
        assert prod.id.endswith(key) and not prod.id.endswith(".SAFE")
        assert prod.start < prod.stop and prod.start.tzinfo is not None
        assert 24.0 < (prod.stop - prod.start).total_seconds() < 26.0
        # the relative orbit follows from the absolute one (S1A offset 73, S1B 27; 175-orbit cycle)
        offset = 73 if prod.mission == "S1A" else 27
        assert prod.relative_orbit == (prod.absolute_orbit - offset) % 175 + 1
        # the footprint contains the geolocation grid's centre point
        g = prod.swath().geolocation_grid
        mid = len(g.latitude) // 2
        from shapely.geometry import Point
        assert prod.footprint.buffer(0.05).contains(Point(g.longitude[mid], g.latitude[mid]))
        assert abs(prod.ipf - float(exp["ipf_version"])) < 1e-9


def test_missing_files_are_reported_not_fatal(products):
    s1b = products["5371"]
    assert any("-vh-" in f for f in s1b.missing)  # manifest lists VH, the fixture lacks it
    assert not any("-vv-" in f and f.startswith("measurement") for f in s1b.missing)
    for key in ("6D00", "3768", "8255"):
        assert all(f.startswith("measurement/") for f in products[key].missing)
        with pytest.raises(InputError, match="missing"):
            products[key].read_dn("VV", Window(0, 0, 4, 4))
    with pytest.raises(InputError, match="polarisation VH"):
        s1b.swath("VH")


def test_folder_and_zip_give_the_same_product(fixtures_dir, tmp_path):
    zipped = next(p for p in _products(fixtures_dir) if _key(p) == "8255")
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(tmp_path)
    folder = next(tmp_path.glob("*.SAFE"))
    a, b = open_product(zipped).summary(), open_product(folder).summary()
    a.pop("path"), b.pop("path")
    assert a == b
    # and a zip of the S1B folder (which has a measurement TIFF) reads DNs through /vsizip/
    safe = next(p for p in _products(fixtures_dir) if _key(p) == "5371")
    zpath = tmp_path / (safe.stem + ".zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as zf:
        for f in safe.rglob("*"):
            if f.is_file():
                zf.write(f, f"{safe.name}/{f.relative_to(safe)}")
    zprod = open_product(zpath)
    assert zprod.id == open_product(safe).id
    dn = zprod.read_dn("VV", Window(100, 200, 8, 16))
    assert dn.dtype == np.uint16 and dn.shape == (8, 16) and (dn == 0).all()


def test_geolocation_grid_is_reproduced(products):
    for key, prod in products.items():
        for pol in prod.polarisations:
            g = prod.swath(pol).geolocation_grid
            line, pixel = prod.image_coordinates(g.latitude, g.longitude, g.height, pol=pol)
            dl, dp = np.abs(line - g.line), np.abs(pixel - g.pixel)
            if prod.ipf >= 2.90:
                assert dl.max() < 0.05 and dp.max() < 0.05, (key, dl.max(), dp.max())
            else:
                assert np.percentile(dl, 90) < 0.5 and np.percentile(dp, 90) < 0.5, key


def test_ground_coordinates_inverts_image_coordinates(products):
    rng = np.random.default_rng(3)
    for key, prod in products.items():
        lines, pixels = prod.shape
        line = rng.uniform(0, lines - 1, 200)
        pixel = rng.uniform(0, pixels - 1, 200)
        h = rng.uniform(-100, 4000, 200)
        lat, lon = prod.ground_coordinates(line, pixel, h)
        l2, p2 = prod.image_coordinates(lat, lon, h)
        assert np.abs(l2 - line).max() < 1e-4 and np.abs(p2 - pixel).max() < 1e-4, key
        lat2, lon2 = prod.ground_coordinates(l2, p2, h)
        d = np.linalg.norm(geodetic_to_ecef(lat2, lon2, h) - geodetic_to_ecef(lat, lon, h), axis=1)
        assert d.max() < 0.1, key
        # a 10 m ground-range pixel: moving one pixel in range moves ~10 m on the ground
        la1, lo1 = prod.ground_coordinates(line[:5], pixel[:5] + 1.0, np.zeros(5))
        la0, lo0 = prod.ground_coordinates(line[:5], pixel[:5], np.zeros(5))
        step = np.linalg.norm(geodetic_to_ecef(la1, lo1, 0) - geodetic_to_ecef(la0, lo0, 0), axis=1)
        np.testing.assert_allclose(step, prod.swath().range_pixel_spacing, rtol=2e-3)


def test_calibration_lut_exact_at_nodes(products):
    for key, prod in products.items():
        sw = prod.swath()
        cal = sw.calibration
        for kind in ("sigma0", "beta0", "gamma0", "dn"):
            for j in (0, len(cal.line) // 2, len(cal.line) - 2):
                ln = int(cal.line[j])
                if not 0 <= ln < sw.lines:
                    continue
                nodes = cal.pixel[j].astype(int)
                nodes = nodes[nodes < sw.pixels]
                lut = prod.calibration_lut(None, kind, Window(ln, 0, 1, sw.pixels))[0]
                np.testing.assert_array_equal(lut[nodes], cal.values[kind][j][:nodes.size].astype(np.float32))
        # between two vectors, halfway, the LUT is the mean of the two (linear in line)
        j = 1
        l0, l1 = int(cal.line[j]), int(cal.line[j + 1])
        if (l1 - l0) % 2 == 0:
            mid = prod.calibration_lut(None, "sigma0", Window((l0 + l1) // 2, 0, 1, 41))[0]
            v0 = np.interp(np.arange(41), cal.pixel[j], cal.values["sigma0"][j])
            v1 = np.interp(np.arange(41), cal.pixel[j + 1], cal.values["sigma0"][j + 1])
            np.testing.assert_allclose(mid, 0.5 * (v0 + v1), rtol=1e-6)


def test_sigma0_agrees_with_xarray_sentinel(products, fixtures_dir, reference):
    prod = products["5371"]
    sw = prod.swath("VV")
    cal_file = next((fixtures_dir / "s1").glob("S1B*.SAFE")) / sw.calibration_file
    win = Window(3000, 5000, 50, 70)
    rng = np.random.default_rng(0)
    dn = rng.integers(1, 2000, size=(win.height, win.width)).astype(np.uint16)
    ref = reference.call("xs_calibrate", calibration_file=cal_file, dn=dn, line0=win.row,
                         pixel0=win.col)["intensity"]
    lut = prod.calibration_lut("VV", "sigma0", win)
    ours = dn.astype(np.float64) ** 2 / lut.astype(np.float64) ** 2
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    # read_dn + calibrate on the real TIFF (all zeros) gives zeros, without noise going negative
    out = prod.calibrate("VV", Window(0, 0, 16, 16))
    assert out.dtype == np.float32 and (out == 0).all()


def test_noise_luts_in_both_formats(products):
    new, old = products["5371"], products["6D00"]
    noise = new.swath().noise
    assert noise.format == "new" and len(noise.azimuth) >= 3
    rv = noise.range
    j = 3
    ln = int(rv.line[j])
    lut = new.noise_lut("VV", Window(ln, 0, 1, new.shape[1]))[0].astype(np.float64)
    for blk in noise.azimuth:
        if blk.first_line <= ln <= blk.last_line:
            az = np.interp(ln, blk.line, blk.values)
            nodes = rv.pixel[j].astype(int)
            inside = nodes[(nodes >= blk.first_sample) & (nodes <= blk.last_sample)]
            idx = np.searchsorted(rv.pixel[j], inside)
            np.testing.assert_allclose(lut[inside], rv.values["noise"][j][idx] * az, rtol=1e-6)
    onoise = old.swath().noise
    assert onoise.format == "old" and not onoise.azimuth
    ov = onoise.range
    ln = int(ov.line[2])
    lut = old.noise_lut("VV", Window(ln, 0, 1, old.shape[1]))[0]
    nodes = ov.pixel[2].astype(int)
    nodes = nodes[nodes < old.shape[1]]
    np.testing.assert_array_equal(lut[nodes], ov.values["noise"][2][:nodes.size].astype(np.float32))
    assert lut.dtype == np.float32 and (lut >= 0).all() and lut[0] > 0


def test_with_orbit_falls_back_when_no_eof_covers(products, fixtures_dir):
    prod = products["5371"]
    moved = prod.with_orbit(fixtures_dir / "orbits")
    assert moved.orbit_source == "annotation" and moved.notes
    assert "no S1B orbit file" in moved.notes[0]
    assert prod.notes == []


def test_product_pickles(products):
    import pickle

    prod = products["8255"]
    g = prod.swath().geolocation_grid
    back = pickle.loads(pickle.dumps(prod))
    l1, p1 = back.image_coordinates(g.latitude[:5], g.longitude[:5], g.height[:5])
    l0, p0 = prod.image_coordinates(g.latitude[:5], g.longitude[:5], g.height[:5])
    np.testing.assert_array_equal(l1, l0)


def test_non_s1_inputs_are_user_errors(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(InputError, match="not a Sentinel-1"):
        open_product(bad)
    folder = tmp_path / "empty.SAFE"
    folder.mkdir()
    with pytest.raises(InputError, match="manifest"):
        open_product(folder)


def test_info_cli(fixtures_dir, tmp_path):
    from click.testing import CliRunner

    from sarflow.cli import cli

    runner = CliRunner()
    for path in _products(fixtures_dir):
        exp = EXPECTED[_key(path)]
        res = runner.invoke(cli, ["info", str(path)], terminal_width=200)
        assert res.exit_code == 0, res.output
        for text in (exp["pass_direction"], str(exp["relative_orbit"]), exp["noise_format"],
                     ", ".join(exp["polarisations"])):
            assert text in res.output
        res = runner.invoke(cli, ["info", "--json", str(path)])
        data = json.loads(res.output)
        assert data["relative_orbit"] == exp["relative_orbit"]
        assert data["polarisations"] == exp["polarisations"]
        assert data["noise_format"] == exp["noise_format"]
    res = runner.invoke(cli, ["info", "--json", "--orbit", str(fixtures_dir / "orbits"),
                              str(_products(fixtures_dir)[-1])])
    assert res.exit_code == 0
    data = json.loads(res.output[res.output.index("{"):])
    assert data["orbit_source"] == "annotation" and "no S1B orbit file" in data["notes"][0]
    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    res = runner.invoke(cli, ["info", str(dem)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a Sentinel-1" in lines[0]


def test_fast_zero_doppler_matches_plain_newton(products):
    from sarflow.sentinel1 import zero_doppler

    for key, prod in products.items():
        geom = prod.geometry()
        b = prod.footprint.bounds
        rng = np.random.default_rng(5)
        lon, lat = rng.uniform(b[0], b[2], 3000), rng.uniform(b[1], b[3], 3000)
        xyz = geodetic_to_ecef(lat, lon, rng.uniform(0, 4000, 3000))
        t0 = geom.t_first + 0.5 * prod.shape[0] * geom.ati
        t_fast, r_fast = zero_doppler(geom.fast_orbit, xyz, t0=t0)  # Taylor path
        t_ref, r_ref = zero_doppler(prod.orbit, xyz, t0=np.full(3000, t0))  # Newton on vectors
        inside = (t_ref >= geom.t_first) & (t_ref <= geom.t_first + prod.shape[0] * geom.ati)
        assert inside.sum() > 1000
        assert np.abs(t_fast - t_ref)[inside].max() / geom.ati < 0.005, key
        assert np.abs(r_fast - r_ref)[inside].max() < 0.005, key


def test_zero_doppler_agrees_with_sarsen(products, reference):
    """sarsen's independent backward geocoding gives the same zero-Doppler time and range."""
    from sarflow.sentinel1 import zero_doppler

    prod = products["5371"]
    geom, o = prod.geometry(), prod.orbit
    times = np.array([np.datetime64(o.to_datetime(t).replace(tzinfo=None), "ns") for t in o.times])
    lat, lon = np.meshgrid(np.linspace(42.3, 41.2, 30), np.linspace(12.2, 14.8, 30), indexing="ij")
    xyz = geodetic_to_ecef(lat, lon, np.full(lat.shape, 500.0))
    acq = reference.call("sarsen_backward_geocode", orbit_times_ns=times.astype(np.int64),
                         orbit_positions=o.positions, xyz=xyz.reshape(30, 30, 3))
    t_ref = np.asarray(o.to_seconds(acq["azimuth_time_ns"].astype("datetime64[ns]")))
    r_ref = acq["slant_range"]
    t, r = zero_doppler(geom.fast_orbit, xyz, t0=geom.t_first + 0.5 * prod.shape[0] * geom.ati)
    assert np.abs(t - t_ref).max() < 1e-6  # s (0.0007 line)
    assert np.abs(r - r_ref).max() < 1e-3  # m


def test_timing_fit_follows_the_grid_convention(products):
    """ESA grids carry the bistatic term (factor 1); a grid written without it (as a naive
    synthetic product might be) is recognised (factor 0) and still reproduced."""
    import dataclasses

    from sarflow.sentinel1.annotation import GeolocationGrid
    from sarflow.sentinel1.radar import GrdGeometry

    prod = products["5371"]
    sw = prod.swath()
    assert abs(prod.geometry().bistatic - 1.0) < 2e-3
    plain = GrdGeometry(sw, sw.orbit, line_offset=0.0, bistatic=0.0)
    line, pixel = np.meshgrid(np.linspace(0, sw.lines - 1, 10), np.linspace(0, sw.pixels - 1, 21),
                              indexing="ij")
    h = np.full(line.shape, 250.0)
    lat, lon = plain.ground_coordinates(line, pixel, h)
    old = sw.geolocation_grid
    grid = GeolocationGrid(line=line.ravel(), pixel=pixel.ravel(),
                           azimuth_time=np.full(line.size, old.azimuth_time[0]),
                           slant_range_time=np.zeros(line.size), latitude=lat.ravel(),
                           longitude=lon.ravel(), height=h.ravel(),
                           incidence_angle=np.zeros(line.size), elevation_angle=np.zeros(line.size))
    geom = GrdGeometry(dataclasses.replace(sw, geolocation_grid=grid), sw.orbit)
    assert abs(geom.bistatic) < 1e-3 and abs(geom.line_offset) < 1e-2
    l2, p2 = geom.image_coordinates(lat, lon, h)
    assert np.abs(l2 - line).max() < 0.01 and np.abs(p2 - pixel).max() < 0.01


def test_minimal_safe_opens(fixtures_dir, tmp_path):
    """A product with only what the docstring of sarflow.sentinel1.safe lists (no RFI, no
    previews, stripped annotation) opens, geolocates and gives LUTs."""
    from lxml import etree

    src = next((fixtures_dir / "s1").glob("S1B*.SAFE"))
    dst = tmp_path / src.name
    (dst / "annotation" / "calibration").mkdir(parents=True)
    shutil.copy(src / "manifest.safe", dst / "manifest.safe")
    for f in (src / "annotation" / "calibration").iterdir():
        shutil.copy(f, dst / "annotation" / "calibration" / f.name)
    ann = next((src / "annotation").glob("s1b-*.xml"))
    root = etree.parse(str(ann)).getroot()
    keep = {"adsHeader", "generalAnnotation", "imageAnnotation", "geolocationGrid",
            "coordinateConversion"}
    for child in list(root):
        if child.tag not in keep:
            root.remove(child)
    general = root.find("generalAnnotation")
    for child in list(general):
        if child.tag not in ("productInformation", "orbitList"):
            general.remove(child)
    prodinfo = general.find("productInformation")
    for child in list(prodinfo):
        if child.tag != "pass":
            prodinfo.remove(child)
    info = root.find("imageAnnotation/imageInformation")
    for child in list(info):
        if child.tag not in ("productFirstLineUtcTime", "numberOfLines", "numberOfSamples",
                             "azimuthTimeInterval", "rangePixelSpacing", "slantRangeTime"):
            info.remove(child)
    for el in root.iter("elevationAngle"):
        el.getparent().remove(el)
    (dst / "annotation" / ann.name).write_bytes(etree.tostring(root))
    prod = open_product(dst)
    full = open_product(src)
    assert prod.polarisations == ["VV"] and prod.noise_format == "new"
    assert any(m.startswith("annotation/rfi/") for m in prod.missing)
    g = prod.swath().geolocation_grid
    line, pixel = prod.image_coordinates(g.latitude, g.longitude, g.height)
    assert np.abs(line - g.line).max() < 0.05 and np.abs(pixel - g.pixel).max() < 0.05
    assert prod.swath().last_line_time == full.swath().last_line_time
    win = Window(5, 5, 3, 3)
    np.testing.assert_array_equal(prod.calibration_lut("VV", "sigma0", win),
                                  full.calibration_lut("VV", "sigma0", win))
    with pytest.raises(InputError, match="measurement"):
        prod.read_dn("VV", win)
