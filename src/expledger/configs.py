"""Configurations of a task and why runs failed: what `exp notes` and `exp next` reason about.

A configuration is task + model + params without the replicate param (`seed`): runs of one
configuration that differ only in the seed are repeats. Failures are grouped by the kind of
their reason (the same exception type, out of memory at any size) so a reason that recurs
reads as one lesson, and so `exp next` knows which failures still apply to a new config.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field

from .compare import is_number, lower_is_better
from .models import Experiment, Status, canonical

REPLICATE = "seed"
OOM = re.compile(r"out of memory|OutOfMemory|\bOOM\b|MemoryError|Cannot allocate memory|bad_alloc"
                 r"|RESOURCE_EXHAUSTED|CUBLAS_STATUS_ALLOC_FAILED", re.IGNORECASE)
_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Failure|Warning))\b")
_SIGNAL = re.compile(r"^killed by signal \d+(?: \(\w+\))?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def config_params(params: dict, replicate: str = REPLICATE) -> dict:
    """The params that define a configuration: all but the replicate."""
    return {name: value for name, value in params.items() if name != replicate}


def config_key(task, model, params: dict, replicate: str = REPLICATE) -> str:
    """One text per configuration, whatever the key order or number spelling."""
    return json.dumps([task, model, canonical(config_params(params, replicate))], sort_keys=True,
                      ensure_ascii=False)


@dataclass
class Config:
    """The runs of one configuration, in ID order."""

    task: str | None
    model: str | None
    params: dict
    runs: list[Experiment] = field(default_factory=list)

    def seeds(self, replicate: str = REPLICATE) -> list:
        """The replicate values its runs used, each once, in order."""
        seen: dict[str, object] = {}
        for exp in self.runs:
            if replicate in exp.params:
                seen.setdefault(json.dumps(canonical(exp.params[replicate])), exp.params[replicate])
        return list(seen.values())

    def mean(self, metric: str) -> float | None:
        values = [exp.metrics[metric] for exp in self.runs if is_number(exp.metrics.get(metric))]
        return statistics.fmean(values) if values else None


def group_configs(experiments: list[Experiment], replicate: str = REPLICATE) -> list[Config]:
    """Experiments grouped into configurations, in order of first appearance."""
    groups: dict[str, Config] = {}
    for exp in experiments:
        key = config_key(exp.task, exp.model, exp.params, replicate)
        if key not in groups:
            groups[key] = Config(exp.task, exp.model, config_params(exp.params, replicate))
        groups[key].runs.append(exp)
    return list(groups.values())


def varied_params(configs: list[Config]) -> dict[str, list]:
    """Each param whose value differs between configurations, with its values in order
    (numbers ascending, other values as first seen); a config lacking it does not count."""
    varied = {}
    for name in dict.fromkeys(name for config in configs for name in config.params):
        values = {json.dumps(canonical(c.params[name]), sort_keys=True): c.params[name]
                  for c in configs if name in c.params}
        if len(values) > 1 or any(name not in c.params for c in configs):
            ordered = list(values.values())
            if all(is_number(v) for v in ordered):
                ordered.sort()
            varied[name] = ordered
    return varied


def primary_metric(experiments: list[Experiment], by: str | None) -> str | None:
    """The metric to rank by: `by` (metrics.X or X), else the one most successful runs report."""
    if by:
        return by.split(".", 1)[1] if by.startswith("metrics.") else by
    counts: dict[str, int] = {}
    for exp in experiments:
        if exp.status is Status.SUCCESS:
            for name, value in exp.metrics.items():
                if is_number(value):
                    counts[name] = counts.get(name, 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else None


def rank_key(metric: str, lower: frozenset[str] = frozenset()):
    """A sort key for means of `metric`, best first, missing last."""
    smaller = lower_is_better(metric, lower)

    def key(mean: float | None) -> tuple:
        if mean is None:
            return (1, 0.0)
        return (0, mean if smaller else -mean)

    return key


@dataclass(frozen=True)
class FailureKind:
    """What a failure reason says, grouped: `label` names the group; `kind` is `oom`,
    `transient` (lost, killed, interrupted: may not recur) or `error` (will recur as is)."""

    label: str
    kind: str


def failure_kind(reason: str | None) -> FailureKind:
    text = " ".join((reason or "").split())
    if not text:
        return FailureKind("no reason recorded", "error")
    if OOM.search(text):
        return FailureKind("out of memory", "oom")
    if text.startswith("lost"):
        return FailureKind("lost (its runner stopped)", "transient")
    signal = _SIGNAL.match(text)
    if signal:
        return FailureKind(signal.group(0), "transient")
    exception = _EXCEPTION.match(text)
    if exception:
        name = exception.group(1).rsplit(".", 1)[-1]
        return FailureKind(name, "transient" if name == "KeyboardInterrupt" else "error")
    if text.startswith("exit code"):
        return FailureKind(text.split(":")[0], "error")
    short = _NUMBER.sub("N", text)
    return FailureKind(short if len(short) <= 80 else short[:79] + "…", "error")


def still_fails(params: dict, failed: Experiment, kind: FailureKind, replicate: str = REPLICATE) -> bool:
    """Whether `failed`'s failure applies to a run of `params` (same task and model assumed).

    Out of memory applies to any config at least as large: every param equal, or a number at
    least the failed one's (a larger batch size than one that ran out of memory). An error
    applies to the same configuration. A transient failure (lost, killed) applies to none.
    """
    ours, theirs = config_params(params, replicate), config_params(failed.params, replicate)
    if kind.kind == "transient" or set(ours) != set(theirs):
        return False
    if kind.kind == "error":
        return canonical(ours) == canonical(theirs)
    for name, value in ours.items():
        other = theirs[name]
        if canonical(value) == canonical(other):
            continue
        if not (is_number(value) and is_number(other) and value >= other):
            return False
    return True


def id_list(ids: list[str]) -> str:
    """EXP-001, EXP-002, EXP-003, EXP-007 as `EXP-001–EXP-003, EXP-007`: short, still exact."""
    from .models import id_number

    numbers = sorted((id_number(i), i) for i in dict.fromkeys(ids) if id_number(i) is not None)
    others = [i for i in dict.fromkeys(ids) if id_number(i) is None]
    parts, run = [], []
    for number, text in numbers:
        if run and number != run[-1][0] + 1:
            parts.append(_span(run))
            run = []
        run.append((number, text))
    if run:
        parts.append(_span(run))
    return ", ".join(parts + others)


def _span(run: list[tuple[int, str]]) -> str:
    if len(run) >= 3:
        return f"{run[0][1]}–{run[-1][1]}"
    return ", ".join(text for _, text in run)
