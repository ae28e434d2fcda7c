"""Compiled per-pixel loops (numba) for the native engine's hottest steps.

Each kernel does in one pass, without temporaries, what a numpy function does in a dozen:
:func:`lut_evaluate` (:meth:`~sarflow.sentinel1.lookup.GeometryLUT.evaluate`),
:func:`fitted_pixel` (:meth:`~sarflow.sentinel1.radar.GrdGeometry.pixel_of`),
:func:`bilinear_at` (:func:`sarflow.engines.native.resample`), :func:`coordinate_bounds`
(:func:`sarflow.engines.native.image_window`), :func:`steep_points`, :func:`near_steep`
and :func:`layover_codes`, all three in :func:`layover_grid`
(:mod:`sarflow.sentinel1.layover`), :func:`add_upsampled`
(the geoid over a block) and :func:`code_band` (the layover band).  The numpy versions
stay the reference and the path taken when numba is missing (:data:`COMPILED`); the tests hold
the two to the same values.  Without numba the kernels still run, as plain (slow)
Python, which is how the tests check them there.  Compiled code is cached on disk
(``cache=True``): a process pays the compilation (a few seconds) only the first time.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba as _numba
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None

COMPILED = _numba is not None
"""True when numba is importable and the engine uses these kernels."""


def _jit(fn):
    """``numba.njit`` (no GIL, cached, fused multiply-adds) when numba is there, else the
    function as it is."""
    if _numba is None:
        return fn
    return _numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})(fn)


@_jit
def lut_evaluate(coef: np.ndarray, stride: int, h: np.ndarray, h_mid: float, h_half: float,
                 fixed: np.ndarray, out: np.ndarray) -> None:
    """``out[q]`` = polynomial ``q`` in the normalised height ``(h - h_mid) / h_half`` per
    pixel (or at the normalised height ``fixed[q]`` where that is not NaN), its
    coefficients interpolated bilinearly from ``coef`` (quantity, ascending power, node
    row, node column; nodes every ``stride`` pixels from pixel 0); NaN ``h`` gives NaN."""
    nq, nd, nr, nc = coef.shape
    height, width = h.shape
    c0s = np.empty(width, dtype=np.int64)
    fxs = np.empty(width)
    for x in range(width):
        c0s[x] = min(x // stride, nc - 2)
        fxs[x] = x / stride - c0s[x]
    rows = np.empty((nq, nd, nc))
    for y in range(height):
        r0 = min(y // stride, nr - 2)
        fy = y / stride - r0
        for q in range(nq):
            for d in range(nd):
                for c in range(nc):
                    a = coef[q, d, r0, c]
                    rows[q, d, c] = a + (coef[q, d, r0 + 1, c] - a) * fy
        for x in range(width):
            c0, fx, u = c0s[x], fxs[x], (h[y, x] - h_mid) / h_half
            for q in range(nq):
                uu = u if math.isnan(fixed[q]) or math.isnan(u) else fixed[q]
                acc = 0.0
                for d in range(nd - 1, -1, -1):
                    left = rows[q, d, c0]
                    acc = acc * uu + (left + (rows[q, d, c0 + 1] - left) * fx)
                out[q, y, x] = acc


@_jit
def fitted_pixel(line: np.ndarray, rng: np.ndarray, t_first: float, ati: float,
                 conv_time: np.ndarray, k0: int, coef: np.ndarray, mid: float, half: float,
                 rps: float, out: np.ndarray) -> None:
    """Image pixel of slant range ``rng`` (m) at image ``line`` (2-D arrays): the ground
    range of the record nearest in azimuth time, ``coef[k - k0]`` a power series in
    ``(R - mid) / half`` (records ``k0`` on: every point's nearest must be among them),
    over the pixel spacing ``rps``; NaN in, NaN out."""
    last = k0 + coef.shape[0] - 1
    for i in range(line.shape[0]):
        for j in range(line.shape[1]):
            ln, r = line[i, j], rng[i, j]
            if not (math.isfinite(ln) and math.isfinite(r)):
                out[i, j] = np.nan
                continue
            t = t_first + ln * ati
            k = k0  # the nearest record (ties to the earlier), as _nearest picks it
            while k < last and abs(t - conv_time[k]) > abs(conv_time[k + 1] - t):
                k += 1
            k -= k0
            x = (r - mid) / half
            acc = 0.0
            for p in range(coef.shape[1] - 1, -1, -1):
                acc = acc * x + coef[k, p]
            out[i, j] = acc / rps


@_jit
def bilinear_at(img: np.ndarray, line: np.ndarray, pixel: np.ndarray, row0: float,
                col0: float, out: np.ndarray) -> None:
    """``out`` = bilinear samples of an image window ``img`` whose first pixel is
    (``row0``, ``col0``) at fractional image (``line``, ``pixel``) (2-D arrays), integers at
    pixel centres; NaN outside the window or next to a NaN pixel."""
    h, w = img.shape
    for i in range(line.shape[0]):
        for j in range(line.shape[1]):
            ln, px = line[i, j] - row0, pixel[i, j] - col0
            if not (h >= 2 and w >= 2 and ln >= 0 and px >= 0 and ln <= h - 1
                    and px <= w - 1):
                out[i, j] = np.nan
                continue
            r0, c0 = min(int(ln), h - 2), min(int(px), w - 2)
            fr, fc = ln - r0, px - c0
            top = img[r0, c0] * (1 - fc) + img[r0, c0 + 1] * fc
            bottom = img[r0 + 1, c0] * (1 - fc) + img[r0 + 1, c0 + 1] * fc
            out[i, j] = top * (1 - fr) + bottom * fr


@_jit
def coordinate_bounds(line: np.ndarray, pixel: np.ndarray, lo_line: float, hi_line: float,
                      lo_pixel: float, hi_pixel: float) -> tuple[float, float, float, float]:
    """(min line, max line, min pixel, max pixel) of the points strictly inside the given
    limits (2-D arrays; NaN is never inside); (inf, -inf, inf, -inf) when none is."""
    l0, l1, p0, p1 = np.inf, -np.inf, np.inf, -np.inf
    for i in range(line.shape[0]):
        for j in range(line.shape[1]):
            ln, px = line[i, j], pixel[i, j]
            if lo_line < ln < hi_line and lo_pixel < px < hi_pixel:
                l0, l1 = min(l0, ln), max(l1, ln)
                p0, p1 = min(p0, px), max(p1, px)
    return l0, l1, p0, p1


def as_2d(a: np.ndarray) -> np.ndarray:
    """A float64 2-D view of ``a`` for the kernels (one row for 1-D, rows of the last axis
    beyond 2-D; copies only to change the type or to flatten more dimensions)."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(1, -1) if a.ndim < 2 else a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


@_jit
def layover_codes(line: np.ndarray, rng: np.ndarray, look: np.ndarray, order: np.ndarray,
                  idx: np.ndarray, tol_range: float, tol_look: float, codes: np.ndarray
                  ) -> None:
    """:func:`~sarflow.sentinel1.layover.layover_shadow` on the points ``idx`` (finite) of
    1-D arrays, codes written at ``idx``: points binned into zero-Doppler lines by rounded
    ``line`` (a counting sort), each line sorted by ``order``, then scanned for range
    reversals (layover, 1) and look-angle reversals (shadow, 2)."""
    n = idx.size
    if n == 0:
        return
    bins = np.empty(n, dtype=np.int64)
    for i in range(n):
        bins[i] = np.int64(np.rint(line[idx[i]]))
    b0 = bins.min()
    starts = np.zeros(bins.max() - b0 + 2, dtype=np.int64)
    for i in range(n):
        starts[bins[i] - b0 + 1] += 1
    starts = np.cumsum(starts)
    fill = starts[:-1].copy()
    by_line = np.empty(n, dtype=np.int64)
    for i in range(n):
        j = bins[i] - b0
        by_line[fill[j]] = idx[i]
        fill[j] += 1
    for s in range(starts.size - 1):
        lo, hi = starts[s], starts[s + 1]
        if hi > lo:
            seg = by_line[lo:hi]
            _scan_line(seg[np.argsort(order[seg], kind="mergesort")], rng, look, tol_range,
                       tol_look, codes)


@_jit
def near_steep(line: np.ndarray, order: np.ndarray, ok: np.ndarray, steep: np.ndarray,
               width: float, sel: np.ndarray) -> None:
    """``sel`` = valid (``ok``) points in a cell ``width`` wide across track (by
    ``order``) of a zero-Doppler line (by rounded ``line``) next to, or the same as, a cell
    of a line next to, or the same as, the point's that holds a steep point (1-D arrays)."""
    n = line.size
    b0, b1, o0, o1 = np.int64(1 << 62), -np.int64(1 << 62), np.inf, -np.inf
    for i in range(n):
        if ok[i]:
            b = np.int64(np.rint(line[i]))
            b0, b1 = min(b0, b), max(b1, b)
            o0, o1 = min(o0, order[i]), max(o1, order[i])
    if b1 < b0:
        return
    nc = np.int64((o1 - o0) / width) + 3
    cells = np.zeros((b1 - b0 + 3, nc), dtype=np.bool_)
    for i in range(n):
        if ok[i] and steep[i]:
            b = np.int64(np.rint(line[i])) - b0 + 1
            c = np.int64((order[i] - o0) / width) + 1
            for db in range(-1, 2):
                for dc in range(-1, 2):
                    cells[b + db, c + dc] = True
    for i in range(n):
        if ok[i]:
            sel[i] = cells[np.int64(np.rint(line[i])) - b0 + 1,
                           np.int64((order[i] - o0) / width) + 1]
        else:
            sel[i] = False


@_jit
def _scan_line(seg: np.ndarray, rng: np.ndarray, look: np.ndarray, tol_range: float,
               tol_look: float, codes: np.ndarray) -> None:
    """Codes of one zero-Doppler line's points ``seg``, ordered across track: layover
    where a nearer point lies farther in range or a farther one nearer, shadow where a
    nearer point is seen under a larger look angle."""
    m = seg.size
    rmax, amax = -np.inf, -np.inf
    for k in range(m):
        i = seg[k]
        code = 0
        if rng[i] < rmax - tol_range:
            code = 1
        if look[i] < amax - tol_look:
            code += 2
        codes[i] = code
        rmax, amax = max(rmax, rng[i]), max(amax, look[i])
    rmin = np.inf
    for k in range(m - 1, -1, -1):
        i = seg[k]
        if rng[i] > rmin + tol_range and codes[i] % 2 == 0:
            codes[i] += 1
        rmin = min(rmin, rng[i])


@_jit
def steep_points(h: np.ndarray, line: np.ndarray, rng: np.ndarray, look: np.ndarray,
                 order: np.ndarray, limit_y: float, limit_x: float, codes: np.ndarray,
                 steep: np.ndarray) -> int:
    """``codes`` = 0 where the geometry is known (all four finite), 255 elsewhere;
    ``steep`` = known points next to a height step above ``limit_y`` down a column or
    ``limit_x`` along a row (2-D arrays); the number of steep points."""
    ny, nx = h.shape
    count = 0
    for i in range(ny):
        for j in range(nx):
            known = (math.isfinite(line[i, j]) and math.isfinite(rng[i, j])
                     and math.isfinite(look[i, j]) and math.isfinite(order[i, j]))
            codes[i, j] = 0 if known else 255
            s = False
            if known:
                z = h[i, j]
                s = ((i > 0 and abs(z - h[i - 1, j]) > limit_y)
                     or (i < ny - 1 and abs(h[i + 1, j] - z) > limit_y)
                     or (j > 0 and abs(z - h[i, j - 1]) > limit_x)
                     or (j < nx - 1 and abs(h[i, j + 1] - z) > limit_x))
            steep[i, j] = s
            count += s
    return count


@_jit
def add_upsampled(nodes: np.ndarray, stride: int, out: np.ndarray) -> None:
    """``out`` += the bilinear interpolation of ``nodes`` (every ``stride`` pixels from
    pixel 0) at every pixel, as :func:`~sarflow.sentinel1.lookup.upsample` gives it."""
    nr, nc = nodes.shape
    height, width = out.shape
    for y in range(height):
        r0 = min(y // stride, nr - 2)
        fy = y / stride - r0
        for x in range(width):
            c0 = min(x // stride, nc - 2)
            fx = x / stride - c0
            left = nodes[r0, c0] + (nodes[r0 + 1, c0] - nodes[r0, c0]) * fy
            right = nodes[r0, c0 + 1] + (nodes[r0 + 1, c0 + 1] - nodes[r0, c0 + 1]) * fy
            out[y, x] += left + (right - left) * fx


@_jit
def code_band(line: np.ndarray, pixel: np.ndarray, codes: np.ndarray, lines: int,
              pixels: int, out: np.ndarray) -> None:
    """``out`` = layover/shadow ``codes`` (2-D) as floats where (line, pixel) lies inside
    an image of ``lines`` x ``pixels`` and the code is known (not 255), NaN elsewhere."""
    for i in range(codes.shape[0]):
        for j in range(codes.shape[1]):
            ln, px, c = line[i, j], pixel[i, j], codes[i, j]
            inside = 0 <= ln <= lines - 1 and 0 <= px <= pixels - 1
            out[i, j] = c if inside and c != 255 else np.nan


@_jit
def layover_grid(h: np.ndarray, line: np.ndarray, rng: np.ndarray, look: np.ndarray,
                 order: np.ndarray, limit_y: float, limit_x: float, width: float,
                 tol_range: float, codes: np.ndarray) -> None:
    """:func:`~sarflow.sentinel1.layover.layover_shadow_grid` in one call (2-D arrays):
    known and steep points (:func:`steep_points`), the points near steep ones
    (:func:`near_steep`), their codes (:func:`layover_codes`, the look tolerance
    ``tol_range`` over their mean range)."""
    steep = np.empty(h.shape, dtype=np.bool_)
    if steep_points(h, line, rng, look, order, limit_y, limit_x, codes, steep) == 0:
        return
    flat_codes = codes.reshape(-1)
    known = np.empty(flat_codes.size, dtype=np.bool_)
    for i in range(flat_codes.size):
        known[i] = flat_codes[i] == 0
    sel = np.empty(flat_codes.size, dtype=np.bool_)
    fl, fr = line.reshape(-1), rng.reshape(-1)
    near_steep(fl, order.reshape(-1), known, steep.reshape(-1), width, sel)
    idx = np.flatnonzero(sel)
    total = 0.0
    for i in idx:
        total += fr[i]
    layover_codes(fl, fr, look.reshape(-1), order.reshape(-1), idx, tol_range,
                  tol_range / (total / idx.size), flat_codes)
