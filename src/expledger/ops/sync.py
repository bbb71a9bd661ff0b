"""Bringing ledgers together: `exp merge` (another ledger into this one) and `exp copy`
(a whole ledger into another store). The matching rules are in expledger.transfer."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadInput
from ..store.base import Store


@dataclass(frozen=True)
class TransferReport:
    """What a merge or copy did to the target.

    Attributes:
        target: the target store's URL (without a password).
        added, updated, unchanged: experiments by what happened to them.
        step_series: how many runs' step series came along.
        renumbered: [{"id", "was", "uuid", "name"}] for experiments whose ID the target
            already gave to another one (the old ID stays an alias).
        refused: [{"line", "reason"}] for records of the source that failed the checks at
            the door (models.admit) and were not brought over.
        conflicts: [{"id", "uuid", "name", "kept", "versions"}] for experiments changed on both
            sides (expledger.conflicts): the status kept and one line per version.
    """

    target: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    step_series: int = 0
    renumbered: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"report": {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                           "step_series": self.step_series, "renumbered": self.renumbered,
                           "refused": self.refused, "conflicts": self.conflicts}}


def merge(store: Store, other: str) -> TransferReport:
    """Merge the ledger at URL `other` into `store`; merging again changes nothing."""
    from ..store import open_store

    if other == store.url:
        raise BadInput("the source and the target are the same store")
    with open_store(other) as source:
        return _transfer(source, store)


def copy(source_url: str, target_url: str) -> TransferReport:
    """Copy the whole ledger at `source_url` into the store at `target_url`, losslessly."""
    from ..store import open_store

    if source_url == target_url:
        raise BadInput("the source and the target are the same store")
    with open_store(source_url) as source, open_store(target_url) as target:
        return _transfer(source, target)


def _transfer(source: Store, target: Store) -> TransferReport:
    from ..transfer import merge as bring

    return TransferReport(target=target.display_url, **bring(source, target))
