"""senclip:embed — encode a raster once into an embedding store, to re-classify it cheaply later."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFolderDestination, QgsProcessingParameterRasterLayer

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
        for key in ("tiles", "shape", "model"):
            if result.get(key) is not None:
                feedback.pushInfo(f"{key}: {result[key]}")
        self.report_cloud(result, 0, feedback)
        return {self.OUTPUT: result.get("path") or args["out"]}
