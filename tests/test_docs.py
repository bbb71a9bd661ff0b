"""Every command explains itself and is documented where users look."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from expledger.cli import cli

REPO = Path(__file__).resolve().parents[1]
COMMANDS = cli.list_commands(click.Context(cli))  # lazily loaded commands too


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_summary_an_example_and_json(name):
    command = cli.get_command(click.Context(cli), name)
    assert command.help and "Example" in command.help
    assert "--json" in {opt for param in command.params for opt in param.opts}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme_and_the_skill(name):
    for doc in ("README.md", "skills/experiment-manager/SKILL.md"):
        assert f"`{name}" in (REPO / doc).read_text(encoding="utf-8"), f"{name} missing from {doc}"


def test_help_works_with_the_short_flag(exp):
    result = exp("list", "-h")
    assert result.code == 0 and "--status" in result.out


def test_the_cli_reference_is_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", REPO / "docs" / "generate_cli_reference.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    import difflib

    written = (REPO / "docs" / "cli-reference.md").read_text(encoding="utf-8")
    diff = "".join(list(difflib.unified_diff(written.splitlines(True), generate.render().splitlines(True)))[:12])
    assert not diff, f"docs/cli-reference.md is out of date: run python docs/generate_cli_reference.py\n{diff}"
