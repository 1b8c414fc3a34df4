"""The dock's embedding tools: few-shot examples and "find similar", on the store the dock loaded.

Both work on the persistent worker's store, so a refinement or a search is a matrix product
(well under a second for a 100 km² scene), never an image encoding. Examples live in a memory
layer ("SenCLIP examples") styled by class; every refinement writes its class map into the dock's
results folder and saves the examples beside it (``<map>.examples.geojson``) with the
cross-validated accuracy (``<map>.fewshot.json``).
"""
from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFeature,
    QgsField,
    QgsProject,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from .. import compat
from ..styling import FALLBACK
from ..tool_styles import style_mask, style_ramp
from .example_tool import ExampleTool, example_geometry
from .narrow import flow, shrinkable
from .similar_tool import SimilarTool


class EmbeddingPanel(QGroupBox):
    def __init__(self, dock, parent=None) -> None:
        super().__init__(dock.tr("Examples and similar places"), parent)
        self.dock = dock
        self.examples: list[dict] = []  # GeoJSON features in the input CRS, property "class"
        self.layers: dict = {}  # geometry kind -> QgsVectorLayer id
        self.similar_ids: list = []
        self.tool = None
        self.last_fewshot: dict | None = None
        self.last_similar: dict | None = None
        self._build()

    # -- widgets -------------------------------------------------------------------------------
    def _build(self) -> None:
        """Rows that wrap (``narrow.flow``): the panel fits QGIS's default 298 px dock."""
        tr = self.dock.tr
        layout = QVBoxLayout(self)
        self.class_combo = shrinkable(QComboBox(self))
        self.class_combo.setEditable(True)  # a class may be new: examples without a prompt are fine
        self.class_combo.setToolTip(tr("Class of the next example (type a new name for a class without a prompt)"))
        layout.addWidget(self.class_combo)
        self.example_button = QPushButton(tr("Add examples"), self)
        self.example_button.setCheckable(True)
        self.example_button.toggled.connect(self._toggle_examples)
        self.polygon_mode = QCheckBox(tr("draw polygons"), self)
        self.polygon_mode.toggled.connect(self._mode_changed)
        self.refine_button = QPushButton(tr("Refine with examples"), self)
        self.refine_button.clicked.connect(self.refine)
        clear = QPushButton(tr("Clear examples"), self)
        clear.clicked.connect(self.clear_examples)
        layout.addLayout(flow(self.example_button, self.polygon_mode, self.refine_button, clear))
        self.similar_button = QPushButton(tr("Find similar (click map)"), self)
        self.similar_button.setCheckable(True)
        self.similar_button.toggled.connect(self._toggle_similar)
        self.text_query = QLineEdit(self)
        self.text_query.setPlaceholderText(tr("…or search text, e.g. solar farms"))
        self.text_query.returnPressed.connect(lambda: self.find_similar(text=self.text_query.text()))
        layout.addLayout(flow(self.similar_button))
        layout.addWidget(self.text_query)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.dock.table.edited.connect(self.refresh_classes)
        self.refresh_classes()

    def refresh_classes(self, *args) -> None:
        current = self.class_combo.currentText()
        names = list(self.dock.table.mapping())
        names += [e["properties"]["class"] for e in self.examples if e["properties"]["class"] not in names]
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItems(list(dict.fromkeys(names)))
        if current:
            self.class_combo.setCurrentText(current)
        self.class_combo.blockSignals(False)

    # -- map tools -----------------------------------------------------------------------------
    def _canvas(self):
        return self.dock.iface.mapCanvas() if self.dock.iface is not None else None

    def _toggle_examples(self, on: bool) -> None:
        canvas = self._canvas()
        if canvas is None:
            return
        if on:
            self.similar_button.setChecked(False)
            self.tool = ExampleTool(canvas, lambda: self.dock.input_crs, self.add_example,
                                    polygon=self.polygon_mode.isChecked())
            canvas.setMapTool(self.tool)
        elif isinstance(self.tool, ExampleTool):
            canvas.unsetMapTool(self.tool)

    def _mode_changed(self, polygon: bool) -> None:
        if isinstance(self.tool, ExampleTool):
            self.tool.finish_polygon()
            self.tool.polygon = polygon

    def _toggle_similar(self, on: bool) -> None:
        canvas = self._canvas()
        if canvas is None:
            return
        if on:
            self.example_button.setChecked(False)
            self.tool = SimilarTool(canvas, lambda: self.dock.input_crs, lambda x, y: self.find_similar(point=(x, y)))
            canvas.setMapTool(self.tool)
        elif isinstance(self.tool, SimilarTool):
            canvas.unsetMapTool(self.tool)

    # -- examples ------------------------------------------------------------------------------
    def add_example(self, geometry: dict) -> None:
        name = self.class_combo.currentText().strip()
        if not name:
            self.dock.show_status(self.dock.tr("Pick or type a class for the example first."), error=True)
            return
        self.examples.append({"type": "Feature", "geometry": geometry, "properties": {"class": name}})
        self._show_example(geometry, name)
        counts = {}
        for e in self.examples:
            counts[e["properties"]["class"]] = counts.get(e["properties"]["class"], 0) + 1
        self.info.setText(", ".join(f"{k}: {v}" for k, v in counts.items()))

    def _examples_layer(self, kind: str) -> QgsVectorLayer:
        project = QgsProject.instance()
        layer = project.mapLayer(self.layers.get(kind, ""))
        if layer is None:
            crs = self.dock.input_crs.authid() if self.dock.input_crs is not None else "EPSG:4326"
            layer = QgsVectorLayer(f"{kind}?crs={crs}", f"SenCLIP examples ({kind.lower()}s)", "memory")
            layer.dataProvider().addAttributes([QgsField("class", compat.field_type("string"))])
            layer.updateFields()
            project.addMapLayer(layer)
            self.layers[kind] = layer.id()
        return layer

    def _show_example(self, geometry: dict, name: str) -> None:
        layer = self._examples_layer("Point" if geometry["type"] == "Point" else "Polygon")
        f = QgsFeature(layer.fields())
        f.setGeometry(example_geometry(geometry))
        f.setAttributes([name])
        layer.dataProvider().addFeatures([f])
        self._style_examples(layer)

    def _style_examples(self, layer: QgsVectorLayer) -> None:
        names = list(dict.fromkeys(e["properties"]["class"] for e in self.examples))
        cats = []
        for i, name in enumerate(names):
            symbol = QgsSymbol.defaultSymbol(layer.geometryType())
            symbol.setColor(QColor(FALLBACK[i % len(FALLBACK)]))
            if layer.geometryType() == compat.POLYGON_GEOMETRY:
                symbol.setOpacity(0.6)
            cats.append(QgsRendererCategory(name, symbol, name))
        layer.setRenderer(QgsCategorizedSymbolRenderer("class", cats))
        layer.triggerRepaint()

    def clear_examples(self) -> None:
        self.examples = []
        project = QgsProject.instance()
        for layer_id in self.layers.values():
            if project.mapLayer(layer_id) is not None:
                project.removeMapLayer(layer_id)
        self.layers = {}
        self.info.setText("")

    def _collection(self, features: list[dict]) -> dict:
        crs = self.dock.input_crs.toWkt() if self.dock.input_crs is not None else "EPSG:4326"
        return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
                "features": features}

    def refine(self) -> None:
        """Few-shot class map from the examples (and the prompt table's classes)."""
        if self.dock.store_key is None:
            self.dock.show_status(self.dock.tr("Run a classification first (it encodes the image once)."), error=True)
            return
        if not self.examples:
            self.dock.show_status(self.dock.tr("Add examples on the map first."), error=True)
            return
        mapping = self.dock.table.mapping()
        out = self._output("fewshot")
        if out is None:
            return
        self.dock.worker.request("fewshot", {
            "out": str(out), "examples": self._collection(self.examples), "field": "class",
            "classes": list(mapping) or None, "prompts": mapping or None,
            "prompt_style": self.dock.style_combo.currentText(), "overwrite": True}, self._refined, self.dock._failed)

    def _output(self, kind: str):
        """A new file in the dock's results folder (kept, like its class maps), or None with a message."""
        from . import results_folder

        try:
            folder = results_folder.results_dir()
        except OSError as exc:
            self.dock.show_status(self.dock.tr("Cannot use the results folder: {}. Choose another one.").format(exc),
                                  error=True)
            return None
        name = getattr(self.dock, "source_name", "") or "senclip"
        return results_folder.unique_path(folder, f"{results_folder.slug(name)}_{kind}_{results_folder.stamp()}", ".tif")

    def _refined(self, result: dict) -> None:
        self.last_fewshot = result
        self.dock._classified(result["map"])
        cv = result.get("cross_validation")
        text = self.dock.tr("Refined with {} example features in {:.2f} s.").format(
            sum(v["features"] for v in result["examples"].values()), result.get("seconds") or 0)
        if cv:
            text += self.dock.tr(" Held-out accuracy {:.0%} (majority class {:.0%}).").format(
                cv["overall_accuracy"], cv["majority_baseline"])
        self.dock.show_status(text)
        self.refresh_classes()

    # -- find similar --------------------------------------------------------------------------
    def find_similar(self, point=None, text: str | None = None) -> None:
        if self.dock.store_key is None:
            self.dock.show_status(self.dock.tr("Run a classification first (it encodes the image once)."), error=True)
            return
        out = self._output("similar")
        if out is None:
            return
        args = {"out": str(out), "mask_out": str(out.with_name(out.stem + "_mask.tif")), "overwrite": True}
        if text:
            args.update(text=text.strip(), prompt_style=self.dock.style_combo.currentText())
        else:
            args["query"] = self._collection([{"type": "Feature", "geometry": {"type": "Point",
                                                                                "coordinates": list(point)},
                                               "properties": {}}])
        self.dock.worker.request("similar", args, self._similar_done, self.dock._failed)

    def _similar_done(self, result: dict) -> None:
        """Show similarity (colour ramp) and mask (orange) at once, replacing the previous search."""
        self.last_similar = result
        project = QgsProject.instance()
        for layer_id in self.similar_ids:
            if project.mapLayer(layer_id) is not None:
                project.removeMapLayer(layer_id)
        self.similar_ids = []
        what = result["query"].get("text") or self.dock.tr("clicked place")
        for path, name, style in ((result["path"], f"SenCLIP similarity: {what}", style_ramp),
                                  (result.get("mask_path"), f"SenCLIP similar: {what}", style_mask)):
            if not path:
                continue
            layer = QgsRasterLayer(path, name, "gdal")
            style(layer)
            project.addMapLayer(layer)
            self.similar_ids.append(layer.id())
        self.dock.show_status(self.dock.tr("{:.1%} of the scene is at least as similar as {:.3f} ({}).").format(
            result["share_above"], result["threshold"], result["threshold_method"]))
