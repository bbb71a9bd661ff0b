"""What `doctor` reports about the records themselves, whatever the store holds them in."""

from __future__ import annotations

from typing import TypedDict

from ..models import Experiment, Status, id_number

WARNINGS = ("failed_without_reason", "empty_name", "odd_id", "missing_file", "changed_file", "stale_heartbeats")


class Problem(TypedDict):
    """One finding of doctor, as `--json` gives it."""

    kind: str
    severity: str  # "error" or "warning"
    message: str
    line: int | None  # in the ledger file, where there is one
    fixable: bool
    fixed: bool


def problem(kind: str, message: str, *, line: int | None = None, fixable: bool = False) -> Problem:
    """One finding of doctor, as `--json` gives it."""
    return {"kind": kind, "severity": "warning" if kind in WARNINGS else "error", "message": message,
            "line": line, "fixable": fixable, "fixed": False}


def record_problems(experiments: list[Experiment]) -> list[Problem]:
    """What is wrong with the current records themselves, whatever the store."""
    problems = []
    owners: dict[str, list[Experiment]] = {}
    for exp in experiments:
        owners.setdefault(exp.id, []).append(exp)
    for exp_id, exps in owners.items():
        if len(exps) > 1:
            names = "; ".join(f"{e.name!r} ({e.uuid})" for e in exps)
            problems.append(problem("duplicate_id", f"{exp_id} names {len(exps)} different experiments "
                                     f"(ledgers merged by hand?): {names}", fixable=True))
    for exp in experiments:
        if id_number(exp.id) is None:
            problems.append(problem("odd_id", f"{exp.id!r} ({exp.name!r}) is not an ID of the form EXP-001; "
                                     "commands cannot name it"))
        if not exp.name.strip():
            problems.append(problem("empty_name", f"{exp.id} has an empty name"))
        if exp.status is Status.FAILED and not (exp.failed_reason or "").strip():
            problems.append(problem("failed_without_reason", f"{exp.id} is FAILED without a reason; record one "
                                     f"with `exp result {exp.id} --status failed --reason \"…\" --force`"))
    return problems
