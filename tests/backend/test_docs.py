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
