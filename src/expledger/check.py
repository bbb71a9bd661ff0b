""""Was this tried already?": the runs of a config as asked, then its nearest neighbours.

A question names some of a config: a task, a model, some params. What it leaves out matches
anything (a run with more params, or any task when none is named), and the replicate param
(`seed`) never makes a config new: "was lr=1e-4 tried?" is answered by every run with that
lr, whatever its seed. Values compare canonically (key order, 1e-3 vs 0.001, 2.0 vs 2 do not
matter). Neighbours share the task and model asked for and differ in the fewest given params;
each comes with what differs, so a failure's reason can be weighed before a rerun.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from .models import Experiment, Status, canonical

STATUS_ORDER = (Status.SUCCESS, Status.FAILED, Status.RUNNING, Status.QUEUED, Status.CANCELLED)


def _form(value) -> str:
    return json.dumps(canonical(value), sort_keys=True)


def differing_params(ours: dict, theirs: dict) -> dict[str, dict]:
    """{name: {"yours": …, "theirs": …}} for every param asked for that the other run has
    with another value ("theirs") or not at all (no "theirs" key). Params only the other run
    has are no difference: the question left them open."""
    out = {}
    for name, value in ours.items():
        if name not in theirs:
            out[name] = {"yours": value}
        elif _form(value) != _form(theirs[name]):
            out[name] = {"yours": value, "theirs": theirs[name]}
    return out


@dataclass
class CheckResult:
    """The answer to "was this tried?": matching runs, their outcomes, and near misses."""

    asked: dict
    replicate: str | None
    matches: list[Experiment]
    neighbours: list[tuple[dict, Experiment]]

    @property
    def counts(self) -> dict[str, int]:
        """How many matching runs ended (or stand) in each status, most telling first."""
        found = Counter(exp.status for exp in self.matches)
        return {status.value: found[status] for status in STATUS_ORDER if found[status]}

    @property
    def blocks_rerun(self) -> bool:
        """Whether a matching run already succeeded or is running (for --fail-if-tried)."""
        return any(exp.status in (Status.SUCCESS, Status.RUNNING) for exp in self.matches)

    def config_text(self) -> str:
        parts = [f"{key} {self.asked[key]}" for key in ("task", "model") if self.asked[key] is not None]
        parts += [f"{name}={json.dumps(canonical(value), ensure_ascii=False)}" for name, value in self.asked["params"].items()
                  if name != self.replicate]
        return ", ".join(parts) or "any config"

    def answer(self) -> str:
        """The first line of the answer, in plain words."""
        opened = "other params any" + (f", any {self.replicate}" if self.replicate else "")
        if not self.matches:
            return f"not tried: no run of {self.config_text()} ({opened})"
        outcomes = ", ".join(f"{n} {status}" for status, n in self.counts.items())
        runs = "1 run" if len(self.matches) == 1 else f"{len(self.matches)} runs"
        return f"tried, {outcomes}: {runs} of {self.config_text()} ({opened})"

    def to_json(self) -> dict:
        from .fields import project

        return {
            "answer": self.answer(),
            "exact": [project(exp) for exp in self.matches],
            "counts": self.counts,
            "neighbours": [{"experiment": project(exp), "differs": differs} for differs, exp in self.neighbours],
            "tried": self.blocks_rerun,
            "replicate": self.replicate,
        }


def matches(exp: Experiment, *, task: str | None, model: str | None, params: dict, replicate: str | None) -> bool:
    """Whether a run is one of the config asked for (unnamed parts match anything)."""
    if (task is not None and exp.task != task) or (model is not None and exp.model != model):
        return False
    return all(name in exp.params and _form(exp.params[name]) == _form(value)
               for name, value in params.items() if name != replicate)


def check(store, *, task: str | None, model: str | None, params: dict, replicate: str | None = "seed",
          neighbours: int = 5) -> CheckResult:
    """Every run of the config as asked, and up to `neighbours` nearest other runs of its task and model."""
    candidates = store.search(task=task, model=model, sort="id", limit=None)
    asked = {name: value for name, value in params.items() if name != replicate}
    found, near = [], []
    for exp in candidates:
        if matches(exp, task=task, model=model, params=params, replicate=replicate):
            found.append(exp)
        else:
            near.append((differing_params(asked, exp.params), exp))
    near.reverse()  # newest first among equals: the sort is stable
    near.sort(key=lambda pair: len(pair[0]))
    return CheckResult({"task": task, "model": model, "params": params}, replicate, found, near[:neighbours])
