"""A simulator of CLIP embeddings for the realistic transductive case (issue 27), calibrated on real statistics.

No real CLIP weights are reachable here, so the realistic benchmark (``bench/transductive_realistic.py``) and
the known-answer tests (``tests/backend/test_transductive_realistic.py``) draw embeddings from a mixture
whose statistics match those measured on real embeddings of a public remote-sensing benchmark (four
remote-sensing CLIP models, D = 512, K = 19, about 53 images per class; issue 27):

    cos(image, own class text) 0.28-0.35     cos(image, other texts) 0.20-0.28
    cos(image, own class image mean) 0.89-0.93
    cos between class image means 0.66-0.79   cos between class texts 0.80-0.87
    cos(class image mean, its text) 0.30-0.37 zero-shot accuracy 81-95 %

The construction (orthonormal directions, so each statistic is set by one coefficient):

- an image direction g shared by all images and a text direction h shared by all texts (the
  modality gap), and per class k a direction u_k that image and text share, an image-only v_k
  and a text-only w_k;
- class image mean M_k = a·g + b·u_k + c·v_k; text t_k = unit(p·g + q·h + r·u_k + e·w_k + Σ_j κ_kj u_j + ε_k)
  with κ_kj ~ κ·U(0.3, 1) for two random j ≠ k (a text also points at other classes: confusable
  pairs), 0 elsewhere, and
  ε_k ~ N(0, ε²I/D) (class texts are not equally good);
- an image x = unit(M_k + τ·Σ_j n_j u_j + ν·Σ_r m_r s_r + σ·n): n_j ~ N(0, 1) along every class's
  shared direction (what makes zero-shot confuse classes), m_r ~ N(0, 1) along 8 directions s_r
  of variation that every class shares (season, light, texture: modes that cut across classes,
  which is what lets an absent class's mean capture part of a present class), and n an isotropic
  N(0, I/D) (the rest of the within-class spread).

A "model" is one setting of (a, b, p, r, τ, σ, ε) inside the measured ranges; :data:`MODELS` holds
four, one per real model measured. :func:`statistics` measures the same quantities as the issue on a
drawn set, so the calibration is checked, not assumed (``python -m bench.realistic_sim``).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Model:
    """One simulated CLIP: the coefficients of the construction in the module docstring."""

    name: str
    a: float = 0.85  # image mean along the shared image direction g
    b: float = 0.30  # image mean along the class direction u_k
    p: float = 0.31  # text along g (sets cos(image, other texts))
    r: float = 0.23  # text along u_k (sets the own-text margin)
    tau: float = 0.045  # within-class spread along every class direction (zero-shot confusions)
    sigma: float = 0.28  # isotropic within-class spread
    eps: float = 0.2  # per-class text error (norm of a random vector)
    nu: float = 0.1  # within-class spread along directions shared by all classes (season, light, texture)
    kappa: float = 0.1  # text k along other classes' directions u_j (pairs of classes the texts confuse)
    text_share: float = 0.86  # p² + q²: what two class texts share (their cosine, less the confusions)
    dim: int = 512


MODELS = (Model("sim-A", tau=0.050, kappa=0.17),
          Model("sim-B", tau=0.030, kappa=0.18, b=0.31),
          Model("sim-C", tau=0.045, kappa=0.14, a=0.86),
          Model("sim-D", tau=0.030, kappa=0.165, b=0.32, sigma=0.30))

NUISANCE = 8  # shared directions of within-class variation
LONG_TAIL = (48, 24, 12, 8, 6, 4, 3, 2)  # issue 27's long-tailed shares for 8 classes (per cent, normalised)


@dataclass
class World:
    """The class structure of one model: class image means (K, D) and class texts (K, D)."""

    model: Model
    means: np.ndarray
    texts: np.ndarray
    basis: np.ndarray  # (K, D): the shared class directions u_k
    nuisance: np.ndarray  # (NUISANCE, D): directions of variation shared by every class

    def images(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, D) float32 unit embeddings of images of classes ``labels``."""
        m, k = self.model, len(self.means)
        x = self.means[labels].astype(np.float64)
        x += m.tau * rng.standard_normal((len(labels), k)) @ self.basis
        x += m.nu * rng.standard_normal((len(labels), len(self.nuisance))) @ self.nuisance
        x += m.sigma / np.sqrt(m.dim) * rng.standard_normal((len(labels), m.dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def world(model: Model, classes: int = 19, seed: int = 0) -> World:
    """The class means and texts of ``model`` for ``classes`` classes (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    k, d = classes, model.dim
    q_mat = np.linalg.qr(rng.standard_normal((d, 3 * k + 2 + NUISANCE)))[0].T  # orthonormal rows
    g, h, u, v, w = q_mat[0], q_mat[1], q_mat[2:2 + k], q_mat[2 + k:2 + 2 * k], q_mat[2 + 2 * k:2 + 3 * k]
    nuisance = q_mat[2 + 3 * k:]
    c = np.sqrt(max(0.0, 1 - model.a ** 2 - model.b ** 2))
    means = model.a * g + model.b * u + c * v
    q = np.sqrt(max(0.0, model.text_share - model.p ** 2))
    e = np.sqrt(max(0.0, 1 - model.p ** 2 - q ** 2 - model.r ** 2))
    mix = np.zeros((k, k))
    for c in range(k):  # each text also points at two other classes: the pairs zero-shot confuses
        mix[c, rng.choice(np.delete(np.arange(k), c), 2, replace=False)] = model.kappa * rng.uniform(0.3, 1.0, 2)
    texts = model.p * g + q * h + model.r * u + e * w + mix @ u + model.eps / np.sqrt(d) * rng.standard_normal((k, d))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return World(model, means, texts.astype(np.float32), u, nuisance)


def draw(wld: World, present, counts, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, D) float32, labels (N,)): ``counts[i]`` images of class ``present[i]``, shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.asarray(present, dtype=np.int64), np.asarray(counts, dtype=np.int64))
    labels = labels[rng.permutation(len(labels))]
    return wld.images(labels, rng), labels


def batch(wld: World, n_present: int, *, long_tailed: bool = False, per_class: int = 53, seed: int = 0):
    """One StatA-style batch: ``n_present`` random classes of the world's K, ``per_class`` images each
    (balanced) or the same total split by :data:`LONG_TAIL` shares (long-tailed, largest first)."""
    rng = np.random.default_rng(seed)
    k = len(wld.texts)
    present = rng.choice(k, size=n_present, replace=False)
    if long_tailed:
        share = np.asarray(LONG_TAIL[:n_present], dtype=float) if n_present <= len(LONG_TAIL) else \
            np.geomspace(1, 0.04, n_present)
        counts = np.maximum(1, np.round(share / share.sum() * per_class * n_present)).astype(int)
    else:
        counts = np.full(n_present, per_class)
    return draw(wld, present, counts, seed=int(rng.integers(2 ** 31)))


def statistics(wld: World, per_class: int = 53, seed: int = 0) -> dict:
    """The issue's statistics on a full balanced draw: means over images, classes and class pairs."""
    k = len(wld.texts)
    x, y = draw(wld, np.arange(k), np.full(k, per_class), seed=seed)
    cos_t = x @ wld.texts.T
    own = cos_t[np.arange(len(x)), y]
    other = cos_t[np.arange(k)[None, :] != y[:, None]]
    mean = np.stack([x[y == c].mean(0) for c in range(k)])
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    off = ~np.eye(k, dtype=bool)
    return {"image_own_text": float(own.mean()), "image_other_texts": float(other.mean()),
            "image_own_mean": float((x * mean[y]).sum(1).mean()),
            "between_image_means": float((mean @ mean.T)[off].mean()),
            "between_texts": float((wld.texts @ wld.texts.T)[off].mean()),
            "image_mean_own_text": float((mean * wld.texts).sum(1).mean()),
            "zero_shot_accuracy": float((cos_t.argmax(1) == y).mean())}


RANGES = {"image_own_text": (0.28, 0.35), "image_other_texts": (0.20, 0.28), "image_own_mean": (0.89, 0.93),
          "between_image_means": (0.66, 0.79), "between_texts": (0.80, 0.87),
          "image_mean_own_text": (0.30, 0.37), "zero_shot_accuracy": (0.81, 0.95)}


def main(argv=None) -> int:
    """Print each model's statistics beside the measured ranges; exit 1 if one falls outside."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    bad = 0
    for m in MODELS:
        st = statistics(world(m))
        cells = []
        for key, (lo, hi) in RANGES.items():
            ok = lo <= st[key] <= hi
            bad += not ok
            cells.append(f"{key} {st[key]:.3f}{'' if ok else ' (out of ' + str(lo) + '-' + str(hi) + ')'}")
        print(m.name + ": " + ", ".join(cells))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
