"""Vector layers go to the backend as GeoJSON in WGS 84 (RFC 7946): one format the backend always
reads, whatever the layer's provider; the backend reprojects to the store's CRS."""
from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessingException,
    QgsProcessingUtils,
    QgsVectorFileWriter,
)


def export_geojson(layer, param: str, context, feedback, field: str | None = None) -> str:
    """Write ``layer`` to a temporary GeoJSON; ``field`` must exist (checked here, with the layer's
    own field names in the message)."""
    if field is not None and layer.fields().indexOf(field) < 0:
        names = ", ".join(f.name() for f in layer.fields())
        raise QgsProcessingException(f"{param}: layer '{layer.name()}' has no field '{field}' (fields: {names})")
    path = QgsProcessingUtils.generateTempFilename(f"senclip_{param.lower()}.geojson")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GeoJSON"
    options.fileEncoding = "UTF-8"
    options.ct = QgsCoordinateTransform(layer.crs(), QgsCoordinateReferenceSystem("EPSG:4326"),
                                        context.transformContext())
    err = QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, context.transformContext(), options)
    if err[0] != QgsVectorFileWriter.WriterError.NoError:
        raise QgsProcessingException(f"{param}: cannot export '{layer.name()}' to {path}: {err[1]}")
    feedback.pushInfo(f"{param} exported to {path}")
    return path
