"""Two versions of one experiment edited apart (two machines before a `git pull`): the rule.

A version normally descends from the other, and the higher (rev, updated) is current. They
conflict when the lower one holds an outcome (a result or a cancellation, current or in its
history) that the higher one does not: both sides changed the experiment since their common
version. Then nothing is dropped:
- a result (SUCCESS or FAILED) wins over a cancellation; of two results the later one
  (by `completed`) is current;
- every other outcome goes to `history`, marked `"conflict": true`;
- an experiment RUNNING or QUEUED on the higher side stays so (its run may be live), with
  the other side's outcomes in its history;
- the merged record gets rev = the higher of the two revs + 1, so it supersedes both everywhere
  (a seed-tool record, rev 0, carries no version: schema.supersedes says which one is higher).
The rule depends only on the two versions, so `exp merge`, `doctor --fix` after a git union
and every reader of the ledger resolve a conflict the same way.
"""

from __future__ import annotations

import dataclasses
import json

from .models import Experiment, Status, json_safe
from .schema import supersedes, version

_OUTCOME_FIELDS = ("status", "metrics", "summary", "failed_reason", "completed")


def _key(entry: dict) -> tuple:
    """What identifies an outcome: its status, when it completed, and its metrics."""
    return (str(entry.get("status")).upper(), entry.get("completed"),
            json.dumps(json_safe(entry.get("metrics") or {}), sort_keys=True))


def outcome_keys(data: dict) -> set:
    """The outcomes a stored record (a dict) holds, current and in its history."""
    keys = {_key(entry) for entry in data.get("history") or () if isinstance(entry, dict)}
    if str(data.get("status") or "").upper() in ("SUCCESS", "FAILED", "CANCELLED"):
        keys.add(_key(data))
    return keys


def ordered(a: Experiment, b: Experiment) -> tuple[Experiment, Experiment]:
    """(lower, higher) version; equal versions are ordered by their content, so every
    machine picks the same."""
    va, vb = version(a.rev, a.updated), version(b.rev, b.updated)
    if va != vb:
        return (a, b) if va < vb else (b, a)
    return (a, b) if a.to_line() <= b.to_line() else (b, a)


def conflicting(lower: dict, higher: dict) -> bool:
    """Whether the lower version holds an outcome the higher one lacks (cheap, on dicts)."""
    return not outcome_keys(lower) <= outcome_keys(higher)


def resolve(a: Experiment, b: Experiment) -> tuple[Experiment, bool]:
    """The current record given two versions of one experiment, and whether they conflicted."""
    if a.rev == 0 and b.rev == 0:
        return b, False  # the seed tool's lines carry no version: the later one is current
    if a.rev == 0 or b.rev == 0:  # one of the seed tool's meets a versioned record: schema.supersedes
        # ranks them, and an outcome only the lower one holds is kept as for any two versions
        lower, higher = (a, b) if supersedes(version(b.rev, b.updated), version(a.rev, a.updated)) else (b, a)
    else:
        lower, higher = ordered(a, b)
    if not conflicting(lower.to_dict(), higher.to_dict()):
        return higher, False
    pool, have = [], set()
    for source in (higher, lower):  # current outcomes first: one a history entry repeats stays current
        entries = ([(_outcome(source), source)] if source.status.finished else []) + [(e, None) for e in source.history]
        for entry, owner in entries:
            key = _key(entry)
            if key not in have:
                have.add(key)
                pool.append((entry, owner))
    current = None
    if higher.status.finished:
        current = max((item for item in pool if item[1] is not None),
                      key=lambda item: (item[0]["status"] != Status.CANCELLED.value, item[0]["completed"] or "",
                                        json.dumps(item[0], sort_keys=True, default=str)))
    base = current[1] if current else higher
    history = [entry if entry in higher.history else {**entry, "conflict": True}
               for entry, owner in pool if current is None or entry is not current[0]]
    history.sort(key=lambda e: (e.get("completed") or "", json.dumps(e, sort_keys=True, default=str)))
    merged = dataclasses.replace(base, id=higher.id, aliases=higher.aliases, history=history, rev=max(a.rev, b.rev) + 1,
                                 updated=max(a.updated or "", b.updated or "") or None)
    return merged, True


def _outcome(exp: Experiment) -> dict:
    return {name: exp.status.value if name == "status" else getattr(exp, name) for name in _OUTCOME_FIELDS}


def describe(exp: Experiment) -> str:
    """One version in a conflict report: its status, when, and its metrics."""
    metrics = json.dumps(exp.metrics, ensure_ascii=False, default=str)
    return f"{exp.status.value} at {exp.completed or exp.updated} (rev {exp.rev}) {metrics}"
