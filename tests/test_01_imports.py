"""The package's module graph: no import cycles, counting imports inside functions too
(a cycle hidden in a function is still one module needing another that needs it)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sarflow"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The sarflow modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - max(node.level - 1, 0)]
            target = ".".join(base + [node.module] if node.module else base) if node.level \
                else node.module
            subs = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            deps |= subs if len(subs) == len(node.names) else subs | ({target} & modules.keys())
        elif isinstance(node, ast.Import):
            deps |= {a.name for a in node.names} & modules.keys()
    deps.discard(name)
    return deps


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_detector_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_sarflow() -> None:
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert "sarflow.report" in graph["sarflow.pipeline"]  # function-level imports count
    assert cycles(graph) == []


def test_radar_geometry_lives_in_sentinel1() -> None:
    """The native engine and the simulator take layover/shadow, the height lookup's fit and
    the line convention from sarflow.sentinel1 rather than defining their own."""
    modules = _modules()
    for user in ("sarflow.engines.native", "sarflow.simulate.geometry"):
        deps = _imports(user, modules[user], modules)
        assert {"sarflow.sentinel1.layover", "sarflow.sentinel1.lookup"} <= deps, user
    assert "sarflow.sentinel1.radar" in _imports("sarflow.simulate.geometry",
                                                 modules["sarflow.simulate.geometry"], modules)
    for path in (modules["sarflow.engines.native"], modules["sarflow.simulate.geometry"]):
        names = {n.name for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not names & {"layover_shadow", "layover_shadow_grid", "slant_range_to_pixel",
                            "_profile_flags", "metres_per_pixel", "GeometryLUT", "upsample",
                            "height_coefficients"}, path


ONE_GDAL_PROBE = """
import importlib, pkgutil, re, sys
import sarflow
for m in pkgutil.walk_packages(sarflow.__path__, "sarflow."):
    importlib.import_module(m.name)
from sarflow import pyrosar_compat
pyrosar_compat.pyrosar()
import tensorflow
libs = set(re.findall(r"\\S*libgdal[^/\\s]*\\.so[^/\\s]*", open("/proc/self/maps").read()))
print(sorted(libs))
"""


def test_every_sarflow_module_loads_one_gdal() -> None:
    """Every sarflow module, pyroSAR and TensorFlow in one process map exactly one libgdal
    (the system's): nothing sarflow needs brings a wheel with its own GDAL (rasterio's
    lives in the tests' reference venv, tests/reference.py)."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", ONE_GDAL_PROBE], capture_output=True, text=True,
                         cwd=PACKAGE.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    libs = ast.literal_eval(res.stdout.strip().splitlines()[-1])
    assert len(libs) == 1 and libs[0].startswith("/usr/lib/"), libs
