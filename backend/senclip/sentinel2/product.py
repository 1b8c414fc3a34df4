"""Sentinel-2 products as ESA distributes them: which file holds which band, what the metadata says.

The one place that knows the product layout (the ``.SAFE`` tree, the ``.SAFE.zip`` it is downloaded
as, the file names of L1C and L2A granules) and the sensor facts, so the scene reader never guesses
from a file name alone. The rules, each learnt from a product that broke a simpler reader:

- Band files come only from a granule's ``IMG_DATA`` (L2A: its ``R10m``/``R20m``/``R60m``). The
  quality masks in ``QI_DATA`` (``MSK_DETFOO_B02.jp2`` since baseline 04.00) and the non-spectral
  layers (``TCI``, ``AOT``, ``WVP``, ``SCL``) have band-like names and are never taken for a band.
- A band set is read at its native resolution where every band of the set has a file there, so
  R,G,B come from ``R10m`` when it is there and from ``R20m``/``R60m`` when it is not (an L2A cut
  down to 20 m), with a warning.
- A ``.SAFE.zip`` is read in place through GDAL's ``/vsizip/``; nothing is extracted.
- Reflectance is ``(DN + offset) / quantification``; both come from the product metadata
  (``MTD_MSIL1C.xml``: ``RADIO_ADD_OFFSET``, ``QUANTIFICATION_VALUE``; ``MTD_MSIL2A.xml``:
  ``BOA_ADD_OFFSET``, ``BOA_QUANTIFICATION_VALUE``). Without it, a product name with baseline
  ``N0400`` or later means −1000 (the offset ESA introduced with baseline 04.00).
"""
from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from senclip.core.errors import InputError, SenclipWarning

# Native resolution (m) of every MSI band, in the band_id order (0..12) of the product metadata.
BANDS: dict[str, int] = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
                         "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}
BAND_IDS: tuple[str, ...] = tuple(BANDS)
RGB = ("B04", "B03", "B02")
LAYERS = ("TCI", "AOT", "WVP", "SCL")  # IMG_DATA files that are not spectral bands
NOT_IMAGE_DIRS = frozenset({"QI_DATA", "AUX_DATA", "DATASTRIP", "HTML", "rep_info"})  # never hold bands
MASK_PREFIX = "MSK_"
PRODUCT_METADATA = ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml")
TILE_METADATA = "MTD_TL.xml"
NEW_BASELINE = (4, 0)  # from processing baseline 04.00 on, DNs carry an offset of -1000
NEW_BASELINE_OFFSET = -1000.0

_BAND = re.compile(r"(?:^|[_.-])(B(?:0?[1-9]|1[0-2]|8A))(?:_(10|20|60)m)?\.(?:jp2|tif|tiff)$", re.I)
_LAYER = re.compile(r"(?:^|_)(TCI|AOT|WVP|SCL)(?:_(10|20|60)m)?\.(?:jp2|tif|tiff)$", re.I)
_RES_DIR = re.compile(r"^R(10|20|60)m$")
_BASELINE = re.compile(r"_N(\d\d)(\d\d)_")
_BAND_NAME = re.compile(r"B(0?[1-9]|1[0-2]|8A)", re.I)
# GDAL's SENTINEL2 subdatasets (what QGIS shows as the source of a layer opened from MTD_MSIL2A.xml):
# SENTINEL2_L2A:/p/X.SAFE/MTD_MSIL2A.xml:10m:EPSG_32633, SENTINEL2_L1C_TCI:/p/X.SAFE/MTD_MSIL1C.xml:TCI:EPSG_32633
_SUBDATASET = re.compile(r"^SENTINEL2_L(?:1B|1C|2A)\w*:(.+?MTD_MSIL(?:1C|2A)\.xml):", re.I)


def norm_band(name: str) -> str:
    """``"b4"``, ``"B4"``, ``"B04"`` → ``"B04"``; ``"b8a"`` → ``"B8A"``."""
    name = name.upper()
    return "B8A" if name == "B8A" else f"B{int(name[1:]):02d}"


def is_band_name(name: str) -> bool:
    return bool(_BAND_NAME.fullmatch(name))


def is_product(path: Path) -> bool:
    """A folder, a zip, or a product metadata file: read as a Sentinel-2 product (not one raster)."""
    return path.is_dir() or path.suffix.lower() == ".zip" or path.name in PRODUCT_METADATA


def from_subdataset(name: str) -> Path | None:
    """The product (``.SAFE`` folder or ``.SAFE.zip``) a GDAL SENTINEL2 subdataset name points into,
    or None when ``name`` is not one. Only the product is taken: the bands are chosen as for any
    product input (R,G,B at 10 m unless --bands says otherwise)."""
    m = _SUBDATASET.match(str(name))
    if not m:
        return None
    mtd = m.group(1)
    z = re.match(r"/vsizip/(.+?\.zip)(?:/|$)", mtd, re.I)
    return Path(z.group(1)) if z else Path(mtd).parent


def read_text(path) -> str:
    """Text of a file given as a plain path or as a ``/vsizip/`` path into a product zip (what
    :attr:`S2Product.mtd_tl_path` may be)."""
    s = str(path)
    m = re.match(r"/vsizip/(.+?\.zip)/(.+)$", s, re.I)
    if not m:
        return Path(s).read_text(encoding="utf-8", errors="replace")
    with zipfile.ZipFile(m.group(1)) as z:
        return z.read(m.group(2)).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class ProductMetadata:
    """What a product metadata file (``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``) says about radiometry."""

    level: str | None = None  # "L1C" or "L2A"
    baseline: str | None = None  # "04.00"
    quantification: float | None = None  # DN per unit reflectance (10000)
    offsets: dict[str, float] = field(default_factory=dict)  # band → DN offset (baseline 04.00+)


def parse_product_metadata(xml: bytes | str, name: str = "MTD_MSIL*.xml") -> ProductMetadata:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise InputError(f"cannot read the product metadata {name} ({e}); the product may be damaged, "
                         "download it again") from None
    level = baseline = quant = None
    offsets: dict[str, float] = {}
    for el in root.iter():
        tag, text = el.tag.rsplit("}", 1)[-1], (el.text or "").strip()
        if tag == "PROCESSING_LEVEL":
            level = "L2A" if "2A" in text else "L1C" if "1C" in text else None
        elif tag == "PROCESSING_BASELINE":
            baseline = text
        elif tag in ("QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"):
            quant = float(text)
        elif tag in ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET") and el.get("band_id", "").isdigit():
            i = int(el.get("band_id"))
            if i < len(BAND_IDS):
                offsets[BAND_IDS[i]] = float(text)
    return ProductMetadata(level, baseline, quant, offsets)


def metadata_near(path: Path) -> tuple[ProductMetadata | None, Path | None]:
    """The product metadata in ``path`` or one of its parents (a granule, ``IMG_DATA`` or ``R10m``
    folder, or a file inside a ``.SAFE``), and the file it came from."""
    for parent in [path, *path.parents][:6]:
        for name in PRODUCT_METADATA:
            f = parent / name
            if f.is_file():
                return parse_product_metadata(f.read_bytes(), str(f)), f
    return None, None


def baseline_from_name(path) -> tuple[int, int] | None:
    """Processing baseline from a product or granule name (``..._N0400_...``)."""
    m = _BASELINE.search(str(path))
    return (int(m.group(1)), int(m.group(2))) if m else None


def radiometric_offset(meta: ProductMetadata | None, bands, path) -> float | None:
    """The DN offset of ``bands`` (None: unknown). From the metadata when there is one (no offset
    list: an older baseline, 0), else from the baseline in the product name."""
    if meta is not None:
        vals = {meta.offsets.get(b, 0.0) for b in bands} if meta.offsets else {0.0}
        if len(vals) > 1:
            raise InputError(f"the product metadata gives different offsets for bands {', '.join(bands)} "
                             f"({sorted(vals)}); give one with --offset")
        return vals.pop()
    baseline = baseline_from_name(path)
    if baseline is None:
        return None
    return NEW_BASELINE_OFFSET if baseline >= NEW_BASELINE else 0.0


class _Files:
    """The files of a folder or of a zip, as relative POSIX paths, and how GDAL opens each."""

    def __init__(self, root: Path):
        self.root = root
        self.zipped = root.is_file()
        if self.zipped:
            try:
                with zipfile.ZipFile(root) as z:
                    names = [n for n in z.namelist() if not n.endswith("/")]
            except zipfile.BadZipFile:
                raise InputError(f"{str(root)!r} is not a readable zip file; download the product again") from None
        else:
            names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        self.names = sorted(names)

    def gdal_path(self, rel: str) -> str:
        if self.zipped:
            return f"/vsizip/{self.root.resolve().as_posix()}/{rel}"
        return str(self.root / rel)

    def read_bytes(self, rel: str) -> bytes:
        if self.zipped:
            with zipfile.ZipFile(self.root) as z:
                return z.read(rel)
        return (self.root / rel).read_bytes()


def _granule(parts: list[str]) -> str | None:
    return parts[parts.index("GRANULE") + 1] if "GRANULE" in parts[:-1] else None


def _resolution(parts: list[str], m: re.Match) -> int | None:
    if m.group(2):
        return int(m.group(2))
    rdir = _RES_DIR.match(parts[-2]) if len(parts) > 1 else None
    return int(rdir.group(1)) if rdir else None


def _fmt_res(res: int | None) -> str:
    return f"{res} m" if res else "native resolution"


@dataclass(frozen=True)
class S2Product:
    """The band files and metadata of one Sentinel-2 product, granule or band folder.

    ``bands`` and ``layers`` map a name to ``{resolution: path}`` (resolution None when neither the
    file name nor its folder says it: the L1C and plain-folder case, one file per band). Paths are
    what GDAL opens: plain paths, or ``/vsizip/`` paths into a zip.
    """

    path: Path
    level: str | None
    metadata: ProductMetadata | None
    bands: dict[str, dict[int | None, str]]
    layers: dict[str, dict[int | None, str]]
    mtd_tl_path: str | None = None  # granule metadata (sun and view angles, tile geocoding)
    granule: str | None = None

    @property
    def scl_path(self) -> str | None:
        """The L2A scene classification (SCL), finest resolution available (20 m), or None."""
        scl = self.layers.get("SCL", {})
        return scl[min(scl, key=lambda r: r or 0)] if scl else None

    @property
    def tci_path(self) -> str | None:
        tci = self.layers.get("TCI", {})
        return tci[min(tci, key=lambda r: r or 0)] if tci else None

    def offset(self, bands) -> float | None:
        return radiometric_offset(self.metadata, bands, self.path.resolve())

    def select(self, names: list[str]) -> tuple[list[str], int | None]:
        """Files for ``names`` and the resolution they are read at: the native one of the finest band
        of the set when all have it (R,G,B at 10 m; B01 alone at 60 m, not its 20 m resampling),
        else the next coarser one they all have (an L2A without R10m: 20 m)."""
        missing = [b for b in names if b not in self.bands]
        if missing:
            raise InputError(self._missing_message(missing))
        common = set.intersection(*(set(self.bands[b]) for b in names))
        if not common:
            have = "; ".join(f"{b} at {', '.join(_fmt_res(r) for r in sorted(self.bands[b], key=lambda r: r or 0))}"
                             for b in names)
            raise InputError(f"bands {', '.join(names)} have no resolution in common in {str(self.path)!r} ({have}); "
                             "choose bands of one resolution (B02, B03, B04 and B08 are the 10 m bands)")
        native = min(BANDS[b] for b in names)  # the finest native resolution in the set
        known = sorted(r for r in common if r is not None)
        res = native if native in common else next((r for r in known if r > native), known[0] if known else None)
        if res is not None and native < res:
            warnings.warn(f"{', '.join(names)} read at {res} m: {str(self.path)!r} has no {native} m files for all "
                          f"of them{' (no IMG_DATA/R10m folder)' if self.level == 'L2A' and native == 10 else ''}",
                          SenclipWarning, stacklevel=3)
        return [self.bands[b][res] for b in names], res

    def _missing_message(self, missing: list[str]) -> str:
        where = f"{str(self.path)!r}"
        if not self.bands:
            hint = ("expected Sentinel-2 band files named like *_B04.jp2 (a .SAFE product or its .zip, a granule, "
                    "its IMG_DATA, or a folder of band files)")
            if self.tci_path:
                hint += f"; it has a true-colour image: give that file itself as INPUT ({self.tci_path})"
            return f"no Sentinel-2 band files in {where}: {hint}"
        by_res: dict[int | None, list[str]] = {}
        for b in BAND_IDS:
            for r in self.bands.get(b, {}):
                by_res.setdefault(r, []).append(b)
        have = "; ".join(f"{_fmt_res(r)}: {', '.join(bs)}" for r, bs in sorted(by_res.items(), key=lambda x: x[0] or 0))
        return (f"no file for band(s) {', '.join(missing)} in {where} (it has {have}); "
                "choose bands it has with --bands, or give the complete product")


def find_product(path) -> S2Product:
    """Index a ``.SAFE`` folder, a ``.SAFE.zip``, a granule or ``IMG_DATA`` folder, a folder of band
    files, or a product metadata file (its folder is read)."""
    path = Path(path)
    if path.name in PRODUCT_METADATA and path.is_file():
        path = path.parent
    files = _Files(path)
    image = [n for n in files.names if _is_image_file(n)]
    if any("IMG_DATA" in n.split("/")[:-1] for n in image):
        image = [n for n in image if "IMG_DATA" in n.split("/")[:-1]]
    granules = sorted({g for g in (_granule(n.split("/")) for n in image) if g})
    if len(granules) > 1:
        raise InputError(f"{str(path)!r} holds {len(granules)} granules ({', '.join(granules)}); "
                         "give one granule folder (…/GRANULE/<name>) as INPUT")
    bands: dict[str, dict[int | None, str]] = {}
    layers: dict[str, dict[int | None, str]] = {}
    for rel in image:
        parts = rel.split("/")
        m = _BAND.search(parts[-1])
        table, key = (bands, None) if m else (layers, None)
        if m:
            key = norm_band(m.group(1))
        else:
            m = _LAYER.search(parts[-1])
            if not m:
                continue
            key = m.group(1).upper()
        table.setdefault(key, {}).setdefault(_resolution(parts, m), files.gdal_path(rel))
    meta = _product_metadata(files, path)
    return S2Product(path=path, level=_level(meta, path, bands, granules), metadata=meta, bands=bands,
                     layers=layers, mtd_tl_path=_tile_metadata(files, path, granules), granule=(granules or [None])[0])


def _is_image_file(rel: str) -> bool:
    parts = rel.split("/")
    return (not NOT_IMAGE_DIRS.intersection(parts[:-1]) and not parts[-1].upper().startswith(MASK_PREFIX)
            and parts[-1].lower().endswith((".jp2", ".tif", ".tiff")))


def _product_metadata(files: _Files, path: Path) -> ProductMetadata | None:
    for rel in files.names:
        if rel.rsplit("/", 1)[-1] in PRODUCT_METADATA and rel.count("/") <= 1:
            return parse_product_metadata(files.read_bytes(rel), rel)
    if files.zipped:
        return None
    return metadata_near(path)[0]


def _tile_metadata(files: _Files, path: Path, granules: list[str]) -> str | None:
    for rel in files.names:
        parts = rel.split("/")
        if parts[-1] == TILE_METADATA and (not granules or _granule(parts) in (granules[0], None)):
            return files.gdal_path(rel)
    if not files.zipped:
        for parent in path.parents[:3]:
            if (parent / TILE_METADATA).is_file():
                return str(parent / TILE_METADATA)
    return None


def _level(meta: ProductMetadata | None, path: Path, bands, granules) -> str | None:
    if meta is not None and meta.level:
        return meta.level
    text = " ".join([str(path.resolve()).upper(), *granules])
    if "MSIL2A" in text or "L2A_" in text or any(r for per in bands.values() for r in per):
        return "L2A"
    if "MSIL1C" in text or "L1C_" in text:
        return "L1C"
    return None
