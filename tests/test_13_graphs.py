"""The SNAP GPT graphs in graphs/: structure, node order and parameter names.

Parameter names are checked against ../shared/fixtures/snap/snap_operator_parameters.md,
compiled from the operators' Java sources (SNAP 9 to 14); these tests read XML only and do
not run SNAP.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sarflow.pyrosar_compat import is_consistent, workflow

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = sorted((ROOT / "graphs").glob("*.xml"))
CHAIN = ["Read", "Apply-Orbit-File", "Remove-GRD-Border-Noise", "ThermalNoiseRemoval",
         "Calibration", "Subset", "Terrain-Correction", "Write"]
SPACING = 8.983152841195215e-05


def operator_parameters(md: Path) -> tuple[dict[str, set[str]], set[str]]:
    """(operator -> allowed element names, names that exist only in some SNAP versions)."""
    allowed: dict[str, set[str]] = {}
    newer: set[str] = set()
    for line in md.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        op = cells[0].strip("`")
        text = re.sub(r"\(`outputDNBand` is commented out[^)]*\)", "", cells[2])
        allowed[op] = set(re.findall(r"`([a-z][A-Za-z0-9]*)`", text))
        newer |= set(re.findall(r"`([a-z][A-Za-z0-9]*)`[^`|]*?\*\*new in", text))
    return allowed, newer


@pytest.fixture(scope="module")
def allowed(fixtures_dir: Path) -> tuple[dict[str, set[str]], set[str]]:
    return operator_parameters(fixtures_dir / "snap" / "snap_operator_parameters.md")


def test_md_parser_reads_the_table(allowed) -> None:
    """The parser finds all eight operators and known names (guards against a silent no-op)."""
    names, newer = allowed
    assert set(names) == set(CHAIN)
    assert {"orbitType", "polyDegree", "continueOnFail"} == names["Apply-Orbit-File"]
    assert {"geoRegion", "region", "copyMetadata", "sourceBands"} <= names["Subset"]
    assert "alignToStandardGrid" in names["Terrain-Correction"]
    assert "outputDNBand" not in names["Calibration"]
    assert newer == {"clipNegativeValues", "applyAPDCorrection"}


def test_graph_set() -> None:
    assert [g.name for g in GRAPHS] == ["s1_grd_sigma0.xml", "s1_grd_sigma0_1_noise.xml",
                                        "s1_grd_sigma0_2_calibrate.xml",
                                        "s1_grd_sigma0_3_terrain.xml"]


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.name)
def test_graph_parses_consistent_and_ordered(path: Path) -> None:
    """pyroSAR reads it, it is consistent, and its nodes follow the chain's order."""
    flow = workflow(path)
    assert is_consistent(flow)
    ops = [node.operator for node in flow]
    assert ops[0] == "Read" and ops[-1] == "Write"
    positions = [CHAIN.index(op) for op in ops]
    assert positions == sorted(positions) and len(set(ops)) == len(ops)
    # each node reads the one before it (a straight chain)
    nodes = list(flow)
    for prev, node in zip(nodes, nodes[1:]):
        assert node.source == prev.id


def test_full_chain_order() -> None:
    flow = workflow(ROOT / "graphs" / "s1_grd_sigma0.xml")
    assert [n.operator for n in flow] == CHAIN


def test_split_stages_cover_chain() -> None:
    """Stages 1-3 chained give the full chain's processing nodes, each once, in order."""
    stages = [p for p in GRAPHS if "_sigma0_" in p.name]
    ops = [n.operator for p in stages for n in workflow(p) if n.operator not in ("Read", "Write")]
    assert ops == CHAIN[1:-1]


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.name)
def test_only_known_parameter_names(path: Path, allowed) -> None:
    """Every parameter element is one the operator defines in all of SNAP 9 to 14."""
    names, newer = allowed
    for node in workflow(path):
        keys = set(node.parameters.keys())
        unknown = keys - names[node.operator]
        assert not unknown, f"{path.name}:{node.id} unknown parameters {unknown}"
        assert not keys & newer, f"{path.name}:{node.id} uses version-specific {keys & newer}"


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.name)
def test_placeholders(path: Path) -> None:
    """Only ${input}, ${output} and (where there is a Subset) ${region} are left to -P."""
    text = path.read_text()
    found = set(re.findall(r"\$\{(\w+)\}", text))
    expected = {"input", "output"} | ({"region"} if "<operator>Subset<" in text else set())
    assert found == expected


def test_terrain_correction_lattice() -> None:
    """EPSG:4326, 8.983152841195215e-05 degrees (10 m on the WGS84 equator), standard grid
    whose pixel corners fall on whole multiples of the spacing (SNAP aligns centres)."""
    import math

    for name in ("s1_grd_sigma0.xml", "s1_grd_sigma0_3_terrain.xml"):
        par = workflow(ROOT / "graphs" / name)["Terrain-Correction"].parameters
        assert float(par["pixelSpacingInDegree"]) == SPACING
        assert float(par["pixelSpacingInMeter"]) == pytest.approx(
            SPACING * math.pi / 180 * 6378137.0, abs=1e-9)
        assert par["alignToStandardGrid"] == "true"
        for key in ("standardGridOriginX", "standardGridOriginY"):
            frac = (float(par[key]) / SPACING) % 1.0
            assert frac == pytest.approx(0.5, abs=1e-9)
        assert 'GEOGCS["WGS84(DD)"' in par["mapProjection"]
        assert par["saveLayoverShadowMask"] == "true"
        assert par["demName"] == "SRTM 1Sec HGT"


def test_write_formats() -> None:
    fmt = {p.name: workflow(p)["Write"].parameters["formatName"] for p in GRAPHS}
    assert fmt["s1_grd_sigma0.xml"] == "GeoTIFF-BigTIFF"
    assert fmt["s1_grd_sigma0_3_terrain.xml"] == "GeoTIFF-BigTIFF"
    assert fmt["s1_grd_sigma0_1_noise.xml"] == fmt["s1_grd_sigma0_2_calibrate.xml"] == "BEAM-DIMAP"


def test_readme_documents_every_graph_and_parameter() -> None:
    """graphs/README.md names each graph and every parameter element the graphs set."""
    readme = (ROOT / "graphs" / "README.md").read_text()
    for path in GRAPHS:
        assert path.name in readme
        for node in workflow(path):
            for key in node.parameters.keys():
                assert f"`{key}`" in readme, f"README lacks {node.operator}.{key}"


# ------------------------------------------------------------------------------------
# sarflow graphs list / render (dry run: SNAP is not needed)
# ------------------------------------------------------------------------------------

SCENE = "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"


def _event(tmp_path: Path, fixtures_dir: Path, dem: str = "auto") -> Path:
    cfg = tmp_path / "event.yaml"
    cfg.write_text(f"""name: render_test
event: {{time: 2021-01-20T00:00:00Z}}
area: {{bbox: [33.0, -18.0, 33.01, -17.99]}}
windows: {{pre: [2021-01-01, 2021-01-19], post: [2021-01-20, 2021-02-01]}}
scenes: {fixtures_dir / 's1'}
dem: {dem}
output: {tmp_path / 'work'}
processing: {{snap: {{memory_gb: 4, tile_cache_gb: 2, threads: 3}}}}
""")
    return cfg


def test_cli_graphs_list_json() -> None:
    import json

    from click.testing import CliRunner

    from sarflow.cli import cli

    res = CliRunner().invoke(cli, ["graphs", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == [p.name for p in GRAPHS]
    assert rows[0]["nodes"] == CHAIN and rows[0]["variables"] == ["input", "output", "region"]


def test_cli_graphs_render_dry_run(tmp_path: Path, fixtures_dir: Path, monkeypatch) -> None:
    """Renders the graph for the fixture scene and the event grid, prints the gpt command."""
    import json

    from click.testing import CliRunner

    from sarflow.cli import cli
    from sarflow.config import load_config

    monkeypatch.delenv("SNAP_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    dem = fixtures_dir / "dem" / "Rome-30m-DEM.tif"
    cfg_path = _event(tmp_path, fixtures_dir, dem=str(dem))
    out = tmp_path / "graph.xml"
    scene = fixtures_dir / "s1" / SCENE
    res = CliRunner().invoke(cli, ["graphs", "render", str(cfg_path), str(scene), "-o", str(out),
                                   "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    flow = workflow(out)
    assert is_consistent(flow) and [n.operator for n in flow] == CHAIN
    grid = load_config(cfg_path).grid()
    from sarflow.engines.snap import _region_bounds, subset_margin

    w, s, e, n = _region_bounds(flow["Subset"].parameters["geoRegion"])
    mx, my = subset_margin(grid, 0.0)  # the smallest margin (flat terrain)
    assert w <= grid.west - mx and s <= grid.south - my and e >= grid.east + mx and n >= grid.north + my
    assert flow["Terrain-Correction"].parameters["externalDEMFile"] == str(dem.resolve())
    assert data["command"][1:6] == ["-J-Xmx4096M", "-q", "3", "-c", "2048M"]
    assert data["command"][-2] == f"-Pinput={scene.resolve()}"
    assert data["command"][-1] == (f"-Poutput={tmp_path / 'work' / 'preprocessed' / SCENE[:-4]}.tif")
    assert data["scene"]["pass_"] == "DESCENDING" and data["scene"]["relative_orbit"] == 79
    assert any("not installed" in n for n in data["notes"])


def test_cli_graphs_render_corrupt_scene(tmp_path: Path, fixtures_dir: Path) -> None:
    from click.testing import CliRunner

    from sarflow.cli import cli

    bad = tmp_path / SCENE
    bad.write_bytes(b"truncated")
    res = CliRunner().invoke(cli, ["graphs", "render", str(_event(tmp_path, fixtures_dir)),
                                   str(bad), "-o", str(tmp_path / "g.xml")])
    assert res.exit_code == 2
    assert "Error:" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "g.xml").exists()
