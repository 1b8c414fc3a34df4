"""Released weights read without torch: every accepted form gives torch.load's arrays, and hostile
files are refused with a clear error before anything in them runs."""
from __future__ import annotations

import argparse
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from senclip.core.errors import CheckpointError
from senclip.models.checkpoints import infer_arch, read_arrays


@pytest.mark.parametrize("name", ["vit.ckpt", "rn.ckpt", "vit_legacy.pt", "vit.safetensors", "vit_lightning.pth",
                                  "odd.pt", "odd_legacy.pt"])
def test_every_released_form_reads_as_torch_load(released, name):
    got = read_arrays(released[name])
    with np.load(released[name + ".npz"]) as ref:
        assert sorted(got) == sorted(ref.files)
        for k in ref.files:
            assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape and np.array_equal(got[k], ref[k]), k
    if not name.startswith("odd"):
        assert infer_arch(got).startswith("openai-rn:" if name.startswith("rn") else "openai-vit:")


def _archive(payload: bytes, extra: dict | None = None) -> bytes:
    """A torch.save-shaped zip whose data.pkl is ``payload``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
        for name, data in (extra or {}).items():
            zf.writestr(f"archive/{name}", data)
    return buf.getvalue()


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


def _refused(path, data: bytes, *words):
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as e:
        read_arrays(path)
    msg = str(e.value)
    assert str(path) in msg and all(w in msg for w in words), msg
    return msg


@pytest.mark.parametrize("legacy", [False, True])
def test_reduce_calling_os_system_is_refused_and_never_runs(tmp_path, legacy):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"visual.proj": _System(marker)}, protocol=2)
    data = evil if legacy else _archive(evil)
    _refused(tmp_path / "evil.ckpt", data, "system", "cannot be loaded safely", "without running anything", "state_dict()")
    assert not marker.exists()


@pytest.mark.parametrize("obj,words", [
    ({"w": _Eval()}, ("__builtin__.eval",)),  # protocol 2 spells builtins so
    ({"args": argparse.Namespace(lr=1)}, ("argparse.Namespace",)),  # an unknown global
    ({"a": [{"b": (1, {"c": argparse.Namespace()})}]}, ("argparse.Namespace",)),  # nested deep in plain data
])
def test_globals_besides_a_state_dicts_are_refused(tmp_path, obj, words):
    _refused(tmp_path / "x.pt", _archive(pickle.dumps(obj, protocol=2)), *words, "cannot be loaded safely")


def test_torchscript_archives_are_refused(tmp_path, released):
    with zipfile.ZipFile(released["vit.ckpt"]) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    root = next(n for n in parts if n.endswith("/data.pkl"))[: -len("data.pkl")]
    parts[root + "constants.pkl"], parts[root + "code/__torch__/model.py"] = pickle.dumps(()), b"def forward(): ..."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in parts.items():
            zf.writestr(n, d)
    _refused(tmp_path / "jit.pt", buf.getvalue(), "TorchScript", "cannot be loaded safely")


def _edited(released, edit) -> bytes:
    """The tiny release checkpoint with its data.pkl or storages changed by ``edit(name, bytes)``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(released["vit.ckpt"]) as src, zipfile.ZipFile(buf, "w") as dst:
        for n in src.namelist():
            dst.writestr(n, edit(n, src.read(n)))
    return buf.getvalue()


def test_a_tensor_type_a_state_dict_never_has_is_refused(tmp_path, released):
    data = _edited(released, lambda n, d: d.replace(b"\nFloatStorage\n", b"\nComplexFloatStorage\n")
                   if n.endswith("data.pkl") else d)
    _refused(tmp_path / "complex.ckpt", data, "torch.ComplexFloatStorage", "does not read", "float32")


def test_a_storage_of_the_wrong_size_is_damage(tmp_path, released):
    data = _edited(released, lambda n, d: d[:-4] if n.endswith("/data/0") else d)
    _refused(tmp_path / "short.ckpt", data, "damaged", "storage 0", "download it again")


@pytest.mark.parametrize("name", ["vit.ckpt", "vit_legacy.pt", "vit.safetensors"])
@pytest.mark.parametrize("cut", [0.5, 0.99, 0.0])
def test_truncated_files_are_damage(tmp_path, released, name, cut):
    data = released[name].read_bytes()
    path = tmp_path / name
    _refused(path, data[: int(len(data) * cut)], "damaged", "download it again")


def test_not_a_checkpoint(tmp_path):
    _refused(tmp_path / "notes.pt", b"\x00junk" * 100, "damaged")
    _refused(tmp_path / "list.pt", _archive(pickle.dumps([1, 2, 3], protocol=2)), "not a state_dict")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_arrays(tmp_path / "missing.ckpt")
