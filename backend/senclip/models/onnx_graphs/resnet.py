"""The ModifiedResNet image tower (OpenAI's RN50 and kin, open_clip's ``ModifiedResNet``) as ONNX nodes.

A 3-conv stem and an average pool, four stages of Bottleneck blocks whose stride is an average pool
(anti-aliased), and attention pooling: the mean token plus a positional embedding attends over the
feature map. BatchNorm (eval mode: running statistics) is folded into the convolution before it.
Stage depths and widths come from the state_dict's keys and shapes. SenCLIP's attention- and
average-pooling releases differ only in their weights (the pooling of the four ground views was a
training choice), so one graph serves both.
"""
from __future__ import annotations

import numpy as np

from senclip.models.onnx_graphs.ops import Graph, linear
from senclip.models.onnx_graphs.transformer import attend, heads_of

BN_EPS = 1e-5  # torch's BatchNorm2d default, which ModifiedResNet keeps


def input_size(sd: dict) -> int:
    """The square input the attention pool's positional embedding was made for (its grid x 32)."""
    return round((sd["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5) * 32


def conv_bn(g: Graph, x: str, sd: dict, conv: str, bn: str, *, stride: int = 1, relu: bool = True) -> str:
    """``conv`` (no bias, 'same' padding) then eval-mode BatchNorm ``bn``, folded into one Conv; then ReLU."""
    w = sd[f"{conv}.weight"].astype(np.float64)
    scale = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"].astype(np.float64) + BN_EPS)
    bias = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale
    k = w.shape[-1]
    y = g.op("Conv", x, g.weight(f"{conv}.weight", w * scale[:, None, None, None]), g.weight(f"{bn}.bias", bias),
             kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
    return g.op("Relu", y) if relu else y


def avg_pool(g: Graph, x: str, k: int) -> str:
    return g.op("AveragePool", x, kernel_shape=[k, k], strides=[k, k]) if k > 1 else x


def bottleneck(g: Graph, x: str, sd: dict, p: str, stride: int) -> str:
    """1x1, 3x3, (avg pool), 1x1 (x4 channels), plus the identity, or its avg-pooled 1x1 projection."""
    out = conv_bn(g, x, sd, f"{p}.conv1", f"{p}.bn1")
    out = avg_pool(g, conv_bn(g, out, sd, f"{p}.conv2", f"{p}.bn2"), stride)
    out = conv_bn(g, out, sd, f"{p}.conv3", f"{p}.bn3", relu=False)
    if f"{p}.downsample.0.weight" in sd:
        x = conv_bn(g, avg_pool(g, x, stride), sd, f"{p}.downsample.0", f"{p}.downsample.1", relu=False)
    return g.op("Relu", g.op("Add", out, x))


def blocks_in(sd: dict, stage: int) -> int:
    return len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{stage}.")})


def resnet_tower(g: Graph, x: str, sd: dict) -> str:
    """(N, 3, S, S) normalised pixels → (N, embed_dim) image features (not yet L2-normalised)."""
    x = conv_bn(g, x, sd, "visual.conv1", "visual.bn1", stride=2)
    x = conv_bn(g, x, sd, "visual.conv2", "visual.bn2")
    x = avg_pool(g, conv_bn(g, x, sd, "visual.conv3", "visual.bn3"), 2)
    for stage in (1, 2, 3, 4):
        for i in range(blocks_in(sd, stage)):  # the first block of stages 2-4 halves the resolution
            x = bottleneck(g, x, sd, f"visual.layer{stage}.{i}", 2 if stage > 1 and i == 0 else 1)
    return attention_pool(g, x, sd, "visual.attnpool")


def attention_pool(g: Graph, x: str, sd: dict, p: str) -> str:
    """open_clip's ``AttentionPool2d``: tokens = [mean, h·w positions] + positional embedding; only
    the mean token's query is computed, as only its output (``x[0]``) is kept."""
    width = sd[f"{p}.positional_embedding"].shape[1]
    heads = heads_of(width, "attention pool")
    x = g.op("Transpose", g.op("Reshape", x, g.const([0, width, -1])), perm=[0, 2, 1])  # (N, h·w, C)
    x = g.op("Concat", g.op("ReduceMean", x, axes=[1], keepdims=1), x, axis=1)
    x = g.op("Add", x, g.weight(f"{p}.positional_embedding", sd[f"{p}.positional_embedding"]))
    first = g.op("Slice", x, g.const([0]), g.const([1]), g.const([1]))  # (N, 1, C)
    q = linear(g, first, sd, f"{p}.q_proj", scale=(width // heads) ** -0.5)
    out = attend(g, q, linear(g, x, sd, f"{p}.k_proj"), linear(g, x, sd, f"{p}.v_proj"), heads, width)
    return linear(g, g.op("Squeeze", out, g.const([1])), sd, f"{p}.c_proj")
