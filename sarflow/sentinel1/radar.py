"""Range-Doppler geometry of a GRD image: ground (lat, lon, h) <-> image (line, pixel).

Forward: zero-Doppler time t and slant range R of the point (Newton, on a Chebyshev fit
of the orbit over the scene); line = (t - t_first - R / c) / dt_az + offset; pixel from
the ground-to-slant-range polynomial nearest in azimuth time, inverted by Newton.

The ``R / c`` term is the residual bistatic correction of ESA's processor (half the
two-way slant range time): the azimuth time of a (line, pixel) is
``t_first + line * dt_az + (tau - tau_ref) / 2`` with ``tau = 2 R / c``.  Its factor
(``bistatic``, 1 for ESA products to 1e-3) and ``offset`` (lines; ``tau_ref / (2 dt_az)``
plus, for old products, their constant azimuth offset) are fitted once by least squares on
the annotation's geolocation grid with the annotation orbit, the orbit ESA computed the grid
with; they stay when a precise orbit replaces it.  A producer of synthetic products should
write grids with the same convention (or pass ``bistatic``/``line_offset`` explicitly).
The nearest conversion polynomial (not an interpolation between two) reproduces the grid's
pixel exactly.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .annotation import Swath
from .geometry import C, geodetic_to_ecef, range_doppler_to_ground, zero_doppler
from .orbit import Orbit, PolyOrbit

_CHEB_DEGREE = 5
"""Degree of the per-record slant-to-ground-range fit: exact to micrometres over a block
(ground range is a gentle function of slant range over a few tens of kilometres)."""
_CHUNK = 1 << 19  # points per vectorised batch (memory stays ~100 MB)
_ORBIT_MARGIN = 60.0  # s of orbit fitted either side of the image
_FIT_TOLERANCE = 2e-2  # m (0.002 px): a polynomial orbit further than this from the vectors is not used


def image_line(t: np.ndarray, rng: np.ndarray, t_first: float, ati: float,
               line_offset: float = 0.0, bistatic: float = 1.0) -> np.ndarray:
    """Image line of zero-Doppler time ``t`` (s) and slant range ``rng`` (m), ESA's GRD
    convention: ``(t - t_first - bistatic * R / c) / ati + line_offset``."""
    return (np.asarray(t) - t_first - bistatic * np.asarray(rng) / C) / ati + line_offset


def line_time(line: np.ndarray, rng: np.ndarray, t_first: float, ati: float,
              line_offset: float = 0.0, bistatic: float = 1.0) -> np.ndarray:
    """Zero-Doppler time (s) of image ``line`` at slant range ``rng``: the inverse of
    :func:`image_line`."""
    return t_first + (np.asarray(line) - line_offset) * ati + bistatic * np.asarray(rng) / C


class GrdGeometry:
    """Geolocation of one polarisation's image with a given orbit."""

    def __init__(self, swath: Swath, orbit: Orbit, line_offset: float | None = None,
                 bistatic: float | None = None) -> None:
        self.swath = swath
        self.orbit = orbit
        self.fast_orbit = _fast_orbit(orbit, swath)
        self.ati = swath.azimuth_time_interval
        self.rps = swath.range_pixel_spacing
        self.t_first = orbit.to_seconds(swath.first_line_time)
        conv = swath.conversions
        self.conv_time = np.asarray(orbit.to_seconds(conv.azimuth_time))
        self.sr0, self.gr0 = conv.sr0, conv.gr0
        self.srgr, self.grsr = conv.srgr, conv.grsr
        self._srgr_t = np.ascontiguousarray(conv.srgr.T)
        self._grsr_t = np.ascontiguousarray(conv.grsr.T)
        dgrsr = conv.grsr[:, 1:] * np.arange(1, conv.grsr.shape[1])[None, :]
        self._dgrsr_t = np.ascontiguousarray(dgrsr.T)
        if line_offset is None or bistatic is None:
            fit_beta, fit_offset = fit_timing(swath)
            bistatic = fit_beta if bistatic is None else bistatic
            line_offset = fit_offset if line_offset is None else line_offset
        self.bistatic = float(bistatic)
        self.line_offset = float(line_offset)

    # -- helpers ----------------------------------------------------------------------------
    def _nearest(self, t: np.ndarray) -> np.ndarray:
        """Index of the conversion polynomial nearest in azimuth time to each ``t``."""
        ct = self.conv_time
        if ct.size == 1:
            return np.zeros(t.shape, dtype=np.intp)
        j = np.clip(np.searchsorted(ct, t), 1, ct.size - 1)
        return np.where(np.abs(t - ct[j - 1]) <= np.abs(ct[j] - t), j - 1, j)

    def _slant_to_ground(self, k: np.ndarray, rng: np.ndarray) -> np.ndarray:
        """Ground range (m) whose ground-to-slant polynomial ``k`` gives slant range ``rng``."""
        g = _horner(self._srgr_t, k, rng - self.sr0[k])  # first guess, within centimetres
        for _ in range(2):  # Newton: quadratic convergence from centimetres (metres at worst)
            x = g - self.gr0[k]
            g = g - (_horner(self._grsr_t, k, x) - rng) / _horner(self._dgrsr_t, k, x)
        return g

    # -- public -----------------------------------------------------------------------------
    def image_coordinates(self, lat: np.ndarray, lon: np.ndarray, height: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Image (line, pixel) of points at WGS84 lat/lon (degrees) and ellipsoidal height (m)."""
        lat, lon, height = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                                 for a in (lat, lon, height)))
        shape = lat.shape
        lat, lon, height = lat.ravel(), lon.ravel(), height.ravel()
        line = np.empty(lat.size)
        pixel = np.empty(lat.size)
        t_guess = self.t_first + 0.5 * self.swath.lines * self.ati
        for s in range(0, lat.size, _CHUNK):
            sl = slice(s, s + _CHUNK)
            xyz = geodetic_to_ecef(lat[sl], lon[sl], height[sl])
            t, rng = zero_doppler(self.fast_orbit, xyz, t0=t_guess)
            ln = image_line(t, rng, self.t_first, self.ati, self.line_offset, self.bistatic)
            k = self._nearest(self.t_first + ln * self.ati)
            line[sl] = ln
            pixel[sl] = self._slant_to_ground(k, rng) / self.rps
        return line.reshape(shape), pixel.reshape(shape)

    def pixel_of(self, line: np.ndarray, slant_range: np.ndarray) -> np.ndarray:
        """Image pixel of slant range (m) at image ``line``, with the annotation's
        ground-to-slant-range polynomial nearest in azimuth time (as
        :meth:`image_coordinates` picks it); NaN where either input is NaN.

        Per record, the exact inverse (Newton on the polynomial) is computed at Chebyshev
        nodes spanning the ranges present and fitted by a low-degree Chebyshev series,
        evaluated per point (exact to micrometres, a few operations per point).
        """
        line = np.asarray(line, dtype=np.float64)
        rng = np.asarray(slant_range, dtype=np.float64)
        line, rng = np.broadcast_arrays(line, rng)
        if kernels.COMPILED:
            return self._pixel_compiled(line, rng)
        out = np.full(line.shape, np.nan)
        ok = np.isfinite(line) & np.isfinite(rng)
        if not ok.any():
            return out
        k = self._nearest(self.t_first + line[ok] * self.ati)
        r = rng[ok]
        vals = np.empty(r.shape)
        for kk in np.unique(k):
            m = k == kk
            vals[m] = self._record_ground_range(int(kk), r[m])
        out[ok] = vals / self.rps
        return out

    def _pixel_compiled(self, line: np.ndarray, rng: np.ndarray) -> np.ndarray:
        """:meth:`pixel_of` in one compiled pass: the same fit per record, over the ranges
        of all the points (a block's: a few tens of kilometres at most)."""
        line2, rng2 = kernels.as_2d(line), kernels.as_2d(rng)
        out = np.full(line2.shape, np.nan)
        l0, l1, r0, r1 = kernels.coordinate_bounds(line2, rng2, -np.inf, np.inf,
                                                   -np.inf, np.inf)
        if l0 <= l1:
            k0, k1 = self._nearest(self.t_first + np.array([l0, l1]) * self.ati)
            mid, half = 0.5 * (r0 + r1), max(0.5 * (r1 - r0), 0.5)
            coef = np.array([self._record_series(k, mid, half) for k in range(k0, k1 + 1)])
            kernels.fitted_pixel(line2, rng2, self.t_first, self.ati, self.conv_time,
                                 int(k0), coef, mid, half, self.rps, out)
        return out.reshape(line.shape)

    def _record_series(self, k: int, mid: float, half: float) -> np.ndarray:
        """Power series in ``(R - mid) / half`` (ascending) of the ground range of record
        ``k`` at slant range R: the exact inverse at Chebyshev nodes, fitted."""
        x = np.cos(np.pi * (np.arange(11) + 0.5) / 11)
        exact = self._slant_to_ground(np.full(x.shape, k, dtype=np.intp), mid + half * x)
        cheb = np.polynomial.chebyshev.chebfit(x, exact, _CHEB_DEGREE)
        return np.polynomial.chebyshev.cheb2poly(cheb)

    def _record_ground_range(self, k: int, rng: np.ndarray) -> np.ndarray:
        """Ground range (m) of slant ranges with record ``k``'s polynomials (Chebyshev fit of
        the exact Newton inverse over the ranges present)."""
        lo, hi = float(rng.min()), float(rng.max())
        kk = np.full(rng.shape, k, dtype=np.intp)
        if hi - lo < 1.0:
            return self._slant_to_ground(kk, rng)
        nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(np.pi * (np.arange(11) + 0.5) / 11)
        exact = self._slant_to_ground(np.full(nodes.shape, k, dtype=np.intp), nodes)
        series = np.polynomial.chebyshev.Chebyshev.fit(nodes, exact, _CHEB_DEGREE, domain=[lo, hi])
        return series(rng)

    def range_time(self, line: np.ndarray, pixel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Zero-Doppler time (s since the orbit epoch) and slant range (m) of image positions."""
        line, pixel = np.broadcast_arrays(np.asarray(line, dtype=np.float64),
                                          np.asarray(pixel, dtype=np.float64))
        k = self._nearest(self.t_first + line.ravel() * self.ati)
        rng = _horner(self._grsr_t, k, pixel.ravel() * self.rps - self.gr0[k])
        t = line_time(line.ravel(), rng, self.t_first, self.ati, self.line_offset, self.bistatic)
        return t.reshape(line.shape), rng.reshape(line.shape)

    def ground_coordinates(self, line: np.ndarray, pixel: np.ndarray, height: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 (lat, lon) of image positions at ellipsoidal ``height`` (m)."""
        line, pixel, height = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                                    for a in (line, pixel, height)))
        t, rng = self.range_time(line, pixel)
        lat, lon = range_doppler_to_ground(self.fast_orbit, t.ravel(), rng.ravel(),
                                           height.ravel(), look="right")
        return lat.reshape(line.shape), lon.reshape(line.shape)


def fit_timing(swath: Swath) -> tuple[float, float]:
    """(bistatic factor, line offset) that make the model reproduce the geolocation grid,
    by least squares with the annotation orbit; (1, median offset) for a degenerate grid."""
    orbit = swath.orbit
    g = swath.geolocation_grid
    t_first = orbit.to_seconds(swath.first_line_time)
    xyz = geodetic_to_ecef(g.latitude, g.longitude, g.height)
    t, rng = zero_doppler(orbit, xyz, t0=t_first)
    ati = swath.azimuth_time_interval
    y = g.line - (t - t_first) / ati
    x = -(rng / C) / ati
    ok = np.isfinite(y) & np.isfinite(x)
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0.05:  # range spread worth a tenth of a line
        a = np.stack([x[ok], np.ones(ok.sum())], axis=1)
        (beta, offset), *_ = np.linalg.lstsq(a, y[ok], rcond=None)
        return float(beta), float(offset)
    return 1.0, float(np.median(y[ok] - x[ok])) if ok.any() else 0.0


def _fast_orbit(orbit: Orbit, swath: Swath) -> Orbit | PolyOrbit:
    """A polynomial fit of the orbit around the image when it matches the vectors to 2 cm.

    The degree follows the span the state vectors cover (short spans, as in old products'
    1 s annotations, get a low degree so that points beyond the image extrapolate sanely).
    """
    t0 = max(orbit.to_seconds(swath.first_line_time) - _ORBIT_MARGIN, orbit.start)
    t1 = min(orbit.to_seconds(swath.last_line_time) + _ORBIT_MARGIN, orbit.stop)
    span = t1 - t0
    if span < 5.0:
        return orbit
    degree = 11 if span >= 100.0 else (7 if span >= 50.0 else 5)
    poly = orbit.polynomial(t0, t1, degree=degree)
    check = np.linspace(t0, t1, 97)
    err = np.linalg.norm(poly.position(check) - orbit.position(check), axis=1).max()
    return poly if err < _FIT_TOLERANCE else orbit


def _horner(coef_t: np.ndarray, k: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per-point polynomials: sum_i coef_t[i, k[n]] * x[n] ** i (coefficients by row)."""
    out = coef_t[-1][k]
    for i in range(coef_t.shape[0] - 2, -1, -1):
        out *= x
        out += coef_t[i][k]
    return out
