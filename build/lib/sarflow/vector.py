"""Vector input (inventories, areas) read once, the same way everywhere: every feature of
every layer, transformed to EPSG:4326 in (lon, lat) order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError


def wgs84() -> Any:
    """EPSG:4326 as an OSR spatial reference with (lon, lat) axis order."""
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def geometries(path: str | os.PathLike, what: str = "inventory") -> Iterator[Any]:
    """OGR geometries (clones, in EPSG:4326) of every feature of every layer of a file."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found: {p}")
    try:
        ds = ogr.Open(str(p))
    except RuntimeError as exc:
        raise InputError(f"cannot read {what} {p}: {exc}") from None
    if ds is None:
        raise InputError(f"cannot read {what} {p}: not a vector file")
    wgs = wgs84()
    for i in range(ds.GetLayerCount()):
        layer = ds.GetLayer(i)
        srs = layer.GetSpatialRef()
        tr = None
        if srs is not None:
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            if not srs.IsSame(wgs):
                tr = osr.CoordinateTransformation(srs, wgs)
        for feat in layer:
            geom = feat.GetGeometryRef()
            if geom is None:
                continue
            geom = geom.Clone()
            if tr is not None:
                geom.Transform(tr)
            yield geom
