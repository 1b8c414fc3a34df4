"""Sentinel-2 scenes: which bands are R, G, B, how digital numbers become 8-bit RGB, what is valid.

A scene is one multi-band raster (GeoTIFF/JP2/VRT, or an 8-bit true-colour TCI) or a Sentinel-2
product read band by band: a ``.SAFE`` folder or its ``.zip``, a granule, its ``IMG_DATA``, or a
folder of files named like ``*_B04.jp2`` (which file is which band is :mod:`senclip.sentinel2.product`'s
business). Either way the pipeline asks for the same thing: 8-bit RGB and a validity mask for a
pixel window, padded where the window leaves the raster, so tiles at the edges are handled like
any other.
"""
from __future__ import annotations

import math
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.sentinel2 import product as s2product
from senclip.core.errors import InputError, SenclipWarning
from senclip.sentinel2.product import RGB, norm_band

# Sentinel-2 band orders of the common multi-band products, by band count.
BAND_ORDERS: dict[int, list[str]] = {
    13: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"],
    12: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"],
    4: ["B02", "B03", "B04", "B08"],
    3: ["B04", "B03", "B02"],
}
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")
DEFAULT_MAX_REFLECTANCE = 0.3
SCALE_SAMPLES = 8  # float input: the reflectance scale is judged on SCALE_SAMPLES² small windows …
SCALE_SAMPLE_SIDE = 32  # … of this many pixels, spread evenly over the whole raster


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
        if dn.dtype.kind == "f":  # NaN nodata: invalid anyway, but must not reach the uint8 cast
            refl = np.nan_to_num(refl, copy=False)
        out = np.clip(refl * (255.0 / self.max_reflectance), 0, 255)
        return (out + 0.5).astype(np.uint8)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "offset": self.offset, "max_reflectance": self.max_reflectance,
                "passthrough_8bit": self.passthrough_8bit, "stretch": self.stretch}


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

        self.path = s2product.from_subdataset(str(path)) or Path(path)
        if not self.path.exists():
            raise InputError(f"input {str(path)!r} does not exist; give a Sentinel-2 raster, a .SAFE product (folder "
                             "or .zip) or a folder of band files")
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
        self.product = None
        if s2product.is_product(self.path):
            self._open_product(rasterio, band_spec)
        else:
            self._open_raster(rasterio, band_spec)
        ref = self._sources[0][0]
        self.full_width, self.full_height = ref.width, ref.height
        self.crs, self.full_transform = ref.crs, ref.transform
        self.dtype = np.dtype(ref.dtypes[0])
        self.nodata = ref.nodata

    def _open_product(self, rasterio, band_spec) -> None:
        self.product = s2product.find_product(self.path)
        names = [norm_band(b) if s2product.is_band_name(b) else b for b in band_spec] if band_spec else list(RGB)
        if any(not s2product.is_band_name(n) for n in names):
            raise InputError(f"--bands for a Sentinel-2 product or band folder must be band names like B04,B03,B02, "
                             f"got {','.join(band_spec)}")
        paths, _ = self.product.select(names)
        self._sources = [(self._open_ds(rasterio, p), 1) for p in paths]
        self.band_names = names
        ref = self._sources[0][0]
        for ds, _ in self._sources[1:]:
            if (ds.width, ds.height, ds.transform) != (ref.width, ref.height, ref.transform):
                raise InputError(
                    f"band files {ref.name} and {ds.name} are on different grids; choose bands of the same "
                    "resolution (B02, B03, B04 and B08 are the 10 m bands)")
        self.level = self.product.level or "L1C"

    def _open_raster(self, rasterio, band_spec) -> None:
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
                    t = norm_band(tok) if s2product.is_band_name(tok) else tok.upper()
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

    @property
    def band_paths(self) -> list[str]:
        """The files R, G, B are read from (GDAL paths: ``/vsizip/…`` inside a zip)."""
        return [ds.name for ds, _ in self._sources]

    @property
    def scl_path(self) -> str | None:
        """The L2A scene classification layer (SCL, 20 m where present) of a product input, else None.
        Not a spectral band: for cloud masking. A ``/vsizip/`` path inside a zip; GDAL opens it."""
        return self.product.scl_path if self.product else None

    @property
    def mtd_tl_path(self) -> str | None:
        """The granule metadata (``MTD_TL.xml``: sun and view angles) of a product input, else None;
        read it with :func:`senclip.sentinel2.product.read_text` (it may lie inside a zip)."""
        return self.product.mtd_tl_path if self.product else None

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
        meta, names = self._metadata(), self.band_names
        if scale in ("auto", None):
            if self.dtype.kind == "f" and self._looks_like_reflectance():
                s = 1.0
            else:
                s = (meta.quantification if meta and meta.quantification else None) or 10000.0
        else:
            try:
                s = float(scale)
            except ValueError:
                raise InputError(f"--scale must be 'auto' or a number (DN per unit reflectance, e.g. 10000), got {scale!r}") from None
            if not s > 0:
                raise InputError(f"--scale must be > 0, got {scale!r}")
        if offset in ("auto", None):
            o = s2product.radiometric_offset(meta, names if all(map(s2product.is_band_name, names)) else RGB,
                                             self.path.resolve())
            o = 0.0 if (o is None or s == 1.0) else o
        else:
            try:
                o = float(offset)
            except ValueError:
                raise InputError(f"--offset must be 'auto' or a number (e.g. -1000 for baseline 04.00+), got {offset!r}") from None
        return Radiometry(scale=s, offset=o, max_reflectance=float(max_reflectance), stretch=stretch)

    def _metadata(self):
        """Product metadata (``MTD_MSIL*.xml``) of the input, or of the product a single file lies in."""
        if self.product is not None:
            return self.product.metadata
        return s2product.metadata_near(self.path)[0]

    def _looks_like_reflectance(self) -> bool:
        """Float input holding reflectance (0..1) rather than DNs: judged on valid pixels of small
        windows spread over the whole raster, so a nodata corner cannot decide it."""
        from rasterio.windows import Window

        vals = []
        for y in _spread(self.full_height, SCALE_SAMPLE_SIDE, SCALE_SAMPLES):
            for x in _spread(self.full_width, SCALE_SAMPLE_SIDE, SCALE_SAMPLES):
                win = Window(x, y, min(SCALE_SAMPLE_SIDE, self.full_width), min(SCALE_SAMPLE_SIDE, self.full_height))
                dn, ok = self._read_window(win)
                vals.append(dn[:, ok].ravel())
        v = np.concatenate(vals)
        return v.size == 0 or float(np.percentile(v, 99)) <= 2.0

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
        data[:, ys, xs], valid[ys, xs] = self._read_window(win)
        return data, valid

    def _read_window(self, win) -> tuple[np.ndarray, np.ndarray]:
        """R, G, B (3, h, w) of a window inside the raster, and which pixels hold data: not the declared
        nodata, finite, inside the raster's mask, and (no nodata declared) not 0 in all three bands:
        Sentinel-2's DN 0 and the black (0, 0, 0) border of an 8-bit true-colour image are no data."""
        from rasterio.enums import MaskFlags

        data = np.empty((3, int(win.height), int(win.width)), dtype=self.dtype)
        ok = np.ones((int(win.height), int(win.width)), dtype=bool)
        for i, (ds, b) in enumerate(self._sources):
            arr = ds.read(b, window=win)
            data[i] = arr
            if ds.nodata is not None:
                ok &= ~((arr == ds.nodata) | (np.isnan(arr) if arr.dtype.kind == "f" else False))
            elif arr.dtype.kind == "f":
                ok &= np.isfinite(arr)
            if MaskFlags.per_dataset in ds.mask_flag_enums[b - 1] or MaskFlags.alpha in ds.mask_flag_enums[b - 1]:
                ok &= ds.read_masks(b, window=win) > 0
        if self.nodata is None and self.dtype.kind in "ui":
            ok &= np.any(data != 0, axis=0)
        return data, ok

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


def _spread(length: int, side: int, n: int) -> list[int]:
    """Offsets of ``n`` windows of ``side`` px spread evenly over ``length`` px (fewer if it is short)."""
    return sorted({int(round(v)) for v in np.linspace(0, max(length - side, 0), n)})


def open_scene(path, **kwargs) -> Scene:
    """Open a Sentinel-2 raster or band folder; see :class:`Scene` for the options."""
    return Scene(path, **kwargs)
