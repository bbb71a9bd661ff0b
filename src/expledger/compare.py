"""Side-by-side comparison of experiments: what differs, and which run did best."""

from __future__ import annotations

import math
import re

from .models import Experiment, canonical

# Metric names whose smaller values are better; any other metric is higher-is-better.
LOWER_IS_BETTER = {
    "loss", "error", "err", "wer", "cer", "ter", "der", "eer", "perplexity", "ppl", "nll", "bpc", "bpd",
    "mse", "mae", "rmse", "mape", "fid", "kid", "lpips", "ece", "far", "frr", "latency", "time", "seconds",
    "memory", "cost", "regret", "distance",
}
_MISSING = object()


def lower_is_better(name: str, lower: frozenset[str] = frozenset()) -> bool:
    """Whether smaller is better for this metric: named in `lower`, or a known kind of cost."""
    return name in lower or any(word in LOWER_IS_BETTER for word in re.split(r"[^a-z]+", name.lower()))


def is_number(value) -> bool:
    """A real, comparable number: not a bool, not NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def compare(experiments: list[Experiment], *, lower: frozenset[str] = frozenset(),
            baseline: Experiment | None = None) -> dict:
    """Params split into differing and identical, and every metric with its best run(s).

    A param missing from some runs counts as differing. `best` lists every run tied for
    the best numeric value; NaN never wins. `delta` is each run's value minus the
    baseline's (the first run unless given) where both are numbers.
    """
    baseline = baseline or experiments[0]
    names = list(dict.fromkeys(name for exp in experiments for name in exp.params))
    differ, same = {}, {}
    for name in names:
        values = [exp.params.get(name, _MISSING) for exp in experiments]
        forms = {repr(canonical(v)) if v is not _MISSING else "<missing>" for v in values}
        if len(forms) == 1:
            same[name] = values[0]
        else:
            differ[name] = {exp.id: exp.params[name] for exp in experiments if name in exp.params}
    metrics = {}
    for name in dict.fromkeys(name for exp in experiments for name in exp.metrics):
        values = {exp.id: exp.metrics[name] for exp in experiments if name in exp.metrics}
        numbers = {k: v for k, v in values.items() if is_number(v)}
        smaller = lower_is_better(name, lower)
        best = []
        if len(numbers) > 1:
            target = (min if smaller else max)(numbers.values())
            best = [k for k, v in numbers.items() if v == target]
        base = numbers.get(baseline.id)
        delta = {k: v - base for k, v in numbers.items() if base is not None and k != baseline.id}
        metrics[name] = {"values": values, "best": best, "higher_is_better": not smaller, "delta": delta}
    return {"experiments": experiments, "baseline": baseline.id,
            "params": {"differ": differ, "same": same}, "metrics": metrics}


def rank(experiments: list[Experiment], metric: str, *, lower: frozenset[str] = frozenset()) -> list[Experiment]:
    """Experiments best first by one metric (its direction as `compare` decides it); runs
    without a number for it come last, in their given order."""
    smaller = lower_is_better(metric, lower)
    scored = [exp for exp in experiments if is_number(exp.metrics.get(metric))]
    scored.sort(key=lambda exp: exp.metrics[metric], reverse=not smaller)
    return scored + [exp for exp in experiments if not is_number(exp.metrics.get(metric))]
