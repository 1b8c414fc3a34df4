"""Few-shot refinement: labelled examples (points/polygons) correct the zero-shot classifier.

Method ``logistic-text-prior`` (:mod:`senclip.tools.fewshot_head`): a multinomial logistic-regression
head fitted to the embeddings of **every grid cell** the example features cover, with the zero-shot
text classifier of the prompted classes as a fixed offset weighted ``1 − w`` (``w`` =
``--example-weight``, default 0.5; 0 = prompts only, 1 = examples only). Classes may have examples
and no prompt, or a prompt and no examples. The fitted classifier is one (K, D) matrix plus a
bias, so the class map is written exactly as in zero-shot (softmax of the logits; calibration,
pixel resolution and the class map are unchanged) and re-classification stays a matrix product.

The L2 strength is chosen by cross-validation with whole features held out (cells of one polygon
are never split between fitting and testing); the chosen strength's cross-validated accuracy is
reported beside the majority-class baseline. It was picked on those same folds, so it is slightly
optimistic; an independent test set says more (bench/fewshot.py).

This replaced a prototype blend (class means of the examples blended with the text embeddings):
on real Sentinel-2 pixels with OpenStreetMap polygons it barely beat chance where a logistic
probe on the same embeddings did clearly better; see :mod:`senclip.tools.fewshot_head` for why.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from senclip.tools.accuracy import summarise
from senclip.core.errors import InputError
from senclip.core.feedback import Feedback
from senclip.tools.fewshot_head import DEFAULT_LAMBDA, LAMBDAS, LOGIT_SCALE, Standardiser, fit_head
from senclip.zeroshot.head import softmax, top_class
from senclip.zeroshot.prompts import build_prompt_set
from senclip.core.outputs import marked, prepare_output, published_together, sidecars, write_text
from senclip.embedding.store import EmbeddingStore
from senclip.tools.vectors import feature_cells, read_features

METHOD = "logistic-text-prior"
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
    cells: tuple | None = None  # (rows, cols) of each example cell on the store grid

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
    embs, labels, groups, kept, dropped, where = [], [], [], [], 0, []
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
        where.append((rr[ok], cc[ok]))
        labels.append(np.full(int(ok.sum()), lookup[key]))
        groups.append(np.full(int(ok.sum()), len(kept)))
        kept.append(f)
    if not kept:
        raise InputError("no example lies on a valid cell of the embedding store; check the examples' "
                         "CRS and that they fall inside the encoded area")
    emb = np.concatenate(embs)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    cells = (np.concatenate([w[0] for w in where]), np.concatenate([w[1] for w in where]))
    return ExampleSet(emb, np.concatenate(labels), np.concatenate(groups), kept, dropped, cells)


def scene_sample(st: EmbeddingStore, n: int = 4096, seed: int = 0) -> np.ndarray:
    """Up to ``n`` L2-normalised embeddings of valid cells drawn at random (fixed seed): the
    scene statistics the prototype alignment needs, without reading the whole store."""
    rr, cc = np.nonzero(st.valid)
    pick = np.sort(np.random.default_rng(seed).permutation(len(rr))[:n])
    e = np.asarray(st.embeddings[rr[pick], cc[pick]], dtype=np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def _folds(ex: ExampleSet, folds: int, seed: int = 0) -> tuple[np.ndarray, int] | None:
    """Fold of every example cell: features dealt into folds class by class (fixed seed)."""
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
    return fold_of[ex.group], folds


def _cv_predictions(ex: ExampleSet, k: int, text: dict, cell_fold: np.ndarray, folds: int, **fit) -> np.ndarray:
    pred = np.zeros(len(ex.label), dtype=np.int64)
    for f in range(folds):
        test = cell_fold == f
        if not test.any():
            continue
        head = fit_head(ex.emb[~test], ex.label[~test], k, text=text, **fit)
        scores = head.logits(ex.emb[test])
        idle = ~np.any(head.weights, axis=1) & (head.bias == 0)  # nothing left to predict it from
        scores[:, idle] = -np.inf
        pred[test] = top_class(softmax(scores, axis=1), axis=1)
    return pred


def _balanced(pred: np.ndarray, label: np.ndarray) -> float:
    return float(np.mean([(pred[label == c] == c).mean() for c in np.unique(label)]))


def cross_validate(ex: ExampleSet, names: list[str], text: dict[int, np.ndarray], *, weight: float,
                   std: Standardiser, sample: np.ndarray | None, folds: int = DEFAULT_FOLDS,
                   lambdas=LAMBDAS) -> tuple[float, dict | None]:
    """(L2 strength, report): each strength of ``lambdas`` predicts every fold from a head fitted
    without it; the one with the best balanced accuracy on held-out features wins. Without at
    least 2 features: (DEFAULT_LAMBDA, None)."""
    split = _folds(ex, folds)
    if split is None or weight <= 0:
        return DEFAULT_LAMBDA, None
    cell_fold, folds = split
    best = None
    for lam in lambdas:
        pred = _cv_predictions(ex, len(names), text, cell_fold, folds, weight=weight, std=std, lam=lam, sample=sample)
        score = _balanced(pred, ex.label)
        if best is None or score > best[0]:
            best = (score, lam, pred)
    score, lam, pred = best
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(matrix, (pred, ex.label), 1)
    report = summarise(matrix, names)
    counts = np.bincount(ex.label, minlength=len(names))
    report.update(folds=folds, unit="grid cell of a held-out feature", features=int(ex.group.max()) + 1,
                  majority_baseline=float(counts.max() / counts.sum()), balanced_accuracy=score,
                  l2_strength=lam, l2_strengths_tried=list(lambdas),
                  note="the L2 strength was chosen on these folds: slightly optimistic")
    return lam, report


def fewshot(store, out, *, examples, field: str = "class", classes=None, prompts=None, prompt_style: str = "ground",
            example_weight: float = DEFAULT_EXAMPLE_WEIGHT, folds: int = DEFAULT_FOLDS, resolution: str = "grid",
            calibrate: str = "none", backend: str = "auto", device: str = "auto", offline: bool = False,
            input=None, overwrite: bool = False, feedback: Feedback | None = None,
            loaded_model=None, transductive: bool = False, spatial: str = "8") -> FewShotResult:
    """Class map of ``store`` from labelled ``examples`` (vector file or GeoJSON features with a
    ``field``), blended with the prompts of ``classes``/``prompts`` where given. Writes the map,
    ``<map>.examples.geojson`` (the examples, in the store's CRS) and ``<map>.fewshot.json``
    (method, weight, example counts, cross-validated accuracy). ``transductive``: the whole scene is
    solved at once (:mod:`senclip.zeroshot.transductive`) with the few-shot class vectors as its prior and the
    example cells as labelled support, fixed to their class."""
    from rasterio.crs import CRS

    from senclip.api import write_class_map
    from senclip.zeroshot.storetext import prompt_vectors, store_text_model

    feedback = feedback or Feedback()
    if not 0.0 <= float(example_weight) <= 1.0:
        raise InputError(f"--example-weight must be between 0 and 1, got {example_weight!r}")
    out, extra = _prepare_outputs(out, overwrite)
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
    std = Standardiser.from_sample(sample)
    lam, cv = cross_validate(ex, names, text, weight=float(example_weight), std=std, sample=sample, folds=folds)
    head = fit_head(ex.emb, ex.label, len(names), text=text, weight=float(example_weight), std=std, lam=lam,
                    sample=sample)
    record = _record(st, ex, names, head, prompt_set, weight=float(example_weight), lam=lam, field=field, cv=cv)
    full_prompts = {n: prompt_set.get(n, []) for n in names}
    with published_together() as published:
        result = write_class_map(
            st, out, names, head.weights / LOGIT_SCALE, bias=head.bias,
            model_record=lm.record() if lm else st.meta["model"], prompts=full_prompts,
            prompt_style=prompt_style if prompt_set and prompts is None else ("file" if prompts else "examples"),
            resolution=resolution, calibrate=calibrate, input=input, overwrite=overwrite, feedback=feedback,
            transductive=transductive, spatial=spatial,
            support=(*ex.cells, ex.label) if transductive else None,
            text_backend=f"{lm.backend}/{lm.device}" if lm else "",
            extra_tags={"SENCLIP_FEWSHOT": {k: v for k, v in record.items() if k != "cross_validation"}})
        published(result.path, *sidecars(result.path))  # the class-map writer writes both
        published(write_text(extra["examples"], json.dumps(marked(examples_geojson(ex, names, crs)), indent=1)))
        published(write_text(extra["report"], json.dumps(marked(record), indent=2)))
    return FewShotResult(result, METHOD, float(example_weight), record["examples"], cv,
                         extra["examples"], extra["report"], list(result.warnings))


def _prepare_outputs(out, overwrite: bool) -> tuple[Path, dict]:
    """The map's path and its two JSON sidecars, each checked before any work is done."""
    out = prepare_output(out, overwrite)
    extra = sidecar_paths(out)
    for p in extra.values():
        prepare_output(p, overwrite, kind="json")
    return out, extra


def _record(st, ex, names, head, prompt_set, *, weight: float, lam, field: str, cv) -> dict:
    """What .fewshot.json (and the map's SENCLIP_FEWSHOT tag, less the cross-validation) says of the run."""
    record = {"method": METHOD, "example_weight": weight, "l2_strength": lam, "field": field,
              "examples": ex.counts(names), "classes_with_prompts": list(prompt_set),
              "training_balanced_accuracy": _balanced(top_class(softmax(head.logits(ex.emb), axis=1), axis=1),
                                                      ex.label),
              "cross_validation": cv}
    if st.meta["model"].get("untrained"):
        record["note"] = "RANDOM (untrained) weights: these figures only check the method, not SenCLIP"
    return record


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
