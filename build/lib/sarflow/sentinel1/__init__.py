"""Sentinel-1 IW GRD products: SAFE reading, orbits and range-Doppler geometry.

Products (``.zip`` or ``.SAFE`` folder; only the manifest is read on open):
    prod = open_product(path)
    prod.id, .path, .mission ('S1A'...), .mode, .product_type, .start, .stop (UTC),
    .pass_direction ('ASCENDING'/'DESCENDING'), .absolute_orbit, .relative_orbit,
    .footprint (shapely lon/lat), .ipf_version ('003.40'), .ipf (3.4), .polarisations,
    .missing (manifest-listed files absent), .noise_format ('new'/'old'), .shape, .summary()
    prod.swath(pol) -> Swath: lines, pixels, azimuth_time_interval, range_pixel_spacing,
        first_line_time, slant_range_time, orbit, geolocation_grid, conversions
        (sr0/srgr/gr0/grsr), calibration (VectorList), noise (Noise)
    prod.orbit, prod.orbit_source, prod.with_orbit(eof_file_or_folder) -> Product
    prod.image_coordinates(lat, lon, h, pol=None) -> (line, pixel)   [h above the ellipsoid]
    prod.ground_coordinates(line, pixel, h, pol=None) -> (lat, lon)
    prod.geometry(pol) -> radar.GrdGeometry: the above plus range_time(line, pixel) ->
        (zero-Doppler t, slant range), pixel_of(line, slant_range), t_first, ati, rps,
        fast_orbit (polynomial orbit around the scene), bistatic, line_offset
    prod.calibration_lut(pol, kind, window), prod.noise_lut(pol, window)  (float32)
    prod.read_dn(pol, window) (uint16), prod.calibrate(pol, window, kind, remove_noise)

Geometry (no product needed):
    geodetic_to_ecef(lat, lon, h) -> (N, 3)        ecef_to_geodetic(xyz) -> (lat, lon, h)
    Orbit(times, positions, velocities, epoch)     Orbit.from_datetimes(datetimes, pos, vel)
        .position(t) .velocity(t) .acceleration(t) .to_seconds(datetime) .epoch
    zero_doppler(orbit, xyz, t0=None) -> (t_az, slant_range)
    range_doppler_to_ground(orbit, t, slant_range, height) -> (lat, lon)
    read_eof(path) -> Orbit;   geoid.geoid_undulation(lat, lon), geoid.geoid_to_ellipsoid(h, lat, lon)

Times are float seconds since ``orbit.epoch`` (tz-aware UTC) in geometry code, tz-aware
datetimes in metadata, numpy datetime64[ns] in annotation arrays.  Image coordinates are
0-based line/pixel indices of pixel centres, as in ESA's annotations.
"""

from __future__ import annotations

from .eof import read_eof
from .geometry import (C, ecef_to_geodetic, geodetic_to_ecef, range_doppler_to_ground,
                       zero_doppler)
from .orbit import Orbit, PolyOrbit, as_utc
from .safe import Product, open_product

__all__ = ["C", "Orbit", "PolyOrbit", "Product", "as_utc", "ecef_to_geodetic",
           "geodetic_to_ecef", "open_product", "range_doppler_to_ground", "read_eof",
           "zero_doppler"]
