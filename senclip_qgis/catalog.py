"""Model ids and prompt sets for the plugin's menus, read as data, never by importing senclip.

The zip carries the backend source (``backend_src/``); in a development checkout the backend sits
beside the plugin (``../backend``). Reading the same JSON files the backend reads keeps the menus
in step with the registry and the CLI's option choices (``resources/options.json``); the static
model list is the last resort for a plugin folder copied alone.
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
# The MODEL choice holds ids as strings ("auto" first): saved models and scripts keep naming the
# same model when registry entries are added. "auto" = the default model, or, with a checkpoint,
# the architecture read from the checkpoint's own weights.
MODEL_AUTO = "auto"
# Before ids became strings MODEL was an index into this list (sorted file names, default first);
# an integer in an old model or script still means what it meant then.
LEGACY_MODEL_ORDER = [
    "senclip-vitb32-avgpool", "clip-rn50-openai", "clip-vitb32-openai", "senclip-rn50-attpool",
    "senclip-rn50-avgpool", "senclip-vitb32-attpool", "untrained-smoke",
]


def backend_source_dir() -> Path | None:
    """The backend project (folder with pyproject.toml) shipped with, or beside, the plugin."""
    for candidate in (PLUGIN_DIR / "backend_src", PLUGIN_DIR.parent / "backend"):
        if (candidate / "pyproject.toml").is_file() and (candidate / "senclip").is_dir():
            return candidate
    return None


def _resources() -> Path | None:
    src = backend_source_dir()
    return src / "senclip" / "resources" if src else None


def option_choices() -> dict[str, list[str]]:
    """The backend's enumerated options (``resources/options.json``: name -> choices, default
    first), the same file the CLI's choices come from; nothing is re-declared here."""
    res = _resources()
    path = res / "options.json" if res else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the SenCLIP plugin in {PLUGIN_DIR} carries no backend source "
                                "(backend_src/senclip/resources/options.json); reinstall it from its zip")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: [str(v) for v in values] for k, values in data.items() if not k.startswith("_")}


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


def model_choices() -> list[str]:
    """What the MODEL parameter offers: ``auto`` then every registry id."""
    return [MODEL_AUTO] + model_ids()


def resolve_model_choice(value, checkpoint: str | None) -> tuple[str | None, str | None]:
    """MODEL value (+ CHECKPOINT) -> (model id for the backend or None, a note for the log or None).

    A checkpoint always wins: the dialog, batch and modeler always send some MODEL value, and the
    backend takes a model id or a checkpoint, never both. ``value`` is an id, ``auto``, empty, or
    an integer (legacy index, see :data:`LEGACY_MODEL_ORDER`).
    """
    note = None
    text = "" if value is None else str(value).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(LEGACY_MODEL_ORDER):
            raise ValueError(f"MODEL={text}: give a model id ({', '.join(model_choices())})")
        text = LEGACY_MODEL_ORDER[index]
        note = f"MODEL={value} is an old index; it means '{text}' (use the id in new models and scripts)"
    if checkpoint:
        if text and text != MODEL_AUTO:
            note = f"MODEL '{text}' is ignored: the checkpoint {checkpoint} is used (architecture read from it)"
        return None, note
    if not text or text == MODEL_AUTO:
        return DEFAULT_MODEL, note
    if text not in model_ids():
        raise ValueError(f"MODEL '{text}' is not a known model; choose one of {', '.join(model_choices())}")
    return text, note


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


OPTIONS = option_choices()
PROMPT_STYLES = OPTIONS["prompt_style"]
BACKENDS = OPTIONS["backend"]
DEVICES = OPTIONS["device"]
RESOLUTIONS = OPTIONS["resolution"]
STRETCHES = OPTIONS["stretch"]
CALIBRATIONS = OPTIONS["calibrate"]
PRECISIONS = OPTIONS["precision"]
# --cloud-mask also takes a raster path (no click.Choice, so not in options.json): senclip.sentinel2.cloudmask.MODES
CLOUD_MASKS = ["auto", "scl", "s2cloudless", "none"]
