"""senclip:classify — a Sentinel-2 raster and class names in, a styled land-cover map out."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..styling import ClassMapPostProcessor
from .base import SenclipAlgorithm


class ClassifyAlgorithm(SenclipAlgorithm):
    NAME = "classify"
    DISPLAY = "Classify land cover from text prompts"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Sentinel-2 raster (file-based: GeoTIFF, JP2, VRT)")))
        self.add_prompt_params()
        self.add_model_params()
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Class map")))
        self.add_table_output()

    def request_args(self, parameters, context, feedback) -> dict:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        args = {"input": self.raster_path(layer),
                "out": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
                "overwrite": True}
        args.update(self.prompt_args(parameters, context))
        args.update(self.model_args(parameters, context, layer, feedback))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        result = self.run_backend("classify", args, feedback)
        return finish_class_map(self, result, args, parameters, context, feedback)


def finish_class_map(alg, result, args, parameters, context, feedback) -> dict:
    """Shared tail of classify and classify_embeddings: areas, styling, outputs."""
    out = result.get("path") or args["out"]
    classes = result.get("classes") or args["classes"]
    table = alg.report_areas(result, parameters, context, feedback)
    if context.willLoadLayerOnCompletion(args["out"]):
        details = context.layerToLoadOnCompletionDetails(args["out"])
        details.setPostProcessor(ClassMapPostProcessor.create(classes))
    outputs = {alg.OUTPUT: out, "CLASSES": ";".join(classes)}
    if table is not None:
        outputs[alg.OUTPUT_TABLE] = table
    return outputs
