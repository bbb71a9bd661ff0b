"""Which fields a listing gives, so an answer fits an assistant's context window.

A full record carries provenance (the package list alone is kilobytes); a listing needs
far less. `list`/`queue --json` give LISTING_FIELDS, the text table DEFAULT_COLUMNS, and
`--fields` picks others for both. `show --json` stays complete.

A field is a record field (`name`), a path into params or metrics (`metrics.acc`), a whole
`provenance`/`runner`/`history`, a path into the runner (`runner.gpus`), or one of the
derived `outcome` (the failure's reason, else the summary), `duration` (seconds), `host` and
`attempt` (of the runner) and `heartbeat` (when a running one's runner last beat).
"""

from __future__ import annotations

from .models import Experiment
from .schema import FIELDS

LISTING_FIELDS = ("id", "name", "task", "model", "status", "params", "metrics", "summary", "failed_reason",
                  "machine", "tags", "created", "started", "completed")
DEFAULT_COLUMNS = ("id", "status", "name", "task", "model", "machine", "created", "metrics", "outcome")
QUEUE_FIELDS = ("id", "name", "task", "model", "status", "priority", "machine", "command", "params", "tags",
                "created")
QUEUE_COLUMNS = ("id", "priority", "name", "task", "model", "machine", "command", "created")
DERIVED = ("outcome", "duration", "host", "attempt", "heartbeat")
# Fields given whole (`--fields runner`): the objects, and what --where cannot look into (schema.py).
WHOLE = tuple(f.name for f in FIELDS if f.type == "object" or not f.queryable)


def parse_fields(text: str | None, *, flag: str = "--fields") -> tuple[str, ...] | None:
    """`id,status,metrics.acc` as a tuple of checked names; None when not given."""
    if text is None:
        return None
    from .errors import BadInput
    from .query import field_path

    fields = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not fields:
        raise BadInput(f"{flag} needs field names, e.g. {flag} id,status,metrics.acc")
    for name in fields:
        if name not in DERIVED and name not in WHOLE:
            field_path(name, flag=flag)
    return fields


def value(exp: Experiment, name: str):
    """One field's value for one experiment (None when absent)."""
    if name == "outcome":
        return exp.failed_reason if exp.failed_reason and exp.status.value == "FAILED" else exp.summary
    if name == "duration":
        return exp.duration
    if name in ("host", "attempt"):
        return exp.runner.get(name)
    if name == "heartbeat":  # set on a listing's records by with_heartbeats (the store holds the beats)
        return exp.extra.get("heartbeat")
    if name == "status":
        return exp.status.value
    head, *rest = name.split(".")
    found = getattr(exp, head, None)
    for part in rest:
        found = found.get(part) if isinstance(found, dict) else None
    return found


def with_heartbeats(store, experiments: list[Experiment]) -> list[Experiment]:
    """The records with `heartbeat` (the time of a running one's last beat) for a listing."""
    import dataclasses
    from datetime import timedelta

    from .models import Status, now_iso

    out = []
    for exp in experiments:
        age = store.heartbeat_age(exp) if exp.status is Status.RUNNING else None
        beat = now_iso(store.now() - timedelta(seconds=age)) if age is not None else None
        out.append(dataclasses.replace(exp, extra={**exp.extra, "heartbeat": beat}))
    return out


def project(exp: Experiment, fields: tuple[str, ...] = LISTING_FIELDS) -> dict:
    """The record reduced to `fields`, in the stored JSON form; `metrics.acc` nests as
    {"metrics": {"acc": …}}, a missing one is null."""
    from .models import json_safe

    whole = _WHOLE_FIELDS.get(fields)
    if whole is None:
        whole = _WHOLE_FIELDS[fields] = _whole_fields(fields)
    if whole:  # record fields only (a listing's usual set): taken all at once
        out = dict(zip(fields, whole(exp)))
        if "status" in out:
            out["status"] = exp.status.value
        return json_safe(out)
    out = {}
    for name in fields:
        head, *rest = name.split(".")
        if not rest:
            out[head] = value(exp, name)
            continue
        if head in fields:
            continue  # the whole of it is given already
        node = out.setdefault(head, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value(exp, name)
    return json_safe(out)


_WHOLE_FIELDS: dict = {}  # fields -> _whole_fields(fields)


def _whole_fields(fields: tuple[str, ...]):
    """A getter of all `fields` as a tuple when each is a record field (no path, nothing
    derived); else False."""
    from dataclasses import fields as record_fields
    from operator import attrgetter

    names = {f.name for f in record_fields(Experiment)} - {"extra"}
    if not fields or not all(name in names for name in fields):
        return False
    get = attrgetter(*fields)
    return get if len(fields) > 1 else lambda exp: (get(exp),)
