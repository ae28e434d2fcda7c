"""The CLI group: fast --help without heavy imports, version, every command's --help."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from sarflow import __version__
from sarflow.cli import COMMANDS, _available, cli

HEAVY = ("tensorflow", "keras", "pyroSAR", "osgeo", "dask", "distributed", "matplotlib")


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from sarflow.cli import cli\n"
            "try:\n    cli(['--help'], prog_name='sarflow')\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_version() -> None:
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_available_command_has_help(name: str) -> None:
    if not _available(name):
        pytest.fail(f"command module for {name!r} is missing")
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output


def test_unknown_command_exits_2() -> None:
    res = CliRunner().invoke(cli, ["frobnicate"])
    assert res.exit_code == 2
