"""CLIP's text tower as ONNX nodes: int64 token ids (N, n) → L2-normalised embeddings (N, D).

As the torch export with ``text_trim`` (``TextModule(always_prefix=True)``): the sequence axis is
dynamic (2 .. context length), the positional embedding and the causal mask are cut to the n
positions given, and the features are taken at the end token (the largest id, ``argmax``), which
with a causal mask no later (padding) position can reach: so trimming changes nothing.
"""
from __future__ import annotations

import numpy as np

from senclip.models.onnx_graphs.ops import Graph, l2_normalise, layer_norm, project, shape_of
from senclip.models.onnx_graphs.transformer import transformer


def text_graph(sd: dict, act: str):
    """The ``ModelProto`` of the text encoder."""
    from onnx import TensorProto

    g = Graph()
    ctx = sd["positional_embedding"].shape[0]
    n = shape_of(g, "tokens", 1, 2)  # the sequence length given, as a 1-D tensor
    x = g.op("Gather", g.weight("token_embedding.weight", sd["token_embedding.weight"]), "tokens", axis=0)
    pos = g.op("Slice", g.weight("positional_embedding", sd["positional_embedding"]), g.const([0]), n, g.const([0]))
    causal = np.triu(np.full((ctx, ctx), -np.inf, np.float32), 1)  # open_clip's build_causal_mask
    mask = g.op("Slice", g.weight("attn_mask", causal), g.const([0, 0]), g.op("Concat", n, n, axis=0),
                g.const([0, 1]))
    x = transformer(g, g.op("Add", x, pos), sd, "transformer", act=act, mask=mask)
    eot = g.op("ArgMax", "tokens", axis=1, keepdims=1)  # (N, 1): first position of the largest id
    pooled = g.op("GatherND", x, eot, batch_dims=1)  # (N, width); ln_final is per position: after the pick
    out = l2_normalise(g, project(g, layer_norm(g, pooled, sd, "ln_final"), sd, "text_projection"))
    return g.model([("tokens", TensorProto.INT64, ["batch", "sequence"])], out,
                   ["batch", sd["text_projection"].shape[1]], "senclip text encoder")
