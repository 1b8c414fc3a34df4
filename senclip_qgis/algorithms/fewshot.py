"""senclip:fewshot — labelled example points/polygons refine the classes of an embedding store."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorLayer,
)

from .. import catalog, compat
from .base import EmbeddingToolAlgorithm
from .classify import finish_class_map
from .vector_export import export_geojson


class FewShotAlgorithm(EmbeddingToolAlgorithm):
    NAME = "fewshot"
    DISPLAY = "Refine classes with labelled examples (few-shot)"
    EXAMPLES = "EXAMPLES"
    FIELD = "FIELD"
    EXAMPLE_WEIGHT = "EXAMPLE_WEIGHT"
    FOLDS = "FOLDS"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.add_store_param()
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.EXAMPLES, self.tr("Labelled examples (points or polygons)"),
            [compat.SOURCE_VECTOR_ANY]))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, self.tr("Class field"), parentLayerParameterName=self.EXAMPLES))
        self.add_prompt_params()
        self.addParameter(QgsProcessingParameterNumber(
            self.EXAMPLE_WEIGHT, self.tr("Weight of the examples against the prompts (0..1)"),
            compat.NUMBER_DOUBLE, defaultValue=0.5, minValue=0.0, maxValue=1.0))
        self._advanced(QgsProcessingParameterNumber(
            self.FOLDS, self.tr("Cross-validation folds"), compat.NUMBER_INTEGER,
            defaultValue=5, minValue=2, maxValue=50))
        self.add_runtime_params()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Class map")))
        self.add_table_output()

    def prompt_args(self, parameters, context) -> dict:
        """Prompts are optional here: classes may come from the examples alone."""
        classes_text = self.parameterAsString(parameters, self.CLASSES, context) or ""
        classes = [c.strip() for c in classes_text.split(";") if c.strip()]
        return {"classes": classes or None, "prompts": self.parameterAsFile(parameters, self.PROMPTS, context) or None,
                "prompt_style": self.enum_value(parameters, self.PROMPT_STYLE, context, catalog.PROMPT_STYLES),
                "resolution": self.enum_value(parameters, self.RESOLUTION, context, catalog.RESOLUTIONS),
                "calibrate": self.enum_value(parameters, self.CALIBRATE, context, catalog.CALIBRATIONS),
                **self.transductive_args(parameters, context)}

    def request_args(self, parameters, context, feedback) -> dict:
        layer = self.parameterAsVectorLayer(parameters, self.EXAMPLES, context)
        field = self.parameterAsString(parameters, self.FIELD, context)
        args = {"store": self.parameterAsFile(parameters, self.STORE, context),
                "examples": export_geojson(layer, self.EXAMPLES, context, feedback, field), "field": field,
                "example_weight": self.parameterAsDouble(parameters, self.EXAMPLE_WEIGHT, context),
                "folds": self.parameterAsInt(parameters, self.FOLDS, context),
                "out": self.parameterAsOutputLayer(parameters, self.OUTPUT, context), "overwrite": True}
        args.update(self.prompt_args(parameters, context))
        args.update(self.runtime_args(parameters, context))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        result = self.run_backend("fewshot", args, feedback)
        cv = result.get("cross_validation")
        if cv:
            feedback.pushInfo(self.tr("Cross-validated on held-out examples ({} folds): overall accuracy {:.1f} %, "
                                      "kappa {:.3f} (majority class {:.1f} %)").format(
                cv["folds"], 100 * cv["overall_accuracy"], cv["kappa"], 100 * cv["majority_baseline"]))
        outputs = finish_class_map(self, result["map"], dict(args, classes=result["map"]["classes"]),
                                   parameters, context, feedback)
        outputs.update(EXAMPLES_SAVED=result["examples_path"], REPORT=result["report_path"],
                       CV_ACCURACY=(cv or {}).get("overall_accuracy"))
        return outputs
