"""Tiny randomly initialised CLIP models written in the SenCLIP release format.

They exercise the exact loading path of the real checkpoints (plain OpenAI-CLIP state_dict,
architecture inferred from shapes) while building in well under a second. The text tower keeps
the real vocabulary (49408) and context (77) so tokenizers and truncation behave as in release.
"""
from __future__ import annotations

from pathlib import Path

TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1)


def make_tiny_clip(kind: str = "vit", seed: int = 0, embed_dim: int = 32):
    """A random open_clip CLIP small enough for unit tests (QuickGELU, like OpenAI's)."""
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    if kind == "vit":
        vision = CLIPVisionCfg(layers=1, width=64, patch_size=32, image_size=64)
    elif kind == "rn":
        vision = CLIPVisionCfg(layers=(1, 1, 1, 1), width=16, image_size=64)
    else:
        raise ValueError(f"kind must be 'vit' or 'rn', got {kind!r}")
    torch.manual_seed(seed)
    model = CLIP(embed_dim, vision_cfg=vision, text_cfg=CLIPTextCfg(**TEXT), quick_gelu=True)
    with torch.no_grad():  # open_clip initialises the text projection and logit scale
        for p in model.parameters():  # ...but leaves some tensors at exact zero/one: perturb all
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def make_tiny_checkpoint(path: str | Path, kind: str = "vit", seed: int = 0) -> Path:
    """Save a tiny random CLIP with :func:`senclip.models.checkpoints.save_openai_state_dict`."""
    from senclip.models.checkpoints import save_openai_state_dict

    return save_openai_state_dict(make_tiny_clip(kind, seed), path)
