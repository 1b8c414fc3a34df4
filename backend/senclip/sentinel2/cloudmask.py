"""Clouds and their shadows are not land cover: a per-pixel mask applied before tiling.

``--cloud-mask`` chooses where the mask comes from:

- ``scl``: the Scene Classification Layer an L2A product ships (``SCL_20m``, nearest-neighbour onto
  the 10 m grid). Masked: no data (0), saturated/defective (1), cloud shadow (3), cloud medium (8)
  and high (9) probability, thin cirrus (10); snow (11) only with ``mask_snow``.
- ``s2cloudless``: Sentinel Hub's pretrained LightGBM pixel classifier on L1C top-of-atmosphere
  reflectance, at 180 m, plus geometric cloud shadows (:mod:`senclip.sentinel2.cloudless`).
- a raster file: any raster, non-zero = masked, warped onto the scene's grid.
- ``auto``: SCL when the product has one, else s2cloudless when the L1C bands are there, else
  nothing, with a one-line note why. ``none``: no mask.

The mask is computed once per scene, in row strips (memory does not grow with the raster), into a
uint8 GeoTIFF on the scene's area grid whose values say *why* a pixel is masked (:data:`CODES`,
0 = clear). The embedding store keeps that file and the per-cell record of which chips the mask
rejected, so re-classifying a store never re-masks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.core.errors import BackendUnavailableError, InputError
from senclip.sentinel2.maskcodes import (  # noqa: F401  (the codes are part of this module's interface)
    CIRRUS, CLEAR, CLOUD, CODES, DEFECTIVE, SCL_CODES, SCL_SNOW, SHADOW, SNOW, USER, MaskPlan,
    without_query,
)
from senclip.sentinel2.productfiles import S2CLOUDLESS_BANDS, locate

# Not in resources/options.json: --cloud-mask also takes a raster path, so it is no click.Choice;
# the plugin mirrors these in senclip_qgis/catalog.py (CLOUD_MASKS).
MODES = ("auto", "scl", "s2cloudless", "none")
DEFAULT_MODE = "auto"
MASK_FILE = "cloudmask.tif"  # inside an embedding store
CELLS_FILE = "cloud.npy"  # grid cells left unclassified because of the mask
STRIP_ROWS = 512  # rows of the area grid computed and written at once

INSTALL_HINT = "pip install s2cloudless lightgbm (or reinstall the backend with the full 'torch' choice)"


def s2cloudless_available() -> str | None:
    """None when s2cloudless (and lightgbm) import, else the reason."""
    import warnings

    try:
        with warnings.catch_warnings():  # sentinelhub → pyproj warns about PROJ data on import
            warnings.simplefilter("ignore")
            import lightgbm  # noqa: F401
            import s2cloudless  # noqa: F401
    except ImportError as e:
        return f"s2cloudless is not installed ({e}); {INSTALL_HINT}"
    return None


def mask_source(spec, *, has_scl: bool, missing_bands=()) -> str:
    """Where ``--cloud-mask spec`` takes its mask from: ``none``, ``file``, ``scl`` or ``s2cloudless``.

    Decided from what the input has (an SCL; which s2cloudless bands are missing) without reading a
    pixel, so a caller knows which files a run will read before any is read: a regional job checks
    what reading a STAC item's assets costs (:mod:`senclip.region.access`). An explicit mode is taken
    as asked (:func:`plan_mask` refuses it when it cannot work); ``auto`` is the SCL when there is
    one, else s2cloudless when its bands are all there and it is installed, else none."""
    spec = DEFAULT_MODE if spec in (None, "") else str(spec)
    if spec == "none":
        return "none"
    if spec not in MODES:
        return "file"
    if spec != "auto":
        return spec
    if has_scl:
        return "scl"
    return "s2cloudless" if not missing_bands and s2cloudless_available() is None else "none"


def plan_mask(spec, scene, *, mask_snow: bool = False, scl=None, product_files=None) -> MaskPlan:
    """Resolve ``--cloud-mask`` for an open scene (the choice itself is :func:`mask_source`'s). Raises
    :class:`InputError` when an explicit choice cannot work on this input (no SCL, missing bands,
    unreadable file). ``scl`` names the scene classification layer when it does not sit beside the
    input (a STAC item's asset); ``product_files`` (:class:`~senclip.sentinel2.productfiles.ProductFiles`)
    the bands s2cloudless reads and the sun angles, when they come from elsewhere too (a STAC item's
    band assets)."""
    spec = DEFAULT_MODE if spec in (None, "") else str(spec)
    if spec == "none":
        return MaskPlan("none", "off (--cloud-mask none)")
    if spec not in MODES:
        p = Path(spec)
        if not p.is_file():
            raise InputError(f"--cloud-mask {spec!r} is neither {', '.join(MODES)} nor an existing raster file")
        _check_user_raster(p, scene)
        return MaskPlan("file", f"{p.name} (non-zero = masked)", source=str(p.resolve()))
    files = locate(scene)
    if product_files is not None:  # the catalog's files are the product's: they replace what lies beside
        files.bands = dict(product_files.bands) if product_files.bands else files.bands
        files.scl, files.sun = product_files.scl or files.scl, product_files.sun
        files.mtd_tl = product_files.mtd_tl or files.mtd_tl
    files.scl = scl or files.scl
    name, missing = Path(scene.path).name, files.missing_bands()
    source = mask_source(spec, has_scl=files.scl is not None, missing_bands=missing)
    if source == "scl" and files.scl is not None:
        return MaskPlan("scl", f"the product's scene classification ({Path(without_query(str(files.scl))).name})",
                        source=str(files.scl), mask_snow=mask_snow)
    if source == "scl":
        raise InputError(
            f"--cloud-mask scl: no scene classification file (*_SCL_20m.jp2) found for {name}; it ships in "
            "Sentinel-2 L2A products (GRANULE/*/IMG_DATA/R20m/). Use --cloud-mask s2cloudless for L1C, or none")
    if source == "none":  # auto, and nothing to mask with: say why
        return MaskPlan("none", "none: " + (f"{name} has no scene classification layer (SCL) and lacks the bands "
                                            f"s2cloudless needs (missing {', '.join(missing)})" if missing
                                            else s2cloudless_available()))
    if missing:
        raise InputError(
            f"--cloud-mask s2cloudless needs the Sentinel-2 L1C bands {', '.join(S2CLOUDLESS_BANDS)}; {name} "
            f"lacks {', '.join(missing)}. Give the L1C product folder (or a 13-band stack), or --cloud-mask none")
    unavailable = s2cloudless_available()
    if unavailable:
        raise BackendUnavailableError(f"--cloud-mask s2cloudless: {unavailable}")
    return MaskPlan("s2cloudless", "s2cloudless on the L1C top-of-atmosphere bands, cloud shadows projected "
                    "along the sun azimuth",
                    mtd_tl=str(files.mtd_tl) if files.mtd_tl else None,
                    bands={b: files.bands[b] for b in S2CLOUDLESS_BANDS}, sun=files.sun)


def _check_user_raster(path: Path, scene) -> None:
    import rasterio

    try:
        with rasterio.open(path) as ds:
            if ds.crs is None and (ds.width, ds.height) != (scene.full_width, scene.full_height):
                raise InputError(
                    f"--cloud-mask {path.name} has no CRS and another size ({ds.width}×{ds.height}) than the input "
                    f"({scene.full_width}×{scene.full_height}); georeference the mask")
    except rasterio.errors.RasterioIOError as e:
        raise InputError(f"--cloud-mask {str(path)!r} cannot be read as a raster ({e})") from None


# --- building the mask file ----------------------------------------------------------------------
@dataclass
class MaskResult:
    """What a built mask holds: its file, the share of area pixels masked, per reason."""

    path: Path
    record: dict


def build_mask(plan: MaskPlan, scene, out: Path, *, feedback) -> MaskResult | None:
    """Write the mask raster of ``plan`` for the scene's area to ``out``; None for ``none``."""
    if plan.method == "none":
        return None
    feedback.info(f"cloud mask: {plan.note}")
    if plan.method == "scl":
        strips, extra = _scl_strips(plan, scene), {}
    elif plan.method == "file":
        strips, extra = _file_strips(plan, scene), {}
    else:
        from senclip.sentinel2.cloudless import s2cloudless_mask

        strips, extra = s2cloudless_mask(plan, scene, feedback=feedback, strip_rows=STRIP_ROWS)
    counts = write_mask(out, scene, strips, feedback=feedback)
    total = max(1, scene.width * scene.height)
    record = dict(plan.record(), **extra, file=MASK_FILE,
                  masked_fraction=round(float(counts[1:].sum()) / total, 6),
                  by_reason={CODES[c]: round(float(counts[c]) / total, 6) for c in CODES if c and counts[c]})
    feedback.info(f"cloud mask: {100 * record['masked_fraction']:.1f} % of the area masked"
                  + "".join(f", {k} {100 * v:.1f} %" for k, v in record["by_reason"].items()))
    return MaskResult(out, record)


def write_mask(out: Path, scene, strips, *, feedback) -> np.ndarray:
    """Write (row_off, uint8 strip) pairs from ``strips`` into a GeoTIFF; returns counts per code."""
    import rasterio
    from rasterio.windows import Window

    profile = dict(driver="GTiff", width=scene.width, height=scene.height, count=1, dtype="uint8",
                   crs=scene.crs, transform=scene.transform, compress="deflate")
    if scene.width >= 256 and scene.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    counts = np.zeros(256, dtype=np.int64)
    n = -(-scene.height // STRIP_ROWS)
    feedback.start(n, "writing cloud mask")
    with rasterio.open(out, "w", **profile) as ds:
        ds.set_band_description(1, "cloud mask: " + ", ".join(f"{k}={v}" for k, v in CODES.items()))
        for y0, strip in strips:
            feedback.check()
            ds.write(strip, 1, window=Window(0, y0, scene.width, strip.shape[0]))
            counts += np.bincount(strip.ravel(), minlength=256)
            feedback.advance(1)
    feedback.finish()
    return counts


def area_pixel_centres(scene, y0: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Map x of every column and y of the rows ``y0..y0+h`` of the area (pixel centres)."""
    t = scene.transform
    if t.b or t.d:
        raise InputError(f"{Path(scene.path).name} has a rotated geotransform; cloud masks need a north-up raster")
    xs = t.c + (np.arange(scene.width) + 0.5) * t.a
    ys = t.f + (np.arange(y0, y0 + h) + 0.5) * t.e
    return xs, ys


def _scl_strips(plan: MaskPlan, scene):
    """SCL classes → mask codes, each 10 m pixel taking the SCL pixel its centre falls in (nearest)."""
    import rasterio
    from rasterio.windows import Window

    lut = np.zeros(256, dtype=np.uint8)
    for k, v in SCL_CODES.items():
        lut[k] = v
    if plan.mask_snow:
        lut[SCL_SNOW] = SNOW
    with rasterio.open(plan.source) as ds:
        if ds.crs is not None and scene.crs is not None and ds.crs != scene.crs:
            raise InputError(f"the SCL file {Path(plan.source).name} is in {ds.crs}, the input in {scene.crs}; "
                             "use the SCL of the same granule")
        inv = ~ds.transform
        for y0 in range(0, scene.height, STRIP_ROWS):
            h = min(STRIP_ROWS, scene.height - y0)
            xs, ys = area_pixel_centres(scene, y0, h)
            cols = np.floor(inv.a * xs + inv.c).astype(np.int64)
            rows = np.floor(inv.e * ys + inv.f).astype(np.int64)
            strip = np.zeros((h, scene.width), dtype=np.uint8)
            rin = (rows >= 0) & (rows < ds.height)
            cin = (cols >= 0) & (cols < ds.width)
            if rin.any() and cin.any():
                r0, r1 = rows[rin].min(), rows[rin].max() + 1
                c0, c1 = cols[cin].min(), cols[cin].max() + 1
                scl = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
                sub = scl[np.ix_(rows[rin] - r0, cols[cin] - c0)]
                strip[np.ix_(rin, cin)] = lut[sub]
            yield y0, strip


def _file_strips(plan: MaskPlan, scene):
    """A user raster warped (nearest) onto the area grid; non-zero and not nodata = masked."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    with rasterio.open(plan.source) as src:
        same_grid = src.crs is None or (src.crs == scene.crs and src.transform == scene.full_transform
                                        and (src.width, src.height) == (scene.full_width, scene.full_height))
        if same_grid:
            ds, off = src, (int(scene.area.row_off), int(scene.area.col_off))
        else:
            ds = WarpedVRT(src, crs=scene.crs, transform=scene.transform, width=scene.width, height=scene.height,
                           resampling=Resampling.nearest, nodata=src.nodata if src.nodata is not None else 0)
            off = (0, 0)
        try:
            for y0 in range(0, scene.height, STRIP_ROWS):
                h = min(STRIP_ROWS, scene.height - y0)
                arr = ds.read(1, window=Window(off[1], off[0] + y0, scene.width, h))
                masked = arr != 0
                if arr.dtype.kind == "f":
                    masked &= np.isfinite(arr)
                if src.nodata is not None:
                    masked &= arr != src.nodata
                yield y0, np.where(masked, USER, CLEAR).astype(np.uint8)
        finally:
            if ds is not src:
                ds.close()


# --- reading it back ------------------------------------------------------------------------------
class MaskReader:
    """Windows of a mask raster in area pixel coordinates; outside the raster nothing is masked."""

    def __init__(self, path) -> None:
        import rasterio

        self.ds = rasterio.open(path)

    def read(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """(height, width) bool: True where masked."""
        from rasterio.windows import Window

        out = np.zeros((height, width), dtype=bool)
        r0, c0 = max(row_off, 0), max(col_off, 0)
        r1, c1 = min(row_off + height, self.ds.height), min(col_off + width, self.ds.width)
        if r1 > r0 and c1 > c0:
            arr = self.ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
            out[r0 - row_off:r1 - row_off, c0 - col_off:c1 - col_off] = arr != CLEAR
        return out

    def close(self) -> None:
        self.ds.close()

    def __enter__(self) -> "MaskReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def store_mask(store_path) -> tuple[Path | None, np.ndarray | None]:
    """The mask raster and the cloud-cell grid an embedding store keeps (None, None when it has none)."""
    folder = Path(store_path)
    mask = folder / MASK_FILE
    cells = folder / CELLS_FILE
    return (mask if mask.is_file() else None), (np.load(cells) if cells.is_file() else None)
