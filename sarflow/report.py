"""The event report: one self-contained HTML page (figures embedded as base64 PNG).

For the training and validation areas side by side: DEM hillshade, fused VV change (G1
band 1), the inventory, the predicted probability and the no-model heatmap beside it, the
errors (TP / FP / FN) of both; then the metric tables (the model's and the heatmap's, whose
threshold was chosen on the training area) and, for experiments, the F1 of every input
group and model.  Whatever is
missing (no DEM, no inventory, a stage not run) is said in the page instead of failing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import __version__
from .errors import SarflowError
from .figures import MAX_PX, Preview, error_preview, f1_bar_png, hillshade, map_png, \
    read_preview, warp_preview
from .grid import Grid, atomic_path, raster_info
from .workdir import WorkDir

log = logging.getLogger("sarflow.report")

AREAS = ("training", "validation")
MAP_ROWS = ("DEM hillshade", "Fused VV change (G1)", "Inventory", "Prediction",
            "Heatmap z (no model)", "Errors (TP / FP / FN)", "Heatmap errors (TP / FP / FN)")
# what can go wrong while drawing a panel from files that may be absent or broken
_PANEL_ERRORS = (SarflowError, OSError, RuntimeError, ValueError, KeyError)


@dataclass
class Panel:
    """One map: a PNG, or the reason it could not be drawn."""

    title: str
    png: bytes | None = None
    note: str = ""


def report_areas(cfg: Any) -> list[str]:
    """The areas with a prediction to show: those the config defines, else training."""
    return [a for a in AREAS if getattr(cfg, f"{a}_area", None) is not None] or ["training"]


# ------------------------------------------------------------------------------------
# panels
# ------------------------------------------------------------------------------------

class _AreaMaps:
    """Draws the map panels of one area, sharing the hillshade and labels between them."""

    def __init__(self, cfg: Any, area: str, labels_dir: Path, max_px: int) -> None:
        self.cfg = cfg
        self.area = area
        self.wd = WorkDir(cfg.output)
        self.grid: Grid = cfg.area_grid(area)
        self.preview = Preview.of(self.grid, max_px)
        self.labels_dir = labels_dir
        self._shade: Any = None
        self._labels: Path | None = None

    def panels(self) -> list[Panel]:
        steps = (self.dem, self.change, self.inventory, self.prediction, self.heatmap,
                 self.errors, self.heatmap_errors)
        out = []
        for title, step in zip(MAP_ROWS, steps):
            try:
                out.append(step(title))
            except _PANEL_ERRORS as exc:
                log.warning("report: %s of the %s area not drawn: %s", title, self.area, exc)
                out.append(Panel(title, note=f"could not be drawn: {_one_line(exc)}"))
        return out

    def shade(self):
        """The hillshade array, or None without a DEM."""
        if self._shade is None:
            self._shade = False
            path = self._dem_path()
            if path is not None:
                self._shade = hillshade(warp_preview(path, self.preview), self.preview)
        return None if self._shade is False else self._shade

    def _dem_path(self) -> Path | None:
        dem = getattr(self.cfg, "dem", "auto")
        if str(dem) != "auto":
            return Path(dem) if Path(dem).is_file() else None
        with contextlib.suppress(SarflowError):
            from .dem import dem_for_config

            return dem_for_config(self.cfg)
        return None

    def labels(self) -> Path | None:
        """A 0/1 labels raster covering the area: the dataset stage's, else rasterised now."""
        if self._labels is None:
            if self.wd.labels.exists() and _covers(self.wd.labels, self.grid):
                self._labels = self.wd.labels
            elif self.cfg.inventory is not None and Path(self.cfg.inventory).exists():
                from .dataset import rasterize_labels

                self._labels = rasterize_labels(self.cfg.inventory, self.grid,
                                                self.labels_dir / f"{self.area}.tif")
        return self._labels

    def dem(self, title: str) -> Panel:
        shade = self.shade()
        if shade is None:
            dem = getattr(self.cfg, "dem", "auto")
            why = ("dem: auto found no DEM tiles in dem_dir" if str(dem) == "auto"
                   else f"DEM file {dem} not found")
            return Panel(title, note=f"no DEM available ({why})")
        return Panel(title, map_png(shade, self.preview, f"{title} - {self.area}", "hillshade"))

    def change(self, title: str) -> Panel:
        path = self.wd.group("G1")
        if not path.exists():
            return Panel(title, note=f"{path.name} not found: run `sarflow stack` first")
        data = read_preview(path, self.preview, band=1)
        return Panel(title, map_png(data, self.preview, f"{title} - {self.area}", "change"))

    def inventory(self, title: str) -> Panel:
        labels = self.labels()
        if labels is None:
            return Panel(title, note="no inventory: set 'inventory' in the event config")
        data = read_preview(labels, self.preview)
        return Panel(title, map_png(data, self.preview, f"{title} - {self.area}", "binary",
                                    background=self.shade()))

    def prediction(self, title: str) -> Panel:
        path = self.wd.prediction(self.area) / "probability.tif"
        if not path.exists():
            return Panel(title, note="no prediction: run `sarflow predict` first")
        data = read_preview(path, self.preview)
        return Panel(title, map_png(data, self.preview, f"{title} - {self.area}", "probability"))

    def errors(self, title: str) -> Panel:
        return self._errors(title, self.wd.prediction(self.area) / "mask.tif", "prediction")


    def heatmap(self, title: str) -> Panel:
        from .heatmap import heatmap_path

        path = heatmap_path(self.wd)
        if not path.exists():
            return Panel(title, note="no heatmap: run `sarflow heatmap` (the evaluate stage of "
                                     "`sarflow run` makes it)")
        band = _heatmap_band(self.wd)
        data = read_preview(path, self.preview, band=raster_info(path).descriptions.index(band) + 1)
        return Panel(title, map_png(data, self.preview, f"Heatmap {band} - {self.area}", "zscore"))

    def heatmap_errors(self, title: str) -> Panel:
        return self._errors(title, self.wd.heatmap_mask, "heatmap's evaluation")

    def _errors(self, title: str, mask: Path, source: str) -> Panel:
        """A mask's hits, misses and false alarms against the inventory; a note naming
        whichever of ``source`` (what makes the mask) or the inventory is missing."""
        labels = self.labels()
        if not mask.exists() or labels is None:
            what = source if not mask.exists() else "inventory"
            return Panel(title, note=f"needs the {what}, which is missing")
        data = error_preview(mask, labels, self.preview)
        return Panel(title, map_png(data, self.preview, f"{title} - {self.area}", "errors"))


def _heatmap_band(wd: WorkDir) -> str:
    """The heatmap band the evaluation thresholded (the default one before any)."""
    from .heatmap_scores import DEFAULT_BAND

    if wd.heatmap_mask.exists():
        return str(raster_info(wd.heatmap_mask).tags.get("band", DEFAULT_BAND))
    return DEFAULT_BAND


def _covers(path: Path, grid: Grid) -> bool:
    try:
        raster_info(path).grid.window_of(grid)
    except SarflowError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------

REPORT_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
table.maps td { text-align: center; vertical-align: top; border: none; }
table.maps th { background: none; border: none; font-size: 1.05em; }
img { max-width: 100%; } .note { color: #a15c00; font-style: italic; padding: 2em 1em; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def panel_cell(panel: Panel) -> str:
    if panel.png is not None:
        return _img(panel.png, panel.title)
    return f'<div class="note">{html.escape(panel.title)}: {html.escape(panel.note)}</div>'


def _maps_section(panels: dict[str, list[Panel]]) -> str:
    areas = list(panels)
    head = "".join(f"<th>{html.escape(a)} area</th>" for a in areas)
    rows = []
    for i, title in enumerate(MAP_ROWS):
        cells = "".join(f"<td>{panel_cell(panels[a][i])}</td>" for a in areas)
        rows.append(f"<tr><th class='l'>{html.escape(title)}</th>{cells}</tr>")
    return (f"<h2>Maps</h2><table class='maps'><tr><th></th>{head}</tr>{''.join(rows)}</table>")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    th = "".join(f"<th{' class=l' if i < left else ''}>{html.escape(h)}</th>"
                 for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{' class=l' if i < left else ''}>{_fmt(v)}</td>"
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _read_evaluations(paths: dict[str, Path], notes: list[str], missing: str | None
                      ) -> dict[str, dict]:
    """The evaluation records that exist (label -> JSON); a note for each missing or broken."""
    results = {}
    for label, path in paths.items():
        if path.exists():
            try:
                results[label] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                notes.append(f"{label}: {path} is not valid JSON ({exc})")
        elif missing:
            notes.append(f"{label}: {missing}")
    return results


def _heatmap_note(results: dict[str, dict]) -> str:
    rule = next((r.get("heatmap") for r in results.values() if r.get("heatmap")), None)
    if not rule:
        return ""
    return (f"<p>Heatmap (no model): landslide where {html.escape(str(rule.get('rule')))}, "
            f"the sign and threshold that maximise F1 on the training area's pixels "
            f"(training F1 {_fmt(rule.get('training_f1'))}).</p>")


def _metrics_section(wd: WorkDir, areas: Sequence[str]) -> str:
    notes: list[str] = []
    results = _read_evaluations({a: wd.evaluation(a) for a in areas}, notes,
                                "no evaluation yet (run `sarflow evaluate`)")
    heat = _read_evaluations({f"{a} (heatmap, no model)": wd.heatmap_evaluation(a)
                              for a in areas}, notes, None)
    if not heat:
        notes.append("heatmap: not scored yet (the evaluate stage of `sarflow run` scores it "
                     "when the stack exists)")
    parts = ["<h2>Metrics</h2>"]
    if results or heat:
        rows = []
        for area, r in {**results, **heat}.items():
            px, ob = r.get("pixel", {}), r.get("objects", {})
            rows.append([area, px.get("precision"), px.get("recall"), px.get("f1"),
                         px.get("iou"), px.get("tp"), px.get("fp"), px.get("fn"),
                         ob.get("hit_share"), ob.get("false_share")])
        parts.append(html_table(["area", "precision", "recall", "F1", "IoU", "TP px", "FP px",
                             "FN px", "landslides hit", "false polygons"], rows))
        parts.append(_heatmap_note(heat))
        for area, r in results.items():
            by_size = (r.get("objects") or {}).get("by_size") or []
            if by_size:
                parts.append(f"<h3>Landslides by size, {html.escape(area)} area</h3>")
                parts.append(html_table(
                    ["size", "inventory", "hit", "hit share", "predicted", "false", "false share"],
                    [[c["class"], c["inventory"], c["hit"], c["hit_share"], c["predicted"],
                      c["false"], c["false_share"]] for c in by_size]))
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    return "".join(parts)


def _experiment_section(rows: Sequence[dict] | None) -> str:
    if not rows:
        return ("<h2>Experiments</h2><p class='note'>No experiment results "
                "(run `sarflow experiment` for the groups x models ablation).</p>")
    cols = ["group", "model", "filters", "batch_size", "learning_rate", "precision", "recall",
            "f1", "iou"]
    table = html_table(cols, [[r.get(c) for c in cols] for r in rows], left=2)
    try:
        chart = _img(f1_bar_png(rows), "F1 per group and model")
    except (KeyError, TypeError, ValueError) as exc:
        chart = f"<p class='note'>chart not drawn: {html.escape(_one_line(exc))}</p>"
    return f"<h2>Experiments</h2>{chart}{table}{_ranking_section(rows)}"


def _ranking_section(rows: Sequence[dict]) -> str:
    """Says, with the numbers, which of the paper's F1 orderings this experiment reproduces."""
    from .ablation import ranking_checks

    checks = ranking_checks(rows)
    if not checks:
        return ""
    body = [[c["claim"], f"{c['f1_better']:.3f} vs {c['f1_worse']:.3f}",
             "reproduced" if c["holds"] else "NOT reproduced"] for c in checks]
    held = sum(c["holds"] for c in checks)
    return (f"<h3>Against the paper's ranking</h3><p>{held} of {len(checks)} orderings of "
            "Pan &amp; Shi (2023, Tables 3 and 4) hold in this run.</p>"
            + html_table(["paper's ordering (F1)", "this run", "verdict"], body, left=1))


def _header(cfg: Any) -> str:
    ev = getattr(cfg, "event", None)
    when = ev.time.strftime("%Y-%m-%d %H:%M UTC") if ev is not None else ""
    desc = getattr(ev, "description", "") if ev is not None else ""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    w, s, e, n = cfg.grid().bounds
    return (f"<h1>Landslides: {html.escape(cfg.name)}</h1>"
            f"<p class='meta'>{html.escape(desc)} {html.escape(when)} &middot; area "
            f"{w:.4f}, {s:.4f} to {e:.4f}, {n:.4f} &middot; model {html.escape(cfg.model.architecture)} "
            f"on {html.escape(cfg.model.group)} &middot; sarflow {__version__}, {now}</p>")


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sarflow-report-") as tmp:
        yield Path(tmp)


def write_report(cfg: Any, *, experiment_table: Sequence[dict] | None = None,
                 max_px: int = MAX_PX, out: str | os.PathLike | None = None) -> Path:
    """Write the event's HTML report to ``WorkDir(cfg.output).report`` (or ``out``)."""
    wd = WorkDir(cfg.output)
    areas = report_areas(cfg)
    with _scratch() as tmp:
        panels = {a: _AreaMaps(cfg, a, tmp, max_px).panels() for a in areas}
    body = (_header(cfg) + _maps_section(panels) + _metrics_section(wd, areas)
            + _experiment_section(experiment_table))
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>sarflow report: {html.escape(cfg.name)}</title><style>{REPORT_CSS}</style>"
            f"</head><body>{body}</body></html>\n")
    path = Path(out) if out is not None else wd.report
    with atomic_path(path) as tmp_path:
        tmp_path.write_text(page, encoding="utf-8")
    log.info("report written to %s", path)
    return path
