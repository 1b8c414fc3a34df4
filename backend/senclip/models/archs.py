"""The OpenAI-CLIP architectures by name, and the state_dict shapes each one has, without open_clip.

Why a table here: a torch-free install must still name the architecture of a checkpoint from
its tensor shapes (:func:`senclip.models.checkpoints.infer_arch`) and make the random
``untrained-smoke`` weights (:func:`random_state_dict`). The rows are open_clip's own
``*-quickgelu`` configurations of OpenAI's layout; ``tests/backend/test_checkpoints.py`` checks
them, and :func:`openai_shapes`, against open_clip.
"""
from __future__ import annotations

import math

import numpy as np

CONTEXT = 77
# name: (embed_dim, vision layers, vision width, patch size (None: ResNet), image size,
#        vocabulary, text width, text layers); text heads are width // 64, as in every row.
OPENAI_ARCHS = {
    "RN50-quickgelu": (1024, [3, 4, 6, 3], 64, None, 224, 49408, 512, 12),
    "RN50x4-quickgelu": (640, [4, 6, 10, 6], 80, None, 288, 49408, 640, 12),
    "RN50x16-quickgelu": (768, [6, 8, 18, 8], 96, None, 384, 49408, 768, 12),
    "RN50x64-quickgelu": (1024, [3, 15, 36, 10], 128, None, 448, 49408, 1024, 12),
    "RN101-quickgelu": (512, [3, 4, 23, 3], 64, None, 224, 49408, 512, 12),
    "ViT-B-16-quickgelu": (512, 12, 768, 16, 224, 49408, 512, 12),
    "ViT-B-32-quickgelu": (512, 12, 768, 32, 224, 49408, 512, 12),
    "ViT-L-14-336-quickgelu": (768, 24, 1024, 14, 336, 49408, 768, 12),
    "ViT-L-14-quickgelu": (768, 24, 1024, 14, 224, 49408, 768, 12),
    "ViT-L-14-worldwide-quickgelu": (768, 24, 1024, 14, 224, 250100, 768, 12),
}


def signature(name: str) -> dict:
    """Row ``name`` in the form :func:`senclip.models.checkpoints.infer_arch` derives from shapes."""
    embed, layers, width, patch, size, vocab, twidth, tlayers = OPENAI_ARCHS[name]
    return {"embed_dim": embed,
            "vision_cfg": {"layers": layers, "width": width, "patch_size": patch, "image_size": size},
            "text_cfg": {"context_length": CONTEXT, "vocab_size": vocab, "width": twidth, "heads": twidth // 64,
                         "layers": tlayers}}


def _block(prefix: str, w: int) -> dict:
    """One residual attention block of width ``w`` (OpenAI's names)."""
    return {f"{prefix}.attn.in_proj_weight": (3 * w, w), f"{prefix}.attn.in_proj_bias": (3 * w,),
            f"{prefix}.attn.out_proj.weight": (w, w), f"{prefix}.attn.out_proj.bias": (w,),
            f"{prefix}.ln_1.weight": (w,), f"{prefix}.ln_1.bias": (w,),
            f"{prefix}.mlp.c_fc.weight": (4 * w, w), f"{prefix}.mlp.c_fc.bias": (4 * w,),
            f"{prefix}.mlp.c_proj.weight": (w, 4 * w), f"{prefix}.mlp.c_proj.bias": (w,),
            f"{prefix}.ln_2.weight": (w,), f"{prefix}.ln_2.bias": (w,)}


def _norm(prefix: str, w: int, batch: bool = False) -> dict:
    out = {f"{prefix}.weight": (w,), f"{prefix}.bias": (w,)}
    if batch:
        out.update({f"{prefix}.running_mean": (w,), f"{prefix}.running_var": (w,), f"{prefix}.num_batches_tracked": ()})
    return out


def _vit(sig: dict) -> dict:
    v, e = sig["vision_cfg"], sig["embed_dim"]
    w, p, grid = v["width"], v["patch_size"], v["image_size"] // v["patch_size"]
    out = {"visual.class_embedding": (w,), "visual.positional_embedding": (grid * grid + 1, w),
           "visual.proj": (w, e), "visual.conv1.weight": (w, 3, p, p)}
    out.update(_norm("visual.ln_pre", w))
    for i in range(v["layers"]):
        out.update(_block(f"visual.transformer.resblocks.{i}", w))
    out.update(_norm("visual.ln_post", w))
    return out


def _resnet(sig: dict) -> dict:
    """OpenAI's ModifiedResNet: a three-conv stem, bottleneck stages, attention pooling."""
    v, e = sig["vision_cfg"], sig["embed_dim"]
    w = v["width"]
    out = {}
    for i, (cin, cout) in enumerate(((3, w // 2), (w // 2, w // 2), (w // 2, w)), start=1):
        out[f"visual.conv{i}.weight"] = (cout, cin, 3, 3)
        out.update(_norm(f"visual.bn{i}", cout, batch=True))
    inplanes = w
    for stage, blocks in enumerate(v["layers"], start=1):
        planes = w * 2 ** (stage - 1)
        for b in range(blocks):
            pre = f"visual.layer{stage}.{b}"
            for i, (cout, cin, k) in enumerate(((planes, inplanes, 1), (planes, planes, 3), (4 * planes, planes, 1)), 1):
                out[f"{pre}.conv{i}.weight"] = (cout, cin, k, k)
                out.update(_norm(f"{pre}.bn{i}", cout, batch=True))
            if b == 0:  # stride or width changes in every stage's first block
                out[f"{pre}.downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
                out.update(_norm(f"{pre}.downsample.1", 4 * planes, batch=True))
            inplanes = 4 * planes
    dim, spacial = 32 * w, v["image_size"] // 32
    out["visual.attnpool.positional_embedding"] = (spacial * spacial + 1, dim)
    for name in ("k_proj", "q_proj", "v_proj"):
        out.update({f"visual.attnpool.{name}.weight": (dim, dim), f"visual.attnpool.{name}.bias": (dim,)})
    out.update({"visual.attnpool.c_proj.weight": (e, dim), "visual.attnpool.c_proj.bias": (e,)})
    return out


def openai_shapes(sig: dict) -> dict:
    """``{name: shape}`` of the OpenAI-layout state_dict with signature ``sig``."""
    t, e = sig["text_cfg"], sig["embed_dim"]
    tw = t["width"]
    out = _vit(sig) if sig["vision_cfg"]["patch_size"] else _resnet(sig)
    out.update({"positional_embedding": (t["context_length"], tw), "text_projection": (tw, e), "logit_scale": (),
                "token_embedding.weight": (t["vocab_size"], tw)})
    for i in range(t["layers"]):
        out.update(_block(f"transformer.resblocks.{i}", tw))
    out.update(_norm("ln_final", tw))
    return out


def random_state_dict(name: str, seed: int = 0) -> dict:
    """Random float32 weights of architecture ``name`` (seeded, numpy's generator): normal(0, 0.02)
    weights, unit norms, CLIP's initial logit scale. For pipeline checks only: never a model."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in openai_shapes(signature(name)).items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = np.zeros(shape, np.int64)
        elif key == "logit_scale":
            out[key] = np.full(shape, math.log(1 / 0.07), np.float32)
        elif leaf in ("running_var",) or (leaf == "weight" and len(shape) == 1):
            out[key] = np.ones(shape, np.float32)
        elif leaf in ("bias", "running_mean", "in_proj_bias"):
            out[key] = np.zeros(shape, np.float32)
        else:
            out[key] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
    return out
