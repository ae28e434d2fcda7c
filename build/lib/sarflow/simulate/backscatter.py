"""Radar images from terrain: backscatter per DEM facet, projected into the GRD image.

Each DEM facet (cell) returns ``gamma0 * A_perp``: gamma0 of its land cover and date times
its area seen perpendicular to the look direction (``sigma0 = gamma0 cos(local incidence)``
per unit true area).  Facets are split 2 x 2 and spread bilinearly onto the image pixels
they land on, so layover sums several slopes into one pixel and foreslopes brighten;
shadowed facets return nothing.  Dividing by the pixel's area on the ellipsoid gives the
ellipsoid-referenced sigma0 a calibrated GRD holds.

The projection is linear in the facet values, so it is done once per pass for a few
"basis" images (land cover x landslide) and each date is a weighted sum of them.
"""

from __future__ import annotations

import numpy as np

from .geometry import SHADOW, PassGeometry

_SUB = ((-0.25, -0.25), (-0.25, 0.25), (0.25, -0.25), (0.25, 0.25))


def facet_weight(geom: PassGeometry, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-cell area seen perpendicular to the look direction, in image pixels (float32):
    sigma0 image = sum over facets of gamma0 * this weight."""
    w = geom.look_u - p * geom.look_e - q * geom.look_n  # cos(local inc) * true/flat area
    np.maximum(w, 0.0, out=w)
    w *= geom.rho
    w[(geom.flags & SHADOW) > 0] = 0.0
    return w


def splat(geom: PassGeometry, layers: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]],
          n_classes: int, block_rows: int = 192) -> list[np.ndarray]:
    """Project per-cell values into the image, separately per class.

    ``layers`` holds (values, cell mask or None, class code per cell); each returns
    ``n_classes`` images (lines x samples, float32) of the values spread bilinearly from
    2 x 2 sub-facets, one image per class code (one bincount covers every class)."""
    nl, ns = geom.model.lines, geom.model.samples
    size = nl * ns
    out = [np.zeros(size * n_classes, dtype=np.float64) for _ in layers]
    dl_r, dl_c = np.gradient(geom.line)
    dp_r, dp_c = np.gradient(geom.pixel)
    h = geom.line.shape[0]
    for r0 in range(0, h, block_rows):
        sl = slice(r0, min(r0 + block_rows, h))
        ln, px = geom.line[sl].ravel(), geom.pixel[sl].ravel()
        dlr, dlc, dpr, dpc = (a[sl].ravel() for a in (dl_r, dl_c, dp_r, dp_c))
        for a, b in _SUB:
            idx4, w4, ok = _bilinear_weights(ln + a * dlr + b * dlc, px + a * dpr + b * dpc,
                                             nl, ns)
            for k, (values, mask, codes) in enumerate(layers):
                sel = ok if mask is None else ok & mask[sl].ravel()
                if not sel.any():
                    continue
                keep = sel[ok]
                v = 0.25 * values[sl].ravel()[sel]
                off = codes[sl].ravel()[sel].astype(np.int64) * size
                idx = idx4[:, keep] + off
                out[k] += np.bincount(idx.ravel(), weights=(w4[:, keep] * v).ravel(),
                                      minlength=size * n_classes)
    return [o.reshape(n_classes, nl, ns).astype(np.float32) for o in out]


def _bilinear_weights(line: np.ndarray, pixel: np.ndarray, nl: int, ns: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices (4, n) and weights (4, n) of the pixels around each in-image point, and
    the boolean mask of the points that are in the image."""
    l0 = np.floor(line)
    p0 = np.floor(pixel)
    ok = (l0 >= 0) & (l0 < nl - 1) & (p0 >= 0) & (p0 < ns - 1)
    l0, p0 = l0[ok], p0[ok]
    fl = line[ok] - l0
    fp = pixel[ok] - p0
    idx = l0.astype(np.int64) * ns + p0.astype(np.int64)
    idx4 = np.stack([idx, idx + 1, idx + ns, idx + ns + 1])
    w4 = np.stack([(1 - fl) * (1 - fp), (1 - fl) * fp, fl * (1 - fp), fl * fp])
    return idx4, w4, ok


class Sampler:
    """Bilinear sampling of image-geometry arrays at fixed (line, pixel) positions
    (the event grid's cells): noise-free truth on the grid."""

    def __init__(self, line: np.ndarray, pixel: np.ndarray, nl: int, ns: int) -> None:
        self.shape = line.shape
        ln = np.clip(line.ravel(), 0, nl - 1.000001)
        px = np.clip(pixel.ravel(), 0, ns - 1.000001)
        l0, p0 = np.floor(ln), np.floor(px)
        fl, fp = (ln - l0).astype(np.float32), (px - p0).astype(np.float32)
        idx = l0.astype(np.int64) * ns + p0.astype(np.int64)
        self.idx = (idx, idx + 1, idx + ns, idx + ns + 1)
        self.w = ((1 - fl) * (1 - fp), (1 - fl) * fp, fl * (1 - fp), fl * fp)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        flat = image.ravel()
        out = sum(w * flat[i] for i, w in zip(self.idx, self.w))
        return out.reshape(self.shape).astype(np.float32)


def to_dn(sigma0: np.ndarray, sigma_lut2: np.ndarray, noise: np.ndarray, looks: float,
          rng: np.random.Generator) -> np.ndarray:
    """Digital numbers of a GRD: DN^2 = (sigma0 * A^2 + noise) * speckle, speckle a unit-mean
    gamma variate with ``looks`` equivalent looks; rounded to uint16."""
    speckle = rng.standard_gamma(looks, size=sigma0.shape, dtype=np.float32)
    speckle *= np.float32(1.0 / looks)
    power = sigma0 * sigma_lut2
    power += noise
    power *= speckle
    np.sqrt(power, out=power)
    np.rint(power, out=power)
    np.clip(power, 0, 65535, out=power)
    return power.astype(np.uint16)
