"""What to run next: `exp next`. The reasoning (missing seeds, neighbours of the best, what a
failure rules out) is in expledger.suggest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..models import Status
from ..store.base import Store
from .notes import _where

if TYPE_CHECKING:  # expledger.suggest is imported only when it is used
    from ..suggest import Plan


@dataclass(frozen=True)
class NextRuns:
    """Suggestions, best first, each with its reason, and the configs a failure rules out.

    Attributes:
        plan: the suggestions (expledger.suggest.Plan); a queued one carries its ID.
        added: IDs of the suggestions queued by this call (`queue=True`).
    """

    plan: Plan
    added: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"next": self.plan.to_json(), "added": self.added}


def suggest(store: Store, *, task: str | None = None, where=None, by: str | None = None, lower=frozenset(),
            replicate: str = "seed", limit: int | None = 10, queue: bool = False) -> NextRuns:
    """What to run next among the experiments of `task` matching `where`: the queue first,
    then missing seeds of good configs and neighbours of the best by `by`; at most `limit`
    (None: all). With `queue`, the suggestions not queued yet are added (QUEUED, tag `next`)."""
    from ..suggest import plan

    where = _where(where)
    store.reap_once()
    found = store.search(task=task, where=where, sort="id", limit=None)
    queued = [e for e in store.queue(where=where) if not task or e.task == task]
    result = plan(list(found), queued, by=by, lower=frozenset(lower), replicate=replicate, limit=limit)
    added = []
    if queue:
        for suggestion in result.suggestions:
            if suggestion.id is None:
                exp = store.add(name=suggestion.name, task=suggestion.task, model=suggestion.model,
                                params=suggestion.params, command=suggestion.command, workdir=suggestion.workdir,
                                tags=["next"], status=Status.QUEUED)
                suggestion.id = exp.id
                added.append(exp.id)
    return NextRuns(result, added)
