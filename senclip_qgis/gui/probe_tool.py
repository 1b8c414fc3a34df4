"""Map tool: click the map, see the top classes and their probabilities there."""
from __future__ import annotations

from qgis.core import QgsCoordinateTransform, QgsProject
from qgis.gui import QgsMapToolEmitPoint


class ProbeTool(QgsMapToolEmitPoint):
    """Turns a click (canvas CRS) into the input layer's CRS and hands it to ``callback(x, y)``."""

    def __init__(self, canvas, crs_getter, callback) -> None:
        super().__init__(canvas)
        self.crs_getter = crs_getter
        self.callback = callback
        self.canvasClicked.connect(self._clicked)

    def _clicked(self, point, button) -> None:
        crs = self.crs_getter()
        if crs is not None and crs.isValid():
            ct = QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), crs, QgsProject.instance())
            point = ct.transform(point)
        self.callback(point.x(), point.y())
