"""senclip:find_similar — cells like a query (points/polygons, a text or an image chip) → similarity and mask."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from .. import catalog, compat
from ..tool_styles import ToolStylePostProcessor, style_mask, style_ramp
from .base import EmbeddingToolAlgorithm
from .vector_export import export_geojson


class FindSimilarAlgorithm(EmbeddingToolAlgorithm):
    NAME = "find_similar"
    DISPLAY = "Find similar places"
    QUERY = "QUERY"
    TEXT = "TEXT"
    CHIP = "CHIP"
    THRESHOLD = "THRESHOLD"
    OUTPUT_MASK = "OUTPUT_MASK"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.add_store_param()
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.QUERY, self.tr("Query points or polygons"), [compat.SOURCE_VECTOR_ANY],
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.TEXT, self.tr("…or a text query (e.g. solar farms)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.CHIP, self.tr("…or an image chip (8-bit RGB or a Sentinel-2 band stack)"), optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.PROMPT_STYLE, self.tr("Prompt style of the text query"), options=catalog.PROMPT_STYLES,
            defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, self.tr("Similarity threshold (empty = automatic, Otsu)"),
            compat.NUMBER_DOUBLE, optional=True, minValue=-1.0, maxValue=1.0))
        self.add_runtime_params()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Similarity")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_MASK, self.tr("Similar cells (mask)"), optional=True, createByDefault=True))

    def request_args(self, parameters, context, feedback) -> dict:
        layer = self.parameterAsVectorLayer(parameters, self.QUERY, context)
        text = (self.parameterAsString(parameters, self.TEXT, context) or "").strip()
        chip = self.parameterAsRasterLayer(parameters, self.CHIP, context)
        if (layer is not None) + bool(text) + (chip is not None) != 1:
            raise QgsProcessingException(self.tr("Give exactly one query: QUERY features, a TEXT or an image CHIP"))
        threshold = parameters.get(self.THRESHOLD)
        mask = self.parameterAsOutputLayer(parameters, self.OUTPUT_MASK, context)
        args = {"store": self.parameterAsFile(parameters, self.STORE, context),
                "out": self.parameterAsOutputLayer(parameters, self.OUTPUT, context), "mask_out": mask or None,
                "threshold": "auto" if threshold in (None, "") else
                self.parameterAsDouble(parameters, self.THRESHOLD, context),
                "prompt_style": self.enum_value(parameters, self.PROMPT_STYLE, context, catalog.PROMPT_STYLES),
                "overwrite": True}
        if layer is not None:
            args["query"] = export_geojson(layer, self.QUERY, context, feedback)
        elif chip is not None:
            args["chip"] = chip.source()
        else:
            args["text"] = text
        args.update(self.runtime_args(parameters, context))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        res = self.run_backend("similar", args, feedback)
        feedback.pushInfo(self.tr("threshold {:.4f} ({}): {:.2f} % of {} cells above").format(
            res["threshold"], res["threshold_method"], 100 * res["share_above"], res["valid_cells"]))
        ToolStylePostProcessor.attach(context, args["out"], style_ramp)
        outputs = {self.OUTPUT: res["path"], "THRESHOLD_USED": res["threshold"], "SHARE_ABOVE": res["share_above"]}
        if res.get("mask_path"):
            ToolStylePostProcessor.attach(context, args["mask_out"], style_mask)
            outputs[self.OUTPUT_MASK] = res["mask_path"]
        return outputs

