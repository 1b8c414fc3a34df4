"""Few-shot refinement: labelled examples (points/polygons) correct the zero-shot classifier.

Method: a **prototype blend** (what the CLI calls ``prototype-blend``). Each class with examples
gets a prototype, the renormalised mean of its examples' image embeddings; each class with a
prompt has its text embedding ``t``; the class vector is ``normalise((1 − α)·t + α·p)`` with
``α`` = ``--example-weight`` (default 0.5). A class with examples only uses ``p``, one with a
prompt only ``t``. Pixels are then classified exactly as in zero-shot (cosine × 100, softmax), so
calibration, pixel resolution and the class map are unchanged.

Image and text embeddings of CLIP-like models occupy different cones (the "modality gap",
Liang et al. 2022): a raw image prototype would beat every text vector on cosine whatever the
pixel, and image-to-image differences have another scale than image-to-text ones. When text
classes are present, prototypes are therefore re-centred from the scene's mean image embedding
onto the mean text class embedding and scaled so that their scores spread over the scene as
much as the text classes' do (:func:`class_vectors`), so text-only and example classes compete on
equal terms.

Why this and not a logistic-regression head initialised from the text classifier: with 1–10
examples per class in 512 dimensions a fitted head needs a regularisation strength nobody can
tune on so little data, an optimiser, and it is not deterministic across library versions; the
mean is the maximum-likelihood class centre, needs no fitting, and keeps re-classification a
single matrix product (interactive in the dock). Accuracy is cross-validated with whole features
held out (cells of one polygon are never split between fitting and testing).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from senclip.tools.accuracy import summarise
from senclip.core.errors import InputError
from senclip.core.feedback import Feedback
from senclip.zeroshot.prompts import build_prompt_set
from senclip.core.outputs import marked, prepare_output, published_together, sidecars, write_text
from senclip.embedding.store import EmbeddingStore
from senclip.tools.vectors import feature_cells, read_features

METHOD = "prototype-blend"
DEFAULT_EXAMPLE_WEIGHT = 0.5
DEFAULT_FOLDS = 5


@dataclass
class ExampleSet:
    """Embeddings of the grid cells the examples cover, with their class and source feature."""

    emb: np.ndarray  # (n, D) float32, L2-normalised
    label: np.ndarray  # (n,) index into the class names
    group: np.ndarray  # (n,) feature index
    features: list  # the vectors.Feature objects (store CRS)
    dropped: int = 0  # features outside the store or on nodata only

    def counts(self, names: list[str]) -> dict:
        out = {}
        for k, n in enumerate(names):
            m = self.label == k
            out[n] = {"features": int(len(np.unique(self.group[m]))), "cells": int(m.sum())}
        return out


@dataclass
class FewShotResult:
    map: object  # api.ClassifyResult
    method: str
    example_weight: float
    examples: dict
    cross_validation: dict | None
    examples_path: Path
    report_path: Path
    warnings: list = field(default_factory=list)


def collect_examples(st: EmbeddingStore, features, names: list[str]) -> ExampleSet:
    """Cells of each labelled feature that the store holds; ``names`` grows by new labels."""
    from affine import Affine

    transform = Affine(*st.meta["grid_transform"])
    lookup = {n.casefold(): i for i, n in enumerate(names)}
    embs, labels, groups, kept, dropped = [], [], [], [], 0
    for f, (rr, cc) in zip(features, feature_cells(features, transform, st.valid.shape)):
        ok = st.valid[rr, cc] if len(rr) else np.zeros(0, bool)
        if not ok.any():
            dropped += 1
            continue
        key = f.label.casefold()
        if key not in lookup:
            lookup[key] = len(names)
            names.append(f.label)
        embs.append(np.asarray(st.embeddings[rr[ok], cc[ok]], dtype=np.float32))
        labels.append(np.full(int(ok.sum()), lookup[key]))
        groups.append(np.full(int(ok.sum()), len(kept)))
        kept.append(f)
    if not kept:
        raise InputError("no example lies on a valid cell of the embedding store; check the examples' "
                         "CRS and that they fall inside the encoded area")
    emb = np.concatenate(embs)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return ExampleSet(emb, np.concatenate(labels), np.concatenate(groups), kept, dropped)


def scene_sample(st: EmbeddingStore, n: int = 4096, seed: int = 0) -> np.ndarray:
    """Up to ``n`` L2-normalised embeddings of valid cells drawn at random (fixed seed): the
    scene statistics the prototype alignment needs, without reading the whole store."""
    rr, cc = np.nonzero(st.valid)
    pick = np.sort(np.random.default_rng(seed).permutation(len(rr))[:n])
    e = np.asarray(st.embeddings[rr[pick], cc[pick]], dtype=np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def class_vectors(k: int, text: dict[int, np.ndarray], emb: np.ndarray, label: np.ndarray, *,
                  weight: float, sample: np.ndarray | None) -> np.ndarray:
    """(k, D) class vectors of the prototype blend; a class with neither text nor examples gets a
    zero vector (cosine 0), which a class with either always beats.

    With text classes present, each prototype ``p`` is aligned to the text cone before blending:
    ``normalise(μ_text + s·d)`` with ``d`` the prototype's deviation from the scene's mean image
    embedding (:func:`_deviations`), μ_text the mean text class embedding, and ``s`` makes the prototypes' scores vary over the scene as
    much as the text classes' scores do (ratio of the standard deviations over ``sample``). With
    examples only, prototypes are centred (``normalise(d)``): what all cells share
    says nothing about the class, and without it a spread-out class loses to a compact one."""
    dim = emb.shape[1]
    out = np.zeros((k, dim), dtype=np.float32)
    protos = {c: _unit(emb[label == c].mean(0)) for c in range(k) if (label == c).any()}
    dev = _deviations(protos, sample) if protos and sample is not None and len(sample) else None
    if text and dev:
        mu_t = np.mean(list(text.values()), axis=0)
        spread_t = np.mean([np.std(sample @ t) for t in text.values()])
        spread_p = np.mean([np.std(sample @ d) for d in dev.values()])
        scale = spread_t / max(float(spread_p), 1e-12)
        protos = {c: _unit(mu_t + scale * d) for c, d in dev.items()}
    elif dev:  # examples only: centred prototypes
        protos = {c: _unit(d) for c, d in dev.items()}
    for c in range(k):
        t, proto = text.get(c), protos.get(c)
        if t is not None and proto is not None:
            out[c] = _unit((1 - weight) * t + weight * proto)
        elif t is not None:
            out[c] = t
        elif proto is not None:
            out[c] = proto
    return out


def _deviations(protos: dict, sample: np.ndarray) -> dict:
    """Prototype minus the scene's mean embedding, with the mean's direction projected out: every
    cell lies close to that direction, so any component along it would act as a per-class bias
    (a class vector has no separate bias term) instead of telling classes apart."""
    mu = sample.mean(0)
    axis = mu / max(float(np.linalg.norm(mu)), 1e-12)
    out = {}
    for c, p in protos.items():
        d = p - mu
        out[c] = d - float(d @ axis) * axis
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def cross_validate(ex: ExampleSet, names: list[str], text: dict[int, np.ndarray], *, weight: float,
                   sample: np.ndarray | None, folds: int = DEFAULT_FOLDS, seed: int = 0) -> dict | None:
    """Accuracy on held-out examples: features are dealt into folds class by class; each fold is
    predicted from class vectors built without it. None when there are too few features."""
    n_feat = int(ex.group.max()) + 1
    feat_label = np.zeros(n_feat, dtype=np.int64)
    feat_label[ex.group] = ex.label
    folds = min(folds, n_feat)
    if folds < 2:
        return None
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(n_feat, dtype=np.int64)
    start = 0
    for c in np.unique(feat_label):
        idx = np.flatnonzero(feat_label == c)
        rng.shuffle(idx)
        fold_of[idx] = (start + np.arange(len(idx))) % folds
        start += len(idx)
    pred = np.zeros(len(ex.label), dtype=np.int64)
    for f in range(folds):
        test = fold_of[ex.group] == f
        if not test.any():
            continue
        w = class_vectors(len(names), text, ex.emb[~test], ex.label[~test], weight=weight, sample=sample)
        scores = ex.emb[test] @ w.T
        scores[:, ~np.any(w, axis=1)] = -np.inf  # a class with nothing left cannot be predicted
        pred[test] = scores.argmax(1)
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(matrix, (pred, ex.label), 1)
    report = summarise(matrix, names)
    counts = np.bincount(ex.label, minlength=len(names))
    report.update(folds=folds, unit="grid cell of a held-out feature", features=n_feat,
                  majority_baseline=float(counts.max() / counts.sum()))
    return report


def fewshot(store, out, *, examples, field: str = "class", classes=None, prompts=None, prompt_style: str = "ground",
            example_weight: float = DEFAULT_EXAMPLE_WEIGHT, folds: int = DEFAULT_FOLDS, resolution: str = "grid",
            calibrate: str = "none", backend: str = "torch", device: str = "auto", offline: bool = False,
            input=None, overwrite: bool = False, feedback: Feedback | None = None,
            loaded_model=None) -> FewShotResult:
    """Class map of ``store`` from labelled ``examples`` (vector file or GeoJSON features with a
    ``field``), blended with the prompts of ``classes``/``prompts`` where given. Writes the map,
    ``<map>.examples.geojson`` (the examples, in the store's CRS) and ``<map>.fewshot.json``
    (method, weight, example counts, cross-validated accuracy)."""
    from rasterio.crs import CRS

    from senclip.api import write_class_map
    from senclip.zeroshot.storetext import prompt_vectors, store_text_model

    feedback = feedback or Feedback()
    if not 0.0 <= float(example_weight) <= 1.0:
        raise InputError(f"--example-weight must be between 0 and 1, got {example_weight!r}")
    out = prepare_output(out, overwrite)
    extra = sidecar_paths(out)
    for p in extra.values():
        prepare_output(p, overwrite, kind="json")
    st = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
    crs = CRS.from_wkt(st.meta["crs"])
    features = read_features(examples, crs, field=field, what="examples")
    prompt_set = build_prompt_set(classes, prompts=prompts, style=prompt_style) if (classes or prompts) else {}
    names = list(prompt_set) or []
    ex = collect_examples(st, features, names)
    if ex.dropped:
        feedback.warning(f"{ex.dropped} example feature(s) fall outside the store or on nodata only; ignored")
    lm, text = None, {}
    if prompt_set:
        lm = store_text_model(st, backend=backend, device=device, offline=offline, feedback=feedback,
                              loaded_model=loaded_model)
        text = dict(enumerate(prompt_vectors(lm, prompt_set, feedback)))
    sample = scene_sample(st)
    vectors = class_vectors(len(names), text, ex.emb, ex.label, weight=float(example_weight), sample=sample)
    cv = cross_validate(ex, names, text, weight=float(example_weight), sample=sample, folds=folds)
    record = {"method": METHOD, "example_weight": float(example_weight), "field": field,
              "examples": ex.counts(names), "classes_with_prompts": list(prompt_set),
              "cross_validation": cv}
    if st.meta["model"].get("untrained"):
        record["note"] = "RANDOM (untrained) weights: these figures only check the method, not SenCLIP"
    full_prompts = {n: prompt_set.get(n, []) for n in names}
    with published_together() as published:
        result = write_class_map(
            st, out, names, vectors, model_record=lm.record() if lm else st.meta["model"], prompts=full_prompts,
            prompt_style=prompt_style if prompt_set and prompts is None else ("file" if prompts else "examples"),
            resolution=resolution, calibrate=calibrate, input=input, overwrite=overwrite, feedback=feedback,
            text_backend=f"{lm.backend}/{lm.device}" if lm else "",
            extra_tags={"SENCLIP_FEWSHOT": {k: v for k, v in record.items() if k != "cross_validation"}})
        published(result.path, *sidecars(result.path))  # the class-map writer writes both
        published(write_text(extra["examples"], json.dumps(marked(examples_geojson(ex, names, crs)), indent=1)))
        published(write_text(extra["report"], json.dumps(marked(record), indent=2)))
    return FewShotResult(result, METHOD, float(example_weight), record["examples"], cv,
                         extra["examples"], extra["report"], list(result.warnings))


def sidecar_paths(out: Path) -> dict:
    return {"examples": out.with_name(out.stem + ".examples.geojson"),
            "report": out.with_name(out.stem + ".fewshot.json")}


def examples_geojson(ex: ExampleSet, names: list[str], crs) -> dict:
    """The examples as used (store CRS, class names as resolved), to re-run or audit the map."""
    feats = [{"type": "Feature", "geometry": f.geometry,
              "properties": {"class": names[[n.casefold() for n in names].index(f.label.casefold())]}}
             for f in ex.features]
    return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs.to_string()}},
            "features": feats}
