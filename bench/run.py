"""``make bench``: run every section, print the table, write bench/results/latest.{json,md}.

``BENCH_QUICK=1`` (or ``--quick``) runs each section on less data (a few minutes);
``--only encoder,memory`` runs some sections. A section that fails is reported as failed with
its error; no figure is ever filled in for it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import traceback

from .common import RESULTS, VIT_B32_GFLOP, Row, quick, setup_env

SECTIONS = ("roofline", "encoder", "pipeline", "reprompt", "memory", "gpu", "region")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="less data per section (same as BENCH_QUICK=1)")
    ap.add_argument("--only", default="", help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--out", default=str(RESULTS), help="folder for latest.json / latest.md")
    args = ap.parse_args(argv)
    if args.quick:
        os.environ["BENCH_QUICK"] = "1"
    only = [s for s in args.only.split(",") if s] or list(SECTIONS)
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    setup_env()
    from . import machine

    t_start = time.perf_counter()
    facts = machine.facts()
    print(f"machine: {facts['cpu']}, {facts['logical_cores']} logical cores, torch threads {facts['torch_threads']}"
          f"{', quick mode' if quick() else ''}", flush=True)
    rows: list[Row] = []
    errors: dict[str, str] = {}
    ctx: dict = {}
    g = machine.gemm_gflops()
    ctx["gemm"] = g
    roof = g["best"] / VIT_B32_GFLOP
    rows.append(machine.roofline_row(g))
    print(rows[-1].note, flush=True)
    for name in only:
        if name == "roofline":
            continue
        t0 = time.perf_counter()
        print(f"--- {name}", flush=True)
        try:
            mod = __import__(f"bench.{name}", fromlist=["run"])
            new = mod.run(roof, ctx)
        except Exception as e:  # a failed section is reported, never filled in
            errors[name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            new = [Row(name, "section failed", None, "", note=errors[name][:300], ok=False)]
        for r in new:
            print("  " + _line(r), flush=True)
        rows.extend(new)
        print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)
    if "roofline" in only or "encoder" in only:  # the roofline again, after the load of the run
        g2 = machine.gemm_gflops()
        rows[0].extra["after_run"] = g2
    total = time.perf_counter() - t_start
    facts["load_avg_at_end"] = os.getloadavg()
    command = "python -m bench.run" + (" --quick" if quick() else "") + (f" --only {args.only}" if args.only else "")
    doc = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "quick": quick(),
           "command": command, "seconds": round(total, 1), "machine": facts, "rows": [r.to_dict() for r in rows],
           "errors": errors}
    from .report import write

    paths = write(doc, args.out)
    print(f"wrote {', '.join(map(str, paths))} in {total:.0f} s")
    return 1 if errors else 0


def _line(r: Row) -> str:
    v = "-" if r.value is None else f"{r.value:.4g} {r.unit}"
    ratio = "" if r.ratio is None else f"  ratio {r.ratio:.3g} (vs {r.limit_what})"
    ok = {True: "  [met]", False: "  [NOT met]", None: ""}[r.ok]
    tgt = f" target {r.target}" if r.target else ""
    return f"{r.name}: {v}{ratio}{tgt}{ok}" + (f"\n      {r.note}" if r.note else "")


if __name__ == "__main__":
    sys.exit(main())
