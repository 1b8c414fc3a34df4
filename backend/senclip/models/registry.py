"""The model registry: one JSON file per model in ``resources/models/``.

Architecture (an open_clip model name), where the weights come from, their checksum and the
preprocessing recipe live in data, not code, so adding a model is adding a file
(:func:`add_model_dir`). Mirrors open_clip's split of ``model_configs`` and ``pretrained``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from senclip.core.errors import InputError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SENCLIP_MEAN = (0.347, 0.376, 0.296)
SENCLIP_STD = (0.269, 0.261, 0.276)


@dataclass(frozen=True)
class Preprocess:
    """How chips become model input: resize to ``size`` (bicubic), then normalise."""

    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    size: int = 224
    interpolation: str = "bicubic"

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "size": self.size,
                "interpolation": self.interpolation}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(mean=tuple(d["mean"]), std=tuple(d["std"]), size=int(d.get("size", 224)),
                   interpolation=d.get("interpolation", "bicubic"))


@dataclass(frozen=True)
class Source:
    """Where the weight file lives: a Hugging Face repo file (pinned revision) or a plain URL."""

    hf_repo: str | None = None
    filename: str | None = None
    revision: str = "main"
    url: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    id: str
    arch: str  # open_clip model name, e.g. "ViT-B-32-quickgelu"
    description: str
    source: Source | None  # None: no weights (random init), only for smoke tests
    sha256: str | None  # None: unknown upstream; the computed hash is recorded in outputs
    size_bytes: int | None
    format: str  # "openai-state-dict" (SenCLIP releases) | "open_clip"
    preprocess: Preprocess
    license: str = ""
    citation: str = ""
    untrained: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        src = d.get("source")
        return cls(
            id=d["id"], arch=d["arch"], description=d.get("description", ""),
            source=Source(**src) if src else None, sha256=d.get("sha256"),
            size_bytes=d.get("size_bytes"), format=d.get("format", "openai-state-dict"),
            preprocess=Preprocess.from_dict(d.get("preprocess", {"mean": CLIP_MEAN, "std": CLIP_STD})),
            license=d.get("license", ""), citation=d.get("citation", ""),
            untrained=bool(d.get("untrained", False)), extra=d.get("extra", {}),
        )


RESOURCES = Path(__file__).resolve().parent / "resources"
_extra_dirs: list[Path] = []


def add_model_dir(path: str | Path) -> None:
    """Register a folder of extra model JSON files (searched after the shipped ones)."""
    _extra_dirs.append(Path(path))


def _load_all() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    files = sorted(RESOURCES.joinpath("models").glob("*.json"))
    for d in _extra_dirs:
        files.extend(sorted(d.glob("*.json")))
    for f in sorted(files, key=lambda p: p.name):
        spec = ModelSpec.from_dict(json.loads(f.read_text(encoding="utf-8")))
        specs[spec.id] = spec
    return specs


def list_models() -> list[str]:
    return sorted(_load_all())


def get_model_spec(model_id: str) -> ModelSpec:
    specs = _load_all()
    if model_id not in specs:
        raise InputError(
            f"unknown model {model_id!r}; choose one of: {', '.join(sorted(specs))} "
            "(or pass --checkpoint PATH for a local file)"
        )
    return specs[model_id]


DEFAULT_MODEL = "senclip-vitb32-avgpool"
