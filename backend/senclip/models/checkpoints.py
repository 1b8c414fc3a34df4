"""Reading, recognising and writing CLIP checkpoints (the SenCLIP release format).

SenCLIP ships a plain ``state_dict`` of the whole OpenAI-CLIP model despite the ``.ckpt``
suffix, so the architecture is not stored anywhere: it is read back from tensor shapes, exactly
as open_clip does for OpenAI's own files (:func:`open_clip.model.build_model_from_openai_state_dict`).
Reading is torch-free (:func:`read_arrays`: numpy arrays, through the restricted unpickler of
:mod:`senclip.models.torchsave` or safetensors), and so is naming the architecture; the torch
side (:func:`read_state_dict`, :func:`build_clip`, :func:`save_openai_state_dict`) converts
those arrays and needs torch (and open_clip for :func:`build_clip`). A checkpoint is data, never code.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import struct
import zipfile
from pathlib import Path

from senclip.core.errors import CheckpointError, ForeignLayoutError
from senclip.core.outputs import Staged

EXPECTED_KEYS = "visual.*, transformer.resblocks.*, token_embedding.weight, positional_embedding, " \
    "ln_final.*, text_projection"
_OPENAI_REQUIRED = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "text_projection")
_WRAPPERS = ("state_dict", "model")
_PREFIXES = ("module.", "model.")
_OPENAI_EXTRA = ("input_resolution", "context_length", "vocab_size")  # present in OpenAI's JIT archives


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces so a 600 MB checkpoint never sits in RAM twice."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _damaged(path: Path, why: object) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is damaged or truncated ({why}); delete it and download it again "
        "(senclip models download ID), or check that the file was copied completely"
    )


def read_arrays(path: str | Path) -> dict:
    """Load a checkpoint file as a flat ``{name: numpy array}`` dict, without torch.

    Accepts safetensors and ``torch.save`` files (zip or legacy), read by the restricted unpickler
    of :mod:`senclip.models.torchsave`; unwraps Lightning-style ``{"state_dict": ...}`` /
    ``{"model": ...}`` containers and ``module.`` / ``model.`` prefixes. bfloat16 becomes float32.

    Raises:
        CheckpointError: missing, truncated, corrupt, holding code or objects, or not a dict of tensors.
    """
    from senclip.models.torchsave import UnsafeCheckpoint, UnsupportedTensor

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file; check --checkpoint")
    try:
        obj = _load_any(path)
    except UnsafeCheckpoint as e:
        raise CheckpointError(
            f"checkpoint {path} holds {e} besides tensors and cannot be loaded safely: it was refused "
            "without running anything (a checkpoint is data, never code); save model.state_dict() instead"
        ) from None
    except UnsupportedTensor as e:
        raise CheckpointError(f"checkpoint {path} holds tensors stored as {e}, which senclip does not read; "
                              "save the weights as float32, float16 or bfloat16 tensors") from None
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, AttributeError, struct.error, UnicodeDecodeError) as e:
        raise _damaged(path, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    except Exception as e:  # safetensors raises its own SafetensorError
        raise _damaged(path, f"{type(e).__name__}: {e}") from None
    return unwrap_state_dict(obj, path)


def _load_any(path: Path):
    from senclip.models import torchsave

    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return load_file(str(path))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return torchsave.load_zip(zf)
    return torchsave.load_legacy(path.read_bytes())


def read_state_dict(path: str | Path) -> dict:
    """:func:`read_arrays` as torch tensors (the torch backend and training): one reader for both."""
    import torch

    return {k: torch.from_numpy(v) for k, v in read_arrays(path).items()}


def unwrap_state_dict(obj, path: str | Path = "<checkpoint>") -> dict:
    """Peel training-framework wrappers off a loaded object until a flat array dict remains
    (numpy arrays, or torch tensors when given a state_dict already in memory)."""
    for _ in range(3):
        if isinstance(obj, dict):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is not None and not any(_is_array(v) and k in _OPENAI_REQUIRED for k, v in obj.items()):
                obj = inner
                continue
        break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"checkpoint {path} holds {type(obj).__name__}, not a state_dict of tensors")
    sd = {k: v for k, v in obj.items() if _is_array(v)}
    if not sd:
        raise CheckpointError(f"checkpoint {path} contains no tensors")
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def _is_array(v) -> bool:
    """A tensor-like value: numpy (from the file readers) or torch (a state_dict in memory)."""
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (str, bytes))


def _is_openai_layout(sd: dict) -> bool:
    has_visual = "visual.proj" in sd or "visual.attnpool.positional_embedding" in sd
    return has_visual and all(k in sd for k in _OPENAI_REQUIRED) and any(
        k.startswith("transformer.resblocks.") for k in sd)


def _signature(sd: dict) -> dict:
    """The hyper-parameters open_clip's builder will derive, in open_clip config terms."""
    vit = "visual.proj" in sd
    if vit:
        patch = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        vision = {"layers": len([k for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")]),
                  "width": sd["visual.conv1.weight"].shape[0], "patch_size": patch, "image_size": patch * grid}
    else:
        layers = [len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}.")}) for b in (1, 2, 3, 4)]
        out = round((sd["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        vision = {"layers": layers, "width": sd["visual.layer1.0.conv1.weight"].shape[0], "patch_size": None,
                  "image_size": out * 32}
    width = sd["ln_final.weight"].shape[0]
    text = {"context_length": sd["positional_embedding"].shape[0], "vocab_size": sd["token_embedding.weight"].shape[0],
            "width": width, "heads": width // 64,
            "layers": len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})}
    return {"embed_dim": sd["text_projection"].shape[1], "vision_cfg": vision, "text_cfg": text}


def input_size(sd: dict) -> int:
    """The image side (px) an OpenAI-layout state_dict was trained at, from its shapes."""
    return int(_signature(sd)["vision_cfg"]["image_size"])


def _known_arch(sig: dict) -> str | None:
    """The open_clip name of ``sig`` from :data:`senclip.models.archs.OPENAI_ARCHS` (no open_clip import)."""
    from senclip.models.archs import OPENAI_ARCHS, signature

    return next((name for name in OPENAI_ARCHS if signature(name) == sig), None)


def infer_arch(sd: dict) -> str:
    """Name the architecture a state_dict was saved from.

    Returns the open_clip model name when the shapes match one (``ViT-B-32-quickgelu`` for
    SenCLIP ViT-B/32), else a descriptive ``openai-vit:...`` / ``openai-rn:...`` tag that
    :func:`build_clip` rebuilds from the shapes alone.

    Raises:
        CheckpointError: the keys fit no OpenAI-CLIP layout (then pass ``arch=`` / ``--arch``).
    """
    if not _is_openai_layout(sd):
        sample = ", ".join(sorted(sd)[:6])
        raise ForeignLayoutError(
            f"checkpoint keys fit no known architecture: expected {EXPECTED_KEYS} (the OpenAI-CLIP / "
            f"SenCLIP layout) but found {sample}{', ...' if len(sd) > 6 else ''}; for another open_clip "
            "architecture pass --arch NAME (e.g. --arch ViT-B-16)"
        )
    try:
        sig = _signature(sd)
    except (KeyError, IndexError) as e:
        raise CheckpointError(f"checkpoint is incomplete: tensor {e} is missing or malformed") from None
    name = _known_arch(sig)
    if name:
        return name
    v, t = sig["vision_cfg"], sig["text_cfg"]
    kind = "vit" if v["patch_size"] else "rn"
    layers = "x".join(map(str, v["layers"])) if kind == "rn" else v["layers"]
    return (f"openai-{kind}:w{v['width']}-l{layers}-p{v['patch_size'] or 0}-i{v['image_size']}"
            f"-e{sig['embed_dim']}-t{t['width']}x{t['layers']}")


def build_clip(sd: dict | None, arch: str | None = None, *, seed: int = 0):
    """An open_clip CLIP model in eval mode, float32, on the CPU.

    ``sd=None`` gives random weights (``torch.manual_seed(seed)``) of the open_clip ``arch``.
    With an open_clip name, the weights are loaded into ``open_clip.create_model(arch)``;
    otherwise (``None`` or an ``openai-*`` tag) the model is built from the shapes by open_clip's
    own OpenAI builder. Raises :class:`CheckpointError` when the weights do not fit.
    """
    import open_clip
    import torch

    if sd is None:
        if arch is None or arch not in open_clip.list_models():
            raise CheckpointError(f"random initialisation needs an open_clip architecture name, got {arch!r}")
        torch.manual_seed(seed)
        return _create(arch).eval()
    sd = {k: v for k, v in sd.items() if k not in _OPENAI_EXTRA}
    if arch is not None and arch in open_clip.list_models():
        model = _create(arch)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            first = "; ".join(str(e).splitlines()[1:3]).strip()
            raise CheckpointError(
                f"checkpoint does not fit architecture {arch!r} ({first[:300]}); "
                "check --arch, or leave it out to infer it from an OpenAI/SenCLIP-format file"
            ) from None
        return model.eval()
    if arch is not None and not arch.startswith("openai-"):
        raise CheckpointError(f"unknown architecture {arch!r}; use an open_clip model name "
                              f"(e.g. ViT-B-32-quickgelu, RN50-quickgelu)")
    infer_arch(sd)  # raises the explanatory error for foreign layouts
    from open_clip.model import build_model_from_openai_state_dict

    try:
        # The builder casts to fp16 (OpenAI's files are half precision); reload the original
        # tensors afterwards so fp32 fine-tuned weights keep every bit.
        model = build_model_from_openai_state_dict(dict(sd)).float()
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    except (RuntimeError, KeyError, AssertionError, IndexError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint has the OpenAI-CLIP layout but inconsistent tensors ({msg[:300]}); "
                              "the file may be damaged: download it again") from None
    return model.eval()


class _NoRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def _create(arch: str):
    """``open_clip.create_model`` without its "initialized randomly" warning: we either load
    weights right after, or say so ourselves (``untrained``)."""
    import open_clip

    quiet = _NoRandomInitWarning()
    logging.getLogger().addFilter(quiet)
    try:
        return open_clip.create_model(arch, pretrained=None).float()
    finally:
        logging.getLogger().removeFilter(quiet)


def save_openai_state_dict(model, path: str | Path) -> Path:
    """Write ``model``'s whole state_dict with ``torch.save``: the SenCLIP release format.

    Written to a temporary file in the target folder and renamed, so a crash never leaves a
    half-written checkpoint under the final name.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with Staged(path) as tmp:
        torch.save(sd, tmp)
    return path
