"""Which asset of a STAC item holds which Sentinel-2 band, however the catalog names them.

Earth Search keys assets by common-name-like words (``red``, ``nir08``, ``scl``; its JP2
duplicates ``red-jp2`` in requester-pays buckets), Planetary Computer by band id (``B04``,
``SCL``), the Copernicus Data Space (STAC 1.1) by band id and resolution (``B04_10m``,
``B04_20m``, ``SCL_20m``). Band metadata is ``eo:bands`` with ``common_name`` (STAC 1.0) or
``bands`` with ``eo:common_name`` (STAC 1.1). A band is looked up, best match first, by

1. the asset key as Earth Search or Planetary Computer spell it (``red``, ``B04``, ``B4``),
2. the key with a resolution suffix (``B04_10m``),
3. the band ``name`` in the asset's band list (``B04``),
4. an unambiguous common name (``red``; not ``rededge``, which Earth Search gives B05-B07),

and among equal matches the finest resolution wins (10 m before 20 m before 60 m; SCL comes at
20 m). Only single-band raster assets count: never the true-colour ``visual``/``TCI``, previews
or thumbnails.
"""
from __future__ import annotations

import re

# Sentinel-2 band id -> Earth Search's asset key (also odc-stac's alias) for it.
KEYS = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
        "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09", "B10": "cirrus", "B11": "swir16",
        "B12": "swir22", "SCL": "scl"}
# Common names that name one band only (Earth Search calls B05, B06 and B07 all "rededge").
COMMON = {"coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "nir08": "B8A",
          "nir09": "B09", "cirrus": "B10", "swir16": "B11", "swir22": "B12"}
ROLES = {"red": "B04", "green": "B03", "blue": "B02", "nir": "B08", "scl": "SCL"}
NOT_DATA_ROLES = {"thumbnail", "overview", "visual", "metadata", "tiles"}
_KEY = re.compile(r"^(B(?:0?[1-9]|1[0-2]|8A)|SCL)(?:_(\d+)m)?$", re.I)


def norm_band(name: str) -> str | None:
    """``b4``/``B04``/``B04_10m`` -> ``B04``; ``scl``/``SCL_20m`` -> ``SCL``; else None."""
    m = _KEY.match(str(name or "").strip())
    if not m:
        return None
    b = m.group(1).upper()
    return b if b in ("B8A", "SCL") else f"B{int(b[1:]):02d}"


def _bands(asset: dict) -> list[dict]:
    bands = asset.get("bands") or asset.get("eo:bands") or []
    return [b for b in bands if isinstance(b, dict)]


def is_raster(asset: dict) -> bool:
    t = str(asset.get("type") or "").lower()
    if NOT_DATA_ROLES & set(asset.get("roles") or []):
        return False
    return not t or "tiff" in t or "jp2" in t or "jpeg2000" in t


def gsd(key: str, asset: dict) -> float:
    """Ground sampling distance (m) of an asset: its ``gsd``, the key's ``_10m``, a ``gsd:10m`` role,
    or ``raster:bands`` ``spatial_resolution``; unknown sorts last."""
    for v in (asset.get("gsd"), (_KEY.match(key) or [None, None, None])[2],
              next((r[4:-1] for r in asset.get("roles") or [] if re.fullmatch(r"gsd:\d+m", str(r))), None),
              ((asset.get("raster:bands") or [{}])[0] or {}).get("spatial_resolution")):
        try:
            if v is not None:
                return float(v)
        except (TypeError, ValueError):
            continue
    return float("inf")


def _match(band: str, key: str, asset: dict) -> int | None:
    """How well asset ``key`` matches ``band`` (0 best), or None."""
    bands = _bands(asset)
    if len(bands) > 1 or not is_raster(asset):
        return None
    m = _KEY.match(key)
    if key == KEYS.get(band) or (m and not m.group(2) and norm_band(key) == band):
        return 0
    if m and norm_band(key) == band:
        return 1
    if bands and norm_band(bands[0].get("name")) == band:
        return 2
    common = bands[0].get("eo:common_name") or bands[0].get("common_name") if bands else None
    if common and COMMON.get(common) == band:
        return 3
    return None


def find(assets: dict[str, dict], band: str) -> str | None:
    """The key of the asset holding Sentinel-2 band ``band`` (``B04``, ``SCL``...), or None."""
    hits = [(rank, gsd(k, a), k) for k, a in assets.items() if (rank := _match(band, k, a)) is not None]
    return min(hits)[2] if hits else None


def looked_for(band: str) -> str:
    """What :func:`find` looked for, for error messages."""
    return f"keys {KEYS[band]}/{band}/{band}_10m, band name {band}" + \
        "".join(f", common name {c}" for c, b in COMMON.items() if b == band)
