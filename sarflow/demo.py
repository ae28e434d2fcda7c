"""The demo: simulate a small event and run it end to end on the native engine.

It is the main job on its embedded default (``make demo``): it needs no downloads, no SNAP
and no GPU, and finishes in minutes on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import EventConfig, load_config
from .pipeline import RunOptions, run_event

DEMO_MODEL = {"architecture": "dppa_unet", "group": "G1", "filters": 16, "batch_size": 8,
              "learning_rate": 0.001, "epochs": 40, "patience": 40, "seed": 0}
"""CPU-sized training settings for the demo (the paper's grid is far too big for it).  All
40 epochs run (patience 40) and the best test-F1 epoch is kept: the demo's test split is 7
patches, and with patience 10 a 0.007 swing of its F1 decided whether training stopped at
epoch 36 or ran on (float32 and bfloat16 runs, equal in loss to 3 decimals, did both)."""


@dataclass(frozen=True)
class DemoSettings:
    """Size of the simulated demo event."""

    seed: int = 0
    size: tuple[int, int] = (768, 1152)
    scenes_per_window: int = 4


def prepare_demo(outdir: Path, settings: DemoSettings = DemoSettings()) -> Path:
    """Simulate the demo event (once) and write its CPU-sized model settings."""
    from .simulate import simulate_event

    event_yaml = outdir / "event.yaml"
    if not event_yaml.exists():
        event_yaml = Path(simulate_event(outdir, seed=settings.seed, size=settings.size,
                                         scenes_per_window=settings.scenes_per_window))
    data = yaml.safe_load(event_yaml.read_text())
    model = {**DEMO_MODEL, "seed": settings.seed, **(data.get("model") or {})}
    if data.get("model") != model or data.get("processing", {}).get("engine") != "native":
        data["model"] = model
        data.setdefault("processing", {})["engine"] = "native"
        event_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return event_yaml


def run_demo(outdir: Path, settings: DemoSettings = DemoSettings(),
             options: RunOptions | None = None) -> EventConfig:
    """Simulate (if needed) and run every stage; returns the loaded config."""
    event_yaml = prepare_demo(outdir, settings)
    cfg = load_config(event_yaml)
    run_event(cfg, options=options or RunOptions(engine="native"))
    return cfg
