"""Architecture guardrails: the process boundary of docs/architecture.md §1, checked on the source."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "senclip_qgis"
BACKEND = REPO / "backend" / "senclip"


def import_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def offenders(folder: Path, allowed=None, forbidden=None) -> list[str]:
    """``file: [bad roots]`` for every file importing outside ``allowed`` (or inside ``forbidden``)."""
    out = []
    for path in sorted(folder.rglob("*.py")):
        if "backend_src" in path.parts:
            continue
        roots = import_roots(path)
        bad = {r for r in roots if r not in allowed} if allowed is not None else roots & forbidden
        if bad:
            out.append(f"{path.relative_to(folder)}: {sorted(bad)}")
    return out


def test_plugin_imports_only_stdlib_and_qgis():
    allowed = set(sys.stdlib_module_names) | {"qgis", "processing"}
    assert offenders(PLUGIN, allowed=allowed) == []


def test_backend_never_imports_qgis_or_qt():
    forbidden = {"qgis", "PyQt5", "PyQt6", "PySide2", "PySide6", "sip", "processing"}
    assert offenders(BACKEND, forbidden=forbidden) == []


def test_guardrail_catches_an_offender(tmp_path):
    (tmp_path / "bad.py").write_text("import torch\nfrom rasterio import open\nimport json\nfrom . import x\n")
    (tmp_path / "good.py").write_text("import json\nfrom qgis.core import QgsProject\n")
    allowed = set(sys.stdlib_module_names) | {"qgis"}
    assert offenders(tmp_path, allowed=allowed) == ["bad.py: ['rasterio', 'torch']"]
