"""Transductive class probabilities of a whole embedding store (``--transductive``).

The glue between a store and :mod:`senclip.zeroshot.transductive`: the valid cells' embeddings are read in
row blocks into one float32 unit-row array (the only copy; 0.96 GB for a 470k-cell tile at
D = 512), the spatial edges come from the store's grid (:mod:`senclip.zeroshot.spatial`), the solver runs
once over the scene, and the probabilities go back onto the grid.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError

SPATIAL = ("8", "4", "none")  # resources/options.json "spatial": the first is the default
READ_ROWS = 32
NORM_ROWS = 65536  # cells normalised at once (128 MB of float32 at D = 512)


def store_transduce(st, class_emb: np.ndarray, *, spatial: str = "8", support=None, bias=None, feedback=None):
    """((rows, cols, K) probabilities, 0 where invalid; the solver's record) for a store.

    ``support``: (rows, cols, labels) of labelled grid cells (few-shot examples), fixed to their
    class. ``spatial``: "8" / "4" grid-neighbour edges, or "none" (the paper's feature kNN alone).
    ``bias``: with a linear classifier's class vectors (few-shot), its offsets (see ``transduce``)."""
    from senclip.zeroshot.spatial import grid_edges
    from senclip.zeroshot.transductive import solve

    if spatial not in SPATIAL:
        raise InputError(f"--spatial must be one of {', '.join(SPATIAL)}, got {spatial!r}")
    valid = np.asarray(st.valid, dtype=bool)
    rows, cols = valid.shape
    feats = _valid_unit_rows(st, valid, feedback)
    edges = None if spatial == "none" else grid_edges(valid, feats, connectivity=int(spatial))
    sol = solve(feats, class_emb, edges=edges, support=_support_index(valid, support), bias=bias,
                feedback=feedback)
    probs = np.zeros((rows, cols, len(class_emb)), dtype=np.float32)
    probs[valid] = sol.probs
    return probs, dict(sol.record, spatial=spatial)


def _valid_unit_rows(st, valid: np.ndarray, feedback) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of the valid cells, row-major."""
    n = int(valid.sum())
    if n < 2:
        raise InputError(f"--transductive needs at least 2 valid cells; the store has {n}")
    out = np.empty((n, int(st.meta["dim"])), dtype=np.float32)
    at = 0
    for r0, r1, emb in st.iter_rows(READ_ROWS):
        if feedback is not None:
            feedback.check()
        block = emb[valid[r0:r1]]
        out[at:at + len(block)] = block
        at += len(block)
    for a in range(0, n, NORM_ROWS):  # in blocks: np.linalg.norm over all rows makes an (N, D) temporary
        block = out[a:a + NORM_ROWS]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        if (norms == 0).any():
            raise InputError("the store holds all-zero embeddings on valid cells; re-run 'senclip embed'")
        block /= norms[:, None]
    return out


def _support_index(valid: np.ndarray, support):
    """Grid cells (rows, cols, labels) → (solver row indices, labels); None stays None."""
    if support is None:
        return None
    rr, cc, lab = (np.asarray(a) for a in support)
    number = np.full(valid.shape, -1, dtype=np.int64)
    number[valid] = np.arange(int(valid.sum()))
    idx = number[rr, cc]
    keep = idx >= 0
    return idx[keep], lab[keep].astype(np.int64)
