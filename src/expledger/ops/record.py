"""Writing to the ledger: `exp add`, `start`, `result`, `cancel`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Experiment, Status
from ..store.base import Store

SIMILAR_SHOWN = 10  # earlier runs of the same config an `add` result carries


@dataclass(frozen=True)
class Recorded:
    """An experiment as a lifecycle move left it."""

    experiment: Experiment

    def to_json(self) -> dict:
        return {"experiment": self.experiment.to_dict()}


@dataclass(frozen=True)
class Cancelled(Recorded):
    """A cancelled experiment and what became of its process on this machine.

    Attributes:
        process: "signalled", "unverified" (a process the record names here is not provably
            its runner, so it was left alone: see liveness.verified), or None (none here).
    """

    process: str | None = None

    def to_json(self) -> dict:
        return {"experiment": self.experiment.to_dict(), "process": self.process}


@dataclass(frozen=True)
class Added(Recorded):
    """A new experiment, and the earlier runs of the same task, model and params.

    Attributes:
        similar: up to SIMILAR_SHOWN of them, oldest first.
        similar_total: how many there are in all.
    """

    similar: list[Experiment] = field(default_factory=list)
    similar_total: int = 0

    def to_json(self) -> dict:
        return {"experiment": self.experiment.to_dict(), "similar": [s.to_dict() for s in self.similar],
                "similar_total": self.similar_total}


def add(store: Store, *, name: str, task: str | None = None, model: str | None = None, params: dict | None = None,
        command: str | None = None, machine: str | None = None, tags=(), status: Status | str = Status.QUEUED,
        priority: int = 0, gpus: int | None = None, workdir: str | None = None, runner: dict | None = None,
        unless_tried: bool = False) -> Added:
    """Register an experiment and name the earlier runs of its config.

    A running experiment runs here: its machine defaults to this one ($EXP_MACHINE, else the
    host name). A queued one's machine is its target, only what `machine` says: left empty
    (or `any`), any worker may take it. `workdir` (default: the current folder) is where a
    worker runs its command, found again relative to the repository on another machine.
    With `unless_tried`, AlreadyTried (and nothing added) when the same config, seed
    included, already succeeded or is running.
    """
    from ..config import resolve_machine, resolve_target, workdir_fields

    status = Status.parse(status)
    if unless_tried:
        _refuse_if_tried(store, task=task, model=model, params=params or {})
    target = resolve_target(machine)
    where = resolve_machine(target) if status is Status.RUNNING else target
    exp = store.add(name=name, task=task, model=model, params=params or {}, command=command, machine=where,
                    tags=tags, status=status, priority=priority, gpus=gpus, runner=runner, **workdir_fields(workdir))
    similar = store.tried_before(exp) if (task or model or params) else []  # a bare name is no config
    return Added(exp, similar[:SIMILAR_SHOWN], len(similar))


def start(store: Store, ref: str | int, *, machine: str | None = None, runner: dict | None = None,
          command: str | None = None) -> Recorded:
    """QUEUED -> RUNNING on `machine` (default: this one): by hand, or with `runner` (see
    liveness.runner_info) by the process that runs it, which then heartbeats for it; `command`
    is what that process runs, when it is not the queued command (`exp run --id N -- CMD`)."""
    from ..config import resolve_machine
    from ..lifecycle import Start

    return Recorded(store.apply(ref, Start(runner=runner, machine=resolve_machine(machine), command=command)))


def result(store: Store, ref: str | int, *, status: Status | str, metrics: dict | None = None,
           summary: str | None = None, reason: str | None = None, force: bool = False) -> Recorded:
    """Record how an experiment ended; a recorded result is replaced only with `force`."""
    return Recorded(store.result(ref, status=status, metrics=metrics, summary=summary, reason=reason, force=force))


def cancel(store: Store, ref: str | int, *, reason: str | None = None, by: str | None = None) -> Cancelled:
    """Cancel a queued or running experiment; a running one's process on this machine is stopped.
    `by` says who cancelled it (default: this user on this machine)."""
    from ..liveness import who
    from ..runner import stop_local

    exp = store.cancel(ref, reason=reason, by=by or who())
    return Cancelled(exp, stop_local(exp))


@dataclass(frozen=True)
class Requeued:
    """Finished experiments put back in the queue, each as a new attempt, in the order asked."""

    experiments: list[Experiment]

    def to_json(self) -> dict:
        return {"experiments": [exp.to_dict() for exp in self.experiments]}


def requeue(store: Store, refs, *, reason: str | None = None, by: str | None = None) -> Requeued:
    """Queue finished (success, failed, cancelled, lost) experiments again as new attempts
    (`exp requeue`); their outcomes stay in their histories. Every one is checked before any
    is changed: NotFound or IllegalTransition (one still queued or running) changes nothing.
    `by` says who (default: this user on this machine); `reason` is kept with the attempt."""
    from ..lifecycle import Retry
    from ..liveness import who

    found = list({exp.uuid: exp for exp in (store.get(ref) for ref in refs)}.values())  # `1 EXP-001`: once
    again = Retry(reason=f"requeued by {by or who()}" + (f": {reason}" if reason else ""))
    for exp in found:
        again.apply(exp, store.now())  # refuses an unfinished one before anything is written
    return Requeued([store.apply(exp.id, again) for exp in found])


def _refuse_if_tried(store: Store, *, task: str | None, model: str | None, params: dict) -> None:
    from ..check import check as find
    from ..errors import AlreadyTried, keyword, literal

    store.reap_once()
    found = find(store, task=task, model=model, params=params, replicate=None, neighbours=0)
    if found.blocks_rerun:
        runs = ", ".join(f"{e.id} {e.status.value}" for e in found.matches if e.status in (Status.SUCCESS, Status.RUNNING))
        raise AlreadyTried(f"not added: this config already ran ({literal(runs)}); "
                           "{0} gives its results, or drop {1} to run it again",
                           arguments=(keyword("show", python="store.get(ID)", cli="exp show"), keyword("unless_tried", "True")))
