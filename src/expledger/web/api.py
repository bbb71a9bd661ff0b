"""The dashboard's JSON API as plain functions: a store and the request's arguments in, a dict out.

The HTTP layer (server.py) stays generic: it finds the function in `READS` or `WRITES`, runs
it on the store's thread and sends the dict in the CLI's JSON envelope; an ExpledgerError
becomes its HTTP status (400 bad input, 404 unknown ID, 409 illegal transition). Records have
the schema of `--json` (Experiment.to_dict); lists are paged with a total, so no page ever
carries the whole ledger (mlflow#1517).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping

from .. import models
from ..errors import BadInput, IllegalTransition
from ..fields import LISTING_FIELDS, parse_fields
from ..models import Status
from ..ops import compare as op_compare
from ..ops import record as op_record
from ..ops import search as op_search
from ..ops import show as op_show
from ..store import Search
from . import series

Args = Mapping[str, list[str]]  # query-string arguments, each possibly repeated
PAGE = 50
MAX_PAGE = 1000
LOG_TAIL_LINES = 40


def _one(args: Args, name: str) -> str | None:
    values = args.get(name) or []
    return values[-1] if values and values[-1] != "" else None


def _many(args: Args, name: str) -> tuple[str, ...]:
    """A repeatable argument whose values may also be comma-separated."""
    return tuple(part.strip() for value in args.get(name) or [] for part in value.split(",") if part.strip())


def _int(args: Args, name: str, default: int, low: int, high: int) -> int:
    text = _one(args, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"{name} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise BadInput(f"{name} must be between {low} and {high}, not {value}")
    return value


def _search(args: Args, *, statuses: bool = True, limit: int | None = None) -> Search:
    """The filters every listing takes: status, task, model, machine, tag, where, sort."""
    where = _one(args, "where")
    search = Search(
        status=tuple(Status.parse(s) for s in _many(args, "status")) if statuses else (),
        task=_one(args, "task"), model=_one(args, "model"), machine=_one(args, "machine"),
        tags=_many(args, "tag"), where=where, sort=_one(args, "sort") or "-id", limit=limit,
    )
    if where is not None:
        from ..query import parse

        search = dataclasses.replace(search, where=parse(where))  # bad input before any store work
    search.sort_keys()
    return search


def _fields(args: Args) -> tuple[str, ...]:
    """`fields=id,params.lr` as `--fields` takes them; default: the compact set `list --json` gives."""
    return parse_fields(_one(args, "fields"), flag="fields") or LISTING_FIELDS


def list_experiments(store, args: Args) -> dict:
    """`exp list --json`, a page at a time: `offset` or `cursor`, `limit` (default 50), `fields` as `--fields`."""
    offset = _int(args, "offset", 0, 0, 10**9)
    limit = _int(args, "limit", PAGE, 0, MAX_PAGE)
    query = dataclasses.replace(_search(args, limit=limit), offset=offset, cursor=_one(args, "cursor"))
    return {**op_search.search(store, query).to_json(_fields(args)), "limit": limit}


def status_counts(store, args: Args) -> dict:
    """How many experiments each status holds under the other filters (the quick filters' counts)."""
    base = _search(args, statuses=False, limit=0)
    counts = {status.value: op_search.search(store, dataclasses.replace(base, status=(status,))).total
              for status in Status}
    return {"counts": counts, "total": sum(counts.values())}


def queue(store, args: Args) -> dict:
    """`exp queue --json`: QUEUED experiments in the order workers take them."""
    return op_search.queue(store, where=_search(args).where).to_json(_fields(args) if args.get("fields") else None)


_FINISHED: OrderedDict = OrderedDict()  # (store, uuid, rev, what) -> step data of a finished run
CACHED = 8


def _finished(store, exp, what: tuple, compute):
    """Step data of a finished run, computed once: its page asks for the record and then the
    charts, and a million points should be decoded and downsampled once, not on every visit.
    A RUNNING run's are always read afresh (they grow)."""
    if not exp.status.finished:
        return compute()
    key = (store.url, exp.uuid, exp.rev, *what)
    if key in _FINISHED:
        _FINISHED.move_to_end(key)
        return _FINISHED[key]
    _FINISHED[key] = found = compute()
    while len(_FINISHED) > CACHED:
        _FINISHED.popitem(last=False)
    return found


class CachedSteps:
    """The store as the dashboard uses it: the same, but a finished run's step series are
    decoded once (its page asks for the record with step summaries, then for the charts)."""

    def __init__(self, store):
        self.store = store

    def __getattr__(self, name):
        return getattr(self.store, name)

    def read_steps(self, exp, **options) -> dict:
        return _finished(self.store, exp, ("steps", *sorted(options.items())),
                         lambda: self.store.read_steps(exp, **options))


def show(store, exp_id: str, args: Args) -> dict:
    """`exp show --json`, with the log tail and the run's folder."""
    from ..output import log_tail

    shown = op_show.show(store, exp_id)
    return {**shown.to_json(), "run_dir": str(shown.run_dir),
            "log_tail": [{"file": name, "line": line} for name, line in log_tail(shown.run_dir, LOG_TAIL_LINES)]}


def steps(store, exp_id: str, args: Args) -> dict:
    """Step series for charts: `metric` (repeatable; default all), downsampled to about
    `points` per series unless `full=1`."""
    exp = store.get(exp_id)
    wanted = set(_many(args, "metric"))
    full = _one(args, "full") in ("1", "true", "yes")
    points = None if full else _int(args, "points", series.DEFAULT_POINTS, 10, series.MAX_POINTS)

    def charts() -> dict:
        found = store.read_steps(exp)
        return {name: series.chart_series(xs, ys, points=points) for name, (xs, ys) in found.items()
                if not wanted or name in wanted}

    return {"id": exp.id, "status": exp.status.value,
            "series": charts() if full else _finished(store, exp, ("charts", points, tuple(sorted(wanted))), charts)}


def compare(store, args: Args) -> dict:
    """`exp compare --json` of `ids` (2 or more), with `lower` and `baseline` as on the CLI."""
    return op_compare.compare(store, _many(args, "ids"), baseline=_one(args, "baseline"),
                               lower=frozenset(_many(args, "lower"))).to_json()


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{name} must be text")
    return value


def cancel(store, exp_id: str, body: dict) -> dict:
    """`exp cancel`: a running experiment's process on this host is stopped too."""
    return op_record.cancel(store, exp_id, reason=_text(body, "reason")).to_json()


def requeue(store, exp_id: str, body: dict) -> dict:
    """A finished experiment queued again as a new one: same name, task, model, params,
    command, target machine, tags, priority, folder and GPUs (what `exp add` would register).
    (`exp requeue` instead puts the same experiment back as a new attempt.)"""
    old = store.get(exp_id)
    if not old.status.finished:
        raise IllegalTransition(f"{old.id} is {old.status.value}; only a finished experiment can be queued again")
    target = old.runner.get("target") if "attempt" in old.runner else old.machine  # as `exp requeue` reads it
    added = op_record.add(store, name=old.name, task=old.task, model=old.model, params=old.params,
                           command=old.command, machine=target, tags=old.tags, priority=old.priority, gpus=old.gpus,
                           workdir=old.workdir)
    return {**added.to_json(), "from": old.id}


def edit(store, exp_id: str, body: dict) -> dict:
    """Replace tags (a list of text) and/or the summary; absent fields are unchanged."""
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise BadInput("tags must be a list of text")
    summary = _text(body, "summary")
    if tags is None and summary is None:
        raise BadInput("nothing to change: send tags and/or summary")
    exp = store.modify(exp_id, lambda current, now: models.annotate(current, tags=tags, summary=summary))
    return {"experiment": exp.to_dict()}


READS = {"experiments": list_experiments, "counts": status_counts, "queue": queue, "compare": compare}
ONE_READS = {"": show, "steps": steps}  # /api/experiments/{id}/{name}
WRITES = {"cancel": cancel, "requeue": requeue, "edit": edit}  # POST /api/experiments/{id}/{name}
