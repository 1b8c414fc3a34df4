"""The realistic transductive case (issue 27): scenes that hold only some of the classes typed.

The StatA protocol (Zanella et al., "Realistic Test-Time Adaptation of Vision-Language Models", CVPR
2025): every batch is classified against all K class texts while it holds only 1, 2, 4, 8 or all K
of the classes, in equal numbers (balanced) or in long-tailed shares (48/24/12/8/6/4/3/2 %, cut to
the number present), over several random draws. The embeddings come from the calibrated simulator
(:mod:`bench.realistic_sim`, four simulated models; no real CLIP weights are reachable here), and
each batch runs through plain zero-shot, the two whole-scene calibrations (``column-mean``, the
SenCLIP paper's; ``shares``) and the two transductive solvers (``transclip``, the published one;
``realistic``, the default) side by side. Accuracy in points; "vs zero-shot" is the mean over draws
of (method − zero-shot) on the same batch.

    python -m bench.transductive_realistic            # 10 draws per condition (12 min on 2 busy cores)
    python -m bench.transductive_realistic --quick    # 3 draws

Writes bench/results/transductive-realistic.{json,md} and docs/img/transductive-realistic.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.realistic_sim import MODELS, batch, statistics, world

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PLOT = ROOT / "docs" / "img" / "transductive-realistic.png"
CONDITIONS = ((1, False), (2, False), (4, False), (8, False), (2, True), (4, True), (8, True), (19, False))
METHODS = ("zero-shot", "column-mean", "shares", "transclip", "realistic")


def accuracies(x: np.ndarray, y: np.ndarray, texts: np.ndarray) -> dict:
    """Accuracy of every method on one batch."""
    from senclip.zeroshot.head import calibrate_probabilities, probabilities
    from senclip.zeroshot.transductive import transduce

    p = probabilities(x, texts)
    out = {"zero-shot": p, "column-mean": calibrate_probabilities(p, "column-mean"),
           "shares": calibrate_probabilities(p, "shares"), "transclip": transduce(x, texts, method="transclip"),
           "realistic": transduce(x, texts, method="realistic")}
    return {m: float((q.argmax(1) == y).mean()) for m, q in out.items()}


def condition(name: str, n_present: int, long_tailed: bool, seeds: int) -> dict:
    """Mean accuracy of each method over ``seeds`` draws, and the mean gain over zero-shot."""
    wld = world(next(m for m in MODELS if m.name == name))
    runs = []
    for s in range(seeds):
        x, y = batch(wld, n_present, long_tailed=long_tailed, seed=1000 * n_present + 100 * long_tailed + s)
        runs.append(accuracies(x, y, wld.texts))
    acc = {m: 100 * float(np.mean([r[m] for r in runs])) for m in METHODS}
    return {"model": name, "present": n_present, "long_tailed": long_tailed, "draws": seeds, "accuracy": acc,
            "vs_zero_shot": {m: acc[m] - acc["zero-shot"] for m in METHODS}}


def label(n: int, lt: bool) -> str:
    return f"{n}{' long-tailed' if lt else ''}"


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [f"Simulated embeddings (bench/realistic_sim.py: D = 512, K = 19, 53 images per class present; "
             f"{len(MODELS)} simulated models), {report['draws']} draws per condition; "
             f"{report['seconds']:.0f} s on {report['machine']}.", "",
             "Points vs zero-shot, mean over the models (worst model in brackets):", "",
             "| classes present (of 19) | zero-shot acc | " + " | ".join(METHODS[1:]) + " |",
             "|---|---|" + "---|" * (len(METHODS) - 1)]
    for n, lt in CONDITIONS:
        sel = [r for r in rows if r["present"] == n and r["long_tailed"] == lt]
        cells = [f"{np.mean([r['accuracy']['zero-shot'] for r in sel]):.1f}"]
        for m in METHODS[1:]:
            v = [r["vs_zero_shot"][m] for r in sel]
            cells.append(f"{np.mean(v):+.1f} ({min(v):+.1f})")
        lines.append(f"| {label(n, lt)} | " + " | ".join(cells) + " |")
    lines += ["", "Per model, accuracy % (zero-shot / column-mean / shares / transclip / realistic):", "",
              "| model | " + " | ".join(label(n, lt) for n, lt in CONDITIONS) + " |",
              "|---|" + "---|" * len(CONDITIONS)]
    for m in MODELS:
        cells = [" / ".join(f"{r['accuracy'][k]:.1f}" for k in METHODS) for r in rows if r["model"] == m.name]
        lines.append(f"| {m.name} | " + " | ".join(cells) + " |")
    lines += ["", "Simulator statistics (means of the issue's measures over a balanced draw; real ranges in bench/realistic_sim.py):", ""]
    for name, st in report["statistics"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()))
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Accuracy (mean over the models) against the number of classes present, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, lt in zip(axes, (False, True)):
        conds = [(n, t) for n, t in CONDITIONS if t == lt or (lt and n == 1)]
        xs = [n for n, _ in conds]
        for m in METHODS:
            ys = [np.mean([r["accuracy"][m] for r in report["rows"] if r["present"] == n and r["long_tailed"] == t])
                  for n, t in conds]
            ax.plot(xs, ys, marker="o", label=m, linestyle="--" if m == "zero-shot" else "-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("classes present (of 19 typed)")
        ax.set_title("long-tailed shares" if lt else "balanced")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy % (mean of 4 simulated models)")
    axes[1].legend(loc="lower right")
    fig.suptitle("Transductive zero-shot when the scene holds only some of the classes (simulated)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 draws per condition instead of 10")
    ap.add_argument("--draws", type=int, default=None)
    a = ap.parse_args(argv)
    draws = a.draws or (3 if a.quick else 10)
    t0 = time.perf_counter()
    rows = []
    for m in MODELS:
        for n, lt in CONDITIONS:
            rows.append(condition(m.name, n, lt, draws))
            print(json.dumps(rows[-1]), flush=True)
    from bench.transductive import machine

    mach = machine()
    report = {"draws": draws, "seconds": time.perf_counter() - t0, "rows": rows,
              "machine": f"{mach['cpu']}, {mach['cores']} cores, load {mach['load_average'][0]:.1f}",
              "statistics": {m.name: statistics(world(m)) for m in MODELS}}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / "transductive-realistic"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".md").write_text(markdown(report))
    plot(report, PLOT)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
