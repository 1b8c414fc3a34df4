"""The prompt-tweaking dock: encode once, then every prompt edit re-classifies from memory.

The first Run sends ``embed`` (slow: the image encoder) then ``load_store`` to a persistent worker;
later runs with the same layer/extent/model send only ``reclassify`` (text encoder + a matrix
product). Edits to the table re-classify by themselves after a short pause.

Results go to a folder the user keeps (see ``results_folder``), never to a temporary folder: a saved
project must find its layers again. This module is the behaviour (signals, worker requests); the
widgets and their layout, made to fit QGIS's default dock width, are built by ``dock_layout``; the
per-class results table is ``results_table``.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from qgis.core import Qgis, QgsMessageLog, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QDockWidget, QFileDialog

from .. import backend_client, catalog
from ..messages import not_a_file_raster
from ..progress import ProgressTracker, format_seconds
from ..styling import style_class_layer
from . import dock_layout, results_folder, results_table
from .worker_process import WorkerProcess

LOG_TAG = "SenCLIP"


class SenclipDock(QDockWidget):
    def __init__(self, iface, parent=None) -> None:
        super().__init__("SenCLIP land cover", parent)
        self.setObjectName("SenclipDock")
        self.iface = iface
        self.worker = WorkerProcess(self)
        self.worker.progress.connect(self._on_progress)
        self.worker.stateChanged.connect(self._on_busy)
        self.store_key = None
        self.store_path: Path | None = None  # the embedding store the worker has loaded
        self.result_path: Path | None = None  # the class map the result layer shows
        self.written: set[Path] = set()  # what this dock wrote: only these may it ever remove
        self.tracker: ProgressTracker | None = None
        self.run_started: float | None = None  # Run pressed (encoding included in the total time)
        self.encode_seconds: float | None = None
        self.result_layer_id = None
        self.last_result: dict | None = None
        self.runs = 0
        self.probe_tool = None
        self.input_crs = None
        self._rerun = QTimer(self)
        self._rerun.setSingleShot(True)
        self._rerun.setInterval(500)
        self._rerun.timeout.connect(self.reclassify)
        dock_layout.build(self)
        self._connect()

    # -- signals -------------------------------------------------------------------------------
    def _connect(self) -> None:
        """What each widget of ``dock_layout.build`` does."""
        for signal, slot in (
                (self.style_combo.currentIndexChanged, self._schedule_rerun),
                (self.transductive.toggled, self._schedule_rerun),
                (self.table.edited, self._schedule_rerun),
                (self.use_set_button.clicked, self.use_shipped_set),
                (self.results_dir.fileChanged, results_folder.remember_dir),
                (self.add_button.clicked, lambda: self.table.add_class(self.tr("New class"))),
                (self.remove_button.clicked, self.table.remove_selected),
                (self.load_button.clicked, self.load_prompts),
                (self.save_button.clicked, self.save_prompts),
                (self.run_button.clicked, self.run),
                (self.cancel_button.clicked, self.cancel),
                (self.probe_button.toggled, self._toggle_probe),
                (self.save_map_button.clicked, self.save_map_as),
                (self.install_button.clicked, self.install_backend),
                (self.download_button.clicked, self.download_weights),
                (self.diagnostics_button.clicked, self.diagnostics)):
            signal.connect(slot)

    # -- prompts -------------------------------------------------------------------------------
    def use_shipped_set(self) -> None:
        name = f"{self.set_combo.currentText()}_{self.style_combo.currentText()}"
        path = catalog.prompt_sets().get(name)
        if path is not None:
            self.table.set_mapping(catalog.read_prompt_file(path))

    def load_prompts(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Load prompts"), "", "JSON (*.json)")
        if path:
            try:
                self.table.load_json(path)
            except (OSError, ValueError) as exc:
                self.show_status(str(exc), error=True)

    def save_prompts(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save prompts"), "", "JSON (*.json)")
        if path:
            self.table.save_json(path)

    # -- running -------------------------------------------------------------------------------
    def layer(self) -> QgsRasterLayer | None:
        layer = self.layer_combo.currentLayer()
        return layer if isinstance(layer, QgsRasterLayer) else None

    def _bounds(self, layer):
        if not self.visible_only.isChecked() or self.iface is None:
            return None
        from qgis.core import QgsCoordinateTransform

        canvas = self.iface.mapCanvas()
        ct = QgsCoordinateTransform(canvas.mapSettings().destinationCrs(), layer.crs(), QgsProject.instance())
        rect = ct.transformBoundingBox(canvas.extent()).intersect(layer.extent())
        if rect.isEmpty():
            return None
        return [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]

    def model_args(self) -> dict:
        checkpoint = self.checkpoint.filePath().strip() or None
        return {"model": None if checkpoint else self.model_combo.currentText(), "checkpoint": checkpoint,
                "backend": self.backend_combo.currentText(), "device": self.device_combo.currentText(),
                "precision": self.precision_combo.currentText()}

    def _results_folder(self):
        """The folder results are kept in, or None (and the reason in the status line)."""
        try:
            return results_folder.results_dir()
        except OSError as exc:
            self.show_status(self.tr("Cannot use the results folder: {}. Choose another one.").format(exc),
                             error=True)
            return None

    def run(self) -> None:
        """Embed if layer/extent/model changed since the last run, then re-classify."""
        layer = self.layer()
        if layer is None:
            self.show_status(self.tr("Choose a Sentinel-2 raster layer first."), error=True)
            return
        if layer.providerType() != "gdal":
            self.show_status(not_a_file_raster(layer.name(), layer.providerType()), error=True)
            return
        if not self.table.mapping():  # say so now, not after minutes of encoding
            self.show_status(self.tr("The class table is empty: add at least one class (Add), then Run."),
                             error=True)
            return
        folder = self._results_folder()
        if folder is None:
            return
        from qgis.core import QgsProviderRegistry

        path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
        self.input_crs = layer.crs()
        args = dict(self.model_args(), input=path, bounds=self._bounds(layer), cloud_mask=self.cloud_combo.currentText())
        key = repr(sorted(args.items(), key=lambda kv: kv[0]))
        if key == self.store_key:
            self.reclassify()
            return
        self.store_key = None
        self.runs += 1
        store = results_folder.unique_path(folder / "stores", f"{results_folder.slug(layer.name())}-"
                                           f"{results_folder.stamp()}", "")
        store.parent.mkdir(parents=True, exist_ok=True)
        self.source_name = layer.name()
        self.run_started, self.encode_seconds = time.monotonic(), None
        self.tracker = ProgressTracker()
        self.show_status(self.tr("Encoding the image (first run for this extent)…"))
        self.worker.request("embed", dict(args, out=str(store), overwrite=False),
                            lambda res: self._embedded(key, store), self._failed)

    def _embedded(self, key, store) -> None:
        self.written.add(store)
        if self.run_started is not None:
            self.encode_seconds = time.monotonic() - self.run_started

        def loaded(res):
            old, self.store_path = self.store_path, store
            self.store_key = key
            if old is not None and old != store:
                self._remove_written(old)  # superseded by the new store
            self.reclassify()

        self.worker.request("load_store", {"store": str(store), "backend": self.backend_combo.currentText(),
                                           "device": self.device_combo.currentText(),
                                           "precision": self.precision_combo.currentText()}, loaded, self._failed)

    def reclassify(self) -> None:
        if self.store_key is None:
            return
        if self.worker.busy():  # an edit during a run: run again when it ends
            self._rerun.start()
            return
        mapping = self.table.mapping()
        if not mapping:
            self.show_status(self.tr("Add at least one class."), error=True)
            return
        self.runs += 1
        folder = self._results_folder()
        if folder is None:
            return
        name = getattr(self, "source_name", "") or "senclip"
        out = results_folder.unique_path(folder, f"{results_folder.slug(name)}_classes_{results_folder.stamp()}",
                                         ".tif")
        self.worker.request("reclassify", {"out": str(out), "classes": list(mapping), "prompts": mapping,
                                           "prompt_style": self.style_combo.currentText(),
                                           "transductive": self.transductive.isChecked()},
                            self._classified, self._failed)

    def _schedule_rerun(self, *args) -> None:
        if self.store_key is not None:
            self._rerun.start()

    def _classified(self, result: dict) -> None:
        self.last_result = result
        path, classes = result["path"], result["classes"]
        self.written.add(Path(path))
        project = QgsProject.instance()
        layer = project.mapLayer(self.result_layer_id) if self.result_layer_id else None
        title = results_folder.layer_title(classes)
        if layer is None:
            layer = QgsRasterLayer(path, title, "gdal")
            project.addMapLayer(layer)
            self.result_layer_id = layer.id()
        else:
            layer.setDataSource(path, title, "gdal")
        layer.setName(title)
        style_class_layer(layer, classes)
        old, self.result_path = self.result_path, Path(path)
        if old is not None and old != self.result_path:
            self._remove_written(old)  # superseded by this re-classification
        self._fill_results(result, layer)
        self.save_map_button.setEnabled(True)
        note = (result.get("cloud_mask") or {}).get("note")
        self.show_status(self.finished_text(len(classes), result.get("seconds"))
                         + (self.tr(" Cloud mask: {}").format(note) if note else ""))
        self.progress.setValue(100)

    def finished_text(self, n_classes: int, seconds: float | None) -> str:
        """The whole run's time after a Run (encoding included); the re-classification's otherwise."""
        secs = "" if seconds is None else format_seconds(seconds)
        if self.run_started is None:
            return self.tr("Re-classified {} classes in {}.").format(n_classes, secs)
        total = format_seconds(time.monotonic() - self.run_started)
        self.run_started = None
        encode = "" if self.encode_seconds is None else self.tr("image encoding {}, ").format(
            format_seconds(self.encode_seconds))
        return self.tr("Classified {} classes in {} ({}classification {}).").format(n_classes, total, encode, secs)

    def _remove_written(self, path: Path) -> None:
        """Delete a file or store this dock wrote and nothing shows any more; never anything else."""
        if path not in self.written:
            return
        sources = {lyr.source() for lyr in QgsProject.instance().mapLayers().values()}
        if str(path) in sources:
            return
        self.written.discard(path)
        if path.is_dir():
            if (path / "meta.json").is_file():
                shutil.rmtree(path, ignore_errors=True)
            return
        for p in [path] + results_folder.sidecars(path):
            p.unlink(missing_ok=True)

    def save_map_as(self) -> None:
        if self.result_path is None:
            return
        start = str(results_folder.results_dir() / f"{results_folder.slug(self.result_layer_name())}.tif")
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save map as"), start, "GeoTIFF (*.tif)")
        if path:
            self.save_map_to(path)

    def result_layer_name(self) -> str:
        layer = QgsProject.instance().mapLayer(self.result_layer_id) if self.result_layer_id else None
        return layer.name() if layer is not None else "senclip-classes"

    def save_map_to(self, path: str) -> QgsRasterLayer | None:
        """Copy the current class map (+ colour table, names, style) to ``path`` and add it as a layer.

        The dock's working map is replaced by the next prompt edit; a saved copy stays as it is.
        """
        if self.result_path is None or self.last_result is None:
            return None
        dest = Path(path if path.lower().endswith((".tif", ".tiff")) else path + ".tif")
        if dest.resolve() == self.result_path.resolve():
            self.show_status(self.tr("That is the dock's working file; choose another name."), error=True)
            return None
        try:
            shutil.copyfile(self.result_path, dest)
            for side in results_folder.sidecars(self.result_path):
                shutil.copyfile(side, results_folder.sidecar_for(side, self.result_path, dest))
        except OSError as exc:
            self.show_status(self.tr("Could not save the map: {}").format(exc), error=True)
            return None
        layer = QgsRasterLayer(str(dest), dest.stem, "gdal")
        style_class_layer(layer, self.last_result["classes"])
        QgsProject.instance().addMapLayer(layer)
        self.show_status(self.tr("Saved the map to {}.").format(dest))
        return layer

    def _fill_results(self, result: dict, layer=None) -> None:
        from ..styling import renderer_colours

        results_table.fill(self.results, result, renderer_colours(layer) if layer is not None else {})
        note = results_table.transductive_note(result)
        self.results_note.setText(note)
        self.results_note.setVisible(bool(note))

    def _failed(self, error) -> None:
        self.run_started = None
        self.progress.setValue(0)
        if isinstance(error, backend_client.BackendCancelled):  # the user's choice, not a failure
            self.show_status(self.tr("Cancelled. Nothing was written; Run starts again."))
            return
        self.show_status(str(error), error=True)

    def cancel(self) -> None:
        self._rerun.stop()
        self.worker.cancel()
        self.store_key = None  # the killed worker lost its store; the next Run embeds again

    def _on_progress(self, event: dict) -> None:
        if event.get("event") == "progress":
            self.tracker = self.tracker or ProgressTracker()
            percent, line, status = self.tracker.update(event)
            self.progress.setValue(int(percent))
            self.show_status(status)
            if line:  # one log line per stage, not per batch
                QgsMessageLog.logMessage(line, LOG_TAG, Qgis.MessageLevel.Info)
        elif event.get("event") == "warning":
            self.show_status(self.tr("Warning: ") + event.get("message", ""))

    def _on_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.run_button.setEnabled(not busy)

    def show_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "")

    # -- map probe -----------------------------------------------------------------------------
    def _toggle_probe(self, on: bool) -> None:
        if self.iface is None:
            return
        canvas = self.iface.mapCanvas()
        if on:
            from .probe_tool import ProbeTool

            self.probe_tool = ProbeTool(canvas, lambda: self.input_crs, self.probe)
            canvas.setMapTool(self.probe_tool)
        elif self.probe_tool is not None:
            canvas.unsetMapTool(self.probe_tool)

    def probe(self, x: float, y: float) -> None:
        """Top classes at (x, y) given in the input layer's CRS."""
        def show(res):
            if not res.get("inside"):
                self.probe_label.setText(self.tr("Outside the classified area."))
                return
            self.probe_label.setText(", ".join(f"{t['class']}: {t['probability']:.0%}" for t in res["top"]))

        self.worker.request("probe", {"x": x, "y": y, "k": 3}, show, self._failed)

    # -- set-up --------------------------------------------------------------------------------
    def install_backend(self) -> None:
        import processing

        processing.execAlgorithmDialog("senclip:install_backend")

    def download_weights(self) -> None:
        """Fetch the chosen model's weights now, in the worker (fails in a second when offline)."""
        model = self.model_combo.currentText()
        self.show_status(self.tr("Downloading the weights of {}…").format(model))

        def done(res):
            if res.get("path"):
                self.show_status(self.tr("Weights of {} ready: {}").format(model, res["path"]))
            else:
                self.show_status(self.tr("{} has no weight file (random weights); nothing to download.")
                                 .format(model))

        self.worker.request("download_weights", {"model": model}, done, self._failed)

    def diagnostics(self) -> None:
        from .diagnostics import show_diagnostics

        self._diagnostics = show_diagnostics(self)

    def shutdown(self) -> None:
        """Stop the worker; results stay in the results folder (the project may point at them)."""
        self._rerun.stop()
        self.worker.shutdown()

    def closeEvent(self, event):  # noqa: N802 - Qt naming
        self.worker.shutdown()
        self.store_key = None
        super().closeEvent(event)

