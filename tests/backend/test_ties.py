"""A tie goes to the class listed first, whatever BLAS kernel computed the scores.

numpy's bundled OpenBLAS picks a kernel for the CPU it runs on, and kernels sum a dot product in
different orders: two cosines that are equal in exact arithmetic come out one way on one CPU and
the other way on the next. `make test` runs the tests marked ``numeric`` a second time under
another kernel (``OPENBLAS_CORETYPE``); the first test here fails if that setting did not take.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from senclip.maps.geotiff import encode_probabilities
from senclip.zeroshot.head import probabilities, top_class

OTHER_KERNEL = "Prescott"  # the oldest x86-64 kernel: never the one a current CPU gets by itself


def _kernels(env: dict | None = None) -> list[str]:
    """The OpenBLAS kernel ("architecture") of every OpenBLAS numpy and scipy load, per threadpoolctl."""
    code = ("import numpy, scipy.linalg, threadpoolctl; print(' '.join(sorted({i['architecture'] for i in "
            "threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.numeric
def test_openblas_core_type_takes_effect():
    want = os.environ.get("OPENBLAS_CORETYPE")
    if want:  # the second pass of `make test`: this process must run the kernel it asked for
        assert {k.lower() for k in _kernels()} == {want.lower()}, (
            f"OPENBLAS_CORETYPE={want} did not take effect; the numeric pass would test the default kernel again")
    else:  # the first pass: the setting the second pass relies on works here
        assert _kernels(dict(os.environ, OPENBLAS_CORETYPE=OTHER_KERNEL)) == [OTHER_KERNEL]


def _symmetric_case(n: int = 2000, d: int = 512, seed: int = 0):
    """Image embeddings whose first two components are equal, and two classes that differ only by
    swapping those two components: every image's two cosines are equal in exact arithmetic, and
    float rounding puts the second class ahead in some rows on every kernel."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[:, 1] = x[:, 0]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = rng.standard_normal(d).astype(np.float32)
    a /= np.linalg.norm(a)
    b = a.copy()
    b[[0, 1]] = a[[1, 0]]
    return x, np.stack([a, b])


@pytest.mark.numeric
def test_classes_equal_in_exact_arithmetic_tie_towards_the_first():
    x, cls = _symmetric_case()
    p = probabilities(x, cls)
    assert (p[:, 1] > p[:, 0]).any()  # the rounding the rule has to absorb
    assert (top_class(p, axis=1) == 0).all()
    bands = encode_probabilities(p.T[:, :, None], np.ones((len(p), 1), bool))
    assert (bands[0] == 1).all() and (bands[2] == 0).all()  # class 1, margin 0 %
    same = probabilities(x, np.stack([cls[0], cls[0], cls[1]]))  # a class given twice
    assert (top_class(same, axis=1) == 0).all()


@pytest.mark.numeric
def test_a_near_tie_goes_to_the_first_class_and_a_real_preference_is_kept():
    # A half-green, half-blue chip of the colour stand-in (tests/backend/test_pipeline.py) under
    # OpenBLAS's Prescott kernel: the cosines one float32 step apart, the second class ahead.
    tie = np.array([[[0.49999905]], [[0.50000095]]], dtype=np.float32)
    assert encode_probabilities(tie, np.array([[True]]))[:, 0, 0].tolist() == [1, 50, 0]
    real = np.array([[[0.4995]], [[0.5005]]], dtype=np.float32)  # 0.1 %: a preference, not rounding
    assert encode_probabilities(real, np.array([[True]]))[0, 0, 0] == 2


@pytest.mark.numeric
def test_change_decides_classes_by_the_same_rule():
    from senclip.tools.change import store_classes

    x, cls = _symmetric_case()

    class Store:  # the two members store_classes reads
        valid = np.ones((1, len(x)), bool)

        def iter_rows(self, n):
            yield 0, 1, x[None].astype(np.float16)

    assert (store_classes(Store(), cls) == 1).all()
