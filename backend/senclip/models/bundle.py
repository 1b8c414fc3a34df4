"""Offline bundles: everything an air-gapped machine needs to install the backend and run a model.

``senclip bundle create DIR`` (on a machine with network) writes::

    DIR/manifest.json        what is inside: extras, torch build, models, platform, sizes
    DIR/wheels/*.whl         ``pip download`` of the backend's dependencies (+ the chosen extras)
    DIR/weights/<id>/<file>  weight files, in the same layout as the weights cache

Copy DIR to the other machine; the QGIS plugin's *Install or repair backend* (``BUNDLE`` parameter)
installs from ``wheels/`` with ``--no-index`` and copies the weights into the cache
(:func:`import_weights`, also ``senclip bundle import DIR``). The bundle is for one platform and
Python version: by default this machine's; pip's ``--platform``/``--python-version`` options
(``--pip-option``) make one for another machine.
"""
from __future__ import annotations

import json
import platform as _platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from senclip.core.errors import InputError, OutputError
from senclip.core.feedback import Feedback
from senclip.core.outputs import Staged, all_or_nothing
from senclip.core.resources import RESOURCES

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the plugin installer's choices (senclip_qgis/installer.py) and the extras each installs
EXTRAS = {"light": ["light"], "torch": ["torch", "light", "fast"], "none": [], "light-cuda": ["light-cuda"]}
_SELF = re.compile(r"^senclip\[([^\]]+)\]$")  # an extra made of other extras: senclip[onnx,openvino]


def requirements(extras: str) -> list[str]:
    """The backend's dependencies for the plugin installer's ``extras`` choice (from pyproject.toml)."""
    if extras not in EXTRAS:
        raise InputError(f"--extras must be one of {', '.join(EXTRAS)}, got {extras!r}")
    project = _project_table()
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    todo, seen = list(EXTRAS[extras]), set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for req in optional.get(name, []):
            inner = _SELF.match(req.replace(" ", ""))
            if inner:
                todo += inner.group(1).split(",")
            else:
                reqs.append(req)
    return list(dict.fromkeys(reqs))


def _project_table() -> dict:
    import tomllib

    pyproject = RESOURCES.parent.parent / "pyproject.toml"
    if pyproject.is_file():
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    from importlib.metadata import requires  # an installed wheel: the same lists from its metadata

    project: dict = {"dependencies": [], "optional-dependencies": {}}
    for line in requires("senclip") or []:
        req, _, marker = line.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra:
            project["optional-dependencies"].setdefault(extra.group(1), []).append(req.strip())
        else:
            project["dependencies"].append(req.strip())
    return project


def create_bundle(out, *, extras: str = "light", torch_build: str = "cpu", models: list[str] | None = None,
                  pip_options: list[str] | None = None, offline: bool = False,
                  feedback: Feedback | None = None) -> dict:
    """Write an offline bundle to ``out`` (a new or empty folder) and return its manifest.

    Raises:
        InputError: bad extras/build/model id.
        OutputError: ``out`` exists and is not empty, or pip could not download the wheels.
        WeightsNotAvailableError: a model's weights are neither cached nor downloadable.
    """
    from senclip.models.registry import get_model_spec
    from senclip.models.weights import fetch_weights

    feedback = feedback or Feedback()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise OutputError(f"{out} exists and is not empty; give a new folder for the bundle")
    if torch_build not in ("cpu", "cuda"):
        raise InputError(f"--torch-build must be cpu or cuda, got {torch_build!r}")
    specs = [get_model_spec(m) for m in (models or [])]
    reqs = requirements(extras)
    out.parent.mkdir(parents=True, exist_ok=True)
    # all or nothing: a half bundle would fail far away, on the offline side
    with all_or_nothing(lambda: Staged(out, folder=True)) as staged:
        wheels = staged.tmp / "wheels"
        wheels.mkdir()
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off",
               "--only-binary", ":all:", "-d", str(wheels)] + reqs + list(pip_options or [])
        if extras == "torch" and torch_build == "cpu":
            cmd += ["--extra-index-url", CPU_INDEX]
        feedback.info("$ " + " ".join(cmd))
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise OutputError(f"pip could not download the wheels for the bundle: {tail}")
        weights = []
        for spec in specs:
            if spec.source is None:
                continue
            got = fetch_weights(spec, offline=offline, feedback=feedback)
            dest = staged.tmp / "weights" / spec.id / got.path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(got.path, dest)
            weights.append({"model": spec.id, "file": f"weights/{spec.id}/{got.path.name}", "sha256": got.sha256})
        files = sorted(p for p in wheels.iterdir() if p.is_file())
        manifest = {
            "format": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "extras": extras,
            "build": torch_build if extras == "torch" else "", "requirements": reqs,
            "platform": f"{sys.platform}-{_platform.machine()} cp{sys.version_info.major}{sys.version_info.minor}",
            "pip_options": list(pip_options or []), "wheels": [p.name for p in files],
            "download_mb": round(sum(p.stat().st_size for p in files) / 2**20),
            "disk_mb": round(_installed_size(files) / 2**20), "weights": weights,
        }
        (staged.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        staged.commit()
    return manifest


def _installed_size(wheels: list[Path]) -> int:
    """Bytes the wheels take once unpacked (what the user's disk pays)."""
    import zipfile

    total = 0
    for w in wheels:
        try:
            with zipfile.ZipFile(w) as z:
                total += sum(i.file_size for i in z.infolist())
        except (OSError, zipfile.BadZipFile):
            total += w.stat().st_size
    return total


def import_weights(bundle, *, feedback: Feedback | None = None) -> list[Path]:
    """Copy a bundle's weight files into the weights cache and verify them; returns their paths.

    A file already in the cache is kept (and verified); nothing of the user's is overwritten.
    """
    from senclip.models.registry import get_model_spec
    from senclip.models.weights import cached_path, fetch_weights

    feedback = feedback or Feedback()
    manifest_path = Path(bundle) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{bundle} is not a SenCLIP bundle ({manifest_path}: {e})") from None
    done = []
    for entry in manifest.get("weights", []):
        spec = get_model_spec(entry["model"])
        target = cached_path(spec)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.importing")
            shutil.copyfile(Path(bundle) / entry["file"], tmp)
            tmp.replace(target)
            feedback.info(f"weights of {spec.id} copied to {target}")
        got = fetch_weights(spec, offline=True, feedback=feedback)
        if entry.get("sha256") and got.sha256 != entry["sha256"]:
            raise InputError(f"{target} differs from the bundle's {entry['file']} (sha256 {got.sha256} vs "
                             f"{entry['sha256']}); remove one of them and import again")
        done.append(got.path)
    return done
