"""`exp requeue ID…`: put finished, failed, cancelled or lost experiments back in the queue."""

from __future__ import annotations

import click

from .. import output
from ..cli import CONTEXT, cli, common_options, json_mode, open_ledger


@cli.command(context_settings=CONTEXT)
@click.argument("exp_ids", nargs=-1, required=True, metavar="ID [ID…]")
@click.option("--reason", help="Why it runs again (kept with the new attempt).")
@common_options
def requeue(exp_ids, reason):
    """Queue finished experiments again, each as a new attempt; the old outcome stays in its history.

    Success, failed, cancelled and lost experiments can be re-queued; a worker then runs
    them as attempt 2, 3, … Every ID is checked before any is changed.

    \b
    Example:
      exp requeue EXP-012 EXP-013 --reason "fixed the data loader"
    """
    from ..ops import record

    queued = record.requeue(open_ledger(reap=True), exp_ids, reason=reason)
    if json_mode():
        output.emit_json(queued.to_json())
        return
    for exp in queued.experiments:
        click.echo(f"{output.result_line(exp)} (attempt {int(exp.runner.get('attempt', 0)) + 1} next)")
