"""Screenshot of the real dock's embedding tools (examples, refine, find similar) for the README:
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python tools/dock_tools_screenshot.py
A 1366x768 window with the dock at QGIS 3.22's default 298 px, scrolled to the tools.
Tiny random checkpoint on a synthetic raster: the numbers it shows mean nothing."""
import os, sys, tempfile, time
from pathlib import Path
REPO = Path(__file__).resolve().parents[1]
TMP = Path(tempfile.mkdtemp(prefix="senclip-shot-"))
sys.path.insert(0, str(REPO)); sys.path.insert(0, str(REPO / "tests")); sys.path.insert(0, str(REPO / "tests" / "plugin"))
os.environ.setdefault("SENCLIP_PYTHON", str(REPO / ".venv" / "bin" / "python"))
from tiny_models import make_tiny_checkpoint
CKPT = make_tiny_checkpoint(TMP / "tiny.ckpt")
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
app = QgsApplication([], True); app.initQgis()
from qgis.gui import QgsMapCanvas
from qgis.core import QgsSettings
from senclip_qgis.gui import results_folder
QgsSettings().setValue(results_folder.SETTINGS_KEY, str(TMP / "results"))  # not the user's folder
from qgis.PyQt.QtWidgets import QMainWindow, QApplication
from qgis.PyQt.QtCore import Qt
from plugin_env import write_s2_gdal
raster = write_s2_gdal(TMP / "s2.tif", 256, 256)


class Iface:
    def __init__(self, canvas, win): self.c, self.w = canvas, win
    def mapCanvas(self): return self.c
    def mainWindow(self): return self.w


def wait(cond, t=180):
    end = time.time() + t
    while not cond() and time.time() < end:
        QApplication.processEvents(); time.sleep(0.02)


win = QMainWindow(); canvas = QgsMapCanvas(win); win.setCentralWidget(canvas)
layer = QgsRasterLayer(str(raster), "Sentinel-2 L2A (synthetic)"); QgsProject.instance().addMapLayer(layer)
from senclip_qgis.gui.dock import SenclipDock
dock = SenclipDock(Iface(canvas, win), win); win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
dock.layer_combo.setLayer(layer); dock.checkpoint.setFilePath(str(CKPT))
dock.table.set_mapping({"Forest": [], "Sea or Lake": []})
win.resize(1366, 740); win.show()
win.resizeDocks([dock], [298], Qt.Orientation.Horizontal)
canvas.setDestinationCrs(layer.crs()); canvas.setExtent(layer.extent())
dock.run(); wait(lambda: dock.last_result is not None)
panel = dock.embedding_panel
e = layer.extent()
for i in range(4):  # examples: "lake water" (no prompt) on the left, Forest on the right
    panel.class_combo.setCurrentText("lake water")
    panel.add_example({"type": "Point", "coordinates": [e.xMinimum() + 200 + 250 * i, e.center().y() + 300]})
    panel.class_combo.setCurrentText("Forest")
    panel.add_example({"type": "Point", "coordinates": [e.center().x() + 200 + 250 * i, e.center().y() - 300]})
panel.refine(); wait(lambda: panel.last_fewshot is not None)
panel.find_similar(point=(e.xMinimum() + 300, e.center().y())); wait(lambda: panel.last_similar is not None)
ids = panel.similar_ids + list(panel.layers.values()) + [dock.result_layer_id, layer.id()]
canvas.setLayers([QgsProject.instance().mapLayer(i) for i in [panel.layers.get("Point"), panel.similar_ids[1],
                                                                panel.similar_ids[0], layer.id()] if i])
canvas.zoomToFullExtent(); canvas.refresh()
dock.widget().ensureWidgetVisible(panel, 0, 0)
for _ in range(100): QApplication.processEvents(); time.sleep(0.02)
win.grab().save(str(REPO / "docs" / "img" / "dock_tools.png"))
print("saved", dock.status.text())
QgsSettings().remove(results_folder.SETTINGS_KEY)
dock.shutdown(); app.exitQgis()
