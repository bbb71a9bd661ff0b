"""A run's output from any machine that shares the store: `exp logs`.

A runner sends the last 64 KB of its command's output with each heartbeat (the whole of it
stays in the run folder on the machine that ran it), so these read that tail: once, or as it
grows (`follow`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .. import models
from ..models import Experiment, Status
from ..store.base import Store


@dataclass(frozen=True)
class RunOutput:
    """Output of a run, from some position on.

    Attributes:
        experiment: the record as it was when the output was read.
        output: the bytes read (stdout and stderr as they came).
        total: how many bytes the run had written in all.
        skipped: bytes after the position asked for that were not kept in the store (they
            are only in the run folder on the machine that ran it).
    """

    experiment: Experiment
    output: bytes
    total: int
    skipped: int = 0

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    @classmethod
    def joined(cls, pieces: Sequence[RunOutput]) -> RunOutput:
        """Consecutive pieces (as `follow` yields them) as one."""
        last = pieces[-1]
        return cls(last.experiment, b"".join(p.output for p in pieces), last.total, sum(p.skipped for p in pieces))

    def to_json(self) -> dict:
        return {"id": self.experiment.id, "status": self.experiment.status.value, "output": self.text,
                "bytes": self.total, "skipped": self.skipped}


def logs(store: Store, ref: str | int, *, since: int = 0) -> RunOutput:
    """What experiment `ref` wrote after its first `since` bytes, as far as the store kept it."""
    models.parse_id(ref)  # a malformed ID fails before the store is touched
    store.reap_once()
    return _read(store, store.get(ref), since)


def follow(store: Store, ref: str | int, *, wait: Callable[[float], object] | None = None) -> Iterator[RunOutput]:
    """The output so far, then each new piece until the run ends (or is re-queued: a new
    attempt's output starts over). A run whose runner died ends here too, as FAILED or
    re-queued. `wait(seconds)` sleeps between looks (default: time.sleep)."""
    import time

    from ..liveness import heartbeat_interval

    piece = logs(store, ref)
    yield piece
    shown, exp = piece.total, piece.experiment
    while not (exp.status.finished or (exp.status is Status.QUEUED and shown)):
        (wait or time.sleep)(min(1.0, heartbeat_interval() / 2))
        store.refresh()
        store.reap_lost()
        exp = store.get(exp.id)
        piece = _read(store, exp, shown)
        yield piece
        shown = piece.total


def _read(store: Store, exp: Experiment, since: int) -> RunOutput:
    total, tail = store.read_output(exp) or (0, b"")
    new = total - since
    if new <= 0:
        return RunOutput(exp, b"", since)
    kept = min(new, len(tail))
    return RunOutput(exp, tail[len(tail) - kept:], total, new - kept)
