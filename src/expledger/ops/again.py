"""A finished experiment queued again as a new one (the dashboard's "queue again"); `exp
requeue` instead puts the same experiment back as a new attempt."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import IllegalTransition
from ..store.base import Store
from .record import Added


@dataclass(frozen=True)
class QueuedAgain(Added):
    """The new QUEUED experiment (as `add` gives it) and the ID of the one it repeats."""

    source: str = ""

    def to_json(self) -> dict:
        return {**super().to_json(), "from": self.source}


def again(store: Store, ref: str | int) -> QueuedAgain:
    """Queue a copy of finished experiment `ref`: same name, task, model, params, command,
    target machine, tags, priority, folder and GPUs (what `exp add` would register)."""
    from .record import add

    old = store.get(ref)
    if not old.status.finished:
        raise IllegalTransition(f"{old.id} is {old.status.value}; only a finished experiment can be queued again")
    target = old.runner.get("target") if "attempt" in old.runner else old.machine  # as `exp requeue` reads it
    added = add(store, name=old.name, task=old.task, model=old.model, params=old.params, command=old.command,
                machine=target, tags=old.tags, priority=old.priority, gpus=old.gpus, workdir=old.workdir)
    return QueuedAgain(added.experiment, added.similar, added.similar_total, source=old.id)
