"""``--precision auto`` on a CPU: measure the engines instead of trusting a table.

Why: the table in :mod:`senclip.models.precision` encodes what was fastest on the machines we measured
(OpenVINO bf16 wherever bf16 exists), but on an AVX-512/VNNI/BF16 Zen 4 without AMX it reached
only 1.84x ORT fp32, and which of ORT int8, OpenVINO bf16 or OpenVINO's THROUGHPUT streams wins
depends on the CPU, the core count and the engine versions. So the first run on a machine times
every candidate on the calibration chips (:mod:`senclip.models.calibration`: the same 32 real Sentinel-2
chips also give each candidate's cosine to fp32), keeps the fastest one whose cosine is
>= ``MIN_COSINE``, and caches the result in ``$SENCLIP_HOME/onnx/autotune.json`` keyed by what
decides speed: CPU model and flags, cores, engine versions and the model's checksum. A change of
any of them measures again; ``SENCLIP_RETUNE=1`` or ``senclip models tune`` forces it,
``SENCLIP_AUTOTUNE=0`` falls back to the table. Cost: one warm-up and ``TIMED_BATCHES`` batches
of ``BATCH`` chips per candidate (ViT-B/32 on a 2-core AVX2 VM: ~15 s once).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from importlib import metadata

import numpy as np

from senclip.models.calibration import calibration_chips
from senclip.core.errors import BackendUnavailableError
from senclip.core.outputs import write_text
from senclip.models.precision import MIN_COSINE, Choice

BATCH = 16  # chips per timed batch (two batches cover the 32 calibration chips)
TIMED_BATCHES = 2  # after one warm-up batch; the best batch rate counts (a busy moment only slows one)
FORMAT = 1  # bump when what is measured changes: old cache entries are then ignored
REFERENCE = ("onnxruntime", "fp32")


@dataclass(frozen=True)
class Candidate:
    """One way to run the ONNX image encoder on the CPU (``hint``: OpenVINO's performance hint)."""

    engine: str
    precision: str
    hint: str = ""

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}" + (f" {self.hint.lower()}" if self.hint else "")


@dataclass(frozen=True)
class Result:
    candidate: Candidate
    chips_per_s: float = 0.0
    cosine: float = 0.0  # smallest cosine to the fp32 reference over the calibration chips
    error: str = ""  # why it could not run here

    def accurate(self, min_cosine: float = MIN_COSINE) -> bool:
        return not self.error and self.cosine >= min_cosine


def enabled() -> bool:
    return os.environ.get("SENCLIP_AUTOTUNE", "1") != "0"


def cpu_candidates(cpu, engines) -> list[Candidate]:
    """Everything worth timing on this CPU, the fp32 reference first."""
    from senclip.models.encoders.openvino_encoder import HINTS

    engines = set(engines)
    out = []
    if "onnxruntime" in engines:
        out += [Candidate("onnxruntime", "fp32"), Candidate("onnxruntime", "int8")]
    if "openvino" in engines:
        if not out:
            out.append(Candidate("openvino", "fp32", "LATENCY"))
        formats = ["bf16"] if cpu.bf16 else ["fp32"]  # bf16 without native units is emulated: slower
        out += [c for c in (Candidate("openvino", f, h) for f in formats for h in HINTS) if c not in out]
    return out


def _encode(encoder, chips: np.ndarray, timer, batch: int) -> tuple[np.ndarray, float]:
    """Embeddings of ``chips`` and the best chips/s over ``TIMED_BATCHES`` batches, after a warm-up
    batch (the first call allocates and, in OpenVINO, finishes compiling)."""
    parts = [chips[i:i + batch] for i in range(0, len(chips), batch)]
    emb = [encoder.encode_chips(p) for p in parts[:1]]
    best = 0.0
    for k in range(TIMED_BATCHES):
        part = parts[(k + 1) % len(parts)]
        t0 = timer()
        out = encoder.encode_chips(part)
        dt = timer() - t0
        best = max(best, len(part) / max(dt, 1e-9))
        if len(emb) < len(parts):
            emb.append(out)
    emb += [encoder.encode_chips(p) for p in parts[len(emb):]]
    e = np.concatenate(emb).astype(np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12), best


def measure(make, candidates: list[Candidate], chips: np.ndarray | None = None, *,
            timer=time.perf_counter, batch: int = BATCH) -> list[Result]:
    """Speed and cosine to the first candidate (the fp32 reference) of every candidate. One that
    cannot be made here (engine missing, model it cannot read) gets its ``error``, not a crash."""
    chips = calibration_chips() if chips is None else chips
    results, ref = [], None
    for c in candidates:
        try:
            enc = make(c)
            emb, rate = _encode(enc, chips, timer, batch)
        except Exception as e:  # an engine that cannot run here loses; the others still compete
            results.append(Result(c, error=str(e).splitlines()[0][:200] if str(e) else type(e).__name__))
            continue
        if ref is None:
            ref = emb
        results.append(Result(c, rate, float((emb * ref).sum(1).min())))
        del enc
    return results


def winner(results: list[Result], min_cosine: float = MIN_COSINE) -> Result | None:
    """The fastest candidate that keeps the accuracy gate (None: nothing ran)."""
    ok = [r for r in results if r.accurate(min_cosine)]
    return max(ok, key=lambda r: r.chips_per_s) if ok else None


def table_result(results: list[Result], table: list[Choice], min_cosine: float = MIN_COSINE) -> Result | None:
    """What the fixed table (:func:`senclip.models.precision.candidates`) would have run: its first
    choice that passes the same gate (OpenVINO with its default LATENCY hint)."""
    from senclip.models.encoders.openvino_encoder import PERFORMANCE_HINT

    for t in table:
        want = Candidate(t.engine, t.precision, PERFORMANCE_HINT if t.engine == "openvino" else "")
        for r in results:
            if r.candidate == want and r.accurate(min_cosine):
                return r
    return None


def engine_versions() -> dict:
    out = {}
    for dist in ("onnxruntime", "openvino"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def tune_key(identity: tuple, cpu, candidates: list[Candidate], versions: dict | None = None) -> dict:
    """Everything a measured ranking depends on; any change measures again."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"format": FORMAT, "model": list(identity), "cpu": cpu.name, "flags": sorted(cpu.flags),
            "cpu_count": os.cpu_count() or 1, "usable_cpus": usable,
            "engines": engine_versions() if versions is None else versions,
            "candidates": [c.label for c in candidates], "batch": BATCH, "min_cosine": MIN_COSINE}


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cache_file():
    from senclip.models.onnx_export import onnx_home

    return onnx_home() / "autotune.json"


def _read_cache() -> dict:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached(key: dict) -> dict | None:
    entry = _read_cache().get(_digest(key))
    return entry if isinstance(entry, dict) and entry.get("key") == key else None


def store(key: dict, entry: dict) -> None:
    """Add one tuning (temporary file + rename). A cache only: failing to write costs a re-measure
    next time, never the run."""
    data = _read_cache()
    data[_digest(key)] = dict(entry, key=key)
    try:
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        write_text(cache_file(), json.dumps(data, indent=1))
    except OSError:
        pass


def clear_cache() -> bool:
    """Forget every tuning (``senclip models tune``); True when there was one."""
    try:
        cache_file().unlink()
        return True
    except FileNotFoundError:
        return False


def _entry(results: list[Result], table: list[Choice], seconds: float) -> dict:
    best, tab = winner(results), table_result(results, table)
    ref = next((r for r in results if (r.candidate.engine, r.candidate.precision) == REFERENCE and not r.error), None)
    return {"winner": asdict(best.candidate) if best else None, "seconds": round(seconds, 2),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "reference_chips_per_s": ref.chips_per_s if ref else None,
            "table": asdict(tab.candidate) if tab else None, "table_chips_per_s": tab.chips_per_s if tab else None,
            "results": [dict(asdict(r.candidate), label=r.candidate.label, chips_per_s=round(r.chips_per_s, 2),
                             cosine=round(r.cosine, 6), accurate=r.accurate(), error=r.error) for r in results]}


def summary(entry: dict, cpu_summary: str, cached_: bool) -> str:
    """The log line: winner, its speed, the ratios to ORT fp32 and to the table's choice."""
    rows = {r["label"]: r for r in entry["results"]}
    win = Candidate(**entry["winner"])
    rate = rows[win.label]["chips_per_s"]
    parts = [f"{win.label} {rate:.1f} chips/s"]
    if entry["reference_chips_per_s"]:
        parts.append(f"{rate / entry['reference_chips_per_s']:.2f}x ORT fp32")
    if entry["table"]:
        tab = Candidate(**entry["table"])
        parts.append(f"{rate / entry['table_chips_per_s']:.2f}x the table's choice ({tab.label})")
    parts.append(f"cosine to fp32 {rows[win.label]['cosine']:.5f}")
    how = (f"measured {entry['when']}, cached" if cached_ else
           f"measured {len(rows)} candidates in {entry['seconds']:.1f} s: " + ", ".join(
               f"{label} {r['chips_per_s']:.1f}" + ("" if r["accurate"] else
                                                    f" (cos {r['cosine']:.4f}: fails the gate)" if not r["error"]
                                                    else " (unavailable)") for label, r in rows.items()))
    return f"auto on {cpu_summary}: fastest accurate engine {', '.join(parts)} ({how})"


def pick(make, identity: tuple, cpu, engines, table: list[Choice], feedback, *, retune: bool | None = None,
         timer=time.perf_counter, chips: np.ndarray | None = None):
    """(image encoder, Choice) for ``--precision auto`` on a CPU: the cached winner for this
    machine and model, else measured now. ``make(candidate)`` builds an encoder."""
    cands = cpu_candidates(cpu, engines)
    key = tune_key(identity, cpu, cands)
    retune = os.environ.get("SENCLIP_RETUNE", "0") not in ("", "0") if retune is None else retune
    entry = None if retune else cached(key)
    if entry is not None and entry.get("winner"):
        try:
            win = Candidate(**entry["winner"])
            return make(win), Choice(win.engine, win.precision, summary(entry, cpu.summary(), True))
        except Exception as e:  # an engine that broke since: measure again
            feedback.info(f"precision auto: cached winner unusable ({str(e).splitlines()[0][:160]}); measuring again")
    feedback.info(f"precision auto: timing {len(cands)} engine settings on {cpu.summary()} (once per machine)")
    t0 = time.perf_counter()
    results = measure(make, cands, chips, timer=timer)
    entry = _entry(results, table, time.perf_counter() - t0)
    if entry["winner"] is None:
        raise BackendUnavailableError("precision auto: no engine could run the image encoder here: "
                           + "; ".join(f"{r.candidate.label}: {r.error}" for r in results))
    store(key, entry)
    win = Candidate(**entry["winner"])
    return make(win), Choice(win.engine, win.precision, summary(entry, cpu.summary(), False))
