"""The trainable part of SenCLIP: CLIP image tower + residual head, against pooled ground views.

Only the image tower is trained (the text tower stays the original CLIP's, which is what makes
zero-shot prompts still work). The loss is MoCo-style InfoNCE: each chip's positive is its own
pooled ground embedding, its negatives a queue of pooled ground embeddings from earlier batches.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from senclip.core.errors import InputError

from .pooling import make_pooling

HEADS = ("linear", "reference", "none")
MAX_LOGIT_SCALE = math.log(100.0)


class LinearResidualHead(nn.Module):
    """``x + W x`` with ``W`` zero-initialised: starts as the identity, and being linear and
    bias-free it folds exactly into CLIP's final projection at export (see ``export.py``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, dim))

    def forward(self, x):
        return x + x @ self.weight.t()


class ReferenceHead(nn.Module):
    """The reference code's head: zero-initialised Linear→GELU→Linear→Dropout, residual with the
    first Linear and the input, then LayerNorm. Non-linear, so it cannot be exported into the
    released format; kept only to reproduce the reference training."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.projection, self.fc = nn.Linear(dim, dim), nn.Linear(dim, dim)
        for lin in (self.projection, self.fc):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.dropout, self.norm = nn.Dropout(dropout), nn.LayerNorm(dim)

    def forward(self, x):
        p = self.projection(x)
        return self.norm(self.dropout(self.fc(F.gelu(p))) + p + x)


def make_head(kind: str, dim: int) -> nn.Module:
    if kind == "linear":
        return LinearResidualHead(dim)
    if kind == "reference":
        return ReferenceHead(dim)
    if kind == "none":
        return nn.Identity()
    raise InputError(f"--head {kind!r} is not one of {', '.join(HEADS)}")


def set_trainable(visual: nn.Module, blocks: int) -> list[str]:
    """Freeze the tower except what the paper trains; returns the trainable parameter names.

    ViT: the last ``blocks`` transformer blocks plus ``ln_post`` and ``proj`` (``blocks < 0``:
    the whole tower). ResNet: the whole tower (the paper trains all RN50 layers).
    """
    is_vit = hasattr(visual, "transformer") and hasattr(visual, "proj")
    for p in visual.parameters():
        p.requires_grad = not is_vit or blocks < 0
    if is_vit and blocks >= 0:
        resblocks = visual.transformer.resblocks
        if blocks > len(resblocks):
            raise InputError(f"--trainable-blocks {blocks} exceeds the {len(resblocks)} blocks of this ViT")
        for blk in list(resblocks)[len(resblocks) - blocks:]:
            for p in blk.parameters():
                p.requires_grad = True
        for p in list(visual.ln_post.parameters()) + [visual.proj]:
            p.requires_grad = True
    return [n for n, p in visual.named_parameters() if p.requires_grad]


class SenCLIPContrastive(nn.Module):
    def __init__(self, visual: nn.Module, embed_dim: int, *, pooling: str = "avg", pool_aggregate: str = "sum",
                 head: str = "linear", queue_size: int = 512, temperature: float = 0.07):
        super().__init__()
        if queue_size < 1:
            raise InputError(f"--queue-size {queue_size} must be at least 1")
        self.visual = visual
        self.head = make_head(head, embed_dim)
        self.head_kind = head
        self.pooling = make_pooling(pooling, embed_dim, pool_aggregate)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, embed_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def pool(self, ground: torch.Tensor) -> torch.Tensor:
        """(B, 4, D) frozen views → (B, D) normalised target (grad flows only into attention)."""
        return F.normalize(self.pooling(ground.float()), dim=-1)

    def forward(self, ground: torch.Tensor, images: torch.Tensor):
        """Returns (loss, normalised targets for the queue, mean positive cosine)."""
        target = self.pool(ground)
        emb = F.normalize(self.head(self.visual(images)).float(), dim=-1)
        l_pos = (emb * target).sum(-1, keepdim=True)
        l_neg = emb @ self.queue.clone().detach().t()
        logits = torch.cat([l_pos, l_neg], dim=1) * self.logit_scale.exp()
        labels = torch.zeros(len(emb), dtype=torch.long, device=emb.device)
        return F.cross_entropy(logits, labels), target.detach(), l_pos.detach().mean()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` at the pointer, wrapping around (any batch size works, unlike the
        reference which asserts that the batch size divides the queue size)."""
        k = keys.to(self.queue.dtype)[-len(self.queue):]
        idx = (int(self.queue_ptr) + torch.arange(len(k), device=k.device)) % len(self.queue)
        self.queue[idx] = k
        self.queue_ptr.fill_((int(self.queue_ptr) + len(k)) % len(self.queue))

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
