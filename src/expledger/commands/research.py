"""`exp notes` and `exp next`: from the ledger to paper notes, and to the next run."""

from __future__ import annotations

import click

from .. import output
from ..cli import CONTEXT, _names, _query, common_options, json_mode, open_ledger
from ..errors import BadInput


def _since(text: str | None):
    from ..ops.notes import moment_of

    try:
        return moment_of(text or None)
    except BadInput as err:
        raise BadInput(f"--since {err}") from None


@click.command(context_settings=CONTEXT)
@click.option("--task", help="Only this task (default: every task, one section each).")
@click.option("--where", metavar="EXPR", help="Only experiments matching this query.")
@click.option("--since", metavar="DATE", help="Only experiments created, run or changed since this date.")
@click.option("--by", metavar="metrics.X", help="The metric to rank by (default: the one most runs report).")
@click.option("--lower", metavar="A,B", help="Metrics where lower is better, besides loss/error/wer/… names.")
@click.option("--replicate", default="seed", show_default=True, metavar="PARAM",
              help="The param whose values are repeats of one configuration.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), help="Write the Markdown to a file.")
@common_options
def notes(task, where, since, by, lower, replicate, out_path):
    """Research notes in Markdown: what was tried, the best configs, failures, what is running.

    Means ± std are the same numbers as `exp export`; every number is followed by the IDs of
    the experiments it comes from.

    \b
    Example:
      exp notes --task asr -o notes/asr.md
      exp notes --since 2026-11-01 --by metrics.wer
    """
    from ..ops.notes import notes as build

    moment, query = _since(since), _query(where)
    result = build(open_ledger(), task=task, where=query, since=moment, by=by, lower=_names(lower),
                   replicate=replicate)
    if json_mode():
        output.emit_json(result.to_json())
        return
    text = result.to_markdown()
    if out_path:
        try:
            with open(out_path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as err:
            raise BadInput(f"cannot write {out_path}: {err.strerror}") from None
        click.echo(f"wrote notes on {len(result.tasks)} task(s) to {out_path}", err=True)
    else:
        click.echo(text, nl=False)


@click.command("next", context_settings=CONTEXT)
@click.option("--task", help="Only this task.")
@click.option("--where", metavar="EXPR", help="Only consider experiments matching this query.")
@click.option("--by", metavar="metrics.X", help="The metric that decides the best configuration.")
@click.option("--lower", metavar="A,B", help="Metrics where lower is better, besides loss/error/wer/… names.")
@click.option("--replicate", default="seed", show_default=True, metavar="PARAM",
              help="The param whose values are repeats of one configuration.")
@click.option("--limit", type=click.IntRange(0, 1000), default=10, show_default=True, help="At most this many (0: all).")
@click.option("--queue", "add_them", is_flag=True, help="Add the suggestions that are not queued yet (QUEUED, tag 'next').")
@common_options
def next_(task, where, by, lower, replicate, limit, add_them):
    """What to run next, each with its reason: the queue, missing seeds, neighbours of the best.

    Never a configuration a failure still rules out (out of memory at a smaller size, the same
    error on the same config), never a value no run has used.

    \b
    Example:
      exp next --task asr --by metrics.wer
      exp next --task asr --queue
    """
    from ..ops.next import suggest

    found = suggest(open_ledger(), task=task, where=_query(where), by=by, lower=_names(lower), replicate=replicate,
                    limit=limit or None, queue=add_them)
    if json_mode():
        output.emit_json(found.to_json())
        return
    result, added = found.plan, found.added
    _print_plan(result, added)


def _print_plan(result, added: list[str]) -> None:
    if not result.suggestions:
        click.echo("nothing to suggest: no queued experiment, and no successful run to build on"
                   if not result.ruled_out else "nothing to suggest")
    for number, suggestion in enumerate(result.suggestions, 1):
        label = suggestion.id or suggestion.kind
        params = ", ".join(f"{k}={v}" for k, v in suggestion.params.items())
        click.echo(f"{number}. {label} [{suggestion.kind}] {output.printable(suggestion.name)}  "
                   f"{output.printable(suggestion.task or '')} {output.printable(suggestion.model or '')} "
                   f"{output.printable(params)}")
        click.echo(f"   why: {output.printable(suggestion.reason)}")
        if suggestion.command and suggestion.kind != "queued":
            click.echo(f"   command: {output.printable(suggestion.command)}")
    for rule in result.ruled_out:
        params = ", ".join(f"{k}={v}" for k, v in rule["params"].items())
        click.echo(f"not suggested: {output.printable(params)}: {rule['because']} failed "
                   f"({output.printable(rule['reason'] or 'no reason')})", err=True)
    if added:
        click.echo(f"queued {', '.join(added)}", err=True)
