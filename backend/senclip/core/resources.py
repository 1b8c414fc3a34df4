"""Where the shipped data lives (model registry, prompt sets, options, calibration chips, BPE vocabulary)."""
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
