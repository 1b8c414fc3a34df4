"""The JSON-lines protocol between plugin and worker, without QGIS algorithms in the way."""
from __future__ import annotations

import json
import subprocess

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


def test_cancel_stops_the_child(senclip_python, tmp_path, monkeypatch):
    """is_canceled() -> run_request returns only once the child process has ended (here during a
    slow import). How fast is the benchmark's business, not this test's."""
    calls = {"n": 0}
    children = []
    real_popen = backend_client.subprocess.Popen

    def popen(*args, **kwargs):
        children.append(real_popen(*args, **kwargs))
        return children[-1]

    def is_canceled():
        calls["n"] += 1
        return calls["n"] >= 3

    monkeypatch.setattr(backend_client.subprocess, "Popen", popen)
    with pytest.raises(backend_client.BackendCancelled):
        backend_client.run_request("selfcheck", {}, is_canceled=is_canceled)
    assert len(children) == 1 and children[0].poll() is not None
    assert calls["n"] == 3
