"""Tile-grid probabilities → class-map GeoTIFF, at grid or at pixel resolution.

Pixel resolution gives each pixel the mean probability of every valid chip covering it. The map
is streamed in blocks of pixel rows (whole rows of the GeoTIFF's blocks), and a block reads only
the few grid rows its chips cover: their sums over each pixel's range of grid rows, then of grid
columns, in float32, the cells of a range added in order, so a pixel's value does not depend on
where the block starts. Pixels covered by the same chips (the same range of grid rows and of grid
columns) get the same answer, so a block is classified once per distinct pair of ranges (a few
per stride step) and only the three uint8 output bands are spread to pixels: memory per block
does not grow with the number of classes, and the pass holds nothing the size of the grid's
probabilities (issue 29: the grid-wide float64 prefix sums of every class are gone), nor, when it
reads no input, GDAL's cache full of blocks already written.
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import rasterio
from rasterio.windows import Window

from senclip.core.errors import InputError
from senclip.embedding.pipeline import gdal_cache_bytes
from senclip.maps.geotiff import CLOUD_VALUE, PROFILE, encode_probabilities
from senclip.embedding.tiling import TileGrid

RESOLUTIONS = ("grid", "pixel")
BLOCK_ROWS = 256  # grid rows per block at grid resolution (K float32 values per cell each)
MEMORY_BUDGET = 64 << 20  # bytes of working arrays per block of pixel rows
PIXEL_BYTES = 16  # per output pixel: 3 bands, masks, the input validity read, chunked class counts


def write_grid(writer, probs: np.ndarray, valid: np.ndarray, feedback, cloud: np.ndarray | None = None) -> None:
    """``probs`` (rows, cols, K), ``valid`` (rows, cols) straight to the output; ``cloud`` (rows, cols)
    marks the cells left unclassified because of the cloud mask."""
    rows, cols = valid.shape
    for r0 in range(0, rows, BLOCK_ROWS):
        feedback.check()
        r1 = min(rows, r0 + BLOCK_ROWS)
        writer.write(Window(0, r0, cols, r1 - r0), np.moveaxis(probs[r0:r1], -1, 0), valid[r0:r1],
                     None if cloud is None else cloud[r0:r1])


def _window_sums(table: np.ndarray, pairs: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``table`` over the cell ranges ``pairs`` ((n, 2) first, last+1) along ``axis``, the
    cells of each range added one by one in order: a range's sum is the same whichever block asks
    for it (so the map does not depend on the block size), and float32 loses nothing to the
    differences of large running totals that prefix sums would need."""
    first, last = pairs[:, 0], pairs[:, 1]
    shape = list(table.shape)
    shape[axis] = len(pairs)
    out = np.zeros(shape, dtype=table.dtype)
    for j in range(int((last - first).max(initial=0))):
        take = first + j < last
        sel = (slice(None),) * axis + (take,)
        out[sel] += np.take(table, first[take] + j, axis=axis)
    return out


def _ranges(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (first, last) cell ranges along one axis and, per pixel, the index of its range."""
    pairs, index = np.unique(np.stack([first, last], axis=1), axis=0, return_inverse=True)
    return pairs, index.reshape(-1)


def block_rows(grid: TileGrid, k: int, n_col_ranges: int, budget: int | None = None) -> int:
    """Pixel rows per block so that the block's arrays stay within ``budget`` bytes: the output
    bands and masks per pixel, and, per pixel row, K float32 values per column range (about 2
    row ranges per stride step, a few arrays of each) and per grid column (the rows' sums)."""
    budget = MEMORY_BUDGET if budget is None else budget
    per_row = grid.width * PIXEL_BYTES + 4 * 4 * k * (n_col_ranges + grid.cols) * 2 / grid.stride
    n = int(max(1, min(grid.height, budget // per_row)))
    tiff = PROFILE["blockysize"]  # whole rows of the GeoTIFF's blocks: each is complete when written
    return n // tiff * tiff if tiff <= n < grid.height else n


def _write_cache(grid: TileGrid, step: int, reads_input: bool):
    """GDAL's block cache for the pass. Blocks written are never read again, yet GDAL keeps them
    until the cache is full (128 MB: more than the rest of the pass); without an input to re-read,
    the cache is held to two rows of output blocks (or strips) instead. Re-reading the input uses
    the cache as the embed stage does. Never raised above what GDAL_CACHEMAX asks for."""
    have = gdal_cache_bytes()
    need = 2 * 3 * grid.width * max(step, PROFILE["blockysize"])
    if reads_input or have is None or have <= need:
        return nullcontext()
    return rasterio.Env(GDAL_CACHEMAX=need)


def _block_probabilities(probs, valid, row_pairs, col_pairs, cloud_cells):
    """For every (row range, column range) of a block: the mean probability of the valid cells,
    (K, n_rows, n_cols) float32, their count, and whether a cell rejected for clouds is among them.
    Only the grid rows the block's chips cover are read."""
    lo, hi = int(row_pairs[:, 0].min()), int(row_pairs[:, 1].max())
    local = row_pairs - lo
    ok = valid[lo:hi]
    rows = _window_sums(np.where(ok[..., None], probs[lo:hi], np.float32(0)), local, axis=0)
    total = _window_sums(rows, col_pairs, axis=1)  # (n_rows, n_cols, K)
    n = _window_sums(_window_sums(ok.astype(np.float32), local, axis=0), col_pairs, axis=1)
    p = np.moveaxis(total / np.maximum(n, 1)[..., None], -1, 0)
    cloud = None
    if cloud_cells is not None:
        rejected = _window_sums(_window_sums(cloud_cells[lo:hi].astype(np.float32), local, axis=0), col_pairs, axis=1)
        cloud = (rejected > 0) & (n == 0)
    return p, n, cloud


def write_pixels(writer, probs: np.ndarray, valid: np.ndarray, grid: TileGrid, *, pixel_valid, feedback,
                 cloud_cells: np.ndarray | None = None, pixel_cloud=None, budget: int | None = None) -> None:
    """Average the probabilities of covering chips per pixel. ``pixel_valid(row_off, h)`` gives the
    input validity of a block of rows (full width), or None when the input is not at hand.

    Cloud: a pixel the mask covers (``pixel_cloud(row_off, h)``) is cloud whatever its chips say;
    a pixel no classified chip covers is cloud when a chip over it was rejected for clouds
    (``cloud_cells``), and no data otherwise."""
    rows, cols, k = probs.shape
    col_pairs, col_index = _ranges(*grid.covering(0, grid.width, cols))
    step = block_rows(grid, k, len(col_pairs), budget)
    feedback.start(grid.height, "writing pixels")
    with _write_cache(grid, step, reads_input=pixel_valid is not None or pixel_cloud is not None):
        for y0 in range(0, grid.height, step):
            feedback.check()
            h = min(step, grid.height - y0)
            row_pairs, row_index = _ranges(*grid.covering(y0, h, rows))
            p, n, cloud = _block_probabilities(probs, valid, row_pairs, col_pairs, cloud_cells)
            bands = encode_probabilities(p, n > 0, cloud)[:, row_index[:, None], col_index[None, :]]
            inside = pixel_valid(y0, h) if pixel_valid is not None else None
            if pixel_cloud is not None:  # a masked pixel is cloud whatever its chips say
                masked = pixel_cloud(y0, h) if inside is None else pixel_cloud(y0, h) & inside
                bands[:, masked] = 0
                bands[0][masked] = CLOUD_VALUE
            if inside is not None:
                bands[:, ~inside] = 0
            writer.write_bands(Window(0, y0, grid.width, h), bands)
            feedback.advance(h)
    feedback.finish()


def check_resolution(resolution: str) -> None:
    if resolution not in RESOLUTIONS:
        raise InputError(f"--resolution must be 'grid' or 'pixel', got {resolution!r}")
