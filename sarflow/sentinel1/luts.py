"""Full-resolution calibration and thermal-noise look-up tables for any image window.

ESA's vectors sample a LUT at some lines, each at some range pixels; the value at any
(line, pixel) is bilinear between them: linear along range inside each of the two vectors
bracketing the line, then linear between those two lines (constant beyond the first and the
last node).  The result is exact at the nodes.  New-format noise (IPF >= 2.9) is the
range LUT times the azimuth profile of the block (sub-swath x line interval) a pixel falls
in; pixels outside every block keep the range LUT alone.
"""

from __future__ import annotations

import numpy as np

from ..grid import Window
from .annotation import Noise, VectorList


def interpolate_vectors(vectors: VectorList, name: str, window: Window,
                        dtype: type = np.float64) -> np.ndarray:
    """The LUT ``name`` of ``vectors`` over ``window`` (image lines x pixels), in ``dtype``
    (float32 halves the time; the LUTs are used in float32)."""
    lines = np.arange(window.row, window.row + window.height, dtype=np.float64)
    pixels = np.arange(window.col, window.col + window.width, dtype=np.float64)
    vl = vectors.line
    order = np.argsort(vl, kind="stable")
    vl = vl[order]
    if vl.size == 1:
        row = np.interp(pixels, vectors.pixel[order[0]], vectors.values[name][order[0]])
        return np.broadcast_to(row.astype(dtype), (lines.size, pixels.size)).copy()
    i = np.clip(np.searchsorted(vl, lines, side="right") - 1, 0, vl.size - 2)
    gap = vl[i + 1] - vl[i]
    frac = np.clip(np.divide(lines - vl[i], gap, out=np.zeros_like(lines), where=gap > 0),
                   0.0, 1.0)
    needed = np.union1d(np.unique(i), np.unique(i + 1))
    rows = {int(j): np.interp(pixels, vectors.pixel[order[j]],
                              vectors.values[name][order[j]]).astype(dtype)
            for j in needed}
    out = np.empty((lines.size, pixels.size), dtype=dtype)
    frac = frac.astype(dtype)[:, None]
    for j in np.unique(i):  # i grows with the line: each vector pair covers a run of rows
        run = np.flatnonzero(i == j)
        sel = slice(run[0], run[-1] + 1)
        a, b = rows[int(j)], rows[int(j) + 1]
        np.multiply(1 - frac[sel], a, out=out[sel])  # exact at the vectors' lines
        out[sel] += frac[sel] * b
    return out


def calibration_lut(vectors: VectorList, kind: str, window: Window) -> np.ndarray:
    """Calibration LUT (``sigma0``, ``beta0``, ``gamma0`` or ``dn``) over ``window``, float32:
    calibrated intensity = DN^2 / LUT^2."""
    return interpolate_vectors(vectors, kind, window, np.float32)


def noise_lut(noise: Noise, window: Window) -> np.ndarray:
    """Thermal noise power (DN^2 units) over ``window``, float32."""
    out = interpolate_vectors(noise.range, "noise", window, np.float32)
    if noise.format == "new":
        out *= azimuth_noise(noise, window, np.float32)
    return out


def azimuth_noise(noise: Noise, window: Window, dtype: type = np.float64) -> np.ndarray:
    """The new format's azimuth noise factor over ``window`` (1 outside every block)."""
    out = np.ones((window.height, window.width), dtype=dtype)
    r0, c0 = window.row, window.col
    r1, c1 = r0 + window.height - 1, c0 + window.width - 1
    for b in noise.azimuth:
        lo_r, hi_r = max(b.first_line, r0), min(b.last_line, r1)
        lo_c, hi_c = max(b.first_sample, c0), min(b.last_sample, c1)
        if lo_r > hi_r or lo_c > hi_c or b.values.size == 0:
            continue
        lines = np.arange(lo_r, hi_r + 1, dtype=np.float64)
        prof = (np.interp(lines, b.line, b.values) if b.values.size > 1
                else np.full(lines.size, b.values[0]))
        out[lo_r - r0:hi_r - r0 + 1, lo_c - c0:hi_c - c0 + 1] = prof[:, None]
    return out
