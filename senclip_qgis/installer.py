"""Create or repair the backend's virtual environment, from the dock or headless.

Choice of isolation (documented in docs/plugin.md): on Linux the venv is made with
``--system-site-packages`` from the distribution's Python, so the distribution's rasterio (built on
the same GDAL/PROJ as QGIS) and numpy are reused instead of a second GDAL in a wheel; pip installs
everything else into the venv and never writes to the system or QGIS site-packages. The venv can
*see* QGIS's Python packages, but the worker never imports them. On Windows and macOS QGIS bundles
its own GDAL bindings into its Python; there the venv is isolated and pip brings rasterio's wheels.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from . import backend_client, catalog, install_plan

# The choices, in the order of the Processing menu (saved indices keep their meaning: 1 was and is the
# light one). The packages behind each extra are listed once, in the backend's pyproject.toml.
EXTRAS = {
    "torch": "torch,light,fast",  # full: + PyTorch and open_clip (training, GPU through torch, --backend torch), numba
    "light": "light",  # the default: no torch; ONNX Runtime + OpenVINO + the s2cloudless cloud mask
    "none": "",  # dependencies are provided otherwise (offline wheelhouse, pre-made env)
    "light-cuda": "light-cuda",  # light with ONNX Runtime's CUDA provider (NVIDIA GPU; opt-in)
}
DEFAULT_EXTRAS = "light"


class InstallError(Exception):
    pass


def default_system_site_packages() -> bool:
    return sys.platform.startswith("linux")


def find_base_python() -> Path:
    """A real interpreter to create the venv with (inside QGIS ``sys.executable`` is QGIS itself)."""
    env = os.environ.get("SENCLIP_BASE_PYTHON")
    if env:
        return Path(env)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_exec_prefix)
    candidates = [Path(getattr(sys, "_base_executable", "") or "")]
    if os.name == "nt":
        candidates += [base / "python.exe", base / "python3.exe"]
    else:
        candidates += [base / "bin" / f"python{version}", base / "bin" / "python3"]
    which = shutil.which(f"python{version}") or shutil.which("python3")
    if which:
        candidates.append(Path(which))
    for c in candidates:
        if c.name.lower().startswith("python") and c.is_file():
            return c
    raise InstallError("no Python interpreter found to create the backend environment; set "
                       "SENCLIP_BASE_PYTHON or the BASE_PYTHON parameter to a python3 executable")


def stream(cmd: list[str], log, is_canceled, env=None) -> int:
    """Run ``cmd``, passing each output line to ``log``; kill it if ``is_canceled()``."""
    log("$ " + " ".join(cmd))
    kwargs = {"start_new_session": True} if os.name == "posix" else {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env or backend_client.child_env(), **kwargs)

    def pump():
        for raw in proc.stdout:
            log(raw.decode("utf-8", "replace").rstrip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            if is_canceled():
                backend_client.stop_tree(proc)
                raise backend_client.BackendCancelled("installation cancelled", "Cancelled", 130)
            reader.join(timeout=0.2)
    finally:
        backend_client.close_pipes(proc, [reader])
    return proc.returncode


def copy_backend_source(dest_root: Path) -> Path:
    """pip builds in place; copy the source so a read-only plugin folder stays untouched."""
    src = catalog.backend_source_dir()
    if src is None:
        raise InstallError("the plugin carries no backend source (backend_src/ is missing); "
                           "reinstall the plugin from its zip")
    dest = dest_root / "senclip-src"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(
        "*.egg-info", "__pycache__", "*.pyc", "build", "dist", ".pytest_cache"))
    return dest


def install(venv_dir: Path, *, base_python: Path | None = None, system_site_packages: bool | None = None,
            extras: str = DEFAULT_EXTRAS, pip_options: list[str] | None = None, recreate: bool = False,
            torch_build: str = "auto", bundle: Path | None = None, use_uv: bool = True,
            log=print, is_canceled=lambda: False) -> dict:
    """Make ``venv_dir`` a working backend environment and return its self-check report.

    What gets installed (CPU/CUDA PyTorch, ONNX only, from an offline bundle) and its cost is decided
    by :func:`install_plan.make_plan` and logged before anything is downloaded.
    """
    venv_dir = Path(venv_dir)
    if system_site_packages is None:
        system_site_packages = default_system_site_packages()
    if extras not in EXTRAS:
        raise InstallError(f"extras must be one of {', '.join(EXTRAS)}, got {extras!r}")
    try:
        plan = install_plan.make_plan(extras, torch_build, bundle=Path(bundle) if bundle else None,
                                      uv=install_plan.find_uv() if use_uv else None)
    except ValueError as exc:
        raise InstallError(str(exc)) from None
    extras = plan.extras
    if extras not in EXTRAS:  # a bundle's manifest names what it holds
        raise InstallError(f"the bundle holds the '{extras}' install, which this plugin does not offer "
                           f"({', '.join(EXTRAS)}); make it again with `senclip bundle create`")
    log(plan.summary())
    catalog_dir = catalog.PLUGIN_DIR.resolve()
    if catalog_dir == venv_dir.resolve() or catalog_dir in venv_dir.resolve().parents:
        raise InstallError(f"{venv_dir} is inside the plugin folder, which QGIS deletes on update; "
                           "choose a folder outside it")
    python = backend_client.venv_python(venv_dir)
    if recreate and venv_dir.exists():
        if not (venv_dir / "pyvenv.cfg").is_file():
            raise InstallError(f"{venv_dir} exists but is not a virtual environment; refusing to delete it")
        log(f"removing {venv_dir}")
        shutil.rmtree(venv_dir)
    if not python.is_file():
        base = Path(base_python) if base_python else find_base_python()
        venv_dir.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(base), "-m", "venv"] + (["--system-site-packages"] if system_site_packages else [])
        if stream(cmd + [str(venv_dir)], log, is_canceled) != 0 or not python.is_file():
            raise InstallError(f"creating the virtual environment {venv_dir} with {base} failed "
                               "(see the log above; on Debian/Ubuntu install python3-venv)")
    else:
        log(f"reusing the existing environment {venv_dir}")
    with tempfile.TemporaryDirectory(prefix="senclip-install-") as tmp:
        src = copy_backend_source(Path(tmp))
        target = f"{src}[{EXTRAS[extras]}]" if EXTRAS[extras] else str(src)
        cmd = install_plan.install_command(python, target, plan, list(pip_options or []))
        if stream(cmd, log, is_canceled) != 0:
            raise InstallError("pip could not install the backend (see the log above); "
                               "check the network or pass pip options such as --find-links")
    if plan.bundle is not None:
        cmd = [str(python), "-m", "senclip.cli.main", "bundle", "import", str(plan.bundle)]
        if stream(cmd, log, is_canceled) != 0:
            raise InstallError(f"the weights of the bundle {plan.bundle} could not be imported (see the log above)")
    log("running the backend self-check")
    report = backend_client.run_request("selfcheck", {}, python=python, is_canceled=is_canceled)
    log(f"self-check passed: {report.get('checks')}")
    return report
