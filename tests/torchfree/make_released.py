"""Run by the TORCH venv for the torch-free suite: tiny random CLIPs in every form the backend
accepts, torch.load's arrays of each (``<name>.npz``) to compare the torch-free reader with, and the
torch backend's embeddings of fixed chips and prompts (``<name>.emb.npz``) for the torch-free export.

Usage: python make_released.py OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _reference(path: Path, obj) -> None:
    import torch

    sd = obj.get("state_dict", obj)
    np.savez(path.with_name(path.name + ".npz"),
             **{k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in sd.items()})


CHIP_SEED, PROMPTS = 0, ["Forest", "Sea or Lake", "Straße mit Bäumen", "fish &amp; chips", "森林", "a " * 90]


def chips() -> np.ndarray:
    """Chips with their own colour and texture (also made by the torch-free test, same seed)."""
    rng = np.random.RandomState(CHIP_SEED)
    base = rng.randint(0, 256, (4, 3, 1, 1))
    return np.clip(base + rng.randint(-40, 41, (4, 3, 64, 64)), 0, 255).astype(np.uint8)


def _embeddings(path: Path) -> None:
    from senclip.models.loading import load_model

    lm = load_model(checkpoint=path, backend="torch", device="cpu", precision="fp32")
    np.savez(path.with_name(path.name + ".emb.npz"), image=lm.image.encode_chips(chips()),
             text=lm.text.encode_texts(PROMPTS))


def main(out: Path) -> None:
    """Everything written into ``out``; torch is imported here only, so the torch-free tests can
    import :func:`chips` and :data:`PROMPTS` from this module."""
    import torch
    from safetensors.torch import save_file

    from senclip.models.checkpoints import save_openai_state_dict
    from tiny_models import make_tiny_clip

    vit, rn = make_tiny_clip("vit"), make_tiny_clip("rn")
    for name, model in (("vit.ckpt", vit), ("rn.ckpt", rn)):  # the SenCLIP release format
        save_openai_state_dict(model, out / name)
        _reference(out / name, torch.load(out / name, weights_only=True))
        _embeddings(out / name)
    sd = {k: v.detach().contiguous() for k, v in vit.state_dict().items()}
    torch.save(sd, out / "vit_legacy.pt", _use_new_zipfile_serialization=False)
    _reference(out / "vit_legacy.pt", sd)
    save_file(sd, str(out / "vit.safetensors"))
    _reference(out / "vit.safetensors", sd)
    lightning = {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 3, "global_step": 10}
    torch.save(lightning, out / "vit_lightning.pth")
    _reference(out / "vit_lightning.pth", sd)
    base = torch.arange(24.0).reshape(4, 6)  # views, half, bfloat16, ints and booleans
    odd = {"view": base.t()[1:], "row": base[2], "half": torch.randn(3, 4).half(), "bf16": torch.randn(5).bfloat16(),
           "bools": torch.tensor([True, False]), "ints": torch.tensor([[1, -2]], dtype=torch.int32)}
    for legacy in (False, True):
        path = out / f"odd{'_legacy' if legacy else ''}.pt"
        torch.save(odd, path, _use_new_zipfile_serialization=not legacy)
        _reference(path, odd)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
