"""Plugin entry: Processing provider (also headless, for qgis_process) plus the dock and menu actions."""
from __future__ import annotations

from qgis.core import QgsApplication

from .provider import SenclipProvider


class SenclipPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface  # None under qgis_process: initProcessing must not need it
        self.provider = None
        self.dock = None
        self.actions = []

    def initProcessing(self):  # noqa: N802 - QGIS hook, called by qgis_process too
        if self.provider is None:
            self.provider = SenclipProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtGui import QIcon

        from .compat import QAction
        from .provider import ICON

        icon = QIcon(str(ICON))
        for text, slot in (("SenCLIP land cover", self.show_dock),
                           ("SenCLIP diagnostics", self.show_diagnostics)):
            action = QAction(icon, text, self.iface.mainWindow())
            action.triggered.connect(slot)
            self.iface.addPluginToRasterMenu("SenCLIP", action)
            self.actions.append(action)
        self.iface.addRasterToolBarIcon(self.actions[0])

    def show_dock(self):
        from qgis.PyQt.QtCore import Qt

        from .gui.dock import SenclipDock

        if self.dock is None:
            self.dock = SenclipDock(self.iface, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.show()
        self.dock.raise_()

    def show_diagnostics(self):
        from .gui.diagnostics import show_diagnostics

        self._diagnostics = show_diagnostics(self.iface.mainWindow())  # non-modal: keep it alive

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.iface is None:
            return
        for action in self.actions:
            self.iface.removePluginRasterMenu("SenCLIP", action)
            self.iface.removeRasterToolBarIcon(action)
        self.actions = []
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
