"""What running experiments gave back: `exp run` and `exp worker` (the running itself is
expledger.runner and expledger.worker)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Experiment


@dataclass(frozen=True)
class Ran:
    """One experiment as its run ended, and the command's exit code."""

    experiment: Experiment
    exit_code: int

    def to_json(self) -> dict:
        return {"experiment": self.experiment.to_dict(), "exit_code": self.exit_code}


@dataclass(frozen=True)
class WorkerReport:
    """What a worker ran, and (with --until-empty) what it left queued and why."""

    ran: list[Ran]
    left: list[tuple[Experiment, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"ran": [r.to_json() for r in self.ran],
                "left": [{"id": exp.id, "name": exp.name, "why": why} for exp, why in self.left]}
