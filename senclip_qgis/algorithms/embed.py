"""senclip:embed — encode a raster once into an embedding store, to re-classify it cheaply later."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import SenclipAlgorithm


class EmbedAlgorithm(SenclipAlgorithm):
    NAME = "embed"
    DISPLAY = "Compute image embeddings (embedding store)"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Sentinel-2 raster (file-based: GeoTIFF, JP2, VRT)")))
        self.add_model_params()
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT, self.tr("Embedding store (folder)")))

    def request_args(self, parameters, context, feedback) -> dict:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        args = {"input": self.raster_path(layer),
                "out": self.parameterAsFileOutput(parameters, self.OUTPUT, context),
                "overwrite": True}
        args.update(self.model_args(parameters, context, layer, feedback))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        result = self.run_backend("embed", args, feedback)
        for line in embed_summary(result):
            feedback.pushInfo(line)
        self.report_cloud(result, 0, feedback)
        return {self.OUTPUT: result.get("path") or args["out"]}


def embed_summary(result: dict) -> list[str]:
    """Log lines from the worker's answer, i.e. ``senclip.api.EmbedResult`` as JSON:
    ``path``, ``chips``, ``grid`` (tile, stride, rows, cols, width, height), ``model`` (the
    encoder's record), ``backend``, ``device``."""
    lines = []
    if result.get("chips") is not None:
        lines.append(f"chips encoded: {result['chips']}")
    grid = result.get("grid") or {}
    if grid.get("rows") is not None and grid.get("cols") is not None:
        lines.append(f"grid: {grid['rows']} x {grid['cols']} cells (tile {grid.get('tile')} px, "
                     f"stride {grid.get('stride')} px) over {grid.get('width')} x {grid.get('height')} px")
    model = result.get("model") or {}
    if model.get("model_id"):
        lines.append(f"model: {model['model_id']} ({model.get('arch')}, {model.get('embed_dim')}-d)")
    if result.get("backend"):
        lines.append(f"backend: {result['backend']} on {result.get('device')}")
    return lines
