"""The ViT image tower (open_clip's ``VisionTransformer`` in OpenAI's layout) as ONNX nodes.

Patch embedding (a strided conv), class token, positional embedding, ln_pre, the transformer,
ln_post on the class token, ``@ visual.proj``. Depth, width and patch come from the tensor shapes,
so ViT-B/32, other ViTs of this layout and the tests' tiny ones build alike.
"""
from __future__ import annotations

from senclip.core.errors import CheckpointError
from senclip.models.onnx_graphs.ops import Graph, layer_norm, project, shape_of
from senclip.models.onnx_graphs.transformer import transformer


def input_size(sd: dict) -> int:
    """The square input the positional embedding was made for: patch x grid."""
    patch = sd["visual.conv1.weight"].shape[-1]
    tokens = sd["visual.positional_embedding"].shape[0] - 1
    grid = round(tokens ** 0.5)
    if grid * grid != tokens:
        raise CheckpointError(f"visual.positional_embedding has {tokens + 1} rows, not a square grid plus one")
    return patch * grid


def vit_tower(g: Graph, x: str, sd: dict, act: str) -> str:
    """(N, 3, S, S) normalised pixels → (N, embed_dim) image features (not yet L2-normalised)."""
    conv = sd["visual.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    x = g.op("Conv", x, g.weight("visual.conv1.weight", conv), kernel_shape=[patch, patch], strides=[patch, patch])
    x = g.op("Transpose", g.op("Reshape", x, g.const([0, width, -1])), perm=[0, 2, 1])  # (N, grid², width)
    cls_shape = g.op("Concat", shape_of(g, x, 0, 1), g.const([1, width]), axis=0)
    cls = g.op("Expand", g.weight("visual.class_embedding", sd["visual.class_embedding"].reshape(1, 1, width)),
               cls_shape)
    x = g.op("Add", g.op("Concat", cls, x, axis=1), g.weight("visual.positional_embedding",
                                                                sd["visual.positional_embedding"]))
    x = transformer(g, layer_norm(g, x, sd, "visual.ln_pre"), sd, "visual.transformer", act=act)
    first = g.op("Gather", x, g.const(0), axis=1)  # the class token: (N, width)
    return project(g, layer_norm(g, first, sd, "visual.ln_post"), sd, "visual.proj")
