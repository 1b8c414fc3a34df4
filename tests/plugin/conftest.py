"""Plugin test fixtures: a real backend interpreter, a tiny checkpoint and a small Sentinel-2 raster.

Everything heavy (torch, rasterio) runs in child processes, as in QGIS: the pytest process only
loads qgis, so the sys.modules guardrail stays meaningful.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from plugin_env import REPO, VENV_PYTHON, backend_python, write_s2_gdal  # noqa: E402,F401


@pytest.fixture(autouse=True)
def senclip_python(monkeypatch):
    python = backend_python()
    if not python.is_file():
        pytest.fail(f"backend venv {python} missing; run make setup")
    monkeypatch.setenv("SENCLIP_PYTHON", str(python))
    return python


@pytest.fixture(scope="session")
def plugin_checkpoint(tmp_path_factory) -> Path:
    """A tiny random ViT CLIP in the SenCLIP release format, made in the backend's interpreter."""
    path = tmp_path_factory.mktemp("plugin_ckpt") / "tiny_vit.ckpt"
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from tiny_models import make_tiny_checkpoint; "
            "make_tiny_checkpoint(sys.argv[1], kind='vit')")
    subprocess.run([str(backend_python()), "-c", code, str(path), str(REPO / "tests")], check=True,
                   timeout=300)
    return path





@pytest.fixture(scope="session")
def s2_raster(tmp_path_factory) -> Path:
    return write_s2_gdal(tmp_path_factory.mktemp("s2") / "s2_l2a.tif")


@pytest.fixture(scope="session")
def provider(qgis_processing):
    """The SenCLIP provider, registered once per test session."""
    from qgis.core import QgsApplication

    from senclip_qgis.provider import SenclipProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("senclip")
    if existing is not None:
        return existing
    prov = SenclipProvider()
    assert registry.addProvider(prov)
    return prov


@pytest.fixture
def results_dir(tmp_path):
    """The dock writes to the user's results folder: point it at the test's own folder."""
    from qgis.core import QgsSettings

    from senclip_qgis.gui import results_folder

    folder = tmp_path / "results"
    QgsSettings().setValue(results_folder.SETTINGS_KEY, str(folder))
    yield folder
    QgsSettings().remove(results_folder.SETTINGS_KEY)
