"""Edge erosion of a terrain-corrected scene's footprint, the same for both engines.

The border of a terrain-corrected GRD scene carries artefacts (resampling against the
no-data edge, residual border noise); pyroSAR and s1ard trim about 4 pixels.  Here every
output pixel closer than ``pixels`` (8-connected steps) to a pixel outside the scene (all
sigma0 bands NaN) becomes NaN in every band: on a written output, rewritten block by block
with a halo, atomically, keeping its tags and band names (:func:`erode_output`, the SNAP
engine), or on blocks as they are computed, before they are written once
(:func:`eroded_blocks`, the native engine); both give the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

if TYPE_CHECKING:
    from ..grid import Grid, Window


def erode_mask(inside: np.ndarray, pixels: int) -> np.ndarray:
    """``inside`` eroded by ``pixels`` steps of a 3 x 3 square (outside the array counts
    as inside, so only the scene's own border erodes, not the grid's edge)."""
    from scipy.ndimage import minimum_filter

    if pixels <= 0 or inside.all():
        return inside.copy()
    # ``pixels`` steps of a 3 x 3 square = one (2 pixels + 1) square: a separable minimum
    return minimum_filter(inside.view(np.uint8), size=2 * pixels + 1, mode="constant",
                          cval=1).view(bool)


def staging_path(output: Path) -> Path:
    """Where an engine writes before erosion (a temporary name the preprocess stage cleans)."""
    output = Path(output)
    return output.with_name(f".{output.stem}.tmp-uneroded{output.suffix}")


def erode_output(src: Path, dest: Path, pixels: int, block: int = 1024) -> int:
    """Write ``dest`` (atomically) from the output GeoTIFF ``src`` (sigma0 bands first, the
    layover/shadow band last) with ``pixels`` trimmed off the scene border, then delete
    ``src``; the number of pixels removed."""
    from ..grid import RasterWriter, Window, raster_info, read_raster

    info = raster_info(src)
    grid, n = info.grid, len(info.descriptions)
    removed = 0
    with RasterWriter(Path(dest), grid, count=n, descriptions=list(info.descriptions),
                      tags=dict(info.tags)) as writer:
        for win in grid.blocks(block):
            r0, c0 = max(0, win.row - pixels), max(0, win.col - pixels)
            r1 = min(grid.height, win.row + win.height + pixels)
            c1 = min(grid.width, win.col + win.width + pixels)
            data = read_raster(src, window=Window(r0, c0, r1 - r0, c1 - c0))
            inside = np.any(np.isfinite(data[:-1]), axis=0)
            cut = inside & ~erode_mask(inside, pixels)
            data[:, cut] = np.nan
            rows = slice(win.row - r0, win.row - r0 + win.height)
            cols = slice(win.col - c0, win.col - c0 + win.width)
            removed += int(cut[rows, cols].sum())
            writer.write(data[:, rows, cols], win)
    Path(src).unlink(missing_ok=True)
    return removed


def eroded_blocks(blocks: Iterable[tuple["Window", np.ndarray]], grid: "Grid", pixels: int
                  ) -> Iterator[tuple["Window", np.ndarray]]:
    """(window, bands) blocks of an output (sigma0 bands first, layover/shadow last) with
    ``pixels`` trimmed off the scene border, as :func:`erode_output` trims a written file.

    A block comes out once every pixel within ``pixels`` of it has been computed (blocks
    tiling the grid row-major keep about one row of blocks waiting: memory for that row).
    """
    inside = np.zeros(grid.shape, dtype=bool)
    done = np.zeros(grid.shape, dtype=bool)
    waiting: list[tuple["Window", np.ndarray, tuple[slice, slice]]] = []
    for win, data in blocks:
        rows, cols = slice(win.row, win.row + win.height), slice(win.col, win.col + win.width)
        inside[rows, cols] = np.any(np.isfinite(data[:-1]), axis=0)
        done[rows, cols] = True
        waiting.append((win, data, _halo_slices(win, grid, pixels)))
        complete = [bool(done[item[2]].all()) for item in waiting]
        ready = [item for item, ok in zip(waiting, complete) if ok]
        waiting = [item for item, ok in zip(waiting, complete) if not ok]
        for w, d, halo in ready:
            _trim(d, inside[halo], (w.row - halo[0].start, w.col - halo[1].start), pixels)
            yield w, d
    for w, d, halo in waiting:  # blocks that do not tile the grid: what is known decides
        _trim(d, inside[halo], (w.row - halo[0].start, w.col - halo[1].start), pixels)
        yield w, d


def _halo_slices(win: "Window", grid: "Grid", pixels: int) -> tuple[slice, slice]:
    """Grid rows and columns of ``win`` grown by ``pixels`` (clipped to the grid)."""
    r0, c0 = max(0, win.row - pixels), max(0, win.col - pixels)
    r1 = min(grid.height, win.row + win.height + pixels)
    c1 = min(grid.width, win.col + win.width + pixels)
    return slice(r0, r1), slice(c0, c1)


def _trim(data: np.ndarray, inside: np.ndarray, offset: tuple[int, int], pixels: int) -> int:
    """NaN (in place) in every band of ``data`` where its pixels lie within ``pixels`` of
    the scene border; ``inside`` covers ``data`` plus its halo, ``offset`` is where
    ``data`` starts in it; the number of pixels trimmed."""
    r, c = offset
    h, w = data.shape[1:]
    cut = inside & ~erode_mask(inside, pixels)
    cut = cut[r:r + h, c:c + w]
    data[:, cut] = np.nan
    return int(cut.sum())
