"""The HTML report: a synthetic event mapped end to end (predict, evaluate, report), then
the page is parsed and every embedded image must decode as a PNG that shows something."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sarflow.grid import Grid, write_raster

CHANNELS = ["VV_change_fused", "VH_change_fused"]
BBOX = [141.900, 42.700, 141.920, 42.712]


def build_event(root: Path, *, with_dem: bool = True, predict: bool = True):
    """A small synthetic event: DEM, G1 raster, inventory, a model, predictions, evaluation.

    Also used by bench/check_report.py to make a page to screenshot."""
    import keras

    from sarflow.config import parse_config
    from sarflow.evaluate import evaluate_event
    from sarflow.modelio import save_model
    from sarflow.predict import predict_event
    from sarflow.workdir import WorkDir

    root.mkdir(parents=True, exist_ok=True)
    mid = (BBOX[0] + BBOX[2]) / 2
    data = {"name": "synthetic", "event": {"time": "2018-09-05T18:00:00Z",
                                           "description": "synthetic test event"},
            "area": {"bbox": BBOX},
            "windows": {"pre": ["2018-08-01", "2018-09-05"], "post": ["2018-09-06", "2018-09-30"]},
            "scenes": [], "output": str(root / "work"), "inventory": str(root / "inv.geojson"),
            "training_area": {"bbox": [BBOX[0], BBOX[1], mid, BBOX[3]]},
            "validation_area": {"bbox": [mid, BBOX[1], BBOX[2], BBOX[3]]}}
    if with_dem:
        data["dem"] = str(root / "dem.tif")
    cfg = parse_config(data, base=root)
    grid = cfg.grid()
    rng = np.random.default_rng(5)
    lon, lat = grid.coordinates()
    # landslides: ellipses; their polygons form the inventory
    centres = [(141.903, 42.709, 8e-4), (141.906, 42.703, 1.2e-3), (141.9125, 42.707, 1.5e-3),
               (141.916, 42.7025, 9e-4), (141.9185, 42.7105, 5e-4)]
    truth = np.zeros(grid.shape, bool)
    feats = []
    for cx, cy, r in centres:
        truth |= ((lon - cx) / r) ** 2 + ((lat - cy) / (0.7 * r)) ** 2 <= 1
        t = np.linspace(0, 2 * np.pi, 40)
        ring = [[cx + r * np.cos(a), cy + 0.7 * r * np.sin(a)] for a in t]
        ring[-1] = ring[0]
        feats.append({"type": "Feature", "properties": {},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    (root / "inv.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    vv = 3.0 * truth + rng.normal(0, 0.8, grid.shape)
    vh = 2.0 * truth + rng.normal(0, 0.8, grid.shape)
    g1 = np.stack([vv, vh]).astype(np.float32)
    g1[:, 5:12, 60:75] = np.nan  # a hole in the data
    write_raster(WorkDir(cfg.output).group("G1"), g1, grid, descriptions=CHANNELS)
    if with_dem:
        dg = Grid.from_bounds(BBOX[0] - 0.01, BBOX[1] - 0.01, BBOX[2] + 0.01, BBOX[3] + 0.01,
                              spacing=2.7e-4)
        dlon, dlat = dg.coordinates()
        hills = (300 + 120 * np.sin((dlon - 141.9) * 400) * np.cos((dlat - 42.7) * 500)
                 + 2000 * (dlat - 42.7))
        write_raster(root / "dem.tif", hills.astype(np.float32), dg)
    if predict:
        keras.utils.set_random_seed(0)
        inp = keras.Input((None, None, 2))
        conv = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")
        model = keras.Model(inp, conv(inp))
        k = np.zeros((3, 3, 2, 1), np.float32)
        k[:, :, 0, 0] = 0.5
        k[1, 1, 1, 0] = 1.0
        conv.set_weights([k, np.array([-6.0], np.float32)])
        meta = {"group": "G1", "channels": CHANNELS, "patch_size": 32, "architecture": "test",
                "normalisation": {"mean": [0.0, 0.0], "std": [1.0, 1.0]}, "threshold": 0.5}
        save_model(model, root / "model.keras", meta)
        predict_event(cfg, root / "model.keras", areas=("training", "validation"),
                      progress=False)
        evaluate_event(cfg, areas=("training", "validation"))
    return cfg


EXPERIMENTS = [{"group": g, "model": "dppa_unet", "f1": f} for g, f in
               [("G1", 0.81), ("G2", 0.74), ("G3", 0.72), ("G4", 0.6), ("G5", 0.4), ("G6", 0.35)]]
EXPERIMENTS += [{"group": "G1", "model": "unet", "f1": 0.77},
                {"group": "G1", "model": "segnet", "f1": None}]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def parse_page(path: Path) -> _Page:
    """Parse the report and decode every embedded image (PNG signature and pixels)."""
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def decode_png(src: str):
    from PIL import Image

    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    raw = base64.b64decode(src[len(prefix):], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(raw))
    img.load()
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    return build_event(tmp_path_factory.mktemp("event"))


def test_report_embeds_all_maps_and_metrics(event):
    from sarflow.report import write_report
    from sarflow.workdir import WorkDir

    path = write_report(event, experiment_table=EXPERIMENTS, max_px=200)
    assert path == WorkDir(event.output).report
    html = path.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    page = parse_page(path)
    assert len(page.images) == 2 * 5 + 1
    alts = [i["alt"] for i in page.images]
    assert alts.count("Errors (TP / FP / FN)") == 2 and alts[-1] == "F1 per group and model"
    for img in page.images:
        rgb = decode_png(img["src"])
        assert rgb.shape[0] > 150 and rgb.shape[1] > 150
        assert rgb.std() > 10  # not a blank image
    text = " ".join(page.text)
    for area in ("training", "validation"):
        ev = json.loads(WorkDir(event.output).evaluation(area).read_text())
        assert f"{ev['pixel']['f1']:.3f}" in text
        assert ev["pixel"]["f1"] > 0.5  # the synthetic landslides are found
    assert "could not be drawn" not in text and "no DEM" not in text
    # the paper's orderings with both F1 known (SegNet's is missing): 6, all reproduced
    assert "6 of 6 orderings" in text and "NOT reproduced" not in text


def test_error_map_classes_are_exact_at_full_resolution(event):
    from sarflow.figures import Preview, error_preview
    from sarflow.grid import read_raster
    from sarflow.workdir import WorkDir

    wd = WorkDir(event.output)
    grid = event.area_grid("training")
    mask = wd.prediction("training") / "mask.tif"
    from sarflow.evaluate import inventory_labels

    truth = inventory_labels(event.inventory, grid) > 0.5
    labels = wd.root / "labels_test.tif"
    write_raster(labels, truth.astype(np.float32), grid)
    classes = error_preview(mask, labels, Preview.of(grid, max_px=10_000))
    m = read_raster(mask)[0]
    assert classes.shape == grid.shape
    np.testing.assert_array_equal(classes == 1, (m == 1) & truth)
    np.testing.assert_array_equal(classes == 2, (m == 1) & ~truth)
    np.testing.assert_array_equal(classes == 3, (m == 0) & truth)
    np.testing.assert_array_equal(classes == 4, m == 255)
    ev = json.loads(wd.evaluation("training").read_text())["pixel"]
    assert (int((classes == 1).sum()), int((classes == 2).sum()), int((classes == 3).sum())) == (
        ev["tp"], ev["fp"], ev["fn"])


def test_report_copes_with_missing_pieces(tmp_path):
    from sarflow.report import write_report

    cfg = build_event(tmp_path, with_dem=False, predict=False)
    path = write_report(cfg)
    page = parse_page(path)
    text = " ".join(page.text)
    assert "no DEM available" in text
    assert "no prediction: run `sarflow predict` first" in text
    assert "no evaluation yet" in text and "No experiment results" in text
    # what exists is still drawn: fused VV change and inventory, for both areas
    assert [i["alt"] for i in page.images] == ["Fused VV change (G1)"] * 2 + ["Inventory"] * 2
    for img in page.images:
        decode_png(img["src"])


def test_cli_report(event, tmp_path):
    from sarflow.cli import cli

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(EXPERIMENTS))
    cfg_file = tmp_path / "event.yaml"
    import yaml

    from sarflow.config import dump_config

    cfg_file.write_text(yaml.safe_dump(dump_config(event)))
    out = tmp_path / "r.html"
    res = CliRunner().invoke(cli, ["report", str(cfg_file), "-o", str(out), "--experiments",
                                   str(rows), "--max-px", "120"])
    assert res.exit_code == 0, res.output
    assert len(parse_page(out).images) == 11
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    res = CliRunner().invoke(cli, ["report", str(cfg_file), "--experiments", str(bad)])
    assert res.exit_code == 2 and res.output.strip().count("\n") == 0
