"""The image encoder's graph: uint8 chips (N, 3, h, w), any N, h and w → L2-normalised embeddings.

Preprocessing is ``ChipEncoder``'s, node for node: /255, a bicubic resize to the recipe's size as two
matrix products whose (size, n) weights come from ONNX Resize applied to an identity (torch's
bicubic: cubic coefficient -0.75, half-pixel centres, borders clamped, no antialiasing; exactly what
torch's exporter emits for ``F.interpolate(..., "bicubic", align_corners=False)``), clamp to [0, 1],
then (x - mean) / std. ``ChipEncoder`` resizes bicubic whatever the recipe's ``interpolation`` says
(every registry model says bicubic), and so does this graph.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import CheckpointError
from senclip.models.onnx_graphs import resnet, vit
from senclip.models.onnx_graphs.ops import Graph, l2_normalise, shape_of
from senclip.models.registry import Preprocess


def image_graph(sd: dict, preprocess: Preprocess, act: str):
    """The ``ModelProto`` of the chip encoder for a ViT (``visual.proj``) or ModifiedResNet tower."""
    from onnx import TensorProto

    kind = vit if "visual.proj" in sd else resnet
    size = int(preprocess.size)
    if kind.input_size(sd) != size:
        raise CheckpointError(f"the model's image tower takes {kind.input_size(sd)} px chips but the "
                              f"preprocessing recipe resizes to {size}; fix the recipe's size")
    g = Graph()
    x = g.op("Div", g.op("Cast", "chips", to=TensorProto.FLOAT), g.const(255.0, np.float32))
    rows, cols = resize_matrix(g, shape_of(g, "chips", 2, 3), size), resize_matrix(g, shape_of(g, "chips", 3, 4), size)
    x = g.op("MatMul", g.op("MatMul", rows, x), g.op("Transpose", cols, perm=[1, 0]))
    x = g.op("Clip", x, g.const(0.0, np.float32), g.const(1.0, np.float32))
    x = g.op("Div", g.op("Sub", x, g.const(np.reshape(preprocess.mean, (1, 3, 1, 1)), np.float32)),
             g.const(np.reshape(preprocess.std, (1, 3, 1, 1)), np.float32))
    features = vit.vit_tower(g, x, sd, act) if kind is vit else resnet.resnet_tower(g, x, sd)
    embed_dim = (sd["visual.proj"] if kind is vit else sd["visual.attnpool.c_proj.weight"].T).shape[1]
    return g.model([("chips", TensorProto.UINT8, ["batch", 3, "height", "width"])], l2_normalise(g, features),
                   ["batch", embed_dim], "senclip image encoder")


def resize_matrix(g: Graph, n: str, size: int) -> str:
    """(size, n) weights of a 1-D bicubic resize from n (a 1-D int64 tensor) to ``size`` samples:
    Resize of the n x n identity to size x n, like ``torch_encoder.resize_matrix``."""
    from onnx import TensorProto

    idx = g.op("Range", g.const(0), g.op("Squeeze", n, g.const([0])), g.const(1))
    eye = g.op("Cast", g.op("Equal", g.op("Unsqueeze", idx, g.const([1])), idx), to=TensorProto.FLOAT)
    sizes = g.op("Concat", g.const([1, 1, size]), n, axis=0)
    out = g.op("Resize", g.op("Unsqueeze", eye, g.const([0, 1])), "", "", sizes, mode="cubic", cubic_coeff_a=-0.75,
               coordinate_transformation_mode="half_pixel", exclude_outside=0)
    return g.op("Squeeze", out, g.const([0, 1]))
