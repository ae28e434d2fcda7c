"""The no-model change heatmap on the real OPERA RTC-S1 stack over Mulitaka (all dates
before the 24 May 2024 landslide): values against a direct numpy computation, and the
false-alarm share near the mapped landslide against a bound derived from the data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely
import yaml
from click.testing import CliRunner
from pyproj import Transformer
from shapely import wkb

from sarflow.cli import cli
from sarflow.grid import Grid, raster_info, read_raster
from sarflow.heatmap import fuse_z, robust_z
from sarflow.regrid import resample_to_grid

BBOX = [143.3445, -5.3855, 143.3840, -5.3590]


@pytest.fixture(scope="module")
def opera_heatmap(tmp_path_factory, fixtures_dir):
    tmp = tmp_path_factory.mktemp("heat")
    cfg = tmp / "ev.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "mulitaka", "event": {"time": "2024-03-17T00:00:00Z"}, "area": {"bbox": BBOX},
        "windows": {"pre": ["2024-01-01", "2024-03-16"], "post": ["2024-03-17", "2024-05-31"]},
        "scenes": [str(fixtures_dir / "rtc_stack")], "output": str(tmp / "work")}))
    run = CliRunner()
    r = run.invoke(cli, ["-q", "preprocess", str(cfg), "--workers", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    h = run.invoke(cli, ["-q", "heatmap", str(cfg)])
    assert h.exit_code == 0, h.output
    return tmp / "work" / "heatmap" / "heatmap.tif", h.output


def _db(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(x)


def test_robust_z_by_hand():
    pre = np.array([-10.0, -11.0, -9.0, -10.5, -30.0])[:, None, None]  # one outlier date
    post = np.array([-14.0, -13.0, -15.0])[:, None, None]
    z, sigma = robust_z(pre.astype(np.float32), post.astype(np.float32), 0.1)
    # median pre -10.5, |dev| = 0.5, 0.5, 1.5, 0, 19.5 -> MAD 0.5 (the outlier does not
    # matter); median post -14
    assert sigma[0, 0] == pytest.approx(0.5 * 1.4826)
    assert z[0, 0] == pytest.approx(-3.5 / (0.5 * 1.4826), rel=1e-6)
    flat = np.full((3, 1, 1), -10.0, np.float32)
    z2, s2 = robust_z(flat, flat - 1, 0.1)           # no spread: the floor
    assert s2[0, 0] == pytest.approx(0.1) and z2[0, 0] == pytest.approx(-10.0)
    a, d = np.array([[2.0, np.nan]], np.float32), np.array([[4.0, 1.0]], np.float32)
    np.testing.assert_allclose(fuse_z(a, d), [[6 / math.sqrt(2), 1.0]])


def test_heatmap_matches_direct_numpy(opera_heatmap, fixtures_dir):
    path, _ = opera_heatmap
    info = raster_info(path)
    assert info.descriptions == ("z_asc_VV", "z_asc_VH", "z_fused_VV", "z_fused_VH")
    assert "z_desc_VV" in json.loads(info.tags["left_out"])
    z = read_raster(path)
    grid = Grid.from_bounds(*BBOX)
    files = sorted((fixtures_dir / "rtc_stack").rglob("*.tif"))
    for b, pol in enumerate(("VV", "VH")):
        dated = sorted(f for f in files if f"_{pol}_" in f.name)
        s = np.stack([_db(resample_to_grid(str(f), grid, method="bilinear")[0]) for f in dated])
        pre, post = s[:5], s[5:]
        med = np.median(pre, axis=0)
        sigma = np.maximum(1.4826 * np.median(np.abs(pre - med), axis=0), 0.1)
        want = (np.median(post, axis=0) - med) / sigma
        ok = np.isfinite(want)
        assert ok.mean() > 0.99
        np.testing.assert_allclose(z[b][ok], want[ok], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(z[2 + b], z[b])  # one pass: fused = ascending


def test_false_alarms_near_the_landslide(opera_heatmap, fixtures_dir):
    """No landslide yet: flags (z > 3) inside and within 500 m of the mapped polygon are
    false alarms.  Their share must stay under Cantelli's bound computed from the scene's own
    z distribution, P(z - m >= 3 - m) <= v / (v + (3 - m)^2), which holds for any
    distribution: a cluster of flags there would break it."""
    from sarflow.vector import geometries

    path, output = opera_heatmap
    z = read_raster(path)
    geo = fixtures_dir / "rtc_stack" / "papau_new_guinea_landslide_2024.geojson"
    poly = [wkb.loads(bytes(g.ExportToWkb())) for g in geometries(geo, what="inventory")][0]
    to_utm = Transformer.from_crs(4326, 32754, always_xy=True)
    to_ll = Transformer.from_crs(32754, 4326, always_xy=True)
    zone = shapely.transform(shapely.transform(poly, lambda c: np.column_stack(to_utm.transform(*c.T)))
                             .buffer(500.0), lambda c: np.column_stack(to_ll.transform(*c.T)))
    lon, lat = Grid.from_bounds(*BBOX).coordinates()
    in_poly, in_zone = shapely.contains_xy(poly, lon, lat), shapely.contains_xy(zone, lon, lat)
    assert in_poly.sum() > 500 and in_zone.sum() > 10000   # ~8.6 ha and ~150 ha at 10 m
    for b, name in enumerate(("z_asc_VV", "z_asc_VH")):
        v = z[b]
        ok = np.isfinite(v)
        m, var = float(v[ok].mean()), float(v[ok].var())
        bound = var / (var + (3 - m) ** 2)
        share_poly = float((v[ok & in_poly] > 3).mean())
        share_zone = float((v[ok & in_zone] > 3).mean())
        print(f"{name}: z>3 in polygon {share_poly:.4f}, within 500 m {share_zone:.4f}, "
              f"whole crop {float((v[ok] > 3).mean()):.4f}; Cantelli bound {bound:.4f}")
        assert share_poly <= bound and share_zone <= bound
    assert "z_asc_VV" in output and "% of" in output
