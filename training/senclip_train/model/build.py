"""Where a training run's CLIP comes from, and how a training checkpoint becomes a model again.

A training checkpoint stores only the image tower, head, pooling and queue (plus optimiser
state); the frozen text tower is re-read from the initial CLIP file at export time, whose
sha256 the checkpoint records so a swapped file is noticed.
"""
from __future__ import annotations

from pathlib import Path

from senclip.core.errors import CheckpointError, InputError


def load_clip(init: str):
    """``init`` is a registry model id (``senclip models list``; weights from the cache, downloaded
    and verified if needed), an OpenAI/SenCLIP-format checkpoint path, or ``openai:ARCH``
    (open_clip's OpenAI weights, downloaded by open_clip). Returns (model, arch, sha256 or tag)."""
    from senclip.models.checkpoints import build_clip, infer_arch, read_state_dict, sha256_file
    from senclip.models.registry import get_model_spec, list_models

    if init in list_models():
        spec = get_model_spec(init)
        if spec.untrained:
            return build_clip(None, spec.arch, seed=0), spec.arch, "untrained:seed0"
        from senclip.models.weights import resolve_weights

        path = resolve_weights(spec)
        sd = read_state_dict(path)
        arch = spec.arch if spec.format == "open_clip" else infer_arch(sd)
        return build_clip(sd, arch), arch, sha256_file(path)
    if init.startswith("openai:"):
        import open_clip

        arch = init.split(":", 1)[1]
        if arch not in open_clip.list_models():
            raise InputError(f"--init {init!r}: {arch!r} is not an open_clip architecture (e.g. ViT-B-32-quickgelu)")
        return open_clip.create_model(arch, pretrained="openai").float(), arch, init
    p = Path(init)
    if not p.is_file():
        raise InputError(f"--init {init!r} is neither a registry model id (senclip models list), a checkpoint "
                         "file nor openai:ARCH; e.g. --init clip-vitb32-openai")
    sd = read_state_dict(p)
    arch = infer_arch(sd)
    return build_clip(sd, arch), arch, sha256_file(p)


def embed_dim_of(clip_model) -> int:
    return int(clip_model.text_projection.shape[1])


def build_contrastive(clip_model, cfg: dict):
    from .contrastive import SenCLIPContrastive, set_trainable

    import copy

    visual = copy.deepcopy(clip_model.visual).float()
    trainable = set_trainable(visual, cfg["trainable_blocks"])
    model = SenCLIPContrastive(visual, embed_dim_of(clip_model), pooling=cfg["pooling"],
                               pool_aggregate=cfg["pool_aggregate"], head=cfg["head"],
                               queue_size=cfg["queue_size"], temperature=cfg["temperature"])
    return model, trainable


def read_training_checkpoint(path) -> dict:
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"training checkpoint {p} does not exist; pass the run's last.pt")
    try:
        ck = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"training checkpoint {p} cannot be read ({type(e).__name__}); it is corrupt "
                              "or truncated: use an earlier step_*.pt") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise CheckpointError(f"{p} is not a senclip-train checkpoint (no 'model'/'config'); for a release-format "
                              "file use it directly with senclip --checkpoint")
    return ck


def model_from_training_checkpoint(path):
    """(full CLIP with the original text tower, trained SenCLIPContrastive, checkpoint dict)."""
    ck = read_training_checkpoint(path)
    cfg = ck["config"]
    clip_model, _, sha = load_clip(cfg["init"])
    if cfg.get("init_sha256") and sha != cfg["init_sha256"]:
        raise CheckpointError(f"initial CLIP {cfg['init']} changed since training (sha256 {sha[:12]}… ≠ "
                              f"{cfg['init_sha256'][:12]}…); export needs the same file for the text tower")
    model, _ = build_contrastive(clip_model, cfg)
    model.load_state_dict(ck["model"])
    return clip_model, model, ck
