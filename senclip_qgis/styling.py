"""Class maps load as paletted rasters with the class names, whoever runs the algorithm.

The GeoTIFF carries a colour table and a ``.qml`` sidecar, so plain GDAL and ``qgis_process`` users
get colours; inside QGIS a layer post-processor applies the renderer with names, which also works
from the modeler and the toolbox's batch mode.
"""
from __future__ import annotations

from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QColor

# Used when the file has no colour table; distinct, colour-blind-friendly-ish (Tableau 10 + more).
FALLBACK = ["#4e79a7", "#59a14f", "#f28e2b", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8"]


# The backend's cloud / shadow class (senclip.maps.classmap.CLOUD_VALUE, CLOUD_LABEL; colours.CLOUD_COLOR).
CLOUD_VALUE = 255
CLOUD_LABEL = "cloud / shadow"
CLOUD_COLOUR = "#e1e1e6"  # grey-white


def file_colours(layer: QgsRasterLayer) -> dict[int, QColor]:
    """Colours from band 1's GDAL colour table (value -> colour), empty when there is none."""
    provider = layer.dataProvider()
    try:
        items = provider.colorTable(1)
    except (AttributeError, TypeError):
        return {}
    return {int(item.value): QColor(item.color) for item in items or []}


def class_renderer(layer: QgsRasterLayer, classes: list[str],
                   cloud: bool | None = None) -> QgsPalettedRasterRenderer:
    """Band 1 holds 0 = unclassified and 1..K = ``classes``; 0 stays transparent. ``cloud`` adds the
    cloud / shadow class; None: when the file's colour table has it (the backend writes it there
    whenever a cloud mask was used)."""
    colours = file_colours(layer)
    if cloud is None:
        cloud = CLOUD_VALUE in colours and colours[CLOUD_VALUE].alpha() > 0
    items = []
    for value, name in enumerate(classes, start=1):
        colour = colours.get(value) or QColor(FALLBACK[(value - 1) % len(FALLBACK)])
        if colour.alpha() == 0:
            colour.setAlpha(255)
        items.append(QgsPalettedRasterRenderer.Class(value, colour, name))
    if cloud:
        items.append(QgsPalettedRasterRenderer.Class(CLOUD_VALUE, QColor(CLOUD_COLOUR), CLOUD_LABEL))
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, items)


def style_class_layer(layer: QgsRasterLayer, classes: list[str]) -> None:
    if not classes or not layer.isValid():
        return
    layer.setRenderer(class_renderer(layer, classes))
    layer.triggerRepaint()


def renderer_labels(layer: QgsRasterLayer) -> dict[int, str]:
    """value -> label of a paletted layer (for tests and the dock legend)."""
    renderer = layer.renderer()
    if not isinstance(renderer, QgsPalettedRasterRenderer):
        return {}
    return {int(c.value): c.label for c in renderer.classes()}


def renderer_colours(layer: QgsRasterLayer) -> dict[int, QColor]:
    """value -> colour of a paletted layer (the dock's results table shows them as swatches)."""
    renderer = layer.renderer() if layer is not None else None
    if not isinstance(renderer, QgsPalettedRasterRenderer):
        return {}
    return {int(c.value): QColor(c.color) for c in renderer.classes()}


class ClassMapPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the class renderer once Processing has loaded the output layer."""

    _alive: list = []  # post-processors must outlive the algorithm instance that made them

    def __init__(self, classes: list[str], name: str | None = None) -> None:
        super().__init__()
        self.classes = list(classes)
        self.name = name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - Qt naming
        if isinstance(layer, QgsRasterLayer):
            style_class_layer(layer, self.classes)
            if self.name:
                layer.setName(self.name)

    @classmethod
    def create(cls, classes: list[str], name: str | None = None) -> "ClassMapPostProcessor":
        proc = cls(classes, name)
        cls._alive.append(proc)
        del cls._alive[:-20]
        return proc
