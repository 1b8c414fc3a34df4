"""A persistent backend worker driven by QProcess, for the dock.

QProcess delivers output through the event loop, so the GUI never blocks while the backend encodes
a scene; the worker keeps the model and the embedding store in memory between requests, which is
what makes a prompt edit cost a text-encoder pass instead of a scene encoding. Cancel asks the
process to stop (SIGTERM: the backend removes its temporary files) and kills it only if it is still
running after a grace period; the next request starts a new process at once.
"""
from __future__ import annotations

import json

from qgis.PyQt.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, pyqtSignal

from .. import backend_client


class WorkerProcess(QObject):
    """Requests in, callbacks out. ``progress`` carries every progress/info/warning event."""

    progress = pyqtSignal(dict)
    stateChanged = pyqtSignal(bool)  # busy  # noqa: N815 - Qt naming

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.proc: QProcess | None = None
        self.python = None
        self._buffer = b""
        self._next_id = 0
        self._pending: dict = {}  # id -> (on_result, on_error)
        self._stderr: list[str] = []
        self.stopping: set = set()  # cancelled processes still cleaning up (SIGTERM sent)

    # -- lifecycle -----------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def busy(self) -> bool:
        return bool(self._pending)

    def start(self) -> None:
        if self.running():
            return
        self.python = backend_client.backend_python()  # raises BackendMissing with the fix
        env = QProcessEnvironment()
        for key, value in backend_client.child_env().items():
            env.insert(key, value)
        self.proc = QProcess(self)
        self.proc.setProcessEnvironment(env)
        self.proc.readyReadStandardOutput.connect(self._read_stdout)
        self.proc.readyReadStandardError.connect(self._read_stderr)
        self.proc.finished.connect(self._finished)
        self._buffer, self._stderr = b"", []
        cmd = backend_client.worker_command(self.python) + ["--persistent"]
        self.proc.start(cmd[0], cmd[1:])
        if not self.proc.waitForStarted(10000):
            proc, self.proc = self.proc, None
            raise backend_client.BackendMissing(
                f"cannot start the backend {self.python}: {proc.errorString()}. "
                f"{backend_client.INSTALL_HINT}.", "BackendMissing", 2)

    def request(self, op: str, args: dict, on_result, on_error) -> int:
        """Send a request; exactly one of ``on_result(result)`` / ``on_error(BackendError)`` follows."""
        try:
            self.start()
        except backend_client.BackendError as exc:
            on_error(exc)
            return -1
        self._next_id += 1
        rid = self._next_id
        self._pending[rid] = (on_result, on_error)
        self.proc.write(backend_client.request_line(rid, op, args).encode("utf-8"))
        self.stateChanged.emit(True)
        return rid

    def cancel(self) -> None:
        """Stop the worker; pending requests fail with a 'cancelled' error at once.

        The process is detached first (its output and exit are no longer ours), asked to stop
        with SIGTERM (``QProcess.terminate``) so the backend can remove its temporary files, and
        killed only if still running after ``backend_client.STOP_GRACE_S``. The GUI never waits.
        """
        pending, self._pending = self._pending, {}
        proc, self.proc = self.proc, None
        if proc is not None:
            for sig in (proc.readyReadStandardOutput, proc.readyReadStandardError, proc.finished):
                sig.disconnect()
            if proc.state() != QProcess.ProcessState.NotRunning:
                self.stopping.add(proc)
                proc.finished.connect(lambda *_, p=proc: self._stopped(p))
                proc.terminate()
                QTimer.singleShot(int(backend_client.STOP_GRACE_S * 1000), lambda: self._kill_late(proc))
        self._pending = pending
        self._fail_all(backend_client.BackendCancelled(
            "cancelled; the backend was stopped and wrote no output", "Cancelled", 130))

    def _kill_late(self, proc: QProcess) -> None:
        try:
            if proc in self.stopping and proc.state() != QProcess.ProcessState.NotRunning:
                proc.kill()
        except RuntimeError:  # the dock (and with it the QProcess, which kills on delete) is gone
            pass

    def _stopped(self, proc: QProcess) -> None:
        self.stopping.discard(proc)  # the QProcess itself goes with this object (its parent)

    def shutdown(self) -> None:
        """Ask politely (a shutdown request, answered between requests), then SIGTERM, then kill."""
        if self.running():
            self.proc.write(b'{"id": 0, "op": "shutdown"}\n')
            if not self.proc.waitForFinished(2000):
                self.proc.terminate()
                if not self.proc.waitForFinished(int(backend_client.STOP_GRACE_S * 1000)):
                    self.proc.kill()
                    self.proc.waitForFinished(2000)
        self._pending.clear()
        self.proc = None

    # -- plumbing ------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._buffer += bytes(self.proc.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            event = backend_client.parse_event(line)
            if event is not None:
                self._dispatch(event)

    def _read_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        self._stderr.extend(text.splitlines())
        del self._stderr[:-200]

    def _dispatch(self, event: dict) -> None:
        rid, kind = event.get("id"), event.get("event")
        if kind in ("progress", "info", "warning"):
            self.progress.emit(event)
            return
        if rid not in self._pending:
            return
        on_result, on_error = self._pending.pop(rid)
        if not self._pending:
            self.stateChanged.emit(False)
        if kind == "result":
            on_result(event.get("result") or {})
        elif kind == "error":
            on_error(backend_client.error_from_event(event))

    def _finished(self, *args) -> None:
        if self._pending:
            err = backend_client.error_from_stderr("\n".join(self._stderr), self.python)
            self._fail_all(err)

    def _fail_all(self, error) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            self.stateChanged.emit(False)
        for _, on_error in pending.values():
            on_error(error)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr[-30:])


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)
