"""OpenVINO image encoder: the same ``image.onnx`` as ONNX Runtime, run by OpenVINO's CPU plugin.

Why a second engine: on CPUs with AMX or AVX512_BF16 OpenVINO runs the fp32 graph in bf16
(``INFERENCE_PRECISION_HINT``), which measured 2.4-2.8x ONNX Runtime fp32 at cosine 0.99995 on
ViT-B/32 (docs/performance.md). It reads our ONNX export directly (metadata included), so there is
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
# than THROUGHPUT's several streams at batch 64 on the AMX machine: 51 vs 44 chips/s). THROUGHPUT
# splits each batch over the plugin's streams (parallel requests); --precision auto measures both.
PERFORMANCE_HINT = "LATENCY"
HINTS = ("LATENCY", "THROUGHPUT")
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
# int8: a statically quantised (QDQ) export (senclip.models.static_int8); the int8 MatMuls run as int8
# (VNNI/AMX), the ops between them in bf16 where the CPU has native bf16 units, else in fp32


def _int8_rest(core) -> str:
    """What OpenVINO computes a QDQ graph's non-quantised ops in: bf16 only with native units."""
    try:
        caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # an older plugin without the property: fp32 is always right
        return "f32"
    return "bf16" if "BF16" in caps else "f32"


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

    def __init__(self, path: str | Path, precision: str = "fp32", hint: str = PERFORMANCE_HINT) -> None:
        ov = _ov()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"ONNX model {self.path} does not exist; export it with `senclip models export-onnx`")
        if precision not in (*OV_PRECISION, "int8"):
            raise InputError(f"OpenVINO runs fp32, bf16 or int8 (a QDQ export) here, not {precision!r}")
        if hint not in HINTS:
            raise InputError(f"OpenVINO performance hint must be one of {', '.join(HINTS)}, not {hint!r}")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as e:  # OpenVINO raises its own RuntimeError subclasses
            raise InputError(f"OpenVINO cannot read {self.path} ({str(e).splitlines()[0][:200]}); "
                             "export it again with `senclip models export-onnx`") from None
        self.meta = _metadata(model, self.path)
        self.embed_dim = int(self.meta["embed_dim"])
        self.preprocess = Preprocess.from_dict(json.loads(self.meta["preprocess"]))
        if precision == "int8" and not json.loads(self.meta.get("int8", "false")):
            raise InputError(f"{self.path} is an fp32 export; OpenVINO int8 runs the static int8 one "
                             "(senclip.models.static_int8)")
        self.precision = precision
        config = {"PERFORMANCE_HINT": hint,
                  "INFERENCE_PRECISION_HINT": _int8_rest(core) if precision == "int8" else OV_PRECISION[precision],
                  "INFERENCE_NUM_THREADS": os.cpu_count() or 1}
        self.hint = hint
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.queue = None
        if hint == "THROUGHPUT":
            n = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self.queue = ov.AsyncInferQueue(self.compiled, max(1, n)) if n > 1 else None
        self.device = "cpu"

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        chips = check_chips(chips)
        if len(chips) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        if self.queue is None:
            out = np.array(self.request.infer({0: chips})[0], dtype=np.float32)  # a copy: the buffer is reused
        else:
            out = self._parallel(chips)
        # unit length in fp32: under bf16 the graph's own normalisation may run in bf16 (rows ~0.3 % off)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _parallel(self, chips: np.ndarray) -> np.ndarray:
        """THROUGHPUT: the batch split over the plugin's parallel requests (one stream each)."""
        parts = [p for p in np.array_split(chips, len(self.queue)) if len(p)]
        out = [None] * len(parts)

        def done(request, i):
            out[i] = np.array(request.get_output_tensor(0).data, dtype=np.float32)

        self.queue.set_callback(done)
        for i, part in enumerate(parts):
            self.queue.start_async({0: np.ascontiguousarray(part)}, i)
        self.queue.wait_all()
        return np.concatenate(out)
