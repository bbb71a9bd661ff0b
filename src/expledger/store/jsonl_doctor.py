"""`exp doctor` for a JSONL ledger: a full read of the log, independent of the index.

It reports unreadable or cut-off lines by line number, IDs shared by two different
experiments, experiments changed on two machines apart (conflicts.py), failures without a
reason, and an index that disagrees with the log. With fix, a conflict's resolved record is
appended (so the last line per id says what `exp` reads), shared IDs are renumbered,
unreadable lines move to `<ledger>.quarantine` (written and synced first) and the ledger is
rewritten without them; every readable line stays, in order.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

from ..conflicts import describe, resolve
from ..files import problems as file_problems
from ..models import Experiment, Status
from .checks import problem, record_problems
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
    rewrite = False  # whether --fix must write the file anew
    keep: list[bytes] = []
    quarantine: list[bytes] = []
    current: dict[str, Experiment] = {}
    winners: dict[str, str] = {}  # uuid -> the line that holds its current state
    conflicts: dict[str, list[str]] = {}  # uuid -> its versions that were changed apart
    for number, raw in enumerate(content.splitlines(keepends=True), 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
            exp = Experiment.from_dict(data)
            if not raw.endswith(b"\n"):  # complete but unterminated: readers wait for its newline
                problems.append(problem("unterminated", f"line {number} has no newline at its end, so reads "
                                         "do not see it yet", line=number, fixable=True))
                raw += b"\n"
                rewrite = True
        except UnicodeDecodeError:
            problems.append(problem("unreadable", f"line {number}: not UTF-8 text", line=number, fixable=True))
            quarantine.append(raw)
            continue
        except (ValueError, TypeError) as error:
            why = "the line is cut off (a write did not finish)" if not raw.endswith(b"\n") else str(error)
            problems.append(problem("unreadable", f"line {number}: {why}", line=number, fixable=True))
            quarantine.append(raw)
            continue
        keep.append(raw)
        old = current.get(exp.uuid)
        if old is None:
            current[exp.uuid] = exp
            winners[exp.uuid] = indexed_form(data, raw)[1].decode("utf-8", "replace")
            continue
        merged, conflicted = resolve(old, exp)  # the same rule, in the same order, as the index
        if conflicted:
            conflicts[exp.uuid] = conflicts.get(exp.uuid, [describe(old)]) + [describe(exp)]
        elif merged is exp:
            conflicts.pop(exp.uuid, None)  # a later line (an earlier --fix) settled it in the file
        if merged is not old:
            current[exp.uuid] = merged
            line = raw if merged is exp else merged.to_line()
            winners[exp.uuid] = indexed_form(json.loads(line) if merged is not exp else data, line)[1].decode(
                "utf-8", "replace")
    for uuid, versions in conflicts.items():
        exp = current[uuid]
        problems.append(problem("conflict", f"{exp.id} ({exp.name!r}) was changed on two machines since their common "
                                f"version: {' | '.join(versions)}; read as {exp.status.value}, every other outcome in "
                                "its history (--fix writes that down as its latest line)", fixable=True))
        if fix:
            store._append(exp.to_line())  # the caller holds the lock
            keep.append(exp.to_line())
            problems[-1]["fixed"] = True
    problems += record_problems(list(current.values()))
    problems += file_problems(store, list(current.values()))
    problems += _stale_heartbeats(store, current, fix=fix)
    renumbered = fix and any(p["kind"] == "duplicate_id" for p in problems)
    if renumbered:
        from ..transfer import reconcile

        for exp, _before in reconcile(list(current.values()), [])[0]:
            store._append(exp.to_line())  # the caller holds the lock
            current[exp.uuid] = exp
            keep.append(exp.to_line())
        for found in problems:
            if found["kind"] == "duplicate_id":
                found["fixed"] = True
                found["message"] += "; renumbered, the old ID kept as an alias"
    quarantine_path = None
    if fix and (quarantine or rewrite):
        quarantine_path = store.rewrite(keep, quarantine)
        for found in problems:
            if found["kind"] in ("unreadable", "unterminated"):
                found["fixed"] = True
    store.index.sync()
    if store.index.lines() != winners and not rewrite and not (fix and (quarantine or renumbered or conflicts)):
        problems.append(problem("index_stale", "the index disagrees with the log (was an earlier line edited "
                                 "in place?); it is rebuilt from the log on --fix", fixable=True))
        if fix:
            store.index.rebuild()
            problems[-1]["fixed"] = True
    return {
        "store": store.display_url,
        "path": str(store.path),
        "lines": content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1),
        "experiments": len(current),
        "by_status": dict(Counter(exp.status.value for exp in current.values())),
        "problems": problems,
        "quarantine": str(quarantine_path) if quarantine_path else None,
        "healthy": all(p.get("fixed") for p in problems if p["severity"] == "error"),
    }


def _stale_heartbeats(store, current: dict[str, Experiment], *, fix: bool) -> list[dict]:
    """Heartbeat files of runs that ended (a runner killed between its result and the clean-up),
    or of experiments this ledger does not hold that no one has touched for a lease (another
    ledger in the same folder shares the folder, so a fresh unknown one is left alone)."""
    from ..liveness import lease_seconds

    folder = store.cache_dir / "heartbeats"
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    oldest = time.time() - lease_seconds()
    stale = []
    for name in names:
        exp = current.get(name)
        if exp is not None:
            if exp.status is not Status.RUNNING:
                stale.append(name)
            continue
        try:
            if os.stat(folder / name).st_mtime < oldest:
                stale.append(name)
        except OSError:
            continue
    if not stale:
        return []
    found = problem("stale_heartbeats", f"{len(stale)} heartbeat file(s) in {folder} belong to no running "
                    "experiment; --fix removes them", fixable=True)
    if fix:
        for name in stale:
            try:
                os.unlink(folder / name)
            except FileNotFoundError:
                pass
        found["fixed"] = True
    return [found]
