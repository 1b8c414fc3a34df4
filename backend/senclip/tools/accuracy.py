"""Accuracy of a class map against reference data, and area estimates with confidence intervals.

Error matrices here follow Olofsson et al. (2014, "Good practices for estimating area and
assessing accuracy of land change", Remote Sensing of Environment 148, 42–57): **rows are map
classes, columns reference classes**. Besides the plain figures (overall accuracy, Cohen's kappa,
per-class precision = user's accuracy, recall = producer's accuracy, F1) the report gives the
stratified estimators of that paper, with the map classes as strata: area proportions
``p̂_.k = Σ_i W_i n_ik / n_i.`` (eq. 9), their standard errors (eq. 10), user's, producer's and
overall accuracy with standard errors (eqs. 5–7), and 95 % confidence intervals (± 1.96 SE).
The stratified estimators assume the reference sample is a probability sample within each map
class; reference polygons drawn for other purposes are not, so the report says which sampling
unit it used and leaves that judgement to the analyst.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError
from senclip.core.feedback import Feedback

Z95 = 1.959964


def _div(a, b):
    return float(a) / float(b) if b else None


def summarise(matrix: np.ndarray, names: list[str]) -> dict:
    """Overall accuracy, Cohen's kappa and per-class precision/recall/F1 of an error matrix
    (rows = map, columns = reference)."""
    m = np.asarray(matrix, dtype=np.float64)
    n = m.sum()
    diag = np.diag(m)
    rows, cols = m.sum(1), m.sum(0)
    po = diag.sum() / n if n else None
    pe = float((rows * cols).sum() / n ** 2) if n else None
    kappa = None if po is None or pe == 1 else (po - pe) / (1 - pe)
    per_class = {}
    for k, name in enumerate(names):
        p, r = _div(diag[k], rows[k]), _div(diag[k], cols[k])
        f1 = None if p is None or r is None or p + r == 0 else 2 * p * r / (p + r)
        per_class[name] = {"precision": p, "recall": r, "f1": f1, "map_samples": int(rows[k]),
                           "reference_samples": int(cols[k])}
    return {"classes": list(names), "matrix": m.astype(np.int64).tolist(), "samples": int(n),
            "overall_accuracy": None if po is None else float(po), "kappa": None if kappa is None else float(kappa),
            "per_class": per_class}


def olofsson(matrix: np.ndarray, map_counts: np.ndarray, names: list[str], unit_area: float | None = None) -> dict:
    """Stratified area and accuracy estimates of Olofsson et al. (2014). ``map_counts`` are the
    mapped pixels per class (the strata sizes N_i.); ``unit_area`` (m² per pixel) turns area
    proportions into areas. Strata with mapped area but no sample cannot be estimated and are
    listed under ``unsampled_strata`` (their area is left out of every estimate)."""
    n = np.asarray(matrix, dtype=np.float64)
    N = np.asarray(map_counts, dtype=np.float64)
    total = N.sum()
    ni = n.sum(1)
    sampled = ni > 0
    W = N / total if total else np.zeros_like(N)
    frac = np.divide(n, ni[:, None], out=np.zeros_like(n), where=ni[:, None] > 0)  # n_ij / n_i.
    p = W[:, None] * frac  # p̂_ij (eq. 4)
    dof = np.where(ni > 1, ni - 1, np.nan)  # n_i. − 1; a stratum with one sample has no variance estimate
    area_prop = p.sum(0)  # p̂_.k (eq. 9)
    var_area = np.nansum((W[:, None] ** 2) * frac * (1 - frac) / dof[:, None], axis=0)  # eq. 10
    users = np.where(sampled, np.diag(frac), np.nan)  # Û_i = n_ii / n_i.
    var_users = users * (1 - users) / dof  # eq. 6
    overall = float(np.trace(p))
    var_overall = float(np.nansum(W ** 2 * users * (1 - users) / dof))  # eq. 5
    n_hat = (np.divide(N, ni, out=np.zeros_like(N), where=sampled)[:, None] * n).sum(0)  # N̂_.j
    producers = np.divide(np.diag(p), area_prop, out=np.full_like(area_prop, np.nan), where=area_prop > 0)
    var_prod = np.full(len(N), np.nan)
    for j in range(len(N)):
        if n_hat[j] <= 0 or not sampled[j] or np.isnan(dof[j]):
            continue
        others = sum(N[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / dof[i]
                     for i in range(len(N)) if i != j and sampled[i] and not np.isnan(dof[i]))
        var_prod[j] = (N[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / dof[j]
                       + producers[j] ** 2 * others) / n_hat[j] ** 2  # eq. 7
    per_class = {}
    for k, name in enumerate(names):
        se = float(np.sqrt(var_area[k]))
        entry = {"map_pixels": int(N[k]), "weight": float(W[k]), "area_proportion": float(area_prop[k]),
                 "area_proportion_se": se, "area_proportion_ci95": Z95 * se,
                 "users_accuracy": _num(users[k]), "users_accuracy_ci95": _num(Z95 * np.sqrt(var_users[k])),
                 "producers_accuracy": _num(producers[k]),
                 "producers_accuracy_ci95": _num(Z95 * np.sqrt(var_prod[k]))}
        if unit_area:
            entry.update(map_area_m2=float(N[k] * unit_area), area_m2=float(area_prop[k] * total * unit_area),
                         area_m2_ci95=float(Z95 * se * total * unit_area))
        per_class[name] = entry
    return {"overall_accuracy": overall, "overall_accuracy_ci95": Z95 * float(np.sqrt(var_overall)),
            "per_class": per_class, "total_pixels": int(total), "pixel_area_m2": unit_area,
            "unsampled_strata": [names[i] for i in range(len(N)) if N[i] > 0 and not sampled[i]]}


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


# --- sampling a class map with reference features ---------------------------------------------
@dataclass
class Sample:
    map_class: np.ndarray  # (n,) class values of the map (1..K, 0 = unclassified)
    reference: np.ndarray  # (n,) index into the reference labels
    labels: list  # reference class labels, in order of first appearance
    features: int  # features that hit the map


def map_class_names(ds) -> list[str]:
    """Class names of a senclip class map (tags), 1..K."""
    tags = ds.tags()
    if "SENCLIP_CLASSES" in tags:
        return list(json.loads(tags["SENCLIP_CLASSES"]))
    band = ds.tags(1).get("CLASS_NAMES")
    if band:
        return list(json.loads(band))[1:]
    raise InputError(f"{ds.name} is not a senclip class map (no SENCLIP_CLASSES tag); give a map written by "
                     f"'senclip classify' or 'senclip fewshot'")


def sample_map(ds, reference, field: str) -> Sample:
    """Every map pixel inside a reference polygon (or under a reference point) is one sample."""
    from senclip.tools.vectors import feature_cells, read_features

    feats = read_features(reference, ds.crs, field=field, what="reference")
    labels, lookup = [], {}
    maps, refs, hit = [], [], 0
    for f, (rr, cc) in zip(feats, feature_cells(feats, ds.transform, ds.shape)):
        if not len(rr):
            continue
        from rasterio.windows import Window

        r0, c0 = int(rr.min()), int(cc.min())
        win = ds.read(1, window=Window(c0, r0, int(cc.max()) - c0 + 1, int(rr.max()) - r0 + 1))
        key = f.label.casefold()
        if key not in lookup:
            lookup[key] = len(labels)
            labels.append(f.label)
        maps.append(win[rr - r0, cc - c0])
        refs.append(np.full(len(rr), lookup[key]))
        hit += 1
    if not hit:
        raise InputError("no reference feature overlaps the class map; check the reference data's CRS and extent")
    return Sample(np.concatenate(maps).astype(np.int64), np.concatenate(refs), labels, hit)


def map_counts(ds, k: int) -> np.ndarray:
    """Pixels per map value 0..k, read block by block."""
    counts = np.zeros(k + 1, dtype=np.int64)
    for _, win in ds.block_windows(1):
        counts += np.bincount(ds.read(1, window=win).ravel(), minlength=k + 1)[: k + 1]
    return counts


def parse_match(match) -> dict[str, str]:
    """``"water=Sea or Lake;forest=Forest"`` (or a mapping) → {reference label: map class}."""
    if not match:
        return {}
    if isinstance(match, dict):
        return {str(k).strip(): str(v).strip() for k, v in match.items()}
    out = {}
    for part in str(match).split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(f"--match entries are REFERENCE=MAP, got {part.strip()!r}")
        a, b = part.split("=", 1)
        out[a.strip()] = b.strip()
    return out


@dataclass
class AccuracyResult:
    path: Path
    report: dict


def assess(classmap, reference, *, field: str = "class", match=None, feedback: Feedback | None = None) -> dict:
    """The accuracy report of ``classmap`` against ``reference`` as a dict (see module doc)."""
    import rasterio

    feedback = feedback or Feedback()
    with rasterio.open(classmap) as ds:
        names = map_class_names(ds)
        sample = sample_map(ds, reference, field)
        counts = map_counts(ds, len(names))
        metric = ds.crs is not None and ds.crs.is_projected and (ds.crs.linear_units or "").lower() in ("metre", "meter", "m")
        unit_area = abs(ds.transform.a * ds.transform.e - ds.transform.b * ds.transform.d) if metric else None
        untrained = "SENCLIP_WARNING" in ds.tags()
    classes, ref_to_class, unmatched = _align(names, sample.labels, parse_match(match))
    keep = sample.map_class > 0
    k = len(classes)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (sample.map_class[keep] - 1, ref_to_class[sample.reference[keep]]), 1)
    strata = np.zeros(k, dtype=np.int64)
    strata[: len(names)] = counts[1:]
    report = summarise(matrix, classes)
    report.update(
        classmap=str(classmap), reference=str(reference) if isinstance(reference, (str, Path)) else "features",
        field=field, unit="pixel of the class map inside a reference polygon or under a reference point",
        reference_features=sample.features, unclassified_samples=int((~keep).sum()),
        reference_only_classes=unmatched, area_adjusted=olofsson(matrix, strata, classes, unit_area))
    if unmatched:
        feedback.warning(f"reference class(es) {', '.join(unmatched)} are not classes of the map; they count as errors "
                         f"(map them with --match REFERENCE=MAP)")
    if report["area_adjusted"]["unsampled_strata"]:
        feedback.warning("map class(es) " + ", ".join(report["area_adjusted"]["unsampled_strata"])
                         + " have no reference sample: their area is left out of the area estimates")
    if untrained:
        report["note"] = "RANDOM (untrained) weights: these figures describe a pipeline check, not SenCLIP"
    return report


def _align(names: list[str], labels: list[str], match: dict[str, str]):
    """Map classes, then reference-only labels; index of each reference label among them."""
    lookup = {n.casefold(): i for i, n in enumerate(names)}
    bad = [v for v in match.values() if v.casefold() not in lookup]
    if bad:
        raise InputError(f"--match names map class(es) {', '.join(map(repr, bad))} the map does not have "
                         f"(it has: {', '.join(names)})")
    match_cf = {k.casefold(): v.casefold() for k, v in match.items()}
    classes, unmatched, idx = list(names), [], []
    for label in labels:
        key = match_cf.get(label.casefold(), label.casefold())
        if key not in lookup:
            lookup[key] = len(classes)
            classes.append(label)
            unmatched.append(label)
        idx.append(lookup[key])
    return classes, np.asarray(idx, dtype=np.int64), unmatched


def accuracy_report(classmap, reference, out, *, field: str = "class", match=None, overwrite: bool = False,
                    feedback: Feedback | None = None) -> AccuracyResult:
    """Write the report folder ``out``: accuracy.json, confusion.csv, classes.csv, confusion.png
    and report.html (one page, the picture embedded)."""
    from senclip.maps.report import write_report

    feedback = feedback or Feedback()
    from senclip.core.outputs import prepare_output

    prepare_output(out, overwrite, kind="report")
    report = assess(classmap, reference, field=field, match=match, feedback=feedback)
    path = write_report(report, out, overwrite=overwrite)
    return AccuracyResult(path, report)
