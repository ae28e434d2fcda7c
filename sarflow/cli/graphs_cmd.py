"""`sarflow graphs list|render`: the SNAP GPT graphs, and a dry run for one scene."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from .options import event_argument, json_option, load_event


@click.group()
def graphs() -> None:
    """List and render the SNAP GPT graphs (graphs/*.xml)."""


def _describe(path: Path) -> dict:
    """Name, node chain, ${} variables and description of one graph file."""
    import re

    from ..pyrosar_compat import workflow

    flow = workflow(path)
    text = path.read_text()
    desc = re.search(r"<Description>(.*?)</Description>", text, re.S)
    return {"name": path.name, "path": str(path),
            "nodes": [node.operator for node in flow],
            "variables": sorted(set(re.findall(r"\$\{(\w+)\}", text))),
            "description": desc.group(1).strip() if desc else ""}


@graphs.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Show every graph in graphs/ with its nodes and ${} variables (see graphs/README.md)."""
    from rich.console import Console
    from rich.table import Table

    from ..engines.snap import GRAPHS_DIR

    rows = [_describe(p) for p in sorted(GRAPHS_DIR.glob("*.xml"))]
    if not rows:
        from ..errors import DependencyError

        raise DependencyError(f"no SNAP graphs in {GRAPHS_DIR}: this sarflow installation is "
                              "incomplete; reinstall it (pip install --force-reinstall sarflow)")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"SNAP graphs in {GRAPHS_DIR}")
    for col in ("graph", "nodes", "-P variables", "what"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], " -> ".join(r["nodes"]), ", ".join(r["variables"]),
                      r["description"])
    Console().print(table)


@graphs.command("render")
@event_argument
@click.argument("scene", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "out_xml", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Graph XML to write.")
@click.option("--dem", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="External DEM GeoTIFF (default: the config's dem, else SNAP's auto-download).")
@json_option
def render(event_config: Path, scene: Path, out_xml: Path, dem: Optional[Path],
           as_json: bool) -> None:
    """Write the graph sarflow would run for SCENE in EVENT.yaml, and print the gpt command.

    A dry run: nothing is processed and SNAP need not be installed.
    """
    from rich.console import Console

    from ..engines import SceneJob
    from ..engines.snap import GptSettings, find_gpt, gpt_command, render_graph, scene_info
    from ..preprocess import worker_resources
    from ..workdir import WorkDir

    cfg = load_event(event_config)
    scene = scene.resolve()
    info = scene_info(scene)
    notes = []
    if dem is None and cfg.dem != "auto":
        dem = Path(cfg.dem)
    elif dem is None:
        notes.append("dem: auto - `sarflow preprocess` mosaics the event DEM and passes it as "
                     "External DEM; this dry run shows SNAP's own DEM "
                     f"({cfg.processing.snap.dem}); use --dem to preview a file")
    snap = cfg.processing.snap
    output = WorkDir(cfg.output).scene_output(info.product_id)
    job = SceneJob(scene=scene, output=output, grid=cfg.grid(),
                   polarisations=list(cfg.polarisations), dem=dem, settings=snap)
    values = render_graph(job, out_xml)
    gpt = find_gpt(snap.gpt)
    if gpt is None:
        notes.append("SNAP's gpt is not installed here; install ESA SNAP to run this graph")
    settings = GptSettings.from_settings(snap, worker_resources(cfg.processing, "snap"),
                                         gpt=gpt or Path("gpt"))
    cmd = gpt_command(settings, out_xml, scene, output)
    missing = [p for p in cfg.polarisations if p not in info.polarisations]
    if missing:
        notes.append(f"the scene lacks {', '.join(missing)}: the engine would refuse it")
    if as_json:
        click.echo(json.dumps({"graph": str(out_xml), "command": cmd, "values": values,
                               "scene": info.__dict__, "notes": notes}, indent=2))
        return
    console = Console()
    console.print(f"[bold]{info.product_id}[/] ({info.pass_.lower()}, relative orbit "
                  f"{info.relative_orbit}, {info.acquisition_time}) -> {out_xml}")
    console.print(f"subset region: {values['Subset']['geoRegion']}")
    tc = values["Terrain-Correction"]
    console.print(f"DEM: {tc.get('externalDEMFile') or tc['demName']}; grid "
                  f"{job.grid.width} x {job.grid.height} px at {job.grid.spacing!r} deg")
    console.print("command:", style="bold")
    click.echo(" ".join(_quote(a) for a in cmd))
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
