"""Map tool for "find similar": a click asks the worker for the similarity of every cell to the
chip under the cursor (the point is handed over in the input layer's CRS, like the probe)."""
from __future__ import annotations

from qgis.PyQt.QtCore import Qt

from .probe_tool import ProbeTool


class SimilarTool(ProbeTool):
    def __init__(self, canvas, crs_getter, callback) -> None:
        super().__init__(canvas, crs_getter, callback)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
