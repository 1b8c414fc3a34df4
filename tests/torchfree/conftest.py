"""The torch-free tests: run by .venv-light (`make test`'s second step, `make test-light`), a venv made
with the backend's light extra and no torch. If torch can be imported here, these tests would prove
nothing, so the run stops. The main suite does not collect this folder (tests/conftest.py)."""
from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("torch") is not None:
    raise pytest.UsageError("tests/torchfree must run where torch cannot be imported: "
                            "`make test-light` (.venv-light/bin/python -m pytest tests/torchfree)")
