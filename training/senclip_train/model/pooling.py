"""Pooling the four directional ground-photo embeddings (W, E, N, S) into one target.

``avg`` is fixed (no parameters, as in the paper's default); the two attention variants learn
how much each view counts, per image (one weight per view) or per dimension (one weight per view
and embedding dimension), then aggregate the weighted views by sum, mean or max.
"""
from __future__ import annotations

import torch
from torch import nn

from senclip.core.errors import InputError

POOLINGS = ("avg", "attn-image", "attn-dim")
AGGREGATES = ("sum", "mean", "max")


class AvgPool(nn.Module):
    def forward(self, views: torch.Tensor) -> torch.Tensor:  # (B, 4, D) -> (B, D)
        return views.mean(dim=1)


class _AttentionPool(nn.Module):
    def __init__(self, dim: int, out_features: int, aggregate: str):
        super().__init__()
        if aggregate not in AGGREGATES:
            raise InputError(f"--pool-aggregate {aggregate!r} is not one of {', '.join(AGGREGATES)}")
        self.linear = nn.Linear(dim, out_features, bias=False)
        self.aggregate = aggregate

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.linear(views), dim=1)  # over the 4 views
        weighted = views * weights
        if self.aggregate == "sum":
            return weighted.sum(dim=1)
        if self.aggregate == "mean":
            return weighted.mean(dim=1)
        return weighted.max(dim=1).values


class AttentionPoolPerImage(_AttentionPool):
    def __init__(self, dim: int, aggregate: str = "sum"):
        super().__init__(dim, 1, aggregate)


class AttentionPoolPerDimension(_AttentionPool):
    def __init__(self, dim: int, aggregate: str = "sum"):
        super().__init__(dim, dim, aggregate)


def make_pooling(kind: str, dim: int, aggregate: str = "sum") -> nn.Module:
    if kind == "avg":
        return AvgPool()
    if kind == "attn-image":
        return AttentionPoolPerImage(dim, aggregate)
    if kind == "attn-dim":
        return AttentionPoolPerDimension(dim, aggregate)
    raise InputError(f"--pooling {kind!r} is not one of {', '.join(POOLINGS)}")
