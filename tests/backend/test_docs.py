"""README is the front door: its CLI reference must match the CLI, option for option."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))


def test_readme_cli_reference_is_current():
    import cli_reference

    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert cli_reference.BEGIN in text, "README lacks the CLI reference markers"
    assert cli_reference.updated(text) == text, "README's CLI reference is stale: run python tools/cli_reference.py"


def test_readme_shows_a_result_picture():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for img in [line.split("](")[1].split(")")[0] for line in text.splitlines() if line.startswith("![")]:
        assert (REPO / img).is_file(), img
    assert "![" in text


def test_documents_cited_by_the_code_exist():
    """A docstring that sends the reader to docs/x.md (or a DESIGN.md) must not send them nowhere."""
    import re

    cited = {}
    for folder in ("backend", "senclip_qgis", "training", "tests", "tools", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            if "backend_src" in path.parts or path == Path(__file__):
                continue
            for name in re.findall(r"\b((?:docs/)?[A-Za-z_-]+\.md)\b", path.read_text(encoding="utf-8")):
                if name.startswith("docs/") or name.isupper() or name[:-3].isupper():
                    cited.setdefault(name, path.relative_to(REPO))
    missing = {name: str(where) for name, where in cited.items() if not (REPO / name).is_file()}
    assert "docs/plugin.md" in cited and missing == {}


def test_readme_latest_results_are_bench_results_latest_md():
    """The README's results block is generated from bench/results/latest.md: hand-copied numbers
    went stale once (README quoted a run of old bench scripts)."""
    import latest_results

    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert latest_results.BEGIN in text, (f"README lacks the {latest_results.BEGIN} ... {latest_results.END} markers "
                                          "around its 'Latest results'; add them and run python tools/latest_results.py")
    latest = (REPO / "bench" / "results" / "latest.md").read_text(encoding="utf-8")
    assert latest_results.updated(text, latest) == text, \
        "README's latest results are stale: run python tools/latest_results.py (after the bench)"
