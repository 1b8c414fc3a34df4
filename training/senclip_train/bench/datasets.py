"""EuroSAT and BigEarthNet-19 on disk, as lists of samples plus a chip reader.

EuroSAT: the RGB release (``2750/<ClassFolder>/*.jpg``) or EuroSAT-MS GeoTIFFs
(``<ClassFolder>/*.tif``, 13 bands B01..B12 with B8A; RGB = bands 4, 3, 2). Class folders are
named as released and shown with the paper's class names.
BigEarthNet-19: S2 v1 patch folders (``<patch>/<patch>_B02.tif`` … and
``<patch>_labels_metadata.json``), either anywhere under the root or in torchgeo's layout
(``BigEarthNet-v1.0/`` with ``bigearthnet-<split>.csv``). The 43 CLC labels map to 19 as in
BigEarthNet's ``label_indices.json``; patches with no 19-class label are skipped and counted.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError

from ..data.preprocess import minmax_to_uint8

EUROSAT_NAMES = {  # release folder -> the paper's class name
    "AnnualCrop": "Annual Crop Land", "Forest": "Forest", "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road", "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings", "River": "River",
    "SeaLake": "Sea or Lake"}

BEN19 = ["Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops", "Pastures",
         "Complex cultivation patterns",
         "Land principally occupied by agriculture, with significant areas of natural vegetation",
         "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
         "Natural grassland and sparsely vegetated areas", "Moors, heathland and sclerophyllous vegetation",
         "Transitional woodland, shrub", "Beaches, dunes, sands", "Inland wetlands", "Coastal wetlands",
         "Inland waters", "Marine waters"]
_U, _I, _A, _P = "Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops"
BEN43_TO_19 = {
    "Continuous urban fabric": _U, "Discontinuous urban fabric": _U, "Industrial or commercial units": _I,
    "Road and rail networks and associated land": None, "Port areas": None, "Airports": None,
    "Mineral extraction sites": None, "Dump sites": None, "Construction sites": None, "Green urban areas": None,
    "Sport and leisure facilities": None, "Non-irrigated arable land": _A, "Permanently irrigated land": _A,
    "Rice fields": _A, "Vineyards": _P, "Fruit trees and berry plantations": _P, "Olive groves": _P,
    "Pastures": "Pastures", "Annual crops associated with permanent crops": _P,
    "Complex cultivation patterns": "Complex cultivation patterns", BEN19[6]: BEN19[6],
    "Agro-forestry areas": "Agro-forestry areas", "Broad-leaved forest": "Broad-leaved forest",
    "Coniferous forest": "Coniferous forest", "Mixed forest": "Mixed forest", "Natural grassland": BEN19[11],
    "Moors and heathland": BEN19[12], "Sclerophyllous vegetation": BEN19[12],
    "Transitional woodland/shrub": "Transitional woodland, shrub", "Beaches, dunes, sands": "Beaches, dunes, sands",
    "Bare rock": None, "Sparsely vegetated areas": BEN19[11], "Burnt areas": None, "Inland marshes": "Inland wetlands",
    "Peatbogs": "Inland wetlands", "Salt marshes": "Coastal wetlands", "Salines": "Coastal wetlands",
    "Intertidal flats": None, "Water courses": "Inland waters", "Water bodies": "Inland waters",
    "Coastal lagoons": "Marine waters", "Estuaries": "Marine waters", "Sea and ocean": "Marine waters"}

RGB = "rgb"  # B04, B03, B02: what a camera calls red, green, blue
BGR = "bgr"  # B02, B03, B04 fed as R, G, B: what the reference BigEarthNet loader does


def eurosat_samples(root) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, class index)]) in the release's sorted folder order."""
    root = Path(root)
    base = root / "2750" if (root / "2750").is_dir() else root
    if not base.is_dir():
        raise InputError(f"EuroSAT folder {root} does not exist; pass the folder holding 2750/ or the class folders")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and p.name in EUROSAT_NAMES)
    if not folders:
        raise InputError(f"no EuroSAT class folders ({', '.join(EUROSAT_NAMES)}) under {base}")
    samples = []
    for ci, f in enumerate(folders):
        files = sorted(x for x in f.iterdir() if x.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))
        if not files:
            raise InputError(f"EuroSAT class folder {f} holds no images (.jpg/.png/.tif); remove it or add its images")
        samples += [(x, ci) for x in files]
    return [EUROSAT_NAMES[f.name] for f in folders], samples


def read_eurosat(path: Path) -> np.ndarray:
    """uint8 (3, H, W) RGB: JPEG/PNG as stored; GeoTIFF (MS) bands 4,3,2 min-max scaled."""
    if path.suffix.lower() in (".tif", ".tiff"):
        from ..data.preprocess import read_rgb

        return minmax_to_uint8(read_rgb(path, (4, 3, 2)))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).transpose(2, 0, 1).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"image {path} cannot be decoded ({e}); the file is corrupt") from None


def _patch_dirs(root: Path, split: str | None) -> list[Path]:
    tg = root / "BigEarthNet-v1.0"
    if tg.is_dir():
        csv = root / f"bigearthnet-{split}.csv"
        if split and csv.is_file():
            names = [ln.split(",")[0].strip() for ln in csv.read_text().splitlines() if ln.strip()]
            return [tg / n for n in names]
        root = tg
    dirs = sorted({p.parent for p in root.glob("*_labels_metadata.json")} |
                  {p.parent for p in root.glob("*/*_labels_metadata.json")} |
                  {p.parent for p in root.glob("*/*/*_labels_metadata.json")})
    return dirs


def bigearthnet_samples(root, split: str | None = "test") -> tuple[list[str], list[tuple[Path, np.ndarray]], int]:
    """(19 class names, [(patch folder, 19-hot target)], number of patches skipped for no 19-class label)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"BigEarthNet folder {root} does not exist")
    dirs = _patch_dirs(root, split)
    if not dirs:
        raise InputError(f"no BigEarthNet-S2 patch folders (*_labels_metadata.json) under {root}")
    out, skipped = [], 0
    for d in dirs:
        meta = list(d.glob("*_labels_metadata.json"))
        if not meta:
            raise InputError(f"BigEarthNet patch {d} has no *_labels_metadata.json")
        try:
            labels = json.loads(meta[0].read_text(encoding="utf-8"))["labels"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
            raise InputError(f"label file {meta[0]} is corrupt ({type(e).__name__}: {e})") from None
        unknown = [x for x in labels if x not in BEN43_TO_19]
        if unknown:
            raise InputError(f"label file {meta[0]}: unknown CORINE label(s) {unknown}")
        t = np.zeros(len(BEN19), dtype=np.int64)
        for x in labels:
            if BEN43_TO_19[x] is not None:
                t[BEN19.index(BEN43_TO_19[x])] = 1
        if t.sum() == 0:
            skipped += 1
            continue
        out.append((d, t))
    return list(BEN19), out, skipped


def read_bigearthnet(patch: Path, order: str = RGB) -> np.ndarray:
    """uint8 (3, 120, 120) from the 10 m bands, global min-max (as the reference loader)."""
    import rasterio
    from rasterio.errors import RasterioError

    bands = ("B04", "B03", "B02") if order == RGB else ("B02", "B03", "B04")
    arrs = []
    for b in bands:
        f = next(iter(patch.glob(f"*_{b}.tif")), None)
        if f is None:
            raise InputError(f"BigEarthNet patch {patch} has no {b} band file (*_{b}.tif)")
        try:
            with rasterio.open(f) as src:
                arrs.append(src.read(1))
        except (RasterioError, OSError) as e:
            raise InputError(f"band file {f} cannot be read ({e}); it is corrupt") from None
    if len({a.shape for a in arrs}) != 1:
        raise InputError(f"BigEarthNet patch {patch}: bands {bands} differ in size {[a.shape for a in arrs]}")
    return minmax_to_uint8(np.stack(arrs))
