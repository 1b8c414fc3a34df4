"""Metrics against hand-computed values on fixed logits; prompt selection on a constructed case."""
from __future__ import annotations

import numpy as np
import pytest

from senclip_train.bench import metrics as M
from senclip_train.bench.prompt_selection import (class_index, image_profile_scores, select_prompts,
                                                  text_scores)

LOGITS = np.array([[0.30, 0.20, 0.10],
                   [0.25, 0.20, 0.05],
                   [0.10, 0.30, 0.20],
                   [0.40, 0.10, 0.35]])
LABELS = np.array([0, 1, 1, 2])


def test_single_label_inductive_by_hand():
    rep = M.single_label_report(LOGITS, LABELS, ["a", "b", "c"])
    # argmax: 0, 0, 1, 0 -> correct: rows 0 and 2
    assert rep["top1"] == 0.5
    assert M.topk_accuracy(LOGITS, LABELS, ks=(2,))["top2"] == 1.0  # row 1: top2 {0,1} ok; row 3: {0,2} ok
    assert rep["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [1, 0, 0]]
    pc = rep["per_class"]
    assert pc["a"]["precision"] == pytest.approx(1 / 3) and pc["a"]["recall"] == 1.0
    assert pc["b"]["precision"] == 1.0 and pc["b"]["recall"] == 0.5 and pc["b"]["f1"] == pytest.approx(2 / 3)
    assert pc["c"]["f1"] == 0.0


def test_column_mean_calibration_by_hand():
    cal = M.column_mean_calibrate(LOGITS)
    means = np.array([0.2625, 0.2, 0.175])
    assert np.allclose(cal, LOGITS / (means + 1e-6))
    # calibrated argmax: row0 .30/.2625=1.143, .20/.2=1.0, .10/.175=.571 -> 0
    # row1 .952, 1.0, .286 -> 1; row2 .381, 1.5, 1.143 -> 1; row3 1.524, .5, 2.0 -> 2
    assert M.single_label_report(cal, LABELS, ["a", "b", "c"])["top1"] == 1.0


def test_multilabel_by_hand():
    scores = np.array([[0.9, 0.8, 0.1, 0.0],
                       [0.2, 0.1, 0.7, 0.6],
                       [0.5, 0.4, 0.3, 0.9]])
    targets = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 1, 0, 1]])
    # k=2: {0,1} ∩ {0,2} = 1; k=1: {2} ∩ {2} = 1; k=3: {3,0,1} ∩ {0,1,3} = 3 -> 5 / 6
    assert M.recall_at_k_as_coded(scores, targets) == pytest.approx(5 / 6)
    # class 0: scores .9(+) .5(+) .2(-) -> AP 1; class 1: .8(-) .4(+) .1(-) -> P@2 = 1/2
    # class 2: .7(+) .3(-) .1(+) -> (1 + 2/3)/2; class 3: .9(+) .6(-) 0(-) -> 1
    m = M.mean_average_precision(scores, targets)
    assert m["AP_per_class"] == pytest.approx([1.0, 0.5, 5 / 6, 1.0])
    assert m["mAP_macro"] == pytest.approx((1 + 0.5 + 5 / 6 + 1) / 4)
    pred = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]])
    # 2*1/4, 2*1/3, 2*1/4
    assert M.sample_f1(pred, targets) == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)


def test_average_precision_ties_like_sklearn():
    # one tie group holding a positive and a negative: precision 1/2 at recall 1
    assert M.average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5


def test_threshold_predictions_never_empty():
    pred = M.threshold_predictions(np.array([[0.1, 0.1001, 0.3], [0.2, 0.2, 0.2]]), threshold=0.99)
    assert pred.sum(1).tolist() == [1, 1]


def test_prompt_selection_text_picks_specific_prompts():
    # class A: p0, p1 aligned with axis x; p2 points at class B's axis y (a bad prompt for A)
    e = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.1, 0.99, 0],  # A
                  [0, 1, 0], [0.14, 0.99, 0], [0, 0.9, 0.43]])  # B
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    prompts = {"A": ["a0", "a1", "a-bad"], "B": ["b0", "b1", "b2"]}
    s = text_scores(e, class_index(prompts))
    chosen = select_prompts(prompts, s, 2)
    assert set(chosen["A"]) == {"a0", "a1"}
    assert "a-bad" not in chosen["A"]


def test_prompt_selection_image_profile():
    # 4 images: 2 of class A, 2 of class B; prompt a-bad responds to B images
    sim = np.array([[0.9, 0.8, 0.1, 0.0, 0.1, 0.0],
                    [0.8, 0.9, 0.2, 0.1, 0.0, 0.1],
                    [0.0, 0.1, 0.9, 0.9, 0.8, 0.9],
                    [0.1, 0.0, 0.8, 0.9, 0.9, 0.8]])
    prompts = {"A": ["a0", "a1", "a-bad"], "B": ["b0", "b1", "b2"]}
    chosen = select_prompts(prompts, image_profile_scores(sim, class_index(prompts)), 2)
    assert set(chosen["A"]) == {"a0", "a1"}
