"""``senclip-train``: pretrain, export, embed-ground, bench. Thin wrappers over the Python API.

Errors the user can cause end as one line on stderr with the backend's exit codes (2 for bad
input), like ``senclip`` itself.
"""
from __future__ import annotations

import sys

import click

from senclip.core.errors import SenclipError


def _ints(value: str) -> tuple:
    try:
        return tuple(int(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of band numbers, e.g. 3,2,1") from None


@click.group()
@click.version_option(package_name="senclip-train")
def cli():
    """SenCLIP pretraining on Sen2LUCAS and zero-shot benchmarks."""


@cli.command()
@click.option("--root", default=None, help="Sen2LUCAS folder (chip paths in --list are relative to it) [required]")
@click.option("--list", "list_file", default=None, help="text file, one {CC}/{POINTID}[_...].tif per line [required]")
@click.option("--embeddings", default=None, help="frozen ground-photo embeddings (.pt dict) [required]")
@click.option("--init", default=None, help="initial CLIP: registry id (e.g. clip-vitb32-openai), OpenAI/SenCLIP-format "
              "file, or openai:ARCH [required]")
@click.option("--out", required=True, help="run folder (checkpoints, metrics.csv)")
@click.option("--resume", default=None,
              help="a run's last.pt or step_*.pt (or 'auto': OUT/last.pt if present). The run's settings come from "
                   "the checkpoint; --root/--list/--embeddings/--init are then optional, options given again must "
                   "match it, except --out, --epochs, --num-workers, --device, --save-every, --log-every")
@click.option("--epochs", default=20, show_default=True)
@click.option("--batch-size", default=32, show_default=True, help="per GPU")
@click.option("--lr", type=float, default=None, help="default 1e-4 (ViT) / 1e-5 (ResNet)")
@click.option("--weight-decay", default=0.01, show_default=True)
@click.option("--lr-step-epochs", default=10, show_default=True)
@click.option("--lr-gamma", default=0.95, show_default=True)
@click.option("--pooling", type=click.Choice(["avg", "attn-image", "attn-dim"]), default="avg", show_default=True)
@click.option("--pool-aggregate", type=click.Choice(["sum", "mean", "max"]), default="sum", show_default=True)
@click.option("--head", type=click.Choice(["linear", "reference", "none"]), default="linear", show_default=True)
@click.option("--trainable-blocks", default=1, show_default=True, help="ViT blocks to train (-1: all)")
@click.option("--queue-size", default=512, show_default=True)
@click.option("--queue-init", type=click.Choice(["ground", "random"]), default="ground", show_default=True)
@click.option("--bands", default="3,2,1", show_default=True, help="1-based chip bands read as R,G,B")
@click.option("--chip-size", default=100, show_default=True, help="expected chip size (0: any)")
@click.option("--crop", default=32, show_default=True, help="centre crop before resizing (px)")
@click.option("--no-augment", is_flag=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--num-workers", default=4, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True)
@click.option("--save-every", default=500, show_default=True, help="steps between checkpoints (0: epochs only)")
@click.option("--log-every", default=10, show_default=True)
def pretrain(resume, bands, no_augment, **kw):
    """Fine-tune a CLIP image tower on Sen2LUCAS against ground-photo embeddings."""
    from pathlib import Path

    from ..train import TrainConfig, train

    values = dict(kw, bands=_ints(bands), augment=not no_augment)
    if resume == "auto":
        resume = Path(kw["out"]) / "last.pt" if (Path(kw["out"]) / "last.pt").is_file() else None
    if resume is not None:
        _log_to_stderr()
        res = train(_given(click.get_current_context(), values), resume=resume)
    else:
        for name, opt in (("root", "--root"), ("list_file", "--list"), ("embeddings", "--embeddings"), ("init", "--init")):
            if values[name] is None:
                raise click.UsageError(f"Missing option '{opt}' (needed unless --resume continues a run).")
        res = train(TrainConfig(**values))
    click.echo(f"done: {res.step} steps, {res.epoch} epochs; checkpoint {res.checkpoint}")


def _given(ctx: click.Context, values: dict) -> dict:
    """Only the options the user actually gave: on resume the rest come from the checkpoint."""
    from click.core import ParameterSource

    def given(param: str) -> bool:
        return ctx.get_parameter_source(param) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)

    out = {k: v for k, v in values.items() if k not in ("bands", "augment") and given(k)}
    if given("bands"):
        out["bands"] = values["bands"]
    if given("no_augment"):
        out["augment"] = values["augment"]
    return out


def _log_to_stderr() -> None:
    """The resume notes (which settings came from the checkpoint) go to stderr."""
    import logging

    log = logging.getLogger("senclip_train")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


@cli.command()
@click.argument("checkpoint")
@click.option("--out", required=True, help="release-format .ckpt to write")
@click.option("--drop-head", is_flag=True, help="allow dropping a non-linear (reference) head")
def export(checkpoint, out, drop_head):
    """Training checkpoint → SenCLIP release format (senclip classify --checkpoint OUT)."""
    from ..model.export import export_from_training_checkpoint

    click.echo(f"wrote {export_from_training_checkpoint(checkpoint, out, drop_head=drop_head)}")


@cli.command("embed-ground")
@click.option("--photos", required=True, help="folder of <CC>/<POINTID><D>.jpg LUCAS photos")
@click.option("--init", required=True,
              help="the frozen CLIP (same architecture as pretraining): registry id, checkpoint file or openai:ARCH")
@click.option("--out", required=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def embed_ground_cmd(photos, init, out, batch_size, device):
    """Compute the frozen ground-photo embeddings file."""
    from ..data.ground import embed_ground

    click.echo(f"wrote {embed_ground(photos, out, init=init, batch_size=batch_size, device=device)}")


@cli.command()
@click.argument("dataset", type=click.Choice(["eurosat", "bigearthnet"]))
@click.option("--root", required=True)
@click.option("--out", required=True, help="folder for <dataset>.json and <dataset>.md")
@click.option("--model", default=None, help="registry id (senclip models list)")
@click.option("--checkpoint", default=None, help="release-format checkpoint file")
@click.option("--prompts", default=None, help="JSON {class: [prompts]}")
@click.option("--prompt-style", type=click.Choice(["generic", "aerial", "ground"]), default="ground", show_default=True)
@click.option("--select-k", type=int, default=None, help="keep the K most class-specific prompts (eq. 6-7)")
@click.option("--select-method", type=click.Choice(["text", "image-profile"]), default="text", show_default=True)
@click.option("--split", default="test", show_default=True, help="BigEarthNet torchgeo split csv")
@click.option("--limit", type=int, default=None, help="evaluate an evenly spaced subset")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--threshold", default=0.1, show_default=True, help="BigEarthNet honest sample-F1 threshold")
@click.option("--offline", is_flag=True)
def bench(dataset, **kw):
    """Zero-shot benchmark: paper protocol beside the honest one."""
    from ..bench.run import BenchOptions, markdown, run_bench

    click.echo(markdown(run_bench(BenchOptions(dataset=dataset, **kw))))


def main(argv=None):
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SenclipError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
