"""Which backend install a machine gets, what it costs, and the pip/uv command that does it.

PyPI's Linux ``torch`` wheel pulls the CUDA libraries (≈ 2.7 GB download, ≈ 5.6 GB on disk) even on a
machine without an NVIDIA GPU. So: detect a GPU; without one install the CPU-only build from the
PyTorch CPU wheel index when it answers (falling back to PyPI's default, and saying so), or the light
ONNX-Runtime-only backend; show the cost before anything is downloaded; use ``uv`` when it is on
PATH (much faster resolution and download); install from an offline bundle (``senclip bundle
create``: wheels + weights) on air-gapped machines. Pure stdlib, decided without Qt, tested alone.
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

# (download MB, disk MB), measured from the wheels on Linux x86_64, CPython 3.11 (2026-11):
# torch 2.14.1 + nvidia-* (CUDA 13) + triton + torchvision: 2624 MB download, 5303 MB installed;
# torch 2.13.0+cpu: 183 MB -> 667 MB; onnxruntime 1.32: 26.5 -> 72; onnx 8.5 -> 22;
# open_clip/timm/onnxscript 5 -> 14; the small dependencies (sympy, networkx, hub, ...) ≈ 30 -> 120;
# numba 0.68 + llvmlite 0.50 (the "fast" extra, --transductive's compiled loops): 64 -> 208 (2026-12).
SIZES_MB = {
    ("torch", "cuda"): (2760, 5800),
    ("torch", "cpu"): (325, 1110),
    ("torch", "default"): (325, 1110),  # Windows/macOS: PyPI's torch is already CPU-only there
    ("onnx", ""): (45, 200),
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
        what = {"torch": f"PyTorch ({self.build} build) + open_clip + ONNX Runtime",
                "onnx": "ONNX Runtime only (runs models exported to .onnx)",
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
    if bundle is not None:
        data = read_bundle(bundle)
        extras = data.get("extras", extras)
        return Plan(extras, data.get("build", ""), ["--no-index", "--find-links", str(Path(bundle) / "wheels")],
                    0, int(data.get("disk_mb", 0)), [f"Bundle made {data.get('created', '?')} "
                                                     f"for {data.get('platform', '?')}."], uv, Path(bundle))
    if extras != "torch":
        down, disk = SIZES_MB[(extras, "")]
        return Plan(extras, "", [], down, disk, [], uv)
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
                 "is installed, which brings the CUDA libraries. To save about 4.7 GB choose 'ONNX Runtime "
                 "only', or install from an offline bundle.")
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
    return [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off", "--upgrade", target] + options
