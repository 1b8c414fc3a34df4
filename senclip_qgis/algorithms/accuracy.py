"""senclip:accuracy — a class map against reference points/polygons: error matrix, kappa, areas."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from .. import compat
from .base import EmbeddingToolAlgorithm
from .vector_export import export_geojson


class AccuracyAlgorithm(EmbeddingToolAlgorithm):
    NAME = "accuracy"
    DISPLAY = "Accuracy report against reference data"
    REFERENCE = "REFERENCE"
    FIELD = "FIELD"
    MATCH = "MATCH"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Class map (made by SenCLIP)")))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.REFERENCE, self.tr("Reference points or polygons"), [compat.SOURCE_VECTOR_ANY]))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, self.tr("Class field"), parentLayerParameterName=self.REFERENCE))
        self.addParameter(QgsProcessingParameterString(
            self.MATCH, self.tr("Reference class = map class, where names differ (water=Sea or Lake;…)"), optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Report folder")))
        self.addOutput(QgsProcessingOutputNumber("OVERALL_ACCURACY", self.tr("Overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber("KAPPA", self.tr("Cohen's kappa")))

    def request_args(self, parameters, context, feedback) -> dict:
        layer = self.parameterAsVectorLayer(parameters, self.REFERENCE, context)
        field = self.parameterAsString(parameters, self.FIELD, context)
        return {"classmap": self.raster_path(self.parameterAsRasterLayer(parameters, self.INPUT, context)),
                "reference": export_geojson(layer, self.REFERENCE, context, feedback, field), "field": field,
                "match": self.parameterAsString(parameters, self.MATCH, context) or None,
                "out": self.parameterAsString(parameters, self.OUTPUT, context), "overwrite": True}

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        res = self.run_backend("accuracy", args, feedback)
        rep = res["report"]
        feedback.pushInfo(self.tr("{} samples: overall accuracy {:.1f} %, kappa {:.3f}; report {}/report.html").format(
            rep["samples"], 100 * rep["overall_accuracy"], rep["kappa"], res["path"]))
        if rep.get("note"):
            feedback.reportError(rep["note"], False)
        return {self.OUTPUT: res["path"], "OVERALL_ACCURACY": rep["overall_accuracy"], "KAPPA": rep["kappa"],
                "HTML": f"{res['path']}/report.html"}
