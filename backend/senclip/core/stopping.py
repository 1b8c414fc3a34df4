"""SIGTERM handled like Ctrl-C: the same cleanup, then exit 143 instead of 130.

``kill``, batch systems (SLURM, systemd) and the plugin's stop send SIGTERM. Python's default
for it is to die at once, which skips every ``finally`` and leaves temporary stores and maps
behind. :func:`handle_sigterm` makes it raise :class:`~senclip.core.errors.Terminated` (a
``KeyboardInterrupt``) in the main thread instead, so the code path of Ctrl-C runs: the output
writer aborts (:func:`senclip.core.outputs.all_or_nothing`), temporary folders close, and the front end
exits with :func:`exit_code`.

Two safety nets: the signal is also recorded in :data:`received`, and every progress check
(:meth:`senclip.core.feedback.Feedback.check`) raises once it is set, so a stop whose exception some
library swallowed (one raised inside a C callback is only printed) still ends the run at the
next step. And :func:`deferred` holds a stop back while a temporary is created and its name
recorded, so no temporary can exist that its cleanup does not know about.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from senclip.core.errors import Cancelled, Terminated

received: int | None = None  # the stop signal received, for loops that must end after cleaning up
_deferring = 0
_pending: int | None = None


def _stop_exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum, frame) -> None:
    global received, _pending
    first = received is None
    received = signum
    if _deferring:
        _pending = signum
    elif first or signum == signal.SIGINT:  # a second SIGTERM must not break off the cleanup of the first
        raise _stop_exception(signum)


def handle_sigterm(sigint: bool = False) -> None:
    """From now on SIGTERM (and with ``sigint`` Ctrl-C too) goes through :func:`_on_signal`.
    Python delivers signals to the main thread only; called from another thread (an application
    embedding senclip) this does nothing."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        if sigint:
            signal.signal(signal.SIGINT, _on_signal)


@contextmanager
def deferred():
    """A stop signal arriving inside the block is raised when the block ends, not inside it."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None:
            signum, _pending = _pending, None
            raise _stop_exception(signum)


def check() -> None:
    """Raise :class:`Cancelled` (exit 128 + signal) if a stop signal was received."""
    if received is not None:
        raise Cancelled("interrupted; no output was written", exit_code=128 + received)


def exit_code(exc: BaseException) -> int:
    """128 + the signal number: 143 for SIGTERM, 130 for Ctrl-C (and a cancel)."""
    return getattr(exc, "exit_code", None) or 130
