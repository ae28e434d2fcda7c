"""Synthetic landslide events: Sentinel-1 GRD time series with known truth.

    simulate_event(outdir, seed=0, size=(H, W), scenes_per_window=N) -> Path of event.yaml
    SimulationSettings: every configurable amount (landslide change in VV/VH, looks, ...)

Terrain (``terrain``), landslides (``inventory``), orbits (``orbit``), radar geometry
(``geometry``, on ``sarflow.sentinel1``), backscatter and speckle (``backscatter``) and the
SAFE writer (``safe_writer``) are separate modules; ``event`` puts them together.
"""

from __future__ import annotations

from .event import acquisition_times, simulate_event
from .settings import LANDCOVER_CLASSES, SimulationSettings

__all__ = ["LANDCOVER_CLASSES", "SimulationSettings", "acquisition_times", "simulate_event"]
