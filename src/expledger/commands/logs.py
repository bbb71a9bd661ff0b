"""`exp logs ID [--follow]`: a run's output from any machine that shares the store."""

from __future__ import annotations

import sys
import time

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
    from ..liveness import heartbeat_interval
    from ..models import parse_id

    parse_id(exp_id)
    store = open_ledger(reap=True)
    exp = store.get(exp_id)
    shown, skipped = 0, 0
    pieces = []
    while True:
        total, tail = store.read_output(exp) or (0, b"")
        new = total - shown
        if new > 0:
            if new > len(tail):
                skipped += new - len(tail)
                if not json_mode():
                    click.echo(f"[… {new - len(tail)} earlier bytes are only in the run folder on "
                               f"{exp.runner.get('host') or 'its machine'}]", err=True)
            piece = tail[len(tail) - min(new, len(tail)):]
            pieces.append(piece)
            if not json_mode():
                sys.stdout.buffer.write(piece)
                sys.stdout.flush()
            shown = total
        if not follow or exp.status.finished or (exp.status is Status.QUEUED and shown):
            break  # finished, or re-queued: a new attempt's output starts over
        time.sleep(min(1.0, heartbeat_interval() / 2))
        store.refresh()
        store.reap_lost()  # a run whose worker died ends here too, as FAILED or re-queued
        exp = store.get(exp.id)
    if json_mode():
        output.emit_json({"id": exp.id, "status": exp.status.value, "output": b"".join(pieces).decode("utf-8", "replace"),
                          "bytes": shown, "skipped": skipped})
    elif shown == 0:
        what = "it is queued" if exp.status is Status.QUEUED else "no output was recorded"
        click.echo(f"{exp.id}: {what}", err=True)
