"""Disk size of installed distributions and everything they require, for the install-size tests of
the plugin's plan (tests/plugin/test_install_plan.py) and of the light venv (tests/torchfree)."""
from __future__ import annotations

from pathlib import Path


def installed_mib(roots, under: Path | None = None) -> tuple[float, set, set]:
    """MiB on disk of ``roots`` (requirement strings: "torch", "senclip[light]") and everything they
    require here (markers and extras evaluated), from the installed files' sizes (only those below
    ``under`` when given: a venv without the system's site-packages); the names of those
    distributions; required ones not installed."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen, missing = {}, set()
    todo = [(Requirement(r).name, tuple(Requirement(r).extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            missing.add(canonicalize_name(name))
            continue
        key = canonicalize_name(name)
        if key in seen and set(extras) <= seen[key][1]:
            continue
        seen[key] = (dist, seen.get(key, (dist, set()))[1] | set(extras))
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
                todo.append((req.name, tuple(req.extras)))
    total = 0
    for dist, _ in seen.values():
        for f in dist.files or []:
            path = Path(dist.locate_file(f))
            if under is None or Path(under) in path.resolve().parents:
                total += path.stat().st_size if path.is_file() else 0
    return total / 2**20, set(seen), missing


