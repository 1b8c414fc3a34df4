"""Does a reduced precision keep the embeddings? Measured once per model, engine and CPU.

``--precision auto`` may only pick bf16 or int8 when it keeps cosine >= ``MIN_COSINE`` to fp32.
Random-weight measurements say it does for ViT-B/32, but trained weights can have activation
outliers that int8 handles worse, so the bound is measured on the model itself: 32 real
Sentinel-2 chips shipped with the package (``tools/make_calibration_chips.py``) run through the
fp32 and the candidate encoder, and the minimum cosine is cached in
``$SENCLIP_HOME/onnx/precision-checks.json`` (a few seconds, the first time only).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from senclip.core.outputs import write_text

CHIPS_FILE = Path(__file__).resolve().parent / "resources" / "calibration" / "sentinel2_chips.npz"
N_CHIPS = 32
BATCH = 16


def calibration_chips() -> np.ndarray:
    """uint8 (32, 3, 64, 64) real Sentinel-2 chips."""
    with np.load(CHIPS_FILE) as f:
        return np.ascontiguousarray(f["chips"])


def min_cosine(reference, candidate, chips: np.ndarray | None = None) -> float:
    """Smallest cosine between the two encoders' embeddings of the calibration chips."""
    chips = calibration_chips() if chips is None else chips
    a = np.concatenate([reference.encode_chips(chips[i:i + BATCH]) for i in range(0, len(chips), BATCH)])
    b = np.concatenate([candidate.encode_chips(chips[i:i + BATCH]) for i in range(0, len(chips), BATCH)])
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def checks_file() -> Path:
    from senclip.models.onnx_export import onnx_home

    return onnx_home() / "precision-checks.json"


def check_key(model_id: str, checksum: str, engine: str, precision: str, cpu_name: str) -> str:
    return f"{model_id}|{checksum}|{engine}|{precision}|{cpu_name}"


def cached_check(key: str) -> float | None:
    try:
        return float(json.loads(checks_file().read_text(encoding="utf-8"))[key]["min_cosine"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_check(key: str, cosine: float) -> None:
    """Add one result (temporary file + rename: a crash never leaves half a file). A cache only:
    a failure to write costs a re-measure next time, never the run."""
    path = checks_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[key] = {"min_cosine": cosine, "chips": N_CHIPS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(data, indent=1))
    except OSError:
        pass
