"""Radar geometry of one pass over the synthetic terrain, with ``sarflow.sentinel1``'s
zero-Doppler code: where every DEM cell lands in the GRD image, how it faces the radar,
and which cells lie in layover or shadow.

Zero Doppler is solved exactly on a coarse lattice (every 32 DEM cells, three heights);
image line, pixel, look vector and look angle are quadratic in height and bilinear in
between, which reproduces the exact solution to well under a millimetre.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from ..grid import Grid
from ..sentinel1 import (C, Orbit, ecef_to_geodetic, geodetic_to_ecef, range_doppler_to_ground,
                         zero_doppler)
from ..sentinel1.lookup import height_coefficients
from ..sentinel1.radar import image_line, line_time
from ..sentinel1.layover import LAYOVER, SHADOW, profile_flags  # noqa: F401 (codes re-exported)
from .orbit import CircularOrbit, annotation_orbit, state_vectors

PIXEL_SPACING = 10.0
"""GRDH ground range and azimuth pixel spacing (m)."""
COARSE_STEP = 32
IMAGE_MARGIN = 24
"""Image pixels kept around the event grid's footprint."""


@dataclass
class ImageModel:
    """The GRD image frame of a pass: timing, size and the slant/ground range polynomials.

    line = (t - t_first - (R - r_ref) / c) / ati      (t: zero-Doppler time)
    pixel = ground(R) / 10 m, ground(R) = sum srgr[k] (R - sr0)^k, R(g) = sum grsr[k] g^k
    """

    pass_direction: str
    orbit_times: list[dt.datetime]
    orbit_pos: np.ndarray
    orbit_vel: np.ndarray
    t_first: dt.datetime
    ati: float
    lines: int
    samples: int
    sr0: float
    r_ref: float
    srgr: np.ndarray
    grsr: np.ndarray
    h_ref: float
    heading: float
    ground_speed: float

    def orbit(self) -> Orbit:
        """The annotation orbit (as a reader builds it)."""
        return annotation_orbit(self.orbit_times, self.orbit_pos, self.orbit_vel)

    @property
    def t_last(self) -> dt.datetime:
        return self.t_first + dt.timedelta(seconds=(self.lines - 1) * self.ati)

    def ground_range(self, rng: np.ndarray) -> np.ndarray:
        """Ground range (m) of slant ranges (m)."""
        return np.polynomial.polynomial.polyval(np.asarray(rng) - self.sr0, self.srgr)

    def slant_range(self, ground: np.ndarray) -> np.ndarray:
        """Slant range (m) of ground ranges (m)."""
        return np.polynomial.polynomial.polyval(np.asarray(ground), self.grsr)

    def line_pixel(self, t: np.ndarray, rng: np.ndarray, t_first_s: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Image (line, pixel) of zero-Doppler time ``t`` (s) and slant range ``rng`` (m)."""
        line = image_line(t, rng, t_first_s, self.ati, line_offset=self.r_ref / (C * self.ati))
        return line, self.ground_range(rng) / PIXEL_SPACING

    def zero_doppler_time(self, line: np.ndarray, rng: np.ndarray, t_first_s: float
                          ) -> np.ndarray:
        """Zero-Doppler time (s) of an image line at slant range ``rng``."""
        return line_time(line, rng, t_first_s, self.ati, line_offset=self.r_ref / (C * self.ati))


@dataclass
class PassGeometry:
    """Per DEM cell: image position, look vector (ENU), look angle, flags; per image pixel
    the cell area it receives."""

    model: ImageModel
    line: np.ndarray       # (H, W) float64
    pixel: np.ndarray      # (H, W) float64
    look_e: np.ndarray     # unit vector target -> sensor, east component (float32)
    look_n: np.ndarray
    look_u: np.ndarray
    rho: np.ndarray        # image pixels per DEM cell on the reference surface (float32)
    flags: np.ndarray      # uint8: 1 layover, 2 shadow, 3 both


def _interp_matrix(n_fine: int, nodes: np.ndarray) -> np.ndarray:
    """Dense linear-interpolation weights (n_fine, len(nodes)) from nodes to 0..n_fine-1."""
    x = np.arange(n_fine, dtype=np.float64)
    j = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
    f = (x - nodes[j]) / (nodes[j + 1] - nodes[j])
    w = np.zeros((n_fine, nodes.size))
    w[np.arange(n_fine), j] = 1.0 - f
    w[np.arange(n_fine), j + 1] = f
    return w


def _nodes(n: int, step: int) -> np.ndarray:
    nodes = np.arange(0, n, step, dtype=np.float64)
    if nodes[-1] != n - 1:
        nodes = np.append(nodes, n - 1)
    return nodes


class _Coarse:
    """Exact zero-Doppler quantities on coarse nodes at three heights."""

    def __init__(self, grid: Grid, heights: tuple[float, float, float], orbit, t0: float
                 ) -> None:
        self.rows = _nodes(grid.height, COARSE_STEP)
        self.cols = _nodes(grid.width, COARSE_STEP)
        lon, lat = grid.lonlat(self.rows[:, None], self.cols[None, :])
        lon, lat = np.broadcast_arrays(lon, lat)
        self.shape = lon.shape
        self.heights = np.asarray(heights, dtype=np.float64)
        phi, lam = np.radians(lat.ravel()), np.radians(lon.ravel())
        east = np.stack([-np.sin(lam), np.cos(lam), np.zeros_like(lam)], axis=1)
        north = np.stack([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)], axis=1)
        up = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
        self.t, self.r, self.le, self.ln, self.lu, self.beta = ([] for _ in range(6))
        for h in self.heights:
            xyz = geodetic_to_ecef(lat.ravel(), lon.ravel(), h)
            t, r = zero_doppler(orbit, xyz, t0=t0)
            s = orbit.position(t)
            u = (s - xyz) / r[:, None]
            self.t.append(t)
            self.r.append(r)
            self.le.append(np.einsum("ij,ij->i", u, east))
            self.ln.append(np.einsum("ij,ij->i", u, north))
            self.lu.append(np.einsum("ij,ij->i", u, up))
            sn = np.linalg.norm(s, axis=1)
            self.beta.append(np.arccos(np.clip(np.einsum("ij,ij->i", u, s) / sn, -1, 1)))

    def quadratic(self, values: list[np.ndarray]) -> np.ndarray:
        """Coefficients (3, nr, nc) of value = c0 + c1 dh + c2 dh^2 (dh = h - mid height)."""
        coef = height_coefficients(np.stack(values), self.heights - self.heights[1])
        return coef.reshape((3,) + self.shape)


def build_image_model(pass_direction: str, orbit_def: CircularOrbit, dem: Grid,
                      event_window_rc: tuple[slice, slice], h_ell: np.ndarray) -> ImageModel:
    """The GRD frame that covers the event grid (plus a margin) for this pass's orbit."""
    t_ref = orbit_def.t_ref
    times, pos, vel = state_vectors(orbit_def, t_ref - dt.timedelta(seconds=15),
                                    t_ref + dt.timedelta(seconds=15))
    orbit = annotation_orbit(times, pos, vel)
    t_ref_s = orbit.to_seconds(t_ref)
    ev = h_ell[event_window_rc]
    h_ref = float(np.round(np.mean(ev), 6))
    # exact positions of the event window's border and a coarse interior sample
    rs, cs = event_window_rc
    rr = np.arange(rs.start, rs.stop, 8)
    cc = np.arange(cs.start, cs.stop, 8)
    rr, cc = np.meshgrid(np.append(rr, rs.stop - 1), np.append(cc, cs.stop - 1), indexing="ij")
    lon, lat = dem.lonlat(rr, cc)
    xyz = geodetic_to_ecef(lat, lon, h_ell[rr, cc])
    t, r = zero_doppler(orbit, xyz, t0=t_ref_s)
    r_ref = float(np.round(0.5 * (r.min() + r.max()), 3))
    # ground speed and heading at the centre
    rc = np.array([r_ref, r_ref])
    la, lo = range_doppler_to_ground(orbit, np.array([t_ref_s, t_ref_s + 0.1]), rc, h_ref)
    p2 = geodetic_to_ecef(la, lo, h_ref)
    ground_speed = float(np.linalg.norm(p2[1] - p2[0]) / 0.1)
    ati = float(f"{PIXEL_SPACING / ground_speed:.15e}")
    sv = orbit.velocity(np.array([t_ref_s]))[0]
    nad_lat, nad_lon, _ = ecef_to_geodetic(orbit.position(np.array([t_ref_s])))
    phi, lam = math.radians(nad_lat[0]), math.radians(nad_lon[0])
    ve = -math.sin(lam) * sv[0] + math.cos(lam) * sv[1]
    vn = (-math.sin(phi) * math.cos(lam) * sv[0] - math.sin(phi) * math.sin(lam) * sv[1]
          + math.cos(phi) * sv[2])
    heading = math.degrees(math.atan2(ve, vn))
    # near range and ground-range polynomial along the centre line
    incs = _incidence(orbit, t_ref_s, np.array([r.min()]), h_ref)
    sr0 = float(np.round(r.min() - IMAGE_MARGIN * PIXEL_SPACING * math.sin(incs[0]), 3))
    r_far = r.max() + 2 * IMAGE_MARGIN * PIXEL_SPACING
    srgr, grsr = _fit_srgr(orbit, t_ref_s, sr0, r_far, h_ref)
    az = t - (r - r_ref) / C
    t_first_s = az.min() - IMAGE_MARGIN * ati
    t_first = orbit.to_datetime(t_first_s)
    t_first_s = orbit.to_seconds(t_first)
    lines = int(math.ceil((az.max() - t_first_s) / ati)) + IMAGE_MARGIN + 1
    g_far = np.polynomial.polynomial.polyval(r.max() - sr0, srgr)
    samples = int(math.ceil(g_far / PIXEL_SPACING)) + IMAGE_MARGIN + 1
    return ImageModel(pass_direction=pass_direction, orbit_times=times, orbit_pos=pos,
                      orbit_vel=vel, t_first=t_first, ati=ati, lines=lines, samples=samples,
                      sr0=sr0, r_ref=r_ref, srgr=srgr, grsr=grsr, h_ref=h_ref,
                      heading=heading, ground_speed=ground_speed)


def _incidence(orbit, t: float, rng: np.ndarray, h: float) -> np.ndarray:
    """Incidence angle (rad) on the ellipsoid raised by ``h`` at slant ranges ``rng``."""
    tt = np.full(rng.shape, t)
    lat, lon = range_doppler_to_ground(orbit, tt, rng, h)
    x = geodetic_to_ecef(lat, lon, h)
    s = orbit.position(tt)
    phi, lam = np.radians(lat), np.radians(lon)
    up = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    d = (s - x) / np.linalg.norm(s - x, axis=1)[:, None]
    return np.arccos(np.einsum("ij,ij->i", d, up))


def _fit_srgr(orbit, t: float, sr0: float, r_far: float, h: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Slant->ground and ground->slant polynomials (degree 5, as ESA's 'srgr'/'grsr'):
    ground range = distance along the raised ellipsoid from the point at ``sr0``."""
    rng = np.linspace(sr0, r_far, 400)
    lat, lon = range_doppler_to_ground(orbit, np.full(rng.shape, t), rng, h)
    x = geodetic_to_ecef(lat, lon, h)
    g = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(x, axis=0), axis=1))])
    deg = 5
    srgr = _polyfit(rng - sr0, g, deg)
    grsr = _polyfit(g, rng, deg)
    err_g = np.abs(np.polynomial.polynomial.polyval(rng - sr0, srgr) - g).max()
    err_r = np.abs(np.polynomial.polynomial.polyval(g, grsr) - rng).max()
    if err_g > 1e-3 or err_r > 1e-3:
        raise RuntimeError(f"slant/ground range fit off by {max(err_g, err_r):.2e} m")
    return srgr, grsr


def _polyfit(x: np.ndarray, y: np.ndarray, deg: int) -> np.ndarray:
    """Power-series coefficients of a least-squares fit, computed on a scaled variable."""
    scale = float(np.abs(x).max()) or 1.0
    c = np.polynomial.polynomial.polyfit(x / scale, y, deg)
    return c / scale ** np.arange(deg + 1)


def compute_pass_geometry(model: ImageModel, dem: Grid, h_ell: np.ndarray) -> PassGeometry:
    """Image position, look vector, area factor and layover/shadow of every DEM cell."""
    orbit = model.orbit()
    t_first_s = orbit.to_seconds(model.t_first)
    fast = orbit.polynomial(orbit.start, orbit.stop)
    hmin, hmax = float(h_ell.min()) - 5.0, float(h_ell.max()) + 5.0
    co = _Coarse(dem, (hmin, 0.5 * (hmin + hmax), hmax), fast,
                 t0=t_first_s + 0.5 * model.lines * model.ati)
    line_c, pix_c = [], []
    for t, r in zip(co.t, co.r):
        ln, px = model.line_pixel(t, r, t_first_s)
        line_c.append(ln)
        pix_c.append(px)
    wr = _interp_matrix(dem.height, co.rows)
    wc = _interp_matrix(dem.width, co.cols)
    dh = h_ell.astype(np.float64) - co.heights[1]

    def fine(values: list[np.ndarray]) -> np.ndarray:
        coef = co.quadratic(values)
        out = wr @ coef[2] @ wc.T
        out *= dh
        out += wr @ coef[1] @ wc.T
        out *= dh
        out += wr @ coef[0] @ wc.T
        return out

    line = fine(line_c)
    pixel = fine(pix_c)
    look_e = fine(co.le).astype(np.float32)
    look_n = fine(co.ln).astype(np.float32)
    look_u = fine(co.lu).astype(np.float32)
    rho = _area_factor(co, line_c, pix_c, model.h_ref, wr, wc)
    flags = _layover_shadow(model, co, line_c, pix_c, pixel, fine(co.beta), wr, wc)
    return PassGeometry(model=model, line=line, pixel=pixel, look_e=look_e, look_n=look_n,
                        look_u=look_u, rho=rho, flags=flags)


def _at_height(coef: np.ndarray, dh: float) -> np.ndarray:
    return coef[0] + dh * (coef[1] + dh * coef[2])


def _area_factor(co: _Coarse, line_c: list[np.ndarray], pix_c: list[np.ndarray],
                 h_ref: float, wr: np.ndarray, wc: np.ndarray) -> np.ndarray:
    """|d(line, pixel) / d(row, col)| on the reference surface: image pixels per DEM cell."""
    dh = h_ref - co.heights[1]
    lc = co.quadratic(line_c)
    pc = co.quadratic(pix_c)
    ln = lc[0] + dh * (lc[1] + dh * lc[2])
    px = pc[0] + dh * (pc[1] + dh * pc[2])
    dl_r = np.gradient(ln, co.rows, axis=0)
    dl_c = np.gradient(ln, co.cols, axis=1)
    dp_r = np.gradient(px, co.rows, axis=0)
    dp_c = np.gradient(px, co.cols, axis=1)
    det = np.abs(dl_r * dp_c - dl_c * dp_r)
    return (wr @ det @ wc.T).astype(np.float32)


PROFILE_STEP = 0.5
"""Ground-range step (pixels) of the terrain profiles used for layover and shadow."""


def _layover_shadow(model: ImageModel, co: _Coarse, line_c: list[np.ndarray],
                    pix_c: list[np.ndarray], pixel: np.ndarray, beta: np.ndarray,
                    wr: np.ndarray, wc: np.ndarray) -> np.ndarray:
    """Layover and shadow flags of every DEM cell, from terrain profiles along each image
    line (the zero-Doppler plane), ordered from near to far range.

    Along a profile a point is in shadow when a nearer point is seen at a larger look
    angle (it hides the point), in layover when its image pixel is not monotonic in
    ground range: a nearer point lands farther, or a farther point nearer.
    """
    from scipy.ndimage import map_coordinates

    dh_ref = model.h_ref - co.heights[1]
    l_ref = _at_height(co.quadratic(line_c), dh_ref)
    p_ref = _at_height(co.quadratic(pix_c), dh_ref)
    # (row, col) of a horizontal position as a quadratic function of its reference (line, pixel)
    rr, cc = np.meshgrid(co.rows, co.cols, indexing="ij")
    design = _quad_terms(l_ref.ravel(), p_ref.ravel())
    coef_rc, *_ = np.linalg.lstsq(design, np.stack([rr.ravel(), cc.ravel()], axis=1), rcond=None)
    nl, ns = model.lines, int(model.samples / PROFILE_STEP)
    h, w = pixel.shape
    gpix = np.arange(ns, dtype=np.float64) * PROFILE_STEP
    flags_img = np.zeros((nl, ns), dtype=np.uint8)
    block = 128
    for l0 in range(0, nl, block):
        ll, gg = np.meshgrid(np.arange(l0, min(l0 + block, nl), dtype=np.float64), gpix,
                             indexing="ij")
        rc = _quad_terms(ll.ravel(), gg.ravel()) @ coef_rc
        r, c = rc[:, 0], rc[:, 1]
        inside = ((r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)).reshape(ll.shape)
        px = map_coordinates(pixel, [r, c], order=1, mode="nearest").reshape(ll.shape)
        be = map_coordinates(beta, [r, c], order=1, mode="nearest").reshape(ll.shape)
        # points off the DEM take no part: -inf before the profile's first DEM point, +inf after
        near = np.arange(ns)[None, :] < np.argmax(inside, axis=1)[:, None]
        px[~inside] = np.where(near, -np.inf, np.inf)[~inside]
        be[~inside] = -np.inf
        flags_img[l0:l0 + block] = profile_flags(px, be) * inside
    # back to the DEM cells: nearest profile sample of each cell's horizontal position
    l_cell = wr @ l_ref @ wc.T
    p_cell = wr @ p_ref @ wc.T
    li = np.rint(l_cell).astype(np.intp)
    pi = np.rint(p_cell / PROFILE_STEP).astype(np.intp)
    seen = (li >= 0) & (li < nl) & (pi >= 0) & (pi < ns)
    out = flags_img[np.clip(li, 0, nl - 1), np.clip(pi, 0, ns - 1)]
    out[~seen] = 0
    return out


def _quad_terms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / 1000.0
    b = b / 1000.0
    return np.stack([np.ones_like(a), a, b, a * a, a * b, b * b], axis=1)
