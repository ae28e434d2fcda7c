"""IW sub-swaths in a simulated GRD: where the IW1/IW2 and IW2/IW3 seams fall, the thermal
noise (NESZ) of each sub-swath across range, and its burst-scalloped azimuth profile.

A simulated product is a crop of a full IW GRD around the event, so the seams sit where
they sit in real products: at fixed incidence angles on the ellipsoid.  Every number below
was read from the real Sentinel-1B product in the test fixtures
(``S1B_IW_GRDH_1SDV_20211223T051122_..._5371``, IPF 003.40; see
``shared/fixtures/README.md``):

- seams: the incidence angle of the geolocation grid at the swath-merge bounds
  (range samples 8889/8890 and 17700/17701), mean of five azimuth positions: 36.42 and
  41.65 degrees (spread 0.05 degrees);
- NESZ: ``noiseRangeLut / sigmaNought^2`` (the noise-equivalent sigma0 that ESA's noise
  vectors describe), against the geolocation grid's incidence angle, averaged over five
  range vectors (spread under 0.4 dB): per sub-swath a bowl, lowest near the swath centre
  and 2 to 6 dB higher at its edges (the antenna elevation pattern), with steps at the
  seams (about 1 dB at IW2/IW3);
- azimuth: ``noiseAzimuthLut`` rises from 1.00 at a burst's centre to about 1.10 at its
  edges and jumps back at each burst boundary, with a period of about 1842 lines (the IW
  burst cycle); the sub-swaths' bursts are staggered.

The annotation uses the new noise format (IPF >= 2.9): range vectors across the whole
image width, with a node on each side of every seam, and one azimuth vector per
sub-swath block.  ``noise_error_db`` draws, per scene and sub-swath, how far the real noise
power departs from the annotated one, which is what leaves seams after noise removal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SWATHS = ("IW1", "IW2", "IW3")
SEAM_INCIDENCE_DEG = (36.42, 41.65)
"""Ellipsoid incidence angle of the IW1/IW2 and IW2/IW3 seams (real product above)."""

NESZ_TABLE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "IW1": ((30.45, 30.95, 31.44, 31.93, 32.43, 32.92, 33.41, 33.91, 34.40, 34.89, 35.39,
             35.88, 36.37),
            (-22.46, -23.44, -24.02, -24.36, -24.56, -24.69, -24.81, -24.96, -25.09, -25.11,
             -24.90, -24.40, -23.56)),
    "IW2": ((36.49, 36.92, 37.34, 37.77, 38.19, 38.62, 39.04, 39.47, 39.89, 40.32, 40.74,
             41.17, 41.60),
            (-23.62, -24.83, -25.66, -26.22, -26.63, -26.97, -27.20, -27.29, -27.18, -26.88,
             -26.40, -25.71, -24.69)),
    "IW3": ((41.69, 42.05, 42.41, 42.77, 43.13, 43.49, 43.85, 44.20, 44.56, 44.92, 45.28,
             45.64, 46.00),
            (-25.71, -27.36, -28.56, -29.40, -29.96, -30.23, -30.22, -29.92, -29.31, -28.39,
             -27.17, -25.64, -23.79)),
}
"""(incidence deg, NESZ dB) nodes per sub-swath (real product above); linear between
nodes, extrapolated linearly beyond the first and last node."""

BURST_LINES = 1842
"""Lines per burst cycle in the azimuth noise profile (real product above)."""
BURST_EDGE_FACTOR = 1.10
"""Azimuth noise factor at a burst's edges (1 at its centre; real product above)."""
_BURST_PHASE = {"IW1": 0.09, "IW2": 0.42, "IW3": 0.75}
"""Burst boundaries of each sub-swath as a fraction of the cycle (staggered)."""


def swath_of_incidence(inc_deg: np.ndarray) -> np.ndarray:
    """Index (0, 1, 2 for IW1, IW2, IW3) of the sub-swath that images each incidence angle."""
    return np.searchsorted(np.asarray(SEAM_INCIDENCE_DEG), np.asarray(inc_deg), side="right")


def nesz_db(inc_deg: np.ndarray, swath: np.ndarray, offset_db: float = 0.0) -> np.ndarray:
    """NESZ (dB) of each sub-swath index ``swath`` at incidence ``inc_deg``."""
    inc = np.asarray(inc_deg, dtype=np.float64)
    sw = np.broadcast_to(np.asarray(swath), inc.shape)
    out = np.empty(inc.shape)
    for k, name in enumerate(SWATHS):
        x, y = (np.asarray(v) for v in NESZ_TABLE[name])
        sel = sw == k
        if not sel.any():
            continue
        v = np.interp(inc[sel], x, y)
        lo, hi = inc[sel] < x[0], inc[sel] > x[-1]
        v[lo] = y[0] + (inc[sel][lo] - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
        v[hi] = y[-1] + (inc[sel][hi] - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
        out[sel] = v
    return out + offset_db


@dataclass(frozen=True)
class SwathBlock:
    """One sub-swath's part of the image: its name, range samples (inclusive) and its
    azimuth noise profile (lines, factors)."""

    name: str
    first_sample: int
    last_sample: int
    lines: np.ndarray
    factors: np.ndarray


def seam_pixels(lut_pixels: np.ndarray, inc_lut: np.ndarray) -> list[int]:
    """First image pixel of every sub-swath after the first present (incidence rises with
    pixel), from the incidence at the LUT pixels."""
    out = []
    for seam in SEAM_INCIDENCE_DEG:
        if inc_lut[0] < seam <= inc_lut[-1]:
            out.append(int(np.ceil(np.interp(seam, inc_lut, lut_pixels))))
    return out


def azimuth_profile(name: str, n_lines: int, step: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(lines, factors) of a sub-swath's azimuth noise vector: a parabola per burst, 1 at the
    centre and ``BURST_EDGE_FACTOR`` at the edges, with a node on each side of each burst
    boundary (as the real product has)."""
    phase = _BURST_PHASE[name] * BURST_LINES
    bounds = np.arange(phase - BURST_LINES, n_lines + BURST_LINES, BURST_LINES)
    lines = set(range(0, n_lines - 1, step)) | {n_lines - 1}
    for b in bounds:
        b = int(np.floor(b))
        lines |= {v for v in (b, b + 1) if 0 <= v <= n_lines - 1}
    lines = np.array(sorted(lines), dtype=np.int64)
    frac = ((lines - phase - 1) % BURST_LINES) / (BURST_LINES - 1)  # 0 just after a boundary
    factors = 1.0 + (BURST_EDGE_FACTOR - 1.0) * (2.0 * frac - 1.0) ** 2
    return lines, np.array([float(f"{v:.6e}") for v in factors])


def blocks(n_lines: int, n_samples: int, lut_pixels: np.ndarray, inc_lut: np.ndarray
           ) -> list[SwathBlock]:
    """The sub-swath blocks that the image (a crop of a full IW GRD) contains."""
    seams = seam_pixels(lut_pixels, inc_lut)
    first = int(swath_of_incidence(np.array([inc_lut[0]]))[0])
    edges = [0] + seams + [n_samples]
    out = []
    for k in range(len(edges) - 1):
        name = SWATHS[min(first + k, 2)]
        lines, factors = azimuth_profile(name, n_lines)
        out.append(SwathBlock(name=name, first_sample=edges[k], last_sample=edges[k + 1] - 1,
                              lines=lines, factors=factors))
    return out
