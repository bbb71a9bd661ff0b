"""`exp next`: what to run next, each suggestion with its reason, ready to queue.

In this order: queued experiments as workers will take them; missing seeds of configurations
that have fewer seeds than the best one; untried neighbours of the best configuration (one
parameter moved to the adjacent value some run of the task already used). It never invents a
value no run used, and never suggests a configuration that a failure still rules out (see
configs.still_fails: out of memory at a smaller size, the same error on the same config).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .compare import is_number
from .configs import (
    REPLICATE,
    config_key,
    failure_kind,
    group_configs,
    id_list,
    primary_metric,
    rank_key,
    still_fails,
    varied_params,
)
from .models import Experiment, Status, canonical, fingerprint, json_safe

# A configuration that exists in one of these states is not suggested again.
_TAKEN = (Status.QUEUED, Status.RUNNING, Status.SUCCESS)


@dataclass
class Suggestion:
    """One experiment to run next; `queued` ones already exist, the others can be added."""

    kind: str  # queued | seeds | neighbour
    task: str | None
    model: str | None
    params: dict
    reason: str
    sources: list[str]
    name: str
    command: str | None = None
    workdir: str | None = None
    id: str | None = None  # the queued experiment, or the one `--queue` added

    def to_json(self) -> dict:
        return json_safe({"kind": self.kind, "id": self.id, "task": self.task, "model": self.model,
                          "params": self.params, "name": self.name, "command": self.command, "reason": self.reason,
                          "sources": self.sources})


@dataclass
class Plan:
    """The suggestions, best first, and the configurations left out because a failure applies."""

    suggestions: list[Suggestion]
    ruled_out: list[dict] = field(default_factory=list)
    metric: str | None = None

    def to_json(self) -> dict:
        return {"metric": self.metric, "suggestions": [s.to_json() for s in self.suggestions],
                "ruled_out": json_safe(self.ruled_out)}


def plan(experiments: list[Experiment], queued: list[Experiment], *, by: str | None = None,
         lower: frozenset[str] = frozenset(), replicate: str = REPLICATE, limit: int | None = 10) -> Plan:
    """Suggestions over `experiments` (one or more tasks); `queued` is the store's queue order."""
    suggestions = [Suggestion("queued", e.task, e.model, e.params, _queued_reason(e), [e.id], e.name,
                              e.command, e.workdir, id=e.id) for e in queued]
    ruled_out: list[dict] = []
    metric = None
    tasks: dict[str | None, list[Experiment]] = {}
    for exp in experiments:
        tasks.setdefault(exp.task, []).append(exp)
    for runs in tasks.values():
        task_metric = primary_metric(runs, by)
        metric = metric or task_metric
        if task_metric is None:
            continue
        found, dropped = _task_plan(runs, task_metric, lower, replicate)
        suggestions += found
        ruled_out += dropped
    return Plan(suggestions[:limit] if limit else suggestions, ruled_out, metric)


def _queued_reason(exp: Experiment) -> str:
    return f"queued since {(exp.created or '?')[:16].replace('T', ' ')}, priority {exp.priority}"


def _task_plan(runs: list[Experiment], metric: str, lower, replicate) -> tuple[list[Suggestion], list[dict]]:
    successes = group_configs([e for e in runs if e.status is Status.SUCCESS], replicate)
    key = rank_key(metric, lower)
    ranked = sorted((c for c in successes if c.mean(metric) is not None), key=lambda c: key(c.mean(metric)))
    if not ranked:
        return [], []
    best = ranked[0]
    taken = {fingerprint(e.task, e.model, e.params) for e in runs if e.status in _TAKEN}
    taken_configs = {config_key(e.task, e.model, e.params, replicate) for e in runs if e.status in _TAKEN}
    succeeded = {config_key(e.task, e.model, e.params, replicate) for e in runs if e.status is Status.SUCCESS}
    # An error on a configuration that also succeeded (another seed) is not one that still applies.
    failures = [(e, kind) for e in runs if e.status is Status.FAILED
                for kind in [failure_kind(e.failed_reason)]
                if not (kind.kind == "error" and config_key(e.task, e.model, e.params, replicate) in succeeded)]
    out: list[Suggestion] = []
    ruled_out: list[dict] = []

    def offer(suggestion: Suggestion) -> None:
        blocker = next((f for f, kind in failures if f.model == suggestion.model
                        and still_fails(suggestion.params, f, kind, replicate)), None)
        if blocker is not None:
            ruled_out.append({"task": suggestion.task, "model": suggestion.model, "params": suggestion.params,
                              "because": blocker.id, "reason": blocker.failed_reason})
        elif fingerprint(suggestion.task, suggestion.model, suggestion.params) not in taken:
            taken.add(fingerprint(suggestion.task, suggestion.model, suggestion.params))
            out.append(suggestion)

    target = max((c for c in ranked), key=lambda c: len(c.seeds(replicate)))
    target_seeds = best.seeds(replicate) if len(best.seeds(replicate)) >= len(target.seeds(replicate)) \
        else target.seeds(replicate)
    for config in ranked:
        have = {json.dumps(canonical(s)) for s in config.seeds(replicate)}
        for seed in target_seeds:
            if json.dumps(canonical(seed)) in have:
                continue
            source = config.runs[0]
            params = {**source.params, replicate: seed}
            reason = (f"{id_list([e.id for e in config.runs])} ran {replicate} "
                      f"{', '.join(_text(s) for s in config.seeds(replicate))} of this configuration; "
                      f"{'the best one' if target is best else 'the most repeated one'} "
                      f"({id_list([e.id for e in target.runs])}) ran {', '.join(_text(s) for s in target_seeds)}")
            offer(_derived("seeds", source, params, reason, [e.id for e in config.runs + target.runs], replicate))
    first_seed = {replicate: best.seeds(replicate)[0]} if best.seeds(replicate) else {}
    all_configs = group_configs(runs, replicate)
    for name, values in varied_params(all_configs).items():
        if name not in best.params:
            continue
        here = next(i for i, v in enumerate(values) if canonical(v) == canonical(best.params[name]))
        numeric = all(is_number(v) for v in values)
        around = [i for i in (here - 1, here + 1) if 0 <= i < len(values)] if numeric else \
            [i for i in range(len(values)) if i != here]
        for index in around:
            value = values[index]
            params = {**best.params, name: value, **first_seed}
            if config_key(best.task, best.model, params, replicate) in taken_configs:
                continue
            users = [e.id for c in all_configs if canonical(c.params.get(name)) == canonical(value) for e in c.runs]
            reason = (f"next to the best configuration ({id_list([e.id for e in best.runs])}, {metric} "
                      f"{best.mean(metric):.4g}): {name} {_text(best.params[name])} → {_text(value)}, "
                      f"a value {id_list(users)} used")
            offer(_derived("neighbour", best.runs[0], params, reason, [e.id for e in best.runs] + users, replicate))
    return out, ruled_out


def _derived(kind: str, source: Experiment, params: dict, reason: str, sources: list[str],
             replicate: str) -> Suggestion:
    changed = {k: v for k, v in params.items() if canonical(source.params.get(k)) != canonical(v)}
    command = adapt_command(source.command, source.params, changed)
    if source.command and command is None:
        reason += f"; its command does not show {', '.join(changed)}, so it has none (run it with exp run --id)"
    label = ", ".join(f"{k}={_text(v)}" for k, v in changed.items())
    return Suggestion(kind, source.task, source.model, params, reason, list(dict.fromkeys(sources)),
                      f"{source.name} ({label})", command, source.workdir)


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def adapt_command(command: str | None, old: dict, changed: dict) -> str | None:
    """`command` with each changed param's value replaced where it shows as `--name V`,
    `--name=V` or `name=V` (dashes or underscores); None when a changed param does not show."""
    if not command:
        return None
    for name, value in changed.items():
        if name not in old:
            return None
        spellings = {re.escape(name), re.escape(name.replace("_", "-")), re.escape(name.replace("-", "_"))}
        names = "|".join(sorted(spellings))
        forms = sorted({_text(old[name]), str(old[name]), json.dumps(old[name])}, key=len, reverse=True)
        olds = "|".join(re.escape(form) for form in forms)
        pattern = re.compile(rf"((?:^|\s)(?:--?(?:{names})[ =]|(?:{names})=))(?:{olds})(?=\s|$)")
        new_command, count = pattern.subn(lambda m: m.group(1) + _text(value), command)
        if count == 0:
            return None
        command = new_command
    return command
