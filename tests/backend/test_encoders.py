"""load_model on the torch backend: registry ids, checkpoints, chips of any size, prompts of any kind."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import open_clip  # noqa: F401 - a missing dependency must fail here, not skip
import torch

from senclip.models import registry  # noqa: E402
from senclip.models.checkpoints import infer_arch, read_state_dict, sha256_file  # noqa: E402
from senclip.core.errors import BackendUnavailableError, CheckpointError, InputError, SenclipWarning, WeightsNotAvailableError  # noqa: F401
from senclip.models.loading import load_model  # noqa: E402
from senclip.models.weights import cached_path  # noqa: E402

LONG = "a satellite photo of " + ", ".join(f"field {i}" for i in range(60))


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return load_model(checkpoint=tiny_checkpoint, device="cpu")


def _chips(n, h, w, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 3, h, w)).astype(np.uint8)


def test_checkpoint_identity(tiny, tiny_checkpoint):
    rec = tiny.record()
    assert rec["model_id"] == "checkpoint:tiny_vit.ckpt" and rec["checksum"] == sha256_file(tiny_checkpoint)
    assert rec["arch"] == infer_arch(read_state_dict(tiny_checkpoint)) and rec["untrained"] is False
    assert rec["embed_dim"] == 32 and rec["preprocess"]["size"] == 64
    assert rec["preprocess"]["mean"] == list(registry.SENCLIP_MEAN)
    assert tiny.backend == "torch" and tiny.device == "cpu"


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (5, 3, 32, 32), (2, 3, 100, 72)])
def test_chips_of_any_size(tiny, shape):
    emb = tiny.image.encode_chips(_chips(*[shape[0], shape[2], shape[3]]))
    assert emb.shape == (shape[0], 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_chip_encoder_follows_the_recipe(tiny):
    """resize (bicubic) → [0,1] → normalise → encode_image → L2, batch-independent."""
    import torch.nn.functional as F

    chips = _chips(3, 48, 48, seed=1)
    model = tiny.image.module.model
    x = F.interpolate(torch.from_numpy(chips).float() / 255, size=(64, 64), mode="bicubic", align_corners=False)
    x = (x.clamp(0, 1) - torch.tensor(registry.SENCLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        registry.SENCLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = F.normalize(model.encode_image(x), dim=-1).numpy()
    got = tiny.image.encode_chips(chips)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(tiny.image.encode_chips(chips[1:2]), got[1:2], atol=1e-5)
    assert not np.allclose(got[0], got[1])
    assert tiny.image.encode_chips(np.zeros((0, 3, 64, 64), np.uint8)).shape == (0, 32)
    with pytest.raises(ValueError):
        tiny.image.encode_chips(chips.astype(np.float32))


def test_texts_unicode_and_truncation(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = tiny.text.encode_texts(["Forest", "Straße mit Bäumen", "森林と川", "🌲 &amp; 🌊"])
    assert emb.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert np.linalg.matrix_rank(emb) == 4
    with pytest.warns(SenclipWarning, match="77 tokens"):
        long = tiny.text.encode_texts(["Forest", LONG])
    np.testing.assert_allclose(long[0], emb[0], atol=1e-5)
    with pytest.warns(SenclipWarning):  # what was kept: the first 76 tokens, then end-of-text
        same = tiny.text.encode_texts([LONG + " and a lot more words at the end"])
    np.testing.assert_allclose(same[0], long[1], atol=1e-5)
    assert tiny.text.encode_texts([]).shape == (0, 32)


def test_resnet_checkpoint(tiny_rn_checkpoint):
    lm = load_model(checkpoint=tiny_rn_checkpoint, device="cpu")
    assert lm.arch.startswith("openai-rn:")
    assert lm.image.encode_chips(_chips(2, 64, 64)).shape == (2, 32)
    assert lm.text.encode_texts(["river"]).shape == (1, 32)


@pytest.fixture
def tiny_registry(tmp_path, monkeypatch, tiny_checkpoint):
    """A registry entry for the tiny checkpoint, with the file's real checksum."""
    arch = infer_arch(read_state_dict(tiny_checkpoint))
    spec = {"id": "tiny-test", "arch": arch, "description": "tiny", "format": "openai-state-dict",
            "source": {"hf_repo": "org/tiny", "filename": "tiny.ckpt", "revision": "main"},
            "sha256": sha256_file(tiny_checkpoint),
            "preprocess": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "size": 64}}
    (tmp_path / "tiny-test.json").write_text(json.dumps(spec))
    monkeypatch.setattr(registry, "_extra_dirs", [tmp_path])
    return registry.get_model_spec("tiny-test")


def test_registry_model_from_cache(tiny_registry, tiny_checkpoint):
    target = cached_path(tiny_registry)
    with pytest.raises(WeightsNotAvailableError) as e:
        load_model("tiny-test", offline=True)
    assert str(target) in str(e.value)
    target.parent.mkdir(parents=True)
    target.write_bytes(tiny_checkpoint.read_bytes())
    lm = load_model("tiny-test", offline=True, device="auto")
    assert lm.model_id == "tiny-test" and lm.checksum == tiny_registry.sha256
    assert lm.preprocess.mean == (0.5, 0.5, 0.5) and lm.device in ("cpu", "cuda")


def test_untrained_smoke_needs_no_download(senclip_home):
    lm = load_model("untrained-smoke", device="cpu")
    assert lm.untrained and lm.checksum == "untrained:seed0" and lm.arch == "ViT-B-32-quickgelu"
    assert lm.embed_dim == 512 and not (senclip_home / "weights").exists()
    again = load_model("untrained-smoke", device="cpu").image.encode_chips(_chips(1, 64, 64))
    np.testing.assert_allclose(lm.image.encode_chips(_chips(1, 64, 64)), again, atol=1e-6)


def test_bad_requests(tiny_checkpoint, tmp_path):
    with pytest.raises(InputError, match="not both"):
        load_model("untrained-smoke", checkpoint=tiny_checkpoint)
    with pytest.raises(InputError, match="backend"):
        load_model(checkpoint=tiny_checkpoint, backend="tensorflow")
    with pytest.raises(InputError, match="unknown model"):
        load_model("no-such-model")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(checkpoint=tmp_path / "missing.ckpt")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="--device cuda"):
            load_model(checkpoint=tiny_checkpoint, device="cuda")
