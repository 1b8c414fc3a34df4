"""Training metrics to ``metrics.csv`` (always) and TensorBoard (when installed).

On resume, rows logged after the checkpoint being resumed from are dropped first: those steps
are about to be run again, and a metrics file must have one row per step.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

FIELDS = ("step", "epoch", "loss", "lr", "logit_scale", "pos_cos", "sec_per_step")


class MetricsLogger:
    def __init__(self, out: Path, *, enabled: bool = True, resume_step: int | None = None, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(out) / "metrics.csv"
        self.tb = None
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
            tmp = self.path.with_name(".metrics.csv.tmp")
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, FIELDS)
                w.writeheader()
                w.writerows(rows)
            os.replace(tmp, self.path)
        elif not self.path.exists() or resume_step is None:
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, FIELDS).writeheader()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(out) / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def log(self, step: int, **values) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, FIELDS).writerow({"step": step, **values})
        if self.tb is not None:
            for k, v in values.items():
                if k != "epoch":
                    self.tb.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
