"""``senclip bundle create|import``: offline installs for air-gapped machines."""
from __future__ import annotations

import click

from senclip.core.choices import choices, default
from senclip.core.feedback import TqdmFeedback


@click.group()
def bundle():
    """Offline bundle (wheels + model weights) for a machine without network."""


@bundle.command("create")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--extras", type=click.Choice(choices("extras")), default=default("extras"), show_default=True,
              help="What the backend needs: light (no PyTorch: ONNX Runtime, OpenVINO, the s2cloudless cloud "
                   "mask), torch (light + PyTorch and open_clip: training, GPU through torch), none (the "
                   "backend's own dependencies only) or light-cuda (light with ONNX Runtime's CUDA provider).")
@click.option("--torch-build", type=click.Choice(choices("torch_build")), default=default("torch_build"), show_default=True,
              help="PyTorch build for --extras torch: CPU-only (from the PyTorch CPU wheel index, ~0.3 GB) or "
                   "PyPI's default with CUDA (~2.7 GB).")
@click.option("--model", "models", multiple=True, metavar="ID",
              help="Registry model whose weights go into the bundle (repeatable; default: the default model).")
@click.option("--pip-option", "pip_options", multiple=True, metavar="OPT",
              help="Extra option for `pip download`, e.g. --pip-option=--platform=win_amd64 "
                   "--pip-option=--python-version=3.12 for another machine (repeatable).")
@click.option("--offline", is_flag=True, help="Take weights only from the cache (never download).")
@click.pass_context
def create(ctx, out, extras, torch_build, models, pip_options, offline):
    """Write an offline bundle to OUT (a new folder): wheels/, weights/, manifest.json."""
    from senclip.models.bundle import create_bundle
    from senclip.models.registry import DEFAULT_MODEL

    manifest = create_bundle(out, extras=extras, torch_build=torch_build, models=list(models) or [DEFAULT_MODEL],
                             pip_options=list(pip_options), offline=offline,
                             feedback=TqdmFeedback(quiet=ctx.obj["quiet"]))
    click.echo(f"{out}: {len(manifest['wheels'])} wheels ({manifest['download_mb']} MB, about "
               f"{manifest['disk_mb']} MB installed), weights of {len(manifest['weights'])} model(s). "
               "Copy the folder to the offline machine and give it to 'Install or repair backend' (BUNDLE).")


@bundle.command("import")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.pass_context
def import_cmd(ctx, bundle_dir):
    """Copy the weights of BUNDLE_DIR into the weights cache and verify them."""
    from senclip.models.bundle import import_weights

    for path in import_weights(bundle_dir, feedback=TqdmFeedback(quiet=ctx.obj["quiet"])):
        click.echo(str(path))
