"""The dock's widgets and where they sit; what they do (signals, worker requests) is in ``dock.py``.

Like pyuic's ``setupUi``, ``build(dock)`` creates the widgets as attributes of the dock and connects
nothing. The layout is made for the width QGIS gives a new right-hand dock, 298 px on QGIS 3.22
(284 px inside the scroll area), on a 1366x768 laptop and a 1920x1080 screen alike: short form labels
(the long story in tooltips) that wrap above their field when the dock is narrower still, button rows
that wrap (``narrow.FlowLayout``), tables whose columns stretch, and the settings most runs leave
alone (checkpoint, backend, device, precision, cloud mask, results folder) in a collapsible section.
The dock scrolls vertically, so it also fits a 768 px high screen. ``tests/plugin/test_dock_fits.py``
measures it in a real QGIS under Xvfb.
"""
from __future__ import annotations

from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from .. import catalog, compat
from . import results_folder, results_table
from .narrow import flow, shrinkable
from .prompt_table import PromptTable

DEFAULT_CLASSES = ["Forest", "Sea or Lake", "Annual Crop Land", "Pasture", "Residential Buildings"]


def build(dock) -> None:
    """Every widget of the dock, top to bottom, inside a vertical scroll area."""
    body = QWidget(dock)
    layout = QVBoxLayout(body)
    layout.addLayout(_input_form(dock, body))
    layout.addWidget(_settings_section(dock, body))
    _prompt_editor(dock, body, layout)
    _run_and_results(dock, body, layout)
    from .embedding_panel import EmbeddingPanel  # few-shot examples and find-similar (own module)

    dock.embedding_panel = EmbeddingPanel(dock, body)
    layout.addWidget(dock.embedding_panel)
    dock.install_button = QPushButton(dock.tr("Install backend…"), body)
    dock.download_button = QPushButton(dock.tr("Download weights"), body)
    dock.download_button.setToolTip(dock.tr("Fetch the chosen model's weights now (while online)"))
    dock.diagnostics_button = QPushButton(dock.tr("Diagnostics"), body)
    layout.addLayout(flow(dock.install_button, dock.download_button, dock.diagnostics_button))
    layout.addStretch(1)
    scroll = QScrollArea(dock)  # a 768 px high screen cannot show the dock whole
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(body)
    dock.setWidget(scroll)


def form_layout() -> QFormLayout:
    """Label beside field while both fit, the label above its field when the dock is narrower."""
    form = QFormLayout()
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def _input_form(dock, body) -> QFormLayout:
    """Layer, extent, model, prompt style, shipped prompt set and transductive mode."""
    tr, form = dock.tr, form_layout()
    dock.layer_combo = shrinkable(QgsMapLayerComboBox(body))
    dock.layer_combo.setFilters(compat.RASTER_LAYER_FILTER)
    dock.layer_combo.setToolTip(tr("The Sentinel-2 raster layer to classify (a file: GeoTIFF, JP2, VRT, .SAFE)"))
    form.addRow(tr("Layer"), dock.layer_combo)
    dock.visible_only = QCheckBox(tr("Visible extent only"), body)
    form.addRow("", dock.visible_only)
    dock.model_combo = shrinkable(QComboBox(body))
    dock.model_combo.addItems(catalog.model_ids())
    form.addRow(tr("Model"), dock.model_combo)
    dock.style_combo = shrinkable(QComboBox(body))
    dock.style_combo.addItems(catalog.PROMPT_STYLES)
    dock.style_combo.setToolTip(tr("Prompt style: the templates used for classes without prompts of their own"))
    form.addRow(tr("Style"), dock.style_combo)
    dock.set_combo = shrinkable(QComboBox(body))
    dock.set_combo.addItems(sorted({n.rsplit("_", 1)[0] for n in catalog.prompt_sets()}))
    dock.set_combo.setToolTip(tr("A shipped prompt set (in the chosen style); Use set puts it in the table"))
    dock.use_set_button = QPushButton(tr("Use set"), body)
    row = QHBoxLayout()
    row.addWidget(dock.set_combo, 1)
    row.addWidget(dock.use_set_button)
    form.addRow(tr("Set"), row)
    dock.transductive = QCheckBox(tr("Transductive (whole scene)"), body)
    dock.transductive.setToolTip(tr(
        "Slower, sharper classes. TransCLIP on the scene's embeddings plus its 8 grid neighbours: clusters "
        "of similar cells and neighbouring cells are pulled to one class, anchored to the prompts. "
        "Recorded in the map."))
    form.addRow("", dock.transductive)
    return form


def _settings_section(dock, body) -> QgsCollapsibleGroupBox:
    """Checkpoint, backend, device, precision, cloud mask and results folder, collapsed at first."""
    tr = dock.tr
    box = QgsCollapsibleGroupBox(tr("Settings"), body)
    box.setObjectName("SenclipDockSettings")  # QGIS remembers whether it was open under this name
    box.setToolTip(tr("Checkpoint, backend, device, precision, cloud mask, results folder"))
    form = form_layout()
    box.setLayout(form)
    dock.checkpoint = QgsFileWidget(box)
    dock.checkpoint.setFilter("Checkpoints (*.ckpt *.pt *.pth *.bin *.safetensors *.onnx)")
    dock.checkpoint.setToolTip(tr("Optional: a checkpoint file; when given it wins over the Model"))
    form.addRow(tr("Checkpoint"), dock.checkpoint)
    dock.backend_combo, dock.device_combo, dock.precision_combo = (
        _combo(box, form, tr(label), items) for label, items in (
            ("Backend", catalog.BACKENDS), ("Device", catalog.DEVICES), ("Precision", catalog.PRECISIONS)))
    dock.precision_combo.setToolTip(tr(
        "auto: the fastest format this CPU runs at cosine >= 0.999 to fp32 (bf16 on AMX with OpenVINO, "
        "int8 with the onnx backend); the choice is recorded in the output"))
    dock.cloud_combo = _combo(box, form, tr("Clouds"), catalog.CLOUD_MASKS)
    dock.cloud_combo.setToolTip(tr("Cloud mask: clouds and their shadows become the class 'cloud / shadow' "
                                   "instead of a land-cover guess. auto: the L2A scene classification (SCL), "
                                   "else s2cloudless on L1C bands, else none"))
    dock.results_dir = QgsFileWidget(box)
    dock.results_dir.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
    dock.results_dir.setFilePath(results_folder.chosen_dir())
    dock.results_dir.lineEdit().setPlaceholderText(tr("beside the project: {}").format(
        results_folder.default_dir()))
    dock.results_dir.setToolTip(tr("Results folder: class maps and embedding stores are written here and "
                                   "kept. Empty: a 'senclip' folder beside the project file."))
    form.addRow(tr("Results"), dock.results_dir)
    box.setCollapsed(True)
    return box


def _combo(parent, form, label: str, items) -> QComboBox:
    combo = shrinkable(QComboBox(parent))
    combo.addItems(items)
    form.addRow(label, combo)
    return combo


def _prompt_editor(dock, body, layout) -> None:
    """The class/prompt table and its Add/Remove/Load/Save buttons."""
    tr = dock.tr
    dock.table = PromptTable(body)
    dock.table.setMinimumHeight(120)
    for name in DEFAULT_CLASSES:
        dock.table.add_class(name)
    layout.addWidget(dock.table)
    dock.add_button, dock.remove_button, dock.load_button, dock.save_button = (
        QPushButton(text, body) for text in (tr("Add"), tr("Remove"), tr("Load…"), tr("Save…")))
    dock.load_button.setToolTip(tr("Read a JSON prompt file {class: [prompts]}"))
    dock.save_button.setToolTip(tr("Write the classes with prompts as a JSON prompt file (--prompts)"))
    layout.addLayout(flow(dock.add_button, dock.remove_button, dock.load_button, dock.save_button))


def _run_and_results(dock, body, layout) -> None:
    """Run and Cancel, progress, status, the per-class results, Probe map and Save map as…"""
    tr = dock.tr
    dock.run_button = QPushButton(tr("Run"), body)
    dock.cancel_button = QPushButton(tr("Cancel"), body)
    dock.cancel_button.setEnabled(False)
    layout.addLayout(flow(dock.run_button, dock.cancel_button))
    dock.progress = QProgressBar(body)
    dock.progress.setRange(0, 100)
    layout.addWidget(dock.progress)
    dock.status = _label(tr("Ready."), body, layout)
    dock.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    dock.results = results_table.ResultsTable(body)
    layout.addWidget(dock.results)
    dock.results_note = _label("", body, layout)
    dock.results_note.setVisible(False)
    dock.probe_button = QPushButton(tr("Probe map"), body)
    dock.probe_button.setCheckable(True)
    dock.probe_button.setToolTip(tr("Click the map: the top three classes there"))
    dock.save_map_button = QPushButton(tr("Save map as…"), body)
    dock.save_map_button.setEnabled(False)
    layout.addLayout(flow(dock.probe_button, dock.save_map_button))
    dock.probe_label = _label("", body, layout)


def _label(text: str, parent, layout) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    layout.addWidget(label)
    return label
