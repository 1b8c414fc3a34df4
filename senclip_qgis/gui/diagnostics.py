"""Diagnostics: QGIS side plus the backend's report, as text ready to paste into a bug report."""
from __future__ import annotations

import json
import threading

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


def _dialog_class():
    from qgis.PyQt.QtCore import pyqtSignal
    from qgis.PyQt.QtWidgets import (
        QApplication,
        QDialog,
        QDialogButtonBox,
        QPlainTextEdit,
        QPushButton,
        QVBoxLayout,
    )

    class _Dialog(QDialog):
        """Non-modal: the backend report (a child process, seconds) is collected in a thread."""

        reportReady = pyqtSignal(str)  # noqa: N815 - Qt naming

        def __init__(self, parent=None, collect=diagnostics_text) -> None:
            super().__init__(parent)
            self.setWindowTitle("SenCLIP diagnostics")
            layout = QVBoxLayout(self)
            self.text = QPlainTextEdit(self)
            self.text.setReadOnly(True)
            self.text.setPlainText("Collecting the report (the backend runs in its own process)…")
            layout.addWidget(self.text)
            buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
            self.copy_button = QPushButton("Copy", self)
            self.copy_button.setEnabled(False)
            buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
            self.copy_button.clicked.connect(self.copy)
            buttons.rejected.connect(self.close)
            layout.addWidget(buttons)
            self.resize(700, 500)
            self.done_collecting = False
            self.reportReady.connect(self._show_report)
            threading.Thread(target=lambda: self.reportReady.emit(collect()), daemon=True).start()

        def _show_report(self, report: str) -> None:
            self.text.setPlainText(report)
            self.copy_button.setEnabled(True)
            self.done_collecting = True

        def copy(self) -> None:
            QApplication.clipboard().setText(self.text.toPlainText())

    return _Dialog


def show_diagnostics(parent=None, collect=diagnostics_text):
    """Open the diagnostics window and return at once; the report fills in when it is ready."""
    dialog = _dialog_class()(parent, collect)
    dialog.show()
    return dialog
