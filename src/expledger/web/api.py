"""The dashboard's JSON API as plain functions: a store and the request's arguments in, a dict out.

Each function parses its request's arguments, calls the operation (expledger.ops) that the
`exp` command of that name calls, and returns that result's `to_json()`: the command's
`--json` payload, field for field (a list page adds its `limit`, an experiment its `log_tail`).
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

from ..errors import BadInput
from ..fields import LISTING_FIELDS, parse_fields
from ..models import Status
from ..ops import compare as op_compare
from ..ops import record as op_record
from ..ops import search as op_search
from ..ops import show as op_show
from ..series import DEFAULT_POINTS, MAX_POINTS
from ..store import Search

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
    return op_search.status_counts(store, _search(args, statuses=False, limit=0)).to_json()


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
    """`exp show --json`, with the tail of the logs in its run folder."""
    from ..output import log_tail

    shown = op_show.show(store, exp_id)
    return {**shown.to_json(), "log_tail": [{"file": name, "line": line} for name, line in log_tail(shown.run_dir, LOG_TAIL_LINES)]}


def steps(store, exp_id: str, args: Args) -> dict:
    """Step series for charts: `metric` (repeatable; default all), downsampled to about
    `points` per series unless `full=1`; a finished run's charts are computed once."""
    from ..ops.steps import series

    metrics = _many(args, "metric")
    if _one(args, "full") in ("1", "true", "yes"):
        return series(store, exp_id, metrics=metrics, points=None).to_json()
    points = _int(args, "points", DEFAULT_POINTS, 10, MAX_POINTS)
    return series(store, exp_id, metrics=metrics, points=points,
                  memo=lambda exp, key, compute: _finished(store, exp, key, compute)).to_json()


def files(store, exp_id: str, args: Args) -> dict:
    """`exp files --json`: the run's recorded files, each checked on the server's machine."""
    from ..ops.files import files as recorded

    return recorded(store, exp_id).to_json()


def logs(store, exp_id: str, args: Args) -> dict:
    """`exp logs --json`: the run's output as the store kept it; `since=N` gives only what
    came after its first N bytes (the `bytes` of the previous answer), for polling."""
    from ..ops.logs import logs as output

    return output(store, exp_id, since=_int(args, "since", 0, 0, 1 << 62)).to_json()


def compare(store, args: Args) -> dict:
    """`exp compare --json`: of `ids` and/or the experiments matching `where` (newest `limit`),
    ranked with `by` (metrics.X or X; `top` keeps the N best), `lower` and `baseline` as on the CLI."""
    top = _int(args, "top", 0, 0, 1000)
    return op_compare.compare(store, _many(args, "ids"), where=_one(args, "where"), top=top or None,
                              by=_one(args, "by"), limit=_int(args, "limit", op_compare.DEFAULT_LIMIT, 1, 1000),
                              baseline=_one(args, "baseline"), lower=frozenset(_many(args, "lower"))).to_json()


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{name} must be text")
    return value


def cancel(store, exp_id: str, body: dict) -> dict:
    """`exp cancel`: a running experiment's process on this host is stopped too."""
    return op_record.cancel(store, exp_id, reason=_text(body, "reason")).to_json()


def requeue(store, exp_id: str, body: dict) -> dict:
    """A finished experiment queued again as a new one (ops.again); `exp requeue` instead
    puts the same experiment back as a new attempt."""
    from ..ops.again import again

    return again(store, exp_id).to_json()


def edit(store, exp_id: str, body: dict) -> dict:
    """Replace tags (a list of text) and/or the summary; absent fields are unchanged."""
    from ..ops.edit import edit as change

    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise BadInput("tags must be a list of text")
    return change(store, exp_id, tags=tags, summary=_text(body, "summary")).to_json()


def workers(store, args: Args) -> dict:
    """`exp workers --json`."""
    from ..ops.workers import workers as registered

    return registered(store).to_json()


def check(store, args: Args) -> dict:
    """`exp check --json`: `task`, `model`, `params` (a JSON object), `replicate`, `neighbours`."""
    from ..models import parse_json_object
    from ..ops.check import DEFAULT_NEIGHBOURS
    from ..ops.check import check as find

    params = _one(args, "params")
    return find(store, task=_one(args, "task"), model=_one(args, "model"),
                params=parse_json_object(params, "params") if params is not None else None,
                replicate=_one(args, "replicate") or "seed",
                neighbours=_int(args, "neighbours", DEFAULT_NEIGHBOURS, 0, 100)).to_json()


def export(store, args: Args) -> dict:
    """`exp export --json` of the successful experiments (or `status`) matching `where`:
    `group_by`, `replicate`, `metrics` (metrics.X), `lower`; `format=md|latex|csv` adds `text`."""
    from ..ops.export import export as build

    statuses = tuple(Status.parse(s) for s in _many(args, "status")) or (Status.SUCCESS,)
    table = build(store, status=statuses, where=_one(args, "where"), group_by=list(_many(args, "group_by")) or None,
                  replicate=_one(args, "replicate") or "seed", metrics=list(_many(args, "metrics")) or None,
                  lower=frozenset(_many(args, "lower")))
    fmt = _one(args, "format") or "json"
    if fmt not in ("json", "md", "latex", "csv"):
        raise BadInput(f"format must be json, md, latex or csv, not {fmt!r}")
    return table.to_json() if fmt == "json" else {**table.to_json(), "text": table.render(fmt)}


def _research(args: Args) -> dict:
    """The arguments `exp notes` and `exp next` share: task, where, by, lower, replicate."""
    return {"task": _one(args, "task"), "where": _one(args, "where"), "by": _one(args, "by"),
            "lower": frozenset(_many(args, "lower")), "replicate": _one(args, "replicate") or "seed"}


def notes(store, args: Args) -> dict:
    """`exp notes --json` (`since` a date); `format=md` adds the Markdown document as `text`."""
    from ..ops.notes import notes as build

    found = build(store, since=_one(args, "since"), **_research(args))
    return {**found.to_json(), "text": found.to_markdown()} if _one(args, "format") == "md" else found.to_json()


def next_runs(store, args: Args) -> dict:
    """`exp next --json` (without --queue: a read adds nothing), at most `limit` (default 10, 0: all)."""
    from ..ops.next import suggest

    return suggest(store, limit=_int(args, "limit", 10, 0, 1000) or None, **_research(args)).to_json()


READS = {"experiments": list_experiments, "counts": status_counts, "queue": queue, "compare": compare,
         "check": check, "export": export, "workers": workers, "notes": notes, "next": next_runs}
ONE_READS = {"": show, "steps": steps, "files": files, "logs": logs}  # /api/experiments/{id}/{name}
WRITES = {"cancel": cancel, "requeue": requeue, "edit": edit}  # POST /api/experiments/{id}/{name}
