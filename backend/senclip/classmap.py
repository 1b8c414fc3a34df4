"""Tile-grid probabilities → class-map GeoTIFF, at grid or at pixel resolution.

Pixel resolution gives each pixel the mean probability of every valid chip covering it. With
2-D prefix sums over the (small) tile grid, any block of pixels is computed directly, so the
map is streamed block by block and memory does not grow with the raster.
"""
from __future__ import annotations

import numpy as np
from rasterio.windows import Window

from .errors import InputError
from .tiling import TileGrid

RESOLUTIONS = ("grid", "pixel")
BLOCK_ROWS = 256


def write_grid(writer, probs: np.ndarray, valid: np.ndarray, feedback) -> None:
    """``probs`` (rows, cols, K), ``valid`` (rows, cols) straight to the output."""
    rows, cols = valid.shape
    for r0 in range(0, rows, BLOCK_ROWS):
        feedback.check()
        r1 = min(rows, r0 + BLOCK_ROWS)
        writer.write(Window(0, r0, cols, r1 - r0), np.moveaxis(probs[r0:r1], -1, 0), valid[r0:r1])


def write_pixels(writer, probs: np.ndarray, valid: np.ndarray, grid: TileGrid, *, pixel_valid, feedback) -> None:
    """Average the probabilities of covering chips per pixel. ``pixel_valid(row_off, h)`` gives the
    input validity of a block of rows (full width), or None when the input is not at hand."""
    rows, cols, k = probs.shape
    weighted = np.where(valid[..., None], probs, 0).astype(np.float64)
    psum = np.zeros((k, rows + 1, cols + 1))
    psum[:, 1:, 1:] = np.moveaxis(weighted, -1, 0).cumsum(1).cumsum(2)
    csum = np.zeros((rows + 1, cols + 1))
    csum[1:, 1:] = valid.cumsum(0).cumsum(1)
    c0, c1 = grid.covering(0, grid.width, cols)
    feedback.start(grid.height, "writing pixels")
    for y0 in range(0, grid.height, BLOCK_ROWS):
        feedback.check()
        h = min(BLOCK_ROWS, grid.height - y0)
        r0, r1 = grid.covering(y0, h, rows)
        r0, r1, a0, a1 = r0[:, None], r1[:, None], c0[None, :], c1[None, :]
        n = csum[r1, a1] - csum[r0, a1] - csum[r1, a0] + csum[r0, a0]
        s = psum[:, r1, a1] - psum[:, r0, a1] - psum[:, r1, a0] + psum[:, r0, a0]
        ok = n > 0
        p = (s / np.maximum(n, 1)).astype(np.float32)
        if pixel_valid is not None:
            ok &= pixel_valid(y0, h)
        writer.write(Window(0, y0, grid.width, h), p, ok)
        feedback.advance(h)
    feedback.finish()


def check_resolution(resolution: str) -> None:
    if resolution not in RESOLUTIONS:
        raise InputError(f"--resolution must be 'grid' or 'pixel', got {resolution!r}")

CLOUD_VALUE = 255
