"""Run by the TORCH venv for the torch-free suite: tiny random CLIPs in every form the backend
accepts, and torch.load's arrays of each (``<name>.npz``) to compare the torch-free reader with.

Usage: python make_released.py OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from senclip.models.checkpoints import save_openai_state_dict
from tiny_models import make_tiny_clip


def _reference(path: Path, obj) -> None:
    sd = obj.get("state_dict", obj)
    np.savez(path.with_name(path.name + ".npz"),
             **{k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in sd.items()})


def main(out: Path) -> None:
    vit, rn = make_tiny_clip("vit"), make_tiny_clip("rn")
    for name, model in (("vit.ckpt", vit), ("rn.ckpt", rn)):  # the SenCLIP release format
        save_openai_state_dict(model, out / name)
        _reference(out / name, torch.load(out / name, weights_only=True))
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
