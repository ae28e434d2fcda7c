"""Event configuration: valid examples load; every invalid value gets a one-line message
naming the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sarflow.cli import cli
from sarflow.config import load_config, missing_paths, parse_config
from sarflow.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parent.parent


def _base() -> dict:
    return yaml.safe_load((ROOT / "examples" / "hokkaido_2018.yaml").read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "event.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.mark.parametrize("name", ["hokkaido_2018", "papua_new_guinea_2018"])
def test_examples_load(name: str) -> None:
    cfg = load_config(ROOT / "examples" / f"{name}.yaml")
    assert cfg.name == name
    assert cfg.event.time.tzinfo is not None
    assert cfg.polarisations == ["VV", "VH"]
    # relative paths resolve against the config's folder
    assert cfg.output.is_absolute() and cfg.output.parent.parent == ROOT


def test_hokkaido_values() -> None:
    cfg = load_config(ROOT / "examples" / "hokkaido_2018.yaml")
    assert cfg.event.time == dt.datetime(2018, 9, 5, 18, 7, 59, tzinfo=dt.timezone.utc)
    assert cfg.area.bounds() == (141.84, 42.64, 142.13, 42.89)
    assert cfg.windows.pre == (dt.date(2018, 1, 1), dt.date(2018, 9, 5))
    grid = cfg.grid()
    # the grid covers the bbox and is at most one pixel larger on each side
    w, s, e, n = grid.bounds
    assert w <= 141.84 < w + grid.spacing and e - grid.spacing < 142.13 <= e
    assert s <= 42.64 < s + grid.spacing and n - grid.spacing < 42.89 <= n
    assert grid.width == round((e - w) / grid.spacing)


def test_model_defaults_come_from_spec() -> None:
    cfg = load_config(ROOT / "examples" / "hokkaido_2018.yaml")
    m = cfg.model.resolved()
    spec = yaml.safe_load((ROOT / "models" / "dppa_unet.yaml").read_text())
    assert m.filters == spec["defaults"]["filters"]
    assert m.grid["filters"] == [16, 32, 64, 128]


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d["windows"].__setitem__("post", ["2018-09-01", "2018-11-30"]), "windows.post"),
    (lambda d: d["windows"].__setitem__("pre", ["2018-01-01", "2018-09-20"]), "windows.pre"),
    (lambda d: d["area"].__setitem__("bbox", [142.13, 42.64, 141.84, 42.89]), "area"),
    (lambda d: d["area"].__setitem__("bbox", [141.84, 42.64, 142.13, 95.0]), "area"),
    (lambda d: d["processing"].__setitem__("engine", "gamma"), "processing.engine"),
    (lambda d: d.__setitem__("polarisations", ["VV", "HH"]), "polarisations"),
    (lambda d: d.__setitem__("colour", "red"), "colour"),
    (lambda d: d["model"].__setitem__("group", "G7"), "model.group"),
    (lambda d: d["model"].__setitem__("patch_size", 100), "model.patch_size"),
    (lambda d: d.pop("event"), "event"),
])
def test_invalid_values_name_the_key(tmp_path: Path, mutate, key: str) -> None:
    data = _base()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    msg = str(err.value)
    assert "\n" not in msg
    assert key in msg, msg


def test_missing_data_paths_are_warnings(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, _base()))
    warnings = missing_paths(cfg)
    assert any(w.startswith("scenes[0]") for w in warnings)
    assert any(w.startswith("inventory") for w in warnings)


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config(["a"])  # type: ignore[arg-type]


def test_cli_check_ok_and_bad(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["config", "check", str(ROOT / "examples" / "hokkaido_2018.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "config OK" in ok.output

    data = _base()
    data["windows"]["post"] = ["2018-09-01", "2018-11-30"]
    bad = runner.invoke(cli, ["config", "check", str(_write(tmp_path, data))])
    assert bad.exit_code == 2
    lines = [ln for ln in bad.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "windows.post" in lines[0] and lines[0].startswith("Error:")


def test_cli_debug_shows_traceback(tmp_path: Path) -> None:
    data = _base()
    data["processing"]["engine"] = "gamma"
    res = CliRunner().invoke(cli, ["--debug", "config", "check", str(_write(tmp_path, data))])
    assert res.exit_code == 2
    assert "Traceback" in res.output


def test_area_from_polygon_file(tmp_path: Path) -> None:
    poly = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[141.90, 42.70], [142.00, 42.70], [141.95, 42.80], [141.90, 42.70]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[142.05, 42.65], [142.10, 42.65], [142.10, 42.68], [142.05, 42.65]]]}}]}
    import json

    (tmp_path / "aoi.geojson").write_text(json.dumps(poly))
    data = _base()
    data["area"] = {"file": "aoi.geojson"}
    cfg = load_config(_write(tmp_path, data))
    assert cfg.area.bounds() == pytest.approx((141.90, 42.65, 142.10, 42.80))
    data["area"] = {"file": "missing.geojson"}
    with pytest.raises(InputError, match="area file not found"):
        load_config(_write(tmp_path, data)).grid()


@pytest.mark.parametrize("given", [{"snap": {"geoid": False}}, {"native": {"geoid": False}},
                                   {"snap": {"geoid": False}, "native": {"geoid": False}}])
def test_dem_datum_said_once_holds_for_both_engines(given: dict) -> None:
    """An ellipsoidal DEM declared under either engine's settings is ellipsoidal for both
    (the datum is the file's, not the engine's)."""
    cfg = parse_config({**_base(), "processing": given})
    assert cfg.processing.snap.geoid is False and cfg.processing.native.geoid is False
    assert parse_config(_base()).processing.native.geoid is True  # default: EGM96 (SRTM)


def test_dem_datum_given_two_ways_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**_base(), "processing": {"snap": {"geoid": True}, "native": {"geoid": False}}})
    text = str(err.value)
    assert "\n" not in text and "processing.native.geoid" in text and "processing.snap.geoid" in text
