"""The ``import`` engine: already terrain-corrected backscatter (OPERA RTC-S1, HyP3 RTC, a
generic folder of calibrated GeoTIFFs) onto the event lattice.  No SNAP, no DEM.

A thin adapter: :mod:`sarflow.rtc_products` recognises the product and reads it onto the
grid (conversion to linear power, frame mosaic, resampling by :mod:`sarflow.regrid`); this
module writes the scene output every engine writes, with the product's radiometric
convention (``sigma0`` or ``gamma0``) in its band names and its ``radiometry`` tag.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..grid import RasterWriter
from . import SceneJob, SceneResult, band_names, job_tags


def _record(product: Any) -> Any:
    """The catalog record of ``product`` (for tags when the engine runs on its own)."""
    from ..catalog import SceneRecord

    return SceneRecord(path=product.path, product_id=product.product_id, mission=product.mission,
                       start=product.start, pass_direction=product.pass_direction,
                       relative_orbit=product.relative_orbit,
                       polarisations=list(product.polarisations), product_type=product.kind,
                       radiometry=product.radiometry, burst=product.burst)


def _tags(product: Any, job: SceneJob, facts: dict[str, Any]) -> dict[str, Any]:
    """The stage's tags (``job.tags``) plus what only this engine knows."""
    from ..errors import InputError
    from ..regrid import describe_method
    from ..rtc_products import describe_conversion

    tags = job_tags(job, ENGINE, None, record=_record(product))
    if tags.get("radiometry", product.radiometry) != product.radiometry:
        raise InputError(f"{product.product_id}: the product holds {product.radiometry}, the "
                         f"catalog said {tags['radiometry']}; rerun sarflow preprocess")
    return {
        **tags,
        "pass_source": product.pass_source,
        "orbit_source": "product (already terrain-corrected)",
        "radiometry": product.radiometry,
        "units": f"linear {product.radiometry}",
        "product_type": product.kind,
        "source_scale": product.scale,
        "scale_conversion": describe_conversion(product.scale),
        "resampling": {p: describe_method(m) for p, m in facts["resampling"].items()},
        "source_files": {p: list(fs) for p, fs in product.files.items()},
        "layover_shadow_source": _mask_source(product),
        "burst": product.burst or "",
    }


def _mask_source(product: Any) -> str:
    """Where the layover/shadow band came from, in words (for the tags and the log)."""
    if not product.mask_files:
        return "none: the product has no layover/shadow layer, only pixels without data are masked"
    return f"{', '.join(Path(f).name for f in product.mask_files)} ({product.mask_coding})"


class ImportEngine:
    """Already terrain-corrected products onto the lattice."""

    name = "import"

    def available(self, settings: Any = None) -> bool:
        """Always: it needs only GDAL and numpy."""
        return True

    def version(self, settings: Any = None) -> str:
        """sarflow's version: the reader is part of it."""
        from .. import __version__

        return f"sarflow {__version__}"

    def process(self, job: SceneJob) -> SceneResult:
        """Read ``job.scene`` (an RTC product) onto ``job.grid`` and write it atomically."""
        from ..rtc_products import open_rtc_product, read_on_grid

        t0 = time.perf_counter()
        product = open_rtc_product(job.scene)
        data, facts = read_on_grid(product, job.grid, list(job.polarisations))
        bands = band_names(job.polarisations, product.radiometry)
        with RasterWriter(job.output, job.grid, len(bands), bands, _tags(product, job, facts)) as w:
            w.write(data)
        seconds = time.perf_counter() - t0
        notes = [f"{product.kind} {product.radiometry} ({product.scale}) resampled "
                 f"{', '.join(f'{p} {m}' for p, m in facts['resampling'].items())}",
                 f"pass {product.pass_direction} from {product.pass_source}",
                 f"layover/shadow: {_mask_source(product)}"]
        try:
            job.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(job.log_path, "a") as fh:
                fh.write("\n".join([f"product {product.product_id}", f"engine import, {seconds:.2f} s"]
                                   + [f"note: {n}" for n in notes]) + "\n")
        except OSError:
            pass  # a log that cannot be written must not fail the scene
        return SceneResult(output=Path(job.output), engine=self.name,
                           orbit_source="product", seconds=seconds, notes=notes)


ENGINE = ImportEngine()
