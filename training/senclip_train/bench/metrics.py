"""Zero-shot metrics, numpy only, for both protocols.

``column_mean_calibrate`` and ``recall_at_k_as_coded`` reproduce what the reference scripts
compute; the rest are the standard definitions (sklearn's conventions, re-implemented so the
benchmark needs no scikit-learn).
"""
from __future__ import annotations

import numpy as np


def column_mean_calibrate(logits: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Divide each class column by its mean over the *whole test set* (transductive)."""
    return logits / (logits.mean(axis=0, keepdims=True) + eps)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> dict:
    order = np.argsort(-logits, axis=1, kind="stable")
    return {f"top{k}": float((order[:, :min(k, logits.shape[1])] == labels[:, None]).any(1).mean()) for k in ks}


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_prf(cm: np.ndarray) -> dict:
    tp = np.diag(cm).astype(float)
    pred_n, true_n = cm.sum(0).astype(float), cm.sum(1).astype(float)
    p = np.divide(tp, pred_n, out=np.zeros_like(tp), where=pred_n > 0)
    r = np.divide(tp, true_n, out=np.zeros_like(tp), where=true_n > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(tp), where=(p + r) > 0)
    return {"precision": p, "recall": r, "f1": f, "support": true_n.astype(int)}


def single_label_report(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    pred = logits.argmax(1)
    cm = confusion_matrix(labels, pred, len(classes))
    prf = per_class_prf(cm)
    return {**topk_accuracy(logits, labels), "macro_f1": float(prf["f1"].mean()),
            "per_class": {c: {"precision": float(prf["precision"][i]), "recall": float(prf["recall"][i]),
                              "f1": float(prf["f1"][i]), "support": int(prf["support"][i])}
                          for i, c in enumerate(classes)},
            "confusion_matrix": cm.tolist()}


def recall_at_k_as_coded(scores: np.ndarray, targets: np.ndarray) -> float:
    """The reference BigEarthNet "Top-1": for each image take its k = #true labels best classes,
    count how many are true, divide the total by the number of labels (micro recall@k)."""
    hits = 0
    for s, t in zip(scores, targets):
        k = int(t.sum())
        if k:
            hits += int(t[np.argsort(-s, kind="stable")[:k]].sum())
    total = int(targets.sum())
    return hits / total if total else 0.0


def average_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """AP = Σ (R_n − R_{n−1}) P_n over distinct score thresholds (sklearn's definition, ties grouped)."""
    target = target.astype(bool)
    npos = int(target.sum())
    if npos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], target[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each tie group
    tp = np.cumsum(t)[last]
    fp = (last + 1) - tp
    precision, recall = tp / (tp + fp), tp / npos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> dict:
    per_class = [average_precision(scores[:, c], targets[:, c]) for c in range(targets.shape[1])]
    valid = [a for a in per_class if not np.isnan(a)]
    per_sample = [average_precision(s, t) for s, t in zip(scores, targets) if t.sum()]
    return {"mAP_macro": float(np.mean(valid)) if valid else float("nan"),
            "mAP_samples": float(np.mean(per_sample)) if per_sample else float("nan"),
            "AP_per_class": per_class}


def sample_f1(pred: np.ndarray, targets: np.ndarray) -> float:
    """Mean over images of 2|P∩T| / (|P| + |T|) (images without labels are skipped)."""
    keep = targets.sum(1) > 0
    p, t = pred[keep].astype(bool), targets[keep].astype(bool)
    denom = p.sum(1) + t.sum(1)
    return float(np.mean(2 * (p & t).sum(1) / np.maximum(denom, 1))) if len(t) else float("nan")


def threshold_predictions(cos: np.ndarray, scale: float = 100.0, threshold: float = 0.1) -> np.ndarray:
    """Multi-label decision without looking at the test labels: softmax(scale·cos) ≥ threshold,
    and always the top class, so no image ends up with an empty prediction."""
    z = scale * cos
    z = np.exp(z - z.max(1, keepdims=True))
    prob = z / z.sum(1, keepdims=True)
    pred = prob >= threshold
    pred[np.arange(len(cos)), cos.argmax(1)] = True
    return pred


def multilabel_report(cos: np.ndarray, targets: np.ndarray, classes: list[str], *, threshold: float = 0.1) -> dict:
    m = mean_average_precision(cos, targets)
    return {"recall_at_k": recall_at_k_as_coded(cos, targets), "mAP_macro": m["mAP_macro"],
            "mAP_samples": m["mAP_samples"], "sample_f1": sample_f1(threshold_predictions(cos, threshold=threshold), targets),
            "threshold": threshold, "AP_per_class": dict(zip(classes, m["AP_per_class"]))}
