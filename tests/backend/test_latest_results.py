"""tools/latest_results.py: the README's results block is made from the bench's own latest.md."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO))


def _doc(value=1104.0, errors=None):
    """A bench document as bench/run.py builds it (two figures with a target, one without)."""
    def row(section, name, value, unit, target="", ok=None, ratio=None):
        return {"section": section, "name": name, "value": value, "unit": unit, "limit": None, "limit_what": "",
                "ratio": ratio, "target": target, "ok": ok, "note": "a note", "extra": {}}

    machine = {"cpu": "AMD EPYC 7B13", "cpu_flags": ["avx2", "fma", "avx512f", "amx_tile"], "logical_cores": 2,
               "affinity_cores": 2, "mem_gb": 7.8, "platform": "Linux-x", "python": "3.11.2", "numpy": "1.24.2",
               "torch": "2.14.1", "onnxruntime": "1.32.0", "openvino": None, "open_clip": "3.3.0", "gdal": "3.6.2",
               "cuda": None, "load_avg_at_start": [7.5, 6.0, 3.1], "load_avg_at_end": [9.0, 8.0, 5.0]}
    return {"created": "2026-12-04T21:00:00+00:00", "quick": True, "command": "python -m bench.run --quick",
            "seconds": 600.0, "machine": machine, "errors": errors or {},
            "rows": [row("roofline", "fp32 GEMM", 150.0, "GFLOP/s"),
                     row("encoder", "torch eager fp32", 14.0, "chips/s"),
                     row("memory", "peak RSS, 2048² scene, pixel map, K=19", value, "MB", "<= 1", value < 1536,
                         value / 1536)]}


def _readme(block="old numbers from 2026-11-24"):
    import latest_results

    return f"# Title\n\nintro\n\n### Latest results\n\n{latest_results.BEGIN}\n{block}\n{latest_results.END}\n\n## Tests\n"


def test_generator_fills_the_block_from_latest_md():
    import latest_results
    from bench.report import markdown

    readme = _readme()
    new = latest_results.updated(readme, markdown(_doc()))
    block = new.split(latest_results.BEGIN)[1].split(latest_results.END)[0]
    assert "old numbers" not in new
    assert new.startswith("# Title\n\nintro\n\n### Latest results\n\n") and new.endswith(f"{latest_results.END}\n\n## Tests\n")
    assert "Benchmark results (quick run, 2026-12-04T21:00:00+00:00)" in block
    assert "CPU flags: avx2, fma, avx512f, amx_tile." in block and "2 logical cores" in block
    assert "at start: 7.5, 6.0, 3.1; at end: 9.0, 8.0, 5.0" in block and "`python -m bench.run --quick`" in block
    assert "onnxruntime 1.32.0, OpenVINO not installed" in block
    assert "| memory | peak RSS, 2048² scene, pixel map, K=19 | 1104 MB |  | 0.7188 | <= 1 | yes |" in block
    assert "| roofline | fp32 GEMM | 150 GFLOP/s |" in block
    assert "torch eager fp32" not in block  # no target: only in latest.md, which the block links to
    assert "[bench/results/latest.md](bench/results/latest.md)" in block
    assert latest_results.updated(new, markdown(_doc())) == new  # idempotent: a current block stays


def test_a_stale_block_is_detected():
    """What the docs test relies on: a block made from another run differs from the regenerated one."""
    import latest_results
    from bench.report import markdown

    readme = latest_results.updated(_readme(), markdown(_doc(value=1104.0)))
    assert latest_results.updated(readme, markdown(_doc(value=1600.0))) != readme
    failed = latest_results.updated(readme, markdown(_doc(errors={"memory": "RuntimeError: boom"})))
    assert "Failed sections: memory: RuntimeError: boom" in failed


def test_generator_refuses_a_readme_without_markers_and_a_foreign_latest_md():
    import latest_results
    from bench.report import markdown

    with pytest.raises(ValueError, match="latest-results:start"):
        latest_results.updated("# README without markers\n", markdown(_doc()))
    with pytest.raises(ValueError, match="not written by bench/report.py"):
        latest_results.updated(_readme(), "some hand-written table\n")
