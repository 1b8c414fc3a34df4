"""Styles of the embedding tools' rasters: similarity and distance as colour ramps, masks and
class changes as paletted layers. Applied by the dock at once and by Processing's layer
post-processor, so results never open as grey single-band rasters."""
from __future__ import annotations

from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

# viridis (perceptually uniform, colour-blind safe) at five stops
RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def style_ramp(layer: QgsRasterLayer) -> None:
    """Band 1 as a continuous colour ramp over its actual range (nodata transparent)."""
    if not layer.isValid():
        return
    stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.Stats.Min | QgsRasterBandStats.Stats.Max)
    lo, hi = stats.minimumValue, stats.maximumValue
    if hi <= lo:
        hi = lo + 1e-6
    fn = QgsColorRampShader(lo, hi)
    fn.setColorRampType(QgsColorRampShader.Type.Interpolated)
    step = (hi - lo) / (len(RAMP) - 1)
    fn.setColorRampItemList([QgsColorRampShader.ColorRampItem(lo + i * step, QColor(c), f"{lo + i * step:.3f}")
                             for i, c in enumerate(RAMP)])
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_mask(layer: QgsRasterLayer) -> None:
    """1 = similar (orange), 0 = not similar (transparent)."""
    if not layer.isValid():
        return
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1,
                                         [QgsPalettedRasterRenderer.Class(1, QColor("#ff7f0e"), "similar")])
    layer.setRenderer(renderer)
    layer.triggerRepaint()


class ToolStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies one of the styles above once Processing has loaded an output layer."""

    _alive: list = []  # must outlive the algorithm instance

    def __init__(self, style) -> None:
        super().__init__()
        self.style = style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - Qt naming
        if isinstance(layer, QgsRasterLayer):
            self.style(layer)

    @classmethod
    def attach(cls, context, path: str, style) -> None:
        if path and context.willLoadLayerOnCompletion(path):
            proc = cls(style)
            cls._alive.append(proc)
            del cls._alive[:-20]
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(proc)
