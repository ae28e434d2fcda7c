"""Open a sarflow HTML report in headless Chromium and screenshot it.

    python bench/check_report.py [REPORT.html] [--png OUT.png]

Without REPORT.html, builds the small synthetic event of tests/test_37_report.py (DEM, G1,
inventory, a model, predictions, evaluation) and its report in a temporary folder.  Checks:
the page parses and every embedded image decodes as a PNG; Chromium (when installed: Debian
`apt-get install chromium`) loads it headless without errors in its log and the screenshot
is not blank.  Prints one JSON object; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _test_module():
    spec = importlib.util.spec_from_file_location("sarflow_test_report",
                                                  ROOT / "tests" / "test_37_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_demo_report(folder: Path) -> Path:
    """The synthetic event's report (the one the CI test checks), with an experiment chart."""
    from sarflow.report import write_report

    mod = _test_module()
    cfg = mod.build_event(folder)
    return write_report(cfg, experiment_table=mod.EXPERIMENTS)


def check_images(report: Path) -> dict:
    """Parse the page and decode its images (as the CI test does)."""
    mod = _test_module()
    page = mod.parse_page(report)
    shapes = [list(mod.decode_png(i["src"]).shape) for i in page.images]
    notes = [t.strip() for t in page.text if "could not be drawn" in t or "no DEM" in t]
    return {"images": len(shapes), "image_shapes": shapes, "notes": notes}


def screenshot(report: Path, png: Path, chromium: str, width: int = 1300,
               height: int = 4200) -> dict:
    """Render the page headless; return the log lines that report errors and image stats."""
    with tempfile.TemporaryDirectory(prefix="sarflow-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-dev-shm-usage",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr",
               "--v=0", f"--window-size={width},{height}", f"--screenshot={png}",
               report.resolve().as_uri()]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        seconds = time.perf_counter() - t0
    log = (proc.stdout + proc.stderr).splitlines()
    # page-level problems: JavaScript errors, resources that failed to load
    errors = [ln for ln in log if "CONSOLE" in ln or "Uncaught" in ln
              or "net::ERR" in ln or "Failed to load" in ln]
    out = {"returncode": proc.returncode, "seconds": round(seconds, 1), "page_errors": errors}
    if png.exists():
        import numpy as np
        from PIL import Image

        img = np.asarray(Image.open(png).convert("RGB"))
        non_white = (img < 245).any(axis=-1)
        out.update(screenshot=str(png), size=list(img.shape[:2]),
                   non_white_fraction=round(float(non_white.mean()), 3),
                   distinct_colours=int(len(np.unique(img.reshape(-1, 3), axis=0))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", type=Path)
    ap.add_argument("--png", type=Path, default=None, help="screenshot path (default: beside "
                    "the report)")
    args = ap.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tmp = None
    report = args.report
    if report is None:
        tmp = Path(tempfile.mkdtemp(prefix="sarflow-report-check-"))
        report = build_demo_report(tmp)
    result = {"report": str(report), "bytes": report.stat().st_size, **check_images(report)}
    chromium = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    ok = result["images"] > 0
    if chromium is None:
        result["chromium"] = "not installed (apt-get install chromium); screenshot skipped"
    else:
        png = args.png or report.with_suffix(".png")
        shot = screenshot(report, png, chromium)
        result["chromium"] = {"binary": chromium, **shot}
        ok = ok and shot["returncode"] == 0 and not shot["page_errors"] \
            and shot.get("non_white_fraction", 0) > 0.05
    result["ok"] = bool(ok)
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
