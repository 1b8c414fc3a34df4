"""Small GeoTIFFs on a store's tile grid (similarity, cosine distance, masks, class changes),
written under a temporary name and renamed, like every senclip output."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from senclip._version import __version__
from senclip.core.outputs import Staged, all_or_nothing, prepare_output


def grid_georef(meta: dict):
    """(transform, crs) of a store's grid-resolution outputs."""
    from affine import Affine
    from rasterio.crs import CRS

    return Affine(*meta["grid_transform"]), CRS.from_wkt(meta["crs"])


def write_grid_raster(path, bands: np.ndarray, meta: dict, *, nodata, names: list[str], tags: dict | None = None,
                      overwrite: bool = False) -> Path:
    """Write ``bands`` ((n, rows, cols) or (rows, cols)) with the store's grid georeferencing."""
    import rasterio

    path = prepare_output(path, overwrite)
    arr = bands[None] if bands.ndim == 2 else bands
    transform, crs = grid_georef(meta)
    profile = dict(driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype.name,
                   transform=transform, crs=crs, nodata=nodata, compress="deflate")
    tags = {"SENCLIP_VERSION": __version__, **(tags or {})}  # marks it as senclip's (--overwrite may replace it)
    with all_or_nothing(lambda: Staged(path, suffix=".tmp.tif")) as writer:
        with rasterio.open(writer.tmp, "w", **profile) as ds:
            ds.write(arr)
            for i, name in enumerate(names, start=1):
                ds.set_band_description(i, name)
            ds.update_tags(**{k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()})
        aux = Path(str(writer.tmp) + ".aux.xml")  # GDAL's PAM sidecar, if it wrote one
        path = writer.commit()
        if aux.exists():
            os.replace(aux, Path(str(path) + ".aux.xml"))
        return path


def cell_area_m2(meta: dict) -> float | None:
    """Area of one grid cell in m², or None for a CRS not in metres."""
    transform, crs = grid_georef(meta)
    if not (crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m")):
        return None
    return abs(transform.a * transform.e - transform.b * transform.d)
