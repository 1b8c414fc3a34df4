"""Names the torch-free suite shares (a module of its own name: ``from conftest import`` is ambiguous
with tests/conftest.py)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "open_clip", "torchvision")  # what the ONNX path must never import
