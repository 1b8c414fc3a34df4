"""Shared helpers: timers, result rows, the bench's own cache and data folders."""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
RESULTS = ROOT / "bench" / "results"
VIT_B32_GFLOP = 8.8  # per 224 px image (image tower), the figure
H100_LIMIT_CHIPS_S = 110_000  # 989 dense bf16 TFLOP/s / 8.8 GFLOP


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


@dataclass
class Row:
    """One figure of the report. ``ratio`` compares ``value`` to ``limit``; ``target`` is the
    issue's goal for that ratio, and ``ok`` whether it was met (None when not measured)."""

    section: str
    name: str
    value: float | None
    unit: str
    limit: float | None = None
    limit_what: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0


def best_rate(fn, work: float, *, repeats: int, min_s: float = 0.0) -> float:
    """Highest ``work``/second over ``repeats`` calls (at least ``min_s`` of calls in all):
    the best run is the one least disturbed by other processes on shared cores."""
    best, spent, n = 0.0, 0.0, 0
    while n < repeats or spent < min_s:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        spent += dt
        n += 1
        best = max(best, work / dt)
    return best


def setup_env() -> None:
    """Weights/ONNX exports cached under build/bench (exports are made once), never the user's."""
    BUILD.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SENCLIP_HOME", str(BUILD / "home"))
