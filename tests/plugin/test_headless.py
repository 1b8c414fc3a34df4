"""Headless use: a real qgis_process run, and the QGIS process stays free of torch & co."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from plugin_env import REPO, backend_python

QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")


def headless_env(tmp_path: Path) -> dict:
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.chmod(runtime, 0o700)
    env = dict(os.environ)
    env.update({
        "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime),
        "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "profile"), "QGIS_PLUGINPATH": str(REPO),
        "PATH": f"{backend_python().parent}{os.pathsep}{env.get('PATH', '')}",
        "SENCLIP_PYTHON": str(backend_python()),
    })
    return env


@pytest.mark.skipif(not QGIS_PROCESS.is_file(), reason="qgis_process.bin not installed")
def test_qgis_process_runs_classify(s2_raster, plugin_checkpoint, tmp_path):
    env = headless_env(tmp_path)
    enable = subprocess.run([str(QGIS_PROCESS), "plugins", "enable", "senclip_qgis"], env=env,
                            capture_output=True, text=True, timeout=180)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listing = subprocess.run([str(QGIS_PROCESS), "list"], env=env, capture_output=True, text=True, timeout=180)
    assert "senclip:classify" in listing.stdout and "senclip:install_backend" in listing.stdout
    out = tmp_path / "qp_classes.tif"
    proc = subprocess.run(
        [str(QGIS_PROCESS), "run", "senclip:classify", "--json", "--",
         f"INPUT={s2_raster}", "CLASSES=Forest;Sea or Lake", f"CHECKPOINT={plugin_checkpoint}",
         f"OUTPUT={out}", "OUTPUT_TABLE=TEMPORARY_OUTPUT"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert Path(result["results"]["OUTPUT"]) == out and out.is_file()
    assert out.with_suffix(".qml").is_file()
    # what the backend wrote, not what qgis_process echoes back of the inputs ("CLASSES=...Sea or Lake")
    import rasterio

    with rasterio.open(out) as ds:
        assert json.loads(ds.tags()["SENCLIP_CLASSES"]) == ["Forest", "Sea or Lake"]
        values = set(np.unique(ds.read(1)).tolist())
    assert values and values <= {0, 1, 2} and values - {0}, values  # classified cells, only those two classes
    assert 'label="Sea or Lake"' in out.with_suffix(".qml").read_text()
    bad = subprocess.run([str(QGIS_PROCESS), "run", "senclip:classify", "--", f"INPUT={s2_raster}",
                          "CLASSES=A;B", f"OUTPUT={tmp_path / 'x.tif'}"],
                         env=dict(env, SENCLIP_PYTHON=str(tmp_path / "none" / "python")),
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "install_backend" in bad.stdout + bad.stderr


SCRIPT = r"""
import os, sys, json
from qgis.core import QgsApplication, QgsProcessingFeedback
app = QgsApplication([], False); app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
import senclip_qgis
plugin = senclip_qgis.classFactory(None)
plugin.initProcessing()
import processing
res = processing.run("senclip:classify", {"INPUT": sys.argv[1], "CLASSES": "Forest;Sea or Lake",
                     "CHECKPOINT": sys.argv[2], "OUTPUT": sys.argv[3]}, feedback=QgsProcessingFeedback())
bad = sorted(m for m in sys.modules if m.split(".")[0] in
             {"torch", "onnxruntime", "rasterio", "open_clip", "torchvision", "senclip"})
print(json.dumps({"out": res["OUTPUT"], "bad": bad}))
plugin.unload()
app.exitQgis()
"""


def test_qgis_process_memory_has_no_ml_stack(s2_raster, plugin_checkpoint, tmp_path):
    """Load the plugin and run an algorithm in a fresh QGIS Python process; inspect sys.modules."""
    env = headless_env(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    out = tmp_path / "mods.tif"
    proc = subprocess.run(["/usr/bin/python3", "-c", SCRIPT, str(s2_raster), str(plugin_checkpoint), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["out"]).is_file()
    assert report["bad"] == []
