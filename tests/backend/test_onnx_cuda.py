"""--device cuda with --backend onnx: ONNX Runtime's CUDA provider is asked for, and where it is missing
or cannot start the run stops with a message saying what to install, never a quiet CPU run.
No GPU on the test machines: the CPU onnxruntime stands in (it has no CUDA provider; with its provider
list faked to name CUDA it falls back to the CPU, as onnxruntime-gpu does without a driver)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from senclip.core.errors import BackendUnavailableError, InputError
from senclip.models.encoders import onnx_encoder


@pytest.fixture
def identity_onnx(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "identity.onnx"
    onnx.save(model, path)
    return path


def test_cuda_without_the_provider_names_what_to_install(identity_onnx):
    assert "CUDAExecutionProvider" not in onnxruntime.get_available_providers()
    for device in ("cuda", "cuda:1"):
        with pytest.raises(BackendUnavailableError, match=r"no CUDAExecutionProvider.*onnxruntime-gpu\[cuda,cudnn\]"):
            onnx_encoder._session(identity_onnx, device)
    sess, device = onnx_encoder._session(identity_onnx, "auto")  # auto: the CPU, no error
    assert device == "cpu" and sess.run(None, {"x": np.ones((1, 4), np.float32)})[0].sum() == 4


def test_cuda_asks_for_the_provider_and_refuses_the_silent_cpu_fallback(identity_onnx, monkeypatch):
    asked, preloaded = [], []
    real = onnxruntime.InferenceSession

    def session(path, sess_options=None, providers=None):
        asked.append(providers)
        return real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])  # what ORT falls back to

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda *a, **k: preloaded.append(1), raising=False)
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider could not start.*--device cpu"):
        onnx_encoder._session(identity_onnx, "cuda:1")
    assert asked == [[("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]] and preloaded
    _, device = onnx_encoder._session(identity_onnx, "auto")  # auto may end on the CPU
    assert device == "cpu" and asked[-1][0] == ("CUDAExecutionProvider", {})
    with pytest.raises(InputError, match="unknown device"):
        onnx_encoder._session(identity_onnx, "cuda1")
