"""``--precision auto``: the fixed table's choice beside the measured one (issue 22), on this machine.

`python -m bench.autotune` (~5 min on 2 cores, first run +1.5 min for the ONNX export): tunes a
random full ViT-B/32 (``untrained-smoke``) from an empty cache and reports how long that took and
what won, then times ORT fp32, the table's choice and the measured choice on the same real
Sentinel-2 chips in interleaved rounds (batch 32, the pipeline's default) and gives each as a
ratio to this run's ORT fp32. Writes bench/results/autotune-<date>.{json,md}. Random weights:
the cosines are agreement between engines, not accuracy.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from .common import RESULTS, Timer, quick, setup_env
from .encoder import BATCH, _pass, demo_scene, scene_chips

MODEL = "untrained-smoke"


def _load(precision: str, autotune: bool = True, retune: bool = False):
    from senclip.core.feedback import Feedback
    from senclip.models.loading import load_model

    class Log(Feedback):
        def info(self, text):
            print("  " + text, file=sys.stderr)

    os.environ["SENCLIP_AUTOTUNE"] = "1" if autotune else "0"
    os.environ["SENCLIP_RETUNE"] = "1" if retune else "0"
    try:
        with Timer() as t:
            lm = load_model(MODEL, backend="onnx", device="cpu", precision=precision, feedback=Log())
    finally:
        os.environ.pop("SENCLIP_AUTOTUNE")
        os.environ.pop("SENCLIP_RETUNE")
    return lm, t.s


def _label(lm) -> str:
    hint = getattr(lm.image, "hint", "")
    return f"{lm.engine} {lm.precision}" + (f" {hint.lower()}" if hint else "")


def run() -> dict:
    from senclip.models import autotune
    from senclip.models.precision import cpu_features, installed_engines

    from .machine import facts

    setup_env()
    _load("fp32")  # makes the export once, outside the tuning time
    tuned, tune_load_s = _load("auto", retune=True)
    cpu = cpu_features()
    entry = autotune.cached(autotune.tune_key((tuned.model_id, tuned.checksum), cpu,
                                              autotune.cpu_candidates(cpu, installed_engines())))
    cached, cached_load_s = _load("auto")
    table, _ = _load("auto", autotune=False)
    ref, _ = _load("fp32")
    chips = scene_chips(demo_scene(), 96 if quick() else 192)
    engines = {"ORT fp32": ref.image, f"table: {_label(table)}": table.image, f"measured: {_label(tuned)}": tuned.image}
    best = dict.fromkeys(engines, 0.0)
    emb = {}
    for enc in engines.values():
        enc.encode_chips(chips[:BATCH])
    for _ in range(2 if quick() else 3):
        for name, enc in engines.items():
            emb[name], rate = _pass(enc, chips)
            best[name] = max(best[name], rate)
    r0 = emb["ORT fp32"]
    rows = [{"name": name, "chips_per_s": round(rate, 2), "x_ort_fp32": round(rate / best["ORT fp32"], 3),
             "cos_min": round(float((emb[name] * r0).sum(1).min()), 6)} for name, rate in best.items()]
    return {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": facts(), "model": MODEL, "chips": len(chips),
            "batch": BATCH, "tuning": {"load_s": round(tune_load_s, 1), "measure_s": entry["seconds"],
                                       "cached_load_s": round(cached_load_s, 1), "results": entry["results"],
                                       "openvino": autotune.engine_versions()["openvino"],
                                       "reason": tuned.precision_reason, "cached_reason": cached.precision_reason},
            "rows": rows}


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# --precision auto: table vs measured ({res['when']})", "",
             f"Machine: {m.get('cpu', '?')}, {m.get('affinity_cores', '?')} usable cores, flags: "
             f"{', '.join(m.get('cpu_flags', [])) or '?'}. Model: random ViT-B/32 ({res['model']}), "
             f"{res['chips']} real S2 chips, batch {res['batch']}, best pass of interleaved rounds.", "",
             "| engine | chips/s | x ORT fp32 (this run) | min cosine to ORT fp32 |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['chips_per_s']:.1f} | {r['x_ort_fp32']:.2f} | {r['cos_min']:.6f} |"
              for r in res["rows"]]
    t = res["tuning"]
    lines += ["", f"Tuning from an empty cache: {t['measure_s']:.1f} s of measuring ({t['load_s']:.1f} s load "
              f"in all); the next load reads the cache ({t['cached_load_s']:.1f} s).", "",
              "| candidate (tuning pass, 32 calibration chips, batch 16) | chips/s | min cosine | passes 0.999 |",
              "|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['chips_per_s']:.1f} | {r['cosine']:.6f} | "
              f"{'yes' if r['accurate'] else ('unavailable: ' + r['error'] if r['error'] else 'no')} |"
              for r in t["results"]]
    lines += ["", f"Log line: `{t['reason']}`", "",
              f"Load avg at start: {m.get('load_avg_at_start')}; onnxruntime {m.get('onnxruntime')}, "
              f"openvino {t.get('openvino', '?')}.", ""]
    return "\n".join(lines)


def main() -> int:
    res = run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"autotune-{time.strftime('%Y-%m-%d')}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
