"""The tile grid: where chips are cut, and which output cell each one speaks for.

Output cell (r, c) covers area pixels ``[r*stride, (r+1)*stride)`` × ``[c*stride, (c+1)*stride)``
and its chip is the ``tile``×``tile`` window centred on it. So the grid is aligned with the
raster (its transform is the raster's scaled by ``stride``), every pixel belongs to exactly one
cell, and chips at the edges reach past the raster (that part is invalid, like nodata).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
from affine import Affine

from senclip.core.errors import InputError

DEFAULT_TILE = 64
DEFAULT_MIN_VALID = 0.5


@dataclass(frozen=True)
class TileGrid:
    width: int  # area size in pixels
    height: int
    tile: int = DEFAULT_TILE
    stride: int = DEFAULT_TILE // 2

    @classmethod
    def create(cls, width: int, height: int, tile: int = DEFAULT_TILE, stride: int | None = None) -> "TileGrid":
        """Validate the options against the raster and build the grid."""
        if not isinstance(tile, int) or tile < 8:
            raise InputError(f"--tile must be an integer of at least 8 px, got {tile!r}")
        stride = tile // 2 if stride is None else stride
        if not isinstance(stride, int) or not 1 <= stride <= tile:
            raise InputError(f"--stride must be between 1 and --tile ({tile}), got {stride!r}")
        if tile > min(width, height):
            raise InputError(
                f"--tile {tile} is larger than the raster ({width}×{height} px); use --tile {min(width, height)} or less")
        return cls(width, height, tile, stride)

    @property
    def margin(self) -> int:
        """How far a chip reaches beyond its cell on each side."""
        return (self.tile - self.stride) // 2

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.stride)

    @property
    def cols(self) -> int:
        return math.ceil(self.width / self.stride)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    def __len__(self) -> int:
        return self.rows * self.cols

    def transform(self, area_transform: Affine) -> Affine:
        """Geotransform of the grid-resolution output."""
        return area_transform * Affine.scale(self.stride)

    def chip_origin(self, r: int, c: int) -> tuple[int, int]:
        return r * self.stride - self.margin, c * self.stride - self.margin

    def to_dict(self) -> dict:
        return {"tile": self.tile, "stride": self.stride, "rows": self.rows, "cols": self.cols,
                "width": self.width, "height": self.height}

    # pixel-resolution support ------------------------------------------------
    def covering(self, start: int, length: int, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
        """For pixels ``start..start+length`` along one axis, the first and last+1 cell whose chip
        covers each pixel (clipped to the grid)."""
        p = np.arange(start, start + length)
        first = np.ceil((p + self.margin - self.tile + 1) / self.stride).astype(np.int64)
        last = np.floor((p + self.margin) / self.stride).astype(np.int64) + 1
        return np.clip(first, 0, n_cells), np.clip(last, 0, n_cells)


def fill_invalid(chip: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid pixels by the chip's mean valid colour, so nodata edges do not read as
    black land cover. ``chip`` is (3, h, w), ``valid`` (h, w) with at least one True."""
    if valid.all():
        return chip
    out = chip.copy()
    for b in range(chip.shape[0]):
        out[b][~valid] = chip[b][valid].mean().astype(chip.dtype)
    return out
