"""Checking the ledger: `exp doctor`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Experiment, Status
from ..store.base import Store
from ..store.checks import Problem, problem


@dataclass(frozen=True)
class DoctorReport:
    """What the ledger holds and what is wrong with it.

    Attributes:
        store: the store's URL (without a password).
        source: where that URL came from (`--store`, `EXP_STORE`, …), when known.
        path: the ledger file (JSONL), else None.
        lines: how many lines the file has (JSONL), else None: a database has no lines.
        experiments: how many experiments it holds.
        by_status: {status: count}.
        problems: each finding, with whether it can be and was fixed.
        quarantine: where --fix moved unreadable lines, if it did.
        details: what only this kind of store reports (PostgreSQL: `migrations`).
    """

    store: str
    source: str | None
    path: str | None
    lines: int | None
    experiments: int
    by_status: dict[str, int]
    problems: list[Problem]
    quarantine: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """No error is left unfixed (warnings do not count)."""
        return all(p["fixed"] for p in self.problems if p["severity"] == "error")

    @property
    def holds(self) -> str:
        """`3 experiments in 9 lines`, or `3 experiments` where the store has no lines."""
        text = _count(self.experiments, "experiment")
        return text if self.lines is None else f"{text} in {_count(self.lines, 'line')}"

    def to_json(self) -> dict:
        return {"report": {"source": self.source, "store": self.store, "path": self.path, "lines": self.lines,
                           "experiments": self.experiments, "by_status": self.by_status, **self.details,
                           "problems": self.problems, "quarantine": self.quarantine, "healthy": self.healthy}}


def doctor(store: Store, *, fix: bool = False, source: str | None = None) -> DoctorReport:
    """Verify the ledger (with `fix`, repair what can be repaired, losing nothing); runs whose
    runner was lost are settled first and reported as fixed."""
    lost = store.reap_once()
    found = dict(store.doctor(fix=fix))
    problems = [*found.pop("problems"), *(lost_run(exp) for exp in lost)]
    found.pop("healthy", None)
    return DoctorReport(store=found.pop("store"), source=source, path=found.pop("path", None),
                        lines=found.pop("lines", None), experiments=found.pop("experiments"),
                        by_status=found.pop("by_status"), problems=problems,
                        quarantine=found.pop("quarantine", None), details=found)


def lost_run(exp: Experiment) -> Problem:
    """A run whose runner was lost, as reaping left it: re-queued for another attempt, or FAILED."""
    if exp.status is Status.QUEUED:
        runner = exp.runner
        attempt = (runner.get("attempt") or 1) + 1
        message = (f"{exp.id} was RUNNING but {runner.get('requeued') or 'its runner was lost'}; re-queued for "
                   f"attempt {attempt} of {runner.get('max_attempts', attempt)}")
    else:
        message = f"{exp.id} was RUNNING but {exp.failed_reason or 'its runner was lost'}; marked {exp.status.value}"
    found = problem("lost_run", message, fixable=True)
    found["fixed"] = True
    return found


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
