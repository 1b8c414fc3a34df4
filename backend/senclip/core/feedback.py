"""One progress/cancel shape shared by the CLI (tqdm), the worker (JSON events) and tests.

The core never prints: it reports to a :class:`Feedback`, which the front end renders. Checking
``canceled`` once per batch is what makes cancel prompt.
"""
from __future__ import annotations

import logging
import sys
import threading

from senclip.core import stopping
from senclip.core.errors import Cancelled

log = logging.getLogger("senclip")


class Feedback:
    """Silent feedback with a cancel flag; subclasses render progress somewhere."""

    def __init__(self) -> None:
        self._cancel = threading.Event()

    # progress ------------------------------------------------------------
    def start(self, total: int, text: str) -> None:
        """A new stage with ``total`` steps begins."""

    def advance(self, n: int = 1) -> None:
        """``n`` more steps of the current stage are done."""

    def finish(self) -> None:
        """The current stage ended."""

    def info(self, text: str) -> None:
        log.info(text)

    def warning(self, text: str) -> None:
        log.warning(text)

    # cancel --------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def canceled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop (cancel, or a stop signal)."""
        stopping.check()
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user; no output was written")


class TqdmFeedback(Feedback):
    """Progress bars on stderr for the command line."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__()
        self.quiet = quiet
        self._bar = None

    def start(self, total: int, text: str) -> None:
        self.finish()
        if not self.quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=text, unit="tile", leave=False, dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def info(self, text: str) -> None:
        if not self.quiet:
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)

    def warning(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"warning: {text}", file=sys.stderr)
