"""Paper-ready tables: experiments grouped into configs, each metric as mean ± std over runs.

Runs that differ only in the replicate axis (`params.seed` by default) form one group; with
`group_by` the groups are exactly those fields. Every metric column gives mean ± sample
standard deviation (n − 1) and the best mean per column among rows of the same task is marked
(bold); records without the exported metrics are left out, and said so. Renderers:
Markdown, LaTeX (booktabs, special characters escaped), CSV and JSON. User text is inert in
each: control characters shown as escapes, Markdown and LaTeX syntax escaped, and a CSV cell
that a spreadsheet would run as a formula (`=…`, `+…`, `@…`) starts with a quote.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics

from .compare import is_number, lower_is_better
from .models import Experiment, canonical
from .output import printable


def _get(record: dict, path: tuple):
    value = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _label(path: tuple) -> str:
    return path[-1] if path[0] in ("params", "metrics") else ".".join(path)


def summarize(experiments: list[Experiment], *, group_by: list[tuple] | None = None,
              replicate: str = "seed", metrics: list[str] | None = None,
              lower: frozenset[str] = frozenset()) -> dict:
    """Group experiments and aggregate each metric; the data every format renders.

    Records holding none of the exported metrics are left out (counted in `skipped`). The
    best mean is found among rows of one task only: tasks are never ranked against each
    other. Repeated replicate values in a group (seeds 0, 1, 1, 2) are named in `warnings`.
    """
    all_records = [exp.to_dict() for exp in experiments]
    names = metrics or list(dict.fromkeys(
        name for record in all_records for name, value in record["metrics"].items() if is_number(value)))
    records, skipped = [], []
    for record in all_records:
        if any(is_number(record["metrics"].get(name)) for name in names):
            records.append(record)
        else:
            skipped.append(record["id"])
    if group_by is None:
        group_by = _varying_keys(records, replicate)
    groups: dict[str, dict] = {}
    for record in records:
        labels = {".".join(path): _get(record, path) for path in group_by}
        key = json.dumps(canonical(labels), sort_keys=True, ensure_ascii=False)
        groups.setdefault(key, {"labels": labels, "runs": []})["runs"].append(record)
    rows, warnings = [], []
    for group in groups.values():
        stats = {}
        for name in names:
            values = [r["metrics"][name] for r in group["runs"] if is_number(r["metrics"].get(name))]
            stats[name] = {
                "mean": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else None,
                "n": len(values),
            }
        tasks = {r["task"] for r in group["runs"]}
        rows.append({"labels": group["labels"], "task": tasks.pop() if len(tasks) == 1 else None,
                     "n": len(group["runs"]), "ids": [r["id"] for r in group["runs"]], "metrics": stats, "best": []})
        warnings += _repeated(group, replicate)
    best_by_task = _mark_best(rows, names, lower)
    return {"columns": [".".join(p) for p in group_by], "metrics": names, "rows": rows,
            "best": next(iter(best_by_task.values())) if len(best_by_task) == 1 else {},
            "best_by_task": best_by_task, "replicate": replicate, "skipped": skipped, "warnings": warnings}


def _mark_best(rows: list[dict], names: list[str], lower: frozenset[str]) -> dict:
    """Mark each row's best metrics within its task (rows mixing tasks compete with none);
    return {task: {metric: best mean}}."""
    by_task: dict = {}
    for row in rows:
        if row["task"] is not None or len({r["task"] for r in rows}) == 1:
            by_task.setdefault(row["task"], []).append(row)
    out: dict = {}
    for task, members in by_task.items():
        for name in names:
            means = [row["metrics"][name]["mean"] for row in members if row["metrics"][name]["mean"] is not None]
            if not means:
                continue
            target = (min if lower_is_better(name, lower) else max)(means)
            out.setdefault(task if task is not None else "", {})[name] = target
            if len(members) > 1:
                for row in members:
                    if row["metrics"][name]["mean"] == target:
                        row["best"].append(name)
    return out


def _repeated(group: dict, replicate: str) -> list[str]:
    """A warning per replicate value that occurs more than once in a group."""
    seen: dict = {}
    for record in group["runs"]:
        if replicate in record["params"]:
            key = json.dumps(canonical(record["params"][replicate]), ensure_ascii=False)
            seen.setdefault(key, []).append(record["id"])
    return [f"{replicate}={value} occurs {len(ids)} times in one group ({', '.join(ids)}): "
            f"n counts runs, not distinct {replicate}s" for value, ids in seen.items() if len(ids) > 1]


def _varying_keys(records: list[dict], replicate: str) -> list[tuple]:
    """Default grouping: task and model when they vary (tasks are never pooled), then every
    param that varies, but the replicate."""
    keys = [("task",), ("model",)] + [("params", name) for name in dict.fromkeys(
        name for record in records for name in record["params"]) if name != replicate]
    varying = [path for path in keys
               if len({json.dumps(canonical(_get(r, path)), sort_keys=True) for r in records}) > 1]
    return varying or [("task",)]


def _number(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.5g}"


def _decimals(std: float | None, precision: int | None) -> int | None:
    """Show the mean to the precision of its spread: two significant digits of the std."""
    if precision is not None:
        return precision
    if not std:
        return None
    return min(6, max(0, 1 - math.floor(math.log10(abs(std)))))


def cell_text(stat: dict, precision: int | None, plus_minus: str = " ± ", missing: str = "–",
              runs: int | None = None) -> str:
    """mean ± std, and (n=k) when only k of the group's `runs` logged this metric."""
    if stat["mean"] is None:
        return missing
    decimals = _decimals(stat["std"], precision)
    text = _number(stat["mean"], decimals)
    if stat["std"] is not None:
        text += plus_minus + _number(stat["std"], decimals)
    if runs is not None and stat["n"] != runs:
        text += f" (n={stat['n']})"
    return text


def _label_text(value, missing: str = "–") -> str:
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|#]|(?<!\w)_|_(?!\w))")


def markdown_escape(text: str) -> str:
    """Text for a Markdown table cell: inert, and no `|`, emphasis, code, link or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", printable(text))


def to_markdown(table: dict, *, precision: int | None = None) -> str:
    header = [markdown_escape(text) for text in
              [_label(tuple(c.split("."))) for c in table["columns"]] + table["metrics"]] + ["n"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([" --- "] * len(table["columns"]) + [" ---: "] * (len(table["metrics"]) + 1)) + "|"]
    for row in table["rows"]:
        cells = [markdown_escape(_label_text(v)) for v in row["labels"].values()]
        for name in table["metrics"]:
            stat = row["metrics"][name]
            text = cell_text(stat, precision, runs=row["n"])
            cells.append(f"**{text}**" if name in row["best"] else text)
        lines.append("| " + " | ".join(cells + [str(row["n"])]) + " |")
    return "\n".join(lines)


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Text for a LaTeX cell: inert (control characters as escapes), every special escaped."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in printable(text))


def to_latex(table: dict, *, precision: int | None = None) -> str:
    labels = [latex_escape(_label(tuple(c.split(".")))) for c in table["columns"]]
    spec = "l" * len(labels) + "r" * (len(table["metrics"]) + 1)
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule",
             " & ".join(labels + [latex_escape(m) for m in table["metrics"]] + [r"$n$"]) + r" \\", r"\midrule"]
    for row in table["rows"]:
        cells = [latex_escape(_label_text(v, missing="--")) for v in row["labels"].values()]
        for name in table["metrics"]:
            stat = row["metrics"][name]
            text = cell_text(stat, precision, plus_minus=r" $\pm$ ", missing="--", runs=row["n"])
            cells.append(r"\textbf{" + text + "}" if name in row["best"] else text)
        lines.append(" & ".join(cells + [str(row["n"])]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_csv(table: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = [csv_cell(c) for c in table["columns"]] + ["n"]
    for name in map(csv_cell, table["metrics"]):
        header += [f"{name}_mean", f"{name}_std", f"{name}_n"]
    writer.writerow(header)
    for row in table["rows"]:
        cells = [csv_cell(_label_text(v)) for v in row["labels"].values()] + [row["n"]]
        for name in table["metrics"]:
            stat = row["metrics"][name]
            cells += ["" if stat["mean"] is None else repr(stat["mean"]),
                      "" if stat["std"] is None else repr(stat["std"]), stat["n"]]
        writer.writerow(cells)
    return out.getvalue().rstrip("\n")


def csv_cell(text: str) -> str:
    """User text for a CSV cell: inert, and never a formula a spreadsheet would run."""
    text = printable(text)
    if text[:1] in ("=", "+", "-", "@") and not is_number_text(text):
        return "'" + text
    return text


def is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render(table: dict, fmt: str, *, precision: int | None = None) -> str:
    if fmt == "md":
        return to_markdown(table, precision=precision)
    if fmt == "latex":
        return to_latex(table, precision=precision)
    if fmt == "csv":
        return to_csv(table)
    return json.dumps(table, ensure_ascii=False)
