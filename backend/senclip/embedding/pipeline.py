"""Scene → chips → encoder → embedding store, with reading overlapped with inference.

A reader thread cuts chips block by block (each block covers many tile rows and columns, so
overlapping chips are decoded from the file about once, and memory does not grow with the
raster) and hands batches to the encoding thread through a short queue. Encoders release the GIL (ONNX Runtime, PyTorch), so decoding, band mapping and 8-bit
conversion run while the model computes. Cancel and Ctrl-C stop both threads at the next batch.
"""
from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass

import numpy as np

from senclip.core.errors import InputError
from senclip.core.feedback import Feedback
from senclip.embedding.tiling import TileGrid, fill_invalid

# GDAL's block cache defaults to 5 % of RAM and, reading a whole tile once, fills all of it with
# blocks never needed again (1 GB on a 10980 px tile here). GDAL reads the setting once, at its
# first block read, so it must be in the environment before any raster is read; a value the
# user set wins. 128 MB holds a full-width row of blocks of a tile, which is all the overlap
# between neighbouring read blocks needs.
GDAL_CACHEMAX_MB = "128"
os.environ.setdefault("GDAL_CACHEMAX", GDAL_CACHEMAX_MB)


def gdal_cache_bytes() -> int | None:
    """The block cache GDAL_CACHEMAX asks for, in bytes (GDAL reads a number below 100000 as MB);
    None when it is given another way (``5%``), which callers then leave alone."""
    try:
        n = int(os.environ.get("GDAL_CACHEMAX", GDAL_CACHEMAX_MB))
    except ValueError:
        return None
    return n << 20 if n < 100_000 else n

BLOCK_PIXELS = 1024  # side of the pixel block read at once: bounded memory, ~6 % re-read at stride 32


@dataclass
class Batch:
    rows: np.ndarray
    cols: np.ndarray
    chips: np.ndarray  # uint8 (N, 3, tile, tile)
    cells_done: int = 0  # grid cells (nodata ones included) up to this batch's last chip, in reading order


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


def inside_mask(scene, valid: np.ndarray, row_off: int, col_off: int, geoms) -> np.ndarray:
    if not geoms:
        return valid
    from rasterio.features import geometry_mask

    t = scene.transform * scene.transform.translation(col_off, row_off)
    inside = geometry_mask(geoms, out_shape=valid.shape, transform=t, invert=True, all_touched=False)
    return valid & inside


def block_ranges(n: int, per_block: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + per_block)) for a in range(0, n, per_block)]


def chip_counts(valid: np.ndarray, ys: np.ndarray, xs: np.ndarray, t: int) -> np.ndarray:
    """Valid-pixel count of the ``t``×``t`` chips at (ys[i], xs[j]) via a summed-area table."""
    h, w = valid.shape
    sat = np.zeros((h + 1, w + 1), dtype=np.int32)
    np.cumsum(valid, axis=0, dtype=np.int32, out=sat[1:, 1:])
    np.cumsum(sat[1:, 1:], axis=1, out=sat[1:, 1:])
    return (sat[ys[:, None] + t, xs[None, :] + t] - sat[ys[:, None], xs[None, :] + t]
            - sat[ys[:, None] + t, xs[None, :]] + sat[ys[:, None], xs[None, :]])


def iter_batches(scene, grid: TileGrid, *, batch_size: int, min_valid: float, geoms=None,
                 stop: threading.Event | None = None, cloud=None, cloud_cells=None):
    """Yield :class:`Batch` es of valid chips, block by block; cells with less than ``min_valid``
    valid pixels are never encoded (they stay nodata, never guessed).

    ``cloud`` (a :class:`~senclip.sentinel2.cloudmask.MaskReader`) removes masked pixels from the valid ones;
    a cell that had enough valid pixels before the mask and too few after it is marked in
    ``cloud_cells`` (rows × cols bool), so the map can say "cloud" there instead of "no data".

    The grid is read in blocks of about ``BLOCK_PIXELS``² pixels (rows of blocks left to right,
    top to bottom), not full-width strips, so the memory held per read is the same for a
    1000 px crop and a 10980 px tile; neighbouring blocks overlap by ``tile - stride`` pixels.
    """
    t, s = grid.tile, grid.stride
    per = max(1, (BLOCK_PIXELS - t) // s + 1)  # tile rows/cols per block
    pend_r, pend_c, pend_x = [], [], []
    need = max(min_valid * t * t, 1)
    done = 0
    for r0, r1 in block_ranges(grid.rows, per):
        for c0, c1 in block_ranges(grid.cols, per):
            if stop is not None and stop.is_set():
                return
            height, width = (r1 - r0 - 1) * s + t, (c1 - c0 - 1) * s + t
            y0, x0 = grid.chip_origin(r0, c0)
            dn, valid = scene.read(y0, x0, height, width)
            valid = inside_mask(scene, valid, y0, x0, geoms)
            ys, xs = np.arange(r1 - r0) * s, np.arange(c1 - c0) * s
            if cloud is not None:
                before = chip_counts(valid, ys, xs, t) >= need
                valid &= ~cloud.read(y0, x0, height, width)
            counts = chip_counts(valid, ys, xs, t)
            if cloud is not None and cloud_cells is not None:
                cloud_cells[r0:r1, c0:c1] = before & (counts < need)
            sel = list(zip(*np.nonzero(counts >= need)))
            rad = scene.radiometry
            if rad.per_chip:  # each chip stretched by its own range: keep the DNs
                rgb = None
            else:
                rgb = rad.to_uint8(dn) if sel else None
                del dn
            for i, j in sel:
                y, x = ys[i], xs[j]
                pend_r.append(r0 + i)
                pend_c.append(c0 + j)
                ok = valid[y:y + t, x:x + t]
                chip = rad.chip_to_uint8(dn[:, y:y + t, x:x + t], ok) if rgb is None else rgb[:, y:y + t, x:x + t]
                pend_x.append(fill_invalid(chip, ok))
                if len(pend_x) == batch_size:
                    # progress position: the block's cells before this chip (row-major), so every batch advances
                    yield Batch(np.array(pend_r), np.array(pend_c), np.stack(pend_x), done + i * (c1 - c0) + j + 1)
                    pend_r, pend_c, pend_x = [], [], []
            done += (r1 - r0) * (c1 - c0)
    if pend_x:
        yield Batch(np.array(pend_r), np.array(pend_c), np.stack(pend_x), done)


def encode_scene(scene, grid: TileGrid, encoder, writer, *, batch_size: int, min_valid: float,
                 geoms=None, feedback: Feedback, cloud=None, cloud_cells=None) -> int:
    """Encode every valid chip into ``writer``; returns the number of chips encoded."""
    q: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for b in iter_batches(scene, grid, batch_size=batch_size, min_valid=min_valid, geoms=geoms, stop=stop,
                                  cloud=cloud, cloud_cells=cloud_cells):
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
            pos = max(item.cells_done, last_row)
            feedback.advance(pos - last_row)
            last_row = pos
        feedback.advance(len(grid) - last_row)
    finally:
        stop.set()
        reader.join(timeout=5)
        feedback.finish()
    return n
