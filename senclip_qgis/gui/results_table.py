"""The dock's per-class results: colour swatch, area, share and mean confidence of every class, and
what a transductive run found absent.

A transductive solver can find a prompted class (almost) absent from the scene. Its row stays (the
map's legend keeps the class and its colour), greyed, with "absent (est. 0.2 %)" under the name, and
a note under the table names the solver's method. The backend's ``transductive`` record carries
``method``, ``params`` and ``absent`` (``class``, 1-based ``index``, ``share`` 0..1); a backend from
before those keys sends none of them, and then nothing is marked.
"""
from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtGui import QPalette
from qgis.PyQt.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from ..styling import CLOUD_LABEL


def tr(text: str) -> str:
    return QCoreApplication.translate("SenclipDock", text)


class ResultsTable(QTableWidget):
    """Class (takes the spare width, wraps) and three short number columns: fits a 284 px dock.

    As tall as its rows: the dock scrolls already, and a second scrollbar inside it would take width
    from the names and hide rows. Rows are re-fitted when the width changes (wrapped names)."""

    MIN_HEIGHT = 110

    def __init__(self, parent=None) -> None:
        super().__init__(0, 4, parent)
        self.setObjectName("SenclipResults")
        self.setHorizontalHeaderLabels([tr("Class"), "km²", "%", tr("Conf.")])
        self.horizontalHeaderItem(3).setToolTip(tr("Mean confidence of the class's cells (0 to 1)"))
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # full class names, wrapped
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setVisible(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(True)
        self.setFixedHeight(self.MIN_HEIGHT)

    def fit_rows(self) -> None:
        self.resizeRowsToContents()
        rows = sum(self.rowHeight(r) for r in range(self.rowCount()))
        self.setFixedHeight(max(self.MIN_HEIGHT, self.horizontalHeader().height() + rows + 2 * self.frameWidth()))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.fit_rows()


def absent_classes(result: dict) -> dict[int, float]:
    """Row (0-based class position) -> the solver's estimated share, for classes it found absent."""
    classes, out = result["classes"], {}
    for entry in (result.get("transductive") or {}).get("absent") or []:
        name, index = entry.get("class"), entry.get("index")
        if name in classes:
            out[classes.index(name)] = float(entry.get("share") or 0.0)
        elif isinstance(index, int) and 1 <= index <= len(classes):
            out[index - 1] = float(entry.get("share") or 0.0)
    return out


def transductive_note(result: dict) -> str:
    """One line naming the transductive method (and its parameters); empty after a plain run."""
    record = result.get("transductive")
    if not isinstance(record, dict) or not record:  # a plain run: None (or "off" in the map's tag)
        return ""
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    shown = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items()
                      if isinstance(v, (str, int, float)))
    text = tr("Transductive: {}").format(record.get("method") or tr("whole scene"))
    text += f" ({shown})" if shown else ""
    absent = absent_classes(result)
    if absent:
        text += tr("; {} of {} classes absent or nearly so (greyed above)").format(len(absent),
                                                                               len(result["classes"]))
    return text + "."


def fill(table: ResultsTable, result: dict, colours: dict) -> None:
    """One row per class (``colours``: class value -> QColor of the map), then the cloud row if any."""
    from ..algorithms.base import per_class

    classes = result["classes"]
    counts = per_class(result.get("counts"), classes, 0)
    areas = per_class(result.get("area_m2"), classes, None)
    conf = per_class(result.get("mean_confidence"), classes, None)
    total = float(sum(counts)) or 1.0
    masked = int(result.get("cloud_masked") or 0)
    absent = absent_classes(result)
    table.setRowCount(len(classes) + (1 if masked else 0))
    for i, name in enumerate(classes):
        cells = [name, "n/a" if areas[i] is None else f"{areas[i] / 1e6:.3f}",
                 f"{100 * counts[i] / total:.1f}", "n/a" if conf[i] is None else f"{conf[i]:.2f}"]
        _set_row(table, i, cells, colours.get(i + 1), absent.get(i))
    if masked:  # share of the mapped area (classified + masked), not of the classes
        _set_row(table, len(classes), [CLOUD_LABEL, "", f"{100 * masked / (total + masked):.1f}", ""], None, None)
    table.fit_rows()


def percent(share: float) -> str:
    """0.0002 -> '0.02', 0.012 -> '1.2': a share small enough to call absent still reads as a number."""
    value = 100 * share
    return f"{value:.2f}" if 0 < value < 0.1 else f"{value:.1f}"


def _set_row(table, row: int, cells: list[str], colour, absent_share) -> None:
    name = cells[0]
    tip = name
    if absent_share is not None:
        mark = tr("absent (est. {} %)").format(percent(absent_share))
        cells = [f"{name}\n{mark}"] + cells[1:]
        tip = tr("{}: absent or nearly so; the transductive solver estimates {} % of the scene. "
                 "The class stays in the map's legend.").format(name, percent(absent_share))
    grey = table.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    for j, text in enumerate(cells):
        item = QTableWidgetItem(text)
        if j == 0 and colour is not None:
            item.setData(Qt.ItemDataRole.DecorationRole, colour)
        if j == 0 or absent_share is not None:
            item.setToolTip(tip)
        if absent_share is not None:
            item.setForeground(grey)
        table.setItem(row, j, item)
