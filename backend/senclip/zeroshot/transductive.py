"""Transductive zero-shot: the whole scene sharpens every cell's class (TransCLIP).

Zero-shot labels each cell alone, from its cosine to the class texts. A scene holds hundreds of
thousands of cells whose embeddings cluster; TransCLIP (Zanella, Gérin & Ben Ayed, "Boosting
Vision-Language Models with Transduction", NeurIPS 2024, §3) uses that structure with no labels,
on the same frozen embeddings. It minimises over soft assignments z_i ∈ Δ_K, class means μ_k and
one diagonal covariance Σ shared by all classes (paper §3, the objective it calls L_TransCLIP):

    L(z, μ, Σ) = − Σ_i z_iᵀ log p_i                   GMM clustering term  (p_ik = N(f_i; μ_k, Σ))
                 − Σ_i Σ_j w_ij z_iᵀ z_j              Laplacian term: neighbours share a class
                 + Σ_i KL_λ(z_i ‖ ŷ_i)                text term: z_iᵀ log z_i − λ z_iᵀ log ŷ_i

with ŷ_i = softmax(100 · f_i·t_k) the zero-shot text posterior (CLIP's logit scale, 100) and w_ij
the cosine f_i·f_j of the k = 3 nearest neighbours in feature space. The paper's Block
Majorize-Minimize (BMM, §3.2) alternates closed-form blocks:

    z-step (inner, decoupled per cell):  z_i ∝ ŷ_i^λ ⊙ exp(s · log p_i + Σ_j w̃_ij z_j)
    μ-step:                              μ_k = unit(Σ_i z_ik f_i)
    Σ-step:                              diag Σ = Σ_i Σ_k z_ik (f_i − μ_k)² / N

The Laplacian is linearised at the previous z (that is the majorizer: a concave term replaced by
its tangent), so every cell's update only reads its neighbours' last z and the inner steps are one
sparse product each. The schedule and constants are the published configuration of TransCLIP (and of
RS-TransCLIP, El Khoury et al., ICASSP 2025, which reuses it for remote sensing), checked constant by
constant, because a user comparing with the published tables needs the same numbers, not a look-alike:

- ``outer`` = 10 μ/Σ updates between 11 blocks of ``inner`` = 5 z-steps (the answer is the last z);
- the GMM log-likelihood enters the z-step scaled by s = 1/50 (unscaled, its differences between
  classes are hundreds of nats for D = 512 and would erase the text term), λ = 1;
- w_ij = f_i·f_j for the k = 3 nearest neighbours, and the z-step reads (W + Wᵀ) z / 2k, so a cell's
  whole neighbourhood weighs about one nat;
- the means live on the unit sphere like the features: each μ-step normalises the weighted mean, and
  Σ is measured around those unit means; Σ starts isotropic at 1/D;
- μ_k starts from class k's ``init_top`` = 8 most confident cells under ŷ, each weighted by its ŷ_ik
  (from its labelled cells where it has some).

That published solver is ``method="transclip"``. The default, ``method="realistic"``, changes three
things so that a scene holding only some of the classes typed is not made worse than zero-shot (issue
27; the idea of StatA, Zanella et al., "Realistic Test-Time Adaptation of Vision-Language Models",
CVPR 2025, written here without its AGPL code): class shares π_k = Σ_i z_ik / N learnt after every
z-step and read by the next as + log π_k (:class:`Shares`); a class whose share falls below
``drop``/K dropped (z column zeroed, log share −∞); and means anchored to their start,
μ_k = unit(Σ_i z_ik f_i + a μ⁰_k), a = ``anchor`` cells, so the start weighs a / (n_k + a). Measured on
the calibrated simulator in docs/transductive.md.

Beyond the paper, :func:`transduce` takes extra graph ``edges``: on a raster every cell has free
spatial neighbours (:mod:`senclip.zeroshot.spatial`), which the same Laplacian term turns into a
contrast-sensitive smoothing of the map. Few-shot examples enter as labelled support, cells of the
scene itself: their z is fixed to one-hot, they seed their class mean and pull it and their
neighbours. (The paper's few-shot setting differs: shots outside the test set, weighted by a γ
chosen on a validation split, λ = 1/2. A user's examples are a handful of cells inside the map, with
no validation split, so they are simply cells whose class is known.)

Everything is float32 and block-wise over N (temporaries of one block): memory is one float32 copy
of the unit features (none when float32 unit rows come in), a few (N, K) arrays and the graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from senclip.core.errors import InputError
from senclip.zeroshot.head import DROP_SHARE, LOGIT_SCALE
from senclip.zeroshot.kernels import describe, z_step

DEFAULT_NEIGHBOURS = 3  # paper: k = 3 feature neighbours
DEFAULT_OUTER = 10  # BMM outer iterations (μ, Σ updates)
DEFAULT_INNER = 5  # z-steps per outer iteration
DEFAULT_INIT_TOP = 8  # most confident cells per class that seed μ_k
LIKELIHOOD_SCALE = 1.0 / 50.0  # s: weight of the GMM log-likelihood in the z-step
BLOCK = 65536  # cells per block: 128 MB of float32 features at D = 512
METHODS = ("realistic", "transclip")  # the first is the default
DEFAULT_METHOD = METHODS[0]
ANCHOR = 8.0  # realistic: cells of evidence a class mean's start counts for (= init_top, the cells it came from)
DROP = DROP_SHARE  # realistic: a class whose share falls below DROP / K is dropped (0.53 % of the scene at K = 19)
NEARLY_ABSENT = 0.5  # a kept class whose share ends below NEARLY_ABSENT / K is reported as nearly absent


@dataclass(frozen=True)
class Support:
    """Labelled cells (few-shot examples): row indices into ``images`` and their class."""

    index: np.ndarray  # (S,) int
    label: np.ndarray  # (S,) int in [0, K)


@dataclass
class Solution:
    """The solver's answer and what it did (the run record's ``SENCLIP_TRANSDUCTIVE``)."""

    probs: np.ndarray  # (N, K) float32
    record: dict


def transduce(images, texts, *, method: str = DEFAULT_METHOD, edges=None, neighbours: int = DEFAULT_NEIGHBOURS,
              knn: str = "auto", lam: float = 1.0, laplacian: float = 1.0, outer: int = DEFAULT_OUTER,
              inner: int = DEFAULT_INNER, init_top: int = DEFAULT_INIT_TOP, temperature: float = LOGIT_SCALE,
              likelihood_scale: float = LIKELIHOOD_SCALE, anchor: float = ANCHOR, drop: float = DROP,
              support: Support | tuple | None = None, bias=None, feedback=None) -> np.ndarray:
    """(N, K) float32 class probabilities of ``images`` (N, D) for class ``texts`` (K, D).

    ``method``: "realistic" (the default: class shares learnt, absent classes dropped, means
    anchored to their start; safe when the scene holds only some of the classes) or "transclip"
    (the published solver, as in its tables; ``anchor`` and ``drop`` unused).
    ``edges``: extra graph edges, a scipy sparse (N, N) matrix of non-negative weights or a tuple
    (i, j, w) of arrays, added to the feature-kNN affinity (e.g. :func:`senclip.zeroshot.spatial.grid_edges`).
    ``neighbours`` (k of the feature kNN; 0 = none) and ``knn`` (auto | exact | faiss | tree, see
    :mod:`senclip.zeroshot.knn`) build the paper's affinity. ``lam`` weighs the text prior (KL term),
    ``laplacian`` the graph term. ``anchor``: how many cells of evidence a class mean's start counts
    for; ``drop``: a class whose share falls below ``drop``/K is dropped. ``support``: labelled cells (a
    :class:`Support` or (index, label)) whose assignment is fixed (their classes are never dropped).
    Image rows are L2-normalised here (as the paper's features are); texts too, unless ``bias`` (K,) is
    given: then ``texts`` are a linear classifier's class vectors (the few-shot head) and the prior is
    softmax(T · f·t + bias), used as they are. Raises :class:`InputError` on shapes or values it cannot use."""
    return solve(images, texts, method=method, edges=edges, neighbours=neighbours, knn=knn, lam=lam,
                 laplacian=laplacian, outer=outer, inner=inner, init_top=init_top, temperature=temperature,
                 likelihood_scale=likelihood_scale, anchor=anchor, drop=drop, support=support, bias=bias,
                 feedback=feedback).probs


def solve(images, texts, *, method: str = DEFAULT_METHOD, edges=None, neighbours: int = DEFAULT_NEIGHBOURS,
          knn: str = "auto", lam: float = 1.0, laplacian: float = 1.0, outer: int = DEFAULT_OUTER,
          inner: int = DEFAULT_INNER, init_top: int = DEFAULT_INIT_TOP, temperature: float = LOGIT_SCALE,
          likelihood_scale: float = LIKELIHOOD_SCALE, anchor: float = ANCHOR, drop: float = DROP,
          support: Support | tuple | None = None, bias=None, feedback=None) -> Solution:
    """:func:`transduce` with its record: method, parameters, absent classes, the kNN index, seconds."""
    params = _params(method, neighbours=int(neighbours), lambda_=float(lam), laplacian=float(laplacian),
                     outer=int(outer), inner=int(inner), init_top=int(init_top), temperature=float(temperature),
                     likelihood_scale=float(likelihood_scale), anchor=float(anchor), drop=float(drop))
    texts = _check(images, texts, normalise=bias is None)
    feats = unit_rows(images)
    n, k = len(feats), len(texts)
    sup = _support(support, n, k)
    step = feedback.check if feedback is not None else (lambda: None)
    clock = _Clock()
    log_prior = _text_log_prior(feats, texts, temperature, bias)
    graph, knn_used = _graph(feats, neighbours, knn, laplacian, edges, feedback)
    clock.lap("graph")
    z = np.exp(log_prior)
    _fix(z, sup)
    start = _init_means(feats, log_prior, init_top, sup)
    mu, strength = start, (float(anchor) if method == "realistic" else 0.0)
    var = np.full(feats.shape[1], 1.0 / feats.shape[1], dtype=np.float32)
    sq = _square_sums(feats)
    shares = Shares(z, drop, sup) if method == "realistic" else None
    for t in range(int(outer) + 1):  # outer (μ, Σ) updates between outer + 1 blocks of z-steps
        step()
        base = _log_likelihood(feats, mu, var)
        base *= np.float32(likelihood_scale)
        base += np.float32(lam) * log_prior
        for _ in range(int(inner)):
            z = z_step(graph, base, z, None if shares is None else shares.offset())
            _fix(z, sup)
            if shares is not None:
                shares.update(z, may_drop=t < int(outer))
        if t < int(outer):
            mu, var = _mean_var(feats, sq, z, start, strength)
    clock.lap("solve")
    record = {"method": method, "params": params, "cells": n, "classes": k, "knn": knn_used,
              "extra_edges": edges is not None, "support": 0 if sup is None else int(len(sup.index)),
              "edges": 0 if graph is None else int(graph.nnz), "loops": describe(), "seconds": clock.laps,
              "absent": [] if shares is None else shares.absent()}
    if feedback is not None:
        feedback.info(f"transductive ({method}): {n} cells, {k} classes, graph {record['edges']} edges "
                      f"({clock.laps['graph']:.1f} s), solver {clock.laps['solve']:.1f} s"
                      + (f", {len(record['absent'])} class(es) absent or nearly" if record["absent"] else ""))
    return Solution(z, record)


def _params(method: str, **params) -> dict:
    """The method's parameters for the run record (``lambda_`` spelt ``lambda``); unknown methods refused."""
    if method not in METHODS:
        raise InputError(f"transductive method must be one of {', '.join(METHODS)}, got {method!r}")
    params["lambda"] = params.pop("lambda_")
    if method == "transclip":
        del params["anchor"], params["drop"]
    elif params["anchor"] < 0 or not 0 <= params["drop"] < 1:
        raise InputError(f"anchor must be ≥ 0 and drop in [0, 1), got {params['anchor']} and {params['drop']}")
    return params


class Shares:
    """The realistic method's class shares π_k: the EM update of a mixture's proportions,
    π_k = Σ_i z_ik / N after every z-step, entering the next as log π_k (so a class the scene
    holds little of loses its doubtful cells to the classes it holds much of, and an absent
    class's share falls towards 0). A class whose share falls below ``drop``/K is dropped: its
    column of z is zeroed and its log share is −∞ from then on (still a class of the map, with
    no cell). Classes with labelled cells are never dropped. Drops are decided before the last
    block of z-steps only, so every cell's last z comes from a full step over the classes kept."""

    def __init__(self, z: np.ndarray, drop: float, sup: Support | None) -> None:
        k = z.shape[1]
        self.limit = float(drop) / k
        self.keep = np.zeros(k, bool)
        if sup is not None:
            self.keep[np.unique(sup.label)] = True
        self.alive = np.ones(k, bool)
        self.dropped: dict[int, float] = {}
        self.pi = z.sum(axis=0, dtype=np.float64) / len(z)

    def offset(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.where(self.alive, np.log(np.maximum(self.pi, 1e-30)), -np.inf).astype(np.float32)

    def update(self, z: np.ndarray, may_drop: bool) -> None:
        self.pi = z.sum(axis=0, dtype=np.float64) / len(z)
        low = self.alive & ~self.keep & (self.pi < self.limit)
        low[np.argmax(self.pi)] = False  # the largest class always stays
        if not (may_drop and low.any()):
            return
        for c in np.flatnonzero(low):
            self.dropped[int(c)] = float(self.pi[c])
        self.alive &= ~low
        z[:, low] = 0.0
        total = z.sum(axis=1, keepdims=True)
        empty = total[:, 0] == 0  # a cell wholly in dropped classes: spread over the kept until the next step
        z[empty] = self.alive / self.alive.sum()
        total[empty] = 1.0
        z /= total
        self.pi = z.sum(axis=0, dtype=np.float64) / len(z)

    def absent(self) -> list[dict]:
        """Dropped classes (their share when dropped) and kept classes whose share ended below
        :data:`NEARLY_ABSENT`/K: ``{"index": 1-based class value, "share", "dropped"}``, by share."""
        near = [c for c in np.flatnonzero(self.alive) if self.pi[c] < NEARLY_ABSENT / len(self.pi)]
        out = [{"index": c + 1, "share": round(s, 6), "dropped": True} for c, s in self.dropped.items()]
        out += [{"index": int(c) + 1, "share": round(float(self.pi[c]), 6), "dropped": False} for c in near]
        return sorted(out, key=lambda a: a["share"])


def name_absent(record: dict, names) -> dict:
    """The record with each absent class's name (``"class"``) beside its index, for the map's run record."""
    absent = [{"class": names[a["index"] - 1], **a} for a in record.get("absent", [])]
    return dict(record, absent=absent)


class _Clock:
    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._t = self._now()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        t = self._now()
        self.laps[name] = round(t - self._t, 3)
        self._t = t


def _check(images, texts, normalise: bool = True) -> np.ndarray:
    """Shapes and values checked; the texts L2-normalised (float32) unless they are a classifier's."""
    shape, texts = np.shape(images), np.asarray(texts, dtype=np.float32)
    if len(shape) != 2 or texts.ndim != 2 or shape[1] != texts.shape[1]:
        raise InputError(f"transduce needs images (N, D) and texts (K, D) of the same D; got {shape} "
                         f"and {texts.shape}")
    if len(texts) < 2 or shape[0] < 1:
        raise InputError(f"transduce needs at least 2 classes and 1 image; got {len(texts)} and {shape[0]}")
    if not np.isfinite(texts).all():
        raise InputError("the class text embeddings hold NaN or infinite values")
    if not normalise:
        return texts
    tn = np.linalg.norm(texts, axis=1, keepdims=True)
    if (tn == 0).any():
        raise InputError("a class text embedding is all zeros; check the prompts")
    return (texts / tn).astype(np.float32)


def unit_rows(images) -> np.ndarray:
    """float32 L2-normalised rows. Float32 rows that already are unit length are used as they are
    (no copy: 2 GB saved for 1M × 512); anything else is converted block by block into one copy."""
    x = np.asarray(images)
    if x.dtype == np.float32 and x.flags.c_contiguous:
        norms = _row_norms(x)
        if np.all(np.abs(norms - 1) < 1e-3):
            return x
    out = np.empty(x.shape, dtype=np.float32)
    for a, b in blocks(len(x)):
        out[a:b] = x[a:b]
        out[a:b] /= _row_norms(out[a:b])[:, None]
    return out


def _support(support, n: int, k: int) -> Support | None:
    if support is None:
        return None
    idx, lab = (support.index, support.label) if isinstance(support, Support) else support
    idx, lab = np.asarray(idx, dtype=np.int64), np.asarray(lab, dtype=np.int64)
    if idx.shape != lab.shape or (len(idx) and (idx.min() < 0 or idx.max() >= n or lab.min() < 0 or lab.max() >= k)):
        raise InputError(f"labelled support must be indices in [0, {n}) with classes in [0, {k}); check the examples")
    return Support(idx, lab)


def _fix(z: np.ndarray, sup: Support | None) -> None:
    """Labelled cells keep their one-hot assignment (the paper's few-shot support)."""
    if sup is not None and len(sup.index):
        z[sup.index] = 0.0
        z[sup.index, sup.label] = 1.0


def blocks(n: int, size: int = BLOCK):
    for a in range(0, n, size):
        yield a, min(n, a + size)


def _row_norms(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=np.float32)
    for a, b in blocks(len(x)):
        out[a:b] = np.sqrt(np.einsum("ij,ij->i", x[a:b], x[a:b], dtype=np.float32))
    if not np.isfinite(out).all():
        raise InputError("the image embeddings hold NaN or infinite values")
    if (out == 0).any():
        raise InputError(f"{int((out == 0).sum())} image embedding(s) are all zeros; pass valid cells only")
    return out


def _text_log_prior(feats, texts, temperature: float, bias=None) -> np.ndarray:
    """log ŷ: the zero-shot posterior log softmax(T · f·t [+ bias]), T = 100 (the KL term's target)."""
    out = np.empty((len(feats), len(texts)), dtype=np.float32)
    offset = np.zeros(len(texts), np.float32) if bias is None else np.asarray(bias, np.float32)
    for a, b in blocks(len(feats)):
        out[a:b] = log_softmax(np.float32(temperature) * (feats[a:b] @ texts.T) + offset)
    return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log softmax, stable both ways: the max is subtracted first (no overflow), and
    log Σ exp is taken as log1p of the other terms (so a saturated row, ŷ = 1 − 1e-20, keeps
    −1e-20 instead of 0: the confidence ranking that seeds the means needs it)."""
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    e[np.arange(len(x)), x.argmax(axis=1)] = 0.0  # the max term is exactly 1
    return x - np.log1p(e.sum(axis=1, keepdims=True))


def _init_means(feats, log_prior: np.ndarray, top: int, sup: Support | None) -> np.ndarray:
    """Unit μ_k: from class k's labelled cells where it has any (few-shot: their mean), else from the
    ``top`` cells most confident for k under ŷ (ranked by log ŷ, which does not saturate), each
    weighted by its ŷ_ik: μ_k ∝ Σ ŷ_ik f_i over those cells (the published initialisation)."""
    k, d = log_prior.shape[1], feats.shape[1]
    top = max(1, min(int(top), len(feats)))
    mu = np.empty((k, d), dtype=np.float32)
    for c in range(k):
        idx = sup.index[sup.label == c] if sup is not None else np.zeros(0, dtype=np.int64)
        if len(idx):
            weight = np.ones(len(idx), dtype=np.float32)
        else:
            idx = np.argpartition(-log_prior[:, c], top - 1)[:top] if top < len(feats) else np.arange(len(feats))
            weight = np.exp(log_prior[idx, c])
        mu[c] = weight @ feats[idx]
    return _unit(mu)


def _unit(mu: np.ndarray) -> np.ndarray:
    """Means on the unit sphere, as the features are (the published μ-steps normalise them)."""
    norm = np.linalg.norm(mu, axis=1, keepdims=True)
    return (mu / np.maximum(norm, 1e-12)).astype(np.float32)


def _log_likelihood(feats, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log N(f_i; μ_k, Σ) up to terms equal for every k (Σ is shared, so log det Σ and
    −½ Σ_d f_d²/σ_d² cancel in the z-step's normalisation): f·(μ/σ²)ᵀ − ½ Σ_d μ_kd²/σ_d²."""
    prec = (1.0 / np.maximum(var, 1e-12)).astype(np.float32)
    a_mat = (mu * prec).T.astype(np.float32)  # (D, K)
    c = (-0.5 * (mu * mu * prec).sum(axis=1)).astype(np.float32)
    out = np.empty((len(feats), len(mu)), dtype=np.float32)
    for a, b in blocks(len(feats)):
        out[a:b] = feats[a:b] @ a_mat + c
    return out


def _square_sums(feats) -> np.ndarray:
    """Σ_i f_id² per dimension (float64), fixed for the run: the Σ-step needs it every time."""
    sq = np.zeros(feats.shape[1], dtype=np.float64)
    for a, b in blocks(len(feats)):
        sq += np.einsum("ij,ij->j", feats[a:b], feats[a:b], dtype=np.float64)
    return sq


def _mean_var(feats, sq: np.ndarray, z: np.ndarray, start=None, strength: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """μ-step and Σ-step in one pass over the features. μ_k = unit(Σ_i z_ik f_i): the weighted mean
    put back on the unit sphere (the published configuration; the features are unit vectors). With
    ``strength`` a > 0 (the realistic method), μ_k = unit(Σ_i z_ik f_i + a μ⁰_k): the MAP mean under a
    prior centred on the start μ⁰_k worth a cells, so the start weighs a / (n_k + a), much where the scene
    holds little evidence for class k (soft count n_k) and nothing where it holds much. Then
    σ² = Σ_i Σ_k z_ik (f_i − μ_k)² / N around those unit means, expanded so that no (N, K, D) array
    exists: (Σ_i f_i² − 2 Σ_k μ_k ⊙ Σ_i z_ik f_i + Σ_k n_k μ_k²) / N (Σ_k z_ik = 1), summed in float64."""
    zf = np.zeros((z.shape[1], feats.shape[1]), dtype=np.float64)
    for a, b in blocks(len(feats)):
        zf += z[a:b].T @ feats[a:b]
    nk = z.sum(axis=0, dtype=np.float64)
    mu = _unit(zf if not strength else zf + strength * start).astype(np.float64)
    var = (sq - 2.0 * (mu * zf).sum(axis=0) + (nk[:, None] * mu * mu).sum(axis=0)) / nk.sum()
    return mu.astype(np.float32), np.maximum(var, 1e-8).astype(np.float32)


def _graph(feats, neighbours: int, knn: str, laplacian: float, edges, feedback):
    """The affinity of the z-step: feature kNN (w_ij = cosine, symmetrised, / 2k) plus ``edges``,
    times ``laplacian``: (CSR matrix or None when there is no edge at all, the kNN index used).
    All edges are gathered as (i, j, w) triplets and turned into one CSR matrix once (duplicates
    summed): adding sparse matrices pairwise cost seconds and a copy each at tile scale."""
    from scipy import sparse

    if neighbours < 0 or laplacian < 0:
        raise InputError(f"neighbours and laplacian must be ≥ 0, got {neighbours} and {laplacian}")
    n, parts, used = len(feats), [], "none"
    if neighbours and n > 1 and laplacian:
        from senclip.zeroshot.knn import feature_knn, resolve

        used = resolve(knn, n)
        idx, sim = feature_knn(feats, min(int(neighbours), n - 1), method=knn, feedback=feedback)
        ok = idx.ravel() >= 0
        i = np.repeat(np.arange(n, dtype=np.int32), idx.shape[1])[ok]
        j = idx.ravel()[ok].astype(np.int32)
        w = np.maximum(sim.ravel()[ok], 0).astype(np.float32) * np.float32(1.0 / (2 * idx.shape[1]))
        del idx, sim
        parts += [(i, j, w), (j, i, w)]  # W + Wᵀ
    if edges is not None and laplacian:
        parts.append(_triplets(edges, n))
    if not parts:
        return None, used
    i, j = (np.concatenate([p[a] for p in parts]) for a in (0, 1))
    w = np.concatenate([p[2] for p in parts]) * np.float32(laplacian)
    del parts
    return sparse.csr_matrix((w, (i, j)), shape=(n, n), dtype=np.float32), used


def _triplets(edges, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, w) int32/int32/float32 of ``edges``: a scipy sparse (n, n) matrix or an (i, j, w) tuple."""
    from scipy import sparse

    if sparse.issparse(edges):
        if edges.shape != (n, n):
            raise InputError(f"edges must be an ({n}, {n}) graph over the images, got {edges.shape}")
        m = edges.tocoo()
        i, j, w = m.row, m.col, m.data
    else:
        i, j, w = (np.asarray(a).ravel() for a in edges)
        if not (len(i) == len(j) == len(w)):
            raise InputError(f"edges (i, j, w) must be three arrays of one length, got {len(i)}, {len(j)}, {len(w)}")
        if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
            raise InputError(f"edges must join images 0..{n - 1}; got indices outside that range")
    w = np.asarray(w, dtype=np.float32)
    if len(w) and (not np.isfinite(w).all() or w.min() < 0):
        raise InputError("edge weights must be finite and ≥ 0")
    return np.asarray(i, dtype=np.int32), np.asarray(j, dtype=np.int32), w
