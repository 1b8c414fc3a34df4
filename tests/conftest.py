"""Shared fixtures: data made in code, caches isolated per test."""
from __future__ import annotations


# --- models: tiny checkpoints and an isolated weights cache (added by the models engineer) -------
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

import pytest as _pytest  # noqa: E402

_sys.path.insert(0, str(_Path(__file__).resolve().parent))  # tests/tiny_models.py


@_pytest.fixture(autouse=True)
def senclip_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty SENCLIP_HOME and no offline override from the environment,
    so no test reads or fills the user's real cache."""
    home = tmp_path_factory.mktemp("senclip_home")
    monkeypatch.setenv("SENCLIP_HOME", str(home))
    monkeypatch.delenv("SENCLIP_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SENCLIP_HF_ENDPOINT", raising=False)
    return home


@_pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random ViT CLIP saved in the SenCLIP release format (read-only: copy before editing)."""
    from tiny_models import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_vit.ckpt", kind="vit")


@_pytest.fixture(scope="session")
def tiny_rn_checkpoint(tmp_path_factory):
    """A tiny random ModifiedResNet CLIP in the SenCLIP release format."""
    from tiny_models import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_rn.ckpt", kind="rn")


# --- scenes: small Sentinel-2-like rasters made in code (added by the lead) ----------------------
import numpy as _np  # noqa: E402

# Surface reflectance × 10000 of the test colours, as (B02, B03, B04) = (blue, green, red).
GREEN_DN = (300, 2500, 300)
BLUE_DN = (2500, 300, 300)


def write_s2(path, *, width=160, height=96, bands=4, nodata_border=0, crs="EPSG:32633", nodata=None,
             left=GREEN_DN, right=BLUE_DN, dtype="uint16"):
    """A UTM, 10 m raster: left half ``left`` colour, right half ``right``; band order as a
    Sentinel-2 product of that band count (4 = B02,B03,B04,B08; 13 = L1C; 3 = RGB)."""
    import rasterio
    from rasterio.transform import from_origin

    from senclip.scene import BAND_ORDERS

    order = BAND_ORDERS[bands]
    arr = _np.full((bands, height, width), 1000, dtype=dtype)
    for name, val_l, val_r in zip(("B02", "B03", "B04"), left, right):
        i = order.index(name)
        arr[i, :, : width // 2] = val_l
        arr[i, :, width // 2:] = val_r
    if nodata_border:
        fill = 0 if nodata is None else nodata
        b = nodata_border
        arr[:, :b], arr[:, -b:], arr[:, :, :b], arr[:, :, -b:] = fill, fill, fill, fill
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype=dtype,
                   transform=from_origin(330000, 5822000, 10, 10), nodata=nodata)
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr)
    return path


@_pytest.fixture
def s2_scene(tmp_path):
    """4-band uint16 scene, 160×96 px: green left half, blue right half."""
    return write_s2(tmp_path / "scene.tif")


@_pytest.fixture
def color_model():
    from color_model import color_model as make

    return make()
