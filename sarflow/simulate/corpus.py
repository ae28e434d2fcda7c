"""A corpus of varied synthetic events for (pre)training: ``simulate_corpus(n, outdir)``.

Event k draws its settings from a generator keyed by (seed, k), on top of a preset
(default ``hard``): terrain relief and height, landslide cover, sizes and size
distribution, the scar's backscatter and incidence dependence (or the constant change),
date-to-date variability, scene counts, which passes and at what incidence, where on Earth
and when.  The same (n, seed, preset, size) gives the same bytes; an event already written
by the same corpus is kept, so an interrupted corpus resumes.  ``both_passes`` gives every
event ascending and descending scenes (the pass draw is still made, so every other drawn
setting is unchanged): the stacker's fused change (G1) needs both, and about 4 events in 10
of a drawn corpus have one pass only.

OUTDIR/
  corpus.json            seed, preset, size and per event its folder and drawn settings
  event_000/ ...         one synthetic event each (see ``simulate_event``)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import InputError
from ..grid import atomic_path
from .event import simulate_event
from .settings import SimulationSettings

Progress = Callable[[str, int, int], None]


def corpus_settings(index: int, seed: int = 0, preset: str = "hard",
                    size: tuple[int, int] = (384, 384),
                    both_passes: bool = False) -> SimulationSettings:
    """The settings of event ``index`` of the corpus ``seed`` (``both_passes``: ascending
    and descending whatever the draw)."""
    rng = np.random.default_rng([seed, 900, index])
    base = SimulationSettings.preset(preset)
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    passes = [("ASCENDING", "DESCENDING"), ("ASCENDING",), ("DESCENDING",)][
        int(rng.choice(3, p=[0.6, 0.2, 0.2]))]
    if both_passes:
        passes = ("ASCENDING", "DESCENDING")
    day = dt.datetime(2017, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=int(rng.integers(0, 2900)))
    scale = u(0.5, 1.5)
    return SimulationSettings.preset(
        preset,
        name=f"corpus{index:03d}",
        size=tuple(size),
        scenes_per_window=int(rng.integers(2, 7)),
        center=(round(u(-179.0, 179.0), 4), round(u(-50.0, 55.0), 4)),
        event_time=day.replace(hour=int(rng.integers(0, 24))).strftime("%Y-%m-%dT%H:00:00Z"),
        passes=passes,
        incidence_deg={"ASCENDING": round(u(31.0, 45.0), 2), "DESCENDING": round(u(31.0, 45.0), 2)},
        median_slope_deg=round(u(8.0, 28.0), 2),
        base_height_m=round(u(20.0, 1500.0), 1),
        landslide_fraction=round(u(0.01, 0.08), 4),
        landslide_area_m2=(round(u(200.0, 1000.0)), round(u(2e4, 2e5))),
        landslide_exponent=round(u(1.8, 2.6), 3),
        change_db={"VV": round(u(-5.0, -1.0), 2), "VH": round(u(-4.0, -0.5), 2)},
        change_jitter_db=round(u(0.3, 1.2), 2),
        scar_gamma0_db={"VV": round(u(-10.0, -6.5), 2), "VH": round(u(-18.5, -15.0), 2)},
        scar_cos_exponent=round(u(1.5, 3.0), 2),
        date_sigma_db={k: round(v * scale, 3) for k, v in base.date_sigma_db.items()},
        moisture_field_db=round(u(0.2, 0.8), 2),
        wet_post_dates=int(rng.integers(0, 2)) if base.wet_post_dates else 0,
    )


def simulate_corpus(n: int, outdir: str | Path, seed: int = 0, preset: str = "hard",
                    size: tuple[int, int] = (384, 384), progress: Optional[Progress] = None,
                    workers: Optional[int] = None, overwrite: bool = False,
                    both_passes: bool = False) -> Path:
    """Write ``n`` varied events into ``outdir``; return the path of ``corpus.json``
    (``both_passes``: every event has ascending and descending scenes)."""
    if n < 1:
        raise InputError("a corpus needs at least one event")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda what, done, total: None)
    events = []
    for k in range(n):
        s = corpus_settings(k, seed, preset, size, both_passes)
        events.append(corpus_event(out, k, s, seed * 1000 + k, workers, overwrite))
        report("events", k + 1, n)
    doc = {"seed": seed, "preset": preset, "size": list(size), "both_passes": both_passes,
           "events": events}
    target = out / "corpus.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    return target


def corpus_event(out: Path, k: int, s: SimulationSettings, seed: int,
                 workers: Optional[int] = None, overwrite: bool = False) -> dict:
    """Event ``k`` of the corpus in ``out``, simulated unless its folder already holds it
    (same settings and seed); returns its ``corpus.json`` entry."""
    folder = out / f"event_{k:03d}"
    if not overwrite and _same_event(folder, s, seed):
        path = folder / "event.yaml"
    else:
        path = simulate_event(folder, seed=seed, settings=s, workers=workers, overwrite=True)
    return {"folder": folder.name, "event": str(path.relative_to(out)), "seed": seed,
            "settings": s.to_dict()}


def _same_event(folder: Path, s: SimulationSettings, seed: int) -> bool:
    """Whether ``folder`` already holds this corpus's event (complete: event.yaml is the
    last file an event writes)."""
    done = folder / "event.yaml"
    info = folder / "truth" / "settings.json"
    if not (done.is_file() and info.is_file()):
        return False
    old = json.loads(info.read_text())
    return old.get("seed") == seed and old.get("settings") == json.loads(json.dumps(s.to_dict()))
