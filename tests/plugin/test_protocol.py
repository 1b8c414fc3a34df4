"""The JSON-lines protocol between plugin and worker, without QGIS algorithms in the way."""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from senclip_qgis import backend_client


def test_parse_event_accepts_events_and_ignores_noise():
    assert backend_client.parse_event(b'{"id": 1, "event": "progress", "percent": 5}\n')["percent"] == 5
    assert backend_client.parse_event("not json") is None
    assert backend_client.parse_event("{broken") is None
    assert backend_client.parse_event('{"no": "event key"}') is None
    assert backend_client.parse_event("") is None


def test_request_line_drops_none_so_backend_defaults_apply():
    line = backend_client.request_line(7, "classify", {"input": "a.tif", "stride": None, "tile": 64})
    assert line.endswith("\n")
    assert json.loads(line) == {"id": 7, "op": "classify", "args": {"input": "a.tif", "tile": 64}}


def test_error_event_keeps_type_and_message():
    err = backend_client.error_from_event({"event": "error", "type": "InputError",
                                           "message": "--tile 512 is too large", "exit_code": 2})
    assert isinstance(err, backend_client.BackendError) and not isinstance(err, backend_client.BackendCancelled)
    assert (err.type, str(err), err.exit_code) == ("InputError", "--tile 512 is too large", 2)
    assert isinstance(backend_client.error_from_event({"type": "Cancelled", "message": "x"}),
                      backend_client.BackendCancelled)


def test_missing_backend_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("SENCLIP_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(backend_client.BackendMissing) as exc:
        backend_client.backend_python()
    assert "install_backend" in str(exc.value) and "SENCLIP_PYTHON" in str(exc.value)


def test_python_without_senclip_is_reported_as_missing(tmp_path):
    """A real interpreter lacking the package (QGIS's own python, say) gives the install hint."""
    with pytest.raises(backend_client.BackendMissing, match="no senclip package"):
        backend_client.run_request("diagnostics", {}, python="/usr/bin/python3")


def test_worker_diagnostics_and_unknown_op(senclip_python):
    report = backend_client.run_request("diagnostics", {})
    assert report["versions"]["senclip"] and report["gdal"] and report["proj"]
    assert "senclip-vitb32-avgpool" in report["models"]
    assert "torch" in report["devices"]
    with pytest.raises(backend_client.BackendError, match="unknown worker op 'frobnicate'"):
        backend_client.run_request("frobnicate", {})


def test_worker_serves_several_requests_and_survives_bad_lines(senclip_python):
    proc = subprocess.run([str(senclip_python), "-m", "senclip.worker"], capture_output=True, timeout=120,
                          input=b'garbage\n{"id": 1, "op": "nope"}\n{"id": 2, "op": "probe", "args": {"x": 0, "y": 0}}\n')
    events = [backend_client.parse_event(l) for l in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["ready", "error", "error", "error"]
    assert events[1]["type"] == "ProtocolError"
    assert events[3]["id"] == 2 and "nothing classified yet" in events[3]["message"]
    assert proc.returncode == 0


def processes_with_env(key: str, value: str) -> list[int]:
    """pids of live processes whose environment has ``key=value`` (Linux /proc)."""
    needle = f"{key}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                if b"Z" != (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]:  # zombies are gone
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_cancel_stops_the_child_and_everything_it_started(senclip_python, monkeypatch):
    """is_canceled() -> the worker's whole process group is stopped (here during a slow import)."""
    mark = uuid.uuid4().hex
    monkeypatch.setenv("SENCLIP_TEST_MARK", mark)  # inherited by the worker (child_env)
    started = time.monotonic()
    calls = {"n": 0}

    def is_canceled():
        calls["n"] += 1
        return time.monotonic() - started > 0.3

    with pytest.raises(backend_client.BackendCancelled):
        backend_client.run_request("selfcheck", {}, is_canceled=is_canceled)
    assert calls["n"] >= 2
    assert processes_with_env("SENCLIP_TEST_MARK", mark) == []


def test_diagnostics_report_names_the_qt_build(senclip_python):
    """A QGIS 4 bug report must say which Qt/PyQt QGIS runs on (docs/qgis.md: Supported QGIS versions)."""
    from qgis.PyQt.QtCore import QT_VERSION_STR

    from senclip_qgis.gui.diagnostics import diagnostics_text

    text = diagnostics_text()
    assert f"qt: {QT_VERSION_STR}" in text and "pyqt: " in text and "qgis: " in text
    assert '"senclip"' in text  # the backend's half of the report
