"""From the ledger to paper notes: `exp notes`. What goes into them is in expledger.notes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..store.base import Store

if TYPE_CHECKING:  # expledger.notes is imported only when it is used
    from ..notes import Notes


@dataclass(frozen=True)
class ResearchNotes:
    """Notes per task: what was tried, the best configs with mean ± std and their IDs, the gap
    to the runner-up, failures grouped by cause, what is queued or running.

    Attributes:
        notes: the notes as data (expledger.notes.Notes); `to_markdown()` is the document.
    """

    notes: Notes

    @property
    def tasks(self) -> list:
        return self.notes.tasks

    def to_markdown(self) -> str:
        return self.notes.to_markdown()

    def to_json(self) -> dict:
        return {"notes": self.notes.to_json()}


def notes(store: Store, *, task: str | None = None, where=None, since: datetime | str | None = None,
          by: str | None = None, lower=frozenset(), replicate: str = "seed") -> ResearchNotes:
    """Notes over the experiments of `task` (default: every task, one section each) matching
    `where`, changed at or after `since` (a datetime, or a date as 2026-11-01 or
    2026-11-01T09:00+00:00); ranked by the metric `by` (default: the one most runs report)."""
    from ..notes import build

    where, moment = _where(where), moment_of(since)
    store.reap_once()
    found = store.search(task=task, where=where, sort="id", limit=None)
    return ResearchNotes(build(list(found), queued_order=list(store.queue(where=where)), by=by,
                               lower=frozenset(lower), replicate=replicate, since=moment))


def _where(where):
    if isinstance(where, str):
        from ..query import parse

        return parse(where)
    return where


def moment_of(since: datetime | str | None) -> datetime | None:
    """A `since` as a datetime: given as one, or as text (BadInput when it is not a date)."""
    if since is None or isinstance(since, datetime):
        return since
    from ..models import parse_time

    moment = parse_time(since.strip()) if since.strip() else None
    if moment is None:
        raise BadInput(f"{since!r} is not a date: use 2026-11-01 or 2026-11-01T09:00+00:00")
    return moment
