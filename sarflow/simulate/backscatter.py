"""Radar images from terrain: backscatter per DEM facet, projected into the GRD image.

Each DEM facet (cell) returns ``gamma0 * A_perp``: gamma0 of its land cover and date times
its area seen perpendicular to the look direction (``sigma0 = gamma0 cos(local incidence)``
per unit true area).  Facets are split 2 x 2 and spread bilinearly onto the image pixels
they land on, so layover sums several slopes into one pixel and foreslopes brighten;
shadowed facets return nothing.  Dividing by the pixel's area on the ellipsoid gives the
ellipsoid-referenced sigma0 a calibrated GRD holds.

The projection is linear in the facet values, so it is done once per pass for a few
"basis" images (land cover x landslide) and each date is a weighted sum of them.

Speckle, two models (``SimulationSettings.speckle``):

- ``pixel``: DN^2 = power x an independent unit-mean gamma variate per pixel with ENL
  looks (the model of earlier sarflow versions);
- ``cell``: speckle formed at the resolution cell.  ESA's Sentinel-1 Product Definition
  (S1-RS-MDA-52-7440, IW GRD High Resolution: resolution 20 x 22 m range x azimuth, pixel
  spacing 10 x 10 m, 5 x 1 looks, ENL 4.4) describes GRDH as 5 range looks, each with a
  20 x 22 m impulse response, detected and averaged, sampled every 10 m; partly overlapping
  looks give an ENL of 4.4 rather than 5.  So here: complex circular Gaussian scatterers
  with the pixel's power are filtered by the impulse response (a Hamming-weighted band,
  coefficient ``HAMMING``, whose -3 dB width of |h|^2 is the resolution), per look; five
  looks are made from six independent fields, adjacent looks sharing one
  (``z_k = (v_k + b v_{k+1}) / sqrt(1 + b^2)``), with b chosen so that the ENL of their
  mean intensity is 4.4: ENL = 25 / (5 + 8 rho^2), rho = b / (1 + b^2).  The intensity
  correlation of two pixels d apart is then |R(d)|^2, R the normalised autocorrelation
  of the impulse response (Siegert), about 0.6 for adjacent pixels; the mean
  intensity is the power blurred by |h|^2, as in a real image.
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


HAMMING = 0.75
"""Generalised Hamming coefficient of the simulated impulse response's spectral weighting
(w(x) = a + (1 - a) cos(2 pi x), |x| <= 1/2 of the band)."""
GRD_LOOKS = 5
"""Range looks of IW GRDH (ESA's product definition: 5 x 1)."""
_PAD = 12


def hamming_width_factor(a: float = HAMMING) -> float:
    """K such that the -3 dB width of |h|^2 is K / B for a band of width B (cycles per m)
    weighted by the generalised Hamming window with coefficient ``a``."""
    f = np.linspace(-0.5, 0.5, 4001)
    w = a + (1.0 - a) * np.cos(2.0 * np.pi * f)
    x = np.linspace(0.0, 1.5, 3001)  # in units of 1 / B
    h = np.trapezoid(w[None, :] * np.cos(2.0 * np.pi * f[None, :] * x[:, None]), f, axis=1)
    p = (h / h[0]) ** 2
    k = int(np.argmax(p < 0.5))
    x3 = x[k - 1] + (0.5 - p[k - 1]) * (x[k] - x[k - 1]) / (p[k] - p[k - 1])
    return 2.0 * float(x3)


def transfer_function(n: int, spacing_m: float, resolution_m: float, a: float = HAMMING
                      ) -> np.ndarray:
    """The impulse response's spectrum on the FFT frequencies of ``n`` samples
    ``spacing_m`` apart (float64, normalised to unit mean power)."""
    band = hamming_width_factor(a) / resolution_m  # cycles per m
    if band > 1.0 / spacing_m:
        raise ValueError(f"resolution {resolution_m} m is finer than {spacing_m} m sampling allows")
    f = np.fft.fftfreq(n, d=spacing_m) / band
    h = np.where(np.abs(f) <= 0.5, a + (1.0 - a) * np.cos(2.0 * np.pi * f), 0.0)
    return h / np.sqrt(np.mean(h * h))


def look_overlap(enl: float, looks: int = GRD_LOOKS) -> float:
    """b such that ``looks`` looks z_k = (v_k + b v_{k+1}) / sqrt(1 + b^2) have an ENL of ``enl``."""
    if not 1.0 <= enl <= looks:
        raise ValueError(f"ENL {enl} must lie in [1, {looks}] for {looks} looks")
    rho2 = (looks * looks / enl - looks) / (2.0 * (looks - 1))
    rho = np.sqrt(rho2)
    if rho >= 0.5:
        raise ValueError(f"ENL {enl} needs looks more correlated than this model allows")
    return float((1.0 - np.sqrt(1.0 - 4.0 * rho2)) / (2.0 * rho)) if rho > 0 else 0.0


def cell_speckle(power: np.ndarray, rng: np.random.Generator, enl: float,
                 resolution_m: tuple[float, float], spacing_m: float = 10.0) -> np.ndarray:
    """Detected, multi-looked intensity (float32) of an image whose pixels have ``power``:
    speckle formed at the resolution cell (module docstring); E[out] = power blurred by the
    impulse response's |h|^2."""
    nl, ns = power.shape
    padded = np.pad(power, _PAD, mode="edge")
    amp = np.sqrt(np.maximum(padded, 0.0)).astype(np.float32)
    h = (transfer_function(padded.shape[0], spacing_m, resolution_m[1])[:, None]
         * transfer_function(padded.shape[1], spacing_m, resolution_m[0])[None, :]
         ).astype(np.float32)
    b = np.float32(look_overlap(enl))
    norm = np.float32(1.0 / np.sqrt(1.0 + b * b))
    out = np.zeros(padded.shape, dtype=np.float32)
    prev = None
    for _ in range(GRD_LOOKS + 1):
        w = rng.standard_normal((2,) + padded.shape, dtype=np.float32)
        field = (w[0] + 1j * w[1]).astype(np.complex64)
        field *= amp * np.float32(np.sqrt(0.5))
        v = np.fft.ifft2(np.fft.fft2(field) * h).astype(np.complex64)
        if prev is not None:
            z = (prev + b * v) * norm
            out += z.real ** 2 + z.imag ** 2
        prev = v
    out *= np.float32(1.0 / GRD_LOOKS)
    return out[_PAD:_PAD + nl, _PAD:_PAD + ns]


def to_dn(sigma0: np.ndarray, sigma_lut2: np.ndarray, noise: np.ndarray, looks: float,
          rng: np.random.Generator, speckle: str = "pixel",
          resolution_m: tuple[float, float] = (20.0, 22.0)) -> np.ndarray:
    """Digital numbers of a GRD: DN^2 = (sigma0 * A^2 + noise) * speckle, speckle a unit-mean
    gamma variate with ``looks`` equivalent looks per pixel (``pixel``) or formed at the
    resolution cell (``cell``, :func:`cell_speckle`); rounded to uint16."""
    power = sigma0 * sigma_lut2
    power += noise
    if speckle == "cell":
        power = cell_speckle(power, rng, looks, resolution_m)
    else:
        spk = rng.standard_gamma(looks, size=sigma0.shape, dtype=np.float32)
        spk *= np.float32(1.0 / looks)
        power *= spk
    np.sqrt(power, out=power)
    np.rint(power, out=power)
    np.clip(power, 0, 65535, out=power)
    return power.astype(np.uint16)
