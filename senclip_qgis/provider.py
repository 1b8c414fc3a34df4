"""The "senclip" Processing provider: always registers every algorithm.

A missing backend is reported when an algorithm runs (with the fix), never by hiding algorithms:
models and scripts that reference ``senclip:classify`` must keep loading.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.accuracy import AccuracyAlgorithm
from .algorithms.change import ChangeAlgorithm
from .algorithms.classify import ClassifyAlgorithm
from .algorithms.classify_embeddings import ClassifyEmbeddingsAlgorithm
from .algorithms.download_weights import DownloadWeightsAlgorithm
from .algorithms.embed import EmbedAlgorithm
from .algorithms.fewshot import FewShotAlgorithm
from .algorithms.find_similar import FindSimilarAlgorithm
from .algorithms.install_backend import InstallBackendAlgorithm
from .algorithms.map_region import MapRegionAlgorithm

ICON = Path(__file__).resolve().parent / "icon.svg"


class SenclipProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "senclip"

    def name(self) -> str:
        return "SenCLIP"

    def longName(self) -> str:  # noqa: N802 - Qt naming
        return "SenCLIP zero-shot land cover for Sentinel-2"

    def icon(self):
        return QIcon(str(ICON)) if ICON.is_file() else super().icon()

    def loadAlgorithms(self):  # noqa: N802
        for alg in (ClassifyAlgorithm(), EmbedAlgorithm(), ClassifyEmbeddingsAlgorithm(),
                    InstallBackendAlgorithm(), DownloadWeightsAlgorithm(), MapRegionAlgorithm(), FewShotAlgorithm(),
                    FindSimilarAlgorithm(), ChangeAlgorithm(), AccuracyAlgorithm()):
            self.addAlgorithm(alg)
