"""A big embedding store made in seconds: random embeddings on a tile grid, tagged with a real
(tiny) model, so classifying it runs everything after the image encoder at full scale."""
from __future__ import annotations

import numpy as np


def write_random_store(path, checkpoint, *, width: int, height: int, tile: int = 64, stride: int = 32,
                       seed: int = 0):
    """A store for a ``width`` × ``height`` px UTM area whose model is the checkpoint's; no source
    raster (pixel-resolution maps then classify every cell)."""
    from rasterio.crs import CRS

    from senclip.models.loading import load_model
    from senclip.embedding.store import StoreWriter
    from senclip.embedding.tiling import TileGrid

    lm = load_model(checkpoint=checkpoint, backend="torch", device="cpu")
    grid = TileGrid.create(width, height, tile, stride)
    res = 10.0
    meta = {"model": lm.record(), "checkpoint_path": str(checkpoint),
            "tiling": dict(grid.to_dict(), min_valid=0.5), "radiometry": {},
            "grid_transform": [res * stride, 0, 300000.0, 0, -res * stride, 5900000.0],
            "area_transform": [res, 0, 300000.0, 0, -res, 5900000.0], "crs": CRS.from_epsg(32633).to_wkt(),
            "source": {"path": ""}, "mask": None, "backend": "torch", "device": "cpu"}
    writer = StoreWriter(path, rows=grid.rows, cols=grid.cols, dim=lm.embed_dim, meta=meta, overwrite=True)
    rng = np.random.default_rng(seed)
    for r in range(grid.rows):  # a row at a time: bounded memory for any size
        emb = rng.standard_normal((grid.cols, lm.embed_dim)).astype(np.float16)
        writer.write(np.full(grid.cols, r), np.arange(grid.cols), emb)
    return writer.commit()
