"""The embedding-tool algorithms through processing.run: few-shot, find similar, change, accuracy,
on one store of the synthetic raster (water left, vegetation right), with a real backend worker."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from qgis.core import (
    QgsFeature, QgsField, QgsGeometry, QgsPointXY, QgsProcessingContext, QgsProcessingException,
    QgsProcessingFeedback, QgsProject, QgsVectorLayer,
)
from qgis.PyQt.QtCore import QVariant

# s2_raster: x 400000..401280, y 5798720..5800000 (EPSG:32633); water left half, vegetation right
LEFT = [(400100 + 80 * i, 5799400, "water") for i in range(5)]
RIGHT = [(400800 + 80 * i, 5799400, "vegetation") for i in range(5)]


def points(items, crs="EPSG:32633", field="kind"):
    layer = QgsVectorLayer(f"Point?crs={crs}", "pts", "memory")
    layer.dataProvider().addAttributes([QgsField(field, QVariant.String)])
    layer.updateFields()
    feats = []
    for x, y, label in items:
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        f.setAttributes([label])
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


def run(alg, params, context=None):
    import processing

    return processing.run(alg, params, feedback=QgsProcessingFeedback(), context=context or QgsProcessingContext())


def styled_on_load(alg, params, key):
    """Run with the output marked for loading; return the layer after the post-processor ran (and
    the context, which owns the layer)."""
    from qgis.core import QgsProcessingUtils

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = params[key]
    context.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("out", QgsProject.instance(), key))
    res = run(alg, params, context)
    details = context.layerToLoadOnCompletionDetails(out)
    layer = QgsProcessingUtils.mapLayerFromString(out, context)
    details.postProcessor().postProcessLayer(layer, context, QgsProcessingFeedback())
    return res, layer, context


def test_embedding_tools_through_processing(provider, s2_raster, plugin_checkpoint, tmp_path):
    from qgis.core import QgsSingleBandPseudoColorRenderer

    from senclip_qgis.styling import renderer_labels

    store = tmp_path / "store"
    run("senclip:embed", {"INPUT": str(s2_raster), "CHECKPOINT": str(plugin_checkpoint), "TILE": 16, "STRIDE": 8,
                          "OUTPUT": str(store)})
    examples = points(LEFT + RIGHT)

    fs = str(tmp_path / "fewshot.tif")
    res, layer, _ctx = styled_on_load("senclip:fewshot", {"STORE": str(store), "EXAMPLES": examples, "FIELD": "kind",
                                                    "OUTPUT": fs, "OUTPUT_TABLE": "TEMPORARY_OUTPUT"}, "OUTPUT")
    assert res["CLASSES"] == "water;vegetation" and res["CV_ACCURACY"] == 1.0
    assert renderer_labels(layer) == {1: "water", 2: "vegetation"}
    assert Path(res["EXAMPLES_SAVED"]).is_file() and json.loads(Path(res["REPORT"]).read_text())["method"] == "logistic-text-prior"

    sim = str(tmp_path / "sim.tif")
    res, layer, _ctx = styled_on_load("senclip:find_similar", {"STORE": str(store), "QUERY": points(LEFT[:1]), "OUTPUT": sim,
                                                         "OUTPUT_MASK": str(tmp_path / "mask.tif")}, "OUTPUT")
    assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)
    assert 0.3 < res["SHARE_ABOVE"] < 0.7 and Path(res["OUTPUT_MASK"]).is_file()
    res = run("senclip:find_similar", {"STORE": str(store), "TEXT": "a lake", "THRESHOLD": 0.0,
                                       "OUTPUT": str(tmp_path / "t.tif")})
    assert res["THRESHOLD_USED"] == 0.0
    with pytest.raises(QgsProcessingException, match="exactly one query"):
        run("senclip:find_similar", {"STORE": str(store), "OUTPUT": str(tmp_path / "none.tif")})
    chip = _cut(s2_raster, tmp_path / "chip.tif", col=8, row=8)  # 16 × 16 px of the water half
    res = run("senclip:find_similar", {"STORE": str(store), "CHIP": chip, "OUTPUT": str(tmp_path / "c.tif")})
    import rasterio

    with rasterio.open(res["OUTPUT"]) as ds:
        sim = ds.read(1)
    w = sim.shape[1]
    assert sim[:, : w // 2 - 1].mean() > sim[:, w // 2 + 1:].mean()

    res = run("senclip:change", {"STORE": str(store), "STORE_AFTER": str(store), "CLASSES": "water;vegetation",
                                 "OUTPUT": str(tmp_path / "d.tif"), "OUTPUT_CHANGES": str(tmp_path / "c.tif"),
                                 "OUTPUT_TABLE": str(tmp_path / "t.csv")})
    rows = list(QgsVectorLayer(res["OUTPUT_TABLE"], "t", "ogr").getFeatures())
    assert rows and all(int(r["changed"]) == 0 for r in rows)

    ref = points([(400200, 5799000, "water"), (401000, 5799000, "vegetation"), (401100, 5799000, "water")],
                 crs="EPSG:32633", field="truth")
    res = run("senclip:accuracy", {"INPUT": fs, "REFERENCE": ref, "FIELD": "truth", "OUTPUT": str(tmp_path / "rep")})
    assert res["OVERALL_ACCURACY"] == pytest.approx(2 / 3) and Path(res["HTML"]).is_file()


def _cut(raster, out, *, col, row, size=16) -> str:
    """A size × size px GeoTIFF chip of ``raster``, all bands."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(raster) as ds:
        win = Window(col, row, size, size)
        profile = dict(ds.profile, width=size, height=size, transform=ds.window_transform(win))
        data = ds.read(window=win)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return str(out)


def test_bad_field_and_grid_mismatch_are_clear(provider, s2_raster, plugin_checkpoint, tmp_path):
    store = tmp_path / "store"
    run("senclip:embed", {"INPUT": str(s2_raster), "CHECKPOINT": str(plugin_checkpoint), "TILE": 16, "STRIDE": 16,
                          "OUTPUT": str(store)})
    other = tmp_path / "other"
    run("senclip:embed", {"INPUT": str(s2_raster), "CHECKPOINT": str(plugin_checkpoint), "TILE": 16, "STRIDE": 8,
                          "OUTPUT": str(other)})
    with pytest.raises(QgsProcessingException, match="stride"):
        run("senclip:change", {"STORE": str(store), "STORE_AFTER": str(other), "OUTPUT": str(tmp_path / "d.tif")})
    assert not (tmp_path / "d.tif").exists()
