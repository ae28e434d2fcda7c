"""Sentinel-1 IW GRDH products in the SAFE format, as ESA's IPF 003.40 writes them.

The element names, their order and the number formats follow real products (the
annotation, calibration, noise (new format: range and azimuth vectors), RFI and manifest
files of ``S1B_IW_GRDH_1SDV_20211223T051122_..._5371``).  The measurement GeoTIFFs are
uint16 DN with the geolocation grid as GCPs.  Zips hold the ``.SAFE`` folder with fixed
timestamps, so the same content gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from lxml import etree

from ..grid import atomic_path
from ..sentinel1 import C, geodetic_to_ecef, range_doppler_to_ground
from . import swaths as _swaths
from .geometry import PIXEL_SPACING, ImageModel

IPF_VERSION = "003.40"
RADAR_FREQUENCY = 5.405000454334350e+09
RANGE_SAMPLING_RATE = 6.434523812571428e+07
ABSOLUTE_CALIBRATION_CONSTANT = 1.393
DN_LUT = 4.015858e+02
SWATH = "IW2"
_GEOGRID_LINES = 10
_GEOGRID_PIXELS = 21
_LUT_PIXEL_STEP = 40
_NOISE_AZ_LINE_STEP = 10

# reference values of one real product, used where the simulation has nothing to say
_ORBITS_PER_CYCLE = 175
_S1A_REF_ORBIT = (dt.datetime(2021, 1, 19, 3, 16, 53, tzinfo=dt.timezone.utc), 36201)
_POL_NUMBER = {"VV": "001", "VH": "002", "HH": "001", "HV": "002"}


def _t(d: dt.datetime) -> str:
    """ESA's UTC time format (no zone designator, microseconds)."""
    return d.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def _e15(x: float) -> str:
    return f"{x:.15e}"


def _e6(x: float) -> str:
    return f"{x:.6e}"


def _list(values, fmt=_e6) -> str:
    return " ".join(fmt(float(v)) for v in values)


def _ints(values) -> str:
    return " ".join(str(int(v)) for v in values)


def _sub(parent: etree._Element, tag: str, text: object = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, **attrib)
    if text is not None:
        el.text = str(text)
    return el


def _tree_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# ------------------------------------------------------------------------------------
# what is written
# ------------------------------------------------------------------------------------

@dataclass
class PassProduct:
    """Everything the products of one pass share: the image frame, the geolocation grid and
    the calibration / noise vectors (identical for every date of an exactly repeating orbit)."""

    model: ImageModel
    grid_line: np.ndarray
    grid_pixel: np.ndarray
    grid_lat: np.ndarray
    grid_lon: np.ndarray
    grid_height: np.ndarray
    grid_srt: np.ndarray
    grid_incidence: np.ndarray
    grid_elevation: np.ndarray
    lut_pixels: np.ndarray
    sigma_lut: np.ndarray
    beta_lut: float
    gamma_lut: np.ndarray
    noise_range: np.ndarray
    noise_az_lines: np.ndarray
    noise_az: np.ndarray
    incidence_mid: float
    vector_lines: np.ndarray
    swath_blocks: Optional[list] = None
    """``subswaths: IW1-IW3``: the sub-swath blocks (:class:`swaths.SwathBlock`) of the image;
    None: the whole image is IW2 with one azimuth noise vector."""

    def blocks(self) -> list:
        """The sub-swath blocks of the image (one IW2 block in single-swath products)."""
        if self.swath_blocks is not None:
            return self.swath_blocks
        m = self.model
        return [_swaths.SwathBlock(name=SWATH, first_sample=0, last_sample=m.samples - 1,
                                   lines=self.noise_az_lines, factors=self.noise_az)]

    def sigma_lut_full(self) -> np.ndarray:
        """sigmaNought LUT at every image pixel, as a reader interpolates it."""
        return np.interp(np.arange(self.model.samples), self.lut_pixels, self.sigma_lut)

    def noise_full(self) -> np.ndarray:
        """Thermal noise power (DN^2) at every image pixel, as a reader interpolates it."""
        rng_lut = np.interp(np.arange(self.model.samples), self.lut_pixels, self.noise_range)
        if self.swath_blocks is None:
            az = np.interp(np.arange(self.model.lines), self.noise_az_lines, self.noise_az)
            return (az[:, None] * rng_lut[None, :]).astype(np.float32)
        out = np.empty((self.model.lines, self.model.samples), dtype=np.float32)
        lines = np.arange(self.model.lines)
        for b in self.swath_blocks:
            az = np.interp(lines, b.lines, b.factors)
            cols = slice(b.first_sample, b.last_sample + 1)
            out[:, cols] = az[:, None] * rng_lut[None, cols]
        return out

    def swath_columns(self) -> np.ndarray:
        """Sub-swath block index of every image column (int)."""
        out = np.zeros(self.model.samples, dtype=np.int64)
        for k, b in enumerate(self.blocks()):
            out[b.first_sample:b.last_sample + 1] = k
        return out


@dataclass
class SceneInfo:
    """One acquisition: identity, orbit numbers and its time shift from the pass frame."""

    mission: str
    pass_direction: str
    polarisations: tuple[str, ...]
    shift: dt.timedelta
    first_line: dt.datetime
    last_line: dt.datetime
    absolute_orbit: int
    relative_orbit: int
    datatake_id: int
    anx_time: dt.datetime

    @property
    def cycle(self) -> int:
        return (self.absolute_orbit - 73) // _ORBITS_PER_CYCLE + 1

    @property
    def product_id(self) -> str:
        pols = "1SDV" if len(self.polarisations) > 1 else f"1SS{self.polarisations[0][-1]}"
        base = (f"{self.mission}_IW_GRDH_{pols}_{self.first_line:%Y%m%dT%H%M%S}_"
                f"{self.last_line:%Y%m%dT%H%M%S}_{self.absolute_orbit:06d}_{self.datatake_id:06X}")
        crc = hashlib.md5(base.encode()).hexdigest()[:4].upper()
        return f"{base}_{crc}"

    def stem(self, pol: str) -> str:
        """Per-polarisation file stem, e.g. ``s1a-iw-grd-vv-2022..-2022..-044123-054abc-001``."""
        return (f"{self.mission.lower()}-iw-grd-{pol.lower()}-{self.first_line:%Y%m%dt%H%M%S}-"
                f"{self.last_line:%Y%m%dt%H%M%S}-{self.absolute_orbit:06d}-"
                f"{self.datatake_id:06x}-{_POL_NUMBER[pol]}")

    @property
    def processing_time(self) -> dt.datetime:
        return self.last_line + dt.timedelta(minutes=47, seconds=13)


def orbit_numbers(when: dt.datetime, relative_orbit: int) -> int:
    """The Sentinel-1A absolute orbit near ``when`` with the given relative orbit."""
    t0, o0 = _S1A_REF_ORBIT
    approx = o0 + int(round((when - t0).total_seconds() / 86400.0 * _ORBITS_PER_CYCLE / 12.0))
    rel = (approx - 73) % _ORBITS_PER_CYCLE + 1
    d = (relative_orbit - rel) % _ORBITS_PER_CYCLE
    if d > _ORBITS_PER_CYCLE // 2:
        d -= _ORBITS_PER_CYCLE
    return approx + d


# ------------------------------------------------------------------------------------
# pass-level tables: geolocation grid and radiometric vectors
# ------------------------------------------------------------------------------------

def pass_product(model: ImageModel, nesz_db: float, beta_nought: float,
                 subswaths: str = "IW2", nesz_offset_db: float = 0.0) -> PassProduct:
    """Geolocation grid (lines x pixels at the reference height), calibration and noise
    vectors of a pass's image frame; ``subswaths`` ``IW1-IW3`` places the sub-swath seams
    and their NESZ as a real merged IW GRD has them (:mod:`swaths`)."""
    orbit = model.orbit()
    t_first_s = orbit.to_seconds(model.t_first)
    lines = np.unique(np.round(np.linspace(0, model.lines - 1, _GEOGRID_LINES)).astype(int))
    pixels = np.unique(np.round(np.linspace(0, model.samples - 1, _GEOGRID_PIXELS)).astype(int))
    ll, pp = np.meshgrid(lines, pixels, indexing="ij")
    rng = model.slant_range(pp.ravel() * PIXEL_SPACING)
    t_zd = model.zero_doppler_time(ll.ravel(), rng, t_first_s)
    h = np.full(rng.shape, model.h_ref)
    lat, lon = range_doppler_to_ground(orbit, t_zd, rng, h)
    inc, elev = _angles(orbit, t_zd, lat, lon, h)
    # radiometric vectors: sigma0 LUT from the ellipsoid incidence across range
    lut_pixels = np.append(np.arange(0, model.samples - 1, _LUT_PIXEL_STEP), model.samples - 1)
    blocks = None
    if subswaths == "IW1-IW3":
        lut_pixels, blocks = _swath_lut_pixels(model, orbit, t_first_s, lut_pixels)
    mid_line = np.full(lut_pixels.shape, 0.5 * (model.lines - 1))
    r_lut = model.slant_range(lut_pixels * PIXEL_SPACING)
    t_lut = model.zero_doppler_time(mid_line, r_lut, t_first_s)
    la, lo = range_doppler_to_ground(orbit, t_lut, r_lut, np.full(r_lut.shape, model.h_ref))
    inc_lut, _ = _angles(orbit, t_lut, la, lo, np.full(r_lut.shape, model.h_ref))
    sin_i = np.sin(np.radians(inc_lut))
    sigma = np.array([float(_e6(v)) for v in beta_nought / np.sqrt(sin_i)])
    gamma = np.array([float(_e6(v)) for v in sigma * np.sqrt(np.cos(np.radians(inc_lut)))])
    x = (lut_pixels - 0.5 * (model.samples - 1)) / (0.5 * model.samples)
    nesz = nesz_db + 1.5 * x * x - 0.4 * x  # sub-swath antenna pattern: worse at the edges
    if blocks is not None:
        names = np.zeros(lut_pixels.size, dtype=np.int64)
        for b in blocks:
            sel = (lut_pixels >= b.first_sample) & (lut_pixels <= b.last_sample)
            names[sel] = _swaths.SWATHS.index(b.name)
        nesz = _swaths.nesz_db(inc_lut, names, nesz_offset_db)
    az_lines = np.append(np.arange(0, model.lines - 1, _NOISE_AZ_LINE_STEP), model.lines - 1)
    az = 1.0 + 0.04 * np.sin(2.0 * math.pi * az_lines / 1370.0 + 0.7)
    az = np.array([float(_e6(v)) for v in az])
    noise = np.array([float(_e6(v)) for v in 10.0 ** (nesz / 10.0) * sigma ** 2])
    step = int(round(1.0 / model.ati))
    vec_lines = np.arange(0, model.lines - 1 + step, step)
    mid = np.argmin(np.abs(pixels - 0.5 * (model.samples - 1)))
    return PassProduct(
        model=model, grid_line=ll.ravel(), grid_pixel=pp.ravel(), grid_lat=lat, grid_lon=lon,
        grid_height=h, grid_srt=2.0 * rng / C, grid_incidence=inc, grid_elevation=elev,
        lut_pixels=lut_pixels, sigma_lut=sigma, beta_lut=float(_e6(beta_nought)),
        gamma_lut=gamma, noise_range=noise, noise_az_lines=az_lines, noise_az=az,
        incidence_mid=float(inc.reshape(ll.shape)[:, mid].mean()), vector_lines=vec_lines,
        swath_blocks=blocks)


def _swath_lut_pixels(model: ImageModel, orbit, t_first_s: float, lut_pixels: np.ndarray
                      ) -> tuple[np.ndarray, list]:
    """LUT pixels with a node on each side of every seam, and the sub-swath blocks."""
    mid_line = np.full(lut_pixels.shape, 0.5 * (model.lines - 1))
    r = model.slant_range(lut_pixels * PIXEL_SPACING)
    t = model.zero_doppler_time(mid_line, r, t_first_s)
    h = np.full(r.shape, model.h_ref)
    la, lo = range_doppler_to_ground(orbit, t, r, h)
    inc, _ = _angles(orbit, t, la, lo, h)
    blocks = _swaths.blocks(model.lines, model.samples, lut_pixels, inc)
    extra = [v for b in blocks[1:] for v in (b.first_sample - 1, b.first_sample)]
    return np.unique(np.concatenate([lut_pixels, extra]).astype(np.int64)), blocks


def _angles(orbit, t: np.ndarray, lat: np.ndarray, lon: np.ndarray, h: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Incidence angle at the ground and elevation (off-nadir) angle at the sensor, degrees."""
    from ..sentinel1 import ecef_to_geodetic

    x = geodetic_to_ecef(lat, lon, h)
    s = orbit.position(np.asarray(t))
    d = s - x
    d /= np.linalg.norm(d, axis=1)[:, None]
    phi, lam = np.radians(lat), np.radians(lon)
    up = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    inc = np.degrees(np.arccos(np.einsum("ij,ij->i", d, up)))
    slat, slon, _ = ecef_to_geodetic(s)
    sp, sl = np.radians(slat), np.radians(slon)
    nadir = -np.stack([np.cos(sp) * np.cos(sl), np.cos(sp) * np.sin(sl), np.sin(sp)], axis=1)
    elev = np.degrees(np.arccos(np.einsum("ij,ij->i", -d, nadir)))
    return inc, elev


# ------------------------------------------------------------------------------------
# XML documents
# ------------------------------------------------------------------------------------

def _ads_header(root: etree._Element, scene: SceneInfo, pol: str) -> None:
    h = _sub(root, "adsHeader")
    _sub(h, "missionId", scene.mission)
    _sub(h, "productType", "GRD")
    _sub(h, "polarisation", pol)
    _sub(h, "mode", "IW")
    _sub(h, "swath", "IW")
    _sub(h, "startTime", _t(scene.first_line))
    _sub(h, "stopTime", _t(scene.last_line))
    _sub(h, "absoluteOrbitNumber", scene.absolute_orbit)
    _sub(h, "missionDataTakeId", scene.datatake_id)
    _sub(h, "imageNumber", _POL_NUMBER[pol])


def annotation_xml(scene: SceneInfo, pp: PassProduct, pol: str, dn_mean: float,
                   dn_std: float) -> bytes:
    """The product annotation (``annotation/s1a-iw-grd-<pol>-....xml``)."""
    m = pp.model
    sh = scene.shift
    root = etree.Element("product")
    _ads_header(root, scene, pol)
    _quality(root, scene, dn_mean, dn_std)
    ga = _sub(root, "generalAnnotation")
    pi = _sub(ga, "productInformation")
    _sub(pi, "pass", scene.pass_direction.capitalize())
    _sub(pi, "timelinessCategory", "Fast-24h")
    _sub(pi, "platformHeading", _e15(m.heading))
    _sub(pi, "projection", "Ground Range")
    _sub(pi, "rangeSamplingRate", _e15(RANGE_SAMPLING_RATE))
    _sub(pi, "radarFrequency", _e15(RADAR_FREQUENCY))
    _sub(pi, "azimuthSteeringRate", _e15(1.590368784))
    _downlink(ga, scene)
    ol = _sub(ga, "orbitList", count=str(len(m.orbit_times)))
    for t, p, v in zip(m.orbit_times, m.orbit_pos, m.orbit_vel):
        o = _sub(ol, "orbit")
        _sub(o, "time", _t(t + sh))
        _sub(o, "frame", "Earth Fixed")
        pe = _sub(o, "position")
        for c, val in zip("xyz", p):
            _sub(pe, c, _e15(val))
        ve = _sub(o, "velocity")
        for c, val in zip("xyz", v):
            _sub(ve, c, _e15(val))
    _attitude(ga, scene, pp)
    rda = _sub(ga, "rawDataAnalysisList", count="1")
    r = _sub(rda, "rawDataAnalysis")
    _sub(r, "azimuthTime", _t(scene.first_line))
    for tag, val in (("iBias", 3.384472131729126e-01), ("qBias", 2.395433038473129e-01),
                     ("iqQuadratureDeparture", -2.520480006933212e-02),
                     ("iqGainImbalance", 9.950913190841675e-01)):
        _sub(r, tag, _e15(val))
    _sub(ga, "replicaInformationList", count="0")
    nl = _sub(ga, "noiseList", count="1")
    n = _sub(nl, "noise")
    _sub(n, "swath", SWATH)
    _sub(n, "azimuthTime", _t(scene.first_line))
    _sub(n, "noisePowerCorrectionFactor", _e6(1.0))
    _sub(n, "numberOfNoiseLines", 8)
    thl = _sub(ga, "terrainHeightList", count="3")
    for k in (-1, 0, 1):
        th = _sub(thl, "terrainHeight")
        _sub(th, "azimuthTime", _t(scene.first_line + dt.timedelta(seconds=10 * k + 5)))
        _sub(th, "value", _e15(m.h_ref))
    fm = _sub(ga, "azimuthFmRateList", count="2")
    for k in range(2):
        a = _sub(fm, "azimuthFmRate")
        _sub(a, "azimuthTime", _t(scene.first_line + dt.timedelta(seconds=2.75 * k - 1)))
        _sub(a, "t0", _e15(2 * m.sr0 / C))
        _sub(a, "azimuthFmRatePolynomial", "-2.326822181785503e+03 4.514522476180886e+05 "
             "-7.928261958116403e+07", count="3")
    _image_annotation(root, scene, pp, dn_mean, dn_std)
    dc = _sub(_sub(root, "dopplerCentroid"), "dcEstimateList", count="1")
    e = _sub(dc, "dcEstimate")
    _sub(e, "azimuthTime", _t(scene.first_line))
    _sub(e, "t0", _e15(2 * m.sr0 / C))
    _sub(e, "geometryDcPolynomial", "0.000000e+00 0.000000e+00 0.000000e+00", count="3")
    _sub(e, "dataDcPolynomial", "0.000000e+00 0.000000e+00 0.000000e+00", count="3")
    _sub(e, "dataDcRmsError", _e15(0.0))
    _sub(e, "dataDcRmsErrorAboveThreshold", "false")
    _sub(e, "fineDceAzimuthStartTime", _t(scene.first_line))
    _sub(e, "fineDceAzimuthStopTime", _t(scene.last_line))
    _sub(e, "fineDceList", count="0")
    _antenna(root, scene, pp)
    st = _sub(root, "swathTiming")
    _sub(st, "linesPerBurst", 0)
    _sub(st, "samplesPerBurst", 0)
    _sub(st, "burstList", count="0")
    _geolocation(root, scene, pp)
    _conversion(root, scene, pp)
    blocks = pp.blocks()
    sm = _sub(_sub(root, "swathMerging"), "swathMergeList", count=str(len(blocks)))
    for b in blocks:
        s = _sub(sm, "swathMerge")
        _sub(s, "swath", b.name)
        sb = _sub(_sub(s, "swathBoundsList", count="1"), "swathBounds")
        _sub(sb, "azimuthTime", _t(scene.first_line))
        _sub(sb, "firstAzimuthLine", 0)
        _sub(sb, "firstRangeSample", b.first_sample)
        _sub(sb, "lastAzimuthLine", m.lines - 1)
        _sub(sb, "lastRangeSample", b.last_sample)
    return _tree_bytes(root)


def _quality(root: etree._Element, scene: SceneInfo, dn_mean: float, dn_std: float) -> None:
    q = _sub(root, "qualityInformation")
    _sub(q, "productQualityIndex", _e15(0.0))
    qd = _sub(_sub(q, "qualityDataList", count="1"), "qualityData")
    _sub(qd, "azimuthTime", _t(scene.first_line))
    dq = _sub(qd, "downlinkQuality")
    for tag, val in (("iInputDataMean", "3.384472131729126e-01"),
                     ("qInputDataMean", "2.395433038473129e-01"),
                     ("inputDataMeanOutsideNominalRangeFlag", "false"),
                     ("iInputDataStdDev", "8.929015159606934e+00"),
                     ("qInputDataStdDev", "8.973061561584473e+00"),
                     ("inputDataStDevOutsideNominalRangeFlag", "false"),
                     ("numDownlinkInputDataGaps", "0"),
                     ("downlinkGapsInInputDataSignificantFlag", "false"),
                     ("numDownlinkInputMissingLines", "0"),
                     ("downlinkMissingLinesSignificantFlag", "false"),
                     ("numInstrumentInputDataGaps", "0"),
                     ("instrumentGapsInInputDataSignificantFlag", "false"),
                     ("numInstrumentInputMissingLines", "0"),
                     ("instrumentMissingLinesSignificantFlag", "false"),
                     ("numSsbErrorInputDataGaps", "0"),
                     ("ssbErrorGapsInInputDataSignificantFlag", "false"),
                     ("numSsbErrorInputMissingLines", "0"),
                     ("ssbErrorMissingLinesSignificantFlag", "false"),
                     ("chirpSourceUsed", "Nominal"), ("pgSourceUsed", "Extracted"),
                     ("rrfSpectrumUsed", "Extended Tapered"),
                     ("replicaReconstructionFailedFlag", "false"),
                     ("meanPgProductAmplitude", "6.262705922126770e-01"),
                     ("stdDevPgProductAmplitude", "5.151581420782700e-02"),
                     ("meanPgProductPhase", "2.571686267852783e+00"),
                     ("stdDevPgProductPhase", "1.498769102772860e-01"),
                     ("pgProductDerivationFailedFlag", "false"),
                     ("invalidDownlinkParamsFlag", "false")):
        _sub(dq, tag, val)
    rq = _sub(qd, "rawDataAnalysisQuality")
    for tag, val in (("iBias", "3.384472131729126e-01"), ("iBiasSignificanceFlag", "true"),
                     ("qBias", "2.395433038473129e-01"), ("qBiasSignificanceFlag", "true"),
                     ("iqGainImbalance", "9.950913190841675e-01"),
                     ("iqGainSignificanceFlag", "true"),
                     ("iqQuadratureDeparture", "-2.520480006933212e-02"),
                     ("iqQuadratureDepartureSignificanceFlag", "true")):
        _sub(rq, tag, val)
    dc = _sub(qd, "dopplerCentroidQuality")
    _sub(dc, "dcMethod", "Data Analysis")
    _sub(dc, "dopplerCentroidUncertainFlag", "false")
    iq = _sub(qd, "imageQuality")
    _image_statistics(iq, dn_mean, dn_std)
    _sub(iq, "outputDataMeanOutsideNominalRangeFlag", "false")
    _sub(iq, "outputDataStDevOutsideNominalRangeFlag", "false")


def _image_statistics(parent: etree._Element, mean: float, std: float) -> None:
    st = _sub(parent, "imageStatistics")
    for tag, val in (("outputDataMean", mean), ("outputDataStdDev", std)):
        e = _sub(st, tag)
        _sub(e, "re", _e6(val))
        _sub(e, "im", _e6(0.0))


def _downlink(ga: etree._Element, scene: SceneInfo) -> None:
    dl = _sub(ga, "downlinkInformationList", count="3")
    for k, (prf, swst, swl, txlen, ramp, fstart, num) in enumerate((
            (1.717128973878037e+03, 1.056621646123043e-04, 3.721354299810052e-04,
             5.240481033595628e-05, 1.078230321255894e+12, -2.825153419637256e+07, 10),
            (1.451836975484299e+03, 1.191052353571048e-04, 3.883812917960371e-04,
             5.294702436974792e-05, 7.788853874146045e+11, -2.058400198411049e+07, 11),
            (1.685817054817014e+03, 1.327283287926049e-04, 3.532089766154618e-04,
             4.977422030907154e-05, 1.141521229549604e+12, -2.836969462358534e+07, 12))):
        d = _sub(dl, "downlinkInformation")
        _sub(d, "swath", f"IW{k + 1}")
        _sub(d, "azimuthTime", _t(scene.first_line - dt.timedelta(seconds=2.68)))
        _sub(d, "firstLineSensingTime", _t(scene.first_line - dt.timedelta(seconds=3.5)))
        _sub(d, "lastLineSensingTime", _t(scene.last_line + dt.timedelta(seconds=3.5)))
        _sub(d, "prf", _e15(prf))
        dv = _sub(d, "downlinkValues")
        _sub(dv, "pri", _e15(1.0 / prf))
        _sub(dv, "rank", 9)
        _sub(dv, "dataTakeId", scene.datatake_id % 65536)
        _sub(dv, "eccNumber", 8)
        _sub(dv, "rxChannelId", 0)
        _sub(dv, "instrumentConfigId", 6)
        df = _sub(dv, "dataFormat")
        _sub(df, "baqBlockLength", 256)
        _sub(df, "echoFormat", "FDBAQ")
        _sub(df, "noiseFormat", "BAQ 5 Bit")
        _sub(df, "calibrationFormat", "Decimation")
        _sub(df, "meanBitRate", _e15(1.205013787401858))
        rd = _sub(dv, "rangeDecimation")
        _sub(rd, "decimationFilterBandwidth", _e15(5.659e7))
        _sub(rd, "samplingFrequencyAfterDecimation", _e15(RANGE_SAMPLING_RATE))
        _sub(rd, "filterLength", 36)
        _sub(dv, "rxGain", _e15(-4.0))
        _sub(dv, "txPulseLength", _e15(txlen))
        _sub(dv, "txPulseStartFrequency", _e15(fstart))
        _sub(dv, "txPulseRampRate", _e15(ramp))
        _sub(dv, "swathNumber", num)
        sw = _sub(_sub(dv, "swlList", count="1"), "swl")
        _sub(sw, "azimuthTime", _t(scene.first_line - dt.timedelta(seconds=1.55)))
        _sub(sw, "value", _e15(swl))
        ss = _sub(_sub(dv, "swstList", count="1"), "swst")
        _sub(ss, "azimuthTime", _t(scene.first_line - dt.timedelta(seconds=1.55)))
        _sub(ss, "value", _e15(swst))
        ps = _sub(_sub(dv, "pointingStatusList", count="1"), "pointingStatus")
        _sub(ps, "azimuthTime", _t(scene.first_line - dt.timedelta(seconds=3.66)))
        _sub(ps, "aocsOpMode", "Normal Pointing Mode")
        _sub(ps, "rollErrorFlag", "false")
        _sub(ps, "pitchErrorFlag", "false")
        _sub(ps, "yawErrorFlag", "false")


def _attitude(ga: etree._Element, scene: SceneInfo, pp: PassProduct) -> None:
    """Zero-Doppler steered, right-looking attitude at the orbit's times (roll = look angle)."""
    m = pp.model
    roll = float(np.median(pp.grid_elevation))
    al = _sub(ga, "attitudeList", count=str(len(m.orbit_times)))
    for t in m.orbit_times:
        a = _sub(al, "attitude")
        _sub(a, "time", _t(t + scene.shift))
        _sub(a, "frame", "GM2000")
        for tag, val in (("q0", 0.0), ("q1", 0.0), ("q2", 0.0), ("q3", 1.0)):
            _sub(a, tag, _e6(val))
        for tag in ("wx", "wy", "wz"):
            _sub(a, tag, _e15(0.0))
        _sub(a, "roll", _e15(roll if m.pass_direction.startswith("A") else -roll))
        _sub(a, "pitch", _e15(0.0))
        _sub(a, "yaw", _e15(0.0))


def _image_annotation(root: etree._Element, scene: SceneInfo, pp: PassProduct, dn_mean: float,
                      dn_std: float) -> None:
    m = pp.model
    ia = _sub(root, "imageAnnotation")
    ii = _sub(ia, "imageInformation")
    _sub(ii, "productFirstLineUtcTime", _t(scene.first_line))
    _sub(ii, "productLastLineUtcTime", _t(scene.last_line))
    _sub(ii, "ascendingNodeTime", _t(scene.anx_time))
    _sub(ii, "anchorTime", _t(scene.first_line - dt.timedelta(seconds=3.7)))
    _sub(ii, "productComposition", "Individual")
    _sub(ii, "sliceNumber", 0)
    _sub(ii, "sliceList", count="0")
    _sub(ii, "slantRangeTime", _e15(2.0 * m.sr0 / C))
    _sub(ii, "pixelValue", "Detected")
    _sub(ii, "outputPixels", "16 bit Unsigned Integer")
    _sub(ii, "rangePixelSpacing", _e6(PIXEL_SPACING))
    _sub(ii, "azimuthPixelSpacing", _e6(PIXEL_SPACING))
    _sub(ii, "azimuthTimeInterval", _e15(m.ati))
    _sub(ii, "azimuthFrequency", _e15(1.0 / m.ati))
    _sub(ii, "numberOfSamples", m.samples)
    _sub(ii, "numberOfLines", m.lines)
    _sub(ii, "zeroDopMinusAcqTime", _e15(2.002251400000000e+00))
    _sub(ii, "incidenceAngleMidSwath", _e15(pp.incidence_mid))
    _image_statistics(ii, dn_mean, dn_std)
    pi = _sub(ia, "processingInformation")
    for tag, val in (("rawDataAnalysisUsed", "true"), ("orbitDataFileUsed", "true"),
                     ("attitudeDataFileUsed", "false"), ("rxVariationCorrectionApplied", "true"),
                     ("antennaElevationPatternApplied", "true"),
                     ("antennaAzimuthPatternApplied", "true"),
                     ("antennaAzimuthElementPatternApplied", "true"),
                     ("dcMethod", "Data Analysis"), ("dcInputData", "Range Compressed"),
                     ("rangeSpreadingLossCompensationApplied", "true"),
                     ("srgrConversionApplied", "true"), ("detectionPerformed", "true"),
                     ("thermalNoiseCorrectionPerformed", "false"),
                     ("rfiMitigationPerformed", "Never"),
                     ("rfiMitigationDomain", "TimeAndFrequency"), ("chirpSource", "Nominal"),
                     ("pgSource", "Extracted"), ("rrfSpectrum", "Extended Tapered"),
                     ("applicationLutId", "IW_Default")):
        _sub(pi, tag, val)
    spl = _sub(pi, "swathProcParamsList", count="3")
    for k, (bw, scale) in enumerate(((5.650445548389234e+07, 1.026920e+12),
                                     (4.281818208023549e+07, 5.979590e+11),
                                     (4.859999999999999e+07, 8.253660e+11))):
        sp = _sub(spl, "swathProcParams")
        _sub(sp, "swath", f"IW{k + 1}")
        for proc, looks, lbw, total in (("rangeProcessing", 5, 1.41e7, bw),
                                        ("azimuthProcessing", 1, 327.0, 327.0)):
            p = _sub(sp, proc)
            _sub(p, "windowType", "Hamming")
            _sub(p, "windowCoefficient", _e15(0.7))
            _sub(p, "totalBandwidth", _e15(total))
            _sub(p, "processingBandwidth", _e15(total))
            _sub(p, "lookBandwidth", _e15(lbw))
            _sub(p, "numberOfLooks", looks)
            _sub(p, "lookOverlap", _e15(3.502589347412674e+06 if looks > 1 else 0.0))
        _sub(sp, "processorScalingFactor", _e6(scale))
    idl = _sub(pi, "inputDimensionsList", count="1")
    idm = _sub(idl, "inputDimensions")
    _sub(idm, "azimuthTime", _t(scene.first_line))
    _sub(idm, "swath", SWATH)
    _sub(idm, "numberOfInputSamples", int(m.samples * 1.9))
    _sub(idm, "numberOfInputLines", int(m.lines * 0.9))
    _sub(pi, "referenceRange", _e15(8.0e5))
    _sub(pi, "ellipsoidName", "WGS84")
    _sub(pi, "ellipsoidSemiMajorAxis", _e15(6378137.0))
    _sub(pi, "ellipsoidSemiMinorAxis", _e15(6356752.314245))
    _sub(pi, "bistaticDelayCorrectionApplied", "true")
    _sub(pi, "topsFilterConvention", "Only Echo Lines")
    _sub(pi, "orbitSource", "Auxiliary")
    _sub(pi, "attitudeSource", "Downlink")


def _antenna(root: etree._Element, scene: SceneInfo, pp: PassProduct) -> None:
    m = pp.model
    lines = pp.grid_line.reshape(-1, np.unique(pp.grid_pixel).size)
    ap = _sub(_sub(root, "antennaPattern"), "antennaPatternList", count="1")
    a = _sub(ap, "antennaPattern")
    row = slice(lines.shape[1] * (lines.shape[0] // 2), lines.shape[1] * (lines.shape[0] // 2 + 1))
    srt, elev, inc = pp.grid_srt[row], pp.grid_elevation[row], pp.grid_incidence[row]
    n = str(srt.size)
    _sub(a, "swath", SWATH)
    _sub(a, "azimuthTime", _t(scene.first_line + dt.timedelta(seconds=0.5 * m.lines * m.ati)))
    _sub(a, "slantRangeTime", _list(srt, _e15), count=n)
    _sub(a, "elevationAngle", _list(elev), count=n)
    gain = np.cos(np.radians(elev - elev.mean()) * 6.0) ** 2
    _sub(a, "elevationPattern", _list(np.repeat(gain, 2) * np.tile([1.0, 0.0], srt.size)),
         count=str(2 * srt.size))
    _sub(a, "incidenceAngle", _list(inc), count=n)
    _sub(a, "terrainHeight", _e15(m.h_ref))
    _sub(a, "roll", _e15(float(elev.mean())))


def _geolocation(root: etree._Element, scene: SceneInfo, pp: PassProduct) -> None:
    m = pp.model
    gl = _sub(_sub(root, "geolocationGrid"), "geolocationGridPointList",
              count=str(pp.grid_line.size))
    for k in range(pp.grid_line.size):
        g = _sub(gl, "geolocationGridPoint")
        t = scene.first_line + dt.timedelta(seconds=float(pp.grid_line[k]) * m.ati)
        _sub(g, "azimuthTime", _t(t))
        _sub(g, "slantRangeTime", _e15(pp.grid_srt[k]))
        _sub(g, "line", int(pp.grid_line[k]))
        _sub(g, "pixel", int(pp.grid_pixel[k]))
        _sub(g, "latitude", _e15(pp.grid_lat[k]))
        _sub(g, "longitude", _e15(pp.grid_lon[k]))
        _sub(g, "height", _e15(pp.grid_height[k]))
        _sub(g, "incidenceAngle", _e15(pp.grid_incidence[k]))
        _sub(g, "elevationAngle", _e15(pp.grid_elevation[k]))


def _conversion(root: etree._Element, scene: SceneInfo, pp: PassProduct) -> None:
    """Slant/ground range polynomials every second; the frame uses one polynomial pair, so
    every entry carries the same coefficients (nearest or interpolated, readers agree)."""
    m = pp.model
    step = 1.0
    n = int(math.ceil((m.lines - 1) * m.ati / step)) + 3
    cl = _sub(_sub(root, "coordinateConversion"), "coordinateConversionList", count=str(n))
    for k in range(n):
        c = _sub(cl, "coordinateConversion")
        _sub(c, "azimuthTime", _t(scene.first_line + dt.timedelta(seconds=step * (k - 1))))
        _sub(c, "slantRangeTime", _e15(2.0 * m.sr0 / C))
        _sub(c, "sr0", _e15(m.sr0))
        _sub(c, "srgrCoefficients", _list(m.srgr, _e15), count=str(m.srgr.size))
        _sub(c, "gr0", _e15(0.0))
        _sub(c, "grsrCoefficients", _list(m.grsr, _e15), count=str(m.grsr.size))


def calibration_xml(scene: SceneInfo, pp: PassProduct, pol: str) -> bytes:
    """``annotation/calibration/calibration-....xml``: sigma0/beta0/gamma/dn LUT vectors."""
    m = pp.model
    root = etree.Element("calibration")
    _ads_header(root, scene, pol)
    _sub(_sub(root, "calibrationInformation"), "absoluteCalibrationConstant",
         _e6(ABSOLUTE_CALIBRATION_CONSTANT))
    vl = _sub(root, "calibrationVectorList", count=str(pp.vector_lines.size))
    n = str(pp.lut_pixels.size)
    for line in pp.vector_lines:
        v = _sub(vl, "calibrationVector")
        _sub(v, "azimuthTime", _t(scene.first_line + dt.timedelta(seconds=float(line) * m.ati)))
        _sub(v, "line", int(line))
        _sub(v, "pixel", _ints(pp.lut_pixels), count=n)
        _sub(v, "sigmaNought", _list(pp.sigma_lut), count=n)
        _sub(v, "betaNought", _list(np.full(pp.lut_pixels.size, pp.beta_lut)), count=n)
        _sub(v, "gamma", _list(pp.gamma_lut), count=n)
        _sub(v, "dn", _list(np.full(pp.lut_pixels.size, DN_LUT)), count=n)
    return _tree_bytes(root)


def noise_xml(scene: SceneInfo, pp: PassProduct, pol: str) -> bytes:
    """``annotation/calibration/noise-....xml`` in the new format (range + azimuth vectors)."""
    m = pp.model
    root = etree.Element("noise")
    _ads_header(root, scene, pol)
    lines = np.append(pp.vector_lines[pp.vector_lines < m.lines - 1], m.lines - 1)
    rl = _sub(root, "noiseRangeVectorList", count=str(lines.size))
    n = str(pp.lut_pixels.size)
    for line in lines:
        v = _sub(rl, "noiseRangeVector")
        _sub(v, "azimuthTime", _t(scene.first_line + dt.timedelta(seconds=float(line) * m.ati)))
        _sub(v, "line", int(line))
        _sub(v, "pixel", _ints(pp.lut_pixels), count=n)
        _sub(v, "noiseRangeLut", _list(pp.noise_range), count=n)
    blocks = pp.blocks()
    al = _sub(root, "noiseAzimuthVectorList", count=str(len(blocks)))
    for b in blocks:
        a = _sub(al, "noiseAzimuthVector")
        _sub(a, "swath", b.name)
        _sub(a, "firstAzimuthLine", 0)
        _sub(a, "firstRangeSample", b.first_sample)
        _sub(a, "lastAzimuthLine", m.lines - 1)
        _sub(a, "lastRangeSample", b.last_sample)
        k = str(b.lines.size)
        _sub(a, "line", _ints(b.lines), count=k)
        _sub(a, "noiseAzimuthLut", _list(b.factors), count=k)
    return _tree_bytes(root)


def rfi_xml(scene: SceneInfo, pol: str) -> bytes:
    """``annotation/rfi/rfi-....xml``: no RFI detected."""
    root = etree.Element("rfi")
    _ads_header(root, scene, pol)
    _sub(root, "rfiMitigationApplied", "None")
    nl = _sub(root, "rfiDetectionFromNoiseReportList", count="1")
    r = _sub(nl, "rfiDetectionFromNoiseReport")
    _sub(r, "swath", SWATH)
    _sub(r, "noiseSensingTime", _t(scene.first_line - dt.timedelta(seconds=1.55)))
    _sub(r, "rfiDetected", "false")
    _sub(r, "maxKLDivergence", _e6(3.231167))
    _sub(r, "maxFisherZ", _e6(3.556956))
    _sub(r, "maxRfiPsd", _e6(0.0))
    bl = _sub(root, "rfiBurstReportList", count="1")
    b = _sub(bl, "rfiBurstReport")
    _sub(b, "swath", SWATH)
    _sub(b, "azimuthTime", _t(scene.first_line))
    _sub(b, "inBandOutBandPowerRatio", _e6(6.988496))
    return _tree_bytes(root)


# ------------------------------------------------------------------------------------
# manifest
# ------------------------------------------------------------------------------------

_NS = {"xsi": "http://www.w3.org/2001/XMLSchema-instance", "gml": "http://www.opengis.net/gml",
       "xfdu": "urn:ccsds:schema:xfdu:1", "safe": "http://www.esa.int/safe/sentinel-1.0",
       "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1",
       "s1sar": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar",
       "s1sarl1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1",
       "s1sarl2": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-2",
       "gx": "http://www.google.com/kml/ext/2.2"}

_SCHEMAS = (("s1Level1ProductSchema", "XML Schema", "s1-level-1-product.xsd"),
            ("s1Level1NoiseSchema", "XML Schema", "s1-level-1-noise.xsd"),
            ("s1Level1RfiSchema", "XML Schema", "s1-level-1-rfi.xsd"),
            ("s1Level1CalibrationSchema", "XML Schema", "s1-level-1-calibration.xsd"),
            ("s1ObjectTypesSchema", "XML Schema", "s1-object-types.xsd"),
            ("s1Level1MeasurementSchema", "SDF", "s1-level-1-measurement.xsd"),
            ("s1Level1ProductPreviewSchema", "XML Schema", "s1-product-preview.xsd"),
            ("s1Level1QuickLookSchema", "XML Schema", "s1-level-1-quicklook.xsd"),
            ("s1Level1MapOverlaySchema", "XML Schema", "s1-map-overlay.xsd"))
_PREVIEW = (("mapoverlay", "Metadata Unit", "s1Level1MapOverlaySchema", "text/xml",
             "preview/map-overlay.kml"),
            ("productpreview", "Metadata Unit", "s1Level1ProductPreviewSchema", "text/xml",
             "preview/product-preview.html"),
            ("quicklook", "Measurement Data Unit", "s1Level1QuickLookSchema",
             "application/octet-stream", "preview/quick-look.png"))


def _q(prefix: str, tag: str) -> str:
    return f"{{{_NS[prefix]}}}{tag}"


def _object_id(kind: str, stem: str) -> str:
    return kind + stem.replace("-", "")


def manifest_xml(scene: SceneInfo, pp: PassProduct, files: dict[str, bytes]) -> bytes:
    """``manifest.safe``: the XFDU package map, metadata and every file's size and MD5."""
    root = etree.Element(_q("xfdu", "XFDU"), nsmap=_NS,
                         version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/grd/standard/iwdp")
    pols = sorted(scene.polarisations, key=lambda p: _POL_NUMBER[p], reverse=True)
    ipm = _sub(root, "informationPackageMap")
    top = _sub(ipm, _q("xfdu", "contentUnit"), unitType="SAFE Archive Information Package",
               textInfo="Sentinel-1 IW Level-1 GRD Product",
               dmdID="acquisitionPeriod platform generalProductInformation "
                     "measurementOrbitReference measurementFrameSet", pdiID="processing")
    kinds = (("product", "s1Level1ProductSchema"), ("noise", "s1Level1NoiseSchema"),
             ("rfi", "s1Level1RfiSchema"), ("calibration", "s1Level1CalibrationSchema"))
    for pol in pols:
        for kind, rep in kinds:
            cu = _sub(top, _q("xfdu", "contentUnit"), unitType="Metadata Unit", repID=rep)
            _sub(cu, "dataObjectPointer", dataObjectID=_object_id(kind, scene.stem(pol)))
    for pol in pols:
        stem = scene.stem(pol)
        dmd = " ".join(_object_id(k, stem) + "Annotation" for k, _ in kinds) + " "
        cu = _sub(top, _q("xfdu", "contentUnit"), unitType="Measurement Data Unit",
                  repID="s1Level1MeasurementSchema", dmdID=dmd)
        _sub(cu, "dataObjectPointer", dataObjectID=_object_id("", stem))
    for oid, unit, rep, _, rel in _PREVIEW:
        if rel in files:
            cu = _sub(top, _q("xfdu", "contentUnit"), unitType=unit, repID=rep)
            _sub(cu, "dataObjectPointer", dataObjectID=oid)
    ms = _sub(root, "metadataSection")
    for pol in pols:
        for kind, _ in kinds:
            oid = _object_id(kind, scene.stem(pol))
            mo = _sub(ms, "metadataObject", ID=oid + "Annotation", classification="DESCRIPTION",
                      category="DMD")
            _sub(mo, "dataObjectPointer", dataObjectID=oid)
    for oid, unit, _, _, rel in _PREVIEW:
        if unit == "Metadata Unit" and rel in files:
            mo = _sub(ms, "metadataObject", ID=oid + "Annotation", classification="DESCRIPTION",
                      category="DMD")
            _sub(mo, "dataObjectPointer", dataObjectID=oid)
    _manifest_metadata(ms, scene, pp)
    for sid, vocab, href in _SCHEMAS:
        mo = _sub(ms, "metadataObject", ID=sid, classification="SYNTAX", category="REP")
        _sub(mo, "metadataReference", mimeType="text/xml", vocabularyName=vocab,
             locatorType="URL", href=f"./support/{href}")
    dos = _sub(root, "dataObjectSection")
    for pol in pols:
        stem = scene.stem(pol)
        for kind, rep, rel in (("product", "s1Level1ProductSchema", f"annotation/{stem}.xml"),
                               ("noise", "s1Level1NoiseSchema",
                                f"annotation/calibration/noise-{stem}.xml"),
                               ("rfi", "s1Level1RfiSchema", f"annotation/rfi/rfi-{stem}.xml"),
                               ("calibration", "s1Level1CalibrationSchema",
                                f"annotation/calibration/calibration-{stem}.xml")):
            _data_object(dos, _object_id(kind, stem), rep, "text/xml", rel, files[rel])
    for pol in pols:
        stem = scene.stem(pol)
        rel = f"measurement/{stem}.tiff"
        _data_object(dos, _object_id("", stem), "s1Level1MeasurementSchema",
                     "application/octet-stream", rel, files[rel])
    for oid, _, rep, mime, rel in _PREVIEW:
        if rel in files:
            _data_object(dos, oid, rep, mime, rel, files[rel])
    return _tree_bytes(root)


def _data_object(parent, oid: str, rep: str, mime: str, rel: str, data: bytes) -> None:
    do = _sub(parent, "dataObject", ID=oid, repID=rep)
    bs = _sub(do, "byteStream", mimeType=mime, size=str(len(data)))
    _sub(bs, "fileLocation", locatorType="URL", href=f"./{rel}")
    _sub(bs, "checksum", hashlib.md5(data).hexdigest(), checksumName="MD5")


def _wrap(ms, oid: str, classification: str, category: str, text: str):
    mo = _sub(ms, "metadataObject", ID=oid, classification=classification, category=category)
    mw = _sub(mo, "metadataWrap", mimeType="text/xml", vocabularyName="SAFE", textInfo=text)
    return _sub(mw, "xmlData")


def _manifest_metadata(ms, scene: SceneInfo, pp: PassProduct) -> None:
    proc_start = scene.processing_time - dt.timedelta(minutes=12)
    xd = _wrap(ms, "processing", "PROVENANCE", "PDI", "Processing")
    pr = _sub(xd, _q("safe", "processing"), name="GRD Post Processing", start=_t(proc_start),
              stop=_t(scene.processing_time))
    fac = _sub(pr, _q("safe", "facility"), country="Germany",
               name="Copernicus S1 Core Ground Segment - DPA", organisation="ESA",
               site="DLR-Oberpfaffenhofen")
    _sub(fac, _q("safe", "software"), name="Sentinel-1 IPF", version=IPF_VERSION)
    _sub(pr, _q("safe", "resource"), name="sarflow.simulate synthetic scene",
         role="Level-1 Intermediate SLC Product")
    xd = _wrap(ms, "platform", "DESCRIPTION", "DMD", "Platform Description")
    pl = _sub(xd, _q("safe", "platform"))
    _sub(pl, _q("safe", "nssdcIdentifier"), "2014-016A" if scene.mission == "S1A" else "2016-025A")
    _sub(pl, _q("safe", "familyName"), "SENTINEL-1")
    _sub(pl, _q("safe", "number"), scene.mission[-1])
    ins = _sub(pl, _q("safe", "instrument"))
    _sub(ins, _q("safe", "familyName"), "Synthetic Aperture Radar", abbreviation="SAR")
    im = _sub(_sub(ins, _q("safe", "extension")), _q("s1sarl1", "instrumentMode"))
    _sub(im, _q("s1sarl1", "mode"), "IW")
    _sub(im, _q("s1sarl1", "swath"), "IW")
    xd = _wrap(ms, "measurementOrbitReference", "DESCRIPTION", "DMD", "Orbit Reference")
    orf = _sub(xd, _q("safe", "orbitReference"))
    for typ in ("start", "stop"):
        _sub(orf, _q("safe", "orbitNumber"), scene.absolute_orbit, type=typ)
    for typ in ("start", "stop"):
        _sub(orf, _q("safe", "relativeOrbitNumber"), scene.relative_orbit, type=typ)
    _sub(orf, _q("safe", "cycleNumber"), scene.cycle)
    _sub(orf, _q("safe", "phaseIdentifier"), 1)
    op = _sub(_sub(orf, _q("safe", "extension")), _q("s1", "orbitProperties"))
    _sub(op, _q("s1", "pass"), scene.pass_direction.upper())
    _sub(op, _q("s1", "ascendingNodeTime"), _t(scene.anx_time))
    xd = _wrap(ms, "generalProductInformation", "DESCRIPTION", "DMD",
               "General Product Information")
    gp = _sub(xd, _q("s1sarl1", "standAloneProductInformation"))
    _sub(gp, _q("s1sarl1", "instrumentConfigurationID"), 6)
    _sub(gp, _q("s1sarl1", "missionDataTakeID"), scene.datatake_id)
    for pol in ("VV", "VH"):
        if pol in scene.polarisations:
            _sub(gp, _q("s1sarl1", "transmitterReceiverPolarisation"), pol)
    _sub(gp, _q("s1sarl1", "productClass"), "S")
    _sub(gp, _q("s1sarl1", "productClassDescription"), "SAR Standard L1 Product")
    _sub(gp, _q("s1sarl1", "productComposition"), "Individual")
    _sub(gp, _q("s1sarl1", "productType"), "GRD")
    _sub(gp, _q("s1sarl1", "productTimelinessCategory"), "Fast-24h")
    _sub(gp, _q("s1sarl1", "sliceProductFlag"), "false")
    xd = _wrap(ms, "acquisitionPeriod", "DESCRIPTION", "DMD", "Acquisition Period")
    ap = _sub(xd, _q("safe", "acquisitionPeriod"))
    _sub(ap, _q("safe", "startTime"), _t(scene.first_line))
    _sub(ap, _q("safe", "stopTime"), _t(scene.last_line))
    anx = _sub(_sub(ap, _q("safe", "extension")), _q("s1", "timeANX"))
    _sub(anx, _q("s1", "startTimeANX"),
         f"{(scene.first_line - scene.anx_time).total_seconds() * 1e3:.6e}")
    _sub(anx, _q("s1", "stopTimeANX"),
         f"{(scene.last_line - scene.anx_time).total_seconds() * 1e3:.6e}")
    xd = _wrap(ms, "measurementFrameSet", "DESCRIPTION", "DMD", "Frame Set")
    fr = _sub(_sub(xd, _q("safe", "frameSet")), _q("safe", "frame"))
    fp = _sub(fr, _q("safe", "footPrint"), srsName="http://www.opengis.net/gml/srs/epsg.xml#4326")
    _sub(fp, _q("gml", "coordinates"), " ".join(f"{la:.6f},{lo:.6f}" for la, lo in footprint(pp)))


def footprint(pp: PassProduct) -> list[tuple[float, float]]:
    """(lat, lon) of the image corners in ESA's order: last line first pixel, last line
    last pixel, first line last pixel, first line first pixel."""
    m = pp.model
    out = []
    for line, pixel in ((m.lines - 1, 0), (m.lines - 1, m.samples - 1), (0, m.samples - 1), (0, 0)):
        sel = (pp.grid_line == line) & (pp.grid_pixel == pixel)
        k = int(np.flatnonzero(sel)[0])
        out.append((float(pp.grid_lat[k]), float(pp.grid_lon[k])))
    return out


# ------------------------------------------------------------------------------------
# measurement GeoTIFF and the zip
# ------------------------------------------------------------------------------------

def measurement_tiff(dn: np.ndarray, pp: PassProduct, scene: SceneInfo, pol: str) -> bytes:
    """The uint16 measurement GeoTIFF (as IPF writes it: striped, uncompressed, WGS84 GCPs)."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    with tempfile.TemporaryDirectory(prefix="sarflow-sim-") as tmp:
        path = os.path.join(tmp, "m.tiff")
        ds = gdal.GetDriverByName("GTiff").Create(path, dn.shape[1], dn.shape[0], 1,
                                                  gdal.GDT_UInt16)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        gcps = [gdal.GCP(float(pp.grid_lon[k]), float(pp.grid_lat[k]), float(pp.grid_height[k]),
                         float(pp.grid_pixel[k]), float(pp.grid_line[k]))
                for k in range(pp.grid_line.size)]
        ds.SetGCPs(gcps, srs.ExportToWkt())
        ds.SetMetadataItem("TIFFTAG_IMAGEDESCRIPTION",
                           f"Sentinel-1{scene.mission[-1]} IW GRD HR L1")
        ds.SetMetadataItem("TIFFTAG_SOFTWARE", f"Sentinel-1 IPF {IPF_VERSION}")
        ds.SetMetadataItem("TIFFTAG_DATETIME", f"{scene.processing_time:%Y:%m:%d %H:%M:%S}")
        ds.GetRasterBand(1).WriteArray(dn)
        ds = None
        return Path(path).read_bytes()


def quicklook_png(dns: dict[str, np.ndarray], factor: int = 8) -> bytes:
    """``preview/quick-look.png``: an RGB composite (co-pol, cross-pol, ratio) of the DN
    power averaged over ``factor`` x ``factor`` pixels, as a small PNG."""
    from osgeo import gdal

    gdal.UseExceptions()
    pols = list(dns)
    h, w = (n // factor * factor for n in dns[pols[0]].shape)
    db = []
    for pol in pols[:2]:
        p = dns[pol][:h, :w].astype(np.float64) ** 2
        p = p.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        db.append(10.0 * np.log10(np.maximum(p, 1.0)))
    if len(db) == 1:
        db.append(db[0])
    bands = [db[0], db[1], db[0] - db[1]]
    rgb = []
    for b in bands:
        lo, hi = np.percentile(b, (2, 98))
        rgb.append(np.clip((b - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8))
    mem = gdal.GetDriverByName("MEM").Create("", rgb[0].shape[1], rgb[0].shape[0], 3, gdal.GDT_Byte)
    for i, b in enumerate(rgb, start=1):
        mem.GetRasterBand(i).WriteArray(b)
    with tempfile.TemporaryDirectory(prefix="sarflow-sim-") as tmp:
        path = os.path.join(tmp, "q.png")
        gdal.GetDriverByName("PNG").CreateCopy(path, mem, options=["WORLDFILE=NO"])
        return Path(path).read_bytes()


def map_overlay_kml(pp: PassProduct) -> bytes:
    """``preview/map-overlay.kml``: the quick-look placed on the footprint (gx:LatLonQuad)."""
    kml = "http://www.opengis.net/kml/2.2"
    gx = "http://www.google.com/kml/ext/2.2"
    root = etree.Element(f"{{{kml}}}kml", nsmap={None: kml, "gx": gx})
    doc = _sub(root, f"{{{kml}}}Document")
    _sub(doc, f"{{{kml}}}name", "Sentinel-1 Map Overlay")
    folder = _sub(doc, f"{{{kml}}}Folder")
    _sub(folder, f"{{{kml}}}name", "Sentinel-1 Scene Overlay")
    go = _sub(folder, f"{{{kml}}}GroundOverlay")
    _sub(go, f"{{{kml}}}name", "Sentinel-1 Image Overlay")
    _sub(_sub(go, f"{{{kml}}}Icon"), f"{{{kml}}}href", "quick-look.png")
    quad = _sub(go, f"{{{gx}}}LatLonQuad")
    _sub(quad, f"{{{kml}}}coordinates",
         " ".join(f"{lo:.6f},{la:.6f}" for la, lo in footprint(pp)))
    return _tree_bytes(root)


def product_preview_html(scene: SceneInfo) -> bytes:
    """``preview/product-preview.html``: a minimal page naming the product."""
    pid = scene.product_id
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<html>\n<head>\n<title>{pid}</title>\n"
            f"</head>\n<body>\n<h1>{pid}</h1>\n<img src=\"quick-look.png\"/>\n</body>\n"
            f"</html>\n").encode()


def product_files(scene: SceneInfo, pp: PassProduct, dns: dict[str, np.ndarray]
                  ) -> dict[str, bytes]:
    """Every file of the product (relative path -> bytes), manifest last."""
    files: dict[str, bytes] = {}
    for pol in scene.polarisations:
        dn = dns[pol]
        valid = dn[dn > 0].astype(np.float64)
        stem = scene.stem(pol)
        files[f"annotation/{stem}.xml"] = annotation_xml(scene, pp, pol, float(valid.mean()),
                                                         float(valid.std()))
        files[f"annotation/calibration/calibration-{stem}.xml"] = calibration_xml(scene, pp, pol)
        files[f"annotation/calibration/noise-{stem}.xml"] = noise_xml(scene, pp, pol)
        files[f"annotation/rfi/rfi-{stem}.xml"] = rfi_xml(scene, pol)
        files[f"measurement/{stem}.tiff"] = measurement_tiff(dn, pp, scene, pol)
    files["preview/quick-look.png"] = quicklook_png(dns)
    files["preview/map-overlay.kml"] = map_overlay_kml(pp)
    files["preview/product-preview.html"] = product_preview_html(scene)
    files["manifest.safe"] = manifest_xml(scene, pp, files)
    return files


def write_zip(path: str | os.PathLike, safe_name: str, files: dict[str, bytes],
              when: dt.datetime) -> Path:
    """Write the product as ``<safe_name>/...`` in a zip with fixed timestamps, atomically."""
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    dirs = sorted({"/".join(rel.split("/")[:k]) for rel in files
                   for k in range(1, rel.count("/") + 1)})
    path = Path(path)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in [""] + dirs:
                info = zipfile.ZipInfo(f"{safe_name}/{name}/" if name else f"{safe_name}/",
                                       date_time=stamp)
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
            for rel in ["manifest.safe"] + sorted(r for r in files if r != "manifest.safe"):
                info = zipfile.ZipInfo(f"{safe_name}/{rel}", date_time=stamp)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                level = 1 if rel.endswith(".tiff") else 6
                zf.writestr(info, files[rel], compresslevel=level)
    return path


__all__ = ["PassProduct", "SceneInfo", "pass_product", "product_files", "write_zip",
           "orbit_numbers", "footprint"]
