"""The files a run recorded and whether they are still where it left them: `exp files`."""

from __future__ import annotations

from dataclasses import dataclass

from .. import models
from ..models import Experiment
from ..store.base import Store


@dataclass(frozen=True)
class RecordedFiles:
    """An experiment's recorded files, each checked on this machine.

    Attributes:
        experiment: the record.
        files: each entry as recorded (see expledger.files) plus `location` (where it should
            be here) and `state` ("ok", "missing", or "changed": not the size it was logged with).
    """

    experiment: Experiment
    files: list[dict]

    def to_json(self) -> dict:
        return {"id": self.experiment.id, "files": self.files}


def files(store: Store, ref: str | int) -> RecordedFiles:
    """The files experiment `ref` recorded, located and checked (sizes only, no re-hashing)."""
    from ..files import locate, state, workspace

    models.parse_id(ref)  # a malformed ID fails before the store is touched
    exp = store.get(ref)
    run_dir, root = store.run_dir(exp), workspace(store)
    found = []
    for entry in exp.files:
        location = locate(entry, run_dir=run_dir, root=root)
        found.append({**entry, "location": str(location), "state": state(entry, location)})
    return RecordedFiles(exp, found)
