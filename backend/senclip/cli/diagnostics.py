"""``senclip diagnostics``: versions, devices and paths as JSON, ready to paste into a bug report."""
from __future__ import annotations

import json

import click


@click.command()
@click.option("--check", is_flag=True, help="Also run a tiny forward pass per device (exit 2 if no backend can run).")
def diagnostics(check):
    """Print what this environment is (versions, GDAL/PROJ, devices, paths) as JSON."""
    from senclip.models.diagnostics import diagnostics as facts
    from senclip.models.diagnostics import selfcheck

    click.echo(json.dumps(selfcheck() if check else facts(), indent=2, default=str))
