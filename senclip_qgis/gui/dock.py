"""The prompt-tweaking dock: encode once, then every prompt edit re-classifies from memory.

The first Run sends ``embed`` (slow: the image encoder) then ``load_store`` to a persistent worker;
later runs with the same layer/extent/model send only ``reclassify`` (text encoder + a matrix
product). Edits to the table re-classify by themselves after a short pause.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QCheckBox, QComboBox, QDockWidget, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
    QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from .. import catalog
from ..styling import style_class_layer
from .prompt_table import PromptTable
from .worker_process import WorkerProcess

DEFAULT_CLASSES = ["Forest", "Sea or Lake", "Annual Crop Land", "Pasture", "Residential Buildings"]


class SenclipDock(QDockWidget):
    def __init__(self, iface, parent=None) -> None:
        super().__init__("SenCLIP land cover", parent)
        self.setObjectName("SenclipDock")
        self.iface = iface
        self.worker = WorkerProcess(self)
        self.worker.progress.connect(self._on_progress)
        self.worker.stateChanged.connect(self._on_busy)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="senclip-dock-"))
        self.store_key = None
        self.result_layer_id = None
        self.last_result: dict | None = None
        self.runs = 0
        self.probe_tool = None
        self.input_crs = None
        self._rerun = QTimer(self)
        self._rerun.setSingleShot(True)
        self._rerun.setInterval(500)
        self._rerun.timeout.connect(self.reclassify)
        self._build()

    # -- widgets -------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget(self)
        layout = QVBoxLayout(body)
        form = QFormLayout()
        self.layer_combo = QgsMapLayerComboBox(body)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        form.addRow(self.tr("Sentinel-2 layer"), self.layer_combo)
        self.visible_only = QCheckBox(self.tr("Visible extent only"), body)
        form.addRow("", self.visible_only)
        self.model_combo = QComboBox(body)
        self.model_combo.addItems(catalog.model_ids())
        form.addRow(self.tr("Model"), self.model_combo)
        self.checkpoint = QgsFileWidget(body)
        self.checkpoint.setFilter("Checkpoints (*.ckpt *.pt *.pth *.bin *.safetensors *.onnx)")
        form.addRow(self.tr("Checkpoint (optional)"), self.checkpoint)
        self.backend_combo = QComboBox(body)
        self.backend_combo.addItems(catalog.BACKENDS)
        self.device_combo = QComboBox(body)
        self.device_combo.addItems(catalog.DEVICES)
        row = QHBoxLayout()
        row.addWidget(self.backend_combo)
        row.addWidget(self.device_combo)
        form.addRow(self.tr("Backend / device"), row)
        self.style_combo = QComboBox(body)
        self.style_combo.addItems(catalog.PROMPT_STYLES)
        self.style_combo.currentIndexChanged.connect(self._schedule_rerun)
        self.set_combo = QComboBox(body)
        self.set_combo.addItems(sorted({n.rsplit("_", 1)[0] for n in catalog.prompt_sets()}))
        use_set = QPushButton(self.tr("Use set"), body)
        use_set.clicked.connect(self.use_shipped_set)
        row = QHBoxLayout()
        row.addWidget(self.style_combo)
        row.addWidget(self.set_combo)
        row.addWidget(use_set)
        form.addRow(self.tr("Prompt style / shipped set"), row)
        layout.addLayout(form)

        self.table = PromptTable(body)
        for name in DEFAULT_CLASSES:
            self.table.add_class(name)
        self.table.edited.connect(self._schedule_rerun)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        for text, slot in ((self.tr("Add"), lambda: self.table.add_class(self.tr("New class"))),
                           (self.tr("Remove"), self.table.remove_selected),
                           (self.tr("Load…"), self.load_prompts), (self.tr("Save…"), self.save_prompts)):
            button = QPushButton(text, body)
            button.clicked.connect(slot)
            row.addWidget(button)
        layout.addLayout(row)

        row = QHBoxLayout()
        self.run_button = QPushButton(self.tr("Run"), body)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton(self.tr("Cancel"), body)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.probe_button = QPushButton(self.tr("Probe map"), body)
        self.probe_button.setCheckable(True)
        self.probe_button.toggled.connect(self._toggle_probe)
        for b in (self.run_button, self.cancel_button, self.probe_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        layout.addWidget(self.progress)
        self.status = QLabel(self.tr("Ready."), body)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.results = QTableWidget(0, 4, body)
        self.results.setHorizontalHeaderLabels([self.tr("Class"), "km²", "%", self.tr("Mean conf.")])
        layout.addWidget(self.results)
        self.probe_label = QLabel("", body)
        self.probe_label.setWordWrap(True)
        layout.addWidget(self.probe_label)
        from .embedding_panel import EmbeddingPanel  # few-shot examples and find-similar (own module)
        self.embedding_panel = EmbeddingPanel(self, body)
        layout.addWidget(self.embedding_panel)
        row = QHBoxLayout()
        install = QPushButton(self.tr("Install backend…"), body)
        install.clicked.connect(self.install_backend)
        diag = QPushButton(self.tr("Diagnostics"), body)
        diag.clicked.connect(self.diagnostics)
        row.addWidget(install)
        row.addWidget(diag)
        layout.addLayout(row)
        self.setWidget(body)

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
                "backend": self.backend_combo.currentText(), "device": self.device_combo.currentText()}

    def run(self) -> None:
        """Embed if layer/extent/model changed since the last run, then re-classify."""
        layer = self.layer()
        if layer is None:
            self.show_status(self.tr("Choose a Sentinel-2 raster layer first."), error=True)
            return
        if layer.providerType() != "gdal":
            self.show_status(self.tr("The layer must be a file-based raster (GDAL)."), error=True)
            return
        from qgis.core import QgsProviderRegistry

        path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
        self.input_crs = layer.crs()
        args = dict(self.model_args(), input=path, bounds=self._bounds(layer))
        key = repr(sorted(args.items(), key=lambda kv: kv[0]))
        if key == self.store_key:
            self.reclassify()
            return
        self.store_key = None
        self.runs += 1
        store = self.tmpdir / f"store-{self.runs}"
        self.show_status(self.tr("Encoding the image (first run for this extent)…"))
        self.worker.request("embed", dict(args, out=str(store), overwrite=True),
                            lambda res: self._embedded(key, store), self._failed)

    def _embedded(self, key, store) -> None:
        def loaded(res):
            self.store_key = key
            self.reclassify()

        self.worker.request("load_store", {"store": str(store), "backend": self.backend_combo.currentText(),
                                           "device": self.device_combo.currentText()}, loaded, self._failed)

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
        out = self.tmpdir / f"classes-{self.runs}.tif"
        self.worker.request("reclassify", {"out": str(out), "classes": list(mapping), "prompts": mapping,
                                           "prompt_style": self.style_combo.currentText()},
                            self._classified, self._failed)

    def _schedule_rerun(self, *args) -> None:
        if self.store_key is not None:
            self._rerun.start()

    def _classified(self, result: dict) -> None:
        self.last_result = result
        path, classes = result["path"], result["classes"]
        project = QgsProject.instance()
        layer = project.mapLayer(self.result_layer_id) if self.result_layer_id else None
        if layer is None:
            layer = QgsRasterLayer(path, "SenCLIP classes", "gdal")
            project.addMapLayer(layer)
            self.result_layer_id = layer.id()
        else:
            layer.setDataSource(path, layer.name(), "gdal")
        style_class_layer(layer, classes)
        self._fill_results(result)
        secs = result.get("seconds")
        self.show_status(self.tr("Classified {} classes{}.").format(
            len(classes), f" in {secs:.2f} s" if secs is not None else ""))
        self.progress.setValue(100)

    def _fill_results(self, result: dict) -> None:
        from ..algorithms.base import per_class

        classes = result["classes"]
        counts = per_class(result.get("counts"), classes, 0)
        areas = per_class(result.get("area_m2"), classes, None)
        conf = per_class(result.get("mean_confidence"), classes, None)
        total = float(sum(counts)) or 1.0
        self.results.setRowCount(len(classes))
        for i, name in enumerate(classes):
            cells = [name, "n/a" if areas[i] is None else f"{areas[i] / 1e6:.3f}",
                     f"{100 * counts[i] / total:.1f}", "n/a" if conf[i] is None else f"{conf[i]:.2f}"]
            for j, text in enumerate(cells):
                self.results.setItem(i, j, QTableWidgetItem(text))

    def _failed(self, error) -> None:
        self.show_status(str(error), error=True)
        self.progress.setValue(0)

    def cancel(self) -> None:
        self._rerun.stop()
        self.worker.cancel()
        self.store_key = None  # the killed worker lost its store; the next Run embeds again

    def _on_progress(self, event: dict) -> None:
        if event.get("event") == "progress":
            self.progress.setValue(int(event.get("percent") or 0))
            self.status.setText(f"{event.get('text', '')} {event.get('done')}/{event.get('total')}")
        elif event.get("event") == "warning":
            self.status.setText(self.tr("Warning: ") + event.get("message", ""))

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

    def diagnostics(self) -> None:
        from .diagnostics import show_diagnostics

        show_diagnostics(self)

    def shutdown(self) -> None:
        self._rerun.stop()
        self.worker.shutdown()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def closeEvent(self, event):  # noqa: N802 - Qt naming
        self.worker.shutdown()
        self.store_key = None
        super().closeEvent(event)

