"""Peak memory of ``senclip classify`` against raster size, with a real-size model.

The encoder is a full ViT-B/32 with random weights (``untrained-smoke``'s architecture and seed,
written once as a release-format checkpoint), so the model's own share of the memory is the real
one; the output is at pixel resolution with K = 19 classes (BigEarthNet-19's count), the most
memory-hungry output. Two synthetic 4-band uint16 UTM scenes, the second 4× the pixels of the
first (full run: 2745² and 10980², a whole Sentinel-2 tile; quick run: 1024² and 2048²), tiled and
deflate-compressed with blocky content so they are quick to make; chips every 64 px (tile 64,
stride 64: a quarter of the default stride-32 chip count, so that a full ViT-B/32 on a few cores
finishes in minutes, not hours). Each run is its own process and its peak RSS comes from
``os.wait4`` (that child's ru_maxrss only). Scenes are deleted after. The scenes are mapped twice:
through torch in .venv (the default backend there), and through ONNX Runtime fp32 in the torch-free
.venv-light (`make setup`), whose goal is 1 GB; its ONNX export of the random model is read from the
bench's cache (made by the torch venv when missing, so the light run never needs torch).

Then pixel against grid resolution with many classes: one embedding store of a full-width tile
(10752² px, 336² cells, random 512-d embeddings, tests/synthetic_store.py) re-classified into
K = 19 classes at both resolutions, the text encoder from its ONNX export as when re-prompting
(exported once into the bench's cache; without it the whole checkpoint's load, 1.9 GB, hides
everything else); pixel resolution may cost at most 1.15× the grid run's peak.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from .common import BUILD, ROOT, Row, quick

SIZES_FULL, SIZES_QUICK = (2745, 10980), (1024, 2048)
STRIDE = 64
ARCH = "ViT-B-32-quickgelu"  # untrained-smoke's architecture
LIMIT_GB = 1.5
PIXEL_VS_GRID = 1.15  # target: peak RSS of --resolution pixel / grid, same store, K = 19
STORE_WIDTH = 10752  # the full-width tile of issue 29 (336 cells of 32 px)
LIGHT_LIMIT_GB = 1.0  # the torch-free install (issue 28)
ENGINES = {"torch": ["--backend", "torch", "--device", "cpu"],
           "onnx": ["--backend", "onnx", "--precision", "fp32", "--device", "cpu"]}
CLASSES_19 = ";".join(f"class {i}" for i in range(19))


def write_scene(path, size: int, seed: int = 0) -> None:
    """Blocky land cover: each 256×256 block one of a few reflectance spectra plus mild noise."""
    import rasterio
    from rasterio.transform import from_origin

    spectra = np.array([[300, 2500, 300, 3000], [2500, 300, 300, 200], [900, 1100, 1300, 2500],
                        [1500, 1500, 1600, 1700], [400, 600, 500, 4000]], dtype=np.uint16)
    rng = np.random.default_rng(seed)
    nb = -(-size // 256)
    kinds = rng.integers(0, len(spectra), (nb, nb))
    profile = dict(driver="GTiff", width=size, height=size, count=4, dtype="uint16", crs="EPSG:32633",
                   transform=from_origin(300000, 5900040, 10, 10), tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate", BIGTIFF="IF_SAFER")
    tmp = path.with_suffix(".tmp.tif")
    noise = rng.integers(0, 8, (256, size), dtype=np.uint16)
    with rasterio.open(tmp, "w", **profile) as ds:
        for bi in range(nb):
            h = min(256, size - bi * 256)
            strip = spectra[np.repeat(kinds[bi], 256)[:size]].T[:, None, :] + noise[None, :h]
            ds.write(np.ascontiguousarray(strip), window=rasterio.windows.Window(0, bi * 256, size, h))
    os.replace(tmp, path)


# Runs ``cmd`` from a small intermediate process and reports that grandchild's ru_maxrss. On Linux
# a process's max RSS starts at its parent's high-water mark when forked and exec'd directly (the
# kernel carries the old mm's peak across exec), so launching from this 1+ GB bench process would
# report the bench's own peak, not the command's.
_WRAPPER = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = p.stderr.read()
_, status, ru = os.wait4(p.pid, 0)
sys.stderr.buffer.write(err[-2000:])
print(ru.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def peak_rss(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, stderr tail) of one command, in a process of its own."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    try:
        kb, rc = (int(x) for x in p.stdout.split())
    except ValueError:
        raise RuntimeError(f"peak-RSS wrapper failed: {p.stderr.strip()[-400:]}") from None
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({rc}): {p.stderr.strip()[-400:]}")
    return (kb if sys.platform != "darwin" else kb / 1024) / 1024, dt, p.stderr


def random_vitb32(path):
    """A full-size ViT-B/32 with random weights (seed 0), in the SenCLIP release format."""
    from senclip.models.checkpoints import build_clip, save_openai_state_dict

    if not path.is_file():
        save_openai_state_dict(build_clip(None, ARCH, seed=0), path)
    return path


def scene_peaks(work, ckpt, senclip: str, sizes, engine: str = "torch") -> dict:
    """{size: (peak MB, seconds)} of a pixel-resolution K = 19 map of a fresh scene per size."""
    res = {}
    try:
        for size in sizes:
            scene = work / f"synthetic-{size}.tif"
            t0 = time.perf_counter()
            write_scene(scene, size)
            t_make = time.perf_counter() - t0
            cmd = [senclip, "classify", str(scene), "--classes", CLASSES_19, "--checkpoint", str(ckpt),
                   "--resolution", "pixel", "--tile", "64", "--stride", str(STRIDE), *ENGINES[engine],
                   "--out", str(work / f"map-{size}.tif"), "--overwrite"]
            mb, dt, _ = peak_rss(cmd)
            res[size] = (mb, dt)
            scene.unlink()
            print(f"    {size}², {engine}: peak RSS {mb:.0f} MB, {dt:.0f} s (scene made in {t_make:.0f} s)", flush=True)
    finally:
        for f in list(work.glob("synthetic-*")) + list(work.glob("map-*")):
            f.unlink()
    return res


def run(roof: float, ctx: dict) -> list[Row]:
    sys.path.insert(0, str(ROOT / "tests"))
    work = BUILD / "memory"
    work.mkdir(parents=True, exist_ok=True)
    ckpt = random_vitb32(work / "vitb32_random.ckpt")
    senclip = str(ROOT / ".venv" / "bin" / "senclip")
    sizes = SIZES_QUICK if quick() else SIZES_FULL
    res = scene_peaks(work, ckpt, senclip, sizes)
    (small_mb, small_s), (big_mb, big_s) = res[sizes[0]], res[sizes[1]]
    chips = lambda s: (-(-s // STRIDE)) ** 2  # noqa: E731
    what = f"full-size random ViT-B/32, torch fp32, pixel resolution, K=19, stride {STRIDE}"
    return pixel_vs_grid(work, ckpt, senclip) + light_rows(work, ckpt, sizes) + [
        Row("memory", f"peak RSS, {sizes[1]}² scene, pixel map, K=19", big_mb, "MB", LIMIT_GB * 1024, "1.5 GB",
            big_mb / (LIMIT_GB * 1024), "<= 1", big_mb <= LIMIT_GB * 1024,
            note=f"{chips(sizes[1])} chips, {what}, {big_s:.0f} s"),
        Row("memory", f"peak RSS {sizes[1]}² / {sizes[0]}²", big_mb / small_mb, "×", small_mb,
            f"peak RSS at {sizes[0]}² ({small_mb:.0f} MB)", big_mb / small_mb, "<= 1.2", big_mb / small_mb <= 1.2,
            note=f"{sizes[0]}²: {chips(sizes[0])} chips, {small_s:.0f} s; 4× the pixels; {what}"),
    ]


def light_rows(work, ckpt, sizes) -> list[Row]:
    """The same scenes through ONNX Runtime fp32 in the torch-free venv: peak RSS against 1 GB."""
    light = ROOT / ".venv-light" / "bin" / "senclip"
    if not light.is_file():
        raise RuntimeError(f"{light} is missing: `make setup` (or `make venv-light`) builds the torch-free venv")
    tiny = work / "synthetic-64.tif"  # one chip through the torch venv: makes the ONNX export if not cached
    write_scene(tiny, 64)
    subprocess.run([str(ROOT / ".venv" / "bin" / "senclip"), "-q", "classify", str(tiny), "--classes", CLASSES_19,
                    "--checkpoint", str(ckpt), "--tile", "64", *ENGINES["onnx"], "--out", str(work / "map-64.tif"),
                    "--overwrite"], check=True, stdout=subprocess.DEVNULL)
    res = scene_peaks(work, ckpt, str(light), sizes, engine="onnx")
    (small_mb, small_s), (big_mb, big_s) = res[sizes[0]], res[sizes[1]]
    limit = LIGHT_LIMIT_GB * 1024
    return [Row("memory", f"peak RSS, {sizes[1]}² scene, pixel map, K=19, ONNX Runtime, torch-free venv", big_mb, "MB",
                limit, "1 GB", big_mb / limit, "<= 1", big_mb <= limit,
                note=f"{sizes[0]}²: {small_mb:.0f} MB in {small_s:.0f} s; {sizes[1]}²: {big_s:.0f} s; ORT fp32, "
                     f".venv-light (no torch), same random ViT-B/32, stride {STRIDE}")]




def text_export(ckpt, senclip: str, store) -> None:
    """The checkpoint's ONNX text graph in the cache, where re-classifying a store finds it."""
    from senclip.embedding.store import EmbeddingStore
    from senclip.models.loading import load_text_model

    if load_text_model(EmbeddingStore(store).meta["model"]) is None:
        subprocess.run([senclip, "models", "export-onnx", "--checkpoint", str(ckpt)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pixel_vs_grid(work, ckpt, senclip: str, size: int = STORE_WIDTH) -> list[Row]:
    """Peak RSS of classifying one store (``size``² px, K = 19) at pixel and at grid resolution."""
    from synthetic_store import write_random_store

    store = write_random_store(work / "store-19", ckpt, width=size, height=size)  # 512-d: the real store size
    text_export(ckpt, senclip, store)
    peaks = {}
    try:
        for resolution in ("grid", "pixel") * 2:  # each twice, alternating; the lower peak of each
            cmd = [senclip, "classify", "--embeddings", str(store), "--classes", CLASSES_19, "--resolution",
                   resolution, "--device", "cpu", "--out", str(work / f"map-19-{resolution}.tif"), "--overwrite"]
            mb, dt = peak_rss(cmd)[:2]
            peaks[resolution] = min((mb, dt), peaks.get(resolution, (float("inf"), 0)))
            print(f"    K=19 {size}² {resolution}: peak RSS {mb:.0f} MB, {dt:.0f} s", flush=True)
    finally:
        import shutil

        shutil.rmtree(store, ignore_errors=True)
        for f in work.glob("map-19-*"):
            f.unlink()
    (grid_mb, grid_s), (px_mb, px_s) = peaks["grid"], peaks["pixel"]
    ratio = px_mb / grid_mb
    return [Row("memory", f"peak RSS pixel / grid, K=19, {size} px wide", ratio, "×", grid_mb,
                f"grid run of the same store ({grid_mb:.0f} MB)", ratio, f"<= {PIXEL_VS_GRID}",
                ratio <= PIXEL_VS_GRID, note=f"pixel {px_mb:.0f} MB in {px_s:.0f} s; grid {grid_s:.0f} s; "
                                             "ONNX text encoder (re-prompting)")]
