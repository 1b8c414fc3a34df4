"""Class names and the prompts that describe them.

A prompt file is what the SenCLIP release uses: a JSON object mapping each class name to a list
of prompts. We ship our own sets for the 10 EuroSAT and 19 BigEarthNet classes in three styles;
any other class gets a template set of the chosen style, so free-text classes always work.
"""
from __future__ import annotations

import json
from pathlib import Path

from senclip.core.choices import choices
from senclip.core.errors import InputError
from senclip.models.registry import RESOURCES

STYLES = tuple(choices("prompt_style"))  # resources/options.json; TEMPLATES has one entry per style
PROMPT_SETS = ("eurosat", "bigearthnet")
TEMPLATES = {
    "generic": ["a photo of {c}.", "a satellite photo of {c}.", "an image of {c}."],
    "aerial": ["a satellite image of {c}.", "an aerial view of {c}.", "a top-down view of {c}."],
    "ground": ["a ground-level photo of {c}.", "a photo of {c} taken on the ground.",
               "a landscape photo showing {c}."],
}


def parse_classes(classes) -> list[str]:
    """``"Forest;Sea or Lake"`` (or a list) → cleaned class names, checked for emptiness and duplicates."""
    if classes is None:
        return []
    items = classes.replace("\n", ";").split(";") if isinstance(classes, str) else list(classes)
    names = [str(c).strip() for c in items if str(c).strip()]
    seen: dict[str, str] = {}
    for n in names:
        key = n.casefold()
        if key in seen:
            raise InputError(f"class {n!r} is given twice (as {seen[key]!r} and {n!r}); class names must be unique")
        seen[key] = n
    if len(names) > 254:
        raise InputError(f"{len(names)} classes given; the class map holds at most 254")
    return names


def load_prompt_file(path) -> dict[str, list[str]]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"prompt file {str(p)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"prompt file {str(p)!r} is not valid UTF-8 JSON ({e}); expected {{\"class\": [\"prompt\", ...]}}") from None
    return _check_mapping(data, str(p))


def _check_mapping(data, where: str) -> dict[str, list[str]]:
    if not isinstance(data, dict) or not data:
        raise InputError(f"prompts in {where} must be a non-empty JSON object {{\"class\": [\"prompt\", ...]}}")
    out = {}
    for cls, prompts in data.items():
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or not all(isinstance(x, str) for x in prompts):
            raise InputError(f"prompts for class {cls!r} in {where} must be a list of strings")
        prompts = [x.strip() for x in prompts if x.strip()]
        if not prompts:
            raise InputError(f"class {cls!r} has no prompts in {where}; give at least one")
        out[str(cls).strip()] = prompts
    return out


def shipped_prompts(style: str) -> dict[str, list[str]]:
    """All shipped class prompts of a style (EuroSAT and BigEarthNet sets merged)."""
    if style not in STYLES:
        raise InputError(f"--prompt-style must be one of {', '.join(STYLES)}, got {style!r}")
    merged: dict[str, list[str]] = {}
    for name in PROMPT_SETS:
        f = RESOURCES / "prompts" / f"{name}_{style}.json"
        merged.update(json.loads(f.read_text(encoding="utf-8")))
    return merged


def shipped_set(name: str, style: str) -> dict[str, list[str]]:
    if name not in PROMPT_SETS:
        raise InputError(f"unknown prompt set {name!r}; choose one of {', '.join(PROMPT_SETS)}")
    shipped_prompts(style)  # validates style
    return json.loads((RESOURCES / "prompts" / f"{name}_{style}.json").read_text(encoding="utf-8"))


def build_prompt_set(classes=None, *, prompts=None, style: str = "ground",
                     fill_missing: bool = False) -> dict[str, list[str]]:
    """Class → prompts, in class order.

    ``prompts`` may be a JSON file path or a mapping; when given, every class must have prompts
    there (no silent fallback: a typo in a class name should be noticed) unless ``fill_missing``
    (the dock's table, where an empty cell means "built-in prompts"). Without ``prompts``,
    shipped sets are used where the class name matches (case-insensitively), templates elsewhere.
    """
    names = parse_classes(classes)
    if fill_missing and isinstance(prompts, dict):
        names = names or parse_classes(list(prompts))
        own = {k: v for k, v in prompts.items() if v}
        given = {k.casefold(): v for k, v in _check_mapping(own, "the prompt table").items()} if own else {}
        builtin = build_prompt_set(names, style=style)
        return {n: given.get(n.casefold()) or builtin[n] for n in names}
    if prompts is not None:
        given = load_prompt_file(prompts) if isinstance(prompts, (str, Path)) else _check_mapping(prompts, "the prompt mapping")
        if not names:
            names = parse_classes(list(given))
        lookup = {k.casefold(): v for k, v in given.items()}
        missing = [n for n in names if n.casefold() not in lookup]
        if missing:
            raise InputError(
                f"class(es) {', '.join(map(repr, missing))} have no prompts in the prompt file; add them to it "
                f"or leave out --prompts to use built-in prompts (file has: {', '.join(given)})")
        return {n: lookup[n.casefold()] for n in names}
    if not names:
        raise InputError("no classes given; pass --classes \"Forest;Sea or Lake;...\" or a --prompts file")
    shipped = {k.casefold(): v for k, v in shipped_prompts(style).items()}
    return {n: shipped.get(n.casefold()) or [t.format(c=n) for t in TEMPLATES[style]] for n in names}
