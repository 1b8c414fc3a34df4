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
# Class value of pixels masked as cloud or cloud shadow: apart from 0 (no data / unclassified) and
# from the land-cover classes 1..K (K < 255), so a reader can tell "not seen" from "not land cover".
CLOUD_VALUE = 255
CLOUD_LABEL = "cloud / shadow"


def write_grid(writer, probs: np.ndarray, valid: np.ndarray, feedback, cloud: np.ndarray | None = None) -> None:
    """``probs`` (rows, cols, K), ``valid`` (rows, cols) straight to the output; ``cloud`` (rows, cols)
    marks the cells left unclassified because of the cloud mask."""
    rows, cols = valid.shape
    for r0 in range(0, rows, BLOCK_ROWS):
        feedback.check()
        r1 = min(rows, r0 + BLOCK_ROWS)
        writer.write(Window(0, r0, cols, r1 - r0), np.moveaxis(probs[r0:r1], -1, 0), valid[r0:r1],
                     None if cloud is None else cloud[r0:r1])


def write_pixels(writer, probs: np.ndarray, valid: np.ndarray, grid: TileGrid, *, pixel_valid, feedback,
                 cloud_cells: np.ndarray | None = None, pixel_cloud=None) -> None:
    """Average the probabilities of covering chips per pixel. ``pixel_valid(row_off, h)`` gives the
    input validity of a block of rows (full width), or None when the input is not at hand.

    Cloud: a pixel the mask covers (``pixel_cloud(row_off, h)``) is cloud whatever its chips say;
    a pixel no classified chip covers is cloud when a chip over it was rejected for clouds
    (``cloud_cells``), and no data otherwise."""
    csum_cloud = None
    if cloud_cells is not None:
        csum_cloud = np.zeros((cloud_cells.shape[0] + 1, cloud_cells.shape[1] + 1))
        csum_cloud[1:, 1:] = cloud_cells.cumsum(0).cumsum(1)
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
        inside = pixel_valid(y0, h) if pixel_valid is not None else np.ones_like(ok)
        ok &= inside
        cloud = None
        if csum_cloud is not None:
            nc = csum_cloud[r1, a1] - csum_cloud[r0, a1] - csum_cloud[r1, a0] + csum_cloud[r0, a0]
            cloud = (nc > 0) & ~ok & inside
            if pixel_cloud is not None:
                cloud |= pixel_cloud(y0, h) & inside
            ok &= ~cloud
        writer.write(Window(0, y0, grid.width, h), p, ok, cloud)
        feedback.advance(h)
    feedback.finish()


def check_resolution(resolution: str) -> None:
    if resolution not in RESOLUTIONS:
        raise InputError(f"--resolution must be 'grid' or 'pixel', got {resolution!r}")
