"""Which backend install a machine gets, what it costs, and the pip/uv command that does it.

The default is the light backend: every model and map through ONNX Runtime and OpenVINO, no PyTorch
(0.55 GB on disk). PyTorch is for training, GPU through torch and the torch backend, and PyPI's Linux
``torch`` wheel pulls the CUDA libraries (≈ 2.7 GB download, ≈ 5.6 GB on disk) even on a machine
without an NVIDIA GPU. So for that choice: detect a GPU; without one install the CPU-only build from the
PyTorch CPU wheel index when it answers (falling back to PyPI's default, and saying so). Show the cost
before anything is downloaded; use ``uv`` when it is on PATH (much faster resolution and download);
install from an offline bundle (``senclip bundle create``: wheels + weights) on air-gapped machines.
Pure stdlib, decided without Qt, tested alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_BUILDS = ["auto", "cpu", "cuda"]

# (download MB, disk MB) on Linux x86_64, CPython 3.11. light, measured 2026-12-06 (docs/install.md): the
# plugin zip's installer into a fresh --system-site-packages venv on Debian 12 from a local wheel cache,
# `du -sm` of the venv (168 MB of wheels: onnxruntime 1.32, onnx 1.23, OpenVINO 2026.4, s2cloudless with
# opencv-headless and sentinelhub, lightgbm, dask, hub, ...). What the others add to it was measured from
# the wheels: torch 2.13.0+cpu 183 -> 667; torch 2.14.1 + nvidia-* (CUDA 13) + triton + torchvision
# 2624 -> 5303; open_clip/timm/onnxscript 5 -> 14; their small dependencies (sympy, networkx, ...)
# ≈ 30 -> 120; numba 0.68 + llvmlite 0.50 ("fast") 64 -> 208. light-cuda swaps onnxruntime (26 -> 78) for
# onnxruntime-gpu 1.31.1 (244 -> 333) and adds NVIDIA's cuDNN 9.24, cuBLAS 13.1, cuFFT, cuRAND, NVRTC and
# runtime wheels (1280 -> 2118); sized from the wheels, never run: no GPU machine was available.
LIGHT_MB = (168, 550)
TORCH_OVER_LIGHT_MB = {"cpu": (282, 1009), "cuda": (2723, 5645)}
SIZES_MB = {
    ("torch", "cuda"): tuple(map(sum, zip(LIGHT_MB, TORCH_OVER_LIGHT_MB["cuda"]))),
    ("torch", "cpu"): tuple(map(sum, zip(LIGHT_MB, TORCH_OVER_LIGHT_MB["cpu"]))),
    ("torch", "default"): tuple(map(sum, zip(LIGHT_MB, TORCH_OVER_LIGHT_MB["cpu"]))),  # Windows/macOS: CPU-only
    ("light", ""): LIGHT_MB,
    ("light-cuda", ""): (LIGHT_MB[0] - 26 + 244 + 1280, LIGHT_MB[1] - 78 + 333 + 2118),
    ("none", ""): (1, 5),
}


@dataclass
class Plan:
    """What :func:`make_plan` decided; ``summary()`` is what the user sees before pip starts."""

    extras: str  # "torch" | "onnx" | "none"
    build: str  # "cuda" | "cpu" | "default" | ""
    pip_options: list[str] = field(default_factory=list)
    download_mb: int = 0
    disk_mb: int = 0
    notes: list[str] = field(default_factory=list)
    uv: str | None = None
    bundle: Path | None = None

    def summary(self) -> str:
        what = {"torch": f"the full backend: PyTorch ({self.build} build) + open_clip (training, GPU through "
                         "torch, the torch backend) with everything of the light one",
                "light": "the light backend, without PyTorch: ONNX Runtime + OpenVINO + the s2cloudless "
                         "cloud mask (every model and map)",
                "light-cuda": "the light backend with ONNX Runtime's CUDA provider (NVIDIA GPU; untested "
                              "here: no GPU was available when it was written)",
                "none": "the backend only (dependencies provided otherwise)"}[self.extras]
        cost = (f"from the offline bundle {self.bundle} (no download), about {gb(self.disk_mb)} on disk"
                if self.bundle else f"about {gb(self.download_mb)} download, {gb(self.disk_mb)} on disk")
        tool = "uv" if self.uv else "pip"
        return " ".join([f"Installing {what}: {cost}, with {tool}."] + self.notes)


def gb(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


def has_nvidia_gpu() -> bool:
    """An NVIDIA GPU with a driver: ``nvidia-smi -L`` lists one (or the Linux driver's /proc entry)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def index_reachable(url: str = CPU_INDEX, timeout: float = 5.0) -> bool:
    """Does the PyTorch CPU wheel index answer? (its torch page; a HEAD request, no download)"""
    try:
        req = urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return 200 <= resp.status < 400
    except (OSError, ValueError):
        return False


def read_bundle(bundle: Path) -> dict:
    """The manifest of an offline bundle written by ``senclip bundle create``."""
    manifest = Path(bundle) / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{bundle} is not a SenCLIP offline bundle ({manifest} unreadable: {exc}); "
                         "make one with `senclip bundle create DIR` on a machine with network") from None
    if not (Path(bundle) / "wheels").is_dir():
        raise ValueError(f"{bundle} has no wheels/ folder; make the bundle again with `senclip bundle create`")
    return data


def make_plan(extras: str, torch_build: str = "auto", *, gpu: bool | None = None,
              cpu_index_ok=None, bundle: Path | None = None, uv: str | None = None,
              platform: str = sys.platform) -> Plan:
    """Decide the install. ``gpu``/``cpu_index_ok`` are detected when None (``cpu_index_ok`` may be
    a callable, asked only when the answer matters: it costs a network round trip)."""
    if torch_build not in TORCH_BUILDS:
        raise ValueError(f"torch build must be one of {', '.join(TORCH_BUILDS)}, got {torch_build!r}")
    known = dict.fromkeys(e for e, _ in SIZES_MB)
    if bundle is None and extras not in known:
        raise ValueError(f"extras must be one of {', '.join(known)}, got {extras!r}")
    if bundle is not None:
        data = read_bundle(bundle)
        extras = data.get("extras", extras)
        return Plan(extras, data.get("build", ""), ["--no-index", "--find-links", str(Path(bundle) / "wheels")],
                    0, int(data.get("disk_mb", 0)), [f"Bundle made {data.get('created', '?')} "
                                                     f"for {data.get('platform', '?')}."], uv, Path(bundle))
    if extras != "torch":
        down, disk = SIZES_MB[(extras, "")]
        notes = [] if extras != "light-cuda" else [
            "onnxruntime-gpu replaces onnxruntime: in an environment that has the CPU build, tick "
            "'Delete and recreate' (both install the same module)."]
        return Plan(extras, "", [], down, disk, notes, uv)
    if not platform.startswith("linux"):  # PyPI's torch has no CUDA libraries on Windows/macOS
        down, disk = SIZES_MB[("torch", "default")]
        return Plan("torch", "default", [], down, disk, [], uv)
    if gpu is None:
        gpu = has_nvidia_gpu()
    build = "cuda" if torch_build == "cuda" or (torch_build == "auto" and gpu) else "cpu"
    notes = []
    if torch_build == "auto":
        notes.append("An NVIDIA GPU was found: CUDA build." if gpu else
                     "No NVIDIA GPU found: CPU-only build.")
    if build == "cuda":
        down, disk = SIZES_MB[("torch", "cuda")]
        return Plan("torch", "cuda", [], down, disk, notes, uv)
    ok = cpu_index_ok() if callable(cpu_index_ok) else cpu_index_ok
    if ok is None:
        ok = index_reachable()
    if ok:
        down, disk = SIZES_MB[("torch", "cpu")]
        return Plan("torch", "cpu", ["--extra-index-url", CPU_INDEX], down, disk, notes, uv)
    down, disk = SIZES_MB[("torch", "cuda")]
    notes.append(f"The PyTorch CPU wheel index ({CPU_INDEX}) cannot be reached, so PyPI's default torch "
                 "is installed, which brings the CUDA libraries. To save about 6 GB choose the light backend "
                 "(every map without PyTorch), or install from an offline bundle.")
    return Plan("torch", "default", [], down, disk, notes, uv)


def find_uv() -> str | None:
    """``uv`` on PATH (SENCLIP_NO_UV=1 turns it off)."""
    if os.environ.get("SENCLIP_NO_UV", "").lower() in {"1", "true", "yes"}:
        return None
    return shutil.which("uv")


def install_command(python: Path, target: str, plan: Plan, extra_options: list[str]) -> list[str]:
    """pip (or uv pip) installing ``target`` into the environment of ``python``."""
    options = plan.pip_options + list(extra_options)
    if plan.uv:
        return [plan.uv, "pip", "install", "--python", str(python), "--upgrade", target] + options
    # --no-compile: pip byte-compiles every module it installs (57 MB for the light set), most never
    # imported; Python caches the ones the backend imports on first use. uv does not compile either.
    return [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off", "--no-compile", "--upgrade", target] + options
