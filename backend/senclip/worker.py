"""JSON-lines worker: the only door between the QGIS plugin and the backend.

QGIS must never import torch, onnxruntime or rasterio (a second GDAL/PROJ/OpenMP in its process
crashes it), so the plugin runs ``python -m senclip.worker`` in the backend's own environment and
talks to it over pipes. One request per line on stdin::

    {"id": 1, "op": "classify", "args": {"input": "...", "out": "...", "classes": ["A", "B"]}}

and events, one per line on stdout, each carrying the request id::

    {"id": 1, "event": "progress", "text": "encoding", "done": 3, "total": 10, "percent": 30.0}
    {"id": 1, "event": "info" | "warning", "message": "..."}
    {"id": 1, "event": "result", "result": {...}}
    {"id": 1, "event": "error", "type": "InputError", "message": "...", "exit_code": 2}

Every request ends with exactly one ``result`` or ``error``. The worker keeps state between
requests (loaded models, an embedding store, the last class probabilities) so the dock can
re-classify and probe without paying for a model load again.

Stopping, politest first:

* ``{"op": "cancel"}`` (``{"type": "cancel"}`` is read the same; an ``"id"`` names the request to
  cancel, running or queued, and without it the running one is meant) stops the running request
  at its next progress step: it ends with an ``error`` event of type ``Cancelled`` (exit_code
  130), its temporaries are removed, and the worker goes on serving. A cancel gets no answer of
  its own.
* SIGTERM (or SIGINT) stops the running request the same way, answers it with a ``Cancelled``
  error (exit_code 143, or 130), and then the worker exits with that code.
* SIGKILL leaves whatever temporaries exist (hidden ``.name.*`` files beside the output, a
  ``senclip-*`` folder in TMPDIR): a caller should kill only after a grace period.

Requests are read on a thread of their own, so a cancel is seen while a request runs.

May import: senclip.core, senclip.sentinel2, senclip.models, senclip.embedding, senclip.zeroshot,
senclip.maps, senclip.api, senclip.tools, senclip.region.
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import sys
import threading
import time
import traceback
import warnings

from senclip.core import stopping
from senclip.core.errors import InputError, SenclipError
from senclip.core.feedback import Feedback
from senclip.core.jsonable import to_jsonable

PROTOCOL = 1


class Channel:
    """Writes events to the real stdout; everything else printed goes to stderr.

    Libraries print (pip, tqdm, warnings); a stray line on the protocol pipe would be a parse error
    in QGIS, so ``sys.stdout`` is pointed at stderr and only this object writes to the pipe.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self._lock = threading.Lock()  # the request reader answers bad lines while a request runs

    def send(self, event: dict) -> None:
        line = json.dumps(event, default=str) + "\n"
        with self._lock:
            self.stream.write(line)
            self.stream.flush()


class JsonFeedback(Feedback):
    """Progress as events, throttled so a fast loop does not flood the pipe: an event when 0.1 s
    has passed or another whole percent is done (so every step of a slow stage is seen)."""

    def __init__(self, channel: Channel, request_id) -> None:
        super().__init__()
        self.channel = channel
        self.request_id = request_id
        self.total = 0
        self.done = 0
        self.text = ""
        self._last = 0.0
        self._last_percent = -1

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        whole = int(100 * self.done / self.total) if self.total else 0
        if not force and now - self._last < 0.1 and self.done < self.total and whole == self._last_percent:
            return
        self._last, self._last_percent = now, whole
        percent = 100.0 * self.done / self.total if self.total else 0.0
        self.channel.send({"id": self.request_id, "event": "progress", "text": self.text,
                           "done": self.done, "total": self.total, "percent": round(percent, 2)})

    def start(self, total: int, text: str) -> None:
        self.total, self.done, self.text = int(total), 0, text
        self._emit(force=True)

    def advance(self, n: int = 1) -> None:
        self.done += int(n)
        self._emit()

    def finish(self) -> None:
        if self.total:
            self.done = self.total
            self._emit(force=True)

    def info(self, text: str) -> None:
        self.channel.send({"id": self.request_id, "event": "info", "message": str(text)})

    def warning(self, text: str) -> None:
        self.channel.send({"id": self.request_id, "event": "warning", "message": str(text)})


# --- state shared between requests of one worker --------------------------------------------
class State:
    """What a persistent worker (the dock's) keeps between requests."""

    def __init__(self, persistent: bool = False) -> None:
        self.persistent = persistent  # keep loaded models for later requests
        self.models: dict = {}  # (model, checkpoint, ...) -> LoadedModel with a caching text tower
        self.store = None  # the EmbeddingStore the dock works on
        self.store_model: dict = {}  # load_model arguments of the store's model
        self.last = None  # prompts and calibration of the last re-classification (for probe)
        self.running = None  # (request id, feedback) of the request being served
        self.cancelled: set = set()  # ids of queued requests cancelled before they started
        self._lock = threading.Lock()

    def cancel(self, request_id=None) -> None:
        """A cancel message: the running request (or the one with ``request_id``, queued or running)."""
        with self._lock:
            if self.running is not None and request_id in (None, self.running[0]):
                self.running[1].cancel()
            elif request_id is not None:
                self.cancelled.add(request_id)

    def begin(self, request_id, feedback: Feedback) -> None:
        with self._lock:
            self.running = (request_id, feedback)
            if request_id is not None and request_id in self.cancelled:
                self.cancelled.discard(request_id)
                feedback.cancel()

    def end(self) -> None:
        with self._lock:
            self.running = None


def op_diagnostics(args: dict, feedback: Feedback, state: State) -> dict:
    from senclip.models.diagnostics import diagnostics

    return dict(diagnostics(), protocol=PROTOCOL)


def op_selfcheck(args: dict, feedback: Feedback, state: State) -> dict:
    from senclip.models.diagnostics import selfcheck

    return dict(selfcheck(), protocol=PROTOCOL)


def op_download_weights(args: dict, feedback: Feedback, state: State) -> dict:
    """Fetch (or verify the cached) weights of a registry model: the plugin's 'Download model weights'."""
    from senclip.models.registry import get_model_spec
    from senclip.models.weights import fetch_weights

    spec = get_model_spec(str(args.get("model") or ""))
    if spec.source is None:
        return {"model": spec.id, "path": None, "sha256": None, "verified": False}
    got = fetch_weights(spec, offline=bool(args.get("offline", False)), feedback=feedback)
    return {"model": spec.id, "path": str(got.path), "sha256": got.sha256, "verified": got.verified}


def _api():
    from senclip import api

    return api


class CachingText:
    """Text encoder that remembers every prompt it has encoded.

    The dock re-classifies on every prompt edit; usually one prompt changed, so only that one
    needs the text tower. Wraps any :class:`~senclip.models.encoders.base.TextEncoder`.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.context_length = getattr(inner, "context_length", 77)
        self.embed_dim = inner.embed_dim
        self.cache: dict = {}

    def encode_texts(self, texts):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for t, e in zip(missing, np.asarray(self.inner.encode_texts(missing), dtype=np.float32)):
                self.cache[t] = e
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.embed_dim), np.float32)


MODEL_KEYS = ("model", "checkpoint", "arch", "backend", "device", "offline", "int8", "precision")


def _loaded(args: dict, feedback: Feedback, state: State):
    """The model named by ``args``, loaded once per worker (the dock re-uses it for every run)."""
    key = tuple(str(args.get(k)) for k in MODEL_KEYS)
    if key not in state.models:
        from senclip.models.loading import load_model

        lm = load_model(model=args.get("model"), checkpoint=args.get("checkpoint"), arch=args.get("arch"),
                        backend=args.get("backend", "auto"), device=args.get("device", "auto"),
                        offline=bool(args.get("offline", False)), int8=bool(args.get("int8", False)),
                        precision=args.get("precision") or "auto",
                        feedback=feedback)
        state.models[key] = dataclasses.replace(lm, text=CachingText(lm.text))
    return state.models[key]


def _call(func, args: dict, feedback: Feedback, state: State | None = None):
    args = dict(args)
    pos = [args.pop(k) for k in ("input", "store") if k in args][:1]
    out = args.pop("out")
    if state is not None:  # persistent mode: keep the model between requests
        args["loaded_model"] = _loaded(args, feedback, state)
    return func(*pos, out, feedback=feedback, **args)


def op_classify(args: dict, feedback: Feedback, state: State) -> dict:
    return to_jsonable(_call(_api().classify, args, feedback, state if state.persistent else None))


def op_embed(args: dict, feedback: Feedback, state: State) -> dict:
    return to_jsonable(_call(_api().embed, args, feedback, state if state.persistent else None))


def op_classify_store(args: dict, feedback: Feedback, state: State) -> dict:
    return to_jsonable(_call(_api().classify_store, args, feedback))


def _store_text(state: State, feedback: Feedback):
    """The text encoder of the loaded store's model: only its ONNX text graph where there is or can be
    one without torch (no image encoder, no precision tuning: the dock's first re-prompt is quick),
    else the whole model as :func:`_loaded` loads it."""
    rec = state.store.meta["model"]
    key = ("store-text", str(rec.get("model_id")), str(rec.get("checksum")))
    if key not in state.models:
        from senclip.models.loading import store_text_model

        lm = store_text_model(state.store.meta, offline=bool(state.store_model.get("offline")), feedback=feedback)
        if lm is None:
            return _loaded(state.store_model, feedback, state)
        state.models[key] = dataclasses.replace(lm, text=CachingText(lm.text))
    return state.models[key]


def _store_model_args(meta: dict, args: dict) -> dict:
    """The model an embedding store was made with, as ``load_model`` arguments."""
    rec = meta["model"]
    if str(rec.get("model_id", "")).startswith("checkpoint:"):
        out = {"model": None, "checkpoint": meta.get("checkpoint_path")}
    else:
        out = {"model": rec["model_id"], "checkpoint": None}
    out.update(arch=None, backend=args.get("backend", meta.get("backend", "torch")),
               device=args.get("device", "auto"), offline=args.get("offline", False),
               precision=args.get("precision"))
    return out


def op_load_store(args: dict, feedback: Feedback, state: State) -> dict:
    """Keep a store (and its model) in memory so ``reclassify`` runs only the text tower."""
    from senclip.embedding.store import EmbeddingStore

    store = EmbeddingStore(str(args["store"]))
    state.store = store
    state.store_model = _store_model_args(store.meta, args)
    _store_text(state, feedback)
    return {"store": str(store.path), "rows": int(store.valid.shape[0]), "cols": int(store.valid.shape[1]),
            "valid": int(store.valid.sum()), "model": store.meta["model"]}


def _full_prompt_set(args: dict) -> dict:
    """Classes without prompts of their own get the shipped/template prompts of the style."""
    from senclip.zeroshot.prompts import build_prompt_set

    prompts, style = args.get("prompts"), args.get("prompt_style", "ground")
    if isinstance(prompts, str):
        return build_prompt_set(args.get("classes") or None, prompts=prompts, style=style)
    return build_prompt_set(args.get("classes") or None, prompts=prompts or {}, style=style, fill_missing=True)


def op_reclassify(args: dict, feedback: Feedback, state: State) -> dict:
    """Classify the loaded store with new prompts: text encoder (cached) + a matrix product."""
    if state.store is None:
        raise InputError("no embedding store loaded; send load_store (or run the dock once) first")
    started = time.perf_counter()
    prompt_set = _full_prompt_set(args)
    calibrate = args.get("calibrate", "none")
    trans = {"transductive": bool(args.get("transductive", False)), "spatial": str(args.get("spatial", "8"))}
    lm = _store_text(state, feedback)
    result = _api().classify_store(
        state.store, str(args["out"]), classes=list(prompt_set), prompts=prompt_set,
        resolution=args.get("resolution", "grid"), calibrate=calibrate, overwrite=True,
        feedback=feedback, loaded_model=lm, **trans)
    state.last = {"prompt_set": prompt_set, "calibrate": calibrate, "path": str(result.path), **trans}
    out = to_jsonable(result)
    out["prompts"] = prompt_set
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def op_probe(args: dict, feedback: Feedback, state: State) -> dict:
    """Class probabilities at map coordinates (x, y in the store's CRS) for the last prompts."""
    if state.store is None or state.last is None:
        raise InputError("nothing classified yet; run a classification before probing the map")
    import numpy as np
    from affine import Affine

    from senclip.zeroshot.head import class_embeddings

    meta, st = state.store.meta, state.store
    col, row = ~Affine(*meta["grid_transform"]) * (float(args["x"]), float(args["y"]))
    row, col = int(np.floor(row)), int(np.floor(col))
    rows, cols = st.valid.shape
    base = {"x": float(args["x"]), "y": float(args["y"]), "row": row, "col": col}
    if not (0 <= row < rows and 0 <= col < cols) or not st.valid[row, col]:
        return dict(base, inside=False, top=[])
    prompt_set = state.last["prompt_set"]
    if state.last.get("probs") is None:  # once per classification; exact also when calibrated
        cls_emb = class_embeddings(_store_text(state, feedback).text, prompt_set)
        state.last["probs"] = _api().store_probabilities(st, cls_emb, calibrate=state.last["calibrate"],
                                                         transductive=state.last.get("transductive", False),
                                                         spatial=state.last.get("spatial", "8"),
                                                         feedback=feedback)
    p = state.last["probs"][row, col]
    names = list(prompt_set)
    order = np.argsort(-p)[: int(args.get("k", 5))]
    return dict(base, inside=True, top=[{"class": names[i], "probability": float(p[i])} for i in order])


def op_map_region(args: dict, feedback: Feedback, state: State) -> dict:
    """Many scenes on Dask into per-scene COGs and a mosaic (``senclip map-region``)."""
    from senclip.region import map_region

    args = dict(args)
    inputs, out = args.pop("inputs", None) or [], args.pop("out")
    return to_jsonable(map_region(inputs, out, feedback=feedback, **args))


def _tool_store(args: dict, state: State):
    """The store named in ``args`` (Processing), else the dock's loaded one (with its model)."""
    if args.get("store"):
        return args.pop("store"), None
    if state.store is None:
        raise InputError("no embedding store loaded; run a classification in the dock first")
    args.pop("store", None)
    return state.store, (_loaded(state.store_model, Feedback(), state) if state.persistent else None)


def _timed(func, pos: list, args: dict, feedback: Feedback, lm) -> dict:
    started = time.perf_counter()
    if lm is not None:
        args["loaded_model"] = lm
    out = to_jsonable(func(*pos, feedback=feedback, **args))
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def op_fewshot(args: dict, feedback: Feedback, state: State) -> dict:
    """Few-shot class map (senclip.tools.fewshot); ``examples`` may be GeoJSON features from the dock."""
    from senclip.tools.fewshot import fewshot

    args = dict(args)
    store, lm = _tool_store(args, state)
    needs_text = bool(args.get("classes") or args.get("prompts"))
    if isinstance(args.get("prompts"), dict):  # the dock's table: empty cells mean built-in prompts
        prompt_set = _full_prompt_set(args)
        args["classes"], args["prompts"] = list(prompt_set), prompt_set
    return _timed(fewshot, [store, args.pop("out")], args, feedback, lm if needs_text else None)


def op_similar(args: dict, feedback: Feedback, state: State) -> dict:
    """Similarity raster (senclip.tools.similarity) of the given or loaded store."""
    from senclip.tools.similarity import find_similar

    args = dict(args)
    store, lm = _tool_store(args, state)
    return _timed(find_similar, [store, args.pop("out")], args, feedback, lm if args.get("text") or args.get("chip") else None)


def op_change(args: dict, feedback: Feedback, state: State) -> dict:
    from senclip.tools.change import change

    args = dict(args)
    return _timed(change, [args.pop("before"), args.pop("after"), args.pop("out")], args, feedback, None)


def op_accuracy(args: dict, feedback: Feedback, state: State) -> dict:
    from senclip.tools.accuracy import accuracy_report

    args = dict(args)
    return _timed(accuracy_report, [args.pop("classmap"), args.pop("reference"), args.pop("out")], args,
                  feedback, None)


OPS = {
    "map_region": op_map_region,
    "classify": op_classify, "embed": op_embed, "classify_store": op_classify_store,
    "selfcheck": op_selfcheck, "diagnostics": op_diagnostics, "load_store": op_load_store,
    "reclassify": op_reclassify, "probe": op_probe,
    "download_weights": op_download_weights,
    "fewshot": op_fewshot, "similar": op_similar, "change": op_change, "accuracy": op_accuracy,
}


def handle(request: dict, channel: Channel, state: State) -> None:
    """Run one request; always answer with exactly one result or error event. A stop signal is
    answered too and then re-raised (as ``KeyboardInterrupt``), for :func:`serve` to exit."""
    rid = request.get("id")
    op = request.get("op")
    feedback = JsonFeedback(channel, rid)
    state.begin(rid, feedback)
    try:
        feedback.check()  # cancelled while queued
        if op not in OPS:
            raise InputError(f"unknown worker op {op!r}; known: {', '.join(sorted(OPS))}")
        args = request.get("args") or {}
        if not isinstance(args, dict):
            raise InputError(f"worker args must be a JSON object, got {type(args).__name__}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = OPS[op](args, feedback, state)
        for w in caught:
            if issubclass(w.category, UserWarning):
                feedback.warning(str(w.message))
        channel.send({"id": rid, "event": "result", "result": result})
    except KeyboardInterrupt as exc:  # a stop signal outside any output's writing (e.g. a model load)
        channel.send({"id": rid, "event": "error", "type": "Cancelled",
                      "message": "interrupted; no output was written", "exit_code": stopping.exit_code(exc)})
        raise
    except SenclipError as exc:
        channel.send({"id": rid, "event": "error", "type": type(exc).__name__,
                      "message": str(exc), "exit_code": exc.exit_code})
    except TypeError as exc:  # a wrong keyword from the plugin: a bug, but say which
        traceback.print_exc()
        channel.send({"id": rid, "event": "error", "type": "TypeError",
                      "message": f"{op}: {exc}", "exit_code": 1})
    except Exception as exc:  # noqa: BLE001 - the plugin must hear about every failure
        traceback.print_exc()
        channel.send({"id": rid, "event": "error", "type": type(exc).__name__,
                      "message": f"{type(exc).__name__}: {exc}", "exit_code": 1})
    finally:
        state.end()


def is_cancel(request: dict) -> bool:
    return request.get("op") == "cancel" or request.get("type") == "cancel"


def read_requests(stdin, inbox: queue.Queue, channel: Channel, state: State) -> None:
    """Reader thread: requests go to ``inbox`` (``None`` at end of input); cancels act at once."""
    try:
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request must be a JSON object")
            except ValueError as exc:
                channel.send({"id": None, "event": "error", "type": "ProtocolError",
                              "message": f"bad request line: {exc}", "exit_code": 2})
                continue
            if is_cancel(request):
                state.cancel(request.get("id"))
            else:
                inbox.put(request)
    finally:
        inbox.put(None)


def serve(stdin=None, stdout=None, persistent: bool = False) -> int:
    """Answer requests until stdin closes, a ``shutdown`` request arrives or a stop signal
    (SIGTERM, Ctrl-C) ends the worker; returns the exit code (0, or 143/130 after a signal)."""
    stdin = stdin or sys.stdin
    channel = Channel(stdout or sys.stdout)
    state = State(persistent)
    inbox: queue.Queue = queue.Queue()
    channel.send({"id": None, "event": "ready", "protocol": PROTOCOL, "pid": os.getpid()})
    threading.Thread(target=read_requests, args=(stdin, inbox, channel, state), name="senclip-requests",
                     daemon=True).start()
    try:
        while True:
            try:
                request = inbox.get(timeout=0.5)  # a timeout keeps the wait interruptible by signals
            except queue.Empty:
                continue
            if request is None:
                break
            if request.get("op") == "shutdown":
                channel.send({"id": request.get("id"), "event": "result", "result": {}})
                break
            handle(request, channel, state)
            if stopping.received is not None:  # the request was stopped by a signal: exit, do not serve on
                return 128 + stopping.received
    except KeyboardInterrupt as exc:
        return stopping.exit_code(exc)
    return 0


def main() -> int:
    # Only the Channel writes to the protocol pipe: it gets a private copy of fd 1, and fd 1 itself
    # (C libraries, child processes such as Dask's workers) is pointed at stderr.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stopping.handle_sigterm(sigint=True)
    return serve(sys.stdin, out, persistent="--persistent" in sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
