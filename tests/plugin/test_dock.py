"""The dock, driven like a user would: pick a layer, edit prompts, run, re-run, probe, cancel."""
from __future__ import annotations


import pytest
from qgis.core import QgsProject, QgsRasterLayer

from plugin_env import wait_for


@pytest.fixture
def dock(qgis_iface, s2_raster, plugin_checkpoint, results_dir):
    from senclip_qgis.gui.dock import SenclipDock

    layer = QgsRasterLayer(str(s2_raster), "s2")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    d = SenclipDock(qgis_iface)
    d.layer_combo.setLayer(layer)
    d.checkpoint.setFilePath(str(plugin_checkpoint))
    d.input_layer = layer
    yield d
    d.shutdown()
    QgsProject.instance().removeAllMapLayers()


def test_dock_runs_reruns_from_cache_and_probes(dock):
    from senclip_qgis.styling import renderer_labels

    dock.table.set_mapping({"Forest": ["a photo of a dense forest"], "Sea or Lake": []})
    requests = []
    real = dock.worker.request
    dock.worker.request = lambda op, args, ok, err: (requests.append(op), real(op, args, ok, err))[1]
    dock.run()
    assert wait_for(lambda: dock.last_result is not None), dock.status.text()
    assert requests == ["embed", "load_store", "reclassify"]
    assert dock.results.rowCount() == 2 and dock.results.item(1, 0).text() == "Sea or Lake"
    layer = QgsProject.instance().mapLayer(dock.result_layer_id)
    assert renderer_labels(layer) == {1: "Forest", 2: "Sea or Lake"}

    first = dock.last_result
    dock.table.add_class("Pasture", ["a photo of cows on a meadow"])  # an edit re-classifies by itself
    assert wait_for(lambda: dock.last_result is not first, timeout=60), dock.status.text()
    assert requests[3:] == ["reclassify"], "a prompt edit must not re-encode the image"
    assert dock.last_result["classes"] == ["Forest", "Sea or Lake", "Pasture"]
    assert dock.last_result["seconds"] >= 0  # reported; its size is bench/reprompt.py's business
    assert renderer_labels(QgsProject.instance().mapLayer(dock.result_layer_id))[3] == "Pasture"
    assert "km" not in dock.results.item(0, 1).text() and float(dock.results.item(0, 2).text()) >= 0

    ext = dock.input_layer.extent()
    dock.probe(ext.center().x(), ext.center().y())
    assert wait_for(lambda: "%" in dock.probe_label.text(), timeout=30), dock.probe_label.text()
    assert any(name in dock.probe_label.text() for name in ("Forest", "Sea or Lake", "Pasture"))


def test_dock_cancel_kills_worker_and_reports(dock):
    dock.table.set_mapping({"Forest": [], "Sea or Lake": []})
    dock.run()
    assert wait_for(lambda: dock.worker.running(), timeout=10)
    assert wait_for(lambda: dock.progress.value() > 0 or "model" in dock.status.text(), timeout=60)
    dock.cancel()
    assert not dock.worker.running()
    assert "cancelled" in dock.status.text().lower()
    assert dock.status.styleSheet() == "", "cancel is the user's choice: shown neutrally, not in red"
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()


def test_dock_without_layer_or_backend_says_why(dock, monkeypatch, tmp_path):
    dock.layer_combo.setLayer(None)
    dock.run()
    assert "layer" in dock.status.text()
    monkeypatch.setenv("SENCLIP_PYTHON", str(tmp_path / "missing" / "python"))
    dock.layer_combo.setLayer(dock.input_layer)
    dock.run()
    assert "install" in dock.status.text().lower()


def test_dock_transductive_toggle_reclassifies_and_is_recorded(dock):
    """The toggle alone re-runs (no re-encoding), and the map's record says the solver ran."""
    dock.table.set_mapping({"Forest": ["a photo of a dense forest"], "Sea or Lake": []})
    requests = []
    real = dock.worker.request
    dock.worker.request = lambda op, args, ok, err: (requests.append((op, args.get("transductive"))),
                                                     real(op, args, ok, err))[1]
    dock.run()
    assert wait_for(lambda: dock.last_result is not None), dock.status.text()
    first = dock.last_result
    assert first.get("transductive") is None
    dock.transductive.setChecked(True)
    assert wait_for(lambda: dock.last_result is not first, timeout=60), dock.status.text()
    assert requests[-1] == ("reclassify", True) and [op for op, _ in requests].count("embed") == 1
    assert dock.last_result["transductive"]["spatial"] == "8"
