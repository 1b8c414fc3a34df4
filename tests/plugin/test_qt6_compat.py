"""QGIS 4 (Qt6/PyQt6) compatibility of the plugin source, checked on a QGIS 3.22 machine.

No QGIS 4 build installs on Debian 12, so the check is static, in two halves:

* Qt names: ``qt6_names.py`` resolves every attribute chain rooted at a ``qgis.PyQt`` import against
  the real PyQt6 bindings from PyPI, in a venv of its own (build/pyqt6-venv) and a subprocess that
  never loads PyQt5 (this process has QGIS and PyQt5 loaded; two Qt majors in one process crash).
* QGIS names: chains rooted at ``qgis.core``/``qgis.gui`` imports are resolved against this QGIS:
  an enum member reached without its enum (``QgsFeatureSink.FastInsert``) does not exist under
  PyQt6's sip, and names QGIS moved into ``Qgis`` or marked for removal in 4.0 go through
  ``senclip_qgis/compat.py`` (by string, so neither spelling is looked up where it is missing).
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_env import REPO

PLUGIN = REPO / "senclip_qgis"
CHECKER = Path(__file__).with_name("qt6_names.py")
PYQT6_VENV = REPO / "build" / "pyqt6-venv"
PYQT6_REQUIREMENTS = REPO / "requirements" / "pyqt6-check.txt"

# Enums QGIS moved into ``Qgis`` whose old spelling QGIS 3.x keeps only through Python monkey patches,
# "removed in the next major release" (qgis/QGIS#51874, QgsMapLayerType -> Qgis.LayerType; the same
# mechanism for QgsWkbTypes -> Qgis.WkbType, qgis/QGIS#51948, layer filters in 3.34 and the
# Processing enums in 3.36; the pyqt5_to_pyqt6 script's fixtures in qgis/QGIS
# scripts/pyqt5_to_pyqt6/tests show the rewrite). Use the constants of senclip_qgis/compat.py.
MOVED_INTO_QGIS = {
    "QgsMapLayerType": "Qgis.LayerType",
    "QgsMapLayer.LayerType": "Qgis.LayerType",
    "QgsMapLayer.VectorLayer": "Qgis.LayerType.Vector",
    "QgsMapLayer.RasterLayer": "Qgis.LayerType.Raster",
    "QgsWkbTypes.Type": "Qgis.WkbType",
    "QgsWkbTypes.GeometryType": "Qgis.GeometryType",
    "QgsMapLayerProxyModel.Filter": "Qgis.LayerFilter",
    "QgsProcessing.SourceType": "Qgis.ProcessingSourceType",
    "QgsProcessingAlgorithm.Flag": "Qgis.ProcessingAlgorithmFlag",
    "QgsProcessingParameterDefinition.Flag": "Qgis.ProcessingParameterFlag",
    "QgsProcessingParameterNumber.Type": "Qgis.ProcessingNumberParameterType",
    "QgsProcessingParameterFile.Behavior": "Qgis.ProcessingFileParameterBehavior",
}
# Documented "will be removed in QGIS 4.0" (QGIS API docs, Deprecated List: qgis.org/api/deprecated.html).
REMOVED_IN_QGIS4 = {
    "Qgis.geoWkt": "QgsCoordinateReferenceSystem('EPSG:4326').toWkt()",
    "Qgis.geoProj4": "QgsCoordinateReferenceSystem('EPSG:4326').toProj()",
    "Qgis.SCALE_PRECISION": "(no replacement)",
    "GEO_EPSG_CRS_ID": "'EPSG:4326'",
    "GEOSRID": "'EPSG:4326'",
    "GEOCRS_ID": "'EPSG:4326'",
}


# -- the PyQt6 half -------------------------------------------------------------------------------
def pyqt6_python() -> Path:
    """The check's own venv with PyQt6 from PyPI, made once and reused while the pin is unchanged."""
    python = PYQT6_VENV / "bin" / "python"
    stamp = PYQT6_VENV / "requirements.txt"
    wanted = PYQT6_REQUIREMENTS.read_text(encoding="utf-8")
    if python.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    base = getattr(sys, "_base_executable", None) or sys.executable  # the system python, not .venv's
    tmp = PYQT6_VENV.with_name(f"{PYQT6_VENV.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        subprocess.run([base, "-m", "venv", str(tmp)], check=True, capture_output=True, timeout=300)
        pip = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", "-r", str(PYQT6_REQUIREMENTS)],
                             capture_output=True, text=True, timeout=1200)
        if pip.returncode != 0:
            pytest.fail("installing PyQt6 from PyPI for the Qt6 name check failed (needs network once; "
                        f"then cached in {PYQT6_VENV}):\n{pip.stdout[-2000:]}{pip.stderr[-2000:]}")
        shutil.copyfile(PYQT6_REQUIREMENTS, tmp / "requirements.txt")
        shutil.rmtree(PYQT6_VENV, ignore_errors=True)
        tmp.rename(PYQT6_VENV)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return python


def run_qt6_check(folder: Path) -> dict:
    """Run qt6_names.py under PyQt6 in a clean process (no PYTHONPATH: QGIS's PyQt5 stays out)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([str(pyqt6_python()), "-I", str(CHECKER), str(folder)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_plugin_uses_only_qt_names_pyqt6_has():
    report = run_qt6_check(PLUGIN)
    assert report["qt_modules"] == ["PyQt6"], "the check must run on PyQt6 alone"
    assert report["offenders"] == []


QT5_ONLY = '''
from qgis.PyQt.QtCore import Qt, QVariant, QProcess
from qgis.PyQt.QtWidgets import QAction, QDialog, QHeaderView
from PyQt5.QtCore import QTimer
import PyQt5.QtGui
try:
    from qgis.PyQt.QtGui import QShortcut
except ImportError:
    from qgis.PyQt.QtWidgets import QShortcut
area = Qt.RightDockWidgetArea
ok = Qt.DockWidgetArea.RightDockWidgetArea
field = QVariant.Int
mode = QHeaderView.ResizeMode.Stretch
QDialog().exec_()
state = QProcess.ProcessState.NotRunning
'''


def test_qt6_check_finds_qt5_only_names(tmp_path):
    (tmp_path / "bad.py").write_text(QT5_ONLY, encoding="utf-8")
    found = run_qt6_check(tmp_path)["offenders"]
    assert found == sorted([
        "bad.py: PyQt6 has no QtWidgets.QAction (imported as QAction)",
        "bad.py:4: imports PyQt5.QtCore: use qgis.PyQt",
        "bad.py:5: imports PyQt5.QtGui: use qgis.PyQt",
        "bad.py:10: PyQt6 has no QtCore.Qt.RightDockWidgetArea",
        "bad.py:12: PyQt6 has no QtCore.QVariant.Int",
        "bad.py:14: exec_() does not exist in PyQt6: use exec()",
    ])


# -- the QGIS half ----------------------------------------------------------------------------------
def is_enum_member(value) -> bool:
    kind = type(value)
    return type(kind).__name__ == "enumtype" or any(b.__module__ == "enum" for b in kind.__mro__[1:])


def qgis_offenders(folder: Path) -> list[str]:
    """Unscoped enum members and moved/removed names reached from qgis.core / qgis.gui imports."""
    import importlib

    out = []
    for path in sorted(folder.rglob("*.py")):
        if "backend_src" in path.parts:
            continue
        rel = path.relative_to(folder)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("qgis.core", "qgis.gui"):
                for alias in node.names:
                    names[alias.asname or alias.name] = (node.module, alias.name)
                    for table in (MOVED_INTO_QGIS, REMOVED_IN_QGIS4):
                        if alias.name in table:
                            out.append(f"{rel}:{node.lineno}: {alias.name} -> {table[alias.name]}")
        seen = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or id(node) in seen:
                continue
            seen |= {id(n) for n in ast.walk(node)}
            parts, root = [], node
            while isinstance(root, ast.Attribute):
                parts.insert(0, root.attr)
                root = root.value
            if not isinstance(root, ast.Name) or root.id not in names:
                continue
            module, name = names[root.id]
            path_names = [name] + parts
            for i in range(2, len(path_names) + 1):
                dotted = ".".join(path_names[:i])
                for table in (MOVED_INTO_QGIS, REMOVED_IN_QGIS4):
                    if dotted in table:
                        out.append(f"{rel}:{node.lineno}: {dotted} -> {table[dotted]} (senclip_qgis/compat.py)")
            owner = getattr(importlib.import_module(module), name)
            for part in parts:
                value = getattr(owner, part, None)
                if value is None:
                    break
                if is_enum_member(value) and owner is not type(value):
                    out.append(f"{rel}:{node.lineno}: unscoped enum {'.'.join([name] + parts)}: "
                               f"write {type(value).__qualname__}.{part}")
                    break
                owner = value
    return sorted(out)


def test_plugin_uses_no_unscoped_or_moved_qgis_names():
    assert qgis_offenders(PLUGIN) == []


def test_qgis_check_finds_unscoped_and_moved_names(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from qgis.core import Qgis, QgsFeatureSink, QgsProcessing, QgsWkbTypes\n"
        "a = QgsFeatureSink.FastInsert\n"
        "b = QgsFeatureSink.Flag.FastInsert\n"
        "c = QgsProcessing.SourceType.TypeVectorPolygon\n"
        "d = Qgis.Info\n"
        "e = Qgis.QGIS_VERSION_INT\n"
        "f = Qgis.geoWkt()\n", encoding="utf-8")
    assert qgis_offenders(tmp_path) == sorted([
        "bad.py:2: unscoped enum QgsFeatureSink.FastInsert: write QgsFeatureSink.Flag.FastInsert",
        "bad.py:4: QgsProcessing.SourceType -> Qgis.ProcessingSourceType (senclip_qgis/compat.py)",
        "bad.py:5: unscoped enum Qgis.Info: write Qgis.MessageLevel.Info",
        "bad.py:7: Qgis.geoWkt -> QgsCoordinateReferenceSystem('EPSG:4326').toWkt() (senclip_qgis/compat.py)",
    ])


# -- compat on this QGIS (3.22) -------------------------------------------------------------------
def test_compat_gives_the_names_this_qgis_understands():
    """On 3.22 the new Qgis.* names do not exist: compat must fall back to the 3.22 ones."""
    from qgis.core import (
        Qgis, QgsField, QgsMapLayerProxyModel, QgsProcessing, QgsProcessingAlgorithm,
        QgsProcessingParameterDefinition, QgsProcessingParameterFile, QgsProcessingParameterNumber, QgsWkbTypes,
    )
    from qgis.PyQt.QtCore import QVariant

    from senclip_qgis import compat

    legacy = Qgis.QGIS_VERSION_INT < 33600
    if legacy:
        assert compat.PARAMETER_ADVANCED == QgsProcessingParameterDefinition.Flag.FlagAdvanced
        assert compat.ALGORITHM_NO_THREADING == QgsProcessingAlgorithm.Flag.FlagNoThreading
        assert compat.NUMBER_INTEGER == QgsProcessingParameterNumber.Type.Integer
        assert compat.FILE_FOLDER == QgsProcessingParameterFile.Behavior.Folder
        assert compat.SOURCE_VECTOR_POLYGON == QgsProcessing.SourceType.TypeVectorPolygon
        assert compat.RASTER_LAYER_FILTER == QgsMapLayerProxyModel.Filter.RasterLayer
    if Qgis.QGIS_VERSION_INT < 33000:
        assert compat.NO_GEOMETRY == QgsWkbTypes.Type.NoGeometry
    else:
        assert compat.NO_GEOMETRY == Qgis.WkbType.NoGeometry
    for kind, variant in (("int", "Int"), ("int64", "LongLong"), ("double", "Double"), ("string", "String")):
        field = QgsField("x", compat.field_type(kind))
        if Qgis.QGIS_VERSION_INT < 33800:
            assert field.type() == getattr(QVariant, variant), kind
    with pytest.raises(AttributeError, match="neither"):
        compat.qgis_name("Qgis.NoSuchEnum.Value", "QgsProcessing.NoSuchEnum.Value")


def test_version_checks_live_only_in_compat():
    """One helper, not scattered checks: no other plugin module asks which QGIS/Qt it runs on."""
    markers = ("QGIS_VERSION_INT", "QT_VERSION <", "QT_VERSION >", "PYQT_VERSION <", "PYQT_VERSION >")
    offenders = [f"{p.relative_to(PLUGIN)}: {m}" for p in sorted(PLUGIN.rglob("*.py"))
                 if "backend_src" not in p.parts and p.name != "compat.py"
                 for m in markers if m in p.read_text(encoding="utf-8")]
    assert offenders == []
