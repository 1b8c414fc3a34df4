"""What the pipeline needs from an encoder, whatever runs it (PyTorch or ONNX Runtime).

Image encoders take raw 8-bit RGB chips at tile size and do resizing and normalisation
themselves: that keeps the preprocessing recipe inside the model (and inside the exported ONNX
graph), so both backends see identical input and a GPU encoder can resize on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from senclip.models.registry import Preprocess


class ImageEncoder(Protocol):
    backend: str  # "torch" | "onnx"
    device: str  # what actually runs it, e.g. "cpu", "cuda:0"
    embed_dim: int

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        """uint8 array (N, 3, h, w), RGB → float32 (N, D), rows L2-normalised."""


class TextEncoder(Protocol):
    context_length: int
    embed_dim: int

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Prompts → float32 (N, D), rows L2-normalised. Over-long prompts are truncated with a
        :class:`~senclip.core.errors.SenclipWarning`, never an error; any Unicode is accepted."""


@dataclass
class LoadedModel:
    """An image and a text encoder from one checkpoint, plus what outputs must record."""

    model_id: str  # registry id, or "checkpoint:<file name>"
    arch: str  # open_clip architecture name
    checksum: str  # sha256 of the weight file ("untrained:seed0" for random weights)
    preprocess: Preprocess
    untrained: bool
    backend: str
    device: str
    image: ImageEncoder | None  # None: loaded for re-prompting only (text encoder alone)
    text: TextEncoder
    precision: str = "fp32"  # what the image encoder computes in: fp32 | bf16 | int8
    engine: str = ""  # what runs it: torch | onnxruntime | openvino
    precision_reason: str = ""  # why --precision auto chose it, for the log and the run record

    @property
    def embed_dim(self) -> int:
        return (self.image or self.text).embed_dim

    def precision_record(self) -> dict:
        """How the image embeddings were computed; stores and GeoTIFF tags carry it."""
        return {"precision": self.precision, "engine": self.engine or self.backend, "reason": self.precision_reason}

    def record(self) -> dict:
        """The identity an embedding store is bound to and that output tags carry."""
        return {"model_id": self.model_id, "arch": self.arch, "checksum": self.checksum,
                "preprocess": self.preprocess.to_dict(), "untrained": self.untrained,
                "embed_dim": self.embed_dim}


def check_chips(chips) -> np.ndarray:
    """The one input contract of every image encoder: uint8 (N, 3, h, w), C-contiguous."""
    chips = np.asarray(chips)
    if chips.ndim != 4 or chips.shape[1] != 3 or chips.dtype != np.uint8:
        raise ValueError(f"chips must be uint8 (N, 3, h, w), got {chips.dtype} {chips.shape}")
    return np.ascontiguousarray(chips)
