"""senclip:download_weights — fetch (or verify) a model's weights into the cache, from QGIS.

QGIS users have no ``senclip`` command; this is their way to fill the weights cache while online
(before going into the field, or to see at once whether the hub can be reached). Offline it fails
in about a second and says where to copy the file by hand.
"""
from __future__ import annotations

from qgis.core import QgsProcessingOutputString, QgsProcessingParameterEnum

from .. import catalog
from .base import SenclipAlgorithm


class DownloadWeightsAlgorithm(SenclipAlgorithm):
    NAME = "download_weights"
    DISPLAY = "Download model weights"
    PATH = "PATH"

    def group(self) -> str:
        return self.tr("Set-up")

    def groupId(self) -> str:  # noqa: N802
        return "setup"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, self.tr("Model"), options=catalog.model_ids(), defaultValue=catalog.DEFAULT_MODEL,
            usesStaticStrings=True))
        self.addOutput(QgsProcessingOutputString(self.PATH, self.tr("Weight file")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        model = self.parameterAsEnumString(parameters, self.MODEL, context) or catalog.DEFAULT_MODEL
        result = self.run_backend("download_weights", {"model": model}, feedback)
        if result.get("path") is None:
            feedback.pushInfo(self.tr("{} has no weight file (random initialisation); nothing to download")
                              .format(model))
            return {self.PATH: ""}
        state = self.tr("verified") if result.get("verified") else self.tr("no published checksum; computed")
        feedback.pushInfo(f"{result['path']}\nsha256 {result.get('sha256')} ({state})")
        return {self.PATH: result["path"]}
