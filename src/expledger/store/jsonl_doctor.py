"""`exp doctor` for a JSONL ledger: a full read of the log, independent of the index.

It reports unreadable or cut-off lines by line number, IDs shared by two different
experiments, failures without a reason, and an index that disagrees with the log. With
fix, unreadable lines move to `<ledger>.quarantine` (written and synced first) and the
ledger is rewritten without them; every readable line stays, in order.
"""

from __future__ import annotations

import json
from collections import Counter

from ..models import Experiment, Status, id_number, supersedes, version
from .index import indexed_form


def check(store, *, fix: bool) -> dict:
    """Verify (and with fix, repair) the ledger of a JsonlStore; returns the report."""
    try:
        content = store.path.read_bytes()
    except FileNotFoundError:
        content = b""
    except OSError as err:
        from ..errors import StoreError

        raise StoreError(f"cannot read the ledger {store.path}: {err.strerror}") from None
    problems: list[dict] = []
    keep: list[bytes] = []
    quarantine: list[bytes] = []
    current: dict[str, Experiment] = {}
    winners: dict[str, str] = {}  # uuid -> the line that holds its current state
    for number, raw in enumerate(content.splitlines(keepends=True), 1):
        if not raw.strip():
            continue
        try:
            if not raw.endswith(b"\n"):
                raise ValueError("the line is cut off (a write did not finish)")
            data = json.loads(raw.decode("utf-8"))
            exp = Experiment.from_dict(data)
        except UnicodeDecodeError:
            problems.append(_problem("unreadable", f"line {number}: not UTF-8 text", line=number, fixable=True))
            quarantine.append(raw)
            continue
        except (ValueError, TypeError) as err:
            problems.append(_problem("unreadable", f"line {number}: {err}", line=number, fixable=True))
            quarantine.append(raw)
            continue
        keep.append(raw)
        old = current.get(exp.uuid)
        if old is None or supersedes(version(exp.rev, exp.updated), version(old.rev, old.updated)):
            current[exp.uuid] = exp
            winners[exp.uuid] = indexed_form(data, raw)[1].decode("utf-8", "replace")
    problems += record_problems(list(current.values()))
    renumbered = fix and any(p["kind"] == "duplicate_id" for p in problems)
    if renumbered:
        from ..transfer import reconcile

        for exp, before in reconcile(list(current.values()), []):
            store._append(exp.to_line())  # the caller holds the lock
            current[exp.uuid] = exp
            keep.append(exp.to_line())
        for problem in problems:
            if problem["kind"] == "duplicate_id":
                problem["fixed"] = True
                problem["message"] += "; renumbered, the old ID kept as an alias"
    quarantine_path = None
    if fix and quarantine:
        quarantine_path = store.rewrite(keep, quarantine)
        for problem in problems:
            if problem["kind"] == "unreadable":
                problem["fixed"] = True
    store.index.sync()
    if store.index.lines() != winners and not (fix and (quarantine or renumbered)):
        problems.append(_problem("index_stale", "the index disagrees with the log (was an earlier line edited "
                                 "in place?); it is rebuilt from the log on --fix", fixable=True))
        if fix:
            store.index.rebuild()
            problems[-1]["fixed"] = True
    return {
        "store": store.url,
        "path": str(store.path),
        "lines": content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1),
        "experiments": len(current),
        "by_status": dict(Counter(exp.status.value for exp in current.values())),
        "problems": problems,
        "quarantine": str(quarantine_path) if quarantine_path else None,
        "healthy": all(p.get("fixed") for p in problems if p["severity"] == "error"),
    }


def _problem(kind: str, message: str, *, line: int | None = None, fixable: bool = False) -> dict:
    severity = "warning" if kind in ("failed_without_reason", "empty_name", "odd_id") else "error"
    return {"kind": kind, "severity": severity, "message": message, "line": line,
            "fixable": fixable, "fixed": False}


def record_problems(experiments: list[Experiment]) -> list[dict]:
    """What is wrong with the current records themselves, whatever the store."""
    problems = []
    owners: dict[str, list[Experiment]] = {}
    for exp in experiments:
        owners.setdefault(exp.id, []).append(exp)
    for exp_id, exps in owners.items():
        if len(exps) > 1:
            names = "; ".join(f"{e.name!r} ({e.uuid})" for e in exps)
            problems.append(_problem("duplicate_id", f"{exp_id} names {len(exps)} different experiments "
                                     f"(ledgers merged by hand?): {names}", fixable=True))
    for exp in experiments:
        if id_number(exp.id) is None:
            problems.append(_problem("odd_id", f"{exp.id!r} ({exp.name!r}) is not an ID of the form EXP-001; "
                                     "commands cannot name it"))
        if not exp.name.strip():
            problems.append(_problem("empty_name", f"{exp.id} has an empty name"))
        if exp.status is Status.FAILED and not (exp.failed_reason or "").strip():
            problems.append(_problem("failed_without_reason", f"{exp.id} is FAILED without a reason; record one "
                                     f"with `exp result {exp.id} --status failed --reason \"…\" --force`"))
    return problems
