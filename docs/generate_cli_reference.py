"""Write docs/cli-reference.md from the commands' own --help, so the two never drift apart.

    python docs/generate_cli_reference.py          # rewrite the file
tests/test_docs.py fails when the file is out of date.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from expledger.cli import cli

TARGET = Path(__file__).with_name("cli-reference.md")


def render() -> str:
    """The whole reference; the same text whatever the terminal (COLUMNS) is."""
    saved = os.environ.pop("COLUMNS", None)
    try:
        return _render()
    finally:
        if saved is not None:
            os.environ["COLUMNS"] = saved


def _render() -> str:
    parts = ["# `exp` command reference", "",
             "Generated from `exp COMMAND --help` by `docs/generate_cli_reference.py`; do not edit by hand.", ""]
    options = {"terminal_width": 100, "max_content_width": 100, "help_option_names": ["-h", "--help"]}
    context = click.Context(cli, info_name="exp", **options)
    parts += ["## exp", "", "```", cli.get_help(context), "```", ""]
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        sub = click.Context(command, info_name=f"exp {name}", parent=context, **options)
        parts += [f"## exp {name}", "", "```", command.get_help(sub), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
