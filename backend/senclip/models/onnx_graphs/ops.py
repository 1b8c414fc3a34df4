"""A small ONNX graph builder on ``onnx.helper``: nodes, weights and constants by name, then a model.

Why not onnxscript: the graphs are a few dozen distinct ops assembled from a state_dict, and the
helper API is part of ``onnx`` itself, the one package this builder may need.
"""
from __future__ import annotations

from itertools import count

import numpy as np

OPSET = 17  # LayerNormalization (17) with ORT >= 1.12 and every OpenVINO since 2022.3; Resize as in 13
IR_VERSION = 8  # the IR of opset 17: older runtimes refuse files stamped with a newer IR


class Graph:
    """Nodes and initializers of one graph; every method returns the name of the tensor it made."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._ids = count()
        self._consts: dict = {}

    def name(self, hint: str) -> str:
        return f"{hint}_{next(self._ids)}"

    def weight(self, name: str, array: np.ndarray, dtype=np.float32) -> str:
        """A stored tensor under ``name`` (the state_dict key it came from, for readable graphs)."""
        from onnx import numpy_helper

        # asarray, not ascontiguousarray: that one turns 0-d scalars (Range, Gather indices) into 1-d
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=dtype, order="C"), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """A small constant (shapes, axes, scalars), stored once per distinct value."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.weight(self.name("const"), arr, dtype)
        return self._consts[key]

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs):
        """Add one node; returns its output name (or the list of them when ``outputs`` > 1)."""
        from onnx import helper

        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attrs))
        return names[0] if outputs == 1 else names

    def model(self, inputs: list, output: str, output_shape: list, doc: str):
        """The ``ModelProto``: ``inputs`` as (name, onnx elem type, shape), one float output ``embeddings``."""
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [output], ["embeddings"], name="embeddings"))
        graph = helper.make_graph(
            self.nodes, doc, [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
            [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, output_shape)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="senclip")
        model.ir_version = IR_VERSION
        # The weights go into the model one by one, each list entry dropped once copied: make_graph and
        # make_model would each hold a whole copy beside the list (ViT-B/32: +700 MB at the first use).
        self.initializers.reverse()
        while self.initializers:
            model.graph.initializer.append(self.initializers.pop())
        return model


# --- layers shared by the towers --------------------------------------------------------------------


def linear(g: Graph, x: str, sd: dict, prefix: str, scale: float = 1.0) -> str:
    """``(x @ W.T + b) * scale`` of a torch ``nn.Linear`` stored as ``prefix.weight`` / ``prefix.bias`` (the
    scale folded into both). The weight is a MatMul initializer, which is what the int8 quantisers look
    for (static_int8.weight_matmuls)."""
    w, b = sd[f"{prefix}.weight"], sd[f"{prefix}.bias"]
    if scale != 1.0:  # in float64: fp16 weights (OpenAI's files) would lose their small values scaled in fp16
        w, b = w.astype(np.float64) * scale, b.astype(np.float64) * scale
    y = g.op("MatMul", x, g.weight(f"{prefix}.weight", w.T))
    return g.op("Add", y, g.weight(f"{prefix}.bias", b))


def project(g: Graph, x: str, sd: dict, key: str) -> str:
    """``x @ P`` for CLIP's bare projection matrices (``visual.proj``, ``text_projection``)."""
    return g.op("MatMul", x, g.weight(key, sd[key]))


def layer_norm(g: Graph, x: str, sd: dict, prefix: str, eps: float = 1e-5) -> str:
    return g.op("LayerNormalization", x, g.weight(f"{prefix}.weight", sd[f"{prefix}.weight"]),
                g.weight(f"{prefix}.bias", sd[f"{prefix}.bias"]), axis=-1, epsilon=eps)


def l2_normalise(g: Graph, x: str) -> str:
    """``F.normalize(x, dim=-1)``: x / max(||x||, 1e-12), as both torch encoders end."""
    norm = g.op("ReduceL2", x, axes=[-1], keepdims=1)
    return g.op("Div", x, g.op("Clip", norm, g.const(1e-12, np.float32)))


def shape_of(g: Graph, x: str, start: int, end: int) -> str:
    """The 1-D int64 ``x.shape[start:end]`` (ONNX Shape with start/end, opset 15+)."""
    return g.op("Shape", x, start=start, end=end)
