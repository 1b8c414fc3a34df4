"""GPU figures as a share of one H100's limit (~110k ViT-B/32 chips/s at 989 dense bf16
TFLOP/s). Measured only where torch sees CUDA; otherwise the rows say "not measured: no GPU".

Encoder only: uint8 chips already on the device (resize + normalise run there, as in the
product), bf16 autocast. End to end: ``senclip.classify`` on a synthetic scene, batch 1024.
"""
from __future__ import annotations

import time

from .common import BUILD, H100_LIMIT_CHIPS_S, Row, quick


def _not_measured(why: str) -> list[Row]:
    return [Row("gpu", name, None, "chips/s", H100_LIMIT_CHIPS_S, "H100 limit", None, tgt, None, note=f"not measured: {why}")
            for name, tgt in (("encoder only (bf16)", ">= 0.40"), ("end to end classify", ">= 20k chips/s"))]


def run(roof: float, ctx: dict) -> list[Row]:
    import torch

    if not torch.cuda.is_available():
        return _not_measured("no GPU")
    from senclip.models.loading import load_model

    lm = load_model("untrained-smoke", backend="torch", device="cuda", precision="auto")  # bf16 autocast on CUDA
    mod = lm.image.module
    batch = 1024
    chips = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8, device="cuda")
    steps = 5 if quick() else 20

    def timed(fn) -> float:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                fn(chips)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn(chips)
            torch.cuda.synchronize()
        return steps * batch / (time.perf_counter() - t0)

    eager = timed(mod)
    try:
        compiled = timed(torch.compile(mod, mode="max-autotune-no-cudagraphs"))
    except Exception as e:  # compile needs a working triton; report eager alone then
        compiled, why = None, f"torch.compile failed: {type(e).__name__}"
    else:
        why = ""
    best = max(eager, compiled or 0)
    rows = [Row("gpu", "encoder only (bf16)", best, "chips/s", H100_LIMIT_CHIPS_S, "H100 limit",
                best / H100_LIMIT_CHIPS_S, ">= 0.40", best / H100_LIMIT_CHIPS_S >= 0.40,
                note=f"{torch.cuda.get_device_name(0)}; eager {eager:.0f}, compiled "
                     f"{'—' if compiled is None else f'{compiled:.0f}'} chips/s, batch {batch} {why}")]
    from senclip.api import classify

    from .memory import write_scene

    scene = BUILD / "gpu" / "scene.tif"
    scene.parent.mkdir(parents=True, exist_ok=True)
    size = 2745 if quick() else 10980
    write_scene(scene, size)
    try:
        t0 = time.perf_counter()
        classify(scene, BUILD / "gpu" / "map.tif", classes=["Forest", "Water"], loaded_model=lm, backend="torch",
                 device="cuda", batch_size=batch, overwrite=True)
        dt = time.perf_counter() - t0
    finally:
        scene.unlink(missing_ok=True)
    n = (-(-size // 32)) ** 2
    rate = n / dt
    rows.append(Row("gpu", "end to end classify", rate, "chips/s", H100_LIMIT_CHIPS_S, "H100 limit",
                    rate / H100_LIMIT_CHIPS_S, ">= 20k chips/s", rate >= 20_000,
                    note=f"{size}² synthetic scene, {n} cells, {dt:.1f} s, as shipped ({lm.engine} {lm.precision}: "
                         f"{lm.precision_reason})"))
    return rows
