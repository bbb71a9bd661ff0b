"""`exp`: parse arguments, call the library, hand the results to output.py.

Every command takes `--json` and `--store`. Errors reach the user as one line on stderr
(and, with --json, an error envelope on stdout) with exit code 2 for bad input and 1 for
something absent; never a traceback (set EXP_DEBUG=1 to see one).
"""

from __future__ import annotations

import functools
import os
import sys

import click

from . import __version__, output
from .errors import BadInput, ExpledgerError
from .models import Status, parse_json_object

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class StatusType(click.ParamType):
    """A status word in any case: success, FAILED, Running …"""

    name = "status"

    def __init__(self, allowed: tuple[Status, ...] = tuple(Status)):
        self.allowed = allowed

    def convert(self, value, param, ctx):
        if isinstance(value, Status):
            return value
        valid = ", ".join(s.value.lower() for s in self.allowed)
        try:
            status = Status.parse(value)
        except BadInput:
            self.fail(f"unknown status {value!r}: valid are {valid}", param, ctx)
        if status not in self.allowed:
            self.fail(f"{value!r} is not allowed here: valid are {valid}", param, ctx)
        return status


def common_options(func):
    """`--store` and `--json`, shared by every command."""

    @click.option("--store", "store_url", metavar="URL", help="Ledger to use (default: $EXP_STORE, else the nearest memory/experiments/experiments.jsonl).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object (stable schema) instead of text.")
    @functools.wraps(func)
    def wrapper(*args, store_url=None, as_json=False, **kwargs):
        ctx = click.get_current_context()
        ctx.meta["store_url"] = store_url
        ctx.meta["as_json"] = as_json
        return func(*args, **kwargs)

    return wrapper


def open_ledger():
    """The store this invocation uses, opened once per process."""
    ctx = click.get_current_context()
    if "store" not in ctx.meta:
        from .config import resolve_store
        from .store import open_store

        url, source = resolve_store(ctx.meta.get("store_url"))
        ctx.meta["store"] = open_store(url)
        ctx.meta["store_source"] = source
        ctx.call_on_close(ctx.meta["store"].close)
    return ctx.meta["store"]


def json_mode() -> bool:
    return click.get_current_context().meta.get("as_json", False)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="exp")
def cli():
    """expledger: a local-first ledger of ML experiments.

    Register experiments, record what came out (metrics, summary, why it failed), find what
    was tried, compare runs and see what is queued. Data goes to
    memory/experiments/experiments.jsonl (one JSON object a line) unless --store or
    EXP_STORE names another ledger.
    """


@cli.command(context_settings=CONTEXT)
@click.option("--name", required=True, help="A short human name for the experiment.")
@click.option("--task", help="What is being studied, e.g. layer-analysis.")
@click.option("--model", help="The model, e.g. whisper-base.")
@click.option("--params", "params_json", metavar="JSON", help="Hyper-parameters as a JSON object.")
@click.option("--command", help="The command line that runs it, complete enough to reproduce.")
@click.option("--machine", help="Where it runs (default: $EXP_MACHINE, else the host name).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat or separate with commas.")
@click.option("--status", type=StatusType((Status.QUEUED, Status.RUNNING)), default="queued", show_default=True,
              help="queued, or running to start it now.")
@common_options
def add(name, task, model, params_json, command, machine, tags, status):
    """Register a new experiment; warn if the same config was tried before.

    \b
    Example:
      exp add --name "whisper logit lens" --task layer-analysis --model whisper-base \\
        --params '{"layers": 6}' --command "python3 lens.py" --machine lab
    """
    from .config import resolve_machine

    params = parse_json_object(params_json, "--params") if params_json is not None else {}
    store = open_ledger()
    exp = store.add(name=name, task=task, model=model, params=params, command=command,
                    machine=resolve_machine(machine), tags=tags, status=status)
    similar = store.tried_before(exp)
    if json_mode():
        output.emit_json({"experiment": exp.to_dict(), "similar": [s.to_dict() for s in similar]})
        return
    click.echo(f"{exp.id} {output.status_text(exp.status)}  {exp.name}")
    if similar:
        output.warning_line("the same task, model and params were tried before:")
        for other in similar:
            click.echo(f"  {other.id}  {other.status.value:<9}  {output.outcome_text(other)}".rstrip(), err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@common_options
def start(exp_id):
    """Mark a queued experiment RUNNING (sets its started time).

    \b
    Example:
      exp start EXP-004
    """
    _report(open_ledger().start(exp_id))


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@click.option("--status", required=True, type=StatusType((Status.SUCCESS, Status.FAILED, Status.CANCELLED)),
              help="success, failed or cancelled (any case).")
@click.option("--metrics", "metrics_json", metavar="JSON", help="Final metrics as a JSON object.")
@click.option("--summary", help="What came out, in a sentence or two.")
@click.option("--reason", "--failed-reason", "reason", help="Why it failed (default for failures: the summary).")
@click.option("--force", is_flag=True, help="Replace a result already recorded (the old one stays in its history).")
@common_options
def result(exp_id, status, metrics_json, summary, reason, force):
    """Record how an experiment ended: status, metrics, summary, failure reason.

    \b
    Example:
      exp result EXP-001 --status success --metrics '{"accuracy": 0.934}' --summary "2 clusters"
      exp result EXP-003 --status failed --summary "OOM on whisper-large"
    """
    metrics = parse_json_object(metrics_json, "--metrics") if metrics_json is not None else None
    exp = open_ledger().result(exp_id, status=status, metrics=metrics, summary=summary, reason=reason, force=force)
    _report(exp)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@click.option("--reason", help="Why it was cancelled (kept as its summary).")
@common_options
def cancel(exp_id, reason):
    """Cancel a queued or running experiment.

    \b
    Example:
      exp cancel EXP-007 --reason "superseded by EXP-009"
    """
    _report(open_ledger().cancel(exp_id, reason=reason))


def _report(exp) -> None:
    if json_mode():
        output.emit_json({"experiment": exp.to_dict()})
        return
    line = f"{exp.id} {output.status_text(exp.status)}  {exp.name}"
    detail = output.pairs_text(exp.metrics) if exp.status is Status.SUCCESS else output.outcome_text(exp)
    click.echo(line + (f"  · {detail}" if detail else ""))


def _statuses(values) -> tuple:
    return tuple(Status.parse(part) for value in values for part in value.split(",") if part.strip())


@cli.command("list", context_settings=CONTEXT)
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Keep these statuses (repeat or comma-separate; any case).")
@click.option("--task", help="Keep this task.")
@click.option("--model", help="Keep this model.")
@click.option("--machine", help="Keep this machine.")
@click.option("--tag", "tags", multiple=True, help="Keep experiments with this tag (repeat: all of them).")
@click.option("--sort", default="-id", show_default=True,
              help="Field, params.X or metrics.X; prefix - for descending; missing values last.")
@click.option("--limit", type=int, default=100, show_default=True, help="Show at most this many; 0 shows all.")
@common_options
def list_(statuses, task, model, machine, tags, sort, limit):
    """List experiments, newest first, with filters.

    \b
    Example:
      exp list --status success --task layer-analysis
      exp list --sort -metrics.accuracy --limit 5
    """
    from .store import Search

    search = Search(status=_statuses(statuses), task=task, model=model, machine=machine,
                    tags=tuple(t for tag in tags for t in tag.split(",") if t), sort=sort,
                    limit=None if limit == 0 else limit)
    found, total = open_ledger().search(search)
    _print_list(found, total, empty="no experiments match")


def _print_list(found, total, *, empty) -> None:
    if json_mode():
        output.emit_json({"experiments": [e.to_dict() for e in found], "total": total,
                          "truncated": total > len(found)})
    else:
        output.print_experiments(found, total=total, empty=empty)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@common_options
def show(exp_id):
    """Show one experiment whole: fields, params, metrics, earlier results.

    \b
    Example:
      exp show EXP-001
    """
    exp = open_ledger().get(exp_id)
    if json_mode():
        output.emit_json({"experiment": exp.to_dict()})
    else:
        output.print_experiment(exp)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_ids", nargs=-1, metavar="ID ID [ID…]")
@click.option("--all", "show_all", is_flag=True, help="Also show the params that are the same everywhere.")
@common_options
def compare(exp_ids, show_all):
    """Compare experiments side by side: differing params first, best metric marked ★.

    \b
    Example:
      exp compare EXP-001 EXP-002
    """
    from .compare import compare as build

    if len(exp_ids) < 2:
        raise BadInput("compare needs at least two experiment IDs, e.g. exp compare EXP-001 EXP-002")
    store = open_ledger()
    comparison = build([store.get(ref) for ref in dict.fromkeys(exp_ids)])
    if json_mode():
        output.emit_json({**comparison, "experiments": [e.to_dict() for e in comparison["experiments"]]})
    else:
        output.print_comparison(comparison, show_all=show_all)


@cli.command(context_settings=CONTEXT)
@common_options
def queue():
    """Show queued experiments in the order a worker will take them.

    \b
    Example:
      exp queue
    """
    found = open_ledger().queue()
    _print_list(found, len(found), empty="the queue is empty")


@cli.command(context_settings=CONTEXT)
@click.option("--fix", is_flag=True, help="Repair what can be repaired (unreadable lines go to a quarantine file).")
@common_options
def doctor(fix):
    """Verify the ledger: unreadable lines, ID clashes, failures without a reason.

    Exits 1 while an error remains.

    \b
    Example:
      exp doctor --fix
    """
    store = open_ledger()
    report = {"source": click.get_current_context().meta["store_source"], **store.doctor(fix=fix)}
    if json_mode():
        output.emit_json({"report": report}, ok=report["healthy"])
    else:
        output.print_doctor(report)
    if not report["healthy"]:
        raise click.exceptions.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `exp` and of the seed's exp_tracker.py: one line per error, no traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    try:
        return cli.main(args=args, prog_name="exp", standalone_mode=False) or 0
    except ExpledgerError as err:
        return _fail(str(err), err.kind, err.exit_code, as_json)
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx else "exp"
        message = " ".join(err.format_message().split())
        return _fail(f"{message} (see '{where} --help')", "usage", 2, as_json)
    except click.ClickException as err:
        return _fail(err.format_message(), "usage", err.exit_code, as_json)
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # a bug: still one line unless debugging
        if os.environ.get("EXP_DEBUG"):
            raise
        return _fail(f"internal error: {type(err).__name__}: {err} (set EXP_DEBUG=1 for a traceback)",
                     "internal", 1, as_json)


def _fail(message: str, kind: str, code: int, as_json: bool) -> int:
    output.error_line(message)
    if as_json:
        output.emit_json({"error": {"type": kind, "message": message, "exit_code": code}}, ok=False)
    return code
