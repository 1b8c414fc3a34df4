"""The dock's example and find-similar map tools, driven with mouse events on the map canvas."""
from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsProject, QgsRasterLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt

from plugin_env import wait_for


@pytest.fixture
def dock(qgis_iface, s2_raster, plugin_checkpoint, results_dir):
    from senclip_qgis.gui.dock import SenclipDock

    layer = QgsRasterLayer(str(s2_raster), "s2")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    canvas = qgis_iface.mapCanvas()
    canvas.resize(400, 400)
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    canvas.refresh()
    d = SenclipDock(qgis_iface)
    d.layer_combo.setLayer(layer)
    d.checkpoint.setFilePath(str(plugin_checkpoint))
    d.table.set_mapping({"Forest": [], "Sea or Lake": []})
    d.run()
    assert wait_for(lambda: d.last_result is not None), d.status.text()
    yield d
    d.shutdown()
    QgsProject.instance().removeAllMapLayers()


def click(tool, canvas, x, y, button=Qt.MouseButton.LeftButton):
    """A mouse click (press, then release) at map coordinates (x, y) (the canvas is in the raster's CRS)."""
    px = canvas.getCoordinateTransform().transform(x, y)
    pos = QPoint(int(px.x()), int(px.y()))
    tool.canvasPressEvent(QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonPress, pos, button, button))
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonRelease, pos, button))


# s2_raster: x 400000..401280, y 5798720..5800000; water left half, vegetation right half
def test_example_tool_points_and_polygon_refine_the_map(dock, qgis_iface, results_dir):
    from senclip_qgis.gui.example_tool import ExampleTool
    from senclip_qgis.styling import renderer_labels

    panel, canvas = dock.embedding_panel, qgis_iface.mapCanvas()
    panel.example_button.setChecked(True)
    assert isinstance(canvas.mapTool(), ExampleTool)
    panel.class_combo.setCurrentText("lake water")  # a class with examples and no prompt
    for i in range(3):
        click(canvas.mapTool(), canvas, 400150 + 100 * i, 5799300)
    panel.class_combo.setCurrentText("Forest")
    panel.polygon_mode.setChecked(True)
    for x, y in ((400800, 5799500), (401200, 5799500), (401200, 5799100)):
        click(canvas.mapTool(), canvas, x, y)
    click(canvas.mapTool(), canvas, 401000, 5799000, Qt.MouseButton.RightButton)  # closes the polygon
    kinds = [e["geometry"]["type"] for e in panel.examples]
    assert kinds == ["Point"] * 3 + ["Polygon"]
    assert panel.examples[0]["geometry"]["coordinates"][0] == pytest.approx(400150, abs=2 * canvas.mapUnitsPerPixel())
    pts = QgsProject.instance().mapLayer(panel.layers["Point"])
    assert pts.featureCount() == 3 and pts.renderer().type() == "categorizedSymbol"

    panel.refine()
    assert wait_for(lambda: panel.last_fewshot is not None, 60), dock.status.text()
    res = panel.last_fewshot
    assert res["map"]["classes"] == ["Forest", "Sea or Lake", "lake water"]
    assert sum(res["map"]["counts"].values()) > 0  # (random weights: which class wins says nothing)
    layer = QgsProject.instance().mapLayer(dock.result_layer_id)
    assert renderer_labels(layer)[3] == "lake water"
    assert Path(res["examples_path"]).is_file() and "example features" in dock.status.text()
    assert Path(res["examples_path"]).parent == results_dir  # kept with the run, in the results folder


def test_similar_tool_click_shows_styled_layers(dock, qgis_iface):
    from qgis.core import QgsPalettedRasterRenderer, QgsSingleBandPseudoColorRenderer

    from senclip_qgis.gui.similar_tool import SimilarTool

    panel, canvas = dock.embedding_panel, qgis_iface.mapCanvas()
    panel.similar_button.setChecked(True)
    assert isinstance(canvas.mapTool(), SimilarTool)
    click(canvas.mapTool(), canvas, 400200, 5799400)
    assert wait_for(lambda: panel.last_similar is not None, 60), dock.status.text()
    sim, mask = (QgsProject.instance().mapLayer(i) for i in panel.similar_ids)
    assert isinstance(sim.renderer(), QgsSingleBandPseudoColorRenderer)
    assert isinstance(mask.renderer(), QgsPalettedRasterRenderer)
    assert 0.2 < panel.last_similar["share_above"] < 0.8
    panel.last_similar = None
    panel.text_query.setText("a lake")
    panel.find_similar(text="a lake")
    assert wait_for(lambda: panel.last_similar is not None, 60), dock.status.text()
    assert panel.last_similar["query"]["text"] == "a lake" and len(panel.similar_ids) == 2
