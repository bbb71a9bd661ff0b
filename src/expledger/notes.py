"""`exp notes`: research notes in Markdown, written from the ledger, one section per task.

What was tried, the best configurations (mean ± std over seeds, computed by export.summarize,
the same code as `exp export`), the gap to the runner-up, what each varied parameter did,
every failure grouped by reason, and what is running or queued. Every number is followed by
the IDs of the experiments it comes from, so a sentence in a paper can be traced back.
Rankings use SUCCESS runs only: a failed run's last logged values are not a result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from . import export
from .compare import lower_is_better
from .configs import REPLICATE, failure_kind, group_configs, id_list, primary_metric, rank_key, varied_params
from .models import Experiment, Status, canonical, json_safe, now_iso, parse_time
from .output import printable

_MD_SPECIALS = set("\\`*_[]<>#|~!{}")


def md(text) -> str:
    """User text made inert in Markdown: control characters shown as escapes, markup escaped."""
    text = printable(str(text))
    return "".join("\\" + ch if ch in _MD_SPECIALS else ch for ch in text)


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def params_text(params: dict) -> str:
    return ", ".join(f"{name}={_value(value)}" for name, value in params.items()) or "(no params)"


@dataclass
class TaskNotes:
    """The notes of one task, as data; `to_json()` is `exp notes --json`'s element."""

    task: str | None
    experiments: list[Experiment]
    metric: str | None
    higher_is_better: bool
    table: dict  # export.summarize of the task's SUCCESS runs, rows ranked best first
    varied: dict[str, list]
    configurations: list[dict]
    gap: dict | None
    effects: dict[str, list[dict]]
    failures: list[dict]
    active: list[Experiment]

    def to_json(self) -> dict:
        counts: dict[str, int] = {}
        for exp in self.experiments:
            counts[exp.status.value] = counts.get(exp.status.value, 0) + 1
        return json_safe({
            "task": self.task, "counts": counts, "ids": [e.id for e in self.experiments],
            "metric": self.metric, "higher_is_better": self.higher_is_better,
            "tried": {"varied": self.varied, "configurations": self.configurations},
            "best": self.table["rows"], "metrics": self.table["metrics"], "gap": self.gap,
            "effects": self.effects, "failures": self.failures,
            "active": [{"id": e.id, "status": e.status.value, "name": e.name, "params": e.params,
                        "machine": e.machine, "created": e.created, "started": e.started} for e in self.active],
        })


@dataclass
class Notes:
    """Research notes for several tasks; `to_markdown()` is the document, `to_json()` the data."""

    tasks: list[TaskNotes]
    generated: str
    since: str | None = None
    replicate: str = REPLICATE
    source: str | None = None
    lower: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict:
        return {"generated": self.generated, "since": self.since, "replicate": self.replicate,
                "tasks": [task.to_json() for task in self.tasks]}

    def to_markdown(self) -> str:
        lines = ["# Research notes", ""]
        scope = f" since {self.since}" if self.since else ""
        lines += [f"Written by `exp notes` on {self.generated[:16].replace('T', ' ')} UTC from the ledger{scope}. "
                  "Each number is followed by the experiments it comes from; rankings use successful runs only.", ""]
        if not self.tasks:
            lines.append("No experiments match.")
        for task in self.tasks:
            lines += _task_markdown(task, self.replicate)
        return "\n".join(lines).rstrip() + "\n"


def build(experiments: list[Experiment], *, queued_order: list[Experiment] | None = None, by: str | None = None,
          lower: frozenset[str] = frozenset(), replicate: str = REPLICATE, since: datetime | None = None,
          now: datetime | None = None) -> Notes:
    """Notes over `experiments` (any statuses), one section per task in order of first appearance.

    `since` keeps experiments created, started, finished or changed at or after that moment.
    `queued_order` (the store's queue) orders the queued ones as workers take them.
    """
    if since is not None:
        experiments = [exp for exp in experiments if _changed_since(exp, since)]
    by_task: dict[str | None, list[Experiment]] = {}
    for exp in sorted(experiments, key=_id_order):
        by_task.setdefault(exp.task, []).append(exp)
    rank = {exp.uuid: i for i, exp in enumerate(queued_order or [])}
    tasks = [_task_notes(task, runs, by=by, lower=lower, replicate=replicate, queue_rank=rank)
             for task, runs in by_task.items()]
    return Notes(tasks, generated=now_iso(now), since=now_iso(since) if since else None, replicate=replicate,
                 lower=lower)


def _id_order(exp: Experiment) -> tuple:
    from .models import id_number

    number = id_number(exp.id)
    return (number is None, number or 0, exp.id)


def _changed_since(exp: Experiment, since: datetime) -> bool:
    moments = [parse_time(t) for t in (exp.created, exp.started, exp.completed, exp.updated)]
    return any(moment is not None and moment >= since for moment in moments)


def _task_notes(task, runs: list[Experiment], *, by, lower, replicate, queue_rank) -> TaskNotes:
    successes = [exp for exp in runs if exp.status is Status.SUCCESS]
    metric = primary_metric(successes, by)
    table = export.summarize(successes, replicate=replicate, lower=lower) if successes else \
        {"columns": [], "metrics": [], "rows": [], "best": {}, "replicate": replicate}
    if metric and metric in table["metrics"]:
        key = rank_key(metric, lower)
        table["rows"].sort(key=lambda row: key(row["metrics"][metric]["mean"]))
    configs = group_configs(runs, replicate)
    configurations = [{
        "model": c.model, "params": c.params, "runs": len(c.runs), "seeds": c.seeds(replicate),
        "statuses": _counts(c.runs), "ids": [e.id for e in c.runs]} for c in configs]
    failures = _failures(runs, replicate)
    active = [e for e in runs if e.status is Status.RUNNING] + sorted(
        (e for e in runs if e.status is Status.QUEUED), key=lambda e: queue_rank.get(e.uuid, len(queue_rank)))
    return TaskNotes(
        task=task, experiments=runs, metric=metric,
        higher_is_better=not lower_is_better(metric, lower) if metric else True,
        table=table, varied=varied_params(configs), configurations=configurations,
        gap=_gap(table, metric), effects=_effects(table, metric, lower), failures=failures, active=active)


def _counts(runs: list[Experiment]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for exp in runs:
        counts[exp.status.value] = counts.get(exp.status.value, 0) + 1
    return counts


def _gap(table: dict, metric: str | None) -> dict | None:
    """Best against runner-up on the ranking metric, and whether the difference is larger than
    the seeds' spread (the sum of the two standard deviations; unknown with a single seed)."""
    rows = [row for row in table["rows"] if metric and row["metrics"].get(metric, {}).get("mean") is not None]
    if len(rows) < 2:
        return None
    best, second = rows[0]["metrics"][metric], rows[1]["metrics"][metric]
    difference = abs(best["mean"] - second["mean"])
    known = best["std"] is not None and second["std"] is not None
    spread = (best["std"] + second["std"]) if known else None
    return {"metric": metric, "best": rows[0]["ids"], "runner_up": rows[1]["ids"], "difference": difference,
            "spread": spread, "exceeds_spread": (difference > spread) if known else None}


def _effects(table: dict, metric: str | None, lower) -> dict[str, list[dict]]:
    """Per varied label, the best result for each of its values: with the other labels held at
    the best configuration where such runs exist, else the best over the rest."""
    rows = [row for row in table["rows"] if metric and row["metrics"].get(metric, {}).get("mean") is not None]
    if not rows or len(table["rows"]) < 2:
        return {}
    best = rows[0]
    key = rank_key(metric, lower)
    effects = {}
    for label in table["columns"]:
        if label == "task":
            continue
        by_value: dict[str, list[dict]] = {}
        for row in rows:
            by_value.setdefault(json.dumps(canonical(row["labels"][label]), sort_keys=True), []).append(row)
        if len(by_value) < 2:
            continue
        entries = []
        for candidates in by_value.values():
            held = [row for row in candidates
                    if all(canonical(row["labels"][other]) == canonical(best["labels"][other])
                           for other in table["columns"] if other != label)]
            pick = min(held or candidates, key=lambda row: key(row["metrics"][metric]["mean"]))
            stat = pick["metrics"][metric]
            entries.append({"value": pick["labels"][label], "mean": stat["mean"], "std": stat["std"], "n": stat["n"],
                            "ids": pick["ids"], "others_at_best": bool(held), "labels": pick["labels"]})
        entries.sort(key=lambda entry: key(entry["mean"]))
        effects[label] = entries
    return effects


def _failures(runs: list[Experiment], replicate: str) -> list[dict]:
    groups: dict[str, dict] = {}
    for exp in runs:
        if exp.status is not Status.FAILED:
            continue
        kind = failure_kind(exp.failed_reason)
        group = groups.setdefault(kind.label, {"reason": kind.label, "kind": kind.kind, "runs": []})
        group["runs"].append({"id": exp.id, "model": exp.model, "params": exp.params, "reason": exp.failed_reason})
    return sorted(groups.values(), key=lambda group: -len(group["runs"]))


def _stat_text(stat: dict, ids: list[str]) -> str:
    return f"{export.cell_text(stat, None)} (n={stat['n']}; {id_list(ids)})"


def _labels_text(labels: dict) -> str:
    parts = [f"{export._label(tuple(name.split('.')))}={_value(value)}" for name, value in labels.items()
             if name != "task"]
    return md(", ".join(parts)) if parts else "all runs"


def _task_markdown(notes: TaskNotes, replicate: str) -> list[str]:
    lines = [f"## Task: {md(notes.task) if notes.task else '(no task)'}", ""]
    counts = ", ".join(f"{n} {status.lower()}" for status, n in _counts(notes.experiments).items())
    lines.append(f"{len(notes.experiments)} experiments ({counts}): {id_list([e.id for e in notes.experiments])}.")
    if notes.metric:
        direction = "higher" if notes.higher_is_better else "lower"
        lines.append(f"Ranked by `{md(notes.metric)}` ({direction} is better).")
    lines += ["", "### What was tried", ""]
    if notes.varied:
        for name, values in notes.varied.items():
            lines.append(f"- {md(name)}: {md(', '.join(_value(v) for v in values))}")
    else:
        lines.append("- One configuration.")
    lines += ["", f"| model | configuration | runs | {md(replicate)}s | outcomes | IDs |",
              "| --- | --- | ---: | --- | --- | --- |"]
    for config in notes.configurations:
        outcomes = ", ".join(f"{n} {s.lower()}" for s, n in config["statuses"].items())
        lines.append(f"| {md(config['model'] or '–')} | {md(params_text(config['params']))} | {config['runs']} | "
                     f"{md(', '.join(_value(s) for s in config['seeds'])) or '–'} | {outcomes} | {id_list(config['ids'])} |")
    lines += ["", "### Best configurations", ""]
    rows = notes.table["rows"]
    if not rows:
        lines.append("No successful run yet.")
    else:
        metrics = notes.table["metrics"]
        lines += ["| rank | configuration | " + " | ".join(md(m) for m in metrics) + " | IDs |",
                  "| ---: | --- | " + " | ".join("---:" for _ in metrics) + " | --- |"]
        for rank, row in enumerate(rows[:10], 1):
            cells = [export.cell_text(row["metrics"][m], None, runs=row["n"]) for m in metrics]
            lines.append(f"| {rank} | {_labels_text(row['labels'])} | " + " | ".join(cells) + f" | {id_list(row['ids'])} |")
        if len(rows) > 10:
            lines.append(f"\n{len(rows) - 10} more configurations: `exp export --where 'task = ...'` lists them all.")
        if notes.metric and notes.metric in metrics:
            best = rows[0]
            lines += ["", f"Best: {_labels_text(best['labels'])}, {md(notes.metric)} "
                      f"{_stat_text(best['metrics'][notes.metric], best['ids'])}."]
            if notes.gap:
                gap = notes.gap
                second = rows[1]
                verdict = ("larger than the seeds' spread (sum of the two standard deviations, "
                           f"{gap['spread']:.3g})" if gap["exceeds_spread"] else
                           f"within the seeds' spread ({gap['spread']:.3g})" if gap["exceeds_spread"] is False
                           else "spread unknown (a single run on one side)")
                lines.append(f"Runner-up: {_labels_text(second['labels'])}, "
                             f"{_stat_text(second['metrics'][notes.metric], second['ids'])}; the gap of "
                             f"{gap['difference']:.3g} ({id_list(gap['best'] + gap['runner_up'])}) is {verdict}.")
    if notes.effects:
        lines += ["", "### What each varied parameter did", ""]
        for label, entries in notes.effects.items():
            name = export._label(tuple(label.split(".")))
            lines += [f"**{md(name)}** (best {md(notes.metric)} for each value):", ""]
            for entry in entries:
                held = "others at the best configuration" if entry["others_at_best"] else \
                    f"no run with the others at best; at {_labels_text(entry['labels'])}"
                stat = {"mean": entry["mean"], "std": entry["std"], "n": entry["n"]}
                lines.append(f"- {md(name)}={md(_value(entry['value']))}: {_stat_text(stat, entry['ids'])}, {held}")
            lines.append("")
    if notes.failures:
        lines += ["", "### Failures: do not repeat these", ""]
        for group in notes.failures:
            lines += [f"**{md(group['reason'])}** ({len(group['runs'])}: {id_list([r['id'] for r in group['runs']])})", ""]
            for run in group["runs"]:
                lines.append(f"- {run['id']}: {md(run['model'] or '')} {md(params_text(run['params']))}: "
                             f"{md(run['reason'] or 'no reason recorded')}")
            lines.append("")
    if notes.active:
        lines += ["", "### Running and queued", ""]
        for exp in notes.active:
            when = f"since {exp.started[:16].replace('T', ' ')}" if exp.status is Status.RUNNING and exp.started \
                else f"queued {(exp.created or '')[:16].replace('T', ' ')}"
            where = f" on {md(exp.machine)}" if exp.machine else ""
            lines.append(f"- {exp.id} {exp.status.value}{where}: {md(exp.name)} "
                         f"({md(params_text(exp.params))}), {when}")
    lines.append("")
    return lines
