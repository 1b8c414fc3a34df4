"""Change between two dates: two embedding stores of the same grid, compared cell by cell.

The distance raster holds the cosine distance ``1 − cos(a, b) = |â − b̂|² / 2`` of the two
dates' embeddings (0 = the same, computed in the second form so identical embeddings give
exactly 0). With classes (prompts), each cell's top class is found on both dates with the same
class vectors, and the cells whose top class changed are listed as a "from → to" table with
areas; ``--changes-out`` writes them as a raster (band 1 = class before, band 2 = class after,
0 where unchanged or not valid on both dates).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.core.errors import StoreMismatchError
from senclip.core.feedback import Feedback
from senclip.core.outputs import CHANGE_TABLE_HEADER, Staged, prepare_output, published_together
from senclip.embedding.store import EmbeddingStore
from senclip.zeroshot.head import probabilities, top_class

NODATA = -1.0
TABLE_HEADER = CHANGE_TABLE_HEADER  # the from → to CSV; its header is also how --overwrite knows it


@dataclass
class ChangeResult:
    path: Path
    changes_path: Path | None
    compared_cells: int
    mean_distance: float
    classes: list
    changed_cells: int | None
    transitions: list  # {"from", "to", "cells", "area_m2", "changed"}
    model: dict


def check_same_grid(a: EmbeddingStore, b: EmbeddingStore) -> None:
    """Refuse two stores that do not share grid, CRS and model: their cells would not be the
    same places, or their embeddings not the same space."""
    from rasterio.crs import CRS

    ma, mb = a.meta, b.meta
    hint = "; embed both dates with the same --tile/--stride/--bounds on the same Sentinel-2 tile and model"
    for key in ("tile", "stride", "rows", "cols"):
        if ma["tiling"].get(key) != mb["tiling"].get(key):
            raise StoreMismatchError(f"the stores differ in {key} ({ma['tiling'].get(key)} vs {mb['tiling'].get(key)}){hint}")
    if CRS.from_wkt(ma["crs"]) != CRS.from_wkt(mb["crs"]):
        raise StoreMismatchError(f"the stores are in different CRSs{hint}")
    if not np.allclose(ma["grid_transform"], mb["grid_transform"], rtol=0, atol=1e-6):
        raise StoreMismatchError(f"the stores' grids are not aligned ({ma['grid_transform'][:3]} vs "
                                 f"{mb['grid_transform'][:3]}...){hint}")
    b.check_model(a.model)


def distance(a: EmbeddingStore, b: EmbeddingStore, feedback: Feedback) -> tuple[np.ndarray, np.ndarray]:
    """(distance raster with NODATA, mask of cells valid on both dates)."""
    both = a.valid & b.valid
    out = np.full(both.shape, NODATA, dtype=np.float32)
    for (r0, r1, ea), (_, _, eb) in zip(a.iter_rows(64), b.iter_rows(64)):
        feedback.check()
        ok = both[r0:r1]
        x, y = _unit(ea[ok]), _unit(eb[ok])
        out[r0:r1][ok] = 0.5 * ((x - y) ** 2).sum(1)
    return out, both


def _unit(e: np.ndarray) -> np.ndarray:
    e = e.astype(np.float64)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def store_classes(st: EmbeddingStore, vectors: np.ndarray) -> np.ndarray:
    """(rows, cols) 1-based top class (0 where invalid), decided as in a class map."""
    out = np.zeros(st.valid.shape, dtype=np.uint8)
    for r0, r1, emb in st.iter_rows(64):
        ok = st.valid[r0:r1]
        out[r0:r1][ok] = top_class(probabilities(emb[ok].astype(np.float32), vectors), axis=1) + 1
    return out


def transitions(before: np.ndarray, after: np.ndarray, both: np.ndarray, names: list[str],
                cell_area: float | None) -> list[dict]:
    k = len(names)
    pairs = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.add.at(pairs, (before[both], after[both]), 1)
    rows = []
    for i in range(1, k + 1):
        for j in range(1, k + 1):
            if pairs[i, j]:
                rows.append({"from": names[i - 1], "to": names[j - 1], "cells": int(pairs[i, j]),
                             "area_m2": None if cell_area is None else float(pairs[i, j] * cell_area),
                             "changed": i != j})
    rows.sort(key=lambda r: (not r["changed"], -r["cells"]))
    return rows


def change(store_a, store_b, out, *, classes=None, prompts=None, prompt_style: str = "ground", changes_out=None,
           table=None, backend: str = "auto", device: str = "auto", offline: bool = False, overwrite: bool = False,
           feedback: Feedback | None = None, loaded_model=None) -> ChangeResult:
    """Cosine-distance raster ``out`` of two dates; with classes/prompts also the from → to table
    (``table``: CSV) and the changed cells (``changes_out``)."""
    from senclip.maps.gridraster import cell_area_m2, write_grid_raster

    feedback = feedback or Feedback()
    for p, kind in ((out, "classmap"), (changes_out, "classmap"), (table, "table")):
        if p is not None:
            prepare_output(p, overwrite, kind=kind)
    a = store_a if isinstance(store_a, EmbeddingStore) else EmbeddingStore(store_a)
    b = store_b if isinstance(store_b, EmbeddingStore) else EmbeddingStore(store_b)
    check_same_grid(a, b)
    names, rows, n_changed, before, after = [], [], None, None, None
    dist, both = distance(a, b, feedback)
    if classes or prompts:
        from senclip.zeroshot.prompts import build_prompt_set
        from senclip.zeroshot.storetext import prompt_vectors, store_text_model

        prompt_set = build_prompt_set(classes, prompts=prompts, style=prompt_style)
        names = list(prompt_set)
        lm = store_text_model(a, backend=backend, device=device, offline=offline, feedback=feedback,
                              loaded_model=loaded_model)
        vectors = prompt_vectors(lm, prompt_set, feedback)
        before, after = store_classes(a, vectors), store_classes(b, vectors)
        rows = transitions(before, after, both, names, cell_area_m2(a.meta))
        n_changed = int(((before != after) & both).sum())
    elif changes_out is not None or table is not None:
        from senclip.core.errors import InputError

        raise InputError("--changes-out and --table need classes: pass --classes or --prompts")
    tags = {"SENCLIP_STORES": [str(a.path), str(b.path)], "SENCLIP_MODEL": a.meta["model"].get("model_id")}
    changes_path = None
    with published_together() as record:
        path = write_grid_raster(out, dist, a.meta, nodata=NODATA, names=["cosine distance"], tags=tags,
                                 overwrite=overwrite)
        record(path)
        if changes_out is not None:
            changed = (before != after) & both
            bands = np.stack([np.where(changed, before, 0), np.where(changed, after, 0)]).astype(np.uint8)
            changes_path = write_grid_raster(changes_out, bands, a.meta, nodata=0,
                                             names=["class before", "class after"],
                                             tags=dict(tags, SENCLIP_CLASSES=names), overwrite=overwrite)
            record(changes_path)
        if table is not None:
            record(_write_table(table, rows))
    return ChangeResult(path, changes_path, int(both.sum()),
                        float(dist[both].mean()) if both.any() else 0.0, names, n_changed, rows, a.meta["model"])


def _write_table(path, rows: list[dict]) -> Path:
    import csv

    path = Path(path)
    with Staged(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TABLE_HEADER)
        for r in rows:
            w.writerow([r["from"], r["to"], int(r["changed"]), r["cells"],
                        "" if r["area_m2"] is None else f"{r['area_m2'] / 1e6:.4f}"])
    return path
