"""Already terrain-corrected backscatter products: recognise them and read their metadata.

Three kinds enter sarflow through the ``import`` engine:

* **OPERA RTC-S1** GeoTIFFs (one burst, one polarisation per file, gamma0 linear power,
  30 m UTM), recognised by ASF's file-name convention
  ``OPERA_L2_RTC-S1_T<track>-<burst>-<swath>_<start>Z_<production>Z_<mission>_30_v<ver>_<POL>.tif``
  (anything after the polarisation, such as ``_tv_cropped``, is kept in the product id).
  Its layover/shadow layer ``..._v<ver>_mask<suffix>.tif`` is read when it lies beside them
  (OPERA's coding: 0 clear, 1 shadow, 2 layover, 3 both, 255 invalid).
  The GeoTIFF tags (``ORBIT_PASS_DIRECTION``, ``ZERO_DOPPLER_START_TIME``, ``TRACK_NUMBER``,
  ``PLATFORM``, backscatter conventions) win over the name when present.
* **HyP3 RTC** zips (or their unzipped folders), named
  ``S1x_yy_YYYYMMDDTHHMMSS_ppo_RTCzz_u_defklm_ssss``: ``d`` is the radiometry (g gamma0,
  s sigma0), ``e`` the scale (p power, a amplitude, d dB); ``<name>_VV.tif`` and
  ``<name>_VH.tif`` inside, and ``<name>_ls_map.tif`` (layover 4, shadow 16 bits).
* **A generic folder** of calibrated, terrain-corrected GeoTIFFs in any CRS described by a
  sidecar ``sarflow_import.yaml`` (see :class:`Sidecar`): time, polarisation, scale and
  radiometric convention, optionally pass and relative orbit.  Files of one time and pass
  form one acquisition (several files of one polarisation are frames, mosaicked).

Where a product does not say its pass, it comes from the local solar time of the
acquisition at the product's centre: Sentinel-1's dawn-dusk orbit crosses the equator
going north near 18:00 and south near 06:00 local time, so a local time in [12:00, 24:00)
means ascending and [00:00, 12:00) descending.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Optional

from .archives import zip_names
from .errors import CorruptInputError, InputError
from .regrid import open_raster, raster_footprint

RADIOMETRIES = ("sigma0", "gamma0")
SCALES = ("power", "amplitude", "db")
SIDECAR_NAMES = ("sarflow_import.yaml", "sarflow_import.yml")
KINDS = ("OPERA_RTC", "HYP3_RTC", "RTC_GEOTIFF")
MASK_CODINGS = ("hyp3_ls_map", "opera_mask")
"""Layover/shadow codings read: HyP3's ls_map (bit 4 layover, bit 16 shadow; HyP3 GAMMA
product guide) and OPERA RTC-S1's mask layer (0 clear, 1 shadow, 2 layover, 3 both, 255
invalid; OPERA RTC-S1 product specification, the layer description in opera-adt/RTC)."""

OPERA_RE = re.compile(
    r"^(?P<stem>OPERA_L2_RTC-S1_T(?P<track>\d{3})-(?P<burst>\d{6})-(?P<swath>IW[1-3])_"
    r"(?P<start>\d{8}T\d{6})Z_(?P<production>\d{8}T\d{6})Z_(?P<mission>S1[A-D])_"
    r"(?P<spacing>\d+)_v(?P<version>[0-9.]+))_(?P<pol>VV|VH|HH|HV)(?P<suffix>[A-Za-z0-9_]*)"
    r"\.tiff?$")
"""OPERA RTC-S1 burst GeoTIFF name (ASF's convention for the L2 RTC-S1 products)."""

HYP3_RE = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>IW|EW|S[1-6])_(?P<start>\d{8}T\d{6})_"
    r"(?P<pol>[SD][HV])(?P<orbit>[PRO])_RTC(?P<spacing>\d+)_(?P<software>[A-Z])_"
    r"(?P<radiometry>[gs])(?P<scale>[pda])(?P<mask>[uw])(?P<filter>[nf])(?P<area>[ec])"
    r"(?P<matching>[dm])_(?P<id>[0-9A-Fa-f]{4})(?:\.zip)?$")
"""HyP3 RTC product name (HyP3 GAMMA product README: S1x_yy_aaaaaaaaTbbbbbb_ppo_RTCzz_u_defklm_ssss)."""

_HYP3_POLS = {"SV": ["VV"], "DV": ["VV", "VH"], "SH": ["HH"], "DH": ["HH", "HV"]}


@dataclass
class RtcProduct:
    """One acquisition of already terrain-corrected backscatter, however it was delivered."""

    path: Path
    """The path the catalog and the engine know it by (a GeoTIFF of it, or the HyP3 zip)."""
    product_id: str
    kind: str
    files: dict[str, list[str]]
    """Polarisation -> GDAL paths (``/vsizip/`` inside zips); several paths are frames."""
    start: dt.datetime
    pass_direction: str
    """ASCENDING or DESCENDING."""
    pass_source: str
    """``metadata`` (tags, sidecar) or ``solar time`` (the rule in the module docstring)."""
    radiometry: str
    scale: str
    mission: Optional[str] = None
    relative_orbit: Optional[int] = None
    burst: Optional[str] = None
    processed: Optional[dt.datetime] = None
    mask_files: list[str] = field(default_factory=list)
    """Layover/shadow rasters in the product's own coding (``mask_coding``)."""
    mask_coding: Optional[str] = None
    """How ``mask_files`` code layover and shadow: one of :data:`MASK_CODINGS`."""
    nodata: Optional[float] = None
    """Nodata value overriding the files' own (from the sidecar)."""
    footprint: Any = None
    """shapely Polygon (lon/lat) of the product's raster extent."""

    def __post_init__(self) -> None:
        """Refuse mask files without a known coding here, before any pixel is read."""
        if self.mask_files and self.mask_coding not in MASK_CODINGS:
            raise ValueError(f"{self.product_id}: mask files need mask_coding, one of "
                             f"{', '.join(MASK_CODINGS)} (got {self.mask_coding!r})")

    @property
    def polarisations(self) -> list[str]:
        return list(self.files)


# ------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------

def _gdal():
    from osgeo import gdal

    gdal.UseExceptions()
    return gdal


def _stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)


def _iso(value: Any, what: str) -> dt.datetime:
    """A UTC datetime from an ISO 8601 string or a YAML datetime."""
    if isinstance(value, dt.datetime):
        t = value
    else:
        try:
            t = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{what}: time {value!r} is not ISO 8601 (e.g. 2024-01-23T08:47:48Z)") from None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def pass_from_solar_time(time: dt.datetime, lon: float) -> str:
    """ASCENDING when the local mean solar time at ``lon`` is in [12, 24) h, else DESCENDING.

    Sentinel-1 is in a dawn-dusk orbit: ascending passes near 18:00, descending near 06:00.
    """
    utc = time.astimezone(dt.timezone.utc)
    hours = utc.hour + utc.minute / 60 + utc.second / 3600 + lon / 15.0
    return "ASCENDING" if hours % 24 >= 12 else "DESCENDING"


def _pass_text(value: Any) -> Optional[str]:
    text = str(value or "").strip().upper()
    if text.startswith("ASC") or text == "A":
        return "ASCENDING"
    if text.startswith("DESC") or text == "D":
        return "DESCENDING"
    return None


def to_linear_power(data: Any, scale: str) -> Any:
    """Backscatter in ``scale`` (power, amplitude or dB) as linear power, float32."""
    import numpy as np

    x = np.asarray(data, dtype=np.float64)
    if scale == "power":
        out = x
    elif scale == "amplitude":
        out = x * x
    elif scale == "db":
        out = np.power(10.0, x / 10.0)
    else:
        raise InputError(f"scale {scale!r}: use one of {', '.join(SCALES)}")
    return out.astype(np.float32)


def _tags(path: str) -> dict[str, str]:
    ds = open_raster(path, need_crs=False)
    return {k.upper(): v for k, v in (ds.GetMetadata() or {}).items()}


# ------------------------------------------------------------------------------------
# OPERA RTC-S1
# ------------------------------------------------------------------------------------

def _opera_conventions(tags: dict[str, str]) -> tuple[str, str]:
    """(radiometry, scale) from OPERA's backscatter tags; gamma0 linear power by default."""
    radiometry, scale = "gamma0", "power"
    for key, value in tags.items():
        v = value.lower()
        if "NORMALIZATION_CONVENTION" in key and "INPUT" not in key:
            radiometry = "sigma0" if "sigma" in v else "gamma0" if "gamma" in v else radiometry
        if "EXPRESSION_CONVENTION" in key and "INPUT" not in key:
            scale = "db" if ("db" in v or "decibel" in v) else "amplitude" if "amplitude" in v else "power"
    return radiometry, scale


def opera_product(path: Path) -> RtcProduct:
    """The OPERA RTC-S1 burst product one of whose GeoTIFFs is ``path`` (siblings found by name)."""
    m = OPERA_RE.match(path.name)
    if m is None:
        raise InputError(f"{path.name} does not follow the OPERA RTC-S1 file-name convention")
    g = m.groupdict()
    files: dict[str, list[str]] = {}
    pattern = re.compile(re.escape(g["stem"]) + r"_(VV|VH|HH|HV)" + re.escape(g["suffix"]) + r"\.tiff?$")
    for sib in sorted(path.parent.iterdir()):
        sm = pattern.match(sib.name)
        if sm:
            files.setdefault(sm.group(1), []).append(str(sib))
    files = {p: files[p] for p in ("VV", "VH", "HH", "HV") if p in files}
    first = next(iter(files.values()))[0]
    tags = _tags(first)
    start = _stamp(g["start"])
    if tags.get("ZERO_DOPPLER_START_TIME"):
        start = _iso(tags["ZERO_DOPPLER_START_TIME"], first)
    footprint, lon = raster_footprint(first)
    pass_ = _pass_text(tags.get("ORBIT_PASS_DIRECTION"))
    source = "metadata"
    if pass_ is None:
        pass_, source = pass_from_solar_time(start, lon), "solar time"
    radiometry, scale = _opera_conventions(tags)
    mission = g["mission"]
    platform = tags.get("PLATFORM", "")
    if re.match(r"^Sentinel-1[A-D]$", platform):
        mission = "S1" + platform[-1]
    track = int(tags.get("TRACK_NUMBER") or g["track"])
    stem = g["stem"] + g["suffix"]
    key = Path(files[next(iter(files))][0])
    masks = [str(f) for f in _opera_mask_files(path.parent, g["stem"], g["suffix"])]
    return RtcProduct(path=key, product_id=stem, kind="OPERA_RTC", files=files, start=start,
                      pass_direction=pass_, pass_source=source, radiometry=radiometry,
                      scale=scale, mission=mission, relative_orbit=track,
                      burst=f"T{g['track']}-{g['burst']}-{g['swath']}",
                      processed=_stamp(g["production"]), footprint=footprint,
                      mask_files=masks, mask_coding="opera_mask" if masks else None)


def _opera_mask_files(folder: Path, stem: str, suffix: str) -> list[Path]:
    """The burst's layover/shadow layer beside its backscatter (``<stem>_mask<suffix>.tif``)."""
    return [folder / f"{stem}_mask{suffix}{ext}" for ext in (".tif", ".tiff")
            if (folder / f"{stem}_mask{suffix}{ext}").is_file()][:1]


# ------------------------------------------------------------------------------------
# HyP3 RTC
# ------------------------------------------------------------------------------------

def _hyp3_members(path: Path, name: str) -> list[str]:
    """GDAL paths of the files inside a HyP3 zip or folder."""
    if path.is_dir():
        return [str(p) for p in sorted(path.rglob("*")) if p.is_file()]
    return [f"/vsizip/{path}/{n}" for n in sorted(zip_names(path)) if not n.endswith("/")]


def hyp3_product(path: Path) -> RtcProduct:
    """A HyP3 RTC product (zip or unzipped folder) named by HyP3's convention."""
    name = path.name.removesuffix(".zip")
    m = HYP3_RE.match(path.name)
    if m is None:
        raise InputError(f"{path.name} does not follow the HyP3 RTC naming convention")
    g = m.groupdict()
    members = _hyp3_members(path, name)
    files: dict[str, list[str]] = {}
    for pol in _HYP3_POLS[g["pol"].upper()]:
        found = [f for f in members if f.endswith(f"_{pol}.tif")]
        if found:
            files[pol] = found[:1]
    if not files:
        raise CorruptInputError(f"{path.name}: no {name}_VV.tif / _VH.tif inside; "
                                "download the product again")
    masks = [f for f in members if f.endswith("_ls_map.tif")][:1]
    start = _stamp(g["start"])
    first = next(iter(files.values()))[0]
    footprint, lon = raster_footprint(first)
    radiometry = {"g": "gamma0", "s": "sigma0"}[g["radiometry"]]
    scale = {"p": "power", "a": "amplitude", "d": "db"}[g["scale"]]
    return RtcProduct(path=path, product_id=name, kind="HYP3_RTC", files=files, start=start,
                      pass_direction=pass_from_solar_time(start, lon), pass_source="solar time",
                      radiometry=radiometry, scale=scale, mission=g["mission"],
                      mask_files=masks, mask_coding="hyp3_ls_map" if masks else None,
                      footprint=footprint)


# ------------------------------------------------------------------------------------
# generic folder with a sidecar
# ------------------------------------------------------------------------------------

def _sidecar_models():
    from pydantic import BaseModel, ConfigDict, Field

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class SidecarFile(_Strict):
        """One GeoTIFF of the folder."""

        file: str
        time: dt.datetime
        polarisation: Literal["VV", "VH", "HH", "HV"]
        pass_: Optional[Literal["ascending", "descending", "ASCENDING", "DESCENDING"]] = Field(None, alias="pass")
        relative_orbit: Optional[int] = Field(None, ge=1, le=175)

    class Sidecar(_Strict):
        """``sarflow_import.yaml``: defaults for every file, then the files."""

        radiometry: Literal["sigma0", "gamma0"]
        scale: Literal["power", "amplitude", "db"]
        mission: Optional[str] = None
        pass_: Optional[Literal["ascending", "descending", "ASCENDING", "DESCENDING"]] = Field(None, alias="pass")
        relative_orbit: Optional[int] = Field(None, ge=1, le=175)
        nodata: Optional[float] = None
        files: list[SidecarFile]

    return Sidecar


def read_sidecar(path: Path) -> Any:
    """The validated sidecar of a generic folder (one-line error naming the key)."""
    import yaml
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not readable YAML ({' '.join(str(exc).split())})") from None
    try:
        return _sidecar_models()(**(data or {}))
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        raise InputError(f"{path}: {key}: {e['msg']}; see the sidecar format in "
                         "sarflow.rtc_products") from None
    except TypeError as exc:
        raise InputError(f"{path}: expected a mapping (radiometry, scale, files): {exc}") from None


def sidecar_products(sidecar: Path) -> list[RtcProduct]:
    """The acquisitions a sidecar describes: files grouped by time, pass and relative orbit."""
    sc = read_sidecar(sidecar)
    folder = sidecar.parent
    groups: dict[tuple, dict[str, list[str]]] = {}
    meta: dict[tuple, tuple] = {}
    for f in sc.files:
        p = (folder / f.file)
        if not p.is_file():
            raise InputError(f"{sidecar}: file {f.file} does not exist in {folder}")
        t = _iso(f.time, str(sidecar))
        pass_text = f.pass_ or sc.pass_
        orbit = f.relative_orbit or sc.relative_orbit
        key = (t, _pass_text(pass_text), orbit)
        groups.setdefault(key, {}).setdefault(f.polarisation, []).append(str(p))
        meta[key] = (pass_text,)
    out = []
    for (t, pass_, orbit), files in sorted(groups.items(), key=lambda kv: kv[0][0]):
        files = {p: files[p] for p in ("VV", "VH", "HH", "HV") if p in files}
        first = next(iter(files.values()))[0]
        footprint, lon = raster_footprint(first)
        source = "metadata"
        if pass_ is None:
            pass_, source = pass_from_solar_time(t, lon), "solar time"
        pid = f"{folder.name}_{t:%Y%m%dT%H%M%S}" + (f"_{pass_[:3]}" if orbit is None else f"_R{orbit:03d}")
        out.append(RtcProduct(path=Path(first), product_id=pid, kind="RTC_GEOTIFF", files=files,
                              start=t, pass_direction=pass_, pass_source=source,
                              radiometry=sc.radiometry, scale=sc.scale, mission=sc.mission,
                              relative_orbit=orbit, nodata=sc.nodata, footprint=footprint))
    return out


def find_sidecar(folder: Path) -> Optional[Path]:
    """The sidecar of a folder, if it has one."""
    for name in SIDECAR_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


# ------------------------------------------------------------------------------------
# finding and opening
# ------------------------------------------------------------------------------------

def is_hyp3_path(path: Path) -> bool:
    """True for a HyP3 RTC zip or unzipped product folder (by name)."""
    return HYP3_RE.match(path.name) is not None and (
        (path.suffix.lower() == ".zip" and path.is_file()) or path.is_dir())


def find_rtc_products(paths: Iterable[str | Path]) -> tuple[list[RtcProduct], list[tuple[Path, str]]]:
    """Every RTC product at or under ``paths``, and (path, reason) for those that cannot be read.

    A folder with a sidecar is a generic folder (its sidecar lists its files); OPERA
    GeoTIFFs and HyP3 zips/folders are found anywhere below.
    """
    products: dict[str, RtcProduct] = {}
    failed: list[tuple[Path, str]] = []

    def add(fn, p: Path) -> None:
        try:
            for prod in fn(p):
                products.setdefault(str(prod.path), prod)
        except InputError as exc:
            failed.append((p, exc.one_line()))

    def walk(p: Path) -> None:
        if p.is_file():
            if OPERA_RE.match(p.name):
                add(lambda q: [opera_product(q)], p)
            elif is_hyp3_path(p):
                add(lambda q: [hyp3_product(q)], p)
            elif p.name in SIDECAR_NAMES:
                add(sidecar_products, p)
            return
        if not p.is_dir() or p.name.startswith("."):
            return
        if is_hyp3_path(p):
            add(lambda q: [hyp3_product(q)], p)
            return
        sidecar = find_sidecar(p)
        if sidecar is not None:
            add(sidecar_products, sidecar)
        for child in sorted(p.iterdir()):
            if child.is_dir() or sidecar is None:
                walk(child)

    for root in map(Path, paths):
        walk(root)
    return sorted(products.values(), key=lambda x: (x.start, x.product_id)), failed


def is_rtc_path(path: str | Path) -> bool:
    """True when ``path`` is (a file of) an RTC product this module reads."""
    p = Path(path)
    return (OPERA_RE.match(p.name) is not None or is_hyp3_path(p)
            or (p.is_file() and find_sidecar(p.parent) is not None))


def open_rtc_product(path: str | Path) -> RtcProduct:
    """The RTC product ``path`` names (an OPERA GeoTIFF, a HyP3 zip, a generic-folder file)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"product not found: {p}")
    if OPERA_RE.match(p.name):
        return opera_product(p)
    if is_hyp3_path(p):
        return hyp3_product(p)
    sidecar = find_sidecar(p.parent)
    if sidecar is not None:
        for prod in sidecar_products(sidecar):
            if str(p) in {f for fs in prod.files.values() for f in fs}:
                return prod
        raise InputError(f"{p.name} is not listed in {sidecar}; add it there")
    raise InputError(f"{p.name} is not an OPERA RTC-S1 GeoTIFF, a HyP3 RTC product or a file "
                     f"of a folder with a {SIDECAR_NAMES[0]} sidecar")


def describe_conversion(scale: str) -> str:
    """How a scale was turned into linear power (for output tags)."""
    return {"power": "linear power as delivered", "amplitude": "amplitude squared",
            "db": "10 ** (dB / 10)"}[scale]


_MASK_NODATA = {"hyp3_ls_map": -1.0, "opera_mask": 255.0}
"""The no-data value of each layover/shadow coding's mask files."""


def decode_mask(code: Any, coding: Optional[str]) -> Any:
    """sarflow's layover/shadow codes (0 clear, 1 layover, 2 shadow, 3 both; NaN where the
    product's mask says nothing) from a product's own mask pixels in ``coding``."""
    import numpy as np

    known = np.isfinite(code)
    c = np.where(known, code, 0).astype(np.int64)
    if coding == "hyp3_ls_map":
        flags = ((c & 4) > 0) * 1.0 + ((c & 16) > 0) * 2.0
    elif coding == "opera_mask":
        known &= c <= 3                                   # 255: invalid sample
        flags = np.array([0.0, 2.0, 1.0, 3.0])[np.clip(c, 0, 3)]  # 1 shadow, 2 layover
    else:
        raise ValueError(f"unknown layover/shadow coding {coding!r}: one of {MASK_CODINGS}")
    return np.where(known, flags, np.nan).astype(np.float32)


def read_on_grid(product: RtcProduct, grid: Any, polarisations: list[str]) -> tuple[Any, dict[str, Any]]:
    """The product's backscatter on ``grid``: (len(pols) + 1, h, w) float32 linear power
    then the layover/shadow band (0 clear, 1 layover, 2 shadow, 3 both, NaN no data).

    Frames of one polarisation are mosaicked (first frame with a valid value wins).
    Returns (pixels, facts for the output tags: resampling method per polarisation).
    """
    import numpy as np

    from .regrid import resample_to_grid

    missing = [p for p in polarisations if p not in product.files]
    if missing:
        raise InputError(f"{product.product_id} lacks {', '.join(missing)} "
                         f"(has {', '.join(product.files)})")
    out = np.full((len(polarisations) + 1,) + grid.shape, np.nan, np.float32)
    methods: dict[str, str] = {}
    convert = lambda a: to_linear_power(a, product.scale)  # noqa: E731
    for i, pol in enumerate(polarisations):
        for f in product.files[pol]:
            data, methods[pol] = resample_to_grid(f, grid, convert, nodata=product.nodata)
            data[~(data > 0)] = np.nan  # zero is HyP3's nodata; no backscatter is <= 0
            gap = np.isnan(out[i])
            out[i][gap] = data[gap]
    valid = np.isfinite(out[:-1]).all(axis=0)
    mask = np.where(valid, 0.0, np.nan).astype(np.float32)
    nodata = _MASK_NODATA.get(product.mask_coding)   # RtcProduct refused an unknown one
    for f in product.mask_files:
        raw, _ = resample_to_grid(f, grid, method="nearest", nodata=nodata)
        flags = decode_mask(raw, product.mask_coding)
        mask = np.where(valid & np.isfinite(flags), flags, mask)
    out[-1] = mask
    if not valid.any():
        raise InputError(f"{product.product_id} does not cover the event area {grid.bounds}; "
                         "leave it out of the event's scenes")
    return out, {"resampling": methods}
