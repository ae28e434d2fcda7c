"""Per-pixel temporal statistics of a (time, rows, cols) stack: the NaN-aware median kernel
and the linear-to-dB conversion the stacker applies before it.

``numpy.nanmedian`` is slow on stacks because it handles NaN lane by lane; here the whole
stack is sorted once along time (NaN sorts last), the valid count per pixel is known, and
the median is picked with two gathers.  np.sort releases the GIL, so blocks run in threads.
"""

from __future__ import annotations

import numpy as np

DB_NOTE = "sigma0 converted to dB (10*log10 of linear sigma0; values <= 0 treated as no data) before the median"


def to_db(linear: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """10*log10 of linear power as float32; NaN where the input is NaN or not positive."""
    x = np.asarray(linear, dtype=np.float32)
    if out is None:
        out = np.empty_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log10(x, out=out)
    out *= np.float32(10.0)
    out[~(x > 0)] = np.nan
    return out


def nanmedian_stack(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 0 ignoring NaN, and the number of valid values per pixel.

    Even counts average the two middle values; a pixel with no valid value gets NaN and
    count 0.  Returns (median float32 (H, W), count int32 (H, W)) for a (T, H, W) input.
    """
    a = np.asarray(arr)
    if a.ndim < 1:
        raise ValueError("nanmedian_stack needs an array with a time axis first")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    t, shape = a.shape[0], a.shape[1:]
    if t == 0:
        return np.full(shape, np.nan, np.float32), np.zeros(shape, np.int32)
    flat = a.reshape(t, -1)
    count = t - np.count_nonzero(np.isnan(flat), axis=0).astype(np.int32)
    ordered = np.sort(flat, axis=0)  # NaN last, so the valid values lead each column
    lo = np.maximum((count - 1) // 2, 0)[None]
    hi = (count // 2).clip(max=t - 1)[None]
    low = np.take_along_axis(ordered, lo, axis=0)[0]
    high = np.take_along_axis(ordered, hi, axis=0)[0]
    median = ((low + high) * low.dtype.type(0.5)).astype(np.float32, copy=False)
    median[count == 0] = np.nan
    return median.reshape(shape), count.reshape(shape)


MAD_TO_SIGMA = 1.4826
"""1.4826 x MAD estimates the standard deviation of normal data robustly."""


def pre_spread(stack: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Robust spread of a (time, h, w) dB stack about its per-pixel ``median``:
    1.4826 x the median absolute deviation (NaN where no date is valid)."""
    with np.errstate(invalid="ignore"):
        mad, _ = nanmedian_stack(np.abs(stack - median[None]))
    return (np.float32(MAD_TO_SIGMA) * mad).astype(np.float32)
