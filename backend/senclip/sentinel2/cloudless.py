"""L1C clouds with s2cloudless, and their shadows by projecting the clouds away from the sun.

s2cloudless (Sentinel Hub's LightGBM pixel classifier; the pretrained model ships inside its PyPI
wheel) reads ten bands as top-of-atmosphere reflectance. Its authors run it at a coarse resolution
(160 m) with a probability threshold of 0.4, disk averaging over 4 px and dilation by 2 px; we use
their values at 180 m, the nearest resolution that is a whole number of 10, 20 and 60 m pixels (so
every coarse cell is the exact mean of native pixels), then give each 10 m pixel the value of the
cell it lies in. At 60 m with the same settings, on the hazy February demo scene, bare winter fields
and forest edges reach probabilities of 0.4-0.55 and about a tenth of the clear left part of the
scene was flagged; at 180 m none of it is, while the cumulus is still caught.

Shadows: a cloud at height h casts its shadow h·tan(sun zenith) away from the sun, along the sun
azimuth. Candidates are dark pixels (near-infrared TOA reflectance below :data:`DARK_NIR`, not
water). Each cloud (a connected object) is matched to its own height, as Fmask does: its footprint
is shifted over the heights of :data:`CLOUD_HEIGHTS_M`, one cell of distance at a time, and the
shift whose footprint is darkest (the largest share of candidate cells among the cells it lands on
outside clouds) is its shadow, with one step of tolerance either side. A cloud whose best shift is
less than :data:`MATCH_MIN` dark, or less than :data:`MATCH_CONTRAST` times as dark as the scene
as a whole (what any shift would find by chance), casts no shadow we can find (over water, off the
scene, or a thin cloud). Taking the dark cells of the union of all heights instead (the Earth
Engine tutorial's recipe) also marks dark ground anywhere in that band: lake shores and conifer
stands kilometres from a cloud's shadow.

Bands are read block by block (:data:`BLOCK_PIXELS`) and averaged to the coarse grid at once, so
memory is bounded by one block plus the coarse grid (610² cells for a full 10 980² tile).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from senclip.sentinel2.cloudmask import CLEAR, CLOUD, SHADOW, MaskPlan
from senclip.core.errors import InputError
from senclip.sentinel2.productfiles import S2CLOUDLESS_BANDS

COARSE_M = 180.0  # resolution s2cloudless runs at (its authors: 160 m; 180 m is a whole number of 10, 20 and 60 m pixels)
THRESHOLD = 0.4  # s2cloudless's default cloud probability threshold
AVERAGE_OVER = 4  # disk radius (coarse pixels) of the probability averaging
DILATION_SIZE = 2  # disk radius (coarse pixels) of the mask dilation
CLOUD_HEIGHTS_M = (200.0, 2500.0)  # cloud-top heights searched for shadows
DARK_NIR = 0.10  # NIR (B08) TOA reflectance below which a pixel in the shadow zone is shadow
WATER_SWIR = 0.03  # B11 below this is open water, dark for its own reasons
MATCH_MIN = 0.2  # share of dark cells under a cloud's best shift below which it casts no shadow found...
MATCH_CONTRAST = 2.0  # ...or below this many times the share of dark cells in the whole scene (chance)
MATCH_TOLERANCE = 1  # shifts (cells of distance) either side of the best one also taken as shadow
BLOCK_PIXELS = 4_000_000  # input pixels (10 m) of one band read at once: ~16 bytes each while averaging


class _Bands:
    """The ten s2cloudless bands of a scene, read as means over coarse cells over aligned windows."""

    def __init__(self, plan: MaskPlan, scene) -> None:
        import rasterio

        self.scene = scene
        self.res = abs(scene.full_transform.a)
        self.f = max(1, round(COARSE_M / self.res))  # scene pixels per coarse cell
        self._open = {}
        self.src = []  # (dataset, band index, band pixels per coarse cell)
        try:
            for band in S2CLOUDLESS_BANDS:
                path, bidx = plan.bands[band]
                ds = self._open.get(str(path)) or self._open.setdefault(str(path), rasterio.open(path))
                self.src.append((ds, bidx, self._cell(ds, band)))
        except BaseException:
            self.close()
            raise

    def _cell(self, ds, band: str) -> int:
        t, ref = ds.transform, self.scene.full_transform
        k = self.f * self.res / abs(t.a)
        if abs(k - round(k)) > 1e-6 or abs(t.c - ref.c) > 1e-3 * self.res or abs(t.f - ref.f) > 1e-3 * self.res:
            raise InputError(f"band {band} ({Path(ds.name).name}) is not on the grid of the input's other bands; "
                             "s2cloudless needs the bands of one product (same tile origin)")
        return int(round(k))

    def read(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """(i1-i0, j1-j0, 10) mean TOA reflectance of coarse cells; NaN where a cell has no data."""
        rad = self.scene.radiometry
        out = np.full((i1 - i0, j1 - j0, len(self.src)), np.nan, dtype=np.float32)
        from rasterio.windows import Window

        for b, (ds, bidx, k) in enumerate(self.src):
            r0, r1 = i0 * k, min(i1 * k, ds.height)
            c0, c1 = j0 * k, min(j1 * k, ds.width)
            if r1 <= r0 or c1 <= c0:
                continue
            dn = ds.read(bidx, window=Window(c0, r0, c1 - c0, r1 - r0))
            ok = np.isfinite(dn) if dn.dtype.kind == "f" else dn != 0  # S2 DN 0 = no data
            if ds.nodatavals[bidx - 1] is not None:
                ok &= dn != ds.nodatavals[bidx - 1]
            refl = np.where(ok, (dn.astype(np.float32) + rad.offset) / rad.scale, 0).astype(np.float32)
            del dn
            pad = ((0, (i1 - i0) * k - (r1 - r0)), (0, (j1 - j0) * k - (c1 - c0)))  # cells past the raster edge
            s = np.pad(refl, pad).reshape(i1 - i0, k, j1 - j0, k).sum(axis=(1, 3))
            n = np.pad(ok, pad).reshape(i1 - i0, k, j1 - j0, k).sum(axis=(1, 3))
            del refl, ok
            out[..., b] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        return out

    def close(self) -> None:
        for ds in self._open.values():
            ds.close()


def _detector():
    with warnings.catch_warnings():  # s2cloudless imports sentinelhub, whose pyproj warns on import
        warnings.simplefilter("ignore")
        from s2cloudless import S2PixelCloudDetector

    return S2PixelCloudDetector(threshold=THRESHOLD, average_over=AVERAGE_OVER, dilation_size=DILATION_SIZE,
                                all_bands=False)


def shadow_offsets(zenith: float, azimuth: float, cell_m: float, heights=CLOUD_HEIGHTS_M) -> list[tuple[int, int]]:
    """Pixel offsets (drow, dcol) from a cloud to its shadow for cloud heights in ``heights``, one
    per cell of distance, nearest first. The shadow lies away from the sun: rows grow southwards,
    columns eastwards."""
    tz = math.tan(math.radians(min(zenith, 85.0)))
    az = math.radians(azimuth)
    d0, d1 = heights[0] * tz / cell_m, heights[1] * tz / cell_m
    steps = np.arange(math.floor(d0 + 1e-9), math.ceil(d1 - 1e-9) + 1)
    offs = [(int(round(d * math.cos(az))), int(round(-d * math.sin(az)))) for d in steps]
    return list(dict.fromkeys(offs))  # distinct, in order of distance


def _shifted(rr: np.ndarray, cc: np.ndarray, off: tuple[int, int], shape) -> tuple[np.ndarray, np.ndarray]:
    r, c = rr + off[0], cc + off[1]
    inside = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return r[inside], c[inside]


def matched_shadow(cloud: np.ndarray, dark: np.ndarray, offsets) -> tuple[np.ndarray, list[int]]:
    """Shadow cells of every cloud object at its best-matching shift (see the module doc), and the
    index in ``offsets`` matched by each object that casts a shadow."""
    from scipy import ndimage

    candidates = dark & ~cloud
    needed = max(MATCH_MIN, MATCH_CONTRAST * float(candidates.mean()))
    shadow = np.zeros_like(cloud)
    matched = []
    labels, _ = ndimage.label(cloud)
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        rr, cc = np.nonzero(labels[box] == k)
        rr, cc = rr + box[0].start, cc + box[1].start
        scores = []
        for off in offsets:
            r, c = _shifted(rr, cc, off, cloud.shape)
            free = int((~cloud[r, c]).sum())
            # a shift landing mostly on clouds or off the scene says nothing about this cloud's height
            scores.append(candidates[r, c].sum() / free if free >= 0.25 * len(rr) else 0.0)
        if not scores or max(scores) < needed:
            continue
        best = int(np.argmax(scores))
        matched.append(best)
        for off in offsets[max(0, best - MATCH_TOLERANCE):best + MATCH_TOLERANCE + 1]:
            shadow[_shifted(rr, cc, off, cloud.shape)] = True
    return shadow & candidates, matched


def s2cloudless_mask(plan: MaskPlan, scene, *, feedback, strip_rows: int):
    """Compute clouds and shadows on the coarse grid; return (strips of 10 m codes, run record)."""
    from senclip.sentinel2.sunangles import sun_angles

    if scene.radiometry.passthrough_8bit:
        raise InputError("--cloud-mask s2cloudless needs reflectance (12/16-bit or float bands), not 8-bit images")
    det = _detector()
    bands = _Bands(plan, scene)
    f = bands.f
    ar0, ac0 = int(scene.area.row_off), int(scene.area.col_off)
    i0, i1 = ar0 // f, -(-(ar0 + scene.height) // f)
    j0, j1 = ac0 // f, -(-(ac0 + scene.width) // f)
    prob = np.zeros((i1 - i0, j1 - j0), np.float32)
    dark = np.zeros((i1 - i0, j1 - j0), bool)
    nir, swir = S2CLOUDLESS_BANDS.index("B08"), S2CLOUDLESS_BANDS.index("B11")
    per_block = max(1, BLOCK_PIXELS // (f * f * (j1 - j0)))  # coarse rows per read
    blocks = range(i0, i1, per_block)
    feedback.start(len(blocks), f"cloud probability (s2cloudless, {COARSE_M:.0f} m)")
    try:
        for a in blocks:
            feedback.check()
            b = min(i1, a + per_block)
            data = bands.read(a, b, j0, j1)
            ok = np.isfinite(data).all(axis=-1)
            if ok.any():
                p = det.get_cloud_probability_maps(data[ok][None, :, None, :])
                prob[a - i0:b - i0][ok] = p.reshape(-1)
            dark[a - i0:b - i0] = ok & (data[..., nir] < DARK_NIR) & (data[..., swir] >= WATER_SWIR)
            feedback.advance(1)
    finally:
        bands.close()
        feedback.finish()
    cloud = det.get_mask_from_prob(prob[None])[0].astype(bool)
    sun = sun_angles(scene, plan.mtd_tl)
    record = {"resolution_m": COARSE_M, "threshold": THRESHOLD, "average_over": AVERAGE_OVER,
              "dilation_size": DILATION_SIZE, "sun": None, "cloud_heights_m": list(CLOUD_HEIGHTS_M),
              "dark_nir": DARK_NIR}
    if sun is None:
        shadow = np.zeros_like(cloud)
        feedback.warning("cloud shadows not masked: no sun angles (no MTD_TL.xml beside the input and no "
                         "acquisition time like _20170216T102101_ in its name)")
    else:
        record["sun"] = {"zenith": round(sun.zenith, 3), "azimuth": round(sun.azimuth, 3), "source": sun.source}
        feedback.info(f"sun zenith {sun.zenith:.1f}°, azimuth {sun.azimuth:.1f}° ({sun.source})")
        shadow, matched = matched_shadow(cloud, dark, shadow_offsets(sun.zenith, sun.azimuth, f * bands.res))
        record["shadow_matching"] = {"min_dark_share": MATCH_MIN, "min_contrast": MATCH_CONTRAST,
                                     "tolerance_cells": MATCH_TOLERANCE,
                                     "clouds_with_shadow": len(matched)}
    code = np.where(cloud, CLOUD, np.where(shadow, SHADOW, CLEAR)).astype(np.uint8)
    cols = (ac0 + np.arange(scene.width)) // f - j0

    def strips():
        for y0 in range(0, scene.height, strip_rows):
            h = min(strip_rows, scene.height - y0)
            rows = (ar0 + y0 + np.arange(h)) // f - i0
            yield y0, code[rows[:, None], cols[None, :]]

    return strips(), record
