"""Find similar: a query (points, polygons or a text) → cosine similarity of every grid cell.

The query vector is the renormalised mean embedding of the cells the query features cover (a
point: its cell, i.e. the chip centred there; a polygon: the cells whose centres it contains),
or the text embedding of a phrase ("solar farms", through the prompts of the chosen style). The
similarity raster holds ``cos(cell, query)``; the mask marks cells at or above a threshold —
given, or by default Otsu's threshold of the scene's similarity histogram (the value that best
splits it into two groups) — and the run reports the share of the valid cells above it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError
from senclip.core.feedback import Feedback
from senclip.core.outputs import prepare_output, published_together
from senclip.embedding.store import EmbeddingStore

NODATA = -2.0
MASK_NODATA = 255


@dataclass
class SimilarResult:
    path: Path
    mask_path: Path | None
    threshold: float
    threshold_method: str
    share_above: float
    cells_above: int
    valid_cells: int
    area_above_m2: float | None
    query: dict
    model: dict


def query_vector(st: EmbeddingStore, *, query=None, text: str | None = None, chip=None, prompt_style: str = "ground",
                 backend: str = "auto", device: str = "auto", offline: bool = False,
                 feedback: Feedback | None = None, loaded_model=None) -> tuple[np.ndarray, dict]:
    """(D,) unit query vector and a description of the query: features, a text or an image chip."""
    if sum(x is not None and x != "" for x in (query, text, chip)) != 1:
        raise InputError("give exactly one query: features (--query FILE), a text (--text) or an image chip "
                         "(--chip FILE)")
    if chip:
        from senclip.tools.chipquery import chip_query_vector

        return chip_query_vector(st, chip, backend=backend, device=device, offline=offline, feedback=feedback,
                                 loaded_model=loaded_model)
    if text:
        from senclip.zeroshot.prompts import build_prompt_set
        from senclip.zeroshot.storetext import prompt_vectors, store_text_model

        prompt_set = build_prompt_set([text], style=prompt_style)
        lm = store_text_model(st, backend=backend, device=device, offline=offline, feedback=feedback,
                              loaded_model=loaded_model)
        return prompt_vectors(lm, prompt_set, feedback)[0], {"text": text, "prompts": prompt_set[text]}
    from affine import Affine
    from rasterio.crs import CRS

    from senclip.tools.vectors import feature_cells, read_features

    feats = read_features(query, CRS.from_wkt(st.meta["crs"]), what="query")
    cells = feature_cells(feats, Affine(*st.meta["grid_transform"]), st.valid.shape)
    rr = np.concatenate([r for r, _ in cells])
    cc = np.concatenate([c for _, c in cells])
    ok = st.valid[rr, cc] if len(rr) else np.zeros(0, bool)
    if not ok.any():
        raise InputError("the query features cover no valid cell of the embedding store; click or draw inside "
                         "the encoded area")
    emb = np.asarray(st.embeddings[rr[ok], cc[ok]], dtype=np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    q = emb.mean(0)
    return q / max(float(np.linalg.norm(q)), 1e-12), {"features": len(feats), "cells": int(ok.sum())}


def similarity(st: EmbeddingStore, q: np.ndarray, feedback: Feedback | None = None) -> np.ndarray:
    """(rows, cols) float32 cosine similarity to ``q``; NODATA where the store has no embedding."""
    feedback = feedback or Feedback()
    out = np.full(st.valid.shape, NODATA, dtype=np.float32)
    for r0, r1, emb in st.iter_rows(64):
        feedback.check()
        ok = st.valid[r0:r1]
        e = emb[ok].astype(np.float32)
        out[r0:r1][ok] = (e @ q) / np.maximum(np.linalg.norm(e, axis=1), 1e-12)
    return out


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut maximising the between-class variance of the histogram."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return hi
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))  # a gap gives a plateau: take its middle
    return float((edges[best[0] + 1] + edges[best[-1] + 1]) / 2)


def find_similar(store, out, *, query=None, text: str | None = None, chip=None, threshold="auto", mask_out=None,
                 prompt_style: str = "ground", backend: str = "auto", device: str = "auto", offline: bool = False,
                 overwrite: bool = False, feedback: Feedback | None = None, loaded_model=None) -> SimilarResult:
    """Write the similarity raster ``out`` (float32, grid resolution, nodata −2) and, with
    ``mask_out``, the mask (uint8: 1 at or above the threshold, 0 below, 255 nodata)."""
    from senclip.maps.gridraster import cell_area_m2, write_grid_raster

    feedback = feedback or Feedback()
    prepare_output(out, overwrite)
    if mask_out is not None:
        prepare_output(mask_out, overwrite)
    st = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
    q, described = query_vector(st, query=query, text=text, chip=chip, prompt_style=prompt_style, backend=backend,
                                device=device, offline=offline, feedback=feedback, loaded_model=loaded_model)
    sim = similarity(st, q, feedback)
    values = sim[st.valid]
    if threshold in (None, "", "auto"):
        thr, how = otsu(values), "otsu"
    else:
        try:
            thr, how = float(threshold), "given"
        except (TypeError, ValueError):
            raise InputError(f"--threshold must be a number (cosine similarity) or 'auto', got {threshold!r}") from None
    above = int((values >= thr).sum())
    tags = {"SENCLIP_QUERY": described, "SENCLIP_THRESHOLD": thr, "SENCLIP_THRESHOLD_METHOD": how,
            "SENCLIP_MODEL": st.meta["model"].get("model_id"), "SENCLIP_STORE": str(st.path)}
    mask_path = None
    with published_together() as record:
        path = write_grid_raster(out, sim, st.meta, nodata=NODATA, names=["cosine similarity"], tags=tags,
                                 overwrite=overwrite)
        record(path)
        if mask_out is not None:
            mask = np.where(st.valid, (sim >= thr).astype(np.uint8), MASK_NODATA).astype(np.uint8)
            mask_path = write_grid_raster(mask_out, mask, st.meta, nodata=MASK_NODATA, names=["similar"],
                                          tags=tags, overwrite=overwrite)
    area = cell_area_m2(st.meta)
    return SimilarResult(path, mask_path, thr, how, above / max(len(values), 1), above, int(len(values)),
                         None if area is None else above * area, described, st.meta["model"])
