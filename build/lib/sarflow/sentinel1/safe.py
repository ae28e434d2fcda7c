"""A Sentinel-1 IW GRD product (``.SAFE`` folder or ``.zip``): :func:`open_product`.

Opening reads only ``manifest.safe`` and the file list; per-polarisation annotation,
calibration and noise XML are parsed on first use and cached.  Files the manifest lists
but the product lacks are reported in ``Product.missing``; only an operation that needs
one of them fails (with an :class:`~sarflow.errors.InputError` naming it).

What a minimal valid product needs (synthetic products included):
- ``manifest.safe``: platform familyName SENTINEL-1 and number, startTime, stopTime, and
  (for the catalog) pass, orbitNumber/relativeOrbitNumber type="start", productType,
  transmitterReceiverPolarisation, the IPF ``software`` version, gml:coordinates footprint;
- ``annotation/s1?-iw-grd-<pol>-*.xml``: adsHeader (missionId, polarisation, mode),
  imageInformation (productFirstLineUtcTime, numberOfLines, numberOfSamples,
  azimuthTimeInterval, rangePixelSpacing, slantRangeTime), orbitList, geolocationGrid,
  coordinateConversion; everything else there is optional;
- ``annotation/calibration/calibration-*.xml`` and ``noise-*.xml`` for LUTs,
  ``measurement/s1?-iw-grd-<pol>-*.tiff`` for pixels.  RFI annotation, previews, the
  quick-look and the support schemas are never read.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from functools import cached_property
from pathlib import Path

import numpy as np
from lxml import etree
from shapely.geometry import Polygon

from ..errors import CorruptInputError, InputError
from ..grid import Window
from . import luts
from .annotation import Noise, Swath, parse_annotation, parse_calibration, parse_noise, parse_xml
from .container import SafeContainer
from .orbit import Orbit, as_utc

log = logging.getLogger(__name__)

_POL_FILE = re.compile(r"^(?P<prefix>[a-z]+-)?s1[a-d]-(?P<swath>[a-z0-9]+)-(?P<type>[a-z]+)-"
                       r"(?P<pol>[hv]{2})-.*\.(xml|tiff?)$")
_MANIFEST_XPATH = "//*[local-name()=$name]"


def open_product(path: str | os.PathLike) -> "Product":
    """Open a Sentinel-1 GRD product from a ``.zip`` or an unpacked ``.SAFE`` folder."""
    return Product(path)


def _first(root: etree._Element, name: str, **attrs: str) -> str | None:
    for el in root.xpath(_MANIFEST_XPATH, name=name):
        if all(el.get(k) == v for k, v in attrs.items()):
            return (el.text or "").strip()
    return None


class Product:
    """Metadata, orbit, geometry, LUTs and lazy raster access of one GRD product."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._safe = SafeContainer(self.path)
        root = parse_xml(self._safe.read("manifest.safe"), f"{self.path}: manifest.safe")
        self._read_manifest(root)
        self._swaths: dict[str, Swath] = {}
        self._geometry: dict[str, object] = {}
        self._orbit: Orbit | None = None
        self.orbit_source = "annotation"
        self.notes: list[str] = []

    # -- manifest ------------------------------------------------------------------------------
    def _read_manifest(self, root: etree._Element) -> None:
        where = f"{self.path}: manifest.safe"
        family = _first(root, "familyName") or ""
        number = _first(root, "number") or ""
        if "SENTINEL-1" not in family.upper():
            raise InputError(f"{self.path}: not a Sentinel-1 product (platform {family or '?'})")
        self.mission = f"S1{number.upper()}"
        self.mode = (_first(root, "mode") or "").upper()
        self.product_type = (_first(root, "productType") or "").upper()
        self.product_class = _first(root, "productClass") or ""
        self.timeliness = _first(root, "productTimelinessCategory") or ""
        self.pass_direction = (_first(root, "pass") or "").upper()
        start, stop = _first(root, "startTime"), _first(root, "stopTime")
        if not start or not stop:
            raise CorruptInputError(f"{where}: start/stop time missing")
        self.start, self.stop = as_utc(start), as_utc(stop)
        self.absolute_orbit = int(_first(root, "orbitNumber", type="start") or -1)
        self.relative_orbit = int(_first(root, "relativeOrbitNumber", type="start") or -1)
        self.cycle = int(_first(root, "cycleNumber") or -1)
        self.slice_number = int(_first(root, "sliceNumber") or -1)
        self.manifest_polarisations = [p.text.strip().upper() for p in root.xpath(
            _MANIFEST_XPATH, name="transmitterReceiverPolarisation") if p.text]
        self.ipf_version = next((el.get("version") for el in root.xpath(
            _MANIFEST_XPATH, name="software") if el.get("name") == "Sentinel-1 IPF"), "") or ""
        procs = root.xpath(_MANIFEST_XPATH, name="processing")
        stop_attr = procs[0].get("stop") if procs else None
        self.processing_time = as_utc(stop_attr) if stop_attr else None
        coords = _first(root, "coordinates")
        self.footprint = _footprint(coords) if coords else None
        self.listed = sorted({el.get("href").lstrip("./").lstrip("/") for el in root.xpath(
            _MANIFEST_XPATH, name="fileLocation") if el.get("href")})
        if self.product_type and self.product_type != "GRD":
            raise InputError(f"{self.path}: a {self.product_type} product; sarflow reads "
                             f"Sentinel-1 GRD products only")

    # -- identity ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """Product name without ``.SAFE`` / ``.zip``."""
        name = self._safe.safe_name
        return name[:-5] if name.upper().endswith(".SAFE") else name

    @property
    def ipf(self) -> float:
        """IPF version as a number (``'003.40'`` -> 3.4); 0 when unknown."""
        try:
            return float(self.ipf_version)
        except ValueError:
            return 0.0

    @property
    def missing(self) -> list[str]:
        """Files the manifest lists that the product does not contain."""
        return [f for f in self.listed if not self._safe.exists(f)]

    @cached_property
    def _files_by_pol(self) -> dict[str, dict[str, str]]:
        """pol -> {'annotation'|'calibration'|'noise'|'measurement': relative path}."""
        out: dict[str, dict[str, str]] = {}
        for rel in self._safe.files():
            parts = rel.split("/")
            m = _POL_FILE.match(parts[-1])
            if not m:
                continue
            pol = m.group("pol").upper()
            if parts[0] == "measurement":
                kind = "measurement"
            elif parts[0] == "annotation" and len(parts) == 2 and not m.group("prefix"):
                kind = "annotation"
            elif parts[:2] == ["annotation", "calibration"]:
                kind = {"calibration-": "calibration", "noise-": "noise"}.get(m.group("prefix") or "", "")
            else:
                kind = ""
            if kind:
                out.setdefault(pol, {})[kind] = rel
        return out

    @property
    def polarisations(self) -> list[str]:
        """Polarisations whose annotation is present, in the manifest's order."""
        have = [p for p, f in self._files_by_pol.items() if "annotation" in f]
        order = {p: i for i, p in enumerate(self.manifest_polarisations)}
        return sorted(have, key=lambda p: (order.get(p, 99), p))

    def _pol(self, pol: str | None) -> str:
        pols = self.polarisations
        if not pols:
            raise InputError(f"{self.path}: no annotation files in the product")
        if pol is None:
            return pols[0]
        if pol.upper() not in pols:
            raise InputError(f"{self.id}: polarisation {pol} not available (has {', '.join(pols)})")
        return pol.upper()

    # -- per-polarisation annotation -----------------------------------------------------------
    def swath(self, pol: str | None = None) -> Swath:
        """The annotation of ``pol`` (default: the first polarisation), with calibration and
        noise vectors when their files are present."""
        pol = self._pol(pol)
        if pol not in self._swaths:
            files = self._files_by_pol[pol]
            rel = files["annotation"]
            sw = parse_annotation(self._safe.read(rel), f"{self.id}: {rel}")
            if "calibration" in files:
                sw.calibration, sw.absolute_calibration_constant = parse_calibration(
                    self._safe.read(files["calibration"]), f"{self.id}: {files['calibration']}")
                sw.calibration_file = files["calibration"]
            if "noise" in files:
                sw.noise = parse_noise(self._safe.read(files["noise"]), f"{self.id}: {files['noise']}")
                sw.noise_file = files["noise"]
            self._swaths[pol] = sw
        return self._swaths[pol]

    @property
    def noise_format(self) -> str:
        """``'new'`` (noiseRange + noiseAzimuth, IPF >= 2.9) or ``'old'`` (noiseVector)."""
        for pol in self.polarisations:
            noise = self.swath(pol).noise
            if noise is not None:
                return noise.format
        return "new" if self.ipf >= 2.9 else "old"

    @property
    def shape(self) -> tuple[int, int]:
        """Image size (lines, pixels)."""
        sw = self.swath()
        return sw.lines, sw.pixels

    # -- orbit -----------------------------------------------------------------------------------
    @property
    def orbit(self) -> Orbit:
        """The orbit in use: the annotation's, or an EOF file's after :meth:`with_orbit`."""
        return self._orbit if self._orbit is not None else self.swath().orbit

    def with_orbit(self, eof: str | os.PathLike) -> "Product":
        """A copy of this product using the EOF file (or the best one in a folder) that covers
        it, precise before restituted; the annotation orbit stays, with a note, when none does."""
        from .eof import find_eof

        orbit, note = find_eof(eof, self.mission, self.start, self.stop)
        new = copy.copy(self)
        new._geometry = {}
        new.notes = list(self.notes)
        if orbit is None:
            new.notes.append(note)
            log.warning("%s: %s", self.id, note)
            return new
        new._orbit = orbit
        new.orbit_source = note
        return new

    # -- geometry --------------------------------------------------------------------------------
    def geometry(self, pol: str | None = None):
        """The range-Doppler geometry (:class:`~sarflow.sentinel1.radar.GrdGeometry`) of ``pol``."""
        from .radar import GrdGeometry

        pol = self._pol(pol)
        if pol not in self._geometry:
            self._geometry[pol] = GrdGeometry(self.swath(pol), self.orbit)
        return self._geometry[pol]

    def image_coordinates(self, lat: np.ndarray, lon: np.ndarray, height: np.ndarray,
                          pol: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Image (line, pixel) of WGS84 points (degrees, ellipsoidal height in m)."""
        return self.geometry(pol).image_coordinates(lat, lon, height)

    def ground_coordinates(self, line: np.ndarray, pixel: np.ndarray, height: np.ndarray,
                           pol: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 (lat, lon) of image positions at ellipsoidal height (m)."""
        return self.geometry(pol).ground_coordinates(line, pixel, height)

    # -- look-up tables and raster -----------------------------------------------------------------
    def _window(self, window: Window | None, pol: str) -> Window:
        sw = self.swath(pol)
        return window if window is not None else Window(0, 0, sw.lines, sw.pixels)

    def calibration_lut(self, pol: str | None, kind: str = "sigma0",
                        window: Window | None = None) -> np.ndarray:
        """Calibration LUT (sigma0, beta0, gamma0, dn) over ``window`` (float32);
        calibrated intensity = DN^2 / LUT^2."""
        pol = self._pol(pol)
        if kind not in ("sigma0", "beta0", "gamma0", "dn"):
            raise InputError(f"calibration kind {kind!r}: use sigma0, beta0, gamma0 or dn")
        sw = self.swath(pol)
        if sw.calibration is None:
            raise InputError(f"{self.id}: calibration annotation for {pol} is missing")
        return luts.calibration_lut(sw.calibration, kind, self._window(window, pol))

    def noise_lut(self, pol: str | None, window: Window | None = None) -> np.ndarray:
        """Thermal noise power over ``window`` (float32, DN^2 units): range x azimuth for the
        new format, the range vectors alone for the old."""
        pol = self._pol(pol)
        noise: Noise | None = self.swath(pol).noise
        if noise is None:
            raise InputError(f"{self.id}: noise annotation for {pol} is missing")
        return luts.noise_lut(noise, self._window(window, pol))

    def measurement_path(self, pol: str | None = None) -> str:
        """GDAL path of the measurement TIFF of ``pol`` (InputError when it is missing)."""
        pol = self._pol(pol)
        rel = self._files_by_pol.get(pol, {}).get("measurement")
        if rel is None:
            listed = [f for f in self.listed if f.startswith("measurement/") and f"-{pol.lower()}-" in f]
            what = listed[0] if listed else f"measurement file for {pol}"
            raise InputError(f"{self.id}: {what} is missing from the product; download the "
                             f"complete product to read its pixels")
        return self._safe.gdal_path(rel)

    def read_dn(self, pol: str | None = None, window: Window | None = None) -> np.ndarray:
        """Digital numbers (uint16) of ``window`` of the measurement raster, read lazily."""
        from osgeo import gdal

        pol = self._pol(pol)
        win = self._window(window, pol)
        path = self.measurement_path(pol)
        gdal.UseExceptions()
        try:
            ds = gdal.Open(path)
        except RuntimeError as exc:
            raise CorruptInputError(f"{self.id}: cannot open the {pol} measurement ({exc}); "
                                    f"the download may be truncated") from None
        if (win.row < 0 or win.col < 0 or win.row + win.height > ds.RasterYSize
                or win.col + win.width > ds.RasterXSize):
            raise InputError(f"{self.id}: window {win} lies outside the {pol} image "
                             f"({ds.RasterYSize} x {ds.RasterXSize})")
        try:
            arr = ds.GetRasterBand(1).ReadAsArray(win.col, win.row, win.width, win.height)
        except RuntimeError as exc:
            raise CorruptInputError(f"{self.id}: cannot read the {pol} measurement ({exc})") from None
        return arr.astype(np.uint16, copy=False)

    def calibrate(self, pol: str | None = None, window: Window | None = None,
                  kind: str = "sigma0", remove_noise: bool = True) -> np.ndarray:
        """Calibrated intensity (linear, float32) of a window: (DN^2 - noise) / LUT^2,
        negative values after noise removal set to 0."""
        pol = self._pol(pol)
        win = self._window(window, pol)
        dn = self.read_dn(pol, win).astype(np.float32)
        power = dn * dn
        if remove_noise:
            power = np.maximum(power - self.noise_lut(pol, win), 0.0)
        lut = self.calibration_lut(pol, kind, win)
        return (power / (lut * lut)).astype(np.float32)

    # -- summary -----------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The product's metadata as plain JSON-able values (what ``sarflow info`` shows)."""
        sw = self.swath() if self.polarisations else None
        out = {
            "id": self.id, "path": str(self.path), "mission": self.mission, "mode": self.mode,
            "product_type": self.product_type, "start": self.start.isoformat(),
            "processing_time": self.processing_time.isoformat() if self.processing_time else None,
            "stop": self.stop.isoformat(), "pass_direction": self.pass_direction,
            "absolute_orbit": self.absolute_orbit, "relative_orbit": self.relative_orbit,
            "polarisations": self.polarisations, "ipf_version": self.ipf_version,
            "noise_format": self.noise_format, "orbit_source": self.orbit_source,
            "footprint": [list(c) for c in self.footprint.exterior.coords] if self.footprint else None,
            "missing": self.missing, "notes": self.notes,
        }
        if sw is not None:
            out.update({
                "lines": sw.lines, "pixels": sw.pixels,
                "azimuth_time_interval": sw.azimuth_time_interval,
                "range_pixel_spacing": sw.range_pixel_spacing,
                "first_line_time": sw.first_line_time.isoformat(),
                "slant_range_time": sw.slant_range_time,
                "incidence_angle_mid_swath": sw.incidence_angle_mid_swath,
                "orbit_state_vectors": int(self.orbit.times.size),
            })
        return out

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.pass_direction} rel.orbit {self.relative_orbit}>"


def _footprint(coords: str) -> Polygon | None:
    """The manifest's ``lat,lon lat,lon ...`` footprint as a lon/lat polygon."""
    pts = []
    for pair in coords.split():
        lat, lon = (float(v) for v in pair.split(","))
        pts.append((lon, lat))
    return Polygon(pts) if len(pts) >= 3 else None
