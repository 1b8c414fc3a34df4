"""Measures the dock inside a real QGIS desktop; run by ``test_dock_fits.py`` as
``qgis --code dock_fit_probe.py`` under Xvfb, never imported by pytest.

It opens the dock the way the plugin does (``SenclipPlugin.initGui`` + ``show_dock``: the right dock
area, QGIS's default width), then measures three states: as opened, with every collapsible section
expanded, and expanded at 298 px (QGIS 3.22's default width for a new right-hand dock). For each:
the scroll area's viewport width, the contents' minimum width, whether the horizontal scrollbar shows,
every visible button and field whose mapped geometry leaves the viewport horizontally or is squeezed
below its own minimum, and every table whose columns do not fit its viewport. Writes JSON (and
screenshots) to the paths in ``DOCK_PROBE_OUT``/``DOCK_PROBE_SHOTS``, then ends the process.
"""
import json
import os
import sys
import traceback

from qgis.gui import QgsCollapsibleGroupBoxBasic
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QComboBox,
    QLineEdit,
    QTableView,
)
from qgis.utils import iface

OUT, SHOTS = os.environ["DOCK_PROBE_OUT"], os.environ["DOCK_PROBE_SHOTS"]
sys.path.insert(0, os.environ["DOCK_PROBE_REPO"])
MIN_COLUMN = 20  # a column narrower than this shows nothing readable: "out of sight"
# the widest results a dock shows: a whole Sentinel-2 tile (12 100 km²), long names, clouds, a class
# the transductive solver found absent (display only: no backend runs here)
CLASSES = ["Forest", "Sea or Lake", "Annual Crop Land", "Herbaceous Vegetation Land", "Residential Buildings"]
RESULT = {"classes": CLASSES, "counts": dict(zip(CLASSES, [4000000, 2500000, 3000000, 1000, 600000])),
          "area_m2": dict(zip(CLASSES, [4.8e9, 3.0e9, 3.6e9, 1.2e6, 7.2e8])),
          "mean_confidence": dict(zip(CLASSES, [0.91, 0.88, 0.47, 0.3, 0.62])), "cloud_masked": 400000,
          "transductive": {"spatial": "8", "method": "transclip", "params": {"lambda": 0.5, "k": 3},
                           "absent": [{"class": CLASSES[3], "index": 4, "share": 0.0002}]}}


def settle(n=30):
    for _ in range(n):
        QApplication.processEvents()


def name(w):
    text = w.text() if hasattr(w, "text") and callable(w.text) else ""
    return f"{type(w).__name__}({text!r})" if text else f"{type(w).__name__}[{w.objectName()}]"


def outside(scroll, body):
    """Buttons and fields not inside the viewport horizontally, or narrower than their minimum."""
    viewport, bad = scroll.viewport(), []
    kinds = (QAbstractButton, QComboBox, QLineEdit, QTableView)
    for w in body.findChildren(QAbstractButton) + [w for k in kinds[1:] for w in body.findChildren(k)]:
        if not w.isVisibleTo(body) or isinstance(w.parent(), QAbstractScrollArea):  # a table's corner button
            continue
        x = w.mapTo(viewport, QPoint(0, 0)).x()
        if x < 0 or x + w.width() > viewport.width() or w.width() < w.minimumSizeHint().width():
            bad.append(f"{name(w)} x={x} w={w.width()} min={w.minimumSizeHint().width()}")
    return bad


def tables(body):
    """Tables whose columns overflow their viewport, or whose columns are out of sight."""
    bad = []
    for t in body.findChildren(QTableView):
        header = t.horizontalHeader()
        widths = [header.sectionSize(i) for i in range(header.count()) if not header.isSectionHidden(i)]
        if header.length() > t.viewport().width() or min(widths, default=MIN_COLUMN) < MIN_COLUMN \
                or t.horizontalScrollBar().isVisible():
            bad.append(f"{t.objectName() or type(t).__name__}: columns {widths} in {t.viewport().width()} px")
    return bad


def state(dock):
    scroll = dock.widget()
    body = scroll.widget()
    return {"dock_width": dock.width(), "viewport_width": scroll.viewport().width(),
            "contents_min_width": body.minimumSizeHint().width(),
            "hscrollbar_visible": scroll.horizontalScrollBar().isVisible(),
            "outside": outside(scroll, body), "tables": tables(body)}


def measure(plugin):
    dock, window = plugin.dock, iface.mainWindow()
    report = {"screen": list(QApplication.primaryScreen().geometry().getRect()),
              "area": int(window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea)}
    dock._fill_results(RESULT)
    settle()
    report["opened"] = state(dock)
    window.grab().save(f"{SHOTS}-window.png")
    for box in dock.findChildren(QgsCollapsibleGroupBoxBasic):
        box.setCollapsed(False)
    settle()
    report["expanded"] = state(dock)
    window.resizeDocks([dock], [298], Qt.Orientation.Horizontal)
    settle()
    report["expanded_298"] = state(dock)
    dock.grab().save(f"{SHOTS}-dock.png")
    dock.widget().widget().grab().save(f"{SHOTS}-contents.png")  # the whole scrolled contents
    return report


def main():
    try:
        from senclip_qgis.plugin import SenclipPlugin

        plugin = SenclipPlugin(iface)
        plugin.initGui()
        plugin.show_dock()
        settle()
        QTimer.singleShot(1500, lambda: finish(plugin))
    except Exception:  # noqa: BLE001 - reported to the test, which fails with it
        finish(None, traceback.format_exc())


def finish(plugin, error=None):
    try:
        report = {"error": error} if plugin is None else measure(plugin)
    except Exception:  # noqa: BLE001
        report = {"error": traceback.format_exc()}
    with open(OUT + ".tmp", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    os.replace(OUT + ".tmp", OUT)
    os._exit(0)  # QGIS's own shutdown is not under test


QTimer.singleShot(1000, main)
