"""``senclip``: the click group. Subcommands live one per module; errors are handled once here."""
from __future__ import annotations

import logging
import sys
import warnings

import click

from senclip._version import __version__
from senclip.core.errors import Cancelled, SenclipError, SenclipWarning
from senclip.core.stopping import exit_code, handle_sigterm


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="senclip")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, only errors and warnings.")
@click.pass_context
def cli(ctx, verbose, quiet):
    """Zero-shot land-use / land-cover maps of Sentinel-2 imagery from free-text prompts (SenCLIP)."""
    logging.basicConfig(level=logging.WARNING - 10 * verbose, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"quiet": quiet}


def _register() -> None:
    from senclip.cli.bundle import bundle
    from senclip.cli.classify import classify
    from senclip.cli.demo import demo
    from senclip.cli.diagnostics import diagnostics
    from senclip.cli.embed import embed
    from senclip.cli.map_region import map_region
    from senclip.cli.models import models
    from senclip.cli.fewshot import fewshot
    from senclip.cli.similar import similar
    from senclip.cli.change import change
    from senclip.cli.accuracy import accuracy

    for cmd in (classify, embed, models, demo, diagnostics, bundle, map_region, fewshot, similar, change,
                accuracy):
        cli.add_command(cmd)


_register()


def main(argv=None) -> None:
    """Entry point: one line on stderr and exit 2 for bad input, 130 for Ctrl-C, 143 for SIGTERM
    (both after removing every temporary), 1 otherwise."""
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", SenclipWarning)
    handle_sigterm(sigint=True)  # Ctrl-C recorded too: a KeyboardInterrupt a C callback swallows still stops
    try:
        cli.main(args=argv, prog_name="senclip", standalone_mode=False)
    except click.exceptions.Abort as e:  # click turns KeyboardInterrupt (and SIGTERM's Terminated) into Abort
        click.echo("error: cancelled; no output was written", err=True)
        sys.exit(exit_code(e.__cause__ or e.__context__ or e))
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except Cancelled as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except SenclipError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        click.echo("error: cancelled; no output was written", err=True)
        sys.exit(exit_code(e))
    sys.exit(0)


if __name__ == "__main__":
    main()
