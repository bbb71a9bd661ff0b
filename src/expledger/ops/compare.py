"""Experiments side by side: `exp compare`. The rules (which metric is better, what differs)
are in expledger.compare; this picks the experiments and shapes the result."""

from __future__ import annotations

from dataclasses import dataclass

from .. import models
from ..errors import BadInput
from ..models import Experiment, json_safe
from ..store.base import Store

DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Comparison:
    """What differs between experiments and which did best.

    Attributes:
        experiments: the runs compared (best first when ranked), the baseline first when it
            was added for deltas; `to_json()` gives them as compact records, as `list` does.
        baseline: the ID deltas are taken against.
        params_differ: {param: {id: value}} for params not equal everywhere (missing counts).
        params_same: {param: value} for params equal everywhere.
        metrics: {name: {"values": {id: v}, "best": [ids], "higher_is_better": bool,
            "delta": {id: v - baseline's}}}.
    """

    experiments: list[Experiment]
    baseline: str
    params_differ: dict
    params_same: dict
    metrics: dict

    def to_json(self) -> dict:
        from ..fields import project

        return {"experiments": [project(exp) for exp in self.experiments], "baseline": self.baseline,
                "params": json_safe({"differ": self.params_differ, "same": self.params_same}),
                "metrics": json_safe(self.metrics)}


def compare(store: Store, refs=(), *, where=None, top: int | None = None, by: str | None = None,
            limit: int = DEFAULT_LIMIT, baseline: str | None = None, lower=frozenset()) -> Comparison:
    """Compare the experiments named by `refs` and/or matching `where` (the newest `limit`).

    With `by` (a metric: `acc` or `metrics.acc`) they are ranked best first and the best is the baseline; with
    `top` only the N best that report it are kept (from `where`, else the whole ledger).
    Deltas are against `baseline` (default: the best by `by`, else the first); metrics named
    in `lower` are lower-is-better besides the known kinds of cost (loss, wer, …).
    """
    from ..compare import compare as build
    from ..compare import rank

    if isinstance(where, str):
        from ..query import parse

        where = parse(where)
    if by and by.startswith("metrics."):
        by = by[len("metrics."):]
    if top and by is None:
        raise BadInput("ranking the top N needs the metric to rank by")
    for ref in (*refs, *([baseline] if baseline else [])):
        models.parse_id(ref)
    store.reap_once()
    chosen = {exp.uuid: exp for exp in (store.get(ref) for ref in refs)}
    if where is not None or (top and not refs):
        chosen.update((exp.uuid, exp) for exp in store.search(where=where, sort="-id", limit=None if top else limit))
    experiments = list(chosen.values())
    lower = frozenset(lower)
    if by is not None:
        experiments = rank(experiments, by, lower=lower)
        if top:
            experiments = [e for e in experiments if by in e.metrics][:top]
    if len(experiments) < 2:
        raise BadInput("a comparison needs two or more different experiments: name them, give a query that "
                       "matches them, or rank the top N by a metric")
    base = store.get(baseline) if baseline else (experiments[0] if by is not None else None)
    if base is not None and base.uuid not in {e.uuid for e in experiments}:
        experiments.insert(0, base)
    found = build(experiments, lower=lower, baseline=base)
    return Comparison(found["experiments"], found["baseline"], found["params"]["differ"], found["params"]["same"],
                      found["metrics"])
