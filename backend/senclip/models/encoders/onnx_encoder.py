"""ONNX Runtime encoders: the backend for machines (and QGIS set-ups) without torch.

Imports only numpy and onnxruntime (plus the torch-free tokenizer). The model's identity and
preprocessing recipe come from the files' own metadata, written by :mod:`senclip.models.onnx_export`.
"""
from __future__ import annotations

import json
import os
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from senclip.core.errors import BackendUnavailableError, InputError, SenclipWarning
from senclip.models.registry import Preprocess
from senclip.models.encoders.base import check_chips
from senclip.models.encoders.tokenizer import get_tokenizer, truncation_warning
from senclip.core.outputs import ONNX_IMAGE_FILE as IMAGE_FILE, ONNX_TEXT_FILE as TEXT_FILE


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailableError(
            "the onnx backend needs ONNX Runtime: pip install onnxruntime (or onnxruntime-gpu for CUDA)") from None
    return onnxruntime


def cuda_available() -> bool:
    """Whether this onnxruntime build has the CUDA provider (``--device auto`` then uses it)."""
    try:
        return "CUDAExecutionProvider" in _ort().get_available_providers()
    except BackendUnavailableError:
        return False


CUDA_HELP = ("pip install 'onnxruntime-gpu[cuda,cudnn]' in place of onnxruntime (the backend's extra "
             "light-cuda; docs/install.md), or use --device cpu or auto")


def _providers(ort, device: str) -> list:
    """Execution providers for ``device``: CUDA first where asked for (``cuda``, ``cuda:N``) or where
    ``auto`` finds it; a CUDA request this onnxruntime cannot serve is an error, never a quiet CPU run."""
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    available = ort.get_available_providers()
    if device == "cpu" or "CUDAExecutionProvider" not in available:
        if device.startswith("cuda"):
            raise BackendUnavailableError(
                f"--device {device} but this onnxruntime has no CUDAExecutionProvider (it has "
                f"{', '.join(available)}): {CUDA_HELP}")
        return ["CPUExecutionProvider"]
    if hasattr(ort, "preload_dlls"):  # onnxruntime-gpu >= 1.21: CUDA/cuDNN from NVIDIA's pip wheels
        ort.preload_dlls()
    cuda = {"device_id": int(device[5:])} if device.startswith("cuda:") else {}
    return [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]


def _session(path: Path, device: str):
    ort = _ort()
    if not path.is_file():
        raise InputError(f"ONNX model {path} does not exist; export it with `senclip models export-onnx`")
    providers = _providers(ort, device)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    # Memory (docs/performance.md): with the memory pattern ORT keeps a plan and its buffers per input
    # shape (each last, shorter batch adds one: +140 MB per shape for ViT-B/32), and its CPU arena never
    # gives memory back. Both off: the image session peaks 628 MB instead of 832+, at the same speed.
    opts.enable_mem_pattern = False
    opts.enable_cpu_mem_arena = False
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise InputError(f"ONNX model {path} cannot be loaded ({str(e).splitlines()[0][:200]}); "
                         "export it again with `senclip models export-onnx`") from None
    on_cuda = sess.get_providers()[0] == "CUDAExecutionProvider"
    if device.startswith("cuda") and not on_cuda:  # ORT falls back to the CPU with only a log line
        raise BackendUnavailableError(
            f"--device {device}: ONNX Runtime's CUDAExecutionProvider could not start (no NVIDIA driver, "
            f"or CUDA/cuDNN libraries missing; ONNX Runtime's log above says which): {CUDA_HELP}")
    return sess, ("cuda" if on_cuda else "cpu")


def read_metadata(path: str | Path) -> dict:
    """The ``senclip.*`` metadata of an exported file, keys without the prefix."""
    sess, _ = _session(Path(path), "cpu")
    return _meta(sess, Path(path))


def _meta(sess, path: Path) -> dict:
    raw = sess.get_modelmeta().custom_metadata_map
    meta = {k[len("senclip."):]: v for k, v in raw.items() if k.startswith("senclip.")}
    for key in ("model_id", "checksum", "preprocess", "embed_dim", "context_length"):
        if key not in meta:
            raise InputError(f"{path} lacks the senclip.{key} metadata: it was not written by "
                             "`senclip models export-onnx`; export it again")
    return meta


class OnnxImageEncoder:
    backend = "onnx"
    engine = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        self.path = Path(path)
        self.session, self.device = _session(self.path, device)
        self.meta = _meta(self.session, self.path)
        self.embed_dim = int(self.meta["embed_dim"])
        self.preprocess = Preprocess.from_dict(json.loads(self.meta["preprocess"]))
        self.precision = "int8" if json.loads(self.meta.get("int8", "false")) else "fp32"
        self._input = self.session.get_inputs()[0].name

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        chips = check_chips(chips)
        if len(chips) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        out = self.session.run(None, {self._input: chips})[0]
        return np.asarray(out, dtype=np.float32)


class OnnxTextEncoder:
    """The text tower, its session made at the first use: a classify run encodes its prompts after the
    scene, when the image tower is released, so the two (350 + 250 MB for ViT-B/32) never sit in memory
    together (docs/performance.md, memory). A missing file still fails at once."""

    backend = "onnx"

    def __init__(self, path: str | Path, device: str = "auto", batch_size: int = 256) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"ONNX model {self.path} does not exist; export it with `senclip models export-onnx`")
        self._device = device
        self.batch_size = batch_size

    @cached_property
    def _opened(self) -> tuple:
        """(session, device that runs it), made at the first use."""
        return _session(self.path, self._device)

    session = property(lambda self: self._opened[0])
    device = property(lambda self: self._opened[1])

    @cached_property
    def meta(self) -> dict:
        return _meta(self.session, self.path)

    @cached_property
    def tokenizer(self):
        return get_tokenizer(self.context_length)

    @cached_property
    def _input(self) -> str:
        return self.session.get_inputs()[0].name

    embed_dim = property(lambda self: int(self.meta["embed_dim"]))
    context_length = property(lambda self: int(self.meta["context_length"]))
    # exports of format 3+ take any sequence length: padding after the longest prompt is cut
    trim = property(lambda self: json.loads(self.meta.get("text_trim", "false")))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.embed_dim), np.float32)
        tokens, truncated = self.tokenizer(texts)
        if truncated:
            warnings.warn(truncation_warning(texts, truncated, self.context_length), SenclipWarning, stacklevel=2)
        out = []
        for i in range(0, len(texts), self.batch_size):
            part = tokens[i:i + self.batch_size]
            if self.trim:
                part = np.ascontiguousarray(part[:, :max(2, int((part != 0).sum(1).max()))])
            out.append(self.session.run(None, {self._input: part})[0])
        return np.concatenate(out).astype(np.float32, copy=False)
