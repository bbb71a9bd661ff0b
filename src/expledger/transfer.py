"""Moving experiments between ledgers: `exp copy`, `exp merge`, and `doctor --fix` after a git merge.

All three are one operation: take the union of two sets of records by UUID (the higher rev
wins), give every record an ID, and write to the target what differs. IDs are a pure
function of that union, so merging A into B and B into A give the same ledger, and merging
again changes nothing:
- every record wants its first ID (the first of its aliases, else its ID);
- in order of creation (then UUID) each takes the ID it wants if it is still free;
- the others, in the same order, get the next free numbers and keep the wanted ID as an alias.
Step series come along for records the target does not have yet.
"""

from __future__ import annotations

import dataclasses

from .models import Experiment, format_id, id_number, supersedes, version


def assign_ids(records: list[Experiment]) -> dict[str, tuple[str, list]]:
    """uuid -> (ID, aliases) for a set of records that may share IDs."""
    ordered = sorted(records, key=lambda exp: (exp.created or "", exp.uuid))
    taken: set[str] = set()
    result: dict[str, tuple[str, list]] = {}
    losers = []
    for exp in ordered:  # first come, first served for the ID each was created with
        wanted = exp.aliases[0] if exp.aliases else exp.id
        if wanted in taken:
            losers.append(exp)
        else:
            taken.add(wanted)
            result[exp.uuid] = (wanted, list(exp.aliases))
    homeless = []
    for exp in losers:  # one renumbered before keeps its ID while no one wants it
        if exp.aliases and exp.id not in taken:
            taken.add(exp.id)
            result[exp.uuid] = (exp.id, list(exp.aliases))
        else:
            homeless.append(exp)
    highest = max((id_number(exp_id) or 0 for exp_id in taken), default=0)
    for exp in homeless:
        highest += 1
        aliases = [*exp.aliases, exp.id] if exp.aliases and exp.id not in exp.aliases else list(exp.aliases or [exp.id])
        result[exp.uuid] = (format_id(highest), aliases)
    return result


def union(records: list[Experiment]) -> dict[str, Experiment]:
    """One record per uuid: its current version (models.version decides)."""
    out: dict[str, Experiment] = {}
    for exp in records:
        held = out.get(exp.uuid)
        if held is None or supersedes(version(exp.rev, exp.updated), version(held.rev, held.updated)):
            out[exp.uuid] = exp
    return out


def reconcile(current: list[Experiment], incoming: list[Experiment]) -> list[tuple[Experiment, str]]:
    """The records to write so that `current` becomes its union with `incoming`, each with
    the ID it had before (different when it was renumbered)."""
    mine = union(current)
    merged = union([*current, *incoming])
    ids = assign_ids(list(merged.values()))
    writes = []
    for uuid, exp in merged.items():
        before = exp.id
        exp_id, aliases = ids[uuid]
        if (exp.id, exp.aliases) != (exp_id, aliases):
            exp = dataclasses.replace(exp, id=exp_id, aliases=aliases, rev=exp.rev + 1)
        held = mine.get(uuid)
        if held is None or held.to_dict() != exp.to_dict():
            writes.append((exp, before))
    return writes


def merge(source, target, *, steps: bool = True) -> dict:
    """Bring every experiment of `source` into `target` (stores); returns what was done."""
    current = target.search(limit=None, sort="id")
    incoming = source.search(limit=None, sort="id")
    known = {exp.uuid for exp in current}
    writes = reconcile(current, incoming)
    report = {"added": 0, "updated": 0, "renumbered": [], "unchanged": 0, "step_series": 0}
    for exp, before in writes:
        if not target.put(exp):
            continue  # the target already holds this version or a newer one
        report["updated" if exp.uuid in known else "added"] += 1
        if before != exp.id:
            report["renumbered"].append({"id": exp.id, "was": before, "uuid": exp.uuid, "name": exp.name})
        if steps and exp.uuid not in known and not target.read_steps(exp):
            series = source.read_steps(exp)
            if series:
                target.append_steps(exp, series)
                report["step_series"] += 1
    report["unchanged"] = len({e.uuid for e in incoming} - {e.uuid for e, _ in writes})
    report["refused"] = source.refused()  # failed the checks at the door: not merged
    return report
