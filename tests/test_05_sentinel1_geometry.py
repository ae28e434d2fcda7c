"""Geometry core of sarflow.sentinel1: WGS84, orbits, zero Doppler, geoid."""

from __future__ import annotations

import numpy as np
import pytest

from sarflow.sentinel1 import (Orbit, ecef_to_geodetic, geodetic_to_ecef,
                               range_doppler_to_ground, zero_doppler)
from sarflow.sentinel1.geoid import geoid_to_ellipsoid, geoid_undulation


def test_geodetic_ecef_known_points_and_roundtrip():
    # hand-computed: equator/Greenwich at h=0 is (a, 0, 0); the pole is (0, 0, b)
    xyz = geodetic_to_ecef([0.0, 90.0], [0.0, 0.0], [0.0, 0.0])
    np.testing.assert_allclose(xyz[0], [6378137.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(xyz[1], [0, 0, 6356752.314245179], atol=1e-6)
    rng = np.random.default_rng(1)
    lat, lon, h = rng.uniform(-89.9, 89.9, 500), rng.uniform(-180, 180, 500), rng.uniform(-500, 9000, 500)
    la, lo, hh = ecef_to_geodetic(geodetic_to_ecef(lat, lon, h))
    assert np.abs(la - lat).max() < 1e-10 and np.abs(lo - lon).max() < 1e-10
    assert np.abs(hh - h).max() < 1e-6


def _circular_orbit(step: float) -> Orbit:
    """A circular orbit (radius 7 071 km, polar, inertial -> no Earth rotation) sampled every step s."""
    r, w = 7071000.0, 2 * np.pi / 5924.0
    t = np.arange(0.0, 200.0 + step, step)
    pos = np.stack([r * np.cos(w * t), np.zeros_like(t), r * np.sin(w * t)], axis=1)
    vel = np.stack([-r * w * np.sin(w * t), np.zeros_like(t), r * w * np.cos(w * t)], axis=1)
    return Orbit(t, pos, vel)


@pytest.mark.parametrize("step,method", [(1.0, "hermite"), (10.0, "lagrange")])
def test_orbit_interpolation_matches_analytic_circle(step, method):
    orb = _circular_orbit(step)
    assert orb.method == method
    r, w = 7071000.0, 2 * np.pi / 5924.0
    t = np.linspace(35.3, 165.7, 97)
    exact = np.stack([r * np.cos(w * t), np.zeros_like(t), r * np.sin(w * t)], axis=1)
    vexact = np.stack([-r * w * np.sin(w * t), np.zeros_like(t), r * w * np.cos(w * t)], axis=1)
    assert np.linalg.norm(orb.position(t) - exact, axis=1).max() < 1e-3
    assert np.linalg.norm(orb.velocity(t) - vexact, axis=1).max() < 1e-3
    poly = orb.polynomial(30.0, 170.0)
    assert np.linalg.norm(poly.position(t) - exact, axis=1).max() < 1e-3


def test_zero_doppler_and_inverse_on_circle():
    orb = _circular_orbit(10.0)
    r, w = 7071000.0, 2 * np.pi / 5924.0
    # a point on the x-z plane's perpendicular: ground point at the angle of t=100 s, offset in y
    t_true = 100.0
    ang = w * t_true
    ground = np.array([[6371000.0 * np.cos(ang), -250000.0, 6371000.0 * np.sin(ang)]])
    t, rng = zero_doppler(orb, ground)
    assert abs(t[0] - t_true) < 1e-6
    expected = np.linalg.norm(orb.position(t_true)[0] - ground[0])
    assert abs(rng[0] - expected) < 1e-4
    lat, lon, h = ecef_to_geodetic(ground)
    la, lo = range_doppler_to_ground(orb, t, rng, h, look="right")
    back = geodetic_to_ecef(la, lo, h)
    # right- or left-looking: pick the side the point is on
    if np.linalg.norm(back - ground) > 1.0:
        la, lo = range_doppler_to_ground(orb, t, rng, h, look="left")
        back = geodetic_to_ecef(la, lo, h)
    assert np.linalg.norm(back - ground) < 1e-3


def test_geoid_undulation_against_known_values():
    # EGM96 at the equator/Greenwich is +17.16 m, near Rome about +48.6 m (15' grid nodes)
    n = geoid_undulation([0.0, 42.0], [0.0, 12.5])
    assert abs(n[0] - 17.16) < 0.02
    assert abs(n[1] - 48.61) < 0.02
    # wrap-around: 180 and -180 are the same meridian
    assert abs(geoid_undulation(10.0, 180.0) - geoid_undulation(10.0, -180.0)) < 1e-9
    assert abs(geoid_to_ellipsoid(100.0, 0.0, 0.0) - (100.0 + n[0])) < 1e-9


def test_geoid_to_ellipsoid_matches_dem_stitcher_fixture(fixtures_dir):
    from osgeo import gdal

    geoid = gdal.Open(str(fixtures_dir / "dem" / "los_angeles_dem_geoid.tif"))
    ell = gdal.Open(str(fixtures_dir / "dem" / "los_angeles_dem_ellipsoid.tif"))
    hg = geoid.ReadAsArray().astype(np.float64)
    he = ell.ReadAsArray().astype(np.float64)
    gt = geoid.GetGeoTransform()
    rows, cols = np.mgrid[0:hg.shape[0]:10, 0:hg.shape[1]:10]
    lon = gt[0] + (cols + 0.5) * gt[1]
    lat = gt[3] + (rows + 0.5) * gt[5]
    ours = geoid_to_ellipsoid(hg[rows, cols], lat, lon)
    # EGM96 vs the fixture's EGM2008: well under 2 m apart here
    assert np.abs(ours - he[rows, cols]).max() < 2.0
    assert abs(np.median(ours - he[rows, cols])) < 1.0
