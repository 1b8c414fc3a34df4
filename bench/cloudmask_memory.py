"""Peak memory and time of the cloud mask on a full-size Sentinel-2 tile (10 980² px at 10 m).

Writes a synthetic L1C tile (13 band files at 10/20/60 m, compressed, a cloud blob in the middle) and an
L2A-style SCL, then builds each mask in a fresh child process and reports its peak resident memory
(``ru_maxrss``) above the process's baseline after imports. Not part of ``make test`` (minutes, GBs of
pixels read). Run: ``python -m bench.cloudmask_memory [--size 10980] [--data DIR]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
       "B09": 60, "B10": 60, "B11": 20, "B12": 20}
STEM = "T33UUU_20170216T102101"


def write_tile(folder: Path, size: int) -> Path:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    folder.mkdir(parents=True, exist_ok=True)
    for band, res in RES.items():
        path = folder / f"{STEM}_{band}.tif"
        if path.is_file():
            continue
        n = size * 10 // res
        prof = dict(driver="GTiff", width=n, height=n, count=1, dtype="uint16", crs="EPSG:32633",
                    transform=from_origin(300000, 5900040, res, res), tiled=True, blockxsize=512, blockysize=512,
                    compress="deflate")
        with rasterio.open(path, "w", **prof) as ds:
            for r0 in range(0, n, 512):
                h = min(512, n - r0)
                yy, xx = np.mgrid[r0:r0 + h, 0:n]
                blob = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2) < (n / 8) ** 2
                arr = np.where(blob, 6000, 1500).astype(np.uint16)
                ds.write(arr, 1, window=Window(0, r0, n, h))
    scl = folder / "scl" / f"{STEM}_SCL_20m.tif"
    if not scl.is_file():
        scl.parent.mkdir(exist_ok=True)
        n = size // 2
        prof = dict(driver="GTiff", width=n, height=n, count=1, dtype="uint8", crs="EPSG:32633",
                    transform=from_origin(300000, 5900040, 20, 20), tiled=True, compress="deflate")
        with rasterio.open(scl, "w", **prof) as ds:
            for r0 in range(0, n, 512):
                h = min(512, n - r0)
                ds.write(np.full((h, n), 9 if r0 < n // 2 else 4, np.uint8), 1, window=Window(0, r0, n, h))
    return folder


CHILD = """
import json, resource, sys, time
import senclip.api  # as a real run: sets GDAL_CACHEMAX (senclip.embedding.pipeline) before any raster is read
from pathlib import Path
from senclip.sentinel2.cloudmask import MaskPlan, build_mask, plan_mask
from senclip.core.feedback import Feedback
from senclip.sentinel2.scene import open_scene
folder, method = Path(sys.argv[1]), sys.argv[2]
with open_scene(folder, bands="B04,B03,B02") as scene:
    plan = plan_mask("s2cloudless", scene) if method == "s2cloudless" else \\
        MaskPlan("scl", "bench", source=str(next((folder / "scl").glob("*.tif"))))
    import s2cloudless, lightgbm  # imported before the baseline, so only pixels count
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    res = build_mask(plan, scene, folder / f"mask-{method}.tif", feedback=Feedback())
    secs = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"method": method, "seconds": round(secs, 1), "baseline_mb": round(base / 1024),
                  "peak_mb": round(peak / 1024), "growth_mb": round((peak - base) / 1024),
                  "masked_fraction": res.record["masked_fraction"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=10980, help="tile side in 10 m pixels")
    ap.add_argument("--data", default="build/bench-cloudmask", help="where the synthetic tile is written")
    args = ap.parse_args()
    t = time.perf_counter()
    folder = write_tile(Path(args.data) / str(args.size), args.size)
    print(f"tile {args.size}² written in {time.perf_counter() - t:.0f} s", flush=True)
    for method in ("scl", "s2cloudless"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder), method], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1])), flush=True)


if __name__ == "__main__":
    main()
