"""`make plugin` builds a zip the QGIS plugin repository accepts, carrying the backend source."""
from __future__ import annotations

import configparser
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from plugin_env import REPO

REQUIRED = ["name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
            "repository", "tracker", "license"]


@pytest.fixture(scope="module")
def plugin_zip() -> Path:
    proc = subprocess.run(["make", "-s", "plugin"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return REPO / "dist" / "senclip_qgis.zip"


def test_zip_structure(plugin_zip):
    assert plugin_zip.stat().st_size < 25 * 1024 * 1024
    with zipfile.ZipFile(plugin_zip) as zf:
        names = zf.namelist()
        tops = {n.split("/")[0] for n in names}
        assert tops == {"senclip_qgis"} and "senclip_qgis".isidentifier()
        assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
        assert not [n for n in names if ".egg-info" in n or "/.git" in n]
        for required in ("__init__.py", "metadata.txt", "LICENSE", "icon.svg", "backend_src/pyproject.toml",
                         "backend_src/senclip/worker.py", "backend_src/senclip/resources/models/senclip-vitb32-avgpool.json",
                         "help/classify.md"):
            assert f"senclip_qgis/{required}" in names, required
        meta = configparser.ConfigParser()
        meta.read_string(zf.read("senclip_qgis/metadata.txt").decode("utf-8"))
    general = meta["general"]
    missing = [k for k in REQUIRED if not general.get(k, "").strip()]
    assert missing == []
    assert general["qgisMinimumVersion"] == "3.22"
    # QGIS 4 refuses a plugin without a maximum >= 4 or without supportsQt6 (Qt6 builds)
    assert general["qgisMaximumVersion"] == "4.99" and general["supportsQt6"] == "True"
    assert general["hasProcessingProvider"] == "yes"
    assert general["repository"].startswith("https://") and general["tracker"].startswith("https://")
    assert len(general["about"]) > 100


def test_unzipped_plugin_finds_its_bundled_backend(plugin_zip, tmp_path):
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(tmp_path)
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from senclip_qgis import catalog; "
            "print(catalog.backend_source_dir()); print(','.join(catalog.model_ids())); "
            "print(json.dumps(catalog.OPTIONS))")
    out = subprocess.run(["/usr/bin/python3", "-c", code, str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert Path(out[0]) == tmp_path / "senclip_qgis" / "backend_src"
    assert out[1].split(",")[0] == "senclip-vitb32-avgpool" and "untrained-smoke" in out[1]
    # the option menus come from the backend's own options.json (the CLI's choices), shipped in the zip
    shipped = json.loads((REPO / "backend" / "senclip" / "resources" / "options.json").read_text(encoding="utf-8"))
    assert json.loads(out[2]) == {k: v for k, v in shipped.items() if not k.startswith("_")}


def test_zip_in_a_fresh_profile_runs_classify_with_a_checkpoint(plugin_zip, tmp_path, s2_raster, plugin_checkpoint):
    """Installed from the zip into an empty profile, with the MODEL value the toolbox dialog sends."""
    import json

    from test_headless import QGIS_PROCESS, headless_env

    plugins = tmp_path / "profile-plugins"
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    env = dict(headless_env(tmp_path), QGIS_PLUGINPATH=str(plugins))
    enable = subprocess.run([str(QGIS_PROCESS), "plugins", "enable", "senclip_qgis"], env=env,
                            capture_output=True, text=True, timeout=180)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    out = tmp_path / "from_zip.tif"
    proc = subprocess.run(
        [str(QGIS_PROCESS), "run", "senclip:classify", "--json", "--", f"INPUT={s2_raster}",
         "CLASSES=Forest;Sea or Lake", "MODEL=auto", f"CHECKPOINT={plugin_checkpoint}", f"OUTPUT={out}"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert Path(result["results"]["OUTPUT"]) == out and out.is_file()
