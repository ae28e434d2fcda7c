#!{python}
"""Stand-in for SNAP's gpt (written by sarflow's tests; not SNAP).  Each behaviour below
reproduces what SNAP 9-14 does in that case, as read from its sources (cited inline)."""
import json, os, struct, subprocess, sys, time, zipfile
import xml.etree.ElementTree as ET
from pathlib import Path

here = Path(__file__).resolve().parent
mode = json.loads((here / "mode.json").read_text())
with open(here / "calls.jsonl", "a") as fh:
    fh.write(json.dumps(sys.argv) + "\n")
args = sys.argv[1:]
OPERATORS = json.loads((here / "operators.json").read_text())


def out(*lines):
    print("\n".join(lines), flush=True)


def hang(seconds=600):
    """Block like a JVM whose worker threads wait: a child process, no more output."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (here / "child.pid").write_text(str(child.pid))
    (here / "gpt.pid").write_text(str(os.getpid()))
    time.sleep(seconds)
    sys.exit(0)


# ---- gpt <Operator> -h: the usage CommandLineUsage prints ------------------------------
if len(args) == 2 and args[1] == "-h" and not args[0].endswith(".xml"):
    op = args[0]
    if op not in OPERATORS or op in mode.get("missing_operators", []):
        sys.stderr.write(f"Error: Unknown operator '{op}'.\n")  # message text: not relied on
        sys.exit(1)
    lines = ["Usage:", f"  gpt {op} [options] ", "", "Description:", f"  {op}", "", "",
             "Source Options:", "  -Ssource=<file>    Sets source 'source' to <filepath>.",
             "                     This is a mandatory source.", "", "Parameter Options:"]
    for name, spec in sorted(OPERATORS[op].items()):
        lines.append(f"  -P{name}=<{spec['type']}>    Sets parameter '{name}' to <{spec['type']}>.")
        if spec.get("values"):
            lines.append("                                Value must be one of "
                         + ", ".join(f"'{v}'" for v in spec["values"]) + ".")
        if spec.get("default") is not None:
            lines.append(f"                                Default value is '{spec['default']}'.")
    lines += ["", "Graph XML Format:", '  <graph id="someGraphId">', "    <version>1.0</version>",
              '    <node id="someNodeId">', f"      <operator>{op}</operator>", "      <parameters>"]
    lines += [f"        <{n}>{s['type']}</{n}>" for n, s in OPERATORS[op].items()]
    lines += ["      </parameters>", "    </node>", "  </graph>"]
    out(*lines)
    sys.exit(0)

params = dict(a[2:].split("=", 1) for a in args if a.startswith("-P"))
jvm = dict(a[4:].split("=", 1) for a in args if a.startswith("-J-D"))
aux = Path(jvm.get("snap.userdir", str(Path.home() / ".snap"))) / "auxdata"
graph = next(a for a in args if a.endswith(".xml"))
out("INFO: org.esa.snap.core.gpf.operators.tooladapter.ToolAdapterIO: Initializing external tool adapters")
kind = mode["mode"]
if kind == "hang":
    out("Executing processing graph ...10%")
    hang()
if kind == "stall":  # a download that stalls: one line, then nothing, no output growth
    out("INFO: eu.esa.sar.commons.io.DownloadableContentImpl: http retrieving http://step.esa.int/auxdata/dem/SRTMGL1/N41E012.SRTMGL1.hgt.zip")
    hang()
if kind == "fail":
    sys.stderr.write(mode["stderr"] + "\n")
    sys.exit(mode.get("rc", 1))
if kind == "nothing":
    out("Processing completed in 0.1 seconds")
    sys.exit(0)

root = ET.parse(graph).getroot()
ops = [n.find("operator").text for n in root.findall("node")]
par = {p.tag: (p.text or "") for n in root.findall("node") for p in n.find("parameters")}
outp = Path(params["output"])


def read_dim(path):
    text = Path(path).read_text()
    return json.loads(text[text.index("<!--") + 4:text.index("-->")])


def write_dim(path, state, width, height):
    """A BEAM-DIMAP header (with the stand-in's state in a comment) and its .data folder."""
    Path(path).write_text(f"<Dimap_Document><!--{json.dumps(state)}--><Raster_Dimensions>"
                          f"<NCOLS>{width}</NCOLS><NROWS>{height}</NROWS><NBANDS>2</NBANDS>"
                          "</Raster_Dimensions></Dimap_Document>")
    Path(path).with_suffix(".data").mkdir(exist_ok=True)


prev = read_dim(params["input"]) if params["input"].endswith(".dim") else {}
state = {"region": par.get("geoRegion") or prev.get("region"), "ops": prev.get("ops", []) + ops[1:-1],
         "orbit_attr": prev.get("orbit_attr"), "empty": prev.get("empty", False)}

# ---- Apply-Orbit-File (ApplyOrbitFileOp.updateOrbits / updateOrbitStateVectors) -------
ORBIT_NAME = {"POEORB": "S1A_OPER_AUX_POEORB_OPOD_20210208T122419_V20210118T225942_20210120T005942.EOF.zip",
              "RESORB": "S1A_OPER_AUX_RESORB_OPOD_20210119T061544_V20210119T020604_20210119T052334.EOF.zip"}
if "Apply-Orbit-File" in ops:
    asked = par["orbitType"]
    wanted = "POEORB" if asked.startswith("Sentinel Precise") else "RESORB"
    local = sorted((aux / "Orbits" / "Sentinel-1" / wanted).rglob("*.EOF*"))
    behaviour = mode.get("orbit", "download")
    prefix = asked[:asked.index("(")] if "(" in asked else asked
    if local:
        state["orbit_attr"] = f"{prefix} {local[0].name}"
    elif behaviour == "download" or (behaviour == "resorb_fallback" and wanted == "RESORB"):
        dest = aux / "Orbits" / "Sentinel-1" / wanted / "S1A" / "2021" / "01" / ORBIT_NAME[wanted]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w") as zf:
            zf.writestr(ORBIT_NAME[wanted][:-4], "<Earth_Explorer_File/>")
        state["orbit_attr"] = f"{prefix} {dest.name}"
    elif behaviour == "resorb_fallback":  # no POEORB yet: a warning, then RESORB, exit 0
        dest = aux / "Orbits" / "Sentinel-1" / "RESORB" / "S1A" / "2021" / "01" / ORBIT_NAME["RESORB"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w") as zf:
            zf.writestr(dest.name[:-4], "<Earth_Explorer_File/>")
        out("WARNING: eu.esa.sar.sar.gpf.orbits.ApplyOrbitFileOp: No valid orbit file found for 19-JAN-2021 03:16:53",
            f"WARNING: eu.esa.sar.sar.gpf.orbits.ApplyOrbitFileOp: Using Sentinel Restituted {dest} instead")
        state["orbit_attr"] = f"{prefix} {dest.name}"  # the *asked* type, the RESORB file
    elif behaviour == "none_continue":  # continueOnFail=true: the annotation orbit stays
        out("WARNING: eu.esa.sar.sar.gpf.orbits.ApplyOrbitFileOp: No valid orbit file found for 19-JAN-2021 03:16:53",
            "WARNING: org.esa.snap.core.util.SystemUtils: ApplyOrbit ignoring error and continuing: "
            "org.esa.snap.core.gpf.OperatorException: No valid orbit file found")
        state["orbit_attr"] = ""

# ---- Subset (SubsetOp.initialize: empty region -> WARNING, 0 x 0 "Empty_" product) ----
if "Subset" in ops and mode.get("empty_subset"):
    out("WARNING: org.esa.snap.core.gpf.common.SubsetOp: No intersection with source product boundary "
        "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255")
    state["empty"] = True

if par["formatName"] == "BEAM-DIMAP":  # a stage of the split chain
    write_dim(outp, state, 0 if state["empty"] else 1000, 0 if state["empty"] else 800)
    out("Writing target product ...done.", "Processing completed in 0.5 seconds")
    sys.exit(0)

# ---- Terrain-Correction needs the EGM96 grid (EarthGravitationalModel96) -------------
egm = aux / "dem" / "egm96" / "ww15mgh_b.zip"
if egm.exists():
    try:
        with zipfile.ZipFile(egm) as zf:
            zf.read("ww15mgh_b.grd")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        sys.stderr.write("SEVERE: eu.esa.sar.commons.EarthGravitationalModel96: "
                         f"java.util.zip.ZipException: zip END header not found ({egm})\n"
                         "Error: [NodeId: Terrain-Correction] java.util.zip.ZipException: zip END header not found\n")
        sys.exit(1)
else:
    how = mode.get("egm96", "download")
    out(f"INFO: eu.esa.sar.commons.io.DownloadableContentImpl: http retrieving http://step.esa.int/auxdata/dem/egm96/ww15mgh_b.zip")
    egm.parent.mkdir(parents=True, exist_ok=True)
    if how == "offline":
        sys.stderr.write("SEVERE: eu.esa.sar.commons.io.DownloadableContentImpl: java.net.UnknownHostException: step.esa.int\n"
                         "Error: [NodeId: Terrain-Correction] Unable to download ww15mgh_b.zip\n")
        sys.exit(1)
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ww15mgh_b.grd", "-90 90 0 360 .25 .25\n" + "0.0 " * 2000)
    data = buf.getvalue()
    if how == "cut":  # DownloadableContentImpl writes straight to the final name: killed mid-way
        egm.write_bytes(data[: len(data) // 2])
        hang()
    egm.write_bytes(data)

if state["empty"]:  # Terrain-Correction of a 0 x 0 product: a header-only 0 x 0 TIFF
    ifd = struct.pack("<H", 2) + struct.pack("<HHII", 256, 4, 1, 0) + struct.pack("<HHII", 257, 4, 1, 0) + b"\0\0\0\0"
    outp.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd)
    out("Writing target product ...done.", "Processing completed in 0.2 seconds")
    sys.exit(0)

if kind == "oom_alive":  # a JAI tile thread dies; gpt's main thread waits for its tile
    outp.write_bytes(b"II+\0" + b"\0" * 4096)  # a partial product
    out("SEVERE: org.esa.snap.core.gpf.internal.OperatorExecutor: ...",
        'Exception in thread "SunTileScheduler0Standard3" java.lang.OutOfMemoryError: Java heap space',
        "\tat java.desktop/java.awt.image.DataBufferFloat.<init>(DataBufferFloat.java:91)")
    hang()

# ---- the terrain-corrected product: SNAP-like BigTIFF, bands in SNAP's order, tag 65000
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
region = state["region"]
if "geoRegion" not in par:
    (here / "ops.json").write_text(json.dumps(state["ops"]))
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
vv = np.broadcast_to(vv, (height, width)).copy()
vh = vv / 4
lsm = np.where(K % 50 < 5, 1, 0) + np.where(J % 40 < 3, 2, 0)
lsm = np.broadcast_to(lsm, (height, width)).copy()
edge = min(xs) + mode["nodata_deg"]
if mode.get("clamped_cols"):
    # Sentinel1RemoveThermalNoiseOp: DN^2 - noise <= 0 becomes 1e-5 (DN^2), then
    # Calibration divides by the sigma0 LUT squared
    first = int(np.argmax(lon >= edge))
    clamp = np.float32(1e-5 / mode["lut"] ** 2)
    vv[:, first:first + mode["clamped_cols"]] = clamp
    vh[:, first:first + mode["clamped_cols"]] = clamp
vv[:, lon < edge] = 0; vh[:, lon < edge] = 0; lsm[:, lon < edge] = 0
ds = gdal.GetDriverByName("GTiff").Create(str(outp), width, height, 3, gdal.GDT_Float32,
                                          options=["BIGTIFF=YES", "TILED=YES"])
ds.SetGeoTransform((west, d, 0, north, 0, -d))
srs = osr.SpatialReference(); srs.ImportFromEPSG(4326); ds.SetProjection(srs.ExportToWkt())
for i, a in enumerate([vh, vv, lsm.astype(np.float32)]):
    ds.GetRasterBand(i + 1).WriteArray(a)
ds = None
names = ["Sigma0_VH", "Sigma0_VV", "layoverShadowMask"]
info = "".join(f"<Spectral_Band_Info><BAND_INDEX>{i}</BAND_INDEX><BAND_NAME>{n}</BAND_NAME>"
               f"<DATA_TYPE>float32</DATA_TYPE></Spectral_Band_Info>" for i, n in enumerate(names))
meta = ""
if state["orbit_attr"] is not None:  # DimapHeaderWriter: the abstracted metadata
    meta = ('<Dataset_Sources><MDElem name="metadata"><MDElem name="Abstracted_Metadata">'
            f'<MDATTR name="MISSION" type="ascii">SENTINEL-1A</MDATTR>'
            f'<MDATTR name="orbit_state_vector_file" type="ascii">{state["orbit_attr"]}</MDATTR>'
            '</MDElem><MDElem name="Processing_Graph"/></MDElem></Dataset_Sources>')
text = (f'<?xml version="1.0" encoding="ISO-8859-1"?><Dimap_Document name="x.dim">{meta}'
        f'<Image_Interpretation>{info}</Image_Interpretation></Dimap_Document>').encode() + b"\0"
data = bytearray(outp.read_bytes())
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
outp.write_bytes(bytes(data))
out("Writing target product ...done.", "Processing completed in 1.0 seconds")
if mode.get("hang_after_completion"):  # GPT sometimes does not exit after its last line
    hang()
