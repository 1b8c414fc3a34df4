"""An image chip as a find-similar query: "more places that look like this picture".

The chip is any raster GDAL reads (a GeoTIFF cut from a Sentinel-2 scene, a 3-band 8-bit PNG or
JPEG of a true-colour view); georeferencing is not needed. It is turned into the store's own
chips the way the store was made, so that its embedding is comparable with the store's:

* 8-bit images with three or more bands are RGB as they are (bands 1, 2, 3), like 8-bit scenes;
* anything else is a Sentinel-2 band stack of a known layout (13, 12, 4 or 3 bands, the same
  table as for scenes) scaled with the store's recorded radiometry (scale, offset, maximum
  reflectance, stretch);
* a chip up to 1.5 tiles wide is encoded whole (the model resizes it, like a tile); a bigger one
  is cut into the store's tiles at its stride and the mean of their embeddings is the query, like
  a polygon query over several cells.

The model is the store's own (checked against its checksum), since only embeddings of one model
can be compared.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from senclip.core.errors import InputError
from senclip.core.feedback import Feedback
from senclip.sentinel2.scene import BAND_ORDERS, RGB, Radiometry
from senclip.embedding.store import EmbeddingStore

WHOLE_UP_TO = 1.5  # chips at most this many tiles wide and high are encoded in one piece
MIN_VALID = 0.5  # a window of a big chip is used when at least this share of it has data


def read_chip(path, radiometry: dict) -> tuple[np.ndarray, np.ndarray]:
    """(3, h, w) uint8 RGB and (h, w) validity of the image ``path``."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():  # a chip needs no georeferencing: a PNG or JPEG is fine
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                data, nodata, dtype = ds.read(), ds.nodata, np.dtype(ds.dtypes[0])
    except (RasterioIOError, OSError) as e:
        raise InputError(f"cannot read the chip {str(path)!r} as an image ({e}); give a GeoTIFF, PNG or JPEG") from None
    n = data.shape[0]
    if dtype == np.uint8 and n >= 3:
        rgb = data[:3]
        valid = np.ones(rgb.shape[1:], bool) if nodata is None else ~np.all(rgb == nodata, axis=0)
        return rgb, valid
    if n not in BAND_ORDERS:
        raise InputError(f"the chip {str(path)!r} has {n} band(s); give an 8-bit RGB image or a Sentinel-2 band "
                         "stack of 13 (L1C), 12 (L2A), 4 (B2,B3,B4,B8) or 3 (B4,B3,B2) bands")
    order = BAND_ORDERS[n]
    dn = data[[order.index(b) for b in RGB]]
    valid = np.all(np.isfinite(dn), axis=0) if dn.dtype.kind == "f" else np.ones(dn.shape[1:], bool)
    if nodata is not None:
        valid &= ~np.any(dn == nodata, axis=0)
    if not valid.any():
        raise InputError(f"the chip {str(path)!r} holds no valid pixel")
    rad = Radiometry(**{k: v for k, v in radiometry.items() if k in Radiometry.__dataclass_fields__})
    if rad.passthrough_8bit:  # the store was made from 8-bit RGB; a reflectance chip is scaled the default way
        rad = Radiometry()
    return (rad.chip_to_uint8(dn, valid) if rad.per_chip else rad.to_uint8(dn)), valid


def chip_windows(rgb: np.ndarray, valid: np.ndarray, tile: int, stride: int) -> np.ndarray:
    """(N, 3, h, w) uint8 pieces of the chip to encode (see the module doc)."""
    h, w = valid.shape
    if h <= WHOLE_UP_TO * tile and w <= WHOLE_UP_TO * tile:
        return rgb[None]
    pieces = [rgb[:, r:r + tile, c:c + tile]
              for r in range(0, max(h - tile, 0) + 1, stride) for c in range(0, max(w - tile, 0) + 1, stride)
              if valid[r:r + tile, c:c + tile].mean() >= MIN_VALID]
    if not pieces:
        raise InputError(f"no {tile} × {tile} px window of the chip has {MIN_VALID:.0%} valid pixels")
    return np.stack(pieces)


def chip_query_vector(st: EmbeddingStore, path, *, backend: str = "auto", device: str = "auto",
                      offline: bool = False, feedback: Feedback | None = None,
                      loaded_model=None) -> tuple[np.ndarray, dict]:
    """(D,) unit query vector of the chip ``path`` and a description of the query."""
    from senclip.zeroshot.storetext import store_text_model

    rgb, valid = read_chip(path, st.meta["radiometry"])
    tiling = st.meta["tiling"]
    chips = chip_windows(rgb, valid, int(tiling["tile"]), int(tiling["stride"]))
    lm = store_text_model(st, backend=backend, device=device, offline=offline, feedback=feedback,
                          loaded_model=loaded_model)
    emb = np.asarray(lm.image.encode_chips(np.ascontiguousarray(chips)), dtype=np.float32)
    q = emb.mean(0)
    return q / max(float(np.linalg.norm(q)), 1e-12), {"chip": str(Path(path)), "windows": int(len(chips)),
                                                      "size_px": [int(valid.shape[1]), int(valid.shape[0])]}
