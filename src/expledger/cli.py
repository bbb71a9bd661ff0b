"""`exp`: parse arguments, call the library, hand the results to output.py.

Every command takes `--json` and `--store`. Errors reach the user as one line on stderr
(and, with --json, an error envelope on stdout) with exit code 2 for bad input and 1 for
something absent; never a traceback (set EXP_DEBUG=1 to see one).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

import click

from . import __version__, output
from .errors import BadInput, ExpledgerError
from .fields import DEFAULT_COLUMNS, QUEUE_COLUMNS, parse_fields
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
        meta = click.get_current_context().meta  # shared with the group, which may have set them
        meta["store_url"] = store_url or meta.get("store_url")
        meta["as_json"] = as_json or meta.get("as_json", False)
        return func(*args, **kwargs)

    return wrapper


def listing_options(func):
    """`--fields` (honoured by the table and by --json) and `--wide`, for commands that list."""
    for option in reversed([
        click.option("--fields", "--columns", "fields", metavar="A,B,…", callback=lambda c, p, v: parse_fields(v),
                     help="Fields to give, in the table and in --json: id, name, params.X, metrics.X, outcome, "
                          "duration, provenance, runner fields host, attempt, runner.gpus, heartbeat, … "
                          "(default: a compact set)."),
        click.option("--wide", is_flag=True, help="Never cut long cells (they are cut only on a terminal)."),
    ]):
        func = option(func)
    return func


def open_ledger(*, reap: bool = False):
    """The store this invocation uses, opened once per process.

    With `reap`, RUNNING experiments whose runner is gone are marked FAILED first, so a
    reader never sees a dead run as running (the read operations in ops/ do this themselves).
    """
    ctx = click.get_current_context()
    if "store" not in ctx.meta:
        from .config import resolve_store
        from .store import open_store

        url, source = resolve_store(ctx.meta.get("store_url"))
        ctx.meta["store"] = open_store(url)
        ctx.meta["store_source"] = source
        ctx.call_on_close(ctx.meta["store"].close)
        ctx.call_on_close(functools.partial(_hooks_for_lost, ctx.meta["store"]))  # runs before the close
    store = ctx.meta["store"]
    if reap:
        store.reap_once()
    return store


def _hooks_for_lost(store) -> None:
    """EXP_ON_FINISH runs for each run this command found lost, as a worker's hook would."""
    from .config import on_finish_command

    command = on_finish_command()
    if command and store.reaped:
        from .hooks import on_finish

        for lost in store.reaped:
            if lost.status.finished:
                on_finish(command, lost, warn=output.warning_line)


def _query(where: str | None):
    """Parse --where before touching the store: bad input must change nothing."""
    if not where:
        return None
    from .query import parse

    return parse(where)


def json_mode() -> bool:
    return click.get_current_context().meta.get("as_json", False)


# Commands that live in modules of their own, imported only when they run (or for --help).
LAZY_COMMANDS = {
    "files": "expledger.commands.files:files_",
    "mcp": "expledger.commands.mcp:mcp",
    "next": "expledger.commands.research:next_",
    "notes": "expledger.commands.research:notes",
    "ui": "expledger.commands.ui:ui",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is asked for."""

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            import importlib

            module, attribute = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="exp")
@click.option("--store", "store_url", metavar="URL", help="Ledger to use, for any command.")
@click.option("--json", "as_json", is_flag=True, help="JSON output, for any command.")
@click.pass_context
def cli(ctx, store_url, as_json):
    """expledger: a local-first ledger of ML experiments.

    Register experiments, record what came out (metrics, summary, why it failed), find what
    was tried, compare runs and see what is queued. Data goes to
    memory/experiments/experiments.jsonl (one JSON object a line) unless --store or
    EXP_STORE names another ledger.
    """
    ctx.meta.update(store_url=store_url, as_json=as_json)


def experiment_options(func):
    """The fields of a new experiment, shared by `add` and `run`."""
    for option in reversed([
        click.option("--task", help="What is being studied, e.g. layer-analysis."),
        click.option("--model", help="The model, e.g. whisper-base."),
        click.option("--params", "params_json", metavar="JSON", help="Hyper-parameters as a JSON object."),
        click.option("--machine", help="Queued: the machine that should run it (default: any; 'any' clears it). "
                                       "Running: where it runs (default: $EXP_MACHINE, else the host name)."),
        click.option("--tag", "tags", multiple=True, help="A tag; repeat or separate with commas."),
    ]):
        func = option(func)
    return func


def _warn_if_tried(added) -> None:
    """Earlier runs of the same config, named on stderr."""
    if added.similar and not json_mode():
        output.warning_line("the same task, model and params were tried before:")
        for other in added.similar:
            click.echo(f"  {output.result_line(other)}", err=True)
        if added.similar_total > len(added.similar):
            click.echo(f"  … and {added.similar_total - len(added.similar)} more: exp check shows them", err=True)


@cli.command(context_settings=CONTEXT)
@click.option("--name", required=True, help="A short human name for the experiment.")
@experiment_options
@click.option("--command", help="The command line that runs it, complete enough to reproduce.")
@click.option("--priority", type=int, default=0, show_default=True, help="Workers take higher priorities first.")
@click.option("--gpus", "gpus", type=click.IntRange(1, 64), help="GPUs it needs: a worker with fewer leaves it queued "
              "(default: the worker's --gpus-per-run).")
@click.option("--status", type=StatusType((Status.QUEUED, Status.RUNNING)), default="queued", show_default=True,
              help="queued, or running to start it now.")
@click.option("--unless-tried", is_flag=True,
              help="Refuse (exit 1, naming the runs) when this task, model and params already succeeded or run.")
@common_options
def add(name, task, model, params_json, machine, tags, command, priority, gpus, status, unless_tried):
    """Register a new experiment; warn if the same config was tried before.

    \b
    Example:
      exp add --name "whisper logit lens" --task layer-analysis --model whisper-base \\
        --params '{"layers": 6}' --command "python3 lens.py" --machine lab
    """
    from .ops import record

    params = parse_json_object(params_json, "--params") if params_json is not None else {}
    added = record.add(open_ledger(), name=name, task=task, model=model, params=params, command=command,
                       machine=machine, tags=tags, status=status, priority=priority, gpus=gpus,
                       unless_tried=unless_tried)
    _report(added)
    _warn_if_tried(added)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@common_options
def start(exp_id):
    """Mark a queued experiment RUNNING (sets its started time).

    \b
    Example:
      exp start EXP-004
    """
    from .ops import record

    _report(record.start(open_ledger(), exp_id))


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
    from .ops import record

    metrics = parse_json_object(metrics_json, "--metrics") if metrics_json is not None else None
    _report(record.result(open_ledger(), exp_id, status=status, metrics=metrics, summary=summary, reason=reason,
                          force=force))


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@click.option("--reason", help="Why it was cancelled (kept as its summary).")
@common_options
def cancel(exp_id, reason):
    """Cancel a queued or running experiment; a running one's process is stopped.

    \b
    Example:
      exp cancel EXP-007 --reason "superseded by EXP-009"
    """
    from .ops import record

    cancelled = record.cancel(open_ledger(), exp_id, reason=reason)
    if cancelled.process == "unverified":
        exp = cancelled.experiment
        output.warning_line(f"{exp.id} names process {exp.runner.get('pid')} on this host, which could not be verified "
                            "as its runner (no token file of ours): it was not signalled")
    _report(cancelled)


@cli.command(context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("--id", "exp_id", metavar="ID", help="Run this queued experiment instead of registering a new one.")
@click.option("--name", help="A short human name (default: the command).")
@experiment_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@common_options
def run(exp_id, name, task, model, params_json, machine, tags, command):
    """Run a command as an experiment: capture its output, provenance and result.

    Registers the experiment (or takes a queued one with --id), runs COMMAND with EXP_ID,
    EXP_DIR and EXP_METRICS_FILE set, shows its output live while saving it, and records
    SUCCESS, FAILED with the reason, or CANCELLED (Ctrl-C). Exits with the command's code.

    \b
    Example:
      exp run --name "lr sweep 1e-3" --task asr --params '{"lr": 0.001}' -- python train.py --lr 0.001
      exp run --id EXP-007 -- python train.py
    """
    import shlex
    import signal

    from .liveness import runner_info
    from .runner import Execution

    store = open_ledger()
    if exp_id:
        if name or task or model or params_json or machine or tags:
            raise BadInput("--id runs a queued experiment as registered; leave out --name, --task, … "
                           "(or drop --id to register a new one)")
    params = parse_json_object(params_json, "--params") if params_json is not None else {}
    store.check_runs_root()
    from .ops import record

    if exp_id:
        exp = record.start(store, exp_id, runner=runner_info(), command=shlex.join(command)).experiment
    else:
        from .redact import redact_args

        text = shlex.join(redact_args(list(command)))  # what is stored; the command runs as typed
        added = record.add(store, name=name or text[:60], task=task, model=model, params=params, command=text,
                           machine=machine, tags=tags, status=Status.RUNNING, runner=runner_info())
        exp = added.experiment
        _warn_if_tried(added)
    execution = Execution(store, exp, list(command), quiet_stdout=json_mode())
    if not json_mode():
        click.echo(f"{exp.id} RUNNING · output saved in {execution.run_dir}", err=True)

    received = []

    def stop(number, frame):
        received.append(number)
        execution.stop(f"{signal.Signals(number).name} to exp run")

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = execution.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if json_mode():
        from .ops.runs import Ran

        output.emit_json(Ran(outcome.experiment, outcome.exit_code).to_json())
    else:
        click.echo(output.result_line(outcome.experiment), err=True)
    raise click.exceptions.Exit(128 + received[0] if received else outcome.exit_code)  # 130 after Ctrl-C


def _report(recorded) -> None:
    """A lifecycle result: its JSON, or the experiment in one line."""
    if json_mode():
        output.emit_json(recorded.to_json())
        return
    click.echo(output.result_line(recorded.experiment))


def _statuses(values) -> tuple:
    return tuple(Status.parse(part) for value in values for part in value.split(",") if part.strip())


@cli.command("list", context_settings=CONTEXT)
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Keep these statuses (repeat or comma-separate; any case).")
@click.option("--task", help="Keep this task.")
@click.option("--model", help="Keep this model.")
@click.option("--machine", help="Keep this machine.")
@click.option("--tag", "tags", multiple=True, help="Keep experiments with this tag (repeat: all of them).")
@click.option("--where", metavar="EXPR", help="A query, e.g. 'params.lr < 0.01 and metrics.acc >= 0.9'.")
@click.option("--sort", default="-id", show_default=True,
              help="Field, params.X or metrics.X; prefix - for descending; missing values last.")
@click.option("--limit", type=click.IntRange(0, 10**9), default=100, show_default=True,
              help="Show at most this many; 0 shows all.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many matches first (the next page).")
@click.option("--cursor", metavar="TOKEN",
              help="The next page: `next_cursor` from the --json of the same list command.")
@listing_options
@common_options
def list_(**options):
    """List experiments, newest first, with filters and a query.

    \b
    Example:
      exp list --status success --task layer-analysis
      exp list --where 'params.lr < 0.001 and metrics.acc > 0.9' --sort -metrics.acc --limit 10
      exp list --fields id,name,params.lr,metrics.acc
    """
    from .models import collector_paused

    with collector_paused():  # thousands of records made, printed and freed: nothing for the cycle collector
        _list(**options)


def _list(statuses, task, model, machine, tags, where, sort, limit, offset, cursor, fields, wide) -> None:
    from .ops.search import list_experiments

    store = open_ledger()
    found = list_experiments(store, status=_statuses(statuses), task=task, model=model, machine=machine,
                             tags=tuple(t for tag in tags for t in tag.split(",") if t), where=_query(where),
                             sort=sort, limit=None if limit == 0 else limit, offset=offset, cursor=cursor)
    if fields and "heartbeat" in fields:
        from .fields import with_heartbeats

        found = dataclasses.replace(found, experiments=with_heartbeats(store, found.experiments))
    filtered = statuses or task or model or machine or tags or where
    _print_list(found, empty="no experiments match" if filtered else "no experiments yet: exp add --name …",
                fields=fields, wide=wide)


def _print_list(found, *, empty, fields=None, columns=DEFAULT_COLUMNS, wide=False) -> None:
    if json_mode():
        output.emit_json(found.to_json(fields))
    else:
        output.print_experiments(found.experiments, total=found.total, empty=empty, columns=fields or columns,
                                 wide=wide, offset=found.offset)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_id", metavar="ID")
@common_options
def show(exp_id):
    """Show one experiment whole: fields, metrics, step sparklines, provenance, log tail.

    \b
    Example:
      exp show EXP-001
    """
    from .ops.show import show as find

    shown = find(open_ledger(), exp_id)
    if json_mode():
        output.emit_json(shown.to_json())
        return
    experiment = shown.experiment
    output.print_experiment(experiment, steps=shown.steps, run_dir=shown.run_dir, output_tail=shown.output_tail)
    for other in shown.also_was:
        click.echo(f"note: {shown.asked} was also the ID of {other.id} ({output.printable(other.name)}) in a ledger "
                   "merged into this one", err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("exp_ids", nargs=-1, required=True, metavar="ID [ID…]")
@click.option("--metric", "metrics", multiple=True, metavar="NAME", help="Plot this step metric (repeat; default: all).")
@click.option("-o", "--output", "out_path", required=True, type=click.Path(dir_okay=False), help="The PNG to write.")
@common_options
def plot(exp_ids, metrics, out_path):
    """Draw step metrics of one or more runs into a PNG, runs overlaid per metric.

    \b
    Example:
      exp plot EXP-001 EXP-002 --metric loss -o loss.png
    """
    from .ops.plot import plot as draw

    plotted = draw(open_ledger(), exp_ids, path=out_path, metrics=metrics)
    if json_mode():
        output.emit_json(plotted.to_json())
    else:
        click.echo(f"wrote {out_path}: {', '.join(plotted.metrics)} for {', '.join(plotted.experiments)}", err=True)


def _listed(text: str | None) -> list[str]:
    """`a,b, c` as ["a", "b", "c"]."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _names(text: str | None) -> frozenset[str]:
    return frozenset(_listed(text))


_BY_METRIC = "\0by"  # `--lower` given without names: the --by metric is lower-is-better
ROWS_FROM = 5  # compared runs from which the table turns: runs as rows, not columns


@cli.command(context_settings=CONTEXT)
@click.argument("exp_ids", nargs=-1, metavar="[ID…]")
@click.option("--where", metavar="EXPR", help="Compare every experiment matching this query (with or without IDs).")
@click.option("--top", type=click.IntRange(1, 1000), help="Only the N best by --by (from --where, else the whole ledger).")
@click.option("--by", metavar="metrics.X", help="Rank by this metric: best first, and the best is the baseline.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="At most this many experiments from --where (newest first) when not ranking with --top.")
@click.option("--baseline", metavar="ID", help="Deltas against this experiment (default: the best by --by, else the first).")
@click.option("--lower", metavar="[A,B]", is_flag=False, flag_value=_BY_METRIC,
              help="Metrics where lower is better, besides loss/error/wer/… names; alone: the --by metric.")
@click.option("--all", "show_all", is_flag=True, help="Also show the params that are the same everywhere.")
@click.option("--wide", is_flag=True, help="Never cut long cells (they are cut only on a terminal).")
@common_options
def compare(exp_ids, where, top, by, limit, baseline, lower, show_all, wide):
    """Compare experiments side by side: differing params first, best metric marked ★, deltas.

    Five or more runs are shown one per row (a narrow table); fewer, one per column.

    \b
    Example:
      exp compare EXP-001 EXP-002
      exp compare --where 'task = asr' --top 2 --by metrics.wer --lower
      exp compare --where 'task = asr and status = success' --lower wer --baseline EXP-004
    """
    from .ops.compare import compare as build
    from .query import field_path

    metric = _metric_name(field_path(by, flag="--by")) if by else None
    lowered = _names(None if lower == _BY_METRIC else lower)
    if lower == _BY_METRIC:
        if metric is None:
            raise BadInput("--lower without names applies to the --by metric: add --by metrics.X, or name them: --lower wer")
        lowered |= {metric}
    if top and metric is None:
        raise BadInput("--top N ranks by a metric: add --by metrics.X (and --lower if smaller is better)")
    comparison = build(open_ledger(), exp_ids, where=_query(where), top=top, by=metric, limit=limit,
                       baseline=baseline, lower=lowered)
    if json_mode():
        output.emit_json(comparison.to_json())
    else:
        output.print_comparison(comparison, show_all=show_all, rows=len(comparison.experiments) >= ROWS_FROM,
                                wide=wide)


def _metric_name(path: tuple) -> str:
    if path[0] != "metrics" or len(path) != 2:
        raise BadInput("--by ranks by a metric: --by metrics.NAME")
    return path[1]


@cli.command(context_settings=CONTEXT)
@click.option("--task", help="The task of the config to check.")
@click.option("--model", help="The model of the config to check.")
@click.option("--params", "params_json", metavar="JSON", help="Its params as a JSON object.")
@click.option("--neighbours", type=click.IntRange(0, 100), default=5, show_default=True,
              help="How many nearest other runs to show.")
@click.option("--replicate", default="seed", show_default=True, metavar="PARAM",
              help="The param whose values are repeats of one config: never makes a config new.")
@click.option("--fail-if-tried", is_flag=True, help="Exit 1 when a matching run succeeded or is running.")
@common_options
def check(task, model, params_json, neighbours, replicate, fail_if_tried):
    """Was this tried already? Every run of the config as asked, then the nearest others.

    What the question leaves out matches anything: other params, and the replicate param
    (seed) whatever its value. Values match whatever their key order or number spelling
    (1e-3 = 0.001). The first line answers: "tried, 3 SUCCESS: …" or "not tried: …".

    \b
    Example:
      exp check --task asr --model whisper-small --params '{"lr": 1e-4}'
      exp check --task asr --params '{"lr": 1e-3}' --fail-if-tried || echo "skip"
    """
    from .ops.check import check as find

    if not (task or model or params_json):
        raise BadInput("check needs the config to look for: --task, --model and/or --params")
    params = parse_json_object(params_json, "--params") if params_json is not None else None
    found = find(open_ledger(), task=task, model=model, params=params, replicate=replicate or None,
                 neighbours=neighbours)
    if json_mode():
        output.emit_json(found.to_json())
    else:
        output.print_check(found)
    if fail_if_tried and found.blocks_rerun:
        raise click.exceptions.Exit(1)


@cli.command(context_settings=CONTEXT)
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "csv", "json"]), default="md", show_default=True,
              help="Table format (json is the same as --json).")
@click.option("--status", "statuses", multiple=True, default=("success",), show_default=True, metavar="STATUS",
              help="Which experiments to include (repeat or comma-separate).")
@click.option("--where", metavar="EXPR", help="Only experiments matching this query.")
@click.option("--group-by", metavar="A,B", help="Group by these fields (default: every param that varies, but the replicate).")
@click.option("--replicate", default="seed", show_default=True, metavar="PARAM",
              help="The param whose values are repeats of one config.")
@click.option("--columns", metavar="A,B", help="Metric columns, e.g. metrics.acc,metrics.wer (default: all).")
@click.option("--lower", metavar="A,B", help="Metrics where lower is better, besides loss/error/wer/… names.")
@click.option("--precision", type=click.IntRange(0, 10), help="Decimals (default: two significant digits of the std).")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
@common_options
def export(fmt, statuses, where, group_by, replicate, columns, lower, precision, out_path):
    """Paper-ready table: one row per config, each metric as mean ± std over its runs.

    Runs that differ only in the replicate param (seed) are one config; rows are grouped by
    task and the best mean per metric within a task is bold. Experiments without the
    exported metrics are left out and a seed that repeats in a row is named (on stderr).

    \b
    Example:
      exp export --where 'task = asr' --format latex -o table.tex
      exp export --where 'task = asr' --group-by params.model,params.lr --format md
    """
    from .ops.export import export as build

    table = build(open_ledger(), status=_statuses(statuses), where=_query(where), group_by=_listed(group_by),
                  replicate=replicate, metrics=_listed(columns), lower=_names(lower))
    for warning in table.warnings:
        output.warning_line(warning)
    as_json = json_mode() or fmt == "json"
    if as_json and not out_path:
        output.emit_json(table.to_json())
        return
    text = table.render("json" if as_json else fmt, precision=precision)
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        click.echo(f"wrote {len(table.table['rows'])} rows to {out_path}", err=True)
    else:
        click.echo(text)


@cli.command(context_settings=CONTEXT)
@click.option("--where", metavar="EXPR", help="Only queued experiments matching this query.")
@listing_options
@common_options
def queue(where, fields, wide):
    """Show queued experiments in the order a worker will take them.

    Each with its priority, target machine (blank: any worker), command and age; workers
    take only experiments that have a command.

    \b
    Example:
      exp queue
      exp queue --where 'model ~ whisper'
    """
    from .models import collector_paused
    from .ops.search import queue as find

    with collector_paused():
        _print_list(find(open_ledger(), where=_query(where)), empty="the queue is empty", fields=fields,
                    columns=QUEUE_COLUMNS, wide=wide)


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
    from .ops.doctor import doctor as verify

    store = open_ledger()
    report = verify(store, fix=fix, source=click.get_current_context().meta["store_source"])
    if json_mode():
        output.emit_json(report.to_json(), ok=report.healthy)
    else:
        output.print_doctor(report)
    if not report.healthy:
        raise click.exceptions.Exit(1)


@cli.command(context_settings=CONTEXT)
@click.option("--machine", help="This worker's machine: it takes experiments targeted here or nowhere "
                                "(default: $EXP_MACHINE, else the host name).")
@click.option("--gpus", metavar="0,1,…", help="GPUs to use (default: every GPU nvidia-smi lists; 'none' for none).")
@click.option("--gpus-per-run", type=click.IntRange(1, 64), default=1, show_default=True,
              help="GPUs per experiment; slots run at once.")
@click.option("--task", help="Only experiments of this task.")
@click.option("--where", metavar="EXPR", help="Only experiments matching this query.")
@click.option("--only-from-host", "from_hosts", multiple=True, metavar="MACHINE",
              help="Only experiments registered on this machine (repeatable); see README, Security and trust.")
@click.option("--only-tag", "only_tags", multiple=True, metavar="TAG", help="Only experiments with this tag (repeatable).")
@click.option("--once", is_flag=True, help="Run one experiment if one is queued that it can run, then stop.")
@click.option("--max-runs", type=click.IntRange(1), help="Stop after this many.")
@click.option("--until-empty", is_flag=True, help="Stop when nothing it can run is queued and nothing runs; "
              "say what it left and why.")
@click.option("--retries", type=click.IntRange(0, 100), default=0, show_default=True,
              help="Re-queue a run whose worker was lost this many times before it counts as FAILED.")
@click.option("--workdir", type=click.Path(file_okay=False, exists=True), help="Run every command here, "
              "not in each experiment's own folder.")
@click.option("--poll", type=click.FloatRange(0.05, 60), default=0.5, show_default=True,
              help="Seconds between looks at the queue.")
@click.option("--on-stop", type=click.Choice(["finish", "requeue"]), default="finish", show_default=True,
              help="On SIGINT/SIGTERM: finish what runs, or stop it and give it back to the queue.")
@click.option("--on-finish", metavar="CMD", help="Run CMD (through the shell) with each experiment's JSON on stdin "
              "when it finishes, fails or is found lost (default: $EXP_ON_FINISH); a failing CMD is a warning.")
@common_options
def worker(machine, gpus, gpus_per_run, task, where, from_hosts, only_tags, once, max_runs, until_empty, retries, workdir,
           poll, on_stop, on_finish):
    """Run queued experiments, one at a time or side by side on GPUs, until stopped.

    Any number of workers, on any machines sharing the store, can run at once: each
    experiment is taken by exactly one. A worker leaves queued what it cannot run here: an
    experiment for another machine, one whose folder is not here, one needing more GPUs.
    Commands run through the shell in the experiment's folder (this checkout's copy of it,
    found relative to the git repository's top), as `exp run` would.

    \b
    Example:
      exp worker --gpus 0,1,2,3 --gpus-per-run 2 --retries 1
      exp worker --until-empty --where 'task = asr'
    """
    from .config import on_finish_command, resolve_machine
    from .provenance import gpus as detect_gpus
    from .redact import redact
    from .worker import Worker, WorkerOptions, idle_gpus, install_signal_handlers

    condition = _query(where)
    if task:
        from .query import And, Compare

        by_task = Compare(("task",), "=", task)
        condition = And((by_task, condition)) if condition is not None else by_task
    condition = _trusted_only(condition, from_hosts, only_tags)
    store = open_ledger()
    store.check_runs_root()  # a worker that cannot make run folders must not claim anything
    if gpus is None:
        gpu_list = [g["index"] for g in detect_gpus()]
    else:
        gpu_list = [] if gpus.strip().lower() == "none" else [g.strip() for g in gpus.split(",") if g.strip()]
    if gpu_list and gpus_per_run > len(gpu_list):
        raise BadInput(f"--gpus-per-run {gpus_per_run} needs at least that many GPUs; this worker has {len(gpu_list)}")
    options = WorkerOptions(machine=resolve_machine(machine), gpus=gpu_list, gpus_per_run=gpus_per_run,
                            where=condition, max_runs=1 if once else max_runs, until_empty=until_empty or once,
                            retries=retries, workdir=workdir, poll=poll, on_stop=on_stop,
                            quiet_stdout=json_mode(), on_finish=on_finish_command(on_finish))
    running = Worker(store.url, options, report=lambda line: click.echo(f"worker: {redact(line)}", err=True))
    install_signal_handlers(running)
    idle = idle_gpus(gpu_list, gpus_per_run)
    if idle:
        output.warning_line(f"GPU {','.join(idle)} will idle: {len(gpu_list)} GPUs do not split into runs of "
                            f"{gpus_per_run}; only experiments added with --gpus {len(idle)} (or fewer) use it")
    gpu_text = f"GPUs {','.join(gpu_list)}, {gpus_per_run} a run" if gpu_list else "no GPUs"
    click.echo(f"worker: {options.machine} taking queued experiments from {store.display_url} ({gpu_text})", err=True)
    outcomes = running.run()
    left = running.left() if options.until_empty else []
    if json_mode():
        from .ops.runs import Ran, WorkerReport

        output.emit_json(WorkerReport([Ran(o.experiment, o.exit_code) for o in outcomes], left).to_json())
        return
    if options.until_empty:
        click.echo(f"worker: ran {len(outcomes)}; left {len(left)} queued" + (":" if left else ""), err=True)
        for exp, why in left:
            click.echo(f"  {exp.id}  {output.printable(exp.name)}: {why}", err=True)


def _trusted_only(condition, hosts: tuple, tags: tuple):
    """The worker's condition narrowed to experiments registered on `hosts` and carrying
    one of `tags` (either may be empty: no narrowing)."""
    from .query import And, Compare, Has, Or

    parts = [condition] if condition is not None else []
    for choices in ([Compare(("provenance", "added_on"), "=", host) for host in hosts],
                    [Has(("tags",), tag) for tag in tags]):
        if choices:
            parts.append(choices[0] if len(choices) == 1 else Or(tuple(choices)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _print_transfer(report) -> None:
    if json_mode():
        output.emit_json(report.to_json())
        return
    click.echo(f"{report.target}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
               f"{report.step_series} step series copied")
    for refused in report.refused[:10]:
        output.warning_line(f"not merged: line {refused['line']}: {refused['reason']}")
    for moved in report.renumbered:
        click.echo(f"  {moved['was']} -> {moved['id']}  {output.printable(moved['name'])} "
                   f"(its ID was taken; {moved['was']} stays an alias)")
    for conflict in report.conflicts:
        click.echo(f"  conflict {conflict['id']}  {output.printable(conflict['name'])}: changed on both sides; kept "
                   f"{conflict['kept']}, the other outcome in its history\n"
                   + "".join(f"    {output.printable(text)}\n" for text in conflict["versions"]), nl=False)


@cli.command(context_settings=CONTEXT)
@click.option("--from", "source", required=True, metavar="URL", help="The store to copy from.")
@click.option("--to", "target", required=True, metavar="URL", help="The store to copy into.")
@common_options
def copy(source, target):
    """Copy a whole ledger into another store, losslessly; running it twice adds nothing.

    Records keep their uuid, ID, history and times; step series come along. IDs the target
    holds never change (an incoming clash gets the next free ID, its old one as an alias);
    conflicts are resolved as `exp merge` does. All or nothing.

    \b
    Example:
      exp copy --from memory/experiments/experiments.jsonl --to postgresql://lab-db/experiments
    """
    from .ops.sync import copy as bring

    _print_transfer(bring(source, target))


@cli.command(context_settings=CONTEXT)
@click.argument("other", metavar="OTHER")
@common_options
def merge(other):
    """Merge another ledger, such as a laptop's experiments.jsonl, into this one.

    Records are matched by uuid, never duplicated. IDs this ledger holds never change; an
    incoming one whose ID is taken gets the next free ID and keeps the old one as an alias.
    An experiment changed on both sides is a conflict, resolved without losing a result (a
    result wins over a cancel; of two results the later is current, the other in history).
    All or nothing; merging again changes nothing.

    \b
    Example:
      exp merge ~/laptop/memory/experiments/experiments.jsonl
    """
    from .ops.sync import merge as bring

    _print_transfer(bring(open_ledger(), other))


from .commands import logs as _logs  # noqa: E402,F401  registers `exp logs`
from .commands import requeue as _requeue  # noqa: E402,F401  registers `exp requeue`
from .commands import workers as _workers  # noqa: E402,F401  registers `exp workers`


def main(argv: list[str] | None = None) -> int:
    """Entry point of `exp` and of the seed's exp_tracker.py: one line per error, no traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in (args[: args.index("--")] if "--" in args else args)  # not the child's flags
    if not args:
        click.echo(cli.get_help(click.Context(cli, info_name="exp")))
        return 0
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return _fail(f"argument {arg!r} is not valid UTF-8; check the terminal's encoding", "bad_input", 2, as_json)
    from .log import one_line_warnings

    one_line_warnings()
    try:
        return cli.main(args=args, prog_name="exp", standalone_mode=False) or 0
    except ExpledgerError as err:
        return _fail(err.for_cli(), err.kind, err.exit_code, as_json)  # the flags, where the library names keywords
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
    from .redact import redact

    message = redact(message)  # a driver's error may quote the store URL
    output.error_line(message)
    if as_json:
        output.emit_json({"error": {"type": kind, "message": message, "exit_code": code}}, ok=False)
    return code
