"""Offline bundles: real `pip download` (from PyPI, like the real-data tests), weights copied in the
cache layout, imported on the 'offline' side into an empty cache and verified."""
from __future__ import annotations

import json
import re

import pytest

from senclip.models.bundle import create_bundle, import_weights, requirements
from senclip.core.errors import OutputError
from senclip.models.registry import get_model_spec
from senclip.models.weights import cached_path, fetch_weights

MODEL = "senclip-vitb32-avgpool"


def test_requirements_follow_the_installer_choices():
    base = requirements("none")
    assert any(r.startswith("numpy") for r in base) and not any(r.startswith("torch") for r in base)
    names = lambda extras: {re.split(r"[\[<>=;]", r)[0].strip() for r in requirements(extras)}  # noqa: E731
    light = names("light")  # the extras made of extras (senclip[onnx,...]) are expanded, never downloaded
    assert {"onnxruntime", "onnx", "openvino", "s2cloudless", "lightgbm"} <= light and "senclip" not in light
    assert not light & {"torch", "open_clip_torch", "onnxruntime-gpu"}
    cuda = names("light-cuda")
    assert "onnxruntime-gpu" in cuda and "onnxruntime" not in cuda and "openvino" in cuda
    torch = names("torch")
    assert {"torch", "open_clip_torch", "onnxruntime", "openvino", "numba"} <= torch


@pytest.mark.real_data
def test_bundle_has_wheels_and_weights_and_imports_offline(tmp_path, senclip_home, monkeypatch):
    weight = cached_path(get_model_spec(MODEL))
    weight.parent.mkdir(parents=True)
    weight.write_bytes(b"stand-in weights" * 1000)  # the registry has no pinned sha256 for it
    out = tmp_path / "bundle"
    manifest = create_bundle(out, extras="none", models=[MODEL], pip_options=["--no-deps"])
    wheels = sorted(p.name.split("-")[0].lower() for p in (out / "wheels").glob("*.whl"))
    assert {"numpy", "rasterio", "click", "huggingface_hub"} <= set(wheels)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["download_mb"] > 0 and manifest["disk_mb"] >= manifest["download_mb"]
    bundled = out / "weights" / MODEL / weight.name
    assert bundled.read_bytes() == weight.read_bytes()

    monkeypatch.setenv("SENCLIP_HOME", str(tmp_path / "offline-home"))  # the air-gapped machine
    monkeypatch.setenv("SENCLIP_OFFLINE", "1")
    paths = import_weights(out)
    assert paths == [cached_path(get_model_spec(MODEL))] and paths[0].read_bytes() == weight.read_bytes()
    assert fetch_weights(get_model_spec(MODEL), offline=True).sha256 == manifest["weights"][0]["sha256"]

    with pytest.raises(OutputError, match="not empty"):
        create_bundle(out, extras="none")


def test_failed_download_leaves_no_half_bundle(tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(OutputError, match="pip could not download"):
        create_bundle(out, extras="none", pip_options=["--no-index"])  # no index, no wheels: pip fails
    assert not out.exists()
