"""Cloud masking in the plugin: the toolbox parameters, the dock option and the legend's cloud class."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject


def write_mask_gdal(path: Path, width: int = 128, height: int = 128) -> Path:
    """A mask on the grid of ``write_s2_gdal``'s raster: a block of clouds in its top-left quarter."""
    import numpy as np
    from osgeo import gdal, osr

    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((400000.0, 10.0, 0.0, 5800000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    arr = np.zeros((height, width), np.uint8)
    arr[: height // 2, : width // 2] = 1
    ds.GetRasterBand(1).WriteArray(arr)
    ds = None
    return path


def test_cloud_parameters_in_the_toolbox(provider, s2_raster, plugin_checkpoint, tmp_path):
    from senclip_qgis import catalog
    from senclip_qgis.algorithms.classify import ClassifyAlgorithm

    for alg_id in ("senclip:classify", "senclip:embed"):
        alg = provider.algorithm(alg_id.split(":")[1])
        param = alg.parameterDefinition("CLOUD_MASK")
        assert param is not None, alg_id
        assert param.options() == ["auto", "scl", "s2cloudless", "none"] == catalog.CLOUD_MASKS
        assert param.defaultValue() == 0
        assert alg.parameterDefinition("CLOUD_MASK_RASTER") is not None
        assert alg.parameterDefinition("MASK_SNOW") is not None
    alg = ClassifyAlgorithm()
    alg.initAlgorithm()
    context = QgsProcessingContext()
    params = {"INPUT": str(s2_raster), "CLASSES": "A;B", "CHECKPOINT": str(plugin_checkpoint),
              "OUTPUT": str(tmp_path / "o.tif")}
    args = alg.request_args(params, context, QgsProcessingFeedback())
    assert args["cloud_mask"] == "auto" and args["mask_snow"] is None
    args = alg.request_args(dict(params, CLOUD_MASK=2, MASK_SNOW=True), context, QgsProcessingFeedback())
    assert args["cloud_mask"] == "s2cloudless" and args["mask_snow"] is True
    mask = write_mask_gdal(tmp_path / "clouds.tif")
    args = alg.request_args(dict(params, CLOUD_MASK_RASTER=str(mask)), context, QgsProcessingFeedback())
    assert args["cloud_mask"] == str(mask)


def test_legend_shows_the_cloud_class(provider, s2_raster, plugin_checkpoint, tmp_path):
    import processing
    from qgis.core import QgsProcessingUtils

    from senclip_qgis.styling import CLOUD_VALUE, renderer_labels

    out = str(tmp_path / "clouds_map.tif")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    context.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("classes", QgsProject.instance(), "OUTPUT"))
    logs = []

    class Log(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802
            logs.append(info)

    feedback = Log()
    processing.run("senclip:classify", {
        "INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake", "CHECKPOINT": str(plugin_checkpoint),
        "CLOUD_MASK_RASTER": str(write_mask_gdal(tmp_path / "clouds.tif")), "TILE": 16, "STRIDE": 16,
        "OUTPUT": out, "OUTPUT_TABLE": "TEMPORARY_OUTPUT"}, feedback=feedback, context=context)
    layer = QgsProcessingUtils.mapLayerFromString(out, context)
    context.layerToLoadOnCompletionDetails(out).postProcessor().postProcessLayer(layer, context, feedback)
    assert renderer_labels(layer) == {1: "Forest", 2: "Sea or Lake", CLOUD_VALUE: "cloud / shadow"}
    colour = [c.color for c in layer.renderer().classes() if c.value == CLOUD_VALUE][0]
    assert min(colour.red(), colour.green(), colour.blue()) > 200  # grey-white
    assert any("cloud / shadow (masked): 25.00 %" in line for line in logs), logs
    assert any(line.startswith("Cloud mask: clouds.tif") for line in logs), logs


def test_rgb_without_cloud_bands_has_no_cloud_class_and_says_why(provider, s2_raster, plugin_checkpoint, tmp_path):
    import processing
    from qgis.core import QgsRasterLayer

    from senclip_qgis.styling import renderer_labels, style_class_layer

    logs = []

    class Log(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802
            logs.append(info)

    out = tmp_path / "plain.tif"
    processing.run("senclip:classify", {
        "INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake", "CHECKPOINT": str(plugin_checkpoint),
        "OUTPUT": str(out), "OUTPUT_TABLE": "TEMPORARY_OUTPUT"}, feedback=Log(), context=QgsProcessingContext())
    layer = QgsRasterLayer(str(out), "m")
    style_class_layer(layer, ["Forest", "Sea or Lake"])
    assert renderer_labels(layer) == {1: "Forest", 2: "Sea or Lake"}
    assert any("Cloud mask: none" in line and "B10" in line for line in logs), logs


def test_dock_offers_the_cloud_mask_and_sends_it(qgis_iface, s2_raster, plugin_checkpoint):
    from qgis.core import QgsRasterLayer

    from senclip_qgis.gui.dock import SenclipDock

    layer = QgsRasterLayer(str(s2_raster), "s2")
    QgsProject.instance().addMapLayer(layer)
    dock = SenclipDock(qgis_iface)
    try:
        dock.layer_combo.setLayer(layer)
        dock.checkpoint.setFilePath(str(plugin_checkpoint))
        assert [dock.cloud_combo.itemText(i) for i in range(dock.cloud_combo.count())] == \
            ["auto", "scl", "s2cloudless", "none"]
        assert dock.cloud_combo.currentText() == "auto"
        sent = []
        dock.worker.request = lambda op, args, ok, err: sent.append((op, args))
        dock.cloud_combo.setCurrentText("none")
        dock.run()
        assert sent and sent[0][0] == "embed" and sent[0][1]["cloud_mask"] == "none"
        dock._fill_results({"classes": ["A"], "counts": {"A": 30}, "cloud_masked": 10})
        assert dock.results.rowCount() == 2 and dock.results.item(1, 0).text() == "cloud / shadow"
        assert dock.results.item(1, 2).text() == "25.0"
    finally:
        dock.shutdown()
        QgsProject.instance().removeAllMapLayers()
