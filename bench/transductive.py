"""Transductive zero-shot at tile scale: time and peak memory of ``senclip.transduce``.

A synthetic scene of ``--cells`` cells (a square grid) × ``--dim`` dims × ``--classes`` classes:
Voronoi patches of classes, each cell's embedding its class centre plus a class-specific
low-rank variation plus isotropic noise (unit rows, float32), and class "texts" pulled towards
one class so that zero-shot is biased. Timed: ``transductive.solve`` with the paper's feature kNN
(k = 3) and the 8-neighbour spatial edges, each stage apart; peak RSS of the whole process (the
input embeddings included) and above the input. Each configuration runs in its own process, so
peaks do not mix. The accuracies are of this synthetic mixture (a check that the answer is
found at scale), never of a real model.

    python -m bench.transductive                      # 1M × 512 × 19, kNN auto, numba kernels
    python -m bench.transductive --cells 200000 --knn tree --numba on,off   # also the scipy twins
    python -m bench.transductive --method realistic,transclip,realistic,transclip --tag 1M-methods
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def scene(cells: int, dim: int, classes: int, seed: int = 0):
    """(valid grid, unit features (N, D) float32, true labels (N,), texts (K, D))."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(cells)))
    rows, cols = side, int(np.ceil(cells / side))
    valid = np.zeros(rows * cols, dtype=bool)
    valid[:cells] = True
    valid = valid.reshape(rows, cols)
    seeds = rng.uniform(0, side, size=(max(classes, cells // 500), 2))
    seed_class = rng.integers(0, classes, len(seeds))
    rr, cc = np.nonzero(valid)
    label = seed_class[cKDTree(seeds).query(np.c_[rr, cc])[1]]
    centre = rng.standard_normal((classes, dim)).astype(np.float32)
    basis = (0.35 * rng.standard_normal((classes, 16, dim))).astype(np.float32)
    x = np.empty((cells, dim), dtype=np.float32)
    for a in range(0, cells, 65536):
        b = min(cells, a + 65536)
        lab = label[a:b]
        x[a:b] = centre[lab] + 0.25 * rng.standard_normal((b - a, dim)).astype(np.float32)
        g = rng.standard_normal((b - a, 16)).astype(np.float32)
        for k in np.unique(lab):
            x[a:b][lab == k] += g[lab == k] @ basis[k]
        x[a:b] /= np.linalg.norm(x[a:b], axis=1, keepdims=True)
    c = centre / np.linalg.norm(centre, axis=1, keepdims=True)
    texts = 0.2 * c + 0.8 * c[[0]] + 0.05 * rng.standard_normal((classes, dim)).astype(np.float32)
    return valid, x, label, texts.astype(np.float32)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_store(path, valid, x) -> None:
    """The scene as an embedding store (float16, a row of the grid at a time), for ``--via-store``."""
    from senclip.embedding.store import StoreWriter

    rows, cols = valid.shape
    writer = StoreWriter(path, rows=rows, cols=cols, dim=x.shape[1], meta={"bench": "transductive"})
    at = 0
    for r in range(rows):
        cs = np.nonzero(valid[r])[0]
        writer.write(np.full(len(cs), r), cs, x[at:at + len(cs)].astype(np.float16))
        writer.valid[r, cs] = True
        at += len(cs)
    writer.commit()


def one_via_store(cells: int, dim: int, classes: int) -> dict:
    """What ``classify --embeddings STORE --transductive`` runs after the text encoder: the store
    read into one float32 array, grid edges, the solver, probabilities back on the grid. The scene
    is written to a temporary store first and dropped from memory (not timed)."""
    import tempfile

    from senclip.embedding.store import EmbeddingStore
    from senclip.zeroshot.transductive_map import store_transduce

    from senclip.zeroshot import kernels

    valid, x, label, texts = scene(cells, dim, classes)
    zs = _zero_shot(x, texts)
    with tempfile.TemporaryDirectory(prefix="senclip-bench-") as tmp:
        write_store(Path(tmp) / "store", valid, x)
        del x
        base_rss = current_rss_mb()
        t0 = time.perf_counter()
        probs, record = store_transduce(EmbeddingStore(Path(tmp) / "store"), texts)
        total = time.perf_counter() - t0
    acc = float((probs[valid].argmax(1) == label).mean())
    return {"cells": cells, "dim": dim, "classes": classes, "knn": record["knn"] + " (via store)", "spatial": True,
            "kernels": kernels.describe(), "seconds_total": round(total, 2), "seconds_spatial_edges": "in total",
            "seconds_graph": record["seconds"]["graph"], "seconds_solver": record["seconds"]["solve"],
            "graph_edges": record["edges"], "input_mb": round(cells * dim * 4 / 2**20),
            "rss_before_mb": round(base_rss), "peak_rss_mb": round(rss_mb()),
            "peak_above_input_mb": round(rss_mb() - base_rss),
            "synthetic_accuracy_zero_shot": round(float((zs == label).mean()), 4),
            "synthetic_accuracy_transductive": round(acc, 4)}


def _zero_shot(x, texts) -> np.ndarray:
    from senclip.zeroshot.head import probabilities

    unit = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    out = np.empty(len(x), dtype=np.int64)
    for a in range(0, len(x), 65536):
        out[a:a + 65536] = probabilities(x[a:a + 65536], unit).argmax(1)
    return out


def one(cells: int, dim: int, classes: int, knn: str, spatial: bool, method: str = "realistic") -> dict:
    """One configuration, in this process: scene, then the timed solve."""
    from senclip.zeroshot import kernels
    from senclip.zeroshot.spatial import grid_edges
    from senclip.zeroshot.transductive import solve

    valid, x, label, texts = scene(cells, dim, classes)
    zs = _zero_shot(x, texts)
    base_rss = current_rss_mb()
    t0 = time.perf_counter()
    edges = grid_edges(valid, x) if spatial else None
    t_edges = time.perf_counter() - t0
    sol = solve(x, texts, edges=edges, knn=knn, method=method)
    total = time.perf_counter() - t0
    return {"cells": cells, "dim": dim, "classes": classes, "knn": sol.record["knn"], "spatial": spatial,
            "kernels": kernels.describe(), "method": method, "load_average_1min": round(os.getloadavg()[0], 1),
            "seconds_total": round(total, 2), "seconds_spatial_edges": round(t_edges, 2),
            "seconds_graph": sol.record["seconds"]["graph"], "seconds_solver": sol.record["seconds"]["solve"],
            "graph_edges": sol.record["edges"], "input_mb": round(x.nbytes / 2**20),
            "rss_before_mb": round(base_rss), "peak_rss_mb": round(rss_mb()),
            "peak_above_input_mb": round(rss_mb() - base_rss),
            "synthetic_accuracy_zero_shot": round(float((zs == label).mean()), 4),
            "synthetic_accuracy_transductive": round(float((sol.probs.argmax(1) == label).mean()), 4)}


def machine() -> dict:
    import threadpoolctl

    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('num_threads')} threads)"
            for i in threadpoolctl.threadpool_info()]
    try:
        import faiss

        faiss_v = faiss.__version__
    except ImportError:
        faiss_v = None
    with open("/proc/cpuinfo") as fh:
        lines = fh.read().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return {"cpu": model, "cores": os.cpu_count(), "simd": simd, "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas, "faiss": faiss_v, "load_average": os.getloadavg()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--knn", default="auto", help="auto | exact | faiss | tree (several: comma-separated)")
    ap.add_argument("--no-spatial", action="store_true")
    ap.add_argument("--numba", default="on", help="on | off (SENCLIP_NUMBA=0: the numpy/scipy twins) | on,off")
    ap.add_argument("--method", default="realistic",
                    help="realistic | transclip (several: comma-separated, run in turn: 'realistic,transclip,realistic')")
    ap.add_argument("--via-store", action="store_true",
                    help="time the store path (classify --embeddings --transductive) instead of the solver alone")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="", help="name part of the result files")
    a = ap.parse_args(argv)
    if a.one:
        run = one_via_store(a.cells, a.dim, a.classes) if a.via_store else one(a.cells, a.dim, a.classes, a.knn,
                                                                                not a.no_spatial, a.method)
        print(json.dumps(run))
        return 0
    rows = []
    for method, numba, solver in ((m, nb, s) for m in a.knn.split(",") for nb in a.numba.split(",")
                                  for s in a.method.split(",")):
        rows.append(_run_one(a, method, numba, solver))
        if rows[-1] is None:
            return 1
        print(json.dumps(rows[-1]), flush=True)
    report = {"machine": machine(), "runs": rows, "targets": {"seconds": 60, "peak_rss_mb": 3072}}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"transductive{('-' + a.tag) if a.tag else ''}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def _run_one(a, method: str, numba: str, solver: str = "realistic") -> dict | None:
    """One configuration in a fresh process (so peak RSS is its own); None when it failed."""
    cmd = [sys.executable, "-m", "bench.transductive", "--one", "--cells", str(a.cells), "--dim", str(a.dim),
           "--classes", str(a.classes), "--knn", method, "--method", solver] + (["--no-spatial"] if a.no_spatial else []) + (
        ["--via-store"] if a.via_store else [])
    env = dict(os.environ, SENCLIP_NUMBA="0" if numba == "off" else "1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m.get('simd', []))}), numpy {m['numpy']}, {'; '.join(m['blas'])}, "
             f"faiss {m['faiss'] or 'not installed'}, load average at the end {m['load_average'][0]:.1f}", "",
             "| cells × D × K | method | kNN | spatial | loops | load | total s | kNN graph s | spatial edges s | solver s | peak RSS MB "
             "| above input MB | input MB | synthetic acc zero-shot → transductive |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        lines.append(f"| {r['cells']} × {r['dim']} × {r['classes']} | {r.get('method', 'transclip')} | {r['knn']} "
                     f"| {'8-nb' if r['spatial'] else 'no'} | {r.get('kernels', 'numpy/scipy')} "
                     f"| {r.get('load_average_1min', '')} | {r['seconds_total']} | {r['seconds_graph']} | {r['seconds_spatial_edges']} "
                     f"| {r['seconds_solver']} | {r['peak_rss_mb']} | {r['peak_above_input_mb']} | {r['input_mb']} "
                     f"| {r['synthetic_accuracy_zero_shot']:.3f} → {r['synthetic_accuracy_transductive']:.3f} |")
    lines += ["", "Targets: under 60 s and 3 GB on 2 cores (issue 20). Synthetic data: the accuracies only show "
              "that the known clusters are found, they say nothing about a real model."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
