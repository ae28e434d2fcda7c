"""The package as users install it: a built wheel (not an editable checkout) carries the
SNAP graphs and the model specs, and the commands that need them work from elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENE = "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sarflow's wheel built from this checkout and installed (no -e) into a folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("sarflow", "graphs", "models"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(source)], check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("sarflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"sarflow/graphs/s1_grd_sigma0.xml", "sarflow/graphs/README.md",
            "sarflow/models/dppa_unet.yaml", "sarflow/models/unet.yaml",
            "sarflow/models/segnet.yaml"} <= set(names)
    assert sum(n.startswith("sarflow/graphs/s1_grd_sigma0") for n in names) == 4
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)],
                   check=True, capture_output=True)
    return tmp / "site"


def _sarflow(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the installed sarflow (its folder first on the path) from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sarflow", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_the_wheel_finds_its_graphs_and_models(installed: Path, tmp_path: Path) -> None:
    code = ("import sarflow, sarflow.resources as r, sarflow.config as c; "
            "print(sarflow.__file__); print(r.graphs_dir()); "
            "print(c.ModelSettings().resolved().filters)")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0].startswith(str(installed)) and out[1] == str(installed / "sarflow" / "graphs")
    assert int(out[2]) > 0  # the default filters come from the installed models/dppa_unet.yaml

    listed = _sarflow(installed, tmp_path, "graphs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = [g["name"] for g in json.loads(listed.stdout)]
    assert names == ["s1_grd_sigma0.xml", "s1_grd_sigma0_1_noise.xml",
                     "s1_grd_sigma0_2_calibrate.xml", "s1_grd_sigma0_3_terrain.xml"]


def test_the_wheel_renders_a_graph(installed: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    event = tmp_path / "event.yaml"
    event.write_text(
        "name: wheel_check\nevent: {time: '2021-01-10T00:00:00Z'}\n"
        "area: {bbox: [33.0, -18.0, 33.01, -17.99]}\n"
        "windows: {pre: ['2021-01-01', '2021-01-09'], post: ['2021-01-10', '2021-01-30']}\n"
        f"scenes: [{fixtures_dir / 's1'}]\n")
    out = tmp_path / "graph.xml"
    done = _sarflow(installed, tmp_path, "graphs", "render", str(event),
                    str(fixtures_dir / "s1" / SCENE), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)["values"]
    assert values["Terrain-Correction"]["pixelSpacingInDegree"] == repr(8.983152841195215e-05)
    text = out.read_text()
    assert "<operator>Terrain-Correction</operator>" in text and "${input}" in text
