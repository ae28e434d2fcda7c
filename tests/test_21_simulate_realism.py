"""sarflow.simulate's realism models, each on a small event built to isolate it: speckle at
the resolution cell, repeat passes in the orbital tube, three sub-swaths with per-swath
noise vectors, and the scar change model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sarflow.simulate import PRESETS, SimulationSettings, simulate_event

FLAT = dict(median_slope_deg=0.0, landslide_fraction=0.0, texture_db=0.0,
            moisture_field_db=0.0, date_sigma_db={"forest": 0.0, "grassland": 0.0, "bare": 0.0})
"""Flat, homogeneous grassland: no relief, landslides, texture or date-to-date change."""


def _scenes(event: Path) -> list[Path]:
    return sorted((event.parent / "scenes").glob("*.zip"))


def _records(event: Path) -> dict[str, dict]:
    doc = json.loads((event.parent / "truth" / "settings.json").read_text())
    return {r["product_id"]: r for r in doc["scenes"]}


# ------------------------------------------------------------------------------------
# speckle at the resolution cell
# ------------------------------------------------------------------------------------

def _expected_intensity_correlation(resolution_m: float, spacing_m: float, a: float) -> float:
    """Intensity correlation of pixels ``spacing_m`` apart for an impulse response whose
    spectrum is a band weighted by a generalised Hamming window (coefficient ``a``) and
    whose |h|^2 is ``resolution_m`` wide at -3 dB: |R(d)|^2 (Siegert), R the normalised
    autocorrelation of h, the Fourier transform of |H|^2.  Continuous integrals, computed
    here independently of the simulator's discrete FFT."""
    f = np.linspace(-0.5, 0.5, 20001)  # in units of the band B
    w = a + (1.0 - a) * np.cos(2.0 * np.pi * f)

    def h2(x: np.ndarray) -> np.ndarray:  # |h(x)|^2 / |h(0)|^2, x in units of 1 / B
        h = np.trapezoid(w * np.cos(2.0 * np.pi * f * x[:, None]), f, axis=1)
        return (h / np.trapezoid(w, f)) ** 2

    from scipy.optimize import brentq

    half = brentq(lambda x: h2(np.array([x]))[0] - 0.5, 0.1, 1.0)
    band = 2.0 * half / resolution_m  # cycles per metre: -3 dB width = resolution
    x = spacing_m * band
    r = np.trapezoid(w * w * np.cos(2.0 * np.pi * f * x), f) / np.trapezoid(w * w, f)
    return float(r * r)


def _normalised_intensity(z: Path, pol: str) -> np.ndarray:
    """DN^2 of a product divided by its mean per range column (removes the calibration
    and noise trends across range), over the image."""
    from sarflow.sentinel1.safe import open_product

    dn = open_product(z).read_dn(pol).astype(np.float64)
    assert (dn > 0).all()
    i = dn ** 2
    return i / i.mean(axis=0, keepdims=True)


@pytest.fixture(scope="module")
def flat_cell_event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    s = SimulationSettings(speckle="cell", **FLAT)
    return simulate_event(tmp_path_factory.mktemp("cell"), seed=21, size=(160, 160),
                          scenes_per_window=1, settings=s)


def test_cell_speckle_has_enl_4_4_and_the_impulse_response_correlation(flat_cell_event: Path
                                                                        ) -> None:
    from sarflow.simulate.backscatter import HAMMING

    s = SimulationSettings()
    expected_rg = _expected_intensity_correlation(s.resolution_m[0], 10.0, HAMMING)
    expected_az = _expected_intensity_correlation(s.resolution_m[1], 10.0, HAMMING)
    assert 0.3 < expected_rg < expected_az < 0.9  # correlated over about two pixels
    for z in _scenes(flat_cell_event):
        for pol in ("VV", "VH"):
            i = _normalised_intensity(z, pol)
            enl = 1.0 / i.var()
            assert abs(enl - 4.4) < 0.44, (z.name, pol, enl)
            a = i - 1.0
            rg = (a[:, 1:] * a[:, :-1]).mean() / a.var()
            az = (a[1:] * a[:-1]).mean() / a.var()
            assert abs(rg - expected_rg) < 0.04, (z.name, pol, rg, expected_rg)
            assert abs(az - expected_az) < 0.04, (z.name, pol, az, expected_az)
            # two pixels apart: much weaker, three apart: almost none
            assert (a[:, 3:] * a[:, :-3]).mean() / a.var() < 0.1


def test_pixel_speckle_is_uncorrelated(tmp_path: Path) -> None:
    """The default model: independent per pixel, ENL 4.4."""
    event = simulate_event(tmp_path, seed=21, size=(96, 96), scenes_per_window=1,
                           settings=SimulationSettings(**FLAT))
    i = _normalised_intensity(_scenes(event)[0], "VV")
    a = i - 1.0
    assert abs(1.0 / i.var() - 4.4) < 0.44
    assert abs((a[:, 1:] * a[:, :-1]).mean() / a.var()) < 0.03
    assert abs((a[1:] * a[:-1]).mean() / a.var()) < 0.03


# ------------------------------------------------------------------------------------
# repeat passes in the orbital tube
# ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tube_event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    s = SimulationSettings(orbit_tube_m=100.0, moisture_field_db=0.0)
    return simulate_event(tmp_path_factory.mktemp("tube"), seed=4, size=(64, 64),
                          scenes_per_window=2, settings=s)


def test_repeat_pass_orbits_differ_by_at_most_the_tube(tube_event: Path) -> None:
    """The perpendicular distance between two dates' orbits (the annotation's state
    vectors, shifted by the repeat time) is at most the tube's diameter, and the passes do
    not repeat exactly."""
    from sarflow.sentinel1 import zero_doppler
    from sarflow.sentinel1.safe import open_product

    records = _records(tube_event)
    for pass_dir in ("ASCENDING", "DESCENDING"):
        prods = [open_product(z) for z in _scenes(tube_event)
                 if records[z.stem]["pass"] == pass_dir]
        assert len(prods) == 4
        for p in prods:
            off = records[p.id]["orbit_offset_m"]
            assert np.hypot(off["radial"], off["cross_track"]) <= 50.0
        seps = []
        for a in prods:
            oa = a.swath("VV").orbit
            mid = oa.positions[oa.positions.shape[0] // 2 - 2: oa.positions.shape[0] // 2 + 3]
            for b in prods:
                if b is a:
                    continue
                ob = b.swath("VV").orbit
                _, dist = zero_doppler(ob, mid, t0=ob.mid_time)
                seps.append(dist.max())
        assert max(seps) <= 100.0 + 0.5, max(seps)
        assert max(seps) > 10.0  # the orbits really differ


def test_tube_geolocation_grids_are_reproduced_by_the_reader(tube_event: Path) -> None:
    """Each date's geolocation grid follows its own orbit: sarflow.sentinel1's range-Doppler
    geometry from the annotation's state vectors reproduces it, as for exact repeats."""
    from sarflow.sentinel1.safe import open_product

    grids = {}
    for z in _scenes(tube_event):
        prod = open_product(z)
        g = prod.swath("VV").geolocation_grid
        line, pixel = prod.image_coordinates(g.latitude, g.longitude, g.height)
        assert np.abs(line - g.line).max() < 0.01
        assert np.abs(pixel - g.pixel).max() < 0.01
        lat, lon = prod.ground_coordinates(g.line, g.pixel, g.height)
        assert np.abs(lat - g.latitude).max() < 1e-6 and np.abs(lon - g.longitude).max() < 1e-6
        grids.setdefault(prod.pass_direction, []).append(g)
    for gs in grids.values():  # the frame follows the area, its ranges follow the orbit
        srt = [g.slant_range_time[0] for g in gs]
        assert max(srt) - min(srt) > 3e-8  # more than 4.5 m apart


def test_tube_event_geocodes_onto_the_truth(tube_event: Path) -> None:
    """The native engine, reading each date's own orbit, lands every date on the truth."""
    from sarflow.config import load_config
    from sarflow.engines import SceneJob
    from sarflow.engines.native import ENGINE
    from sarflow.grid import read_raster

    from test_23_native_rome import measure_shift

    cfg = load_config(tube_event)
    for z in _scenes(tube_event)[:3]:
        out = tube_event.parent / "native" / f"{z.stem}.tif"
        ENGINE.process(SceneJob(scene=z, output=out, grid=cfg.grid(), polarisations=["VV"],
                                dem=cfg.dem))
        est = read_raster(out)[0]
        truth = read_raster(tube_event.parent / "truth" / "sigma0" / f"{z.stem}.tif")[0]
        db = lambda a: 10 * np.log10(np.clip(np.nan_to_num(a, nan=1e-3), 1e-5, None))  # noqa: E731
        shift = measure_shift(db(truth), db(est))
        assert np.hypot(*shift) < 0.25, (z.name, shift)


# ------------------------------------------------------------------------------------
# three sub-swaths
# ------------------------------------------------------------------------------------

def test_nesz_table_is_the_real_products_pattern(fixtures_dir: Path) -> None:
    """The simulator's per-swath NESZ equals noiseRangeLut / sigmaNought^2 of the real
    S1B product in the fixtures (within 0.6 dB, azimuth factors aside), seams included."""
    from sarflow.sentinel1.safe import open_product
    from sarflow.simulate import swaths

    prod = open_product(next((fixtures_dir / "s1").glob("S1B_IW_GRDH_*.SAFE")))
    sw = prod.swath("VV")
    g = sw.geolocation_grid
    from sarflow.grid import Window

    line = int(np.median(g.line))
    win = Window(row=line, col=0, height=1, width=prod.shape[1])
    noise = prod.noise_lut("VV", win)[0].astype(np.float64)
    lut = prod.calibration_lut("VV", "sigma0", win)[0].astype(np.float64)
    pixels = np.arange(0, prod.shape[1], 97)
    sel = g.line == g.line[np.argmin(np.abs(g.line - line))]
    inc = np.interp(pixels, g.pixel[sel], g.incidence_angle[sel])
    with np.errstate(divide="ignore"):  # the product's noise LUT is 0 at its far edge
        real = 10 * np.log10(noise[pixels] / lut[pixels] ** 2)
    index = np.zeros(pixels.size, dtype=int)  # the product's own sub-swath of each pixel
    for b in sw.noise.azimuth:
        index[(pixels >= b.first_sample) & (pixels <= b.last_sample)] = swaths.SWATHS.index(b.swath)
    sim = swaths.nesz_db(inc, index)
    ok = (inc > 30.6) & (inc < 45.8)
    # seams (by incidence) within 0.05 degrees of the product's own
    assert np.all(np.abs(swaths.swath_of_incidence(inc[ok]) - index[ok]) * np.minimum(
        np.abs(inc[ok] - swaths.SEAM_INCIDENCE_DEG[0]),
        np.abs(inc[ok] - swaths.SEAM_INCIDENCE_DEG[1])) < 0.05)
    # the real product's azimuth factor (1 .. 1.14) raises it by up to 0.6 dB
    assert np.all(real[ok] - sim[ok] > -0.45) and np.all(real[ok] - sim[ok] < 0.8)
    near = ok & (np.abs(inc - swaths.SEAM_INCIDENCE_DEG[1]) < 0.3)
    assert near.sum() > 4


@pytest.fixture(scope="module")
def swath_event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flat homogeneous grassland, descending pass across the IW2/IW3 seam, the hard
    preset's noise-vector error, a noisy instrument (+3 dB NESZ) so that VH noise matters."""
    s = SimulationSettings(subswaths="IW1-IW3", noise_error_db=PRESETS["hard"]["noise_error_db"],
                           nesz_offset_db=3.0, passes=("DESCENDING",),
                           incidence_deg={"ASCENDING": 39.0, "DESCENDING": 41.65}, **FLAT)
    return simulate_event(tmp_path_factory.mktemp("swaths"), seed=8, size=(192, 192),
                          scenes_per_window=1, settings=s)


def test_noise_annotation_has_per_swath_vectors(swath_event: Path) -> None:
    from sarflow.sentinel1.safe import open_product

    prod = open_product(_scenes(swath_event)[0])
    assert prod.noise_format == "new"
    blocks = prod.swath("VH").noise.azimuth
    assert [b.swath for b in blocks] == ["IW2", "IW3"]
    assert blocks[0].first_sample == 0 and blocks[1].first_sample == blocks[0].last_sample + 1
    assert blocks[1].last_sample == prod.shape[1] - 1
    # the annotated NESZ steps down across the seam, as the real pattern does
    from sarflow.grid import Window

    seam = blocks[1].first_sample
    win = Window(row=prod.shape[0] // 2, col=seam - 1, height=1, width=2)
    nesz = prod.noise_lut("VH", win)[0] / prod.calibration_lut("VH", "sigma0", win)[0] ** 2
    assert 10 * np.log10(nesz[0] / nesz[1]) > 0.5


def test_vh_seam_step_after_noise_removal_is_below_half_a_db(swath_event: Path) -> None:
    """Native engine, VH, flat homogeneous ground: after thermal noise removal the mean
    sigma0 (relative to the noise-free truth) steps by less than 0.5 dB across the seam,
    and each sub-swath is unbiased to 0.3 dB (noise is 40 % of the signal here, so wrong
    per-swath vectors would show)."""
    from sarflow.config import load_config
    from sarflow.engines import SceneJob
    from sarflow.engines.native import ENGINE
    from sarflow.grid import raster_info, read_raster
    from sarflow.sentinel1.geoid import geoid_undulation
    from sarflow.sentinel1.safe import open_product

    cfg = load_config(swath_event)
    grid = cfg.grid()
    records = _records(swath_event)
    for z in _scenes(swath_event):
        prod = open_product(z)
        out = swath_event.parent / "native" / f"{z.stem}.tif"
        ENGINE.process(SceneJob(scene=z, output=out, grid=grid, polarisations=["VV", "VH"],
                                dem=cfg.dem))
        est = read_raster(out)[1]
        truth = read_raster(swath_event.parent / "truth" / "sigma0" / f"{z.stem}.tif")[1]
        lon, lat = grid.coordinates()
        h = read_raster(cfg.dem, raster_info(cfg.dem).grid.window_of(grid))[0]
        _, pixel = prod.image_coordinates(lat, lon, h + geoid_undulation(lat, lon))
        seam = prod.swath("VH").noise.azimuth[1].first_sample
        assert records[z.stem]["swaths"][1]["first_sample"] == seam
        ratio = 10 * np.log10(est / truth)
        left = (pixel < seam - 3) & (pixel > seam - 43)
        right = (pixel >= seam + 3) & (pixel < seam + 43)
        assert left.sum() > 2000 and right.sum() > 2000
        m_left = 10 * np.log10(np.mean(est[left]) / np.mean(truth[left]))
        m_right = 10 * np.log10(np.mean(est[right]) / np.mean(truth[right]))
        assert abs(m_left - m_right) < 0.5, (z.name, m_left, m_right)
        assert abs(m_left) < 0.3 and abs(m_right) < 0.3, (z.name, m_left, m_right)
        assert np.isfinite(ratio[left | right]).all()


# ------------------------------------------------------------------------------------
# scar change model and wet dates
# ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scar_event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    s = SimulationSettings(change_model="scar", moisture_field_db=0.0, wet_post_dates=1,
                           passes=("ASCENDING",), landslide_fraction=0.08,
                           date_sigma_db={"forest": 0.0, "grassland": 0.0, "bare": 0.0})
    return simulate_event(tmp_path_factory.mktemp("scar"), seed=9, size=(192, 192),
                          scenes_per_window=2, settings=s)


def test_scar_change_depends_on_land_cover_and_incidence(scar_event: Path) -> None:
    """Noise-free truth, post - pre on landslide interiors: both signs occur; scars that
    replaced forest lose more VH than those that replaced grassland; slopes facing the
    (east-looking, ascending) radar brighten relative to slopes facing away."""
    from scipy.ndimage import binary_erosion

    from sarflow.config import load_config
    from sarflow.grid import raster_info, read_raster
    from sarflow.simulate import terrain

    records = _records(scar_event)
    root = scar_event.parent
    mask = read_raster(root / "truth" / "landslides.tif")[0] > 0
    slides = binary_erosion(mask, iterations=1)
    lc = read_raster(root / "truth" / "landcover.tif")[0]
    dh = read_raster(root / "truth" / "surface_change.tif")[0]
    assert dh[mask].min() < -0.5 and dh[mask].max() > 0.5 and (dh[~mask] == 0).all()
    pre, post, wet = [], [], []
    for z in _scenes(scar_event):
        t = read_raster(root / "truth" / "sigma0" / f"{z.stem}.tif")
        rec = records[z.stem]
        (post if rec["post_event"] else pre).append(t)
        if rec["post_event"]:
            wet.append(rec["gamma0_db"]["grassland"]["VV"])
    assert len(pre) == len(post) == 2
    assert wet[0] - wet[1] == pytest.approx(1.5, abs=1e-9)  # the first post date is wet
    # the dry post date against the mean of the pre dates
    clear = (pre[0][2] == 0) & (post[1][2] == 0) & slides
    change = 10 * np.log10(post[1][:2] / np.mean([p[:2] for p in pre], axis=0))
    vv, vh = change[0][clear], change[1][clear]
    assert (vv > 0.5).mean() > 0.02 and (vv < -1.0).mean() > 0.3  # mostly darker, not all
    forest, grass = lc[clear] == 0, lc[clear] == 1
    assert forest.sum() > 100 and grass.sum() > 20
    assert np.median(vh[forest]) < np.median(vh[grass]) - 2.0
    cfg = load_config(scar_event)
    info = raster_info(cfg.dem)
    p, _ = terrain.gradients(read_raster(cfg.dem)[0], info.grid)
    p = p[info.grid.window_of(cfg.grid()).slices][clear]  # > 0: faces west, towards the radar
    assert np.median(vv[p > 0.3]) > np.median(vv[p < -0.3]) + 1.0
    # unchanged ground does not change (dry date, no date-to-date variation)
    away = (pre[0][2] == 0) & binary_erosion(~mask, iterations=4)
    assert np.abs(np.median(change[0][away])) < 0.02


# ------------------------------------------------------------------------------------
# reproducibility, presets, corpus, command line
# ------------------------------------------------------------------------------------

def _digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_hard_preset_same_seed_same_bytes(tmp_path: Path) -> None:
    s = SimulationSettings.preset("hard")
    a = simulate_event(tmp_path / "a", seed=3, size=(40, 40), scenes_per_window=1, settings=s,
                       workers=1).parent
    b = simulate_event(tmp_path / "b", seed=3, size=(40, 40), scenes_per_window=1, settings=s,
                       workers=2).parent
    da = _digest(a)
    assert da == _digest(b)
    assert "truth/surface_change.tif" in da and len(da) == 15


def test_cli_simulate_preset_and_options(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sarflow.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["simulate", str(tmp_path / "h"), "--preset", "hard", "--size", "40",
                              "--scenes-per-window", "1", "--speckle", "pixel",
                              "--orbit-tube", "60"])
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "h" / "truth" / "settings.json").read_text())["settings"]
    want = {**PRESETS["hard"], "speckle": "pixel", "orbit_tube_m": 60.0}
    assert {k: got[k] for k in want} == want
    res = runner.invoke(cli, ["simulate", str(tmp_path / "d"), "--size", "40",
                              "--scenes-per-window", "1", "--subswaths", "IW1-IW3",
                              "--change-model", "scar", "--wet-post-dates", "1"])
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "d" / "truth" / "settings.json").read_text())["settings"]
    assert (got["subswaths"], got["change_model"], got["wet_post_dates"], got["speckle"]) == (
        "IW1-IW3", "scar", 1, "pixel")
    bad = runner.invoke(cli, ["simulate", str(tmp_path / "x"), "--preset", "impossible"])
    assert bad.exit_code == 2


def test_cli_simulate_corpus_writes_varied_events_and_resumes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sarflow.cli import cli
    from sarflow.config import load_config

    runner = CliRunner()
    out = tmp_path / "corpus"
    args = ["simulate-corpus", "2", str(out), "--size", "40", "--seed", "5", "--preset", "default"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "corpus.json").read_text())
    assert [e["folder"] for e in doc["events"]] == ["event_000", "event_001"]
    settings = [e["settings"] for e in doc["events"]]
    for key in ("median_slope_deg", "landslide_fraction", "center", "incidence_deg"):
        assert len({json.dumps(s[key]) for s in settings}) == 2, key
    assert all(s["speckle"] == "pixel" for s in settings)
    for e in doc["events"]:
        cfg = load_config(out / e["event"])
        assert cfg.grid().shape == (40, 40)
        n = len(list((out / e["folder"] / "scenes").glob("*.zip")))
        assert n == 2 * e["settings"]["scenes_per_window"] * len(e["settings"]["passes"])
    before = _digest(out)
    stamp = (out / "event_001" / "event.yaml").stat().st_mtime_ns
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert (out / "event_001" / "event.yaml").stat().st_mtime_ns == stamp  # kept, not rewritten
    assert _digest(out) == before


def test_corpus_both_passes_changes_only_the_passes() -> None:
    """Corpus seed 0 draws one pass for events 0, 1, 4 and 6 of its first 8; with
    ``both_passes`` every event has both and all other drawn settings are the same."""
    from sarflow.simulate.corpus import corpus_settings

    drawn = [corpus_settings(k, 0).to_dict() for k in range(8)]
    both = [corpus_settings(k, 0, both_passes=True).to_dict() for k in range(8)]
    assert [k for k, s in enumerate(drawn) if len(s["passes"]) == 1] == [0, 1, 4, 6]
    for d, b in zip(drawn, both):
        assert list(b["passes"]) == ["ASCENDING", "DESCENDING"]
        assert {k: v for k, v in b.items() if k != "passes"} == {
            k: v for k, v in d.items() if k != "passes"}


def test_cli_simulate_corpus_both_passes(tmp_path: Path) -> None:
    """`--both-passes`: event 0 of corpus seed 0 (drawn: descending only) gets scenes of
    both passes, and corpus.json says so."""
    from click.testing import CliRunner

    from sarflow.cli import cli

    out = tmp_path / "corpus"
    res = CliRunner().invoke(cli, ["simulate-corpus", "1", str(out), "--size", "40",
                                   "--preset", "default", "--both-passes"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "corpus.json").read_text())
    s = doc["events"][0]["settings"]
    assert doc["both_passes"] is True and list(s["passes"]) == ["ASCENDING", "DESCENDING"]
    names = [p.name for p in (out / "event_000" / "scenes").glob("*.zip")]
    assert len(names) == 4 * s["scenes_per_window"]
