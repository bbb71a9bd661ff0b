""""Was this tried already?": exact matches of a config, then its nearest neighbours.

A config is task + model + params. Exact means canonically equal (key order, 1e-3 vs
0.001, 2.0 vs 2 do not matter). Neighbours share task and model and differ in the fewest
params; each comes with what differs, so a failure's reason can be weighed before a rerun.
"""

from __future__ import annotations

import json

from .models import Experiment, Status, canonical, fingerprint


def differing_params(ours: dict, theirs: dict) -> dict[str, dict]:
    """{name: {"yours": …, "theirs": …}} for every param not canonically equal; a side
    that lacks the param has no key."""
    out = {}
    for name in dict.fromkeys([*ours, *theirs]):
        sides = {side: values[name] for side, values in (("yours", ours), ("theirs", theirs)) if name in values}
        forms = {json.dumps(canonical(value), sort_keys=True) for value in sides.values()}
        if len(sides) < 2 or len(forms) > 1:
            out[name] = sides
    return out


def check(store, *, task: str | None, model: str | None, params: dict, neighbours: int = 5) -> dict:
    """Exact matches and up to `neighbours` nearest other runs of the same task and model."""
    exact, _ = store.search(fingerprint=fingerprint(task, model, params), sort="id")
    candidates, _ = store.search(task=task, model=model, sort="-id", limit=None)
    exact_ids = {exp.uuid for exp in exact}
    near = []
    for exp in candidates:
        if exp.uuid not in exact_ids and (exp.task, exp.model) == (task, model):
            near.append((differing_params(params, exp.params), exp))
    near.sort(key=lambda pair: len(pair[0]))  # stable: newest first among equals
    return {"exact": exact, "neighbours": near[:neighbours]}


def blocks_rerun(exact: list[Experiment]) -> bool:
    """Whether an exact match already succeeded or is running (for --fail-if-tried)."""
    return any(exp.status in (Status.SUCCESS, Status.RUNNING) for exp in exact)
