"""Writing a trained model in the released SenCLIP format (whole OpenAI-CLIP state_dict, no head).

The linear residual head ``h(x) = (I + W) x`` sits right after CLIP's last linear map, so it
folds into it exactly:
  ViT:  ``x = ln_post(cls) @ proj``            → ``proj' = proj @ (I + W)ᵀ``
  RN50: ``x = c_proj.weight @ a + c_proj.bias`` → ``weight' = (I + W) @ weight``, ``bias' = (I + W) @ bias``
so ``encode_image`` of the exported model equals ``head(visual(x))`` of the trained one, and the
backend needs no head at all. The reference head (LayerNorm inside) is not linear and can only be
dropped, which changes the embeddings: that needs ``drop_head=True`` and is warned about.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from senclip.core.errors import InputError, SenclipWarning

from .contrastive import LinearResidualHead, ReferenceHead


@torch.no_grad()
def fold_head(visual: torch.nn.Module, head: torch.nn.Module, *, drop_head: bool = False) -> torch.nn.Module:
    """A copy of ``visual`` whose output equals ``head(visual(x))`` (exactly, up to float rounding)."""
    out = copy.deepcopy(visual).float()
    if isinstance(head, torch.nn.Identity):
        return out
    if isinstance(head, ReferenceHead):
        if not drop_head:
            raise InputError("this run used --head reference (LayerNorm inside), which cannot be folded into "
                             "the released format; pass --drop-head to export the tower without it (embeddings "
                             "change), or train with --head linear")
        warnings.warn("exporting without the non-linear reference head: exported embeddings differ from "
                      "the trained ones (as with the reference code's released checkpoints)", SenclipWarning)
        return out
    if not isinstance(head, LinearResidualHead):
        raise InputError(f"cannot export head of type {type(head).__name__}")
    m = torch.eye(head.weight.shape[0], dtype=torch.float64) + head.weight.double()
    if hasattr(out, "proj") and isinstance(out.proj, torch.Tensor):
        out.proj.copy_((out.proj.double() @ m.t()).float())
    elif hasattr(out, "attnpool"):
        c = out.attnpool.c_proj
        c.weight.copy_((m @ c.weight.double()).float())
        c.bias.copy_((m @ c.bias.double()).float())
    else:
        raise InputError(f"cannot fold the head into a {type(out).__name__} tower (no proj / attnpool.c_proj)")
    return out


def export_release(clip_model: torch.nn.Module, visual: torch.nn.Module, head: torch.nn.Module, path,
                   *, drop_head: bool = False) -> Path:
    """Save ``clip_model`` (text tower untouched) with the trained, head-folded image tower."""
    from senclip.models.checkpoints import save_openai_state_dict

    full = copy.deepcopy(clip_model).float().cpu()
    full.visual = fold_head(visual.cpu(), head.cpu(), drop_head=drop_head)
    return save_openai_state_dict(full, path)


def export_from_training_checkpoint(ckpt_path, out_path, *, drop_head: bool = False) -> Path:
    """Training checkpoint (``last.pt``) → release-format file loadable by ``senclip classify --checkpoint``."""
    from .build import model_from_training_checkpoint

    clip_model, model, _ = model_from_training_checkpoint(ckpt_path)
    return export_release(clip_model, model.visual, model.head, out_path, drop_head=drop_head)
