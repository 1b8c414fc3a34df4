"""The choices of senclip's enumerated options (backend, device, resolution, ...), in one file.

``resources/options.json`` maps a CLI parameter name to its choices, the default first. The CLI's
``click.Choice`` lists come from here, and the QGIS plugin reads the same JSON (shipped in its zip
with the backend source) without importing senclip, so the two cannot drift apart. Adding a choice,
or a new enumerated option, is one edit of the JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).resolve().parent / "resources" / "options.json"
CHOICES: dict[str, tuple[str, ...]] = {
    name: tuple(values) for name, values in json.loads(PATH.read_text(encoding="utf-8")).items()
    if not name.startswith("_")
}


def choices(name: str) -> list[str]:
    """The accepted values of option ``name`` (``"backend"``, ``"prompt_style"``...)."""
    return list(CHOICES[name])


def default(name: str) -> str:
    return CHOICES[name][0]
