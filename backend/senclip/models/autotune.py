"""``--precision auto`` on a CPU: measure the engines instead of trusting a table.

Why: the table in :mod:`senclip.models.precision` encodes what was fastest on the machines we measured
(OpenVINO bf16 wherever bf16 exists), but on an AVX-512/VNNI/BF16 Zen 4 without AMX it reached
only 1.84x ORT fp32, and which of ORT int8, OpenVINO bf16 or OpenVINO's THROUGHPUT streams wins
depends on the CPU, the core count and the engine versions (on that Zen 4 the winner turned out to be
one the table never tried: OpenVINO running a static int8 QDQ export, 3.3x; :mod:`senclip.models.static_int8`).
So the first run on a machine times every candidate on the calibration chips (:mod:`senclip.models.calibration`: the same 32 real Sentinel-2
chips also give each candidate's cosine to fp32), keeps the fastest one whose cosine is
>= ``MIN_COSINE``, and caches the result in ``$SENCLIP_HOME/onnx/autotune.json`` keyed by what
decides speed: CPU model and flags, cores, engine versions and the model's checksum. A change of
any of them measures again; ``SENCLIP_RETUNE=1`` or ``senclip models tune`` forces it,
``SENCLIP_AUTOTUNE=0`` falls back to the table.

Robust to a busy machine and light on memory: each candidate is loaded alone, warmed up (its
embeddings give its cosine), timed ``ROUNDS`` times and released; then the ``PLAYOFF`` fastest accurate
ones are loaded together and timed again in ``ROUNDS`` interleaved rounds (each once per round), and
every candidate's best batch counts. A busy moment during one candidate's own pass cannot decide the
ranking among the leaders (two back-to-back batches per candidate had picked a 1.01x engine over a
1.56x one while other jobs ran), and no more than ``PLAYOFF`` engines are ever in memory (all six at
once peaked at 3.3 GB RSS for ViT-B/32; one at a time plus the three int8 leaders stays near the
fp32 engine's own size). The batch size is the last dimension: the winner is also timed in slices of
``BATCH // 2`` chips, interleaved with whole batches, and runs in slices when that was faster. Cost on
2 cores, ViT-B/32: ~15 s on AVX2 (4 candidates), ~40 s on AVX-512 VNNI/BF16 (6 candidates) plus
~20 s once to make the static int8 export.
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

BATCH = 32  # chips per timed batch: the 32 calibration chips, the pipeline's default --batch-size
ROUNDS = 3  # timed batches per candidate alone, then as many interleaved rounds of the playoff
PLAYOFF = 3  # the fastest accurate candidates timed again side by side (and held in memory together)
BATCH_ROUNDS = 2  # rounds of the winner's whole batch vs its half-size slices
FORMAT = 2  # bump when what is measured changes: old cache entries are then ignored
REFERENCE = ("onnxruntime", "fp32")


@dataclass(frozen=True)
class Candidate:
    """One way to run the ONNX image encoder on the CPU (``hint``: OpenVINO's performance hint)."""

    engine: str
    precision: str
    hint: str = ""
    batch: int = 0  # run batches in slices of this many chips (0: as the pipeline hands them)

    @property
    def label(self) -> str:
        return (f"{self.engine} {self.precision}" + (f" {self.hint.lower()}" if self.hint else "")
                + (f" in slices of {self.batch}" if self.batch else ""))


class Sliced:
    """An image encoder that runs each batch in slices of ``batch`` chips (the tuned size)."""

    def __init__(self, encoder, batch: int) -> None:
        self.inner, self.batch = encoder, batch

    def __getattr__(self, name):  # meta, embed_dim, preprocess, precision, engine, hint, device...
        return getattr(self.inner, name)

    def encode_chips(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) <= self.batch:
            return self.inner.encode_chips(chips)
        return np.concatenate([self.inner.encode_chips(chips[i:i + self.batch])
                               for i in range(0, len(chips), self.batch)])


def tuned(encoder, batch: int):
    """``encoder`` as the tuning left it: sliced when its tuned batch says so (0: as it is)."""
    return Sliced(encoder, batch) if batch else encoder


def build(make, candidate: Candidate):
    """The encoder for a (possibly cached) winner, sliced when its tuned batch says so."""
    return tuned(make(Candidate(candidate.engine, candidate.precision, candidate.hint)), candidate.batch)


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
        if cpu.vnni or cpu.amx_bf16:  # static int8 (QDQ): int8 dot products in one instruction
            formats.append("int8")
        out += [c for c in (Candidate("openvino", f, h) for f in formats for h in HINTS) if c not in out]
    return out


def _unit(e) -> np.ndarray:
    e = np.asarray(e, dtype=np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def _why(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _rate(encode, chips: np.ndarray, timer) -> float:
    t0 = timer()
    encode(chips)
    return len(chips) / max(timer() - t0, 1e-9)


def _one_by_one(make, candidates, chips, timer, rounds):
    """Each candidate built, warmed up (the run whose embeddings give its cosine), timed ``rounds``
    times and released before the next is built: one engine in memory at a time."""
    best, emb, errors = {}, {}, {}
    for c in candidates:
        try:
            emb[c], best[c] = _alone(make(c), chips, timer, rounds)
        except Exception as e:  # an engine that cannot run here loses; the others still compete
            errors[c] = _why(e)
    return best, emb, errors


def _alone(enc, chips, timer, rounds) -> tuple[np.ndarray, float]:
    """(unit embeddings of the warm-up run, best chips/s of ``rounds`` timed runs); the encoder is
    released when this returns."""
    emb = _unit(enc.encode_chips(chips))
    return emb, max(_rate(enc.encode_chips, chips, timer) for _ in range(rounds))


def _playoff(make, contenders, chips, timer, rounds, best, errors):
    """The leaders loaded together, warmed up and timed in interleaved rounds; their best rates
    updated in ``best``. Returns their encoders (the winner's is used for the run)."""
    encs = {}
    for c in contenders:
        try:
            encs[c] = make(c)
            encs[c].encode_chips(chips)
        except Exception as e:  # it ran alone a moment ago; if it cannot now, it is out
            errors[c] = _why(e)
            encs.pop(c, None)
    for _ in range(rounds):
        for c, enc in encs.items():
            best[c] = max(best[c], _rate(enc.encode_chips, chips, timer))
    return encs


def _measure(make, candidates, chips, timer, batch, rounds, playoff: int = PLAYOFF):
    """(results, encoders of the playoff): best rates and cosines to the first candidate (fp32)."""
    chips = chips[:batch]
    best, emb, errors = _one_by_one(make, candidates, chips, timer, rounds)
    ref = emb.get(candidates[0]) if candidates else None
    cos = {c: float((e * ref).sum(1).min()) for c, e in emb.items() if c not in errors} if ref is not None else {}
    accurate = sorted((c for c in cos if cos[c] >= MIN_COSINE), key=best.get, reverse=True)
    encs = _playoff(make, accurate[:playoff], chips, timer, rounds, best, errors)
    results = []
    for c in candidates:
        if c in errors or ref is None:
            results.append(Result(c, error=errors.get(c, "the fp32 reference could not run")))
        else:
            results.append(Result(c, best[c], cos[c]))
    return results, encs


def measure(make, candidates: list[Candidate], chips: np.ndarray | None = None, *,
            timer=time.perf_counter, batch: int = BATCH, rounds: int = ROUNDS) -> list[Result]:
    """Speed and cosine to the first candidate (the fp32 reference) of every candidate. One that
    cannot be made here (engine missing, model it cannot read) gets its ``error``, not a crash."""
    chips = calibration_chips() if chips is None else chips
    return _measure(make, candidates, chips, timer, batch, rounds)[0]


def tune_batch(encoder, chips: np.ndarray, timer=time.perf_counter, batch: int = BATCH,
               rounds: int = BATCH_ROUNDS) -> dict:
    """Chips/s of the whole batch and of half-size slices, interleaved; the faster size wins."""
    chips, half = chips[:batch], max(1, batch // 2)
    sliced = Sliced(encoder, half)
    rates = {batch: 0.0, half: 0.0}
    for _ in range(rounds):
        rates[batch] = max(rates[batch], _rate(encoder.encode_chips, chips, timer))
        rates[half] = max(rates[half], _rate(sliced.encode_chips, chips, timer))
    return {"rates": {str(k): round(v, 2) for k, v in rates.items()}, "best": max(rates, key=rates.get),
            "whole": batch}


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


def _entry(results: list[Result], table: list[Choice], sizes: dict | None, seconds: float) -> dict:
    best, tab = winner(results), table_result(results, table)
    ref = next((r for r in results if (r.candidate.engine, r.candidate.precision) == REFERENCE and not r.error), None)
    win = None
    if best is not None:
        sliced = bool(sizes) and sizes["best"] < sizes["whole"]
        win = dict(asdict(best.candidate), batch=sizes["best"] if sliced else 0)
    return {"winner": win, "seconds": round(seconds, 2), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "winner_chips_per_s": max([best.chips_per_s, *(sizes or {}).get("rates", {}).values()]) if best else None,
            "batch_sizes": sizes, "reference_chips_per_s": ref.chips_per_s if ref else None,
            "table": asdict(tab.candidate) if tab else None, "table_chips_per_s": tab.chips_per_s if tab else None,
            "results": [dict(asdict(r.candidate), label=r.candidate.label, chips_per_s=round(r.chips_per_s, 2),
                             cosine=round(r.cosine, 6), accurate=r.accurate(), error=r.error) for r in results]}


def _measured(rows: dict) -> str:
    return ", ".join(f"{label} {r['chips_per_s']:.1f}" + (
        "" if r["accurate"] else f" (cos {r['cosine']:.4f}: fails the gate)" if not r["error"] else " (unavailable)")
        for label, r in rows.items())


def summary(entry: dict, cpu_summary: str, cached_: bool) -> str:
    """The log line: winner, its speed, the ratios to ORT fp32 and to the table's choice."""
    rows = {r["label"]: r for r in entry["results"]}
    win = Candidate(**entry["winner"])
    base = rows[Candidate(win.engine, win.precision, win.hint).label]
    rate = entry.get("winner_chips_per_s") or base["chips_per_s"]
    parts = [f"{win.label} {rate:.1f} chips/s"]
    if entry["reference_chips_per_s"]:
        parts.append(f"{rate / entry['reference_chips_per_s']:.2f}x ORT fp32")
    if entry["table"]:
        tab = Candidate(**entry["table"])
        parts.append(f"{rate / entry['table_chips_per_s']:.2f}x the table's choice ({tab.label})")
    parts.append(f"cosine to fp32 {base['cosine']:.5f}")
    sizes = entry.get("batch_sizes") or {}
    batches = "; batch " + ", ".join(f"{k}: {v:.1f}" for k, v in sizes["rates"].items()) if sizes else ""
    how = (f"measured {entry['when']}, cached" if cached_ else
           f"measured {len(rows)} candidates in {entry['seconds']:.1f} s, each alone then the {PLAYOFF} fastest "
           f"side by side, best of {ROUNDS}: "
           + _measured(rows) + batches)
    return f"auto on {cpu_summary}: fastest accurate engine {', '.join(parts)} ({how})"


def _from_cache(make, key: dict, cpu, feedback):
    entry = cached(key)
    if entry is None or not entry.get("winner"):
        return None
    try:
        win = Candidate(**entry["winner"])
        return build(make, win), Choice(win.engine, win.precision, summary(entry, cpu.summary(), True))
    except Exception as e:  # an engine that broke since: measure again
        feedback.info(f"precision auto: cached winner unusable ({_why(e)[:160]}); measuring again")
        return None


def pick(make, identity: tuple, cpu, engines, table: list[Choice], feedback, *, retune: bool | None = None,
         timer=time.perf_counter, chips: np.ndarray | None = None):
    """(image encoder, Choice) for ``--precision auto`` on a CPU: the cached winner for this
    machine and model, else measured now. ``make(candidate)`` builds an encoder."""
    cands = cpu_candidates(cpu, engines)
    key = tune_key(identity, cpu, cands)
    retune = os.environ.get("SENCLIP_RETUNE", "0") not in ("", "0") if retune is None else retune
    hit = None if retune else _from_cache(make, key, cpu, feedback)
    if hit is not None:
        return hit
    feedback.info(f"precision auto: timing {len(cands)} engine settings on {cpu.summary()} (once per machine)")
    t0 = time.perf_counter()
    chips = calibration_chips() if chips is None else chips
    results, encs = _measure(make, cands, chips, timer, BATCH, ROUNDS)
    best = winner(results)
    if best is None:
        raise BackendUnavailableError("precision auto: no engine could run the image encoder here: "
                                      + "; ".join(f"{r.candidate.label}: {r.error}" for r in results))
    sizes = tune_batch(encs[best.candidate], chips, timer)
    entry = _entry(results, table, sizes, time.perf_counter() - t0)
    store(key, entry)
    win = Candidate(**entry["winner"])
    enc = encs.pop(best.candidate)
    encs.clear()  # the losers' sessions go now, not at the end of the run
    return tuned(enc, win.batch), Choice(win.engine, win.precision, summary(entry, cpu.summary(), False))
