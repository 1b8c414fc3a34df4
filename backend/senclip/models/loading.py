"""One entry point from "which model" to a pair of ready encoders: :func:`load_model`.

A model is a registry id (weights fetched into the cache) or a local checkpoint; it runs on
PyTorch, or on ONNX Runtime from an export that is made once and cached next to the weights
(``$SENCLIP_HOME/onnx/<model-id>-<sha8>-v<format>[-int8]/``). The ONNX path imports neither torch nor
open_clip unless it makes that export with torch (:func:`exporter`); without torch the export is
built from the checkpoint's numpy arrays by :mod:`senclip.models.onnx_graphs`.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from senclip.models.checkpoints import sha256_file
from senclip.models.encoders.base import LoadedModel
from senclip.core.errors import (BackendUnavailableError, CheckpointError, ForeignLayoutError, InputError,
                                 SenclipError)
from senclip.core.feedback import Feedback
from senclip.models.precision import check_precision
from senclip.models.registry import DEFAULT_MODEL, SENCLIP_MEAN, SENCLIP_STD, Preprocess, get_model_spec

UNTRAINED_CHECKSUM = "untrained:seed0"  # torch.manual_seed(0) weights
UNTRAINED_NUMPY_CHECKSUM = "untrained:numpy-seed0"  # numpy default_rng(0) weights: another model
TORCH_PIP = "pip install torch torchvision open_clip_torch"


@dataclass
class _Identity:
    """What a model is, before anything heavy is loaded."""

    model_id: str
    arch: str | None
    checksum: str | None
    preprocess: Preprocess | None
    untrained: bool
    spec: object = None
    checkpoint: Path | None = None


def resolve_backend(backend: str, feedback: Feedback | None = None) -> str:
    """``auto`` (the default) -> ``torch`` where torch and open_clip are installed, else ``onnx``: the
    light install (no torch, what the plugin installs by default) maps without a flag, and a full
    install keeps the torch backend it always had. ``torch`` and ``onnx`` are taken as asked."""
    if backend != "auto":
        return backend
    chosen = "torch" if _has_torch() else "onnx"
    if feedback is not None and chosen == "onnx":
        feedback.info("backend auto: torch is not installed, so ONNX Runtime runs the model")
    return chosen


def _has_torch() -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("torch", "open_clip"))
    except (ImportError, ValueError):
        return False


def _require_torch() -> None:
    try:
        import open_clip  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(
            f"the torch backend needs PyTorch and open_clip ({e}): {TORCH_PIP}; or use --backend onnx") from None


def _identify(model: str | None, checkpoint: str | Path | None, arch: str | None, need_checksum: bool,
              offline: bool, feedback: Feedback) -> _Identity:
    if model and checkpoint:
        raise InputError(f"give a model id ({model!r}) or a checkpoint ({checkpoint}), not both")
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist or is not a file; check --checkpoint")
        return _Identity(f"checkpoint:{path.name}", arch, sha256_file(path) if need_checksum else None, None,
                         False, checkpoint=path)
    spec = get_model_spec(model or DEFAULT_MODEL)
    if spec.source is None:
        return _Identity(spec.id, arch or spec.arch, UNTRAINED_CHECKSUM, spec.preprocess, True, spec=spec)
    checksum = spec.sha256
    if need_checksum and checksum is None:
        from senclip.models.weights import fetch_weights

        checksum = fetch_weights(spec, offline=offline, feedback=feedback).sha256
    return _Identity(spec.id, arch or spec.arch, checksum, spec.preprocess, spec.untrained, spec=spec)


def _build_torch(ident: _Identity, offline: bool, feedback: Feedback):
    """The open_clip model for ``ident``, filling in arch, checksum and preprocessing."""
    _require_torch()
    from senclip.models.checkpoints import build_clip, infer_arch, read_state_dict

    if ident.untrained:
        return build_clip(None, ident.arch, seed=0)
    sd = read_state_dict(_weights_path(ident, offline, feedback))
    if ident.arch is None:
        ident.arch = infer_arch(sd)
    clip = build_clip(sd, ident.arch)
    if ident.preprocess is None:  # a bare checkpoint: SenCLIP's recipe at the model's own input size
        size = clip.visual.image_size
        ident.preprocess = Preprocess(SENCLIP_MEAN, SENCLIP_STD, int(size[0] if isinstance(size, tuple) else size))
    return clip


def load_model(model: str | None = None, checkpoint: str | Path | None = None, *, arch: str | None = None,
               backend: str = "auto", device: str = "auto", offline: bool = False,
               onnx_dir: str | Path | None = None, precision: str = "fp32", int8: bool = False,
               feedback: Feedback | None = None) -> LoadedModel:
    """Image and text encoders for a registry model (default SenCLIP ViT-B/32) or a checkpoint.

    Args:
        model: registry id; ``untrained-smoke`` is a random ViT-B/32 (seed 0), for checks only.
        checkpoint: a SenCLIP/OpenAI-format state_dict (arch inferred) or an open_clip one (``arch``).
        backend: ``auto`` (torch where installed, else onnx), ``torch`` or ``onnx``. ONNX uses ``onnx_dir`` or the cached export, making it
            first when missing (with torch where installed, else torch-free: :func:`exporter`).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; the result says what ran.
        precision: ``fp32`` (default here: exact), ``bf16``, ``int8`` or ``auto`` (the fastest this
            CPU and install can run that keeps cosine >= 0.999 to fp32; see :mod:`senclip.models.precision`).
            The result's ``precision``/``engine``/``precision_reason`` say what was chosen.
        int8: deprecated alias of ``precision="int8"``.

    Raises:
        InputError / CheckpointError: bad id, file, or architecture.
        WeightsNotAvailableError, ChecksumError: weights missing offline, or corrupt.
        BackendUnavailableError: torch / onnxruntime missing, or an architecture only torch can export.
    """
    feedback = feedback or Feedback()
    if backend not in ("auto", "torch", "onnx"):
        raise InputError(f"unknown backend {backend!r}; use auto, torch or onnx")
    backend = resolve_backend(backend, feedback)
    precision = check_precision("int8" if int8 else precision)
    if backend == "onnx":
        return _load_onnx(model, checkpoint, arch, device, offline, onnx_dir, precision, feedback)
    ident = _identify(model, checkpoint, arch, False, offline, feedback)
    clip = _build_torch(ident, offline, feedback)
    from senclip.models.encoders.torch_encoder import TorchImageEncoder, TorchTextEncoder, pick_device

    dev = pick_device(device)
    image, choice = _pick(precision, "torch", dev, lambda c: TorchImageEncoder(clip, ident.preprocess, dev, c.precision),
                          (ident.model_id, ident.checksum), feedback)
    text = TorchTextEncoder(clip, image.device)
    feedback.info(f"model {ident.model_id} ({ident.arch}) on torch, device {image.device}, {image.precision} "
                  f"({choice.reason})")
    return LoadedModel(ident.model_id, ident.arch, ident.checksum, ident.preprocess, ident.untrained,
                       "torch", image.device, image, text, image.precision, "torch", choice.reason)


def _pick(precision: str, backend: str, device: str, make, identity: tuple, feedback: Feedback):
    """(image encoder, Choice) for ``precision``; ``auto`` walks :func:`senclip.models.precision.candidates`
    and takes the first whose cosine to fp32 on real chips is >= MIN_COSINE (measured once, cached)."""
    from senclip.models.calibration import N_CHIPS, cached_check, check_key, min_cosine, store_check
    from senclip.models.precision import MIN_COSINE, Choice, candidates, cpu_features, explicit, installed_engines

    cpu, engines = cpu_features(), installed_engines()
    if precision != "auto":
        choice = explicit(precision, backend, device, cpu, engines)
        return make(choice), choice
    cands = candidates(backend, device, cpu, engines)
    from senclip.models import autotune

    if backend == "onnx" and not device.startswith("cuda") and autotune.enabled():  # measured, not the table
        return autotune.pick(make, identity, cpu, engines, cands, feedback)
    ref = None
    for c in cands[:-1]:
        try:
            enc = make(c)
        except Exception as e:  # an engine that cannot load here: the next candidate runs
            feedback.info(f"precision auto: {c.label} unavailable ({str(e).splitlines()[0][:160]}); trying the next")
            continue
        key = check_key(*identity, c.engine, c.precision, cpu.name)
        cos = cached_check(key)
        if cos is None:
            ref = ref or make(cands[-1])
            cos = min_cosine(ref, enc)
            store_check(key, cos)
        if cos >= MIN_COSINE:
            reason = f"auto on {cpu.summary()}: {c.reason}; cosine to fp32 {cos:.5f} on {N_CHIPS} real chips"
            return enc, Choice(c.engine, c.precision, reason)
        feedback.info(f"precision auto: {c.label} has cosine {cos:.5f} < {MIN_COSINE} to fp32 on real chips; not used")
    last = cands[-1]
    return ref or make(last), Choice(last.engine, last.precision, f"auto on {cpu.summary()}: {last.reason}")


def _find_export(model_id: str) -> Path | None:
    """The newest cached export of ``model_id`` (used when its checksum is unknown offline)."""
    from senclip.models.onnx_export import export_dir_pattern, onnx_home

    found = [d for d in onnx_home().glob(export_dir_pattern(model_id))
             if (d / "image.onnx").is_file() and (d / "text.onnx").is_file()]
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def _onnx_export(model, checkpoint, arch, offline, onnx_dir, feedback):
    """(identity or None, folder of the fp32 export), making the export if missing."""
    if onnx_dir is not None:
        ident = _identify(model, checkpoint, arch, checkpoint is not None, offline, feedback) \
            if (model or checkpoint) else None
        return ident, Path(onnx_dir)
    try:
        ident = _identify(model, checkpoint, arch, True, offline, feedback)
    except FileNotFoundError:  # weights not cached and unknown checksum: any export of the id will do
        found = _find_export(get_model_spec(model or DEFAULT_MODEL).id)
        if found is None:
            raise
        return None, found
    return ident, _ensure_export(ident, offline, feedback)


def _ensure_export(ident: _Identity, offline: bool, feedback: Feedback) -> Path:
    """The cached fp32 export folder of ``ident``, made once when missing."""
    from senclip.models.onnx_export import default_export_dir

    _untrained_checksum(ident)
    onnx_dir = default_export_dir(ident.model_id, ident.checksum)
    if not ((onnx_dir / "image.onnx").is_file() and (onnx_dir / "text.onnx").is_file()):
        feedback.info(f"no ONNX export of {ident.model_id} yet: exporting it once to {onnx_dir}")
        _make_export(ident, onnx_dir, offline, feedback)
    return onnx_dir


def _untrained_checksum(ident: _Identity) -> None:
    if ident.untrained and exporter(ident) == "onnx":
        ident.checksum = UNTRAINED_NUMPY_CHECKSUM  # numpy's random weights, not torch's


def export_model(model: str | None, checkpoint: str | Path | None, arch: str | None, out: str | Path | None, *,
                 int8: bool = False, offline: bool = False, feedback: Feedback | None = None) -> Path:
    """``senclip models export-onnx``: the export of a model written to ``out`` (default: the cache folder
    ``--backend onnx`` reads) by its :func:`exporter`, the image encoder also int8 with ``int8``."""
    from senclip.models.onnx_export import default_export_dir

    feedback = feedback or Feedback()
    ident = _identify(model, checkpoint, arch, True, offline, feedback)
    _untrained_checksum(ident)
    target = Path(out) if out else default_export_dir(ident.model_id, ident.checksum, int8)
    _make_export(ident, target, offline, feedback, int8=int8)
    return target


def exporter(ident: _Identity) -> str:
    """Which exporter makes a missing ONNX export of ``ident``: ``onnx``, the graphs written from the
    state_dict's numpy arrays (:mod:`senclip.models.onnx_graphs`), on every install. Why it is the default
    also where torch is installed: it needs no torch import and no tracing (seconds, not a minute), and a
    light and a full install then make the same export for the same cache name; it agrees with torch's
    export to cosine >= 0.99999 (tests/backend/test_onnx_graphs.py). ``torch`` (``torch.onnx.export`` of the
    open_clip model) where only torch can: random weights where torch is installed (so both backends run
    the same ``untrained-smoke``), and layouts the builder does not read (:func:`_make_export`).
    ``SENCLIP_EXPORTER=torch`` or ``=onnx`` chooses."""
    import os

    choice = os.environ.get("SENCLIP_EXPORTER", "").strip().lower()
    if choice not in ("", "torch", "onnx"):
        raise InputError(f"SENCLIP_EXPORTER={choice!r}: use torch or onnx (or leave it unset)")
    if choice == "torch":
        _require_torch()
    return choice or ("torch" if ident.untrained and _has_torch() else "onnx")


def _make_export(ident: _Identity, onnx_dir: Path, offline: bool, feedback: Feedback, int8: bool = False) -> None:
    """Write the fp32 export of ``ident`` to ``onnx_dir`` with its :func:`exporter`; a layout the
    torch-free builder refuses goes to torch's exporter where torch is installed."""
    if exporter(ident) == "onnx":
        from senclip.models.onnx_graphs.build import build_export

        try:
            sd = _numpy_weights(ident, offline, feedback)
        except ForeignLayoutError as e:
            if not _has_torch():
                raise
            feedback.info(f"the torch-free builder cannot read it ({str(e)[:120]}...): exporting with torch")
        else:
            build_export(sd, onnx_dir, preprocess=ident.preprocess, model_id=ident.model_id, arch=ident.arch,
                         checksum=ident.checksum, untrained=ident.untrained, int8=int8, feedback=feedback)
            return
    from senclip.models.onnx_export import export_onnx

    clip = _build_torch(ident, offline, feedback)
    export_onnx(clip, onnx_dir, preprocess=ident.preprocess, model_id=ident.model_id, arch=ident.arch,
                checksum=ident.checksum, untrained=ident.untrained, int8=int8, feedback=feedback)


def _numpy_weights(ident: _Identity, offline: bool, feedback: Feedback) -> dict:
    """The state_dict of ``ident`` as numpy arrays, without torch, filling in arch and preprocessing."""
    from senclip.models.checkpoints import infer_arch, input_size, read_arrays

    if ident.untrained:
        from senclip.models.archs import OPENAI_ARCHS, random_state_dict

        if ident.arch not in OPENAI_ARCHS:
            raise BackendUnavailableError(f"random weights of {ident.arch} without torch: only the OpenAI-CLIP "
                                          f"architectures ({', '.join(OPENAI_ARCHS)}); or {TORCH_PIP}")
        return random_state_dict(ident.arch, seed=0)
    sd = read_arrays(_weights_path(ident, offline, feedback))
    inferred = infer_arch(sd)  # the graphs are built from OpenAI-layout shapes: foreign layouts stop here
    ident.arch = ident.arch or inferred  # an explicit open_clip name only picks the activation
    if ident.preprocess is None:  # a bare checkpoint: SenCLIP's recipe at the model's own input size
        ident.preprocess = Preprocess(SENCLIP_MEAN, SENCLIP_STD, input_size(sd))
    return sd


def _weights_path(ident: _Identity, offline: bool, feedback: Feedback) -> Path:
    """The local weight file of ``ident`` (fetched into the cache for a registry id), its checksum noted."""
    if ident.checkpoint is not None:
        path = ident.checkpoint
    else:
        from senclip.models.weights import fetch_weights

        got = fetch_weights(ident.spec, offline=offline, feedback=feedback)
        path, ident.checksum = got.path, got.sha256
    if ident.checksum is None:
        ident.checksum = sha256_file(path)
    return path


def _derived_dir(base: Path, suffix: str, export, what: str, feedback: Feedback) -> Path:
    """The sibling ``base`` + ``suffix`` of a cached fp32 export, made from it once by
    ``export(base, target, feedback)`` (onnxruntime's quantisers: no torch needed)."""
    target = base.with_name(base.name + suffix)
    if not ((target / "image.onnx").is_file() and (target / "text.onnx").is_file()):
        try:
            import onnx  # noqa: F401  (onnxruntime's quantiser needs it)
        except ImportError:
            raise BackendUnavailableError(f"making the {what} export needs the onnx package: pip install onnx") from None
        export(base, target, feedback)
    return target


def _int8_dir(base: Path, feedback: Feedback) -> Path:
    """The dynamic int8 sibling that ONNX Runtime int8 runs."""
    from senclip.models.onnx_export import quantize_export

    return _derived_dir(base, "-int8", quantize_export, "int8", feedback)


def _static_int8_dir(base: Path, explicit_dir: bool, feedback: Feedback) -> Path:
    """The static (QDQ) int8 sibling that OpenVINO int8 runs."""
    from senclip.models.static_int8 import SUFFIX, static_export

    if explicit_dir:  # a folder the user passed is theirs: nothing is written beside it
        raise InputError("OpenVINO int8 runs a static int8 export made beside the cached one, not from onnx_dir")
    return _derived_dir(base, SUFFIX, static_export, "static int8", feedback)


def _load_onnx(model, checkpoint, arch, device, offline, onnx_dir, precision, feedback) -> LoadedModel:
    from senclip.models.encoders.onnx_encoder import OnnxImageEncoder, OnnxTextEncoder, cuda_available

    explicit_dir = onnx_dir is not None
    ident, base = _onnx_export(model, checkpoint, arch, offline, onnx_dir, feedback)
    cuda = device.startswith("cuda") or (device == "auto" and cuda_available())

    def make(choice):
        if choice.engine == "openvino":
            from senclip.models.encoders.openvino_encoder import OpenVinoImageEncoder

            hint = getattr(choice, "hint", "")  # autotune's candidates carry OpenVINO's performance hint
            path = _static_int8_dir(base, explicit_dir, feedback) if choice.precision == "int8" else base
            return OpenVinoImageEncoder(path / "image.onnx", choice.precision, **({"hint": hint} if hint else {}))
        if choice.precision == "int8" and not explicit_dir:
            return OnnxImageEncoder(_int8_dir(base, feedback) / "image.onnx", device)
        enc = OnnxImageEncoder(base / "image.onnx", device)
        if choice.precision == "int8" and enc.precision != "int8":
            raise InputError(f"{base} holds an fp32 export; for int8 export one with "
                             f"`senclip models export-onnx --int8 --out DIR`, or leave out the folder")
        return enc

    meta_id = ident or _meta_identity(base)
    image, choice = _pick(precision, "onnx", "cuda" if cuda else "cpu", make, (meta_id.model_id, meta_id.checksum),
                          feedback)
    text = OnnxTextEncoder(base / "text.onnx", image.device)
    meta = image.meta
    if ident is not None and (meta["model_id"] != ident.model_id
                              or (ident.checksum and meta["checksum"] != ident.checksum)):
        raise InputError(f"ONNX export in {base} is of {meta['model_id']} (sha256 {meta['checksum'][:12]}), "
                         f"not of {ident.model_id}; export this model with `senclip models export-onnx`")
    feedback.info(f"model {meta['model_id']} on {image.engine} ({Path(image.path).parent.name}), device {image.device}, "
                  f"{image.precision} ({choice.reason})")
    return LoadedModel(meta["model_id"], meta.get("arch", ""), meta["checksum"], image.preprocess,
                       json.loads(meta.get("untrained", "false")), "onnx", image.device, image, text,
                       image.precision, image.engine, choice.reason)


def _meta_identity(base: Path) -> _Identity:
    """Model id and checksum of an export, from its text encoder's metadata (small and fast to read)."""
    from senclip.models.encoders.onnx_encoder import read_metadata

    meta = read_metadata(base / "text.onnx")
    return _Identity(meta["model_id"], meta.get("arch"), meta["checksum"], None, False)


def load_text_model(store_model: dict, *, feedback: Feedback | None = None) -> LoadedModel | None:
    """Only the text encoder of the model an embedding store was made with, from its cached ONNX
    export, for re-prompting: no torch import, no image encoder, no checkpoint hashing (the
    export is found by the store's recorded model id and checksum, and its metadata must match).
    None when there is no such export or no onnxruntime: the caller loads the whole model."""
    from senclip.models.onnx_export import default_export_dir
    from senclip.models.precision import has_module

    feedback = feedback or Feedback()
    try:
        base = default_export_dir(store_model["model_id"], store_model["checksum"])
    except (KeyError, TypeError, AttributeError):
        return None
    if not (base / "text.onnx").is_file() or not has_module("onnxruntime"):
        return None
    from senclip.models.encoders.onnx_encoder import OnnxTextEncoder

    text = OnnxTextEncoder(base / "text.onnx", "cpu")  # a few prompts: the CPU is quick enough
    meta = text.meta
    if (meta["model_id"], meta["checksum"]) != (store_model["model_id"], store_model["checksum"]):
        return None
    feedback.info(f"text encoder of {meta['model_id']} from its ONNX export ({base.name})")
    return LoadedModel(meta["model_id"], meta.get("arch", ""), meta["checksum"],
                       Preprocess.from_dict(json.loads(meta["preprocess"])), json.loads(meta.get("untrained", "false")),
                       "onnx", text.device, None, text, engine="onnxruntime")


def store_text_model(meta: dict, *, offline: bool = False, feedback: Feedback | None = None) -> LoadedModel | None:
    """:func:`load_text_model` for an embedding store's ``meta``, first making the store's missing ONNX
    export where that needs no torch (its weights at hand: the cached registry file or the store's
    checkpoint path), so re-prompting never loads torch's whole model twice. None where it cannot
    (then the caller loads the model as asked, and any error is that load's)."""
    feedback = feedback or Feedback()
    lm = load_text_model(meta.get("model"), feedback=feedback)
    rec = meta.get("model") or {}
    model_id, checksum = str(rec.get("model_id", "")), rec.get("checksum")
    if lm is not None or not checksum:
        return lm
    checkpoint = meta.get("checkpoint_path") if model_id.startswith("checkpoint:") else None
    try:
        ident = _identify(None if checkpoint else model_id, checkpoint, None, True, offline, feedback)
        if exporter(ident) != "onnx" or (ident.untrained and checksum != UNTRAINED_NUMPY_CHECKSUM):
            return None  # torch's exporter, or random weights the store was not made with
        _ensure_export(ident, offline, feedback)
    except (SenclipError, FileNotFoundError) as e:
        feedback.info(f"no ONNX text encoder for the store's model ({str(e).splitlines()[0][:160]})")
        return None
    return load_text_model(rec, feedback=feedback)
