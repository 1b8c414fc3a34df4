"""Cancel asks the worker to stop (SIGTERM) and kills only after a grace period, so the backend's
temporary files go with it: Processing (``backend_client.run_request``) and the dock (``WorkerProcess``).

The leftovers looked for are the backend's hidden temporary names: ``.map.*.tmp.tif`` beside the
output, ``.store.tmp-*`` beside a store, ``senclip-*`` in TMPDIR. The two end-to-end tests need a
backend that cleans up on SIGTERM as on Ctrl-C (issue 8 §3, backend side).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from senclip_qgis import backend_client
from leftovers import leftovers



def trap_script(tmp_path: Path, on_term: str) -> Path:
    """A child that reports readiness, then sleeps; ``on_term``: 'exit' (clean up, 143) or 'ignore'."""
    marker = tmp_path / "cleaned-up"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys, time
        def term(*_):
            open({str(marker)!r}, "w").write("SIGTERM")
            sys.exit(143)
        signal.signal(signal.SIGTERM, term if {on_term!r} == "exit" else signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(120)
    """), encoding="utf-8")
    return script


def start(script: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def test_stop_tree_sends_sigterm_first_so_the_child_cleans_up(tmp_path):
    proc = start(trap_script(tmp_path, "exit"))
    try:
        backend_client.stop_tree(proc, grace_s=30)
        assert proc.returncode == 143, "the child must get SIGTERM (and time to clean up), not SIGKILL"
        assert (tmp_path / "cleaned-up").read_text() == "SIGTERM"
    finally:
        proc.kill()


def test_stop_tree_kills_a_child_that_ignores_sigterm_after_the_grace_period(tmp_path):
    proc = start(trap_script(tmp_path, "ignore"))
    try:
        backend_client.stop_tree(proc, grace_s=0.5)
        assert proc.returncode == -signal.SIGKILL
        assert not (tmp_path / "cleaned-up").exists()
    finally:
        proc.kill()


def cancel_when_encoding(events: list):
    """is_canceled() that turns true once the image encoder starts: the temporary store exists then."""
    def is_canceled():
        return any(e.get("event") == "progress" and e.get("text") == "encoding tiles" for e in events)
    return is_canceled


def test_processing_cancel_mid_run_leaves_no_temporary_files(senclip_python, s2_raster, plugin_checkpoint,
                                                            tmp_path, monkeypatch):
    """A pixel-resolution classify writes a temporary store in $TMPDIR/senclip-*/; cancel mid-encoding."""
    tmpdir, out_dir = tmp_path / "tmpdir", tmp_path / "out"
    tmpdir.mkdir()
    out_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # the worker inherits it (child_env)
    events = []
    with pytest.raises(backend_client.BackendCancelled):
        backend_client.run_request(
            "classify", {"input": str(s2_raster), "out": str(out_dir / "map.tif"), "classes": ["Forest", "Sea"],
                         "checkpoint": str(plugin_checkpoint), "tile": 16, "stride": 4, "batch_size": 1,
                         "resolution": "pixel"},
            on_event=events.append, is_canceled=cancel_when_encoding(events))
    assert any(e.get("event") == "progress" for e in events), "cancelled before the run started"
    assert leftovers(tmpdir, out_dir) == []


def test_dock_worker_cancel_terminates_then_kills(qgis_iface, tmp_path, monkeypatch):
    """WorkerProcess: SIGTERM first (a child that exits on it was not killed); kill after the grace."""
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QApplication

    from senclip_qgis.gui.worker_process import WorkerProcess

    monkeypatch.setattr(backend_client, "STOP_GRACE_S", 0.5)
    for on_term, expected in (("exit", 143), ("ignore", None)):
        folder = tmp_path / on_term
        folder.mkdir()
        script = trap_script(folder, on_term)
        fake = folder / "python"  # stands in for the backend interpreter: runs the trap script
        fake.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n", encoding="utf-8")
        fake.chmod(0o755)
        monkeypatch.setenv("SENCLIP_PYTHON", str(fake))
        worker = WorkerProcess()
        errors = []
        worker.request("classify", {}, lambda res: None, errors.append)
        proc = worker.proc
        assert proc.waitForReadyRead(10000)
        worker.cancel()
        assert isinstance(errors[0], backend_client.BackendCancelled) and not worker.running()
        deadline = time.monotonic() + 30
        while worker.stopping and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.02)
        assert not worker.stopping, "the cancelled process never ended"
        if expected is not None:
            assert (folder / "cleaned-up").read_text() == "SIGTERM" and proc.exitCode() == expected
        else:
            assert not (folder / "cleaned-up").exists()  # it ignored SIGTERM: killed after the grace
        sip.delete(worker)


def test_dock_cancel_mid_embed_leaves_no_temporary_store(qgis_iface, s2_raster, plugin_checkpoint, tmp_path,
                                                         monkeypatch):
    from qgis.core import QgsProject, QgsRasterLayer
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QApplication

    from senclip_qgis.gui.dock import SenclipDock

    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    from senclip_qgis.gui import results_folder

    results = tmp_path / "results"  # where the dock writes its maps and stores (kept, not temporary)
    results.mkdir()
    monkeypatch.setattr(results_folder, "results_dir", lambda: results)
    layer = QgsRasterLayer(str(s2_raster), "s2")
    QgsProject.instance().addMapLayer(layer)
    dock = SenclipDock(qgis_iface)
    try:
        dock.layer_combo.setLayer(layer)
        dock.checkpoint.setFilePath(str(plugin_checkpoint))
        events = []
        dock.worker.progress.connect(events.append)
        dock.table.set_mapping({"Forest": [], "Sea or Lake": []})
        dock.run()
        deadline = time.monotonic() + 120
        while not cancel_when_encoding(events)() and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        assert cancel_when_encoding(events)(), dock.status.text()
        dock.cancel()
        deadline = time.monotonic() + 30
        while dock.worker.stopping and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.02)
        assert not dock.worker.stopping
        assert "cancelled" in dock.status.text().lower()
        # nothing the worker started writing may remain: no temporary in TMPDIR, no hidden store
        # (the dock's own stores/ folder may stay: it is where kept stores go; on a fast machine the
        # encoding can finish before the cancel lands, and then the store is complete and kept)
        from senclip.core.outputs import is_senclip_store

        kept = [p for p in (results / "stores").iterdir()] if (results / "stores").is_dir() else []
        assert all(not p.name.startswith(".") and is_senclip_store(p) for p in kept), kept
        inside = {str(q) for p in kept for q in p.rglob("*")} | {str(p) for p in kept}
        assert [p for p in leftovers(tmpdir, results) if p not in inside] in ([], [str(results / "stores")])
    finally:
        dock.shutdown()
        sip.delete(dock)  # now, not in a later garbage collection
        QgsProject.instance().removeAllMapLayers()
    assert leftovers(tmpdir) == []
