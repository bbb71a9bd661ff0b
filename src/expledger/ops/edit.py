"""Changing what an experiment says about itself, in any status: its tags and summary (the
dashboard's edit)."""

from __future__ import annotations

from ..errors import BadInput
from ..store.base import Store
from .record import Recorded


def edit(store: Store, ref: str | int, *, tags: list[str] | None = None, summary: str | None = None) -> Recorded:
    """Replace the tags and/or the summary (None: unchanged; "" clears the summary)."""
    from .. import models
    from ..lifecycle import Annotate

    if tags is None and summary is None:
        raise BadInput("nothing to change: give tags and/or a summary")
    models.parse_id(ref)
    return Recorded(store.apply(ref, Annotate(tags=None if tags is None else tuple(tags), summary=summary)))
