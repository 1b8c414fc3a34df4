"""What this backend environment is and whether it can run a model: the bug-report facts.

Used by the QGIS worker (Diagnostics button, install self-check) and by ``senclip diagnostics``.
Nothing here loads a model; torch and onnxruntime are imported only if installed.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from senclip.core.errors import BackendUnavailableError


def _version(module_name: str):
    try:
        module = __import__(module_name)
    except Exception as exc:  # noqa: BLE001 - a broken optional dependency is a diagnostic, not a crash
        return None if isinstance(exc, ImportError) else f"broken: {exc}"
    return getattr(module, "__version__", "unknown")


def _devices() -> dict:
    """What can run a model here; imports torch/onnxruntime only if present."""
    out: dict = {"torch": None, "onnxruntime": None}
    try:
        import torch

        cuda = torch.cuda.is_available()
        out["torch"] = {"cpu": True, "cuda": cuda,
                        "cuda_devices": [torch.cuda.get_device_name(i)
                                         for i in range(torch.cuda.device_count())] if cuda else [],
                        "threads": torch.get_num_threads()}
    except ImportError:
        pass
    try:
        import onnxruntime

        out["onnxruntime"] = {"providers": onnxruntime.get_available_providers()}
    except ImportError:
        pass
    return out


def diagnostics() -> dict:
    """Everything a bug report needs from the backend side, without loading a model."""
    import senclip

    versions = {"senclip": senclip.__version__, "python": platform.python_version()}
    for name in ("numpy", "rasterio", "torch", "torchvision", "open_clip", "onnxruntime", "onnx"):
        versions[name] = _version(name)
    gdal = proj = None
    try:
        import rasterio

        gdal = rasterio.__gdal_version__
        proj = rasterio.__proj_version__
    except Exception:  # noqa: BLE001
        pass
    from senclip.models import registry

    return {
        "versions": versions, "gdal": gdal, "proj": proj,
        "platform": platform.platform(), "executable": sys.executable, "prefix": sys.prefix,
        "senclip_path": str(Path(senclip.__file__).parent),
        "senclip_home": os.environ.get("SENCLIP_HOME"),
        "devices": _devices(), "models": list(registry.list_models()),
    }


def selfcheck() -> dict:
    """Proves the environment can run a model: imports, a small forward pass per device."""
    info = diagnostics()
    checks = {}
    try:
        import torch

        for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
            layer = torch.nn.Linear(16, 8).to(dev).eval()
            with torch.no_grad():
                y = layer(torch.ones(4, 16, device=dev))
            checks[f"torch-{dev}"] = bool(torch.isfinite(y).all().item())
        import open_clip  # noqa: F401 - the torch backend needs it

        checks["open_clip"] = True
    except ImportError as exc:
        checks["torch"] = f"not installed ({exc.name})"
    try:
        import onnxruntime  # noqa: F401

        checks["onnxruntime"] = True
    except ImportError:
        checks["onnxruntime"] = "not installed"
    info["checks"] = checks
    usable = checks.get("open_clip") is True or checks.get("onnxruntime") is True
    if not usable:
        raise BackendUnavailableError(
            "the backend environment has neither torch+open_clip nor onnxruntime "
            f"({sys.executable}); reinstall it with the torch or onnx extra (senclip:install_backend)")
    return info
