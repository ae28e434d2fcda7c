"""The layout of an event's work folder: one place that names every stage's outputs.

Stages and the pipeline ask this module where things go instead of building paths
themselves, so the layout documented in the README stays true.

    <output>/
      preprocessed/<product_id>.tif      sigma0 per scene on the event grid (+ .log, .xml)
      preprocessed/summary.json          per-scene engine, orbit source, time, outcome
      dem/dem_<bounds>.vrt               DEM tile mosaic when the config says dem: auto
      stack/medians/<pass>_<pol>_<window>.tif   median (dB) + count of valid dates
      stack/changes/<pass>_<pol>.tif     median_pre - median_post (dB)
      stack/groups/G1.tif .. G6.tif      the six 2-band input groups
      labels/labels.tif                  inventory rasterised on the event grid
      dataset/<group>/                   patches, split and normalisation (see dataset)
      models/<run>/                      model.keras, history.csv, result.json
      predictions/<area>/                probability.tif, mask.tif, landslides.gpkg
      evaluation/<area>.json             metrics per area
      evaluation/heatmap_<area>.json     the no-model heatmap's metrics per area
      evaluation/heatmap_mask.tif        the heatmap thresholded by its training-area rule
      report/index.html                  the self-contained report
      state/<stage>.json                 digest of the inputs and settings of each stage
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkDir:
    """Paths inside one event's work folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed"

    def scene_output(self, product_id: str) -> Path:
        return self.preprocessed / f"{product_id}.tif"

    @property
    def preprocess_summary(self) -> Path:
        return self.preprocessed / "summary.json"

    @property
    def dem(self) -> Path:
        return self.root / "dem"

    @property
    def stack(self) -> Path:
        return self.root / "stack"

    def median(self, pass_: str, pol: str, window: str) -> Path:
        return self.stack / "medians" / f"{pass_}_{pol}_{window}.tif"

    def change(self, pass_: str, pol: str) -> Path:
        return self.stack / "changes" / f"{pass_}_{pol}.tif"

    def group(self, name: str) -> Path:
        return self.stack / "groups" / f"{name}.tif"

    @property
    def labels(self) -> Path:
        return self.root / "labels" / "labels.tif"

    def dataset(self, group: str) -> Path:
        return self.root / "dataset" / group

    def model_run(self, run: str) -> Path:
        return self.root / "models" / run

    def prediction(self, area: str) -> Path:
        return self.root / "predictions" / area

    def evaluation(self, area: str) -> Path:
        return self.root / "evaluation" / f"{area}.json"

    def heatmap_evaluation(self, area: str) -> Path:
        return self.root / "evaluation" / f"heatmap_{area}.json"

    @property
    def heatmap_mask(self) -> Path:
        return self.root / "evaluation" / "heatmap_mask.tif"

    @property
    def report(self) -> Path:
        return self.root / "report" / "index.html"

    def state(self, stage: str) -> Path:
        return self.root / "state" / f"{stage}.json"
