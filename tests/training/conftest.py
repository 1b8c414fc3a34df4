"""Data made in code for the training tests: a tiny Sen2LUCAS tree and tiny CLIP checkpoints.

The synthetic chips come in four "land covers" (distinct reflectance signatures plus noise) and
each point's four ground views are noisy copies of its cover's prototype, so there is something
real to learn: the image tower can only lower the loss by telling the covers apart.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/tiny_models.py

COUNTRIES = ("DE", "FR", "IT", "ES")
SIGNATURES = np.array([[300, 700, 400], [1500, 1200, 900], [200, 300, 1800], [1200, 400, 300]], dtype=float)


from chipdata import write_chip  # noqa: E402,F401  (tests import it from chipdata)


def make_sen2lucas(root: Path, n: int = 48, dim: int = 32, size: int = 100, seed: int = 0):
    """Returns (root, list_file, embeddings_file, covers)."""
    import torch

    rng = np.random.default_rng(seed)
    protos = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(4, dim))).float(), dim=1)
    lines, emb, covers = [], {}, []
    for i in range(n):
        cover = i % 4
        cc = COUNTRIES[(i // 4) % 4]
        point = 40000000 + i * 137
        rel = f"{cc}/{point}_2018.tif"
        # bands stored B02, B03, B04 (the Sen2LUCAS/reference order read back with bands 3,2,1)
        sig = SIGNATURES[cover][::-1]
        arr = sig[:, None, None] + rng.normal(0, 60, size=(3, size, size))
        arr[:, : size // 2] *= 1.0 + 0.3 * (cover % 2)  # some spatial structure
        write_chip(root / rel, np.clip(arr, 0, 10000).astype("uint16"))
        for d in "WENS":
            v = protos[cover] + 0.1 * torch.from_numpy(rng.normal(size=dim)).float()
            emb[f"{cc}_{point}{d}"] = v.reshape(1, dim)
        lines.append(rel)
        covers.append(cover)
    lst = root / "chips.txt"
    lst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ef = root / "ground_emb.pt"
    torch.save(emb, ef)
    return root, lst, ef, covers


@pytest.fixture(scope="session")
def sen2lucas(tmp_path_factory):
    return make_sen2lucas(tmp_path_factory.mktemp("sen2lucas"))


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    from tiny_models import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_vit.ckpt", "vit")


@pytest.fixture(scope="session")
def tiny_rn(tmp_path_factory):
    from tiny_models import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_rn.ckpt", "rn")


@pytest.fixture()
def train_cfg(sen2lucas, tiny_vit, tmp_path):
    from senclip_train.train import TrainConfig

    root, lst, ef, _ = sen2lucas

    def make(**kw):
        base = dict(root=str(root), list_file=str(lst), embeddings=str(ef), init=str(tiny_vit),
                    out=str(tmp_path / "run"), epochs=2, batch_size=8, lr=1e-3, queue_size=16,
                    save_every=4, log_every=1, trainable_blocks=-1)
        base.update(kw)
        return TrainConfig(**base)

    return make
