"""Scene → chips → encoder → embedding store, with reading overlapped with inference.

A reader thread cuts chips strip by strip (each strip covers several tile rows, so overlapping
chips are decoded from the file once) and hands batches to the encoding thread through a short
queue. Encoders release the GIL (ONNX Runtime, PyTorch), so decoding, band mapping and 8-bit
conversion run while the model computes. Cancel and Ctrl-C stop both threads at the next batch.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .feedback import Feedback
from .tiling import TileGrid, fill_invalid

STRIP_PIXELS = 512  # target strip height in pixels: bounded memory, few reads


@dataclass
class Batch:
    rows: np.ndarray
    cols: np.ndarray
    chips: np.ndarray  # uint8 (N, 3, tile, tile)


def load_mask_geometries(path, crs) -> list[dict]:
    """Polygons of a GeoJSON file, in the raster's CRS (GeoJSON without a "crs" member is
    WGS 84 by RFC 7946)."""
    import json
    from pathlib import Path

    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"mask file {str(p)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"mask file {str(p)!r} is not GeoJSON ({e}); export the polygons as GeoJSON") from None
    if data.get("type") == "FeatureCollection":
        geoms = [f.get("geometry") for f in data.get("features", [])]
    elif data.get("type") == "Feature":
        geoms = [data.get("geometry")]
    else:
        geoms = [data]
    geoms = [g for g in geoms if g and g.get("type") in ("Polygon", "MultiPolygon")]
    if not geoms:
        raise InputError(f"mask file {str(p)!r} holds no polygons; the mask must be a polygon layer")
    src = (data.get("crs") or {}).get("properties", {}).get("name", "EPSG:4326")
    src_crs = CRS.from_user_input(src)
    if src_crs != crs:
        geoms = [transform_geom(src_crs, crs, g) for g in geoms]
    return geoms


def strip_validity(scene, valid: np.ndarray, row_off: int, col_off: int, geoms) -> np.ndarray:
    if not geoms:
        return valid
    from rasterio.features import geometry_mask

    t = scene.transform * scene.transform.translation(col_off, row_off)
    inside = geometry_mask(geoms, out_shape=valid.shape, transform=t, invert=True, all_touched=False)
    return valid & inside


def iter_batches(scene, grid: TileGrid, *, batch_size: int, min_valid: float, geoms=None,
                 stop: threading.Event | None = None):
    """Yield :class:`Batch` es of valid chips in grid order; cells with less than ``min_valid``
    valid pixels are never encoded (they stay nodata, never guessed)."""
    t, s, m = grid.tile, grid.stride, grid.margin
    rows_per_band = max(1, (STRIP_PIXELS - t) // s + 1)
    width = (grid.cols - 1) * s + t
    pend_r, pend_c, pend_x = [], [], []
    need = min_valid * t * t
    for r0, r1 in grid.row_bands(rows_per_band):
        if stop is not None and stop.is_set():
            return
        height = (r1 - r0 - 1) * s + t
        dn, valid = scene.read(r0 * s - m, -m, height, width)
        valid = strip_validity(scene, valid, r0 * s - m, -m, geoms)
        rgb = scene.radiometry.to_uint8(dn)
        # valid-pixel count of every chip in the strip via a summed-area table
        sat = np.pad(valid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        ys = (np.arange(r0, r1) - r0) * s
        xs = np.arange(grid.cols) * s
        counts = (sat[ys[:, None] + t, xs[None, :] + t] - sat[ys[:, None], xs[None, :] + t]
                  - sat[ys[:, None] + t, xs[None, :]] + sat[ys[:, None], xs[None, :]])
        for i, j in zip(*np.nonzero(counts >= max(need, 1))):
            y, x = ys[i], xs[j]
            pend_r.append(r0 + i)
            pend_c.append(j)
            pend_x.append(fill_invalid(rgb[:, y:y + t, x:x + t], valid[y:y + t, x:x + t]))
            if len(pend_x) == batch_size:
                yield Batch(np.array(pend_r), np.array(pend_c), np.stack(pend_x))
                pend_r, pend_c, pend_x = [], [], []
    if pend_x:
        yield Batch(np.array(pend_r), np.array(pend_c), np.stack(pend_x))


def encode_scene(scene, grid: TileGrid, encoder, writer, *, batch_size: int, min_valid: float,
                 geoms=None, feedback: Feedback) -> int:
    """Encode every valid chip into ``writer``; returns the number of chips encoded."""
    q: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for b in iter_batches(scene, grid, batch_size=batch_size, min_valid=min_valid, geoms=geoms, stop=stop):
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # surfaced in the consumer
            q.put(e)

    reader = threading.Thread(target=produce, name="senclip-reader", daemon=True)
    reader.start()
    n = 0
    feedback.start(len(grid), "encoding tiles")
    last_row = 0
    try:
        while True:
            feedback.check()
            try:
                item = q.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            emb = encoder.encode_chips(item.chips)
            writer.write(item.rows, item.cols, emb)
            n += len(item.rows)
            # progress in grid cells, so skipped nodata cells count too
            pos = int(item.rows[-1]) * grid.cols + int(item.cols[-1]) + 1
            feedback.advance(pos - last_row)
            last_row = pos
        feedback.advance(len(grid) - last_row)
    finally:
        stop.set()
        reader.join(timeout=5)
        feedback.finish()
    return n
