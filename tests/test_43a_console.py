"""A quiet console: `sarflow run`'s default output has no TensorFlow C++ log line and no
Keras warning (a real run on a tiny simulated event, in a child process, so what the C++
runtime writes to descriptor 2 is captured); with -vv they come through."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sarflow.console import is_native_log_line

# written independently of sarflow.console's pattern: what such lines look like here
TF_CPP_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ \S+\.(cc|h):\d+\]", re.M)
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "NodeDef mentions attribute",
         "Your input ran out of data", "UserWarning")

TINY_MODEL = {"architecture": "dppa_unet", "group": "G1", "filters": 8, "batch_size": 4,
              "learning_rate": 0.002, "epochs": 2, "patience": 2, "patch_size": 64, "seed": 5}


@pytest.fixture(scope="module")
def event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import tiny_event

    return tiny_event(tmp_path_factory.mktemp("console"), TINY_MODEL)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    return {**env, "OMP_NUM_THREADS": "1"}


def _sarflow(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "sarflow", *args], env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _noise(text: str) -> list[str]:
    found = [m.group(0) for m in TF_CPP_LINE.finditer(text)]
    return found + [n for n in NOISE if n in text]


def test_run_default_console_has_no_tensorflow_log_lines(event: Path) -> None:
    res = _sarflow("run", str(event), "--workers", "1")
    work = event.parent / "work"
    assert (work / "report" / "index.html").is_file()
    output = res.stdout + res.stderr
    assert _noise(output) == [], output[-3000:]
    # what the user should see is still there
    assert "train" in res.stderr and "validation area" in res.stdout

    # the same TensorFlow work with -vv shows the C++ lines: the check above can fail
    model = work / "models" / "G1_dppa_unet" / "model.keras"
    loud = _sarflow("-vv", "predict", str(model), str(work / "stack" / "groups" / "G1.tif"),
                    "-o", str(event.parent / "loud"))
    assert TF_CPP_LINE.search(loud.stderr), loud.stderr[-2000:]
    quiet = _sarflow("predict", str(model), str(work / "stack" / "groups" / "G1.tif"),
                     "-o", str(event.parent / "quiet"))
    assert _noise(quiet.stdout + quiet.stderr) == []


_FILTER_CHILD = textwrap.dedent("""
    import os, subprocess, sys
    from sarflow.console import NativeLogFilter
    NativeLogFilter().start()
    os.write(2, b"I0000 00:00:1796163269.082942    8118 port.cc:153] oneDNN custom ops\\n")
    os.write(2, b"a C library's own message\\n")
    print("python stderr line", file=sys.stderr)
    subprocess.run([sys.executable, "-c",
                    "import os; os.write(2, b'E0000 00:00:17.5 9 node_def_util.cc:682] x\\\\n'"
                    "b'child message\\\\n')"], check=True)
    os.write(2, b"no newline at the end")
""")


def test_filter_drops_only_native_log_lines_also_from_children() -> None:
    res = subprocess.run([sys.executable, "-c", _FILTER_CHILD], capture_output=True,
                         timeout=120, env=_env(), cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 0, res.stderr
    assert sorted(res.stderr.decode().splitlines()) == sorted([
        "a C library's own message", "python stderr line", "child message",
        "no newline at the end"])


@pytest.mark.parametrize("line, native", [
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
     True),
    (b"I0000 00:00:1796163160.945617    6853 port.cc:153] oneDNN custom operations are on.",
     True),
    (b"E0000 00:00:1796163175.410016    6853 node_def_util.cc:682] NodeDef mentions", True),
    (b"2024-01-05 10:00:00.123456: W tensorflow/core/framework/op.cc:12] old format", True),
    (b"Error: the config file is missing", False),
    (b"ERROR 1: PROJ: proj_create_from_database: cannot open proj.db", False),
    (b"I0000 is not a log line", False),
])
def test_native_log_line_pattern(line: bytes, native: bool) -> None:
    assert is_native_log_line(line) is native
