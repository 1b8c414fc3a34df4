"""Bad inputs end in clear errors naming the culprit, before any training step."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from senclip.core.errors import InputError


def _copy(sen2lucas, tmp_path):
    root, lst, ef, _ = sen2lucas
    dst = tmp_path / "d"
    shutil.copytree(root, dst)
    return dst, dst / lst.name, dst / ef.name


def test_missing_embedding_key(sen2lucas, train_cfg, tmp_path):
    from senclip_train.train import train

    root, lst, ef = _copy(sen2lucas, tmp_path)
    emb = torch.load(ef, weights_only=True)
    first = lst.read_text().splitlines()[0]
    cc, point = first.split("/")[0], first.split("/")[1].split("_")[0]
    del emb[f"{cc}_{point}N"]
    torch.save(emb, ef)
    with pytest.raises(InputError, match=f"'{cc}_{point}N' is missing"):
        train(train_cfg(root=str(root), list_file=str(lst), embeddings=str(ef)))


def test_corrupt_embeddings_and_chip(sen2lucas, train_cfg, tmp_path):
    from senclip_train.train import train

    root, lst, ef = _copy(sen2lucas, tmp_path)
    ef.write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt"):
        train(train_cfg(root=str(root), list_file=str(lst), embeddings=str(ef)))
    root, lst, ef = _copy(sen2lucas, tmp_path / "2")
    (root / lst.read_text().splitlines()[3]).write_bytes(b"II*\0 broken tiff")
    with pytest.raises(InputError, match="cannot read chip"):
        train(train_cfg(root=str(root), list_file=str(lst), embeddings=str(ef), epochs=1))


def test_wrong_chip_size(sen2lucas, train_cfg, tmp_path):
    from chipdata import write_chip

    from senclip_train.train import train

    root, lst, ef = _copy(sen2lucas, tmp_path)
    rel = lst.read_text().splitlines()[0]
    write_chip(root / rel, np.ones((3, 64, 64), "uint16"))
    with pytest.raises(InputError, match="64×64 px but Sen2LUCAS chips are 100×100"):
        train(train_cfg(root=str(root), list_file=str(lst), embeddings=str(ef), epochs=1))


def test_bad_list_names_and_empty_list(sen2lucas, train_cfg, tmp_path):
    from senclip_train.train import train

    root, lst, ef = _copy(sen2lucas, tmp_path)
    lst.write_text("chips/abc.tif\n")
    with pytest.raises(InputError, match="country-code folder"):
        train(train_cfg(root=str(root), list_file=str(lst), embeddings=str(ef)))
    lst.write_text("\n")
    with pytest.raises(InputError, match="empty"):
        train(train_cfg(root=str(root), list_file=str(lst), embeddings=str(ef)))


def test_embed_ground_roundtrip_and_cli_error(tiny_vit, tmp_path):
    from PIL import Image

    from senclip_train.cli.main import main
    from senclip_train.data.ground import embed_ground
    from senclip_train.data.sen2lucas import load_embeddings

    rng = np.random.default_rng(0)
    for d in "NESW":
        (tmp_path / "ph" / "DE").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8)).save(tmp_path / "ph" / "DE" / f"40000000{d}.jpg")
    out = embed_ground(tmp_path / "ph", tmp_path / "emb.pt", init=str(tiny_vit))
    emb = load_embeddings(out)
    assert sorted(emb) == [f"DE_40000000{d}" for d in "ENSW"]
    assert all(v.shape == (1, 32) for v in emb.values())
    (tmp_path / "ph" / "DE" / "40000001N.jpg").write_bytes(b"xx")
    with pytest.raises(SystemExit) as e:
        main(["embed-ground", "--photos", str(tmp_path / "ph"), "--init", str(tiny_vit), "--out", str(tmp_path / "e2.pt")])
    assert e.value.code == 2 and not (tmp_path / "e2.pt").exists()


def test_init_from_a_registry_id(tiny_vit, tmp_path, monkeypatch):
    """--init accepts registry ids: weights come from the senclip cache (verified), like the backend's."""
    import json

    from senclip.models import registry
    from senclip.models.checkpoints import infer_arch, read_state_dict, sha256_file
    from senclip.models.weights import cached_path
    from senclip_train.model.build import load_clip

    spec = {"id": "tiny-init", "arch": infer_arch(read_state_dict(tiny_vit)), "description": "tiny",
            "format": "openai-state-dict", "source": {"hf_repo": "org/tiny", "filename": "tiny.ckpt"},
            "sha256": sha256_file(tiny_vit), "preprocess": {"mean": [0.5] * 3, "std": [0.25] * 3, "size": 64}}
    (tmp_path / "tiny-init.json").write_text(json.dumps(spec))
    monkeypatch.setattr(registry, "_extra_dirs", [tmp_path])
    target = cached_path(registry.get_model_spec("tiny-init"))
    target.parent.mkdir(parents=True)
    target.write_bytes(tiny_vit.read_bytes())
    model, arch, sha = load_clip("tiny-init")
    assert sha == spec["sha256"] and arch == spec["arch"]
    with pytest.raises(InputError, match="registry model id"):
        load_clip("no-such-model")
