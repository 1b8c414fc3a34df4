"""Compiled inner loops of the transductive solver (numba), each with a numpy/scipy twin.

Why: on a full tile (0.5-1M cells) the solver's time goes to loops that numpy can only write with
large temporaries or through scipy's single-threaded sparse product: the z-step (a sparse product
over ~14M graph edges, then a row softmax, 55 times a run) and the cosines of given cell pairs
(every graph edge's weight, gathering 2 KB rows twice per pair). numba compiles each to one
parallel pass with no temporaries: on two cores the z-step runs about 3x faster than scipy's
product plus numpy's softmax (numbers in docs/transductive.md). The first call on a machine compiles
them (about 2 s) into numba's on-disk cache; later runs load them in a fraction of a second.

The twins are the reference: they run where numba is missing or ``SENCLIP_NUMBA=0``, and the tests
check that both give the same numbers.
"""
from __future__ import annotations

import os

import numpy as np

try:  # optional: the twins below do the same work, slower
    import numba
except ImportError:  # pragma: no cover - exercised by forcing SENCLIP_NUMBA=0 in the tests
    numba = None

_PAIR_BLOCK = 16384  # pairs per block in the numpy twin: 2 × 32 MB of gathered rows at D = 512


def compiled() -> bool:
    """True when the numba kernels run (installed and not switched off by ``SENCLIP_NUMBA=0``)."""
    return numba is not None and os.environ.get("SENCLIP_NUMBA", "1") != "0"


def describe() -> str:
    """What runs the loops, for the run record: "numba X.Y" or "numpy/scipy"."""
    return f"numba {numba.__version__}" if compiled() else "numpy/scipy"


def z_step(graph, base: np.ndarray, z: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """softmax_k(base_i + offset + Σ_j g_ij z_j) for every row i: (N, K) float32, a new array.

    ``graph``: scipy CSR (N, N) float32 or None; ``base``, ``z``: (N, K) float32; ``offset``: (K,)
    float32 added to every row (the log class shares of the realistic solver; −inf drops a class),
    so that no (N, K) temporary is made for it."""
    off = np.zeros(base.shape[1], np.float32) if offset is None else np.asarray(offset, np.float32)
    if graph is not None and compiled():
        out = np.empty_like(base)
        _z_step_csr(graph.indptr, graph.indices, graph.data, base, off, z, out)
        return out
    x = base.copy() if graph is None else np.asarray(graph @ z, dtype=np.float32)
    if graph is not None:
        x += base
    x += off
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


def pair_dots(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """(M,) float32: x[i[m]] · x[j[m]] for every pair m (rows of a C-contiguous float32 array)."""
    i, j = np.ascontiguousarray(i), np.ascontiguousarray(j)
    out = np.empty(len(i), dtype=np.float32)
    if compiled():
        _pair_dots(np.ascontiguousarray(x, dtype=np.float32), i, j, out)
        return out
    for a in range(0, len(i), _PAIR_BLOCK):
        b = min(len(i), a + _PAIR_BLOCK)
        out[a:b] = np.einsum("ij,ij->i", x[i[a:b]], x[j[a:b]])
    return out


def _jit(**options):
    """numba.njit(parallel=True, nogil=True, cache=True, **options), without the on-disk cache
    where numba finds no writable place for it (a read-only install and no user cache folder):
    compiling again each run (a second or two) beats failing the import."""
    def wrap(fn):
        try:
            return numba.njit(parallel=True, nogil=True, cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(parallel=True, nogil=True, **options)(fn)
    return wrap


if numba is not None:
    @_jit()
    def _z_step_csr(indptr, indices, data, base, offset, z, out):  # pragma: no cover - compiled
        n, k = base.shape
        for r in numba.prange(n):
            row = out[r]
            for c in range(k):
                row[c] = base[r, c] + offset[c]
            for p in range(indptr[r], indptr[r + 1]):
                w = data[p]
                src = z[indices[p]]
                for c in range(k):
                    row[c] += w * src[c]
            top = row[0]
            for c in range(1, k):
                top = max(top, row[c])
            total = np.float32(0.0)
            for c in range(k):
                row[c] = np.exp(row[c] - top)
                total += row[c]
            for c in range(k):
                row[c] /= total

    @_jit(fastmath=True)
    def _pair_dots(x, i, j, out):  # pragma: no cover - compiled
        d = x.shape[1]
        for m in numba.prange(len(i)):
            a, b = x[i[m]], x[j[m]]
            acc = np.float32(0.0)
            for t in range(d):
                acc += a[t] * b[t]
            out[m] = acc
