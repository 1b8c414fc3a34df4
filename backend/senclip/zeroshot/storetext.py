"""A store's own model for the embedding tools: the one step of them that needs weights.

A store records its model (id, checkpoint path, checksum); tools that turn prompts into vectors
(few-shot with prompts, text queries, class changes) use that model's text tower, an image-chip
query (:mod:`senclip.tools.chipquery`) its image tower. Tools that work from examples alone never call
this and need no weights at all.
"""
from __future__ import annotations

import warnings

import numpy as np

from senclip.core.feedback import Feedback
from senclip.embedding.store import EmbeddingStore
from senclip.zeroshot.head import class_embeddings


def store_model_args(meta: dict) -> dict:
    """``load_model`` arguments naming the model a store was made with."""
    rec = meta["model"]
    if str(rec.get("model_id", "")).startswith("checkpoint:"):
        return {"model": None, "checkpoint": meta.get("checkpoint_path")}
    return {"model": rec["model_id"], "checkpoint": None}


def store_text_model(st: EmbeddingStore, *, backend: str = "auto", device: str = "auto", offline: bool = False,
                     feedback: Feedback | None = None, loaded_model=None):
    """The store's model (checked against the store's checksum): its text tower for prompts, its
    image tower for a chip query."""
    lm = loaded_model
    if lm is None:
        from senclip.models.loading import load_model

        lm = load_model(backend=backend, device=device, offline=offline, feedback=feedback or Feedback(),
                        **store_model_args(st.meta))
    st.check_model(lm.record())
    return lm


def prompt_vectors(lm, prompt_set: dict[str, list[str]], feedback: Feedback | None = None) -> np.ndarray:
    """(K, D) class embeddings of a prompt set; prompt warnings (truncation) go to ``feedback``."""
    feedback = feedback or Feedback()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb = class_embeddings(lm.text, prompt_set)
    for w in caught:
        feedback.warning(str(w.message))
    return emb
