"""One sigma0 floor rule for both engines, so that their scenes mix in one stack.

Thermal noise removal makes weak pixels non-positive.  SNAP's
``Sentinel1RemoveThermalNoiseOp`` clamps them to 1e-5 in DN^2 before calibration (about
-100 dB sigma0 after dividing by the LUT squared); the native engine used to put 1e-5 in
sigma0 (-50 dB).  The rule now, applied by both engines to linear sigma0: every finite
value below ``floor`` (default 1e-5, -50 dB, below any real land or water return of
Sentinel-1 IW, whose noise equivalent sigma0 is about -22 dB) becomes ``floor``
(``clip="floor"``) or NaN (``clip="nan"``); NaN (no data) stays NaN.  SNAP's clamped
pixels and the native engine's non-positive ones thus get the same value.
"""

from __future__ import annotations

import numpy as np

SIGMA0_FLOOR = 1e-5


def apply_floor(sigma: np.ndarray, floor: float = SIGMA0_FLOOR, clip: str = "floor") -> np.ndarray:
    """``sigma`` (float, changed in place and returned) with the floor rule applied."""
    if clip not in ("floor", "nan"):
        raise ValueError(f"clip must be 'floor' or 'nan', not {clip!r}")
    with np.errstate(invalid="ignore"):
        low = sigma < floor  # NaN compares False and stays NaN
    sigma[low] = floor if clip == "floor" else np.nan
    return sigma
