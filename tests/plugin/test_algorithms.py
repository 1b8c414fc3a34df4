"""Every algorithm through processing.run, with a real backend worker and a tiny checkpoint."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject

ALGS = {"senclip:classify", "senclip:embed", "senclip:classify_embeddings", "senclip:install_backend",
        "senclip:download_weights", "senclip:map_region", "senclip:fewshot", "senclip:find_similar",
        "senclip:change", "senclip:accuracy"}


def run(alg, params, feedback=None, context=None):
    import processing

    return processing.run(alg, params, feedback=feedback or QgsProcessingFeedback(),
                          context=context or QgsProcessingContext())


def test_provider_registers_all_algorithms(provider):
    assert {a.id() for a in provider.algorithms()} == ALGS
    for alg in provider.algorithms():
        assert alg.shortHelpString(), f"{alg.id()} has no help"
        assert alg.displayName() and alg.group()


def test_classify_writes_map_table_and_logs_areas(provider, s2_raster, plugin_checkpoint, tmp_path):
    from qgis.core import QgsRasterLayer, QgsVectorLayer

    out = tmp_path / "classes.tif"
    table = tmp_path / "areas.csv"
    logs = []

    class Log(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802
            logs.append(info)

    res = run("senclip:classify", {
        "INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake", "CHECKPOINT": str(plugin_checkpoint),
        "OUTPUT": str(out), "OUTPUT_TABLE": str(table)}, feedback=Log())
    assert Path(res["OUTPUT"]) == out and out.is_file()
    layer = QgsRasterLayer(str(out), "map")
    # class, confidence, margin; QGIS shows the file's nodata mask (unclassified cells) as a 4th, alpha band
    assert layer.isValid() and layer.bandCount() == 4
    assert [layer.dataProvider().colorInterpretationName(b) for b in (1, 4)] == ["Palette", "Alpha"]
    rows = list(QgsVectorLayer(str(table), "t", "ogr").getFeatures())
    assert [r["class"] for r in rows] == ["Forest", "Sea or Lake"]
    assert sum(float(r["percent"]) for r in rows) == pytest.approx(100.0, abs=0.01)
    assert sum(float(r["area_km2"]) for r in rows) > 0
    assert any("Class areas" in line for line in logs)
    assert any("Sea or Lake" in line and "km²" in line for line in logs)


def test_result_layer_is_styled_with_class_names(provider, s2_raster, plugin_checkpoint, tmp_path):
    """The layer post-processor (toolbox/modeler path) gives a paletted renderer with names."""
    from qgis.core import QgsPalettedRasterRenderer, QgsProcessingUtils

    from senclip_qgis.styling import renderer_labels

    out = str(tmp_path / "styled.tif")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    context.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("classes", QgsProject.instance(), "OUTPUT"))
    feedback = QgsProcessingFeedback()
    run("senclip:classify", {"INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake;Pasture",
                             "CHECKPOINT": str(plugin_checkpoint), "OUTPUT": out, "OUTPUT_TABLE": "TEMPORARY_OUTPUT"},
        feedback=feedback, context=context)
    details = context.layerToLoadOnCompletionDetails(out)
    assert details.postProcessor() is not None
    layer = QgsProcessingUtils.mapLayerFromString(out, context)
    details.postProcessor().postProcessLayer(layer, context, feedback)
    assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)
    assert renderer_labels(layer) == {1: "Forest", 2: "Sea or Lake", 3: "Pasture"}
    # the file carries names and colours too (qgis_process users): a .qml sidecar beside it
    assert Path(out).with_suffix(".qml").is_file()


def test_embed_then_classify_embeddings(provider, s2_raster, plugin_checkpoint, tmp_path):
    store = tmp_path / "store"
    logs = []

    class Log(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802
            logs.append(info)

    res = run("senclip:embed", {"INPUT": str(s2_raster), "CHECKPOINT": str(plugin_checkpoint),
                                "OUTPUT": str(store)}, feedback=Log())
    assert Path(res["OUTPUT"]) == store and (store / "meta.json").is_file()
    # the summary comes from the keys the backend returns (api.EmbedResult: chips, grid, model, ...)
    meta = json.loads((store / "meta.json").read_text())
    assert any(line.startswith("chips encoded: ") and int(line.split(": ")[1]) > 0 for line in logs), logs
    assert any(line.startswith("grid: ") and " x " in line and "tile 64 px" in line for line in logs), logs
    assert any(line.startswith("model: ") and meta["model"]["model_id"] in line for line in logs), logs
    out = tmp_path / "from_store.tif"
    res = run("senclip:classify_embeddings", {"STORE": str(store), "CLASSES": "Forest;Sea or Lake;Pasture",
                                              "OUTPUT": str(out)})
    assert out.is_file() and res["CLASSES"] == "Forest;Sea or Lake;Pasture"


def test_backend_errors_arrive_as_processing_exceptions(provider, s2_raster, plugin_checkpoint, tmp_path):
    out = tmp_path / "bad.tif"
    with pytest.raises(QgsProcessingException, match="--bands 9,9,9|band"):
        run("senclip:classify", {"INPUT": str(s2_raster), "CLASSES": "A;B", "BANDS": "9,9,9",
                                 "CHECKPOINT": str(plugin_checkpoint), "OUTPUT": str(out)})
    assert not out.exists()
    with pytest.raises(QgsProcessingException, match="CLASSES"):
        run("senclip:classify", {"INPUT": str(s2_raster), "CHECKPOINT": str(plugin_checkpoint), "OUTPUT": str(out)})
    with pytest.raises(QgsProcessingException, match="not an embedding store"):
        run("senclip:classify_embeddings", {"STORE": str(tmp_path), "CLASSES": "A;B", "OUTPUT": str(out)})


def test_missing_backend_fails_with_install_instructions(provider, s2_raster, monkeypatch, tmp_path):
    monkeypatch.setenv("SENCLIP_PYTHON", str(tmp_path / "no-venv" / "bin" / "python"))
    with pytest.raises(QgsProcessingException, match="install_backend"):
        run("senclip:classify", {"INPUT": str(s2_raster), "CLASSES": "A;B", "OUTPUT": str(tmp_path / "x.tif")})


def test_cancel_stops_child_quickly_and_leaves_no_output(provider, s2_raster, plugin_checkpoint, tmp_path):
    """Cancel as soon as the backend reports progress (i.e. mid-run, model loaded)."""
    out = tmp_path / "cancelled.tif"
    feedback = QgsProcessingFeedback()
    state = {}

    def on_progress(p):
        if "t" not in state:
            state["t"] = True
            feedback.cancel()

    feedback.progressChanged.connect(on_progress)
    with pytest.raises(QgsProcessingException, match="cancelled"):
        run("senclip:classify", {"INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake",
                                 "CHECKPOINT": str(plugin_checkpoint), "OUTPUT": str(out), "TILE": 16,
                                 "STRIDE": 4, "BATCH_SIZE": 1}, feedback=feedback)
    assert "t" in state, "the backend never reported progress"
    # hidden temporaries too (.cancelled.tif.*.tmp.tif): a glob of "cancelled*" would not see them
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if "cancelled" in p.name] == []


def test_parameters_become_backend_args_without_a_backend(provider, s2_raster, plugin_checkpoint, tmp_path):
    """EXTENT goes in the raster CRS, MASK becomes GeoJSON in the raster CRS, defaults stay None."""
    import json

    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle, QgsVectorLayer

    from senclip_qgis.algorithms.classify import ClassifyAlgorithm

    mask = QgsVectorLayer("Polygon?crs=EPSG:4326", "mask", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(13.5, 52.4, 13.6, 52.5)))
    mask.dataProvider().addFeatures([f])
    alg = ClassifyAlgorithm()
    alg.initAlgorithm()
    context = QgsProcessingContext()
    params = {"INPUT": str(s2_raster), "CLASSES": " Forest ; Sea or Lake;", "CHECKPOINT": str(plugin_checkpoint),
              "BANDS": "3, 2, 1", "EXTENT": "400100,400500,5799000,5799900 [EPSG:32633]", "MASK": mask,
              "OUTPUT": str(tmp_path / "o.tif")}
    args = alg.request_args(params, context, QgsProcessingFeedback())
    assert args["classes"] == ["Forest", "Sea or Lake"] and args["prompts"] is None
    assert args["model"] is None and args["checkpoint"] == str(plugin_checkpoint)
    assert args["bands"] == "3,2,1" and args["stride"] is None and args["tile"] == 64
    assert args["bounds"] == [400100.0, 5799000.0, 400500.0, 5799900.0]
    assert (args["backend"], args["device"], args["prompt_style"], args["resolution"]) == ("auto", "auto", "ground", "grid")
    geojson = json.loads(Path(args["mask"]).read_text())
    x, y = geojson["features"][0]["geometry"]["coordinates"][0][0][:2]
    assert 300000 < x < 500000 and 5_700_000 < y < 5_900_000, "mask must be in the raster's UTM CRS"
    params["MODEL"] = "clip-rn50-openai"  # a model chosen beside a checkpoint: the checkpoint wins
    assert alg.request_args(params, context, QgsProcessingFeedback())["model"] is None
    assert args["stretch"] == "fixed" and args["int8"] is None and args["precision"] == "auto"
    params.update(STRETCH=1, INT8=True, BACKEND=2, PRECISION=3)
    args = alg.request_args(params, context, QgsProcessingFeedback())
    assert (args["stretch"], args["int8"], args["backend"], args["precision"]) == ("chip-minmax", True, "onnx", "int8")
    assert (args["transductive"], args["spatial"]) == (False, "8")
    params.update(TRANSDUCTIVE=True, SPATIAL=2)
    args = alg.request_args(params, context, QgsProcessingFeedback())
    assert (args["transductive"], args["spatial"]) == (True, "none")


def test_processing_reference_is_current(provider):
    """docs/processing.md is where analysts look up parameters: generated from the provider, so none is
    missing; stale means an algorithm changed without `python tools/processing_reference.py`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import processing_reference

    text = processing_reference.OUT.read_text(encoding="utf-8")
    assert processing_reference.render(provider) == text, \
        "docs/processing.md is stale: run QT_QPA_PLATFORM=offscreen .venv/bin/python tools/processing_reference.py"
    missing = [f"{alg.id()}:{p.name()}" for alg in provider.algorithms()
               for p in list(alg.parameterDefinitions()) + list(alg.outputDefinitions()) if f"`{p.name()}`" not in text]
    assert not missing
