"""The ``sarflow`` command line: a click group whose commands load lazily.

Each command lives in its own module of this package and is a thin wrapper: parse, call a
stage, print.  Modules are imported only when their command runs, so ``sarflow --help``
never pays for TensorFlow, GDAL or pyroSAR.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import traceback

import click

from .. import __version__
from ..errors import SarflowError

# command name -> "module:attribute" (module relative to sarflow.cli)
COMMANDS: dict[str, str] = {
    "config": "config_cmd:config",
    "info": "info_cmd:info",
    "simulate": "simulate_cmd:simulate",
    "simulate-corpus": "corpus_cmd:simulate_corpus",
    "scenes": "scenes_cmd:scenes",
    "preprocess": "preprocess_cmd:preprocess",
    "graphs": "graphs_cmd:graphs",
    "snap": "snap_cmd:snap",
    "stack": "stack_cmd:stack",
    "heatmap": "heatmap_cmd:heatmap",
    "dataset": "dataset_cmd:dataset",
    "train": "train_cmd:train",
    "predict": "predict_cmd:predict",
    "map": "map_cmd:map_",
    "evaluate": "evaluate_cmd:evaluate",
    "report": "report_cmd:report",
    "run": "run_cmd:run",
    "experiment": "experiment_cmd:experiment",
    "demo": "demo_cmd:demo",
}

# one-line summaries shown by --help without importing the command modules
SUMMARIES: dict[str, str] = {
    "config": "Check and show event configurations.",
    "info": "Show a Sentinel-1 product's metadata.",
    "simulate": "Write a synthetic landslide event (scenes, DEM, inventory, truth).",
    "simulate-corpus": "Write many varied synthetic events for training.",
    "scenes": "Index downloaded scenes and list those an event uses.",
    "preprocess": "Calibrate and terrain-correct an event's scenes (SNAP or native).",
    "graphs": "List and render the SNAP GPT graphs.",
    "snap": "Check the SNAP installation against sarflow's graphs.",
    "stack": "Temporal medians, changes, fusion and the six input groups.",
    "heatmap": "Change heatmap without a model: robust z-scores of post vs pre.",
    "dataset": "Rasterise labels and cut training patches.",
    "train": "Train DPPA-UNet / U-Net / SegNet (one setting or the grid).",
    "predict": "Map landslides over a whole area with a trained model.",
    "map": "Rapid-response map of an event without an inventory (model from elsewhere).",
    "evaluate": "Precision, recall, F1 and IoU of a prediction.",
    "report": "Write the HTML report of an event.",
    "run": "Run every stage of an event, resumably.",
    "experiment": "Run the paper's ablation (groups x models) for an event.",
    "demo": "Simulate an event and run it end to end.",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if _available(n)) + sorted(super().list_commands(ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and _available(name):
            module, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, SUMMARIES.get(n, "")) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SarflowError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"Error: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)


def _available(name: str) -> bool:
    module = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(f"{__name__}.{module}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sarflow")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """sarflow maps landslides from Sentinel-1 radar (DPPA-UNet, Pan & Shi 2023).

    One command per stage, or `sarflow run EVENT.yaml` for all of them.
    Start with `sarflow demo` to see the whole chain on a synthetic event.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.WARNING if quiet else (logging.INFO if verbose < 2 else logging.DEBUG)
    if verbose == 0 and not quiet:
        level = logging.INFO
    ctx.obj["quiet"] = quiet
    if verbose < 2:  # TensorFlow's C++ info/warning lines are noise for users
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if ctx.obj.get("console"):  # the real terminal (not CliRunner): filter descriptor 2
        from ..console import quiet_console

        quiet_console(verbose)
    _setup_logging(level)


def _setup_logging(level: int) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger("sarflow")
    root.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(show_path=False, show_time=False, rich_tracebacks=False))
    root.propagate = False


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sarflow", obj={"console": True})
