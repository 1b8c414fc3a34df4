"""Where the dock writes its class maps and embedding stores: a folder the user sees and keeps.

Results in a temporary folder vanish when QGIS exits (a saved project then points at missing
files) and a killed QGIS leaks the folder. So: a folder the user chose (remembered in the QGIS
settings), else a ``senclip/`` folder beside the saved project file, else ``senclip/results`` in the
user's data folder (the same parent as the backend's environment).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from qgis.core import QgsProject, QgsSettings

SETTINGS_KEY = "senclip/results_dir"


def chosen_dir() -> str:
    return QgsSettings().value(SETTINGS_KEY, "", type=str) or ""


def remember_dir(path: str) -> None:
    """An empty path goes back to the default (beside the project)."""
    if path.strip():
        QgsSettings().setValue(SETTINGS_KEY, path.strip())
    else:
        QgsSettings().remove(SETTINGS_KEY)


def default_dir(project: QgsProject | None = None) -> Path:
    project = project or QgsProject.instance()
    home = project.absolutePath() if project.fileName() else ""
    if home:
        return Path(home) / "senclip"
    from ..backend_client import default_venv_dir

    return default_venv_dir().parent / "results"


def results_dir(project: QgsProject | None = None) -> Path:
    """The folder to write to now (created on demand)."""
    path = Path(chosen_dir()) if chosen_dir() else default_dir(project)
    path.mkdir(parents=True, exist_ok=True)
    return path


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe short form of a layer or class name."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return (s or "layer")[:limit].rstrip("-")


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def layer_title(classes: list[str], when: float | None = None, limit: int = 3) -> str:
    """Result layers are named by what they show and when: 'SenCLIP: Forest, Sea or Lake +3 (14:32)'."""
    shown = ", ".join(classes[:limit]) + (f" +{len(classes) - limit}" if len(classes) > limit else "")
    return f"SenCLIP: {shown} ({time.strftime('%H:%M', time.localtime(when))})"


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """A name not yet taken in ``folder``: nothing the user has is ever overwritten."""
    path = folder / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


def sidecars(path: Path) -> list[Path]:
    """The files GDAL/QGIS/senclip write beside a class-map GeoTIFF."""
    return [p for p in (path.with_name(path.name + ".aux.xml"), path.with_suffix(".qml"),
                        path.with_name(path.name + ".ovr")) if p.exists()]


def sidecar_for(side: Path, src: Path, dest: Path) -> Path:
    """Where sidecar ``side`` of ``src`` goes for a copy of ``src`` at ``dest``."""
    if side.suffix == ".qml":
        return dest.with_suffix(".qml")
    return dest.with_name(dest.name + side.name[len(src.name):])
