"""Prompt selection (paper eq. 6-7): keep the K prompts of each class that are most specific to it.

score(p) = mean similarity of p to its own class's prompts / mean similarity of p to all prompts.
Two similarity sources:
  * ``text``: cosine between prompt text embeddings, mapped to [0, 1] so the ratio stays
    meaningful. Uses no images at all (inductive).
  * ``image-profile`` (the reference code's variant): each prompt is described by its similarities
    to the *test* images (``sim/2 + 1``, normalised per image over prompts); prompt-prompt
    similarity is the dot product of those profiles. Transductive: it looks at the test set.
Self-similarity is included in both means, as in the reference.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError

METHODS = ("text", "image-profile")


def ratio_scores(sim: np.ndarray, cls: np.ndarray) -> np.ndarray:
    own = np.array([sim[p, cls == cls[p]].mean() for p in range(len(cls))])
    return own / (sim.mean(axis=1) + 1e-6)


def text_scores(prompt_emb: np.ndarray, cls: np.ndarray) -> np.ndarray:
    return ratio_scores((prompt_emb @ prompt_emb.T + 1.0) / 2.0, cls)


def image_profile_scores(image_prompt_sim: np.ndarray, cls: np.ndarray) -> np.ndarray:
    m = (image_prompt_sim / 2.0 + 1.0).T  # (P, N)
    m = m / (m.sum(axis=0, keepdims=True) + 1e-6)
    return ratio_scores(m @ m.T, cls)


def select_prompts(prompts: dict[str, list[str]], scores: np.ndarray, k: int) -> dict[str, list[str]]:
    """Top-``k`` prompts per class by score (a class with fewer prompts keeps all of them)."""
    if k < 1:
        raise InputError(f"--select-k {k} must be at least 1")
    out, i = {}, 0
    for c, ps in prompts.items():
        s = scores[i:i + len(ps)]
        keep = np.argsort(-s, kind="stable")[:k]
        out[c] = [ps[j] for j in keep]
        i += len(ps)
    return out


def class_index(prompts: dict[str, list[str]]) -> np.ndarray:
    return np.concatenate([np.full(len(ps), ci) for ci, ps in enumerate(prompts.values())])
