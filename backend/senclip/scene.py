"""Sentinel-2 scenes: which bands are R, G, B, how digital numbers become 8-bit RGB, what is valid.

A scene is one multi-band raster (GeoTIFF/JP2/VRT) or a folder of single-band files (a SAFE
granule's IMG_DATA, or files named like ``*_B04.jp2``). Either way the pipeline asks for the same
thing: 8-bit RGB and a validity mask for a pixel window, padded where the window leaves the
raster, so tiles at the edges are handled like any other.
"""
from __future__ import annotations

import math
import re
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, SenclipWarning

# Sentinel-2 band orders of the common multi-band products, by band count.
BAND_ORDERS: dict[int, list[str]] = {
    13: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"],
    12: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"],
    4: ["B02", "B03", "B04", "B08"],
    3: ["B04", "B03", "B02"],
}
RGB = ("B04", "B03", "B02")
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")
_BAND_FILE = re.compile(r"(?:^|[_.-])(B(?:0?[1-9]|1[0-2]|8A))(?:_(10|20|60)m)?\.(?:jp2|tif|tiff)$", re.I)
_BASELINE = re.compile(r"_N(\d{4})_")
DEFAULT_MAX_REFLECTANCE = 0.3


def _norm_band(name: str) -> str:
    name = name.upper()
    return "B8A" if name == "B8A" else f"B{int(name[1:]):02d}"


STRETCHES = ("fixed", "chip-minmax")


@dataclass(frozen=True)
class Radiometry:
    """Digital number → reflectance → 8 bit: ``refl = (DN + offset) / scale``, then
    ``[0, max_reflectance]`` is stretched linearly to ``[0, 255]`` (``stretch="fixed"``, the same
    for every chip, like the EuroSAT RGB release), or each chip's own min..max over its valid
    pixels and all three bands is (``"chip-minmax"``, what SenCLIP's training loader does).
    8-bit input is used as is."""

    scale: float = 10000.0
    offset: float = 0.0
    max_reflectance: float = DEFAULT_MAX_REFLECTANCE
    passthrough_8bit: bool = False
    stretch: str = "fixed"

    @property
    def per_chip(self) -> bool:
        return self.stretch == "chip-minmax" and not self.passthrough_8bit

    def chip_to_uint8(self, dn: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(3, h, w) digital numbers of one chip → uint8 by its own valid min..max."""
        v = dn[:, valid].astype(np.float32)
        lo, hi = float(v.min()), float(v.max())
        out = (dn.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))
        return (np.clip(out, 0, 255) + 0.5).astype(np.uint8)

    def to_uint8(self, dn: np.ndarray) -> np.ndarray:
        if self.passthrough_8bit:
            return dn.astype(np.uint8, copy=False)
        refl = (dn.astype(np.float32) + self.offset) / self.scale
        out = np.clip(refl * (255.0 / self.max_reflectance), 0, 255)
        return (out + 0.5).astype(np.uint8)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "offset": self.offset, "max_reflectance": self.max_reflectance,
                "passthrough_8bit": self.passthrough_8bit, "stretch": self.stretch}


def _read_offset_from_metadata(path: Path) -> float | None:
    """The BOA/RADIO_ADD_OFFSET of a SAFE product (baseline 04.00+: −1000), if its MTD file is near."""
    for parent in [path, *path.parents][:6]:
        for mtd in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
            f = parent / mtd
            if f.is_file():
                m = re.search(r"<(?:BOA|RADIO)_ADD_OFFSET[^>]*>\s*(-?\d+)", f.read_text(errors="ignore"))
                return float(m.group(1)) if m else 0.0
    m = _BASELINE.search(str(path))
    if m:
        return -1000.0 if int(m.group(1)) >= 400 else 0.0
    return None


def find_band_files(folder: Path) -> dict[str, Path]:
    """Band name → file for a folder of Sentinel-2 band files (SAFE, IMG_DATA, or flat)."""
    found: dict[str, tuple[int, Path]] = {}
    for f in sorted(folder.rglob("*")):
        m = _BAND_FILE.search(f.name)
        if not m or not f.is_file():
            continue
        band, res = _norm_band(m.group(1)), int(m.group(2) or 0)
        # Prefer the finest resolution: an L2A product ships B04 at 10, 20 and 60 m.
        rank = res if res else 1
        if band not in found or rank < found[band][0]:
            found[band] = (rank, f)
    return {b: p for b, (_, p) in found.items()}


def parse_bands(spec: str | None) -> list[str] | None:
    """``"4,3,2"`` (1-based indices) or ``"B04,B03,B02"`` (names) → three tokens for R, G, B."""
    if spec is None or spec == "":
        return None
    parts = [p.strip() for p in str(spec).replace(";", ",").split(",") if p.strip()]
    if len(parts) != 3:
        raise InputError(f"--bands {spec!r} must name exactly three bands for R,G,B, e.g. '4,3,2' or 'B04,B03,B02'")
    return parts


class Scene:
    """An open Sentinel-2 scene. Use as a context manager (``with open_scene(p) as s``)."""

    def __init__(self, path, *, bands=None, scale="auto", offset="auto",
                 max_reflectance: float = DEFAULT_MAX_REFLECTANCE, stretch: str = "fixed", bounds=None,
                 area=None) -> None:
        import rasterio

        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"input {str(path)!r} does not exist; give a Sentinel-2 raster or a folder of band files")
        self._stack = ExitStack()
        try:
            self._open(rasterio, parse_bands(bands))
            self._check_georef()
            self.radiometry = self._radiometry(scale, offset, max_reflectance, stretch)
            self._set_area(bounds, area)
        except BaseException:
            self._stack.close()
            raise

    # opening -------------------------------------------------------------
    def _open_ds(self, rasterio, p: Path):
        try:
            return self._stack.enter_context(rasterio.open(p))
        except rasterio.errors.RasterioIOError as e:
            raise InputError(f"cannot read {str(p)!r} as a raster ({e}); give a GeoTIFF, JP2 or VRT") from None

    def _open(self, rasterio, band_spec) -> None:
        if self.path.is_dir():
            files = find_band_files(self.path)
            names = [_norm_band(b) for b in band_spec] if band_spec else list(RGB)
            if any(not re.fullmatch(r"B(0?[1-9]|1[0-2]|8A)", n, re.I) for n in names):
                raise InputError(f"--bands for a folder must be band names like B04,B03,B02, got {band_spec}")
            missing = [b for b in names if b not in files]
            if missing:
                raise InputError(
                    f"no file for band(s) {', '.join(missing)} in {str(self.path)!r}; expected Sentinel-2 band files "
                    "named like *_B04.jp2 (or a SAFE folder)")
            self._sources = [(self._open_ds(rasterio, files[b]), 1) for b in names]
            self.band_names = names
            ref = self._sources[0][0]
            for ds, _ in self._sources[1:]:
                if (ds.width, ds.height, ds.transform) != (ref.width, ref.height, ref.transform):
                    raise InputError(
                        f"band files {ref.name} and {ds.name} are on different grids; choose bands of the same "
                        "resolution (B02, B03, B04 and B08 are the 10 m bands)")
            self.level = "L2A" if any("L2A" in str(p) or "_10m" in p.name for p in files.values()) else "L1C"
        else:
            ds = self._open_ds(rasterio, self.path)
            n = ds.count
            if band_spec:
                idx = []
                names = BAND_ORDERS.get(n, [])
                descs = [(d or "").upper() for d in ds.descriptions]
                for tok in band_spec:
                    if tok.isdigit():
                        idx.append(int(tok))
                    else:
                        t = _norm_band(tok) if re.fullmatch(r"B\d+A?", tok, re.I) else tok.upper()
                        if t in names:
                            idx.append(names.index(t) + 1)
                        elif t in descs:
                            idx.append(descs.index(t) + 1)
                        else:
                            raise InputError(f"--bands: band {tok!r} not found in a {n}-band raster; use 1-based indices like 4,3,2")
                self.band_names = [str(i) for i in band_spec]
            else:
                if n not in BAND_ORDERS:
                    raise InputError(
                        f"{str(self.path)!r} has {n} band(s); the band mapping is known for 13 (L1C), 12 (L2A), "
                        "4 (B2,B3,B4,B8) or 3 (RGB) bands. Say which bands are red, green, blue with --bands, e.g. --bands 3,2,1")
                order = BAND_ORDERS[n]
                idx = [order.index(b) + 1 for b in RGB]
                self.band_names = list(RGB)
            bad = [i for i in idx if not 1 <= i <= n]
            if bad:
                raise InputError(f"--bands {','.join(map(str, idx))}: the raster has only {n} band(s)")
            self._sources = [(ds, i) for i in idx]
            self.level = "L2A" if (n == 12 or "L2A" in self.path.name.upper()) else "L1C"
        ref = self._sources[0][0]
        self.full_width, self.full_height = ref.width, ref.height
        self.crs, self.full_transform = ref.crs, ref.transform
        self.dtype = np.dtype(ref.dtypes[0])
        self.nodata = ref.nodata

    def _check_georef(self) -> None:
        if self.crs is None:
            raise InputError(
                f"{str(self.path)!r} has no coordinate reference system; assign one first "
                "(e.g. gdal_translate -a_srs EPSG:32633 in.tif out.tif, or 'Assign projection' in QGIS)")
        if self.full_transform.is_identity:
            raise InputError(f"{str(self.path)!r} has no georeferencing (identity geotransform); georeference it first")
        if self.crs.is_geographic:
            warnings.warn(
                f"{self.path.name} is in a geographic CRS ({self.crs.to_string()}): tiles are taken in pixels as usual, "
                "but areas are not reported in m²; reproject to UTM for area statistics", SenclipWarning, stacklevel=3)

    def _radiometry(self, scale, offset, max_reflectance, stretch) -> Radiometry:
        if not (isinstance(max_reflectance, (int, float)) and max_reflectance > 0):
            raise InputError(f"--max-reflectance must be > 0, got {max_reflectance!r}")
        if stretch not in STRETCHES:
            raise InputError(f"--stretch must be one of {', '.join(STRETCHES)}, got {stretch!r}")
        if self.dtype == np.uint8 and scale in ("auto", None):
            return Radiometry(passthrough_8bit=True)
        if scale in ("auto", None):
            s = 1.0 if self.dtype.kind == "f" and self._looks_like_reflectance() else 10000.0
        else:
            try:
                s = float(scale)
            except ValueError:
                raise InputError(f"--scale must be 'auto' or a number (DN per unit reflectance, e.g. 10000), got {scale!r}") from None
            if not s > 0:
                raise InputError(f"--scale must be > 0, got {scale!r}")
        if offset in ("auto", None):
            o = _read_offset_from_metadata(self.path)
            o = 0.0 if (o is None or s == 1.0) else o
        else:
            try:
                o = float(offset)
            except ValueError:
                raise InputError(f"--offset must be 'auto' or a number (e.g. -1000 for baseline 04.00+), got {offset!r}") from None
        return Radiometry(scale=s, offset=o, max_reflectance=float(max_reflectance), stretch=stretch)

    def _looks_like_reflectance(self) -> bool:
        ds, b = self._sources[0]
        h, w = min(ds.height, 256), min(ds.width, 256)
        from rasterio.windows import Window

        sample = ds.read(b, window=Window(0, 0, w, h))
        finite = sample[np.isfinite(sample)]
        return finite.size == 0 or float(np.nanpercentile(finite, 99)) <= 2.0

    def _set_area(self, bounds, area) -> None:
        """Restrict work to ``bounds`` (minx, miny, maxx, maxy in the raster CRS), snapped to
        pixels, or to a pixel window ``area`` (col_off, row_off, width, height)."""
        from rasterio.windows import Window, from_bounds

        full = Window(0, 0, self.full_width, self.full_height)
        if area is not None:
            self.area = Window(*area)
        elif bounds is None:
            self.area = full
        else:
            if len(bounds) != 4:
                raise InputError(f"bounds must be minx,miny,maxx,maxy, got {bounds!r}")
            w = from_bounds(*bounds, transform=self.full_transform)
            c0, r0 = max(0, math.floor(w.col_off)), max(0, math.floor(w.row_off))
            c1 = min(self.full_width, math.ceil(w.col_off + w.width))
            r1 = min(self.full_height, math.ceil(w.row_off + w.height))
            if c1 <= c0 or r1 <= r0:
                raise InputError(f"the extent {tuple(bounds)} does not overlap the raster {self.path.name}")
            self.area = Window(c0, r0, c1 - c0, r1 - r0)
        self.width, self.height = int(self.area.width), int(self.area.height)
        self.transform = self.full_transform * self.full_transform.translation(self.area.col_off, self.area.row_off)

    # reading ---------------------------------------------------------------
    def read(self, row_off: int, col_off: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB digital numbers (3, h, w) and validity (h, w) of a window in *area* pixel
        coordinates; parts outside the raster come back invalid (zeros)."""
        from rasterio.windows import Window

        r0, c0 = row_off + int(self.area.row_off), col_off + int(self.area.col_off)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + height, self.full_height), min(c0 + width, self.full_width)
        data = np.zeros((3, height, width), dtype=self.dtype)
        valid = np.zeros((height, width), dtype=bool)
        if rr1 <= rr0 or cc1 <= cc0:
            return data, valid
        win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
        ys, xs = slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0)
        ok = np.ones((int(win.height), int(win.width)), dtype=bool)
        for i, (ds, b) in enumerate(self._sources):
            arr = ds.read(b, window=win)
            data[i, ys, xs] = arr
            if ds.nodata is not None:
                ok &= ~((arr == ds.nodata) | (np.isnan(arr) if arr.dtype.kind == "f" else False))
            elif arr.dtype.kind == "f":
                ok &= np.isfinite(arr)
            from rasterio.enums import MaskFlags

            if MaskFlags.per_dataset in ds.mask_flag_enums[b - 1] or MaskFlags.alpha in ds.mask_flag_enums[b - 1]:
                ok &= ds.read_masks(b, window=win) > 0
        if self.nodata is None and self.dtype.kind in "ui" and not self.radiometry.passthrough_8bit:
            # Sentinel-2 products use DN 0 for "no data" without declaring it.
            ok &= np.any(data[:, ys, xs] != 0, axis=0)
        valid[ys, xs] = ok
        return data, valid

    def fingerprint(self) -> dict:
        """Enough to tell whether an embedding store was made from this input."""
        st = self.path.stat()
        return {"path": str(self.path.resolve()), "size": st.st_size, "mtime": int(st.st_mtime),
                "width": self.full_width, "height": self.full_height, "crs": self.crs.to_wkt(),
                "transform": list(self.full_transform)[:6], "bands": self.band_names,
                "area": [int(self.area.col_off), int(self.area.row_off), self.width, self.height]}

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_scene(path, **kwargs) -> Scene:
    """Open a Sentinel-2 raster or band folder; see :class:`Scene` for the options."""
    return Scene(path, **kwargs)
