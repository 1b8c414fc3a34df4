"""Diagnostics: QGIS side plus the backend's report, as text ready to paste into a bug report."""
from __future__ import annotations

import json

from .. import backend_client


def diagnostics_text(timeout_s: float = 120.0) -> str:
    """Never raises: a broken backend is exactly what this report must describe."""
    lines = ["SenCLIP diagnostics", "==================="]
    for key, value in backend_client.qgis_python_info().items():
        lines.append(f"{key}: {value}")
    try:
        report = backend_client.run_request("diagnostics", {})
    except backend_client.BackendError as exc:
        lines.append(f"backend: NOT AVAILABLE ({exc.type}): {exc}")
        return "\n".join(lines)
    lines.append("backend:")
    lines.append(json.dumps(report, indent=2, default=str))
    return "\n".join(lines)


def show_diagnostics(parent=None) -> None:
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QCursor
    from qgis.PyQt.QtWidgets import QApplication, QDialog, QPlainTextEdit, QVBoxLayout

    dialog = QDialog(parent)
    dialog.setWindowTitle("SenCLIP diagnostics")
    layout = QVBoxLayout(dialog)
    text = QPlainTextEdit(dialog)
    text.setReadOnly(True)
    QApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
    try:
        report = diagnostics_text()
    finally:
        QApplication.restoreOverrideCursor()
    text.setPlainText(report)
    layout.addWidget(text)
    dialog.resize(700, 500)
    dialog.exec()
