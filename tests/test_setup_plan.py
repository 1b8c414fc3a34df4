"""`make setup` picks the torch recipe by the machine: CUDA where an NVIDIA GPU is present, else the
CPU recipe (PyPI's torch with --no-deps plus requirements/torch-cpu-deps.txt). The decision is checked
through `make -n` with the GPU probes pointed at fakes; the CPU list is checked against the installed
torch's own requirements, so bumping torch cannot silently drop something it needs."""
from __future__ import annotations

import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
# what the CPU recipe leaves out on purpose (requirements/torch-cpu-deps.txt says why)
SKIPPED = {"triton", "cuda-bindings"}
SKIPPED_TOOLKIT_EXTRAS = {"cupti", "cusolver", "nvtx"}
NO_DEPS = {"torch", "torchvision", "open-clip-torch", "timm"}  # installed with --no-deps


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _plan(tmp_path, *, proc_gpu=False, smi_out=None, torch=None) -> str:
    proc = tmp_path / "gpus"
    proc.mkdir(exist_ok=True)
    if proc_gpu:
        (proc / "0000:01:00.0").mkdir(exist_ok=True)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + (f"echo '{smi_out}'\n" if smi_out else "echo 'command failed' >&2; exit 9\n"))
    smi.chmod(0o755)
    env = dict(os.environ, SENCLIP_NVIDIA_PROC=str(proc), SENCLIP_NVIDIA_SMI=str(smi))
    env.pop("TORCH", None)
    cmd = ["make", "-n", "-B", "venv", f"VENV={tmp_path / 'venv'}"] + ([f"TORCH={torch}"] if torch else [])
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("proc_gpu,smi_out,expected", [
    (False, None, "cpu"),
    (True, None, "cuda"),
    (False, "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)", "cuda"),
    (False, "No devices found.", "cpu"),
])
def test_make_setup_picks_the_recipe_by_the_gpu(tmp_path, proc_gpu, smi_out, expected):
    out = _plan(tmp_path, proc_gpu=proc_gpu, smi_out=smi_out)
    if expected == "cuda":
        assert "-r requirements/backend-torch.txt" in out and "torch-cpu-deps" not in out and "--no-deps -c" not in out
    else:
        assert "-r requirements/torch-cpu-deps.txt" in out and "-r requirements/backend-torch.txt" not in out
        assert "--no-deps -c requirements/backend-torch.txt torch torchvision open_clip_torch timm" in out


def test_torch_variable_overrides_the_probe(tmp_path):
    assert "torch-cpu-deps" not in _plan(tmp_path, torch="cuda")
    assert "torch-cpu-deps" in _plan(tmp_path, proc_gpu=True, torch="cpu")


def _cpu_list() -> dict:
    reqs = {}
    for line in (REPO / "requirements" / "torch-cpu-deps.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            r = Requirement(line)
            reqs[_norm(r.name)] = r
    return reqs


def _needs(dist: str) -> list[Requirement]:
    """A distribution's requirements that apply on this machine (no extras asked for)."""
    out = []
    for text in metadata.requires(dist) or []:
        r = Requirement(text)
        if r.marker is None or r.marker.evaluate({"extra": ""}):
            out.append(r)
    return out


def test_cpu_recipe_lists_everything_torch_needs_but_the_gpu_only_parts():
    listed = _cpu_list()
    missing = []
    for dist in ("torch", "torchvision", "open_clip_torch", "timm"):
        for r in _needs(dist):
            name = _norm(r.name)
            if name in NO_DEPS or name in SKIPPED:
                continue
            if name == "cuda-toolkit":
                ours = listed.get(name)
                want = set(r.extras) - SKIPPED_TOOLKIT_EXTRAS
                if ours is None or set(ours.extras) != want or str(ours.specifier) != str(r.specifier):
                    missing.append(f"{dist}: {r} (ours: {ours})")
            elif name not in listed:
                missing.append(f"{dist}: {r}")
            elif name.startswith("nvidia-") and str(listed[name].specifier) != str(r.specifier):
                missing.append(f"{dist}: {r} (ours: {listed[name]})")
    assert missing == [], "requirements/torch-cpu-deps.txt is out of step with the installed torch: " + "; ".join(missing)
    assert SKIPPED <= {_norm(r.name) for r in _needs("torch")}, "a skipped requirement is gone: update the lists"


def _dry(*targets: str, **variables: str) -> str:
    cmd = ["make", "-n", "-B", *targets] + [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_setup_builds_the_torch_free_venv_and_test_and_demo_use_it(tmp_path):
    """`make setup` also makes .venv-light from the system Python with the backend's light extra and the
    test tools, nothing of torch, and refuses a venv where torch imports; `make test` runs the torch-free
    tests in it after the main suite; `make demo` runs there, through ONNX Runtime."""
    light = tmp_path / "light"
    out = _dry("venv-light", LIGHT_VENV=str(light))
    assert f"-m venv --system-site-packages {light}" in out
    install = next(line for line in out.replace("\\\n", " ").splitlines() if "pip install" in line)
    assert "-e 'backend[light]'" in install and "-r requirements/dev.txt" in install
    assert not re.search(r"torch|open_clip|onnxscript", install.replace(str(light), "")), install
    assert f'{light}/bin/python -c "import torch"' in out
    assert "venv-light" in _dry("setup", "-p").split("\nsetup:")[1].splitlines()[0]
    test = _dry("test", LIGHT_VENV=str(light))
    main, torchfree = test.index(" -m pytest\n"), test.index(f"{light}/bin/python -m pytest tests/torchfree")
    assert main < torchfree and f"SENCLIP_TORCH_PYTHON={REPO}/.venv/bin/python" in test
    demo = _dry("demo", LIGHT_VENV=str(light))
    assert f"{light}/bin/senclip demo --backend onnx" in demo
