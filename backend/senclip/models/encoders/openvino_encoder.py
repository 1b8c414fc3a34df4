"""OpenVINO image encoder: the same ``image.onnx`` as ONNX Runtime, run by OpenVINO's CPU plugin.

Why a second engine: on CPUs with AMX or AVX512_BF16 OpenVINO runs the fp32 graph in bf16
(``INFERENCE_PRECISION_HINT``), which measured 2.4-2.8x ONNX Runtime fp32 at cosine 0.99995 on
ViT-B/32 (README "Performance"). It reads our ONNX export directly (metadata included), so there is
no second export to keep in step. Imports only numpy and openvino.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from senclip.core.errors import BackendUnavailableError, InputError
from senclip.models.precision import OPENVINO_PIP
from senclip.models.registry import Preprocess
from senclip.models.encoders.base import check_chips

# LATENCY: one request using every core, what a batch-at-a-time pipeline needs (measured faster
# than THROUGHPUT's several streams at batch 64 on the AMX machine: 51 vs 44 chips/s).
PERFORMANCE_HINT = "LATENCY"
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def _ov():
    try:
        import openvino
    except ImportError:
        raise BackendUnavailableError(f"this precision runs on OpenVINO: {OPENVINO_PIP}") from None
    return openvino


def _metadata(model, path: Path) -> dict:
    """The ``senclip.*`` ONNX metadata, which OpenVINO keeps under rt_info["framework"]."""
    meta = {}
    if model.has_rt_info(["framework"]):
        for key in model.get_rt_info(["framework"]).astype(dict):
            if key.startswith("senclip."):
                meta[key[len("senclip."):]] = model.get_rt_info(["framework", key]).astype(str)
    for key in ("model_id", "checksum", "preprocess", "embed_dim"):
        if key not in meta:
            raise InputError(f"{path} lacks the senclip.{key} metadata: it was not written by "
                             "`senclip models export-onnx`; export it again")
    return meta


class OpenVinoImageEncoder:
    backend = "onnx"
    engine = "openvino"

    def __init__(self, path: str | Path, precision: str = "fp32") -> None:
        ov = _ov()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"ONNX model {self.path} does not exist; export it with `senclip models export-onnx`")
        if precision not in OV_PRECISION:
            raise InputError(f"OpenVINO runs fp32 or bf16 here, not {precision!r}")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as e:  # OpenVINO raises its own RuntimeError subclasses
            raise InputError(f"OpenVINO cannot read {self.path} ({str(e).splitlines()[0][:200]}); "
                             "export it again with `senclip models export-onnx`") from None
        self.meta = _metadata(model, self.path)
        self.embed_dim = int(self.meta["embed_dim"])
        self.preprocess = Preprocess.from_dict(json.loads(self.meta["preprocess"]))
        self.precision = precision
        config = {"PERFORMANCE_HINT": PERFORMANCE_HINT, "INFERENCE_PRECISION_HINT": OV_PRECISION[precision],
                  "INFERENCE_NUM_THREADS": os.cpu_count() or 1}
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.device = "cpu"

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        chips = check_chips(chips)
        if len(chips) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        out = np.array(self.request.infer({0: chips})[0], dtype=np.float32)  # a copy: the buffer is reused
        # unit length in fp32: under bf16 the graph's own normalisation may run in bf16 (rows ~0.3 % off)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
