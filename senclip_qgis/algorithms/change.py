"""senclip:change — two embedding stores of the same grid (two dates) → cosine distance, class changes."""
from __future__ import annotations

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from .. import catalog, compat
from ..styling import ClassMapPostProcessor
from ..tool_styles import ToolStylePostProcessor, style_ramp
from .base import EmbeddingToolAlgorithm


class ChangeAlgorithm(EmbeddingToolAlgorithm):
    NAME = "change"
    DISPLAY = "Change between two dates"
    STORE_AFTER = "STORE_AFTER"
    OUTPUT_CHANGES = "OUTPUT_CHANGES"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.add_store_param(text="Embedding store of the earlier date")
        self.add_store_param(self.STORE_AFTER, "Embedding store of the later date (same grid and model)")
        self.addParameter(QgsProcessingParameterString(
            self.CLASSES, self.tr("Class names, separated by ';' (for the from → to table; optional)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.PROMPTS, self.tr("Prompt file (JSON: class -> list of prompts)"), extension="json", optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.PROMPT_STYLE, self.tr("Prompt style for classes without prompts"), options=catalog.PROMPT_STYLES,
            defaultValue=0))
        self.add_runtime_params()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Cosine distance")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CHANGES, self.tr("Cells whose top class changed (needs classes)"), optional=True,
            createByDefault=False))
        self.add_table_output()

    def request_args(self, parameters, context, feedback) -> dict:
        classes_text = self.parameterAsString(parameters, self.CLASSES, context) or ""
        classes = [c.strip() for c in classes_text.split(";") if c.strip()]
        prompts = self.parameterAsFile(parameters, self.PROMPTS, context) or None
        changes = self.parameterAsOutputLayer(parameters, self.OUTPUT_CHANGES, context) if (classes or prompts) else None
        args = {"before": self.parameterAsFile(parameters, self.STORE, context),
                "after": self.parameterAsFile(parameters, self.STORE_AFTER, context),
                "out": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
                "classes": classes or None, "prompts": prompts, "changes_out": changes or None,
                "prompt_style": self.enum_value(parameters, self.PROMPT_STYLE, context, catalog.PROMPT_STYLES),
                "overwrite": True}
        args.update(self.runtime_args(parameters, context))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        res = self.run_backend("change", args, feedback)
        feedback.pushInfo(self.tr("{} cells compared, mean cosine distance {:.4f}").format(
            res["compared_cells"], res["mean_distance"]))
        ToolStylePostProcessor.attach(context, args["out"], style_ramp)
        outputs = {self.OUTPUT: res["path"]}
        if res.get("changes_path"):
            if context.willLoadLayerOnCompletion(args["changes_out"]):
                context.layerToLoadOnCompletionDetails(args["changes_out"]).setPostProcessor(
                    ClassMapPostProcessor.create(res["classes"]))
            outputs[self.OUTPUT_CHANGES] = res["changes_path"]
        if res.get("classes"):
            feedback.pushInfo(self.tr("top class changed in {} cells").format(res["changed_cells"]))
            outputs[self.OUTPUT_TABLE] = self._table(res["transitions"], parameters, context, feedback)
        return outputs

    def _table(self, rows, parameters, context, feedback):
        fields = QgsFields()
        for name, kind in (("from", compat.field_type("string")), ("to", compat.field_type("string")), ("changed", compat.field_type("int")),
                           ("cells", compat.field_type("int64")), ("area_km2", compat.field_type("double"))):
            fields.append(QgsField(name, kind))
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT_TABLE, context, fields, compat.NO_GEOMETRY)
        for r in rows:
            km2 = None if r["area_m2"] is None else r["area_m2"] / 1e6
            if r["changed"]:
                feedback.pushInfo(f"  {r['from']} → {r['to']}: {r['cells']} cells"
                                  + ("" if km2 is None else f", {km2:.4f} km²"))
            if sink is not None:
                f = QgsFeature(fields)
                f.setAttributes([r["from"], r["to"], int(r["changed"]), r["cells"], km2])
                sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        return dest
