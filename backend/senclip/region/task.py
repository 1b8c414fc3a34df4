"""What a Dask worker runs for one scene: its class map as a COG plus its run record.

The model is loaded once per worker *process* and kept in a module-level cache (keyed by the
load arguments), so every later scene on that worker pays only for its pixels. Outputs are
written under temporary names in the job's work folder and renamed into ``scenes/`` when
complete, record last: a worker killed mid-task leaves no partial map, and the scene is redone.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

from senclip.core.errors import InputError, OutputError
from senclip.core.feedback import Feedback
from senclip.region import manifest

# COGs over HTTP: never list the remote "directory" to look for sidecars (one request per open
# instead of several). Only while a STAC scene is read (set process-wide it would hide every local
# sidecar, e.g. the class maps' .aux.xml palettes); a value the user set wins.
REMOTE_GDAL = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MULTIRANGE": "YES"}

_MODELS: dict = {}
_LOCK = threading.Lock()
COG_OPTIONS = {"COMPRESS": "DEFLATE", "BLOCKSIZE": "256", "OVERVIEW_RESAMPLING": "NEAREST", "BIGTIFF": "IF_SAFER"}


def load_args(classify_kwargs: dict) -> dict:
    """The subset of the classify options that choose the model (whatever ``load_model`` takes)."""
    from senclip.models.loading import load_model

    names = set(inspect.signature(load_model).parameters) - {"feedback", "onnx_dir"}
    return {k: v for k, v in classify_kwargs.items() if k in names}


def cached_model(args: dict):
    """(loaded model, seconds spent loading it in this call: 0 when this process had it)."""
    key = tuple(sorted((k, str(v)) for k, v in args.items()))
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key], 0.0
        from senclip.models.loading import load_model

        t0 = time.perf_counter()
        lm = load_model(**args)
        _MODELS[key] = lm
        return lm, time.perf_counter() - t0


def stac_vrt(scene, folder: Path, paths: dict | None = None) -> Path:
    """A 3-band VRT (red, green, blue: the band order ``senclip`` reads from 3-band rasters) over
    the item's band assets (``paths``: the signed ones, when signing applies); GDAL reads them
    window by window when the VRT is read."""
    from senclip.region.vrt import stack_vrt

    paths = paths or scene.assets
    srcs = [paths[r] for r in ("red", "green", "blue")]
    return stack_vrt(srcs, Path(folder) / f"{scene.id}.vrt", ["B04", "B03", "B02"])


def stac_inputs(scene, folder: Path, classify_kwargs: dict) -> tuple[Path, dict, dict, dict]:
    """What ``classify`` reads for a STAC scene: (VRT over its RGB assets, classify options, the
    radiometry used and by which rule, GDAL settings). Planetary Computer hrefs are signed here,
    on the worker, right before reading (:mod:`.access`); the item's radiometry replaces the
    opener's ``auto`` (never added to it), the user's --offset/--scale win over both."""
    from senclip.sentinel2.productfiles import ProductFiles
    from senclip.region import access

    gdal = access.gdal_options(scene, classify_kwargs.get("cloud_mask"))  # only what this run reads counts
    paths = access.signed_paths(dict(scene.assets, scl=scene.scl, **{f"cloud:{b}": p for b, p in
                                                                     scene.cloud_bands.items()}))
    kw = dict(classify_kwargs, bands=None, scl=paths["scl"])  # the SCL asset, for --cloud-mask auto|scl
    rad = dict(scene.radiometry or {"rule": "none"})
    for opt in ("offset", "scale"):
        if kw.get(opt, "auto") in ("auto", None) and getattr(scene, opt) is not None:
            kw[opt] = getattr(scene, opt)
        elif kw.get(opt, "auto") not in ("auto", None):
            rad[opt], rad["rule"] = float(kw[opt]), f"--{opt} given by the user; item: {rad.get('rule')}"
    if scene.cloud_bands or scene.sun:  # an L1C item: s2cloudless reads its own band assets
        kw["product_files"] = ProductFiles(bands={b: (paths[f"cloud:{b}"], 1) for b in scene.cloud_bands},
                                           sun=scene.sun)
    return stac_vrt(scene, folder, paths), kw, rad, gdal


def bbox_bounds(path, bbox, bands=None) -> list[float]:
    """``bbox`` (lon/lat, EPSG:4326) as bounds in the raster's CRS, clipped to the raster."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    from senclip.sentinel2.scene import open_scene

    with open_scene(path, bands=bands) as sc:
        crs, (w, s, e, n) = sc.crs, array_bounds(sc.full_height, sc.full_width, sc.full_transform)
    x0, y0, x1, y1 = transform_bounds("EPSG:4326", crs, *bbox, densify_pts=21)
    out = [max(x0, w), max(y0, s), min(x1, e), min(y1, n)]
    if out[0] >= out[2] or out[1] >= out[3]:
        raise InputError(f"scene does not overlap --bbox {tuple(bbox)}")
    return out


class SceneOutputs:
    """The scene's COG (+ ``.aux.xml`` palette, ``.qml`` style) staged in the work folder and
    renamed into place by :meth:`commit`; :meth:`abort` removes what was staged."""

    def __init__(self, out: Path, work: Path, scene_id: str) -> None:
        self.paths = manifest.scene_paths(out, scene_id)
        self.dst = self.paths["map"]
        if self.dst.exists() and not manifest.owned_by_us(self.paths["record"]):
            raise OutputError(f"{self.dst} exists and was not written by senclip map-region; move it away or "
                              "choose another --out folder")
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(dir=work, prefix=f"{scene_id}."))

    def cog_from(self, classmap: Path) -> None:
        from rasterio.shutil import copy

        copy(classmap, self.stage / "map.tif", driver="COG", **COG_OPTIONS)
        for ext in (".tif.aux.xml", ".qml"):  # the palette/category names and the QGIS style
            side = classmap.with_name(classmap.stem + ext)
            if side.is_file():
                (self.stage / ("map" + ext)).write_bytes(side.read_bytes())

    def commit(self, record: dict) -> None:
        for ext in (".tif.aux.xml", ".qml"):
            (self.stage / ("map" + ext)).replace(self.dst.with_name(self.dst.stem + ext)) \
                if (self.stage / ("map" + ext)).is_file() else None
        (self.stage / "map.tif").replace(self.dst)
        manifest.write_json(self.paths["record"], record)
        self.abort()

    def abort(self) -> None:
        import shutil

        shutil.rmtree(self.stage, ignore_errors=True)


def _where() -> dict:
    try:
        from distributed import get_worker

        addr = get_worker().address
    except (ImportError, ValueError):
        addr = "local"
    return {"worker": addr, "pid": os.getpid(), "host": socket.gethostname()}


def run_scene(scene, out: str, work: str, classify_kwargs: dict, settings_key: str, prompt_set: dict,
              bbox=None) -> dict:
    """Map one scene; returns its run record (also written beside its map). Raises on failure,
    so Dask's retries apply; the driver records the error of the last attempt."""
    import rasterio

    from senclip.api import classify

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    out, work = Path(out), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    lm, load_s = cached_model(load_args(classify_kwargs))
    outputs = SceneOutputs(out, work, scene.id)
    try:
        kw, rad, gdal = dict(classify_kwargs), None, {}
        if scene.kind == "stac":
            src, kw, rad, gdal = stac_inputs(scene, outputs.stage, classify_kwargs)
        else:
            src = scene.path
        remote = dict({k: v for k, v in REMOTE_GDAL.items() if k not in os.environ}, **gdal) \
            if scene.kind == "stac" else {}
        with rasterio.Env(**remote):
            if bbox is not None:
                kw["bounds"] = bbox_bounds(src, bbox, kw.get("bands"))
            t1 = time.perf_counter()
            res = classify(src, outputs.stage / "classmap.tif", loaded_model=lm, feedback=Feedback(), **kw)
        t2 = time.perf_counter()
        outputs.cog_from(res.path)
        t3 = time.perf_counter()
        record = {
            "format": manifest.FORMAT, "id": scene.id, "status": "done", "source": scene.to_dict(),
            "fingerprint": scene.fingerprint(), "settings_key": settings_key,
            "output": str(outputs.dst), "model": res.model, "backend": res.backend, "device": res.device,
            "prompts": prompt_set, "classes": res.classes, "counts": res.counts, "area_m2": res.area_m2,
            "mean_confidence": res.mean_confidence, "unclassified": res.unclassified, "warnings": res.warnings,
            "radiometry": rad, "cloud_mask": res.cloud_mask,
            "timings": {"model_load_s": round(load_s, 3), "classify_s": round(t2 - t1, 3), "cog_s": round(t3 - t2, 3),
                        "total_s": round(time.perf_counter() - t0, 3)},
            "model_loaded_here": load_s > 0, "started": started.isoformat(timespec="seconds"),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "error": None,
            **_where(),
        }
        outputs.commit(record)
        return record
    except BaseException:
        outputs.abort()
        raise
