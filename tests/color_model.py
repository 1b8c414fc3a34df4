"""A transparent stand-in encoder for pipeline tests: embeddings are chip colours.

Not a model: it lets tests check geometry, tiling, nodata handling and the class map against
answers known in advance (green chips must become the "green" class, and exactly where they are),
which a random CLIP could never give. Real encoders are tested in test_encoders / test_onnx.
"""
from __future__ import annotations

import numpy as np

from senclip.models.encoders.base import LoadedModel
from senclip.models.registry import Preprocess

COLORS = {"red": (1.0, -1.0, -1.0), "green": (-1.0, 1.0, -1.0), "blue": (-1.0, -1.0, 1.0)}


class ColorImageEncoder:
    backend, device, embed_dim = "test", "cpu", 3

    def __init__(self):
        self.calls = 0

    def encode_chips(self, chips):
        self.calls += 1
        v = chips.astype(np.float32).mean(axis=(2, 3)) / 255.0
        v = v - v.mean(axis=1, keepdims=True)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


class ColorTextEncoder:
    context_length, embed_dim = 77, 3

    def encode_texts(self, texts):
        out = []
        for t in texts:
            hit = [c for c in COLORS if c in t.lower()]
            v = np.array(COLORS[hit[0]] if hit else (0.0, 0.0, 0.0)) + 1e-3
            out.append(v / np.linalg.norm(v))
        return np.array(out, dtype=np.float32)


def color_model() -> LoadedModel:
    return LoadedModel(model_id="test:color", arch="color", checksum="color-v1", preprocess=Preprocess(),
                       untrained=False, backend="test", device="cpu", image=ColorImageEncoder(),
                       text=ColorTextEncoder())
