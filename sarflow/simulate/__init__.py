"""Synthetic landslide events: Sentinel-1 GRD time series with known truth.

    simulate_event(outdir, seed=0, size=(H, W), scenes_per_window=N) -> Path of event.yaml
    SimulationSettings: every configurable amount (landslide change in VV/VH, looks, ...)
    SimulationSettings.preset("hard"): every realism model on (PRESETS)

Realism models, each off in the default event and documented with its source where it
lives: speckle at the resolution cell (``backscatter``), repeat passes in the orbital tube
(``orbit``), three sub-swaths with per-swath noise vectors and the real NESZ pattern
(``swaths``), landslide change from land cover and local incidence before and after, and
wet post-event dates (``event``, ``inventory``).

Terrain (``terrain``), landslides (``inventory``), orbits (``orbit``), radar geometry
(``geometry``, on ``sarflow.sentinel1``), backscatter and speckle (``backscatter``) and the
SAFE writer (``safe_writer``) are separate modules; ``event`` puts them together.
"""

from __future__ import annotations

from .event import acquisition_times, simulate_event
from .settings import LANDCOVER_CLASSES, PRESETS, SimulationSettings

__all__ = ["LANDCOVER_CLASSES", "PRESETS", "SimulationSettings", "acquisition_times",
           "simulate_event"]
