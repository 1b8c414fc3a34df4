"""Small Sentinel-2-like rasters made in code, for the backend tests (imported as a module with a
name of its own: several test folders have a conftest.py, so ``from conftest import`` is ambiguous)."""
from __future__ import annotations

import numpy as _np

# Surface reflectance × 10000 of the test colours, as (B02, B03, B04) = (blue, green, red).
GREEN_DN = (300, 2500, 300)
BLUE_DN = (2500, 300, 300)


def write_s2(path, *, width=160, height=96, bands=4, nodata_border=0, crs="EPSG:32633", nodata=None,
             left=GREEN_DN, right=BLUE_DN, dtype="uint16"):
    """A UTM, 10 m raster: left half ``left`` colour, right half ``right``; band order as a
    Sentinel-2 product of that band count (4 = B02,B03,B04,B08; 13 = L1C; 3 = RGB)."""
    import rasterio
    from rasterio.transform import from_origin

    from senclip.sentinel2.scene import BAND_ORDERS

    order = BAND_ORDERS[bands]
    arr = _np.full((bands, height, width), 1000, dtype=dtype)
    for name, val_l, val_r in zip(("B02", "B03", "B04"), left, right):
        i = order.index(name)
        arr[i, :, : width // 2] = val_l
        arr[i, :, width // 2:] = val_r
    if nodata_border:
        fill = 0 if nodata is None else nodata
        b = nodata_border
        arr[:, :b], arr[:, -b:], arr[:, :, :b], arr[:, :, -b:] = fill, fill, fill, fill
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype=dtype,
                   transform=from_origin(330000, 5822000, 10, 10), nodata=nodata)
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr)
    return path


# Points on the scene write_s2 makes (x 330000..331600, y 5821040..5822000 in EPSG:32633): left half green,
# right half blue.
GREEN_POINTS = [(330100 + 60 * i, 5821500, "green") for i in range(5)]
BLUE_POINTS = [(331200 + 60 * i, 5821500, "blue") for i in range(5)]


def write_examples(path, items, crs="EPSG:32633"):
    """A GeoJSON file of labelled points ``(x, y, class)`` in ``crs`` (few-shot examples)."""
    import json

    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": {"class": c}}
                for x, y, c in items]
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
                                "features": features}))
    return path
