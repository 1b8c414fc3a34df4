"""The classes-and-prompts table of the dock: one row per class, prompts separated by ';'."""
from __future__ import annotations

import json
from pathlib import Path

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

SEP = ";"
CLASS_SHARE = 0.5  # the class column's most of the table's width: the prompts stay in sight


class PromptTable(QTableWidget):
    """Edits a mapping class -> prompts; an empty prompt cell means 'use the style's prompts'."""

    edited = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(0, 2, parent)
        self.setObjectName("SenclipPrompts")
        self.setHorizontalHeaderLabels([self.tr("Class"), self.tr("Prompts")])
        self.horizontalHeaderItem(1).setToolTip(self.tr("Prompts separated by ';'; empty: the shipped prompts "
                                                        "of that class name, else the style's templates"))
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)  # row numbers: width the names need more
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.itemChanged.connect(lambda *_: self.edited.emit())
        self.edited.connect(self.fit_columns)

    def fit_columns(self) -> None:
        """Class names as wide as they need, but at most CLASS_SHARE of the table; prompts get the rest."""
        want = max(self.sizeHintForColumn(0), self.horizontalHeader().sectionSizeHint(0))
        self.setColumnWidth(0, min(want, int(CLASS_SHARE * self.viewport().width())))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit_columns()

    def add_class(self, name: str = "", prompts=()) -> int:
        row = self.rowCount()
        self.blockSignals(True)
        self.insertRow(row)
        self.setItem(row, 0, QTableWidgetItem(name))
        self.setItem(row, 1, QTableWidgetItem(f"{SEP} ".join(prompts)))
        self.blockSignals(False)
        self.edited.emit()
        return row

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.selectedIndexes()}, reverse=True)
        for row in rows:
            self.removeRow(row)
        if rows:
            self.edited.emit()

    def set_mapping(self, mapping: dict) -> None:
        self.blockSignals(True)
        self.setRowCount(0)
        for name, prompts in mapping.items():
            row = self.rowCount()
            self.insertRow(row)
            self.setItem(row, 0, QTableWidgetItem(name))
            self.setItem(row, 1, QTableWidgetItem(f"{SEP} ".join(prompts)))
        self.blockSignals(False)
        self.edited.emit()

    def mapping(self) -> dict[str, list[str]]:
        """class -> prompts (possibly empty), rows without a class name skipped."""
        out = {}
        for row in range(self.rowCount()):
            name_item, prompt_item = self.item(row, 0), self.item(row, 1)
            name = (name_item.text() if name_item else "").strip()
            if not name:
                continue
            text = prompt_item.text() if prompt_item else ""
            out[name] = [p.strip() for p in text.split(SEP) if p.strip()]
        return out

    def load_json(self, path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object mapping class names to prompt lists")
        self.set_mapping({str(k): [str(p) for p in (v if isinstance(v, list) else [v])] for k, v in data.items()})

    def save_json(self, path) -> None:
        """Classes without own prompts are left out: the file must be usable as --prompts."""
        data = {k: v for k, v in self.mapping().items() if v}
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
