"""Per-scene class maps → one mosaic (COG with overviews, plus a VRT) and the region's areas.

Overlap rule, per pixel, over every scene that observed it (several dates, neighbouring tiles):

* ``confidence`` (default): the observation with the highest confidence wins; ties go to the
  class seen more often, then to the lower class number.
* ``majority``: the class seen most often over the scenes (dates) wins; ties go to the higher
  confidence, then to the lower class number.

Only real classes (1..K) vote. Cloud (``CLOUD_VALUE`` = 255) loses to any real class and is
kept only where every observation was cloud; nodata (0) never counts. Bands: 1 class,
2 confidence (%) of the winning class (its best observation), 3 agreement (%): the share of the
pixel's real observations that chose the winning class.

The mosaic is on the grid of the first scene in the most common CRS (other scenes are warped
to it, nearest neighbour), so maps on the same grid are copied exactly. Areas count every mosaic
pixel once (overlaps are not counted twice), at its ground area in the CRS of the scene that
covers it first: a mosaic pixel of ``res²`` is worth ``res² × r`` m², with ``r`` the scene's
footprint area in its own (UTM, metre) CRS over the same footprint's area in the mosaic CRS, so
per-scene UTM areas are what is summed, never degrees.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from senclip.core.choices import choices
from senclip.core.errors import InputError
from senclip.maps.geotiff import CLOUD_VALUE

RULES = tuple(choices("overlap"))  # resources/options.json; the first is the default
BLOCK = 512
BAND_NAMES = ("class", "confidence (%)", "agreement (%)")
COG_OPTIONS = {"COMPRESS": "DEFLATE", "BLOCKSIZE": "256", "OVERVIEW_RESAMPLING": "MODE", "BIGTIFF": "IF_SAFER"}


@dataclass
class MosaicResult:
    path: Path
    vrt: Path
    crs: str
    width: int
    height: int
    resolution: float
    rule: str
    area_m2: dict | None
    counts: dict
    cloud_pixels: int = 0
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["path"], d["vrt"] = str(self.path), str(self.vrt)
        return d


def combine(cls: np.ndarray, conf: np.ndarray, k: int, rule: str = "confidence"):
    """The overlap rule on a stack of observations: ``cls``/``conf`` are (n, h, w) uint8 (class
    0 = nodata, 255 = cloud). Returns class, confidence (%) and agreement (%) as (h, w) uint8."""
    if rule not in RULES:
        raise InputError(f"--overlap must be one of {', '.join(RULES)}, got {rule!r}")
    h, w = cls.shape[1:]
    votes = np.zeros((k, h, w), dtype=np.int32)
    best = np.zeros((k, h, w), dtype=np.int32)
    for c, p in zip(cls, conf):
        for j in range(k):
            hit = c == j + 1
            votes[j] += hit
            np.maximum(best[j], np.where(hit, p, 0), out=best[j])
    seen = votes > 0
    if rule == "confidence":
        key = best * 1_000_000 + votes
    else:
        key = votes * 1000 + best
    key = np.where(seen, key, -1)
    # argmax keeps the first maximum: the lower class number wins the remaining ties
    win = np.argmax(key, axis=0)
    any_real = seen.any(axis=0)
    cloud = (cls == CLOUD_VALUE).any(axis=0) & ~any_real
    out_cls = np.where(any_real, win + 1, np.where(cloud, CLOUD_VALUE, 0)).astype(np.uint8)
    n_real = votes.sum(axis=0)
    top_votes = np.take_along_axis(votes, win[None], 0)[0]
    out_conf = np.where(any_real, np.take_along_axis(best, win[None], 0)[0], 0).astype(np.uint8)
    agree = np.where(any_real, np.rint(100.0 * top_votes / np.maximum(n_real, 1)), 0).astype(np.uint8)
    return out_cls, out_conf, agree


def _polygon_area(ring) -> float:
    x, y = np.asarray([p[0] for p in ring]), np.asarray([p[1] for p in ring])
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _box(b, n: int = 16) -> list:
    (x0, y0, x1, y1), t = b, np.linspace(0, 1, n, endpoint=False)
    pts = [(x0 + (x1 - x0) * s, y0) for s in t] + [(x1, y0 + (y1 - y0) * s) for s in t]
    pts += [(x1 - (x1 - x0) * s, y1) for s in t] + [(x0, y1 - (y1 - y0) * s) for s in t]
    return pts + [pts[0]]


def ground_ratio(src_crs, bounds, dst_crs) -> float | None:
    """m² on the ground per unit² of ``dst_crs``, near ``bounds`` (in ``src_crs``, which must be
    in metres); None when the scene's own CRS is not metric."""
    from rasterio.warp import transform_geom

    units = (src_crs.linear_units or "").lower()
    if not src_crs.is_projected or units not in ("metre", "meter", "m"):
        return None
    ring = _box(bounds)
    if src_crs == dst_crs:
        return 1.0
    g = transform_geom(src_crs, dst_crs, {"type": "Polygon", "coordinates": [ring]})
    return _polygon_area(ring) / _polygon_area(g["coordinates"][0])


def _grid(srcs, crs):
    """Transform, width, height of the mosaic: anchored on the first map in ``crs``."""
    from affine import Affine
    from rasterio.warp import calculate_default_transform, transform_bounds

    anchor = next((s for s in srcs if s.crs == crs), None)
    if anchor is not None:
        res = min(abs(s.transform.a) for s in srcs if s.crs == crs)
        ox, oy = anchor.transform.c, anchor.transform.f
    else:
        t0, _, _ = calculate_default_transform(srcs[0].crs, crs, srcs[0].width, srcs[0].height, *srcs[0].bounds)
        res, ox, oy = abs(t0.a), t0.c, t0.f
    bxs = [transform_bounds(s.crs, crs, *s.bounds, densify_pts=21) for s in srcs]
    minx, miny = min(b[0] for b in bxs), min(b[1] for b in bxs)
    maxx, maxy = max(b[2] for b in bxs), max(b[3] for b in bxs)
    x0 = ox - np.ceil(round((ox - minx) / res, 6)) * res
    y1 = oy + np.ceil(round((maxy - oy) / res, 6)) * res
    width = int(np.ceil(round((maxx - x0) / res, 6)))
    height = int(np.ceil(round((y1 - miny) / res, 6)))
    return Affine(res, 0, x0, 0, -res, y1), width, height, bxs, res


def mosaic_crs(srcs, crs=None):
    from rasterio.crs import CRS

    if crs:
        try:
            return CRS.from_user_input(crs)
        except Exception as e:  # noqa: BLE001 - rasterio raises several kinds
            raise InputError(f"--mosaic-crs {crs!r} is not a CRS ({e}); use e.g. EPSG:32633") from None
    counts = Counter(s.crs.to_wkt() for s in srcs)
    top = max(counts.values())
    return next(s.crs for s in srcs if counts[s.crs.to_wkt()] == top)


def build_mosaic(maps: list, classes: list[str], out_dir, *, rule: str = "confidence", crs=None,
                 work=None, feedback=None) -> MosaicResult:
    """Merge the class-map COGs ``maps`` (in priority order: earlier scenes win exact ties of the
    VRT view; the rule decides the COG) into ``out_dir/mosaic.tif`` and ``mosaic.vrt``."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window
    from rasterio.windows import bounds as win_bounds

    from senclip.core.colors import class_colors
    from senclip.maps.geotiff import pam_xml, qml

    if rule not in RULES:
        raise InputError(f"--overlap must be one of {', '.join(RULES)}, got {rule!r}")
    out_dir = Path(out_dir)
    work = Path(work or out_dir)
    k = len(classes)
    srcs = [rasterio.open(p) for p in maps]
    try:
        dst_crs = mosaic_crs(srcs, crs)
        transform, width, height, bxs, res = _grid(srcs, dst_crs)
        ratios = [ground_ratio(s.crs, s.bounds, dst_crs) for s in srcs]
        warns = []
        covered = sum((b[2] - b[0]) * (b[3] - b[1]) for b in bxs) / res**2
        if width * height > 50 * max(covered, 1):
            warns.append(f"the scenes are far apart: the mosaic ({width}x{height} px) is mostly empty; map distant "
                         "regions in separate runs")
        if any(r is None for r in ratios):
            warns.append("some scenes are not in a metric CRS: region areas are not reported")
        vrts = [s if (s.crs == dst_crs and s.transform.a == res and _aligned(s.transform, transform))
                else WarpedVRT(s, crs=dst_crs, transform=transform, width=width, height=height,
                               resampling=Resampling.nearest, nodata=0) for s in srcs]
        fd, tmp = tempfile.mkstemp(dir=work, prefix=".mosaic.", suffix=".tif")
        os.close(fd)
        profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "width": width, "height": height,
                   "crs": dst_crs, "transform": transform, "nodata": 0, "tiled": True, "blockxsize": 256,
                   "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
        counts = np.zeros(256, dtype=np.int64)
        area = np.zeros(256, dtype=np.float64)
        blocks = [(r, c) for r in range(0, height, BLOCK) for c in range(0, width, BLOCK)]
        if feedback:
            feedback.start(len(blocks), "mosaic")
        with rasterio.open(tmp, "w", **profile) as dst:
            for i, n in enumerate(BAND_NAMES, start=1):
                dst.set_band_description(i, n)
            for r0, c0 in blocks:
                if feedback:
                    feedback.check()
                win = Window(c0, r0, min(BLOCK, width - c0), min(BLOCK, height - r0))
                h, w = int(win.height), int(win.width)
                bx = win_bounds(win, transform)
                cls_l, conf_l, weight = [], [], np.full((h, w), np.nan)
                for s, v, b, ratio in zip(srcs, vrts, bxs, ratios):
                    if b[0] >= bx[2] or b[2] <= bx[0] or b[1] >= bx[3] or b[3] <= bx[1]:
                        continue
                    data = _read(s, v, win, transform)
                    cls_l.append(data[0])
                    conf_l.append(data[1])
                    weight = np.where(np.isnan(weight) & (data[0] > 0), np.nan if ratio is None else ratio, weight)
                if not cls_l:
                    continue
                c, p, a = combine(np.stack(cls_l), np.stack(conf_l), k, rule)
                dst.write(np.stack([c, p, a]), window=win)
                counts += np.bincount(c.ravel(), minlength=256)
                area += np.bincount(c.ravel(), weights=np.nan_to_num(weight, nan=0.0).ravel() * res * res,
                                    minlength=256)
                if feedback:
                    feedback.advance(1)
            dst.update_tags(SENCLIP_CLASSES=json.dumps(classes), SENCLIP_MOSAIC_RULE=rule,
                            SENCLIP_MOSAIC_SCENES=json.dumps([Path(m).name for m in maps]))
            dst.update_tags(1, CLASS_NAMES=json.dumps(["unclassified", *classes]))
        if feedback:
            feedback.finish()
        path = _publish_cog(Path(tmp), out_dir / "mosaic.tif", work, pam_xml(classes, class_colors(classes)),
                            qml(classes, class_colors(classes)))
        vrt = _build_vrt([Path(m) for m in maps], [s.crs for s in srcs], dst_crs, out_dir, transform, width, height)
        metric = all(r is not None for r in ratios)
        return MosaicResult(
            path=path, vrt=vrt, crs=dst_crs.to_string(), width=width, height=height, resolution=res, rule=rule,
            area_m2={n: float(area[i + 1]) for i, n in enumerate(classes)} if metric else None,
            counts={n: int(counts[i + 1]) for i, n in enumerate(classes)}, cloud_pixels=int(counts[CLOUD_VALUE]),
            warnings=warns)
    finally:
        for s in srcs:
            s.close()


def _aligned(t, grid) -> bool:
    fx, fy = (t.c - grid.c) / grid.a, (t.f - grid.f) / grid.e
    return abs(fx - round(fx)) < 1e-6 and abs(fy - round(fy)) < 1e-6 and t.b == 0 and t.d == 0 and t.e == grid.e


def _read(src, vrt, win, transform) -> np.ndarray:
    """Bands 1-2 of a map for a mosaic window: a plain (boundless) window read when the map is on
    the mosaic grid, else through its WarpedVRT."""
    from rasterio.windows import Window

    if vrt is src:
        off_c = round((transform.c - src.transform.c) / transform.a) + int(win.col_off)
        off_r = round((transform.f - src.transform.f) / transform.e) + int(win.row_off)
        w = Window(off_c, off_r, win.width, win.height)
        return src.read([1, 2], window=w, boundless=True, fill_value=0)
    return vrt.read([1, 2], window=win)


def _publish_cog(tmp: Path, dst: Path, work: Path, aux: str, style: str) -> Path:
    """Mosaic GTiff → COG with overviews (mode resampling keeps class values), renamed into place."""
    from rasterio.shutil import copy

    stage = Path(tempfile.mkdtemp(dir=work, prefix=".mosaic-cog."))
    try:
        copy(tmp, stage / "mosaic.tif", driver="COG", **COG_OPTIONS)
        (stage / "mosaic.tif.aux.xml").write_text(aux, encoding="utf-8")
        (stage / "mosaic.qml").write_text(style, encoding="utf-8")
        (stage / "mosaic.tif.aux.xml").replace(dst.with_name(dst.name + ".aux.xml"))
        (stage / "mosaic.qml").replace(dst.with_suffix(".qml"))
        (stage / "mosaic.tif").replace(dst)
        return dst
    finally:
        tmp.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(stage, ignore_errors=True)


def _build_vrt(maps: list[Path], crss, dst_crs, out_dir: Path, transform, width, height) -> Path:
    """``mosaic.vrt`` over the per-scene COGs, for a quick look without the rule: where they
    overlap the last one listed (the newest) shows. Maps in another CRS enter through a warped
    VRT beside them (``<id>.warped.vrt``)."""
    from senclip.region.vrt import mosaic_vrt, warped_vrt

    srcs = [m if c == dst_crs else warped_vrt(m, dst_crs, m.with_name(m.stem + ".warped.vrt"))
            for m, c in zip(maps, crss)]
    return mosaic_vrt(srcs, out_dir / "mosaic.vrt", crs=dst_crs, transform=transform, width=width, height=height,
                      band_names=BAND_NAMES)
