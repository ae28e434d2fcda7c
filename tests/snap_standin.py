"""A stand-in for SNAP's gpt, for tests of sarflow's side of the gpt boundary.

It is not SNAP: it records its argument lists and, per ``mode.json``, behaves the way SNAP
9-14 does in one case, as read from SNAP's sources: writes a SNAP-like terrain-corrected
BigTIFF (bands in SNAP's order, the DIMAP header with the abstracted metadata in TIFF tag
65000, pixel centres on the graph's standard grid); falls back to RESORB with SNAP's
warnings and the orbit file name in ``orbit_state_vector_file``; returns an empty subset
(warning, exit 0, 0 x 0 product); reads/downloads EGM96 into the user folder's auxdata
(failing on a truncated zip, or cut off mid-download); hangs after "Processing
completed"; lives on after an OutOfMemoryError; stalls; fails with given stderr; and
prints ``gpt <Operator> -h`` usage in SNAP's format from :data:`OPERATORS`.  SNAP cannot
be installed on the test machines; tests marked ``snap`` use the real one.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("snap_standin_gpt.py")

ORBIT_TYPES = ["Sentinel Precise (Auto Download)", "Sentinel Restituted (Auto Download)",
               "DORIS Preliminary POR (ENVISAT)", "DORIS Precise VOR (ENVISAT) (Auto Download)",
               "DELFT Precise (ENVISAT, ERS1&2) (Auto Download)",
               "PRARE Precise (ERS1&2) (Auto Download)"]
RESAMPLING = ["NEAREST_NEIGHBOUR", "BILINEAR_INTERPOLATION", "CUBIC_CONVOLUTION",
              "BISINC_5_POINT_INTERPOLATION", "BISINC_11_POINT_INTERPOLATION",
              "BISINC_21_POINT_INTERPOLATION", "BICUBIC_INTERPOLATION", "DELAUNAY_INTERPOLATION"]
INCIDENCE = ["Use incidence angle from Ellipsoid", "Use local incidence angle from DEM",
             "Use projected local incidence angle from DEM"]
AUX_FILE = ["Latest Auxiliary File", "Product Auxiliary File", "External Auxiliary File"]


def _p(type_: str, default=None, values=None) -> dict:
    return {"type": type_, "default": default, "values": values}


OPERATORS: dict[str, dict[str, dict]] = {
    # the @Parameter fields of each operator (SNAP 9 / s1tbx 9.0.0 names)
    "Read": {"file": _p("file"), "formatName": _p("string"), "sourceBands": _p("string[]"),
             "sourceMasks": _p("string[]"), "pixelRegion": _p("rectangle"),
             "geometryRegion": _p("geometry"), "useAdvancedOptions": _p("boolean", "false"),
             "copyMetadata": _p("boolean", "true")},
    "Apply-Orbit-File": {"orbitType": _p("string", ORBIT_TYPES[0], ORBIT_TYPES),
                         "polyDegree": _p("int", "3"), "continueOnFail": _p("boolean", "false")},
    "Remove-GRD-Border-Noise": {"selectedPolarisations": _p("string[]"),
                                "borderLimit": _p("int", "500"),
                                "trimThreshold": _p("double", "0.5")},
    "ThermalNoiseRemoval": {"selectedPolarisations": _p("string[]"),
                            "removeThermalNoise": _p("boolean", "true"),
                            "outputNoise": _p("boolean", "false"),
                            "reIntroduceThermalNoise": _p("boolean", "false")},
    "Calibration": {"sourceBands": _p("string[]"), "auxFile": _p("string", AUX_FILE[0], AUX_FILE),
                    "externalAuxFile": _p("file"), "outputImageInComplex": _p("boolean", "false"),
                    "outputImageScaleInDb": _p("boolean", "false"),
                    "createGammaBand": _p("boolean", "false"), "createBetaBand": _p("boolean", "false"),
                    "selectedPolarisations": _p("string[]"), "outputSigmaBand": _p("boolean", "true"),
                    "outputGammaBand": _p("boolean", "false"), "outputBetaBand": _p("boolean", "false")},
    "Subset": {"sourceBands": _p("string[]"), "tiePointGridNames": _p("string[]"),
               "region": _p("rectangle"), "referenceBand": _p("string"),
               "geoRegion": _p("geometry"), "subSamplingX": _p("int", "1"),
               "subSamplingY": _p("int", "1"), "fullSwath": _p("boolean", "false"),
               "copyMetadata": _p("boolean", "false")},
    "Terrain-Correction": {
        "sourceBands": _p("string[]"), "demName": _p("string", "SRTM 3Sec"),
        "externalDEMFile": _p("file"), "externalDEMNoDataValue": _p("double", "0"),
        "externalDEMApplyEGM": _p("boolean", "true"),
        "demResamplingMethod": _p("string", RESAMPLING[1], RESAMPLING),
        "imgResamplingMethod": _p("string", RESAMPLING[1], RESAMPLING),
        "pixelSpacingInMeter": _p("double", "0"), "pixelSpacingInDegree": _p("double", "0"),
        "mapProjection": _p("string", "WGS84(DD)"), "alignToStandardGrid": _p("boolean", "false"),
        "standardGridOriginX": _p("double", "0"), "standardGridOriginY": _p("double", "0"),
        "nodataValueAtSea": _p("boolean", "true"), "saveDEM": _p("boolean", "false"),
        "saveLatLon": _p("boolean", "false"),
        "saveIncidenceAngleFromEllipsoid": _p("boolean", "false"),
        "saveLocalIncidenceAngle": _p("boolean", "false"),
        "saveProjectedLocalIncidenceAngle": _p("boolean", "false"),
        "saveSelectedSourceBand": _p("boolean", "true"),
        "saveLayoverShadowMask": _p("boolean", "false"), "outputComplex": _p("boolean", "false"),
        "applyRadiometricNormalization": _p("boolean", "false"),
        "saveSigmaNought": _p("boolean", "false"), "saveGammaNought": _p("boolean", "false"),
        "saveBetaNought": _p("boolean", "false"),
        "incidenceAngleForSigma0": _p("string", INCIDENCE[2], INCIDENCE),
        "incidenceAngleForGamma0": _p("string", INCIDENCE[2], INCIDENCE),
        "auxFile": _p("string", AUX_FILE[0], AUX_FILE), "externalAuxFile": _p("file")},
    "Write": {"file": _p("file"), "formatName": _p("string", "BEAM-DIMAP"),
              "deleteOutputOnFailure": _p("boolean", "true"),
              "writeEntireTileRows": _p("boolean", "false"),
              "clearCacheAfterRowWrite": _p("boolean", "false")},
}


class StandIn:
    """A stand-in gpt installed in ``folder``: ``set(mode, **kw)``, ``calls()``, ``read()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "gpt"

    def set(self, mode: str, **kw) -> None:
        (self.folder / "mode.json").write_text(json.dumps({"mode": mode, "nodata_deg": 0.0, **kw}))

    def all_calls(self) -> list[list[str]]:
        f = self.folder / "calls.jsonl"
        return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []

    def calls(self) -> list[list[str]]:
        """The graph runs (not the ``gpt <Operator> -h`` look-ups of the pre-batch check)."""
        return [c for c in self.all_calls() if c[-1] != "-h"]

    def read(self, name: str) -> str:
        return (self.folder / name).read_text()


def install_standin(folder: Path, version: str = "9.0.0") -> StandIn:
    """Write the stand-in gpt into ``folder`` (created; ``folder/../VERSION.txt`` too), in mode ``ok``."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "gpt"
    exe.write_text(SCRIPT.read_text().replace("{python}", sys.executable, 1))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (folder / "operators.json").write_text(json.dumps(OPERATORS))
    (folder.parent / "VERSION.txt").write_text(f"SNAP {version}\n")
    standin = StandIn(folder)
    standin.set("ok")
    return standin
