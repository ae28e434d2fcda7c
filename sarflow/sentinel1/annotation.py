"""Parsing of a GRD product's per-polarisation annotation, calibration and noise XML.

Times are kept as numpy ``datetime64[ns]`` (UTC); geometry converts them to seconds since
an orbit's epoch when it needs them.
"""

from __future__ import annotations

import datetime as _dt
import operator
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from lxml import etree

from ..errors import CorruptInputError
from .orbit import Orbit, as_utc


def parse_xml(data: bytes, what: str) -> etree._Element:
    """The root element of an XML document; a CorruptInputError names ``what`` otherwise."""
    try:
        return etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        raise CorruptInputError(f"{what}: broken XML ({exc}); fetch the product again") from None


def _text(el: etree._Element, path: str, what: str) -> str:
    found = el.find(path)
    if found is None or found.text is None:
        raise CorruptInputError(f"{what}: element {path} missing")
    return found.text.strip()


def _float(el: etree._Element, path: str, what: str) -> float:
    return float(_text(el, path, what))


def _opt_float(el: etree._Element, path: str) -> float:
    """An optional number (NaN when absent): minimal (e.g. synthetic) products may omit it."""
    text = el.findtext(path)
    return float(text) if text and text.strip() else float("nan")


def _floats(text: str | None) -> np.ndarray:
    return np.array(text.split(), dtype=np.float64) if text and text.strip() else np.zeros(0)


class LazyFloats(Sequence):
    """Number lists kept as their element text and parsed on first access: calibration and
    noise vectors hold hundreds of thousands of numbers, of which one image window needs
    a few vectors of one kind."""

    def __init__(self, texts: list[str | None], what: str) -> None:
        self._texts = texts
        self._parsed: dict[int, np.ndarray] = {}
        self._what = what

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        i = i + len(self) if i < 0 else i
        values = self._parsed.get(i)
        if values is None:
            try:
                values = self._parsed[i] = _floats(self._texts[i])
            except ValueError:
                raise CorruptInputError(f"{self._what}: vector {i} holds something other "
                                        "than numbers; fetch the product again") from None
        return values


def _times(values: list[str]) -> np.ndarray:
    return np.array([np.datetime64(v.strip().rstrip("Z"), "ns") for v in values])


@dataclass(frozen=True)
class GeolocationGrid:
    """ESA's tie-point grid: image (line, pixel) and its time, slant range time and position."""

    line: np.ndarray
    pixel: np.ndarray
    azimuth_time: np.ndarray  # datetime64[ns]
    slant_range_time: np.ndarray  # two-way, s
    latitude: np.ndarray
    longitude: np.ndarray
    height: np.ndarray  # above the WGS84 ellipsoid, m
    incidence_angle: np.ndarray
    elevation_angle: np.ndarray


@dataclass(frozen=True)
class Conversions:
    """Slant-range <-> ground-range polynomials at their azimuth times (one row per time)."""

    azimuth_time: np.ndarray  # datetime64[ns]
    slant_range_time: np.ndarray
    sr0: np.ndarray
    srgr: np.ndarray  # (n, k): ground range = sum srgr[i] * (R - sr0) ** i
    gr0: np.ndarray
    grsr: np.ndarray  # (n, k): slant range = sum grsr[i] * (G - gr0) ** i


@dataclass(frozen=True)
class VectorList:
    """LUT vectors along range at several lines (calibration, noise range, old noise)."""

    line: np.ndarray  # (n,)
    azimuth_time: np.ndarray  # (n,) datetime64[ns]
    pixel: Sequence[np.ndarray]  # n arrays of range sample positions
    values: dict[str, Sequence[np.ndarray]]  # name -> n arrays matching pixel


@dataclass(frozen=True)
class NoiseAzimuthBlock:
    """One block of the new-format azimuth noise profile: lines x a range sample interval."""

    swath: str
    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    line: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Noise:
    """Thermal noise vectors: ``range`` (new format's noiseRange or old noiseVector) and,
    for the new format, the azimuth blocks."""

    format: str  # "new" or "old"
    range: VectorList
    azimuth: list[NoiseAzimuthBlock] = field(default_factory=list)


@dataclass
class Swath:
    """Per-polarisation annotation of a GRD product (IW GRD has a single merged swath)."""

    polarisation: str
    mission: str
    mode: str
    lines: int
    pixels: int
    azimuth_time_interval: float
    range_pixel_spacing: float
    azimuth_pixel_spacing: float
    first_line_time: _dt.datetime
    last_line_time: _dt.datetime
    slant_range_time: float  # two-way slant range time of the first pixel, s
    radar_frequency: float
    range_sampling_rate: float
    pass_direction: str
    incidence_angle_mid_swath: float
    orbit: Orbit
    geolocation_grid: GeolocationGrid
    conversions: Conversions
    annotation_file: str
    calibration: VectorList | None = None
    absolute_calibration_constant: float = 1.0
    noise: Noise | None = None
    calibration_file: str | None = None
    noise_file: str | None = None

    @property
    def wavelength(self) -> float:
        """Radar wavelength (m)."""
        return 299792458.0 / self.radar_frequency  # NaN when the annotation omits it


def parse_annotation(data: bytes, what: str) -> Swath:
    """A :class:`Swath` from the bytes of an ``annotation/s1?-iw-grd-*.xml`` file."""
    root = parse_xml(data, what)
    head = root.find("adsHeader")
    info = root.find("imageAnnotation/imageInformation")
    prod = root.find("generalAnnotation/productInformation")
    if head is None or info is None or prod is None:
        raise CorruptInputError(f"{what}: not a Sentinel-1 product annotation")
    first = as_utc(_text(info, "productFirstLineUtcTime", what))
    lines = int(_text(info, "numberOfLines", what))
    ati = _float(info, "azimuthTimeInterval", what)
    last_text = info.findtext("productLastLineUtcTime")
    last = (as_utc(last_text) if last_text and last_text.strip()
            else first + _dt.timedelta(seconds=(lines - 1) * ati))
    return Swath(
        polarisation=_text(head, "polarisation", what).upper(),
        mission=_text(head, "missionId", what).upper(),
        mode=_text(head, "mode", what).upper(),
        lines=lines,
        pixels=int(_text(info, "numberOfSamples", what)),
        azimuth_time_interval=ati,
        range_pixel_spacing=_float(info, "rangePixelSpacing", what),
        azimuth_pixel_spacing=_opt_float(info, "azimuthPixelSpacing"),
        first_line_time=first,
        last_line_time=last,
        slant_range_time=_float(info, "slantRangeTime", what),
        radar_frequency=_opt_float(prod, "radarFrequency"),
        range_sampling_rate=_opt_float(prod, "rangeSamplingRate"),
        pass_direction=(prod.findtext("pass") or "").strip().upper(),
        incidence_angle_mid_swath=_opt_float(info, "incidenceAngleMidSwath"),
        orbit=_orbit(root, what),
        geolocation_grid=_grid(root, what),
        conversions=_conversions(root, what),
        annotation_file=what,
    )


def _orbit(root: etree._Element, what: str) -> Orbit:
    vectors = root.findall("generalAnnotation/orbitList/orbit")
    if len(vectors) < 2:
        raise CorruptInputError(f"{what}: fewer than 2 orbit state vectors")
    times = [_text(v, "time", what) for v in vectors]
    pos = np.array([[_float(v, f"position/{c}", what) for c in "xyz"] for v in vectors])
    vel = np.array([[_float(v, f"velocity/{c}", what) for c in "xyz"] for v in vectors])
    return Orbit.from_datetimes(times, pos, vel, source="annotation")


def _grid(root: etree._Element, what: str) -> GeolocationGrid:
    pts = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    if not pts:
        raise CorruptInputError(f"{what}: empty geolocation grid")

    def col(tag: str) -> np.ndarray:
        texts = root.xpath(f"geolocationGrid/geolocationGridPointList/"
                           f"geolocationGridPoint/{tag}/text()")  # one C call for all points
        if len(texts) == len(pts):
            return np.array(texts, dtype=np.float64)
        return np.array([float(p.findtext(tag, "nan")) for p in pts])  # some lack the tag

    return GeolocationGrid(
        line=col("line"), pixel=col("pixel"),
        azimuth_time=_times([p.findtext("azimuthTime") for p in pts]),
        slant_range_time=col("slantRangeTime"), latitude=col("latitude"),
        longitude=col("longitude"), height=col("height"),
        incidence_angle=col("incidenceAngle"), elevation_angle=col("elevationAngle"))


def _conversions(root: etree._Element, what: str) -> Conversions:
    items = root.findall("coordinateConversion/coordinateConversionList/coordinateConversion")
    if not items:
        raise CorruptInputError(f"{what}: no slant/ground range conversion polynomials")
    srgr = [_floats(c.findtext("srgrCoefficients")) for c in items]
    grsr = [_floats(c.findtext("grsrCoefficients")) for c in items]
    k = max(max(len(a) for a in srgr), max(len(a) for a in grsr))
    pad = lambda rows: np.array([np.pad(r, (0, k - len(r))) for r in rows])  # noqa: E731
    return Conversions(
        azimuth_time=_times([_text(c, "azimuthTime", what) for c in items]),
        slant_range_time=np.array([_float(c, "slantRangeTime", what) for c in items]),
        sr0=np.array([_float(c, "sr0", what) for c in items]), srgr=pad(srgr),
        gr0=np.array([_float(c, "gr0", what) for c in items]), grsr=pad(grsr))


def _vector_list(vectors: list, names: dict[str, str], what: str) -> VectorList:
    """Vectors with their number lists parsed when first used (:class:`LazyFloats`)."""
    values = {key: LazyFloats([v.findtext(tag) for v in vectors], what)
              for key, tag in names.items()}
    return VectorList(
        line=np.array([float(_text(v, "line", what)) for v in vectors]),
        azimuth_time=_times([_text(v, "azimuthTime", what) for v in vectors]),
        pixel=LazyFloats([v.findtext("pixel") for v in vectors], what), values=values)


def parse_calibration(data: bytes, what: str) -> tuple[VectorList, float]:
    """Calibration vectors (sigma0, beta0, gamma0, dn) and the absolute calibration constant."""
    root = parse_xml(data, what)
    vectors = root.findall("calibrationVectorList/calibrationVector")
    if not vectors:
        raise CorruptInputError(f"{what}: no calibration vectors")
    names = {"sigma0": "sigmaNought", "beta0": "betaNought", "gamma0": "gamma", "dn": "dn"}
    const = float(root.findtext("calibrationInformation/absoluteCalibrationConstant", "1"))
    return _vector_list(vectors, names, what), const


def parse_noise(data: bytes, what: str) -> Noise:
    """Noise vectors in the new (range + azimuth) or the old (range only) format."""
    root = parse_xml(data, what)
    new = root.findall("noiseRangeVectorList/noiseRangeVector")
    if new:
        blocks = [NoiseAzimuthBlock(
            swath=(b.findtext("swath") or "").strip(),
            first_line=int(_text(b, "firstAzimuthLine", what)),
            last_line=int(_text(b, "lastAzimuthLine", what)),
            first_sample=int(_text(b, "firstRangeSample", what)),
            last_sample=int(_text(b, "lastRangeSample", what)),
            line=_floats(b.findtext("line")), values=_floats(b.findtext("noiseAzimuthLut")))
            for b in root.findall("noiseAzimuthVectorList/noiseAzimuthVector")]
        return Noise("new", _vector_list(new, {"noise": "noiseRangeLut"}, what), blocks)
    old = root.findall("noiseVectorList/noiseVector")
    if old:
        return Noise("old", _vector_list(old, {"noise": "noiseLut"}, what))
    raise CorruptInputError(f"{what}: no noise vectors in either format")
