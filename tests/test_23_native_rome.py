"""The native engine on the real S1B fixture over Rome, against sarsen's terrain correction.

The fixture's measurement raster is all zeros, so a copy of the product gets a known DN
texture in the window the Rome grid needs (a sparse tiled GeoTIFF of the real size).
Both engines get the same DEM: ``Rome-30m-DEM.tif`` converted to ellipsoidal heights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from sarflow.config import NativeSettings
from sarflow.grid import Grid, Window
from tests.reference import Reference

gdal.UseExceptions()

SAFE = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
ROME_GRID = Grid(col0=138971, row0=467724, width=360, height=360)
"""360 x 360 lattice pixels (about 3.6 x 2.7 km) in the middle of Rome-30m-DEM.tif."""


def texture(shape: tuple[int, int], seed: int = 7) -> np.ndarray:
    """A DN texture (uint16, 60..1500) with features of a few pixels: speckle-free, so
    resampling and correlation measure geometry, not noise."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.standard_normal(shape), 2.0)
    x = (x - x.mean()) / x.std()
    return np.clip(700 + 350 * x, 60, 1500).astype(np.uint16)


def patterned_copy(fixtures: Path, dest: Path, grid: Grid = ROME_GRID, margin: int = 60
                   ) -> tuple[Path, Window]:
    """A copy of the S1B product whose measurement TIFF (real size, sparse, tiled) holds
    :func:`texture` over the image window of ``grid`` (plus ``margin``); returns the copy
    and the window."""
    from sarflow.dem import DemSampler
    from sarflow.engines.native import image_window
    from sarflow.sentinel1 import open_product

    src = fixtures / "s1" / SAFE
    out = dest / SAFE
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.tiff"))
    prod = open_product(src)
    dem = DemSampler(fixtures / "dem" / "Rome-30m-DEM.tif")
    h = dem.grid_heights(grid)
    lon, lat = grid.coordinates()
    line, pixel = prod.image_coordinates(lat, lon, h)
    win = image_window(line, pixel, prod.shape, margin=margin)
    meas = next((src / "measurement").glob("*.tiff"))
    lines, pixels = prod.shape
    ds = gdal.GetDriverByName("GTiff").Create(
        str(out / "measurement" / meas.name), pixels, lines, 1, gdal.GDT_UInt16,
        options=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "SPARSE_OK=TRUE",
                 "COMPRESS=DEFLATE"])
    ds.GetRasterBand(1).WriteArray(texture((win.height, win.width)), win.col, win.row)
    ds = None
    return out, win


def ellipsoidal_dem(fixtures: Path, grid: Grid, path: Path) -> Path:
    """Rome-30m-DEM converted to ellipsoidal heights on ``grid`` (sarsen's input)."""
    from sarflow.dem import DemSampler
    from sarflow.grid import write_raster

    h = DemSampler(fixtures / "dem" / "Rome-30m-DEM.tif").grid_heights(grid)
    return write_raster(path, h, grid)


def run_sarsen(reference: Reference, safe: Path, dem_path: Path, output: Path) -> dict:
    """sarsen 0.9.6's geometric terrain correction (beta0, bilinear) on the DEM's grid, run
    in the reference virtualenv: ``values`` (north-up), ``wall_s`` and ``cpu_s``."""
    return reference.call("sarsen_terrain_correction", safe=safe, dem=dem_path, output=output,
                          interp_method="linear")


def measure_shift(ref: np.ndarray, img: np.ndarray, border: int = 8, iters: int = 20
                  ) -> np.ndarray:
    """Shift s (rows, cols) with img(x) ~ ref(x + s): integer peak of the FFT
    cross-correlation, then sub-pixel least-squares refinement on the gradients."""
    from scipy import ndimage

    ok = np.isfinite(ref) & np.isfinite(img)
    a = np.where(ok, ref - np.nanmean(ref), 0.0)
    b = np.where(ok, img - np.nanmean(img), 0.0)
    xc = np.fft.ifft2(np.fft.fft2(b) * np.conj(np.fft.fft2(a))).real
    peak = np.array(np.unravel_index(np.argmax(xc), xc.shape), dtype=float)
    peak = np.where(peak > np.array(xc.shape) / 2, peak - np.array(xc.shape), peak)
    s = -peak
    filled = np.where(np.isfinite(ref), ref, np.nanmean(ref))
    inner = np.zeros(ref.shape, dtype=bool)
    inner[border:-border, border:-border] = True
    for _ in range(iters):
        moved = ndimage.shift(filled, -s, order=3, mode="nearest")
        gy, gx = np.gradient(moved)
        m = inner & ok & np.isfinite(moved)
        ds = np.linalg.lstsq(np.stack([gy[m], gx[m]], 1), img[m] - moved[m], rcond=None)[0]
        s = s + ds
        if np.abs(ds).max() < 1e-4:
            break
    return s


def grid_jacobian(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """d(line, pixel) / d(row, col) of a grid's image coordinates (least-squares plane)."""
    rows, cols = np.mgrid[0:line.shape[0], 0:line.shape[1]]
    a = np.stack([np.ones(rows.size), rows.ravel(), cols.ravel()], 1)
    ok = np.isfinite(line.ravel()) & np.isfinite(pixel.ravel())
    cl = np.linalg.lstsq(a[ok], line.ravel()[ok], rcond=None)[0]
    cp = np.linalg.lstsq(a[ok], pixel.ravel()[ok], rcond=None)[0]
    return np.array([[cl[1], cl[2]], [cp[1], cp[2]]])


def sarsen_model_difference(reference: Reference, safe: Path, fixtures: Path
                            ) -> tuple[np.ndarray, np.ndarray]:
    """(line, pixel) where sarsen's model puts each Rome grid pixel minus where sarflow's
    does: zero-Doppler time without the bistatic term, and xarray-sentinel's slant-to-ground
    range conversion (linear between annotation records) instead of the nearest record."""
    from sarflow.dem import DemSampler
    from sarflow.sentinel1 import C, geodetic_to_ecef, open_product, zero_doppler

    prod = open_product(safe)
    geom = prod.geometry()
    h = DemSampler(fixtures / "dem" / "Rome-30m-DEM.tif").grid_heights(ROME_GRID)
    lon, lat = ROME_GRID.coordinates()
    line, pixel = prod.image_coordinates(lat, lon, h)
    t, rng = zero_doppler(geom.orbit, geodetic_to_ecef(lat, lon, h), t0=geom.t_first)
    t, rng = t.reshape(line.shape), rng.reshape(line.shape)
    line_s = (t - geom.t_first) / geom.ati
    epoch = np.datetime64(geom.orbit.epoch.replace(tzinfo=None), "ns")
    az = epoch + np.rint(t * 1e9).astype("timedelta64[ns]")
    gr = reference.call("xs_ground_range", safe=safe, azimuth_time_ns=az.astype(np.int64),
                        slant_range_time=2 * rng / C)["ground_range"]
    return line_s - line, gr / geom.rps - pixel


@pytest.fixture(scope="module")
def rome(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory, reference: Reference
         ) -> dict:
    """The patterned product copy, native beta0 (no noise removal) and sarsen's result."""
    from sarflow.engines import SceneJob
    from sarflow.engines.native import ENGINE
    from sarflow.grid import read_raster

    tmp = tmp_path_factory.mktemp("rome")
    safe, win = patterned_copy(fixtures_dir, tmp)
    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    job = SceneJob(scene=safe, output=tmp / "native_beta0.tif", grid=ROME_GRID,
                   polarisations=["VV"], dem=dem,
                   settings=NativeSettings(calibration="beta0", thermal_noise=False))
    result = ENGINE.process(job)
    native = read_raster(job.output)
    sarsen_b0 = run_sarsen(reference, safe,
                           ellipsoidal_dem(fixtures_dir, ROME_GRID, tmp / "dem_ell.tif"),
                           tmp / "sarsen_gtc.tif")["values"]
    return {"safe": safe, "window": win, "dem": dem, "tmp": tmp, "job": job,
            "result": result, "native": native, "sarsen": sarsen_b0}


def test_native_agrees_with_sarsen_and_the_offset_is_explained(rome: dict, fixtures_dir: Path,
                                                               reference: Reference) -> None:
    nat, sar = rome["native"][0].astype(float), rome["sarsen"]
    assert nat.shape == sar.shape == ROME_GRID.shape
    ok = np.isfinite(nat) & np.isfinite(sar)
    assert ok.mean() > 0.99
    corr = np.corrcoef(nat[ok], sar[ok])[0, 1]
    assert corr > 0.98, corr
    shift = measure_shift(nat, sar)
    assert np.hypot(*shift) < 1.0, shift
    # The offset is sarsen's model, not noise: sarsen omits the bistatic azimuth term
    # (about +0.12 line here) and converts slant to ground range by interpolating linearly
    # between annotation records (-0.25..+0.41 pixel over this grid, where sarflow takes the
    # nearest record as ESA's geolocation grid does).  Mapped through the grid's Jacobian,
    # those image-space differences predict the measured shift.
    dline, dpix = sarsen_model_difference(reference, rome["safe"], fixtures_dir)
    assert 0.08 < dline.mean() < 0.16 and np.ptp(dline) < 0.02
    assert dpix.min() < -0.1 and dpix.max() > 0.2 and np.abs(dpix).max() < 0.7
    from sarflow.dem import DemSampler
    from sarflow.sentinel1 import open_product

    prod = open_product(rome["safe"])
    h = DemSampler(rome["dem"]).grid_heights(ROME_GRID)
    lon, lat = ROME_GRID.coordinates()
    line, pixel = prod.image_coordinates(lat, lon, h)
    predicted = np.linalg.solve(grid_jacobian(line, pixel), [dline.mean(), dpix.mean()])
    np.testing.assert_allclose(shift, predicted, atol=0.05)


def test_native_geometry_matches_exact_image_coordinates(rome: dict) -> None:
    """The lookup-table geometry equals sarflow.sentinel1's exact solution per pixel."""
    from sarflow.dem import DemSampler
    from sarflow.engines.native import DEFAULTS, _open_scene

    scene = _open_scene(rome["job"], DEFAULTS)
    geo = scene.block_geometry(ROME_GRID.full_window)
    h = DemSampler(rome["dem"]).grid_heights(ROME_GRID)
    # the geoid undulation is interpolated from every 16th pixel: sub-millimetre
    np.testing.assert_allclose(geo["height"], h, atol=1e-3)
    lon, lat = ROME_GRID.coordinates()
    line, pixel = scene.prod.image_coordinates(lat, lon, h)
    assert np.abs(geo["line"] - line).max() < 0.01
    assert np.abs(geo["pixel"] - pixel).max() < 0.01


def test_full_chain_sigma0_output_convention(rome: dict, fixtures_dir: Path) -> None:
    """Default chain (noise removal + sigma0): the output follows the engine convention and
    equals the product's own calibrated intensity resampled at the exact image positions."""
    from sarflow.dem import DemSampler, bilinear
    from sarflow.engines import REQUIRED_TAGS, SceneJob, band_names, validate_output
    from sarflow.engines.native import ENGINE
    from sarflow.grid import raster_info, read_raster
    from sarflow.sentinel1 import open_product

    out = rome["tmp"] / "native_sigma0.tif"
    job = SceneJob(scene=rome["safe"], output=out, grid=ROME_GRID, polarisations=["VV"],
                   dem=rome["dem"], orbit_dir=fixtures_dir / "orbits")
    result = ENGINE.process(job)
    validate_output(out, ROME_GRID, ["VV"])
    info = raster_info(out)
    assert list(info.descriptions) == band_names(["VV"])
    assert all(t in info.tags for t in REQUIRED_TAGS)
    assert info.tags["product_id"] == SAFE[:-5]
    assert info.tags["pass"] == "DESCENDING" and info.tags["relative_orbit"] == "22"
    assert info.tags["acquisition_time"] == "2021-12-23T05:11:22.594441Z"
    assert info.tags["engine"] == "native" and info.tags["polarisations"] == "VV"
    # the fixture's EOF files do not cover 2021-12-23: the annotation orbit stays, and says so
    assert info.tags["orbit_source"] == result.orbit_source == "annotation"
    assert any("IPF 003.40" in n for n in result.notes)
    assert job.log_path.is_file()
    sigma0, mask = read_raster(out)
    prod = open_product(rome["safe"])
    h = DemSampler(rome["dem"]).grid_heights(ROME_GRID)
    lon, lat = ROME_GRID.coordinates()
    line, pixel = prod.image_coordinates(lat, lon, h)
    win = rome["window"]
    ref = bilinear(prod.calibrate("VV", win, "sigma0", remove_noise=True),
                   line - win.row, pixel - win.col)
    ok = np.isfinite(ref)
    assert ok.mean() > 0.99 and np.isfinite(sigma0[ok]).all()
    rel = np.abs(sigma0[ok] - ref[ok]) / ref[ok]
    assert np.median(rel) < 1e-3 and rel.max() < 0.02
    # sigma0 of a 60..1500 DN texture with the S1B calibration (~1e-2 .. 1e0): plausible
    assert 1e-3 < np.nanmedian(sigma0) < 10
    # flat-ish Rome at 30-45 deg incidence: almost no layover/shadow, none unknown
    assert np.isfinite(mask).all() and (mask == 0).mean() > 0.98


def test_blocks_do_not_change_the_result(rome: dict) -> None:
    """Small blocks (with halos) give the same pixels as one block."""
    from dataclasses import replace

    from sarflow.engines.native import ENGINE
    from sarflow.grid import read_raster

    job = replace(rome["job"], output=rome["tmp"] / "blocks.tif",
                  settings=rome["job"].settings.model_copy(update={"block_size": 100}))
    ENGINE.process(job)
    small = read_raster(job.output)
    # each block has its own lookup nodes (geometry within 0.01 pixel of exact either way)
    np.testing.assert_allclose(small[0], rome["native"][0], rtol=1e-2, equal_nan=True)
    rel = np.abs(small[0] / rome["native"][0] - 1)
    assert np.nanmedian(rel) < 1e-4
    np.testing.assert_array_equal(small[1], rome["native"][1])


def test_geoid_conversion_moves_the_image_as_expected(rome: dict) -> None:
    """Treating the EGM96 heights as ellipsoidal (what sarsen does when fed the raw DEM)
    moves the result by the EGM96 undulation's worth of range: about 47 m of height."""
    from dataclasses import replace

    from sarflow.dem import DemSampler
    from sarflow.engines.native import ENGINE
    from sarflow.grid import read_raster
    from sarflow.sentinel1 import open_product

    job = replace(rome["job"], output=rome["tmp"] / "no_geoid.tif",
                  settings=rome["job"].settings.model_copy(update={"geoid": False}))
    ENGINE.process(job)
    raw = read_raster(job.output)[0]
    shift = measure_shift(rome["native"][0].astype(float), raw.astype(float))
    prod = open_product(rome["safe"])
    h = DemSampler(rome["dem"]).grid_heights(ROME_GRID)
    h_raw = DemSampler(rome["dem"], geoid=False).grid_heights(ROME_GRID)
    assert 45 < np.mean(h - h_raw) < 50
    lon, lat = ROME_GRID.coordinates()
    line, pixel = prod.image_coordinates(lat, lon, h)
    line_r, pixel_r = prod.image_coordinates(lat, lon, h_raw)
    assert 4.0 < np.mean(pixel_r - pixel) < 7.0  # about 5 image pixels in range
    predicted = np.linalg.solve(grid_jacobian(line, pixel),
                                [np.mean(line_r - line), np.mean(pixel_r - pixel)])
    np.testing.assert_allclose(shift, predicted, atol=0.1)


def test_border_noise_removed_for_old_ipf(rome: dict, tmp_path: Path) -> None:
    """The same product relabelled IPF 002.70, with low-DN border noise of known width
    written at the near-range edge: exactly those pixels go, also when the window asked for
    starts inside the image (the search reads from the edge); IPF 003.40 keeps them."""
    from sarflow.engines.native import DEFAULTS, _open_scene

    safe = tmp_path / SAFE
    shutil.copytree(rome["safe"], safe)
    manifest = safe / "manifest.safe"
    manifest.write_text(manifest.read_text().replace('version="003.40"', 'version="002.70"'))
    lines = slice(8000, 8060)
    rng = np.random.default_rng(4)
    width = rng.integers(20, 160, size=60)
    edge = texture((60, 600), seed=3)
    for i, w in enumerate(width):
        edge[i, :w] = rng.integers(1, 4, size=w)  # DN 1..3: below the noise floor
    meas = next((safe / "measurement").glob("*.tiff"))
    ds = gdal.Open(str(meas), gdal.GA_Update)
    ds.GetRasterBand(1).WriteArray(edge, 0, lines.start)
    ds = None
    job = rome["job"]
    from dataclasses import replace

    old = _open_scene(replace(job, scene=safe), DEFAULTS)
    assert old.prod.ipf < 2.9 and any("border noise removed" in n for n in old.notes)
    whole = old.backscatter("VV", Window(lines.start, 0, 60, 600))
    inside = old.backscatter("VV", Window(lines.start, 100, 60, 400))
    expect = np.arange(600)[None, :] < width[:, None]
    np.testing.assert_array_equal(np.isnan(whole), expect)
    np.testing.assert_array_equal(np.isnan(inside), expect[:, 100:500])
    manifest.write_text(manifest.read_text().replace('version="002.70"', 'version="003.40"'))
    new = _open_scene(replace(job, scene=safe), DEFAULTS)
    keep = new.backscatter("VV", Window(lines.start, 0, 60, 600))
    assert np.isfinite(keep).all()  # IPF >= 2.90: nothing masked; low DN -> noise floor
    assert (keep[expect] == np.float32(DEFAULTS.noise_floor)).mean() > 0.9


def test_grid_across_the_image_edge_and_outside(fixtures_dir: Path, tmp_path: Path) -> None:
    """A grid straddling the product's west (far-range) edge: NaN exactly where the image
    coordinates fall outside the image; a grid beyond the footprint is refused."""
    from sarflow.dem import DemSampler
    from sarflow.engines import SceneJob
    from sarflow.engines.native import ENGINE
    from sarflow.errors import InputError
    from sarflow.grid import read_raster, write_raster
    from sarflow.sentinel1 import open_product

    safe = fixtures_dir / "s1" / SAFE
    prod = open_product(safe)
    # where the last range pixel lies at line 8000, at 100 m above the geoid
    lat_e, lon_e = prod.ground_coordinates(np.array([8000.0]), np.array([prod.shape[1] - 1.0]),
                                           np.array([150.0]))
    grid = Grid.from_bounds(lon_e[0] - 0.01, lat_e[0] - 0.005, lon_e[0] + 0.01, lat_e[0] + 0.005)
    dem_grid = Grid.from_bounds(*(b + d for b, d in zip(grid.bounds, (-0.05, -0.05, 0.05, 0.05))))
    dem = write_raster(tmp_path / "flat.tif", np.full(dem_grid.shape, 100.0), dem_grid)
    out = tmp_path / "edge.tif"
    ENGINE.process(SceneJob(scene=safe, output=out, grid=grid, polarisations=["VV"], dem=dem))
    mask = read_raster(out)[1]
    h = DemSampler(dem).grid_heights(grid)
    lon, lat = grid.coordinates()
    _, pixel = prod.image_coordinates(lat, lon, h)
    outside = pixel > prod.shape[1] - 1
    assert 0.2 < outside.mean() < 0.8
    np.testing.assert_array_equal(np.isnan(mask), outside)
    far = Grid.from_bounds(lon_e[0] - 0.5, lat_e[0] - 0.01, lon_e[0] - 0.45, lat_e[0] + 0.01)
    far_dem = Grid.from_bounds(*(b + d for b, d in zip(far.bounds, (-0.05, -0.05, 0.05, 0.05))))
    dem2 = write_raster(tmp_path / "flat2.tif", np.full(far_dem.shape, 100.0), far_dem)
    with pytest.raises(InputError, match="does not cover the event area"):
        ENGINE.process(SceneJob(scene=safe, output=tmp_path / "far.tif", grid=far,
                                polarisations=["VV"], dem=dem2))
    assert not (tmp_path / "far.tif").exists()


def write_eof(orbit: "object", folder: Path, mission: str = "S1B") -> Path:
    """An Earth Explorer POEORB file holding ``orbit``'s state vectors (as ESA names them)."""
    import datetime as dt

    stamps = [orbit.epoch + dt.timedelta(seconds=float(t)) for t in orbit.times]
    fmt = "%Y%m%dT%H%M%S"
    name = (f"{mission}_OPER_AUX_POEORB_OPOD_{stamps[-1]:{fmt}}_V{stamps[0]:{fmt}}_"
            f"{stamps[-1]:{fmt}}.EOF")
    osv = "".join(
        f"<OSV><UTC>UTC={s:%Y-%m-%dT%H:%M:%S.%f}</UTC><X unit=\"m\">{float(p[0])!r}</X>"
        f"<Y unit=\"m\">{float(p[1])!r}</Y><Z unit=\"m\">{float(p[2])!r}</Z><VX unit=\"m/s\">{float(v[0])!r}</VX>"
        f"<VY unit=\"m/s\">{float(v[1])!r}</VY><VZ unit=\"m/s\">{float(v[2])!r}</VZ></OSV>"
        for s, p, v in zip(stamps, orbit.positions, orbit.velocities))
    text = (f"<?xml version=\"1.0\" ?><Earth_Explorer_File><Earth_Explorer_Header><Fixed_Header>"
            f"<File_Name>{name[:-4]}</File_Name><File_Type>AUX_POEORB</File_Type>"
            f"</Fixed_Header></Earth_Explorer_Header><Data_Block type=\"xml\">"
            f"<List_of_OSVs count=\"{len(stamps)}\">{osv}</List_of_OSVs></Data_Block>"
            f"</Earth_Explorer_File>")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_orbit_file_is_used_and_named(rome: dict, tmp_path: Path) -> None:
    """With an orbit folder holding a POEORB file that covers the product (here made from
    the annotation's own state vectors), the engine uses it, says so in the tags, and the
    result equals the annotation-orbit result."""
    from dataclasses import replace

    from sarflow.engines.native import ENGINE
    from sarflow.grid import raster_info, read_raster
    from sarflow.sentinel1 import open_product

    eof = write_eof(open_product(rome["safe"]).swath().orbit, tmp_path / "orbits")
    job = replace(rome["job"], output=tmp_path / "eof.tif", orbit_dir=tmp_path / "orbits")
    result = ENGINE.process(job)
    assert result.orbit_source == f"POEORB {eof.name}"
    assert raster_info(job.output).tags["orbit_source"] == result.orbit_source
    np.testing.assert_allclose(read_raster(job.output)[0], rome["native"][0], rtol=1e-3)
