"""open_clip's pre-LN transformer (``ResidualAttentionBlock``) and multi-head attention as ONNX nodes.

Shared by the ViT image tower and the text tower; the attention core is shared with the ResNet's
attention pooling. Tensors are batch-first ``(N, L, E)``, as open_clip runs them since 2.24.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import CheckpointError
from senclip.models.onnx_graphs.ops import Graph, layer_norm, linear

HEAD_WIDTH = 64  # open_clip's and OpenAI's: heads = width // 64 in every tower we build


def heads_of(width: int, what: str) -> int:
    if width % HEAD_WIDTH:
        raise CheckpointError(f"the {what} is {width} wide, not a multiple of {HEAD_WIDTH}: not an OpenAI-CLIP "
                              "layout this builder knows; export it with torch (senclip models export-onnx)")
    return width // HEAD_WIDTH


def activation(g: Graph, x: str, kind: str) -> str:
    """QuickGELU ``x * sigmoid(1.702 x)`` (OpenAI's CLIP) or exact GELU ``x/2 (1 + erf(x/sqrt 2))``."""
    if kind == "quickgelu":
        return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, g.const(1.702, np.float32))))
    if kind == "gelu":
        erf = g.op("Erf", g.op("Div", x, g.const(np.sqrt(2.0), np.float32)))
        return g.op("Mul", g.op("Mul", x, g.const(0.5, np.float32)), g.op("Add", erf, g.const(1.0, np.float32)))
    raise ValueError(f"unknown activation {kind!r}")


def count_blocks(sd: dict, prefix: str) -> int:
    """Blocks ``prefix.resblocks.0 ..`` present, checked to be numbered without gaps."""
    found = {int(k.split(".")[len(prefix.split(".")) + 1]) for k in sd if k.startswith(f"{prefix}.resblocks.")}
    if not found or found != set(range(len(found))):
        raise CheckpointError(f"checkpoint has no complete {prefix}.resblocks.* (found {sorted(found)[:8]})")
    return len(found)


def transformer(g: Graph, x: str, sd: dict, prefix: str, *, act: str, mask: str | None = None) -> str:
    """``prefix.resblocks.*`` applied in order to ``x`` (N, L, width)."""
    width = sd[f"{prefix}.resblocks.0.ln_1.weight"].shape[0]
    heads = heads_of(width, prefix)
    for i in range(count_blocks(sd, prefix)):
        x = resblock(g, x, sd, f"{prefix}.resblocks.{i}", heads, act, mask)
    return x


def resblock(g: Graph, x: str, sd: dict, p: str, heads: int, act: str, mask: str | None) -> str:
    """x + attn(ln_1(x)); then x + mlp(ln_2(x)), with mlp = c_proj(act(c_fc(.)))."""
    x = g.op("Add", x, self_attention(g, layer_norm(g, x, sd, f"{p}.ln_1"), sd, f"{p}.attn", heads, mask))
    hidden = activation(g, linear(g, layer_norm(g, x, sd, f"{p}.ln_2"), sd, f"{p}.mlp.c_fc"), act)
    return g.op("Add", x, linear(g, hidden, sd, f"{p}.mlp.c_proj"))


def self_attention(g: Graph, x: str, sd: dict, p: str, heads: int, mask: str | None) -> str:
    """``nn.MultiheadAttention`` (packed ``in_proj_weight``) of x with itself: one MatMul for q, k, v, split;
    the 1/sqrt(head width) scale is folded into the q rows of the stored weight."""
    w, b = sd[f"{p}.in_proj_weight"], sd[f"{p}.in_proj_bias"]
    width = w.shape[1]
    scale = np.ones(3 * width, np.float64)
    scale[:width] = (width // heads) ** -0.5
    qkv = g.op("Add", g.op("MatMul", x, g.weight(f"{p}.in_proj_weight", (w.T * scale).astype(np.float32))),
               g.weight(f"{p}.in_proj_bias", b * scale))
    q, k, v = g.op("Split", qkv, g.const([width] * 3), axis=-1, outputs=3)
    return linear(g, attend(g, q, k, v, heads, width, mask), sd, f"{p}.out_proj")


def attend(g: Graph, q: str, k: str, v: str, heads: int, width: int, mask: str | None = None) -> str:
    """softmax(q kᵀ + mask) v per head, for already projected (and scaled) q (N, Lq, E), k and v (N, Lk, E);
    returns (N, Lq, E) before the output projection."""
    split = g.const([0, 0, heads, width // heads])  # 0: keep N and L as they are
    qh = g.op("Transpose", g.op("Reshape", q, split), perm=[0, 2, 1, 3])  # (N, H, Lq, d)
    kh = g.op("Transpose", g.op("Reshape", k, split), perm=[0, 2, 3, 1])  # (N, H, d, Lk)
    vh = g.op("Transpose", g.op("Reshape", v, split), perm=[0, 2, 1, 3])  # (N, H, Lk, d)
    scores = g.op("MatMul", qh, kh)
    if mask is not None:
        scores = g.op("Add", scores, mask)
    out = g.op("MatMul", g.op("Softmax", scores, axis=-1), vh)  # (N, H, Lq, d)
    return g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), g.const([0, 0, width]))
