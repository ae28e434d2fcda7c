"""The height lookup: exact range-Doppler geometry at a few heights, as polynomials in
height, for the native engine and the simulator.

Solving zero Doppler for every pixel at its own height is the costly part of terrain
geocoding.  Both users solve it exactly at coarse nodes and a few heights spanning the
terrain, fit a polynomial in height per node (:func:`height_coefficients`) and
interpolate across: the native engine through :class:`GeometryLUT` (nodes every
``stride`` lattice pixels, Chebyshev-Lobatto heights, degree by relief, evaluated per
block in one compiled pass, or in float32 numpy without numba), the simulator on its
DEM with three heights (a quadratic) and dense interpolation weights, since it also
needs the coarse gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from ..grid import Grid, Window
from . import kernels


def height_coefficients(values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Coefficients (ascending powers of ``u``, axis 0) of the polynomial in height through
    ``values`` (axis 0: one entry per height) at the (normalised) heights ``u``."""
    vand_inv = np.linalg.inv(np.vander(np.asarray(u, dtype=np.float64), len(u), increasing=True))
    return np.tensordot(vand_inv, values, axes=1)



CoordsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]]
"""(lat, lon, height) -> {name: array}: exact geometry at lookup nodes."""


def upsample(nodes: np.ndarray, stride: int, height: int, width: int) -> np.ndarray:
    """Bilinear interpolation of node values (every ``stride`` pixels from pixel 0) to all
    ``height`` x ``width`` pixels, separably: rows first (on few columns), then columns."""
    nr, nc = nodes.shape
    y = np.arange(height) / stride
    r0 = np.clip(np.floor(y), 0, nr - 2).astype(np.intp)
    fy = (y - r0)[:, None].astype(nodes.dtype)
    rows = nodes[r0 + 1] - nodes[r0]
    rows *= fy
    rows += nodes[r0]
    x = np.arange(width) / stride
    c0 = np.clip(np.floor(x), 0, nc - 2).astype(np.intp)
    fx = (x - c0).astype(nodes.dtype)
    left = np.take(rows, c0, axis=1)
    out = np.take(rows, c0 + 1, axis=1)
    out -= left
    out *= fx
    out += left
    return out


@dataclass
class GeometryLUT:
    """Exact geometry at coarse nodes of a grid window, as polynomials in height.

    At every node (each ``stride`` grid pixels), each quantity is sampled at ``degree + 1``
    Chebyshev-Lobatto heights between the window's lowest and highest terrain and fitted
    by a polynomial in normalised height; per pixel, the coefficients are interpolated
    bilinearly and the polynomial evaluated at the pixel's height.
    """

    window: Window
    stride: int
    h_mid: float
    h_half: float
    coef: dict[str, np.ndarray]  # name -> (degree + 1, nodes_r, nodes_c), ascending powers
    offset: dict[str, float] = field(default_factory=dict)
    """Per quantity, a constant taken out of the constant coefficient so that the
    per-pixel arithmetic can run in float32 (residuals of a few thousand at most)."""

    @staticmethod
    def degree_for(relief: float) -> int:
        """Polynomial degree that keeps the height interpolation below 0.01 pixel (linear:
        0.004 pixel at 650 m of relief, growing with its square; quadratic: 0.0002)."""
        return 1 if relief < 600 else 2 if relief < 3000 else 3 if relief < 6000 else 4

    @classmethod
    def build(cls, grid: Grid, window: Window, hmin: float, hmax: float, coords: CoordsFn,
              stride: int = 16, degree: int | None = None) -> "GeometryLUT":
        """Nodes every ``stride`` pixels over ``window`` (last node at or past its end)."""
        deg = cls.degree_for(hmax - hmin) if degree is None else int(degree)
        nr = max(2, math.ceil((window.height - 1) / stride) + 1)
        nc = max(2, math.ceil((window.width - 1) / stride) + 1)
        rows = window.row + np.arange(nr) * stride
        cols = window.col + np.arange(nc) * stride
        h_mid = 0.5 * (hmax + hmin)
        h_half = max(0.5 * (hmax - hmin), 1.0)
        u = -np.cos(np.pi * np.arange(deg + 1) / deg)  # Chebyshev-Lobatto points in [-1, 1]
        lon, lat = grid.lonlat(rows[:, None], cols[None, :])
        lon, lat = np.broadcast_arrays(lon, lat)
        shape3 = (deg + 1, nr, nc)
        out = coords(np.broadcast_to(lat, shape3).ravel(), np.broadcast_to(lon, shape3).ravel(),
                     np.broadcast_to((h_mid + h_half * u)[:, None, None], shape3).ravel())
        coef = {k: height_coefficients(np.asarray(v, dtype=np.float64).reshape(shape3), u)
                for k, v in out.items()}
        offset = {}
        for k, c in coef.items():
            fin = c[0][np.isfinite(c[0])]
            offset[k] = float(np.round(np.mean(fin))) if fin.size else 0.0
            c[0] -= offset[k]
        return cls(window, stride, h_mid, h_half, coef, offset)

    def at_height(self, height: float, name: str) -> np.ndarray:
        """One quantity at every pixel of the window at one height (a single upsampling)."""
        c = self.coef[name]
        u = (height - self.h_mid) / self.h_half
        nodes = c[-1].copy()
        for i in range(c.shape[0] - 2, -1, -1):
            nodes = nodes * u + c[i]
        return upsample(nodes, self.stride, self.window.height, self.window.width) \
            + self.offset.get(name, 0.0)

    def evaluate(self, height: np.ndarray, names: Iterable[str] | None = None,
                 at: Mapping[str, tuple[str, float]] | None = None) -> dict[str, np.ndarray]:
        """Quantities at every pixel of the window for heights ``height`` (window-shaped, or
        a scalar); NaN height gives NaN.  ``at``: more outputs, each a quantity at one
        height (``{"order": ("range", 100.0)}``), NaN where ``height`` is."""
        h, w = self.window.height, self.window.width
        names = list(names or self.coef)
        height = np.asarray(height, dtype=np.float64)
        if kernels.COMPILED:
            return self._evaluate_compiled(np.broadcast_to(height, (h, w)), names, at or {})
        out = self._evaluate_numpy(height, names)
        for key, (name, fixed) in (at or {}).items():
            out[key] = self.at_height(fixed, name)
            out[key][np.isnan(np.broadcast_to(height, (h, w)))] = np.nan
        return out

    def _evaluate_numpy(self, height: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """:meth:`evaluate` with numpy: residuals in float32, separable upsampling."""
        h, w = self.window.height, self.window.width
        u = ((height - self.h_mid) / self.h_half).astype(np.float32)
        out = {}
        for name in names:
            c = self.coef[name].astype(np.float32)
            acc = upsample(c[-1], self.stride, h, w)
            for i in range(c.shape[0] - 2, -1, -1):
                acc *= u
                acc += upsample(c[i], self.stride, h, w)
            out[name] = acc.astype(np.float64) + self.offset.get(name, 0.0)
        return out

    def _evaluate_compiled(self, height: np.ndarray, names: list[str],
                           at: Mapping[str, tuple[str, float]] | None = None
                           ) -> dict[str, np.ndarray]:
        """:meth:`evaluate` in one compiled pass (float64 throughout)."""
        at = at or {}
        quantities = names + [name for name, _ in at.values()]
        coef = np.stack([self.coef[n] for n in quantities]).astype(np.float64)
        for i, n in enumerate(quantities):
            coef[i, 0] += self.offset.get(n, 0.0)
        fixed = np.array([np.nan] * len(names)
                         + [(h - self.h_mid) / self.h_half for _, h in at.values()])
        out = np.empty((len(quantities),) + height.shape)
        kernels.lut_evaluate(coef, self.stride, np.ascontiguousarray(height), self.h_mid,
                             self.h_half, fixed, out)
        return dict(zip(names + list(at), out))
