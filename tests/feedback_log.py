"""A Feedback that keeps the info lines it is given, for tests that check what a run logged."""
from __future__ import annotations

from senclip.core.feedback import Feedback


class InfoLog(Feedback):
    def __init__(self):
        super().__init__()
        self.infos = []

    def info(self, text):
        self.infos.append(text)
