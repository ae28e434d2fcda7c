"""The rapid-response report of ``sarflow map``: one self-contained HTML page that needs no
inventory - the model's probability beside the no-model heatmap, the landslide mask, the
fused change, which passes saw each pixel, what data were missing and why, and landslide
counts and areas by size class."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__
from .errors import SarflowError
from .figures import MAX_PX, Preview, hillshade, map_png, read_preview, warp_preview
from .grid import atomic_path
from .report import REPORT_CSS, Panel, html_table, panel_cell
from .workdir import WorkDir

log = logging.getLogger("sarflow.map_report")

_PANEL_ERRORS = (SarflowError, OSError, RuntimeError, ValueError, KeyError)
LARGEST = 10
"""How many of the largest landslides the report lists."""


def _hillshade(cfg: Any, preview: Preview) -> np.ndarray | None:
    """Hillshade of the event's DEM on the preview, or None without one."""
    dem = getattr(cfg, "dem", "auto")
    path = None
    if str(dem) != "auto":
        path = Path(dem) if Path(dem).is_file() else None
    else:
        with contextlib.suppress(SarflowError):
            from .dem import dem_for_config

            path = dem_for_config(cfg)
    return hillshade(warp_preview(path, preview), preview) if path is not None else None


def _panel(title: str, draw) -> Panel:
    try:
        return Panel(title, draw())
    except _PANEL_ERRORS as exc:
        log.warning("map report: %s not drawn: %s", title, exc)
        return Panel(title, note=f"could not be drawn: {' '.join(str(exc).split())}")


def map_panels(cfg: Any, paths: dict[str, Path], coverage: np.ndarray,
               passes: Sequence[str], max_px: int = MAX_PX) -> list[Panel]:
    """Model probability, heatmap (fused VV), mask over the hillshade, fused change (G1),
    data coverage by pass - in that order."""
    grid = cfg.grid()
    preview = Preview.of(grid, max_px)
    shade = _hillshade(cfg, preview)
    g1 = WorkDir(cfg.output).group("G1")
    one = f" ({passes[0]} only)" if len(passes) == 1 else ""
    small = coverage[::max(1, grid.height // preview.shape[0]), ::max(1, grid.width // preview.shape[1])]
    return [
        _panel("Model: landslide probability", lambda: map_png(
            read_preview(paths["probability"], preview), preview, "Model probability", "probability")),
        _panel("Heatmap (no model): fused VV z-score" + one, lambda: map_png(
            read_preview(paths["heatmap"], preview, band=_band(paths["heatmap"], "z_fused_VV")),
            preview, "Heatmap z (fused VV)", "zscore")),
        _panel("Mapped landslides", lambda: map_png(
            read_preview(paths["mask"], preview, resample="nearest"), preview, "Landslides",
            "binary", background=shade)),
        _panel("Fused VV change (G1)" + one, lambda: map_png(
            read_preview(g1, preview, band=1), preview, "Fused VV change (G1)", "change")),
        _panel("Data coverage by pass", lambda: map_png(
            small, Preview(grid, small.shape), "Valid change by pass", "coverage")),
    ]


def _band(path: Path, name: str) -> int:
    from .grid import raster_info

    return list(raster_info(path).descriptions).index(name) + 1


def _header(cfg: Any, summary: dict[str, Any]) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    w, s, e, n = cfg.grid().bounds
    inv = ("no inventory: the map is the model's and the heatmap's alone" if not summary["inventory"]
           else f"inventory {summary['inventory']} (not used by this map; see sarflow evaluate)")
    return (f"<h1>Rapid-response landslide map: {html.escape(cfg.name)}</h1>"
            f"<p class='meta'>event {html.escape(summary['event_time'])} &middot; area "
            f"{w:.4f}, {s:.4f} to {e:.4f}, {n:.4f} &middot; model {html.escape(str(summary['model']))} "
            f"({html.escape(str(summary['architecture']))} on {html.escape(summary['group'])}, "
            f"threshold {summary['threshold']:.2f}) &middot; sarflow {__version__}, {now}</p>"
            f"<p>{html.escape(inv)}.</p>")


def _data_section(summary: dict[str, Any]) -> str:
    passes = ", ".join(summary["passes"]) or "none"
    rows = [[k.replace("_", " "), ", ".join(v) if v else "none"] for k, v in summary["dates"].items()]
    missing = summary["missing"]
    items = "".join(f"<li>{html.escape(m)}</li>" for m in missing) or "<li>nothing: both passes, every pixel</li>"
    return (f"<h2>Data</h2><p>Passes with pre- and post-event scenes: {html.escape(passes)}; "
            f"radiometry {html.escape(summary['radiometry'])}; {summary['mapped_pixels']} of "
            f"{summary['pixels']} pixels mapped.</p>"
            + html_table(["stack", "dates"], rows, left=2)
            + f"<h3>Where data were missing and why</h3><ul>{items}</ul>")


def _landslides_section(summary: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    rows = [[r["size_class"], r["count"], r["area_m2"]] for r in summary["size_classes"]]
    rows.append(["all", summary["landslides"], summary["landslide_area_m2"]])
    largest = sorted(records, key=lambda r: -r["area_m2"])[:LARGEST]
    big = [[r["id"], r["area_m2"], r["size_class"], r["mean_probability"], r["max_probability"],
            r["passes"] or "none"] for r in largest]
    return ("<h2>Landslides</h2>" + html_table(["size class", "count", "area (m2)"], rows)
            + (f"<h3>The {len(big)} largest</h3>"
               + html_table(["id", "area (m2)", "size class", "mean p", "max p", "seen by"], big)
               if big else "<p>No landslide mapped.</p>"))


def write_map_report(cfg: Any, folder: Path, paths: dict[str, Path], summary: dict[str, Any],
                     records: Sequence[dict[str, Any]], coverage: np.ndarray) -> Path:
    """Write ``folder/report.html`` and return its path."""
    panels = map_panels(cfg, paths, coverage, summary["passes"])
    cells = "".join(f"<td>{panel_cell(p)}</td>" + ("</tr><tr>" if i % 2 else "")
                    for i, p in enumerate(panels))
    maps = f"<h2>Maps</h2><table class='maps'><tr>{cells}</tr></table>"
    files = html_table(["output", "file"], [[k, Path(v).name] for k, v in paths.items()], left=2)
    body = (_header(cfg, summary) + maps + _data_section(summary)
            + _landslides_section(summary, records) + "<h2>Files</h2>" + files)
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>sarflow map: {html.escape(cfg.name)}</title><style>{REPORT_CSS}</style>"
            f"</head><body>{body}</body></html>\n")
    target = folder / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
