"""Sentinel-1 IW GRD products: SAFE reading, orbits and range-Doppler geometry.

Geometry (no product needed):
    geodetic_to_ecef(lat, lon, h) -> (N, 3)        ecef_to_geodetic(xyz) -> (lat, lon, h)
    Orbit(times, positions, velocities, epoch)     Orbit.from_datetimes(datetimes, pos, vel)
        .position(t) .velocity(t) .acceleration(t) .to_seconds(datetime) .epoch
    zero_doppler(orbit, xyz, t0=None) -> (t_az, slant_range)
    range_doppler_to_ground(orbit, t, slant_range, height) -> (lat, lon)
    geoid.geoid_undulation(lat, lon), geoid.geoid_to_ellipsoid(h, lat, lon)   (EGM96)
"""

from __future__ import annotations

from .geometry import (C, ecef_to_geodetic, geodetic_to_ecef, range_doppler_to_ground,
                       zero_doppler)
from .orbit import Orbit, PolyOrbit, as_utc

__all__ = ["C", "Orbit", "PolyOrbit", "as_utc", "ecef_to_geodetic", "geodetic_to_ecef",
           "range_doppler_to_ground", "zero_doppler"]
