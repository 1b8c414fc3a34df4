"""The torch-free ONNX builder (senclip.models.onnx_graphs) against torch: the same embeddings
(cosine >= 0.99999 per chip and per prompt, tricky prompts included) for every architecture, the
same metadata, and the same downstream readers (ONNX Runtime, OpenVINO, both int8 quantisers).

Weights are random, but moved off open_clip's initialisation first: that leaves BatchNorm at mean 0 /
variance 1 and every bn3 scale at zero, where a wrong BatchNorm fold or residual would not show.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import onnx
import onnxruntime  # noqa: F401 - a missing dependency must fail here, not skip
import open_clip
import openvino  # noqa: F401
import torch

from senclip.core.errors import CheckpointError
from senclip.models.checkpoints import build_clip, infer_arch, read_state_dict
from senclip.models.encoders.onnx_encoder import OnnxImageEncoder, OnnxTextEncoder, read_metadata
from senclip.models.onnx_export import export_onnx
from senclip.models.onnx_graphs.build import activation_of, build_export
from senclip.models.registry import SENCLIP_MEAN, SENCLIP_STD, Preprocess, get_model_spec, list_models

MIN_COSINE = 0.99999
PROMPTS = [
    "", "forest", "a satellite photo of " + "a harvested wheat field beside a small village and a river " * 8,
    "🌲🌊 forêt de pins — 森林, Straße mit Bäumen", "!!! ??? ... ,,, ;; -- ((", "water water water water water water",
    "fish &amp; chips", "   spaced    out   ", "Urban Fabric / Industrial areas (CORINE 1.2.1)",
]


def chips_for(size: int, few: bool = False) -> list[np.ndarray]:
    """Chips of the model's size, smaller and larger, non-square, and odd (``few``: one of each kind
    fewer); per-chip colour and texture so that a random network still tells them apart."""
    rng = np.random.RandomState(7)
    shapes = [(2, size, size), (3, 37, 81), (1, 3 * size // 2 + 1, size - 7), (2, size + 32, 2 * size)]
    shapes = shapes[1:3] if few else shapes
    out = []
    for n, h, w in shapes:
        base = rng.randint(0, 256, (n, 3, 1, 1))
        out.append(np.clip(base + rng.randint(-60, 61, (n, 3, h, w)), 0, 255).astype(np.uint8))
    return out


def perturbed(sd: dict, seed: int = 1) -> dict[str, np.ndarray]:
    """The state_dict as numpy, every float tensor moved: BatchNorm statistics and scales drawn away
    from 0/1, all other weights shifted by noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in sd.items():
        a = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        if a.dtype.kind == "f":
            if k.endswith("running_var"):
                a = rng.uniform(0.5, 2.0, a.shape)
            elif k.endswith("running_mean"):
                a = rng.standard_normal(a.shape) * 0.1
            elif k.endswith(".weight") and (".bn" in k or "downsample.1" in k):
                a = rng.uniform(0.5, 1.5, a.shape)
            else:
                a = a + rng.standard_normal(a.shape, dtype=np.float32) * np.float32(0.02)
        out[k] = np.asarray(a, dtype=v.numpy().dtype if isinstance(v, torch.Tensor) else a.dtype)
    return out


def torch_model(sd: dict[str, np.ndarray], arch: str, model=None):
    """``model`` (or a new one of ``arch``) holding the weights ``sd``."""
    weights = {k: torch.from_numpy(v) for k, v in sd.items()}
    if model is None:
        return build_clip(weights, arch)
    model.load_state_dict(weights)
    return model


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def encode_texts(encoder) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the long prompt's truncation warning
        return encoder.encode_texts(PROMPTS)


def assert_agree(mine, reference, size: int, few: bool = False) -> None:
    """``mine`` (an ONNX export folder) against ``reference`` ((image, text) encoders) per chip, per prompt."""
    image = OnnxImageEncoder(mine / "image.onnx", "cpu")
    for chips in chips_for(size, few):
        cos = cosines(image.encode_chips(chips), reference[0].encode_chips(chips))
        assert cos.min() >= MIN_COSINE, (chips.shape, cos)
    text = OnnxTextEncoder(mine / "text.onnx", "cpu")
    assert text.trim
    got = encode_texts(text)
    cos = cosines(got, encode_texts(reference[1]))
    assert cos.min() >= MIN_COSINE, dict(zip(PROMPTS, cos))
    tokens, _ = text.tokenizer(PROMPTS)  # untrimmed: the whole context also runs, to the same result
    assert cosines(text.session.run(None, {"tokens": tokens})[0], got).min() >= MIN_COSINE


def export_pair(sd: dict[str, np.ndarray], arch: str, preprocess: Preprocess, tmp, torch_export: bool = True,
                model=None):
    """(torch model, its torch export or None, the torch-free export) of the same weights."""
    model = torch_model(sd, arch, model)
    ident = dict(preprocess=preprocess, model_id=f"test:{arch}", arch=arch, checksum="0" * 64)
    ref = export_onnx(model, tmp / "torch", **ident) if torch_export else None
    return model, ref, build_export(sd, tmp / "mine", **ident)


def onnx_encoders(folder):
    return OnnxImageEncoder(folder / "image.onnx", "cpu"), OnnxTextEncoder(folder / "text.onnx", "cpu")


def torch_encoders(model, preprocess):
    from senclip.models.encoders.torch_encoder import TorchImageEncoder, TorchTextEncoder

    return TorchImageEncoder(model, preprocess, "cpu"), TorchTextEncoder(model, "cpu")


@pytest.fixture(scope="module", params=["vit", "rn"])
def tiny_pair(request, tiny_checkpoint, tiny_rn_checkpoint, tmp_path_factory):
    """Tiny models from the release-format checkpoints (conftest), both exports of each."""
    sd = perturbed(read_state_dict(tiny_checkpoint if request.param == "vit" else tiny_rn_checkpoint))
    arch = infer_arch({k: torch.from_numpy(v) for k, v in sd.items()})
    pre = Preprocess(SENCLIP_MEAN, SENCLIP_STD, 64)
    model, ref, mine = export_pair(sd, arch, pre, tmp_path_factory.mktemp(f"tiny-{request.param}"))
    return {"kind": request.param, "sd": sd, "arch": arch, "pre": pre, "model": model, "torch": ref, "mine": mine}


def test_tiny_graphs_agree_with_the_torch_export(tiny_pair):
    assert_agree(tiny_pair["mine"], onnx_encoders(tiny_pair["torch"]), 64)


def test_metadata_is_the_torch_exports_but_for_the_exporter(tiny_pair):
    for name in ("image.onnx", "text.onnx"):
        mine, ref = read_metadata(tiny_pair["mine"] / name), read_metadata(tiny_pair["torch"] / name)
        assert "torch_version" not in mine and "open_clip_version" not in mine
        assert mine.pop("exporter") == f"senclip.models.onnx_graphs (onnx {onnx.__version__})"
        for key in ("exporter", "torch_version", "open_clip_version", "export_seconds"):
            ref.pop(key)
        mine.pop("export_seconds")
        assert mine == ref and json.loads(mine["text_trim"]) is True and mine["role"] == name.split(".")[0]
    proto = onnx.load(str(tiny_pair["mine"] / "image.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert {i.name: i.type.tensor_type.elem_type for i in proto.graph.input} == {"chips": onnx.TensorProto.UINT8}


def test_openvino_runs_the_torch_free_graphs(tiny_pair):
    """The image encoder on OpenVINO's CPU plugin (fp32) agrees; the text graph compiles and agrees too."""
    import openvino as ov

    from senclip.models.encoders.openvino_encoder import OpenVinoImageEncoder

    ort_image, ort_text = onnx_encoders(tiny_pair["mine"])
    ov_image = OpenVinoImageEncoder(tiny_pair["mine"] / "image.onnx", "fp32")
    assert ov_image.meta["model_id"] == ort_image.meta["model_id"]
    for chips in chips_for(64):
        assert cosines(ov_image.encode_chips(chips), ort_image.encode_chips(chips)).min() >= MIN_COSINE
    tokens = ort_text.tokenizer(PROMPTS)[0][:, :30]
    text = ov.Core().compile_model(str(tiny_pair["mine"] / "text.onnx"), "CPU")
    ov_out = text({"tokens": tokens})[text.output(0)]
    assert cosines(ov_out, ort_text.session.run(None, {"tokens": tokens})[0]).min() >= MIN_COSINE


def test_int8_quantisers_take_the_torch_free_export(tiny_pair, tmp_path):
    """Dynamic int8 (ORT) and static QDQ int8 (OpenVINO's) are made from it as from the torch export:
    the same linear layers found, metadata kept, embeddings close to fp32."""
    from senclip.models.onnx_export import quantize_export
    from senclip.models.static_int8 import static_export, weight_matmuls

    mine, ref = tiny_pair["mine"] / "image.onnx", tiny_pair["torch"] / "image.onnx"
    assert len(weight_matmuls(mine)) == len(weight_matmuls(ref)) > 0
    fp32 = OnnxImageEncoder(mine, "cpu")
    for label, make in (("int8", quantize_export), ("qdq", static_export)):
        out = make(tiny_pair["mine"], tmp_path / label)
        enc = OnnxImageEncoder(out / "image.onnx", "cpu")
        assert enc.precision == "int8" and enc.meta["model_id"] == fp32.meta["model_id"]
        chips = chips_for(64)[0]
        assert cosines(enc.encode_chips(chips), fp32.encode_chips(chips)).min() >= 0.99, label


@pytest.mark.parametrize("arch", ["ViT-B-32-quickgelu", "RN50-quickgelu"])
def test_full_size_graphs_agree_with_torch(arch, tmp_path):
    """ViT-B/32 and RN50 at full size against the torch encoders that torch's export traces (that
    export is ~1 min each here, so its own comparison is the slow test below)."""
    pre = Preprocess(SENCLIP_MEAN, SENCLIP_STD, 224)
    model = build_clip(None, arch)
    _, _, mine = export_pair(perturbed(model.state_dict()), arch, pre, tmp_path, torch_export=False, model=model)
    assert_agree(mine, torch_encoders(model, pre), 224, few=True)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ViT-B-32-quickgelu", "RN50-quickgelu"])
def test_full_size_graphs_agree_with_the_torch_export(arch, tmp_path):
    pre = Preprocess(SENCLIP_MEAN, SENCLIP_STD, 224)
    model = build_clip(None, arch)
    _, ref, mine = export_pair(perturbed(model.state_dict()), arch, pre, tmp_path, model=model)
    assert_agree(mine, onnx_encoders(ref), 224)


def test_gelu_towers_agree_with_torch(tmp_path):
    """An open_clip architecture without QuickGELU gets exact GELU (checked against a torch model)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    from tiny_models import TEXT

    torch.manual_seed(3)
    model = CLIP(32, CLIPVisionCfg(layers=2, width=128, patch_size=16, image_size=64), CLIPTextCfg(**TEXT),
                 quick_gelu=False).eval()
    sd = perturbed(model.state_dict())
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    pre = Preprocess(size=64)
    mine = build_export(sd, tmp_path / "mine", preprocess=pre, model_id="gelu", arch="ViT-tiny", checksum="0" * 64)
    assert_agree(mine, torch_encoders(model, pre), 64)


def test_activation_follows_open_clip_configs():
    """Every registry architecture, and open_clip's plain names, get the activation open_clip builds."""
    names = {get_model_spec(m).arch for m in list_models()} | {"ViT-B-32", "RN50", "ViT-B-16-quickgelu"}
    for arch in names:
        quick = bool(open_clip.get_model_config(arch).get("quick_gelu", False))
        assert activation_of(arch) == ("quickgelu" if quick else "gelu"), arch
    assert activation_of("openai-vit:w64-l1-p32-i64-e32-t64x1") == "quickgelu"  # open_clip's OpenAI builder


def test_foreign_layouts_and_wrong_sizes_are_refused(tiny_pair, tmp_path):
    sd = dict(tiny_pair["sd"])
    ident = dict(model_id="x", arch=tiny_pair["arch"], checksum="0" * 64)
    with pytest.raises(CheckpointError, match="takes 64 px chips but the preprocessing recipe resizes to 224"):
        build_export(sd, tmp_path / "a", preprocess=Preprocess(), **ident)
    del sd["text_projection"]
    with pytest.raises(CheckpointError, match="lacks text_projection.*export-onnx"):
        build_export(sd, tmp_path / "b", preprocess=tiny_pair["pre"], **ident)
    assert not any(tmp_path.iterdir())  # nothing staged is left behind


def test_half_precision_weights_build_fp32_graphs(tiny_pair, tmp_path):
    """OpenAI's own files are fp16: the graphs are fp32 all the same, equal to those of the weights
    cast to fp32 first."""
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tiny_pair["sd"].items()}
    ident = dict(preprocess=tiny_pair["pre"], model_id="half", arch=tiny_pair["arch"], checksum="0" * 64)
    a = onnx_encoders(build_export(half, tmp_path / "half", **ident))
    b = onnx_encoders(build_export({k: v.astype(np.float32) for k, v in half.items()}, tmp_path / "cast", **ident))
    chips = chips_for(64)[1]
    np.testing.assert_array_equal(a[0].encode_chips(chips), b[0].encode_chips(chips))
    np.testing.assert_array_equal(encode_texts(a[1]), encode_texts(b[1]))


NO_TORCH = """
import json, sys
for name in ("torch", "open_clip", "torchvision"):
    sys.modules[name] = None  # any import of them now raises ImportError
import numpy as np
from senclip.models.onnx_graphs.build import build_export
from senclip.models.registry import Preprocess
sd = dict(np.load(sys.argv[1]))
build_export(sd, sys.argv[2], preprocess=Preprocess.from_dict(json.loads(sys.argv[4])), model_id="no-torch",
             arch=sys.argv[3], checksum="0" * 64)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "open_clip", "torchvision") and sys.modules[m]))
"""


def test_builds_without_torch(tiny_pair, tmp_path):
    """The builder's whole import chain runs with torch and open_clip unimportable, and its graphs are
    those built here."""
    import subprocess
    import sys

    np.savez(tmp_path / "sd.npz", **tiny_pair["sd"])
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(tmp_path / "sd.npz"), str(tmp_path / "out"),
                           tiny_pair["arch"], json.dumps(tiny_pair["pre"].to_dict())], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    chips = chips_for(64)[0]
    got = OnnxImageEncoder(tmp_path / "out" / "image.onnx", "cpu").encode_chips(chips)
    assert cosines(got, OnnxImageEncoder(tiny_pair["mine"] / "image.onnx", "cpu").encode_chips(chips)).min() >= MIN_COSINE
