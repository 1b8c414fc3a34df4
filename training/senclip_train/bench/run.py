"""``senclip-train bench``: zero-shot EuroSAT / BigEarthNet-19 with two protocols side by side.

paper  — what the reference scripts compute: EuroSAT logits divided by their per-class mean over
         the whole test set (column-mean calibration, transductive); BigEarthNet fed B02,B03,B04 as
         if they were R,G,B, scored by recall@k with k = number of true labels.
honest — inductive scoring (each image on its own), RGB in the right order, and for BigEarthNet
         macro mAP and sample-F1 (threshold rule in ``metrics.threshold_predictions``).
Images and prompts go through the backend's own encoders (:func:`senclip.models.loading.load_model`), so
the numbers describe what the product computes.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError

from . import datasets as D
from . import metrics as M
from .prompt_selection import METHODS, class_index, image_profile_scores, select_prompts, text_scores

PAPER_TABLE1 = "see paper"  # no number is quoted here unless checked against the paper itself


@dataclass
class BenchOptions:
    dataset: str  # eurosat | bigearthnet
    root: str
    out: str
    model: str | None = None
    checkpoint: str | None = None
    prompts: str | None = None
    prompt_style: str = "ground"
    select_k: int | None = None
    select_method: str = "text"
    split: str = "test"
    limit: int | None = None
    batch_size: int = 64
    backend: str = "torch"
    device: str = "auto"
    threshold: float = 0.1
    offline: bool = False


def _encode(loaded, read, items, batch_size: int, feedback=None) -> np.ndarray:
    out = []
    for i in range(0, len(items), batch_size):
        chips = [read(x) for x in items[i:i + batch_size]]
        shapes = {c.shape for c in chips}
        if len(shapes) > 1:  # mixed sizes: encode one by one (the encoder resizes each)
            out += [loaded.image.encode_chips(c[None]) for c in chips]
        else:
            out.append(loaded.image.encode_chips(np.stack(chips)))
        if feedback is not None:
            feedback.advance(len(chips))
    return np.concatenate(out).astype(np.float64)


def _class_embeddings(prompt_emb: np.ndarray, cls: np.ndarray, n: int) -> np.ndarray:
    c = np.stack([prompt_emb[cls == i].mean(0) for i in range(n)])
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _prompt_set(classes: list[str], opts: BenchOptions) -> dict[str, list[str]]:
    from senclip.zeroshot.prompts import build_prompt_set

    return build_prompt_set(classes, prompts=opts.prompts, style=opts.prompt_style)


def run_bench(opts: BenchOptions, feedback=None) -> dict:
    from senclip.models.loading import load_model

    if opts.dataset == "eurosat":
        classes, samples = D.eurosat_samples(opts.root)
        skipped = 0
    elif opts.dataset == "bigearthnet":
        classes, samples, skipped = D.bigearthnet_samples(opts.root, opts.split)
    else:
        raise InputError(f"unknown benchmark {opts.dataset!r}; use eurosat or bigearthnet")
    if opts.limit:
        samples = samples[:: max(1, len(samples) // opts.limit)][: opts.limit]
    if opts.select_method not in METHODS:
        raise InputError(f"--select-method {opts.select_method!r} is not one of {', '.join(METHODS)}")
    prompts = _prompt_set(classes, opts)
    loaded = load_model(opts.model, opts.checkpoint, backend=opts.backend, device=opts.device, offline=opts.offline)
    paths = [s[0] for s in samples]
    if opts.dataset == "eurosat":
        labels = np.array([s[1] for s in samples])
        img = {"rgb": _encode(loaded, D.read_eurosat, paths, opts.batch_size, feedback)}
        img["paper"] = img["rgb"]  # EuroSAT JPEGs are RGB already: the paper protocol differs only in scoring
    else:
        targets = np.stack([s[1] for s in samples])
        img = {"rgb": _encode(loaded, lambda p: D.read_bigearthnet(p, D.RGB), paths, opts.batch_size, feedback),
               "paper": _encode(loaded, lambda p: D.read_bigearthnet(p, D.BGR), paths, opts.batch_size, feedback)}
    flat = [p for c in classes for p in prompts[c]]
    cls = class_index(prompts)
    prompt_emb = loaded.text.encode_texts(flat).astype(np.float64)
    selection = None
    if opts.select_k:
        if opts.select_method == "text":
            scores = text_scores(prompt_emb, cls)
        else:
            scores = image_profile_scores(img["rgb"] @ prompt_emb.T, cls)
        chosen = select_prompts(prompts, scores, opts.select_k)
        keep = np.array([p in chosen[classes[c]] for p, c in zip(flat, cls)])
        prompt_emb, cls = prompt_emb[keep], cls[keep]
        selection = {"k": opts.select_k, "method": opts.select_method,
                     "transductive": opts.select_method == "image-profile", "prompts": chosen}
    class_emb = _class_embeddings(prompt_emb, cls, len(classes))
    cos = {k: v @ class_emb.T for k, v in img.items()}
    if opts.dataset == "eurosat":
        results = {"paper": M.single_label_report(M.column_mean_calibrate(cos["paper"]), labels, classes),
                   "honest": M.single_label_report(cos["rgb"], labels, classes)}
    else:
        results = {"paper": {"recall_at_k": M.recall_at_k_as_coded(cos["paper"], targets)},
                   "honest": M.multilabel_report(cos["rgb"], targets, classes, threshold=opts.threshold)}
    report = {"dataset": opts.dataset, "root": str(opts.root), "n_images": len(samples), "skipped_no_label": skipped,
              "classes": classes, "model": loaded.record(), "backend": loaded.backend, "device": loaded.device,
              "prompt_style": opts.prompt_style if opts.prompts is None else f"file:{opts.prompts}",
              "prompt_selection": selection, "results": results,
              "untrained_warning": bool(loaded.untrained)}
    write_report(report, Path(opts.out))
    return report


def _fmt(x) -> str:
    return f"{100 * x:.2f}" if isinstance(x, float) else str(x)


def markdown(report: dict) -> str:
    r = report["results"]
    lines = [f"# {report['dataset']} zero-shot — {report['model']['model_id']}", ""]
    if report["untrained_warning"]:
        lines += ["**RANDOM WEIGHTS: these numbers only check the pipeline and mean nothing.**", ""]
    lines += [f"{report['n_images']} images, prompts: {report['prompt_style']}"
              + (f", selected top-{report['prompt_selection']['k']} ({report['prompt_selection']['method']})"
                 if report["prompt_selection"] else ""), "",
              "| metric (%) | ours, paper protocol | ours, honest protocol | paper Table 1 |", "|---|---|---|---|"]
    if report["dataset"] == "eurosat":
        rows = [("top-1", "top1", "top1"), ("top-5", "top5", "top5"), ("macro F1", "macro_f1", "macro_f1")]
    else:
        rows = [("recall@k (as coded)", "recall_at_k", "recall_at_k"), ("mAP (macro)", None, "mAP_macro"),
                ("sample F1", None, "sample_f1")]
    for name, pk, hk in rows:
        lines.append(f"| {name} | {_fmt(r['paper'][pk]) if pk else '—'} | {_fmt(r['honest'][hk])} | {PAPER_TABLE1} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in ((f"{report['dataset']}.json", json.dumps(report, indent=2, default=float)),
                       (f"{report['dataset']}.md", markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)
