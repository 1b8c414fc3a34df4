"""``senclip fewshot``: labelled examples + (optional) prompts → refined class map from a store."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.core.feedback import TqdmFeedback
from senclip.cli.classify import report
from senclip.cli.options import CALIBRATE_HELP, prompt_options, transductive_options


def cv_line(cv) -> str:
    if not cv:
        return "  cross-validation: too few example features (need at least 2)"
    return (f"  cross-validated on held-out examples ({cv['folds']} folds, {cv['features']} features, "
            f"{cv['samples']} cells): overall accuracy {100 * cv['overall_accuracy']:.1f} %, kappa {cv['kappa']:.3f} "
            f"(majority class {100 * cv['majority_baseline']:.1f} %)")


@click.command()
@click.argument("store", type=click.Path(file_okay=False))
@click.option("--examples", required=True, type=click.Path(dir_okay=False),
              help="Labelled points/polygons (GeoJSON, GeoPackage, Shapefile; any CRS).")
@click.option("--field", default="class", show_default=True, help="Attribute of --examples holding the class name.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Class-map GeoTIFF to write.")
@prompt_options
@click.option("--example-weight", type=float, default=0.5, show_default=True,
              help="Weight of the examples against the prompts' zero-shot classifier (0 = prompts only, 1 = examples only).")
@click.option("--folds", type=int, default=5, show_default=True,
              help="Cross-validation folds (whole example features held out).")
@click.option("--resolution", type=click.Choice(choices("resolution")), default=default("resolution"), show_default=True,
              help="grid: one output pixel per stride step; pixel: input resolution (needs the original raster).")
@click.option("--calibrate", type=click.Choice(choices("calibrate")), default=default("calibrate"), show_default=True,
              help=CALIBRATE_HELP)
@transductive_options
@click.option("--backend", type=click.Choice(choices("backend")), default=default("backend"), show_default=True,
              help="Engine of the text encoder (only used for classes with prompts).")
@click.option("--device", type=click.Choice(choices("device")), default=default("device"), show_default=True,
              help="Device of the text encoder.")
@click.option("--offline", is_flag=True, help="Never download; use cached weights only.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (map, examples, cross-validation) as JSON.")
@click.pass_context
def fewshot(ctx, store, out, as_json, **kw):
    """Refine the classes of STORE with labelled examples (logistic head with the prompts as prior)."""
    import json

    from senclip.tools.fewshot import fewshot as run
    from senclip.core.jsonable import to_jsonable

    res = run(store, out, feedback=TqdmFeedback(quiet=ctx.obj["quiet"]), **kw)
    if as_json:
        click.echo(json.dumps(to_jsonable(res), indent=2))
        return
    click.echo(report(res.map))
    click.echo(f"  method {res.method}, example weight {res.example_weight}; examples: "
               + ", ".join(f"{k} {v['features']}/{v['cells']} cells" for k, v in res.examples.items()))
    click.echo(cv_line(res.cross_validation))
    click.echo(f"  examples saved to {res.examples_path}; report {res.report_path}")
