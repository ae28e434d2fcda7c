"""SNAP's installed operators against sarflow's graphs: does every node and parameter exist?

The operators' parameter descriptors come through esa-snappy when it imports, else from
``gpt <Operator> -h`` parsed in the format SNAP's ``CommandLineUsage`` prints
(``-P<name>=<type>`` lines, ``Value must be one of '...'``).  The SNAP engine runs
:func:`ensure_graphs_run` before its first scene; ``sarflow snap check``
(:mod:`sarflow.engines.snap_check`) reports the same rows with the rest of the installation.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from ..errors import ConfigError

OperatorSpec = dict[str, Optional[list[str]]]
"""Parameter name -> allowed values (None: any value)."""


class SnapCheckError(ConfigError):
    """SNAP would fail on sarflow's graphs (the message names the first problem and its fix)."""

    transient = False


@dataclass
class Row:
    """One check: what, ok or not, and the detail (the fix when not ok)."""

    item: str
    ok: bool
    detail: str


PARAM = re.compile(r"^\s+-P(?P<name>\w+)=<(?P<type>[^>]*)>", re.M)
VALUES = re.compile(r"Value must be one of (?P<values>'.*?')\.?\s*$", re.M)


def parse_operator_help(text: str) -> OperatorSpec | None:
    """Parameters of ``gpt <Operator> -h`` output (None when it is not an operator's usage)."""
    if "Usage:" not in text or "Parameter Options:" not in text:
        return None
    section = text.split("Parameter Options:", 1)[1].split("Graph XML Format:", 1)[0]
    spec: OperatorSpec = {}
    matches = list(PARAM.finditer(section))
    for i, m in enumerate(matches):
        body = section[m.end(): matches[i + 1].start() if i + 1 < len(matches) else len(section)]
        v = VALUES.search(body)
        spec[m["name"]] = re.findall(r"'([^']*)'", v["values"]) if v else None
    return spec


def help_provider(gpt: Path, timeout_s: float = 300) -> Callable[[str], OperatorSpec | None]:
    """Operator specs from ``gpt <Operator> -h`` (a JVM start per operator)."""
    def spec(op: str) -> OperatorSpec | None:
        try:
            res = subprocess.run([str(gpt), op, "-h"], capture_output=True, text=True,
                                 timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None
        return parse_operator_help(res.stdout + "\n" + res.stderr)
    return spec


def snappy_provider() -> Callable[[str], OperatorSpec | None] | None:
    """Operator specs from esa-snappy's GPF registry, or None when esa-snappy does not import."""
    try:
        from esa_snappy import GPF  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - not installed, or its JVM bridge not configured
        return None
    registry = GPF.getDefaultInstance().getOperatorSpiRegistry()
    registry.loadOperatorSpis()

    def spec(op: str) -> OperatorSpec | None:
        spi = registry.getOperatorSpi(op)
        if spi is None:
            return None
        out: OperatorSpec = {}
        for d in spi.getOperatorDescriptor().getParameterDescriptors():
            values = d.getValueSet()
            out[str(d.getName())] = [str(v) for v in values] if values else None
        return out
    return spec


def graph_nodes(graph: Path, values: Mapping[str, Mapping[str, str]] | None = None
                ) -> list[tuple[str, str, dict[str, str]]]:
    """(node id, operator, parameters) of a graph, with the engine's ``values`` filled in."""
    root = ET.parse(graph).getroot()
    nodes = []
    for node in root.findall("node"):
        params = {p.tag: (p.text or "") for p in node.find("parameters")}
        params.update((values or {}).get(node.get("id"), {}))
        nodes.append((node.get("id"), node.findtext("operator"), params))
    return nodes


def check_graphs(graphs: Sequence[Path], spec_of: Callable[[str], OperatorSpec | None],
                 values: Mapping[str, Mapping[str, str]] | None = None) -> list[Row]:
    """One row per operator used: present, every parameter known, every enumerated value allowed."""
    rows: list[Row] = []
    cache: dict[str, OperatorSpec | None] = {}
    for graph in graphs:
        for node_id, op, params in graph_nodes(graph, values):
            if op not in cache:
                cache[op] = spec_of(op)
            spec = cache[op]
            item = f"{graph.name}: {node_id} ({op})"
            if spec is None:
                rows.append(Row(item, False, f"operator {op} is not installed in this SNAP; "
                                             "install the Sentinel-1 toolbox / microwave toolbox "
                                             "plugin (SNAP 9-14) or update SNAP"))
                continue
            unknown = [p for p in params if p not in spec]
            if unknown:
                close = {p: _closest(p, spec) for p in unknown}
                rows.append(Row(item, False, "; ".join(
                    f"unknown parameter <{p}>" + (f" (did you mean <{c}>?)" if c else "")
                    for p, c in close.items()) + f"; fix {graph}"))
                continue
            bad = [(p, v) for p, v in params.items() if spec.get(p) and v and "${" not in v
                   and v not in spec[p]]
            if bad:
                p, v = bad[0]
                rows.append(Row(item, False, f"<{p}> = {v!r} is not one of "
                                             f"{', '.join(spec[p][:4])}...; fix {graph}"))
                continue
            rows.append(Row(item, True, f"{len(params)} parameters known"))
    return rows


def _closest(name: str, spec: OperatorSpec) -> str | None:
    import difflib

    hit = difflib.get_close_matches(name, list(spec), n=1, cutoff=0.75)
    if not hit:
        hit = [p for p in spec if p.lower() == name.lower()]
    return hit[0] if hit else None


def first_problem(rows: Sequence[Row]) -> None:
    """Raise :class:`SnapCheckError` for the first row that is not ok."""
    bad = [r for r in rows if not r.ok]
    if bad:
        more = f" ({len(bad) - 1} more problem(s): run `sarflow snap check`)" if len(bad) > 1 else ""
        raise SnapCheckError(f"SNAP check: {bad[0].item}: {bad[0].detail}{more}")


_VERIFIED: dict[tuple[str, tuple[str, ...]], None] = {}


def ensure_graphs_run(gpt: Path, graphs: Sequence[Path],
                      values: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Before a SNAP batch: the graphs' operators and parameters checked once per process
    and gpt (esa-snappy, else ``gpt <Operator> -h``); :class:`SnapCheckError` on the first
    problem, before any scene is processed."""
    key = (str(gpt), tuple(str(g) for g in graphs))
    if key in _VERIFIED:
        return
    provider = snappy_provider() or help_provider(gpt)
    first_problem(check_graphs(graphs, provider, values))
    _VERIFIED[key] = None
