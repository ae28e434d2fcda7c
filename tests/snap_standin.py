"""A stand-in for SNAP's gpt, for tests of sarflow's side of the gpt boundary.

It is not SNAP: it records its argument lists, and per ``mode.json`` writes a SNAP-like
terrain-corrected BigTIFF (bands in SNAP's order, the DIMAP header in TIFF tag 65000, pixel
centres on the graph's standard grid), hangs, fails with given stderr, or writes nothing.
SNAP cannot be installed on the test machines; tests marked ``snap`` use the real one.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

STAND_IN = r'''#!{python}
"""Stand-in for SNAP's gpt (written by sarflow's tests; not SNAP)."""
import json, struct, subprocess, sys, time
import xml.etree.ElementTree as ET
from pathlib import Path

here = Path(__file__).resolve().parent
mode = json.loads((here / "mode.json").read_text())
with open(here / "calls.jsonl", "a") as fh:
    fh.write(json.dumps(sys.argv) + "\n")
args = sys.argv[1:]
params = dict(a[2:].split("=", 1) for a in args if a.startswith("-P"))
graph = next(a for a in args if a.endswith(".xml"))
print("INFO: org.esa.snap.core.gpf.operators.tooladapter.ToolAdapterIO: Initializing external tool adapters")
sys.stdout.flush()
kind = mode["mode"]
if kind == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (here / "child.pid").write_text(str(child.pid))
    (here / "gpt.pid").write_text(str(__import__("os").getpid()))
    print("Executing processing graph ...10%", flush=True)
    time.sleep(600)
if kind == "fail":
    sys.stderr.write(mode["stderr"] + "\n")
    sys.exit(mode.get("rc", 1))
if kind == "nothing":
    print("Processing completed in 0.1 seconds")
    sys.exit(0)

# kind == "ok": a SNAP-like terrain-corrected BigTIFF, bands in SNAP's order, DIMAP tag 65000
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
root = ET.parse(graph).getroot()
par = {{p.tag: (p.text or "") for n in root.findall("node") for p in n.find("parameters")}}
if par["formatName"] == "BEAM-DIMAP":  # a stage of the split chain: pass the region along
    prev = json.loads(Path(params["input"]).read_text()) if params["input"].endswith(".dim") else {{}}
    ops = prev.get("ops", []) + [n.find("operator").text for n in root.findall("node")][1:-1]
    Path(params["output"]).write_text(json.dumps({{"region": par.get("geoRegion") or prev.get("region"), "ops": ops}}))
    sys.exit(0)
if "geoRegion" in par:
    region = par["geoRegion"]
else:
    prev = json.loads(Path(params["input"]).read_text())
    region = prev["region"]
    (here / "ops.json").write_text(json.dumps(prev["ops"] + ["Terrain-Correction"]))
nums = [float(v) for v in region.replace("POLYGON((", "").replace("))", "").replace(",", " ").split()]
xs, ys = nums[0::2], nums[1::2]
d = float(par["pixelSpacingInDegree"])
ox, oy = float(par["standardGridOriginX"]), float(par["standardGridOriginY"])
if mode.get("ignore_origin"):  # a SNAP that did not align: centres on whole multiples
    ox = oy = 0.0
# SNAP aligns pixel centres to origin + k * spacing
k0 = int(np.floor((min(xs) - ox) / d)); k1 = int(np.ceil((max(xs) - ox) / d))
j1 = int(np.ceil((max(ys) - oy) / d)); j0 = int(np.floor((min(ys) - oy) / d))
width, height = k1 - k0 + 1, j1 - j0 + 1
west, north = ox + (k0 - 0.5) * d, oy + (j1 + 0.5) * d
lon = west + (np.arange(width) + 0.5) * d
lat = north - (np.arange(height) + 0.5) * d
K = np.floor(lon / d + 1e-6).astype(np.int64)[None, :]
J = np.floor(lat / d + 1e-6).astype(np.int64)[:, None]
vv = (0.01 + 1e-4 * ((7 * K + 3 * J) % 1000)).astype(np.float32)
vh = vv / 4
lsm = np.where(K % 50 < 5, 1, 0) + np.where(J % 40 < 3, 2, 0)
edge = min(xs) + mode["nodata_deg"]
vv[:, lon < edge] = 0; vh[:, lon < edge] = 0; lsm[:, lon < edge] = 0
out = params["output"]
ds = gdal.GetDriverByName("GTiff").Create(out, width, height, 3, gdal.GDT_Float32,
                                          options=["BIGTIFF=YES", "TILED=YES"])
ds.SetGeoTransform((west, d, 0, north, 0, -d))
srs = osr.SpatialReference(); srs.ImportFromEPSG(4326); ds.SetProjection(srs.ExportToWkt())
for i, a in enumerate([vh, vv, lsm.astype(np.float32)]):
    ds.GetRasterBand(i + 1).WriteArray(a)
ds = None
names = ["Sigma0_VH", "Sigma0_VV", "layoverShadowMask"]
info = "".join(f"<Spectral_Band_Info><BAND_INDEX>{{i}}</BAND_INDEX><BAND_NAME>{{n}}</BAND_NAME>"
               f"<DATA_TYPE>float32</DATA_TYPE></Spectral_Band_Info>" for i, n in enumerate(names))
text = (f'<?xml version="1.0" encoding="ISO-8859-1"?><Dimap_Document name="x.dim">'
        f'<Image_Interpretation>{{info}}</Image_Interpretation></Dimap_Document>').encode() + b"\0"
data = bytearray(Path(out).read_bytes())
first = struct.unpack_from("<Q", data, 8)[0]
n = struct.unpack_from("<Q", data, first)[0]
entries = [bytes(data[first + 8 + 20 * i:first + 28 + 20 * i]) for i in range(n)]
nxt = struct.unpack_from("<Q", data, first + 8 + 20 * n)[0]
off = len(data); data += text
if len(data) % 2: data += b"\0"
entries.append(struct.pack("<HHQQ", 65000, 2, len(text), off))
entries.sort(key=lambda b: struct.unpack_from("<H", b)[0])
ifd = len(data)
data += struct.pack("<Q", len(entries)) + b"".join(entries) + struct.pack("<Q", nxt)
struct.pack_into("<Q", data, 8, ifd)
Path(out).write_bytes(bytes(data))
print("Writing target product ...done.\nProcessing completed in 1.0 seconds")
'''




class StandIn:
    """A stand-in gpt installed in ``folder``: ``set(mode, **kw)``, ``calls()``, ``read()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "gpt"

    def set(self, mode: str, **kw) -> None:
        (self.folder / "mode.json").write_text(json.dumps({"mode": mode, "nodata_deg": 0.0, **kw}))

    def calls(self) -> list[list[str]]:
        f = self.folder / "calls.jsonl"
        return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []

    def read(self, name: str) -> str:
        return (self.folder / name).read_text()


def install_standin(folder: Path) -> StandIn:
    """Write the stand-in gpt into ``folder`` (created), in mode ``ok``."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "gpt"
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    standin = StandIn(folder)
    standin.set("ok")
    return standin
