"""The workers sharing a store: `exp workers`."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import Store


@dataclass(frozen=True)
class Workers:
    """Registered workers, live ones first, then the most recently heard from.

    Attributes:
        workers: each as it registered (`id` "host:pid", `host`, `pid`, `pid_start`, `machine`,
            `gpus`, `gpus_per_run`, `running` [{"id", "gpus"}], `ran`, `started`, `stopped`)
            plus `state` ("live", "stopped", "gone") and `last_beat_age` (seconds); ended
            ones are kept for a day.
    """

    workers: list[dict]

    def to_json(self) -> dict:
        return {"workers": self.workers}


def workers(store: Store, *, lease: float | None = None) -> Workers:
    """The store's worker registry; a worker silent for longer than `lease` (default:
    EXP_LEASE) is gone."""
    return Workers(store.workers(lease=lease))
