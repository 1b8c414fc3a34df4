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


# --- scenes: small Sentinel-2-like rasters made in code (tests/s2data.py) ----------------------
from s2data import write_s2  # noqa: E402


@_pytest.fixture
def s2_scene(tmp_path):
    """4-band uint16 scene, 160×96 px: green left half, blue right half."""
    return write_s2(tmp_path / "scene.tif")


@_pytest.fixture
def color_model():
    from color_model import color_model as make

    return make()
