"""Reading SenCLIP-format checkpoints: architecture from shapes, wrappers, damage, foreign layouts."""
from __future__ import annotations

import argparse
import hashlib
import json

import open_clip
import pytest
import torch

from senclip.models.checkpoints import build_clip, infer_arch, read_state_dict, save_openai_state_dict, sha256_file  # noqa: F401
from senclip.core.errors import CheckpointError, InputError  # noqa: E402


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fixture,kind", [("tiny_checkpoint", "vit"), ("tiny_rn_checkpoint", "rn")])
def test_round_trip_infers_architecture(request, fixture, kind):
    path = request.getfixturevalue(fixture)
    sd = read_state_dict(path)
    arch = infer_arch(sd)
    assert arch.startswith(f"openai-{kind}:") and "i64" in arch and "e32" in arch
    model = build_clip(sd, arch)
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    assert _same(model.state_dict(), sd)  # fp32 bits survive open_clip's fp16 builder
    assert model.encode_image(torch.rand(2, 3, 64, 64)).shape == (2, 32)
    assert build_clip(sd, None).visual.image_size in (64, (64, 64))


def test_known_open_clip_names():
    from tiny_models import make_tiny_clip

    rn50 = open_clip.create_model("RN50-quickgelu").state_dict()
    assert infer_arch(rn50) == "RN50-quickgelu"
    assert infer_arch(make_tiny_clip().state_dict()) != "ViT-B-32-quickgelu"


@pytest.mark.parametrize("wrap", ["state_dict+module", "model+model", "plain+module"])
def test_wrappers_and_prefixes_are_unwrapped(tiny_checkpoint, tmp_path, wrap):
    sd = read_state_dict(tiny_checkpoint)
    key, prefix = wrap.split("+")
    inner = {f"{prefix}.{k}": v for k, v in sd.items()}
    obj = inner if key == "plain" else {key: inner, "epoch": 3, "optimizer_states": []}
    torch.save(obj, tmp_path / "wrapped.ckpt")
    assert _same(read_state_dict(tmp_path / "wrapped.ckpt"), sd)


def test_safetensors(tiny_checkpoint, tmp_path):
    from safetensors.torch import save_file

    sd = read_state_dict(tiny_checkpoint)
    save_file(sd, str(tmp_path / "w.safetensors"))
    assert _same(read_state_dict(tmp_path / "w.safetensors"), sd)
    (tmp_path / "bad.safetensors").write_bytes((tmp_path / "w.safetensors").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="damaged"):
        read_state_dict(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "flipped"])
def test_damaged_files(tiny_checkpoint, tmp_path, damage):
    data = tiny_checkpoint.read_bytes()
    bad = {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"\x00junk" * 1000,
           "flipped": data[:-200] + bytes(200)}[damage]
    path = tmp_path / "bad.ckpt"
    path.write_bytes(bad)
    with pytest.raises(CheckpointError) as e:
        read_state_dict(path)
    assert "damaged" in str(e.value) and "download it again" in str(e.value) and str(path) in str(e.value)
    assert isinstance(e.value, InputError)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "nope.ckpt")


def test_python_objects_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2), "args": argparse.Namespace(lr=1)}, tmp_path / "pickled.ckpt")
    with pytest.raises(CheckpointError, match="argparse.Namespace besides tensors and cannot be loaded safely"):
        read_state_dict(tmp_path / "pickled.ckpt")


def test_foreign_keys_list_what_was_expected(tmp_path):
    torch.save({"encoder.layer.0.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}, tmp_path / "other.pt")
    sd = read_state_dict(tmp_path / "other.pt")
    with pytest.raises(CheckpointError) as e:
        infer_arch(sd)
    msg = str(e.value)
    assert "visual.*" in msg and "token_embedding.weight" in msg and "--arch" in msg and "encoder.layer.0.weight" in msg
    with pytest.raises(CheckpointError):
        build_clip(sd, None)


def test_incomplete_openai_layout_is_reported(tiny_checkpoint):
    sd = read_state_dict(tiny_checkpoint)
    del sd["visual.transformer.resblocks.0.mlp.c_fc.weight"]
    with pytest.raises(CheckpointError, match="inconsistent|damaged"):
        build_clip(sd, infer_arch(sd))


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory):
    """A non-OpenAI open_clip architecture (GELU, its own config), registered with open_clip."""
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    path = tmp_path_factory.mktemp("cfg") / "senclip-test-tiny.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return "senclip-test-tiny"


def test_open_clip_format_with_explicit_arch(tiny_arch):
    torch.manual_seed(1)
    sd = open_clip.create_model(tiny_arch).state_dict()
    model = build_clip(dict(sd), tiny_arch)
    assert _same(model.state_dict(), sd)
    with pytest.raises(CheckpointError, match="does not fit architecture"):
        build_clip(dict(sd), "RN50-quickgelu")
    with pytest.raises(CheckpointError, match="unknown architecture"):
        build_clip(dict(sd), "NoSuchNet")


def test_random_init_is_seeded(tiny_arch):
    assert _same(build_clip(None, tiny_arch).state_dict(), build_clip(None, tiny_arch).state_dict())
    assert not _same(build_clip(None, tiny_arch, seed=1).state_dict(), build_clip(None, tiny_arch).state_dict())
    with pytest.raises(CheckpointError):
        build_clip(None, None)


def test_save_is_atomic_and_plain(tmp_path):
    from tiny_models import make_tiny_clip

    model = make_tiny_clip(seed=3)
    path = save_openai_state_dict(model, tmp_path / "sub" / "m.ckpt")
    assert [p.name for p in path.parent.iterdir()] == ["m.ckpt"]
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw, dict) and "visual.proj" in raw and "token_embedding.weight" in raw
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def _as_numpy(t: torch.Tensor):
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


@pytest.mark.parametrize("form", ["zip", "legacy", "safetensors", "lightning"])
def test_numpy_reader_matches_torch_load(tiny_rn_checkpoint, tmp_path, form):
    """The torch-free reader gives torch.load's tensors, bit for bit, in every released form:
    views with offsets and strides, half, bfloat16 (widened to float32), integers and booleans too."""
    import numpy as np

    from senclip.models.checkpoints import read_arrays

    sd = torch.load(tiny_rn_checkpoint, weights_only=True)
    if form != "safetensors":  # safetensors holds neither views nor bfloat16
        base = torch.arange(24.0).reshape(4, 6)
        sd.update({"view.t": base.t()[1:], "view.row": base[2], "half": torch.randn(3, 4).half(),
                   "bf16": torch.randn(5).bfloat16(), "bools": torch.tensor([True, False]),
                   "ints": torch.tensor([[1, -2]], dtype=torch.int32)})
    path = tmp_path / f"w.{'safetensors' if form == 'safetensors' else 'pt'}"
    if form == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        obj = {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 2} if form == "lightning" else sd
        torch.save(obj, path, _use_new_zipfile_serialization=form != "legacy")
    got = read_arrays(path)
    assert got.keys() == sd.keys()
    for k, ref in sd.items():
        assert got[k].dtype == _as_numpy(ref).dtype and np.array_equal(got[k], _as_numpy(ref)), k
    assert _same(read_state_dict(path), {k: v.float() if v.dtype == torch.bfloat16 else v for k, v in sd.items()})


def test_architecture_table_is_open_clips():
    """senclip.models.archs names architectures without open_clip: its rows are open_clip's own
    OpenAI-layout configurations, and its shapes are those of open_clip's models."""
    from senclip.models.archs import OPENAI_ARCHS, openai_shapes, random_state_dict, signature

    names = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name) or {}
        v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
        if name.endswith("-quickgelu") and "timm_model_name" not in v and "hf_model_name" not in t \
                and v.get("head_width", 64) == 64:
            names.append(name)
            layers = v["layers"]
            assert signature(name) == {
                "embed_dim": cfg["embed_dim"],
                "vision_cfg": {"layers": list(layers) if isinstance(layers, (list, tuple)) else layers,
                               "width": v["width"], "patch_size": v.get("patch_size"), "image_size": v["image_size"]},
                "text_cfg": {"context_length": t.get("context_length", 77), "vocab_size": t.get("vocab_size", 49408),
                             "width": t.get("width", 512), "heads": t.get("heads", 8), "layers": t.get("layers", 12)}}
    assert names == list(OPENAI_ARCHS)
    for name in ("ViT-B-32-quickgelu", "RN50-quickgelu"):
        ref = {k: tuple(v.shape) for k, v in open_clip.create_model(name).state_dict().items()}
        assert openai_shapes(signature(name)) == ref
    sd = random_state_dict("RN50-quickgelu")
    assert infer_arch(sd) == "RN50-quickgelu" and {k: v.shape for k, v in sd.items()} == ref
    assert build_clip({k: torch.from_numpy(v) for k, v in sd.items()}, "RN50-quickgelu") is not None
