"""One place that turns command results into text: human tables or a versioned JSON envelope.

JSON (`--json`): one object on one line of stdout, `{"ok": true, "version": 1, ...payload}`; errors are
`{"ok": false, "version": 1, "error": {"type", "message", "exit_code"}}`. Human output uses
colours on a terminal only, measures Chinese (wide) characters correctly, and cuts long
cells only on a terminal (never when piped, never with --wide).
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from . import fields, schema
from .models import Experiment, Status, collector_paused, json_safe, parse_time
from .redact import redact

JSON_VERSION = 1
STATUS_COLOURS = {
    Status.QUEUED: "cyan",
    Status.RUNNING: "yellow",
    Status.SUCCESS: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "magenta",
}


def envelope(payload: dict, *, ok: bool = True) -> dict:
    """The versioned JSON object every face gives (`--json`, MCP tools); NaN/inf as strings."""
    return json_safe({"ok": ok, "version": JSON_VERSION, **payload})


def emit_json(payload: dict, *, ok: bool = True) -> None:
    """Print the JSON envelope on one line; Chinese stays readable."""
    click.echo(envelope_text(payload, ok=ok))


def envelope_text(payload: dict, *, ok: bool = True) -> str:
    """json.dumps(envelope(payload)), walking the payload only when it needs it: a payload
    that is already JSON-safe (no NaN or infinity, no NUL, as every payload built by
    to_json() is) is written as it is, so a long listing is not walked twice."""
    whole = {"ok": ok, "version": JSON_VERSION, **payload}
    try:
        text = json.dumps(whole, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError):
        text = None
    if text is None or "\\u0000" in text:
        return json.dumps(envelope(payload, ok=ok), ensure_ascii=False)
    return text


def error_line(message: str) -> None:
    """The one stderr line every failed command prints."""
    click.echo(f"error: {redact(message)}", err=True)


def warning_line(message: str) -> None:
    click.echo(f"warning: {redact(message)}", err=True)


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


def size_text(size) -> str:
    """A byte count as people read it: 512 B, 4.7 kB, 1.3 GB."""
    if not isinstance(size, int):
        return "?"
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} GB"


def value_text(value) -> str:
    """A param or metric value as a person reads it: 0.934, 1e-05, true, [1, 2]."""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else json_safe(value)
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


def printable(text: str) -> str:
    """User text made inert for a terminal: control characters (newlines, escape codes)
    are shown as escapes instead of acting."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return named.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def truncate(text: str, width: int) -> str:
    """Cut to at most `width` cells, ending in … when cut; one inert line."""
    return _cut(printable(text), width)[0]


def _cut(text: str, width: int) -> tuple[str, int]:
    """An inert text cut to `width` cells, and the cells it then takes."""
    if text.isascii():
        return (text, len(text)) if len(text) <= width else (text[: width - 1] + "…", width)
    if text_width(text) <= width:
        return text, text_width(text)
    out, used = [], 0
    for ch in text:
        cells = text_width(ch)
        if used + cells > width - 1:
            break
        out.append(ch)
        used += cells
    return "".join(out) + "…", used + 1


def cuts_cells(wide: bool = False) -> bool:
    """Whether long cells are cut: only on a terminal, and not with --wide. Piped output
    (a script, an assistant) always gets every cell whole."""
    return not wide and sys.stdout.isatty()


def render_table(headers: list[str], rows: list[list], *, max_widths: dict | None = None,
                 wide: bool = False) -> str:
    """Align `rows` under `headers`; cells are text, or (text, colour) pairs.

    On a terminal (unless `wide`), columns named in `max_widths` are cut to that many cells
    and the widest of them shrink further until the table fits; a note on stderr says so.
    Every column is always shown.
    """
    columns = []
    for i in range(len(headers)):
        cells = [cell if isinstance(cell, tuple) else (str(cell), None) for cell in (row[i] for row in rows)]
        columns.append(([text for text, _ in cells], [colour for _, colour in cells]))
    return render_columns(headers, columns, max_widths=max_widths, wide=wide)


def render_columns(headers: list[str], columns: list[tuple[list[str], list | None]], *,
                   max_widths: dict | None = None, wide: bool = False) -> str:
    """render_table for a table given column by column: each column its texts and their
    colours (None: none), all columns of one length.

    Built a column at a time so a listing of 10,000 rows costs a few passes in C per column:
    a column that is plain printable ASCII (nearly all) is measured with len() and padded
    with ljust(), and only the other columns go through printable() and text_width() cell
    by cell. Then each line is joined once and the whole table is one string.
    """
    measured = [_measured_column(texts) for texts, _ in columns]
    widths = [max([text_width(h), *cell_widths]) for h, (_, cell_widths, _) in zip(headers, measured)]
    if cuts_cells(wide):
        import shutil

        full = list(widths)
        for i, header in enumerate(headers):
            if header in (max_widths or {}):
                widths[i] = min(widths[i], max(max_widths[header], text_width(header)))
        room = shutil.get_terminal_size().columns - 2 * (len(headers) - 1)
        shrinkable = [i for i, h in enumerate(headers) if h in (max_widths or {})]
        while sum(widths) > room and shrinkable:
            widest = max(shrinkable, key=lambda i: widths[i])
            if widths[widest] <= 8:
                break
            widths[widest] -= 1
        if widths != full:
            warning_line("long cells cut to fit the terminal (…); --wide shows them whole")
    last = len(headers) - 1
    parts = [_padded(column, colours, widths[i], pad=i != last)
             for i, (column, (_, colours)) in enumerate(zip(measured, columns))]
    header = "  ".join(click.style(_padded(([h], [text_width(h)], False), None, widths[i], pad=i != last)[0], bold=True)
                       for i, h in enumerate(headers)).rstrip()
    return "\n".join([header, *["  ".join(line).rstrip() for line in zip(*parts)]])


def _measured_column(texts: list[str]) -> tuple[list[str], list[int], bool]:
    """The column's texts made inert, the cells each takes, and whether each takes as many
    cells as it has characters: one check for a column of printable ASCII."""
    joined = "".join(texts)
    if joined.isascii() and joined.isprintable():
        return texts, [len(text) for text in texts], True
    texts = [printable(text) for text in texts]
    return texts, [text_width(text) for text in texts], False


def _padded(column: tuple[list[str], list[int], bool], colours: list | None, width: int, *, pad: bool) -> list[str]:
    """One column's cells cut to `width` where longer, padded to it (unless the last
    column), and coloured."""
    texts, cell_widths, simple = column
    fits = max(cell_widths, default=0) <= width
    if fits and not pad:
        out = list(texts)
    elif fits and simple:
        out = [text.ljust(width) for text in texts]
    else:
        out = []
        for text, cells in zip(texts, cell_widths):
            if cells > width:
                text, cells = _cut(text, width)
            out.append(text + " " * (width - cells) if pad else text)
    if colours is None:
        return out
    styled: dict[tuple[str, str], str] = {}  # a listing has few distinct coloured cells: style each once
    for n, (text, colour) in enumerate(zip(out, colours)):
        if colour:
            key = (text, colour)
            if key not in styled:
                styled[key] = click.style(text, fg=colour)
            out[n] = styled[key]
    return out


def _status_cell(status: Status) -> tuple[str, str]:
    return status.value, STATUS_COLOURS[status]


_COLUMN_WIDTHS = {"name": 32, "task": 20, "model": 20, "metrics": 36, "params": 36, "outcome": 60,
                  "command": 40, "summary": 60, "failed_reason": 60}
_TIMES = ("created", "started", "completed", "updated", "heartbeat")
# Record fields holding plain text, shown as they are (status and times have their own cells).
_TEXTS = frozenset(f.name for f in schema.FIELDS if f.type in ("text", "uuid")) - {"status", *_TIMES}


def column_cell(exp: Experiment, column: str):
    """What one column shows for one experiment: text, or (text, colour)."""
    if column == "status":
        return _status_cell(exp.status)
    if column == "duration":
        return duration_text(exp.duration)
    if column in ("metrics", "params"):
        return pairs_text(getattr(exp, column))
    if column in _TIMES:
        return relative_time(fields.value(exp, column))
    found = fields.value(exp, column)
    return "" if found is None else value_text(found)


def column_cells(experiments: list[Experiment], column: str, *,
                 now: datetime | None = None) -> tuple[list[str], list | None]:
    """One column of a listing: what column_cell shows for each experiment, as texts and
    their colours (None when it has none); the common columns without a call per cell."""
    if column == "status":
        statuses = [exp.status for exp in experiments]
        return [status.value for status in statuses], [STATUS_COLOURS[status] for status in statuses]
    if column in _TEXTS:
        values = [getattr(exp, column) for exp in experiments]
    elif column == "outcome":
        values = [exp.failed_reason if exp.failed_reason and exp.status is Status.FAILED else exp.summary
                  for exp in experiments]
    elif column in ("metrics", "params"):
        return [_pairs(values) if values else "" for values in (getattr(exp, column) for exp in experiments)], None
    elif column in _TIMES[:-1]:
        now = now or datetime.now(timezone.utc)
        seen: dict[str | None, str] = {}  # one parse per distinct time
        texts = []
        for text in (getattr(exp, column) for exp in experiments):
            if text not in seen:
                seen[text] = relative_time(text, now=now)
            texts.append(seen[text])
        return texts, None
    else:
        return [column_cell(exp, column) for exp in experiments], None
    return [value if value.__class__ is str else "" if value is None else value_text(value) for value in values], None


def _pairs(values: dict) -> str:
    """pairs_text, with a finite float (nearly every metric) formatted in place."""
    return "  ".join([f"{k}={v:.6g}" if v.__class__ is float and v - v == 0 else f"{k}={value_text(v)}"
                      for k, v in values.items()])


def print_experiments(experiments: list[Experiment], *, total: int, empty: str,
                      columns: tuple[str, ...] = fields.DEFAULT_COLUMNS, wide: bool = False,
                      offset: int = 0) -> None:
    """The table `list` and `queue` print, and a note when the limit cut it."""
    if not experiments:
        click.echo(f"nothing at offset {offset}: {total} match in all" if offset and total else empty)
        return
    now = datetime.now(timezone.utc)
    headers = [column.upper() if "." not in column else column for column in columns]
    widths = {header: _COLUMN_WIDTHS.get(column, 24) for header, column in zip(headers, columns)}
    with collector_paused():
        table = render_columns(headers, [column_cells(experiments, column, now=now) for column in columns],
                               max_widths=widths, wide=wide)
    click.echo(table)
    if offset:
        shown = offset + len(experiments)
        more = f"; --offset {shown} for the next page" if shown < total else ""
        click.echo(f"showing {offset + 1}-{shown} of {total}{more}", err=True)
    elif total > len(experiments):
        click.echo(f"showing {len(experiments)} of {total}; --limit 0 shows all", err=True)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list, width: int = 40) -> str:
    """A terminal sparkline: values averaged into at most `width` buckets; gaps for NaN."""
    from .steps import all_finite

    size = max(1, math.ceil(len(values) / width))
    buckets = []
    for start in range(0, len(values), size):  # one bucket at a time: a long series is never copied whole
        part = values[start:start + size]
        if not all_finite(part):
            part = [v for v in part if isinstance(v, (int, float)) and math.isfinite(v)]
        buckets.append(sum(part) / len(part) if len(part) else None)
    real = [b for b in buckets if b is not None]
    if not real:
        return ""
    low, high = min(real), max(real)
    scale = (len(SPARKS) - 1) / (high - low) if high > low else 0
    return "".join(" " if b is None else SPARKS[round((b - low) * scale)] for b in buckets)


def _provenance_rows(exp: Experiment) -> list[tuple[str, str]]:
    found, rows = exp.provenance, []
    git = found.get("git") or {}
    if git.get("commit"):
        text = f"{git['commit'][:12]} on {git.get('branch') or '?'}"
        if git.get("dirty"):
            text += f", dirty: {git.get('diff_lines', '?')}-line diff in {git.get('diff_file', '?')}"
        rows.append(("git", text))
    if found.get("host"):
        text = f"{found['host']} · {found.get('os', '')} · {found.get('cpus', '?')} CPUs"
        gpus = found.get("gpus") or []
        if gpus:
            text += " · GPUs: " + ", ".join(f"{g['index']} {g['name']} ({g['memory_mib']} MiB)" for g in gpus)
        if found.get("cuda_visible_devices") is not None:
            text += f" · CUDA_VISIBLE_DEVICES={found['cuda_visible_devices']}"
        rows.append(("host", text))
    if found.get("python"):
        rows.append(("python", f"{found['python']} ({len(found.get('packages') or [])} packages)"))
    if found.get("cwd"):
        rows.append(("cwd", found["cwd"]))
    rows += _runner_rows(exp)
    return rows


def _runner_rows(exp: Experiment) -> list[tuple[str, str]]:
    """The attempt: the one that runs or ran, or, for a re-queued one, the next and why the last ended."""
    from .liveness import this_host

    runner, rows = exp.runner, []
    if exp.status is Status.QUEUED:
        if runner.get("attempt"):
            rows.append(("run", f"attempt {runner['attempt'] + 1} next · {runner.get('requeued') or 're-queued'}"))
        return rows
    if runner.get("pid"):
        parts = [f"attempt {runner.get('attempt', 1)}", f"pid {runner['pid']} on {runner.get('host')}"]
        if runner.get("gpus"):
            parts.append(f"GPUs {runner['gpus']}")
        if "exit_code" in runner:
            parts.insert(0, f"exit {runner['exit_code']}" + (f" (signal {runner['signal']})" if "signal" in runner else ""))
        if runner.get("dir"):
            host = runner.get("host")
            parts.append(f"files in {runner['dir']}" if host in (None, this_host()) else f"files in {host}:{runner['dir']}")
        rows.append(("run", " · ".join(parts)))
    if runner.get("cancelled_by"):
        rows.append(("cancelled by", runner["cancelled_by"]))
    rows += [("warning", warning) for warning in runner.get("warnings") or []]
    return rows


def log_tail(run_dir, lines: int = 5) -> list[tuple[str, str]]:
    """The last lines of a run's saved stderr and stdout."""
    rows = []
    for name in ("stderr.log", "stdout.log"):
        path = Path(run_dir) / name
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, path.stat().st_size - 8192))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        rows += [(name, line) for line in text.splitlines()[-lines:]]
    return rows


def print_experiment(exp: Experiment, *, steps: dict | None = None, run_dir=None,
                     output_tail: tuple[int, bytes] | None = None) -> None:
    """`show`: one experiment whole, one field a line; step metrics as sparklines; log tail."""
    click.echo(f"{exp.id}  {click.style(printable(exp.name), bold=True)}  {status_text(exp.status)}")
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
        if "attempt" in old:  # an attempt that ended before the experiment was queued again
            label, when = f"attempt {old['attempt']}", f"on {old.get('host') or '?'}, ended {relative_time(old.get('completed'))}"
        else:
            label, when = "earlier result", f"replaced {relative_time(old.get('replaced'))}"
        text = f"{old['status']} ({when}) {pairs_text(old.get('metrics') or {})}"
        rows.append((label, text.rstrip() + (f" · {reason}" if reason else "")))
    from .steps import summary

    for name, (_, values) in (steps or {}).items():
        stats = summary({name: ([], values)})[name]
        rows.append(("steps", f"{name:<12} {sparkline(values)}  {stats['points']} points, last "
                              f"{value_text(stats['last'])} (min {value_text(stats['min'])}, "
                              f"max {value_text(stats['max'])})"))
    rows += [("system", f"{k} = {value_text(v)}") for k, v in exp.system.items()]
    rows += [("files", f"{entry.get('kind', 'file')}  {entry.get('path')} ({entry.get('base')})  "
                       f"{size_text(entry.get('size'))}  sha256 {(entry.get('sha256') or '')[:12]}")
             for entry in exp.files]
    rows += _provenance_rows(exp)
    rows += [(key, value_text(value)) for key, value in exp.extra.items()]
    rows.append(("uuid", f"{exp.uuid}  rev {exp.rev}"))
    if run_dir is not None and Path(run_dir).is_dir():
        rows += log_tail(run_dir)
    elif output_tail:  # the run folder is on another machine: the tail that came with the heartbeats
        rows += [("output", line) for line in output_tail[1].decode("utf-8", "replace").splitlines()[-5:]]
    width = max(len(key) for key, _ in rows)
    previous = None
    for key, value in rows:
        for line in value.splitlines() or [""]:  # multi-line text (a summary, a reason) as lines
            label = "" if key == previous else key
            previous = key
            click.echo(f"  {click.style(label.ljust(width), bold=True)}  {printable(line)}")


def _when(text: str | None) -> str:
    return f"{text} ({relative_time(text)})" if text else ""


def print_comparison(comparison, *, show_all: bool, rows: bool = False, wide: bool = False) -> None:
    """`compare` (an ops.compare.Comparison): differing params first, best metric marked ★, deltas against the baseline.

    Few runs read best as columns side by side; many (`rows`) as one row each, so the table
    stays narrow whatever their number."""
    experiments: list[Experiment] = comparison.experiments
    differ, same = comparison.params_differ, comparison.params_same
    metrics = comparison.metrics

    def metric_cell(name, exp):
        metric = metrics[name]
        text = _cell(metric["values"].get(exp.id, _MISSING))
        if exp.id in metric["delta"]:
            text += f" ({metric['delta'][exp.id]:+.4g})"
        return (text + " ★", "green") if exp.id in metric["best"] else text

    arrows = {name: "↑" if metric["higher_is_better"] else "↓" for name, metric in metrics.items()}
    outcomes = [outcome_text(e) for e in experiments]
    if rows:
        headers = ["ID", "STATUS", "NAME", *differ, *(name for name in same if show_all),
                   *(f"{name} {arrows[name]}" for name in metrics), *(["OUTCOME"] if any(outcomes) else [])]
        table = [[exp.id, _status_cell(exp.status), exp.name,
                  *(_cell(differ[name].get(exp.id, _MISSING)) for name in differ),
                  *(value_text(value) for value in (same.values() if show_all else ())),
                  *(metric_cell(name, exp) for name in metrics), *([outcome] if any(outcomes) else [])]
                 for exp, outcome in zip(experiments, outcomes)]
        click.echo(render_table(headers, table, max_widths={"NAME": 32, "OUTCOME": 48}, wide=wide))
    else:
        table = [[key] + [getattr(e, key) or "" for e in experiments] for key in ("name", "task", "model", "machine")]
        table.insert(1, ["status"] + [_status_cell(e.status) for e in experiments])
        durations = [duration_text(e.duration) for e in experiments]
        if any(durations):
            table.append(["duration", *durations])
        for name, values in differ.items():
            table.append([f"≠ params.{name}"] + [_cell(values.get(e.id, _MISSING)) for e in experiments])
        if show_all:
            table += [[f"params.{name}"] + [value_text(value)] * len(experiments) for name, value in same.items()]
        for name in metrics:
            table.append([f"metrics.{name} {arrows[name]}", *(metric_cell(name, e) for e in experiments)])
        if any(outcomes):
            table.append(["outcome", *outcomes])
        headers = ["", *(exp.id for exp in experiments)]
        click.echo(render_table(headers, table, max_widths={exp.id: 40 for exp in experiments}, wide=wide))
    notes = [f"★ best (↑ higher, ↓ lower is better; --lower NAME to flip); deltas against {comparison.baseline}"
             if metrics else "no metrics recorded on these runs yet"]
    if same and not show_all:
        notes.append(f"{_count(len(same), 'identical param')} hidden; --all shows them")
    click.echo("; ".join(notes), err=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def print_check(found) -> None:
    """`check`: the answer in one line, each matching run (with the params the question left
    open), then the nearest other runs and how they differ."""
    click.echo(click.style(found.answer(), bold=True))
    asked = found.asked["params"]
    for exp in found.matches:
        open_params = {k: v for k, v in exp.params.items() if k not in asked or k == found.replicate}
        click.echo(f"  {result_line(exp)}" + (f"  [{printable(pairs_text(open_params))}]" if open_params else ""))
    if found.neighbours:
        click.echo(click.style("nearest", bold=True) + " (same task and model, fewest differing params):")
        for differs, exp in found.neighbours:
            changes = ", ".join(
                f"{name} {_cell(sides.get('theirs', _MISSING))} (yours {_cell(sides.get('yours', _MISSING))})"
                for name, sides in differs.items())
            click.echo(f"  {result_line(exp)}")
            click.echo(f"      differs: {changes or 'nothing'}")


def result_line(exp: Experiment) -> str:
    """One experiment in one line: ID, status, name and what came out."""
    detail = pairs_text(exp.metrics) if exp.status is Status.SUCCESS else outcome_text(exp)
    return f"{exp.id}  {status_text(exp.status)}  {printable(exp.name)}" + (f"  · {printable(detail)}" if detail else "")


_MISSING = object()


def _cell(value) -> str:
    return "—" if value is _MISSING else value_text(value)


def print_doctor(report) -> None:
    """`doctor` (an ops.doctor.DoctorReport): where the ledger is, what it holds, each problem
    and what was done."""
    click.echo(f"store: {report.store} (from {report.source})")
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(report.by_status.items()))
    click.echo(report.holds + (f": {counts}" if counts else ""))
    for problem in report.problems:
        mark = "fixed" if problem["fixed"] else problem["severity"]
        colour = "green" if problem["fixed"] else ("red" if problem["severity"] == "error" else "yellow")
        click.echo(click.style(f"{mark}: ", fg=colour) + problem["message"])
    if report.quarantine:
        click.echo(f"unreadable lines moved to {report.quarantine}")
    unfixed = [p for p in report.problems if p["fixable"] and not p["fixed"]]
    if unfixed:
        click.echo("`exp doctor --fix` repairs what is marked fixable, losing nothing")
    if not report.problems:
        click.echo(click.style("ok: ", fg="green") + "no problems found")
