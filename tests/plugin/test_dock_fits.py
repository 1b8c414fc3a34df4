"""The dock in a real QGIS desktop (``qgis`` under Xvfb): at the width QGIS gives a new right-hand
dock (298 px on 3.22, 284 px inside) nothing may sit behind a horizontal scrollbar or be cut off,
on a laptop screen and on a full-HD one alike. ``dock_fit_probe.py`` does the measuring inside QGIS."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from plugin_env import REPO

QGIS = Path("/usr/bin/qgis")
PROBE = Path(__file__).with_name("dock_fit_probe.py")


def run_probe(screen: str, tmp_path: Path) -> dict:
    """Start QGIS on a fresh profile under its own Xvfb screen and return the probe's report."""
    xvfb_run = shutil.which("xvfb-run")
    assert xvfb_run, "xvfb-run missing: make setup installs it (apt xvfb)"
    assert QGIS.is_file(), "QGIS missing: make setup installs it (apt qgis)"
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}  # a real X screen
    env.update(XDG_RUNTIME_DIR=str(runtime), DOCK_PROBE_OUT=str(out), DOCK_PROBE_SHOTS=str(tmp_path / "shot"),
               DOCK_PROBE_REPO=str(REPO), QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"))
    proc = subprocess.run([xvfb_run, "-a", "-s", f"-screen 0 {screen}x24", str(QGIS), "--profiles-path",
                           str(tmp_path / "profile"), "--nologo", "--noversioncheck", "--code", str(PROBE)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert out.is_file(), f"QGIS wrote no report (exit {proc.returncode}): {proc.stderr[-3000:]}"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in report, report["error"]
    return report


@pytest.mark.parametrize("screen", ["1366x768", "1920x1080"])
def test_dock_fits_the_default_right_dock_width(screen, tmp_path):
    report = run_probe(screen, tmp_path)
    assert report["screen"][2:] == [int(v) for v in screen.split("x")]
    assert report["area"] == 1, "the plugin puts the dock in the right dock area"
    for name in ("opened", "expanded", "expanded_298"):
        s = report[name]
        assert s["contents_min_width"] <= s["viewport_width"], (name, s)
        assert not s["hscrollbar_visible"], (name, s)
        assert s["outside"] == [], (name, s)
        assert s["tables"] == [], (name, s)
    assert report["expanded_298"]["dock_width"] == 298


def test_flow_layout_wraps_evenly_and_fills_each_line(qgis_app):
    """The button rows' layout: as few lines as fit, as even as fits (2 + 2, not 3 + 1), each line
    justified to the whole width, and a height that grows as the width shrinks."""
    from qgis.PyQt.QtWidgets import QApplication, QPushButton, QWidget

    from senclip_qgis.gui.narrow import flow

    box = QWidget()
    buttons = [QPushButton(text, box) for text in ("Add", "Remove", "Load…", "Save…")]
    row = flow(*buttons)
    box.setLayout(row)
    hint = sum(b.sizeHint().width() for b in buttons) + 3 * row.spacing()
    assert row.minimumSize().width() == max(b.minimumSizeHint().width() for b in buttons)
    assert row.heightForWidth(hint) < row.heightForWidth(hint - 1) < row.heightForWidth(buttons[0].sizeHint().width())
    width = hint - 1  # one pixel short of one line: two lines of two
    box.resize(width, row.heightForWidth(width))
    box.show()
    QApplication.processEvents()
    tops = [b.geometry().top() for b in buttons]
    assert tops[0] == tops[1] < tops[2] == tops[3]
    for first, second in (buttons[:2], buttons[2:]):
        assert first.geometry().left() == 0 and second.geometry().right() == width - 1
