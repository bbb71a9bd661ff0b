"""One place that turns command results into text: human tables or a versioned JSON envelope.

JSON (`--json`): one object on stdout, `{"ok": true, "version": 1, ...payload}`; errors are
`{"ok": false, "version": 1, "error": {"type", "message", "exit_code"}}`. Human output uses
colours on a terminal only, measures Chinese (wide) characters correctly, and truncates
long fields. The table library is imported only when a table is drawn.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone

import click

from .models import Experiment, Status, parse_time

JSON_VERSION = 1
STATUS_COLOURS = {
    Status.QUEUED: "cyan",
    Status.RUNNING: "yellow",
    Status.SUCCESS: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "magenta",
}


def emit_json(payload: dict, *, ok: bool = True) -> None:
    """Print the JSON envelope; Chinese stays readable, NaN/inf are never emitted bare."""
    click.echo(json.dumps({"ok": ok, "version": JSON_VERSION, **payload}, ensure_ascii=False, indent=2))


def error_line(message: str) -> None:
    """The one stderr line every failed command prints."""
    click.echo(f"error: {message}", err=True)


def warning_line(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def status_text(status: Status) -> str:
    return click.style(status.value, fg=STATUS_COLOURS[status])


def relative_time(text: str | None, *, now: datetime | None = None) -> str:
    """`5s ago`, `3m ago`, `2h ago`, `4d ago`; the date beyond a month."""
    moment = parse_time(text)
    if moment is None:
        return text or ""
    seconds = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    if seconds < 0:
        return moment.strftime("%Y-%m-%d %H:%M")
    for size, unit in ((60, "s"), (3600, "m"), (86400, "h"), (86400 * 31, "d")):
        if seconds < size:
            step = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
            return f"{int(seconds // step)}{unit} ago"
    return moment.strftime("%Y-%m-%d")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def value_text(value) -> str:
    """A param or metric value as a person reads it: 0.934, 1e-05, true, [1, 2]."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def pairs_text(values: dict) -> str:
    return "  ".join(f"{k}={value_text(v)}" for k, v in values.items())


def outcome_text(exp: Experiment) -> str:
    """What came out, in one line: the failure's reason, else the summary."""
    if exp.status is Status.FAILED and exp.failed_reason:
        return exp.failed_reason
    return exp.summary or ""


# --- tables ------------------------------------------------------------------------


def _console():
    from rich.console import Console

    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(highlight=False, width=width, soft_wrap=False, emoji=False, markup=False)


def _rich_status(status: Status):
    from rich.text import Text

    return Text(status.value, style=STATUS_COLOURS[status])


def _table(*columns: str, widths: dict | None = None):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=(widths or {}).get(name))
    return table


def print_experiments(experiments: list[Experiment], *, total: int, empty: str) -> None:
    """The table `list` and `queue` print, and a note when the limit cut it."""
    if not experiments:
        click.echo(empty)
        return
    table = _table("ID", "STATUS", "NAME", "TASK", "MODEL", "MACHINE", "CREATED", "METRICS", "OUTCOME",
                   widths={"NAME": 32, "TASK": 20, "MODEL": 20, "METRICS": 36, "OUTCOME": 48})
    for exp in experiments:
        table.add_row(
            exp.id, _rich_status(exp.status), exp.name, exp.task or "", exp.model or "", exp.machine or "",
            relative_time(exp.created), pairs_text(exp.metrics), outcome_text(exp),
        )
    _console().print(table)
    if total > len(experiments):
        click.echo(f"showing {len(experiments)} of {total}; --limit 0 shows all", err=True)


def print_experiment(exp: Experiment) -> None:
    """`show`: one experiment whole."""
    from rich.table import Table

    console = _console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    console.print(f"{exp.id}  {exp.name}  ", _rich_status(exp.status), sep="")
    rows = [
        ("task", exp.task), ("model", exp.model), ("machine", exp.machine), ("command", exp.command),
        ("tags", ", ".join(exp.tags)),
        ("created", _when(exp.created)), ("started", _when(exp.started)), ("completed", _when(exp.completed)),
        ("duration", duration_text(exp.duration)),
        ("summary", exp.summary), ("failed_reason", exp.failed_reason),
    ]
    for key, value in rows:
        if value:
            grid.add_row(key, str(value))
    for key in ("params", "metrics"):
        values = getattr(exp, key)
        grid.add_row(key, "\n".join(f"{k} = {value_text(v)}" for k, v in values.items()) if values else "—")
    for old in exp.history:
        text = f"{old['status']} (replaced {relative_time(old.get('replaced'))}) {pairs_text(old.get('metrics') or {})}"
        reason = old.get("failed_reason") or old.get("summary")
        grid.add_row("earlier result", text + (f" · {reason}" if reason else ""))
    grid.add_row("uuid", f"{exp.uuid}  rev {exp.rev}")
    for key, value in exp.extra.items():
        grid.add_row(key, value_text(value))
    console.print(grid)


def _when(text: str | None) -> str:
    return f"{text} ({relative_time(text)})" if text else ""


def print_comparison(comparison: dict, *, show_all: bool) -> None:
    """`compare`: experiments as columns, differing params first, best metric marked ★."""
    experiments: list[Experiment] = comparison["experiments"]
    table = _table("", *(exp.id for exp in experiments))
    table.columns[0].style = "bold"
    for key in ("name", "status", "task", "model", "machine"):
        cells = [_rich_status(e.status) if key == "status" else (getattr(e, key) or "") for e in experiments]
        table.add_row(key, *cells)
    table.add_row("duration", *(duration_text(e.duration) for e in experiments))
    differ, same = comparison["params"]["differ"], comparison["params"]["same"]
    if differ:
        table.add_section()
    for name, values in differ.items():
        table.add_row(f"≠ params.{name}", *(_cell(values.get(e.id, _MISSING)) for e in experiments))
    if same and show_all:
        table.add_section()
        for name, value in same.items():
            table.add_row(f"params.{name}", *([value_text(value)] * len(experiments)))
    if comparison["metrics"]:
        table.add_section()
    for name, metric in comparison["metrics"].items():
        cells = []
        for exp in experiments:
            value = metric["values"].get(exp.id, _MISSING)
            cells.append(_cell(value) + (" ★" if exp.id in metric["best"] else ""))
        table.add_row(f"metrics.{name}", *cells)
    outcomes = [outcome_text(e) for e in experiments]
    if any(outcomes):
        table.add_section()
        table.add_row("outcome", *outcomes)
    _console().print(table)
    if same and not show_all:
        click.echo(f"{len(same)} identical param(s) hidden; --all shows them", err=True)


_MISSING = object()


def _cell(value) -> str:
    return "—" if value is _MISSING else value_text(value)


def print_doctor(report: dict) -> None:
    """`doctor`: where the ledger is, what it holds, each problem and what was done."""
    click.echo(f"store: {report['store']} (from {report['source']})")
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(report["by_status"].items()))
    click.echo(f"{report['experiments']} experiments in {report['lines']} lines" + (f": {counts}" if counts else ""))
    for problem in report["problems"]:
        mark = "fixed" if problem["fixed"] else problem["severity"]
        colour = "green" if problem["fixed"] else ("red" if problem["severity"] == "error" else "yellow")
        click.echo(click.style(f"{mark}: ", fg=colour) + problem["message"])
    if report.get("quarantine"):
        click.echo(f"unreadable lines moved to {report['quarantine']}")
    unfixed = [p for p in report["problems"] if p["fixable"] and not p["fixed"]]
    if unfixed:
        click.echo("`exp doctor --fix` repairs what is marked fixable, losing nothing")
    if not report["problems"]:
        click.echo(click.style("ok: ", fg="green") + "no problems found")
