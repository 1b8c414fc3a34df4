"""Backend progress events as QGIS shows them: a bar that moves, a log that does not repeat itself.

The worker sends a progress event per encoder batch ("encoding tiles 96/1152"). The bar takes every
one; the log (Processing's ``setProgressText`` appends a line each call) gets a line only when the
stage changes, so a 1152-tile run logs "encoding tiles (1152)" once instead of dozens of times.
Qt-free so algorithms (worker thread) and the dock share it.
"""
from __future__ import annotations

import time


def format_seconds(seconds: float) -> str:
    """Durations as people read them: 0.30 s, 12.4 s, 2 min 26 s."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


class ProgressTracker:
    """Turns progress events into (percent, a new log line or None, a status line)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stage: tuple | None = None

    def update(self, event: dict) -> tuple[float, str | None, str]:
        text = str(event.get("text") or "working")
        done, total = event.get("done"), event.get("total")
        percent = float(event.get("percent") or 0.0)
        stage = (text, total)
        line = None
        if stage != self.stage:
            self.stage = stage
            line = f"{text} ({total})" if total else text
        status = f"{text} {done}/{total} ({percent:.0f} %)" if total else text
        return percent, line, status

    def elapsed(self) -> float:
        return time.monotonic() - self.started
