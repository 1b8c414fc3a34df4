"""Screenshot of the real dock for the README: run under a virtual display, e.g.
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python tools/dock_screenshot.py
The dock at 298 px, the width QGIS 3.22 gives a new right-hand dock, and its whole scrolled contents.
It uses a tiny random checkpoint on a synthetic raster, so the numbers it shows mean nothing."""
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
from qgis.PyQt.QtWidgets import QMainWindow, QApplication
from qgis.PyQt.QtCore import Qt
from plugin_env import write_s2_gdal
raster = write_s2_gdal(TMP / "s2.tif", 256, 256)

class Iface:
    def __init__(self, canvas, win): self.c, self.w = canvas, win
    def mapCanvas(self): return self.c
    def mainWindow(self): return self.w

win = QMainWindow(); canvas = QgsMapCanvas(win); win.setCentralWidget(canvas)
layer = QgsRasterLayer(str(raster), "Sentinel-2 L2A (synthetic)"); QgsProject.instance().addMapLayer(layer)
from qgis.core import QgsSettings
from senclip_qgis.gui import results_folder
QgsSettings().setValue(results_folder.SETTINGS_KEY, str(TMP / "results"))  # not the user's folder
from senclip_qgis.gui.dock import SenclipDock
dock = SenclipDock(Iface(canvas, win), win); win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
dock.layer_combo.setLayer(layer); dock.checkpoint.setFilePath(str(CKPT))
dock.table.set_mapping({"Forest": ["a ground-level photo of a dense spruce forest"], "Sea or Lake": [],
                        "Annual Crop Land": [], "Pasture": ["a photo of cows grazing on a meadow"]})
win.resize(1366, 740); win.show()
win.resizeDocks([dock], [298], Qt.Orientation.Horizontal)
dock.run()
t = time.time()
while dock.last_result is None and time.time() - t < 120:
    QApplication.processEvents(); time.sleep(0.02)
canvas.setLayers([QgsProject.instance().mapLayer(dock.result_layer_id), layer]); canvas.zoomToFullExtent()
ext = layer.extent(); dock.probe(ext.center().x(), ext.center().y())
t = time.time()
while "%" not in dock.probe_label.text() and time.time() - t < 30:
    QApplication.processEvents(); time.sleep(0.02)
for _ in range(50): QApplication.processEvents(); time.sleep(0.02)
print("dock width", dock.width(), "viewport", dock.widget().viewport().width())
dock.widget().widget().grab().save(str(REPO / "docs" / "img" / "dock.png"))  # the whole scrolled contents
print("saved", dock.status.text())
QgsSettings().remove(results_folder.SETTINGS_KEY)
dock.shutdown(); app.exitQgis()
