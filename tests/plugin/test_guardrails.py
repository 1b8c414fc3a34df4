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


# --- the backend's stages: arrows point down, no cycles (docs/architecture.md §3) --------------------
# Each stage (a subpackage, or a top-level module such as api.py) says in its docstring which stages
# it may import ("May import: senclip.core, ..."); that line is the rule, this test only reads it.
# Every stage may import senclip._version; nothing inside senclip imports the package facade (__init__).

def module_name(path: Path, root: Path = BACKEND) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def senclip_imports(path: Path, root: Path = BACKEND) -> set[str]:
    """Dotted senclip modules (or packages) that ``path`` imports, relative imports resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    known, out = {module_name(p, root) for p in root.rglob("*.py")}, set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == root.name}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            if base.split(".")[0] == root.name:  # a submodule by name, else the module its names come from
                out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return out


def stage_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def declared_rules(root: Path = BACKEND) -> dict[str, set[str]]:
    """stage -> stages it may import, from the 'May import:' line of each stage's docstring."""
    rules = {}
    for path in sorted(root.glob("*/__init__.py")) + sorted(p for p in root.glob("*.py") if p.name != "__init__.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        text = " ".join(doc.split())
        stage = stage_of(module_name(path, root))
        allowed = text.split("May import:", 1)[1] if "May import:" in text else None
        rules[stage] = None if allowed is None else {
            w.strip(" ,.()") for w in allowed.split() if w.startswith(root.name + ".")}
    return rules


def layer_violations(root: Path = BACKEND) -> list[str]:
    rules, modules = declared_rules(root), {}
    out = [f"{s}: no 'May import:' line in its docstring" for s, r in rules.items()
           if r is None and s not in (f"{root.name}._version",)]
    for path in sorted(root.rglob("*.py")):
        modules[module_name(path, root)] = path
    for name, path in modules.items():
        if name == root.name:
            continue  # the facade may import every stage
        own, allowed = stage_of(name), (rules.get(stage_of(name)) or set()) | {f"{root.name}._version"}
        for target in senclip_imports(path, root):
            if target == root.name or target.startswith(f"{root.name}.__"):
                out.append(f"{name} imports the package facade ({target}); import the stage module instead")
                continue
            t = stage_of(target)
            if t != own and t in rules and t not in allowed:
                out.append(f"{name} -> {target}: {own} may import only {sorted(allowed)}")
    return out


def import_cycles(root: Path = BACKEND) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), lazy imports included."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {m: {t for t in senclip_imports(p, root) if t in modules and t != m} for m, p in modules.items()}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_backend_stages_import_only_downwards():
    assert layer_violations() == []


def test_backend_has_no_import_cycles():
    assert import_cycles() == []


def test_layer_guardrail_catches_upward_imports_and_cycles(tmp_path):
    pkg = tmp_path / "senclip"
    for sub, doc in (("low", "Low.\n\nMay import: nothing."), ("high", "High.\n\nMay import: senclip.low.")):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text(f'"""{doc}"""\n')
    (pkg / "__init__.py").write_text('"""Facade."""\n')
    (pkg / "low" / "a.py").write_text("def f():\n    from senclip.high import b\n")
    (pkg / "high" / "b.py").write_text("from ..low import a\nfrom senclip import thing\n")
    (pkg / "low" / "c.py").write_text("from . import d\n")
    (pkg / "low" / "d.py").write_text("from senclip.low import c\n")
    assert layer_violations(pkg) == [
        "senclip.high.b imports the package facade (senclip); import the stage module instead",
        "senclip.low.a -> senclip.high.b: senclip.low may import only ['senclip._version']",
    ]
    assert import_cycles(pkg) == [["senclip.high.b", "senclip.low.a"], ["senclip.low.c", "senclip.low.d"]]


FUNCTION_LINES = 60  # a function longer than this does not read at once: split it where its parts have names


def long_functions(folders=(BACKEND, PLUGIN, REPO / "training" / "senclip_train"), limit=FUNCTION_LINES) -> list[str]:
    out = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            if "backend_src" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > limit:
                        out.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_is_too_long_to_read_at_once():
    assert long_functions() == []


def test_long_function_check_counts_lines(tmp_path):
    (tmp_path / "m.py").write_text("def short():\n    return 1\n\n\ndef long():\n" + "    x = 1\n" * 60)
    assert long_functions([tmp_path], limit=60) == [f"{tmp_path.name}/m.py:5 long (61 lines)"]
