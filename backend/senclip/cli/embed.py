"""``senclip embed``: encode a scene once, re-classify it later with any prompts."""
from __future__ import annotations

import click

from senclip.core.feedback import TqdmFeedback
from senclip.cli.options import cloud_options, model_options, parse_bounds, tiling_options


@click.command()
@click.argument("input", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Embedding store folder to create.")
@model_options
@tiling_options
@cloud_options
@click.option("--overwrite", is_flag=True,
              help="Replace an existing output that senclip wrote (a class map, an embedding store); "
                   "anything else is refused and left untouched.")
@click.pass_context
def embed(ctx, input, out, bounds, **kw):
    """Compute image embeddings of INPUT (raster or band folder) into a store folder."""
    from senclip.api import embed as run

    fb = TqdmFeedback(quiet=ctx.obj["quiet"])
    res = run(input, out, bounds=parse_bounds(bounds), feedback=fb, **kw)
    click.echo(f"wrote {res.path} ({res.chips} chips, grid {res.grid['rows']}×{res.grid['cols']}, "
               f"{res.model['model_id']} on {res.backend}/{res.device}, {res.precision['precision']} on "
               f"{res.precision['engine']})")
    cm = res.cloud_mask or {}
    if cm.get("note"):
        share = f"; {100 * cm['masked_fraction']:.1f} % of the pixels masked" if "masked_fraction" in cm else ""
        click.echo(f"cloud mask: {cm['note']}{share}")
