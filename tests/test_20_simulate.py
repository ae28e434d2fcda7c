"""sarflow.simulate: a small synthetic event, checked against its own truth, against
sarflow.sentinel1's reader, pyroSAR, xarray-sentinel and sarsen (independent readers)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sarflow.config import load_config
from sarflow.grid import raster_info, read_raster
from sarflow.simulate import SimulationSettings, acquisition_times, simulate_event

SIZE = 256


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small event: 256 x 256 grid, 2 dates per window per pass (8 scenes), no smooth
    soil-moisture field (so flat-ground sigma0 has a closed form)."""
    out = tmp_path_factory.mktemp("event")
    s = SimulationSettings(moisture_field_db=0.0)
    return simulate_event(out, seed=6, size=(SIZE, SIZE), scenes_per_window=2, settings=s)


@pytest.fixture(scope="module")
def truth(event: Path) -> dict:
    return json.loads((event.parent / "truth" / "settings.json").read_text())


def _scenes(event: Path) -> list[Path]:
    return sorted((event.parent / "scenes").glob("*.zip"))


def _truth(event: Path, zip_path: Path) -> tuple[np.ndarray, dict]:
    path = event.parent / "truth" / "sigma0" / (zip_path.stem + ".tif")
    return read_raster(path), raster_info(path).tags


# ------------------------------------------------------------------------------------
# layout, config, readers
# ------------------------------------------------------------------------------------

def test_event_yaml_is_a_valid_config_on_the_truth_grid(event: Path, truth: dict) -> None:
    cfg = load_config(event)
    grid = cfg.grid()
    assert grid.shape == (SIZE, SIZE)
    assert raster_info(event.parent / "truth" / "landslides.tif").grid == grid
    train, val = cfg.area_grid("training"), cfg.area_grid("validation")
    assert train.height == val.height == SIZE
    assert train.width + val.width == SIZE and train.col0 + train.width == val.col0
    assert train.width == round(SIZE * 2 / 3)
    assert cfg.processing.engine == "native" and cfg.output == event.parent / "work"
    dem = raster_info(cfg.dem).grid
    w, s, e, n = grid.bounds
    assert dem.west <= w - 0.01 and dem.east >= e + 0.01 and dem.south <= s - 0.01
    assert cfg.inventory.is_file() and all(p.is_dir() for p in cfg.scenes)
    # every scene falls in the pre or the post window, half in each, both passes
    pre, post = cfg.pre_window(), cfg.post_window()
    zips = _scenes(event)
    assert len(zips) == 8
    times = [dt.datetime.strptime(z.name.split("_")[4], "%Y%m%dT%H%M%S").replace(
        tzinfo=dt.timezone.utc) for z in zips]
    assert sum(pre[0] <= t < pre[1] for t in times) == 4
    assert sum(post[0] <= t < post[1] for t in times) == 4
    assert {r["pass"] for r in truth["scenes"]} == {"ASCENDING", "DESCENDING"}


def test_inventory_rasterises_to_the_truth_mask(event: Path, truth: dict) -> None:
    """GDAL rasterisation of inventory.gpkg on the event grid (pixel centres inside) is the
    truth mask; landslides cover a few per cent, prefer steep slopes, carry their change."""
    from osgeo import gdal, ogr

    from sarflow.simulate import terrain

    cfg = load_config(event)
    grid = cfg.grid()
    ds = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(grid.geotransform)
    src = ogr.Open(str(cfg.inventory))
    layer = src.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "4326"
    gdal.RasterizeLayer(ds, [1], layer, burn_values=[1])
    mask = read_raster(event.parent / "truth" / "landslides.tif")[0]
    assert np.array_equal(ds.GetRasterBand(1).ReadAsArray(), mask)
    assert 0.02 < mask.mean() < 0.08
    dem_info = raster_info(cfg.dem)
    slope = terrain.slope_deg(read_raster(cfg.dem)[0], dem_info.grid)
    slope = slope[dem_info.grid.window_of(grid).slices]
    assert slope[mask > 0].mean() > slope[mask == 0].mean() + 3.0
    feat = layer.GetNextFeature()
    jitter = feat.GetField("change_vv_db") - truth["settings"]["change_db"]["VV"]
    assert jitter == pytest.approx(feat.GetField("change_vh_db") - truth["settings"]["change_db"]["VH"],
                                   abs=2e-3)
    assert layer.GetFeatureCount() == truth["landslides"]["count"] > 50


def test_pyrosar_identify_accepts_every_product(event: Path) -> None:
    from sarflow import pyrosar_compat

    for z in _scenes(event):
        _, tags = _truth(event, z)
        scene = pyrosar_compat.identify(z)
        assert scene.sensor == "S1A" and scene.product == "GRD" and scene.acquisition_mode == "IW"
        assert scene.orbit == tags["pass"][0]
        assert scene.polarizations == ["VV", "VH"]
        assert scene.start == z.name.split("_")[4]
        assert scene.orbitNumber_rel == int(tags["relative_orbit"])
        assert 30.0 < scene.meta["incidence"] < 46.0


def test_sarflow_info_reads_every_product(event: Path) -> None:
    from click.testing import CliRunner

    from sarflow.cli import cli

    for z in _scenes(event):
        _, tags = _truth(event, z)
        res = CliRunner().invoke(cli, ["info", str(z)])
        assert res.exit_code == 0, res.output
        assert tags["pass"] in res.output and "VV, VH" in res.output


def test_zip_holds_a_complete_safe_with_manifest_checksums(event: Path) -> None:
    z = _scenes(event)[0]
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
        safe = z.stem + ".SAFE/"
        assert names[0] == safe and all(n.startswith(safe) for n in names)
        manifest = zf.read(safe + "manifest.safe")
        from lxml import etree

        root = etree.fromstring(manifest)
        streams = root.findall(".//byteStream")
        assert len(streams) == 13  # 2 pols x (annotation, calibration, noise, rfi, tiff) + 3 previews
        for bs in streams:
            rel = bs.find("fileLocation").get("href")[2:]
            data = zf.read(safe + rel)
            assert int(bs.get("size")) == len(data)
            assert bs.find("checksum").text == hashlib.md5(data).hexdigest()


def test_geolocation_grid_is_reproduced_by_the_reader(event: Path) -> None:
    from sarflow.sentinel1.safe import open_product

    for z in _scenes(event):
        prod = open_product(z)
        for pol in ("VV", "VH"):
            g = prod.swath(pol).geolocation_grid
            line, pixel = prod.image_coordinates(g.latitude, g.longitude, g.height)
            assert np.abs(line - g.line).max() < 0.01
            assert np.abs(pixel - g.pixel).max() < 0.01
            lat, lon = prod.ground_coordinates(g.line, g.pixel, g.height)
            assert np.abs(lat - g.latitude).max() < 1e-6 and np.abs(lon - g.longitude).max() < 1e-6
            assert 30.0 < g.incidence_angle.min() and g.incidence_angle.max() < 46.0


def test_orbit_is_a_sentinel1_orbit(event: Path) -> None:
    from sarflow.sentinel1 import ecef_to_geodetic
    from sarflow.sentinel1.safe import open_product

    for z in _scenes(event)[:2]:
        prod = open_product(z)
        orbit = prod.swath("VV").orbit
        _, _, alt = ecef_to_geodetic(orbit.positions)
        assert np.all((alt > 690e3) & (alt < 730e3))
        speed = np.linalg.norm(orbit.velocities, axis=1)
        assert np.all(np.abs(speed - 7590.0) < 30.0)
        ascending = prod.pass_direction == "ASCENDING"
        assert (orbit.velocities[:, 2].mean() > 0) == ascending
        # right-looking: the scene lies to the right of the velocity vector
        g = prod.swath("VV").geolocation_grid
        from sarflow.sentinel1 import geodetic_to_ecef

        x = geodetic_to_ecef(g.latitude.mean(), g.longitude.mean(), g.height.mean())[0]
        k = orbit.positions.shape[0] // 2
        right = np.cross(orbit.velocities[k], orbit.positions[k])
        assert right @ (x - orbit.positions[k]) > 0


def test_xarray_sentinel_reads_every_group(event: Path, tmp_path: Path, reference) -> None:
    z = _scenes(event)[1]
    zipfile.ZipFile(z).extractall(tmp_path)
    safe = tmp_path / (z.stem + ".SAFE")
    groups = ["IW/VV", "IW/VH/orbit", "IW/VV/gcp", "IW/VV/calibration", "IW/VV/noise_range",
              "IW/VV/noise_azimuth", "IW/VV/coordinate_conversion", "IW/VV/attitude"]
    read = reference.call("xs_open_groups", safe=safe, groups=groups)
    assert all(read["sizes"][g] for g in groups)
    lines, pixels = read_raster(next((safe / "measurement").glob("*vv*.tiff")))[0].shape
    assert read["sizes"]["IW/VV"] == {"azimuth_time": lines, "ground_range": pixels}
    assert read["measurement_dtype"] == "uint16" or read["measurement_dtype"][0] in "uif"


# ------------------------------------------------------------------------------------
# radiometry
# ------------------------------------------------------------------------------------

def _grid_to_image(prod, event: Path):
    """Nearest image (line, pixel) of every event-grid cell at its ellipsoidal height."""
    from sarflow.sentinel1.geoid import geoid_undulation

    cfg = load_config(event)
    grid = cfg.grid()
    dem_info = raster_info(cfg.dem)
    win = dem_info.grid.window_of(grid)
    h = read_raster(cfg.dem, win)[0]
    lon, lat = grid.coordinates()
    line, pixel = prod.image_coordinates(lat, lon, h + geoid_undulation(lat, lon))
    return np.rint(line).astype(int), np.rint(pixel).astype(int)


def _flat_grassland(event: Path) -> np.ndarray:
    """Grassland cells with flat ground (< 3 degrees) and no other land cover or landslide
    within 5 cells: nothing else (foreshortened slopes, layover) lands on their pixels."""
    from scipy.ndimage import binary_dilation, maximum_filter

    from sarflow.simulate import terrain

    cfg = load_config(event)
    grid = cfg.grid()
    dem_info = raster_info(cfg.dem)
    dem = read_raster(cfg.dem)[0]
    slope = terrain.slope_deg(dem, dem_info.grid)
    steep = maximum_filter(slope, size=11)[dem_info.grid.window_of(grid).slices] >= 3.0
    lc = read_raster(event.parent / "truth" / "landcover.tif")[0]
    slides = read_raster(event.parent / "truth" / "landslides.tif")[0] > 0
    other = binary_dilation((lc != 1) | slides, iterations=5)
    return ~other & ~steep


def test_flat_ground_sigma0_matches_the_configured_value(event: Path, truth: dict) -> None:
    """Speckled, noisy DN calibrated with the product's own vectors, averaged over flat
    unchanged grassland, gives the configured gamma0 * cos(incidence) within 0.2 dB;
    the noise-free truth matches it within 0.05 dB."""
    from scipy.interpolate import griddata

    from sarflow.sentinel1.safe import open_product

    flat = _flat_grassland(event)
    assert flat.sum() > 1000
    records = {r["product_id"]: r for r in truth["scenes"]}
    for z in _scenes(event)[:4]:
        prod = open_product(z)
        line, pixel = _grid_to_image(prod, event)
        g = prod.swath("VV").geolocation_grid
        inc = griddata((g.line, g.pixel), g.incidence_angle, (line[flat], pixel[flat]))
        t, _ = _truth(event, z)
        for ipol, pol in enumerate(("VV", "VH")):
            dn = prod.read_dn(pol).astype(np.float64)
            noise = prod.noise_lut(pol).astype(np.float64)
            lut = prod.calibration_lut(pol, "sigma0").astype(np.float64)
            sigma = (dn ** 2 - noise) / lut ** 2  # unbiased: no clipping at zero
            measured = sigma[line[flat], pixel[flat]].mean()
            gamma0 = 10 ** (records[z.stem]["gamma0_db"]["grassland"][pol] / 10)
            expected = np.mean(gamma0 * np.cos(np.radians(inc)))
            assert abs(10 * np.log10(measured / expected)) < 0.2, (z.name, pol)
            assert abs(10 * np.log10(t[ipol][flat].mean() / expected)) < 0.05, (z.name, pol)


def test_landslides_change_by_the_configured_amount(event: Path, truth: dict) -> None:
    """Noise-free truth: post - pre (dB) on landslide interiors equals the configured change
    (plus the dates' land-cover factors, which are recorded); unchanged ground does not
    change beyond those factors."""
    from scipy.ndimage import binary_dilation, binary_erosion

    s = truth["settings"]
    slides = read_raster(event.parent / "truth" / "landslides.tif")[0] > 0
    lc = read_raster(event.parent / "truth" / "landcover.tif")[0]
    inner = binary_erosion(slides, iterations=1)
    assert inner.sum() > 100
    classes = ("forest", "grassland", "bare")
    records = {r["product_id"]: r for r in truth["scenes"]}
    for pass_dir in ("ASCENDING", "DESCENDING"):
        zips = [z for z in _scenes(event) if records[z.stem]["pass"] == pass_dir]
        stacks = {True: [], False: []}
        for z in zips:
            t, _ = _truth(event, z)
            rec = records[z.stem]
            # remove each date's land-cover factor: what remains is the landslide change
            corr = np.zeros((2,) + lc.shape)
            for k, cls in enumerate(classes):
                for ipol, pol in enumerate(("VV", "VH")):
                    corr[ipol][lc == k] = rec["gamma0_db"][cls][pol]
            with np.errstate(divide="ignore"):
                stacks[rec["post_event"]].append((10 * np.log10(t[:2]) - corr, t[2]))
        assert len(stacks[True]) == len(stacks[False]) == 2
        pre = np.mean([a for a, _ in stacks[False]], axis=0)
        post = np.mean([a for a, _ in stacks[True]], axis=0)
        clear = stacks[True][0][1] == 0
        sel = inner & clear
        for ipol, pol in enumerate(("VV", "VH")):
            change = (post - pre)[ipol]
            assert abs(change[sel].mean() - s["change_db"][pol]) < 0.25, (pass_dir, pol)
            away = clear & ~binary_dilation(slides, iterations=3)
            assert abs(np.median(change[away & np.isfinite(change)])) < 0.05, (pass_dir, pol)
    assert s["change_db"]["VV"] != s["change_db"]["VH"]


def test_speckle_has_the_grd_equivalent_number_of_looks(tmp_path: Path) -> None:
    """Two dates of an event without date-to-date change: DN^2 ratios follow the ratio of
    two independent unit gamma variates with ENL looks (texture, LUTs and noise cancel)."""
    from sarflow.sentinel1.safe import open_product

    s = SimulationSettings(moisture_field_db=0.0,
                           date_sigma_db={"forest": 0.0, "grassland": 0.0, "bare": 0.0})
    event = simulate_event(tmp_path, seed=5, size=(96, 96), scenes_per_window=2, settings=s)
    zips = _scenes(event)
    asc = [z for z in zips if "T08" in z.name][:2]  # two pre-event ascending dates
    a, b = (open_product(z).read_dn("VV").astype(np.float64) ** 2 for z in asc)
    ok = (a > 0) & (b > 0)
    r = (a[ok] / b[ok])
    r /= r.mean()
    v = r.var()
    # var(X/Y) for X, Y ~ Gamma(L, 1/L) scaled to unit mean ratio; solve for L
    looks = np.linspace(2.5, 8.0, 2000)
    mean = looks / (looks - 1)
    second = (1 + 1 / looks) * looks ** 2 / ((looks - 1) * (looks - 2))
    model = second / mean ** 2 - 1
    enl = looks[np.argmin(np.abs(model - v))]
    assert abs(enl - s.looks) < 0.35, enl


# ------------------------------------------------------------------------------------
# geometry: layover / shadow, independent terrain correction
# ------------------------------------------------------------------------------------

def test_layover_and_shadow_fall_on_opposite_slopes(event: Path, truth: dict) -> None:
    """Ascending looks east: layover on slopes facing west, shadow on slopes facing east;
    descending the other way round."""
    from sarflow.simulate import terrain

    cfg = load_config(event)
    dem_info = raster_info(cfg.dem)
    p, _ = terrain.gradients(read_raster(cfg.dem)[0], dem_info.grid)
    p = p[dem_info.grid.window_of(cfg.grid()).slices]  # dh/dEast: > 0 faces west
    records = {r["product_id"]: r for r in truth["scenes"]}
    masks = {}
    for z in _scenes(event):
        t, _ = _truth(event, z)
        masks[records[z.stem]["pass"]] = t[2]
    asc, desc = masks["ASCENDING"], masks["DESCENDING"]
    for flags, facing in ((asc, 1.0), (desc, -1.0)):
        lay = (flags == 1) | (flags == 3)
        assert lay.sum() > 50
        assert np.mean(np.sign(p[lay]) == facing) > 0.85
        shadow = flags >= 2
        if shadow.sum() > 20:
            assert np.mean(np.sign(p[shadow]) == -facing) > 0.85
    lay_a, lay_d = (asc % 2) == 1, (desc % 2) == 1
    assert (lay_a & lay_d).sum() < 0.1 * min(lay_a.sum(), lay_d.sum())


def test_sarsen_terrain_correction_lands_on_the_truth(event: Path, tmp_path: Path,
                                                      reference) -> None:
    """sarsen (independent range-Doppler code) geocodes a simulated product onto the DEM
    grid; it matches the truth sigma0 at zero shift (correlation of 5x5 means > 0.9)."""
    from scipy.ndimage import uniform_filter

    from sarflow.grid import write_raster
    from sarflow.sentinel1.geoid import geoid_undulation

    cfg = load_config(event)
    info = raster_info(cfg.dem)
    lon, lat = info.grid.coordinates()
    dem_ell = tmp_path / "dem_ell.tif"
    write_raster(dem_ell, read_raster(cfg.dem)[0] + geoid_undulation(lat, lon), info.grid)
    z = _scenes(event)[0]
    zipfile.ZipFile(z).extractall(tmp_path)
    gtc = reference.call("sarsen_terrain_correction", safe=tmp_path / (z.stem + ".SAFE"),
                         dem=dem_ell, output=tmp_path / "gtc.tif")["values"]
    gtc = gtc[info.grid.window_of(cfg.grid()).slices]
    t, _ = _truth(event, z)
    ok = np.isfinite(gtc) & (t[2] == 0) & (t[0] > 0)
    a = uniform_filter(10 * np.log10(np.where(ok, gtc, 1.0)), 5)
    b = uniform_filter(10 * np.log10(np.where(ok, t[0], 1.0)), 5)
    m = ok.copy()
    m[:8], m[-8:], m[:, :8], m[:, -8:] = False, False, False, False

    def corr(dy: int, dx: int) -> float:
        s = np.roll(np.roll(a, dy, 0), dx, 1)
        x, y = s[m] - s[m].mean(), b[m] - b[m].mean()
        return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))

    scores = {(dy, dx): corr(dy, dx) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2)}
    assert max(scores, key=scores.get) == (0, 0)
    assert scores[(0, 0)] > 0.9


# ------------------------------------------------------------------------------------
# reproducibility and the command line
# ------------------------------------------------------------------------------------

def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    """Byte-identical output for the same seed, with one worker process or two."""
    a = simulate_event(tmp_path / "a", seed=11, size=(48, 48), scenes_per_window=1, workers=1).parent
    b = simulate_event(tmp_path / "b", seed=11, size=(48, 48), scenes_per_window=1, workers=2).parent
    c = simulate_event(tmp_path / "c", seed=12, size=(48, 48), scenes_per_window=1).parent
    da, db, dc = _digest(a), _digest(b), _digest(c)
    # event.yaml, dem.tif, inventory.gpkg, 4 zips, 3 truth files, 4 truth sigma0 rasters
    assert len(da) == 14
    assert da == db
    assert da["dem.tif"] != dc["dem.tif"]


def test_acquisitions_alternate_around_the_event() -> None:
    s = SimulationSettings(scenes_per_window=3)
    times = acquisition_times(s)
    ev = s.event_datetime
    for pass_dir, ts in times.items():
        assert len(ts) == 6
        assert sum(t < ev for t in ts) == 3
        assert all((b - a) == dt.timedelta(days=12) for a, b in zip(ts, ts[1:]))
        assert all(t.date() != ev.date() for t in ts)


def test_cli_simulate_writes_an_event(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sarflow.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["simulate", str(tmp_path / "ev"), "--seed", "2", "--size", "40x48",
                              "--scenes-per-window", "1", "--change-vv", "-4"])
    assert res.exit_code == 0, res.output
    cfg = load_config(tmp_path / "ev" / "event.yaml")
    assert cfg.grid().shape == (40, 48)
    settings = json.loads((tmp_path / "ev" / "truth" / "settings.json").read_text())
    assert settings["settings"]["change_db"]["VV"] == -4.0
    assert len(list((tmp_path / "ev" / "scenes").glob("*.zip"))) == 4
    bad = runner.invoke(cli, ["simulate", str(tmp_path / "x"), "--size", "10"])
    assert bad.exit_code == 2 and "at least 32" in bad.output
    again = runner.invoke(cli, ["simulate", str(tmp_path / "ev"), "--size", "40"])
    assert again.exit_code == 2 and "already holds" in again.output
    again = runner.invoke(cli, ["simulate", str(tmp_path / "ev"), "--size", "40",
                                "--scenes-per-window", "1", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert load_config(tmp_path / "ev" / "event.yaml").grid().shape == (40, 40)
