"""`exp files ID`: the files a run recorded, where they are now, and whether they are still there."""

from __future__ import annotations

import click

from .. import output
from ..cli import CONTEXT, common_options, json_mode, open_ledger


@click.command("files", context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@common_options
def files_(exp_id):
    """List the files a run recorded (checkpoints, predictions, figures): size, sha256, where.

    Each is checked on this machine: ok, missing, or changed (not the size it had when logged).

    \b
    Example:
      exp files EXP-007
      exp files EXP-007 --json
    """
    from ..ops.files import files as recorded

    found = recorded(open_ledger(), exp_id)
    if json_mode():
        output.emit_json(found.to_json())
        return
    exp, rows = found.experiment, found.files
    if not rows:
        click.echo(f"{exp.id} recorded no files (run.log_file(path, kind=…) records one)", err=True)
        return
    table = [[row.get("kind", ""), output.size_text(row.get("size")), (row.get("sha256") or "")[:12],
              (row["state"], None if row["state"] == "ok" else "red"), row["location"]] for row in rows]
    click.echo(output.render_table(["KIND", "SIZE", "SHA256", "STATE", "PATH"], table))
