"""The import engine: OPERA RTC-S1 (the real fixture), HyP3 RTC zips and sidecar folders of
GeoTIFFs go through the normal commands onto the lattice and into the stacker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sarflow.cli import cli
from tests.rasters import write_geotiff
from sarflow.grid import Grid, raster_info, read_raster
from sarflow.regrid import resample_to_grid
from sarflow.rtc_products import (RtcProduct, find_rtc_products, open_rtc_product,
                                  pass_from_solar_time, read_on_grid, to_linear_power)
from sarflow.workdir import WorkDir

BBOX = [143.3445, -5.3855, 143.3840, -5.3590]  # inside the OPERA crop (UTM 54S)


def _invoke(args):
    res = CliRunner().invoke(cli, ["-q"] + [str(a) for a in args], catch_exceptions=False)
    return res


def _event(tmp: Path, scenes, bbox, event_time, pre, post, name="ev") -> Path:
    cfg = {"name": name, "event": {"time": event_time}, "area": {"bbox": bbox},
           "windows": {"pre": pre, "post": post}, "scenes": [str(s) for s in scenes],
           "output": str(tmp / f"work_{name}")}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _to_db(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(x)


# ------------------------------------------------------------------------------------
# OPERA RTC-S1: the real fixture
# ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def opera_event(tmp_path_factory, fixtures_dir):
    """The 10 OPERA dates with a pseudo-event between the 5th (03-11) and 6th (03-23)."""
    tmp = tmp_path_factory.mktemp("opera")
    cfg = _event(tmp, [fixtures_dir / "rtc_stack"], BBOX, "2024-03-17T00:00:00Z",
                 ["2024-01-01", "2024-03-16"], ["2024-03-17", "2024-05-31"], name="mulitaka")
    listing = _invoke(["scenes", "list", cfg, "--json"])
    pre = _invoke(["preprocess", cfg, "--workers", "1", "--no-progress", "--json"])
    stack = _invoke(["stack", cfg, "--workers", "1"])
    return cfg, listing, pre, stack


def test_opera_products_recognised_from_names(fixtures_dir):
    prods, failed = find_rtc_products([fixtures_dir / "rtc_stack"])
    assert failed == [] and len(prods) == 10
    p = prods[0]
    assert p.kind == "OPERA_RTC" and p.radiometry == "gamma0" and p.scale == "power"
    assert p.polarisations == ["VV", "VH"] and p.relative_orbit == 9
    assert p.start == dt.datetime(2024, 1, 23, 8, 47, 48, tzinfo=dt.timezone.utc)
    # tags are stripped in the fixture: the pass comes from the local solar time,
    # 08:47 UTC + 143.36 E / 15 = 18:21 local: ascending (track 9 is ascending there)
    assert (p.pass_direction, p.pass_source) == ("ASCENDING", "solar time")
    assert p.burst == "T009-019294-IW2"


def test_solar_time_rule():
    t = dt.datetime(2024, 1, 1, 5, 20, tzinfo=dt.timezone.utc)
    assert pass_from_solar_time(t, 10.0) == "DESCENDING"            # 06:00 local
    assert pass_from_solar_time(t.replace(hour=17), 10.0) == "ASCENDING"   # 17:40 local
    assert pass_from_solar_time(t.replace(hour=21), -60.0) == "ASCENDING"  # 17:20 local
    assert pass_from_solar_time(t.replace(hour=22), 143.0) == "DESCENDING"  # 07:32 next day


def test_opera_scenes_list(opera_event):
    _, listing, _, _ = opera_event
    assert listing.exit_code == 0, listing.output
    data = json.loads(listing.output)
    assert data["counts"]["ASCENDING"] == {"pre": 5, "post": 5}
    assert data["counts"]["DESCENDING"] == {"pre": 0, "post": 0}
    assert {s["product_type"] for s in data["scenes"]} == {"OPERA_RTC"}
    assert {s["radiometry"] for s in data["scenes"]} == {"gamma0"}
    assert all(s["coverage"] == 1.0 for s in data["scenes"])
    assert any("no DESCENDING scene in the post-event window" in w for w in data["warnings"])


def test_opera_auto_uses_import_engine_without_dem(opera_event):
    _, _, pre, _ = opera_event
    assert pre.exit_code == 0, pre.output
    summary = json.loads(pre.output)
    assert summary["engine"] == "import"
    assert summary["counts"]["done"] == 10
    assert {s["engine"] for s in summary["scenes"]} == {"import"}


def test_opera_outputs_record_gamma0(opera_event):
    cfg, _, _, stack = opera_event
    assert stack.exit_code == 0, stack.output
    wd = WorkDir(Path(cfg).parent / "work_mulitaka")
    scene = sorted(wd.preprocessed.glob("*.tif"))[0]
    info = raster_info(scene)
    assert info.descriptions == ("gamma0_VV", "gamma0_VH", "layover_shadow")
    assert info.tags["radiometry"] == "gamma0" and info.tags["engine"] == "import"
    assert "bilinear" in info.tags["resampling"]  # 30 m source, 10 m lattice: coarser
    assert info.tags["layover_shadow_source"].startswith("none:")  # the fixture has no mask layer
    for name in ("G1", "G2", "fusion_quality"):
        assert raster_info(wd.group(name) if name != "fusion_quality"
                           else wd.stack / "changes" / "fusion_quality.tif").tags["radiometry"] == "gamma0"
    assert raster_info(wd.median("asc", "VV", "pre")).tags["radiometry"] == "gamma0"


def _byte_raster_like(path: Path, like: Path, data: np.ndarray, nodata: int) -> Path:
    """A Byte GeoTIFF on ``like``'s grid (OPERA writes its mask layer so)."""
    from osgeo import gdal

    src = gdal.Open(str(like))
    ds = gdal.GetDriverByName("GTiff").Create(str(path), src.RasterXSize, src.RasterYSize, 1,
                                              gdal.GDT_Byte)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    ds.GetRasterBand(1).SetNoDataValue(nodata)
    ds.GetRasterBand(1).WriteArray(data)
    ds = None
    return path


def test_opera_mask_layer_becomes_the_layover_shadow_band(tmp_path, fixtures_dir):
    """OPERA's mask layer beside a burst (0 clear, 1 shadow, 2 layover, 3 both, 255
    invalid) is read in sarflow's coding (1 layover, 2 shadow, 3 both), pixel for pixel."""
    src = sorted((fixtures_dir / "rtc_stack").rglob("*_20240123T*_V[VH]_tv_cropped.tif"))
    for f in src:
        (tmp_path / f.name).symlink_to(f)
    vv = tmp_path / src[-1].name
    assert "_VV_" in vv.name
    code = np.zeros((100, 150), np.uint8)
    code[20:40, 30:50] = 1     # shadow
    code[50:70, 30:50] = 2     # layover
    code[20:40, 80:100] = 3    # both
    code[50:70, 80:100] = 255  # invalid: says nothing
    mask = _byte_raster_like(tmp_path / vv.name.replace("_VV_", "_mask_"), vv, code, 255)
    prod = open_rtc_product(vv)
    assert prod.mask_files == [str(mask)] and prod.mask_coding == "opera_mask"
    grid = Grid.from_bounds(*BBOX)
    data, _ = read_on_grid(prod, grid, ["VV", "VH"])
    raw, _ = resample_to_grid(str(mask), grid, method="nearest", nodata=255)
    valid = np.isfinite(data[:2]).all(axis=0)
    expected = np.select([raw == 1, raw == 2, raw == 3], [2.0, 1.0, 3.0], 0.0)
    expected[~valid] = np.nan
    np.testing.assert_array_equal(data[2], expected)
    for v in (1.0, 2.0, 3.0):
        assert np.count_nonzero(data[2] == v) > 1000  # 600 m blocks: about 3600 lattice px
    assert np.count_nonzero(np.isnan(raw) & valid) > 1000  # the 255 block stays clear
    plain, _ = read_on_grid(open_rtc_product(src[-1]), grid, ["VV", "VH"])
    assert set(np.unique(plain[2][valid])) == {0.0}  # without the layer: clear where valid


def test_mask_files_without_a_known_coding_are_refused(tmp_path, fixtures_dir):
    """A product given mask files but no (or an unknown) coding fails when it is made, not
    after its backscatter has been resampled."""
    vv = sorted((fixtures_dir / "rtc_stack").rglob("*_20240123T*_VV_tv_cropped.tif"))[0]
    prod = open_rtc_product(vv)
    kept = dataclasses.asdict(prod)
    for coding in (None, "gamma_ls"):
        with pytest.raises(ValueError, match="mask_coding, one of hyp3_ls_map, opera_mask"):
            RtcProduct(**{**kept, "mask_files": ["mask.tif"], "mask_coding": coding})
    assert RtcProduct(**{**kept, "mask_files": [], "mask_coding": None}).mask_files == []


def test_radiometry_is_part_of_the_scene_provenance(opera_event):
    """A gamma0 output is never taken for the sigma0 output of the same product (and the
    pipeline's stack stage counts a one-pass stack as complete)."""
    import dataclasses

    from sarflow.config import load_config
    from sarflow.pipeline import STAGES
    from sarflow.products import SceneOutput

    cfg_path, _, _, _ = opera_event
    cfg = load_config(cfg_path)
    wd = WorkDir(cfg.output)
    out = SceneOutput(sorted(wd.preprocessed.glob("*.tif"))[0])
    recorded = out.provenance()
    assert recorded.settings["radiometry"] == "gamma0"
    assert recorded.settings["engine"] == "import" and recorded.inputs["dem"] is None
    as_sigma0 = dataclasses.replace(recorded, settings={**recorded.settings, "radiometry": "sigma0"})
    assert as_sigma0.digest != recorded.digest
    why = out.why_not_current(cfg.grid(), cfg.polarisations, as_sigma0)
    assert why is not None and "radiometry 'gamma0', now 'sigma0'" in why
    assert out.why_not_current(cfg.grid(), cfg.polarisations, recorded) is None
    stack_stage = next(s for s in STAGES if s.name == "stack")
    outputs = stack_stage.outputs(cfg)
    assert [p.stem for p in outputs] == ["G1", "G2", "G4", "G5", "G6"]  # G3 needs descending
    assert all(p.exists() for p in outputs)


def test_opera_one_pass_leaves_out_descending_outputs(opera_event):
    cfg, _, _, stack = opera_event
    wd = WorkDir(Path(cfg).parent / "work_mulitaka")
    sel = json.loads((wd.stack / "selection.json").read_text())["selection"]
    assert sel["passes"] == ["asc"]
    assert set(sel["left_out"]) >= {"G3", "change_desc_VV", "change_desc_VH"}
    assert "no descending" in sel["left_out"]["G3"]
    assert not wd.group("G3").exists() and wd.group("G1").exists()
    assert "left out" in stack.output and "G3" in stack.output
    g1, g2 = read_raster(wd.group("G1")), read_raster(wd.group("G2"))
    np.testing.assert_array_equal(g1, g2)  # one pass: the fused change is that pass's
    assert "ascending only" in raster_info(wd.group("G1")).tags["passes"]


def test_opera_medians_match_direct_numpy_median(opera_event, fixtures_dir):
    """The stacked medians equal numpy's median of the same dates resampled the same way."""
    cfg, _, _, _ = opera_event
    wd = WorkDir(Path(cfg).parent / "work_mulitaka")
    grid = Grid.from_bounds(*BBOX)
    files = sorted((fixtures_dir / "rtc_stack").rglob("*.tif"))
    for pol in ("VV", "VH"):
        dated = sorted(f for f in files if f"_{pol}_" in f.name)
        assert len(dated) == 10
        direct = {}
        for win, chosen in (("pre", dated[:5]), ("post", dated[5:])):
            stack = np.stack([_to_db(resample_to_grid(str(f), grid, method="bilinear")[0]) for f in chosen])
            with np.errstate(all="ignore"):
                direct[win] = np.nanmedian(stack, axis=0)
            got = read_raster(wd.median("asc", pol, win))
            ok = np.isfinite(direct[win])
            assert ok.mean() > 0.99
            np.testing.assert_array_equal(np.isfinite(got[0]), ok)
            assert np.abs(got[0][ok] - direct[win][ok]).max() < 1e-4
            assert (got[1][ok] == 5).all()
        change = read_raster(wd.change("asc", pol))[0]
        ok = np.isfinite(change)
        assert np.abs(change[ok] - (direct["pre"] - direct["post"])[ok]).max() < 1e-4


def test_bilinear_matches_independent_interpolation(fixtures_dir):
    """GDAL's bilinear onto the lattice equals scipy's order-1 interpolation of the source at
    the lattice pixel centres projected to UTM 54S with pyproj."""
    from osgeo import gdal
    from pyproj import Transformer
    from scipy.ndimage import map_coordinates

    f = sorted((fixtures_dir / "rtc_stack").rglob("*_VV_*.tif"))[0]
    grid = Grid.from_bounds(143.350, -5.380, 143.378, -5.362)  # well inside: no edge pixels
    got, method = resample_to_grid(str(f), grid)
    assert method == "bilinear"
    ds = gdal.Open(str(f))
    src = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    lon, lat = grid.coordinates()
    x, y = Transformer.from_crs(4326, 32754, always_xy=True).transform(lon, lat)
    col, row = (x - x0) / dx - 0.5, (y - y0) / dy - 0.5
    want = map_coordinates(src, [row.ravel(), col.ravel()], order=1).reshape(grid.shape)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=2e-4)


def _utm_raster(path: Path, data: np.ndarray, origin: tuple[float, float], pixel: float,
                epsg: int, nodata: float | None = None) -> Path:
    return write_geotiff(path, data.astype(np.float32), origin, pixel, epsg, nodata)


def test_finer_source_is_area_averaged(tmp_path):
    """A 2 m checkerboard of 1 and 3 (finer than the 10 m lattice) averages to 2, where
    sampling it (nearest) would give 1s and 3s."""
    board = np.where((np.add.outer(np.arange(900), np.arange(900)) % 2) == 0, 1.0, 3.0)
    path = _utm_raster(tmp_path / "fine.tif", board.astype(np.float32), (500000.0, 5100000.0), 2.0, 32632)
    grid = Grid.from_bounds(9.002, 46.039, 9.021, 46.052)
    got, method = resample_to_grid(str(path), grid)
    assert method == "average"
    ok = np.isfinite(got)
    assert ok.mean() > 0.9
    assert abs(got[ok].mean() - 2.0) < 0.01 and got[ok].std() < 0.05
    sampled, _ = resample_to_grid(str(path), grid, method="nearest")
    assert np.nanstd(sampled) > 0.9


# ------------------------------------------------------------------------------------
# a generic folder with a sidecar: UTM 20 m dB vs linear power on the lattice
# ------------------------------------------------------------------------------------

GEN_BBOX = [9.40, 46.00, 9.43, 46.02]  # UTM 32N
DATES = [("2023-05-01", "desc"), ("2023-05-07", "asc"), ("2023-05-13", "desc"),
         ("2023-05-19", "asc"), ("2023-05-25", "desc"), ("2023-05-31", "asc"),
         ("2023-06-12", "desc"), ("2023-06-18", "asc"), ("2023-06-24", "desc"),
         ("2023-06-30", "asc"), ("2023-07-06", "desc"), ("2023-07-12", "asc")]
# UTC times for local solar 06:00 (desc) and 18:00 (asc) at 9.4 E: 05:22 and 17:22


def _field_db(x: np.ndarray, y: np.ndarray, k: int, pol: str) -> np.ndarray:
    """A smooth backscatter field (dB) in UTM metres, different for each date and pol."""
    base = -8.0 if pol == "VV" else -15.0
    rng = np.random.default_rng(100 + k + (50 if pol == "VH" else 0))
    a, b, phase = rng.uniform(1.5, 3.0), rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
    return (base + a * np.sin(2 * np.pi * (x - 523000) / 2300 + phase)
            * np.cos(2 * np.pi * (y - 5094000) / 1900) + b * np.cos(2 * np.pi * (x + y) / 3100))


def _sidecar(folder: Path, entries: list[dict], scale: str, radiometry: str = "sigma0") -> None:
    (folder / "sarflow_import.yaml").write_text(yaml.safe_dump(
        {"radiometry": radiometry, "scale": scale, "mission": "S1A", "files": entries}))


def _time(date: str, pass_: str) -> str:
    return f"{date}T{'17:22:00' if pass_ == 'asc' else '05:22:00'}Z"


@pytest.fixture(scope="module")
def generic_folders(tmp_path_factory):
    """The same 12 dates twice: UTM 32N 20 m in dB, and linear power on the lattice."""
    from pyproj import Transformer

    tmp = tmp_path_factory.mktemp("generic")
    utm, lat = tmp / "utm_db", tmp / "lattice_power"
    utm.mkdir()
    lat.mkdir()
    grid = Grid.from_bounds(*GEN_BBOX)
    to_utm = Transformer.from_crs(4326, 32632, always_xy=True)
    lon, la = grid.coordinates()
    gx, gy = to_utm.transform(lon, la)
    x0, y0 = np.floor(gx.min() / 20) * 20 - 200, np.ceil(gy.max() / 20) * 20 + 200
    nx, ny = int((gx.max() - x0) / 20) + 20, int((y0 - gy.min()) / 20) + 20
    ux = x0 + (np.arange(nx) + 0.5) * 20
    uy = y0 - (np.arange(ny) + 0.5) * 20
    entries_u, entries_l = [], []
    for k, (date, pass_) in enumerate(DATES):
        for pol in ("VV", "VH"):
            name = f"{date.replace('-', '')}_{pol}.tif"
            db = _field_db(ux[None, :], uy[:, None], k, pol).astype(np.float32)
            db[:3, :5] = -99  # nodata in a corner
            _utm_raster(utm / name, db, (x0, y0), 20.0, 32632, nodata=-99)
            power = 10 ** (_field_db(gx, gy, k, pol) / 10)
            from sarflow.grid import write_raster
            write_raster(lat / name, power.astype(np.float32), grid)
            entry = {"file": name, "time": _time(date, pass_), "polarisation": pol}
            entries_u.append(entry)
            entries_l.append({**entry, "pass": "ascending" if pass_ == "asc" else "descending"})
    _sidecar(utm, entries_u, "db")        # pass from solar time
    _sidecar(lat, entries_l, "power")     # pass given
    out = {}
    for folder in (utm, lat):
        cfg = _event(tmp, [folder], GEN_BBOX, "2023-06-05T00:00:00Z", ["2023-04-01", "2023-06-04"],
                     ["2023-06-05", "2023-07-31"], name=folder.name)
        r = _invoke(["preprocess", cfg, "--workers", "1", "--no-progress", "--json"])
        assert r.exit_code == 0, r.output
        s = _invoke(["stack", cfg, "--workers", "1"])
        assert s.exit_code == 0, s.output
        out[folder.name] = (cfg, json.loads(r.output))
    return out, grid, (gx, gy)


def test_generic_folder_passes_from_solar_time(generic_folders):
    out, _, _ = generic_folders
    for name in ("utm_db", "lattice_power"):
        summary = out[name][1]
        assert summary["engine"] == "import" and summary["counts"]["done"] == 12
        got = {s["product_id"].split("_")[-2][:8]: s["pass_direction"] for s in summary["scenes"]}
        want = {d.replace("-", ""): ("ASCENDING" if p == "asc" else "DESCENDING") for d, p in DATES}
        assert got == want


def test_generic_db_utm_equals_linear_on_lattice(generic_folders):
    """dB at 20 m in UTM, converted and bilinearly resampled, stacks to the medians of the
    same fields given as linear power on the lattice (which resample to themselves)."""
    out, grid, (gx, gy) = generic_folders
    wd_u = WorkDir(Path(out["utm_db"][0]).parent / "work_utm_db")
    wd_l = WorkDir(Path(out["lattice_power"][0]).parent / "work_lattice_power")
    for pass_ in ("asc", "desc"):
        for pol in ("VV", "VH"):
            for win in ("pre", "post"):
                mu = read_raster(wd_u.median(pass_, pol, win))[0]
                ml = read_raster(wd_l.median(pass_, pol, win))[0]
                ks = [k for k, (d, p) in enumerate(DATES) if p == pass_
                      and (d < "2023-06-05") == (win == "pre")]
                truth = np.median([_field_db(gx, gy, k, pol) for k in ks], axis=0)
                assert np.abs(ml - truth).max() < 1e-4        # the lattice input is exact
                ok = np.isfinite(mu)
                assert ok.mean() > 0.99
                assert np.abs(mu[ok] - ml[ok]).max() < 0.01   # bilinear error of 20 m sampling
    g1u, g1l = read_raster(wd_u.group("G1")), read_raster(wd_l.group("G1"))
    ok = np.isfinite(g1u)
    assert np.abs(g1u[ok] - g1l[ok]).max() < 0.02


def test_stack_refuses_to_mix_sigma0_and_gamma0(generic_folders, fixtures_dir, tmp_path):
    out, _, _ = generic_folders
    folder = Path(out["lattice_power"][0]).parent / "lattice_power"
    mixed = tmp_path / "gamma"
    mixed.mkdir()
    side = yaml.safe_load((folder / "sarflow_import.yaml").read_text())
    for e in side["files"][:4]:
        (mixed / e["file"]).symlink_to(folder / e["file"])
        e["time"] = e["time"].replace(":22:", ":52:")  # 30 min later: other acquisitions
    side.update(radiometry="gamma0", files=side["files"][:4])
    (mixed / "sarflow_import.yaml").write_text(yaml.safe_dump(side))
    cfg = _event(tmp_path, [folder, mixed], GEN_BBOX, "2023-06-05T00:00:00Z",
                 ["2023-04-01", "2023-06-04"], ["2023-06-05", "2023-07-31"], name="mixed")
    listing = json.loads(_invoke(["scenes", "list", cfg, "--json"]).output)
    assert any("mix gamma0 and sigma0" in w for w in listing["warnings"])
    assert _invoke(["preprocess", cfg, "--workers", "1", "--no-progress"]).exit_code == 0
    res = _invoke(["stack", cfg, "--workers", "1"])
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("Error:") and "mix" in line and "sigma0" in line and "gamma0" in line


# ------------------------------------------------------------------------------------
# HyP3 RTC zips
# ------------------------------------------------------------------------------------

def test_hyp3_zip_db_sigma0(tmp_path, fixtures_dir):
    """A HyP3-named zip (sigma0, dB) made of the real geocoded dB fixture: converted to
    linear power, pass from the solar time (the source is ascending), ls_map decoded."""
    src = fixtures_dir / "geocoded" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
    name = "S1A_IW_20150309T173017_DVP_RTC20_G_sdunem_1A2B"
    from osgeo import gdal

    ds = gdal.Open(str(src))
    db = ds.GetRasterBand(1).ReadAsArray()
    x0, _, _, y0, _, _ = ds.GetGeoTransform()
    folder = tmp_path / name
    folder.mkdir()
    _utm_raster(folder / f"{name}_VV.tif", db, (x0, y0), 20.0, 32631, nodata=-99)
    _utm_raster(folder / f"{name}_VH.tif", db - 7, (x0, y0), 20.0, 32631, nodata=-99)
    ls = np.ones_like(db)
    ls[50:60, 50:60] = 5    # layover
    ls[100:110, 100:110] = 17  # shadow
    _utm_raster(folder / f"{name}_ls_map.tif", ls, (x0, y0), 20.0, 32631)
    zpath = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"{name}/{f.name}")
    prod = open_rtc_product(zpath)
    assert (prod.kind, prod.radiometry, prod.scale) == ("HYP3_RTC", "sigma0", "db")
    assert (prod.pass_direction, prod.pass_source) == ("ASCENDING", "solar time")
    grid = Grid.from_bounds(4.490, 43.578, 4.515, 43.610)
    data, facts = read_on_grid(prod, grid, ["VV", "VH"])
    assert facts["resampling"]["VV"] == "bilinear"
    direct, _ = resample_to_grid(str(folder / f"{name}_VV.tif"), grid,
                                 lambda a: to_linear_power(a, "db"))
    ok = np.isfinite(direct) & (direct > 0)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(data[0][ok], direct[ok], rtol=1e-6)
    np.testing.assert_allclose(_to_db(data[0][ok]) - _to_db(data[1][ok]), 7.0, atol=1e-3)
    mask = data[2]
    assert set(np.unique(mask[np.isfinite(mask)])) == {0.0, 1.0, 2.0}
