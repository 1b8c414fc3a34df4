"""The names that differ between the QGIS versions the plugin supports (3.22 ... 4.x), in one place.

QGIS 3.30-3.36 moved many enums into ``Qgis`` (``Qgis.ProcessingSourceType``, ``Qgis.WkbType``,
``Qgis.LayerFilter``...) and kept the old names only through Python patches, which QGIS 4 does
not promise to keep. Qt6 (QGIS 4) has no ``QVariant.Int`` & co., and QGIS 3.38+ types fields with
``QMetaType.Type`` while 3.22 accepts only ``QVariant.Type``. Each constant below is the new name
where the running QGIS has it and the 3.22 name otherwise, resolved once at import: the rest of the
plugin never checks versions. Qt's own enums need no helper: the fully scoped spelling
(``Qt.DockWidgetArea.RightDockWidgetArea``) works on PyQt5 and PyQt6 alike.
"""
from __future__ import annotations

import qgis.core as _core
from qgis.core import Qgis
from qgis.PyQt.QtCore import QMetaType, QVariant

try:  # Qt6 (QGIS 4): QAction moved to QtGui
    from qgis.PyQt.QtGui import QAction  # noqa: F401 - re-exported
except ImportError:  # Qt5 (QGIS 3)
    from qgis.PyQt.QtWidgets import QAction  # noqa: F401


def qgis_name(new: str, old: str):
    """The object at the dotted path ``new`` in ``qgis.core`` if this QGIS has it, else at ``old``.

    Paths are strings so that neither name is looked up on a QGIS that lacks it.
    """
    for path in (new, old):
        obj = _core
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise AttributeError(f"neither {new} nor {old} exists in QGIS {Qgis.QGIS_VERSION}")


# Processing (moved into Qgis in 3.36)
PARAMETER_ADVANCED = qgis_name("Qgis.ProcessingParameterFlag.Advanced",
                               "QgsProcessingParameterDefinition.Flag.FlagAdvanced")
ALGORITHM_NO_THREADING = qgis_name("Qgis.ProcessingAlgorithmFlag.NoThreading",
                                   "QgsProcessingAlgorithm.Flag.FlagNoThreading")
NUMBER_INTEGER = qgis_name("Qgis.ProcessingNumberParameterType.Integer",
                           "QgsProcessingParameterNumber.Type.Integer")
NUMBER_DOUBLE = qgis_name("Qgis.ProcessingNumberParameterType.Double",
                          "QgsProcessingParameterNumber.Type.Double")
FILE_FOLDER = qgis_name("Qgis.ProcessingFileParameterBehavior.Folder",
                        "QgsProcessingParameterFile.Behavior.Folder")
SOURCE_VECTOR = qgis_name("Qgis.ProcessingSourceType.Vector", "QgsProcessing.SourceType.TypeVector")
SOURCE_VECTOR_ANY = qgis_name("Qgis.ProcessingSourceType.VectorAnyGeometry",
                              "QgsProcessing.SourceType.TypeVectorAnyGeometry")
SOURCE_RASTER = qgis_name("Qgis.ProcessingSourceType.Raster", "QgsProcessing.SourceType.TypeRaster")
SOURCE_VECTOR_POLYGON = qgis_name("Qgis.ProcessingSourceType.VectorPolygon",
                                  "QgsProcessing.SourceType.TypeVectorPolygon")
# Geometry types (3.30) and layer filters (3.34)
NO_GEOMETRY = qgis_name("Qgis.WkbType.NoGeometry", "QgsWkbTypes.Type.NoGeometry")
POLYGON_GEOMETRY = qgis_name("Qgis.GeometryType.Polygon", "QgsWkbTypes.GeometryType.PolygonGeometry")
RASTER_LAYER_FILTER = qgis_name("Qgis.LayerFilter.RasterLayer", "QgsMapLayerProxyModel.Filter.RasterLayer")

# Field types: QMetaType.Type name, QVariant.Type name
_FIELD_TYPES = {"int": ("Int", "Int"), "int64": ("LongLong", "LongLong"),
                "double": ("Double", "Double"), "string": ("QString", "String")}


def field_type(kind: str):
    """The type to give ``QgsField`` for ``kind`` (int, int64, double, string) on this QGIS."""
    meta_name, variant_name = _FIELD_TYPES[kind]
    if Qgis.QGIS_VERSION_INT >= 33800:
        return getattr(QMetaType.Type, meta_name)
    return getattr(QVariant, variant_name)
