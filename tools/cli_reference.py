"""Write the CLI reference (every command and option) into README.md between the markers.

Run after changing an option: `python tools/cli_reference.py`. tests/backend/test_docs.py fails
when README.md and the CLI disagree, so the reference cannot silently rot.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- cli-reference:begin -->", "<!-- cli-reference:end -->"


def _commands(group: click.Group, ctx: click.Context):
    """(context, command) for every command, each context a child of its group's, as at run time
    (so settings like ``-h`` for help are inherited the same way)."""
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        sub = click.Context(cmd, info_name=name, parent=ctx, terminal_width=100, max_content_width=100)
        yield sub, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, sub)


def render() -> str:
    from senclip.cli.main import cli

    parts = []
    root = click.Context(cli, info_name="senclip", **dict(cli.context_settings, terminal_width=100, max_content_width=100))
    for ctx, cmd in _commands(cli, root):
        if isinstance(cmd, click.Group):
            continue
        parts.append(f"#### `{ctx.command_path}`\n\n```text\n{cmd.get_help(ctx)}\n```\n")
    return "\n".join(parts)


def updated(text: str) -> str:
    block = f"{BEGIN}\n{render()}\n{END}"
    return re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)


if __name__ == "__main__":
    new = updated(README.read_text(encoding="utf-8"))
    README.write_text(new, encoding="utf-8")
    sys.exit(0)
