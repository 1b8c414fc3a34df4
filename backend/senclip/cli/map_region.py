"""``senclip map-region``: many scenes (paths, STAC) → per-scene COGs + a mosaic, on Dask."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.cli.classify import classify as _classify_cmd

# Every option of ``senclip classify`` that shapes the map is an option here too, taken from the
# classify command itself, so an option added to classify reaches map-region without an edit.
NOT_INHERITED = {"input", "out", "embeddings", "save_embeddings", "overwrite", "as_json"}


def classify_options(f):
    params = [p for p in _classify_cmd.params if p.name not in NOT_INHERITED]
    existing = getattr(f, "__click_params__", [])
    f.__click_params__ = existing + list(reversed(params))
    return f


def parse_bbox(value):
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not (-180 <= parts[0] < parts[2] <= 180 and -90 <= parts[1] < parts[3] <= 90):
        raise click.BadParameter("must be WEST,SOUTH,EAST,NORTH in degrees (lon/lat), west < east, south < north",
                                 param_hint="--bbox")
    return parts


def report(res) -> str:
    lines = [f"{res.done} scene(s) mapped ({res.skipped} already done), {res.failed} failed, in {res.seconds:.1f} s"
             f" -> {res.out}"]
    if res.dashboard:
        lines.append(f"  dashboard was {res.dashboard}")
    for r in res.scenes:
        if r.get("status") == "failed":
            lines.append(f"  FAILED {r['id']}: {r.get('error')}")
    m = res.mosaic
    if m:
        lines.append(f"  mosaic {m['path']} ({m['width']}x{m['height']} px, {m['crs']}, overlap rule {m['rule']}); "
                     f"VRT {m['vrt']}")
        total = sum(m["counts"].values()) or 1
        for name, n in m["counts"].items():
            area = f"{m['area_m2'][name] / 1e6:10.3f} km²" if m.get("area_m2") else ""
            lines.append(f"  {name:<32} {100 * n / total:5.1f} %  {area}")
    lines.append(f"  manifest {res.manifest}")
    if any((r.get("model") or {}).get("untrained") for r in res.scenes):
        lines.append("  NOTE: random (untrained) weights; these maps only check the pipeline")
    return "\n".join(lines)


@click.command("map-region")
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: scenes/<id>.tif (COG) + <id>.json per scene, mosaic.tif (COG), mosaic.vrt, "
                   "manifest.json. Rerunning into the same folder resumes.")
@click.option("--stac", "stac_url", default=None, metavar="URL",
              help="STAC API to search (e.g. https://earth-search.aws.element84.com/v1).")
@click.option("--collection", default=None, help="STAC collection for --stac, e.g. sentinel-2-l2a.")
@click.option("--bbox", default=None, metavar="W,S,E,N",
              help="Region in degrees (lon/lat): filters the STAC search and limits every scene to it.")
@click.option("--datetime", "datetime_", default=None, metavar="RANGE",
              help="STAC datetime or range for --stac, e.g. 2024-06-01/2024-08-31.")
@click.option("--max-cloud", type=float, default=None, help="With --stac: only items with eo:cloud_cover below this (%).")
@click.option("--limit", type=int, default=None, help="With --stac: at most this many items.")
@click.option("--overlap", type=click.Choice(choices("overlap")), default=default("overlap"), show_default=True,
              help="Where scenes overlap: the most confident observation wins, or the class seen most often over "
                   "the dates (cloud loses to any class).")
@click.option("--mosaic-crs", default=None, metavar="CRS",
              help="CRS of the mosaic [default: the CRS most scenes share].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Existing Dask scheduler (tcp://host:8786) [default: Dask config scheduler-address, else a "
                   "LocalCluster on this machine].")
@click.option("--workers", type=int, default=None, help="LocalCluster worker processes [default: by cores and memory].")
@click.option("--threads-per-worker", type=int, default=None,
              help="Encoder threads per LocalCluster worker [default: cores / workers].")
@click.option("--retries", type=int, default=2, show_default=True, help="Dask retries of a failing scene.")
@click.option("--no-dashboard", is_flag=True, help="Do not start the Dask dashboard of the LocalCluster.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (scenes, mosaic, areas) as JSON.")
@classify_options
@click.pass_context
def map_region(ctx, inputs, out, stac_url, collection, bbox, datetime_, max_cloud, limit, overlap, mosaic_crs,
               scheduler, workers, threads_per_worker, retries, no_dashboard, as_json, bounds, **kw):
    """Map many Sentinel-2 scenes (INPUTS: files, globs, folders, .SAFE/.SAFE.zip, STAC JSON) and/or a
    STAC API search into per-scene COGs and one mosaic, on Dask (exit code 3 when some scenes failed)."""
    import json

    from senclip.core.feedback import TqdmFeedback
    from senclip.region import map_region as run
    from senclip.region.job import ScenesFailedError
    from senclip.cli.options import parse_bounds

    fb = TqdmFeedback(quiet=ctx.obj["quiet"])
    res = run(list(inputs), out, stac=stac_url, collection=collection, bbox=parse_bbox(bbox), datetime=datetime_,
              max_cloud=max_cloud, limit=limit, scheduler=scheduler, workers=workers,
              threads_per_worker=threads_per_worker, retries=retries, overlap=overlap, mosaic_crs=mosaic_crs,
              dashboard=not no_dashboard, bounds=parse_bounds(bounds), feedback=fb, **kw)
    click.echo(json.dumps(res.to_dict(), indent=2, default=str) if as_json else report(res))
    if res.failed:
        raise ScenesFailedError(f"{res.failed} of {len(res.scenes)} scene(s) failed (see {res.manifest}); "
                                "fix them and run the same command again to redo only those")
