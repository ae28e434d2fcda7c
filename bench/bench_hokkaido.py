"""A Hokkaido-sized simulated event end to end, per stage, against the demo-sized event; JSON.

The paper's Hokkaido area (``examples/hokkaido_2018.yaml``: 141.84-142.13 E, 42.64-42.89 N,
0.29 x 0.25 degrees, 3228 x 2783 lattice pixels) is simulated at its centre with 8 scenes
per pass and window (32 dual-pol GRDs) and run through every stage (native preprocess,
stack, dataset, train, predict, evaluate, report) with the demo's model settings
(``sarflow.demo.DEMO_MODEL``, not tuned).  As the baseline measured in the same run, the
demo-sized event (``sarflow.demo.DemoSettings``: 768 x 1152 pixels, 4 scenes per pass and
window) goes through the same stages first.  Each event runs in a fresh Python process
(both cold: imports, TensorFlow start-up and caches count for each alike).

Per stage (and for the simulation): wall and CPU seconds of the whole process tree (the
local Dask cluster's workers are child processes), peak memory of the tree (RSS and PSS of
the process and all its children, sampled every 0.2 s by a separate sampler process: peak
sum and peak single process), and the disk size of the inputs and of each output folder.  ``ratio_per_scene_mpx`` is
Hokkaido's cost per scene-megapixel over the demo's (1.0: linear in scenes x pixels);
``ratio_per_mpx`` the same per grid megapixel.  ``--scale`` shrinks the Hokkaido grid per
side (0.25 for a quick check of the script).

    python bench/bench_hokkaido.py [--scale 1.0] [--root DIR] [--seed 0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
HOKKAIDO_BBOX = (141.84, 42.64, 142.13, 42.89)
"""west, south, east, north of the paper's Hokkaido area (examples/hokkaido_2018.yaml)."""
HOKKAIDO_SCENES_PER_WINDOW = 8
PAPER_SCENES = 165
"""Scenes the paper used for Hokkaido: 56 + 62 before, 20 + 27 after the event."""
SAMPLE_S = 0.2
PSS_EVERY = 5
"""PSS (reading smaps) every this many RSS samples: 1 s."""


# ------------------------------------------------------------------------------------
# measuring: process-tree memory and CPU
# ------------------------------------------------------------------------------------

class TreeSampler:
    """Samples RSS (and, less often, PSS) of process ``root`` and all its descendants
    (itself left out); tracks the peaks and the CPU seconds of the descendants."""

    def __init__(self, root: int) -> None:
        import psutil

        self._psutil = psutil
        self.me = psutil.Process(root)
        self.reset()

    def reset(self) -> None:
        """Start a new measurement window (peaks from now on)."""
        self.peak_rss_sum = self.peak_rss_single = self.peak_pss_sum = 0
        self.peak_single_name = ""
        self.max_processes = 0
        self.samples = 0
        self.child_cpu: dict[int, float] = {}

    def tree(self) -> list:
        try:
            kids = self.me.children(recursive=True)
        except self._psutil.Error:
            kids = []
        return [self.me, *(k for k in kids if k.pid != os.getpid())]

    def sample(self) -> None:
        """One sample of the whole tree."""
        procs = self.tree()
        total = pss = 0
        with_pss = self.samples % PSS_EVERY == 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                if with_pss:
                    pss += p.memory_full_info().pss
                if p.pid != self.me.pid:
                    t = p.cpu_times()
                    self.child_cpu[p.pid] = (t.user + t.system + t.children_user
                                             + t.children_system)
            except self._psutil.Error:  # the process ended between listing and reading
                continue
            total += rss
            if rss > self.peak_rss_single:
                self.peak_rss_single = rss
                self.peak_single_name = _short_name(p)
        self.peak_rss_sum = max(self.peak_rss_sum, total)
        if with_pss:
            self.peak_pss_sum = max(self.peak_pss_sum, pss)
        self.max_processes = max(self.max_processes, len(procs))
        self.samples += 1

    def state(self) -> dict:
        return {"peak_rss_sum": self.peak_rss_sum, "peak_pss_sum": self.peak_pss_sum,
                "peak_rss_single": self.peak_rss_single,
                "peak_single_name": self.peak_single_name,
                "max_processes": self.max_processes, "child_cpu": self.child_cpu,
                "alive": [p.pid for p in self.tree()]}


def serve_samples(root: int, interval: float) -> None:
    """The sampler process: samples ``root``'s tree every ``interval`` seconds and answers
    each line on stdin (``sample``, ``reset``) with its state as one JSON line."""
    import select

    sampler = TreeSampler(root)
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], interval)
        if not ready:
            sampler.sample()
            continue
        command = sys.stdin.readline().strip()
        if command in ("", "stop"):
            return
        if command == "reset":
            sampler.reset()
        sampler.sample()
        print(json.dumps(sampler.state()), flush=True)


class TreeMonitor:
    """The memory and CPU of this process's tree, sampled by a separate process
    (:func:`serve_samples`): reading ``/proc`` (PSS from smaps every second) in a thread of
    the measured process competed with its threads for the GIL and slowed training (the
    demo-sized training took 106 s under that sampler against 63-64 s without)."""

    def __init__(self, interval: float = SAMPLE_S) -> None:
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self._proc: subprocess.Popen | None = None
        self.child_cpu: dict[int, float] = {}
        self.alive: set[int] = set()

    def _ask(self, command: str) -> None:
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        state = json.loads(self._proc.stdout.readline())
        self.child_cpu = {int(k): v for k, v in state.pop("child_cpu").items()}
        self.alive = set(state.pop("alive"))
        self.__dict__.update(state)

    def sample(self) -> None:
        """One sample now (and the sampler's state)."""
        self._ask("sample")

    def reset(self) -> None:
        """Start a new measurement window (peaks from now on)."""
        self._ask("reset")

    def __enter__(self) -> "TreeMonitor":
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--sample-tree", str(os.getpid()),
             "--interval", str(self.interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._proc is not None and self._proc.stdin:
            self._proc.stdin.write("stop\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=30)


def _short_name(p) -> str:
    try:
        cmd = p.cmdline()
    except Exception:  # noqa: BLE001 - only a label; psutil raises several kinds here
        return p.name()
    text = " ".join(cmd[:3])
    return text if len(text) <= 80 else text[:77] + "..."


def measure(monitor: TreeMonitor, fn: Callable[[], Any]) -> tuple[Any, dict]:
    """Run ``fn``; its wall and CPU seconds (this process, reaped children and live ones)
    and the peak memory of the process tree meanwhile."""
    mb = 2 ** 20
    self_cpu0 = sum(os.times()[:2])
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    monitor.sample()
    live0 = dict(monitor.child_cpu)
    rss0 = monitor.me.memory_info().rss
    monitor.reset()
    monitor.sample()
    t0 = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    monitor.sample()
    self_cpu = sum(os.times()[:2]) - self_cpu0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
    alive = monitor.alive
    # children still alive now: their CPU since they were first seen (or since the start)
    live = sum(cpu - live0.get(pid, 0.0) for pid, cpu in monitor.child_cpu.items()
               if pid in alive)
    cpu = self_cpu + reaped + live
    return result, {
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "cpu_per_wall": round(cpu / wall, 2) if wall > 0 else None,
        "rss_at_start_mb": round(rss0 / mb), "peak_rss_sum_mb": round(monitor.peak_rss_sum / mb),
        "peak_pss_sum_mb": round(monitor.peak_pss_sum / mb),
        "peak_rss_single_mb": round(monitor.peak_rss_single / mb),
        "peak_single_process": monitor.peak_single_name,
        "max_processes": monitor.max_processes}


def du_mb(path: Path) -> float:
    """Disk size (apparent bytes) of a file or folder tree, MB."""
    if path.is_file():
        return round(path.stat().st_size / 2 ** 20, 1)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(total / 2 ** 20, 1)


# ------------------------------------------------------------------------------------
# one event, in its own process
# ------------------------------------------------------------------------------------

def hokkaido_size(scale: float) -> tuple[int, int]:
    """(rows, cols) of the Hokkaido area on the lattice, times ``scale`` per side."""
    from sarflow.grid import SPACING

    w, s, e, n = HOKKAIDO_BBOX
    return (max(64, round((n - s) / SPACING * scale)), max(64, round((e - w) / SPACING * scale)))


def simulate(folder: Path, seed: int, size: tuple[int, int], scenes: int,
             center: tuple[float, float] | None) -> Path:
    """Simulate the event and write the demo's model settings into its event.yaml."""
    import yaml

    from sarflow.demo import DEMO_MODEL
    from sarflow.simulate import SimulationSettings, simulate_event

    extra = {} if center is None else {"center": center}
    settings = SimulationSettings(size=size, scenes_per_window=scenes, **extra)
    event_yaml = Path(simulate_event(folder, seed=seed, settings=settings))
    data = yaml.safe_load(event_yaml.read_text())
    data["model"] = {**DEMO_MODEL, "seed": seed}
    data.setdefault("processing", {})["engine"] = "native"
    event_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return event_yaml


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_one(name: str, folder: Path, seed: int, size: tuple[int, int], scenes: int,
            center: tuple[float, float] | None) -> dict:
    """Simulate one event and run every stage, measuring each; a JSON-able record."""
    from sarflow.config import load_config
    from sarflow.pipeline import STAGE_NAMES, RunOptions, run_event
    from sarflow.workdir import WorkDir

    out: dict[str, Any] = {"name": name, "grid": list(size), "scenes_per_window": scenes,
                           "center": list(center) if center else "simulator default",
                           "grid_mpx": round(size[0] * size[1] / 1e6, 4)}
    stages: dict[str, dict] = {}
    with TreeMonitor() as mon:
        _log(f"{name}: simulating {size[0]} x {size[1]}, {scenes} scenes per pass and window")
        event_yaml, stages["simulate"] = measure(
            mon, lambda: simulate(folder, seed, size, scenes, center))
        cfg = load_config(event_yaml)
        out["scenes"] = len(list((folder / "scenes").glob("*.zip")))
        opts = RunOptions(engine="native", progress=False)
        for stage in STAGE_NAMES:
            _log(f"{name}: {stage}")
            try:
                outcomes, rec = measure(mon, lambda: run_event(cfg, start=stage, until=stage,
                                                               options=opts))
            except Exception as exc:  # noqa: BLE001 - a failure at this size is the finding
                stages[stage] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                _log(f"{name}: {stage} failed: {exc}")
                break
            rec["pipeline_s"] = round(outcomes[0].seconds, 2)
            rec["status"] = outcomes[0].status
            stages[stage] = rec
            _log(f"{name}: {stage} {rec['wall_s']} s, peak tree RSS {rec['peak_rss_sum_mb']} MB")
    out["stages"] = stages
    out["disk_mb"] = disk(folder, WorkDir(cfg.output).root)
    out["training"] = training_record(cfg)
    out["scores"] = scores(cfg)
    return out


def disk(folder: Path, work: Path) -> dict:
    """Disk size of the inputs (scenes, DEM, inventory, truth) and each work sub-folder."""
    inputs = {p: du_mb(folder / p) for p in ("scenes", "dem.tif", "inventory.gpkg", "truth")
              if (folder / p).exists()}
    outputs = {p.name: du_mb(p) for p in sorted(work.iterdir())} if work.is_dir() else {}
    return {"inputs": inputs, "outputs": outputs,
            "inputs_total": round(sum(inputs.values()), 1),
            "outputs_total": round(sum(outputs.values()), 1)}


def training_record(cfg) -> dict | None:
    """Patches, epochs and seconds from the train stage's result.json."""
    from sarflow.train import best_model_path

    try:
        result = json.loads((best_model_path(cfg).parent / "result.json").read_text())
    except (OSError, ValueError, KeyError):
        return None
    keep = ("n_train", "n_test", "epochs_run", "best_epoch", "train_seconds",
            "patches_per_second", "timing")
    return {k: result.get(k) for k in keep}


def scores(cfg) -> dict:
    """Validation-area pixel scores of the model and the heatmap (what the run produced)."""
    from sarflow.workdir import WorkDir

    wd = WorkDir(cfg.output)
    out = {}
    for who, path in (("dppa_unet", wd.evaluation("validation")),
                      ("heatmap", wd.heatmap_evaluation("validation"))):
        try:
            px = json.loads(path.read_text())["pixel"]
            out[who] = {k: round(float(px[k]), 4) for k in ("precision", "recall", "f1")}
        except (OSError, ValueError, KeyError):
            out[who] = None
    return out


# ------------------------------------------------------------------------------------
# the comparison
# ------------------------------------------------------------------------------------

def per_unit(event: dict) -> dict:
    """Per stage: seconds per scene, per scene-megapixel and per megapixel (wall and CPU)."""
    n, mpx = event["scenes"], event["grid_mpx"]
    out = {}
    for stage, rec in event["stages"].items():
        if "wall_s" not in rec:
            continue
        out[stage] = {"wall_s_per_scene": round(rec["wall_s"] / n, 3),
                      "cpu_s_per_scene": round(rec["cpu_s"] / n, 3),
                      "wall_s_per_scene_mpx": round(rec["wall_s"] / (n * mpx), 4),
                      "cpu_s_per_scene_mpx": round(rec["cpu_s"] / (n * mpx), 4),
                      "wall_s_per_mpx": round(rec["wall_s"] / mpx, 3)}
    return out


def ratios(hok: dict, demo: dict) -> dict:
    """Hokkaido's cost per scene-megapixel (and per megapixel) over the demo's, per stage."""
    a, b = per_unit(hok), per_unit(demo)
    out = {}
    for stage in a:
        if stage in b and b[stage]["wall_s_per_scene_mpx"] > 0:
            out[stage] = {
                "ratio_per_scene_mpx": round(a[stage]["wall_s_per_scene_mpx"]
                                             / b[stage]["wall_s_per_scene_mpx"], 3),
                "cpu_ratio_per_scene_mpx": round(a[stage]["cpu_s_per_scene_mpx"]
                                                 / max(b[stage]["cpu_s_per_scene_mpx"], 1e-9), 3),
                "ratio_per_mpx": round(a[stage]["wall_s_per_mpx"] / b[stage]["wall_s_per_mpx"], 3)}
    return out


def end_to_end(event: dict) -> dict:
    """Sum over the pipeline stages (simulation apart) and the worst memory peaks."""
    recs = [r for s, r in event["stages"].items() if s != "simulate" and "wall_s" in r]
    return {"wall_s": round(sum(r["wall_s"] for r in recs), 1),
            "cpu_s": round(sum(r["cpu_s"] for r in recs), 1),
            "peak_rss_sum_mb": max((r["peak_rss_sum_mb"] for r in recs), default=None),
            "peak_pss_sum_mb": max((r["peak_pss_sum_mb"] for r in recs), default=None),
            "complete": all("wall_s" in r for r in event["stages"].values())
            and len(recs) == 7}


def control() -> float:
    """Seconds of a fixed single-threaded numpy workload: how loaded the machine is."""
    import numpy as np

    x = np.random.default_rng(0).standard_normal(2_000_000)
    t0 = time.perf_counter()
    for _ in range(5):
        np.sort(x)
        np.fft.rfft(x)
    return round(time.perf_counter() - t0, 3)


def spawn(name: str, folder: Path, seed: int, size: tuple[int, int], scenes: int,
          center: tuple[float, float] | None) -> dict:
    """Run one event in a fresh Python process (``--one``) and read its JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result_path = folder.parent / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--folder", str(folder),
           "--seed", str(seed), "--size", f"{size[0]},{size[1]}", "--scenes", str(scenes),
           "--result", str(result_path)]
    if center is not None:
        cmd += ["--center", f"{center[0]},{center[1]}"]
    res = subprocess.run(cmd, env=env, stdout=sys.stderr)  # stdout: the JSON alone
    if not result_path.is_file():
        return {"name": name, "error": f"the event process exited {res.returncode} "
                                       f"without a result (killed for memory?)"}
    return json.loads(result_path.read_text())


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="fraction of the Hokkaido size per side (default 1.0)")
    ap.add_argument("--root", type=Path, default=None,
                    help="an empty or new folder for both events (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the events and work folders")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--scenes", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--center", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--sample-tree", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--interval", type=float, default=SAMPLE_S, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.sample_tree:  # the memory sampler of an event process
        serve_samples(args.sample_tree, args.interval)
        return

    if args.one:  # the child: one event
        size = tuple(int(v) for v in args.size.split(","))
        center = tuple(float(v) for v in args.center.split(",")) if args.center else None
        rec = run_one(args.one, args.folder, args.seed, size, args.scenes, center)
        args.result.write_text(json.dumps(rec, indent=1))
        return

    if not 0 < args.scale <= 1.5:
        raise SystemExit("--scale must lie in (0, 1.5]")
    if args.root is not None and args.root.exists() and any(args.root.iterdir()):
        raise SystemExit(f"{args.root} is not empty; give a new or empty folder")
    root = args.root or Path(tempfile.mkdtemp(prefix="sarflow-hokkaido-"))
    root.mkdir(parents=True, exist_ok=True)
    from sarflow.demo import DEMO_MODEL, DemoSettings
    from sarflow.train import cpu_description

    demo = DemoSettings()
    w, s, e, n = HOKKAIDO_BBOX
    centre = (round((w + e) / 2, 4), round((s + n) / 2, 4))
    size = hokkaido_size(args.scale)
    info = {"bench": "hokkaido", "scale": args.scale, "seed": args.seed,
            "machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                        "cpu": cpu_description(),
                        "memory_gb": round(_total_memory() / 2 ** 30, 1),
                        "note": "other jobs on the machine show in the load average"},
            "load_average_start": load(), "control_s_start": control(),
            "model": {**DEMO_MODEL, "seed": args.seed}}
    t0 = time.perf_counter()
    try:
        base = spawn("demo", root / "demo", args.seed, demo.size, demo.scenes_per_window, None)
        hok = spawn("hokkaido", root / "hokkaido", args.seed, size,
                    HOKKAIDO_SCENES_PER_WINDOW, centre)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    info |= {"load_average_end": load(), "control_s_end": control(),
             "wall_s": round(time.perf_counter() - t0, 1),
             "folder": str(root) if args.keep else None}
    out = {**info, "baseline": base, "hokkaido": hok}
    if "stages" in base and "stages" in hok:
        out["per_unit"] = {"demo": per_unit(base), "hokkaido": per_unit(hok)}
        out["end_to_end"] = {"demo": end_to_end(base), "hokkaido": end_to_end(hok)}
        out["ratios"] = ratios(hok, base)
        e2e = out["end_to_end"]
        units = [(x["scenes"] * x["grid_mpx"]) for x in (hok, base)]
        out["ratio"] = round((e2e["hokkaido"]["wall_s"] / units[0])
                             / (e2e["demo"]["wall_s"] / units[1]), 3)
        out["ratio_meaning"] = ("end-to-end wall seconds per scene-megapixel, Hokkaido / demo "
                                "(1.0: linear in scenes x pixels)")
    print(json.dumps(out, indent=2, default=float))


def _total_memory() -> int:
    import psutil

    return psutil.virtual_memory().total


if __name__ == "__main__":
    main()
