"""k nearest neighbours by cosine among a scene's embeddings (the transductive solver's graph).

Input: float32 unit rows (N, D). Output: (N, k) neighbour indices and their cosines in the full
D; a cell is never its own neighbour; -1 / 0 pad where fewer than k exist.

- ``exact``: block-wise brute force, N² D flops: right up to ``EXACT_MAX`` cells (4 s for 27k
  cells, 10 s for 40k on two Zen 4 cores), hopeless for a tile store (1M cells: ~5·10¹⁴ flops).
  ``EXACT_MAX`` is 40k so that the benchmark sets of the published tables (EuroSAT 27k images,
  RESISC45 31.5k, PatternNet 30.4k, RSICB128 36.7k) get the published, exact graph.
- Above that the search runs on the top ``PCA_DIM`` principal components (from a 20k-cell sample),
  where L2 order approximates cosine order for unit rows; the found pairs' cosines are then
  recomputed in the full D. Two indexes:
  - ``tree``: numpy alone: balanced random-hyperplane trees (median splits, exact search in each
    leaf of ≤ ``LEAF`` cells), two merged, then one neighbour-of-neighbour round (the NN-descent
    idea). For 1M × 512 on two cores: 12 s for the graph (bench/results/transductive-1M.md).
  - ``faiss``: faiss-cpu's IVF-Flat index, optional and imported only here; only on request, as it
    measured slower here (71 s for the same graph, bench/results/transductive-1M-faiss.md; HNSW
    builds, faiss's and hnswlib's, were slower still: docs/transductive.md).

``auto`` (the default) is exact up to ``EXACT_MAX`` cells, else tree: no extra library is needed,
and the run record names the index that ran.
"""
from __future__ import annotations

import numpy as np

from senclip.core.errors import InputError
from senclip.zeroshot.kernels import pair_dots

EXACT_MAX = 40000
PCA_DIM = 64
PCA_SAMPLE = 20000
LEAF = 256
METHODS = ("auto", "exact", "faiss", "tree")
_BLOCK_FLOATS = 1 << 25  # (queries × candidates) similarities held at once: 128 MB
_ROWS = 65536


def feature_knn(x: np.ndarray, k: int, *, method: str = "auto", seed: int = 0, feedback=None):
    """(idx, sim): the ``k`` most cosine-similar other rows of unit rows ``x`` (N, D)."""
    if method not in METHODS:
        raise InputError(f"kNN method must be one of {', '.join(METHODS)}, got {method!r}")
    n = len(x)
    k = int(min(k, n - 1))
    if k <= 0:
        return np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    chosen = resolve(method, n)
    if feedback is not None:
        feedback.info(f"feature kNN (k = {k}) over {n} cells: {chosen}")
    if chosen == "exact":
        return exact_knn(x, k, feedback=feedback)
    y = project(x, seed=seed)
    idx = faiss_knn(y, k) if chosen == "faiss" else tree_knn(y, k, seed=seed, feedback=feedback)
    return idx, cosines(x, idx)


def resolve(method: str, n: int) -> str:
    """Which index ``method`` means for ``n`` cells here (``auto``: see the module docstring)."""
    if method != "auto":
        return method
    return "exact" if n <= EXACT_MAX else "tree"


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def project(x: np.ndarray, dim: int = PCA_DIM, seed: int = 0) -> np.ndarray:
    """(N, dim) float32: centred rows on the top principal axes of a random sample."""
    if x.shape[1] <= dim:
        return np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(len(x), min(len(x), PCA_SAMPLE), replace=False))].astype(np.float64)
    mean = sample.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((sample - mean).T))
    axes = vecs[:, ::-1][:, :dim].astype(np.float32)
    out = np.empty((len(x), dim), dtype=np.float32)
    for a in range(0, len(x), _ROWS):
        out[a:a + _ROWS] = (x[a:a + _ROWS] - mean.astype(np.float32)) @ axes
    return out


def cosines(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Full-D cosine of every (i, idx[i, j]) pair (0 where idx is -1)."""
    nb = np.maximum(idx, 0)
    rows = np.repeat(np.arange(len(idx), dtype=np.int64), idx.shape[1])
    out = pair_dots(x, rows, nb.ravel()).reshape(idx.shape)
    out[idx < 0] = 0.0
    return out


def _topk(score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise k largest of ``score``, in descending order (``score`` is overwritten). Small k:
    k argmax passes, several times faster than a row-wise argpartition."""
    if k <= 8:
        rows = np.arange(len(score))
        idx = np.empty((len(score), k), dtype=np.int64)
        val = np.empty((len(score), k), dtype=score.dtype)
        for j in range(k):
            idx[:, j] = score.argmax(axis=1)
            val[:, j] = score[rows, idx[:, j]]
            score[rows, idx[:, j]] = -np.inf
        return idx, val
    part = np.argpartition(-score, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(score, part, axis=1)
    order = np.argsort(-vals, axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def exact_knn(x: np.ndarray, k: int, *, feedback=None):
    """Brute-force cosine kNN of unit rows, queries in blocks; self excluded."""
    n = len(x)
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    step = max(1, _BLOCK_FLOATS // n)
    for a in range(0, n, step):
        if feedback is not None:
            feedback.check()
        b = min(n, a + step)
        s = x[a:b] @ x.T
        s[np.arange(b - a), np.arange(a, b)] = -np.inf  # never one's own neighbour
        idx[a:b], sim[a:b] = _topk(s, k)
    return idx, sim


def faiss_knn(y: np.ndarray, k: int) -> np.ndarray:
    """faiss IVF-Flat (L2) on the projected rows: √N lists trained on 32 cells per list, 4 probed;
    k + 1 answers asked for, the cell itself dropped."""
    try:
        import faiss
    except ImportError as exc:
        raise InputError("kNN method 'faiss' needs faiss-cpu (pip install faiss-cpu); or use the 'tree' method") \
            from exc
    n, d = y.shape
    nlist = max(1, min(int(np.sqrt(n)), n // 32))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    index.cp.niter = 10
    rng = np.random.default_rng(0)
    index.train(y[np.sort(rng.choice(n, min(n, 32 * nlist), replace=False))])
    index.add(y)
    index.nprobe = min(nlist, 4)
    _, idx = index.search(y, k + 1)
    return _drop_self(idx.astype(np.int64), k)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """From k + 1 answers per row, the first k that are not the row itself (-1 padded)."""
    keep = (idx != np.arange(len(idx))[:, None]) & (idx >= 0)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    out = np.take_along_axis(idx, order, axis=1)
    out[~np.take_along_axis(keep, order, axis=1)] = -1
    return out


def tree_knn(y: np.ndarray, k: int, *, trees: int = 2, seed: int = 0, feedback=None) -> np.ndarray:
    """Approximate L2 kNN with numpy alone: ``trees`` balanced random-hyperplane trees (exact
    search in each leaf), merged, then one neighbour-of-neighbour round."""
    rng = np.random.default_rng(seed)
    n = len(y)
    sq = np.einsum("ij,ij->i", y, y)
    best_i = np.full((n, k), -1, dtype=np.int64)
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    for _ in range(trees):
        for leaf in _leaves(y, rng, feedback):
            yl = y[leaf]
            d2 = sq[leaf][:, None] + sq[leaf][None, :] - 2 * (yl @ yl.T)
            np.fill_diagonal(d2, np.inf)
            kk = min(k, len(leaf) - 1)
            i, v = _topk(-d2, kk)
            i, v = leaf[i], -v
            if kk < k:
                i = np.pad(i, ((0, 0), (0, k - kk)), constant_values=-1)
                v = np.pad(v, ((0, 0), (0, k - kk)), constant_values=np.inf)
            best_i[leaf], best_d[leaf] = _merge(best_i[leaf], best_d[leaf], i, v, k)
    return _refine(y, sq, best_i, best_d, k, feedback)


def _leaves(y: np.ndarray, rng, feedback):
    """Index arrays of balanced leaves: each node is split by the hyperplane between two random
    members, at the median of the projections (so both halves are the same size)."""
    stack = [np.arange(len(y))]
    while stack:
        node = stack.pop()
        if len(node) <= LEAF:
            yield node
            continue
        if feedback is not None:
            feedback.check()
        a, b = rng.choice(node, 2, replace=False)
        proj = _projections(y, node, y[a] - y[b])
        half = len(node) // 2
        order = np.argpartition(proj, half)
        stack += [node[order[:half]], node[order[half:]]]


def _projections(y: np.ndarray, node: np.ndarray, v: np.ndarray) -> np.ndarray:
    """y[node] @ v in row blocks: near the root ``node`` is most of the scene, and gathering all of
    its rows at once would copy the whole projected array (256 MB for 1M cells)."""
    out = np.empty(len(node), dtype=np.float32)
    for a in range(0, len(node), _ROWS):
        out[a:a + _ROWS] = y[node[a:a + _ROWS]] @ v
    return out


def _merge(i1, d1, i2, d2, k: int):
    """Row-wise union of two candidate lists (distances), duplicates removed, best k kept."""
    i = np.concatenate([i1, i2], axis=1)
    d = np.concatenate([d1, d2], axis=1)
    order = np.argsort(i, axis=1, kind="stable")
    i, d = np.take_along_axis(i, order, axis=1), np.take_along_axis(d, order, axis=1)
    dup = np.zeros(i.shape, dtype=bool)
    dup[:, 1:] = (i[:, 1:] == i[:, :-1]) & (i[:, 1:] >= 0)
    d = np.where(dup | (i < 0), np.inf, d)
    top = np.argsort(d, axis=1, kind="stable")[:, :k]
    i, d = np.take_along_axis(i, top, axis=1), np.take_along_axis(d, top, axis=1)
    i[~np.isfinite(d)] = -1
    return i, d


def _refine(y, sq, idx, dist, k: int, feedback, rows: int = 32768) -> np.ndarray:
    """One round: every cell also tries its neighbours' neighbours (k² candidates, exact L2)."""
    n = len(idx)
    out = idx.copy()
    for a in range(0, n, rows):
        if feedback is not None:
            feedback.check()
        b = min(n, a + rows)
        nb = idx[a:b]
        cand = np.where(nb[:, :, None] >= 0, idx[np.maximum(nb, 0)], -1).reshape(b - a, -1)
        cand[cand == np.arange(a, b)[:, None]] = -1
        c = np.maximum(cand, 0)
        d2 = sq[a:b, None] + sq[c] - 2 * np.einsum("id,ijd->ij", y[a:b], y[c])
        d2 = np.where(cand >= 0, d2, np.inf).astype(np.float32)
        out[a:b], _ = _merge(nb, dist[a:b], cand, d2, k)
    return out
