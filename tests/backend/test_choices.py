"""resources/options.json is the one list of every enumerated CLI option's choices (issue 8 §7).

The QGIS plugin reads the same file without importing senclip (senclip_qgis/catalog.py); here the
JSON is checked against the click choices the CLI really accepts, both ways, defaults included.
"""
from __future__ import annotations

import json

import click

from senclip.core.choices import CHOICES, PATH
from senclip.cli.main import cli


def choice_params(command: click.Command, prefix: str = "senclip"):
    """(command path, click parameter) for every parameter typed click.Choice, subcommands included."""
    for param in command.params:
        if isinstance(param.type, click.Choice):
            yield prefix, param
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from choice_params(sub, f"{prefix} {name}")


def test_every_cli_choice_comes_from_options_json():
    seen = set()
    problems = []
    for where, param in choice_params(cli):
        seen.add(param.name)
        if param.name not in CHOICES:
            problems.append(f"{where} --{param.name}: choices not in {PATH.name}")
            continue
        if list(param.type.choices) != list(CHOICES[param.name]):
            problems.append(f"{where} --{param.name}: {list(param.type.choices)} != {list(CHOICES[param.name])}")
        if param.default != CHOICES[param.name][0]:
            problems.append(f"{where} --{param.name}: default {param.default!r} is not the first choice")
    problems += [f"{PATH.name}: {name} is no CLI option" for name in sorted(set(CHOICES) - seen)]
    assert problems == []


def test_options_json_is_what_the_plugin_reads():
    """The plugin parses the file with json alone; keys starting with '_' are comments."""
    data = json.loads(PATH.read_text(encoding="utf-8"))
    assert {k: tuple(v) for k, v in data.items() if not k.startswith("_")} == CHOICES
    assert all(isinstance(v, list) and v and all(isinstance(c, str) for c in v)
               for k, v in data.items() if not k.startswith("_"))
    assert {"backend", "device", "resolution", "stretch", "calibrate", "prompt_style"} <= set(CHOICES)

