"""Where the plugin tests find the repo and the backend interpreter, and a raster writer
(a module name of its own: ``from conftest import`` is ambiguous across test folders)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
sys.path.insert(0, str(REPO))  # the folder holding senclip_qgis/, as QGIS_PLUGINPATH would


def backend_python() -> Path:
    """The repo's backend venv, independent of the interpreter running pytest."""
    env = os.environ.get("SENCLIP_TEST_PYTHON")
    return Path(env) if env else VENV_PYTHON


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


def wait_for(condition, timeout=120.0):
    """Let Qt process events until ``condition()`` holds (True) or ``timeout`` seconds pass (False)."""
    import time

    from qgis.PyQt.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False
