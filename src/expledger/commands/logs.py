"""`exp logs ID [--follow]`: a run's output from any machine that shares the store."""

from __future__ import annotations

import sys

import click

from .. import output
from ..cli import CONTEXT, cli, common_options, json_mode, open_ledger
from ..models import Status


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the run ends.")
@common_options
def logs(exp_id, follow):
    """Print a run's output (stdout and stderr as they came), from any machine.

    The last 64 KB of a run's output travel into the store with its heartbeats (every
    EXP_HEARTBEAT seconds, 10 by default), so this works from a laptop for a run on the lab
    box; the whole logs stay in the run folder on the machine that ran it.

    \b
    Example:
      exp logs EXP-012
      exp logs EXP-012 --follow
    """
    from ..models import parse_id
    from ..ops.logs import RunOutput
    from ..ops.logs import follow as following
    from ..ops.logs import logs as read

    parse_id(exp_id)  # a malformed ID fails before the store is opened
    pieces = []
    for piece in following(open_ledger(), exp_id) if follow else [read(open_ledger(), exp_id)]:
        pieces.append(piece)
        if json_mode():
            continue
        if piece.skipped:
            exp = piece.experiment
            click.echo(f"[… {piece.skipped} earlier bytes are only in the run folder on "
                       f"{exp.runner.get('host') or 'its machine'}]", err=True)
        if piece.output:
            sys.stdout.buffer.write(piece.output)
            sys.stdout.flush()
    shown = RunOutput.joined(pieces)
    if json_mode():
        output.emit_json(shown.to_json())
    elif shown.total == 0:
        what = "it is queued" if shown.experiment.status is Status.QUEUED else "no output was recorded"
        click.echo(f"{shown.experiment.id}: {what}", err=True)
