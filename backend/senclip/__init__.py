"""senclip: zero-shot land-use / land-cover mapping of Sentinel-2 imagery from free-text prompts.

``import senclip`` is cheap: torch, open_clip and onnxruntime load only when a model does.
"""
from __future__ import annotations

__version__ = "0.1.0"

from senclip.core.errors import BackendUnavailableError, Cancelled, CheckpointError, ChecksumError, InputError, OutputError, SenclipError, SenclipWarning, StoreMismatchError, WeightsNotAvailableError  # noqa: F401
from senclip.models.registry import get_model_spec, list_models  # noqa: F401

_LAZY = {
    "classify": "api", "embed": "api", "classify_store": "api", "ClassifyResult": "api",
    "open_scene": "scene", "load_model": "models", "EmbeddingStore": "store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'senclip' has no attribute {name!r}")
