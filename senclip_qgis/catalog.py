"""Model ids and prompt sets for the plugin's menus, read as data, never by importing senclip.

The zip carries the backend source (``backend_src/``); in a development checkout the backend sits
beside the plugin (``../backend``). Reading the same JSON files the backend reads keeps the menus
in step with the registry; the static list is the last resort for a plugin folder copied alone.
"""
from __future__ import annotations

import json
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "senclip-vitb32-avgpool"
STATIC_MODELS = [
    "senclip-vitb32-avgpool", "senclip-vitb32-attpool", "senclip-rn50-avgpool",
    "senclip-rn50-attpool", "clip-vitb32-openai", "clip-rn50-openai", "untrained-smoke",
]
PROMPT_STYLES = ["ground", "aerial", "generic"]
BACKENDS = ["torch", "onnx"]
DEVICES = ["auto", "cpu", "cuda"]
RESOLUTIONS = ["grid", "pixel"]
STRETCHES = ["fixed", "chip-minmax"]
CALIBRATIONS = ["none", "column-mean"]
CLOUD_MASKS = ["auto", "scl", "s2cloudless", "none"]  # senclip.cloudmask.MODES


def backend_source_dir() -> Path | None:
    """The backend project (folder with pyproject.toml) shipped with, or beside, the plugin."""
    for candidate in (PLUGIN_DIR / "backend_src", PLUGIN_DIR.parent / "backend"):
        if (candidate / "pyproject.toml").is_file() and (candidate / "senclip").is_dir():
            return candidate
    return None


def _resources() -> Path | None:
    src = backend_source_dir()
    return src / "senclip" / "resources" if src else None


def model_ids() -> list[str]:
    """Registry ids, default first, so the enum's index 0 is the recommended model."""
    res = _resources()
    ids = []
    if res and (res / "models").is_dir():
        for path in sorted((res / "models").glob("*.json")):
            try:
                ids.append(json.loads(path.read_text(encoding="utf-8"))["id"])
            except (ValueError, KeyError, OSError):
                continue
    ids = ids or list(STATIC_MODELS)
    if DEFAULT_MODEL in ids:
        ids.remove(DEFAULT_MODEL)
        ids.insert(0, DEFAULT_MODEL)
    return ids


def prompt_sets() -> dict[str, Path]:
    """Shipped prompt files by name, e.g. ``eurosat_ground`` -> path."""
    res = _resources()
    if not res or not (res / "prompts").is_dir():
        return {}
    return {p.stem: p for p in sorted((res / "prompts").glob("*.json"))}


def read_prompt_file(path: str | Path) -> dict[str, list[str]]:
    """A prompt file maps class name -> list of prompts (the backend's format)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path}: a prompt file must map class names to lists of prompts")
    return {str(k): [str(p) for p in v] for k, v in data.items()}
