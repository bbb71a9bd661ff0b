"""One place that turns command results into text: human tables or a versioned JSON envelope.

JSON (`--json`): one object on one line of stdout, `{"ok": true, "version": 1, ...payload}`; errors are
`{"ok": false, "version": 1, "error": {"type", "message", "exit_code"}}`. Human output uses
colours on a terminal only, measures Chinese (wide) characters correctly, and truncates
long fields.
"""

from __future__ import annotations

import json
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
    """Print the JSON envelope on one line; Chinese stays readable, NaN/inf are never bare."""
    click.echo(json.dumps({"ok": ok, "version": JSON_VERSION, **payload}, ensure_ascii=False))


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
# A small renderer of our own: rich drew the same 100-row list in ~200 ms, more than the
# whole command otherwise takes, and `list` runs in tight loops.


def text_width(text: str) -> int:
    """Terminal cells a string takes: Chinese and other wide characters take two."""
    if text.isascii():
        return len(text)
    from unicodedata import combining, east_asian_width

    return sum(0 if combining(ch) else 2 if east_asian_width(ch) in "WF" else 1 for ch in text)


def truncate(text: str, width: int) -> str:
    """Cut to at most `width` cells, ending in … when cut; one line only."""
    text = " ".join(text.split()) if ("\n" in text or "\t" in text) else text
    if text_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        cells = text_width(ch)
        if used + cells > width - 1:
            break
        out.append(ch)
        used += cells
    return "".join(out) + "…"


def render_table(headers: list[str], rows: list[list], *, max_widths: dict | None = None,
                 colours: dict | None = None, fit: bool = True) -> str:
    """Align `rows` under `headers`; cells are text, or (text, colour) pairs.

    Columns named in `max_widths` are truncated to that many cells, and on a terminal the
    widest of them shrink further until the table fits its width.
    """
    max_widths = dict(max_widths or {})
    cells = [[c if isinstance(c, tuple) else (str(c), None) for c in row] for row in rows]
    widths = [max([text_width(h)] + [text_width(row[i][0]) for row in cells]) for i, h in enumerate(headers)]
    for i, header in enumerate(headers):
        if header in max_widths:
            widths[i] = min(widths[i], max(max_widths[header], text_width(header)))
    if fit and sys.stdout.isatty():
        import shutil

        room = shutil.get_terminal_size().columns - 2 * (len(headers) - 1)
        shrinkable = [i for i, h in enumerate(headers) if h in max_widths]
        while sum(widths) > room and shrinkable:
            widest = max(shrinkable, key=lambda i: widths[i])
            if widths[widest] <= 8:
                break
            widths[widest] -= 1
    last = len(headers) - 1

    def line(row) -> str:
        parts = []
        for i, (text, style) in enumerate(row):
            text = truncate(text, widths[i])
            padded = text if i == last else text + " " * (widths[i] - text_width(text))
            parts.append(click.style(padded, **style) if style else padded)
        return "  ".join(parts).rstrip()

    header = [(h, {"bold": True}) for h in headers]
    return "\n".join([line(header)] + [line([(t, {"fg": c} if c else None) for t, c in row]) for row in cells])


def _status_cell(status: Status) -> tuple[str, str]:
    return status.value, STATUS_COLOURS[status]


def print_experiments(experiments: list[Experiment], *, total: int, empty: str) -> None:
    """The table `list` and `queue` print, and a note when the limit cut it."""
    if not experiments:
        click.echo(empty)
        return
    rows = [
        [exp.id, _status_cell(exp.status), exp.name, exp.task or "", exp.model or "", exp.machine or "",
         relative_time(exp.created), pairs_text(exp.metrics), outcome_text(exp)]
        for exp in experiments
    ]
    headers = ["ID", "STATUS", "NAME", "TASK", "MODEL", "MACHINE", "CREATED", "METRICS", "OUTCOME"]
    click.echo(render_table(headers, rows, max_widths={"NAME": 32, "TASK": 20, "MODEL": 20, "METRICS": 36,
                                                      "OUTCOME": 60}))
    if total > len(experiments):
        click.echo(f"showing {len(experiments)} of {total}; --limit 0 shows all", err=True)


def print_experiment(exp: Experiment) -> None:
    """`show`: one experiment whole, one field a line; params and metrics one per line."""
    click.echo(f"{exp.id}  {click.style(exp.name, bold=True)}  {status_text(exp.status)}")
    rows = [
        ("task", exp.task), ("model", exp.model), ("machine", exp.machine), ("command", exp.command),
        ("tags", ", ".join(exp.tags)),
        ("created", _when(exp.created)), ("started", _when(exp.started)), ("completed", _when(exp.completed)),
        ("duration", duration_text(exp.duration)),
        ("summary", exp.summary), ("failed_reason", exp.failed_reason),
    ]
    rows = [(key, str(value)) for key, value in rows if value]
    for key in ("params", "metrics"):
        values = getattr(exp, key)
        rows += [(key, f"{k} = {value_text(v)}") for k, v in values.items()] or [(key, "—")]
    for old in exp.history:
        reason = old.get("failed_reason") or old.get("summary")
        text = f"{old['status']} (replaced {relative_time(old.get('replaced'))}) {pairs_text(old.get('metrics') or {})}"
        rows.append(("earlier result", text.rstrip() + (f" · {reason}" if reason else "")))
    rows += [(key, value_text(value)) for key, value in exp.extra.items()]
    rows.append(("uuid", f"{exp.uuid}  rev {exp.rev}"))
    width = max(len(key) for key, _ in rows)
    previous = None
    for key, value in rows:
        label = "" if key == previous else key
        previous = key
        click.echo(f"  {click.style(label.ljust(width), bold=True)}  {value}")


def _when(text: str | None) -> str:
    return f"{text} ({relative_time(text)})" if text else ""


def print_comparison(comparison: dict, *, show_all: bool) -> None:
    """`compare`: experiments as columns, differing params first, best metric marked ★."""
    experiments: list[Experiment] = comparison["experiments"]
    rows = [[key] + [getattr(e, key) or "" for e in experiments] for key in ("name", "task", "model", "machine")]
    rows.insert(1, ["status"] + [_status_cell(e.status) for e in experiments])
    durations = [duration_text(e.duration) for e in experiments]
    if any(durations):
        rows.append(["duration", *durations])
    differ, same = comparison["params"]["differ"], comparison["params"]["same"]
    for name, values in differ.items():
        rows.append([f"≠ params.{name}"] + [_cell(values.get(e.id, _MISSING)) for e in experiments])
    if show_all:
        rows += [[f"params.{name}"] + [value_text(value)] * len(experiments) for name, value in same.items()]
    for name, metric in comparison["metrics"].items():
        cells = []
        for exp in experiments:
            text = _cell(metric["values"].get(exp.id, _MISSING))
            cells.append((text + " ★", "green") if exp.id in metric["best"] else text)
        rows.append([f"metrics.{name}", *cells])
    outcomes = [outcome_text(e) for e in experiments]
    if any(outcomes):
        rows.append(["outcome", *outcomes])
    headers = ["", *(exp.id for exp in experiments)]
    click.echo(render_table(headers, rows, max_widths={exp.id: 40 for exp in experiments}))
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
