"""The torch-free suite: run in a venv WITHOUT torch and open_clip (``make test`` runs it in
``.venv-light``), proving the ONNX path needs neither. It refuses to run where either is importable,
and fails any test during which anything tried to import them (an audit hook sees every import
statement, also one caught by a fallback). The checkpoints it loads are made by the torch venv
(``$SENCLIP_TORCH_PYTHON``, default the repository's ``.venv/bin/python``) in every released form.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from torchfree_env import HEAVY, REPO

_attempts: list = []

for _name in ("torch", "open_clip"):
    if importlib.util.find_spec(_name) is not None:
        raise RuntimeError(f"tests/torchfree must run in a venv without torch and open_clip, but {_name} is "
                           f"importable in {sys.executable}; run it with .venv-light/bin/python (make test)")


def _audit(event, args):
    if event == "import" and str(args[0]).split(".")[0] in HEAVY:
        _attempts.append(args[0])


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def no_torch_import():
    """Fails the test if anything imported (or tried to import) torch, open_clip or torchvision."""
    start = len(_attempts)
    yield
    assert _attempts[start:] == [], f"tried to import {sorted(set(_attempts[start:]))} on the torch-free path"


def torch_python() -> str:
    py = os.environ.get("SENCLIP_TORCH_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    if not Path(py).is_file():
        raise RuntimeError(f"no torch interpreter at {py} to write the test checkpoints: set SENCLIP_TORCH_PYTHON "
                           "to the torch venv's python (make setup builds .venv)")
    return py


@pytest.fixture(scope="session")
def released(tmp_path_factory) -> dict:
    """Tiny random CLIPs written by torch in every released form (tests/torchfree/make_released.py),
    with torch.load's own arrays of each as ``*.npz`` references."""
    out = tmp_path_factory.mktemp("released")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(REPO / p) for p in ("backend", "tests")))
    proc = subprocess.run([torch_python(), str(Path(__file__).with_name("make_released.py")), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"the torch venv could not write the checkpoints:\n{proc.stderr[-3000:]}"
    return {p.name: p for p in out.iterdir()}
