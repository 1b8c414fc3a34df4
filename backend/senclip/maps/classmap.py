"""Tile-grid probabilities → class-map GeoTIFF, at grid or at pixel resolution.

Pixel resolution gives each pixel the mean probability of every valid chip covering it. With
2-D prefix sums over the (small) tile grid, any block of pixels is computed directly, so the
map is streamed block by block and memory does not grow with the raster. Pixels covered by the
same chips (the same range of grid rows and of grid columns) get the same answer, so a block is
classified once per distinct pair of ranges (a few per stride step) and only the three uint8
output bands are spread to pixels: memory per block does not grow with the number of classes.
"""
from __future__ import annotations

import numpy as np
from rasterio.windows import Window

from senclip.core.errors import InputError
from senclip.maps.geotiff import CLOUD_VALUE, encode_probabilities
from senclip.embedding.tiling import TileGrid

RESOLUTIONS = ("grid", "pixel")
BLOCK_ROWS = 256  # grid rows per block at grid resolution (K float32 values per cell each)
MEMORY_BUDGET = 64 << 20  # bytes of working arrays per block of pixel rows
PIXEL_BYTES = 16  # per output pixel: 3 bands, index and validity arrays, the input validity read


def write_grid(writer, probs: np.ndarray, valid: np.ndarray, feedback, cloud: np.ndarray | None = None) -> None:
    """``probs`` (rows, cols, K), ``valid`` (rows, cols) straight to the output; ``cloud`` (rows, cols)
    marks the cells left unclassified because of the cloud mask."""
    rows, cols = valid.shape
    for r0 in range(0, rows, BLOCK_ROWS):
        feedback.check()
        r1 = min(rows, r0 + BLOCK_ROWS)
        writer.write(Window(0, r0, cols, r1 - r0), np.moveaxis(probs[r0:r1], -1, 0), valid[r0:r1],
                     None if cloud is None else cloud[r0:r1])


def prefix_sums(probs: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2-D prefix sums (float64, one leading zero row and column) of the valid cells'
    probabilities, (K, rows+1, cols+1), and of the valid-cell count, (rows+1, cols+1). Built one
    class at a time so no float64 copy of all probabilities is ever held."""
    rows, cols, k = probs.shape
    psum = np.zeros((k, rows + 1, cols + 1))
    for i in range(k):
        np.cumsum(np.where(valid, probs[..., i], 0), axis=0, dtype=np.float64, out=psum[i, 1:, 1:])
        np.cumsum(psum[i, 1:, 1:], axis=1, out=psum[i, 1:, 1:])
    csum = np.zeros((rows + 1, cols + 1))
    csum[1:, 1:] = valid.cumsum(0).cumsum(1)
    return psum, csum


def _box(table: np.ndarray, r0, r1, a0, a1) -> np.ndarray:
    """Sum over cells [r0, r1) × [a0, a1) from a prefix-sum ``table`` (last two axes)."""
    return table[..., r1, a1] - table[..., r0, a1] - table[..., r1, a0] + table[..., r0, a0]


def _ranges(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (first, last) cell ranges along one axis and, per pixel, the index of its range."""
    pairs, index = np.unique(np.stack([first, last], axis=1), axis=0, return_inverse=True)
    return pairs, index.reshape(-1)


def block_rows(grid: TileGrid, k: int, n_col_ranges: int, budget: int | None = None) -> int:
    """Pixel rows per block so that the block's arrays stay within ``budget`` bytes: the output
    bands per pixel, and K float64 values per (row range × column range), about 2 row ranges per
    stride step, a few arrays of each."""
    budget = MEMORY_BUDGET if budget is None else budget
    per_row = grid.width * PIXEL_BYTES + 6 * 8 * k * n_col_ranges * 2 / grid.stride
    return int(max(1, min(grid.height, budget // per_row)))


def write_pixels(writer, probs: np.ndarray, valid: np.ndarray, grid: TileGrid, *, pixel_valid, feedback,
                 cloud_cells: np.ndarray | None = None, pixel_cloud=None, budget: int | None = None) -> None:
    """Average the probabilities of covering chips per pixel. ``pixel_valid(row_off, h)`` gives the
    input validity of a block of rows (full width), or None when the input is not at hand.

    Cloud: a pixel the mask covers (``pixel_cloud(row_off, h)``) is cloud whatever its chips say;
    a pixel no classified chip covers is cloud when a chip over it was rejected for clouds
    (``cloud_cells``), and no data otherwise."""
    ccsum = None  # prefix sums of the cells rejected for clouds
    if cloud_cells is not None:
        ccsum = np.zeros((cloud_cells.shape[0] + 1, cloud_cells.shape[1] + 1))
        ccsum[1:, 1:] = cloud_cells.cumsum(0).cumsum(1)
    rows, cols, k = probs.shape
    psum, csum = prefix_sums(probs, valid)
    col_pairs, col_index = _ranges(*grid.covering(0, grid.width, cols))
    a0, a1 = col_pairs[None, :, 0], col_pairs[None, :, 1]
    step = block_rows(grid, k, len(col_pairs), budget)
    feedback.start(grid.height, "writing pixels")
    for y0 in range(0, grid.height, step):
        feedback.check()
        h = min(step, grid.height - y0)
        row_pairs, row_index = _ranges(*grid.covering(y0, h, rows))
        r0, r1 = row_pairs[:, 0, None], row_pairs[:, 1, None]
        n = _box(csum, r0, r1, a0, a1)
        p = (_box(psum, r0, r1, a0, a1) / np.maximum(n, 1)).astype(np.float32)
        cloud = None if ccsum is None else (_box(ccsum, r0, r1, a0, a1) > 0) & (n == 0)
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
