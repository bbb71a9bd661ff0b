"""Moving experiments between ledgers: `exp copy`, `exp merge`, and `doctor --fix` after a git merge.

All three are one operation: take the union of two sets of records by UUID (versions of one
experiment resolved by conflicts.resolve, which never drops an outcome), give every record
an ID, and write to the target what differs, all or nothing.

IDs are final once a store has them:
- a record the target already holds keeps its ID there, always;
- a RUNNING (claimed) record keeps its ID everywhere, so its runner never loses it;
- every other record wants its first ID (the first of its aliases, else its ID) and, in
  order of creation (then UUID), takes it if it is still free; the rest get the next free
  numbers and keep the wanted ID as an alias.
So merging twice changes nothing, and a ledger merged by git union (no record is the
target's there) is renumbered the same way on every machine that holds the same file.
Step series come along for records the target does not have yet.
"""

from __future__ import annotations

import dataclasses

from .conflicts import describe, resolve
from .errors import BadInput
from .models import Experiment, Status, format_id, id_number


def assign_ids(records: list[Experiment], *, held: frozenset = frozenset()) -> dict[str, tuple[str, list]]:
    """uuid -> (ID, aliases) for a set of records that may share IDs; `held`: the uuids of
    records whose current ID is final (the target's own)."""
    def rank(exp: Experiment) -> tuple:
        return (exp.uuid not in held, exp.status is not Status.RUNNING, exp.created or "", exp.uuid)

    taken: set[str] = set()
    result: dict[str, tuple[str, list]] = {}
    losers = []
    for exp in sorted(records, key=rank):  # the target's and running ones first, then first come, first served
        final = exp.uuid in held or exp.status is Status.RUNNING
        wanted = exp.id if final or not exp.aliases else exp.aliases[0]
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


def union(records: list[Experiment]) -> tuple[dict[str, Experiment], list[dict]]:
    """One record per uuid, its versions resolved in the order given; and the conflicts met."""
    out: dict[str, Experiment] = {}
    conflicts = []
    for exp in records:
        held = out.get(exp.uuid)
        if held is None:
            out[exp.uuid] = exp
            continue
        merged, conflicted = resolve(held, exp)
        if conflicted:
            conflicts.append({"id": merged.id, "uuid": exp.uuid, "name": merged.name, "kept": merged.status.value,
                              "versions": [describe(held), describe(exp)]})
        out[exp.uuid] = merged
    return out, conflicts


def reconcile(current: list[Experiment], incoming: list[Experiment], *,
              held: frozenset = frozenset()) -> tuple[list[tuple[Experiment, str]], list[dict]]:
    """The records to write so that `current` becomes its union with `incoming`, each with
    the ID it had before (different when it was renumbered); and the conflicts resolved."""
    mine, _ = union(current)
    merged, conflicts = union([*current, *incoming])
    for uuid in held & mine.keys():  # the target's own ID stays, whichever version won
        merged[uuid] = dataclasses.replace(merged[uuid], id=mine[uuid].id, aliases=mine[uuid].aliases)
    ids = assign_ids(list(merged.values()), held=held)
    writes = []
    for uuid, exp in merged.items():
        before = exp.id
        exp_id, aliases = ids[uuid]
        if (exp.id, exp.aliases) != (exp_id, aliases):
            exp = dataclasses.replace(exp, id=exp_id, aliases=aliases, rev=exp.rev + 1)
        old = mine.get(uuid)
        if old is None or old.to_dict() != exp.to_dict():
            writes.append((exp, before))
    return writes, conflicts


def merge(source, target, *, steps: bool = True) -> dict:
    """Bring every experiment of `source` into `target` (stores), all or nothing; returns
    what was done. Nothing is written unless every record can be."""
    current = target.search(limit=None, sort="id")
    incoming = source.search(limit=None, sort="id")
    for exp in incoming:
        if not exp.uuid or id_number(exp.id) is None:
            raise BadInput(f"{source.url}: cannot merge {exp.id!r} ({exp.name!r}): a record needs an ID like "
                           "EXP-001; nothing was written")
    known = {exp.uuid for exp in current}
    writes, conflicts = reconcile(current, incoming, held=frozenset(known))
    report = {"added": 0, "updated": 0, "renumbered": [], "unchanged": 0, "step_series": 0, "conflicts": conflicts}
    written = target.put_many([exp for exp, _ in writes])
    for (exp, before), done in zip(writes, written):
        if not done:
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
