"""``senclip classify``: raster (or embedding store) + classes → class-map GeoTIFF."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.core.feedback import TqdmFeedback
from senclip.cli.options import (CALIBRATE_HELP, cloud_options, model_options, parse_bounds, prompt_options,
                                 tiling_options, transductive_options)


def report(res) -> str:
    prec = res.precision or {}
    how = f", image encoder {prec['precision']} on {prec['engine']}" if prec.get("precision") else ""
    lines = [f"wrote {res.path} ({res.model['model_id']} on {res.backend}/{res.device}{how})"]
    total = sum(res.counts.values()) or 1
    absent = {a["class"]: a for a in (res.transductive or {}).get("absent", [])}
    for name in res.classes:
        area = f"{res.area_m2[name] / 1e6:9.3f} km²" if res.area_m2 is not None else ""
        lines.append(f"  {name:<32} {100 * res.counts[name] / total:5.1f} %  {area}  "
                     f"mean confidence {100 * res.mean_confidence[name]:5.1f} %" + _absent_note(absent.get(name)))
    if res.cloud_masked:
        lines.append(f"  {'cloud / shadow (masked)':<32} {100 * res.cloud_masked / (total + res.cloud_masked):5.1f} % "
                     "of the mapped area (the class shares above are of the cloud-free area)")
    cm = res.cloud_mask or {}
    if cm.get("note"):
        share = f"; {100 * cm['masked_fraction']:.1f} % of the pixels masked" if "masked_fraction" in cm else ""
        lines.append(f"  cloud mask: {cm['note']}{share}")
    if res.transductive:
        t = res.transductive
        lines.append(f"  transductive ({t['method']}): {t['cells']} cells, feature kNN {t['knn']}, spatial edges "
                     f"{t['spatial']}, {t['seconds'].get('graph', 0) + t['seconds'].get('solve', 0):.1f} s")
    if res.model.get("untrained"):
        lines.append("  NOTE: random (untrained) weights; this map only checks the pipeline")
    return "\n".join(lines)


def _absent_note(a: dict | None) -> str:
    """The class-area table's mark for a class the transductive step found absent or nearly so."""
    if a is None:
        return ""
    what = "absent: dropped" if a.get("dropped") else "nearly absent"
    return f"  ({what} by the transductive step, estimated share {100 * a['share']:.2f} %)"


@click.command()
@click.argument("input", type=click.Path(), required=False)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Class-map GeoTIFF to write.")
@prompt_options
@click.option("--embeddings", type=click.Path(file_okay=False), default=None,
              help="Re-classify from this embedding store ('senclip embed') instead of encoding INPUT.")
@click.option("--save-embeddings", type=click.Path(file_okay=False), default=None,
              help="Also keep the embeddings as a store for later re-classification.")
@click.option("--resolution", type=click.Choice(choices("resolution")), default=default("resolution"), show_default=True,
              help="grid: one output pixel per stride step; pixel: input resolution, averaging all chips covering a pixel.")
@click.option("--calibrate", type=click.Choice(choices("calibrate")), default=default("calibrate"), show_default=True,
              help=CALIBRATE_HELP)
@transductive_options
@model_options
@tiling_options
@cloud_options
@click.option("--overwrite", is_flag=True,
              help="Replace an existing output that senclip wrote (a class map, an embedding store); "
                   "anything else is refused and left untouched.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result (classes, pixel counts, areas, mean confidence, model) as JSON.")
@click.pass_context
def classify(ctx, input, out, bounds, as_json, **kw):
    """Classify INPUT (Sentinel-2 raster or band folder) into the given classes."""
    import json

    from senclip.api import classify as run

    fb = TqdmFeedback(quiet=ctx.obj["quiet"])
    res = run(input, out, bounds=parse_bounds(bounds), feedback=fb, **kw)
    click.echo(json.dumps(res.to_dict(), indent=2) if as_json else report(res))
