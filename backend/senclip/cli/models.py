"""``senclip models list|download|export-onnx``: the weights cache from the command line."""
from __future__ import annotations

import click

from senclip.core.feedback import TqdmFeedback


def _feedback(ctx) -> TqdmFeedback:
    return TqdmFeedback(quiet=bool((ctx.obj or {}).get("quiet")))


@click.group()
def models():
    """List, download and export the models of the registry."""


def _pinned(spec) -> str:
    """sha256: the registry publishes the hash; first use: recorded when first downloaded here;
    no: nothing to check against yet (the first download will be trusted and recorded)."""
    from senclip.models.weights import recorded_sha256

    if spec.source is None:
        return "n/a"
    if spec.sha256:
        return "sha256"
    return "first-use" if recorded_sha256(spec) else "no"


@models.command("list")
def list_cmd():
    """Registry models: id, architecture, whether the weights are cached, whether their sha256 is
    pinned (by the registry, or recorded on first use), description."""
    from senclip.models.registry import get_model_spec, list_models
    from senclip.models.weights import cached_path, weights_dir

    rows = []
    for model_id in list_models():
        spec = get_model_spec(model_id)
        cached = "n/a" if spec.source is None else ("yes" if cached_path(spec).is_file() else "no")
        rows.append((spec.id, spec.arch, cached, _pinned(spec), spec.description))
    head = ("id", "arch", "cached", "pinned", "description")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    for r in [head] + rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    click.echo(f"\ncache: {weights_dir()} (set SENCLIP_HOME to move it)")
    click.echo("pinned: sha256 = published in the registry; first-use = recorded at the first download here "
               "(a different file is refused until `senclip models download ID --refresh`)")


@models.command()
@click.argument("model_id")
@click.option("--offline", is_flag=True, help="Only check the cache; say where to put the file if missing.")
@click.option("--refresh", is_flag=True,
              help="For models without a published sha256: forget the hash recorded on first use, download "
                   "again (offline: take the cached file) and record the new file's hash.")
@click.pass_context
def download(ctx, model_id, offline, refresh):
    """Download (or verify the cached) weights of MODEL_ID."""
    from senclip.models.registry import get_model_spec
    from senclip.models.weights import fetch_weights

    spec = get_model_spec(model_id)
    if spec.source is None:
        click.echo(f"{spec.id} has no weight file (random initialisation); nothing to download")
        return
    got = fetch_weights(spec, offline=offline, feedback=_feedback(ctx), refresh=refresh)
    state = {"pinned": "verified against the registry", "recorded": "no published checksum; recorded on first use",
             "trusted": "no published checksum; matches the hash recorded on first use"}[got.trust]
    click.echo(f"{got.path}\nsha256 {got.sha256} ({state})")


@models.command("export-onnx")
@click.argument("model_id", required=False)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Export a local checkpoint instead of a registry model.")
@click.option("--arch", default=None, help="open_clip architecture of an open_clip-format --checkpoint.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for image.onnx and text.onnx [default: the cache, where --backend onnx finds it].")
@click.option("--int8", is_flag=True, help="Also quantise the image encoder to int8 (dynamic, ~1.6x faster on CPU).")
@click.option("--offline", is_flag=True, help="Never download weights.")
@click.pass_context
def export_onnx_cmd(ctx, model_id, checkpoint, arch, out, int8, offline):
    """Export MODEL_ID (or --checkpoint PATH) to ONNX for the torch-free backend."""
    from senclip.core.errors import InputError
    from senclip.models.loading import export_model

    if not model_id and not checkpoint:
        raise InputError("give a MODEL_ID (see `senclip models list`) or --checkpoint PATH")
    target = export_model(model_id, checkpoint, arch, out, int8=int8, offline=offline, feedback=_feedback(ctx))
    click.echo(str(target))
