"""The regional job on Dask distributed: scenes in, per-scene COGs, a mosaic and a manifest out.

One task per scene (``task.run_scene``), submitted to a ``LocalCluster`` of worker *processes*
(each loads the model once and keeps it) or to an existing scheduler (``scheduler=`` or Dask's
own configuration: ``DASK_SCHEDULER_ADDRESS`` / ``scheduler-address`` in a Dask config file).
Dask retries a failing task (``retries``) and reschedules the task of a worker that died on
another worker; a scene that still fails is recorded as failed and the others go on. Ctrl-C or
SIGTERM cancels the tasks and closes the cluster: finished scenes stay (complete, renamed into
place), nothing half-written does, and a rerun resumes.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from senclip.core import stopping
from senclip.core.errors import Cancelled, InputError, OutputError, SenclipError
from senclip.core.feedback import Feedback
from senclip.zeroshot.prompts import build_prompt_set
from senclip.region import manifest
from senclip.region.mosaic import RULES, build_mosaic
from senclip.region.sources import discover
from senclip.region.task import run_scene


class ScenesFailedError(SenclipError):
    """Some scenes failed (their messages are in the manifest); the rest were mapped."""

    exit_code = 3


@dataclass
class RegionResult:
    out: Path
    manifest: Path
    scenes: list
    done: int
    skipped: int
    failed: int
    mosaic: dict | None
    dashboard: str | None
    seconds: float
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["out"], d["manifest"] = str(self.out), str(self.manifest)
        return d


def default_workers() -> tuple[int, int]:
    """(worker processes, threads each) for this machine: one ViT-B/32 per worker needs about
    2 GB, and each worker's encoder uses its share of the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gb = 8
    n = max(1, min(cores // 2 or 1, int(mem_gb // 2) or 1))
    return n, max(1, cores // n)


def _cluster(scheduler, workers, threads, dashboard: bool):
    """(client, cluster or None): the given scheduler, Dask's configured one, or a LocalCluster."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or dask.config.get("scheduler-address", None)
    if address:
        try:
            return Client(address, timeout="20s"), None
        except OSError as e:
            raise InputError(f"cannot reach the Dask scheduler at {address} ({e}); check --scheduler") from None
    n, t = default_workers()
    n, t = workers or n, threads or t
    if n < 1 or t < 1:
        raise InputError(f"--workers and --threads-per-worker must be at least 1, got {n} and {t}")
    env = {v: str(t) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    quiet = logging.getLogger("senclip").getEffectiveLevel() > logging.INFO
    if quiet:  # Dask logs every worker start and stop at INFO: keep the console for our own lines
        logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=":8787" if dashboard else ":0", env=env,
                           silence_logs=logging.WARNING if quiet else False)
    return Client(cluster), cluster


def _dashboard(client, cluster, wanted: bool) -> str | None:
    """The dashboard's address, when there is one: it needs bokeh, and our own LocalCluster only
    advertises it when asked (with --no-dashboard it sits on a random port, unannounced)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return None
    if cluster is not None and not wanted:
        return None
    return client.dashboard_link


def _failed_record(scene, key: str, error: str) -> dict:
    return {"format": manifest.FORMAT, "id": scene.id, "status": "failed", "source": scene.to_dict(),
            "settings_key": key, "output": None, "error": error,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _error_text(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "the worker process died every time it mapped this scene (out of memory?)"
    return str(exc) if isinstance(exc, SenclipError) else f"{name}: {exc}"


def _remove_stale_work(folder: Path) -> None:
    """Staging folders of runs on this host whose process is gone (killed: it could not clean up)."""
    if not folder.is_dir():
        return
    host = socket.gethostname()
    for d in folder.iterdir():
        h, _, rest = d.name.rpartition("-")[0].rpartition("-")
        if h != host or not rest.isdigit():
            continue
        try:
            os.kill(int(rest), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {str(out)!r} is a file; give a folder for the regional outputs")
    if not out.exists():
        if not out.parent.is_dir():
            raise OutputError(f"cannot create {str(out)!r}: folder {str(out.parent)!r} does not exist")
        out.mkdir()
    mine = manifest.read_json(out / manifest.MANIFEST)
    for name in (manifest.MANIFEST, "mosaic.tif", "mosaic.vrt"):
        if (out / name).exists() and not (mine and mine.get("format") == manifest.FORMAT):
            raise OutputError(f"{out / name} exists and was not written by senclip map-region; choose another --out")
    (out / manifest.SCENES_DIR).mkdir(exist_ok=True)


def map_region(inputs=(), out=None, *, stac=None, collection=None, bbox=None, datetime=None, max_cloud=None,
               limit=None, scheduler=None, workers=None, threads_per_worker=None, retries: int = 2,
               overlap: str = "confidence", mosaic_crs=None, dashboard: bool = True,
               feedback: Feedback | None = None, **classify_kwargs) -> RegionResult:
    """Map every scene of ``inputs`` (paths, globs, folders, STAC JSON) and/or a STAC API search
    into folder ``out``; ``classify_kwargs`` are :func:`senclip.api.classify`'s options."""
    feedback = feedback or Feedback()
    t_start = time.perf_counter()
    _check_region_args(out, overlap, bbox, retries, classify_kwargs)
    prompt_set = build_prompt_set(classify_kwargs.get("classes"), prompts=classify_kwargs.get("prompts"),
                                  style=classify_kwargs.get("prompt_style", "ground"))
    scenes = _gather_scenes(inputs, stac, collection=collection, bbox=bbox, datetime=datetime,
                            max_cloud=max_cloud, limit=limit)
    out = Path(out)
    _check_out(out)
    settings = manifest.settings(classify_kwargs, prompt_set, bbox=bbox)
    key = manifest.sha256_json(settings)
    records, todo, failed_early = _resume_or_fail(scenes, out, key, feedback)
    _remove_stale_work(out / manifest.WORK_DIR)
    work = out / manifest.WORK_DIR / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    info = {"scheduler": None, "workers": None, "dashboard": None}
    man = {"format": manifest.FORMAT, "version": manifest.VERSION, "settings": settings, "settings_key": key,
           "overlap": overlap, "mosaic_crs": mosaic_crs, "cluster": info}

    def save(summary=None, mosaic=None):
        prev = manifest.read_json(out / manifest.MANIFEST) or {}
        doc = dict(man, scenes=[records.get(s.id, {"id": s.id, "status": "pending", "source": s.to_dict()})
                                for s in scenes],
                   updated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   summary=summary, mosaic=mosaic if mosaic is not None else prev.get("mosaic"))
        manifest.write_json(out / manifest.MANIFEST, doc)

    try:
        if todo:
            work.mkdir(parents=True)
            _run_tasks(todo, records, out, work, classify_kwargs, key, prompt_set, bbox, info, save,
                       scheduler=scheduler, workers=workers, threads=threads_per_worker, retries=retries,
                       dashboard=dashboard, feedback=feedback)
        ok = [s for s in scenes if records.get(s.id, {}).get("status") == "done"]
        failed = [s for s in scenes if records.get(s.id, {}).get("status") == "failed"]
        mosaic = _mosaic(out, work, ok, records, prompt_set, overlap, mosaic_crs, feedback) if ok else None
        summary = {"scenes": len(scenes), "done": len(ok), "skipped": len(scenes) - len(todo) - failed_early,
                   "failed": len(failed), "seconds": round(time.perf_counter() - t_start, 2)}
        save(summary, mosaic)
    finally:
        _remove_work(out, work)
    result = RegionResult(out=out, manifest=out / manifest.MANIFEST, scenes=[records[s.id] for s in scenes],
                          done=len(ok), skipped=summary["skipped"], failed=len(failed), mosaic=mosaic,
                          dashboard=info["dashboard"], seconds=summary["seconds"])
    return result


def _check_region_args(out, overlap: str, bbox, retries, classify_kwargs: dict) -> None:
    """Reject bad options before any scene is searched or read, so a typo costs nothing."""
    if out is None:
        raise InputError("no output folder given; pass --out FOLDER")
    if overlap not in RULES:
        raise InputError(f"--overlap must be one of {', '.join(RULES)}, got {overlap!r}")
    if bbox is not None and classify_kwargs.get("bounds"):
        raise InputError("give --bbox (lon/lat, all scenes) or --bounds (one scene's CRS), not both")
    if not isinstance(retries, int) or retries < 0:
        raise InputError(f"--retries must be 0 or more, got {retries!r}")
    ck = classify_kwargs.get("checkpoint")
    if ck and not Path(ck).is_file():
        raise InputError(f"checkpoint {ck} does not exist or is not a file; check --checkpoint")


def _gather_scenes(inputs, stac, *, collection, bbox, datetime, max_cloud, limit) -> list:
    """The scenes of ``inputs`` plus those of a STAC API search, without duplicates, oldest first."""
    scenes = discover(inputs) if inputs else []
    if stac:
        from senclip.region import stac as stac_mod
        from senclip.region.sources import unique_ids

        scenes = unique_ids(scenes + stac_mod.search(stac, collection=collection, bbox=bbox, datetime=datetime,
                                                     max_cloud=max_cloud, limit=limit))
    if not scenes:
        raise InputError("no scenes given; pass scene paths/folders, a STAC JSON, or --stac URL --collection ...")
    scenes.sort(key=lambda s: (s.datetime or "", s.id))
    return scenes


def _resume_or_fail(scenes, out: Path, key: str, feedback: Feedback) -> tuple[dict[str, dict], list, int]:
    """Records of the scenes already done with these settings or unreadable, the scenes left to map,
    and how many were unreadable."""
    records: dict[str, dict] = {}
    todo = []
    for s in scenes:
        rec = None if s.error else manifest.is_done(out, s, key)
        if s.error:  # an item that cannot be mapped fails alone, with its reason
            records[s.id] = _failed_record(s, key, s.error)
            manifest.write_json(manifest.scene_paths(out, s.id)["record"], records[s.id])
            feedback.warning(f"{s.id}: failed: {s.error}")
        elif rec is not None:
            records[s.id] = dict(rec, resumed=True)
        else:
            todo.append(s)
    failed_early = sum(1 for s in scenes if s.error)
    feedback.info(f"{len(scenes)} scene(s): {len(scenes) - len(todo) - failed_early} already done with these "
                  f"settings, {len(todo)} to map" + (f", {failed_early} unreadable" if failed_early else ""))
    return records, todo, failed_early


def _remove_work(out: Path, work: Path) -> None:
    """Delete this run's work folder, and the shared work folder once no other run uses it."""
    shutil.rmtree(work, ignore_errors=True)
    try:
        (out / manifest.WORK_DIR).rmdir()
    except OSError:
        pass


def _run_tasks(todo, records, out, work, classify_kwargs, key, prompt_set, bbox, info, save, *, scheduler,
               workers, threads, retries, dashboard, feedback) -> None:
    """Submit one task per scene and record each as it completes; Ctrl-C/SIGTERM stops the cluster."""
    from distributed import as_completed

    feedback.start(len(todo), "scenes")
    stopping.handle_sigterm()  # SIGTERM like Ctrl-C (also when called from the API, not the CLI)
    client = cluster = None
    try:
        client, cluster = _cluster(scheduler, workers, threads, dashboard)
        info.update(scheduler=client.scheduler.address, workers=len(client.scheduler_info()["workers"]),
                    dashboard=_dashboard(client, cluster, dashboard))
        if info["dashboard"]:
            feedback.info(f"Dask dashboard: {info['dashboard']}")
        futures = {}
        for s in todo:
            f = client.submit(run_scene, s, str(out), str(work), classify_kwargs, key, prompt_set, bbox,
                              key=f"senclip-scene-{s.id}-{uuid.uuid4().hex[:8]}", retries=retries, pure=False)
            futures[f] = s
        save()
        for f in as_completed(futures):
            feedback.check()
            s = futures[f]
            exc = f.exception()
            if exc is None:
                rec = f.result()
                feedback.info(f"{s.id}: done in {rec['timings']['total_s']:.1f} s on {rec['worker']}")
            else:
                rec = _failed_record(s, key, _error_text(exc))
                manifest.write_json(manifest.scene_paths(out, s.id)["record"], rec)
                feedback.warning(f"{s.id}: failed: {rec['error']}")
            records[s.id] = rec
            save()
            feedback.advance(1)
    except KeyboardInterrupt as e:
        save()
        raise Cancelled("interrupted: the cluster was stopped; finished scenes are kept and the rest were "
                        "not written; run the same command again to resume",
                        exit_code=stopping.exit_code(e)) from None
    finally:
        feedback.finish()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _mosaic(out, work, ok, records, prompt_set, overlap, mosaic_crs, feedback) -> dict:
    """Build the mosaic, unless the one there was made from exactly these scene maps and rule."""
    inputs = [(s.id, records[s.id].get("finished"), records[s.id].get("settings_key")) for s in ok]
    mkey = manifest.sha256_json([inputs, overlap, mosaic_crs])
    prev = (manifest.read_json(out / manifest.MANIFEST) or {}).get("mosaic") or {}
    if prev.get("inputs_key") == mkey and (out / "mosaic.tif").is_file() and (out / "mosaic.vrt").is_file():
        feedback.info("mosaic is up to date")
        return prev
    work.mkdir(parents=True, exist_ok=True)
    maps = [manifest.scene_paths(out, s.id)["map"] for s in ok]
    res = build_mosaic(maps, list(prompt_set), out, rule=overlap, crs=mosaic_crs, work=work, feedback=feedback)
    for w in res.warnings:
        feedback.warning(w)
    return dict(res.to_dict(), inputs_key=mkey)
