"""One entry point from "which model" to a pair of ready encoders: :func:`load_model`.

A model is a registry id (weights fetched into the cache) or a local checkpoint; it runs on
PyTorch, or on ONNX Runtime from an export that is made once and cached next to the weights
(``$SENCLIP_HOME/onnx/<model-id>-<sha8>-v<format>[-int8]/``). The ONNX path imports neither torch nor
open_clip unless it has to make that export.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from .checkpoints import sha256_file
from .encoders.base import LoadedModel
from .errors import BackendUnavailableError, CheckpointError, InputError
from .feedback import Feedback
from .registry import DEFAULT_MODEL, SENCLIP_MEAN, SENCLIP_STD, Preprocess, get_model_spec

UNTRAINED_CHECKSUM = "untrained:seed0"
TORCH_PIP = "pip install torch torchvision open_clip_torch"


@dataclass
class _Identity:
    """What a model is, before anything heavy is loaded."""

    model_id: str
    arch: str | None
    checksum: str | None
    preprocess: Preprocess | None
    untrained: bool
    spec: object = None
    checkpoint: Path | None = None


def _has_torch() -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("torch", "open_clip"))
    except (ImportError, ValueError):
        return False


def _require_torch() -> None:
    try:
        import open_clip  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(
            f"the torch backend needs PyTorch and open_clip ({e}): {TORCH_PIP}; or use --backend onnx") from None


def _identify(model: str | None, checkpoint: str | Path | None, arch: str | None, need_checksum: bool,
              offline: bool, feedback: Feedback) -> _Identity:
    if model and checkpoint:
        raise InputError(f"give a model id ({model!r}) or a checkpoint ({checkpoint}), not both")
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist or is not a file; check --checkpoint")
        return _Identity(f"checkpoint:{path.name}", arch, sha256_file(path) if need_checksum else None, None,
                         False, checkpoint=path)
    spec = get_model_spec(model or DEFAULT_MODEL)
    if spec.source is None:
        return _Identity(spec.id, arch or spec.arch, UNTRAINED_CHECKSUM, spec.preprocess, True, spec=spec)
    checksum = spec.sha256
    if need_checksum and checksum is None:
        from .weights import fetch_weights

        checksum = fetch_weights(spec, offline=offline, feedback=feedback).sha256
    return _Identity(spec.id, arch or spec.arch, checksum, spec.preprocess, spec.untrained, spec=spec)


def _build_torch(ident: _Identity, offline: bool, feedback: Feedback):
    """The open_clip model for ``ident``, filling in arch, checksum and preprocessing."""
    _require_torch()
    from .checkpoints import build_clip, infer_arch, read_state_dict

    if ident.untrained:
        return build_clip(None, ident.arch, seed=0)
    if ident.checkpoint is not None:
        path = ident.checkpoint
    else:
        from .weights import fetch_weights

        got = fetch_weights(ident.spec, offline=offline, feedback=feedback)
        path, ident.checksum = got.path, got.sha256
    sd = read_state_dict(path)
    if ident.arch is None:
        ident.arch = infer_arch(sd)
    if ident.checksum is None:
        ident.checksum = sha256_file(path)
    clip = build_clip(sd, ident.arch)
    if ident.preprocess is None:  # a bare checkpoint: SenCLIP's recipe at the model's own input size
        size = clip.visual.image_size
        ident.preprocess = Preprocess(SENCLIP_MEAN, SENCLIP_STD, int(size[0] if isinstance(size, tuple) else size))
    return clip


def load_model(model: str | None = None, checkpoint: str | Path | None = None, *, arch: str | None = None,
               backend: str = "torch", device: str = "auto", offline: bool = False,
               onnx_dir: str | Path | None = None, int8: bool = False,
               feedback: Feedback | None = None) -> LoadedModel:
    """Image and text encoders for a registry model (default SenCLIP ViT-B/32) or a checkpoint.

    Args:
        model: registry id; ``untrained-smoke`` is a random ViT-B/32 (seed 0), for checks only.
        checkpoint: a SenCLIP/OpenAI-format state_dict (arch inferred) or an open_clip one (``arch``).
        backend: ``torch`` or ``onnx``. ONNX uses ``onnx_dir`` or the cached export, making it
            first (needs torch) when missing.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; the result says what ran.

    Raises:
        InputError / CheckpointError: bad id, file, or architecture.
        WeightsNotAvailableError, ChecksumError: weights missing offline, or corrupt.
        BackendUnavailableError: torch / onnxruntime missing, or no export and no torch to make one.
    """
    feedback = feedback or Feedback()
    if backend not in ("torch", "onnx"):
        raise InputError(f"unknown backend {backend!r}; use torch or onnx")
    if backend == "onnx":
        return _load_onnx(model, checkpoint, arch, device, offline, onnx_dir, int8, feedback)
    ident = _identify(model, checkpoint, arch, False, offline, feedback)
    clip = _build_torch(ident, offline, feedback)
    from .encoders.torch_encoder import TorchImageEncoder, TorchTextEncoder

    image = TorchImageEncoder(clip, ident.preprocess, device)
    text = TorchTextEncoder(clip, image.device)
    feedback.info(f"model {ident.model_id} ({ident.arch}) on torch, device {image.device}")
    return LoadedModel(ident.model_id, ident.arch, ident.checksum, ident.preprocess, ident.untrained,
                       "torch", image.device, image, text)


def _find_export(model_id: str, int8: bool) -> Path | None:
    """The newest cached export of ``model_id`` (used when its checksum is unknown offline)."""
    from .onnx_export import export_dir_pattern, onnx_home

    found = [d for d in onnx_home().glob(export_dir_pattern(model_id, int8))
             if (d / "image.onnx").is_file() and (d / "text.onnx").is_file()]
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def _load_onnx(model, checkpoint, arch, device, offline, onnx_dir, int8, feedback) -> LoadedModel:
    if onnx_dir is None:
        ident = None
        try:
            ident = _identify(model, checkpoint, arch, True, offline, feedback)
        except FileNotFoundError:  # weights not cached and unknown checksum: any export of the id will do
            spec = get_model_spec(model or DEFAULT_MODEL)
            onnx_dir = _find_export(spec.id, int8)
            if onnx_dir is None:
                raise
        if ident is not None:
            from .onnx_export import default_export_dir

            onnx_dir = default_export_dir(ident.model_id, ident.checksum, int8)
            if not ((onnx_dir / "image.onnx").is_file() and (onnx_dir / "text.onnx").is_file()):
                if not _has_torch():
                    name = ident.model_id if ident.checkpoint is None else f"--checkpoint {ident.checkpoint}"
                    raise BackendUnavailableError(
                        f"no ONNX export of {ident.model_id} in {onnx_dir}, and torch is not installed to make one: "
                        f"run `senclip models export-onnx {name}{' --int8' if int8 else ''}` on a machine with "
                        f"torch and copy the folder to {onnx_dir} (or pass it as onnx_dir), or {TORCH_PIP}")
                feedback.info(f"no ONNX export of {ident.model_id} yet: exporting it once to {onnx_dir}")
                from .onnx_export import export_onnx

                clip = _build_torch(ident, offline, feedback)
                export_onnx(clip, onnx_dir, preprocess=ident.preprocess, model_id=ident.model_id, arch=ident.arch,
                            checksum=ident.checksum, untrained=ident.untrained, int8=int8, feedback=feedback)
    elif model or checkpoint:
        ident = _identify(model, checkpoint, arch, checkpoint is not None, offline, feedback)
    else:
        ident = None
    from .encoders.onnx_encoder import OnnxImageEncoder, OnnxTextEncoder

    onnx_dir = Path(onnx_dir)
    image = OnnxImageEncoder(onnx_dir / "image.onnx", device)
    text = OnnxTextEncoder(onnx_dir / "text.onnx", image.device)
    meta = image.meta
    if ident is not None and (meta["model_id"] != ident.model_id
                              or (ident.checksum and meta["checksum"] != ident.checksum)):
        raise InputError(f"ONNX export in {onnx_dir} is of {meta['model_id']} (sha256 {meta['checksum'][:12]}), "
                         f"not of {ident.model_id}; export this model with `senclip models export-onnx`")
    feedback.info(f"model {meta['model_id']} on onnxruntime ({onnx_dir.name}), device {image.device}")
    return LoadedModel(meta["model_id"], meta.get("arch", ""), meta["checksum"], image.preprocess,
                       json.loads(meta.get("untrained", "false")), "onnx", image.device, image, text)
