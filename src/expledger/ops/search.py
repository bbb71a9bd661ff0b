"""Finding experiments: `exp list`, `exp queue`, and the pages a dashboard shows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..fields import LISTING_FIELDS, QUEUE_FIELDS
from ..models import Experiment, Status
from ..store.base import QUEUE_ORDER, Page, Search, Store

DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class ExperimentList:
    """One page of matching experiments, in order.

    Attributes:
        experiments: the page.
        total: how many matched in all.
        offset: how many matches come before this page.
        next_cursor: pass as `cursor=` for the next page; None on the last one.
        fields: what `to_json()` gives of each record by default (see expledger.fields).
    """

    experiments: list[Experiment]
    total: int
    offset: int = 0
    next_cursor: str | None = None
    fields: tuple[str, ...] = LISTING_FIELDS

    @classmethod
    def of(cls, page: Page, *, fields: tuple[str, ...] = LISTING_FIELDS) -> ExperimentList:
        return cls(list(page), page.total, page.offset, page.next_cursor, fields)

    @property
    def truncated(self) -> bool:
        """Whether matches were left out of this page."""
        return self.total > len(self.experiments)

    def to_json(self, fields: tuple[str, ...] | None = None) -> dict:
        """The `list`/`queue --json` payload: each experiment reduced to `fields` (default:
        this list's compact set), plus the paging."""
        from ..fields import project

        shown = fields or self.fields
        return {"experiments": [project(exp, shown) for exp in self.experiments], "total": self.total,
                "truncated": self.truncated, "offset": self.offset, "next_cursor": self.next_cursor}


def search(store: Store, query: Search | None = None, *, fields: tuple[str, ...] = LISTING_FIELDS,
           **criteria) -> ExperimentList:
    """Experiments matching a Search (or its fields as keywords); see Search for each field."""
    query = query or Search(**criteria)
    if isinstance(query.where, str):
        from ..query import parse

        query = dataclasses.replace(query, where=parse(query.where))
    query.sort_keys()  # bad input fails before the store is touched
    store.reap_once()
    return ExperimentList.of(store.search(query), fields=fields)


def list_experiments(store: Store, *, status=(), task: str | None = None, model: str | None = None,
                     machine: str | None = None, tags=(), where=None, sort: str = "-id",
                     limit: int | None = DEFAULT_LIMIT, offset: int = 0, cursor: str | None = None) -> ExperimentList:
    """`exp list`: newest first by default, at most `limit` (None: all)."""
    return search(store, Search(status=status, task=task, model=model, machine=machine, tags=tags, where=where,
                                sort=sort, limit=limit, offset=offset, cursor=cursor))


def queue(store: Store, *, where=None) -> ExperimentList:
    """`exp queue`: QUEUED experiments in the order workers take them (priority, then age)."""
    return search(store, Search(status=(Status.QUEUED,), where=where, sort=QUEUE_ORDER), fields=QUEUE_FIELDS)



@dataclass(frozen=True)
class StatusCounts:
    """How many experiments each status holds under the other filters (a dashboard's quick
    filters): {"QUEUED": n, …}, every status present."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict:
        return {"counts": self.counts, "total": self.total}


def status_counts(store: Store, query: Search | None = None, **criteria) -> StatusCounts:
    """Per status, how many experiments match `query` (its own statuses and paging ignored)."""
    base = dataclasses.replace(query or Search(**criteria), status=(), limit=0, offset=0, cursor=None)
    return StatusCounts({status.value: search(store, dataclasses.replace(base, status=(status,))).total
                         for status in Status})
