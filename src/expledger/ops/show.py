"""One experiment whole: `exp show`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import models
from ..models import Experiment, json_safe
from ..store.base import Store


@dataclass(frozen=True)
class Shown:
    """An experiment with what `show` tells about it.

    Attributes:
        experiment: the record.
        steps: its step metrics, {name: (steps, values)}.
        also_was: other experiments that had the ID asked for in a ledger merged into this
            one (a merge renumbered them and kept that ID as their alias).
        asked: the ID asked for, canonical (`EXP-007`).
        run_dir: the folder of its logs and artifacts.
        output_tail: (bytes written, the last of them) as its runner sent them with heartbeats, when
            the run folder is not on this machine (None otherwise).
    """

    experiment: Experiment
    steps: dict[str, tuple[list, list]]
    also_was: list[Experiment]
    asked: str
    run_dir: Path
    output_tail: tuple[int, bytes] | None = None

    def to_json(self) -> dict:
        from ..steps import summary

        return {"experiment": self.experiment.to_dict(), "steps": json_safe(summary(self.steps)),
                "also_was": [other.id for other in self.also_was], "run_dir": str(self.run_dir)}


def show(store: Store, ref: str | int) -> Shown:
    """The experiment behind any spelling of its ID (NotFound if none)."""
    asked = models.format_id(models.parse_id(ref))  # a malformed ID fails before the store is touched
    store.reap_once()
    exp = store.get(asked)
    from ..query import Has

    renamed = [other for other in store.search(where=Has(("aliases",), asked), sort="id", limit=None)
               if other.uuid != exp.uuid]
    run_dir = store.run_dir(exp)
    tail = None if run_dir.is_dir() else store.read_output(exp)
    return Shown(exp, store.read_steps(exp, arrays=True), renamed, asked, run_dir, tail)
