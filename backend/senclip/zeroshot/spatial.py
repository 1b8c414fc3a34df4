"""Spatial graph edges of a store's grid: the neighbours a raster gives for free.

TransCLIP's Laplacian term pulls feature-space neighbours towards one class. On a map the cells
next to each other are neighbours too, and land cover comes in patches, so the same term over
4- or 8-neighbour grid edges removes salt-and-pepper labels. Each edge is weighted by how alike
the two cells' embeddings are (contrast-sensitive, as in a Potts/CRF smoothness term), so a
field border, where the embeddings change, is pulled across far less than the inside of a field:

    w_ij = weight · c_ij / mean(c),   c_ij = exp(−(1 − cos(f_i, f_j)) / h),
    h = mean of (1 − cos) over all edges

so a neighbour weighs ``weight`` nats on average (more inside a patch, less across a border; h
adapts to the scene) and a whole 8-neighbourhood 8 × ``weight``. That is far more than the
feature-kNN term (about one nat per cell, as the paper sets it): zero-shot errors are confident
(softmax at temperature 100), and an isolated wrong cell is only outvoted by several nats. The
numbers are in docs/transductive.md.
Cells are numbered like the solver's rows: valid cells in row-major order.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError
from senclip.zeroshot.kernels import pair_dots

CONNECTIVITIES = (4, 8)
_OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}  # half of them; the graph is symmetrised


DEFAULT_CONNECTIVITY = 8
DEFAULT_WEIGHT = 1.0


def grid_edges(valid: np.ndarray, feats: np.ndarray, *, connectivity: int = DEFAULT_CONNECTIVITY,
               weight: float = DEFAULT_WEIGHT):
    """(N, N) symmetric scipy COO matrix of spatial edges between valid cells of the (rows, cols) ``valid`` grid;
    ``feats`` are their unit embeddings (N, D), row-major over the valid cells."""
    from scipy import sparse

    if weight < 0:
        raise InputError(f"spatial weight must be ≥ 0, got {weight!r}")
    if connectivity not in CONNECTIVITIES:
        raise InputError(f"spatial connectivity must be 4 or 8, got {connectivity!r}")
    valid = np.asarray(valid, dtype=bool)
    n = int(valid.sum())
    if len(feats) != n:
        raise InputError(f"grid_edges needs one embedding per valid cell: {n} valid cells, {len(feats)} rows")
    i, j = neighbour_pairs(valid, connectivity)
    gap = 1.0 - pair_dots(feats, i, j)
    h = max(float(gap.mean()), 1e-6) if len(gap) else 1.0
    c = np.exp(-gap / np.float32(h))
    w = (np.float32(weight) * c / max(float(c.mean()), 1e-12)).astype(np.float32)
    both = (np.concatenate([i, j]), np.concatenate([j, i]))
    return sparse.coo_matrix((np.concatenate([w, w]), both), shape=(n, n))


def neighbour_pairs(valid: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) solver indices of every neighbouring pair of valid cells, each pair once."""
    rows, cols = valid.shape
    number = np.full(valid.shape, -1, dtype=np.int32)  # int32: a tile's 4-8M pairs in half the memory
    number[valid] = np.arange(int(valid.sum()), dtype=np.int32)
    out_i, out_j = [], []
    for dr, dc in _OFFSETS[connectivity]:
        c0, c1 = max(0, -dc), cols - max(0, dc)  # columns whose partner (r + dr, c + dc) exists
        a, b = number[0:rows - dr, c0:c1], number[dr:rows, c0 + dc:c1 + dc]
        ok = (a >= 0) & (b >= 0)
        out_i.append(a[ok])
        out_j.append(b[ok])
    return np.concatenate(out_i), np.concatenate(out_j)
