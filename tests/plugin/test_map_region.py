"""senclip:map_region: parameters → backend request (no backend), and a real run whose mosaic
comes back as a styled layer, with progress per scene."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject

from plugin_env import write_s2_gdal


def _scenes(tmp_path: Path) -> list[Path]:
    """Two small scenes, the second shifted 640 m east (they overlap by half)."""
    from osgeo import gdal

    a = write_s2_gdal(tmp_path / "S2A_20230601T101010_a.tif")
    b = write_s2_gdal(tmp_path / "S2A_20230611T101010_b.tif")
    ds = gdal.Open(str(b), gdal.GA_Update)
    ds.SetGeoTransform((400640.0, 10.0, 0.0, 5800000.0, 0.0, -10.0))
    ds = None
    return [a, b]


def test_parameters_become_request(provider, plugin_checkpoint, tmp_path):
    alg = provider.algorithm("map_region")
    context = QgsProcessingContext()
    a, b = _scenes(tmp_path)
    params = {"INPUTS": [str(a), str(b)], "STAC": " https://example.org/items.json ", "CLASSES": "Forest; Sea",
              "CHECKPOINT": str(plugin_checkpoint), "OVERLAP": 1, "WORKERS": 2, "SCHEDULER": "",
              "OUTPUT_FOLDER": str(tmp_path / "out")}
    args = alg.request_args(params, context, QgsProcessingFeedback())
    assert args["inputs"] == [str(a), str(b), "https://example.org/items.json"]
    assert (args["classes"], args["overlap"], args["workers"], args["scheduler"]) == (["Forest", "Sea"], "majority", 2, None)
    assert args["out"] == str(tmp_path / "out") and args["model"] is None and args["stride"] is None
    with pytest.raises(QgsProcessingException, match="INPUTS"):
        alg.request_args({"CLASSES": "A;B", "OUTPUT_FOLDER": str(tmp_path / "o")}, context, QgsProcessingFeedback())


def test_map_region_runs_and_loads_styled_mosaic(provider, plugin_checkpoint, tmp_path):
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProcessingUtils

    from senclip_qgis.styling import renderer_labels

    a, b = _scenes(tmp_path)
    out = tmp_path / "region"
    progress, texts = [], []

    class Feedback(QgsProcessingFeedback):
        def setProgressText(self, text):  # noqa: N802
            texts.append(text)

    feedback = Feedback()
    feedback.progressChanged.connect(progress.append)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    res = processing.run("senclip:map_region", {
        "INPUTS": [str(a), str(b)], "CLASSES": "Forest;Sea or Lake", "CHECKPOINT": str(plugin_checkpoint),
        "DEVICE": 1, "WORKERS": 1, "OUTPUT_FOLDER": str(out), "OUTPUT_TABLE": "TEMPORARY_OUTPUT"},
        feedback=feedback, context=context)
    mosaic = Path(res["OUTPUT"])
    assert mosaic == out / "mosaic.tif" and mosaic.is_file()
    man = json.loads((out / "manifest.json").read_text())
    assert [s["status"] for s in man["scenes"]] == ["done", "done"]
    assert any(t.startswith("scenes (") for t in texts), texts  # progress counted in scenes
    details = context.layerToLoadOnCompletionDetails(str(mosaic))
    layer = QgsProcessingUtils.mapLayerFromString(str(mosaic), context)
    details.postProcessor().postProcessLayer(layer, context, feedback)
    assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)
    assert renderer_labels(layer) == {1: "Forest", 2: "Sea or Lake"}
