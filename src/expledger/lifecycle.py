"""Lifecycle transitions as data: each move of an experiment named with its arguments.

A transition is a small frozen dataclass (`Start`, `Result`, `Cancel`, `Requeue`, `Retry`, …).
`apply(exp, now)` gives the next record (the pure functions of models.py do the work, so the
rules live in one place); `to_json()` / `from_json()` carry it across a process boundary as a
plain JSON object, `{"kind": "result", "status": "FAILED", "reason": "…", …}`.

`Store.apply(ref, transition)` applies one atomically: store/base.py reads the current record,
applies the transition and writes the result only if nobody wrote in between (compare-and-set),
retrying on conflict. So two writers never both move the same experiment: of two results
recorded at once without `force`, exactly one is kept and the other raises IllegalTransition.

    transition = Result(status="failed", reason="OOM at step 1200")
    store.apply("EXP-004", transition)
    Transition.from_json(transition.to_json()) == transition   # True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from . import models
from .errors import BadInput
from .models import Experiment, Status

_KINDS: dict[str, type[Transition]] = {}


@dataclass(frozen=True)
class Transition:
    """One change of an experiment's record, as data; subclasses name the move."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        """The record after this move; IllegalTransition (or BadInput) if it is not allowed."""
        raise NotImplementedError(type(self).__name__)

    def to_json(self) -> dict[str, Any]:
        """A JSON object naming the move and its arguments (NaN and ±inf as their string forms)."""
        out: dict[str, Any] = {"kind": self.kind}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, Transition):
                value = value.to_json()
            elif isinstance(value, tuple) and value and isinstance(value[0], Transition):
                value = [step.to_json() for step in value]
            elif isinstance(value, Status):
                value = value.value
            out[spec.name] = models.json_safe(value)
        return out

    @staticmethod
    def from_json(data: Any) -> Transition:
        """The transition `to_json()` described; BadInput for an unknown kind or argument."""
        kind = data.get("kind") if isinstance(data, dict) else None
        if not isinstance(kind, str) or kind not in _KINDS:
            valid = ", ".join(sorted(_KINDS))
            raise BadInput(f"not a lifecycle transition: kind {str(kind)[:40]!r} (valid kinds: {valid})")
        cls = _KINDS[kind]
        names = {spec.name for spec in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"kind"})
        if unknown:
            raise BadInput(f"{cls.kind} transition: unknown argument(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name in names & set(data):
            value = data[name]
            if name == "steps":
                if not isinstance(value, list):
                    raise BadInput("chain transition: steps must be a list of transitions")
                value = tuple(Transition.from_json(step) for step in value)
            elif name in _TUPLES and isinstance(value, list):
                value = tuple(value)
            elif name in _METRICS and isinstance(value, dict):
                value = models._read_metrics(value)
            values[name] = value
        return cls(**values)


_TUPLES = frozenset({"tags"})  # sequences kept as tuples, so a round trip compares equal
_METRICS = frozenset({"metrics", "fallback"})  # NaN and ±inf come back as floats


@dataclass(frozen=True)
class Start(Transition):
    """QUEUED -> RUNNING (models.start): `runner` is the process that runs it, `machine` where,
    `retries` how often a lost run is re-queued, `command` what runs if not the queued command."""

    kind: ClassVar[str] = "start"
    runner: dict[str, Any] | None = None
    machine: str | None = None
    retries: int = 0
    command: str | None = None

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        return models.start(exp, runner=self.runner, machine=self.machine, retries=self.retries, now=now,
                            command=self.command)


@dataclass(frozen=True)
class Result(Transition):
    """How an experiment ended (models.record_result); a recorded result is replaced only with
    `force`. `system` adds hardware peaks first; `ended` stamps `runner.ended` with the time
    the result is applied."""

    kind: ClassVar[str] = "result"
    status: Status | str = Status.SUCCESS
    metrics: dict[str, Any] | None = None
    summary: str | None = None
    reason: str | None = None
    force: bool = False
    attempt: int | None = None
    runner: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    ended: bool = False

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        if self.system is not None:
            exp = models.add_system(exp, self.system)
        runner = {**(self.runner or {}), "ended": models.now_iso(now)} if self.ended else self.runner
        return models.record_result(exp, status=self.status, metrics=self.metrics, summary=self.summary,
                                    reason=self.reason, force=self.force, attempt=self.attempt, runner=runner,
                                    now=now)


@dataclass(frozen=True)
class Finish(Transition):
    """A runner's verdict when its command exits (runner.py): `status` from the exit code,
    unless the code declared a failure or cancellation while it ran (`run.result("failed")`).
    Final metrics: `fallback` (the last logged steps) under what was recorded, `metrics` (the
    metrics file) over it; `system` and `runner` are recorded with it, for `attempt` only."""

    kind: ClassVar[str] = "finish"
    status: Status | str = Status.SUCCESS
    reason: str | None = None
    metrics: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    runner: dict[str, Any] | None = None
    attempt: int | None = None

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        status, why = Status.parse(self.status), self.reason
        metrics = {**{k: v for k, v in (self.fallback or {}).items() if k not in exp.metrics}, **(self.metrics or {})}
        declared = exp.runner.get("declared") or {}
        if status is Status.SUCCESS and declared.get("status") in ("FAILED", "CANCELLED"):
            status = Status(declared["status"])  # the code said how it ended: run.result("failed", …)
            why = declared.get("reason") or f"the script recorded {status.value.lower()}"
        return models.record_result(
            models.add_system(exp, self.system or {}), status=status, metrics=metrics,
            reason=why if status is Status.FAILED else None, summary=why if status is Status.CANCELLED else None,
            attempt=self.attempt, runner=self.runner, now=now)


@dataclass(frozen=True)
class Cancel(Transition):
    """QUEUED or RUNNING -> CANCELLED (models.cancel); `by` is who (user@host)."""

    kind: ClassVar[str] = "cancel"
    reason: str | None = None
    by: str | None = None

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        return models.cancel(exp, reason=self.reason, by=self.by, now=now)


@dataclass(frozen=True)
class Requeue(Transition):
    """RUNNING -> QUEUED again (models.requeue): a lost run with attempts left, or a worker
    giving its work back; the attempt ends as `ended_as` with `reason` in the history."""

    kind: ClassVar[str] = "requeue"
    reason: str = ""
    attempt: int | None = None
    ended_as: str = "FAILED"

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        return models.requeue(exp, reason=self.reason, attempt=self.attempt, ended_as=self.ended_as, now=now)


@dataclass(frozen=True)
class Retry(Transition):
    """A finished experiment back in the queue as a new attempt (models.retry, `exp requeue`)."""

    kind: ClassVar[str] = "retry"
    reason: str = ""

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        return models.retry(exp, reason=self.reason, now=now)


@dataclass(frozen=True)
class Update(Transition):
    """Add to a RUNNING experiment without finishing it (models.update_running)."""

    kind: ClassVar[str] = "update"
    metrics: dict[str, Any] | None = None
    summary: str | None = None
    attempt: int | None = None
    declared: dict[str, Any] | None = None
    task: str | None = None
    model: str | None = None
    params: dict[str, Any] | None = None
    tags: tuple[Any, ...] = ()

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        return models.update_running(exp, metrics=self.metrics, summary=self.summary, attempt=self.attempt,
                                     declared=self.declared, task=self.task, model=self.model, params=self.params,
                                     tags=tuple(self.tags or ()))


@dataclass(frozen=True)
class Annotate(Transition):
    """Replace tags and/or the summary in any status (models.annotate); None: unchanged."""

    kind: ClassVar[str] = "annotate"
    tags: tuple[Any, ...] | None = None
    summary: str | None = None

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        return models.annotate(exp, tags=self.tags, summary=self.summary)


@dataclass(frozen=True)
class Amend(Transition):
    """What a run adds besides its lifecycle, for `attempt` only: provenance, files, params
    (known keys keep their values), metrics measured after the result, hardware peaks, and
    runner details (how its process ended). Allowed in any status."""

    kind: ClassVar[str] = "amend"
    attempt: int | None = None
    provenance: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None
    params: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    runner: dict[str, Any] | None = None

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        attempt = self.attempt
        if self.provenance is not None:
            exp = models.add_provenance(exp, self.provenance, attempt=attempt)
        if self.files is not None:
            exp = models.add_files(exp, self.files, attempt=attempt)
        if self.params is not None:
            exp = models.add_params(exp, self.params, attempt=attempt)
        if self.metrics is not None:
            exp = models.add_metrics(exp, self.metrics, attempt=attempt)
        if self.system is not None:
            exp = models.add_system(exp, self.system, attempt=attempt)
        if self.runner is not None:
            exp = models.close_run(exp, runner=self.runner, attempt=attempt)
        return exp


@dataclass(frozen=True)
class Chain(Transition):
    """Several transitions applied in order as one write (a run's provenance riding along)."""

    kind: ClassVar[str] = "chain"
    steps: tuple[Transition, ...] = ()

    def apply(self, exp: Experiment, now: datetime) -> Experiment:
        for step in self.steps:
            exp = step.apply(exp, now)
        return exp


def from_json(data: Any) -> Transition:
    """The transition a `to_json()` object describes (see Transition.from_json)."""
    return Transition.from_json(data)
