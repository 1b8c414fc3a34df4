"""Zero-shot head: prompts → class embeddings, image embeddings → class probabilities, and the
rule that picks a class from them (:func:`top_class`: a tie goes to the class listed first)."""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError

CALIBRATIONS = ("none", "column-mean", "shares")
LOGIT_SCALE = 100.0  # CLIP's learned temperature saturates at 100; SenCLIP keeps it
# Probabilities this close to the top one (relative) are a tie. Which BLAS kernel numpy's OpenBLAS
# picks for the CPU changes the last bits of a cosine (measured: up to 1.3e-7 between kernels at
# D = 3..1024, i.e. 1.3e-5 in probability at logit scale 100); 1e-4 leaves ~8x room for that and
# the softmax's own rounding, and is far below anything a map shows (whole percent). So two
# classes a real image cannot tell apart tie on every CPU, not only on the ones whose kernel
# happens to round in favour of the first.
TIE_RTOL = 1e-4
DROP_SHARE = 0.1  # a class whose estimated share of the scene falls below DROP_SHARE / K is dropped
SHARES_ITERATIONS = 100  # EM steps of the "shares" calibration (it converges in 10-40)


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
    renormalised. It assumes every class holds an equal share of the scene, and breaks where it
    does not: a class absent from the scene has a tiny column mean, so it is boosted the most
    (measured in bench/results/transductive-realistic.md: one class of 19 present, 89 → 15 %).
    ``calibrate="shares"`` instead estimates each class's share of the scene and drops the classes
    it lacks (:func:`class_shares`): it gains a little where classes are missing and costs nothing
    where all are there. Both use the whole scene, so a tile's result depends on the other tiles; they are off by
    default and recorded in the output. ``bias`` (K,) is added to the logits (the few-shot head's;
    zero-shot has none).
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
    if calibrate == "shares" and len(p):
        p = class_shares(p)[0]
    return p


def top_class(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Index of the most probable class along ``axis``: of the classes within :data:`TIE_RTOL` of
    the top probability, the one listed first. Every class decision (maps at grid and pixel
    resolution, from a store or a raster, few-shot, transductive, change) goes through here, so
    "a tie goes to the class listed first" holds whatever kernel computed the scores."""
    top = probs.max(axis=axis, keepdims=True)
    return np.argmax(probs >= top * np.float32(1 - TIE_RTOL), axis=axis)


def class_shares(p: np.ndarray, drop: float = DROP_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities over the classes kept (N, K), the scene's estimated class shares π (K,)).

    The shares come from EM under label shift (Saerens, Latinne & Decaestecker, Neural Computation
    14, 2002), tempered: q_ik ∝ p_ik π_k^γ, π_k = mean_i q_ik until π stops moving, γ = ½. A class
    whose share falls below ``drop``/K is dropped (π_k = 0) and the EM goes on without it; the
    largest class is always kept. The answer is the zero-shot posterior renormalised over the kept
    classes: only the classes the scene lacks are removed, the others keep their zero-shot odds.
    Why tempered, and why not re-weigh the kept classes by π: on the realistic benchmark
    (bench/results/transductive-realistic.md) the plain EM (γ = 1) amplifies the texts' biases, and
    re-weighing by π cost 4-15 points with every class present; this variant never cost more than
    half a point on average in any condition measured."""
    p = np.asarray(p, dtype=np.float32)
    k = p.shape[1]
    pi = np.full(k, 1.0 / k)
    for _ in range(SHARES_ITERATIONS):
        new = _reweigh(p, np.sqrt(pi)).mean(axis=0, dtype=np.float64)
        low = new < drop / k
        low[np.argmax(new)] = False
        new[low] = 0.0
        new /= new.sum()
        done = np.abs(new - pi).max() < 1e-6
        pi = new
        if done:
            break
    return _reweigh(p, (pi > 0) / float((pi > 0).sum())), pi.astype(np.float32)


def _reweigh(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """p_ik w_k, rows renormalised; a row with nothing left (all its mass on dropped classes, to
    float32 precision) takes w itself."""
    q = p * w.astype(np.float32)
    total = q.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    q[empty] = w.astype(np.float32)
    total[empty] = 1.0
    return q / total
