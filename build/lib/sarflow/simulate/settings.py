"""The amounts a synthetic event is made of, in one dataclass recorded beside the truth.

Every number a later stage may want to check against (backscatter per land cover, the
landslide change in VV and VH, speckle looks, noise level, dates) lives here, so that
``truth/settings.json`` says exactly what was simulated.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

LANDCOVER_CLASSES = ("forest", "grassland", "bare")
"""Land-cover classes, in the order of their codes 0, 1, 2."""


def _gamma0() -> dict[str, dict[str, float]]:
    # gamma0 (= sigma0 / cos(local incidence)) in dB: C-band forest, meadows/fields, rock/soil
    return {"forest": {"VV": -6.5, "VH": -12.5},
            "grassland": {"VV": -9.0, "VH": -16.0},
            "bare": {"VV": -11.0, "VH": -19.0}}


@dataclass
class SimulationSettings:
    """Configurable amounts of a synthetic event (defaults: the issue's default event)."""

    size: tuple[int, int] = (1500, 1500)
    """Event grid (rows, cols) in lattice pixels (about 10 m x 7.3 m at the default latitude)."""
    scenes_per_window: int = 8
    """Acquisitions per pass in each of the pre- and post-event windows."""
    center: tuple[float, float] = (142.0, 42.75)
    """(lon, lat) of the event area's centre, degrees."""
    event_time: str = "2022-08-15T03:20:00Z"
    name: str = "synthetic"
    passes: tuple[str, ...] = ("ASCENDING", "DESCENDING")
    polarisations: tuple[str, ...] = ("VV", "VH")
    incidence_deg: dict[str, float] = field(
        default_factory=lambda: {"ASCENDING": 39.0, "DESCENDING": 36.5})
    """Incidence angle on the ellipsoid at the area's centre, per pass."""
    relative_orbit: dict[str, int] = field(
        default_factory=lambda: {"ASCENDING": 46, "DESCENDING": 119})
    first_post_days: dict[str, float] = field(
        default_factory=lambda: {"ASCENDING": 2.0, "DESCENDING": 4.0})
    """Days from the event day to the first post-event acquisition, per pass."""
    repeat_days: int = 12
    dem_margin: int = 160
    """DEM pixels around the event grid on each side (sarflow.dem wants >= 0.01 degrees)."""
    median_slope_deg: float = 18.0
    """Median terrain slope (degrees): sets the relief."""
    base_height_m: float = 150.0
    landslide_fraction: float = 0.04
    """Target share of the event area covered by landslides."""
    landslide_area_m2: tuple[float, float] = (400.0, 150000.0)
    """Smallest and largest landslide area (m^2)."""
    landslide_exponent: float = 2.1
    """Exponent of the power-law tail of landslide areas (p(A) ~ A^-exponent)."""
    change_db: dict[str, float] = field(default_factory=lambda: {"VV": -3.5, "VH": -2.0})
    """Backscatter change of landslide scars after the event (post - pre), dB."""
    change_jitter_db: float = 0.5
    """Standard deviation of the per-landslide change around ``change_db`` (dB)."""
    gamma0_db: dict[str, dict[str, float]] = field(default_factory=_gamma0)
    date_sigma_db: dict[str, float] = field(
        default_factory=lambda: {"forest": 0.3, "grassland": 1.0, "bare": 0.5})
    """Date-to-date variation (soil moisture, vegetation) per land cover, dB (std)."""
    moisture_field_db: float = 0.4
    """Amplitude of a smooth per-date soil-moisture field over the whole image (dB, std)."""
    texture_db: float = 1.0
    """Static small-scale backscatter texture (dB, std)."""
    looks: float = 4.4
    """Equivalent number of looks of the speckle (GRDH: about 4.4)."""
    nesz_db: float = -24.0
    """Noise-equivalent sigma0 at the image's mid-range (dB)."""
    beta_nought: float = 473.9733
    """Calibration constant: DN^2 / beta_nought^2 = beta0 (as IPF 3.x products)."""

    def __post_init__(self) -> None:
        self.size = (int(self.size[0]), int(self.size[1]))
        self.center = (float(self.center[0]), float(self.center[1]))
        self.passes = tuple(p.upper() for p in self.passes)
        self.polarisations = tuple(p.upper() for p in self.polarisations)
        if min(self.size) < 32:
            raise ValueError(f"size {self.size} is too small; use at least 32 x 32 pixels")
        if self.scenes_per_window < 1:
            raise ValueError("scenes_per_window must be at least 1")
        for pass_dir in self.passes:
            if not 1 <= self.first_post_days[pass_dir] < self.repeat_days - 1:
                raise ValueError(f"first_post_days[{pass_dir}] must lie in [1, repeat_days - 1) "
                                 "so that no acquisition falls on the event day")

    @property
    def event_datetime(self) -> dt.datetime:
        """The event time as a UTC datetime."""
        return dt.datetime.fromisoformat(self.event_time.replace("Z", "+00:00"))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return dataclasses.asdict(self)
