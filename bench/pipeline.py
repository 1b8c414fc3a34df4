"""End-to-end ``classify`` against the bare encoder on the same chips, same backend.

The bare figure is a pass of ``encode_chips`` over exactly the chips the pipeline cuts, just
before the pipeline runs; the end-to-end figure is chips / wall time of ``senclip.classify``
(reading, band mapping, chip cutting, encoding, prompts, store and GeoTIFF writing) with the
model already loaded, as in the QGIS worker; model loading is reported apart.
"""
from __future__ import annotations

import subprocess

from .common import BUILD, ROOT, Row, Timer, quick
from .encoder import CLASSES, demo_scene, encode_all, scene_chips


def _bounds(scene_path, width: int, height: int):
    from rasterio.windows import Window, bounds

    from senclip.sentinel2.scene import open_scene

    with open_scene(scene_path) as s:
        return bounds(Window(0, 0, min(width, s.width), min(height, s.height)), s.transform)


def _crop(scene_path, bounds):
    import numpy as np

    from senclip.embedding.pipeline import iter_batches
    from senclip.sentinel2.scene import open_scene
    from senclip.embedding.tiling import TileGrid

    with open_scene(scene_path, bounds=bounds) as s:
        grid = TileGrid.create(s.width, s.height, 64, 32)
        return np.concatenate([b.chips for b in iter_batches(s, grid, batch_size=32, min_valid=0.5)])


def one(label: str, lm, scene_path, bounds, chips, bare_rate=None) -> list[Row]:
    from senclip.api import classify

    if bare_rate is None:
        _, bare_rate = encode_all(lm.image, chips)
    out = BUILD / "pipeline" / f"{label}.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    with Timer() as t:
        classify(scene_path, out, classes=CLASSES, prompt_style="generic", loaded_model=lm, backend=lm.backend,
                 tile=64, stride=32, batch_size=32, bounds=bounds, overwrite=True)
    e2e = len(chips) / t.s
    return [Row("pipeline", f"classify end to end, {label}", e2e, "chips/s", bare_rate,
                f"bare {label} encoder, same chips", e2e / bare_rate, ">= 0.90", e2e / bare_rate >= 0.90,
                note=f"{len(chips)} chips in {t.s:.1f} s (model preloaded; 28 generic prompts encoded in the run)")]


def cli_wall(lm_backend: str, scene_path, bounds, precision: str = "fp32") -> Row:
    """The real command line, model loading and imports included."""
    out = BUILD / "pipeline" / "cli.tif"
    cmd = [str(ROOT / ".venv" / "bin" / "senclip"), "classify", str(scene_path), "--classes", ";".join(CLASSES),
           "--model", "untrained-smoke", "--backend", lm_backend, "--device", "cpu", "--out", str(out),
           "--overwrite", "--prompt-style", "generic", "--precision", precision]
    if bounds is not None:
        cmd += ["--bounds", ",".join(f"{b:.3f}" for b in bounds)]
    with Timer() as t:
        p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"senclip classify failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    return Row("pipeline", f"`senclip classify` CLI wall time, {lm_backend} --precision {precision}", t.s, "s",
               note="process start, imports, model load (cached ONNX export) and the run")


def run(roof: float, ctx: dict) -> list[Row]:
    scene = demo_scene()
    if "lm_fp32" not in ctx:
        from .encoder import load

        ctx["lm_fp32"] = load("onnx")[0]
    if quick():
        bounds = _bounds(scene, 512, 256)
        chips = _crop(scene, bounds)
    else:
        bounds, chips = None, ctx.get("chips")
        if chips is None or len(chips) < 1000:
            chips = scene_chips(scene)
    rows = one("onnx fp32", ctx["lm_fp32"], scene, bounds, chips)
    if not quick() and "lm_int8" in ctx:
        rows += one("onnx int8", ctx["lm_int8"], scene, bounds, chips)
    auto = ctx.get("lm_auto")
    if auto is not None and (auto.engine, auto.precision) not in (("onnxruntime", "fp32"), ("onnxruntime", "int8")):
        rows += one(f"auto ({auto.engine} {auto.precision})", auto, scene, bounds, chips)
    try:  # the acceptance figure: auto against ORT fp32, whole CLI, model load included
        fp32, best = cli_wall("onnx", scene, bounds, "fp32"), cli_wall("onnx", scene, bounds, "auto")
        rows += [fp32, best, Row("pipeline", "CLI speed-up, --precision auto over fp32 (onnx)", fp32.value / best.value,
                                 "x", 2.0, "target on AMX", fp32.value / best.value / 2.0, ">= 2 on AMX",
                                 None, note=f"auto ran {auto.engine if auto else '?'} "
                                            f"{auto.precision if auto else '?'}; same run, same scene")]
    except Exception as e:  # the CLI figure is information; the ratios above stand without it
        rows.append(Row("pipeline", "`senclip classify` CLI wall time", None, "s", note=f"failed: {e}"[:300]))
    return rows
