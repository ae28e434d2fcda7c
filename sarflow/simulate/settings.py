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

    # --- realism (each off by default: the default event is the one tests and demo know) ---
    speckle: str = "pixel"
    """``pixel``: an independent gamma variate per pixel (``looks``); ``cell``: speckle formed
    at the resolution cell (``resolution_m``, correlated over about two pixels, ENL
    ``looks``), see ``backscatter``."""
    resolution_m: tuple[float, float] = (20.0, 22.0)
    """IW GRDH resolution, range x azimuth (m), for ``speckle: cell`` (ESA's product
    definition)."""
    orbit_tube_m: float = 0.0
    """Diameter of the Earth-fixed orbital tube repeat passes are drawn in (m); 0: every
    date repeats the pass's orbit exactly.  Sentinel-1: 50 m (rms) radius, see ``orbit``."""
    subswaths: str = "IW2"
    """``IW2``: the image is one sub-swath with a smooth NESZ; ``IW1-IW3``: a crop of a
    merged IW GRD with the sub-swath seams, per-swath noise vectors and the real NESZ
    pattern at their incidence angles, see ``swaths``."""
    nesz_offset_db: float = 0.0
    """Added to the real per-swath NESZ pattern (``subswaths: IW1-IW3``)."""
    noise_error_db: float = 0.0
    """Std (dB) of the per scene and sub-swath departure of the true noise power from the
    annotated noise vectors (``subswaths: IW1-IW3``): seams after noise removal."""
    change_model: str = "constant"
    """``constant``: every landslide changes by ``change_db`` (+ jitter); ``scar``: the scar's
    backscatter follows from the land cover lost and the local incidence angle before and
    after (the scar's new surface), see ``event`` and ``inventory``."""
    scar_gamma0_db: dict[str, float] = field(default_factory=lambda: {"VV": -8.0, "VH": -16.5})
    """gamma0 (dB) of a fresh scar (bare soil and debris) at ``scar_reference_deg`` local
    incidence (``change_model: scar``)."""
    scar_reference_deg: float = 39.0
    scar_cos_exponent: float = 2.0
    """gamma0 of the scar ~ cos(local incidence)^k (sigma0 ~ cos^(k+1)): rough-surface
    scattering, falling with incidence (``change_model: scar``)."""
    scar_depth: tuple[float, float] = (0.146, 1.332)
    """(alpha, gamma) of landslide volume = alpha * area^gamma (m^3, m^2): mean scar depth
    alpha * area^(gamma - 1) (Larsen et al. 2010, global fit)."""
    wet_post_dates: int = 0
    """The first this many post-event dates of each pass are wet (rain after the event)."""
    wet_db: dict[str, float] = field(
        default_factory=lambda: {"forest": 0.5, "grassland": 1.5, "bare": 2.0, "scar": 2.0})
    """Backscatter increase on a wet date per land cover (dB): soil moisture raises surface
    scattering more than volume scattering."""

    def __post_init__(self) -> None:
        self.size = (int(self.size[0]), int(self.size[1]))
        self.center = (float(self.center[0]), float(self.center[1]))
        self.passes = tuple(p.upper() for p in self.passes)
        self.polarisations = tuple(p.upper() for p in self.polarisations)
        if min(self.size) < 32:
            raise ValueError(f"size {self.size} is too small; use at least 32 x 32 pixels")
        if self.scenes_per_window < 1:
            raise ValueError("scenes_per_window must be at least 1")
        choices = {"speckle": ("pixel", "cell"), "subswaths": ("IW2", "IW1-IW3"),
                   "change_model": ("constant", "scar")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r}: use one of {', '.join(allowed)}")
        if self.orbit_tube_m < 0 or self.noise_error_db < 0 or self.wet_post_dates < 0:
            raise ValueError("orbit_tube_m, noise_error_db and wet_post_dates must be >= 0")
        self.resolution_m = (float(self.resolution_m[0]), float(self.resolution_m[1]))
        self.scar_depth = (float(self.scar_depth[0]), float(self.scar_depth[1]))
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

    @classmethod
    def preset(cls, preset: str = "default", /, **overrides: Any) -> "SimulationSettings":
        """The settings of a named preset (``PRESETS``), with ``overrides`` on top."""
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r}: use one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "hard": {"speckle": "cell", "orbit_tube_m": 100.0, "subswaths": "IW1-IW3",
             "noise_error_db": 0.3, "change_model": "scar", "wet_post_dates": 1},
}
"""Named settings: ``default`` (the event tests and the demo know) and ``hard`` (every
realism model on: resolution-cell speckle, orbit tube, three sub-swaths with imperfect noise
vectors, scar change from land cover and local incidence, a wet first post-event date)."""
