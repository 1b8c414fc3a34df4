"""bench/results/latest.json and latest.md (the tables docs/performance.md and the README quote)."""
from __future__ import annotations

import json
import os
from pathlib import Path


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        s = f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    else:
        s = str(v)
    return f"{s} {unit}".strip()


def markdown(doc: dict) -> str:
    m = doc["machine"]
    load = lambda k: ", ".join(f"{x:.1f}" for x in m.get(k, [])) or "?"  # noqa: E731
    cores = f"{m['logical_cores']} logical cores" + (f" ({m['affinity_cores']} usable)"
                                                      if m.get("affinity_cores") not in (None, m["logical_cores"]) else "")
    lines = [f"# Benchmark results ({'quick' if doc['quick'] else 'full'} run, {doc['created']})", "",
             f"Machine: {m['cpu']}, {cores}, {m.get('mem_gb', '?')} GB RAM; {m['platform']}; "
             f"GPU: {m.get('cuda') or 'none'}.  ",
             f"CPU flags: {', '.join(m.get('cpu_flags', [])) or 'none of avx2/avx512*/amx*'}.  ",
             f"Versions: Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}, onnxruntime "
             f"{m.get('onnxruntime')}, OpenVINO {m.get('openvino') or 'not installed'}, open_clip "
             f"{m.get('open_clip')}, GDAL {m.get('gdal')}.  ",
             f"Load average (1, 5, 15 min) at start: {load('load_avg_at_start')}; at end: {load('load_avg_at_end')} "
             f"(other work on the machine slows every figure; ratios are measured within the run). "
             f"Run took {doc['seconds']:.0f} s: `{doc.get('command', 'python -m bench.run')}`.", "",
             "| section | figure | value | compared to | ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        met = {True: "yes", False: "**no**", None: ""}[r["ok"]]
        lim = f"{r['limit_what']} ({_fmt(r['limit'])})" if r["limit_what"] else ""
        lines.append(f"| {r['section']} | {r['name']} | {_fmt(r['value'], r['unit'])} | {lim} | "
                     f"{_fmt(r['ratio'])} | {r['target']} | {met} |")
    lines += ["", "Notes:", ""]
    lines += [f"- **{r['section']} / {r['name']}**: {r['note']}" for r in doc["rows"] if r["note"]]
    if doc["errors"]:
        lines += ["", "Failed sections:", ""] + [f"- {k}: {v}" for k, v in doc["errors"].items()]
    return "\n".join(lines) + "\n"


def write(doc: dict, out_dir) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("latest.json", json.dumps(doc, indent=2, default=str)), ("latest.md", markdown(doc))):
        p = out / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
        paths.append(p)
    return paths
