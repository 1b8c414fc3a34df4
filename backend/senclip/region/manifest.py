"""The run record of a regional job: what makes a rerun resume instead of redo.

Every scene gets ``scenes/<id>.json`` beside its map (written last, after the map is complete)
with its status, timings, model, prompts, output path and error; ``manifest.json`` gathers all of
them with the job's settings and summary. A scene is skipped on a rerun when its record says
``done`` with the same *settings key* (a hash of model identity, resolved prompts and every
option that changes the map) and the same source fingerprint, and its map is still there.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from senclip.core.outputs import write_text

FORMAT = "senclip-region-manifest"
VERSION = 1
SCENES_DIR = "scenes"
WORK_DIR = ".senclip-work"
MANIFEST = "manifest.json"
# Options that never change the map (how fast, where, whether to download) are left out of the key.
NOT_IN_KEY = frozenset({"batch_size", "device", "offline", "overwrite", "feedback", "loaded_model", "input", "out",
                        "classes", "prompts", "prompt_style", "checkpoint", "mask"})


def sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def settings(classify_kwargs: dict, prompt_set: dict, *, bbox=None) -> dict:
    """The settings that define a scene's map, JSON-ready (files replaced by their checksums)."""
    from senclip.models.checkpoints import sha256_file

    s = {k: v for k, v in sorted(classify_kwargs.items()) if k not in NOT_IN_KEY}
    s["prompts"] = prompt_set
    ck = classify_kwargs.get("checkpoint")
    s["checkpoint_sha256"] = sha256_file(ck) if ck else None
    mask = classify_kwargs.get("mask")
    s["mask_sha256"] = hashlib.sha256(Path(mask).read_bytes()).hexdigest() if mask else None
    s["bbox"] = list(bbox) if bbox else None
    s["format"] = VERSION
    return json.loads(json.dumps(s, default=str))


def scene_paths(out: Path, scene_id: str) -> dict[str, Path]:
    d = Path(out) / SCENES_DIR
    return {"map": d / f"{scene_id}.tif", "record": d / f"{scene_id}.json"}


def write_json(path: Path, data: dict) -> None:
    """Write JSON under a temporary name, then rename: a reader never sees half a file."""
    write_text(path, json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_done(out: Path, scene, key: str) -> dict | None:
    """The scene's record when it was finished with these settings from this source, else None."""
    paths = scene_paths(out, scene.id)
    rec = read_json(paths["record"])
    if not rec or rec.get("status") != "done" or rec.get("settings_key") != key:
        return None
    if rec.get("fingerprint") != scene.fingerprint() or not paths["map"].is_file():
        return None
    return rec


def owned_by_us(record_path: Path) -> bool:
    """Whether a scene's outputs were written by a senclip regional job (only those may be
    replaced): its record beside them says so."""
    rec = read_json(record_path)
    return bool(rec) and rec.get("format") == FORMAT
