"""Plugin test fixtures: a real backend interpreter, a tiny checkpoint and a small Sentinel-2 raster.

Everything heavy (torch, rasterio) runs in child processes, as in QGIS: the pytest process only
loads qgis, so the sys.modules guardrail stays meaningful.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
sys.path.insert(0, str(REPO))  # the folder holding senclip_qgis/, as QGIS_PLUGINPATH would


def backend_python() -> Path:
    """The repo's backend venv, independent of the interpreter running pytest."""
    env = os.environ.get("SENCLIP_TEST_PYTHON")
    return Path(env) if env else VENV_PYTHON


@pytest.fixture(autouse=True)
def senclip_python(monkeypatch):
    python = backend_python()
    if not python.is_file():
        pytest.skip(f"backend venv {python} missing; run make setup")
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


def write_s2_gdal(path: Path, width: int = 128, height: int = 128, epsg: int = 32633) -> Path:
    """A 4-band (B02, B03, B04, B08) uint16 L2A-like GeoTIFF, 10 m UTM: water left, vegetation right."""
    import numpy as np
    from osgeo import gdal, osr

    rng = np.random.default_rng(0)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 4, gdal.GDT_UInt16)
    ds.SetGeoTransform((400000.0, 10.0, 0.0, 5800000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    left = np.array([900, 700, 400, 200])  # water-ish reflectance x 1e4
    right = np.array([500, 900, 600, 3500])  # vegetation-ish
    for b, name in enumerate(["B02", "B03", "B04", "B08"]):
        arr = np.empty((height, width), dtype=np.uint16)
        arr[:, : width // 2] = left[b]
        arr[:, width // 2:] = right[b]
        arr = (arr + rng.integers(0, 300, size=arr.shape)).astype(np.uint16)
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(arr)
        band.SetDescription(name)
        band.SetNoDataValue(0)
    ds = None
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
