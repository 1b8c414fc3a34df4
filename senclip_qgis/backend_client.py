"""Finding and talking to the backend worker process.

The QGIS process never imports the backend: a second numpy/GDAL/OpenMP inside QGIS crashes it.
Instead we start ``<backend python> -m senclip.worker`` and exchange JSON lines (protocol in
``backend/senclip/worker.py``). This module is Qt-free on purpose (stdlib + QgsSettings only) so
Processing algorithms can run it from their worker thread and tests can drive it directly.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

SETTINGS_KEY = "senclip/python"
ENV_VAR = "SENCLIP_PYTHON"
PLUGIN_DIR = Path(__file__).resolve().parent

INSTALL_HINT = ("Install it with the Processing algorithm 'SenCLIP > Install or repair backend' "
                "(qgis_process run senclip:install_backend), the dock's 'Install backend' button, "
                "or point the environment variable SENCLIP_PYTHON at a Python that has the "
                "senclip package installed")


class BackendError(Exception):
    """The backend answered with an error event (or died); ``type`` is its exception class."""

    def __init__(self, message: str, type_: str = "BackendError", exit_code: int = 1) -> None:
        super().__init__(message)
        self.type = type_
        self.exit_code = exit_code


class BackendMissing(BackendError):
    """No usable backend interpreter: the message says how to install one."""


class BackendCancelled(BackendError):
    """The user cancelled; the child was stopped and wrote nothing."""


STOP_GRACE_S = 5.0  # SIGTERM first; SIGKILL only for a worker still alive after this many seconds


def default_venv_dir() -> Path:
    """The managed environment lives in the user's data dir, never in the plugin folder.

    QGIS deletes the plugin folder on every plugin update, which would throw away gigabytes of
    torch. ``~/.local/share/senclip/venv`` (Linux), ``%APPDATA%/senclip/venv`` (Windows),
    ``~/Library/Application Support/senclip/venv`` (macOS) survive updates and QGIS profiles.
    """
    from qgis.PyQt.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    if not base:
        base = str(Path.home() / ".local" / "share")
    return Path(base) / "senclip" / "venv"


def venv_python(venv_dir: Path) -> Path:
    return Path(venv_dir) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def configured_python() -> tuple[str | None, str]:
    """The interpreter the user chose, and where that choice came from."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env, f"environment variable {ENV_VAR}"
    try:
        from qgis.core import QgsSettings

        value = QgsSettings().value(SETTINGS_KEY, "", type=str)
    except ImportError:  # used outside QGIS (tests of the pure parts)
        value = ""
    if value:
        return value, f"plugin setting {SETTINGS_KEY}"
    return None, "default"


def backend_python() -> Path:
    """The backend interpreter; raises :class:`BackendMissing` with the fix if there is none."""
    chosen, origin = configured_python()
    path = Path(chosen) if chosen else venv_python(default_venv_dir())
    if chosen is None:
        origin = f"managed environment {default_venv_dir()}"
    if not path.is_file():
        raise BackendMissing(f"SenCLIP backend not found: {path} ({origin}) does not exist. "
                             f"{INSTALL_HINT}.", "BackendMissing", 2)
    return path


def child_env() -> dict:
    """QGIS's own PYTHONPATH/PYTHONHOME must not leak into the backend interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME",
                                                           "PYTHONSTARTUP", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def worker_command(python: Path | str) -> list[str]:
    return [str(python), "-u", "-m", "senclip.worker"]


def parse_event(line: str | bytes) -> dict | None:
    """One stdout line of the worker -> event dict; ``None`` for blank or non-protocol lines."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or "event" not in event:
        return None
    return event


def request_line(rid, op: str, args: dict) -> str:
    """A request as the worker reads it; drops ``None`` args so backend defaults apply."""
    clean = {k: v for k, v in args.items() if v is not None}
    return json.dumps({"id": rid, "op": op, "args": clean}) + "\n"


def error_from_event(event: dict) -> BackendError:
    message = event.get("message") or "the backend failed without a message"
    type_ = event.get("type", "BackendError")
    from .messages import for_qgis

    message = for_qgis(message, type_)
    if type_ == "Cancelled":
        return BackendCancelled(message, type_, 130)
    return BackendError(message, type_, int(event.get("exit_code") or 1))


def error_from_stderr(stderr: str, python: Path) -> BackendError:
    if "No module named senclip" in stderr or "No module named 'senclip" in stderr:
        return BackendMissing(f"{python} has no senclip package installed. {INSTALL_HINT}.",
                              "BackendMissing", 2)
    tail = stderr.strip().splitlines()[-15:]
    return BackendError("the backend process ended without an answer:\n" + "\n".join(tail))


def _signal_group(proc: subprocess.Popen, sig) -> None:
    """``sig`` to the worker's process group (it runs in its own session), or to the worker alone."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGTERM:
            proc.terminate()
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.send_signal(sig)
        except OSError:
            pass


def stop_tree(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """Ask the worker (and anything it started) to stop, and kill it only if it does not.

    SIGTERM lets the backend remove its temporary files (``.map.*.tmp.tif``, ``.store.tmp-*``,
    ``$TMPDIR/senclip-*``) as on Ctrl-C; SIGKILL, which no cleanup survives, follows only after
    ``grace_s`` seconds. (Windows has no SIGTERM: ``terminate`` there ends the process at once.)
    """
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
        return
    except subprocess.TimeoutExpired:
        pass
    kill_tree(proc)


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill the worker (and anything it started) at once: the last resort of :func:`stop_tree`."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_request(op: str, args: dict, *, on_event=None, is_canceled=None,
                python: Path | str | None = None, on_stderr=None) -> dict:
    """Run one request in a fresh worker and return its result.

    ``on_event(event)`` sees every progress/info/warning event; ``is_canceled()`` is polled ten
    times a second and, when true, the child is stopped (:func:`stop_tree`: SIGTERM, then SIGKILL
    after a grace period) and :class:`BackendCancelled` raised.
    """
    python = Path(python) if python else backend_python()
    if not Path(python).is_file():
        raise BackendMissing(f"backend interpreter {python} does not exist. {INSTALL_HINT}.",
                             "BackendMissing", 2)
    proc = _start_worker(python)
    events, stderr_tail, threads = _start_readers(proc, on_stderr)
    _send_request(proc, op, args)
    try:
        return _await_result(proc, events, stderr_tail, threads, python, on_event, is_canceled)
    finally:
        _finish_worker(proc, threads)


def _start_worker(python: Path) -> subprocess.Popen:
    """Start the worker in its own session/process group so :func:`stop_tree` can end all of it."""
    kwargs = {"start_new_session": True} if os.name == "posix" else {
        "creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return subprocess.Popen(worker_command(python), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=child_env(), **kwargs)


def _start_readers(proc: subprocess.Popen, on_stderr=None):
    """Drain stdout (events, then None at EOF) and stderr (a tail kept for errors) on threads."""
    events: queue.Queue = queue.Queue()
    stderr_tail: deque = deque(maxlen=200)

    def read_stdout():
        for raw in proc.stdout:
            event = parse_event(raw)
            if event is not None:
                events.put(event)
        events.put(None)

    def read_stderr():
        for raw in proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip()
            stderr_tail.append(text)
            if on_stderr is not None:
                on_stderr(text)

    threads = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=read_stderr, daemon=True)]
    for t in threads:
        t.start()
    return events, stderr_tail, threads


def _send_request(proc: subprocess.Popen, op: str, args: dict) -> None:
    try:
        proc.stdin.write(request_line(1, op, args).encode("utf-8"))
        proc.stdin.close()  # one request, then EOF: the worker exits after answering
    except BrokenPipeError:
        pass


def _await_result(proc, events, stderr_tail, threads, python, on_event, is_canceled) -> dict:
    """Pass events on until the request's result or error arrives, or the user cancels."""
    while True:
        if is_canceled is not None and is_canceled():
            stop_tree(proc)
            raise BackendCancelled("cancelled by the user; the backend was stopped and "
                                   "no output was written", "Cancelled", 130)
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if event is None:  # stdout closed without a final event
            proc.wait(timeout=10)
            threads[1].join(timeout=2)
            raise error_from_stderr("\n".join(stderr_tail), python)
        if event.get("id") != 1:
            continue  # the 'ready' greeting
        kind = event.get("event")
        if kind == "result":
            return event.get("result") or {}
        if kind == "error":
            raise error_from_event(event)
        if on_event is not None:
            on_event(event)


def _finish_worker(proc: subprocess.Popen, threads) -> None:
    """Give the worker 5 s to exit on its own, then stop it; close its pipes either way."""
    if proc.poll() is None:
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_tree(proc)
    close_pipes(proc, threads)


def close_pipes(proc: subprocess.Popen, threads=()) -> None:
    """Close a finished child's pipes (else each run leaves ResourceWarnings in the QGIS log)."""
    for t in threads:
        t.join(timeout=2)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass


def plugin_version() -> str:
    meta = PLUGIN_DIR / "metadata.txt"
    if not meta.is_file():
        meta = PLUGIN_DIR.parent / "metadata.txt"
    try:
        for line in meta.read_text(encoding="utf-8").splitlines():
            if line.startswith("version="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def qgis_python_info() -> dict:
    """The QGIS side of the diagnostics report (the backend answers the rest)."""
    from qgis.core import Qgis, QgsApplication
    from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    return {"qgis": Qgis.QGIS_VERSION, "qt": QT_VERSION_STR, "pyqt": PYQT_VERSION_STR,
            "qgis_python": sys.version.split()[0],
            "plugin": plugin_version(), "plugin_dir": str(PLUGIN_DIR),
            "settings_dir": QgsApplication.qgisSettingsDirPath(),
            "backend_python": configured_python()[0] or str(venv_python(default_venv_dir()))}
