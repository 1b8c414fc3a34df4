"""README is the front door; the references behind it (docs/cli.md, docs/processing.md) are generated."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))


def test_cli_reference_is_current():
    """docs/cli.md is every command's --help, option for option: stale means an option is undocumented."""
    import cli_reference

    text = cli_reference.OUT.read_text(encoding="utf-8")
    assert cli_reference.render() == text, "docs/cli.md is stale: run .venv/bin/python tools/cli_reference.py"
    assert "## `senclip classify`" in text and "--cloud-mask" in text


def test_readme_is_a_front_door():
    """Short enough to read (the references live in docs/), and every document it links to exists."""
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 15_000, "README.md over 15 KB: move reference material into docs/"
    links = [m for m in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if not m.startswith("http")]
    assert "docs/cli.md" in links and "docs/processing.md" in links
    assert [link for link in links if not (REPO / link).exists()] == []


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


def _anchors(md: str) -> set[str]:
    """GitHub's heading anchors (lower case, punctuation dropped, spaces to '-') plus explicit ids."""
    import re

    heads = [line.lstrip("#").strip() for line in md.splitlines() if re.match(r"#{1,6} ", line)]
    slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}
    return slugs | set(re.findall(r'<a id="([^"]+)"', md))


def broken_links(root=REPO) -> list[str]:
    """Relative links in README.md and docs/*.md whose file or #anchor does not exist."""
    import re

    out = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                out.append(f"{doc.relative_to(root)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text(encoding="utf-8")):
                out.append(f"{doc.relative_to(root)}: {target} (no such heading)")
    return out


def test_documentation_links_resolve():
    assert broken_links() == []


def test_link_check_catches_a_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("[a](docs/a.md#two) [b](docs/b.md) [c](#top)\n# Top\n")
    (tmp_path / "docs" / "a.md").write_text("# One\n")
    assert broken_links(tmp_path) == ["README.md: docs/a.md#two (no such heading)", "README.md: docs/b.md (no such file)"]
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
