"""SIGTERM handled like Ctrl-C: the same cleanup, then exit 143 instead of 130.

``kill``, batch systems (SLURM, systemd) and the plugin's stop send SIGTERM. Python's default
for it is to die at once, which skips every ``finally`` and leaves temporary stores and maps
behind. :func:`handle_sigterm` makes it raise :class:`~senclip.errors.Terminated` (a
``KeyboardInterrupt``) in the main thread instead, so the code path of Ctrl-C runs: the output
writer aborts (:func:`senclip.outputs.all_or_nothing`), temporary folders close, and the front end
exits with :func:`exit_code`.
"""
from __future__ import annotations

import signal

from .errors import Terminated


def _raise_terminated(signum, frame) -> None:
    # once is enough: a second SIGTERM during cleanup must not interrupt the cleanup itself
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def handle_sigterm() -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread (call from the main thread)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def exit_code(exc: BaseException) -> int:
    """128 + the signal number: 143 for SIGTERM, 130 for Ctrl-C (and a cancel)."""
    return getattr(exc, "exit_code", None) or 130
