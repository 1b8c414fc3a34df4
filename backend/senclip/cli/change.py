"""``senclip change``: two stores of the same grid (two dates) → cosine distance, class changes."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.core.feedback import TqdmFeedback
from senclip.cli.options import prompt_options


@click.command()
@click.argument("before", type=click.Path(file_okay=False))
@click.argument("after", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Cosine-distance GeoTIFF to write.")
@prompt_options
@click.option("--changes-out", type=click.Path(dir_okay=False), default=None,
              help="With classes: raster of the cells whose top class changed (band 1 before, band 2 after).")
@click.option("--table", type=click.Path(dir_okay=False), default=None,
              help="With classes: CSV of the from → to transitions with cells and km².")
@click.option("--backend", type=click.Choice(choices("backend")), default=default("backend"), show_default=True,
              help="Engine of the text encoder (classes only).")
@click.option("--device", type=click.Choice(choices("device")), default=default("device"), show_default=True,
              help="Device of the text encoder (classes only).")
@click.option("--offline", is_flag=True, help="Never download; use cached weights only.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def change(ctx, before, after, out, as_json, **kw):
    """Change between BEFORE and AFTER (embedding stores of the same grid and model)."""
    import json

    from senclip.tools.change import change as run
    from senclip.worker import to_jsonable

    res = run(before, after, out, feedback=TqdmFeedback(quiet=ctx.obj["quiet"]), **kw)
    if as_json:
        click.echo(json.dumps(to_jsonable(res), indent=2))
        return
    click.echo(f"wrote {res.path}: {res.compared_cells} cells compared, mean cosine distance {res.mean_distance:.4f}")
    if res.changed_cells is not None:
        click.echo(f"  top class changed in {res.changed_cells} cells")
        for r in [r for r in res.transitions if r["changed"]][:20]:
            area = f"{r['area_m2'] / 1e6:9.3f} km²" if r["area_m2"] is not None else ""
            click.echo(f"  {r['from']:>24} → {r['to']:<24} {r['cells']:7d} cells {area}")
