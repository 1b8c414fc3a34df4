"""``senclip accuracy``: a class map against reference data → error matrix, kappa, area estimates."""
from __future__ import annotations

import click

from senclip.core.feedback import TqdmFeedback


@click.command()
@click.argument("classmap", type=click.Path(dir_okay=False))
@click.option("--reference", required=True, type=click.Path(dir_okay=False),
              help="Reference points/polygons with a class field (GeoJSON, GeoPackage, Shapefile; any CRS).")
@click.option("--field", default="class", show_default=True, help="Attribute of --reference holding the class name.")
@click.option("--match", default=None, metavar="REF=MAP;...",
              help='Reference class → map class where names differ, e.g. "water=Sea or Lake;forest=Forest".')
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Report folder: accuracy.json, confusion.csv, classes.csv, confusion.png, report.html.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report folder.")
@click.pass_context
def accuracy(ctx, classmap, reference, field, match, out, overwrite):
    """Accuracy of CLASSMAP: OA, kappa, per-class P/R/F1, Olofsson et al. (2014) areas with 95 % CIs."""
    from senclip.tools.accuracy import accuracy_report

    res = accuracy_report(classmap, reference, out, field=field, match=match, overwrite=overwrite,
                          feedback=TqdmFeedback(quiet=ctx.obj["quiet"]))
    r, aa = res.report, res.report["area_adjusted"]
    click.echo(f"wrote {res.path} ({r['samples']} samples from {r['reference_features']} features)")
    click.echo(f"  overall accuracy {100 * r['overall_accuracy']:.1f} %, kappa {r['kappa']:.3f}; area-weighted "
               f"{100 * aa['overall_accuracy']:.1f} ± {100 * aa['overall_accuracy_ci95']:.1f} %")
    for name in r["classes"]:
        pc, a = r["per_class"][name], aa["per_class"][name]
        f = lambda x: "  n/a" if x is None else f"{100 * x:5.1f}"  # noqa: E731
        area = f"  area {a['area_m2'] / 1e6:8.3f} ± {a['area_m2_ci95'] / 1e6:.3f} km²" if "area_m2" in a else ""
        click.echo(f"  {name:<24} P {f(pc['precision'])}  R {f(pc['recall'])}  F1 {f(pc['f1'])}{area}")
    if r.get("note"):
        click.echo(f"  NOTE: {r['note']}")
