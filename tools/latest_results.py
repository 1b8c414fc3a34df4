"""Write README.md's "Latest results" block from bench/results/latest.md.

Run after `make bench` (or `python -m bench.run --quick`): `python tools/latest_results.py`. The
block (between the markers) is a short summary: when and how the bench ran, the machine (CPU, flags,
cores, load), engine versions, and the figures that have a target, with a link to every figure and
its notes in latest.md. tests/backend/test_docs.py fails when the README block and latest.md
disagree, so numbers in the README cannot outlive the run they came from.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LATEST = REPO / "bench" / "results" / "latest.md"
BEGIN, END = "<!-- latest-results:start -->", "<!-- latest-results:end -->"
LINK = "bench/results/latest.md"
_FACTS = ("Machine:", "CPU flags:", "Versions:", "Load average")


def _table(lines: list[str]) -> list[list[str]]:
    """The cells of the results table (header and separator dropped)."""
    rows = [ln for ln in lines if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in rows[1:]]


def render(latest_md: str) -> str:
    """The README block for one latest.md: raises ValueError when it is not the bench's report."""
    lines = latest_md.splitlines()
    if not lines or not lines[0].startswith("# Benchmark results ("):
        raise ValueError(f"{LINK} does not start with '# Benchmark results (': not written by bench/report.py; "
                         "rerun the bench (python -m bench.run --quick)")
    title = lines[0][2:].strip()
    facts = [ln.rstrip() for ln in lines if ln.startswith(_FACTS)]
    keep = [r for r in _table(lines) if len(r) == 7 and (r[5] or r[6] or r[0] == "roofline")]
    out = [f"{title}; generated from [{LINK}]({LINK}) by `python tools/latest_results.py`.", ""]
    out += [f"{ln}  " for ln in facts] + [""]
    out += ["| section | figure | value | compared to | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    out += [f"| {' | '.join(r)} |" for r in keep]
    if "Failed sections:" in lines:
        out += ["", "Failed sections: " + "; ".join(ln[2:] for ln in lines[lines.index("Failed sections:") + 1:]
                                                   if ln.startswith("- "))]
    out += ["", "Random weights throughout: speed and memory figures, never accuracy. Every figure, what it is "
                f"compared to, and its notes: [{LINK}]({LINK})."]
    return "\n".join(out)


def updated(readme: str, latest_md: str) -> str:
    """``readme`` with the block between the markers replaced; ValueError without the markers."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise ValueError(f"README needs exactly one {BEGIN} ... {END} pair, in that order, where the latest "
                         "results belong")
    block = f"{BEGIN}\n{render(latest_md)}\n{END}"
    return re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, readme, flags=re.S)


def main() -> int:
    try:
        new = updated(README.read_text(encoding="utf-8"), LATEST.read_text(encoding="utf-8"))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tmp = README.with_name(".README.md.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(README)
    print(f"updated the latest-results block of {README} from {LATEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
