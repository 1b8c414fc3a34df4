"""Export a CLIP model's chip and text encoders to ONNX (image.onnx, text.onnx in one folder).

The chip graph takes raw uint8 chips of any batch size and any height/width and resizes inside
the graph, so the ONNX backend needs no preprocessing code and cannot drift from the torch one.
Everything needed to use the files without the checkpoint (preprocessing, embedding size,
source checksum, model id, exporter) goes into each file's ``metadata_props``.

Exporter: ``torch.onnx.export(dynamo=True)``, torch's default since 2.9 (the TorchScript one is
deprecated). Max abs difference to eager torch measured here: ~2e-7 (tiny models and ViT-B/32).
Without torch, :mod:`senclip.models.onnx_graphs` builds the same two graphs from the state_dict with the
``onnx`` package; both go through :func:`write_export`, so folder, staging and metadata are one code.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from senclip.core.errors import OutputError
from senclip.core.outputs import ONNX_IMAGE_FILE, ONNX_TEXT_FILE, Staged, check_replaceable
from senclip.core.feedback import Feedback
from senclip.models.registry import Preprocess

FORMAT_VERSION = "3"  # bump when the exported graph changes: cached exports are then re-made
IMAGE_FILE, TEXT_FILE = ONNX_IMAGE_FILE, ONNX_TEXT_FILE
# Dynamic int8 weights. On AVX2 without VNNI, ORT's u8*s8 kernel sums pairs in int16 (vpmaddubsw),
# which saturates with full-range int8 weights: cosine to fp32 fell to ~0.994 on ViT-B/32 there.
# 7-bit weights (reduce_range) cannot saturate; they measured cosine >= 0.9995 (QUInt8 also works
# but runs the slower u8*u8 kernel).
INT8_SETTINGS = {"weight_type": "QInt8", "reduce_range": True, "per_channel": False}


def onnx_home() -> Path:
    from senclip.models.weights import senclip_home

    return senclip_home() / "onnx"


def _safe(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-")


def export_dir_name(model_id: str, checksum: str, int8: bool = False) -> str:
    """``<model-id>-<sha8>-v<format>[-int8]``, file-system safe (``checkpoint:x.ckpt`` →
    ``checkpoint-x.ckpt``). The format version keeps exports of an older graph from being reused."""
    tag = checksum.split(":", 1)[1] if checksum.startswith("untrained:") else checksum[:8]
    return f"{_safe(model_id)}-{tag}-v{FORMAT_VERSION}" + ("-int8" if int8 else "")


def export_dir_pattern(model_id: str, int8: bool = False) -> str:
    """Glob for any cached export of ``model_id`` in the current format, whatever its checksum."""
    return f"{_safe(model_id)}-*-v{FORMAT_VERSION}" + ("-int8" if int8 else "")


def default_export_dir(model_id: str, checksum: str, int8: bool = False) -> Path:
    return onnx_home() / export_dir_name(model_id, checksum, int8)


def export_onnx(model, out_dir: str | Path, *, preprocess: Preprocess, model_id: str, arch: str, checksum: str,
                untrained: bool = False, int8: bool = False, overwrite: bool = True,
                feedback: Feedback | None = None) -> Path:
    """Write ``image.onnx`` and ``text.onnx`` for an open_clip CLIP ``model`` into ``out_dir``, with torch's
    exporter (:mod:`senclip.models.onnx_graphs` builds the same graphs from a state_dict without torch).

    With ``int8``, the image encoder's weights are dynamically quantised (see ``INT8_SETTINGS``);
    the text encoder stays fp32 (it runs once per prompt, and its accuracy matters more).

    Raises:
        OutputError: ``out_dir`` exists and ``overwrite`` is false, or cannot be written.
    """
    import onnx  # noqa: F401 - the exporter's imports first: a missing one fails before anything is staged
    import open_clip
    import torch

    from senclip.models.encoders.torch_encoder import embed_dim_of

    feedback = feedback or Feedback()
    check_target(out_dir, overwrite)
    model = model.float().eval().cpu()
    meta = export_metadata(preprocess, model_id=model_id, arch=arch, checksum=checksum, untrained=untrained,
                           embed_dim=embed_dim_of(model), context_length=int(model.context_length),
                           exporter="torch.onnx.export(dynamo=True)", torch_version=torch.__version__,
                           open_clip_version=open_clip.__version__)

    def write(tmp: Path) -> dict:
        _export_image(model, preprocess, tmp / IMAGE_FILE)
        feedback.check()
        return {"senclip.text_trim": json.dumps(_export_text(model, tmp / TEXT_FILE))}

    return write_export(out_dir, meta, write, int8=int8, overwrite=overwrite, feedback=feedback)


def write_export(out_dir: str | Path, meta: dict, write, *, int8: bool = False, overwrite: bool = True,
                 feedback: Feedback | None = None) -> Path:
    """The frame of every fp32 export (torch's and the torch-free one): ``write(tmp)`` puts
    ``image.onnx`` and ``text.onnx`` into a temporary sibling folder and returns metadata to add to
    ``meta``; then the optional int8 step, the metadata stamped on both files (with their role), and
    the rename to ``out_dir``. An interrupted export so never leaves a folder that
    :func:`senclip.models.loading.load_model` would trust.

    Raises:
        OutputError: ``out_dir`` exists and ``overwrite`` is false, or cannot be written.
    """
    feedback = feedback or Feedback()
    out_dir = Path(out_dir)
    staged = _stage(out_dir, overwrite)
    try:
        t0 = time.perf_counter()
        feedback.info(f"exporting {meta['senclip.model_id']} to ONNX (image and text encoders)")
        meta = {**meta, **write(staged.tmp)}
        meta["senclip.export_seconds"] = f"{time.perf_counter() - t0:.1f}"
        if int8:
            feedback.check()
            _quantize(staged.tmp / IMAGE_FILE)
            meta["senclip.int8"] = json.dumps(True)
            meta["senclip.int8_settings"] = json.dumps(INT8_SETTINGS)
        for name, role in ((IMAGE_FILE, "image"), (TEXT_FILE, "text")):
            _set_metadata(staged.tmp / name, {**meta, "senclip.role": role})
        check_replaceable(out_dir, "onnx")
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    feedback.info(f"ONNX export written to {out_dir} in {time.perf_counter() - t0:.0f} s")
    return out_dir


def check_target(out_dir: str | Path, overwrite: bool) -> None:
    """Refuse ``out_dir`` before any work (model conversion, graph building) when the export may not
    go there: it exists and ``overwrite`` is false, or it holds anything but an export senclip wrote."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputError(f"{out_dir} already exists; remove it or choose another --out")
    check_replaceable(out_dir, "onnx")  # never replace a folder that holds anything but an export


def _stage(out_dir: Path, overwrite: bool) -> Staged:
    """The temporary sibling folder the export is built in, after checking ``out_dir`` may be replaced."""
    check_target(out_dir, overwrite)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return Staged(out_dir, folder=True)
    except OSError as e:
        raise OutputError(f"cannot write the ONNX export to {out_dir}: {e.strerror or e}") from None


def export_metadata(preprocess: Preprocess, *, model_id: str, arch: str, checksum: str, untrained: bool,
                    embed_dim: int, context_length: int, exporter: str, **versions: str) -> dict:
    """What an export needs to be used without its checkpoint (and to be recognised as stale);
    ``versions`` (``torch_version=...``) name the exporter's libraries."""
    from senclip._version import __version__

    return {
        "senclip.format": FORMAT_VERSION, "senclip.model_id": model_id, "senclip.arch": arch,
        "senclip.checksum": checksum, "senclip.untrained": json.dumps(bool(untrained)),
        "senclip.preprocess": json.dumps(preprocess.to_dict()), "senclip.embed_dim": str(int(embed_dim)),
        "senclip.context_length": str(int(context_length)), "senclip.int8": json.dumps(False),
        "senclip.exporter": exporter, **{f"senclip.{k}": v for k, v in versions.items()},
        "senclip.version": __version__,
    }


def _export_image(model, preprocess: Preprocess, path: Path) -> None:
    """The chip encoder (resize and normalise inside), dynamic in batch, height and width."""
    import torch

    from senclip.models.encoders.torch_encoder import ChipEncoder

    chips = torch.randint(0, 256, (2, 3, 40, 48), dtype=torch.uint8)  # distinct sizes: no specialisation
    _export(ChipEncoder(model, preprocess).eval(), chips, path, "chips",
            {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")})


def _export_text(model, path: Path) -> bool:
    """The text encoder, dynamic in batch and, where the tower allows, in sequence length;
    returns whether the sequence axis may be trimmed."""
    import torch

    from senclip.models.encoders.torch_encoder import TextModule

    ctx = int(model.context_length)
    text = TextModule(model, always_prefix=True).eval()
    trim = text.can_trim()  # CLIP's causal text tower: the sequence axis may be cut after the end token
    text.always_prefix = trim
    tokens = torch.zeros((2, 13 if trim else ctx), dtype=torch.int64)  # 13: no size to specialise on
    tokens[:, 0], tokens[:, 1] = 49406, 49407
    dims = {0: torch.export.Dim("batch")}
    if trim:
        dims[1] = torch.export.Dim("sequence", min=2, max=ctx)
    _export(text, tokens, path, "tokens", dims)
    return trim


def _set_metadata(path: Path, meta: dict) -> None:
    """Replace the ``metadata_props`` of the ONNX file at ``path`` with ``meta`` (values as strings)."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=str(v))
    proto.producer_name = "senclip"
    onnx.save(proto, str(path))


def _export(module, example, path: Path, input_name: str, dims: dict) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about opset/version conversion
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=["embeddings"],
                          dynamic_shapes={input_name: dims}, dynamo=True, external_data=False, verbose=False)


def _quantize(path: Path) -> None:
    """The int8 step of :func:`export_onnx`, in place."""
    src = path.with_name("fp32-" + path.name)
    os.replace(path, src)
    _quantize_into(src, path)
    src.unlink()


def _quantize_into(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=getattr(QuantType, INT8_SETTINGS["weight_type"]),
                     reduce_range=INT8_SETTINGS["reduce_range"], per_channel=INT8_SETTINGS["per_channel"])


def quantize_export(fp32_dir: str | Path, out_dir: str | Path, feedback: Feedback | None = None) -> Path:
    """The int8 export made from an fp32 one: the image encoder quantised (``INT8_SETTINGS``), the
    text encoder copied. Needs onnx and onnxruntime, not torch, so a torch-free install can make it."""
    return derived_export(fp32_dir, out_dir, "int8", _quantize_into, INT8_SETTINGS, feedback)


def derived_export(fp32_dir: str | Path, out_dir: str | Path, label: str, quantise, settings: dict,
                   feedback: Feedback | None = None) -> Path:
    """An export made from an fp32 one: its image encoder rewritten by ``quantise(src, dst)`` (the
    metadata kept, plus ``senclip.int8`` and the ``settings``), its text encoder copied. Built in a
    temporary sibling folder and renamed, like :func:`export_onnx`, so a stop leaves nothing half made."""
    import onnx

    feedback = feedback or Feedback()
    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    t0 = time.perf_counter()
    feedback.info(f"quantising the image encoder of {fp32_dir.name} to {label} (once)")
    try:
        staged = Staged(out_dir, folder=True)
    except OSError as e:
        raise OutputError(f"cannot write the {label} export to {out_dir}: {e.strerror or e}") from None
    with staged as tmp:  # renamed to out_dir when the block ends; removed on any error or stop
        shutil.copyfile(fp32_dir / TEXT_FILE, tmp / TEXT_FILE)
        src = fp32_dir / IMAGE_FILE
        meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
        quantise(src, tmp / IMAGE_FILE)
        meta.update({"senclip.int8": json.dumps(True), "senclip.int8_settings": json.dumps(settings)})
        _set_metadata(tmp / IMAGE_FILE, meta)
    feedback.info(f"{label} export written to {out_dir} in {time.perf_counter() - t0:.0f} s")
    return out_dir

