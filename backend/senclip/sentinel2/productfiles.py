"""Where a Sentinel-2 product keeps what cloud masking needs: the SCL, MTD_TL.xml and the L1C bands.

Band discovery for the RGB that is classified lives in :mod:`senclip.sentinel2.scene`; this module only looks
*beside* the opened input, inside the same product, for the extra files: the Scene Classification
Layer of an L2A product (``*_SCL_20m.jp2``), the granule metadata (``MTD_TL.xml``, sun angles) and
the ten bands s2cloudless reads. It searches the input folder itself, or, for a single file, the
enclosing ``.SAFE`` product only, never a user's folder at large (another product's SCL lying next
to the input would silently mask the wrong clouds). A scene that already knows these paths
(``scene.scl_path``, ``scene.mtd_tl_path``) is believed first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# The bands s2cloudless's model reads, in its order (s2cloudless.utils.MODEL_BANDS).
S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
_SCL = re.compile(r"(?:^|[_.-])SCL(?:_(20|60)m)?\.(?:jp2|tif|tiff)$", re.I)
PRODUCT_MARKERS = ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml", "manifest.safe")


@dataclass
class ProductFiles:
    """What was found for one input. ``bands`` maps band name → (path, 1-based band index)."""

    scl: Path | str | None = None  # str: a GDAL virtual path (/vsizip/...)
    mtd_tl: Path | str | None = None
    bands: dict[str, tuple[Path, int]] = field(default_factory=dict)

    def missing_bands(self, needed=S2CLOUDLESS_BANDS) -> list[str]:
        return [b for b in needed if b not in self.bands]


def product_root(path: Path) -> Path | None:
    """The folder to search: the input folder, or the ``.SAFE`` product a file lies in."""
    path = Path(path)
    if path.is_dir():
        return path
    for parent in list(path.parents)[:6]:
        if parent.name.upper().endswith(".SAFE") or any((parent / m).is_file() for m in PRODUCT_MARKERS):
            return parent
    return None


def find_scl(root: Path) -> Path | None:
    """The finest SCL file under ``root`` (20 m before 60 m)."""
    found = sorted((f for f in root.rglob("*") if _SCL.search(f.name) and f.is_file()),
                   key=lambda f: (_SCL.search(f.name).group(1) or "20", str(f)))
    return found[0] if found else None


def find_mtd_tl(root: Path, start: Path) -> Path | None:
    """The granule's MTD_TL.xml: in ``root`` or any folder between the input and ``root``."""
    for parent in [start, *start.parents]:
        f = parent / "MTD_TL.xml"
        if f.is_file():
            return f
        if parent == root:
            break
    found = sorted(root.rglob("MTD_TL.xml"))
    return found[0] if len(found) == 1 else None


def _stack_bands(path: Path) -> dict[str, tuple[Path, int]]:
    """Band names of a multi-band file: from band descriptions (``B01``…), else the usual order for
    its band count (13 = L1C; 12 = L2A, which has no B10; 4 = B02-B04, B08; 3 = RGB)."""
    import rasterio

    from senclip.sentinel2.scene import BAND_ORDERS

    with rasterio.open(path) as ds:
        descs = [(d or "").strip().upper() for d in ds.descriptions]
        count = ds.count
    named = {}
    for i, d in enumerate(descs, start=1):
        if re.fullmatch(r"B(0?[1-9]|1[0-2]|8A)", d):
            named["B8A" if d == "B8A" else f"B{int(d[1:]):02d}"] = (path, i)
    if len(named) >= 3:
        return named
    order = BAND_ORDERS.get(count, [])
    return {b: (path, i) for i, b in enumerate(order, start=1)}


def locate(scene) -> ProductFiles:
    """SCL, MTD_TL.xml and the spectral bands available for ``scene`` (a :class:`~senclip.sentinel2.scene.Scene`)."""
    path = Path(scene.path)
    files = ProductFiles(scl=_as_path(getattr(scene, "scl_path", None)),
                         mtd_tl=_as_path(getattr(scene, "mtd_tl_path", None)))
    root = product_root(path)
    if root is not None:
        files.scl = files.scl or find_scl(root)
        files.mtd_tl = files.mtd_tl or find_mtd_tl(root, path if path.is_dir() else path.parent)
    product = getattr(scene, "product", None)  # a scene that knows its product's band files
    if product is not None and getattr(product, "bands", None):
        files.bands = {b: (_as_path(res[min(res, key=lambda r: r or 0)]), 1) for b, res in product.bands.items()}
    elif path.is_file():
        files.bands = _stack_bands(path)
    return files


def _as_path(value):
    """A path from the scene; GDAL virtual paths (``/vsizip/…`` inside a zipped SAFE) stay strings,
    since ``Path`` would fold their double slashes."""
    if not value:
        return None
    return value if str(value).startswith("/vsi") else Path(value)
