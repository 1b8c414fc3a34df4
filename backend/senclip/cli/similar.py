"""``senclip similar``: cells like a query (points/polygons, a text or an image chip) → similarity raster + mask."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.core.feedback import TqdmFeedback


@click.command()
@click.argument("store", type=click.Path(file_okay=False))
@click.option("--query", type=click.Path(dir_okay=False), default=None,
              help="Query points/polygons (GeoJSON, GeoPackage, Shapefile; any CRS); their cells' mean embedding is the query.")
@click.option("--text", default=None, help='A text query instead, e.g. "solar farms".')
@click.option("--chip", type=click.Path(dir_okay=False), default=None,
              help="An image chip as the query instead (GeoTIFF/PNG/JPEG: 8-bit RGB or a Sentinel-2 band stack), "
                   "encoded with the store's model.")
@click.option("--prompt-style", type=click.Choice(choices("prompt_style")), default=default("prompt_style"), show_default=True,
              help="Prompt templates for --text.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Similarity GeoTIFF (float32 cosine) to write.")
@click.option("--mask-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the thresholded mask (1 = similar, 0 = not, 255 = nodata).")
@click.option("--threshold", default="auto", show_default=True,
              help="Cosine similarity counted as similar; auto = Otsu's threshold of the scene's histogram.")
@click.option("--backend", type=click.Choice(choices("backend")), default=default("backend"), show_default=True,
              help="Engine of the encoder (--text and --chip only).")
@click.option("--device", type=click.Choice(choices("device")), default=default("device"), show_default=True,
              help="Device of the encoder (--text and --chip only).")
@click.option("--offline", is_flag=True, help="Never download; use cached weights only.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def similar(ctx, store, out, as_json, **kw):
    """Cosine similarity of every cell of STORE to a query, and the share above a threshold."""
    import json

    from senclip.tools.similarity import find_similar
    from senclip.worker import to_jsonable

    res = find_similar(store, out, feedback=TqdmFeedback(quiet=ctx.obj["quiet"]), **kw)
    if as_json:
        click.echo(json.dumps(to_jsonable(res), indent=2))
        return
    area = f", {res.area_above_m2 / 1e6:.3f} km²" if res.area_above_m2 is not None else ""
    click.echo(f"wrote {res.path}{' and ' + str(res.mask_path) if res.mask_path else ''}\n"
               f"  threshold {res.threshold:.4f} ({res.threshold_method}): {100 * res.share_above:.2f} % of "
               f"{res.valid_cells} cells above{area}")
