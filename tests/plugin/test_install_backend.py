"""senclip:install_backend end to end, offline: real venv, real pip, real self-check.

The network is off-limits in tests, so pip runs with --no-index --no-deps (the algorithm's
PIP_OPTIONS, the same switch an air-gapped user has). The first run proves the environment is
created and the bundled backend installed, and that a missing inference backend is reported
clearly; a .pth file then lends the dev venv's torch/open_clip to the new environment (standing in
for the download) and the repair run must pass the self-check with the *installed* senclip.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

from plugin_env import REPO, backend_python

OFFLINE = "--no-index --no-deps --no-build-isolation"


def run(params, log):
    import processing

    class Feedback(QgsProcessingFeedback):
        def pushConsoleInfo(self, info):  # noqa: N802
            log.append(info)

    return processing.run("senclip:install_backend", params, feedback=Feedback(),
                          context=QgsProcessingContext())


def dev_site_packages() -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([str(backend_python()), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


WHEELHOUSE = REPO / "build" / "data" / "bundle-none"
MODEL = "senclip-vitb32-avgpool"


def senclip_cli(*args, env=None):
    proc = subprocess.run([str(backend_python()), "-m", "senclip.cli.main", "-q", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def offline_bundle(tmp_path, monkeypatch):
    """A bundle made by `senclip bundle create` (weights of MODEL included), without network: the
    wheels come from a wheelhouse that one online run downloads from PyPI into build/data."""
    online_home = tmp_path / "online-home"
    weight = online_home / "weights" / MODEL / "SenCLIP_AvgPool_ViTB32.ckpt"
    weight.parent.mkdir(parents=True)
    weight.write_bytes(b"stand-in weights" * 1000)  # random bytes: only the copying is tested here
    if not (WHEELHOUSE / "manifest.json").is_file():  # the one online step (PyPI); weights from the cache
        senclip_cli("bundle", "create", WHEELHOUSE, "--extras", "none", "--offline",
                    env=dict(os.environ, SENCLIP_HOME=str(online_home)))
    bundle = tmp_path / "bundle"
    senclip_cli("bundle", "create", bundle, "--extras", "none", "--model", MODEL, "--offline",
                "--pip-option=--no-index", f"--pip-option=--find-links={WHEELHOUSE / 'wheels'}",
                env=dict(os.environ, SENCLIP_HOME=str(online_home)))
    offline_home = tmp_path / "offline-home"
    monkeypatch.setenv("SENCLIP_HOME", str(offline_home))  # the air-gapped machine's empty cache
    return bundle, weight.read_bytes(), offline_home / "weights" / MODEL / weight.name


@pytest.mark.skipif(not Path("/usr/bin/python3").is_file(), reason="needs a system python3")
def test_install_creates_venv_installs_backend_and_selfchecks(provider, tmp_path, offline_bundle):
    bundle, weight_bytes, imported = offline_bundle
    venv = tmp_path / "senclip-venv"
    params = {"VENV": str(venv), "EXTRAS": 2, "BASE_PYTHON": "/usr/bin/python3", "BUNDLE": str(bundle),
              "PIP_OPTIONS": "--no-build-isolation", "SYSTEM_SITE_PACKAGES": True, "REMEMBER": False}
    log: list[str] = []
    with pytest.raises(QgsProcessingException, match="neither torch\\+open_clip nor onnxruntime"):
        run(params, log)
    python = venv / "bin" / "python"
    assert python.is_file() and (venv / "pyvenv.cfg").is_file()
    assert any("from the offline bundle" in line and "on disk" in line for line in log), log[:5]
    assert any("pip" in line and "--no-index" in line and "--find-links" in line for line in log)
    assert any("Successfully installed" in line and "senclip" in line for line in log), log[-10:]
    assert imported.read_bytes() == weight_bytes, "the bundle's weights must land in the offline cache"
    params.pop("BUNDLE")
    params["PIP_OPTIONS"] = OFFLINE

    (Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip())
     / "zz_dev_deps.pth").write_text(dev_site_packages() + "\n")
    log.clear()
    res = run(params, log)
    assert res["PYTHON"] == str(python)
    assert any("reusing the existing environment" in line for line in log)
    assert any("self-check passed" in line for line in log)
    where = subprocess.run([str(python), "-c", "import senclip, json; print(json.dumps(senclip.__file__))"],
                           capture_output=True, text=True, check=True).stdout
    assert str(venv) in json.loads(where), "senclip must come from the new environment, not the repo"


def test_install_refuses_plugin_folder_and_non_venv(provider, tmp_path):
    from senclip_qgis import catalog

    with pytest.raises(QgsProcessingException, match="inside the plugin folder"):
        run({"VENV": str(catalog.PLUGIN_DIR / "venv"), "EXTRAS": 2, "REMEMBER": False}, [])
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(QgsProcessingException, match="not a virtual environment"):
        run({"VENV": str(tmp_path), "EXTRAS": 2, "RECREATE": True, "REMEMBER": False}, [])
    assert (tmp_path / "precious.txt").read_text() == "keep me"
