"""Map tool for few-shot examples: click = a point example; in polygon mode, clicks add vertices
and a right click closes the polygon. Geometries reach ``callback(geojson_geometry)`` in the
input layer's CRS (the store's), so the backend needs no reprojection."""
from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransform,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

from .. import compat


class ExampleTool(QgsMapTool):
    def __init__(self, canvas, crs_getter, callback, polygon: bool = False) -> None:
        super().__init__(canvas)
        self.crs_getter = crs_getter
        self.callback = callback
        self.polygon = polygon
        self.vertices: list[QgsPointXY] = []
        self.band = QgsRubberBand(canvas, compat.POLYGON_GEOMETRY)
        self.band.setColor(QColor(255, 127, 14, 120))
        self.setCursor(Qt.CursorShape.CrossCursor)

    def canvasReleaseEvent(self, event):  # noqa: N802 - Qt naming
        point = self.toMapCoordinates(event.pos())
        if event.button() == Qt.MouseButton.RightButton:
            self.finish_polygon()
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if not self.polygon:
            self.callback({"type": "Point", "coordinates": list(self._to_input(point))})
            return
        self.vertices.append(point)
        self.band.addPoint(point)

    def finish_polygon(self) -> None:
        """Close the polygon being drawn (needs three vertices) and hand it over."""
        if len(self.vertices) >= 3:
            ring = [list(self._to_input(p)) for p in self.vertices]
            self.callback({"type": "Polygon", "coordinates": [ring + [ring[0]]]})
        self.vertices = []
        self.band.reset(compat.POLYGON_GEOMETRY)

    def _to_input(self, point: QgsPointXY) -> tuple[float, float]:
        crs = self.crs_getter()
        if crs is not None and crs.isValid():
            ct = QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), crs, QgsProject.instance())
            point = ct.transform(point)
        return point.x(), point.y()

    def deactivate(self):
        self.vertices = []
        self.band.reset(compat.POLYGON_GEOMETRY)
        super().deactivate()


def example_geometry(geojson: dict) -> QgsGeometry:
    """A GeoJSON point/polygon (input CRS) as a QGIS geometry, for the examples layer."""
    if geojson["type"] == "Point":
        return QgsGeometry.fromPointXY(QgsPointXY(*geojson["coordinates"]))
    return QgsGeometry.fromPolygonXY([[QgsPointXY(x, y) for x, y in geojson["coordinates"][0]]])
