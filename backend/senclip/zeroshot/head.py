"""Zero-shot head: prompts → class embeddings, image embeddings → class probabilities, and the
rule that picks a class from them (:func:`top_class`: a tie goes to the class listed first)."""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError

CALIBRATIONS = ("none", "column-mean")
LOGIT_SCALE = 100.0  # CLIP's learned temperature saturates at 100; SenCLIP keeps it
# Probabilities this close to the top one (relative) are a tie. Which BLAS kernel numpy's OpenBLAS
# picks for the CPU changes the last bits of a cosine (measured: up to 1.3e-7 between kernels at
# D = 3..1024, i.e. 1.3e-5 in probability at logit scale 100); 1e-4 leaves ~8x room for that and
# the softmax's own rounding, and is far below anything a map shows (whole percent). So two
# classes a real image cannot tell apart tie on every CPU, not only on the ones whose kernel
# happens to round in favour of the first.
TIE_RTOL = 1e-4


def class_embeddings(text_encoder, prompt_set: dict[str, list[str]]) -> np.ndarray:
    """(K, D): per class, the mean of its L2-normalised prompt embeddings, renormalised
    (the usual CLIP prompt ensemble). All prompts go through the encoder in one batch."""
    flat = [p for prompts in prompt_set.values() for p in prompts]
    emb = np.asarray(text_encoder.encode_texts(flat), dtype=np.float32)
    out, i = [], 0
    for prompts in prompt_set.values():
        m = emb[i:i + len(prompts)].mean(axis=0)
        out.append(m / max(np.linalg.norm(m), 1e-12))
        i += len(prompts)
    return np.stack(out).astype(np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def probabilities(image_emb: np.ndarray, class_emb: np.ndarray, *, calibrate: str = "none",
                  logit_scale: float = LOGIT_SCALE, bias: np.ndarray | None = None) -> np.ndarray:
    """(N, K) class probabilities for L2-normalised image embeddings.

    ``calibrate="column-mean"`` is the SenCLIP paper's transductive step: each class column of
    the probability matrix is divided by its mean over all images of the run, then rows are
    renormalised. It uses the whole scene, so a tile's result depends on the other tiles; it is
    off by default and recorded in the output. ``bias`` (K,) is added to the logits (the few-shot
    head's; zero-shot has none).
    """
    if calibrate not in CALIBRATIONS:
        raise InputError(f"--calibrate must be one of {', '.join(CALIBRATIONS)}, got {calibrate!r}")
    logits = logit_scale * (image_emb.astype(np.float32) @ class_emb.T)
    if bias is not None:
        logits = logits + np.asarray(bias, dtype=np.float32)
    p = softmax(logits, axis=1)
    return calibrate_probabilities(p, calibrate).astype(np.float32)


def calibrate_probabilities(p: np.ndarray, calibrate: str) -> np.ndarray:
    """The calibration step of :func:`probabilities` alone, on (N, K) probabilities of all
    images of the run (so a store can be scored block by block, then calibrated once)."""
    if calibrate not in CALIBRATIONS:
        raise InputError(f"--calibrate must be one of {', '.join(CALIBRATIONS)}, got {calibrate!r}")
    if calibrate == "column-mean" and len(p):
        p = p / np.maximum(p.mean(axis=0, keepdims=True), 1e-12)
        p = p / p.sum(axis=1, keepdims=True)
    return p


def top_class(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Index of the most probable class along ``axis``: of the classes within :data:`TIE_RTOL` of
    the top probability, the one listed first. Every class decision (maps at grid and pixel
    resolution, from a store or a raster, few-shot, transductive, change) goes through here, so
    "a tie goes to the class listed first" holds whatever kernel computed the scores."""
    top = probs.max(axis=axis, keepdims=True)
    return np.argmax(probs >= top * np.float32(1 - TIE_RTOL), axis=axis)
