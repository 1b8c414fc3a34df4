"""The dock as a new user meets it: results that survive QGIS, names that say what a layer is,
checks before minutes of encoding, a dock that fits a laptop screen, a diagnostics window that
does not freeze QGIS."""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QApplication, QScrollArea

from test_dock import wait_for


@pytest.fixture
def project_dir(tmp_path):
    """A saved project: dock results belong in a 'senclip' folder beside it."""
    from senclip_qgis.gui import results_folder

    QgsSettings().remove(results_folder.SETTINGS_KEY)
    project = QgsProject.instance()
    path = tmp_path / "project" / "landcover.qgz"
    path.parent.mkdir()
    assert project.write(str(path))
    yield path.parent
    project.clear()


@pytest.fixture
def new_dock(qgis_iface, s2_raster, plugin_checkpoint):
    from senclip_qgis.gui.dock import SenclipDock

    layer = QgsRasterLayer(str(s2_raster), "s2 scene")
    QgsProject.instance().addMapLayer(layer)
    d = SenclipDock(qgis_iface)
    d.layer_combo.setLayer(layer)
    d.checkpoint.setFilePath(str(plugin_checkpoint))
    yield d
    d.shutdown()
    QgsProject.instance().removeAllMapLayers()


def test_results_are_kept_beside_the_project_named_by_classes_and_saved_as(new_dock, project_dir, tmp_path):
    from senclip_qgis.styling import renderer_colours, renderer_labels

    dock = new_dock
    dock.table.set_mapping({"Forest": [], "Sea or Lake": []})
    dock.run()
    assert wait_for(lambda: dock.last_result is not None), dock.status.text()
    first = Path(dock.last_result["path"])
    assert first.parent == project_dir / "senclip" and first.is_file(), first
    assert not str(first).startswith("/tmp/senclip-dock-")
    layer = QgsProject.instance().mapLayer(dock.result_layer_id)
    assert "Forest" in layer.name() and "Sea or Lake" in layer.name() and re.search(r"\d\d:\d\d", layer.name())
    # the total time of the run (encoding included), not the re-classification's alone
    assert "image encoding" in dock.status.text() and "classification" in dock.status.text()
    # results table: full names, colour swatches equal to the map's colours
    colours = renderer_colours(layer)
    for row, name in enumerate(["Forest", "Sea or Lake"]):
        item = dock.results.item(row, 0)
        assert item.text() == name and item.toolTip() == name
        assert item.data(Qt.ItemDataRole.DecorationRole) == colours[row + 1]

    kept = dock.last_result
    dock.table.add_class("Pasture")
    assert wait_for(lambda: dock.last_result is not kept, timeout=60), dock.status.text()
    second = Path(dock.last_result["path"])
    assert second.is_file() and second.parent == first.parent
    assert not first.exists(), "a class map the dock wrote and nothing shows any more is removed"
    assert dock.status.text().startswith("Re-classified")

    saved = dock.save_map_to(str(tmp_path / "my_map"))
    assert saved is not None and Path(saved.source()) == tmp_path / "my_map.tif"
    assert (tmp_path / "my_map.tif.aux.xml").is_file() and (tmp_path / "my_map.qml").is_file()
    assert renderer_labels(saved) == {1: "Forest", 2: "Sea or Lake", 3: "Pasture"}

    dock.shutdown()  # QGIS closes: the results stay where the project can find them
    assert second.is_file() and list((project_dir / "senclip" / "stores").glob("*/meta.json"))


def test_empty_class_table_is_reported_before_encoding(new_dock, project_dir):
    dock = new_dock
    dock.table.set_mapping({})
    requests = []
    dock.worker.request = lambda op, *a: requests.append(op)
    dock.run()
    assert requests == [], "nothing may be encoded for an empty class table"
    assert "empty" in dock.status.text() and "Add" in dock.status.text()


def test_web_layer_says_how_to_export_a_geotiff(new_dock, project_dir, provider, tmp_path):
    from qgis.core import QgsProcessingException

    from senclip_qgis.algorithms.base import SenclipAlgorithm

    xyz = QgsRasterLayer("type=xyz&url=https://tile.openstreetmap.org/{z}/{x}/{y}.png&zmax=19&zmin=0",
                         "OpenStreetMap", "wms")
    QgsProject.instance().addMapLayer(xyz)
    dock = new_dock
    dock.table.set_mapping({"Forest": []})
    dock.layer_combo.setLayer(xyz)
    dock.run()
    text = dock.status.text()
    assert "web layer" in text and "GeoTIFF" in text and "Export" in text and "\n" not in text
    with pytest.raises(QgsProcessingException, match="Export it to a GeoTIFF first"):
        SenclipAlgorithm.raster_path(xyz)


def test_dock_scrolls_and_fits_a_laptop_screen(new_dock):
    assert isinstance(new_dock.widget(), QScrollArea)
    # 1366x768 laptop: below the toolbars and beside the Processing toolbox about 600 px remain
    assert new_dock.minimumSizeHint().height() < 400


def test_progress_logs_one_line_per_stage(new_dock):
    from qgis.core import QgsMessageLog

    lines = []

    def on_message(message, tag, level):
        if tag == "SenCLIP":
            lines.append(message)

    QgsApplication.messageLog().messageReceived.connect(on_message)
    try:
        for done in range(0, 1153, 48):  # the 24 batch events of a 1152-tile run
            new_dock._on_progress({"event": "progress", "text": "encoding tiles", "done": done,
                                   "total": 1152, "percent": 100 * done / 1152})
        new_dock._on_progress({"event": "progress", "text": "writing", "done": 1, "total": 2, "percent": 50})
        QApplication.processEvents()
    finally:
        QgsApplication.messageLog().messageReceived.disconnect(on_message)
    assert lines == ["encoding tiles (1152)", "writing (2)"]
    assert new_dock.progress.value() == 50 and "writing 1/2" in new_dock.status.text()
    QgsMessageLog  # noqa: B018 - the log the dock writes to


def test_download_weights_offline_fails_fast_with_a_plugin_action(new_dock, provider, monkeypatch):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    import processing

    monkeypatch.setenv("SENCLIP_HF_ENDPOINT", "https://senclip-hub.invalid")  # inherited by the worker
    with pytest.raises(QgsProcessingException) as e:
        processing.run("senclip:download_weights", {"MODEL": "senclip-vitb32-avgpool"},
                       feedback=QgsProcessingFeedback(), context=QgsProcessingContext())
    msg = str(e.value)
    assert "Download model weights" in msg and "senclip models download" not in msg
    assert "does not resolve" in msg and "Offline: copy" in msg
    res = processing.run("senclip:download_weights", {"MODEL": "untrained-smoke"},
                         feedback=QgsProcessingFeedback(), context=QgsProcessingContext())
    assert res["PATH"] == ""

    dock = new_dock
    dock.model_combo.setCurrentText("senclip-vitb32-avgpool")
    dock.download_weights()
    assert wait_for(lambda: "Download model weights" in dock.status.text(), timeout=60), dock.status.text()
    assert "senclip models download" not in dock.status.text()


def test_diagnostics_window_does_not_block_and_copies(qgis_iface):
    from senclip_qgis.gui.diagnostics import show_diagnostics

    release = threading.Event()

    def slow_report():
        release.wait(30)
        return "SenCLIP diagnostics\nbackend: fine"

    dialog = show_diagnostics(None, collect=slow_report)  # returns while the report is collected
    assert dialog.isVisible() and "Collecting" in dialog.text.toPlainText()
    assert not dialog.copy_button.isEnabled()
    release.set()
    assert wait_for(lambda: dialog.done_collecting, timeout=30)
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == "SenCLIP diagnostics\nbackend: fine"
    dialog.close()
    assert not dialog.isVisible()


def test_class_map_has_the_users_umask_permissions(provider, s2_raster, plugin_checkpoint, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    import processing

    old = os.umask(0o022)
    try:
        out = tmp_path / "shared.tif"
        processing.run("senclip:classify", {"INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake",
                                            "CHECKPOINT": str(plugin_checkpoint), "OUTPUT": str(out)},
                       feedback=QgsProcessingFeedback(), context=QgsProcessingContext())
    finally:
        os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (out, Path(f"{out}.aux.xml"), out.with_suffix(".qml"))}
    assert set(modes.values()) == {"0o644"}, modes


def test_no_resource_warnings_from_backend_runs(provider, recwarn):
    import gc
    import sys
    import warnings

    from senclip_qgis import backend_client, installer

    warnings.simplefilter("always", ResourceWarning)
    installer.stream([sys.executable, "-c", "print('pip says hi')"], lambda line: None, lambda: False)
    backend_client.run_request("selfcheck", {})
    gc.collect()
    leaks = [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_toolbox_log_has_one_line_per_stage_and_the_total_time(provider, s2_raster, plugin_checkpoint, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    import processing

    texts, infos, percents = [], [], []

    class Log(QgsProcessingFeedback):
        def setProgressText(self, text):  # noqa: N802 - Processing appends each call to the log
            texts.append(text)

        def pushInfo(self, info):  # noqa: N802
            infos.append(info)

    feedback = Log()
    feedback.progressChanged.connect(percents.append)
    processing.run("senclip:classify", {"INPUT": str(s2_raster), "CLASSES": "Forest;Sea or Lake",
                                        "CHECKPOINT": str(plugin_checkpoint), "OUTPUT": str(tmp_path / "p.tif"),
                                        "BATCH_SIZE": 2},
                   feedback=feedback, context=QgsProcessingContext())
    assert texts and len(texts) == len(set(texts)), texts  # a line per stage, never the same line again
    assert not [t for t in texts if re.search(r"\d+/\d+", t)], texts  # counts go to the bar, not the log
    assert percents and percents[-1] == 100.0
    assert any(re.match(r"SenCLIP classify finished in \d", line) for line in infos), infos


TRANSDUCTIVE = {"classes": ["Forest", "Sea or Lake", "Pasture"], "counts": {"Forest": 60, "Sea or Lake": 40},
                "area_m2": {"Forest": 6000.0, "Sea or Lake": 4000.0, "Pasture": 0.0},
                "mean_confidence": {"Forest": 0.9, "Sea or Lake": 0.8, "Pasture": None}}


def test_transductive_absent_classes_stay_marked_and_the_method_is_named(new_dock):
    """A class the solver found absent keeps its row (the legend keeps it), marked with the estimate."""
    dock = new_dock
    dock._fill_results(dict(TRANSDUCTIVE, transductive={
        "spatial": "8", "method": "transclip", "params": {"lambda": 0.5, "k": 3},
        "absent": [{"class": "Pasture", "index": 3, "share": 0.0002}]}))
    assert dock.results.rowCount() == 3
    assert [dock.results.item(r, 0).text() for r in (0, 1)] == ["Forest", "Sea or Lake"]
    pasture = dock.results.item(2, 0)
    assert pasture.text().startswith("Pasture") and "absent (est. 0.02 %)" in pasture.text()
    assert "absent" in pasture.toolTip() and "0.02 %" in pasture.toolTip()
    assert "absent" not in dock.results.item(0, 0).toolTip()
    note = dock.results_note.text()
    assert not dock.results_note.isHidden() and "transclip" in note and "lambda 0.5" in note
    assert "1 of 3 classes absent" in note

    dock._fill_results(dict(TRANSDUCTIVE, transductive={"absent": [{"index": 2, "share": 0.01}]}))
    assert "absent (est. 1.0 %)" in dock.results.item(1, 0).text()  # by class value when no name is sent


def test_results_from_an_older_backend_mark_nothing(new_dock):
    """A backend from before "method"/"absent": the table as before, a plain note; none after a plain run."""
    dock = new_dock
    dock._fill_results(dict(TRANSDUCTIVE, transductive={"transductive": True, "spatial": "8"}))
    assert [dock.results.item(r, 0).text() for r in range(3)] == TRANSDUCTIVE["classes"]
    assert dock.results_note.text() == "Transductive: whole scene."
    dock._fill_results(TRANSDUCTIVE)
    assert dock.results_note.isHidden() and dock.results.item(2, 0).text() == "Pasture"
