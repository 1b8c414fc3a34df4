"""senclip:classify_embeddings — new prompts on an existing embedding store: no image encoding."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterRasterDestination,
)

from .base import SenclipAlgorithm
from .classify import finish_class_map


class ClassifyEmbeddingsAlgorithm(SenclipAlgorithm):
    NAME = "classify_embeddings"
    DISPLAY = "Classify an embedding store with text prompts"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.add_store_param()
        self.add_prompt_params()
        self.add_runtime_params()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Class map")))
        self.add_table_output()

    def request_args(self, parameters, context, feedback) -> dict:
        args = {"store": self.parameterAsFile(parameters, self.STORE, context),
                "out": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
                "overwrite": True}
        args.update(self.prompt_args(parameters, context))
        args.update(self.runtime_args(parameters, context))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        result = self.run_backend("classify_store", args, feedback)
        return finish_class_map(self, result, args, parameters, context, feedback)
