"""Chip writer shared by the training tests (a module name of its own, unlike conftest)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_chip(path: Path, arr: np.ndarray) -> None:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype, crs="EPSG:32632", transform=from_origin(500000, 5300000, 10, 10)) as dst:
        dst.write(arr)
