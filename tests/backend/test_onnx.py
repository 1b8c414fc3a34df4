"""ONNX export and the torch-free backend: metadata, dynamic shapes, int8, cache, release format."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import onnxruntime  # noqa: F401 - a missing dependency must fail here, not skip
import open_clip
import torch

from senclip.models.checkpoints import save_openai_state_dict, sha256_file  # noqa: E402
from senclip.core.errors import InputError, WeightsNotAvailableError  # noqa: E402
from feedback_log import InfoLog as Recorder  # noqa: E402
from senclip.models.loading import load_model  # noqa: E402
from senclip.models.onnx_export import _quantize, default_export_dir, export_onnx  # noqa: E402




def _chips(n, h, w, seed=0):
    """Chips with per-chip colour and texture, so a random network still tells them apart."""
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 256, (n, 3, 1, 1))
    return np.clip(base + rng.randint(-40, 41, (n, 3, h, w)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_torch(tiny_checkpoint):
    return load_model(checkpoint=tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def tiny_export(tiny_torch, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "tiny"
    return export_onnx(tiny_torch.image.module.model, out, preprocess=tiny_torch.preprocess,
                       model_id=tiny_torch.model_id, arch=tiny_torch.arch, checksum=tiny_torch.checksum)


def test_metadata(tiny_export, tiny_torch):
    from senclip.models.encoders.onnx_encoder import read_metadata

    assert sorted(p.name for p in tiny_export.iterdir()) == ["image.onnx", "text.onnx"]
    for name in ("image.onnx", "text.onnx"):
        meta = read_metadata(tiny_export / name)
        assert meta["model_id"] == "checkpoint:tiny_vit.ckpt" and meta["checksum"] == tiny_torch.checksum
        assert meta["arch"] == tiny_torch.arch and meta["embed_dim"] == "32" and meta["context_length"] == "77"
        assert json.loads(meta["preprocess"]) == tiny_torch.preprocess.to_dict()
        assert meta["torch_version"] == torch.__version__ and "dynamo" in meta["exporter"]
        assert meta["int8"] == "false" and meta["role"] == name.split(".")[0]


@pytest.mark.parametrize("shape", [(1, 64, 64), (5, 30, 70), (3, 128, 96)])
def test_dynamic_batch_and_size_agree_with_torch(tiny_export, tiny_torch, shape):
    from senclip.models.encoders.onnx_encoder import OnnxImageEncoder

    enc = OnnxImageEncoder(tiny_export / "image.onnx", device="cpu")
    chips = _chips(*shape)
    np.testing.assert_allclose(enc.encode_chips(chips), tiny_torch.image.encode_chips(chips), atol=2e-5)


def test_text_agrees_with_torch(tiny_export, tiny_torch):
    lm = load_model(onnx_dir=tiny_export, backend="onnx", device="cpu")
    texts = ["Forest", "Straße mit Bäumen", "fish &amp; chips", "森林"] * 3
    np.testing.assert_allclose(lm.text.encode_texts(texts), tiny_torch.text.encode_texts(texts), atol=2e-5)
    assert lm.record() == tiny_torch.record() and lm.backend == "onnx" and lm.device == "cpu"



def test_onnx_text_graph_takes_any_sequence_length(tiny_export, tiny_torch):
    """Exported with a dynamic sequence axis, the ONNX text encoder cuts the padding after the
    longest prompt (like the torch one) and still matches full-context encoding."""
    import torch

    lm = load_model(onnx_dir=tiny_export, backend="onnx", device="cpu")
    assert lm.text.trim and lm.text.session.get_inputs()[0].shape[1] != 77
    texts = ["a", "a much longer prompt about a harvested wheat field next to a village " * 2]
    tokens = lm.text.tokenizer(texts)[0]
    with torch.inference_mode():
        full = torch.nn.functional.normalize(tiny_torch.text.module.model.encode_text(torch.from_numpy(tokens)), dim=-1)
    np.testing.assert_allclose(lm.text.encode_texts(texts), full.numpy(), atol=2e-5)


def test_auto_export_into_cache_and_reuse(tiny_checkpoint, tiny_torch, senclip_home):
    fb = Recorder()
    lm = load_model(checkpoint=tiny_checkpoint, backend="onnx", feedback=fb)
    from senclip.models.onnx_export import FORMAT_VERSION

    expected = senclip_home / "onnx" / f"checkpoint-tiny_vit.ckpt-{sha256_file(tiny_checkpoint)[:8]}-v{FORMAT_VERSION}"
    assert default_export_dir(lm.model_id, lm.checksum) == expected and (expected / "image.onnx").is_file()
    assert any("exporting it once" in t for t in fb.infos)
    fb2 = Recorder()
    again = load_model(checkpoint=tiny_checkpoint, backend="onnx", feedback=fb2)
    assert not any("export" in t and "once" in t for t in fb2.infos)
    chips = _chips(4, 64, 64)
    np.testing.assert_allclose(again.image.encode_chips(chips), tiny_torch.image.encode_chips(chips), atol=2e-5)
    q = load_model(checkpoint=tiny_checkpoint, backend="onnx", int8=True)
    assert (expected.parent / (expected.name + "-int8") / "image.onnx").is_file()
    assert q.image.meta["int8"] == "true"
    cos = (q.image.encode_chips(chips) * tiny_torch.image.encode_chips(chips)).sum(1)
    assert cos.min() >= 0.999


def test_export_for_another_model_is_refused(tiny_export, tiny_rn_checkpoint):
    with pytest.raises(InputError, match="not of checkpoint:tiny_rn.ckpt"):
        load_model(checkpoint=tiny_rn_checkpoint, onnx_dir=tiny_export, backend="onnx")


BLOCKED = textwrap.dedent("""
    import json, sys
    import numpy as np
    BLOCK = ("torch", "open_clip", "torchvision")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCK:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Block())
    from senclip.models.loading import load_model
    ckpt, other = sys.argv[1], sys.argv[2]
    lm = load_model(checkpoint=ckpt, backend="onnx")
    chips = np.load(sys.argv[3])
    out = {"image": lm.image.encode_chips(chips).tolist(), "text": lm.text.encode_texts(["Forest", "Fluss"]).tolist(),
           "record": lm.record()}
    rn = load_model(checkpoint=other, backend="onnx")  # no export yet: built without torch
    out["rn"] = {"image": rn.image.encode_chips(chips).tolist(), "exporter": rn.image.meta["exporter"]}
    out["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCK)
    print(json.dumps(out))
""")


def test_onnx_backend_runs_without_torch(tiny_export, tiny_torch, tiny_checkpoint, tiny_rn_checkpoint,
                                         senclip_home, tmp_path):
    shutil.copytree(tiny_export, default_export_dir(tiny_torch.model_id, tiny_torch.checksum))
    chips = _chips(3, 64, 64)
    np.save(tmp_path / "chips.npy", chips)
    (tmp_path / "run.py").write_text(BLOCKED)
    proc = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tiny_checkpoint), str(tiny_rn_checkpoint),
                           str(tmp_path / "chips.npy")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["loaded"] == []
    np.testing.assert_allclose(out["image"], tiny_torch.image.encode_chips(chips), atol=2e-5)
    np.testing.assert_allclose(out["text"], tiny_torch.text.encode_texts(["Forest", "Fluss"]), atol=2e-5)
    assert out["record"] == tiny_torch.record()
    rn_torch = load_model(checkpoint=tiny_rn_checkpoint, device="cpu").image.encode_chips(chips)
    assert "torch" not in out["rn"]["exporter"]  # the torch-free graph builder made it
    assert (np.asarray(out["rn"]["image"]) * rn_torch).sum(1).min() >= 0.99999


def test_cli(tiny_checkpoint, tmp_path, capsys):
    from click.testing import CliRunner

    from senclip.cli.models import models

    runner = CliRunner()
    res = runner.invoke(models, ["export-onnx", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "x" / "image.onnx").is_file() and (tmp_path / "x" / "text.onnx").is_file()
    res = runner.invoke(models, ["list"])
    assert res.exit_code == 0 and "senclip-vitb32-avgpool" in res.output and "cached" in res.output
    assert "untrained-smoke" in res.output
    res = runner.invoke(models, ["download", "senclip-vitb32-avgpool", "--offline"])
    assert isinstance(res.exception, WeightsNotAvailableError)
    res = runner.invoke(models, ["export-onnx"])
    assert isinstance(res.exception, InputError)
    from senclip.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["models", "download", "senclip-vitb32-avgpool", "--offline"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.count("\n") == 0 and "SenCLIP_AvgPool_ViTB32.ckpt" in err


def test_no_export_and_no_weights_offline(senclip_home):
    with pytest.raises(WeightsNotAvailableError):
        load_model("senclip-vitb32-avgpool", backend="onnx", offline=True)


# -- the release format, full size -----------------------------------------------------------

@pytest.fixture(scope="module")
def vitb32(tmp_path_factory):
    """A randomly initialised full ViT-B/32 saved exactly like the SenCLIP release files."""
    torch.manual_seed(123)
    model = open_clip.create_model("ViT-B-32-quickgelu")
    path = save_openai_state_dict(model, tmp_path_factory.mktemp("release") / "SenCLIP_AvgPool_ViTB32.ckpt")
    del model
    return path


def test_release_format_vitb32_torch_vs_onnx(vitb32, tmp_path):
    lm = load_model(checkpoint=vitb32, device="cpu")
    assert lm.arch == "ViT-B-32-quickgelu" and lm.embed_dim == 512 and lm.preprocess.size == 224
    chips = _chips(64, 64, 64, seed=7)
    prompts = ["Forest", "Sea or Lake", "Annual Crop Land", "Residential Buildings", "Highway or Road"]
    ref = np.concatenate([lm.image.encode_chips(chips[i:i + 32]) for i in (0, 32)])
    ref_text = lm.text.encode_texts(prompts)
    out = export_onnx(lm.image.module.model, tmp_path / "vitb32", preprocess=lm.preprocess, model_id=lm.model_id,
                      arch=lm.arch, checksum=lm.checksum)
    del lm
    ox = load_model(onnx_dir=out, backend="onnx", device="cpu")
    got = np.concatenate([ox.image.encode_chips(chips[i:i + 32]) for i in (0, 32)])
    assert (got * ref).sum(1).min() > 0.9999
    got_text = ox.text.encode_texts(prompts)
    assert (got_text * ref_text).sum(1).min() > 0.9999
    same = (np.argmax(ref @ ref_text.T, 1) == np.argmax(got @ got_text.T, 1)).mean()
    assert same >= 0.99
    shutil.copy(out / "image.onnx", tmp_path / "image.onnx")
    _quantize(tmp_path / "image.onnx")  # the exporter's own int8 step
    from senclip.models.encoders.onnx_encoder import OnnxImageEncoder

    q = OnnxImageEncoder(tmp_path / "image.onnx", device="cpu")
    q8 = np.concatenate([q.encode_chips(chips[i:i + 32]) for i in (0, 32)])
    assert (q8 * got).sum(1).min() >= 0.999
