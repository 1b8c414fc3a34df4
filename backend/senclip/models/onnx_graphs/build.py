"""The torch-free ONNX export: a numpy state_dict in OpenAI-CLIP layout → ``image.onnx`` + ``text.onnx``.

Same folder, file names, metadata and staging as torch's export (both go through
:func:`senclip.models.onnx_export.write_export`), so ONNX Runtime, OpenVINO and the int8 quantisers
read either alike; tests/backend/test_onnx_graphs.py checks the two agree (cosine >= 0.99999).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from senclip.core.errors import CheckpointError
from senclip.core.feedback import Feedback
from senclip.models.registry import Preprocess

EXPORTER = "senclip.models.onnx_graphs"
REQUIRED = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "text_projection",
            "transformer.resblocks.0.attn.in_proj_weight")


def activation_of(arch: str | None) -> str:
    """The MLP activation: QuickGELU for OpenAI's weights (every registry model is a ``-quickgelu``
    architecture, and ``openai-*`` shape tags are built by open_clip's OpenAI builder, which uses it),
    exact GELU for the other open_clip names (``ViT-B-32``, ``RN50``), as ``open_clip.create_model``."""
    if arch is None or arch.startswith("openai-") or arch.endswith("-quickgelu"):
        return "quickgelu"
    return "gelu"


def check_layout(sd: dict) -> None:
    """Refuse, with what to do, a state_dict that is not an OpenAI-CLIP ViT or ModifiedResNet."""
    missing = [k for k in REQUIRED if k not in sd]
    if missing or not ("visual.proj" in sd or "visual.attnpool.positional_embedding" in sd):
        raise CheckpointError(
            f"the torch-free ONNX builder reads OpenAI-CLIP layouts (ViT or ModifiedResNet image tower) but this "
            f"state_dict lacks {', '.join(missing) or 'visual.proj / visual.attnpool.*'}; install torch and "
            "open_clip to export it (senclip models export-onnx)")


def build_export(state_dict: dict, out_dir: str | Path, *, preprocess: Preprocess, model_id: str, arch: str,
                 checksum: str, untrained: bool = False, int8: bool = False, overwrite: bool = True,
                 feedback: Feedback | None = None) -> Path:
    """Write ``image.onnx`` and ``text.onnx`` for the CLIP whose weights are ``state_dict`` (name →
    numpy array, any float dtype) into ``out_dir``, as :func:`senclip.models.onnx_export.export_onnx`
    does for a torch model; ``arch`` is recorded and picks the activation (:func:`activation_of`).

    Raises:
        CheckpointError: the weights are not an OpenAI-CLIP layout, or do not fit ``preprocess.size``.
        OutputError: ``out_dir`` exists and ``overwrite`` is false, or cannot be written.
    """
    import onnx

    from senclip.models.onnx_export import IMAGE_FILE, TEXT_FILE, export_metadata, write_export
    from senclip.models.onnx_graphs.image import image_graph
    from senclip.models.onnx_graphs.text import text_graph

    feedback = feedback or Feedback()
    sd = {k: np.asarray(v) for k, v in state_dict.items()}
    check_layout(sd)
    act = activation_of(arch)
    meta = export_metadata(preprocess, model_id=model_id, arch=arch, checksum=checksum, untrained=untrained,
                           embed_dim=sd["text_projection"].shape[1], context_length=sd["positional_embedding"].shape[0],
                           exporter=f"{EXPORTER} (onnx {onnx.__version__})")

    def write(tmp: Path) -> dict:
        onnx.save(image_graph(sd, preprocess, act), str(tmp / IMAGE_FILE))
        feedback.check()
        onnx.save(text_graph(sd, act), str(tmp / TEXT_FILE))
        return {"senclip.text_trim": "true"}  # a causal tower pooled at the end token: always trimmable

    return write_export(out_dir, meta, write, int8=int8, overwrite=overwrite, feedback=feedback)
