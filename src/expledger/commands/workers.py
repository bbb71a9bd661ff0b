"""`exp workers`: the workers sharing this store, live and recently gone."""

from __future__ import annotations

import click

from .. import output
from ..cli import CONTEXT, cli, common_options, json_mode, open_ledger


@cli.command(context_settings=CONTEXT)
@common_options
def workers():
    """Show the workers of this store: where, which GPUs, running what, last heard from.

    Each worker registers itself in the store and beats with its runs' heartbeats. A worker
    is live while it beats, stopped when it ended cleanly, gone when it stopped beating for
    longer than the lease (EXP_LEASE) or its process died; ended ones are shown for a day.

    \b
    Example:
      exp workers
      exp workers --json
    """
    from ..ops.workers import workers as registered

    listed = registered(open_ledger())
    if json_mode():
        output.emit_json(listed.to_json())
        return
    found = listed.workers
    if not found:
        click.echo("no workers have registered with this store in the last day")
        return
    colours = {"live": "green", "stopped": "magenta", "gone": "red"}
    rows = [[f"{w['host']}:{w['pid']}", w.get("machine") or "", (w["state"], colours[w["state"]]),
             ",".join(w.get("gpus") or []) or "-",
             " ".join(f"{r['id']}" + (f"@{r['gpus']}" if r.get("gpus") else "") for r in w.get("running") or []),
             output.relative_time(w.get("started")), f"{output.duration_text(w['last_beat_age'])} ago"]
            for w in found]
    click.echo(output.render_table(["WORKER", "MACHINE", "STATE", "GPUS", "RUNNING", "STARTED", "LAST BEAT"], rows,
                                   max_widths={"RUNNING": 60}))
