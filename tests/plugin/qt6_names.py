"""Which Qt names of the plugin does PyQt6 (QGIS 4) lack?  Run by ``test_qt6_compat.py`` in its own
PyQt6 virtual environment, never in the pytest process: pytest-qgis has PyQt5 loaded there, and two
Qt majors in one process crash.

Usage: ``python qt6_names.py PLUGIN_DIR`` -> JSON on stdout: ``offenders`` (``"file:line: message"``)
and ``qt_modules`` (the Qt bindings this process loaded, to show it never touched PyQt5).

For every name imported from ``qgis.PyQt.<module>`` the attribute chains rooted at it
(``Qt.DockWidgetArea.RightDockWidgetArea``, ``QHeaderView.Stretch``) are resolved against
``PyQt6.<module>``; the first missing attribute is an offender. Also flagged: ``exec_`` anywhere and
any ``PyQt5`` import. Imports inside an ``except ImportError:`` handler are the Qt5 fallback of a
``try`` and are not resolved against PyQt6.
"""
from __future__ import annotations

import ast
import importlib
import json
import sys
from pathlib import Path

# What QGIS's own qgis.PyQt shim adds on Qt6 builds beyond plain PyQt6 (python/PyQt/PyQt6/*.py in
# the QGIS source): only monkey-patched methods, no names; kept as data so an addition is one line.
SHIM_EXTRAS: dict[str, set[str]] = {"QtWidgets": {"QLayout.setMargin"}}


def attribute_chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"]); None when the root is not a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return node.id, parts[::-1]


def in_import_fallback(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``except ImportError`` handlers (the Qt5 branch of a try)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                       for n in names):
                    skip |= {id(n) for stmt in handler.body for n in ast.walk(stmt)}
    return skip


def qt_imports(tree: ast.AST, skip: set[int]) -> tuple[dict[str, tuple[str, str]], list[tuple[int, str]]]:
    """local name -> (Qt module, imported name) for ``from qgis.PyQt.X import Y``; plus problems."""
    names, problems = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "PyQt5":
                problems.append((node.lineno, f"imports {node.module}: use qgis.PyQt"))
            if node.module.startswith("qgis.PyQt.") and id(node) not in skip:
                module = node.module.split(".", 2)[2]
                for alias in node.names:
                    names[alias.asname or alias.name] = (module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "PyQt5":
                    problems.append((node.lineno, f"imports {alias.name}: use qgis.PyQt"))
    return names, problems


def resolve(module: str, name: str, chain: list[str]) -> str | None:
    """None if ``PyQt6.module.name.chain`` exists, else the dotted name that does not."""
    try:
        obj = importlib.import_module(f"PyQt6.{module}")
    except ImportError:
        return f"PyQt6.{module}"
    path = [name] + chain
    for i, part in enumerate(path):
        dotted = ".".join(path[: i + 1])
        if dotted in SHIM_EXTRAS.get(module, set()):
            return None
        if not hasattr(obj, part):
            return f"{module}.{dotted}"
        obj = getattr(obj, part)
    return None


def check_file(path: Path, root: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    rel = path.relative_to(root)
    names, problems = qt_imports(tree, in_import_fallback(tree))
    out = [f"{rel}:{line}: {msg}" for line, msg in problems]
    for local, (module, name) in sorted(names.items()):
        missing = resolve(module, name, [])
        if missing:
            out.append(f"{rel}: PyQt6 has no {missing} (imported as {local})")
    seen = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "exec_":
            out.append(f"{rel}:{node.lineno}: exec_() does not exist in PyQt6: use exec()")
            continue
        if not isinstance(node, ast.Attribute) or id(node) in seen:
            continue
        chain = attribute_chain(node)
        if chain is None or chain[0] not in names:
            continue
        for sub in ast.walk(node):  # report the longest chain only
            seen.add(id(sub))
        module, name = names[chain[0]]
        missing = resolve(module, name, chain[1])
        if missing:
            out.append(f"{rel}:{node.lineno}: PyQt6 has no {missing}")
    return out


def check_plugin(root: Path) -> list[str]:
    out = []
    for path in sorted(Path(root).rglob("*.py")):
        if "backend_src" in path.parts:
            continue
        out.extend(check_file(path, Path(root)))
    return sorted(out)


if __name__ == "__main__":
    offenders = check_plugin(Path(sys.argv[1]))
    qt = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("PyQt5", "PyQt6", "qgis")})
    print(json.dumps({"offenders": offenders, "qt_modules": qt}))
